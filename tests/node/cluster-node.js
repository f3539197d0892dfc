// The cluster node in Node.js: the twin of ferrio-redis's `examples/cluster`, a socket.io 4.8
// server joined to a cluster through Redis, with the same endpoints and handlers.
//
// Usage: node cluster-node.js --port P --redis URL [--adapter classic|sharded|streams] [--key K]
// (no --adapter: the CLUSTER_ADAPTER environment variable, else classic; K, the channel prefix
// and stream name, defaults to socket.io). Serves 127.0.0.1:P until SIGTERM.
//
// | mode    | adapter                                                                          |
// | classic | @socket.io/redis-adapter createAdapter, key K                                    |
// | sharded | @socket.io/redis-adapter createShardedAdapter, channelPrefix K, mode dynamic      |
// | streams | @socket.io/redis-streams-adapter, streamName K, channelPrefix K, maxLen 10000     |
//
// Endpoints:
// - /socket.io/: namespaces / and /custom, default heartbeat (25 s / 20 s), connect timeout
//   1000 ms, CORS for any origin, no connection state recovery;
// - /recovery/ (streams mode only): namespace /, connection state recovery with a 5000 ms window,
//   through its own streams adapter (stream and channel prefix "<K>-recovery").
// Every namespace has the e2e test server's standard handler set and the cluster handlers
// (broadcast-with-ack, fetch-sockets, server-side-emit, server-side-emit-with-ack, and the
// server-side events server-side and server-side-ack).

"use strict";

const http = require("node:http");
const { createClient } = require("redis");
const { Server } = require("socket.io");

function option(name) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const port = Number(option("--port") || 3000);
const redisUrl = option("--redis") || "redis://127.0.0.1:6379/";
const key = option("--key") || "socket.io";
const mode = option("--adapter") || process.env.CLUSTER_ADAPTER || "classic";

/// The ack callback at the end of `args`, removed from it (null when the client asked none).
function popAck(args) {
  return typeof args[args.length - 1] === "function" ? args.pop() : null;
}

/// The socket's rooms, sorted, without its own id room.
function roomsOf(socket) {
  return [...socket.rooms].filter((r) => r !== socket.id).sort();
}

function isEmptyObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !Buffer.isBuffer(v) && Object.keys(v).length === 0;
}

/// A socket's data as reported: null when none was stored (the default {} means none).
function reportedData(data) {
  return data === undefined || data === null || isEmptyObject(data) ? null : data;
}

const DATA_STORED = Symbol("data stored");

function standardHandlers(nsp) {
  nsp.on("connection", (socket) => {
    socket.emit("auth", socket.handshake.auth || {});

    socket.on("message", (...args) => {
      popAck(args);
      socket.emit("message-back", ...args);
    });
    socket.on("message-with-ack", (...args) => {
      const ack = popAck(args);
      if (ack) ack(...args);
    });
    socket.on("emit-with-ack", (...args) => {
      popAck(args);
      socket.emit("emit-with-ack", ...args, (...reply) => socket.emit("emit-with-ack", ...reply));
    });
    socket.on("ask-client", (...args) => {
      const ack = popAck(args);
      const [payload, timeoutMs] = args;
      socket.timeout(Math.max(0, Number(timeoutMs) || 0)).emit("ask", payload, (err, ...reply) => {
        if (ack) ack(err ? { ok: false } : { ok: true, reply });
      });
    });
    socket.on("whoami", (...args) => {
      const ack = popAck(args);
      if (ack)
        ack({
          id: socket.id,
          nsp: nsp.name,
          engineId: socket.conn.id,
          transport: socket.conn.transport.name,
          rooms: roomsOf(socket),
          auth: socket.handshake.auth || {},
          recovered: socket.recovered,
        });
    });
    socket.on("join", (...args) => {
      const ack = popAck(args);
      socket.join(String(args[0]));
      if (ack) ack(roomsOf(socket));
    });
    socket.on("leave", (...args) => {
      const ack = popAck(args);
      socket.leave(String(args[0]));
      if (ack) ack(roomsOf(socket));
    });
    socket.on("room-emit", (...args) => {
      const ack = popAck(args);
      const [room, ...rest] = args;
      socket.to(String(room)).emit("room-emit", ...rest);
      if (ack) ack();
    });
    socket.on("broadcast", (...args) => {
      const ack = popAck(args);
      socket.broadcast.emit("broadcast", ...args);
      if (ack) ack();
    });
    socket.on("disconnect-me", (...args) => {
      popAck(args);
      socket.disconnect(args[0] === true);
    });
    socket.on("set-data", (...args) => {
      const ack = popAck(args);
      socket.data = args.length > 0 ? args[0] : null;
      socket[DATA_STORED] = true;
      if (ack) ack();
    });
    socket.on("get-data", (...args) => {
      const ack = popAck(args);
      const stored = socket[DATA_STORED] || (socket.recovered && reportedData(socket.data) !== null);
      if (ack) ack(stored && socket.data !== undefined ? socket.data : null);
    });
    socket.on("disconnecting", (reason) => {
      nsp.to("observers").except(socket.id).emit("peer-disconnecting", { id: socket.id, reason, rooms: roomsOf(socket) });
    });
    socket.on("disconnect", (reason) => {
      nsp.to("observers").emit("peer-disconnect", { id: socket.id, reason });
    });
  });
}

