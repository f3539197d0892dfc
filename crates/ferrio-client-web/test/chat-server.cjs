// The chat example's events on Node's socket.io 4.8 (from tests/node), for the browser tests of
// the Leptos chat page: the same contract as ferrio-server's chat example
// (crates/ferrio-server/examples/chat.rs), on the real reference server.
//
// - join(room, nick) -> { room, nick, members } or { error }; the others in the room hear
//   joined({ nick }), everyone in it members({ room, members }).
// - chat(text) -> { at } or { error }; the others hear chat({ nick, text, at }).
// - typing(bool): the others hear typing({ nick, typing }) (volatile).
// - leaving (another join, or a disconnection): the room hears left({ nick }) and members(...).
//
// Usage: node chat-server.cjs -> prints "listening <port>" (127.0.0.1, PORT or a free port);
// exits after 120 s.
"use strict";

const http = require("node:http");
const path = require("node:path");
const { Server } = require(path.join(__dirname, "../../../tests/node/node_modules/socket.io"));

setTimeout(() => process.exit(0), 120000).unref();

const httpServer = http.createServer((_req, res) => res.writeHead(404).end());
const io = new Server(httpServer, {
  cors: { origin: "*" },
  connectionStateRecovery: { maxDisconnectionDuration: 120000 },
});

const text = (v, fallback, max) => {
  const s = (typeof v === "string" ? v : fallback).trim().slice(0, max);
  return s || fallback;
};

// The nicknames of the sockets in `room`, sorted, without the socket `except`.
function members(room, except) {
  const ids = io.of("/").adapter.rooms.get(room) || new Set();
  return [...ids]
    .filter((id) => id !== except)
    .map((id) => io.of("/").sockets.get(id))
    .filter((s) => s && s.data.me && s.data.me.room === room)
    .map((s) => s.data.me.nick)
    .sort();
}

function announceMembers(socket, room, leaving) {
  socket.to(room).emit("members", { room, members: members(room, leaving ? socket.id : undefined) });
}

function announceLeft(socket, me) {
  socket.to(me.room).emit("left", { nick: me.nick });
  announceMembers(socket, me.room, true);
}

io.on("connection", (socket) => {
  if (socket.recovered && socket.data.me) {
    const { room } = socket.data.me;
    announceMembers(socket, room, false);
    socket.emit("members", { room, members: members(room) });
  }
  socket.on("join", (room, nick, ack) => {
    const reply = typeof ack === "function" ? ack : () => {};
    room = text(room, "lobby", 32);
    nick = text(nick, "", 24);
    if (!nick) return reply({ error: "a nickname is required" });
    if (socket.data.me) {
      announceLeft(socket, socket.data.me);
      socket.leave(socket.data.me.room);
    }
    socket.join(room);
    socket.data.me = { nick, room };
    socket.to(room).emit("joined", { nick });
    announceMembers(socket, room, false);
    reply({ room, nick, members: members(room) });
  });
  socket.on("chat", (body, ack) => {
    const reply = typeof ack === "function" ? ack : () => {};
    const me = socket.data.me;
    if (!me) return reply({ error: "join a room first" });
    body = text(body, "", 2000);
    if (!body) return reply({ error: "empty message" });
    const at = Date.now();
    socket.to(me.room).emit("chat", { nick: me.nick, text: body, at });
    reply({ at });
  });
  socket.on("typing", (typing) => {
    const me = socket.data.me;
    if (me) socket.to(me.room).volatile.emit("typing", { nick: me.nick, typing: typing === true });
  });
  socket.on("disconnecting", () => {
    if (socket.data.me) announceLeft(socket, socket.data.me);
  });
});

httpServer.listen(Number(process.env.PORT || 0), "127.0.0.1", () => {
  console.log(`listening ${httpServer.address().port}`);
});
