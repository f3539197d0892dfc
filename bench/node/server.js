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
  socket.on("to_room", (room, payload, ack) => {
    io.to(String(room)).emit("msg", payload);
    if (typeof ack === "function") ack(true);
  });
});

httpServer.listen(port, "127.0.0.1", () => {
  console.log(`node socket.io bench server listening on http://127.0.0.1:${port}`);
});
