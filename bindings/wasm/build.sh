#!/usr/bin/env bash
# Builds the `ferrio` npm package in place: dist/ferrio.js (ferrio.js and the wasm-bindgen glue in
# pkg/, bundled and minified) and dist/ferrio_wasm_bg.wasm; then the opt-in `ferrio/msgpack`
# entry point, the same crate built with its `msgpack` feature: dist/ferrio.msgpack.js and
# dist/ferrio_msgpack_bg.wasm. Then prints the gzip size of what a browser downloads, for each.
#   bindings/wasm/build.sh           release build, size-optimised (opt-level z, fat LTO, panic=abort),
#                                    with the nightly toolchain when it is installed: std rebuilt
#                                    for size, panics abort at once (no messages or locations)
#   STABLE=1 bindings/wasm/build.sh  the stable toolchain only (a larger module)
#   NO_WASM_OPT=1 bindings/wasm/build.sh   skip wasm-opt
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "${here}/../.." && pwd)
cd "${root}"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi

# wasm-bindgen-cli must be the exact version of the wasm-bindgen crate in Cargo.lock; installed
# (when missing) from tools/wasm-bindgen with its committed lock file.
"${root}/scripts/install-wasm-bindgen"

# Size profile for the browser build only (the host release profile is left alone).
# With nightly: std rebuilt with immediate-abort panics, no panic locations and empty `Debug`
# output (the package never prints either; nothing it sends may depend on `Debug`: the msgpack
# parser writes floats with `Display`); about 13 % smaller gzip than stable. Needs the nightly
# toolchain's rust-src component, added here if missing. Without it, or if the nightly build
# fails, the stable build is made instead (with a warning).
# `-Cllvm-args=-inline-threshold=25` (nightly build): LLVM's inliner a little less strict than
# opt-level z's own; the gzip size moves erratically with it (against none, at the sources of
# its commit: 0 +207 B, 10 −47 B, 20 −19 B, 25 −297 B, 30 +41 B, 35 +38 B, 40 −246 B, 60 +0.7 KB).
export CARGO_PROFILE_RELEASE_OPT_LEVEL=z CARGO_PROFILE_RELEASE_LTO=fat \
  CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 CARGO_PROFILE_RELEASE_PANIC=abort
# `$@`: extra cargo arguments (the features of a variant).
nightly_build() {
  rustup toolchain list | grep -q '^nightly' || { echo "build.sh: no nightly toolchain" >&2; return 1; }
  rustup component list --toolchain nightly --installed | grep -q '^rust-src' \
    || rustup component add rust-src --toolchain nightly || return 1
  CARGO_TARGET_DIR="${root}/target/wasm-build-std" \
  RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none -Zfmt-debug=none \
-Cllvm-args=-inline-threshold=25" \
    cargo +nightly build --release --locked --target wasm32-unknown-unknown -p ferrio-wasm \
      -Zbuild-std=std,panic_abort "$@"
}
stable_build() {
  cargo build --release --locked --target wasm32-unknown-unknown -p ferrio-wasm "$@"
}
size_build=""
if [ -z "${STABLE:-}" ] && nightly_build; then
  size_build=1
  wasm="${root}/target/wasm-build-std/wasm32-unknown-unknown/release/ferrio_wasm.wasm"
else
  [ -n "${STABLE:-}" ] || echo "build.sh: the nightly size build failed; building with stable (a larger module)" >&2
  stable_build
  wasm="$("${root}/scripts/target-dir")/wasm32-unknown-unknown/release/ferrio_wasm.wasm"
fi

# The build tools from npm (binaryen's wasm-opt, esbuild, terser; TypeScript for the tests), at the
# versions package-lock.json pins.
if [ ! -x "${here}/node_modules/.bin/esbuild" ] || [ ! -x "${here}/node_modules/.bin/wasm-opt" ] \
  || [ ! -x "${here}/node_modules/.bin/tsc" ] || [ ! -x "${here}/node_modules/.bin/terser" ]; then
  (cd "${here}" && npm ci --no-audit --no-fund --loglevel=error)
fi

out="${here}/pkg"
dist="${here}/dist"
rm -rf "${dist}"
mkdir -p "${dist}"

