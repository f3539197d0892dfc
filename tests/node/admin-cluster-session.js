// The Admin UI's `session` event as the UI itself listens for it: the UI (ui/src/App.vue)
// registers its `session` listener in `socket.once("connect")`, and socket.io-client replays
// the events received before the CONNECT reply just before it runs the `connect` listeners.
// So a `session` sent before the CONNECT reply (the reference's order) never reaches that
// listener, and one sent right after it (Ferrio's order) does.
//
// Input (stdin): {"url": "<a Ferrio server with basic auth admin/changeit on /admin>"}.
// Starts an npm socket.io 4.8 server with instrument() (same credentials) on a free port, logs
// in to both as the UI does, over polling then WebSocket and over WebSocket only, and prints
// {"ferrio": [..], "reference": [..]}: per login, the session id the UI's listener got, or
// null. Exits after 30 s at most.

"use strict";

const http = require("node:http");
const { Server } = require("socket.io");
const { instrument } = require("@socket.io/admin-ui");
const { io: ioc } = require("socket.io-client");

setTimeout(() => process.exit(2), 30000).unref();

// The bcrypt hash of `changeit`.
const HASH = "$2a$04$kmAFzMOM3PTsvWSf1dNM0uB0RFGSZKzIeBtackP4/DiCIPZgR/mXG";

// Logs in as the UI does; resolves with what its `session` listener got once `config` (sent
// after the session either way) has arrived.
function login(url, transports) {
  return new Promise((resolve, reject) => {
    const socket = ioc(url + "/admin", {
      forceNew: true,
      reconnection: false,
      transports,
      auth: { username: "admin", password: "changeit" },
    });
    let session = null;
    socket.once("connect", () => {
      socket.on("session", (id) => {
        session = id;
      });
      socket.on("config", () => {
        socket.disconnect();
        resolve(session);
      });
    });
    socket.once("connect_error", reject);
  });
}

async function main() {
  const { url } = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
  const httpServer = http.createServer();
  const io = new Server(httpServer);
  instrument(io, { auth: { type: "basic", username: "admin", password: HASH }, mode: "development" });
  await new Promise((r) => httpServer.listen(0, "127.0.0.1", r));
  const reference = `http://127.0.0.1:${httpServer.address().port}`;
  const result = { ferrio: [], reference: [] };
  for (const transports of [["polling", "websocket"], ["websocket"]]) {
    result.ferrio.push(await login(url, transports));
    result.reference.push(await login(reference, transports));
  }
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
