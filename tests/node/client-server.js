// A real socket.io 4.8 server for ferrio-client's interop tests.
//
// Usage: node client-server.js [PORT] [--recovery] [--tls DIR]
// Listens on 127.0.0.1:PORT (0: a free port) and prints "listening <port>" on stdout. With
// --recovery, connectionStateRecovery is on; with --tls, it serves HTTPS with DIR/cert.pem and
// DIR/key.pem. Exits by itself after 60 s.
//
// Every namespace ("/", "/a", "/b", "/private") emits on connection "welcome" with
// {auth, nsp, engine (the Engine.IO id), transport, recovered, id, header (the x-ferrio request
// header), query (the "room" query parameter)}, and answers:
// - "transport" (): acks the name of the current transport;
// - "echo" (...args): emits "echo-back" with the same arguments, and acks them if asked;
// - "ask" (question): asks the client with emitWithAck("question", question) and emits
//   "answer" with the client's reply;
// - "binary" (): emits "binary-back" with a Buffer and a nested Buffer, and acks a Buffer;
// - "buffered" (n): records n; "stats" (): acks the recorded list;
// - "drop-me" (): closes the underlying connection, then emits "missed" 1, 2, 3 to the
//   socket's room while it is away.
// "/private" refuses connections whose auth.token is not "secret" with message
// "not authorized" and data {code: 401}.

"use strict";

const fs = require("node:fs");
const http = require("node:http");
const https = require("node:https");
const path = require("node:path");
const { Server } = require("socket.io");

const args = process.argv.slice(2);
const port = Number(args.find((a) => /^\d+$/.test(a)) || 0);
const recovery = args.includes("--recovery");
const tlsIndex = args.indexOf("--tls");
const tlsDir = tlsIndex >= 0 ? args[tlsIndex + 1] : null;

setTimeout(() => process.exit(0), 60000).unref();

const httpServer = tlsDir
  ? https.createServer({
      cert: fs.readFileSync(path.join(tlsDir, "cert.pem")),
      key: fs.readFileSync(path.join(tlsDir, "key.pem")),
    })
  : http.createServer();
const io = new Server(httpServer, {
  pingInterval: 2000,
  pingTimeout: 2000,
  connectionStateRecovery: recovery ? { maxDisconnectionDuration: 30000 } : undefined,
});

const received = [];

function setup(nsp) {
  nsp.on("connection", (socket) => {
    socket.emit("welcome", {
      auth: socket.handshake.auth,
      nsp: nsp.name,
      engine: socket.conn.id,
      transport: socket.conn.transport.name,
      recovered: socket.recovered,
      id: socket.id,
      header: socket.handshake.headers["x-ferrio"] || null,
      query: socket.handshake.query.room || null,
    });
    socket.on("transport", (ack) => ack(socket.conn.transport.name));
    socket.on("echo", (...args) => {
      const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
      socket.emit("echo-back", ...args);
      if (ack) ack(...args);
    });
    socket.on("ask", async (question) => {
      try {
        const reply = await socket.timeout(5000).emitWithAck("question", question);
        socket.emit("answer", reply);
      } catch (e) {
        socket.emit("answer", "error: " + e.message);
      }
    });
    socket.on("binary", (...args) => {
      const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
      socket.emit("binary-back", Buffer.from([1, 2, 3]), { nested: Buffer.from([4, 5]) });
      if (ack) ack(Buffer.isBuffer(args[0]) ? args[0].length : -1, Buffer.from([9, 8, 7]));
    });
    socket.on("buffered", (n) => received.push(n));
    socket.on("stats", (ack) => ack(received));
    socket.on("drop-me", () => {
      const room = socket.id;
      socket.conn.close();
      let n = 0;
      const timer = setInterval(() => {
        n += 1;
        io.of(nsp.name).to(room).emit("missed", n);
        if (n === 3) clearInterval(timer);
      }, 50);
    });
  });
}

setup(io.of("/"));
setup(io.of("/a"));
setup(io.of("/b"));
const priv = io.of("/private");
priv.use((socket, next) => {
  if (socket.handshake.auth && socket.handshake.auth.token === "secret") return next();
  const err = new Error("not authorized");
  err.data = { code: 401 };
  next(err);
});
setup(priv);

httpServer.listen(port, "127.0.0.1", () => {
  console.log(`listening ${httpServer.address().port}`);
});
