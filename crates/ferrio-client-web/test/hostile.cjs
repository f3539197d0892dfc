// A hostile Engine.IO server for the browser tests: a valid handshake, then malformed frames
// (over long-polling): a Socket.IO packet that does not parse, a CONNECT reply that is not an
// object, a binary placeholder out of range, junk bytes. Whatever it sends must reach the page
// as a connect_error, a disconnect or a reconnection, never as a trap.
// Usage: node hostile.cjs -> prints "listening <port>" (127.0.0.1, PORT or a free port).
"use strict";

const http = require("node:http");

const junk = [
  '4{"not": "a packet"',
  "40[1,2",
  "40\"just a string\"",
  '451-["e",{"_placeholder":true,"num":7}]',
  "\u0000\u0001\u00ff\ufffd",
  '42["ok-event",' + "[".repeat(10000) + "]".repeat(10000) + "]",
];
let n = 0;
const cors = { "Access-Control-Allow-Origin": "*", "Content-Type": "text/plain; charset=UTF-8" };

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  if (req.method === "OPTIONS") {
    res.writeHead(204, { ...cors, "Access-Control-Allow-Headers": "content-type" }).end();
    return;
  }
  if (req.method === "POST") {
    req.resume();
    req.on("end", () => res.writeHead(200, cors).end("ok"));
    return;
  }
  if (!url.searchParams.get("sid")) {
    const sid = `s${n++}`;
    const open = { sid, upgrades: [], pingInterval: 25000, pingTimeout: 20000, maxPayload: 1000000 };
    res.writeHead(200, cors).end("0" + JSON.stringify(open));
    return;
  }
  // Every poll of a session: the next piece of junk, after a valid CONNECT accept for some.
  const piece = junk[n++ % junk.length];
  const body = n % 2 === 0 ? `40{"sid":"x"}\u001e${piece}` : piece;
  res.writeHead(200, cors).end(body);
});

server.listen(Number(process.env.PORT || 0), "127.0.0.1", () =>
  console.log(`listening ${server.address().port}`),
);
