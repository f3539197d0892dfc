// The real socket.io-client sends CONNECT again while the server's connect middleware is still
// deciding: the application calls `socket.connect()` with new auth, and again when it gets a
// refusal. Every CONNECT gets its answer and the socket ends up connected.
//
// Input (stdin): {"url": "http://127.0.0.1:PORT", "transports": [...]}. The server
// (tests/tests/connect_retries_node.rs): each run of `/admin`'s middleware waits for a verdict
// given through `/control`: `next-attempt` acks with the auth of the next middleware run (once
// it runs), `decide` (true: accept, false: refuse with "no") answers the oldest one waiting,
// `attempts` acks with the number of runs so far; `/admin` acks `echo`.
// Output: "ok retries", then "ALL OK". Any failure prints the error and exits with status 1; the
// whole run is bounded to 30 s (exit status 2).

"use strict";

const assert = require("node:assert/strict");
const { Manager } = require("socket.io-client");

const TIMEOUT = 30000;
setTimeout(() => {
  console.error("connect-retries: timed out");
  process.exit(2);
}, TIMEOUT).unref();

function readStdin() {
  return new Promise((resolve) => {
    let data = "";
    process.stdin.on("data", (c) => (data += c));
    process.stdin.on("end", () => resolve(data));
  });
}

function once(emitter, event, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${event}" within ${ms} ms`)), ms);
    emitter.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

async function main() {
  const { url, transports } = JSON.parse(await readStdin());
  // Sockets connect when told to, so that the test knows each CONNECT it sends.
  const manager = new Manager(url, {
    path: "/socket.io/",
    transports,
    reconnection: false,
    autoConnect: false,
  });
  const control = manager.socket("/control");
  control.connect();
  await once(control, "connect");
  const ask = (...args) => control.timeout(10000).emitWithAck(...args);

  const admin = manager.socket("/admin", { auth: { try: 1 } });
  const seen = [];
  const refused = once(admin, "connect_error");
  admin.on("connect", () => seen.push("connect"));
  admin.on("connect_error", (err) => {
    seen.push(`connect_error ${err.message}`);
    // The usual retry: new auth, connect again (the server is deciding on try 2 already).
    admin.auth = { try: 3 };
    admin.connect();
  });
  admin.connect();
  assert.deepEqual(await ask("next-attempt"), { try: 1 });
  // While the middleware decides: `connect()` again, then again with new auth.
  admin.connect();
  admin.auth = { try: 2 };
  admin.connect();
  assert.equal(await ask("decide", false), true);
  await refused;
  // The refusal answered the first CONNECT; the two others started a new run, with the last
  // one's auth.
  assert.deepEqual(await ask("next-attempt"), { try: 2 });
  // Accepted: it answers those two and the one sent after the refusal, with one socket id.
  assert.equal(await ask("decide", true), true);
  if (!admin.connected) await once(admin, "connect");
  const id = admin.id;
  assert.equal(await admin.timeout(10000).emitWithAck("echo", 7), 7);
  assert.deepEqual(seen, ["connect_error no", "connect", "connect", "connect"]);
  assert.equal(admin.id, id);
  assert.equal(await ask("attempts"), 2);
  assert.ok(admin.connected && control.connected);
  console.log("ok retries");

  admin.disconnect();
  control.disconnect();
  console.log("ALL OK");
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
