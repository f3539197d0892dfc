// Node's socket.io-parser (with engine.io-parser for the Engine.IO `4` message prefix) on the
// payloads of Ferrio's crates/ferrio-proto/benches/codec.rs: a typical event and a binary event
// with a 1 KiB attachment, decoded from and encoded to WebSocket frames.
//
// Run from bench/node (after `npm ci`): node parser-bench.js
// Prints one line per benchmark: name, median ns per operation over BATCHES timed batches.
"use strict";

const assert = require("node:assert");
const fs = require("node:fs");
const { Encoder, Decoder, PacketType } = require("socket.io-parser");
const { encodePacket, decodePacket } = require("engine.io-parser");

const EVENT_FRAME = '42["message",{"text":"hello","from":"abc","n":42}]';
const BINARY_FRAME = '451-["file",{"_placeholder":true,"num":0}]';
const ATTACHMENT = Buffer.from(Array.from({ length: 1024 }, (_, i) => i & 0xff));

const WARMUP_MS = Number(process.env.WARMUP_MS || 1000);
const BATCH_MS = Number(process.env.BATCH_MS || 200);
const BATCHES = Number(process.env.BATCHES || 15);

let sink; // keeps results alive so the loops are not optimised away

// One server-side decoder, reused as socket.io reuses one per connection; "decoded" stores the packet.
let decoded = null;
const decoder = new Decoder();
decoder.on("decoded", (packet) => {
  decoded = packet;
});
const encoder = new Encoder();

// One incoming WebSocket frame (string or Buffer) through engine.io-parser and socket.io-parser.
function decodeFrame(frame) {
  const eio = decodePacket(frame, "nodebuffer");
  decoder.add(eio.data);
}

// One packet through socket.io-parser's encoder, each part into an Engine.IO frame (as
// engine.io's WebSocket transport does before sending).
function encode(packet) {
  const frames = [];
  for (const part of encoder.encode(packet)) {
    encodePacket({ type: "message", data: part }, true, (f) => frames.push(f));
  }
  return frames;
}

const benches = {
  "event/decode": () => {
    decoded = null;
    decodeFrame(EVENT_FRAME);
    return decoded;
  },
  "event/encode": () =>
    encode({
      type: PacketType.EVENT,
      nsp: "/",
      data: ["message", { text: "hello", from: "abc", n: 42 }],
    }),
  "binary_event_1k/decode": () => {
    decoded = null;
    decodeFrame(BINARY_FRAME);
    if (decoded !== null) throw new Error("completed without its attachment");
    decodeFrame(ATTACHMENT);
    return decoded;
  },
  "binary_event_1k/encode": () =>
    encode({ type: PacketType.EVENT, nsp: "/", data: ["file", ATTACHMENT] }),
};

// Sanity: the frames are the ones Ferrio's benchmarks use, and decode back to the data.
assert.deepStrictEqual(benches["event/encode"](), [EVENT_FRAME]);
assert.deepStrictEqual(benches["binary_event_1k/encode"](), [BINARY_FRAME, ATTACHMENT]);
assert.deepStrictEqual(benches["event/decode"]().data, [
  "message",
  { text: "hello", from: "abc", n: 42 },
]);
const bin = benches["binary_event_1k/decode"]();
assert.strictEqual(bin.type, PacketType.EVENT); // socket.io-parser reports the rebuilt packet as an EVENT
assert.deepStrictEqual(bin.data, ["file", ATTACHMENT]);

function timeLoop(fn, iterations) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) sink = fn();
  return Number(process.hrtime.bigint() - start);
}

function run(name, fn) {
  // Warm-up, which also sizes a batch to about BATCH_MS.
  let iterations = 1000;
  const warmEnd = process.hrtime.bigint() + BigInt(WARMUP_MS) * 1000000n;
  let perOp = Infinity;
  while (process.hrtime.bigint() < warmEnd) {
    perOp = timeLoop(fn, iterations) / iterations;
  }
  iterations = Math.max(1000, Math.round((BATCH_MS * 1e6) / perOp));
  const samples = [];
  for (let b = 0; b < BATCHES; b++) samples.push(timeLoop(fn, iterations) / iterations);
  samples.sort((a, b) => a - b);
  const median = samples[Math.floor(samples.length / 2)];
  console.log(
    `${name}\t${median.toFixed(1)} ns\t(min ${samples[0].toFixed(1)}, max ${samples[samples.length - 1].toFixed(1)}, ${BATCHES} batches of ${iterations})`,
  );
}

const version = (name) =>
  JSON.parse(fs.readFileSync(`${__dirname}/node_modules/${name}/package.json`)).version;
console.log(
  `node ${process.version}, socket.io-parser ${version("socket.io-parser")}, engine.io-parser ${version("engine.io-parser")}`,
);
for (const [name, fn] of Object.entries(benches)) run(name, fn);
if (sink === undefined) console.log("");
