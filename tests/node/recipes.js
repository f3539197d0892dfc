// Drives one of ferrio-server's recipe examples (`examples/recipe_*.rs`) with the real
// socket.io-client under Node, as a JavaScript front-end would use it.
//
// Input (stdin): {"recipe": "login" | "presence" | "rate_limit" | "connection_cap",
//                 "url": "http://127.0.0.1:PORT"}
// The rate-limit recipe must run with RATE_LIMIT=5, the connection cap with MAX_CLIENTS=2.
// Output: one line per scenario, "ok <name>", then "ALL OK". Any failure prints the error and
// exits with status 1; the whole run is bounded to 40 s (exit status 2).

"use strict";

const assert = require("node:assert/strict");
const { io } = require("socket.io-client");

setTimeout(() => {
  console.error("recipes: timed out");
  process.exit(2);
}, 40000).unref();

const sockets = [];

function readStdin() {
  return new Promise((resolve) => {
    let data = "";
    process.stdin.on("data", (c) => (data += c));
    process.stdin.on("end", () => resolve(data));
  });
}

/// A new socket (its own Manager), closed at the end of the run.
function client(url, opts = {}) {
  const socket = io(url, { forceNew: true, reconnection: false, ...opts });
  sockets.push(socket);
  return socket;
}

/// Resolves with the first `connect` (true) or `connect_error` (its Error).
function outcome(socket, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`neither connect nor connect_error within ${ms} ms`)), ms);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.once("connect_error", (err) => {
      clearTimeout(timer);
      resolve(err);
    });
  });
}

async function connected(socket) {
  const result = await outcome(socket);
  assert.equal(result, true, `connect_error: ${result && result.message}`);
  return socket;
}

