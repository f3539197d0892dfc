// Ferrio's browser client: the socket.io-client API over the ferrio-proto client state machine
// compiled to WebAssembly. This file performs the transport actions the core asks for (fetch for
// HTTP long-polling, WebSocket), runs its timer with setTimeout, and converts payloads with
// JSON.parse/JSON.stringify (binary values travel as Socket.IO attachments).
//
// build.sh bundles it twice, setting two constants: the default build (`dist/ferrio.js`,
// FERRIO_MSGPACK false, FERRIO_WASM "ferrio_wasm_bg.wasm") and the `ferrio/msgpack` entry point
// (`msgpack.js` -> `dist/ferrio.msgpack.js`, FERRIO_MSGPACK true, FERRIO_WASM
// "ferrio_msgpack_bg.wasm"), whose module also has the msgpack parser. Code under
// `if (FERRIO_MSGPACK)` is left out of the default build.
import { Core, ferrioInit } from "./pkg/ferrio_wasm.js";
import { msgpackParser } from "./parser.js";

// The module next to this file, compiled here (the glue's own async loader, with its fallbacks for
// old browsers and servers, would be bundled otherwise).
{
  const res = await fetch(new URL(`./${FERRIO_WASM}`, import.meta.url));
  if (!res.ok) throw new Error(`ferrio: cannot load ${FERRIO_WASM} (${res.status})`);
  ferrioInit(await WebAssembly.compile(await res.arrayBuffer()));
}

const now = () => performance.now();
// The manager's events, by output code from 20.
const MANAGER_EVENTS = ["open", "error", "ping", "close", "reconnect_attempt", "reconnect", "reconnect_error", "reconnect_failed"];
const RESERVED = new Set(["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"]);

// --- errors and Engine.IO packets ----------------------------------------------------------------

/** A transport's failure, as engine.io-client's `TransportError`: `message` the reason
 * (`xhr poll error`, `xhr post error`, `websocket error`), `description` the HTTP status (0: no
 * answer, or `requestTimeout` passed) or the browser's event, `context` the response or error. */
const transportError = (reason, description, context) => Object.assign(Error(reason), { description, context, type: "TransportError" });

const EIO_TYPES = ["open", "close", "ping", "pong", "message", "upgrade", "noop"];

// One Engine.IO packet as engine.io-client's parser gives it (`{ type, data }`; binary data as
// it came, base64 text left as it is).
const eioPacket = (f) =>
  typeof f != "string" ? { type: "message", data: f } : { type: EIO_TYPES[f[0]] || (f[0] == "b" ? "message" : "error"), data: f.slice(1) || undefined };

// --- binary attachments -------------------------------------------------------------------------

function isBinary(v) {
  return v instanceof ArrayBuffer || ArrayBuffer.isView(v);
}

