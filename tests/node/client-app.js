// Drives the `/app/` profile of Ferrio's e2e test server (Socket.IO inside an axum app) with
// the real socket.io-client under Node: log in to get the `user` cookie, then connect with it
// (`withCredentials`, the cookie and an allowed `Origin` in `extraHeaders`, as Node has no
// cookie jar).
//
// Input (stdin): {"url": "http://127.0.0.1:PORT", "transports": [...], "origin": "<allowed>"}.
// Output: one line per scenario, "ok <name>", then "ALL OK". Any failure prints the error and
// exits with status 1; the whole run is bounded to 30 s (exit status 2).

"use strict";

const assert = require("node:assert/strict");
const { io } = require("socket.io-client");

setTimeout(() => {
  console.error("client-app: timed out");
  process.exit(2);
}, 30000).unref();

function readStdin() {
  return new Promise((resolve) => {
    let data = "";
    process.stdin.on("data", (c) => (data += c));
    process.stdin.on("end", () => resolve(data));
  });
}

function once(emitter, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${event}" within ${ms} ms`)), ms);
    emitter.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

async function login(url, origin, name) {
  const res = await fetch(`${url}/login?user=${name}`, { headers: { Origin: origin } });
  assert.equal(res.status, 204);
  assert.equal(res.headers.get("access-control-allow-origin"), origin);
  assert.equal(res.headers.get("access-control-allow-credentials"), "true");
  const cookie = res.headers.get("set-cookie");
  assert.equal(cookie, `user=${name}; Path=/; HttpOnly; SameSite=Lax`);
  return cookie.split(";")[0];
}

async function main() {
  const { url, transports, origin } = JSON.parse(await readStdin());
  const upgrade = transports.length > 1;
  const sockets = [];
  const connect = (cookie) => {
    const extraHeaders = { Origin: origin };
    // Lower case: the Node WebSocket transport adds its cookie jar's cookies to `cookie`.
    if (cookie) extraHeaders.cookie = cookie;
    const socket = io(url, {
      path: "/app/",
      transports,
      forceNew: true,
      reconnection: false,
      withCredentials: true,
      extraHeaders,
    });
    sockets.push(socket);
    return socket;
  };
  const connected = async (socket) => {
    await once(socket, "auth");
    if (!socket.connected) await once(socket, "connect");
  };

  const ann = await login(url, origin, "ann");
  const bob = await login(url, origin, "bob");
  console.log("ok login");

  {
    const s = connect(null);
    const [err] = await once(s, "connect_error");
    assert.equal(err.message, "unauthorized");
    s.close();
    console.log("ok unauthorized");
  }

  const a = connect(ann);
  const b = connect(bob);
  await Promise.all([connected(a), connected(b)]);
  {
    if (upgrade && a.io.engine.transport.name !== "websocket") {
      await once(a.io.engine, "upgrade");
    }
    const who = await a.timeout(3000).emitWithAck("whoami");
    assert.equal(who.id, a.id);
    assert.equal(who.user, "ann");
    assert.equal(who.address, "127.0.0.1");
    assert.equal(who.transport, upgrade ? "websocket" : transports[0]);
    assert.deepEqual(who.rooms, ["user:ann"]);
    console.log("ok whoami");
  }

  {
    const dm = once(a, "dm");
    const reached = await b.timeout(3000).emitWithAck("send-to-user", "ann", "hi", { n: 1 });
    assert.equal(reached, 1);
    const args = await dm;
    assert.deepEqual(args, ["hi", { n: 1 }]);
    console.log("ok send-to-user");
  }

  for (const s of sockets) s.close();
  console.log("ALL OK");
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
