// Script cost per event of the client libraries in V8 (Node), without a network: a fake
// WebSocket hands each library the frames the server would send, synchronously, and the
// process's CPU time is read around each scenario. Run by script-cost.sh (see README.md):
//   node script-cost.mjs ROUNDS LIB...   (LIB: a directory with ferrio.js, or an .mjs bundle)
import { readFile } from "node:fs/promises";
import { performance } from "node:perf_hooks";
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const origFetch = globalThis.fetch;
globalThis.fetch = async (u) => {
  const url = new URL(u);
  if (url.protocol !== "file:") return origFetch(u);
  const b = await readFile(url);
  return { ok: true, status: 200, arrayBuffer: async () => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) };
};
class FakeWS {
  constructor(url) { this.url = url; this.readyState = 0; this.last = undefined; this.count = 0; FakeWS.last = this; }
  send(d) { this.last = d; this.count++; }
  close() { this.readyState = 3; }
  addEventListener() {}
}
globalThis.WebSocket = FakeWS;
const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));
const msg = (ws, data) => ws.onmessage({ data, timeStamp: performance.now() });
const OPEN = '0{"sid":"x","upgrades":[],"pingInterval":250000,"pingTimeout":200000,"maxPayload":100000000}';

async function connect(io) {
  const s = io("http://127.0.0.1:9", { forceNew: true, transports: ["websocket"], reconnection: false });
  await tick();
  const ws = FakeWS.last;
  ws.readyState = 1;
  ws.onopen && ws.onopen({});
  await tick();
  msg(ws, OPEN);
  await tick();
  msg(ws, '40{"sid":"s"}');
  await tick();
  if (!s.connected) throw new Error("not connected");
  return { s, ws };
}

const N = 20000, NB = 300, NA = 5000;
const small = Array.from({ length: N }, (_, i) => `42["flood",{"text":"hello","from":"abc","n":${i}}]`);
const bin = new Uint8Array(65536).fill(7);
async function measure(io) {
  const { s, ws } = await connect(io);
  let sum = 0;
  s.on("flood", (o) => { sum += o.n === undefined ? o.byteLength : o.n; });
  // small JSON
  let t = cpu();
  for (let i = 0; i < N; i++) msg(ws, small[i]);
  await null;
  if (sum === 0) throw new Error("no events");
  const smallUs = ((cpu() - t) * 1000) / N;
  // binary: header + attachment; a fresh ArrayBuffer each time, as the browser gives
  const bufs = Array.from({ length: NB }, () => bin.slice().buffer);
  t = cpu();
  for (let i = 0; i < NB; i++) { msg(ws, '451-["flood",{"_placeholder":true,"num":0}]'); msg(ws, bufs[i]); }
  await null;
  const binUs = ((cpu() - t) * 1000) / NB;
  // emit -> ack, 1 in flight (microtasks let socket.io-client's transport write)
  const m = { text: "hello", from: "abc", n: 42 };
  let acks = 0;
  t = cpu();
  for (let i = 0; i < NA; i++) {
    const before = ws.count;
    s.emit("echo", m, (back) => { if (back.n === 42) acks++; });
    while (ws.count === before) await null;
    const id = /^42(\d+)/.exec(ws.last)[1];
    msg(ws, `43${id}[{"text":"hello","from":"abc","n":42}]`);
  }
  while (acks < NA) await null;
  const ackUs = ((cpu() - t) * 1000) / NA;
  if (acks !== NA) throw new Error(`acks ${acks}`);
  s.disconnect();
  return [smallUs, binUs, ackUs];
}

const [rounds, ...libs] = process.argv.slice(2);
const mods = [];
for (const l of libs) mods.push([l, (await import(/\.m?js$/.test(l) ? l : `${l}/ferrio.js`)).io]);
const res = new Map(libs.map((l) => [l, []]));
for (const [, io] of mods) await measure(io); // warm-up
for (let r = 0; r < Number(rounds); r++) {
  const order = r % 2 ? mods.slice().reverse() : mods;
  for (const [l, io] of order) res.get(l).push(await measure(io));
}
const med = (xs) => { const s = xs.slice().sort((a, b) => a - b); return s[(s.length - 1) >> 1]; };
for (const [l, rs] of res) {
  const cols = [0, 1, 2].map((k) => { const v = rs.map((x) => x[k]); return `${med(v).toFixed(2)} [${Math.min(...v).toFixed(2)}-${Math.max(...v).toFixed(2)}]`; });
  console.log(`${l.split("/").slice(-2).join("/")}: small ${cols[0]} µs | 64KiB bin ${cols[1]} µs | emit→ack ${cols[2]} µs`);
}
