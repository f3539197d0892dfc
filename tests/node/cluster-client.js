// socket.io-client 4.8 clients for the cluster node tests, driven by JSON lines.
//
// Usage: node cluster-client.js
// Input (stdin), one JSON object per line, each with an "id" and an "op"; the answer is
// {"id":..,"ok":true,...} or {"id":..,"error":"..."}:
//   {"op":"client","name":N,"url":U,"nsp":"/","path":"/socket.io/","auth":{},"silent":false}
//                                                               connects (WebSocket); answers {"sid"}
//   {"op":"emit","name":N,"ev":E,"args":[..],"ack":true}        emits; with ack, answers {"ack": <first ack argument>}
//   {"op":"close","name":N}                                     disconnects
//   {"op":"drop","name":N}                                      closes the connection without a DISCONNECT
//                                                               (as a network loss: the session may be recovered)
//   {"op":"state","name":N}     answers {"pid","offset"}: what the client would recover with
// Other output lines are events: {"event":"client_event","name":N,"ev":E,"args":[..]}.
// Every client answers every ack request with {"from": <its name>, "args": <the event's arguments>},
// except a "silent" one, which never answers. Exits when stdin closes, or after 120 s.

"use strict";

const readline = require("node:readline");
const { io: ioc } = require("socket.io-client");

setTimeout(() => process.exit(2), 120000).unref();

const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const clients = new Map();

const ops = {
  async client({ name, url, nsp = "/", path = "/socket.io/", auth = {}, silent = false }) {
    const socket = ioc(url + nsp, { forceNew: true, reconnection: false, transports: ["websocket"], path, auth });
    clients.set(name, socket);
    socket.onAny((ev, ...args) => {
      const cb = typeof args[args.length - 1] === "function" ? args.pop() : null;
      out({ event: "client_event", name, ev, args });
      if (cb && !silent) cb({ from: name, args });
    });
    await new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", reject);
    });
    return { sid: socket.id };
  },
  async emit({ name, ev, args = [], ack = false }) {
    const socket = clients.get(name);
    if (!socket) throw new Error(`no client ${name}`);
    if (ack) return { ack: (await socket.timeout(15000).emitWithAck(ev, ...args)) ?? null };
    socket.emit(ev, ...args);
    return {};
  },
  async close({ name }) {
    clients.get(name)?.disconnect();
    return {};
  },
  async drop({ name }) {
    clients.get(name)?.io.engine.close();
    return {};
  },
  async state({ name }) {
    const socket = clients.get(name);
    return { pid: socket?._pid ?? null, offset: socket?._lastOffset ?? null };
  },
};

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", async (line) => {
  let req;
  try {
    req = JSON.parse(line);
  } catch {
    return;
  }
  try {
    const result = await ops[req.op](req);
    out({ id: req.id, ok: true, ...result });
  } catch (e) {
    out({ id: req.id, error: String((e && e.message) || e) });
  }
});
rl.on("close", () => process.exit(0));
out({ event: "ready" });
