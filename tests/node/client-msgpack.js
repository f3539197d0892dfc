// Drives a Ferrio server that uses the msgpack parser (the e2e server's `/msgpack/` profile)
// with the real socket.io-client and socket.io-msgpack-parser.
//
// Input (stdin): {"url": "http://127.0.0.1:PORT", "path": "/msgpack/", "transports": [...]}.
// Output: one line per scenario, "ok <name>", then "ALL OK". Any failure prints the error and
// exits with status 1; the whole run is bounded to 30 s (exit status 2).

"use strict";

const assert = require("node:assert/strict");
const { io } = require("socket.io-client");
const parser = require("socket.io-msgpack-parser");
// The notepack.io the parser itself uses (a dependency of socket.io-msgpack-parser).
const notepack = require(
  require.resolve("notepack.io", {
    paths: [require("node:path").dirname(require.resolve("socket.io-msgpack-parser"))],
  })
);

const TIMEOUT = 30000;
setTimeout(() => {
  console.error("client-msgpack: timed out");
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
  const { url, path, transports } = JSON.parse(await readStdin());
  const sockets = [];
  const connect = (nsp, opts = {}) => {
    const socket = io(url + nsp, {
      path,
      parser,
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

  // Connect with auth, whoami.
  const s = connect("/", { auth: { token: "abc", n: 1.5, list: [1, null, "x"] } });
  {
    const auth = await connected(s);
    assert.deepEqual(auth, { token: "abc", n: 1.5, list: [1, null, "x"] });
    const who = await s.timeout(3000).emitWithAck("whoami");
    assert.equal(who.id, s.id);
    assert.equal(who.nsp, "/");
    assert.equal(who.engineId, s.io.engine.id);
    assert.equal(who.transport, transports[0]);
    assert.deepEqual(who.rooms, []);
    console.log("ok connect");
  }

  // Client → server with ack, numbers and binary inline (a Node Buffer is a msgpack bin, an
  // ArrayBuffer notepack's ext 0).
  {
    const bin = Buffer.from([1, 2, 3]);
    const ab = new Uint8Array([9, 8]).buffer;
    const big = 4294967296;
    const reply = await new Promise((resolve, reject) => {
      s.timeout(3000).emit("message-with-ack", 1, -7, 0.25, big, "héllo", { three: [true, null, bin] }, ab,
        (err, ...args) => (err ? reject(err) : resolve(args)));
    });
    assert.equal(reply.length, 7);
    assert.deepEqual(reply.slice(0, 5), [1, -7, 0.25, big, "héllo"]);
    assert.equal(reply[5].three[0], true);
    assert.equal(reply[5].three[1], null);
    assert.ok(Buffer.from(reply[5].three[2]).equals(bin));
    assert.ok(Buffer.from(reply[6]).equals(Buffer.from([9, 8])));
    console.log("ok client-ack");
  }

  // Binary events both ways.
  {
    const back = once(s, "message-back");
    s.emit("message", { data: Buffer.from([4, 5]) }, "text", Buffer.alloc(0));
    const [obj, text, empty] = await back;
    assert.ok(Buffer.isBuffer(obj.data), "binary comes back as a Buffer");
    assert.ok(obj.data.equals(Buffer.from([4, 5])));
    assert.equal(text, "text");
    assert.equal(Buffer.from(empty).length, 0);
    console.log("ok binary");
  }

  // Server → client with ack.
  {
    s.on("ask", (payload, cb) => {
      if (payload && payload.answer) cb("yes", Buffer.from([7]));
    });
    const answered = await s.timeout(3000).emitWithAck("ask-client", { answer: true }, 2000);
    assert.equal(answered.ok, true);
    assert.equal(answered.reply[0], "yes");
    assert.ok(Buffer.from(answered.reply[1]).equals(Buffer.from([7])));
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

  // Rooms and broadcasts (encoded once by the server, shared between recipients).
  {
    const a = connect("/custom");
    const b = connect("/custom");
    await Promise.all([connected(a), connected(b)]);
    assert.deepEqual(await b.timeout(3000).emitWithAck("join", "room1"), ["room1"]);
    const toB = once(b, "room-emit");
    await a.timeout(3000).emitWithAck("room-emit", "room1", "hi", Buffer.from([1]));
    const [hi, hiBuf] = await toB;
    assert.equal(hi, "hi");
    assert.ok(Buffer.from(hiBuf).equals(Buffer.from([1])));
    const toA = once(a, "broadcast");
    await b.timeout(3000).emitWithAck("broadcast", { from: "b" });
    assert.deepEqual((await toA)[0], { from: "b" });
    const gone = once(b, "disconnect");
    b.emit("disconnect-me", false);
    assert.equal((await gone)[0], "io server disconnect");
    console.log("ok rooms");
  }

  // Connect errors: a middleware's refusal with data, an unknown namespace.
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
    console.log("ok connect-error");
  }

  // Bad input closes only the offender: malformed msgpack, a map of the wrong shape, wrong
  // types, and a JSON parser's text packet.
  {
    const bystander = connect("/");
    await connected(bystander);
    const offences = [
      Buffer.from([0xc1]),
      Buffer.from([0x92, 0x02, 0xa1, 0x2f]),
      notepack.encode({ type: 2, nsp: "/", data: { not: "an array" } }),
      notepack.encode({ type: "2", nsp: "/", data: ["x"] }),
      notepack.encode({ type: 2, nsp: 7, data: ["x"] }),
      notepack.encode({ type: 2, nsp: "/", data: ["x"], id: "1" }),
      Buffer.concat([notepack.encode({ type: 2, nsp: "/", data: ["x"] }), Buffer.from([0])]),
      '2["x"]',
    ];
    for (const offence of offences) {
      const offender = connect("/");
      await connected(offender);
      const closed = once(offender, "disconnect");
      offender.io.engine.write(offence);
      const [reason] = await closed;
      assert.equal(reason, "transport close", `offence ${offence.toString("hex")}`);
    }
    const who = await bystander.timeout(3000).emitWithAck("whoami");
    assert.equal(who.id, bystander.id);
    console.log("ok bad-input");
  }

  for (const socket of sockets) socket.disconnect();
  console.log("ALL OK");
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
