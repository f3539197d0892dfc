// A Node.js cluster node for the Redis adapter tests: a socket.io 4.8 server with
// @socket.io/redis-adapter 8.3, plus socket.io-client clients, driven by JSON lines.
//
// Usage: node redis-node.js <redis-url> <key-prefix> [classic|sharded|streams] [mode]
// (sharded: createShardedAdapter, the key being the channel prefix, in subscription mode
// dynamic|static|dynamic-private; streams: @socket.io/redis-streams-adapter 0.3 with the key as
// stream name and channel prefix, maxLen 10000, and, if mode is a number of milliseconds above 0,
// connection state recovery with that maxDisconnectionDuration)
// Prints {"event":"ready","port":P} once listening on 127.0.0.1 (a free port).
// Input (stdin), one JSON object per line, each with an "id" and an "op"; the answer is
// {"id":..,"ok":true,...} or {"id":..,"error":"..."}. Other output lines are events:
//   {"event":"client_event","name":N,"ev":E,"args":[..]}   an event a client received
//   {"event":"client_disconnect","name":N,"reason":R}
//   {"event":"server_event","nsp":NSP,"ev":E,"args":[..]}  a server-side event this node got
// Binary travels as {"$bin":"<hex>"} both ways. Clients answer every ack request with
// {"from": <client name>, "args": <the event's arguments>}. Exits when stdin closes, or after 120 s.

"use strict";

const http = require("node:http");
const readline = require("node:readline");
const { createClient } = require("redis");
const { Server } = require("socket.io");
const { createAdapter, createShardedAdapter } = require("@socket.io/redis-adapter");
const { createAdapter: createStreamsAdapter } = require("@socket.io/redis-streams-adapter");
const { io: ioc } = require("socket.io-client");

setTimeout(() => process.exit(2), 120000).unref();

const [redisUrl, key, flavor = "classic", mode = "dynamic"] = process.argv.slice(2);
const subscriptionMode = mode;
const recoveryMs = flavor === "streams" ? Number(mode) || 0 : 0;
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

function fromWire(v) {
  if (Array.isArray(v)) return v.map(fromWire);
  if (v && typeof v === "object") {
    if (typeof v.$bin === "string") return Buffer.from(v.$bin, "hex");
    const o = {};
    for (const [k, x] of Object.entries(v)) o[k] = fromWire(x);
    return o;
  }
  return v;
}

function setupNamespace(nsp) {
  nsp.on("connection", (socket) => {
    // A recovered socket has its data back.
    if (!socket.recovered) socket.data = { lang: "node", name: (socket.handshake.auth || {}).name };
    socket.on("set-data", (value, ack) => {
      socket.data = value;
      if (typeof ack === "function") ack();
    });
    socket.on("whoami", (ack) => ack({ id: socket.id, recovered: socket.recovered, rooms: [...socket.rooms].sort() }));
    socket.on("join", (room, ack) => {
      socket.join(room);
      if (typeof ack === "function") ack("ok");
    });
    // As the e2e test server: to every other socket (of the cluster), then an empty ack.
    socket.on("broadcast", (...args) => {
      const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
      socket.broadcast.emit("broadcast", ...args);
      if (ack) ack();
    });
  });
  nsp.on("srv", (...args) => {
    const cb = typeof args[args.length - 1] === "function" ? args.pop() : null;
    out({ event: "server_event", nsp: nsp.name, ev: "srv", args: toWire(args) });
    if (cb) cb("pong-from-node");
  });
}

