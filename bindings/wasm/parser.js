// The msgpack parser's token, exported by the `ferrio/msgpack` entry point (`msgpack.js`) and
// recognised by `ferrio.js` in that build: `io(url, { parser: msgpackParser })`. The encoding
// itself is done by the wasm core.

/**
 * The msgpack parser, wire-compatible with `socket.io-msgpack-parser` 3.x: every packet is one
 * binary message, binary values travel inline. Both ends must use the same parser.
 */
export const msgpackParser = /* @__PURE__ */ Object.freeze({ name: "msgpack", protocol: 5 });
