#!/usr/bin/env node
// Reference oracle for the msgpack parser's differential tests: socket.io-msgpack-parser 3.0.2
// (notepack.io 2.2 underneath).
//
// Reads a JSON array of operations on stdin and writes a JSON array with one result per operation
// on stdout:
//   {op: "decode", hex}  -> {packet} or {error}: the frame given to the parser's Decoder
//   {op: "encode", hex}  -> {hex}: the frame decoded by notepack.io, then encoded again by the
//                          parser's Encoder (the same object, so the same key order)
// A decoded packet is rendered as JSON: {type, nsp, id?, data?} with Buffers and ArrayBuffers as
// {"$bin": "<base64>"}, Dates as their ISO string, and the rest as JSON.stringify writes it
// (undefined members left out, undefined array items, NaN and infinities as null).

"use strict";

const path = require("node:path");
const parser = require("socket.io-msgpack-parser");
// The notepack.io the parser itself uses (2.2), not another version installed beside it.
const notepack = require(
  require.resolve("notepack.io", { paths: [path.dirname(require.resolve("socket.io-msgpack-parser"))] })
);

function render(value) {
  if (value === undefined) return undefined;
  if (value === null) return null;
  if (Buffer.isBuffer(value)) return { $bin: value.toString("base64") };
  if (value instanceof ArrayBuffer) return { $bin: Buffer.from(value).toString("base64") };
  if (value instanceof Date) return isNaN(value.getTime()) ? null : value.toISOString();
  if (typeof value === "number") return isFinite(value) ? value : null;
  if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : render(v)));
  if (typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) {
      if (v !== undefined) out[k] = render(v);
    }
    return out;
  }
  return value;
}

function decode(hex) {
  const decoder = new parser.Decoder();
  let packet = null;
  decoder.on("decoded", (p) => (packet = p));
  try {
    decoder.add(Buffer.from(hex, "hex"));
  } catch (e) {
    return { error: String(e && e.message) };
  }
  const out = { type: packet.type, nsp: packet.nsp };
  if (packet.id !== undefined) out.id = packet.id;
  if (packet.data !== undefined) out.data = render(packet.data);
  return { packet: out };
}

function encode(hex) {
  const object = notepack.decode(Buffer.from(hex, "hex"));
  const frames = new parser.Encoder().encode(object);
  return { hex: Buffer.from(frames[0]).toString("hex") };
}

let input = "";
process.stdin.on("data", (c) => (input += c));
process.stdin.on("end", () => {
  const ops = JSON.parse(input);
  const results = ops.map((op) => {
    try {
      if (op.op === "decode") return decode(op.hex);
      if (op.op === "encode") return encode(op.hex);
      return { exception: `unknown op ${op.op}` };
    } catch (e) {
      return { exception: String(e && e.message) };
    }
  });
  process.stdout.write(JSON.stringify(results));
});
