// A Node.js node of a Socket.IO cluster on a Redis Cluster: a socket.io 4.8 server with
// createShardedAdapter of @socket.io/redis-adapter 8.3 on a node-redis 4.7 cluster client
// (createCluster), and one socket.io-client client of its own, driven by JSON lines.
//
// Usage: node sharded-cluster-node.js <channel-prefix> <redis-url>...
// The server joins every socket to the rooms listed in ROOMS, answers the server-side event
// "ping" with "pong-from-node". The client answers "ask" (n) with "node-<n>".
// Prints {"event":"ready","port":P} once listening on 127.0.0.1 (a free port) with its client
// connected. Events the client receives: {"event":"client_event","ev":E,"args":[..]}.
// Input (stdin), one JSON object per line with an "id" and an "op"; the answer is
// {"id":..,"ok":true,...} or {"id":..,"error":"..."}:
//   {"op":"emit","ev":E,"args":[..],"room"?:R}        broadcast (to a room)
//   {"op":"emit_ack","ev":E,"args":[..],"timeout":MS}  broadcast with ack -> "acks"
//   {"op":"server_count"} -> "count"     {"op":"fetch_sockets"} -> "sockets":[{id,rooms}]
//   {"op":"sse_ack","ev":E,"args":[..]} -> "answers"
// Exits when stdin closes, or after 120 s.

"use strict";

const http = require("node:http");
const readline = require("node:readline");
const { createCluster } = require("redis");
const { Server } = require("socket.io");
const { createShardedAdapter } = require("@socket.io/redis-adapter");
const { io: ioc } = require("socket.io-client");

setTimeout(() => process.exit(2), 120000).unref();

const ROOMS = ["red", "green", "blue", "amber", "violet", "teal"];
const [prefix, ...urls] = process.argv.slice(2);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

async function main() {
  const pubClient = createCluster({ rootNodes: urls.map((url) => ({ url })) });
  const subClient = pubClient.duplicate();
  await Promise.all([pubClient.connect(), subClient.connect()]);

  const httpServer = http.createServer();
  const io = new Server(httpServer, {
    adapter: createShardedAdapter(pubClient, subClient, { channelPrefix: prefix }),
  });
  io.on("connection", (socket) => {
    socket.join(ROOMS);
  });
  io.on("ping", (...args) => {
    const cb = typeof args[args.length - 1] === "function" ? args.pop() : null;
    if (cb) cb("pong-from-node");
  });
  await new Promise((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
  const port = httpServer.address().port;

  const client = ioc(`http://127.0.0.1:${port}/`, { transports: ["websocket"] });
  client.onAny((ev, ...args) => out({ event: "client_event", ev, args }));
  client.on("ask", (n, cb) => cb(`node-${n}`));
  await new Promise((resolve) => client.on("connect", resolve));
  out({ event: "ready", port });

  const rl = readline.createInterface({ input: process.stdin });
  rl.on("line", async (line) => {
    let req;
    try {
      req = JSON.parse(line);
    } catch (e) {
      return;
    }
    try {
      const answer = await handle(io, req);
      out({ id: req.id, ok: true, ...answer });
    } catch (e) {
      out({ id: req.id, error: String((e && e.message) || e) });
    }
  });
  rl.on("close", async () => {
    client.close();
    io.close();
    await Promise.allSettled([pubClient.quit(), subClient.quit()]);
    process.exit(0);
  });
}

async function handle(io, req) {
  const args = req.args || [];
  switch (req.op) {
    case "emit":
      (req.room ? io.to(req.room) : io).emit(req.ev, ...args);
      return {};
    case "emit_ack":
      return { acks: await io.timeout(req.timeout || 5000).emitWithAck(req.ev, ...args) };
    case "server_count":
      return { count: await io.of("/").adapter.serverCount() };
    case "fetch_sockets": {
      const sockets = await io.fetchSockets();
      return { sockets: sockets.map((s) => ({ id: s.id, rooms: [...s.rooms] })) };
    }
    case "sse_ack":
      return { answers: await io.serverSideEmitWithAck(req.ev, ...args) };
    default:
      throw new Error(`unknown op ${req.op}`);
  }
}

main().catch((e) => {
  out({ event: "fatal", error: String((e && e.stack) || e) });
  process.exit(1);
});
