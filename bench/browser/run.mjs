// The npm package `ferrio` against `socket.io-client` in headless Chromium, on the same benchmark
// server in the same run (see README.md next to this file).
//
// Usage: node run.mjs [--server ferrio|node|both] [--runs N] [--quick] [--profile] [--timing]
// For every run and server, one fresh page per library (the order alternates between runs) loads
// the library, times `connect`, then measures a flood of small JSON events, a flood of 64 KiB
// binary events and emit-to-ack round trips. The renderer's main-thread time of each scenario comes
// from the DevTools protocol (`Performance.getMetrics`, TaskDuration and ScriptDuration, in thread
// CPU time) read before and after it. Prints a markdown table of medians and ratios
// ferrio/socket.io-client. `--profile` also samples one flood of each kind with the CPU profiler
// and prints where the main thread's time went, per function (self time). `--timing` adds rows
// timed inside the page: µs in each WebSocket message handler, each `WebSocket.send`, each
// `JSON.parse` (wall time; the wrappers are installed before the library loads).
import { spawn } from "node:child_process";
import { readFile, readdir } from "node:fs/promises";
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { gzipSync } from "node:zlib";
import http from "node:http";
import { createServer } from "node:net";
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const { chromium } = createRequire(join(root, "bindings/wasm/package.json"))("playwright-core");

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const option = (name, def) => {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : def;
};
const quick = flag("--quick");
const timingRows = flag("--timing");
const runs = Number(option("--runs", quick ? 1 : 5));
const serverKinds = option("--server", "ferrio") === "both" ? ["ferrio", "node"] : [option("--server", "ferrio")];
// Scenario sizes: each takes a second or so here.
const SIZES = quick
  ? { connects: 5, small: 5000, bin: 100, ackMs: 500 }
  : { connects: 10, small: 20000, bin: 300, ackMs: 1000 };
const BIN = 65536;
// Floods are asked for [chunk, requests in flight] at a time: at most 750 small events or 3 MiB
// queued at the server for this client, within a Ferrio session's bounds (1024 commands,
// 10 MB on a WebSocket).
const CHUNK = { small: [250, 3], bin: [16, 3] };

const LIB_FILES = {
  // FERRIO_DIST: another build of the package (a directory with ferrio.js and its wasm).
  "/lib/ferrio/": process.env.FERRIO_DIST || join(root, "bindings/wasm/dist"),
  "/lib/sioc/": join(root, "tests/node/node_modules/socket.io-client/dist"),
};
const children = [];
let browser;
const deadline = setTimeout(() => fail(new Error("overall time limit (600 s) reached")), 600000);

function cleanup() {
  for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
}
// Interrupted, or the output closed (piped into `head`): the servers stop too.
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => fail(new Error(`stopped by ${sig}`)));
process.stdout.on("error", () => fail(new Error("standard output closed")));

async function fail(e) {
  console.error(`browser bench: ${e && e.stack ? e.stack : e}`);
  cleanup();
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}

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

