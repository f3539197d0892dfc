// Gives the wasm-bindgen glue the short import and export names `wasm-opt
// --minify-imports-and-exports-and-modules` gave the module (build.sh runs it):
//   node short-names.mjs GLUE.js MODULE.wasm MAPPING.json
// MAPPING.json is what wasm-opt printed: `imports` as [module, old name, new name], `exports` as
// [old name, new name]. The new module name is read from the module itself (every import has
// the same one). Rewrites GLUE.js in place; fails if a name is not found where expected, so a
// change in the glue's shape cannot go unnoticed.
import { readFileSync, writeFileSync } from "node:fs";

const [gluePath, wasmPath, mappingPath] = process.argv.slice(2);
let glue = readFileSync(gluePath, "utf8");
const mapping = JSON.parse(readFileSync(mappingPath, "utf8"));
const imports = WebAssembly.Module.imports(new WebAssembly.Module(readFileSync(wasmPath)));
const modules = new Set(imports.map((i) => i.module));
if (modules.size !== 1) throw new Error(`short-names: expected one import module, got ${[...modules]}`);
const [newModule] = modules;

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
// Replaces every match of `pattern` (a RegExp source), which must occur at least once unless
// `optional`.
function replace(pattern, by, what, optional = false) {
  const re = new RegExp(pattern, "g");
  if (!re.test(glue)) {
    if (optional) return;
    throw new Error(`short-names: ${what} not found in the glue`);
  }
  glue = glue.replace(re, by);
}

const oldModules = new Set(mapping.imports.map(([module]) => module));
for (const module of oldModules) {
  // The key of the import object: `"./ferrio_wasm_bg.js": import0`.
  replace(`"${escape(module)}"(?=\\s*:)`, JSON.stringify(newModule), `import module ${module}`);
}
for (const [, name, short] of mapping.imports) {
  // The import object's keys: `name: function(...)`.
  replace(`\\b${escape(name)}(?=\\s*:)`, short, `import ${name}`);
}
for (const [name, short] of mapping.exports) {
  // Every use of an export: `wasm.name` (some, such as `__wbindgen_free`, the glue never uses).
  replace(`\\bwasm\\.${escape(name)}\\b`, `wasm.${short}`, `export ${name}`, true);
}
// No long name left behind.
for (const [, name] of mapping.imports) {
  if (glue.includes(name)) throw new Error(`short-names: import ${name} still in the glue`);
}
for (const [name] of mapping.exports) {
  if (new RegExp(`\\bwasm\\.${escape(name)}\\b`).test(glue)) {
    throw new Error(`short-names: export ${name} still used in the glue`);
  }
}
writeFileSync(gluePath, glue);
