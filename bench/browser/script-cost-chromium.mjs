// The script-cost benchmark (script-cost-harness.mjs) in headless Chromium instead of Node: the
// same fake WebSocket and scenarios, in a page, timed by `performance.now()` (the page's main
// thread does nothing else). Chromium's V8 is newer than Node 20's and its `TextEncoder` and
// `TextDecoder` are calls into the browser, so the two runners can disagree. Run by
// `script-cost.sh --chromium` (see README.md):
//   node script-cost-chromium.mjs ROUNDS LIB...   (LIB: a directory with ferrio.js, or an .mjs bundle)
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "../..");
const { chromium } = createRequire(join(root, "bindings/wasm/package.json"))("playwright-core");
const [count, ...libs] = process.argv.slice(2);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const timer = setTimeout(() => {
  console.error("script-cost-chromium: no result in 600 s");
  process.exit(1);
}, 600000);
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
  // Everything from one made-up origin: the page, the harness, and library i under /lib<i>/.
  await page.route("http://script-cost.local/**", async (route) => {
    const path = new URL(route.request().url()).pathname;
    let file;
    if (path === "/") return route.fulfill({ contentType: "text/html", body: "<!doctype html><title>script cost</title>" });
    if (path === "/harness.mjs") file = join(here, "script-cost-harness.mjs");
    const m = /^\/lib(\d+)\/(.+)$/.exec(path);
    if (m) {
      const lib = libs[Number(m[1])];
      file = /\.m?js$/.test(lib) ? lib : join(lib, m[2]);
    }
    if (!file || !existsSync(file)) return route.fulfill({ status: 404, body: "" });
    const contentType = file.endsWith(".wasm") ? "application/wasm" : "text/javascript";
    return route.fulfill({ contentType, body: await readFile(file) });
  });
  await page.goto("http://script-cost.local/");
  const lines = await page.evaluate(async ({ count, n }) => {
    const { FakeWS, rounds, summary } = await import("/harness.mjs");
    globalThis.WebSocket = FakeWS;
    const ios = [];
    for (let i = 0; i < n; i++) ios.push((await import(`/lib${i}/ferrio.js`)).io);
    return summary(ios.map((_, i) => `lib${i}`), await rounds(ios, count, () => performance.now()));
  }, { count: Number(count), n: libs.length });
  lines.forEach((line, i) => console.log(line.replace(/^lib\d+/, libs[i].split("/").slice(-2).join("/"))));
} finally {
  clearTimeout(timer);
  await browser.close();
}
