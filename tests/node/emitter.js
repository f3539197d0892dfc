// The reference emitter on the command line: one cluster operation written to Redis with npm
// @socket.io/redis-emitter 5.1.0 (classic format, key "socket.io"), then exit.
//
// Usage: node emitter.js <redis-url> <operation> <namespace> <room> <event> <json-args> [<except-room>]
//   operation: emit | sockets-join | sockets-leave | disconnect-sockets | server-side-emit
//   room: the target room, "" for every socket of the namespace
//   json-args: a JSON array; for emit and server-side-emit the event's arguments, where an object
//     that is exactly {"$binary": "<base64>"} is binary data; for sockets-join/sockets-leave the
//     room names; for disconnect-sockets [close].
// Exits 0 once Redis has the message, 1 with a message on error. This emitter writes the
// classic format only (it cannot reach sharded or streams nodes); CLUSTER_ADAPTER, if set,
// must be "classic".

"use strict";

const { createClient } = require("redis");
const { Emitter } = require("@socket.io/redis-emitter");

function fromJson(v) {
  if (Array.isArray(v)) return v.map(fromJson);
  if (v && typeof v === "object") {
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === "$binary" && typeof v.$binary === "string") {
      return Buffer.from(v.$binary, "base64");
    }
    const o = {};
    for (const [k, x] of Object.entries(v)) o[k] = fromJson(x);
    return o;
  }
  return v;
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv.length < 6 || argv.length > 7) {
    throw new Error("usage: emitter.js <redis-url> <operation> <namespace> <room> <event> <json-args> [<except-room>]");
  }
  const [url, operation, nsp, room, event, jsonArgs, except] = argv;
  const mode = process.env.CLUSTER_ADAPTER || "classic";
  if (mode !== "classic") {
    throw new Error(`@socket.io/redis-emitter writes the classic format only, not ${mode}`);
  }
  const args = JSON.parse(jsonArgs);
  if (!Array.isArray(args)) throw new Error("json-args must be a JSON array");

  const client = createClient({ url });
  client.on("error", () => {});
  await client.connect();
  const emitter = new Emitter(client).of(nsp);
  let target = emitter.except(except === undefined ? [] : [except]);
  if (room !== "") target = target.to(room);

  switch (operation) {
    case "emit":
      target.emit(event, ...fromJson(args));
      break;
    case "server-side-emit":
      emitter.serverSideEmit(event, ...fromJson(args));
      break;
    case "sockets-join":
      target.socketsJoin(args);
      break;
    case "sockets-leave":
      target.socketsLeave(args);
      break;
    case "disconnect-sockets":
      target.disconnectSockets(args[0] === true);
      break;
    default:
      throw new Error(`unknown operation ${operation}`);
  }
  // The emitter does not wait for its PUBLISH; QUIT is answered after it.
  await client.quit();
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`emitter.js: ${(e && e.message) || e}`);
    process.exit(1);
  },
);
