// The Admin UI's side of the admin namespace, played with the real socket.io-client against a
// Ferrio server instrumented by ferrio-admin (tests/tests/admin_ui.rs starts it).
//
// Input (stdin, JSON): {"url": "http://127.0.0.1:PORT", "profile": "development" | "readonly" |
// "app", "path": the Socket.IO path of the "app" profile (the e2e server's `/app/`)}
// The server has, besides the admin namespace `/admin` (admin / changeit): on `/`, `hello`
// answered by emitting `hi` with the same arguments and `ping` acknowledged with "pong"; on
// `/admin`, `probe` acknowledged with "probe"; dynamic namespaces `/dyn-*`.
// Output: one "ok <step>" line per step, then "ALL OK".

const { io } = require("socket.io-client");

const WAIT = 10000;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

function fail(message) {
  console.error("FAIL " + message);
  process.exit(1);
}

function check(cond, message) {
  if (!cond) fail(message);
}

function sorted(o) {
  return Object.keys(o).sort().join(",");
}

/** Every event a socket receives, and waiting for one that matches. */
function recorder(socket) {
  const seen = [];
  const waiters = [];
  socket.onAny((event, ...args) => {
    seen.push({ event, args });
    for (const w of [...waiters]) {
      if (w.event === event && w.match(args)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(args);
      }
    }
  });
  return {
    seen,
    wait(event, match = () => true, what = event) {
      const done = seen.find((s) => s.event === event && match(s.args));
      if (done) return Promise.resolve(done.args);
      return new Promise((resolve) => {
        const timer = setTimeout(() => fail("no " + what + " in time"), WAIT);
        waiters.push({
          event,
          match,
          resolve: (args) => {
            clearTimeout(timer);
            resolve(args);
          },
        });
      });
    },
    names() {
      return seen.map((s) => s.event);
    },
  };
}

function connect(url, nsp, auth) {
  const socket = io(url + nsp, { forceNew: true, reconnection: false, auth });
  return socket;
}

function connected(socket, what) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => fail(what + " did not connect"), WAIT);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once("connect_error", (e) => fail(what + " refused: " + e.message));
  });
}

function refused(socket, what) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => fail(what + " was not refused"), WAIT);
    socket.once("connect", () => fail(what + " connected"));
    socket.once("connect_error", (e) => {
      clearTimeout(timer);
      resolve(e);
    });
  });
}

const FEATURES = [
  "EMIT",
  "JOIN",
  "LEAVE",
  "DISCONNECT",
  "MJOIN",
  "MLEAVE",
  "MDISCONNECT",
  "AGGREGATED_EVENTS",
  "ALL_EVENTS",
];
const STATS_KEYS = [
  "aggregatedEvents",
  "clientsCount",
  "hostname",
  "namespaces",
  "pid",
  "pollingClientsCount",
  "serverId",
  "uptime",
].join(",");
const SOCKET_KEYS = ["clientId", "data", "handshake", "id", "nsp", "rooms", "transport"].join(",");
const HANDSHAKE_KEYS = [
  "address",
  "headers",
  "issued",
  "query",
  "secure",
  "time",
  "url",
  "xdomain",
].join(",");

function checkSocket(s, socket, nsp) {
  check(sorted(s) === SOCKET_KEYS, "socket keys: " + sorted(s));
  check(s.id === socket.id, "socket id");
  check(s.nsp === nsp, "socket nsp " + s.nsp);
  check(s.clientId === socket.io.engine.id.slice(0, 12), "clientId " + s.clientId);
  check(["polling", "websocket"].includes(s.transport), "transport " + s.transport);
  check(JSON.stringify(s.data) === "{}", "data " + JSON.stringify(s.data));
  check(sorted(s.handshake) === HANDSHAKE_KEYS, "handshake keys: " + sorted(s.handshake));
  check(s.handshake.address === "127.0.0.1", "address " + s.handshake.address);
  check(s.handshake.query.EIO === "4", "query " + JSON.stringify(s.handshake.query));
  check(Array.isArray(s.rooms) && s.rooms.includes(socket.id), "rooms " + s.rooms);
}

