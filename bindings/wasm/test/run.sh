#!/usr/bin/env bash
# Browser tests of the `ferrio` package: builds it, builds the two Rust servers the tests start
# (ferrio-server's e2e and chat examples), then runs test/run.mjs in headless Chromium.
# Needs: /usr/bin/chromium (or CHROMIUM=...), `npm ci` in bindings/wasm and tests/node.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "${here}/../../.." && pwd)
"${here}/../build.sh"
cd "${root}"
cargo build --locked -p ferrio-server --example e2e --example chat
exec timeout 180 node "${here}/run.mjs" "${root}/target/debug/examples/e2e" "${root}/target/debug/examples/chat"
