// Drives a Ferrio server that allows Engine.IO 3 with the real socket.io-client 2.5.0
// (Engine.IO 3, Socket.IO protocol 4).
//
// Input (stdin): {"url": "http://127.0.0.1:PORT", "transports": [...]}. The server (see the
// test) emits `welcome` [sid] on connection, answers `echo` with its arguments as ack, sends
// `echo-bin` back as a `bin` event, and `/chat` answers `whoami` with the token from the query.
// Output: "ok <step>" lines then "ALL OK"; exit 1 on failure, 2 after 20 s.

"use strict";

const assert = require("node:assert/strict");
const io = require("socket.io-client-v2");

setTimeout(() => {
  console.error("client-v2: timed out");
  process.exit(2);
}, 20000).unref();

function readStdin() {
  return new Promise((resolve) => {
    let data = "";
    process.stdin.on("data", (c) => (data += c));
    process.stdin.on("end", () => resolve(data));
  });
}

const once = (emitter, event) => new Promise((resolve) => emitter.once(event, (...a) => resolve(a)));

async function main() {
  const { url, transports } = JSON.parse(await readStdin());
  const opts = { forceNew: true, reconnection: false, transports };
  const socket = io(url, opts);
  const [welcome] = await once(socket, "welcome");
  assert.equal(welcome, socket.id);
  console.log("ok welcome");

  const answer = await new Promise((resolve) => socket.emit("echo", "hi", { n: 1 }, (...a) => resolve(a)));
  assert.deepEqual(answer, ["hi", { n: 1 }]);
  console.log("ok ack");

  socket.emit("echo-bin", Buffer.from([1, 2, 3]));
  const [bin] = await once(socket, "bin");
  assert.deepEqual([...bin], [1, 2, 3]);
  console.log("ok binary");

  const chat = io(url + "/chat?token=abc", { ...opts, forceNew: false });
  const who = await new Promise((resolve) =>
    chat.on("connect", () => chat.emit("whoami", (t) => resolve(t)))
  );
  assert.equal(who, "abc");
  console.log("ok namespace with query auth");

  if (transports.length > 1) {
    if (socket.io.engine.transport.name !== "websocket") await once(socket.io.engine, "upgrade");
    const again = await new Promise((resolve) => socket.emit("echo", "after upgrade", (...a) => resolve(a)));
    assert.deepEqual(again, ["after upgrade"]);
    console.log("ok upgraded");
  }
  chat.close();
  socket.close();
  console.log("ALL OK");
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