/// Collects the payloads of `event` in order; `next()` waits for the next one.
function heard(socket, event) {
  const queue = [];
  const waiters = [];
  socket.on(event, (payload) => {
    const w = waiters.shift();
    if (w) w(payload);
    else queue.push(payload);
  });
  return {
    next(ms = 5000) {
      if (queue.length) return Promise.resolve(queue.shift());
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "${event}" within ${ms} ms`)), ms);
        waiters.push((p) => {
          clearTimeout(timer);
          resolve(p);
        });
      });
    },
  };
}

async function login(url) {
  // Not logged in: refused by the connect middleware with the application's error.
  const anonymous = await outcome(client(url));
  assert.ok(anonymous instanceof Error);
  assert.equal(anonymous.message, "unauthorized");
  console.log("ok login: refused without a session");

  // Logged in: the session cookie on Socket.IO's requests (Node has no cookie jar, so it goes
  // in extraHeaders; a browser sends it by itself), over polling with the upgrade and over
  // WebSocket alone.
  const res = await fetch(`${url}/login?user=ann`);
  assert.equal(res.status, 204);
  const cookie = res.headers.get("set-cookie").split(";")[0];
  assert.match(cookie, /^sid=[0-9a-f]{32}$/);
  for (const transports of [["polling", "websocket"], ["websocket"]]) {
    const socket = await connected(client(url, { transports, extraHeaders: { cookie } }));
    assert.deepEqual(await socket.timeout(5000).emitWithAck("whoami"), { user: "ann", via: "session" });
    socket.disconnect();
  }
  console.log("ok login: the session's user over polling and WebSocket");

  // The token alternative: a signed token in `auth`, no cookie.
  const token = await (await fetch(`${url}/token?user=bob`)).text();
  const socket = await connected(client(url, { auth: { token } }));
  assert.deepEqual(await socket.timeout(5000).emitWithAck("whoami"), { user: "bob", via: "token" });
  const forged = await outcome(client(url, { auth: { token: token.replace("bob.", "eve.") } }));
  assert.equal(forged.message, "unauthorized");
  console.log("ok login: a signed token in auth, a forged one refused");
}

async function presence(url) {
  const tab = (user) => {
    const socket = client(url, { auth: { user } });
    return { socket, online: heard(socket, "online"), notify: heard(socket, "notify") };
  };
  const ann1 = tab("ann");
  assert.deepEqual(await ann1.online.next(), ["ann"]);
  const bob = tab("bob");
  assert.deepEqual(await bob.online.next(), ["ann", "bob"]);
  assert.deepEqual(await ann1.online.next(), ["ann", "bob"]);
  const ann2 = tab("ann");
  assert.deepEqual(await bob.online.next(), ["ann", "bob"]);

  // Both tabs of ann hear what bob sends to ann.
  assert.equal(await bob.socket.timeout(5000).emitWithAck("notify", "ann", "hi"), 2);
  for (const t of [ann1, ann2]) {
    assert.deepEqual(await t.notify.next(), { from: "bob", text: "hi" });
  }
  console.log("ok presence: every tab of a user is reached");

  // One tab closes: ann stays online; her other tab is still reached.
  ann1.socket.disconnect();
  for (let i = 0; ; i++) {
    if ((await bob.socket.timeout(5000).emitWithAck("notify", "ann", "still there?")) === 1) break;
    assert.ok(i < 100, "the closed tab never left ann's room");
    await new Promise((r) => setTimeout(r, 50));
  }
  tab("carl");
  assert.deepEqual(await bob.online.next(), ["ann", "bob", "carl"]);
  // The last tab closes: ann goes offline for everyone.
  ann2.socket.disconnect();
  assert.deepEqual(await bob.online.next(), ["bob", "carl"]);
  console.log("ok presence: online until the last tab closes");
}

async function rateLimit(url) {
  const socket = await connected(client(url));
  const answers = [];
  let wake = null;
  for (const event of ["pong", "rate-limit"]) {
    socket.on(event, (payload) => {
      answers.push([event, payload]);
      if (wake) wake();
    });
  }
  for (let i = 1; i <= 8; i++) socket.emit("ping", i);
  const until = Date.now() + 10000;
  while (answers.length < 8) {
    assert.ok(Date.now() < until, `only ${answers.length} answers: ${JSON.stringify(answers)}`);
    await new Promise((r) => {
      wake = r;
      setTimeout(r, 100);
    });
  }
  const pongs = answers.filter(([e]) => e === "pong").map(([, p]) => p);
  assert.deepEqual(pongs, [1, 2, 3, 4, 5]);
  const errors = answers.filter(([e]) => e === "rate-limit").map(([, p]) => p);
  assert.equal(errors.length, 3);
  for (const e of errors) {
    assert.equal(e.message, "rate limit exceeded");
    assert.equal(typeof e.retryInMs, "number");
  }
  console.log("ok rate_limit: a burst past the limit gets one error event per refused event");

  const other = await connected(client(url));
  const pong = heard(other, "pong");
  other.emit("ping", "other");
  assert.equal(await pong.next(), "other");
  console.log("ok rate_limit: another socket has its own window");
}

async function connectionCap(url) {
  const first = await connected(client(url));
  await connected(client(url));
  // Full: the handshake is refused. Over polling, socket.io-client's error carries the status
  // in its description; over WebSocket the browser API shows no status at all.
  const refused = await outcome(client(url, { transports: ["polling"] }));
  assert.ok(refused instanceof Error);
  assert.equal(refused.message, "xhr poll error");
  assert.equal(refused.description, 403);
  const refusedWs = await outcome(client(url, { transports: ["websocket"] }));
  assert.ok(refusedWs instanceof Error);
  assert.equal(refusedWs.message, "websocket error");
  console.log("ok connection_cap: refused past the cap over polling and WebSocket");

  // One leaves: a new client gets its place once the server has seen it go.
  first.disconnect();
  for (let i = 0; ; i++) {
    const result = await outcome(client(url));
    if (result === true) break;
    assert.ok(i < 100, `still full: ${result.message}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  console.log("ok connection_cap: a place frees up when a client leaves");
}

async function main() {
  const { recipe, url } = JSON.parse(await readStdin());
  const run = { login, presence, rate_limit: rateLimit, connection_cap: connectionCap }[recipe];
  assert.ok(run, `unknown recipe ${recipe}`);
  await run(url);
  console.log("ALL OK");
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const s of sockets) s.disconnect();
    setTimeout(() => process.exit(process.exitCode || 0), 50);
  });