# Turns the cargo output `${wasm}` into one variant of the package: $1 the entry module, $2 the
# bundle in dist/, $3 its wasm file in dist/, $4 "true" for the msgpack build. The wasm-bindgen
# glue goes to pkg/ (each variant in turn: `ferrio.js` imports it from there).
package() {
  rm -rf "${out}"
  # `--encode-into always`: every browser has TextEncoder.encodeInto; no fallback in the glue.
  wasm-bindgen --target web --encode-into always --out-dir "${out}" --out-name ferrio_wasm "${wasm}"
  # A smaller start than the glue's `initSync` (whose handling of deprecated arguments would be
  # bundled): `ferrioInit(module)` instantiates the compiled module with the glue's imports.
  # Without `Symbol.dispose` on `Core` (the package frees its cores through the finalizer).
  sed -i '/^if (Symbol.dispose) Core.prototype\[Symbol.dispose\]/d' "${out}/ferrio_wasm.js"
  # Nor `free()` and the `__destroy_into_raw()` it calls (never called: the finalizer frees), nor
  # `passStringToWasm0`'s branch for a call without `realloc` (the glue always passes one).
  sed -i -e '/^    __destroy_into_raw() {$/,/^    }$/d' -e '/^    free() {$/,/^    }$/d' \
    -e '/^    if (realloc === undefined) {$/,/^    }$/d' "${out}/ferrio_wasm.js"
  # Strings go into the module in an allocation of a byte per UTF-16 unit, which an ASCII string
  # fills exactly; only a string with other characters grows it for what is left. Up to 256
  # characters, ASCII is copied by a loop, and `TextEncoder.encodeInto` takes the rest from the
  # first other character; a longer string goes by `encodeInto` at once. (In Chromium,
  # `encodeInto` is a call into the browser that costs about 0.5 µs even for a short string, and
  # 1.4 µs with cold caches, as between two WebSocket messages; the loop copies a 48-character
  # event in about 0.1 µs, but costs about 4.5 ns a character, 2.7 instead of 0.5 µs for a
  # 500-character message.) An empty string (the commands without a text) takes no allocation and
  # no call into the module: the dangling pointer 1 that the module's `malloc(0, 1)` returns.
  node - "${out}/ferrio_wasm.js" <<'NODE'
const fs = require("fs");
const file = process.argv[2];
const glue = fs.readFileSync(file, "utf8");
const start = glue.indexOf("function passStringToWasm0(arg, malloc, realloc) {");
const end = glue.indexOf("\n}\n", start);
if (start < 0 || end < 0) throw new Error("build.sh: passStringToWasm0 not found in the glue");
fs.writeFileSync(file, glue.slice(0, start) + `function passStringToWasm0(arg, malloc, realloc) {
    let len = arg.length;
    if (!len) return WASM_VECTOR_LEN = 0, 1;
    let ptr = malloc(len, 1) >>> 0, mem = getUint8ArrayMemory0(), read = 0, c;
    if (len < 257) while (read < len && (c = arg.charCodeAt(read)) < 128) mem[ptr + read++] = c;
    let written = read;
    if (read < len) {
        let rest = read ? arg.slice(read) : arg;
        ({ read, written } = cachedTextEncoder.encodeInto(rest, mem.subarray(ptr + written, ptr + len)));
        written += len - rest.length;
        if (read < rest.length) {
            rest = rest.slice(read);
            ptr = realloc(ptr, len, len = written + rest.length * 3, 1) >>> 0;
            written += cachedTextEncoder.encodeInto(rest, getUint8ArrayMemory0().subarray(ptr + written, ptr + len)).written;
            ptr = realloc(ptr, len, written, 1) >>> 0;
        }
    }
    WASM_VECTOR_LEN = written;
    return ptr;
}` + glue.slice(end + 2));
NODE
  # The finalizer registry without its fallback for engines that have no `FinalizationRegistry`
  # (every browser has had it since 2021), and the `call` method without its `const valN = +x`
  # copies of the numbers: WebAssembly converts its number arguments itself (`ToInt32` and
  # `ToNumber` each call `ToNumber` on the value, as `+x` does).
  node - "${out}/ferrio_wasm.js" <<'NODE'
const fs = require("fs");
const file = process.argv[2];
let glue = fs.readFileSync(file, "utf8");
const registry = /\(typeof FinalizationRegistry === 'undefined'\)\n\s*\? \{ register: \(\) => \{\}, unregister: \(\) => \{\} \}\n\s*: new FinalizationRegistry/;
if (!registry.test(glue)) throw new Error("build.sh: the glue's FinalizationRegistry fallback not found");
glue = glue.replace(registry, "new FinalizationRegistry");
const numbers = {};
glue = glue.replace(/^\s*const (val\d+) = \+(\w+);\n/gm, (_, copy, name) => {
  numbers[copy] = name;
  return "";
});
glue = glue.replace(/\bval\d+\b/g, (copy) => numbers[copy] || copy);
fs.writeFileSync(file, glue);
NODE
  cat >> "${out}/ferrio_wasm.js" <<'GLUE'
export function ferrioInit(module) {
  return __wbg_finalize_init(new WebAssembly.Instance(module, __wbg_get_imports()), module);
}
GLUE

  if [ -z "${NO_WASM_OPT:-}" ]; then
    # The features browsers have shipped for years; never --all-features (it emits encodings,
    # such as compact imports, that browsers refuse).
    # `-ocimfs 20`: a function with one caller is inlined only when it is small (binaryen inlines
    # every one by default): the module grows a little, but repeats itself more, and compresses
    # about 1.2 KB smaller. `--always-inline-max-function-size 5` (binaryen's default 2): the
    # tiny functions are inlined everywhere (about 0.15 KB smaller; 4 to 6 are close, 8 and up
    # larger). `--low-memory-unused`: the module never touches its lowest 1 KiB
    # (Rust's stack grows down from 1 MiB toward it, the data lies above 1 MiB), so constant
    # offsets fold into loads and stores. `--flatten --rereloop`: the control flow rebuilt before
    # `-Oz`, which then compresses better (about 0.1 KB). `--precompute-propagate` (constants
    # carried through locals while the code is still flat) and `-O2` before `-Oz` (instead of a
    # first `-Oz`): 40 B gzip smaller than `-Oz -Oz`; `--converge`: passes repeated until the
    # module stops shrinking (about 0.1 KB).
    # `--strip-target-features`: the features section, which browsers ignore.
    local features="--enable-bulk-memory --enable-mutable-globals \
      --enable-nontrapping-float-to-int --enable-sign-ext --enable-reference-types \
      --enable-multivalue"
    # shellcheck disable=SC2086
    "${here}/node_modules/.bin/wasm-opt" --one-caller-inline-max-function-size 20 \
      --always-inline-max-function-size 5 --low-memory-unused --flatten --rereloop --precompute-propagate -O2 -Oz --converge ${features} \
      --strip-debug --strip-producers --strip-target-features \
      "${out}/ferrio_wasm_bg.wasm" -o "${out}/ferrio_wasm_bg.wasm"
    # Then one-letter import, export and module names instead of wasm-bindgen's hashed ones
    # (about 0.4 KB gzip): wasm-opt prints the mapping, which `short-names.mjs` applies to the
    # glue. (A pass of its own: `--converge` would run it again on its own output.)
    # shellcheck disable=SC2086
    "${here}/node_modules/.bin/wasm-opt" --minify-imports-and-exports-and-modules ${features} \
      "${out}/ferrio_wasm_bg.wasm" -o "${out}/ferrio_wasm_bg.wasm" > "${out}/names.json"
    node "${here}/short-names.mjs" "${out}/ferrio_wasm.js" "${out}/ferrio_wasm_bg.wasm" \
      "${out}/names.json"
  fi

  # One minified ES module: the entry with the glue inlined; it loads its wasm file from its own
  # directory (`new URL(..., import.meta.url)`). Private members (`_name`) get short names,
  # except `_placeholder` (a protocol field) and `_transports` (the browser tests reach it), and
  # so do the internal `emitReserved` (protected in socket.io-client), the fields of ack and
  # transport entries, and the glue's `__wbg_ptr`.
  # FERRIO_MSGPACK and FERRIO_WASM are the variant's constants (see `ferrio.js`).
  "${here}/node_modules/.bin/esbuild" "${here}/$1" --bundle --format=esm --minify \
    --target=es2022 --legal-comments=none --log-level=warning --mangle-props='^(_[a-z]|__wbg_ptr$|emitReserved$|callback$|withTimeout$|aborts$)' \
    --reserve-props='^_(placeholder|transports)$' --define:FERRIO_MSGPACK="$4" \
    --define:FERRIO_WASM="\"$3\"" --outfile="${dist}/$2"
  # Then terser's compressor over esbuild's output (`minify.mjs`).
  node "${here}/minify.mjs" "${dist}/$2"
  cp "${out}/ferrio_wasm_bg.wasm" "${dist}/$3"
}