async function main() {
  const pub = createClient({ url: redisUrl });
  const sub = pub.duplicate();
  pub.on("error", () => {});
  sub.on("error", () => {});
  await Promise.all([pub.connect(), sub.connect()]);
  const httpServer = http.createServer();
  const adapter =
    flavor === "sharded"
      ? createShardedAdapter(pub, sub, { channelPrefix: key, subscriptionMode })
      : flavor === "streams"
        ? createStreamsAdapter(pub, { streamName: key, channelPrefix: key, maxLen: 10000 })
        : createAdapter(pub, sub, { key, requestsTimeout: 3000 });
  const options = { adapter };
  if (recoveryMs > 0) {
    options.connectionStateRecovery = { maxDisconnectionDuration: recoveryMs, skipMiddlewares: true };
  }
  const io = new Server(httpServer, options);
  setupNamespace(io.of("/"));
  setupNamespace(io.of("/chat"));
  await new Promise((r) => httpServer.listen(0, "127.0.0.1", r));

  const clients = new Map();
  // Connects a client; `from` (another client's name) hands over its recovery state (private id
  // and last offset), as if that client reconnected to `url`.
  async function connectClient({ name, url, nsp = "/", auth = {}, transports = ["websocket"], from }) {
    const socket = ioc(url + nsp, {
      forceNew: true,
      reconnection: false,
      autoConnect: false,
      transports,
      auth: { name, ...auth },
    });
    if (from) {
      const old = clients.get(from);
      socket._pid = old._pid;
      socket._lastOffset = old._lastOffset;
    }
    clients.set(name, socket);
    socket.onAny((ev, ...args) => {
      const cb = typeof args[args.length - 1] === "function" ? args.pop() : null;
      out({ event: "client_event", name, ev, args: toWire(args) });
      if (cb) cb({ from: name, args });
    });
    socket.on("disconnect", (reason) => out({ event: "client_disconnect", name, reason }));
    await new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", reject);
      socket.connect();
    });
    return { sid: socket.id, pid: socket._pid || null, recovered: !!socket.recovered };
  }
  const ops = {
    async client(req) {
      return connectClient(req);
    },
    // Another connection for client `from`, to `url`, presenting its recovery state.
    async client_reconnect(req) {
      return connectClient(req);
    },
    // Cuts the client's transport without a clean disconnect ("transport close" on both sides).
    async client_cut({ name }) {
      clients.get(name).io.engine.close();
      return {};
    },
    async client_emit({ name, ev, args = [], ack = false }) {
      const socket = clients.get(name);
      if (ack) return { ack: toWire(await socket.timeout(3000).emitWithAck(ev, ...fromWire(args))) };
      socket.emit(ev, ...fromWire(args));
      return {};
    },
    async client_close({ name }) {
      clients.get(name).disconnect();
      return {};
    },
    async emit({ nsp = "/", rooms = [], except = [], ev, args = [], ack_timeout }) {
      let op = io.of(nsp).to(rooms).except(except);
      if (ack_timeout) {
        const acks = await op.timeout(ack_timeout).emitWithAck(ev, ...fromWire(args));
        return { acks: toWire(acks) };
      }
      op.emit(ev, ...fromWire(args));
      return {};
    },
    async fetch({ nsp = "/", rooms = [] }) {
      const sockets = await io.of(nsp).in(rooms).fetchSockets();
      return {
        sockets: sockets.map((s) => ({
          id: s.id,
          rooms: [...s.rooms].sort(),
          data: s.data,
          address: s.handshake.address,
          auth: s.handshake.auth,
          url: s.handshake.url,
          query: s.handshake.query,
        })),
      };
    },
    async remote({ nsp = "/", sid, action, ev, args = [], room, close = false }) {
      const sockets = await io.of(nsp).fetchSockets();
      const s = sockets.find((x) => x.id === sid);
      if (!s) throw new Error(`no socket ${sid}`);
      if (action === "emit") s.emit(ev, ...fromWire(args));
      else if (action === "join") s.join(room);
      else if (action === "leave") s.leave(room);
      else if (action === "disconnect") s.disconnect(close);
      return {};
    },
    async sockets_join({ nsp = "/", rooms = [], room }) {
      io.of(nsp).in(rooms).socketsJoin(room);
      return {};
    },
    async sockets_leave({ nsp = "/", rooms = [], room }) {
      io.of(nsp).in(rooms).socketsLeave(room);
      return {};
    },
    async disconnect_sockets({ nsp = "/", rooms = [], close = false }) {
      io.of(nsp).in(rooms).disconnectSockets(close);
      return {};
    },
    async sse({ nsp = "/", ev, args = [] }) {
      io.of(nsp).serverSideEmit(ev, ...fromWire(args));
      return {};
    },
    async sse_ack({ nsp = "/", ev, args = [] }) {
      try {
        const responses = await io.of(nsp).serverSideEmitWithAck(ev, ...fromWire(args));
        return { responses };
      } catch (e) {
        return { failed: e.message };
      }
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
