// Browser tests of ferrio-client-web: the interop page (examples/interop.rs, built by run.sh) in
// headless Chromium, driven by playwright-core, against Node's socket.io (bindings/wasm's test
// server, with the e2e handlers), against ferrio-server's e2e example, and against a hostile
// server (hostile.cjs). The page writes one line per check; a server is stopped and started
// again on the same port in the middle (reconnection). Any page error (a wasm trap included)
// fails the test.
//
// The Leptos chat page (examples/leptos-chat) is driven too, two pages chatting: served by
// ferrio-server's chat example at /leptos/, and against Node's socket.io running the same
// events (chat-server.cjs).
//
// The connection options (extra headers, per-transport options, closeOnBeforeunload) and views
// (the manager's packet listeners, the engine, typed errors) run on the interop page served by
// a recording front (`front()`) to each server, from the server's origin.
//
// Usage: node run.mjs <pages dir (interop/, chat/, leptos-chat/)> <e2e binary> <chat binary>
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import http from "node:http";
import { connect, createServer } from "node:net";
import { createRequire } from "node:module";
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "../../..");
const require = createRequire(join(root, "bindings/wasm/package.json"));
const { chromium } = require("playwright-core");
const [pagesDir, e2eBin, chatBin] = process.argv.slice(2);

const children = [];
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Starts a process and waits for a line of its output matching `ready`.
function start(cmd, args, env, ready) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
    children.push(child);
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${cmd}: not ready within 30 s`)), 30000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(ready);
      if (m) {
        clearTimeout(timer);
        resolve({ child, match: m });
      }
    });
    child.once("exit", (code) => reject(new Error(`${cmd} exited with ${code}`)));
  });
}

function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", resolve);
    child.kill("SIGKILL");
  });
}

// The pages: /<page>/ serves target/ferrio-client-web/<page>/ (index.html and wasm-bindgen's
// output, as run.sh made them).
const types = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };
const pageServer = http.createServer((req, res) => {
  const m = req.url.split("?")[0].match(/^\/(interop|chat|leptos-chat)\/([\w.-]*)$/);
  if (!m) {
    res.writeHead(404).end();
    return;
  }
  const [, app, name] = m;
  const file = name || "index.html";
  readFile(join(pagesDir, app, file)).then(
    (body) => res.writeHead(200, { "content-type": types[extname(file)] || "application/octet-stream" }).end(body),
    () => res.writeHead(404).end(),
  );
});

// A TCP proxy to `port` whose connections `cut()` closes: the transport drops, the server stays.
async function proxy(port) {
  const sockets = new Set();
  const server = createServer((client) => {
    const upstream = connect(port, "127.0.0.1");
    sockets.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    cut: () => {
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    close: () => server.close(),
  };
}

// A front server for `port` on an origin of its own: it serves the interop page at /interop/
// and forwards every other request, HTTP and WebSocket upgrades, to the server, recording each
// (method, path, query, headers, upgrade or not). The page then talks to its own origin. It
// refuses the WebSocket upgrades of the page's connection `m=3` (a failed upgrade probe).
async function front(port) {
  const seen = [];
  const sockets = new Set();
  const record = (req, upgrade) => {
    const url = new URL(req.url, "http://x");
    seen.push({ method: req.method, upgrade, path: url.pathname, query: Object.fromEntries(url.searchParams), headers: req.headers });
  };
  const server = http.createServer((req, res) => {
    if (/^\/interop\//.test(req.url)) {
      pageServer.emit("request", req, res);
      return;
    }
    record(req, false);
    const upstream = http.request({ host: "127.0.0.1", port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  server.on("upgrade", (req, client, head) => {
    record(req, true);
    if (new URL(req.url, "http://x").searchParams.get("m") === "3") {
      client.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    const upstream = connect(port, "127.0.0.1", () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      upstream.write(lines.join("\r\n") + "\r\n\r\n");
      upstream.write(head);
      client.pipe(upstream).pipe(client);
    });
    sockets.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
  });
  server.on("connection", (s) => sockets.add(s));
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    seen,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

const results = [];
// TEST_FILTER=<text> runs only the tests whose names contain it.
async function test(name, fn) {
  if (process.env.TEST_FILTER && !name.includes(process.env.TEST_FILTER)) return;
  const t0 = Date.now();
  try {
    await fn();
    results.push(true);
    console.log(`test ${name} ... ok (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push(false);
    console.log(`test ${name} ... FAILED (${Date.now() - t0} ms)\n${e && e.stack ? e.stack : e}`);
  }
}

