#!/usr/bin/env node
// Reference oracle for the differential parser tests.
//
// Reads a JSON array of operations on stdin and writes a JSON array with one result per operation
// on stdout, computed by the real npm packages:
//   socket.io-parser 4.2.7 (Decoder, Encoder), engine.io-parser 5.2.3 (protocol v4) and the v3
//   parser that engine.io 6.6.12 ships in build/parser-v3.
//
// Encoding of values between the Rust tests and this script:
//   - input binary messages are {"bin": "<base64>"};
//   - Buffers inside decoded or encoded data are {"$bin": "<base64>"} (both directions);
//   - values JSON cannot carry are tagged: {"$num": "NaN" | "Infinity" | "-Infinity"},
//     {"$undefined": true}, and strings that are not well-formed UTF-16 (lone surrogates)
//     {"$utf16": [code units]} (object keys of that kind become "$utf16:<units joined by ,>");
//   - what is nested more than 100 levels deep is rendered {"$deep": true}.
//
// Operations (field "op"):
//   sio-decode          {msgs: [string | {bin}], maxAttachments?}
//                       -> {events: [{packet} | {error}], pending}   (stops at the first error)
//   sio-encode          {packet: {type, nsp, id?, data?}} -> {out: [string | {bin}]}
//   eio4-decodePacket   {input: string | {bin}}           -> {packet}
//   eio4-decodePayload  {input: string}                  -> {packets}
//   eio4-encodePayload  {packets: [{type, data?}]}        -> {out: string}
//   eio3-decodePacket   {input: string | {bin}}           -> {packet}
//   eio3-decodePayload  {input: string}                  -> {packets}
//   eio3-decodePayloadAsBinary {input: {bin}}             -> {packets}
//   eio3-encodePayload  {packets}                         -> {out: string}
//   eio3-encodePayloadAsBinary {packets}                  -> {out: {bin}}
// An engine packet is rendered {type, data?}; a missing type (the v3 parser can produce one) is
// null. Any exception thrown by an operation is reported as {exception: message}.

"use strict";

const path = require("path");

const base = path.join(__dirname, "node_modules");
const sio = require(path.join(base, "socket.io-parser"));
const eio4 = require(path.join(base, "engine.io-parser"));
const eio3 = require(path.join(base, "engine.io", "build", "parser-v3"));

function isWellFormed(s) {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (!(d >= 0xdc00 && d <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return false;
    }
  }
  return true;
}

function units(s) {
  const out = [];
  for (let i = 0; i < s.length; i++) out.push(s.charCodeAt(i));
  return out;
}

// Values nested deeper than this are rendered {"$deep": true}, so that the results stay readable
// by parsers with a nesting limit.
const MAX_DEPTH = 100;

