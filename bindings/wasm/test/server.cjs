// The browser tests' Node server: serves the test page and the package, and runs the real
// socket.io 4.8 server (from tests/node) with the same handlers as ferrio-server's e2e example,
// so one scenario runs against both.
//
// Usage: node server.cjs  -> prints "listening <port>" (127.0.0.1, PORT or a free port); exits
// after 120 s. `/recovery/` is a second socket.io server with connection state recovery, as the
// e2e example's; `/msgpack/` a third one with `socket.io-msgpack-parser` (namespaces `/`, `/custom`
// and `/restricted`, the same handlers), as the e2e example's `/msgpack/` profile. `/opts` (no
// trailing slash: it takes `/opts?...` and `/opts/?...`) is a fourth one for the client options'
// tests: it records every request it gets (method, URL, headers, WebSocket subprotocol) and the
// disconnect reasons of its sockets; `GET /log-opts` hands them over (and forgets them).
"use strict";

const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");
const { Server } = require(path.join(__dirname, "../../../tests/node/node_modules/socket.io"));

setTimeout(() => process.exit(0), 120000).unref();

const dist = path.join(__dirname, "../dist");
const types = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm" };
const files = {
  "/": path.join(__dirname, "page.html"),
  "/ferrio/ferrio.js": path.join(dist, "ferrio.js"),
  "/ferrio/ferrio_wasm_bg.wasm": path.join(dist, "ferrio_wasm_bg.wasm"),
  "/ferrio/ferrio.msgpack.js": path.join(dist, "ferrio.msgpack.js"),
  "/ferrio/ferrio_msgpack_bg.wasm": path.join(dist, "ferrio_msgpack_bg.wasm"),
  "/options.mjs": path.join(__dirname, "options.mjs"),
};
// What `/opts` saw: its requests, and why its sockets disconnected.
const seen = { requests: [], disconnects: [] };

const httpServer = http.createServer((req, res) => {
  if (req.url === "/log-opts") {
    res.writeHead(200, { "Content-Type": "application/json", "Cache-Control": "no-store" });
    res.end(JSON.stringify(seen));
    seen.requests = [];
    seen.disconnects = [];
    return;
  }
  const file = files[req.url.split("?")[0]];
  if (!file) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { "Content-Type": types[path.extname(file)], "Cache-Control": "no-store" });
  res.end(fs.readFileSync(file));
});

const io = new Server(httpServer, { pingInterval: 300, pingTimeout: 200, cors: { origin: "*" } });

function handlers(nsp) {
  nsp.on("connection", (socket) => {
    socket.emit("auth", socket.handshake.auth);
    socket.on("message", (...args) => socket.emit("message-back", ...args));
    socket.on("message-with-ack", (...args) => {
      const ack = args.pop();
      ack(...args);
    });
    socket.on("emit-with-ack", async (...args) => {
      const reply = await socket.emitWithAck("emit-with-ack", ...args);
      socket.emit("emit-with-ack", reply);
    });
    socket.on("whoami", (ack) =>
      ack({ id: socket.id, nsp: nsp.name, engineId: socket.conn.id, transport: socket.conn.transport.name, auth: socket.handshake.auth }),
    );
    socket.on("disconnect-me", (close) => socket.disconnect(close === true));
  });
}
// The namespaces `/`, `/custom` and `/restricted` (a middleware refuses a wrong token) of `server`.
function namespaces(server) {
  handlers(server.of("/"));
  handlers(server.of("/custom"));
  const restricted = server.of("/restricted");
  restricted.use((socket, next) => {
    if (socket.handshake.auth && socket.handshake.auth.token === "let-me-in") return next();
    const err = new Error("not authorized");
    err.data = { reason: "invalid token" };
    next(err);
  });
  handlers(restricted);
}
namespaces(io);

const msgpack = new Server(httpServer, {
  path: "/msgpack/",
  parser: require(path.join(__dirname, "../../../tests/node/node_modules/socket.io-msgpack-parser")),
  pingInterval: 300,
  pingTimeout: 200,
  cors: { origin: "*" },
});
namespaces(msgpack);

const recovery = new Server(httpServer, {
  path: "/recovery/",
  connectionStateRecovery: { maxDisconnectionDuration: 5000 },
  cors: { origin: "*" },
});
recovery.on("connection", (socket) => {
  socket.on("join", (room, ack) => {
    socket.join(room);
    ack([...socket.rooms].filter((r) => r !== socket.id));
  });
  socket.on("room-emit", (room, ...rest) => {
    const ack = rest.pop();
    socket.to(room).emit("room-emit", ...rest);
    ack();
  });
});

const opts = new Server(httpServer, { path: "/opts", addTrailingSlash: false, pingInterval: 300, pingTimeout: 200 });
namespaces(opts);
opts.on("connection", (socket) => socket.on("disconnect", (reason) => seen.disconnects.push(reason)));
// Recorded before socket.io sees them (the servers above took the `request` listeners over).
const record = (req) => {
  if (!req.url.startsWith("/opts") || req.url === "/log-opts") return;
  const url = new URL(req.url, "http://x");
  seen.requests.push({
    method: req.method,
    upgrade: req.headers.upgrade === "websocket",
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    headers: req.headers,
  });
};
httpServer.prependListener("request", record);
httpServer.prependListener("upgrade", record);

httpServer.listen(Number(process.env.PORT || 0), "127.0.0.1", () =>
  console.log(`listening ${httpServer.address().port}`),
);
