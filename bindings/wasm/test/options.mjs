// The browser tests of the client options (against the `/opts` server of test/server.cjs, which
// records the requests it gets) and of bad input (against test/hostile.cjs). Each function returns
// what happened; test/run.mjs checks it.
import { io } from "/ferrio/ferrio.js";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const once = (emitter, event, ms = 5000) =>
  new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ${event} within ${ms} ms`)), ms);
    emitter.once(event, (...args) => {
      clearTimeout(t);
      resolve(args);
    });
  });
// Waits until `cond()` holds (checked every 20 ms), at most `ms`.
async function until(cond, ms = 5000) {
  for (let t = 0; t < ms && !cond(); t += 20) await sleep(20);
  return cond();
}
const plain = (v) => JSON.parse(JSON.stringify(v));
// The fields socket.io-client sets on an error.
const errorFields = (e) => ({
  isError: e instanceof Error,
  message: e && e.message,
  type: e && e.type,
  description: e && typeof e.description === "number" ? e.description : typeof (e && e.description),
  context: typeof (e && e.context),
});

export async function optionsScenario(base) {
  const r = {};
  const log = async () => (await fetch(`${base}/log-opts`)).json();
  try {
    await log();

    // addTrailingSlash: false, timestampParam, transportOptions.polling.extraHeaders (over the
    // manager's extraHeaders), protocols; the manager's `packet` event and the engine's events.
    const s = io(base, {
      path: "/opts",
      addTrailingSlash: false,
      forceNew: true,
      timestampParam: "ts",
      extraHeaders: { "x-all": "everywhere" },
      transportOptions: { polling: { extraHeaders: { "x-polling": "polling-only" } } },
      protocols: ["chat-v1"],
    });
    const packets = [];
    s.io.on("packet", (p) => packets.push(plain(p)));
    const engineEvents = [];
    const engine = s.io.engine;
    for (const ev of ["open", "handshake", "packet", "packetCreate", "heartbeat", "flush", "drain", "ping", "message", "upgrading", "upgrade", "close"]) {
      engine.on(ev, (arg) => engineEvents.push([ev, ev === "handshake" ? Object.keys(arg).sort() : arg && plain(arg)]));
    }
    engine.once("open", () => (r.transportBefore = engine.transport.name));
    await once(s, "auth");
    r.engineId = typeof engine.id === "string" && engine.id.length > 0;
    r.ack = await s.emitWithAck("message-with-ack", "a", new Uint8Array([1, 2]));
    await until(() => engineEvents.some(([e]) => e === "upgrade"));
    r.transportAfter = engine.transport.name;
    await until(() => engineEvents.some(([e, a]) => e === "packet" && a.type === "ping"), 3000);
    s.disconnect();
    r.packets = packets;
    const names = engineEvents.map(([e]) => e);
    r.engineEvents = [...new Set(names)].sort();
    r.firstEnginePacket = engineEvents.find(([e]) => e === "packet")[1].type;
    r.handshakeKeys = engineEvents.find(([e]) => e === "handshake")[1];
    r.upgradeEvent = engineEvents.find(([e]) => e === "upgrade")[1];
    r.upgradingEvent = engineEvents.find(([e]) => e === "upgrading")?.[1];
    r.upgradingFirst = names.indexOf("upgrading") >= 0 && names.indexOf("upgrading") < names.indexOf("upgrade");
    r.createdConnect = engineEvents.some(([e, a]) => e === "packetCreate" && a.type === "message" && a.data === "0");
    r.createdUpgrade = engineEvents.some(([e, a]) => e === "packetCreate" && a.type === "upgrade");
    r.engineClosed = engineEvents.filter(([e]) => e === "close").length;
    r.newEngine = s.io.engine !== engine;
    let seen = await log();
    r.first = seen.requests.map((q) => ({
      method: q.method,
      upgrade: q.upgrade,
      path: q.path,
      ts: "ts" in q.query,
      t: "t" in q.query,
      xPolling: q.headers["x-polling"],
      xAll: q.headers["x-all"],
      protocol: q.headers["sec-websocket-protocol"],
    }));

    // timestampRequests: false (polling without cache buster); true (WebSocket with one).
    const p = io(base, { path: "/opts", forceNew: true, transports: ["polling"], timestampRequests: false });
    await once(p, "auth");
    await p.emitWithAck("message-with-ack", "p");
    p.disconnect();
    const w = io(base, {
      path: "/opts",
      forceNew: true,
      transports: ["websocket"],
      timestampRequests: true,
      protocols: ["top-level"],
      transportOptions: { websocket: { protocols: ["per-transport"] } },
    });
    await once(w, "auth");
    w.disconnect();
    seen = await log();
    r.stamps = seen.requests.map((q) => [q.query.transport, q.path, "t" in q.query]);
    r.wsProtocols = seen.requests.filter((q) => q.upgrade).map((q) => q.headers["sec-websocket-protocol"]);

    // requestTimeout: the long-poll (the server pings every 300 ms) is cut after 100 ms: a
    // transport error, with the TransportError as the disconnect's details.
    const rt = io(base, { path: "/opts", forceNew: true, transports: ["polling"], requestTimeout: 100, reconnection: false });
    await once(rt, "connect");
    const [reason, details] = await once(rt, "disconnect", 3000);
    r.requestTimeout = [reason, errorFields(details)];
    rt.disconnect();

    // closeOnBeforeunload: the page leaving closes the connection of the socket that asked for
    // it, and only that one.
    const leaving = io(base, { path: "/opts", forceNew: true, closeOnBeforeunload: true });
    const staying = io(base, { path: "/opts", forceNew: true });
    await Promise.all([once(leaving, "auth"), once(staying, "auth")]);
    await log();
    window.dispatchEvent(new Event("beforeunload"));
    await until(() => !leaving.connected);
    await sleep(200);
    r.beforeunload = [leaving.connected, staying.connected];
    const reasons = [];
    for (let i = 0; i < 50 && reasons.length === 0; i++) {
      reasons.push(...(await log()).disconnects);
      if (reasons.length === 0) await sleep(50);
    }
    r.beforeunloadServer = reasons;
    staying.disconnect();

    // `opts.query` changed in a `reconnect_attempt` listener: that attempt sends it (the first
    // long-poll cut after 100 ms fails the transport; the manager reconnects).
    const qs = io(base, { path: "/opts", forceNew: true, transports: ["polling"], query: { token: "a" }, reconnectionDelay: 50, requestTimeout: 100 });
    qs.io.on("reconnect_attempt", () => (qs.io.opts.query = { token: "b" }));
    await once(qs, "auth");
    await once(qs.io, "reconnect_attempt");
    const tokens = [];
    for (let i = 0; i < 50 && tokens.length < 2; i++) {
      tokens.push(...(await log()).requests.filter((q) => !q.query.sid).map((q) => q.query.token));
      if (tokens.length < 2) await sleep(50);
    }
    r.queryTokens = tokens.slice(0, 2);
    qs.io.close();
  } catch (e) {
    r.error = String(e && e.stack ? e.stack : e);
  }
  return r;
}

// Polling cases (the first GET is answered badly) and WebSocket cases (bad frames after the
// CONNECT accept), see test/hostile.cjs.
export const pollingCases = [
  "http-500",
  "bad-handshake",
  "not-handshake",
  "binary-garbage",
  "huge-handshake",
  "poll-bad-json",
  "poll-bad-json-in-array",
  "poll-bad-json-then-event",
  "poll-bad-eio",
  "poll-empty-packet",
  "poll-oversized",
  "poll-connect-error-garbage",
];
export const wsCases = [
  "sio-bad-json",
  "sio-bad-type",
  "sio-name-not-string",
  "sio-not-array",
  "sio-bad-placeholder",
  "sio-too-many-attachments",
  "sio-stray-binary",
  "sio-huge-ack-id",
  "sio-unicode",
  "sio-unicode-ack-id",
  "sio-deep",
  "sio-bad-json-in-array",
  "sio-binary-split",
  "sio-connect-error-garbage",
  "eio-bad-type",
  "eio-empty",
  "oversized",
  "close-abrupt",
];

export async function hostileScenario(base) {
  const r = {};
  for (const c of [...pollingCases, ...wsCases]) {
    const ws = wsCases.includes(c);
    const events = [];
    try {
      const s = io(base, {
        forceNew: true,
        transports: [ws ? "websocket" : "polling"],
        query: { case: c },
        reconnectionDelay: 50,
        reconnectionDelayMax: 50,
        reconnectionAttempts: 1,
        timeout: 3000,
      });
      s.on("connect", () => events.push(["connect"]));
      s.on("connect_error", (e) => events.push(["connect_error", errorFields(e)]));
      s.on("disconnect", (reason) => events.push(["disconnect", reason]));
      s.onAny((ev, ...args) => events.push(["event", ev, args.map((a) => (typeof a === "string" ? a.length : a instanceof ArrayBuffer ? Array.from(new Uint8Array(a)) : typeof a))]));
      // Commands between two attachments of a binary event (`sio-binary-split`).
      const reads = setInterval(() => s.connected, 5);
      s.io.on("error", (e) => events.push(["error", e instanceof Error]));
      s.io.on("reconnect_attempt", () => events.push(["reconnect_attempt"]));
      const done = () => events.some(([e]) => e === "reconnect_attempt" || e === "event") || (c === "poll-connect-error-garbage" && events.length);
      await until(done, 6000);
      clearInterval(reads);
      s.disconnect();
    } catch (e) {
      events.push(["thrown", String(e)]);
    }
    r[c] = events;
  }
  // A probe the server answers wrongly: the engine's `upgradeError` (an Error naming the
  // transport), no `upgrading` or `upgrade`, and the socket stays connected over polling.
  try {
    const s = io(base, { forceNew: true, query: { case: "probe-refused" }, reconnection: false });
    const engine = s.io.engine;
    const seen = [];
    engine.on("upgrading", () => seen.push(["upgrading"]));
    engine.on("upgrade", () => seen.push(["upgrade"]));
    engine.on("upgradeError", (e) => seen.push(["upgradeError", e instanceof Error, e.message, e.transport]));
    await once(s, "connect");
    await until(() => seen.length > 0, 3000);
    await sleep(100);
    r.probeRefused = { seen, transport: engine.transport.name, connected: s.connected };
    s.disconnect();
  } catch (e) {
    r.probeRefused = { error: String(e) };
  }
  return r;
}
