// Fixed-count load for callgrind (bench/callgrind/run.sh): connects, warms up, zeroes the
// server's callgrind counters, runs a fixed number of acks (or broadcasts), dumps them, exits.
// node load.js MODE CLIENTS COUNT PORT PID   MODE: ws | bin | poll | bcast
const WebSocket = require('ws');
const http = require('http');
const { execSync } = require('child_process');
const [mode, nStr, countStr, portStr, pid] = process.argv.slice(2);
const N = +nStr, COUNT = +countStr, PORT = +portStr;
const PAYLOAD = '{"text":"hello","from":"abc","n":42}';
const BIN = Buffer.alloc(64 * 1024, 0xa5);
const WARM = 20;

function cg(op) {
  if (pid && pid !== '0') execSync(`callgrind_control ${op} ${pid}`, { stdio: 'ignore' });
}

function wsConnect() {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${PORT}/socket.io/?EIO=4&transport=websocket`);
    const c = { ws, waiters: [], onmsg: null };
    ws.on('message', (data, isBinary) => {
      if (!isBinary && data.toString() === '2') { ws.send('3'); return; }
      if (c.onmsg) c.onmsg(data, isBinary);
    });
    ws.on('error', reject);
    c.onmsg = (data) => {
      const t = data.toString();
      if (t[0] === '0') ws.send('40');
      else if (t.startsWith('40')) { c.onmsg = null; resolve(c); }
    };
  });
}

async function wsEcho(c, count, startId) {
  for (let i = 0; i < count; i++) {
    const id = startId + i;
    await new Promise((resolve) => {
      c.onmsg = (data, bin) => {
        if (!bin && data.toString().startsWith(`43${id}[`)) resolve();
      };
      c.ws.send(`42${id}["echo",${PAYLOAD}]`);
    });
  }
}

async function binEcho(c, count, startId) {
  for (let i = 0; i < count; i++) {
    const id = startId + i;
    await new Promise((resolve) => {
      let header = false;
      c.onmsg = (data, bin) => {
        if (!bin && data.toString().startsWith(`461-${id}[`)) header = true;
        else if (bin && header) { if (data.length !== BIN.length) throw new Error('len'); resolve(); }
      };
      c.ws.send(`451-${id}["echo_bin",{"_placeholder":true,"num":0}]`);
      c.ws.send(BIN);
    });
  }
}

function req(agent, method, path, body) {
  return new Promise((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port: PORT, method, path, agent,
      headers: body ? { 'content-type': 'text/plain;charset=UTF-8', 'content-length': Buffer.byteLength(body) } : {} },
      (res) => { const parts = []; res.on('data', (d) => parts.push(d)); res.on('end', () => resolve(Buffer.concat(parts).toString())); });
    r.on('error', reject);
    if (body) r.write(body);
    r.end();
  });
}

async function pollConnect() {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const open = await req(agent, 'GET', '/socket.io/?EIO=4&transport=polling');
  const sid = JSON.parse(open.slice(1)).sid;
  const path = `/socket.io/?EIO=4&transport=polling&sid=${sid}`;
  await req(agent, 'POST', path, '40');
  for (;;) { const b = await req(agent, 'GET', path); if (b.split('\x1e').some((r) => r.startsWith('40'))) break; }
  return { agent, path };
}

async function pollEcho(c, count, startId) {
  for (let i = 0; i < count; i++) {
    const id = startId + i;
    await req(c.agent, 'POST', c.path, `42${id}["echo",${PAYLOAD}]`);
    let done = false;
    while (!done) {
      const body = await req(c.agent, 'GET', c.path);
      let ping = false;
      for (const r of body.split('\x1e')) {
        if (r === '2') ping = true;
        else if (r.startsWith(`43${id}[`)) done = true;
      }
      if (ping) await req(c.agent, 'POST', c.path, '3');
    }
  }
}

async function bcast(clients, count) {
  // count broadcasts, each to all N; at most `inFlight` broadcasts outstanding.
  const inFlight = Math.max(2, Math.min(50, Math.floor(20000 / N)));
  let delivered = 0, wake = null, need = Infinity;
  for (const c of clients) c.onmsg = (data, bin) => {
    if (!bin && data.toString().startsWith('42["msg"')) {
      delivered++;
      if (delivered >= need && wake) { const w = wake; wake = null; w(); }
    }
  };
  const run = async (n) => {
    const base = delivered;
    for (let s = 1; s <= n; s++) {
      const want = base + Math.max(0, s - inFlight) * N;
      if (delivered < want) await new Promise((r) => { need = want; wake = r; });
      clients[0].ws.send(`42["broadcast",${PAYLOAD}]`);
    }
    if (delivered < base + n * N) await new Promise((r) => { need = base + n * N; wake = r; });
  };
  await run(WARM);
  cg('-z');
  await run(count);
  cg('-d');
}

(async () => {
  if (mode === 'poll') {
    const cs = [];
    for (let i = 0; i < N; i++) cs.push(await pollConnect());
    await Promise.all(cs.map((c) => pollEcho(c, WARM, 1)));
    cg('-z');
    await Promise.all(cs.map((c) => pollEcho(c, COUNT, 1 + WARM)));
    cg('-d');
    for (const c of cs) c.agent.destroy();
  } else {
    const cs = [];
    for (let i = 0; i < N; i++) cs.push(await wsConnect());
    if (mode === 'bcast') await bcast(cs, COUNT);
    else {
      const f = mode === 'bin' ? binEcho : wsEcho;
      await Promise.all(cs.map((c) => f(c, WARM, 1)));
      cg('-z');
      await Promise.all(cs.map((c) => f(c, COUNT, 1 + WARM)));
      cg('-d');
    }
    for (const c of cs) c.ws.close();
  }
  console.log('done');
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