async function development(url) {
  // A wrong password.
  const bad = connect(url, "/admin", { username: "admin", password: "wrong" });
  const err = await refused(bad, "a wrong password");
  check(err.message === "invalid credentials", "refusal message " + err.message);
  bad.close();
  console.log("ok refused");

  // The right one: session, config, all_sockets.
  const admin = connect(url, "/admin", { username: "admin", password: "changeit" });
  const a = recorder(admin);
  await connected(admin, "the admin");
  const [sessionId] = await a.wait("session");
  check(/^[0-9a-f]{16}$/.test(sessionId), "session id " + sessionId);
  const [config] = await a.wait("config");
  check(
    JSON.stringify(config) === JSON.stringify({ supportedFeatures: FEATURES }),
    "config " + JSON.stringify(config)
  );
  const [all] = await a.wait("all_sockets");
  const me = all.find((s) => s.id === admin.id);
  check(me, "the admin socket is not in all_sockets: " + JSON.stringify(all));
  checkSocket(me, admin, "/admin");
  const names = a.names();
  check(
    names.indexOf("session") < names.indexOf("config") &&
      names.indexOf("config") < names.indexOf("all_sockets"),
    "order " + names
  );
  console.log("ok login");

  // server_stats, and the admin's own connection counted.
  const [stats] = await a.wait("server_stats");
  check(sorted(stats) === STATS_KEYS, "stats keys " + sorted(stats));
  check(typeof stats.serverId === "string" && stats.serverId.length > 0, "serverId");
  check(stats.hostname === stats.serverId, "hostname " + stats.hostname);
  check(Number.isInteger(stats.pid) && stats.pid > 0, "pid");
  check(typeof stats.uptime === "number", "uptime");
  check(stats.clientsCount >= 1, "clientsCount " + stats.clientsCount);
  check(Number.isInteger(stats.pollingClientsCount), "pollingClientsCount");
  check(
    stats.namespaces.some((n) => n.name === "/admin" && n.socketsCount >= 1) &&
      stats.namespaces.some((n) => n.name === "/"),
    "namespaces " + JSON.stringify(stats.namespaces)
  );
  await a.wait(
    "server_stats",
    ([s]) =>
      s.aggregatedEvents.some(
        (e) =>
          e.type === "rawConnection" &&
          e.count >= 1 &&
          e.timestamp % 1000 === 0 &&
          sorted(e) === "count,timestamp,type"
      ),
    "a rawConnection in server_stats"
  );
  console.log("ok stats");

  // Another client on `/`.
  const client = connect(url, "/", {});
  const c = recorder(client);
  await connected(client, "the client");
  const [serialized, date] = await a.wait(
    "socket_connected",
    ([s]) => s.id === client.id,
    "socket_connected"
  );
  checkSocket(serialized, client, "/");
  check(ISO.test(date), "socket_connected date " + date);
  const joined = await a.wait(
    "room_joined",
    ([nsp, room, id]) => nsp === "/" && room === client.id && id === client.id,
    "room_joined of the client's own room"
  );
  check(ISO.test(joined[3]), "room_joined date");
  // Connected over polling, it upgrades: the UI is told (unless it had upgraded already).
  if (serialized.transport === "polling") {
    const [update] = await a.wait(
      "socket_updated",
      ([u]) => u.id === client.id && u.transport === "websocket",
      "socket_updated"
    );
    check(sorted(update) === "id,nsp,transport" && update.nsp === "/", "socket_updated");
  }
  console.log("ok socket_connected");

  // Its events both ways.
  client.emit("hello", 1, "a");
  const received = await a.wait("event_received", ([nsp, id]) => nsp === "/" && id === client.id);
  check(JSON.stringify(received[2]) === JSON.stringify(["hello", 1, "a"]), "received args");
  check(ISO.test(received[3]), "event_received date");
  const sent = await a.wait("event_sent", ([nsp, id]) => nsp === "/" && id === client.id);
  check(JSON.stringify(sent[2]) === JSON.stringify(["hi", 1, "a"]), "sent args");
  await c.wait("hi");
  console.log("ok events");

  // Malformed commands (an unknown namespace, filters that name no room, wrong types) act on
  // nobody: the client is neither disconnected nor moved, and the admin socket goes on.
  let lost = false;
  client.once("disconnect", () => (lost = true));
  admin.emit("_disconnect", "/nope", true);
  admin.emit("_disconnect", "/", true, { not: "a room" });
  admin.emit("_disconnect", "/", true, ["a"]);
  admin.emit("join", "/", { not: "a room" });
  admin.emit("join", 42, "vip");
  admin.emit("emit", "/", { not: "a room" }, "should-not-arrive");
  admin.emit("emit");

  // The UI's commands.
  admin.emit("join", "/", "vip", client.id);
  await a.wait(
    "room_joined",
    ([nsp, room, id]) => nsp === "/" && room === "vip" && id === client.id,
    "room_joined vip"
  );
  admin.emit("emit", "/", "vip", "notice", "hello vip");
  const [notice] = await c.wait("notice");
  check(notice === "hello vip", "notice " + notice);
  admin.emit("emit", "/", null, "everyone", 7);
  const [everyone] = await c.wait("everyone");
  check(everyone === 7, "everyone " + everyone);
  admin.emit("leave", "/", "vip", client.id);
  await a.wait(
    "room_left",
    ([nsp, room, id]) => nsp === "/" && room === "vip" && id === client.id,
    "room_left vip"
  );
  check(!lost && client.connected, "a malformed _disconnect reached the client");
  check(!c.names().includes("should-not-arrive"), "a malformed emit reached the client");
  console.log("ok commands");

  // A namespace created after the admin's (a dynamic one) is watched too.
  const dynamic = connect(url, "/dyn-1", {});
  await connected(dynamic, "the dynamic namespace's client");
  const [dyn] = await a.wait(
    "socket_connected",
    ([s]) => s.id === dynamic.id,
    "socket_connected in /dyn-1"
  );
  checkSocket(dyn, dynamic, "/dyn-1");
  await a.wait(
    "room_joined",
    ([nsp, room, id]) => nsp === "/dyn-1" && room === dynamic.id && id === dynamic.id,
    "room_joined in /dyn-1"
  );
  dynamic.close();
  console.log("ok dynamic");

  // The session id logs in again; another one does not.
  const again = connect(url, "/admin", { sessionId });
  const g = recorder(again);
  await connected(again, "the session id");
  await g.wait("config");
  const probe = await again.timeout(WAIT).emitWithAck("probe");
  check(probe === "probe", "probe " + JSON.stringify(probe));
  check(!g.names().includes("session"), "a new session for a session id login");
  again.close();
  const wrong = connect(url, "/admin", { sessionId: "0123456789abcdef" });
  check((await refused(wrong, "an unknown session id")).message === "invalid credentials", "msg");
  wrong.close();
  console.log("ok session");

  // `_disconnect` from the UI.
  const clientId = client.id; // unset by the client once disconnected
  const gone = new Promise((resolve) => client.once("disconnect", resolve));
  admin.emit("_disconnect", "/", false, clientId);
  const reason = await gone;
  check(reason === "io server disconnect", "client reason " + reason);
  const left = await a.wait(
    "socket_disconnected",
    ([nsp, id]) => nsp === "/" && id === clientId,
    "socket_disconnected"
  );
  check(left[2] === "server namespace disconnect", "reason " + left[2]);
  check(ISO.test(left[3]), "socket_disconnected date");
  await a.wait(
    "server_stats",
    ([s]) => s.aggregatedEvents.some((e) => e.type === "rawDisconnection" && e.subType),
    "a rawDisconnection in server_stats"
  );
  console.log("ok disconnect");
  admin.close();
}

