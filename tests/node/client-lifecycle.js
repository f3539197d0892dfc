// Drives Ferrio's e2e test server with the real socket.io-client: a socket's data
// (`set-data` / `get-data`), what the other sockets hear when one leaves (`peer-disconnecting`
// while it is still in its rooms, then `peer-disconnect`), and the data a recovered socket gets
// back (on /recovery/).
//
// Input (stdin): {"url": "http://127.0.0.1:PORT", "transports": [...]}.
// Output: one line per scenario, "ok <name>", then "ALL OK". Any failure prints the error and
// exits with status 1; the whole run is bounded to 30 s (exit status 2).

"use strict";

const assert = require("node:assert/strict");
const { io } = require("socket.io-client");

setTimeout(() => {
  console.error("client-lifecycle: timed out");
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

async function main() {
  const { url, transports } = JSON.parse(await readStdin());
  const sockets = [];
  const connect = (path, opts = {}) => {
    const socket = io(url, { path, transports, forceNew: true, reconnection: false, ...opts });
    sockets.push(socket);
    return socket;
  };
  const connected = async (socket) => {
    await once(socket, "auth");
    if (!socket.connected) await once(socket, "connect");
  };

  // set-data / get-data.
  {
    const s = connect("/socket.io/");
    await connected(s);
    assert.equal(await s.timeout(3000).emitWithAck("get-data"), null);
    await s.timeout(3000).emitWithAck("set-data", { user: "ann", n: [1, 2] });
    assert.deepEqual(await s.timeout(3000).emitWithAck("get-data"), { user: "ann", n: [1, 2] });
    console.log("ok data");
  }

  // One socket leaves: the observers hear peer-disconnecting (with its rooms), then
  // peer-disconnect.
  {
    const observer = connect("/socket.io/");
    const leaver = connect("/socket.io/");
    await Promise.all([connected(observer), connected(leaver)]);
    await observer.timeout(3000).emitWithAck("join", "observers");
    await leaver.timeout(3000).emitWithAck("join", "observers");
    await leaver.timeout(3000).emitWithAck("join", "x");
    const id = leaver.id;
    const heard = [];
    const both = new Promise((resolve) => {
      observer.on("peer-disconnecting", (p) => heard.push(["peer-disconnecting", p]));
      observer.on("peer-disconnect", (p) => {
        heard.push(["peer-disconnect", p]);
        resolve();
      });
    });
    leaver.disconnect();
    await Promise.race([both, once(observer, "never", 5000)]);
    assert.deepEqual(heard, [
      ["peer-disconnecting", { id, reason: "client namespace disconnect", rooms: ["observers", "x"] }],
      ["peer-disconnect", { id, reason: "client namespace disconnect" }],
    ]);
    console.log("ok peer-disconnecting");
  }

  // Recovery gives the data back.
  {
    const a = connect("/recovery/", { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 200 });
    await connected(a);
    await a.timeout(3000).emitWithAck("set-data", { cart: ["book"] });
    const id = a.id;
    const reconnected = once(a, "connect", 10000);
    a.io.engine.close();
    await reconnected;
    assert.equal(a.recovered, true);
    assert.equal(a.id, id);
    assert.deepEqual(await a.timeout(3000).emitWithAck("get-data"), { cart: ["book"] });
    console.log("ok recovered-data");
  }

  for (const s of sockets) s.disconnect();
  console.log("ALL OK");
  process.exit(0);
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