// A JSON-safe copy of a decoded JavaScript value (see the header for the tags).
function render(v, depth = 0) {
  if (depth > MAX_DEPTH) return { $deep: true };
  if (v === undefined) return { $undefined: true };
  if (v === null || typeof v === "boolean") return v;
  if (typeof v === "number") return Number.isFinite(v) ? v : { $num: String(v) };
  if (typeof v === "string") return isWellFormed(v) ? v : { $utf16: units(v) };
  if (Buffer.isBuffer(v)) return { $bin: v.toString("base64") };
  if (v instanceof ArrayBuffer) return { $bin: Buffer.from(v).toString("base64") };
  if (ArrayBuffer.isView(v)) {
    return { $bin: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64") };
  }
  if (Array.isArray(v)) {
    const out = [];
    for (let i = 0; i < v.length; i++) out.push(render(v[i], depth + 1));
    return out;
  }
  if (typeof v === "object") {
    // A prototype-less object, so that an own "__proto__" key stays an ordinary key.
    const out = Object.create(null);
    for (const key of Object.keys(v)) {
      const k = isWellFormed(key) ? key : "$utf16:" + units(key).join(",");
      out[k] = render(v[key], depth + 1);
    }
    return out;
  }
  return { $unsupported: String(v) };
}

// Builds a JavaScript value from JSON, {"$bin": ...} becoming a Buffer.
function build(v) {
  if (Array.isArray(v)) return v.map(build);
  if (v !== null && typeof v === "object") {
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === "$bin") return Buffer.from(v.$bin, "base64");
    const out = {};
    for (const key of keys) {
      Object.defineProperty(out, key, {
        value: build(v[key]),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }
  return v;
}

function message(m) {
  if (typeof m === "string") return m;
  return Buffer.from(m.bin, "base64");
}

function renderOut(m) {
  if (m === undefined) return null; // an encoder that never called back (v4, no packets)
  if (typeof m === "string") return isWellFormed(m) ? m : { $utf16: units(m) };
  return { bin: Buffer.from(m.buffer, m.byteOffset, m.byteLength).toString("base64") };
}

function renderSioPacket(p) {
  const out = { type: p.type, nsp: render(p.nsp) };
  if ("id" in p) out.id = render(p.id);
  if ("data" in p) out.data = render(p.data);
  if ("attachments" in p) out.attachments = render(p.attachments);
  return out;
}

function renderEnginePacket(p) {
  const out = { type: p.type === undefined ? null : p.type };
  if ("data" in p) out.data = render(p.data);
  return out;
}

function buildEnginePacket(p) {
  const out = { type: p.type };
  if ("data" in p) out.data = build(p.data);
  return out;
}

function sioDecode(op) {
  const opts = op.maxAttachments === undefined ? {} : { maxAttachments: op.maxAttachments };
  const decoder = new sio.Decoder(opts);
  const events = [];
  decoder.on("decoded", (p) => events.push({ packet: renderSioPacket(p) }));
  for (const m of op.msgs) {
    try {
      decoder.add(message(m));
    } catch (e) {
      events.push({ error: String(e && e.message) });
      break;
    }
  }
  return { events, pending: Boolean(decoder.reconstructor) };
}

function sioEncode(op) {
  const p = op.packet;
  const packet = { type: p.type, nsp: p.nsp };
  if ("id" in p) packet.id = p.id;
  if ("data" in p) packet.data = build(p.data);
  const encoder = new sio.Encoder();
  return { out: encoder.encode(packet).map(renderOut) };
}

function collect(fn) {
  const packets = [];
  fn((packet) => {
    packets.push(renderEnginePacket(packet));
  });
  return packets;
}

const ops = {
  "sio-decode": sioDecode,
  "sio-encode": sioEncode,
  "eio4-decodePacket": (op) => ({
    packet: renderEnginePacket(eio4.decodePacket(message(op.input), "nodebuffer")),
  }),
  "eio4-decodePayload": (op) => ({
    packets: eio4.decodePayload(op.input, "nodebuffer").map(renderEnginePacket),
  }),
  "eio4-encodePayload": (op) => {
    let out;
    eio4.encodePayload(op.packets.map(buildEnginePacket), (s) => (out = s));
    return { out: renderOut(out) };
  },
  "eio3-decodePacket": (op) => ({
    packet: renderEnginePacket(eio3.decodePacket(message(op.input), undefined, false)),
  }),
  "eio3-decodePayload": (op) => ({
    packets: collect((cb) => eio3.decodePayload(op.input, cb)),
  }),
  "eio3-decodePayloadAsBinary": (op) => ({
    packets: collect((cb) => eio3.decodePayloadAsBinary(message(op.input), cb)),
  }),
  "eio3-encodePayload": (op) => {
    let out;
    eio3.encodePayload(op.packets.map(buildEnginePacket), false, (s) => (out = s));
    return { out: renderOut(out) };
  },
  "eio3-encodePayloadAsBinary": (op) => {
    let out;
    eio3.encodePayloadAsBinary(op.packets.map(buildEnginePacket), (b) => (out = b));
    return { out: renderOut(out) };
  },
};

function run(op) {
  const fn = ops[op.op];
  if (!fn) return { exception: "unknown op " + op.op };
  try {
    return fn(op);
  } catch (e) {
    return { exception: String(e && e.stack) };
  }
}

const chunks = [];
process.stdin.on("data", (c) => chunks.push(c));
process.stdin.on("end", () => {
  const input = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const results = input.map(run);
  process.stdout.write(JSON.stringify(results));
});
