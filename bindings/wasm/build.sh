#!/usr/bin/env bash
# Builds the `ferrio` npm package in place: pkg/ferrio_wasm.js + pkg/ferrio_wasm_bg.wasm, used by
# ferrio.js. Then prints the gzip size of what a browser downloads.
#   bindings/wasm/build.sh           release build, size-optimised (opt-level z, fat LTO, panic=abort)
#   NO_WASM_OPT=1 bindings/wasm/build.sh   skip wasm-opt
#   BUILD_STD=1 bindings/wasm/build.sh     nightly build-std with immediate-abort panics (smaller)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "${here}/../.." && pwd)
cd "${root}"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi

# wasm-bindgen-cli must be the exact version of the wasm-bindgen crate in Cargo.lock.
wb_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "${wb_version}" ]; then
  cargo install wasm-bindgen-cli --version "${wb_version}" --locked \
    || cargo install wasm-bindgen-cli --version "${wb_version}"
fi

# Size profile for the browser build only (the host release profile is left alone).
# BUILD_STD=1: nightly, std rebuilt with immediate-abort panics (no panic messages or locations);
# about 11 % smaller gzip. Needs the nightly toolchain with rust-src.
if [ -n "${BUILD_STD:-}" ]; then
  rustup component list --toolchain nightly --installed | grep -q '^rust-src' \
    || rustup component add rust-src --toolchain nightly
  CARGO_TARGET_DIR="${root}/target/wasm-build-std" \
  CARGO_PROFILE_RELEASE_OPT_LEVEL=z \
  CARGO_PROFILE_RELEASE_LTO=fat \
  CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
  CARGO_PROFILE_RELEASE_PANIC=abort \
  RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort" \
    cargo +nightly build --release --locked --target wasm32-unknown-unknown -p ferrio-wasm \
      -Zbuild-std=std,panic_abort
  wasm="${root}/target/wasm-build-std/wasm32-unknown-unknown/release/ferrio_wasm.wasm"
else
  CARGO_PROFILE_RELEASE_OPT_LEVEL=z \
  CARGO_PROFILE_RELEASE_LTO=fat \
  CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
  CARGO_PROFILE_RELEASE_PANIC=abort \
    cargo build --release --locked --target wasm32-unknown-unknown -p ferrio-wasm
  wasm="${root}/target/wasm32-unknown-unknown/release/ferrio_wasm.wasm"
fi

# wasm-opt runs before wasm-bindgen: Debian's wasm-opt 108 cannot parse the externref-table code
# wasm-bindgen adds (table.fill), and never `-all` (its output fails validation).
if [ -z "${NO_WASM_OPT:-}" ]; then
  if ! command -v wasm-opt >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get install -y binaryen >/dev/null || true
  fi
  if command -v wasm-opt >/dev/null 2>&1; then
    wasm-opt -Oz --enable-bulk-memory --enable-mutable-globals --enable-nontrapping-float-to-int \
      --enable-sign-ext --enable-reference-types --enable-multivalue \
      "${wasm}" -o "${root}/target/ferrio_wasm.opt.wasm"
    wasm="${root}/target/ferrio_wasm.opt.wasm"
  else
    echo "wasm-opt not found: the wasm is not size-optimised" >&2
  fi
fi

out="${here}/pkg"
rm -rf "${out}"
wasm-bindgen --target web --out-dir "${out}" --out-name ferrio_wasm "${wasm}"

gz() { gzip -9 -c "$1" | wc -c; }
wasm_gz=$(gz "${out}/ferrio_wasm_bg.wasm")
glue_gz=$(gz "${out}/ferrio_wasm.js")
api_gz=$(gz "${here}/ferrio.js")
echo "ferrio package: wasm $(wc -c < "${out}/ferrio_wasm_bg.wasm") B (${wasm_gz} B gzip), glue $(wc -c < "${out}/ferrio_wasm.js") B (${glue_gz} B gzip), ferrio.js $(wc -c < "${here}/ferrio.js") B (${api_gz} B gzip); total gzip $((wasm_gz + glue_gz + api_gz)) B"