function clusterHandlers(nsp) {
  nsp.on("connection", (socket) => {
    socket.on("broadcast-with-ack", (...args) => {
      const ack = popAck(args);
      const [timeoutMs, room, ...rest] = args;
      const operator = room === null || room === undefined ? socket.broadcast : socket.to(String(room));
      operator.timeout(Math.max(0, Number(timeoutMs) || 0)).emit("ask", ...rest, (err, replies) => {
        if (ack) ack({ ok: !err, replies: replies || [] });
      });
    });
    socket.on("fetch-sockets", async (...args) => {
      const ack = popAck(args);
      const room = args[0];
      try {
        const operator = room === null || room === undefined ? nsp : nsp.in(String(room));
        const sockets = await operator.fetchSockets();
        const list = sockets
          .map((s) => ({ id: s.id, rooms: [...s.rooms].filter((r) => r !== s.id).sort(), data: reportedData(s.data) }))
          .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
        if (ack) ack(list);
      } catch (e) {
        if (ack) ack({ error: String((e && e.message) || e) });
      }
    });
    socket.on("server-side-emit", (...args) => {
      const ack = popAck(args);
      nsp.serverSideEmit("server-side", ...args);
      if (ack) ack();
    });
    socket.on("server-side-emit-with-ack", (...args) => {
      const ack = popAck(args);
      nsp.serverSideEmit("server-side-ack", ...args, (err, replies) => {
        if (!ack) return;
        if (err) ack({ ok: false, replies: replies || [], error: String(err.message || err) });
        else ack({ ok: true, replies });
      });
    });
  });
  nsp.on("server-side", (...args) => {
    popAck(args);
    nsp.local.emit("server-side", ...args);
  });
  nsp.on("server-side-ack", (...args) => {
    const ack = popAck(args);
    if (ack) ack({ sockets: [...nsp.sockets.keys()].sort() });
  });
}

function allHandlers(nsp) {
  standardHandlers(nsp);
  clusterHandlers(nsp);
}

async function adapterFor(prefix, clients) {
  if (mode === "classic" || mode === "sharded") {
    const { createAdapter, createShardedAdapter } = require("@socket.io/redis-adapter");
    const pub = createClient({ url: redisUrl });
    const sub = pub.duplicate();
    pub.on("error", () => {});
    sub.on("error", () => {});
    await Promise.all([pub.connect(), sub.connect()]);
    clients.push(pub, sub);
    return mode === "sharded"
      ? createShardedAdapter(pub, sub, { channelPrefix: prefix, subscriptionMode: "dynamic" })
      : createAdapter(pub, sub, { key: prefix });
  }
  if (mode === "streams") {
    const { createAdapter } = require("@socket.io/redis-streams-adapter");
    const client = createClient({ url: redisUrl });
    client.on("error", () => {});
    await client.connect();
    clients.push(client);
    return createAdapter(client, { streamName: prefix, channelPrefix: prefix, maxLen: 10000 });
  }
  throw new Error(`unknown adapter ${JSON.stringify(mode)}: classic, sharded or streams`);
}

async function main() {
  const clients = [];
  // Anything the Socket.IO servers do not handle (they pass other paths on to the listeners
  // already attached): 404.
  const httpServer = http.createServer((req, res) => {
    res.writeHead(404);
    res.end();
  });
  const servers = [];
  const twoServers = mode === "streams";

  const io = new Server(httpServer, {
    path: "/socket.io/",
    maxHttpBufferSize: 1e6,
    connectTimeout: 1000,
    cors: { origin: "*" },
    destroyUpgrade: !twoServers,
    adapter: await adapterFor(key, clients),
  });
  allHandlers(io.of("/"));
  allHandlers(io.of("/custom"));
  servers.push(io);

  if (twoServers) {
    const recovery = new Server(httpServer, {
      path: "/recovery/",
      maxHttpBufferSize: 1e6,
      destroyUpgrade: false,
      connectionStateRecovery: { maxDisconnectionDuration: 5000, skipMiddlewares: true },
      adapter: await adapterFor(`${key}-recovery`, clients),
    });
    allHandlers(recovery.of("/"));
    servers.push(recovery);
  }

  await new Promise((resolve) => httpServer.listen(port, "127.0.0.1", resolve));
  console.log(`cluster node listening on http://127.0.0.1:${port} (${mode} adapter, redis ${redisUrl})`);

  process.on("SIGTERM", () => {
    for (const server of servers) server.close();
    // The adapters have left the cluster; the Redis connections end with the process.
    setTimeout(() => process.exit(0), 100);
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