function toBytes(v) {
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

const hasBlobClass = typeof Blob !== "undefined";

// What is anywhere in `v`: binary data (1), a Blob or File (2), both (3) or neither (0).
function kinds(v) {
  if (v === null || typeof v !== "object") return 0;
  if (hasBlobClass && v instanceof Blob) return 2;
  if (isBinary(v)) return 1;
  if (typeof v.toJSON === "function") return 0;
  // (Loops without an array of values made per object, as emits are frequent.)
  let k = 0;
  if (Array.isArray(v)) for (let i = 0; i < v.length; i++) k |= kinds(v[i]);
  else for (const key in v) k |= kinds(v[key]);
  return k;
}

// `v` with every Blob read into a Uint8Array (functions and other values kept).
async function readBlobs(v) {
  if (!hasBlobClass || v === null || typeof v !== "object") return v;
  if (v instanceof Blob) return new Uint8Array(await v.arrayBuffer());
  if (isBinary(v) || typeof v.toJSON === "function") return v;
  if (Array.isArray(v)) return Promise.all(v.map(readBlobs));
  const out = {};
  for (const k of Object.keys(v)) out[k] = await readBlobs(v[k]);
  return out;
}

// Replaces binary values by placeholders; returns [jsonText, attachments]. Without binary
// values, the text of `data` as it is (no copy of it made). `k`: `kinds(data)` if the caller has
// it already.
function deconstruct(data, k = kinds(data)) {
  const attachments = [];
  if (!(k & 1)) return [JSON.stringify(data), attachments];
  const walk = (v) => {
    if (v === null || typeof v !== "object") return v;
    if (isBinary(v)) {
      attachments.push(toBytes(v));
      return { _placeholder: true, num: attachments.length - 1 };
    }
    if (typeof v.toJSON === "function") return v;
    if (Array.isArray(v)) return v.map(walk);
    const out = {};
    for (const k of Object.keys(v)) out[k] = walk(v[k]);
    return out;
  };
  return [JSON.stringify(walk(data)), attachments];
}

// Parses JSON text (or the end of `frame`, the manager's last WebSocket text message, from
// offset `text`) and puts the attachments (as ArrayBuffers) back in place of placeholders.
function reconstruct(text, attachments, frame) {
  const value = JSON.parse(typeof text == "number" ? frame.slice(text) : text);
  if (!attachments || attachments.length === 0) return value;
  // The module hands each attachment back as the message's ArrayBuffer it came in (without the
  // msgpack parser), or in a Uint8Array with a buffer of its own: passed on without a copy.
  const buffers = attachments.map((a) => a.buffer || a);
  const walk = (v) => {
    if (v === null || typeof v !== "object") return v;
    if (v._placeholder === true && typeof v.num === "number") return buffers[v.num];
    if (Array.isArray(v)) return v.map(walk);
    for (const k of Object.keys(v)) v[k] = walk(v[k]);
    return v;
  };
  return walk(value);
}

// --- events ---------------------------------------------------------------------------------------

class Emitter {
  constructor() {
    this._listeners = new Map();
  }
  on(event, fn) {
    if (!this._listeners.has(event)) this._listeners.set(event, []);
    this._listeners.get(event).push(fn);
    return this;
  }
  once(event, fn) {
    const wrapper = (...args) => {
      this.off(event, wrapper);
      fn.apply(this, args);
    };
    wrapper.fn = fn;
    return this.on(event, wrapper);
  }
  off(event, fn) {
    if (event === undefined) {
      this._listeners.clear();
    } else if (fn === undefined) {
      this._listeners.delete(event);
    } else {
      const list = this._listeners.get(event);
      if (list) {
        const i = list.findIndex((l) => l === fn || l.fn === fn);
        if (i >= 0) list.splice(i, 1);
      }
    }
    return this;
  }
  removeListener(event, fn) {
    return this.off(event, fn);
  }
  removeAllListeners(event) {
    return this.off(event);
  }
  listeners(event) {
    return (this._listeners.get(event) || []).slice();
  }
  hasListeners(event) {
    return this.listeners(event).length > 0;
  }
  emitReserved(event, ...args) {
    // (No list made when nobody listens: the engine's events come with every message.)
    const list = this._listeners.get(event);
    if (list) for (const fn of list.slice()) fn.apply(this, args);
    return true;
  }
}

// --- the engine -----------------------------------------------------------------------------------

/** The Engine.IO connection of a manager (`manager.engine`): its `id` and `transport.name`, and
 * its events (see the README). A new one replaces it after each close, as engine.io-client makes
 * a new socket per connection. */
class Engine extends Emitter {
  constructor() {
    super();
    /** The session id, from the handshake. */
    this.id = undefined;
    /** The transport in use: `{ name }`, set by the first request and by the upgrade. */
    this.transport = {};
  }
  // Engine.IO packets received (`out` false) or sent, `x` a polling payload or a WebSocket
  // message: `packet` (with `heartbeat`, `ping`, `message`, `data`, `handshake`) or
  // `packetCreate` listeners; the handshake gives `id`. Nothing is decoded without listeners
  // but the handshake.
  _frames(x, out) {
    if (!this._listeners.size && (out || x[0] != "0")) return;
    for (const p of (typeof x == "string" ? x.split("\x1e") : [x]).map(eioPacket)) {
      if (out) {
        this.emitReserved("packetCreate", p);
        continue;
      }
      this.emitReserved("packet", p);
      this.emitReserved("heartbeat");
      if (p.type == "ping") this.emitReserved("ping");
      if (p.type == "message") {
        this.emitReserved("data", p.data);
        this.emitReserved("message", p.data);
      }
      if (p.type == "open") {
        try {
          const data = JSON.parse(p.data);
          this.id = data.sid;
          this.emitReserved("handshake", data);
        } catch (_) {
          /* not a handshake: the core fails the session */
        }
      }
    }
  }
}

// --- the manager ----------------------------------------------------------------------------------

function toQuery(query) {
  if (!query) return "";
  if (typeof query === "string") return query;
  return new URLSearchParams(query).toString();
}

// `timestampRequests`: unset (polling requests only), true (WebSocket ones too) or false (none).
const stampFlags = (v) => (v == null ? 0 : v ? 48 : 16);

// The `parser` option (the msgpack build only): `msgpackParser` is bit 8 of the core's flags,
// none the default JSON parser; another one cannot work (the core encodes every packet) and is
// refused rather than ignored.
function parserFlag(parser) {
  if (parser === undefined || parser === null) return 0;
  if (parser === msgpackParser) return 8;
  throw new TypeError("ferrio: unsupported parser (pass msgpackParser from ferrio/msgpack, or none)");
}

/** One connection to a server, shared by the sockets of its namespaces (`Manager`). */
export class Manager extends Emitter {
  constructor(uri, opts = {}) {
    super();
    if (typeof uri === "object" && uri !== null) {
      opts = uri;
      uri = undefined;
    }
    const url = new URL(uri || "/", globalThis.location?.href);
    // `addTrailingSlash` (true): `/socket.io/`; false: `/socket.io`.
    const path = (opts.path || "/socket.io").replace(/\/$/, "") + (opts.addTrailingSlash !== false ? "/" : "");
    this.opts = opts;
    this._http = `${url.protocol === "wss:" || url.protocol === "https:" ? "https" : "http"}://${url.host}${path}`;
    this._ws = this._http.replace(/^http/, "ws");
    this._query = toQuery(opts.query);
    // The options of each transport: the manager's, with `transportOptions[name]` over them.
    const per = opts.transportOptions || {};
    this._pollOpts = Object.assign({}, opts, per.polling);
    this._wsOpts = Object.assign({}, opts, per.websocket);
    this.engine = new Engine();
    this._err = undefined;
    const num = (v, d) => (typeof v === "number" ? v : d);
    this.core = new Core();
    // The settings (ops 22 and 23, see bindings/wasm/src/lib.rs): the flags, then the transports
    // from bit 8. The msgpack build adds the parser's flag; written out twice so that the
    // default build's expression stays exactly what it was.
    this._call(
      22,
      opts.reconnectionAttempts === Infinity ? -1 : num(opts.reconnectionAttempts, -1),
      num(opts.reconnectionDelay, -1),
      (opts.transports || ["polling", "websocket"])
        .map((t) => ({ polling: 1, websocket: 2 })[t])
        .filter(Boolean)
        .reduce((bits, t, i) => bits | (t << (2 * i + 8)), 0) |
      (FERRIO_MSGPACK
        ? (opts.rememberUpgrade ? 1 : 0) | (opts.tryAllTransports ? 2 : 0) | (opts.forceBase64 ? 4 : 0) | stampFlags(opts.timestampRequests) | (opts.upgrade !== false ? 64 : 0) | (opts.reconnection !== false ? 128 : 0) | parserFlag(opts.parser)
        : (opts.rememberUpgrade ? 1 : 0) | (opts.tryAllTransports ? 2 : 0) | (opts.forceBase64 ? 4 : 0) | stampFlags(opts.timestampRequests) | (opts.upgrade !== false ? 64 : 0) | (opts.reconnection !== false ? 128 : 0)),
      opts.timestampParam ?? "t",
      undefined,
      opts.timeout === false ? -1 : num(opts.timeout, 20000),
    );
    this._call(23, num(opts.reconnectionDelayMax, -1), num(opts.randomizationFactor, 0.5), Math.floor(Math.random() * 2 ** 32));
    this._transports = new Map();
    this._sockets = new Map();
    this._timer = undefined;
    this._timerAt = -1;
    this._list = undefined;
    // The last WebSocket text message given to the core: an event's or an ack's JSON text comes
    // back as its offset in it.
    this._frame = undefined;
    // `closeOnBeforeunload` (false): the page leaving closes the connection at once, so that the
    // server does not wait for a ping timeout.
    if (opts.closeOnBeforeunload && typeof addEventListener === "function") {
      addEventListener("beforeunload", () => this.close(), false);
    }
  }

  on(event, fn) {
    // The core reports decoded packets from now on (output 18).
    if (event == "packet") this._cmd(21, 1);
    return super.on(event, fn);
  }

  // A transport failed: the core hears `err.message`; `err` itself goes to the listeners of the
  // events that name it (`_error`).
  _fail(tid, err) {
    this._err = err;
    this._cmd(6, tid, 0, 0, err.message);
  }

  // The error object of a core message: the transport's error it came from, or a new `Error`.
  _error(message) {
    const e = this._err;
    return e && e.message === message ? e : new Error(message);
  }

  /** Reconnection on or off (`manager.reconnection(v)`). */
  reconnection(v) {
    if (v === undefined) return this.opts.reconnection !== false;
    this.opts.reconnection = !!v;
    this._cmd(10, v ? 1 : 0);
    return this;
  }

  /** The reconnection options it was created with (they are fixed once it exists). */
  reconnectionAttempts() {
    return this._opt("reconnectionAttempts", Infinity);
  }

  reconnectionDelay() {
    return this._opt("reconnectionDelay", 1000);
  }

  reconnectionDelayMax() {
    return this._opt("reconnectionDelayMax", 5000);
  }

  randomizationFactor() {
    return this._opt("randomizationFactor", 0.5);
  }

  // The numeric option `name`, or its default.
  _opt(name, fallback) {
    return typeof this.opts[name] === "number" ? this.opts[name] : fallback;
  }

  timeout() {
    return this.opts.timeout === undefined ? 20000 : this.opts.timeout;
  }

  /** Opens the connection if it is closed; `fn` is called once it opens, or with the error. */
  open(fn) {
    if (fn) {
      const onOpen = () => {
        this.off("error", onError);
        fn();
      };
      const onError = (err) => {
        this.off("open", onOpen);
        fn(err);
      };
      this.once("open", onOpen);
      this.once("error", onError);
    }
    this._cmd(8);
    return this;
  }

  connect(fn) {
    return this.open(fn);
  }

  /** Closes the connection without reconnecting: its sockets get `disconnect` ("forced close"). */
  close() {
    this._cmd(9);
    return this;
  }

  disconnect() {
    return this.close();
  }

  /** A socket for namespace `nsp`. */
  socket(nsp, opts = {}) {
    return new Socket(this, nsp, opts);
  }

  // Runs command `op` of the core (see bindings/wasm/src/lib.rs), then performs what it produced
  // (the core returns its result, its next deadline and every output at once). The core refuses
  // a command with a message: it is thrown as an `Error` (what the core has pending then comes
  // with the next command). `t`: the time (`performance.now()`'s clock), now by default.
  _cmd(op, a, b, c, text, value, t) {
    const r = this._call(op, a, b, c, text, value, t);
    this._drain(r);
    return r[0];
  }

  // Runs command `op` of the core and returns its array, or throws its message as an `Error`.
  _call(op, a, b, c, text = "", value, t = now()) {
    const r = this.core.call(op, t, a, b, c, text, value);
    if (typeof r == "string") throw new Error(r);
    return r;
  }

  // The value of a packet's JSON text (or of the end of the last text message from offset
  // `text`), its placeholders replaced by `attachments`; `undefined` if it does not parse. The
  // core leaves that check of events to this `JSON.parse`: told with op 18, it closes the
  // connection with "parse error", as socket.io-client does.
  _parse(text, attachments) {
    try {
      return reconstruct(text, attachments, this._frame);
    } catch (_) {
      // socket.io-client's decoder stops at the packet that fails: the events (and packet
      // reports) the same input gave after it are not performed.
      const list = this._list;
      for (let i = list.length; --i > this._at; ) if (list[i][0] == 13 || list[i][0] == 18) list.splice(i, 1);
      this._cmd(18);
    }
  }

  // Performs the outputs of `r` (`[result, deadline, ...outputs]`). A command
  // run by a listener meanwhile adds its outputs to the end of the list being performed.
  _drain(r) {
    const list = this._list;
    this._next = r[1];
    if (list) {
      for (let i = 2; i < r.length; i++) list.push(r[i]);
      return;
    }
    this._list = r;
    try {
      for (this._at = 2; this._at < r.length; this._at++) {
        try {
          this._handle(r[this._at]);
        } catch (e) {
          setTimeout(() => {
            throw e;
          });
        }
      }
    } finally {
      this._list = undefined;
    }
    this._schedule(this._next);
  }

  // The core's next deadline (-1: none) is `at`: the timer is set for it.
  _schedule(at) {
    if (at === this._timerAt) return;
    if (this._timer !== undefined) clearTimeout(this._timer);
    this._timer = undefined;
    this._timerAt = at;
    if (at < 0) return;
    this._timer = setTimeout(() => {
      this._timer = undefined;
      this._timerAt = -1;
      // The time passed to the core: at least the deadline (a timer may fire a little early).
      this._drain(this.core.call(7, Math.max(now(), at), 0, 0, 0, ""));
    }, Math.max(0, Math.ceil(at - now())));
  }

  /** `base` with the user's query, then the core's parameters (names and values, alternating),
   * which replace user parameters of the same name (as engine.io-client's `Object.assign`). */
  _url(base, pairs) {
    // A session's first request (no `sid` yet) takes `opts.query` as it is then: engine.io-client
    // copies it when a session starts, so a `reconnect_attempt` listener can change it.
    let first = true;
    for (let i = 0; i < pairs.length; i += 2) if (pairs[i] === "sid") first = false;
    if (first) this._query = toQuery(this.opts.query);
    const params = new URLSearchParams(this._query);
    for (let i = 0; i + 1 < pairs.length; i += 2) params.set(pairs[i], pairs[i + 1]);
    return `${base}?${params}`;
  }

  _fetch(tid, method, query, body) {
    const o = this._pollOpts;
    const abort = new AbortController();
    const entry = this._transports.get(tid) || { aborts: new Set() };
    this._transports.set(tid, entry);
    if (method === "GET") entry.aborts.add(abort);
    const headers = Object.assign({}, o.extraHeaders);
    if (method === "POST") {
      headers["Content-Type"] = "text/plain;charset=UTF-8";
      this.engine._frames(body, 1);
    }
    const reason = method === "GET" ? "xhr poll error" : "xhr post error";
    // `requestTimeout`: a request not answered in time fails as a transport error.
    let timedOut = false;
    const timer = o.requestTimeout > 0 ? setTimeout(() => ((timedOut = true), abort.abort()), o.requestTimeout) : undefined;
    // The core's query carries the cache buster (`timestampParam`).
    fetch(this._url(this._http, query), {
      method,
      body,
      headers,
      credentials: o.withCredentials ? "include" : "same-origin",
      cache: "no-store",
      signal: abort.signal,
    })
      .then(async (res) => {
        if (!res.ok) throw transportError(reason, res.status, res);
        const text = await res.text();
        clearTimeout(timer);
        entry.aborts.delete(abort);
        if (method === "GET") {
          this.engine._frames(text);
          this._cmd(0, tid, 0, 0, text);
        } else {
          this._cmd(1, tid);
          this.engine.emitReserved("drain");
        }
      })
      .catch((e) => {
        clearTimeout(timer);
        entry.aborts.delete(abort);
        if (abort.signal.aborted && !timedOut) return;
        this._fail(tid, e.type ? e : transportError(reason, 0, e));
      });
  }

  // The engine closed: its `close` listeners hear why; the next connection gets a new engine.
  _closeEngine(reason, description) {
    const e = this.engine;
    this.engine = new Engine();
    e.emitReserved("close", reason, description);
  }

  _handle(out) {
    const code = out[0];
    switch (code) {
      case 0:
        this.engine.transport.name ||= "polling";
        this._fetch(out[1], "GET", out[2]);
        break;
      case 1:
        this._fetch(out[1], "POST", out[2], out[3]);
        // The write buffer went to the transport (engine.io-client's `flush`).
        this.engine.emitReserved("flush");
        break;
      case 2: {
        this.engine.transport.name ||= "websocket";
        const tid = out[1];
        let ws;
        try {
          // `protocols`: the WebSocket subprotocols asked for (none if undefined).
          ws = new WebSocket(this._url(this._ws, out[2]), this._wsOpts.protocols);
        } catch (e) {
          queueMicrotask(() => this._fail(tid, transportError("websocket error", e, e)));
          break;
        }
        ws.binaryType = "arraybuffer";
        this._transports.set(tid, { ws });
        ws.onopen = () => this._cmd(2, tid);
        ws.onmessage = (ev) => {
          // (`data` read once: the browser makes its value at each read.)
          const d = ev.data;
          // (The probe's answer is the upgrade's, not a packet of the session.)
          if (d !== "3probe") this.engine._frames(d);
          // The time the message arrived (the same clock as `performance.now()`, without asking).
          if (typeof d === "string") this._cmd(3, tid, 0, 0, (this._frame = d), 0, ev.timeStamp);
          // (The module reads a binary message only with the msgpack parser: a view of it then.)
          else this._cmd(4, tid, 0, 0, undefined, FERRIO_MSGPACK ? new Uint8Array(d) : d, ev.timeStamp);
        };
        ws.onerror = (ev) => this._fail(tid, transportError("websocket error", ev, ev));
        ws.onclose = () => {
          this._transports.delete(tid);
          this._cmd(5, tid);
        };
        break;
      }
      case 3: {
        const entry = this._transports.get(out[1]);
        if (entry && entry.ws && entry.ws.readyState === 1) {
          entry.ws.send(out[2]);
          // `packetCreate` and `flush` for the session's frames: the probe's `2probe` and the
          // upgrade packet go to the transport directly in engine.io-client.
          if (out[2] !== "2probe" && out[2] !== "5") {
            this.engine._frames(out[2], 1);
            this.engine.emitReserved("flush");
          }
          this.engine.emitReserved("drain");
        }
        break;
      }
      case 4: {
        const entry = this._transports.get(out[1]);
        this._transports.delete(out[1]);
        if (!entry) break;
        if (entry.ws) {
          entry.ws.onmessage = entry.ws.onerror = entry.ws.onclose = entry.ws.onopen = null;
          try {
            entry.ws.close();
          } catch (_) {
            /* already closed */
          }
        }
        if (entry.aborts) for (const a of entry.aborts) a.abort();
        break;
      }
      case 18: {
        // A decoded packet, as socket.io-parser gives it to the manager's `packet` listeners.
        const p = { type: out[1], nsp: out[2] };
        if (out[3] !== undefined && (p.data = this._parse(out[3], out[4])) === undefined) break;
        if (out[5] >= 0) p.id = out[5];
        this.emitReserved("packet", p);
        break;
      }
      case 21:
      case 26: {
        // `error` (the connection failed to open), `reconnect_error`: an `Error`.
        const err = this._error(out[1]);
        if (code === 21) {
          this.engine.emitReserved("error", err);
          this._closeEngine("transport error", err);
        }
        this.emitReserved(MANAGER_EVENTS[code - 20], err);
        break;
      }
      case 28:
        // The probe was answered: the session pauses polling to move (`upgrading`).
        this.engine.emitReserved("upgrading", { name: "websocket" });
        break;
      case 29:
        // The session moved to the WebSocket (`upgrade`), its upgrade packet sent.
        this.engine.transport.name = "websocket";
        this.engine.emitReserved("upgrade", this.engine.transport);
        break;
      case 30: {
        // A probe failed; the session keeps polling (`upgradeError`, an Error naming the
        // transport, as engine.io-client).
        const err = new Error(out[1]);
        err.transport = "websocket";
        this.engine.emitReserved("upgradeError", err);
        break;
      }
      case 23:
        this._closeEngine(out[1], out[1] === "transport error" ? this._error(out[2]) : out[2]);
        this.emitReserved("close", out[1], out[2]);
        break;
      default: {
        if (code >= 20) {
          if (code === 20) this.engine.emitReserved("open");
          this.emitReserved(MANAGER_EVENTS[code - 20], ...out.slice(1));
          break;
        }
        const socket = this._sockets.get(out[1]);
        if (socket) socket._onOutput(out);
      }
    }
  }
}

// --- the socket -----------------------------------------------------------------------------------

/** A socket of one namespace (`Socket` of socket.io-client). */
export class Socket extends Emitter {
  constructor(io, nsp, opts = {}) {
    super();
    this.io = io;
    this.nsp = nsp.startsWith("/") ? nsp : `/${nsp}`;
    this.auth = opts.auth;
    this.id = undefined;
    this.recovered = false;
    this._opts = opts;
    this._acks = new Map();
    this._anyListeners = [];
    this._anyOutgoingListeners = [];
    this._flags = {};
    this._index = undefined;
    // Emits before the first connect() (autoConnect: false), replayed by it.
    this._pending = [];
    if (opts.autoConnect !== false) this.connect();
  }

  get connected() {
    return this._state(1);
  }

  get disconnected() {
    return !this.connected;
  }

  get active() {
    return this._state(2);
  }

  // A bit of the core's socket state: connected 1, active 2. Run as any other command: whatever
  // the core has pending comes with its array and is performed, never dropped.
  _state(bit) {
    return this._index !== undefined && (this.io._cmd(17, this._index) & bit) !== 0;
  }

  /** Connects (again). */
  connect() {
    // A static `auth` that is not an object is refused here, at once (the core would refuse it
    // when the CONNECT is due, and the socket would wait).
    const a = this.auth;
    if (a != null && typeof a !== "function" && (typeof a !== "object" || Array.isArray(a))) {
      throw new Error("auth must be a JSON object");
    }
    if (this._index === undefined) {
      const opts = this._opts;
      // Registered before the outputs are performed: an auth callback may be asked for at once.
      const r = this.io._call(11, typeof opts.ackTimeout === "number" ? opts.ackTimeout : -1, opts.retries || 0, 0, this.nsp);
      this._index = r[0];
      this.io._sockets.set(this._index, this);
      this.io._drain(r);
      this._reportSent();
      const pending = this._pending;
      this._pending = [];
      for (const [flags, args] of pending) {
        this._flags = flags;
        this.emit(...args);
      }
    } else {
      this.io._cmd(12, this._index);
    }
    return this;
  }

  open() {
    return this.connect();
  }

  /** Disconnects; the socket does not reconnect until `connect()`. */
  disconnect() {
    if (this._index !== undefined) this.io._cmd(13, this._index);
    return this;
  }

  close() {
    return this.disconnect();
  }

  /** Sets the ack timeout of the next emit. */
  timeout(ms) {
    this._flags.timeout = ms;
    return this;
  }

  get volatile() {
    this._flags.volatile = true;
    return this;
  }

  compress(v) {
    this._flags.compress = v;
    return this;
  }

  /** Emits an event; a function as last argument receives the server's acknowledgement. A
   * `Blob` anywhere in the arguments is read first (asynchronously); emits made meanwhile wait,
   * so that the order is kept. */
  emit(event, ...args) {
    if (RESERVED.has(event)) throw new Error(`"${event}" is a reserved event name`);
    const k = kinds(args);
    if (this._blobChain || k & 2) {
      const flags = this._flags;
      this._flags = {};
      const chain = (this._blobChain || Promise.resolve())
        .then(() => readBlobs(args))
        .then((read) => {
          this._flags = flags;
          this._emitNow(event, read);
        })
        .finally(() => {
          if (this._blobChain === chain) this._blobChain = null;
        });
      this._blobChain = chain;
      return this;
    }
    return this._emitNow(event, args, k);
  }

  // `k`: `kinds(args)`, when known.
  _emitNow(event, args, k) {
    const flags = this._flags;
    this._flags = {};
    if (this._index === undefined) {
      this._pending.push([flags, [event, ...args]]);
      return this;
    }
    let callback;
    if (args.length && typeof args[args.length - 1] === "function") callback = args.pop();
    args.unshift(event);
    const [json, attachments] = deconstruct(args, k);
    const withTimeout = flags.timeout !== undefined || this._opts.ackTimeout !== undefined;
    const handle = this.io._cmd(
      15,
      this._index,
      flags.timeout !== undefined ? flags.timeout : -1,
      (callback !== undefined ? 1 : 0) | (flags.volatile ? 2 : 0) | (flags.compress !== false ? 4 : 0),
      json,
      attachments,
    );
    if (callback && handle >= 0) this._acks.set(handle, { callback, withTimeout });
    return this;
  }

  /** Emits and resolves with the acknowledgement (rejects on timeout or disconnection). */
  emitWithAck(event, ...args) {
    const withErr = this._flags.timeout !== undefined || this._opts.ackTimeout !== undefined;
    return new Promise((resolve, reject) => {
      args.push((err, value) => {
        if (withErr) return err ? reject(err) : resolve(value);
        return resolve(err);
      });
      this.emit(event, ...args);
    });
  }

  /** Alias of `emit("message", ...args)`. */
  send(...args) {
    return this.emit("message", ...args);
  }

  onAny(fn) {
    this._anyListeners.push(fn);
    return this;
  }

  prependAny(fn) {
    this._anyListeners.unshift(fn);
    return this;
  }

  offAny(fn) {
    this._anyListeners = fn ? this._anyListeners.filter((f) => f !== fn) : [];
    return this;
  }

  listenersAny() {
    return this._anyListeners.slice();
  }

  /** Listens to every event this socket sends (`(event, ...args)`), when it is sent. */
  onAnyOutgoing(fn) {
    this._anyOutgoingListeners.push(fn);
    this._reportSent();
    return this;
  }

  prependAnyOutgoing(fn) {
    this._anyOutgoingListeners.unshift(fn);
    this._reportSent();
    return this;
  }

  offAnyOutgoing(fn) {
    this._anyOutgoingListeners = fn ? this._anyOutgoingListeners.filter((f) => f !== fn) : [];
    this._reportSent();
    return this;
  }

  /** The core reports this socket's emits as they go out (output 17) while it has outgoing
   * listeners. */
  _reportSent() {
    if (this._index !== undefined) this.io._cmd(20, this._index, this._anyOutgoingListeners.length ? 1 : 0);
  }

  listenersAnyOutgoing() {
    return this._anyOutgoingListeners.slice();
  }

  /** The acknowledgement function handed to a listener; a `Blob` in its arguments is read
   * first. */
  _ackFn(id) {
    let sent = false;
    const send = (args, k) => {
      const [json, attachments] = deconstruct(args, k);
      try {
        this.io._cmd(16, this._index, id, 0, json, attachments);
      } catch (_) {
        /* not connected any more: the server gave up on this ack */
      }
    };
    return (...args) => {
      if (sent) return;
      sent = true;
      const k = kinds(args);
      if (k & 2) readBlobs(args).then(send, () => send(args));
      else send(args, k);
    };
  }

  _onOutput(out) {
    switch (out[0]) {
      case 10:
        this.id = out[2];
        this.recovered = out[3];
        this.emitReserved("connect");
        break;
      case 11: {
        const err = this.io._error(out[2]);
        if (out[3] !== undefined) err.data = JSON.parse(out[3]);
        this.emitReserved("connect_error", err);
        break;
      }
      case 12:
        this.id = undefined;
        this.emitReserved(
          "disconnect",
          out[2],
          out[2] === "transport error" ? this.io._error(out[3]) : out[3] !== undefined ? { description: out[3] } : undefined,
        );
        break;
      case 13: {
        const args = this.io._parse(out[2], out[3]);
        if (!args) break;
        if (out[4] >= 0) args.push(this._ackFn(out[4]));
        if (this._anyListeners.length) for (const fn of this._anyListeners.slice()) fn.apply(this, args);
        // The event's listeners get the arguments after its name (no copies of them made).
        const list = this._listeners.get(args.shift());
        if (list) for (const fn of list.slice()) fn.apply(this, args);
        break;
      }
      case 14: {
        const ack = this._acks.get(out[2]);
        this._acks.delete(out[2]);
        if (!ack) break;
        const args = this.io._parse(out[3], out[4]);
        if (!args) break;
        if (ack.withTimeout) ack.callback(null, ...args);
        else ack.callback(...args);
        break;
      }
      case 15: {
        const ack = this._acks.get(out[2]);
        this._acks.delete(out[2]);
        if (!ack) break;
        // Without a timeout socket.io-client never calls the callback on disconnection.
        if (ack.withTimeout) ack.callback(new Error(out[3]));
        break;
      }
      case 16: {
        // The auth payload of this connection: `auth` as it is now, or what its callback gives.
        // If it cannot be sent (not an object, or not JSON), `connect_error` says why.
        const send = (data) => {
          try {
            // Bit 1 of `c`: a payload (the module reads the text only then).
            const text = data == null ? undefined : JSON.stringify(data);
            this.io._cmd(14, this._index, 0, text === undefined ? 0 : 1, text);
          } catch (e) {
            this.emitReserved("connect_error", e);
          }
        };
        if (typeof this.auth === "function") this.auth(send);
        else send(this.auth);
        break;
      }
      case 17:
        // An emit goes out: the outgoing listeners see its event and arguments.
        const args = reconstruct(out[2], out[3]);
        for (const fn of this._anyOutgoingListeners.slice()) fn.apply(this, args);
        break;
    }
  }
}

// --- io() -----------------------------------------------------------------------------------------

const cache = {};

/**
 * Connects to a Socket.IO server (`io(url, opts)`): the URL's path names the namespace; sockets
 * of the same server share one connection unless `forceNew` or `multiplex: false`.
 */
export function io(uri, opts) {
  if (typeof uri === "object" && uri !== null) {
    opts = uri;
    uri = undefined;
  }
  opts = opts || {};
  const url = new URL(uri || "/", globalThis.location?.href);
  const nsp = url.pathname || "/";
  const path = opts.path || "/socket.io";
  const id = `${url.protocol}//${url.host}${path}`;
  const query = url.search ? Object.assign(Object.fromEntries(new URLSearchParams(url.search)), opts.query || {}) : opts.query;
  const managerOpts = Object.assign({}, opts, { query });
  let manager;
  const newConnection = opts.forceNew || opts["force new connection"] || opts.multiplex === false;
  if (newConnection || !cache[id] || cache[id]._sockets.size === 0 || hasSocket(cache[id], nsp)) {
    manager = new Manager(`${url.protocol}//${url.host}`, managerOpts);
    if (!newConnection) cache[id] = manager;
  } else {
    manager = cache[id];
  }
  return manager.socket(nsp, opts);
}

function hasSocket(manager, nsp) {
  for (const s of manager._sockets.values()) if (s.nsp === nsp) return true;
  return false;
}

export { io as connect };
export const protocol = 5;
export default io;
