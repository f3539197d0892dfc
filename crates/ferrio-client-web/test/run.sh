#!/usr/bin/env bash
# Browser tests of ferrio-client-web: builds the interop page (examples/interop.rs) for
# wasm32-unknown-unknown, runs wasm-bindgen on it, builds ferrio-server's e2e example, then runs
# test/run.mjs: the page in headless Chromium against Node's socket.io and against ferrio-server,
# and against a hostile server; then the Leptos chat page (examples/leptos-chat, built by its
# build.sh) against ferrio-server's chat example and Node's socket.io (chat-server.cjs).
# Needs: /usr/bin/chromium (or CHROMIUM=...), `npm ci` in bindings/wasm (playwright-core) and in
# tests/node (socket.io).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "${here}/../../.." && pwd)
cd "${root}"
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
scripts/install-wasm-bindgen
cargo build --locked -p ferrio-client-web --example interop --example chat_page \
  --target wasm32-unknown-unknown
cargo build --locked -p ferrio-server --example e2e --example chat
# Cargo's target directory (`CARGO_TARGET_DIR` or the workspace's `target/`).
target_dir=$("${root}/scripts/target-dir")
# The pages: target/ferrio-client-web/<page>/ (index.html, wasm-bindgen's <page>.js and
# <page>_bg.wasm). The chat page's example is `chat_page` (ferrio-server has an example `chat`).
out="${root}/target/ferrio-client-web"
for page in interop chat; do
  rm -rf "${out:?}/${page}"
  wasm-bindgen --target web --no-typescript --out-dir "${out}/${page}" --out-name "${page}" \
    "${target_dir}/wasm32-unknown-unknown/debug/examples/${page/#chat/chat_page}.wasm"
  cp "${here}/../examples/web/${page}.html" "${out}/${page}/index.html"
done
"${here}/../examples/leptos-chat/build.sh" "${out}/leptos-chat"
examples="${target_dir}/debug/examples"
exec timeout 240 node "${here}/run.mjs" "${out}" "${examples}/e2e" "${examples}/chat"
