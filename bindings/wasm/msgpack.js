// The `ferrio/msgpack` entry point (bundled into `dist/ferrio.msgpack.js`): the whole `ferrio`
// API over the wasm core built with the msgpack parser, plus `msgpackParser`, passed as
// `io(url, { parser: msgpackParser })` (the way socket.io-client takes `socket.io-msgpack-parser`).
// Without the `parser` option a connection uses the default JSON parser.
export * from "./ferrio.js";
export { default } from "./ferrio.js";
export { msgpackParser } from "./parser.js";
