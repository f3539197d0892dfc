// The bench server contract (see crates/ferrio-server/examples/bench.rs) implemented with Node's
// socket.io 4.8.4, so that ferrio-bench measures it side by side with Ferrio and socketioxide.
//
// 127.0.0.1:$PORT (default 3000), path /socket.io/, namespace /, both transports, default
// heartbeat, maxHttpBufferSize 1e6 (the default). Logs nothing per message.
//
// WebSocket compression (permessage-deflate) is off unless DEFLATE=1: then messages of at least
// 1024 bytes are compressed, without context takeover in either direction; with
// DEFLATE_TAKEOVER=1 as well, both sides keep their contexts between messages.
"use strict";

const http = require("node:http");
const { Server } = require("socket.io");

const port = Number(process.env.PORT || 3000);
const httpServer = http.createServer();
let perMessageDeflate = false;
if (process.env.DEFLATE === "1") {
  perMessageDeflate = { threshold: 1024 };
  if (process.env.DEFLATE_TAKEOVER !== "1") {
    perMessageDeflate.serverNoContextTakeover = true;
    perMessageDeflate.clientNoContextTakeover = true;
  }
}
const io = new Server(httpServer, { path: "/socket.io/", maxHttpBufferSize: 1e6, perMessageDeflate });

io.on("connection", (socket) => {
  socket.on("echo", (arg, ack) => {
    if (typeof ack === "function") ack(arg);
  });
  socket.on("echo_bin", (buf, ack) => {
    if (typeof ack === "function") ack(buf);
  });
  socket.on("broadcast", (payload, ack) => {
    io.emit("msg", payload);
    if (typeof ack === "function") ack(true);
  });
  socket.on("join", (room, ack) => {
    socket.join(String(room));
    if (typeof ack === "function") ack(true);
  });
  // flood (count, size[, ack]): `count` events `flood` to the sender, back to back: with size 0
  // the small object {text, from, n: i}, otherwise one binary argument of `size` bytes; then
  // ack(count). count at most 1000, size at most 1,000,000 (as the Ferrio server: a client keeps
  // its floods within a Ferrio session's queues).
  socket.on("flood", (count, size, ack) => {
    const num = (v, max) => (Number.isInteger(v) && v > 0 ? Math.min(v, max) : 0);
    const n = num(count, 1000);
    const bytes = num(size, 1e6);
    if (bytes === 0) {
      for (let i = 0; i < n; i++) socket.emit("flood", { text: "hello", from: "abc", n: i });
    } else {
      const payload = Buffer.alloc(bytes, 7);
      for (let i = 0; i < n; i++) socket.emit("flood", payload);
    }
    if (typeof ack === "function") ack(n);
  });
  socket.on("to_room", (room, payload, ack) => {
    io.to(String(room)).emit("msg", payload);
    if (typeof ack === "function") ack(true);
  });
});

httpServer.listen(port, "127.0.0.1", () => {
  console.log(`node socket.io bench server listening on http://127.0.0.1:${port}`);
});