// Starts a server and resolves once its stdout says it listens.
async function startServer(kind) {
  const port = await freePort();
  const [cmd, args] =
    kind === "ferrio"
      ? [join(process.env.FERRIO_TARGET_DIR || join(root, "target"), "release/examples/bench"), []]
      : ["node", [join(root, "bench/node/server.js")]];
  const child = spawn(cmd, args, { env: { ...process.env, PORT: String(port) }, stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${kind} server did not start`)), 20000);
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      if (/listening/.test(out)) {
        clearTimeout(t);
        resolve();
      }
    });
    child.once("exit", (code) => reject(new Error(`${kind} server exited with ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}`, child };
}

// The page and the two libraries, from a real HTTP server (Chromium refuses WebSockets to
// 127.0.0.1 from pages that a test framework fulfils itself). The files are read once, at the
// start: every page of the run gets the same build even if the package is rebuilt meanwhile.
async function staticServer() {
  const types = { ".js": "text/javascript", ".wasm": "application/wasm", ".html": "text/html" };
  const files = new Map([["/page.html", await readFile(join(here, "page.html"))]]);
  for (const [prefix, dir] of Object.entries(LIB_FILES)) {
    for (const name of await readdir(dir)) {
      if (/\.(js|wasm)$/.test(name)) files.set(prefix + name, await readFile(join(dir, name)));
    }
  }
  const server = http.createServer((req, res) => {
    const path = req.url.split("?")[0];
    const body = files.get(path);
    if (!body) return res.writeHead(404).end();
    res.writeHead(200, { "content-type": types[extname(path)] || "application/octet-stream", "cache-control": "no-store" }).end(body);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, base: `http://127.0.0.1:${server.address().port}`, files };
}

// A fresh page with the library loaded: { page, cdp, loadMs }.
async function openPage(base, lib, serverUrl) {
  const page = await browser.newPage();
  page.on("console", (m) => console.error(`[${lib}] ${m.text()}`));
  page.on("pageerror", (e) => console.error(`[${lib}] page error: ${e.message}`));
  await page.goto(`${base}/page.html${timingRows ? "?timing" : ""}`);
  await page.waitForFunction(() => window.benchReady === true);
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Performance.enable", { timeDomain: "threadTicks" });
  const loadMs = await page.evaluate(([l, u]) => window.bench.load(l, u), [lib, serverUrl]);
  return { page, cdp, loadMs };
}

async function mainThread(cdp) {
  const { metrics } = await cdp.send("Performance.getMetrics");
  const get = (n) => metrics.find((m) => m.name === n)?.value ?? NaN;
  return { task: get("TaskDuration"), script: get("ScriptDuration") };
}

// Runs `fn` in the page and returns its result with the main thread's task and script time
// (seconds) spent meanwhile.
// With --timing, also the page's in-page timings of the scenario (`bench.timing()`).
async function measured(cdp, page, fn, arg) {
  if (timingRows) await page.evaluate(() => window.bench.timing());
  const before = await mainThread(cdp);
  const result = await page.evaluate(fn, arg);
  const after = await mainThread(cdp);
  const timing = timingRows ? await page.evaluate(() => window.bench.timing()) : undefined;
  return { result, task: after.task - before.task, script: after.script - before.script, timing };
}

// The --timing rows of one scenario: µs per message handler, per `WebSocket.send`, per
// `JSON.parse` (wall time in the page).
function timingInto(r, label, timing) {
  if (!timing) return;
  r[`${label}: µs in each message handler`] = timing.handler[0];
  r[`${label}: µs in each WebSocket.send`] = timing.send[0];
  r[`${label}: µs in each JSON.parse`] = timing.parse[0];
}

// One library on one server: the figures of one run.
async function runOnce(base, lib, serverUrl) {
  const { page, cdp, loadMs } = await openPage(base, lib, serverUrl);
  try {
    const r = { "import (ms)": loadMs };
    r["connect, WebSocket (ms)"] = await page.evaluate((n) => window.bench.connect(n), SIZES.connects);
    await page.evaluate(() => window.bench.open());
    // Warm-up: the JIT and the wasm tiers, both kinds of events.
    await page.evaluate((c) => window.bench.flood(...c), [2000, 0, ...CHUNK.small]);
    await page.evaluate((c) => window.bench.flood(...c), [32, BIN, ...CHUNK.bin]);
    await page.evaluate(() => window.bench.acks(200, 1));

    const flood = async (label, count, size) => {
      const m = await measured(cdp, page, (c) => window.bench.flood(...c), [count, size, ...(size ? CHUNK.bin : CHUNK.small)]);
      const { ms, received, acked } = m.result;
      if (received !== count || acked !== count) throw new Error(`${lib} ${label}: ${received} events received, ${acked} acked, of ${count}`);
      r[`${label} events/s`] = (count / ms) * 1000;
      r[`${label} main-thread µs/event`] = (m.task * 1e6) / count;
      r[`${label} script µs/event`] = (m.script * 1e6) / count;
      timingInto(r, label, m.timing);
    };
    await flood("small JSON", SIZES.small, 0);
    await flood("64 KiB binary", SIZES.bin, BIN);
    for (const win of [1, 100]) {
      const m = await measured(cdp, page, ([ms, w]) => window.bench.acks(ms, w), [SIZES.ackMs, win]);
      const label = win === 1 ? "emit→ack, 1 in flight" : `emit→ack, ${win} in flight`;
      r[`${label}: round trips/s`] = (m.result.acks / m.result.ms) * 1000;
      r[`${label}: main-thread µs/round trip`] = (m.task * 1e6) / m.result.acks;
      timingInto(r, label, m.timing);
    }
    await page.evaluate(() => window.bench.close());
    return r;
  } finally {
    await page.close();
  }
}

const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmt = (x) => (!Number.isFinite(x) ? "-" : x >= 1000 ? x.toFixed(0) : x >= 100 ? x.toFixed(1) : x >= 10 ? x.toFixed(2) : x.toFixed(3));

// --- the profile ---------------------------------------------------------------------------------

// Self time per function of a CPU profile, the largest first: [{ name, where, ms }].
function selfTimes(profile, sources) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const dt = new Map();
  profile.samples.forEach((id, i) => dt.set(id, (dt.get(id) || 0) + (profile.timeDeltas[i] || 0)));
  const groups = new Map();
  for (const [id, us] of dt) {
    const f = byId.get(id).callFrame;
    let key;
    let where = "";
    if (f.url.startsWith("wasm://")) {
      key = `wasm ${f.functionName}`;
    } else if (f.url) {
      const src = sources.get(f.url);
      const file = f.url.split("/").pop();
      const snippet = src ? snippetAt(src, f.lineNumber, f.columnNumber) : "";
      key = `${file}:${f.lineNumber + 1}:${f.columnNumber + 1} ${f.functionName || "(anonymous)"}`;
      where = snippet;
    } else {
      key = f.functionName || "(native)";
    }
    const g = groups.get(key) || { name: key, where, ms: 0 };
    g.ms += us / 1000;
    groups.set(key, g);
  }
  return [...groups.values()].sort((a, b) => b.ms - a.ms);
}