async function readonly(url) {
  const admin = connect(url, "/admin", { username: "admin", password: "changeit" });
  const a = recorder(admin);
  await connected(admin, "the admin");
  await a.wait("session");
  const [config] = await a.wait("config");
  check(
    JSON.stringify(config) === JSON.stringify({ supportedFeatures: ["AGGREGATED_EVENTS"] }),
    "config " + JSON.stringify(config)
  );
  const client = connect(url, "/", {});
  await connected(client, "the client");
  // Its connection handlers have run once its first event is answered.
  check((await client.timeout(WAIT).emitWithAck("ping")) === "pong", "ping");
  admin.emit("_disconnect", "/", false, client.id);
  admin.emit("join", "/", "vip", null);
  admin.emit("emit", "/", null, "notice", "x");
  // Handled after the commands: whatever they started has reached the client's session.
  check((await admin.timeout(WAIT).emitWithAck("probe")) === "probe", "probe");
  check((await client.timeout(WAIT).emitWithAck("ping")) === "pong", "ping after");
  check(client.connected, "the client was disconnected");
  const [stats] = await a.wait("server_stats");
  check(sorted(stats) === STATS_KEYS, "stats keys " + sorted(stats));
  const names = a.names();
  for (const never of [
    "all_sockets",
    "socket_connected",
    "room_joined",
    "event_received",
    "event_sent",
  ]) {
    check(!names.includes(never), never + " in production mode: " + names);
  }
  console.log("ok readonly");
  client.close();
  admin.close();
}

