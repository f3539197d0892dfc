#!/usr/bin/env bash
# Script CPU per event of `ferrio` and `socket.io-client` in Node's V8 (the engine of Chromium),
# without a network or a browser: small JSON events, 64 KiB binary events, emit → ack round
# trips. Steadier than the browser benchmark on a loaded machine; it leaves out the browser's
# own per-message work (the same for both libraries).
#   bench/browser/script-cost.sh [--chromium] [ROUNDS] [DIST...]
# `--chromium`: the same scenarios in a headless Chromium page (script-cost-chromium.mjs), timed
# by `performance.now()`; Chromium's V8 and its text codecs differ from Node's.
# ROUNDS (default 5) rounds per process after a warm-up, the libraries alternating; each DIST
# (default bindings/wasm/dist, built by bindings/wasm/build.sh) is a build of the package.
# Prints, per library, the medians (min-max) of the rounds, in µs per event.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "${here}/../.." && pwd)
runner="${here}/script-cost.mjs"
if [ "${1:-}" = "--chromium" ]; then
  runner="${here}/script-cost-chromium.mjs"
  shift
  [ -d "${root}/bindings/wasm/node_modules/playwright-core" ] \
    || (cd "${root}/bindings/wasm" && npm ci --no-audit --no-fund --loglevel=error)
fi
rounds=${1:-5}
shift || true
dists=("$@")
[ ${#dists[@]} -gt 0 ] || dists=("${root}/bindings/wasm/dist")
[ -d "${root}/tests/node/node_modules/socket.io-client" ] \
  || (cd "${root}/tests/node" && npm ci --no-audit --no-fund --loglevel=error)
work=$(mktemp -d)
trap 'rm -rf "${work}"' EXIT
libs=()
i=0
for d in "${dists[@]}"; do
  [ -f "${d}/ferrio.js" ] || { echo "script-cost.sh: no ferrio.js in ${d} (run bindings/wasm/build.sh)" >&2; exit 1; }
  i=$((i + 1))
  mkdir -p "${work}/ferrio-${i}"
  cp -r "${d}/." "${work}/ferrio-${i}/"
  echo '{"type":"module"}' > "${work}/ferrio-${i}/package.json"
  libs+=("${work}/ferrio-${i}")
done
cp "${root}/tests/node/node_modules/socket.io-client/dist/socket.io.esm.min.js" "${work}/socket.io-client.mjs"
libs+=("${work}/socket.io-client.mjs")
node "${runner}" "${rounds}" "${libs[@]}"