# The default package: dist/ferrio.js + dist/ferrio_wasm_bg.wasm (JSON parser only).
package ferrio.js ferrio.js ferrio_wasm_bg.wasm false

# The `ferrio/msgpack` entry point: the same crate with the `msgpack` feature, built in the same
# target directory with the same toolchain as the default (its output file is the same, so the
# default was packaged first): dist/ferrio.msgpack.js + dist/ferrio_msgpack_bg.wasm.
if [ -n "${size_build}" ]; then
  nightly_build --features msgpack
else
  stable_build --features msgpack
fi
package msgpack.js ferrio.msgpack.js ferrio_msgpack_bg.wasm true

gz() { gzip -9 -c "$1" | wc -c; }
# Prints the sizes of one variant ($1 label, $2 bundle, $3 wasm) and sets `total` (gzip bytes).
sizes() {
  local wasm_gz js_gz
  wasm_gz=$(gz "${dist}/$3")
  js_gz=$(gz "${dist}/$2")
  total=$((wasm_gz + js_gz))
  echo "$1: wasm $(wc -c < "${dist}/$3") B (${wasm_gz} B gzip), $2 $(wc -c < "${dist}/$2") B (${js_gz} B gzip); total gzip ${total} B"
}
sizes "ferrio package (msgpack entry point, ferrio/msgpack)" ferrio.msgpack.js ferrio_msgpack_bg.wasm
sizes "ferrio package" ferrio.js ferrio_wasm_bg.wasm
# The size budget of what a page downloads (BENCHMARKS.md), for the nightly size build: a change
# that grows the default package past it fails the build instead of going unnoticed. The msgpack
# entry point is opt-in and has no budget (its size is printed above). `MAX_GZIP=...` overrides it.
max_gzip=${MAX_GZIP:-34000}
if [ -n "${size_build}" ] && [ "${total}" -gt "${max_gzip}" ]; then
  echo "build.sh: the package is ${total} B gzip, over its budget of ${max_gzip} B" >&2
  exit 1
fi
