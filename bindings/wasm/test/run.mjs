// Browser tests of the `ferrio` package in headless Chromium (driven by playwright-core, with the
// system's Chromium: no browser download).
//
// Usage: node test/run.mjs <e2e server binary> <chat example binary> <recipe_login binary>
// Starts the Node socket.io server (test/server.cjs), ferrio-server's e2e example and the chat
// example on free 127.0.0.1 ports, runs the same scenario against both Socket.IO servers, the
// msgpack entry point's scenario against both with the msgpack parser, the client options
// against the Node server's `/opts` endpoint (which records the requests it gets), the hostile
// server (test/hostile.cjs: malformed frames, wrong types, oversized payloads; the page must
// show no error of its own), then
// two browser contexts chat through the chat example (screenshot in test/screenshots/), and a
// page logs in to the login recipe and connects with the session cookie the browser keeps.
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import http from "node:http";
import { connect, createServer } from "node:net";
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const [e2eBin, chatBin, loginBin] = process.argv.slice(2);
const children = [];
const servers = [];
const deadline = setTimeout(() => {
  console.error("browser tests: overall time limit (120 s) reached");
  cleanup();
  process.exit(1);
}, 120000);

function cleanup() {
  for (const s of servers) s.close();
  for (const c of children) {
    if (c.exitCode === null) c.kill("SIGTERM");
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Starts a child and resolves once a stdout line matches `ready`.
function start(cmd, args, env, ready) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
    children.push(child);
    let out = "";
    const t = setTimeout(() => reject(new Error(`${cmd} did not start`)), 20000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(ready);
      if (m) {
        clearTimeout(t);
        resolve(m);
      }
    });
    child.once("exit", (code) => reject(new Error(`${cmd} exited with ${code}`)));
  });
}

// A front-end server on a free port: `/app.html` (a page importing the package) and the package
// under `/ferrio/`; every other request, WebSocket upgrades included, goes to `backend`.
async function frontEnd(backend) {
  const { hostname, port } = new URL(backend);
  const page = `<!doctype html><script type="module">import { io } from "/ferrio/ferrio.js"; window.io = io; window.ready = true;</script>`;
  const types = { ".js": "text/javascript", ".wasm": "application/wasm" };
  const server = http.createServer((req, res) => {
    if (req.url === "/app.html") {
      res.writeHead(200, { "content-type": "text/html" }).end(page);
    } else if (/^\/ferrio\/[\w.]+$/.test(req.url)) {
      const name = req.url.slice("/ferrio/".length);
      readFile(join(here, "..", "dist", name)).then(
        (body) => res.writeHead(200, { "content-type": types[extname(name)] || "application/octet-stream" }).end(body),
        () => res.writeHead(404).end(),
      );
    } else {
      const upstream = http.request({ hostname, port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode, answer.rawHeaders);
        answer.pipe(res);
      });
      upstream.on("error", () => res.destroy());
      req.pipe(upstream);
    }
  });
  server.on("upgrade", (req, socket, head) => {
    const upstream = connect(Number(port), hostname, () => {
      let text = `${req.method} ${req.url} HTTP/1.1\r\n`;
      for (let i = 0; i < req.rawHeaders.length; i += 2) text += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      upstream.write(`${text}\r\n`);
      upstream.write(head);
      socket.pipe(upstream).pipe(socket);
    });
    upstream.on("error", () => socket.destroy());
    socket.on("error", () => upstream.destroy());
  });
  servers.push(server);
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${server.address().port}`;
}

const results = [];
async function test(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push([name, true]);
    console.log(`test ${name} ... ok (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push([name, false]);
    console.log(`test ${name} ... FAILED (${Date.now() - t0} ms)\n${e && e.stack ? e.stack : e}`);
  }
}