// Total (inclusive) time per wasm function, the largest first: [{ name, ms }].
function wasmTotals(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children || []) parent.set(c, n.id);
  const totals = new Map();
  profile.samples.forEach((id, i) => {
    const seen = new Set();
    for (let n = id; n !== undefined; n = parent.get(n)) {
      const f = byId.get(n).callFrame;
      if (f.url.startsWith("wasm://") && !seen.has(f.functionName)) {
        seen.add(f.functionName);
        totals.set(f.functionName, (totals.get(f.functionName) || 0) + (profile.timeDeltas[i] || 0) / 1000);
      }
    }
  });
  return [...totals].map(([name, ms]) => ({ name, ms })).sort((a, b) => b.ms - a.ms);
}

function snippetAt(src, line, col) {
  const lines = src.split("\n");
  const l = lines[line] || "";
  return l.slice(col, col + 90).replace(/\s+/g, " ");
}

async function profile(base, files, serverUrl) {
  console.log("\n## CPU profile of the main thread (self time, sampled every 100 µs)\n");
  const sources = new Map();
  for (const file of ["/lib/ferrio/ferrio.js", "/lib/sioc/socket.io.esm.min.js"]) sources.set(`${base}${file}`, files.get(file).toString());
  for (const lib of ["ferrio", "sioc"]) {
    const { page, cdp } = await openPage(base, lib, serverUrl);
    await page.evaluate(() => window.bench.open());
    await page.evaluate((c) => window.bench.flood(...c), [2000, 0, ...CHUNK.small]);
    await page.evaluate((c) => window.bench.flood(...c), [32, BIN, ...CHUNK.bin]);
    await cdp.send("Profiler.enable");
    await cdp.send("Profiler.setSamplingInterval", { interval: 100 });
    for (let [label, count, size] of [["small JSON", SIZES.small, 0], ["64 KiB binary", SIZES.bin, BIN], ["emit→ack, 100 in flight", 0, 0]]) {
      await cdp.send("Profiler.start");
      if (count) await page.evaluate((c) => window.bench.flood(...c), [count, size, ...(size ? CHUNK.bin : CHUNK.small)]);
      else count = (await page.evaluate((ms) => window.bench.acks(ms, 100), SIZES.ackMs)).acks;
      const { profile: p } = await cdp.send("Profiler.stop");
      const rows = selfTimes(p, sources);
      const unit = size || label.startsWith("small") ? "event" : "round trip";
      const total = rows.reduce((s, r) => s + r.ms, 0);
      const idle = rows.filter((r) => r.name === "(idle)" || r.name === "(program)" || r.name === "(garbage collector)");
      console.log(`### ${lib}: ${label}, ${count} ${size || label.startsWith("small") ? "events" : "round trips"}: ${total.toFixed(0)} ms sampled (${idle.map((r) => `${r.name} ${r.ms.toFixed(0)} ms`).join(", ")})\n`);
      const wasm = rows.filter((r) => r.name.startsWith("wasm "));
      if (wasm.length) {
        console.log(`all wasm functions: ${wasm.reduce((s, r) => s + r.ms, 0).toFixed(1)} ms (${wasm.length} functions); total time (with callees) of the largest:\n`);
        console.log(`| total ms | µs/${unit} | wasm function |\n|---:|---:|---|`);
        for (const r of wasmTotals(p).slice(0, Number(process.env.PROFILE_ROWS || 22))) {
          console.log(`| ${r.ms.toFixed(1)} | ${((r.ms * 1000) / count).toFixed(2)} | ${r.name.replace(/\|/g, "\\|")} |`);
        }
        console.log("");
      }
      console.log(`| self ms | µs/${unit} | function | code at its start |\n|---:|---:|---|---|`);
      for (const r of rows.filter((r) => r.name !== "(idle)").slice(0, Number(process.env.PROFILE_ROWS || 22))) {
        console.log(`| ${r.ms.toFixed(1)} | ${((r.ms * 1000) / count).toFixed(2)} | ${r.name.replace(/\|/g, "\\|")} | \`${r.where.replace(/[|`]/g, "")}\` |`);
      }
      console.log("");
    }
    await page.close();
  }
}

