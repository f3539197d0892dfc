// Drives Ferrio's e2e test server with the real socket.io-client.
//
// Input (stdin): {"url": "http://127.0.0.1:PORT", "transports": ["polling"] | ["websocket"] |
// ["polling", "websocket"]}; with both, the client starts on polling and must upgrade.
// Output: one line per scenario, "ok <name>", then "ALL OK". Any failure prints the error and
// exits with status 1; the whole run is bounded to 30 s (exit status 2).

"use strict";

const assert = require("node:assert/strict");
const { io } = require("socket.io-client");

const TIMEOUT = 30000;
setTimeout(() => {
  console.error("client-e2e: timed out");
  process.exit(2);
}, TIMEOUT).unref();

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

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

async function main() {
  const { url, transports } = JSON.parse(await readStdin());
  const upgrade = transports.length > 1;
  const sockets = [];
  const connect = (nsp, opts = {}) => {
    const socket = io(url + nsp, {
      path: "/socket.io/",
      transports,
      forceNew: true,
      reconnection: false,
      ...opts,
    });
    sockets.push(socket);
    return socket;
  };
  const connected = async (socket) => {
    const [auth] = await once(socket, "auth");
    if (!socket.connected) await once(socket, "connect");
    return auth;
  };
  const expectedTransport = async (socket) => {
    if (upgrade && socket.io.engine.transport.name !== "websocket") {
      await once(socket.io.engine, "upgrade");
    }
    return upgrade ? "websocket" : transports[0];
  };

  // Connect, auth echo, whoami.
  {
    const s = connect("/", { auth: { token: "abc" } });
    const auth = await connected(s);
    assert.deepEqual(auth, { token: "abc" });
    const transport = await expectedTransport(s);
    const who = await s.timeout(3000).emitWithAck("whoami");
    assert.equal(who.id, s.id);
    assert.equal(who.nsp, "/");
    assert.equal(who.engineId, s.io.engine.id);
    assert.equal(who.transport, transport);
    assert.deepEqual(who.rooms, []);
    assert.equal(who.recovered, false);
    console.log("ok connect");

    // Client → server with ack, JSON and binary.
    const bin = Buffer.from([1, 2, 3]);
    const reply = await new Promise((resolve, reject) => {
      s.timeout(3000).emit("message-with-ack", 1, "two", { three: [true, bin] }, Buffer.alloc(0), (err, ...args) =>
        err ? reject(err) : resolve(args)
      );
    });
    assert.equal(reply.length, 4);
    assert.equal(reply[0], 1);
    assert.equal(reply[1], "two");
    assert.equal(reply[2].three[0], true);
    assert.ok(Buffer.from(reply[2].three[1]).equals(bin));
    assert.equal(Buffer.from(reply[3]).length, 0);
    console.log("ok client-ack");

    // Large binary arguments, several emits in flight at once: each ack carries its buffers
    // back byte for byte (over WebSocket, frames larger than the server's read buffer, back
    // to back).
    const large = (n, seed) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255));
    for (let round = 0; round < 3; round++) {
      const sent = [0, 1, 2].map((k) => [large(70000 + k, round * 3 + k), "t" + k, large(30000 - k, k + 7)]);
      const acks = await Promise.all(
        sent.map(
          (args) =>
            new Promise((resolve, reject) => {
              s.timeout(5000).emit("message-with-ack", ...args, (err, ...back) => (err ? reject(err) : resolve(back)));
            })
        )
      );
      acks.forEach((back, k) => {
        assert.equal(back.length, 3);
        assert.ok(Buffer.from(back[0]).equals(sent[k][0]), `round ${round} emit ${k}: first buffer`);
        assert.equal(back[1], sent[k][1]);
        assert.ok(Buffer.from(back[2]).equals(sent[k][2]), `round ${round} emit ${k}: second buffer`);
      });
    }
    console.log("ok large binary");

    // JSON arguments passed on come back as they were sent, key order included (as from
    // Node's server: JSON.parse keeps the order of keys).
    const ordered = { zeta: 1, alpha: [2.5, "é", null], mid: { y: true, x: "a\nb" } };
    const same = await new Promise((resolve, reject) => {
      s.timeout(3000).emit("message-with-ack", ordered, "two", (err, ...args) =>
        err ? reject(err) : resolve(args)
      );
    });
    assert.equal(JSON.stringify(same), JSON.stringify([ordered, "two"]));
    const backOrdered = once(s, "message-back");
    s.emit("message", ordered);
    assert.equal(JSON.stringify(await backOrdered), JSON.stringify([ordered]));
    console.log("ok key order");

    // Binary events both ways.
    const back = once(s, "message-back");
    s.emit("message", { data: Buffer.from([4, 5]) }, "text", Buffer.from([6]));
    const [obj, text, buf] = await back;
    assert.ok(Buffer.from(obj.data).equals(Buffer.from([4, 5])));
    assert.equal(text, "text");
    assert.ok(Buffer.from(buf).equals(Buffer.from([6])));
    console.log("ok binary");

    // Server → client with ack (answered, then timed out).
    s.on("ask", (payload, cb) => {
      if (payload && payload.answer) cb("yes", Buffer.from([7]));
    });
    const answered = await s.timeout(3000).emitWithAck("ask-client", { answer: true }, 2000);
    assert.equal(answered.ok, true);
    assert.equal(answered.reply[0], "yes");
    assert.ok(Buffer.from(answered.reply[1]).equals(Buffer.from([7])));
    const timedOut = await s.timeout(3000).emitWithAck("ask-client", { answer: false }, 200);
    assert.deepEqual(timedOut, { ok: false });

    const echoed = new Promise((resolve) => {
      s.on("emit-with-ack", (...args) => {
        const last = args[args.length - 1];
        if (typeof last === "function") last("re", Buffer.from([8]));
        else resolve(args);
      });
    });
    s.emit("emit-with-ack", "q", Buffer.from([9]));
    const reEmitted = await echoed;
    assert.equal(reEmitted[0], "re");
    assert.ok(Buffer.from(reEmitted[1]).equals(Buffer.from([8])));
    console.log("ok server-ack");
  }

  // Rooms and broadcasts with two clients.
  {
    const a = connect("/");
    const b = connect("/");
    await Promise.all([connected(a), connected(b)]);
    assert.deepEqual(await a.timeout(3000).emitWithAck("join", "room1"), ["room1"]);
    assert.deepEqual(await b.timeout(3000).emitWithAck("join", "room1"), ["room1"]);
    let aGotRoomEmit = false;
    a.on("room-emit", () => (aGotRoomEmit = true));
    const toB = once(b, "room-emit");
    await a.timeout(3000).emitWithAck("room-emit", "room1", "hi", Buffer.from([1]));
    const [hi, hiBuf] = await toB;
    assert.equal(hi, "hi");
    assert.ok(Buffer.from(hiBuf).equals(Buffer.from([1])));
    const toA = once(a, "broadcast");
    await b.timeout(3000).emitWithAck("broadcast", { from: "b" });
    assert.deepEqual((await toA)[0], { from: "b" });
    await sleep(50);
    assert.equal(aGotRoomEmit, false);
    assert.deepEqual(await b.timeout(3000).emitWithAck("leave", "room1"), []);
    console.log("ok rooms");

    // A server-side disconnect.
    const gone = once(b, "disconnect");
    b.emit("disconnect-me", false);
    assert.equal((await gone)[0], "io server disconnect");
    console.log("ok server-disconnect");
  }

  // Middleware refusal with data, then acceptance; unknown namespace.
  {
    const bad = connect("/restricted", { auth: { token: "nope" } });
    const [err] = await once(bad, "connect_error");
    assert.equal(err.message, "not authorized");
    assert.deepEqual(err.data, { reason: "invalid token" });
    const good = connect("/restricted", { auth: { token: "let-me-in" } });
    assert.deepEqual(await connected(good), { token: "let-me-in" });
    const unknown = connect("/nowhere");
    const [err2] = await once(unknown, "connect_error");
    assert.equal(err2.message, "Invalid namespace");
    console.log("ok middleware");
  }

  // Connection state recovery on /recovery/: the transport dies, the client reconnects, gets
  // its id and rooms back and the event it missed.
  {
    const opts = {
      path: "/recovery/",
      transports,
      forceNew: true,
      reconnectionDelay: 100,
      reconnectionDelayMax: 200,
    };
    const a = io(url, opts);
    const b = io(url, opts);
    sockets.push(a, b);
    await Promise.all([connected(a), connected(b)]);
    assert.equal(a.recovered, false);
    const id = a.id;
    assert.deepEqual(await a.timeout(3000).emitWithAck("join", "r1"), ["r1"]);
    await expectedTransport(a);
    // Listeners first: the reconnection may be quicker than the emit below.
    const disconnected = once(a, "disconnect");
    const missed = once(a, "room-emit", 10000);
    const reconnected = once(a, "connect", 10000);
    a.io.engine.close(); // the client side names it "forced close"; the server sees the transport close
    await disconnected;
    await b.timeout(3000).emitWithAck("room-emit", "r1", "missed");
    await reconnected;
    assert.equal(a.recovered, true);
    assert.equal(a.id, id);
    assert.equal((await missed)[0], "missed");
    const who = await a.timeout(3000).emitWithAck("whoami");
    assert.equal(who.recovered, true);
    assert.deepEqual(who.rooms, ["r1"]);
    console.log("ok recovery");
  }

  for (const s of sockets) s.disconnect();
  console.log("ALL OK");
  process.exit(0);
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