// The e2e server's `/app/` profile: its `/admin` namespace, with a logged-in client on `/`.
async function app(url, path) {
  const opts = (auth, extra) =>
    Object.assign({ forceNew: true, reconnection: false, path, auth }, extra);
  const bad = io(url + "/admin", opts({ username: "admin", password: "nope" }));
  check((await refused(bad, "a wrong password")).message === "invalid credentials", "msg");
  bad.close();
  const admin = io(url + "/admin", opts({ username: "admin", password: "changeit" }));
  const a = recorder(admin);
  await connected(admin, "the admin");
  await a.wait("session");
  const [config] = await a.wait("config");
  check(
    JSON.stringify(config) === JSON.stringify({ supportedFeatures: FEATURES }),
    "config " + JSON.stringify(config)
  );
  const [all] = await a.wait("all_sockets");
  checkSocket(
    all.find((s) => s.id === admin.id),
    admin,
    "/admin"
  );
  const [stats] = await a.wait("server_stats");
  check(sorted(stats) === STATS_KEYS, "stats keys " + sorted(stats));
  console.log("ok app admin");
  const client = io(url + "/", opts({}, { extraHeaders: { cookie: "user=ann" } }));
  await connected(client, "the client");
  const [serialized] = await a.wait("socket_connected", ([s]) => s.id === client.id);
  checkSocket(serialized, client, "/");
  await a.wait(
    "room_joined",
    ([nsp, room, id]) => nsp === "/" && room === "user:ann" && id === client.id,
    "room_joined user:ann"
  );
  const clientId = client.id;
  const gone = new Promise((resolve) => client.once("disconnect", resolve));
  admin.emit("_disconnect", "/", false, clientId);
  check((await gone) === "io server disconnect", "client reason");
  await a.wait("socket_disconnected", ([nsp, id]) => nsp === "/" && id === clientId);
  console.log("ok app client");
  admin.close();
}

let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", async () => {
  const { url, profile, path } = JSON.parse(input);
  if (profile === "app") {
    await app(url, path);
  } else if (profile === "readonly") {
    await readonly(url);
  } else {
    await development(url);
  }
  console.log("ALL OK");
  process.exit(0);
});