// --- main ------------------------------------------------------------------------------------------

try {
  const { server: files, base, files: snapshot } = await staticServer();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-quic", "--disable-renderer-backgrounding",
      "--disable-background-timer-throttling",
      // Extra Chromium flags for experiments (e.g. `--js-flags=...`), separated by spaces.
      ...(process.env.CHROMIUM_ARGS ? process.env.CHROMIUM_ARGS.split(" ") : [])],
  });
  const version = browser.version();
  const servers = {};
  for (const kind of serverKinds) servers[kind] = await startServer(kind);
  const results = {}; // results[server][lib] = [run, ...]
  for (let run = 0; run < runs; run++) {
    for (const kind of serverKinds) {
      const order = run % 2 === 0 ? ["ferrio", "sioc"] : ["sioc", "ferrio"];
      for (const lib of order) {
        const t0 = Date.now();
        const r = await runOnce(base, lib, servers[kind].url);
        ((results[kind] ||= {})[lib] ||= []).push(r);
        console.error(`run ${run + 1}/${runs} ${kind} server, ${lib}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      }
    }
  }
  const pkg = ["ferrio.js", "ferrio_wasm_bg.wasm"].map((n) => {
    const b = snapshot.get(`/lib/ferrio/${n}`);
    return b ? `${n} ${b.length} B (${gzipSync(b, { level: 9 }).length} B gzip, sha256 ${createHash("sha256").update(b).digest("hex").slice(0, 12)})` : `${n} missing`;
  });
  console.log(`\nferrio package measured: ${pkg.join(", ")}`);
  if (runs > 0) report(version, results);
  if (flag("--profile")) await profile(base, snapshot, servers[serverKinds[0]].url);
  await browser.close();
  files.close();
  cleanup();
  clearTimeout(deadline);
} catch (e) {
  await fail(e);
}

function report(version, results) {
  console.log(`\nChromium ${version} headless; ${runs} run(s), medians; the libraries alternate page by page.`);
  console.log(`Scenarios: ${SIZES.connects} connects; ${SIZES.small} small JSON events; ${SIZES.bin} × 64 KiB binary events; ${SIZES.ackMs} ms of emit→ack per window.\n`);
  for (const kind of serverKinds) {
    const f = results[kind].ferrio;
    const s = results[kind].sioc;
    console.log(`Server: ${kind === "ferrio" ? "ferrio-server (crates/ferrio-server/examples/bench.rs)" : "Node socket.io 4.8.4 (bench/node/server.js)"}\n`);
    console.log("| Metric | ferrio | socket.io-client 4.8.4 | ferrio/socket.io-client |\n|---|---:|---:|---:|");
    for (const key of Object.keys(f[0])) {
      const a = median(f.map((r) => r[key]));
      const b = median(s.map((r) => r[key]));
      console.log(`| ${key} | ${fmt(a)} | ${fmt(b)} | ${(a / b).toFixed(2)} |`);
    }
    console.log("");
  }
}
