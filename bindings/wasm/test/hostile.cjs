// A hostile Socket.IO server for the browser tests: it answers the client with malformed
// Engine.IO and Socket.IO frames, values of the wrong types and oversized payloads. Each case is
// chosen by the client's `case` query parameter; the page must see an error event or a
// reconnection, never an exception of its own.
//
// Usage: node hostile.cjs -> prints "listening <port>" (127.0.0.1, PORT or a free port); exits
// after 120 s. Cases:
//   polling (first GET):  http-500, bad-handshake, not-handshake, binary-garbage, huge-handshake
//   polling (after a good handshake, the long-poll answers the CONNECT and then `pollCases`;
//   `probe-refused` also offers WebSocket and answers the upgrade probe wrongly)
//   WebSocket (after the handshake and the CONNECT accept, the frames of `wsCases`)
"use strict";

const http = require("node:http");
const path = require("node:path");
const { WebSocketServer } = require(path.join(__dirname, "../../../tests/node/node_modules/ws"));

setTimeout(() => process.exit(0), 120000).unref();

const handshake = (sid, upgrades = []) =>
  "0" + JSON.stringify({ sid, upgrades, pingInterval: 25000, pingTimeout: 20000, maxPayload: 1000000 });

// Deeply nested JSON: a recursive parser would run out of stack.
const deep = (n) => "[".repeat(n) + "]".repeat(n);

// What the server sends once the socket's CONNECT arrived (after its accept, `40{"sid":...}`).
const wsCases = {
  "sio-bad-json": ['42["ev",{bad'],
  // An event whose JSON only the page's `JSON.parse` checks (it has the shape the core looks at).
  "sio-bad-json-in-array": ['42["ev",{bad]'],
  "sio-bad-type": ["49oops"],
  "sio-name-not-string": ["42[1,2]"],
  "sio-not-array": ['42{"a":1}'],
  "sio-bad-placeholder": ['451-["ev",{"_placeholder":true,"num":7}]', Buffer.from([1, 2])],
  "sio-too-many-attachments": ['4599-["ev"]'],
  "sio-stray-binary": [Buffer.from([0xff, 0x00, 0x42])],
  "sio-huge-ack-id": ['4399999999999999999999999["x"]', '42["after"]'],
  // Text outside ASCII, in the arguments and (a no-break space, which socket.io-client's parser
  // takes as part of the ack id) before them: the client must not mix up bytes and characters.
  "sio-unicode": ['42["é🦀",["ü"],"ñ🦀x"]'],
  "sio-unicode-ack-id": ['42\u00a07["é",{"k":"ü"},"🦀"]'],
  "sio-deep": ['42["ev",' + deep(200000) + "]"],
  // A binary event whose second attachment comes 200 ms after the first, while the page runs
  // commands (reads `socket.connected`): both attachments must arrive whole.
  "sio-binary-split": ['452-["bin",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]', Buffer.from([1, 2, 3]), 200, Buffer.from([4, 5])],
  "sio-connect-error-garbage": ["44{"],
  "eio-bad-type": ["9garbage"],
  "eio-empty": [""],
  oversized: ['42["big","' + "x".repeat(12 * 1024 * 1024) + '"]'],
  "close-abrupt": [],
};

// What the long-poll answers once the CONNECT arrived (Engine.IO packets), per polling case.
const accept = '40{"sid":"hostile-socket"}';
const pollCases = {
  "poll-bad-json": [accept, '42["ev",{bad'],
  "poll-bad-json-in-array": [accept, '42["ev",{bad]'],
  // The event after the one that does not parse, in the same response, is not delivered.
  "poll-bad-json-then-event": [accept, '42["ev",{bad]', '42["after"]'],
  "poll-bad-eio": [accept, "Zq"],
  "poll-empty-packet": [accept, ""],
  "poll-oversized": [accept, '42["big","' + "y".repeat(12 * 1024 * 1024) + '"]'],
  // A CONNECT_ERROR whose digits read as an ack id, with an object without `message`.
  "poll-connect-error-garbage": ['440{"sid":"hostile-socket"}'],
  // The handshake offers WebSocket, and the probe is answered with anything but `3probe`.
  "probe-refused": [accept],
};
// Polling sessions of the `pollCases`: whether the CONNECT came, the long-poll waiting for it.
const sessions = new Map();

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  const c = url.searchParams.get("case");
  const send = (status, body, type = "text/plain; charset=UTF-8") => {
    res.writeHead(status, { "Content-Type": type, "Access-Control-Allow-Origin": "*" });
    res.end(body);
  };
  if (pollCases[c]) {
    const sid = url.searchParams.get("sid");
    if (!sid) {
      const id = `hp${sessions.size}`;
      sessions.set(id, {});
      return send(200, handshake(id, c === "probe-refused" ? ["websocket"] : []));
    }
    const session = sessions.get(sid) || {};
    const answer = () => {
      session.waiting = undefined;
      send(200, pollCases[c].join("\x1e"));
    };
    if (req.method === "POST") {
      req.resume();
      req.on("end", () => {
        send(200, "ok");
        session.connected = true;
        if (session.waiting) session.waiting();
      });
      return;
    }
    if (session.connected && !session.answered) {
      session.answered = true;
      return answer();
    }
    if (!session.answered) {
      session.waiting = () => {
        session.answered = true;
        answer();
      };
      return;
    }
    // Later long-polls wait (a noop after 10 s).
    setTimeout(() => send(200, "6"), 10000).unref();
    return;
  }
  switch (c) {
    case "http-500":
      return send(500, "no");
    case "bad-handshake":
      return send(200, "0{nope");
    case "not-handshake":
      return send(200, "4hello");
    case "binary-garbage":
      return send(200, Buffer.from([0xff, 0xfe, 0x00, 0x1e, 0x80, 0x34]), "application/octet-stream");
    case "huge-handshake":
      return send(200, "0" + JSON.stringify({ sid: "x".repeat(16 * 1024 * 1024) }));
    default:
      return send(404, "");
  }
});

const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 * 1024 });
server.on("upgrade", (req, socket, head) => {
  const c = new URL(req.url, "http://x").searchParams.get("case");
  wss.handleUpgrade(req, socket, head, (ws) => {
    if (c === "probe-refused") {
      ws.on("message", (data) => data.toString() === "2probe" && ws.send("3nope"));
      return;
    }
    ws.send(handshake("hostile"));
    ws.on("message", (data, binary) => {
      const text = binary ? "" : data.toString();
      if (!text.startsWith("40")) return;
      ws.send('40{"sid":"hostile-socket"}');
      if (c === "close-abrupt") return setTimeout(() => ws.terminate(), 50);
      // (A number: that many ms before the frames after it.)
      let delay = 0;
      for (const frame of wsCases[c] || []) {
        if (typeof frame === "number") delay += frame;
        else if (delay) setTimeout(() => ws.send(frame), delay);
        else ws.send(frame);
      }
    });
  });
});

server.listen(Number(process.env.PORT || 0), "127.0.0.1", () => console.log(`listening ${server.address().port}`));