// The checks every interop run must report, in order.
const expected = [
  "connect",
  "auth reaches the server",
  "emit, typed event back with binary",
  "emit_with_ack",
  "once and on_any_outgoing",
  "server emit_with_ack answered by the page",
  "wrong types reach on_error",
  "the socket still works after wrong types",
  "namespace on the same connection",
  "refused namespace: connect_error with data",
  "polling then WebSocket",
  "binary over WebSocket",
  "WebSocket only, room joined",
  "room event",
  "the event missed while disconnected arrives",
  "connection state recovery",
  "disconnect when the server goes away",
  "reconnection",
  "auth sent again on reconnection",
  "emit_with_ack after reconnection",
  "namespace back after reconnection",
];

async function openPage(browser, query, app = "interop", base = null) {
  const page = await (await browser.newContext()).newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  // A wasm trap or a panic shows as an uncaught error or a console error naming it (failed
  // requests while a server is down are expected and show as console errors too).
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) errors.push(m.text());
  });
  await page.goto(base ? `${base}?${query}` : `${pageBase}/${app}/?${query}`);
  return { page, errors };
}

async function log(page) {
  return (await page.textContent("#log")).trim().split("\n").filter((l) => l);
}

function assertRun(lines, errors, want) {
  const failed = lines.filter((l) => !l.startsWith("ok "));
  if (failed.length || errors.length) {
    throw new Error(`checks:\n  ${lines.join("\n  ")}\npage errors:\n  ${errors.join("\n  ")}`);
  }
  const got = lines.map((l) => l.slice(3));
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    throw new Error(`checks run: ${JSON.stringify(got)}\nexpected: ${JSON.stringify(want)}`);
  }
}

