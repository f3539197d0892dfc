// The official Socket.IO Admin UI (the npm @socket.io/admin-ui package's `ui/dist`, a static
// site served here from 127.0.0.1 on a free port) in headless Chromium, driven by
// playwright-core, against a Ferrio server instrumented by ferrio-admin
// (tests/tests/admin_ui.rs starts it): log in through the connection form, find a connected
// server's namespaces on the dashboard and the client in the sockets list, see its rooms on its
// details page, disconnect it from the list and see it gone.
//
// Input (stdin, JSON): {"url": "http://127.0.0.1:PORT"}. The server's `/` namespace puts every
// socket into the room `lobby`; its admin namespace is `/admin` (admin / changeit).
// playwright-core comes from bindings/wasm/node_modules (PLAYWRIGHT_CORE overrides the path),
// Chromium from /usr/bin/chromium (CHROMIUM overrides it).
// Output: one "ok <step>" line per step, then "ALL OK".

const http = require("node:http");
const path = require("node:path");
const fs = require("node:fs");
const { io } = require("socket.io-client");

const WAIT = 15000;
const playwrightPath =
  process.env.PLAYWRIGHT_CORE ||
  path.join(__dirname, "..", "..", "bindings", "wasm", "node_modules", "playwright-core");
const { chromium } = require(playwrightPath);
const dist = path.join(
  path.dirname(require.resolve("@socket.io/admin-ui/package.json")),
  "ui",
  "dist"
);

let browser;
let site;
const overall = setTimeout(() => fail("overall time limit reached"), 90000);

function fail(message) {
  console.error("FAIL " + message);
  if (browser) browser.close().catch(() => {});
  process.exit(1);
}

const TYPES = {
  ".html": "text/html",
  ".js": "text/javascript",
  ".css": "text/css",
  ".png": "image/png",
  ".svg": "image/svg+xml",
  ".map": "application/json",
  ".woff": "font/woff",
  ".woff2": "font/woff2",
  ".ttf": "font/ttf",
  ".eot": "application/vnd.ms-fontobject",
};

/** The UI's static files on 127.0.0.1, on a free port. */
function serveUi() {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://localhost");
    const rel = decodeURIComponent(url.pathname === "/" ? "/index.html" : url.pathname);
    const file = path.join(dist, path.normalize(rel));
    if (!file.startsWith(dist + path.sep)) {
      res.writeHead(403).end();
      return;
    }
    fs.readFile(file, (err, body) => {
      if (err) {
        res.writeHead(404).end();
      } else {
        const type = TYPES[path.extname(file)] || "application/octet-stream";
        res.writeHead(200, { "content-type": type }).end(body);
      }
    });
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
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

async function main(url) {
  site = await serveUi();
  const uiBase = `http://127.0.0.1:${site.address().port}`;

  // A client on `/`, listed by the UI.
  const client = io(url + "/", { forceNew: true, reconnection: false });
  await connected(client, "the client");
  const clientId = client.id;
  const gone = new Promise((resolve) => client.once("disconnect", resolve));

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
  const context = await browser.newContext();
  // The page asks for web fonts and icons from CDNs: only loopback is reached here.
  await context.route(
    (u) => !["127.0.0.1", "localhost"].includes(u.hostname),
    (route) => route.abort()
  );
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on("pageerror", (e) => console.log(`page error: ${e}`));

  // The connection form.
  await page.goto(uiBase + "/", { waitUntil: "domcontentloaded" });
  await page.getByLabel("Server URL").fill(url);
  await page.getByLabel("Username").fill("admin");
  await page.getByLabel("Password").fill("changeit");
  await page.getByRole("button", { name: "Connect" }).click();
  await page.getByRole("dialog").waitFor({ state: "hidden" });
  console.log("ok connected");

  // The dashboard lists the server's namespaces (from its server_stats).
  await page.goto(uiBase + "/#/", { waitUntil: "domcontentloaded" });
  await page.getByText("/chat", { exact: true }).first().waitFor();
  console.log("ok namespaces");

  // The sockets list shows the client.
  await page.goto(uiBase + "/#/sockets/", { waitUntil: "domcontentloaded" });
  // The list's row: the id and the address (the details page has them on separate rows).
  const row = page.locator("tbody tr", { hasText: clientId }).filter({ hasText: "127.0.0.1" });
  await row.waitFor();
  console.log("ok listed");

  // Its details show its rooms.
  await row.click();
  await page.waitForURL((u) => u.hash.includes(encodeURIComponent(clientId)) || u.hash.includes(clientId));
  await page.locator("td", { hasText: /^\s*lobby\s*$/ }).first().waitFor();
  console.log("ok rooms");

  // Disconnected from the list, and gone from it.
  await page.goto(uiBase + "/#/sockets/", { waitUntil: "domcontentloaded" });
  await row.waitFor();
  await row.locator("button").click();
  const reason = await Promise.race([
    gone,
    new Promise((r) => setTimeout(() => r("(none in time)"), WAIT)),
  ]);
  if (reason !== "io server disconnect") fail("client disconnect reason " + reason);
  await row.waitFor({ state: "detached" });
  console.log("ok disconnected");

  await browser.close();
  site.close();
}

let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
  const { url } = JSON.parse(input);
  main(url).then(
    () => {
      clearTimeout(overall);
      console.log("ALL OK");
      process.exit(0);
    },
    (e) => fail(e && e.stack ? e.stack : String(e))
  );
});
