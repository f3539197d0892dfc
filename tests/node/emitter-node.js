// A Node.js cluster node for the emitter tests, on the streams adapter: a socket.io 4.8 server
// with @socket.io/redis-streams-adapter 0.3.1 (stream name and channel prefix = <key>, spread
// over <stream-count> streams, default 1), plus
// socket.io-client clients, driven by JSON lines (the protocol of redis-node.js, in part).
//
// Usage: node emitter-node.js <redis-url> <key> [<stream-count>]
// Prints {"event":"ready","port":P} once listening on 127.0.0.1 (a free port).
// Input (stdin), one JSON object per line with an "id" and an "op" (client, client_emit,
// server_count); the answer is {"id":..,"ok":true,...} or {"id":..,"error":"..."}. Events:
//   {"event":"client_event","name":N,"ev":E,"args":[..]}   an event a client received
//   {"event":"client_disconnect","name":N,"reason":R}
//   {"event":"server_event","nsp":NSP,"ev":E,"args":[..]}  a server-side event this node got
// Binary travels as {"$bin":"<hex>"}. Exits when stdin closes, or after 120 s.

"use strict";

const http = require("node:http");
const readline = require("node:readline");
const { createClient } = require("redis");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-streams-adapter");
const { io: ioc } = require("socket.io-client");

setTimeout(() => process.exit(2), 120000).unref();

const [redisUrl, key, streamCount = "1"] = process.argv.slice(2);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

function toWire(v) {
  if (Buffer.isBuffer(v)) return { $bin: v.toString("hex") };
  if (v instanceof ArrayBuffer) return { $bin: Buffer.from(v).toString("hex") };
  if (ArrayBuffer.isView(v)) return { $bin: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("hex") };
  if (Array.isArray(v)) return v.map(toWire);
  if (v && typeof v === "object") {
    const o = {};
    for (const [k, x] of Object.entries(v)) o[k] = toWire(x);
    return o;
  }
  return v;
}

function setupNamespace(nsp) {
  nsp.on("connection", (socket) => {
    socket.on("join", (room, ack) => {
      socket.join(room);
      if (typeof ack === "function") ack("ok");
    });
  });
  nsp.on("srv", (...args) => {
    const cb = typeof args[args.length - 1] === "function" ? args.pop() : null;
    out({ event: "server_event", nsp: nsp.name, ev: "srv", args: toWire(args) });
    if (cb) cb("pong-from-node");
  });
}

async function main() {
  const client = createClient({ url: redisUrl });
  client.on("error", () => {});
  await client.connect();
  const httpServer = http.createServer();
  const adapter = createAdapter(client, {
    streamName: key,
    channelPrefix: key,
    streamCount: Number(streamCount),
  });
  const io = new Server(httpServer, { adapter });
  setupNamespace(io.of("/"));
  setupNamespace(io.of("/chat"));
  // A namespace whose stream index is negative with 3 streams (hashCode % 3 = -2).
  setupNamespace(io.of("/notifications"));
  await new Promise((r) => httpServer.listen(0, "127.0.0.1", r));

  const clients = new Map();
  const ops = {
    async client({ name, url, nsp = "/", transports = ["websocket"] }) {
      const socket = ioc(url + nsp, { forceNew: true, reconnection: false, transports, auth: { name } });
      clients.set(name, socket);
      socket.onAny((ev, ...args) => {
        const cb = typeof args[args.length - 1] === "function" ? args.pop() : null;
        out({ event: "client_event", name, ev, args: toWire(args) });
        if (cb) cb({ from: name });
      });
      socket.on("disconnect", (reason) => out({ event: "client_disconnect", name, reason }));
      await new Promise((resolve, reject) => {
        socket.once("connect", resolve);
        socket.once("connect_error", reject);
      });
      return { sid: socket.id };
    },
    async client_emit({ name, ev, args = [], ack = false }) {
      const socket = clients.get(name);
      if (ack) return { ack: toWire(await socket.timeout(3000).emitWithAck(ev, ...args)) };
      socket.emit(ev, ...args);
      return {};
    },
    async server_count({ nsp = "/" }) {
      return { count: await io.of(nsp).adapter.serverCount() };
    },
  };

  out({ event: "ready", port: httpServer.address().port });
  const rl = readline.createInterface({ input: process.stdin });
  rl.on("line", async (line) => {
    let req;
    try {
      req = JSON.parse(line);
    } catch {
      return;
    }
    try {
      const result = await ops[req.op](req);
      out({ id: req.id, ok: true, ...result });
    } catch (e) {
      out({ id: req.id, error: String((e && e.message) || e) });
    }
  });
  rl.on("close", () => process.exit(0));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