let browser;
let pageBase;
try {
  await new Promise((resolve) => pageServer.listen(0, "127.0.0.1", resolve));
  pageBase = `http://127.0.0.1:${pageServer.address().port}`;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-quic"],
  });

  const kinds = {
    "socket.io 4.8 (Node)": { cmd: "node", args: [join(root, "bindings/wasm/test/server.cjs")], ready: /listening (\d+)/ },
    "ferrio-server": { cmd: e2eBin, args: [], ready: /listening/ },
  };
  for (const [kind, s] of Object.entries(kinds)) {
    await test(`${kind}: connect with auth, emit, emit_with_ack, typed events, binary, wrong types, namespaces, refusal, upgrade, WebSocket only, recovery, reconnection after the server went away`, async () => {
      const port = await freePort();
      let { child } = await start(s.cmd, s.args, { PORT: String(port) }, s.ready);
      const cutter = await proxy(port);
      const query = `server=${encodeURIComponent(`http://127.0.0.1:${port}`)}&proxy=${encodeURIComponent(cutter.url)}`;
      const { page, errors } = await openPage(browser, query);
      try {
        const phase = () => page.evaluate(() => document.body.dataset.phase);
        const reached = (names) => page.waitForFunction((n) => n.includes(document.body.dataset.phase), names, { timeout: 30000 });
        await reached(["recovery", "connected", "done"]);
        if ((await phase()) === "recovery") {
          // The transport drops, the server stays: the socket recovers.
          cutter.cut();
          await reached(["connected", "done"]);
        }
        if ((await phase()) === "connected") {
          // The server goes away, comes back on the same port.
          await stop(child);
          await new Promise((r) => setTimeout(r, 500));
          ({ child } = await start(s.cmd, s.args, { PORT: String(port) }, s.ready));
          await page.waitForFunction(() => document.body.dataset.phase === "done", null, { timeout: 60000 });
        }
        assertRun(await log(page), errors, expected);
      } finally {
        await page.context().close();
        cutter.close();
        await stop(child);
      }
    });
  }

  // The options page's checks, in order (the extra headers are checked here, from the front's
  // record of the requests).
  const optionsExpected = [
    "the manager's packet listeners see the server's packets",
    "the engine's id and transport are the server's",
    "the engine's events, in order",
    "transport options",
    "an extra header that is not valid HTTP is refused",
    "a failed upgrade probe: upgradeError, the session stays on polling",
    "set_query: the next session sends the new query",
    "errors carry the transport's error",
    "close_on_beforeunload: the server sees the transport close",
  ];
  // The requests of connection `m` (the page's `m` query parameter): polling ones, WebSocket ones.
  const requestsOf = (seen, m) => [seen.filter((r) => r.query.m === m && !r.upgrade), seen.filter((r) => r.query.m === m && r.upgrade)];
  const optionKinds = {
    "socket.io 4.8 (Node)": { ...kinds["socket.io 4.8 (Node)"], kind: "node", path: "/opts" },
    "ferrio-server": { ...kinds["ferrio-server"], kind: "ferrio", path: "/socket.io/" },
  };
  for (const [name, s] of Object.entries(optionKinds)) {
    await test(`${name}: extra headers and per-transport options on polling, the packet listeners, the engine's id, transport and events, typed errors, close_on_beforeunload`, async () => {
      const port = await freePort();
      const { child } = await start(s.cmd, s.args, { PORT: String(port) }, s.ready);
      const f = await front(port);
      const { page, errors } = await openPage(browser, `options=${s.kind}&path=${encodeURIComponent(s.path)}`, null, `${f.url}/interop/`);
      try {
        await page.waitForFunction(() => document.body.dataset.phase === "done", null, { timeout: 60000 });
        // The refused upgrade shows in the console (a failed WebSocket handshake).
        const unexpected = errors.filter((e) => !/^WebSocket connection to .*m=3/.test(e));
        assertRun(await log(page), unexpected, optionsExpected);
        // `extra_header`: on every polling request (GETs and POSTs); a browser's WebSocket
        // cannot send headers.
        const [polling1, ws1] = requestsOf(f.seen, "1");
        const methods = new Set(polling1.map((r) => r.method));
        if (!methods.has("GET") || !methods.has("POST") || polling1.some((r) => r.headers["x-ferrio-extra"] !== "one")) {
          throw new Error(`the first connection's polling requests: ${JSON.stringify(polling1.map((r) => [r.method, r.headers["x-ferrio-extra"]]))}`);
        }
        if (ws1.length === 0 || ws1.some((r) => "x-ferrio-extra" in r.headers)) {
          throw new Error(`the first connection's WebSocket requests: ${JSON.stringify(ws1.map((r) => r.headers))}`);
        }
        // `transport_options` for polling: its headers replace the top-level ones.
        const [polling2] = requestsOf(f.seen, "2");
        if (polling2.length === 0 || polling2.some((r) => r.headers["x-ferrio-polling"] !== "yes" || "x-ferrio-extra" in r.headers)) {
          throw new Error(`the second connection's polling requests: ${JSON.stringify(polling2.map((r) => [r.method, r.headers["x-ferrio-polling"], r.headers["x-ferrio-extra"]]))}`);
        }
        // `set_query`: the first session's handshake and its later requests keep `m=4`, the
        // reconnection's handshake has `m=5`.
        const handshakes = f.seen.filter((r) => (r.query.m === "4" || r.query.m === "5") && !r.query.sid).map((r) => r.query.m);
        if (handshakes[0] !== "4" || handshakes[1] !== "5" || requestsOf(f.seen, "4")[0].length < 2) {
          throw new Error(`the fourth connection's handshakes: ${JSON.stringify(handshakes)}`);
        }
      } finally {
        await page.context().close();
        f.close();
        await stop(child);
      }
    });
  }

  await test("hostile server: malformed frames end as connect_error, disconnect or reconnection, never a trap", async () => {
    const { child, match } = await start("node", [join(here, "hostile.cjs")], { PORT: "0" }, /listening (\d+)/);
    const { page, errors } = await openPage(browser, `hostile=${encodeURIComponent(`http://127.0.0.1:${match[1]}`)}`);
    try {
      await page.waitForFunction(() => document.body.dataset.phase === "done", null, { timeout: 30000 });
      assertRun(await log(page), errors, ["hostile server", "the page lives on"]);
    } finally {
      await page.context().close();
      await stop(child);
    }
  });

  await test("chat page (examples/chat_page.rs) against ferrio-server's chat example: join, members, messages between two pages", async () => {
    const port = await freePort();
    const { child } = await start(chatBin, [], { PORT: String(port) }, /chat demo on/);
    const query = `server=${encodeURIComponent(`http://127.0.0.1:${port}`)}`;
    const a = await openPage(browser, query, "chat");
    const b = await openPage(browser, query, "chat");
    const text = (p, sel) => p.page.textContent(sel);
    const until = (p, fn, arg) => p.page.waitForFunction(fn, arg, { timeout: 10000 });
    try {
      await until(a, () => document.getElementById("status")?.textContent === "connected");
      await a.page.fill("#nick", "ann");
      await a.page.click("#join");
      await until(a, () => document.getElementById("members").textContent === "ann");
      await until(b, () => document.getElementById("status")?.textContent === "connected");
      await b.page.fill("#nick", "bob");
      await b.page.click("#join");
      await until(a, () => document.getElementById("members").textContent === "ann,bob");
      await until(b, () => document.getElementById("members").textContent === "ann,bob");
      await b.page.fill("#text", "hi from bob");
      await b.page.click("#send");
      await until(a, () => [...document.querySelectorAll("#messages li")].some((li) => li.textContent === "bob: hi from bob"));
      await until(b, () => [...document.querySelectorAll("#messages li")].some((li) => li.textContent === "me: hi from bob"));
      const lines = await a.page.$$eval("#messages li", (lis) => lis.map((li) => li.textContent));
      if (JSON.stringify(lines) !== JSON.stringify(["* bob joined", "bob: hi from bob"])) {
        throw new Error(`ann's page shows ${JSON.stringify(lines)}`);
      }
      // Bob leaves: ann's page hears it.
      await b.page.close();
      await until(a, () => document.getElementById("members").textContent === "ann");
      const errors = [...a.errors, ...b.errors];
      if (errors.length || (await text(a, "#error"))) {
        throw new Error(`page errors: ${errors.join("; ")} ${await text(a, "#error")}`);
      }
    } finally {
      await a.page.context().close();
      await b.page.context().close();
      await stop(child);
    }
  });
  // Two Leptos chat pages at `url` (with `query`): join, the member list, typing, messages both
  // ways with acknowledgements, the server restarted (`restart()`: the pages reconnect and join
  // their room again), leaving.
  async function leptosChat(url, query, restart) {
    const a = await openPage(browser, query, null, url);
    const b = await openPage(browser, query, null, url);
    const until = (p, fn, arg, timeout = 10000) => p.page.waitForFunction(fn, arg, { timeout });
    const lines = (p) => p.page.$$eval("#messages li", (lis) => lis.map((li) => li.textContent));
    const shows = (p, line) => until(p, (l) => [...document.querySelectorAll("#messages li")].some((li) => li.textContent === l), line);
    try {
      await until(a, () => document.getElementById("status")?.textContent === "connected");
      await a.page.fill("#nick", "ann");
      await a.page.click("#join");
      await until(a, () => document.getElementById("members").textContent === "ann");
      await until(b, () => document.getElementById("status")?.textContent === "connected");
      await b.page.fill("#nick", "bob");
      await b.page.click("#join");
      await until(a, () => document.getElementById("members").textContent === "ann,bob");
      await until(b, () => document.getElementById("members").textContent === "ann,bob");
      await shows(a, "* bob joined");
      // Bob types: ann sees it. (The server relays `typing` as volatile: bob's page says it
      // again each second while he types, so the test types on until it shows, within 10 s.)
      const deadline = Date.now() + 10000;
      for (let i = 0; ; i++) {
        await b.page.fill("#text", "hi from bob".slice(0, 1 + (i % 11)));
        try {
          await until(a, () => document.getElementById("typing").textContent === "bob is typing…", null, 1500);
          break;
        } catch (e) {
          if (Date.now() > deadline) throw new Error(`ann never saw bob typing: ${e}`);
        }
      }
      // Bob pauses without sending: after a few seconds ann no longer sees him typing.
      await until(a, () => document.getElementById("typing").textContent === "");
      await b.page.fill("#text", "hi from bob");
      await b.page.click("#send");
      await shows(a, "bob: hi from bob");
      await shows(b, "me: hi from bob");
      await until(a, () => document.getElementById("typing").textContent === "");
      if ((await b.page.inputValue("#text")) !== "") throw new Error("bob's message field was not cleared");
      await a.page.fill("#text", "hello bob");
      await a.page.press("#text", "Enter");
      await shows(b, "ann: hello bob");
      await shows(a, "me: hello bob");
      const annSaw = await lines(a);
      if (JSON.stringify(annSaw) !== JSON.stringify(["* bob joined", "bob: hi from bob", "me: hello bob"])) {
        throw new Error(`ann's page shows ${JSON.stringify(annSaw)}`);
      }
      const bobSaw = await lines(b);
      if (JSON.stringify(bobSaw) !== JSON.stringify(["me: hi from bob", "ann: hello bob"])) {
        throw new Error(`bob's page shows ${JSON.stringify(bobSaw)}`);
      }
      // The server goes away and comes back (a new session, it forgot them): both pages
      // reconnect and join the room again by themselves.
      await restart();
      for (const p of [a, b]) {
        await until(p, () => document.getElementById("status").textContent.startsWith("disconnected"));
      }
      for (const p of [a, b]) {
        await until(p, () => document.getElementById("status").textContent === "connected", null, 30000);
        await until(p, () => document.getElementById("members").textContent === "ann,bob");
      }
      await b.page.fill("#text", "back again");
      await b.page.click("#send");
      await shows(a, "bob: back again");
      // Bob leaves: ann's page hears it.
      await b.page.close();
      await until(a, () => document.getElementById("members").textContent === "ann");
      await shows(a, "* bob left");
      const errors = [...a.errors, ...b.errors];
      const shown = await a.page.textContent("#error");
      if (errors.length || shown) throw new Error(`page errors: ${errors.join("; ")} ${shown}`);
    } finally {
      await a.page.context().close();
      await b.page.context().close();
    }
  }

  await test("Leptos chat page served by ferrio-server's chat example at /leptos/: two pages join, see members and typing, chat, rejoin after a server restart, leave", async () => {
    const port = await freePort();
    const env = { PORT: String(port), LEPTOS_CHAT_DIR: join(pagesDir, "leptos-chat") };
    let { child } = await start(chatBin, [], env, /Leptos chat page on/);
    const restart = async () => {
      await stop(child);
      ({ child } = await start(chatBin, [], env, /Leptos chat page on/));
    };
    try {
      const moved = await fetch(`http://127.0.0.1:${port}/leptos`, { redirect: "manual" });
      if (moved.status !== 308 || moved.headers.get("location") !== "/leptos/") {
        throw new Error(`/leptos answered ${moved.status} ${moved.headers.get("location")}`);
      }
      await leptosChat(`http://127.0.0.1:${port}/leptos/`, "", restart);
    } finally {
      await stop(child);
    }
  });

  await test("Leptos chat page against Node's socket.io running the chat events: two pages join, see members and typing, chat, rejoin after a server restart, leave", async () => {
    const port = await freePort();
    const server = [join(here, "chat-server.cjs")];
    let { child } = await start("node", server, { PORT: String(port) }, /listening (\d+)/);
    const restart = async () => {
      await stop(child);
      ({ child } = await start("node", server, { PORT: String(port) }, /listening (\d+)/));
    };
    try {
      await leptosChat(`${pageBase}/leptos-chat/`, `server=${encodeURIComponent(`http://127.0.0.1:${port}`)}`, restart);
    } finally {
      await stop(child);
    }
  });
} catch (e) {
  results.push(false);
  console.log(`ferrio-client-web browser tests: ${e && e.stack ? e.stack : e}`);
} finally {
  if (browser) await browser.close();
  pageServer.close();
  await Promise.all(children.map(stop));
}
const passed = results.filter((r) => r).length;
const failed = results.length - passed;
console.log(`ferrio-client-web browser tests: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
