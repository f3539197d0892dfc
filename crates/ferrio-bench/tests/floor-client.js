// Drives the floor server (ferrio-floor) with the real socket.io-client, over WebSocket and
// over long-polling, and prints one line per answer for tests/floor.rs to check.
"use strict";

const { io } = require("socket.io-client");

const url = process.argv[2];

async function run(transport) {
  const opts = { transports: [transport], upgrade: false, forceNew: true, reconnection: false };
  const a = io(url, opts);
  const b = io(url, opts);
  await Promise.all(
    [a, b].map((s) => new Promise((resolve, reject) => {
      s.on("connect", resolve);
      s.on("connect_error", reject);
    })),
  );
  const got = [];
  b.on("msg", (...args) => got.push(args));
  const lines = [];
  const echo = await a.timeout(5000).emitWithAck("echo", { text: "hi", list: [1, "]"] });
  lines.push(`echo ${JSON.stringify(echo)}`);
  if (transport === "websocket") {
    const bin = await a.timeout(5000).emitWithAck("echo_bin", Buffer.from([1, 2, 3]));
    lines.push(`echo_bin ${Buffer.isBuffer(bin)} ${JSON.stringify([...bin])}`);
  }
  lines.push(`join ${await b.timeout(5000).emitWithAck("join", "room1")}`);
  lines.push(`to_room ${await a.timeout(5000).emitWithAck("to_room", "room1", { x: 1 })}`);
  await a.timeout(5000).emitWithAck("to_room", "nobody", { x: 2 });
  lines.push(`broadcast ${await a.timeout(5000).emitWithAck("broadcast", "all")}`);
  // b's messages were queued before the last ack reached a; give them a moment.
  const deadline = Date.now() + 5000;
  while (got.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  lines.push(`received ${JSON.stringify(got)}`);
  a.close();
  b.close();
  for (const l of lines) console.log(`${transport} ${l}`);
}

(async () => {
  await run("websocket");
  await run("polling");
  process.exit(0);
})().catch((e) => {
  console.error(`floor-client: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
