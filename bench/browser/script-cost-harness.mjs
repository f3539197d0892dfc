// The scenarios of the script-cost benchmark, shared by its Node runner (script-cost.mjs) and its
// Chromium runner (script-cost-chromium.mjs): a fake WebSocket hands a library the frames the
// server would send, synchronously, and `clock()` (milliseconds) is read around each scenario.

/** A WebSocket stand-in: records what the library sends; frames are given by `message`. */
export class FakeWS {
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.last = undefined;
    this.count = 0;
    FakeWS.last = this;
  }
  send(d) {
    this.last = d;
    this.count++;
  }
  close() {
    this.readyState = 3;
  }
  addEventListener() {}
}

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));
const message = (ws, data) => ws.onmessage({ data, timeStamp: performance.now() });
const OPEN = '0{"sid":"x","upgrades":[],"pingInterval":250000,"pingTimeout":200000,"maxPayload":100000000}';

async function connect(io) {
  const s = io("http://127.0.0.1:9", { forceNew: true, transports: ["websocket"], reconnection: false });
  await tick();
  const ws = FakeWS.last;
  ws.readyState = 1;
  ws.onopen && ws.onopen({});
  await tick();
  message(ws, OPEN);
  await tick();
  message(ws, '40{"sid":"s"}');
  await tick();
  if (!s.connected) throw new Error("not connected");
  return { s, ws };
}

const N = 20000, NB = 300, NA = 5000;
const small = Array.from({ length: N }, (_, i) => `42["flood",{"text":"hello","from":"abc","n":${i}}]`);
const bin = new Uint8Array(65536).fill(7);

/** One round of the three scenarios with `io` (globalThis.WebSocket must be FakeWS): µs per
 * small event, per 64 KiB binary event, per emit → ack round trip (1 in flight). */
export async function measure(io, clock) {
  const { s, ws } = await connect(io);
  let sum = 0;
  s.on("flood", (o) => { sum += o.n === undefined ? o.byteLength : o.n; });
  // small JSON
  let t = clock();
  for (let i = 0; i < N; i++) message(ws, small[i]);
  await null;
  if (sum === 0) throw new Error("no events");
  const smallUs = ((clock() - t) * 1000) / N;
  // binary: header + attachment; a fresh ArrayBuffer each time, as the browser gives
  const bufs = Array.from({ length: NB }, () => bin.slice().buffer);
  t = clock();
  for (let i = 0; i < NB; i++) { message(ws, '451-["flood",{"_placeholder":true,"num":0}]'); message(ws, bufs[i]); }
  await null;
  const binUs = ((clock() - t) * 1000) / NB;
  // emit -> ack, 1 in flight (microtasks let socket.io-client's transport write)
  const m = { text: "hello", from: "abc", n: 42 };
  let acks = 0;
  t = clock();
  for (let i = 0; i < NA; i++) {
    const before = ws.count;
    s.emit("echo", m, (back) => { if (back.n === 42) acks++; });
    while (ws.count === before) await null;
    const id = /^42(\d+)/.exec(ws.last)[1];
    message(ws, `43${id}[{"text":"hello","from":"abc","n":42}]`);
  }
  while (acks < NA) await null;
  const ackUs = ((clock() - t) * 1000) / NA;
  if (acks !== NA) throw new Error(`acks ${acks}`);
  s.disconnect();
  return [smallUs, binUs, ackUs];
}

/** A warm-up round of each library, then `rounds` rounds alternating their order; returns the
 * rounds' results per library, in the order given. */
export async function rounds(ios, count, clock) {
  const res = ios.map(() => []);
  for (const io of ios) await measure(io, clock);
  for (let r = 0; r < count; r++) {
    const order = ios.map((io, i) => [i, io]);
    if (r % 2) order.reverse();
    for (const [i, io] of order) res[i].push(await measure(io, clock));
  }
  return res;
}

/** One line per library: the medians [min-max] of its rounds. */
export function summary(names, res) {
  const med = (xs) => { const s = xs.slice().sort((a, b) => a - b); return s[(s.length - 1) >> 1]; };
  return names.map((name, i) => {
    const cols = [0, 1, 2].map((k) => {
      const v = res[i].map((x) => x[k]);
      return `${med(v).toFixed(2)} [${Math.min(...v).toFixed(2)}-${Math.max(...v).toFixed(2)}]`;
    });
    return `${name}: small ${cols[0]} µs | 64KiB bin ${cols[1]} µs | emit→ack ${cols[2]} µs`;
  });
}
