#!/usr/bin/env bash
# Builds the Leptos chat page (this crate) for the browser: the wasm with cargo, the JavaScript
# glue with the pinned wasm-bindgen (scripts/install-wasm-bindgen installs it), and index.html,
# into target/leptos-chat/ (or the directory given as the last argument). ferrio-server's chat
# example serves that directory at /leptos/ (LEPTOS_CHAT_DIR names another one).
#   build.sh [--release] [OUT_DIR]    (without --release: the debug build, quicker to build)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "${here}/../../../.." && pwd)
cd "${root}"
profile=debug
flags=()
if [ "${1:-}" = "--release" ]; then
  profile=release
  # Optimized for size: a page downloads it (about 13% smaller than opt-level 3).
  flags=(--release --config 'profile.release.opt-level="z"')
  shift
fi
out=${1:-${root}/target/leptos-chat}
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
scripts/install-wasm-bindgen
cargo build --locked -p ferrio-leptos-chat --target wasm32-unknown-unknown "${flags[@]}"
target_dir=$("${root}/scripts/target-dir")
rm -rf "${out:?}"
wasm-bindgen --target web --no-typescript --out-dir "${out}" --out-name leptos-chat \
  "${target_dir}/wasm32-unknown-unknown/${profile}/ferrio-leptos-chat.wasm"
cp "${here}/index.html" "${out}/index.html"
echo "leptos-chat: built into ${out} ($(du -k "${out}/leptos-chat_bg.wasm" | cut -f1) KiB of wasm)"
