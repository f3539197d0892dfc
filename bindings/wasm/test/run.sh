#!/usr/bin/env bash
# Browser tests of the `ferrio` package: builds it, type-checks test/types.ts against its
# declarations, builds the Rust servers the tests start (ferrio-server's e2e, chat and
# recipe_login examples), then runs test/run.mjs in headless Chromium.
# Needs: /usr/bin/chromium (or CHROMIUM=...), `npm ci` in bindings/wasm and tests/node.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "${here}/../../.." && pwd)
"${here}/../build.sh"
# The TypeScript declarations: test/types.ts must type-check (typed event maps, acks, options,
# the msgpack entry point).
"${here}/../node_modules/.bin/tsc" -p "${here}/tsconfig.json"
echo "types: test/types.ts checks against ferrio.d.ts and msgpack.d.ts"
cd "${root}"
cargo build --locked -p ferrio-server --features serve-client --example e2e --example chat --example recipe_login
# Cargo's target directory (`CARGO_TARGET_DIR` or the workspace's `target/`).
target_dir=$("${root}/scripts/target-dir")
examples="${target_dir}/debug/examples"
exec timeout 180 node "${here}/run.mjs" "${examples}/e2e" "${examples}/chat" "${examples}/recipe_login"
