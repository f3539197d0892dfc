// A Node.js cluster node for the Admin UI cluster tests: a socket.io 4.8 server with
// @socket.io/redis-adapter 8.3 (classic or sharded) and instrument() from @socket.io/admin-ui 0.5
// (development mode, no authentication), plus socket.io-client clients, driven by JSON lines.
//
// Usage: node admin-cluster-node.js <redis-url> <key-prefix> <server-id> [classic|sharded]
// (sharded: createShardedAdapter, the key being the channel prefix)
// Prints {"event":"ready","port":P} once listening on 127.0.0.1 (a free port).
// Input (stdin), one JSON object per line, each with an "id" and an "op"; the answer is
// {"id":..,"ok":true,...} or {"id":..,"error":"..."}. Other output lines are events:
//   {"event":"client_event","name":N,"ev":E,"args":[..]}   an event a client received
//   {"event":"client_disconnect","name":N,"reason":R}
// Exits when stdin closes, or after 120 s.

"use strict";

const http = require("node:http");
const readline = require("node:readline");
const { createClient } = require("redis");
const { Server } = require("socket.io");
const { createAdapter, createShardedAdapter } = require("@socket.io/redis-adapter");
const { instrument } = require("@socket.io/admin-ui");
const { io: ioc } = require("socket.io-client");

setTimeout(() => process.exit(2), 120000).unref();

const [redisUrl, key, serverId, flavor = "classic"] = process.argv.slice(2);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

async function main() {
  const pub = createClient({ url: redisUrl });
  const sub = pub.duplicate();
  pub.on("error", () => {});
  sub.on("error", () => {});
  await Promise.all([pub.connect(), sub.connect()]);
  const httpServer = http.createServer();
  const adapter =
    flavor === "sharded"
      ? createShardedAdapter(pub, sub, { channelPrefix: key })
      : createAdapter(pub, sub, { key, requestsTimeout: 3000 });
  const io = new Server(httpServer, { adapter });
  io.of("/");
  instrument(io, { auth: false, mode: "development", serverId });
  await new Promise((r) => httpServer.listen(0, "127.0.0.1", r));

  const clients = new Map();
  const ops = {
    // A client of `url + nsp`: the Admin UI's own options for "/admin" (polling, then
    // WebSocket), WebSocket only otherwise.
    async client({ name, url, nsp = "/", transports }) {
      const admin = nsp.endsWith("/admin");
      const socket = ioc(url + nsp, {
        forceNew: true,
        reconnection: false,
        transports: transports || (admin ? ["polling", "websocket"] : ["websocket"]),
      });
      clients.set(name, socket);
      socket.onAny((ev, ...args) => {
        if (typeof args[args.length - 1] === "function") args.pop();
        out({ event: "client_event", name, ev, args });
      });
      socket.on("disconnect", (reason) => out({ event: "client_disconnect", name, reason }));
      await new Promise((resolve, reject) => {
        socket.once("connect", resolve);
        socket.once("connect_error", reject);
      });
      return { sid: socket.id, engine_id: socket.io.engine.id };
    },
    // What the UI sends: `emit(ev, ...args)` (undefined as null, as the UI's JSON does).
    async client_emit({ name, ev, args = [] }) {
      clients.get(name).emit(ev, ...args);
      return {};
    },
    async client_close({ name }) {
      clients.get(name).disconnect();
      return {};
    },
    // The sockets of `nsp` across the cluster as this node fetches them, data included.
    async fetch({ nsp = "/" }) {
      const sockets = await io.of(nsp).fetchSockets();
      return { sockets: sockets.map((s) => ({ id: s.id, data: s.data, rooms: [...s.rooms] })) };
    },
    // The rooms of a socket of this node.
    async rooms({ nsp = "/", sid }) {
      const s = io.of(nsp).sockets.get(sid);
      return { rooms: s ? [...s.rooms].sort() : null };
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
