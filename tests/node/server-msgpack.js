// A real socket.io 4.8 server with socket.io-msgpack-parser, for ferrio-client's msgpack interop
// tests.
//
// Usage: node server-msgpack.js
// Listens on a free port of 127.0.0.1 and prints "listening <port>" on stdout. Exits by itself
// after 60 s.
//
// Namespaces "/" and "/private" emit on connection "welcome" with {auth, transport, id}, and
// answer:
// - "echo" (...args): emits "echo-back" with the same arguments, and acks them if asked;
// - "ask" (question): asks the client with emitWithAck("question", question) and emits
//   "answer" with every argument of the client's reply;
// - "binary" (): emits "binary-back" with a Buffer and a nested Buffer, and acks a Buffer;
// - "garbage" (which): writes one message that is no packet of the msgpack parser to the
//   connection ("malformed": a byte that is no msgpack; "shape": a map of the wrong shape;
//   "types": a map with a string type).
// "/private" refuses connections whose auth.token is not "secret" with message
// "not authorized" and data {code: 401}.

"use strict";

const http = require("node:http");
const { Server } = require("socket.io");
const parser = require("socket.io-msgpack-parser");
// The notepack.io the parser itself uses (a dependency of socket.io-msgpack-parser).
const notepack = require(
  require.resolve("notepack.io", {
    paths: [require("node:path").dirname(require.resolve("socket.io-msgpack-parser"))],
  })
);

setTimeout(() => process.exit(0), 60000).unref();

const httpServer = http.createServer();
const io = new Server(httpServer, { parser, pingInterval: 2000, pingTimeout: 2000 });

const garbage = {
  malformed: Buffer.from([0xc1]),
  shape: notepack.encode({ type: 2, nsp: "/", data: { not: "an array" } }),
  types: notepack.encode({ type: "2", nsp: "/", data: ["x"] }),
};

function setup(nsp) {
  nsp.on("connection", (socket) => {
    socket.emit("welcome", {
      auth: socket.handshake.auth,
      transport: socket.conn.transport.name,
      id: socket.id,
    });
    socket.on("echo", (...args) => {
      const last = args[args.length - 1];
      const cb = typeof last === "function" ? args.pop() : null;
      socket.emit("echo-back", ...args);
      if (cb) cb(...args);
    });
    socket.on("ask", async (question) => {
      const reply = await new Promise((resolve) =>
        socket.emit("question", question, (...answer) => resolve(answer))
      );
      socket.emit("answer", ...reply);
    });
    socket.on("binary", (cb) => {
      socket.emit("binary-back", Buffer.from([1, 2, 3]), { nested: Buffer.from([4]) });
      if (typeof cb === "function") cb(Buffer.from([9, 8, 7]));
    });
    socket.on("garbage", (which) => {
      socket.conn.write(garbage[which]);
    });
  });
}

setup(io.of("/"));
const priv = io.of("/private");
priv.use((socket, next) => {
  if (socket.handshake.auth && socket.handshake.auth.token === "secret") next();
  else {
    const err = new Error("not authorized");
    err.data = { code: 401 };
    next(err);
  }
});
setup(priv);

httpServer.listen(0, "127.0.0.1", () => {
  console.log(`listening ${httpServer.address().port}`);
});
