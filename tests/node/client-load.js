// Load on a Ferrio server running the e2e test server's standard handlers, with the real
// socket.io-client: N clients × M acked emits, all in flight at once, none lost.
//
// Input (stdin): {"url": "http://127.0.0.1:PORT", "path": "/socket.io/" (the default),
// "clients": N, "emits": M, "transports": ["polling"] | ["websocket"] | ["polling", "websocket"]}.
// Each client (its own connection: forceNew) fires its M `emitWithAck("message-with-ack", v)`
// in one go, every client at once, with a value v unique to that client and emit; the server's
// standard handler acks with the same arguments. Every ACK packet the client receives is counted
// (a duplicate would be dropped silently by the client's ack table), and every ack must carry
// the value of its own emit.
// Output: one JSON summary line. Any failure (a connection refused or lost, an ack missing,
// wrong or duplicated) also prints the summary on stderr and exits with status 1; the whole run
// is bounded to 60 s (exit status 2).

"use strict";

const { io } = require("socket.io-client");

const TIMEOUT = 60000;
const ACK_TIMEOUT = 45000;
setTimeout(() => {
  console.error("client-load: timed out");
  process.exit(2);
}, TIMEOUT).unref();

function readStdin() {
  return new Promise((resolve) => {
    let data = "";
    process.stdin.on("data", (c) => (data += c));
    process.stdin.on("end", () => resolve(data));
  });
}

function connect(url, path, transports) {
  const socket = io(url, {
    path,
    transports,
    forceNew: true,
    reconnection: false,
  });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (e) => reject(new Error(`connect_error: ${e.message}`)));
  });
}

async function main() {
  const input = JSON.parse(await readStdin());
  const { url, path = "/socket.io/", clients, emits, transports } = input;
  const upgrade = transports.length > 1;
  const summary = {
    clients,
    emits,
    transports,
    acked: 0,
    missing: 0,
    wrong: 0,
    duplicates: 0,
    unknown: 0,
    disconnects: 0,
    disconnectReasons: {},
    finalTransports: {},
    connectMs: 0,
    emitMs: 0,
    ok: false,
  };
  const errors = [];
  let finished = false;

  let t0 = Date.now();
  const sockets = await Promise.all(
    Array.from({ length: clients }, () => connect(url, path, transports)),
  );
  if (upgrade) {
    // Every client on WebSocket before the emits (a client that never upgrades hits the bound).
    await Promise.all(
      sockets.map((s) =>
        s.io.engine.transport.name === "websocket"
          ? null
          : new Promise((resolve) => s.io.engine.once("upgrade", resolve)),
      ),
    );
  }
  summary.connectMs = Date.now() - t0;

  // The ACK packets each client receives, by ack id, before the client's ack table sees them.
  const received = sockets.map((s) => {
    const byId = new Map();
    s.io.on("packet", (packet) => {
      if (packet.type === 3 /* ACK */ && packet.nsp === "/") {
        byId.set(packet.id, (byId.get(packet.id) || []).concat([packet.data]));
      }
    });
    s.on("disconnect", (reason) => {
      if (finished) return;
      summary.disconnects += 1;
      summary.disconnectReasons[reason] = (summary.disconnectReasons[reason] || 0) + 1;
      errors.push(`client ${sockets.indexOf(s)} disconnected: ${reason}`);
    });
    return byId;
  });

  t0 = Date.now();
  // Every emit of every client is sent before the first ack is awaited.
  const pending = sockets.map((s, c) =>
    Array.from({ length: emits }, (_, i) => {
      const value = c * emits + i;
      return s
        .timeout(ACK_TIMEOUT)
        .emitWithAck("message-with-ack", value)
        .then(
          (got) => {
            if (got === value) {
              summary.acked += 1;
            } else {
              summary.wrong += 1;
              errors.push(`client ${c} emit ${i}: ack ${JSON.stringify(got)}, expected ${value}`);
            }
          },
          (e) => {
            summary.missing += 1;
            if (summary.missing <= 5) errors.push(`client ${c} emit ${i}: ${e.message}`);
          },
        );
    }),
  );
  await Promise.all(pending.flat());
  summary.emitMs = Date.now() - t0;

  received.forEach((byId, c) => {
    for (const [id, packets] of byId) {
      if (packets.length > 1) {
        summary.duplicates += packets.length - 1;
        errors.push(`client ${c}: ack id ${id} received ${packets.length} times`);
      }
      if (!(id >= 0 && id < emits)) {
        summary.unknown += 1;
        errors.push(`client ${c}: ack id ${id} was never asked for`);
      }
    }
  });
  finished = true;
  for (const s of sockets) {
    const name = s.io.engine ? s.io.engine.transport.name : "closed";
    summary.finalTransports[name] = (summary.finalTransports[name] || 0) + 1;
    s.disconnect();
  }
  const expectedTransport = upgrade ? "websocket" : transports[0];
  if (summary.finalTransports[expectedTransport] !== clients) {
    errors.push(`transports at the end: ${JSON.stringify(summary.finalTransports)}`);
  }

  summary.ok =
    errors.length === 0 &&
    summary.acked === clients * emits &&
    summary.missing === 0 &&
    summary.wrong === 0 &&
    summary.duplicates === 0 &&
    summary.unknown === 0 &&
    summary.disconnects === 0;
  const line = JSON.stringify(summary);
  console.log(line);
  if (!summary.ok) {
    console.error(line);
    for (const e of errors.slice(0, 20)) console.error(e);
    process.exit(1);
  }
  process.exit(0);
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
