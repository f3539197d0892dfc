// A socket.io server with WebSocket compression on (`perMessageDeflate: {threshold: 1024}`),
// for the tokio client's compression test.
//
// Usage: node server-deflate.js [--takeover]. Listens on a free port of 127.0.0.1 and prints
// "listening <port>" on stdout; exits by itself after 30 s. With --takeover the server keeps
// its compression context between messages (`serverNoContextTakeover: false`), declining an
// offer of `server_no_context_takeover`.
//
// Answers:
// - "echo" (value): acks the value;
// - "stats" (): acks {extensions: what the WebSocket negotiated, written: the bytes written on
//   its TCP connection so far}.

"use strict";

const http = require("node:http");
const { Server } = require("socket.io");

setTimeout(() => process.exit(0), 30000).unref();

const httpServer = http.createServer();
const io = new Server(httpServer, {
  transports: ["websocket"],
  perMessageDeflate: process.argv.includes("--takeover")
    ? { threshold: 1024, serverNoContextTakeover: false }
    : { threshold: 1024 },
});

io.on("connection", (socket) => {
  socket.on("echo", (value, ack) => ack(value));
  socket.on("stats", (ack) => {
    const ws = socket.conn.transport.socket;
    ack({ extensions: ws.extensions, written: ws._socket.bytesWritten });
  });
});

httpServer.listen(0, "127.0.0.1", () => {
  console.log("listening " + httpServer.address().port);
});
