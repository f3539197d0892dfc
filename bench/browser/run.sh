#!/usr/bin/env bash
# The npm package `ferrio` against `socket.io-client` 4.8.4 in headless Chromium, on the same
# benchmark server in the same run; prints a markdown table of medians and ratios.
#   bench/browser/run.sh                      ferrio-server's bench example, 5 runs
#   bench/browser/run.sh --server both        the same on Node's socket.io server too
#   bench/browser/run.sh --quick              1 run, smaller scenarios
#   bench/browser/run.sh --runs 3 --profile   3 runs, then a CPU profile of one flood of each kind
#   NO_BUILD=1 bench/browser/run.sh           measure bindings/wasm/dist as it is (no package build)
# Builds the package (bindings/wasm/build.sh) and the server (release), installs the npm
# dependencies when missing (`npm ci`). Needs /usr/bin/chromium (or CHROMIUM=...).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "${here}/../.." && pwd)
cd "${root}"

if [ -z "${NO_BUILD:-}" ] || [ ! -f bindings/wasm/dist/ferrio.js ]; then
  bindings/wasm/build.sh
fi
# playwright-core (bindings/wasm), socket.io-client (tests/node), socket.io (bench/node).
[ -d bindings/wasm/node_modules/playwright-core ] || (cd bindings/wasm && npm ci --no-audit --no-fund --loglevel=error)
[ -f tests/node/node_modules/socket.io-client/dist/socket.io.esm.min.js ] \
  || (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
if [[ " $* " == *" both "* || " $* " == *" node "* ]]; then
  [ -d bench/node/node_modules/socket.io ] || (cd bench/node && npm ci --no-audit --no-fund --loglevel=error)
fi
cargo build --release --locked -p ferrio-server --example bench
# Where cargo put it (`CARGO_TARGET_DIR` or the workspace's `target/`), for run.mjs.
FERRIO_TARGET_DIR=$(scripts/target-dir)
export FERRIO_TARGET_DIR
exec timeout 900 node "${here}/run.mjs" "$@"