function checkScenario(r, server) {
  assert.equal(r.error, undefined, r.error);
  assert.deepEqual(r.auth, { user: "ann" });
  assert.equal(r.connected, true);
  assert.equal(r.idIsString, true);
  assert.deepEqual(r.messageBack, [1, "two", { three: [3] }]);
  assert.equal(r.ack, "a");
  assert.equal(r.timeoutAck, "b");
  assert.equal(r.serverAck, "pong-ping");
  assert.deepEqual(r.binary, [true, [1, 2, 3], true, [9]]);
  assert.equal(r.upgraded, "websocket", `${server}: no upgrade`);
  assert.equal(r.sameId, true);
  assert.deepEqual(r.multiplexed, ["/custom", true]);
  assert.deepEqual(r.refused, [true, "not authorized", { reason: "invalid token" }]);
  assert.equal(r.accepted, true);
  assert.deepEqual(r["only-websocket"], ["websocket", "websocket"]);
  assert.deepEqual(r["only-polling"], ["polling", "polling"]);
  assert.deepEqual(r.forceBase64, [true, [7, 8, 9]]);
  assert.deepEqual(r.blob, [true, [4, 5, 6], "after-blob"]);
  assert.deepEqual(r.blobAck, [true, [7, 7, 3]]);
  // Float32Array [1.5] is 0x3FC00000, little-endian.
  assert.deepEqual(r.views, [0, [0, 0, 192, 63], [5, 6], true]);
  assert.deepEqual(r.retries, ["operation has timed out", true]);
  assert.equal(r.volatile, "kept");
  assert.deepEqual(r.authCallback, { user: "fn" });
  assert.equal(r.badAuth, "auth must be a JSON object");
  assert.equal(r.badAuthCallback, "auth must be a JSON object");
  assert.deepEqual(r.authFirst, { user: "first" });
  assert.deepEqual(r.authSecond, { user: "second" });
  assert.equal(r.buffered, "early");
  assert.equal(r.autoConnectFalse, "before-connect");
  assert.equal(r.transportLost, "transport close");
  assert.deepEqual(r.reconnected, [true, "again"]);
  assert.equal(r.serverDisconnect, "io server disconnect");
  assert.deepEqual(r.clientDisconnect, ["io client disconnect", false]);
  assert.deepEqual(r.anyOutgoing, [2, "out", ["message", "buffered-out"], ["message-with-ack", "out", 2]]);
  assert.deepEqual(r.recovery, [["r1"], false, true, true, "missed"]);
  assert.deepEqual(r.restart, [true, "while-down", true]);
  assert.deepEqual(r.reuse, ["/custom", "/custom", true, true]);
  assert.deepEqual(r.manager, [true, "forced close", "forced close", true, true, 100]);
}

