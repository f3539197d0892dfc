#!/usr/bin/env bash
# User-space instructions and allocations per message of a server, counted by callgrind
# (deterministic: they do not depend on the machine's load). Starts SERVER under
# `valgrind --tool=callgrind` on PORT, drives it with load.js (Node, the `ws` package from
# tests/node), which zeroes the counters after a warm-up and dumps them after COUNT messages per
# client, then prints instructions and allocations per ack (per delivery for bcast).
#   bench/callgrind/run.sh SERVER MODE CLIENTS COUNT [PORT]
#   MODE: ws (acked echo over WebSocket) | bin (64 KiB binary echo) | poll (acked echo over
#   long-polling) | bcast (broadcasts to CLIENTS WebSocket receivers)
# e.g. bench/callgrind/run.sh target/release/examples/bench ws 10 200
# The server gets PORT in its environment and TOKIO_WORKER_THREADS=${WORKERS:-2}, which sizes a
# multi-threaded runtime (socketioxide's default; Ferrio's bench server runs on one thread unless
# RUNTIME=multi_thread[:N] is set, and RUNTIME passes through from the caller), and SPIN_US=0
# unless the caller sets it: the bench server's spin before sleeping depends on timing, so its
# rounds would make the counts depend on the machine. glibc's
# `rep stosb`/`rep movsb` paths are turned off, or callgrind counts each byte of a memset or
# memcpy as an instruction.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "${here}/../.." && pwd)
server=$1 mode=$2 clients=$3 count=$4 port=${5:-3311}
command -v valgrind >/dev/null || { echo "run.sh: valgrind is needed" >&2; exit 1; }
[ -d "${root}/tests/node/node_modules/ws" ] \
  || (cd "${root}/tests/node" && npm ci --no-audit --no-fund --loglevel=error)
out=$(mktemp -d)
GLIBC_TUNABLES=glibc.cpu.x86_rep_stosb_threshold=1000000000:glibc.cpu.x86_rep_movsb_threshold=1000000000 \
  PORT=${port} TOKIO_WORKER_THREADS=${WORKERS:-2} SPIN_US=${SPIN_US:-0} \
  valgrind --tool=callgrind --callgrind-out-file="${out}/cg.%p" "${server}" >/dev/null 2>"${out}/valgrind.log" &
vpid=$!
trap 'kill ${vpid} 2>/dev/null || true; rm -rf "${out}"' EXIT
for _ in $(seq 100); do
  sleep 0.3
  (echo > "/dev/tcp/127.0.0.1/${port}") 2>/dev/null && break
done
NODE_PATH="${root}/tests/node/node_modules" node "${here}/load.js" "${mode}" "${clients}" "${count}" "${port}" "${vpid}"
python3 "${here}/count.py" "${out}/cg.${vpid}.1" $((clients * count)) "${mode}"
