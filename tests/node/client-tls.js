// socket.io-client (Node) against a Ferrio server over HTTPS (`Ferrio::serve_tls`), trusting
// the test's self-signed certificate.
//
// Input (stdin): {"url": "https://127.0.0.1:PORT", "ca": "<PEM>", "transports": [...]}.
// Output: one line per step passed ("ok ..."), then "ALL OK"; a failure exits with status 1,
// and the whole run is bounded to 20 s (exit status 2).

"use strict";

const { io } = require("socket.io-client");

setTimeout(() => {
  console.error("client-tls: timed out");
  process.exit(2);
}, 20000).unref();

function fail(message) {
  console.error("client-tls: " + message);
  process.exit(1);
}

function readStdin() {
  return new Promise((resolve) => {
    let data = "";
    process.stdin.on("data", (c) => (data += c));
    process.stdin.on("end", () => resolve(data));
  });
}

async function main() {
  const { url, ca, transports } = JSON.parse(await readStdin());

  // Without the certificate among its roots the client refuses the server.
  const untrusted = io(url, { transports, forceNew: true, reconnection: false });
  await new Promise((resolve) => {
    untrusted.on("connect", () => fail("connected without trusting the certificate"));
    untrusted.on("connect_error", resolve);
  });
  untrusted.close();
  console.log("ok untrusted refused");

  const socket = io(url, { transports, ca, forceNew: true, reconnection: false });
  socket.on("connect_error", (e) => fail("connect_error " + e.message));
  await new Promise((resolve) => socket.once("connect", resolve));
  if (transports.includes("websocket") && socket.io.engine.transport.name !== "websocket") {
    await new Promise((resolve) => socket.io.engine.once("upgrade", resolve));
  }
  console.log("ok connected over " + socket.io.engine.transport.name);

  const info = await socket.timeout(5000).emitWithAck("whoami");
  if (info.secure !== true) fail("handshake.secure is " + JSON.stringify(info.secure));
  if (info.address !== "127.0.0.1") fail("handshake.address is " + JSON.stringify(info.address));
  console.log("ok handshake secure");

  const data = Buffer.from([1, 2, 3, 250]);
  // (`emitWithAck` gives the first argument only: a callback gets both.)
  const [text, back] = await new Promise((resolve) =>
    socket.timeout(5000).emit("echo", "héllo 🦀", data, (err, ...args) => {
      if (err) fail("echo: " + err.message);
      resolve(args);
    }),
  );
  if (text !== "héllo 🦀" || !Buffer.isBuffer(back) || !back.equals(data)) {
    fail("echo came back wrong: " + JSON.stringify([text, back]));
  }
  console.log("ok echo");

  socket.disconnect();
  console.log("ALL OK");
  process.exit(0);
}

main().catch((e) => fail(e.stack || String(e)));