let browser;
try {
  // The two Socket.IO servers, by kind; the page stops and starts them again on the same port
  // (the restart step of the scenario).
  const nodePort = await freePort();
  const e2ePort = await freePort();
  const servers = {
    node: { cmd: "node", args: [join(here, "server.cjs")], port: nodePort, ready: /listening (\d+)/ },
    ferrio: { cmd: e2eBin, args: [], port: e2ePort, ready: /listening/ },
  };
  const startServer = async (kind) => {
    const s = servers[kind];
    await start(s.cmd, s.args, { PORT: String(s.port) }, s.ready);
    s.child = children[children.length - 1];
  };
  const stopServer = async (kind) => {
    const { child } = servers[kind];
    if (child.exitCode !== null) return;
    await new Promise((resolve) => {
      child.once("exit", resolve);
      child.kill("SIGTERM");
    });
  };
  await startServer("node");
  await startServer("ferrio");
  const chatPort = await freePort();
  await start(chatBin, [], { PORT: String(chatPort) }, /chat demo on/);
  const [, loginBase] = await start(loginBin, [], { PORT: "0" }, /listening on (http:\/\/[0-9.:]+)/);
  const [, hostilePort] = await start("node", [join(here, "hostile.cjs")], { PORT: "0" }, /listening (\d+)/);

  // playwright gives the browser a fresh temporary profile (--user-data-dir) of its own.
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-quic",
    ],
  });
  const page = await (await browser.newContext()).newPage();
  await page.exposeFunction("stopServer", stopServer);
  await page.exposeFunction("startServer", startServer);
  page.on("pageerror", (e) => console.log(`page error: ${e}`));
  await page.goto(`http://127.0.0.1:${nodePort}/`);
  await page.waitForFunction(() => window.ready === true, null, { timeout: 10000 });

  await test("socket.io 4.8 (Node): events, acks, binary, upgrade, namespaces, middleware, transports, auth function, buffering, reconnection, outgoing listeners, recovery, server restart", async () => {
    const r = await page.evaluate(([base, kind]) => window.scenario(base, kind), [`http://127.0.0.1:${nodePort}`, "node"]);
    checkScenario(r, "socket.io");
  });
  await test("ferrio-server (e2e example): events, acks, binary, upgrade, namespaces, middleware, transports, auth function, buffering, reconnection, outgoing listeners, recovery, server restart", async () => {
    const r = await page.evaluate(([base, kind]) => window.scenario(base, kind), [`http://127.0.0.1:${e2ePort}`, "ferrio"]);
    checkScenario(r, "ferrio-server");
  });

  // ferrio-server's `serve-client` feature (Node's `serveClient`): a page of another origin loads
  // socket.io-client from `/socket.io/socket.io.js` and talks to the server with it.
  await test("ferrio-server serves the browser client (serve-client): a page loads /socket.io/socket.io.js, connects and gets its message back", async () => {
    const p = await (await browser.newContext()).newPage();
    try {
      await p.goto(`http://127.0.0.1:${nodePort}/`);
      const base = `http://127.0.0.1:${e2ePort}`;
      await p.addScriptTag({ url: `${base}/socket.io/socket.io.js` });
      const r = await p.evaluate(
        (base) =>
          new Promise((resolve, reject) => {
            setTimeout(() => reject(new Error("no answer within 5 s")), 5000);
            const s = window.io(base, { forceNew: true });
            s.on("connect_error", (e) => reject(e));
            s.on("message-back", (...args) => {
              resolve({ args, transport: s.io.engine.transport.name });
              s.disconnect();
            });
            s.on("connect", () => s.emit("message", "served", 1));
          }),
        base,
      );
      assert.deepEqual(r.args, ["served", 1]);
    } finally {
      await p.context().close();
    }
  });

  // The `ferrio/msgpack` entry point (`io(url, { parser: msgpackParser })`) against both servers
  // with the msgpack parser: Node's socket.io with `socket.io-msgpack-parser` 3.0.2 and the e2e
  // example's `/msgpack/` profile.
  for (const [name, port] of [
    ["socket.io 4.8 (Node) with socket.io-msgpack-parser", nodePort],
    ["ferrio-server (e2e example, /msgpack/ profile)", e2ePort],
  ]) {
    await test(`msgpack parser, ${name}: auth, binary inline both ways, acks both ways, upgrade, namespaces, middleware refusal, polling and WebSocket only`, async () => {
      const r = await page.evaluate(([base, path]) => window.msgpackScenario(base, path), [`http://127.0.0.1:${port}`, "/msgpack/"]);
      assert.equal(r.error, undefined, r.error);
      assert.deepEqual(r.auth, { user: "ann", n: 1.5 });
      assert.deepEqual(r.binary, [true, [1, 2, 3], true, [9], -1, 4294967296, 0.25, null, true, "héllo"]);
      assert.equal(r.floats[0], true, JSON.stringify(r.floats[1]));
      if (port === e2ePort) assert.equal(r.huge[0], true, JSON.stringify(r.huge[1]));
      assert.deepEqual(r.ack, [true, [4, 5], "a"]);
      assert.deepEqual(r.serverAck, ["pong-ping", [6]]);
      assert.deepEqual(r.upgraded, ["websocket", true]);
      assert.deepEqual(r.wsBinary, [7]);
      assert.deepEqual(r.multiplexed, ["/custom", true]);
      assert.deepEqual(r.refused, [true, "not authorized", { reason: "invalid token" }]);
      assert.equal(r.accepted, true);
      assert.deepEqual(r["only-polling"], ["polling", "polling", [8, 7]]);
      assert.deepEqual(r["only-websocket"], ["websocket", "websocket", [8, 9]]);
      assert.notEqual(r.jsonRefused, "connected");
      assert.deepEqual(r.otherParser, [true, "ferrio: unsupported parser (pass msgpackParser from ferrio/msgpack, or none)"]);
    });
  }

  await test("client options against socket.io 4.8 (Node), observed by the server: addTrailingSlash, timestampRequests/timestampParam, transportOptions (polling extraHeaders, WebSocket protocols), protocols, requestTimeout, closeOnBeforeunload, opts.query read when a session starts; the manager's packet event, io.engine (id, transport, events), Error objects", async () => {
    const r = await page.evaluate((base) => window.optionsScenario(base), `http://127.0.0.1:${nodePort}`);
    assert.equal(r.error, undefined, r.error);
    // Polling requests: `/opts` without the trailing slash, the `ts` cache buster (not `t`),
    // the polling-only headers (they replace the manager's); the WebSocket request: the same
    // path, the subprotocol asked for, no cache buster.
    assert.ok(r.first.length >= 3, JSON.stringify(r.first));
    for (const q of r.first) {
      assert.equal(q.path, "/opts", JSON.stringify(q));
      assert.equal(q.t, false);
      if (q.upgrade) {
        assert.deepEqual([q.ts, q.protocol, q.xPolling], [false, "chat-v1", undefined]);
      } else {
        assert.deepEqual([q.ts, q.xPolling, q.xAll], [true, "polling-only", undefined], JSON.stringify(q));
      }
    }
    assert.equal(r.first.filter((q) => q.upgrade).length, 1);
    assert.deepEqual([r.transportBefore, r.transportAfter, r.engineId], ["polling", "websocket", true]);
    assert.equal(r.ack, "a");
    // The manager's `packet` event: socket.io-parser's packets (CONNECT, EVENT, ACK).
    assert.equal(r.packets[0].type, 0);
    assert.equal(r.packets[0].nsp, "/");
    assert.equal(typeof r.packets[0].data.sid, "string");
    assert.deepEqual(r.packets[1], { type: 2, nsp: "/", data: ["auth", {}] });
    assert.deepEqual(r.packets[2], { type: 6, nsp: "/", id: 0, data: ["a", {}] });
    assert.deepEqual(r.engineEvents, ["close", "drain", "flush", "handshake", "heartbeat", "message", "open", "packet", "packetCreate", "ping", "upgrade", "upgrading"]);
    assert.equal(r.firstEnginePacket, "open");
    assert.deepEqual(r.handshakeKeys, ["maxPayload", "pingInterval", "pingTimeout", "sid", "upgrades"]);
    assert.deepEqual(r.upgradeEvent, { name: "websocket" });
    assert.deepEqual([r.upgradingEvent, r.upgradingFirst], [{ name: "websocket" }, true]);
    // (The upgrade packet goes to the new transport directly: no `packetCreate`, as
    // engine.io-client.)
    assert.deepEqual([r.createdConnect, r.createdUpgrade, r.engineClosed, r.newEngine], [true, false, 1, true]);
    // timestampRequests false: no `t` on polling; true: `t` on the WebSocket request too.
    assert.ok(r.stamps.length >= 3, JSON.stringify(r.stamps));
    for (const [transport, path, t] of r.stamps) {
      assert.equal(path, "/opts/");
      assert.equal(t, transport === "websocket", JSON.stringify(r.stamps));
    }
    // transportOptions.websocket over the top-level options.
    assert.deepEqual(r.wsProtocols, ["per-transport"]);
    assert.deepEqual(r.requestTimeout, [
      "transport error",
      { isError: true, message: "xhr poll error", type: "TransportError", description: 0, context: "object" },
    ]);
    assert.deepEqual(r.beforeunload, [false, true]);
    assert.deepEqual(r.beforeunloadServer, ["transport close"]);
    // The reconnection's handshake carries the query set in `reconnect_attempt`.
    assert.deepEqual(r.queryTokens, ["a", "b"]);
  });

  await test("hostile server: malformed Engine.IO and Socket.IO frames, wrong types, oversized payloads reach the page as connect_error, disconnect or reconnection; no page error, no unhandled rejection", async () => {
    const hp = await (await browser.newContext()).newPage();
    const pageErrors = [];
    hp.on("pageerror", (e) => pageErrors.push(String(e)));
    await hp.goto(`http://127.0.0.1:${nodePort}/`);
    await hp.evaluate(() => {
      window.rejections = [];
      window.addEventListener("unhandledrejection", (e) => window.rejections.push(String(e.reason)));
    });
    await hp.waitForFunction(() => window.ready === true, null, { timeout: 10000 });
    const r = await hp.evaluate((base) => window.hostileScenario(base), `http://127.0.0.1:${hostilePort}`);
    const rejections = await hp.evaluate(() => window.rejections);
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(rejections, []);
    // A failed handshake: the manager's `error` and the socket's `connect_error` with an
    // `Error`, then a reconnection attempt; an HTTP error is the TransportError socket.io-client
    // gives.
    assert.deepEqual(r["http-500"].slice(0, 3), [
      ["error", true],
      ["connect_error", { isError: true, message: "xhr poll error", type: "TransportError", description: 500, context: "object" }],
      ["reconnect_attempt"],
    ]);
    for (const c of ["bad-handshake", "not-handshake", "binary-garbage", "huge-handshake"]) {
      const [[error, isError], [connectError, fields], [attempt]] = r[c];
      assert.deepEqual([error, isError, connectError, fields.isError, attempt], ["error", true, "connect_error", true, "reconnect_attempt"], `${c}: ${JSON.stringify(r[c])}`);
    }
    // A malformed frame once connected: `disconnect` (parse error for Socket.IO packets,
    // transport error for Engine.IO ones), then a reconnection attempt.
    const reasons = {
      "sio-bad-json": "parse error",
      "sio-bad-json-in-array": "parse error",
      "sio-bad-type": "parse error",
      "sio-not-array": "parse error",
      "sio-bad-placeholder": "parse error",
      "sio-too-many-attachments": "parse error",
      "sio-stray-binary": "parse error",
      "sio-connect-error-garbage": "parse error",
      "eio-bad-type": "transport error",
      "eio-empty": "transport error",
      "close-abrupt": "transport close",
      "poll-bad-json": "parse error",
      "poll-bad-json-in-array": "parse error",
      "poll-bad-json-then-event": "parse error",
      "poll-bad-eio": "transport error",
      "poll-empty-packet": "transport error",
    };
    for (const [c, reason] of Object.entries(reasons)) {
      assert.deepEqual(r[c].slice(0, 3), [["connect"], ["disconnect", reason], ["reconnect_attempt"]], c);
    }
    // A probe answered wrongly: `upgradeError` as engine.io-client gives it, and polling goes on.
    assert.deepEqual(r.probeRefused, { seen: [["upgradeError", true, "probe error", "websocket"]], transport: "polling", connected: true });
    // What socket.io-client accepts is delivered: a number as event name, an oversized (12 MiB)
    // event; an ack nobody waits for (its id past 2^64) is dropped, the next event arrives.
    assert.deepEqual(r["sio-name-not-string"].slice(0, 2), [["connect"], ["event", 1, ["number"]]]);
    assert.deepEqual(r.oversized.slice(0, 2), [["connect"], ["event", "big", [12 * 1024 * 1024]]]);
    // An event 200,000 arrays deep: the page's `JSON.parse` reads it, as socket.io-client's does
    // (the core, whose own check stops at 127 levels, leaves the JSON of events to the page).
    assert.deepEqual(r["sio-deep"].slice(0, 2), [["connect"], ["event", "ev", ["object"]]]);
    // Attachments 200 ms apart, `socket.connected` read every 5 ms meanwhile: both arrive whole.
    assert.deepEqual(r["sio-binary-split"].slice(0, 2), [["connect"], ["event", "bin", [[1, 2, 3], [4, 5]]]]);
    assert.deepEqual(r["sio-huge-ack-id"].slice(0, 2), [["connect"], ["event", "after", []]]);
    assert.deepEqual(r["sio-unicode"].slice(0, 2), [["connect"], ["event", "é🦀", ["object", 4]]]);
    assert.deepEqual(r["sio-unicode-ack-id"].slice(0, 2), [["connect"], ["event", "é", ["object", 2, "function"]]]);
    assert.deepEqual(r["poll-oversized"].slice(0, 2), [["connect"], ["event", "big", [12 * 1024 * 1024]]]);
    // A refusal without a message: `connect_error` with an `Error` whose message is empty, as
    // socket.io-client gives (`new Error(undefined)`); the refused socket does not reconnect.
    assert.deepEqual(r["poll-connect-error-garbage"][0], ["connect_error", { isError: true, message: "", type: undefined, description: "undefined", context: "undefined" }]);
    await hp.close();
  });

  await test("chat example: two browser contexts exchange a message and an image, see who is in the room, acked messages, no second 'joined' after a recovered reconnection (screenshot)", async () => {
    const chat = `http://127.0.0.1:${chatPort}/`;
    const a = await (await browser.newContext()).newPage();
    const b = await (await browser.newContext()).newPage();
    for (const [p, nick] of [[a, "alice"], [b, "bob"]]) {
      p.on("pageerror", (e) => console.log(`chat page error: ${e}`));
      await p.goto(chat);
      await p.waitForSelector("#status.connected", { timeout: 10000 });
      // Not in a room yet: nothing to send.
      assert.equal(await p.$eval("#text", (t) => t.disabled), true);
      await p.fill("#nick", nick);
      await p.fill("#room", "rust");
      await p.click("#who button");
      await p.waitForSelector("#text:not([disabled])", { timeout: 10000 });
    }
    await a.waitForSelector("#log li:has-text('bob joined')", { timeout: 5000 });
    // The member list, kept by the server: both pages list both.
    const memberList = (p) => p.$$eval("#members li", (lis) => lis.map((li) => li.textContent));
    await a.waitForSelector("#members li:has-text('bob')", { timeout: 5000 });
    assert.deepEqual(await memberList(a), ["alice", "bob"]);
    assert.deepEqual(await memberList(b), ["alice", "bob"]);
    await b.fill("#text", "hello from bob");
    await a.waitForSelector("#typing:has-text('bob is typing')", { timeout: 5000 });
    await b.press("#text", "Enter");
    await a.waitForSelector("#log li.msg:has-text('hello from bob')", { timeout: 5000 });
    // The sender's line is marked sent once the server acknowledged it, with the server's time,
    // as is the line the others see.
    await b.waitForSelector("#log li.me.sent:has-text('hello from bob')", { timeout: 5000 });
    assert.equal(await b.$$eval("#log li.me.pending", (l) => l.length), 0);
    const sentAt = await b.$eval("#log li.me.sent time", (t) => t.getAttribute("datetime"));
    const seenAt = await a.$eval("#log li.msg:has-text('hello from bob') time", (t) => t.getAttribute("datetime"));
    assert.equal(sentAt, seenAt);
    // An image (binary attachment) goes through the server's room broadcast.
    await b.evaluate(() => {
      // a 1x1 PNG
      const png = atob("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==");
      window.chatSocket.emit("image", "image/png", Uint8Array.from(png, (c) => c.charCodeAt(0)));
    });
    await a.waitForSelector("#log li.msg img", { timeout: 5000 });
    const loaded = await a.$eval("#log li.msg img", (img) => img.decode().then(() => img.naturalWidth));
    assert.equal(loaded, 1);
    mkdirSync(join(here, "screenshots"), { recursive: true });
    await a.screenshot({ path: join(here, "screenshots", "chat.png") });

    // bob's connection drops (the WebSocket closes under the page): while disconnected, his
    // input is disabled; the session is recovered, so alice does not hear "bob joined" again.
    await b.waitForFunction(() => [...window.chatSocket.io._transports.values()].some((t) => t.ws && t.ws.readyState === 1), null, { timeout: 10000 });
    await b.evaluate(() => {
      window.disabledWhileDown = new Promise((resolve) => window.chatSocket.once("disconnect", () => resolve(document.getElementById("text").disabled)));
      for (const t of window.chatSocket.io._transports.values()) if (t.ws) t.ws.close();
    });
    assert.equal(await b.evaluate(() => window.disabledWhileDown), true);
    await a.waitForSelector("#log li:has-text('bob left')", { timeout: 5000 });
    await b.waitForSelector("#text:not([disabled])", { timeout: 15000 });
    assert.equal(await b.evaluate(() => window.chatSocket.recovered), true);
    await b.fill("#text", "back again");
    await b.press("#text", "Enter");
    await a.waitForSelector("#log li.msg:has-text('back again')", { timeout: 5000 });
    assert.equal(await a.$$eval("#log li:has-text('bob joined')", (l) => l.length), 1);
    assert.deepEqual(await memberList(a), ["alice", "bob"]);
    // bob leaves for good: alice's list follows.
    await b.close();
    await a.waitForFunction(() => document.querySelectorAll("#members li").length === 1, null, { timeout: 10000 });
    assert.deepEqual(await memberList(a), ["alice"]);
    await a.close();
  });

  await test("login recipe: a page logs in over HTTP, the browser keeps the HttpOnly session cookie and sends it with Socket.IO's requests, the socket sees the user (polling with upgrade, WebSocket only)", async () => {
    // The page comes from a front-end server that proxies everything else to the app (as a
    // Vite dev server's `server.proxy` does), so the app's cookie is first-party.
    const front = await frontEnd(loginBase);
    const p = await (await browser.newContext()).newPage();
    p.on("pageerror", (e) => console.log(`login page error: ${e}`));
    await p.goto(`${front}/app.html`);
    await p.waitForFunction(() => window.ready === true, null, { timeout: 10000 });
    const r = await p.evaluate(async () => {
      const outcome = (s) =>
        new Promise((resolve) => {
          const t = setTimeout(() => resolve("timeout"), 5000);
          s.once("connect", () => (clearTimeout(t), resolve("connected")));
          s.once("connect_error", (e) => (clearTimeout(t), resolve(`refused: ${e.message}`)));
        });
      const out = {};
      const anonymous = window.io(location.origin, { forceNew: true, reconnection: false });
      out.anonymous = await outcome(anonymous);
      anonymous.disconnect();
      out.login = (await fetch("/login?user=ann")).status;
      out.cookieHiddenFromScripts = !document.cookie.includes("sid=");
      for (const [name, transports] of [["upgrade", ["polling", "websocket"]], ["websocket", ["websocket"]]]) {
        const s = window.io(location.origin, { forceNew: true, reconnection: false, transports });
        out[name] = await outcome(s);
        out[`${name} whoami`] = await s.timeout(5000).emitWithAck("whoami").catch((e) => `error: ${e.message}`);
        if (name === "upgrade") {
          // The upgrade happened: an open WebSocket carries the connection (the cookie went
          // with the upgrade request too).
          const ws = () => [...s.io._transports.values()].some((t) => t.ws && t.ws.readyState === 1);
          for (let i = 0; i < 50 && !ws(); i++) await new Promise((r) => setTimeout(r, 100));
          out["upgrade transport"] = ws() ? "websocket" : "polling";
        }
        s.disconnect();
      }
      return out;
    });
    assert.deepEqual(r, {
      anonymous: "refused: unauthorized",
      login: 204,
      cookieHiddenFromScripts: true,
      upgrade: "connected",
      "upgrade whoami": { user: "ann", via: "session" },
      "upgrade transport": "websocket",
      websocket: "connected",
      "websocket whoami": { user: "ann", via: "session" },
    });
    await p.close();
  });
} catch (e) {
  results.push(["setup", false]);
  console.log(`browser tests: setup failed: ${e && e.stack ? e.stack : e}`);
} finally {
  if (browser) await browser.close().catch(() => {});
  cleanup();
  clearTimeout(deadline);
}

const failed = results.filter(([, ok]) => !ok).length;
console.log(`\nbrowser tests: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
