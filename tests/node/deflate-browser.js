// WebSocket compression (`permessage-deflate`, RFC 7692) between headless Chromium, driven by
// playwright-core, and a Ferrio Engine.IO echo server with compression on
// (tests/tests/client_deflate.rs starts it, behind a proxy that records the frames): a page
// served from 127.0.0.1 on a free port opens a browser WebSocket to the server, checks that
// `permessage-deflate` was agreed (`ws.extensions`), and sends a 100 KB text message and a
// 100 KB binary one, which must come back unchanged. The browser compresses its own messages,
// the server its echoes.
//
// Input (stdin, JSON): {"url": "ws://127.0.0.1:PORT/engine.io/?EIO=4&transport=websocket"}.
// playwright-core comes from bindings/wasm/node_modules (PLAYWRIGHT_CORE overrides the path),
// Chromium from /usr/bin/chromium (CHROMIUM overrides it).
// Output: one "ok <step>" line per step, then "ALL OK".

const http = require("node:http");
const path = require("node:path");

const WAIT = 15000;
const playwrightPath =
  process.env.PLAYWRIGHT_CORE ||
  path.join(__dirname, "..", "..", "bindings", "wasm", "node_modules", "playwright-core");
const { chromium } = require(playwrightPath);

let browser;
const overall = setTimeout(() => fail("overall time limit reached"), 60000);

function fail(message) {
  console.error("FAIL " + message);
  if (browser) browser.close().catch(() => {});
  process.exit(1);
}

/** An empty page on 127.0.0.1, on a free port. */
function servePage() {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>deflate</title>");
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

function readStdin() {
  return new Promise((resolve) => {
    let data = "";
    process.stdin.on("data", (c) => (data += c));
    process.stdin.on("end", () => resolve(data));
  });
}

/** In the page: the WebSocket exchange; what it saw. */
async function exchange({ url, wait }) {
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  const queue = [];
  let waiting = null;
  ws.onmessage = (e) => {
    queue.push(e.data);
    if (waiting) waiting();
  };
  const closed = new Promise((resolve) => (ws.onclose = (e) => resolve(`closed ${e.code}`)));
  async function next() {
    const deadline = Date.now() + wait;
    while (queue.length === 0) {
      if (Date.now() > deadline) throw new Error("no message in time");
      await Promise.race([
        new Promise((r) => (waiting = r)),
        new Promise((r) => setTimeout(r, 100)),
        closed.then((c) => {
          throw new Error(c);
        }),
      ]);
    }
    return queue.shift();
  }
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error("websocket error"));
  });
  const result = { extensions: ws.extensions };
  const open = await next();
  result.open = typeof open === "string" && open.startsWith("0{");
  // Pseudo-random letters: compressible, but not to nothing.
  let x = 0x2545f491;
  let text = "4";
  for (let i = 0; i < 100000; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    text += String.fromCharCode(97 + ((x >>> 0) % 26));
  }
  ws.send(text);
  let back = await next();
  while (typeof back === "string" && back === "2") {
    ws.send("3");
    back = await next();
  }
  result.text = back === text;
  const bytes = new Uint8Array(100000);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) % 251;
  ws.send(bytes);
  back = await next();
  while (typeof back === "string" && back === "2") {
    ws.send("3");
    back = await next();
  }
  const got = new Uint8Array(back instanceof ArrayBuffer ? back : new ArrayBuffer(0));
  result.binary = got.length === bytes.length && got.every((b, i) => b === bytes[i]);
  ws.close();
  return result;
}

(async () => {
  const { url } = JSON.parse(await readStdin());
  const site = await servePage();
  const base = `http://127.0.0.1:${site.address().port}`;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const page = await browser.newPage();
  page.setDefaultTimeout(WAIT);
  await page.goto(base + "/", { waitUntil: "domcontentloaded" });
  const result = await page.evaluate(exchange, { url, wait: WAIT });
  console.log(`extensions ${result.extensions}`);
  if (!/permessage-deflate/.test(result.extensions)) fail("no permessage-deflate: " + JSON.stringify(result));
  console.log("ok negotiated");
  if (!result.open) fail("no open packet");
  if (!result.text) fail("the text message did not come back unchanged");
  console.log("ok text");
  if (!result.binary) fail("the binary message did not come back unchanged");
  console.log("ok binary");
  await browser.close();
  site.close();
  clearTimeout(overall);
  console.log("ALL OK");
})().catch((e) => fail(e && e.stack ? e.stack : String(e)));
