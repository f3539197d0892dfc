// Script cost per event of the client libraries in V8 (Node), without a network: a fake
// WebSocket hands each library the frames the server would send, synchronously, and the
// process's CPU time is read around each scenario (script-cost-harness.mjs). Run by
// script-cost.sh (see README.md):
//   node script-cost.mjs ROUNDS LIB...   (LIB: a directory with ferrio.js, or an .mjs bundle)
import { readFile } from "node:fs/promises";
import { FakeWS, rounds, summary } from "./script-cost-harness.mjs";

const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const origFetch = globalThis.fetch;
globalThis.fetch = async (u) => {
  const url = new URL(u);
  if (url.protocol !== "file:") return origFetch(u);
  const b = await readFile(url);
  return { ok: true, status: 200, arrayBuffer: async () => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) };
};
globalThis.WebSocket = FakeWS;

const [count, ...libs] = process.argv.slice(2);
const ios = [];
for (const l of libs) ios.push((await import(/\.m?js$/.test(l) ? l : `${l}/ferrio.js`)).io);
const res = await rounds(ios, Number(count), cpu);
for (const line of summary(libs.map((l) => l.split("/").slice(-2).join("/")), res)) console.log(line);
