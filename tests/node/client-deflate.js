// socket.io-client (Node, over `ws` with its default permessage-deflate offer) against a Ferrio
// server with WebSocket compression on, running the e2e server's standard handlers.
//
// Input (stdin): {"url": "http://127.0.0.1:PORT", "transports": ["websocket"] or
// ["polling", "websocket"] (then the compressed WebSocket is the upgrade's)}.
// Output: one line per step passed ("ok ..."), then "ALL OK"; a failure exits with status 1,
// and the whole run is bounded to 20 s (exit status 2).
//
// Whether messages went compressed is read from the TCP socket's byte counts: a large, very
// repetitive message crosses in a small fraction of its size only when compressed.

"use strict";

const { io } = require("socket.io-client");

setTimeout(() => {
  console.error("client-deflate: timed out");
  process.exit(2);
}, 20000).unref();

function fail(message) {
  console.error("client-deflate: " + message);
  process.exit(1);
}

function readStdin() {
  return new Promise((resolve) => {
    let data = "";
    process.stdin.on("data", (c) => (data += c));
    process.stdin.on("end", () => resolve(data));
  });
}

function once(socket, event) {
  return new Promise((resolve) => socket.once(event, (...args) => resolve(args)));
}

async function main() {
  const { url, transports } = JSON.parse(await readStdin());
  const socket = io(url, {
    transports,
    forceNew: true,
    reconnection: false,
  });
  socket.on("connect_error", (e) => fail("connect_error " + e.message));
  await once(socket, "connect");
  if (socket.io.engine.transport.name !== "websocket") {
    await new Promise((resolve) => socket.io.engine.once("upgrade", resolve));
  }
  const ws = socket.io.engine.transport.ws;
  if (ws.extensions !== "permessage-deflate") {
    fail("extensions negotiated: " + JSON.stringify(ws.extensions));
  }
  console.log("ok negotiated");

  const tcp = ws._socket;
  const big = "the quick brown fox jumps over the lazy dog ".repeat(5000);
  let read = tcp.bytesRead;
  let written = tcp.bytesWritten;
  socket.emit("message", big);
  let [back] = await once(socket, "message-back");
  if (back !== big) fail("big message echoed wrong");
  const sent = tcp.bytesWritten - written;
  const received = tcp.bytesRead - read;
  if (sent > big.length / 10 || received > big.length / 10) {
    fail(`not compressed: ${sent} bytes sent, ${received} received for ${big.length}`);
  }
  console.log("ok text compressed both ways");

  const data = Buffer.alloc(100000, "abc");
  read = tcp.bytesRead;
  socket.emit("message", data);
  [back] = await once(socket, "message-back");
  if (!Buffer.isBuffer(back) || !back.equals(data)) fail("binary echoed wrong");
  if (tcp.bytesRead - read > data.length / 10) fail("binary reply not compressed");
  console.log("ok binary");

  // Below the threshold both ways: the message crosses as it is.
  const small = "x".repeat(500);
  read = tcp.bytesRead;
  socket.emit("message", small);
  [back] = await once(socket, "message-back");
  if (back !== small) fail("small message echoed wrong");
  if (tcp.bytesRead - read < small.length) fail("small reply was compressed");
  console.log("ok small uncompressed");

  socket.disconnect();
  console.log("ALL OK");
  process.exit(0);
}

main().catch((e) => fail(e.stack || String(e)));
