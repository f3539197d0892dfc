//! Ferrio's browser client: the `ferrio` npm package.
//!
//! This crate is the thin wasm-bindgen layer around the sans-IO client
//! [`Manager`] of `ferrio-proto`. It exports one class,
//! [`Core`], that owns a manager and turns its outputs into small JavaScript arrays. The
//! hand-written `ferrio.js` module of the package drives it: it performs the transport actions
//! (`fetch` for long-polling, `WebSocket`), runs the timer with `setTimeout`, and offers the
//! `socket.io-client` API (`io(url, opts)`, `socket.on/emit/emitWithAck/timeout`, ...). JSON goes
//! through the browser's `JSON.parse`/`JSON.stringify`: this crate only sees JSON text.
//!
//! With the `msgpack` feature (the package's `ferrio/msgpack` entry point), a manager can use
//! the core's msgpack parser (`socket.io-msgpack-parser`'s format) instead of the JSON one: the
//! core still hands over packets as JSON text with placeholders plus attachments, so nothing
//! else changes here or in `ferrio.js`.
//!
//! Numbers go to and from text through the page's `Number` and `String` (imports; the core's
//! `JsNumbers`): the JSON parser's attachment counts and placeholder indexes, the msgpack
//! parser's floats. So the module carries no float formatting or parsing of its own.
//!
//! Apart from its constructor, [`Core`] has one method, [`Core::call`]`(op, now, a, b, c, text,
//! value)`: every exported function costs the module its own glue, so all commands share one.
//! `now` is the caller's clock in milliseconds (`performance.now()`), so the crate needs no
//! browser API and builds and tests on the host as well. A failed command returns the core's
//! message, a string (`ferrio.js` throws it as an `Error`).
//!
//! | op | command | reads | returns |
//! |---|---|---|---|
//! | 0 | a GET answered 200 | `a` transport, `text` body | |
//! | 1 | a POST answered 200 | `a` transport | |
//! | 2 | a WebSocket connected | `a` transport | |
//! | 3 | a WebSocket text message | `a` transport, `text` | |
//! | 4 | a WebSocket binary message | `a` transport, `value` the message's `ArrayBuffer` (in the build with the `msgpack` feature, a `Uint8Array` of it, which that parser reads) | |
//! | 5 | a WebSocket closed | `a` transport | |
//! | 6 | a request failed or a WebSocket errored | `a` transport, `text` description | |
//! | 7 | time passed (ops 0–7 are the core's `Input`, run after the timers due) | | |
//! | 8 | `manager.open()` | | |
//! | 9 | `manager.close()` | | |
//! | 10 | reconnection on (`a` ≠ 0) or off | `a` | |
//! | 11 | open (or find) the socket of namespace `text` and connect it; its auth payload is asked for at each connection (output 16) | `a` ack timeout (negative: none), `b` retries | socket |
//! | 12 | `socket.connect()` again | `a` socket | |
//! | 13 | `socket.disconnect()` | `a` socket | |
//! | 14 | answer output 16 | `a` socket, `c` 1 when there is an auth payload, `text` its JSON text | |
//! | 15 | emit | `a` socket, `b` ack timeout (negative: the socket's), `c` flags (ack 1, volatile 2, compress 4), `text` JSON of `[name, ...args]` with placeholders, `value` attachments | ack handle or -1 |
//! | 16 | answer an event that carried an ack id | `a` socket, `b` ack id, `text` JSON of the arguments, `value` attachments | |
//! | 17 | socket state | `a` socket | connected 1 \| active 2 (whether the socket was recovered comes with output 10) |
//! | 18 | the JSON text of an event (output 13 or 18) does not parse: the connection closes with `parse error` (the core leaves that check of events to the page's `JSON.parse`, see `default_config`) | | |
//! | 19 | nothing (the outputs pending come with its array) | | |
//! | 20 | report the socket's emits as they go out (output 17) on (`b` ≠ 0) or off (`onAnyOutgoing`) | `a` socket, `b` | |
//! | 21 | report every decoded packet (output 18) on (`a` ≠ 0) or off (the manager's `packet` listeners) | `a` | |
//! | 22 | the manager's settings, before any other op (see `Core::configure`) | `now` timeout, `a`, `b`, `c` flags, `text` | |
//! | 23 | the rest of the settings; makes the manager with them | `a`, `b`, `c` seed | |
//!
//! Every op returns an array: its result (above; 0 for the ops without one), when op 7 is due
//! next (same clock as `now`; -1 for never), then every output the manager has pending, all in one crossing. A command
//! that fails returns its message (a string) instead: what is pending comes with the next one. Outputs are arrays whose
//! first element is a code (attachments: an array of the values op 4 gave, or of `Uint8Array`s
//! each the whole of its buffer; `undefined` when there are none):
//!
//! | code | output | elements after the code |
//! |---|---|---|
//! | 0 | GET | transport id, query (names and values, alternating) |
//! | 1 | POST | transport id, query, body (string) |
//! | 2 | WebSocket open | transport id, query |
//! | 3 | WebSocket send | transport id, frame (string or `Uint8Array`) |
//! | 4 | close transport | transport id |
//! | 9 | an event of the core this binding does not know (ignored) | |
//! | 10 | socket `connect` | socket, socket id from the server, recovered (boolean) |
//! | 11 | socket `connect_error` | socket, message, data as JSON text or `undefined` |
//! | 12 | socket `disconnect` | socket, reason, description or `undefined` |
//! | 13 | event from the server | socket, JSON text of `[name, ...args]` (or, here and in output 14, its offset in the text message of the last op 3 when it is the end of it), attachments, ack id or -1 (none, or one a JavaScript number cannot hold exactly: above 2^53, which is left unanswered rather than answered with a rounded id) |
//! | 14 | ack of an emit | socket, ack handle, JSON text of the arguments, attachments |
//! | 15 | ack failed | socket, ack handle, message |
//! | 16 | auth needed | socket |
//! | 17 | an emit goes out (`onAnyOutgoing`) | socket, JSON text of `[name, ...args]`, attachments |
//! | 18 | a packet decoded (op 21) | type (0–6), namespace, JSON text of its data or `undefined`, attachments, ack id or -1 |
//! | 20–27 | manager event `open`, `error`, `ping`, `close`, `reconnect_attempt`, `reconnect`, `reconnect_error`, `reconnect_failed` (in this order) | its arguments, if it has any (`close`: reason, description or `undefined`) |

use std::time::Duration;

use bytes::Bytes;
use ferrio_proto::engine::client::{Io, Query, Transport, TransportId};
use ferrio_proto::engine::Frame;
use ferrio_proto::socket::client::{
    Auth, EmitOptions, Event, Input, Manager, ManagerConfig, Output, SocketId, SocketOptions,
};
use ferrio_proto::socket::{Packet, Parser, RawJson};
use ferrio_proto::{Instant, Str};
use js_sys::{Array, Uint8Array};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// An `Array`, seen through the two imports of `push` below (instead of `js_sys`'s).
    type Numbers;
    /// `Array.prototype.push` of a number: no `JsValue` made for it (a slot in the module's
    /// table of JavaScript values, taken and freed), as `push(&JsValue::from(x))` would.
    #[wasm_bindgen(method, js_name = push)]
    fn push(this: &Numbers, value: f64);
    /// `Array.prototype.push` of any value.
    #[wasm_bindgen(method, js_name = push)]
    fn push_value(this: &Numbers, value: &JsValue);
}

/// Numbers to and from text by the page's JavaScript (`String`, `Number`) in the browser: the
/// JSON parser's attachment counts and placeholder indexes, the msgpack parser's floats. The
/// module then carries no float formatting or parsing code and tables of its own (Rust's
/// elsewhere, where there is no JavaScript to call).
mod js_numbers {
    use ferrio_proto::socket::JsNumbers;

    #[cfg(target_family = "wasm")]
    mod js {
        use wasm_bindgen::prelude::*;

        #[wasm_bindgen]
        extern "C" {
            /// `String(x)`: the shortest digits that read back to `x`.
            #[cfg(feature = "msgpack")]
            #[wasm_bindgen(js_name = String)]
            pub fn string(x: f64) -> String;
            /// `Number(text)`.
            #[wasm_bindgen(js_name = Number)]
            pub fn number(text: &str) -> f64;
        }
    }

    /// JavaScript's conversions in the browser, Rust's own elsewhere.
    pub(crate) fn numbers() -> JsNumbers {
        #[cfg(target_family = "wasm")]
        {
            JsNumbers {
                // The JSON parser never writes a number.
                #[cfg(feature = "msgpack")]
                to_string: |x, out| out.push_str(&js::string(x)),
                #[cfg(not(feature = "msgpack"))]
                to_string: |_, _| {},
                to_number: js::number,
            }
        }
        #[cfg(not(target_family = "wasm"))]
        {
            JsNumbers::default()
        }
    }
}

/// The manager's default settings, with the page's [`js_numbers`] for its parser, and the JSON
/// check of text events left to the page: `ferrio.js` runs `JSON.parse` on each of them anyway,
/// and reports one that fails with op 18.
fn default_config() -> ManagerConfig {
    let mut config = ManagerConfig::with_parser(Parser::json_with(js_numbers::numbers()));
    config.defer_json_check = true;
    config
}

/// Pushes `v` to `list`.
fn push(list: &Array, v: &JsValue) {
    list.unchecked_ref::<Numbers>().push_value(v);
}

/// Pushes the number `x` to `list` (see [`Numbers`]): outputs are mostly numbers.
fn push_num(list: &Array, x: f64) {
    list.unchecked_ref::<Numbers>().push(x);
}

/// The allocator: lol_alloc's free list, smaller than the default dlmalloc (and than talc) in the
/// wasm module. It frees memory: freed blocks go back to a list sorted by address, merged with
/// their neighbours, and are reused first-fit before the memory grows. (`LockedAllocator`: the
/// lock-free `AssumeSingleThreaded` needs `unsafe`, which the workspace forbids.)
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());

/// One connection to a server (`Manager` of `socket.io-client`), with its namespace sockets.
#[wasm_bindgen]
pub struct Core {
    /// The manager. Transport and socket ids go to JavaScript as their numbers and come back
    /// through `TransportId::from_u64` and `SocketId::from_index`: the core ignores input for a
    /// transport it released and refuses an unknown socket, so nothing is tracked here.
    manager: Manager,
    /// The text message of the last op 3, kept until the next one: a packet's JSON text that is
    /// the end of it goes back as its offset in the string JavaScript has (no copy), also when
    /// the packet completes later (a binary event's header, completed by its attachments).
    frame: Option<Str>,
    /// The binary data JavaScript gave in this command, and in the commands before it while the
    /// core collects a packet's attachments (the messages of op 4, the attachments of ops 15
    /// and 16; with a parser that reads binary messages, in this command only), each with its
    /// `Uint8Array`: an attachment or a
    /// binary frame that is one of them goes back as that array instead of a copy. (A message
    /// of op 4 is a one-byte stand-in when the manager does not read it: the JSON parser.)
    received: Vec<(Bytes, JsValue)>,
    /// The settings op 22 gave, for op 23 to make the manager with.
    config: ManagerConfig,
}

fn at(now: f64) -> Instant {
    Instant::from_millis(if now.is_finite() && now > 0.0 {
        now as u64
    } else {
        0
    })
}

fn millis(ms: f64) -> Option<Duration> {
    (ms.is_finite() && ms >= 0.0).then(|| Duration::from_millis(ms as u64))
}

/// The query parameters as one array of names and values, alternating (JavaScript encodes them
/// with `URLSearchParams`).
fn query_pairs(query: &Query) -> JsValue {
    let list = Array::new();
    for (k, v) in query.iter() {
        push(&list, &k.into());
        push(&list, &v.into());
    }
    list.into()
}

fn bytes_array(items: &[Bytes], received: &[(Bytes, JsValue)]) -> JsValue {
    if items.is_empty() {
        // No array to make for the many packets without attachments.
        return JsValue::UNDEFINED;
    }
    let list = Array::new();
    for b in items {
        push(&list, &bytes_value(b, received));
    }
    list.into()
}

/// The `Uint8Array`s of `list` as attachments, each also put in `given` with its array.
fn attachments_from(list: &JsValue, given: &mut Vec<(Bytes, JsValue)>) -> Vec<Bytes> {
    let list = list.unchecked_ref::<Array>();
    let mut out = Vec::new();
    for i in 0..list.length() {
        let v = list.get(i);
        let b = Bytes::from(v.unchecked_ref::<Uint8Array>().to_vec());
        given.push((b.clone(), v));
        out.push(b);
    }
    out
}

/// The `Uint8Array` of `b`: the one JavaScript gave it in if `b` is that data (same memory, kept
/// alive by `given`), a copy otherwise.
fn bytes_value(b: &Bytes, given: &[(Bytes, JsValue)]) -> JsValue {
    match given
        .iter()
        .find(|(g, _)| g.as_ptr() == b.as_ptr() && g.len() == b.len())
    {
        Some((_, v)) => v.clone(),
        None => Uint8Array::from(&b[..]).into(),
    }
}

fn parse_json(text: String) -> Result<RawJson, Failure> {
    RawJson::parse(text).map_err(|_| "invalid JSON")
}

fn opt_str(s: Option<&str>) -> JsValue {
    s.map_or(JsValue::UNDEFINED, JsValue::from_str)
}

#[wasm_bindgen]
impl Core {
    /// A manager with the default settings: `ferrio.js` gives its own with ops 22 and 23 before
    /// anything else (settings through `call` instead of constructor arguments: each argument
    /// costs the export's shim code).
    #[wasm_bindgen(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Core {
        Core {
            manager: Manager::new(default_config()),
            config: default_config(),
            frame: None,
            received: Vec::new(),
        }
    }

    /// Runs one command (see the crate docs for the `op` codes and what each reads of `a`, `b`,
    /// `c`, `text` and `value`) and returns its result. One entry point for all: every exported
    /// function costs the module its own glue.
    #[allow(clippy::too_many_arguments)]
    pub fn call(
        &mut self,
        op: u32,
        now: f64,
        a: f64,
        b: f64,
        c: u32,
        text: String,
        value: &JsValue,
    ) -> JsValue {
        let result = match self.run(op, now, a, b, c, text, value) {
            Ok(result) => result,
            // The core's message instead of the array (a `Result` would cost the call an array
            // for its two return values and a trip through the module's table of values).
            Err(message) => return JsValue::from_str(message),
        };
        // One crossing per command: its result, the next deadline and every output.
        let next = self.manager.poll_timeout();
        let list = Array::new();
        push_num(&list, result);
        push_num(&list, next.map_or(-1.0, |t| t.as_millis() as f64));
        while let Some(output) = self.manager.poll_output() {
            push(&list, &self.output(output));
        }
        list.into()
    }
}

/// The error of a command: a message for JavaScript's `Error`.
type Failure = &'static str;

impl Core {
    /// Ops 22 and 23: the manager's settings. Op 22: `now` the `timeout` (negative: none), `a`
    /// `reconnection_attempts` (negative: unlimited), `b` `reconnection_delay`, `c` the flags,
    /// `text` the cache buster's name (`timestampParam`; `ferrio.js` passes `t` when it is not set). Op 23: `a`
    /// `reconnection_delay_max`, `b` `randomization_factor`, `c` the seed; it makes the manager.
    /// Negative delays mean the default. `c` of op 22 lists the transports from bit 8, in order
    /// of preference, two bits each (1: polling, 2: websocket; 0 ends the list; none: both,
    /// polling first), and holds `rememberUpgrade` (1), `tryAllTransports` (2), `forceBase64`
    /// (4) and, in the build with the `msgpack` feature, the msgpack parser (8; the JSON one
    /// otherwise, and always without the feature); `timestampRequests` set (16) and its value
    /// (32: true), `upgrade` (64) and `reconnection` (128).
    fn configure(&mut self, op: u32, now: f64, a: f64, b: f64, c: u32, text: String) {
        let config = &mut self.config;
        if op == 22 {
            let flags = c;
            let engine = &mut config.engine;
            let transports = flags >> 8;
            if transports != 0 {
                engine.transports.clear();
                let mut bits = transports;
                while bits & 3 != 0 {
                    engine.transports.push(if bits & 3 == 1 {
                        Transport::Polling
                    } else {
                        Transport::WebSocket
                    });
                    bits >>= 2;
                }
            }
            engine.upgrade = flags & 64 != 0;
            engine.remember_upgrade = flags & 1 != 0;
            engine.try_all_transports = flags & 2 != 0;
            engine.force_base64 = flags & 4 != 0;
            engine.timestamp_requests = (flags & 16 != 0).then_some(flags & 32 != 0);
            engine.timestamp_param = text;
            config.reconnection = flags & 128 != 0;
            config.reconnection_attempts = (a.is_finite() && a >= 0.0).then_some(a as u32);
            if let Some(d) = millis(b) {
                config.reconnection_delay = d;
            }
            config.timeout = millis(now);
            #[cfg(feature = "msgpack")]
            if flags & 8 != 0 {
                config.parser = Parser::msgpack_with(js_numbers::numbers());
                // (Its decoder writes the JSON it hands over itself.)
                config.defer_json_check = false;
            }
        } else {
            if let Some(d) = millis(a) {
                config.reconnection_delay_max = d;
            }
            if b.is_finite() {
                config.randomization_factor = b;
            }
            config.seed = u64::from(c);
            // The cache busters' prefix: another page's differs (the seed is random per page).
            config.engine.stamp_seed = config.seed;
            self.manager = Manager::new(std::mem::replace(config, default_config()));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        op: u32,
        now: f64,
        a: f64,
        b: f64,
        c: u32,
        mut text: String,
        value: &JsValue,
    ) -> Result<f64, Failure> {
        if op >= 22 {
            self.configure(op, now, a, b, c, text);
            return Ok(0.0);
        }
        // The JSON text of ops 15 and 16, and of op 14 when it has an auth payload (bit 1 of
        // `c`; a string either way: an `Option<String>` would cost the export's shim its `None`
        // case), parsed in one place.
        let json = if op == 15 || op == 16 || (op == 14 && c & 1 != 0) {
            Some(parse_json(std::mem::take(&mut text))?)
        } else {
            None
        };
        // Kept while the core collects a packet's attachments (the JSON parser), whatever
        // commands come between them (a timer, an emit, `socket.connected`); a parser that reads
        // binary messages (msgpack) takes each as a whole packet.
        if !self.manager.is_reconstructing() || self.manager.reads_binary_messages() {
            self.received.clear();
        }
        let now = at(now);
        let m = &mut self.manager;
        if op <= 7 {
            // The core's input, one op code per kind (a transport the core released is ignored
            // by the core).
            let transport = TransportId::from_u64(a as u64);
            let input = match op {
                // A JavaScript string is UTF-8 here already: the core checks nothing.
                0 => Input::PollResponse {
                    transport,
                    body: Str::from(text),
                },
                1 => Input::PostResponse { transport },
                2 => Input::WsOpen { transport },
                3 => {
                    let frame = Str::from(text);
                    self.frame = Some(frame.clone());
                    Input::WsFrame {
                        transport,
                        frame: Frame::Text(frame),
                    }
                }
                4 => {
                    // The JSON parser never reads the message (only the msgpack one does): a
                    // byte of a stand-in instead of a copy, the message put back in its place.
                    let bytes = Bytes::from(if m.reads_binary_messages() {
                        value.unchecked_ref::<Uint8Array>().to_vec()
                    } else {
                        vec![0]
                    });
                    self.received.push((bytes.clone(), value.clone()));
                    Input::WsFrame {
                        transport,
                        frame: Frame::Binary(bytes),
                    }
                }
                5 => Input::WsClosed { transport },
                6 => Input::TransportError {
                    transport,
                    description: text,
                },
                _ => Input::Timeout,
            };
            m.handle_input(now, input);
            return Ok(0.0);
        }
        // The socket of ops 12 to 20 (a number the core never gave names no socket: the core
        // refuses it with `UnknownSocket`).
        let sid = SocketId::from_index(a as u32);
        // The ops that the manager may refuse (`ClientError`), its message given in one place.
        let result = match op {
            8 => {
                m.connect(now);
                Ok(0.0)
            }
            9 => {
                m.close(now);
                Ok(0.0)
            }
            10 => {
                m.set_reconnection(a != 0.0);
                Ok(0.0)
            }
            // The auth payload is asked for at every connection (output 16), as
            // socket.io-client reads `socket.auth` anew each time.
            11 => m
                .open_socket(
                    now,
                    &text,
                    SocketOptions {
                        auth: Auth::Callback,
                        retries: b as u32,
                        ack_timeout: millis(a),
                    },
                )
                .map(|id| f64::from(id.index() as u32)),
            12 => m.connect_socket(now, sid).map(|_| 0.0),
            13 => m.disconnect(now, sid).map(|_| 0.0),
            14 => m.provide_auth(now, sid, json).map(|_| 0.0),
            // An emit (15) or the answer to an event that carried an ack id (16).
            15 | 16 => {
                let Some(data) = json else { return Ok(0.0) };
                let attachments = attachments_from(value, &mut self.received);
                if op == 15 {
                    let options = EmitOptions {
                        ack: c & 1 != 0,
                        timeout: millis(b),
                        volatile: c & 2 != 0,
                        compress: c & 4 != 0,
                    };
                    m.emit(now, sid, Packet::event("/", data, attachments), options)
                        .map(|handle| handle.map_or(-1.0, |h| h.as_u64() as f64))
                } else {
                    m.ack(now, sid, Packet::ack("/", b as u64, data, attachments))
                        .map(|_| 0.0)
                }
            }
            17 => Ok(f64::from(
                u32::from(m.is_connected(sid)) | u32::from(m.is_active(sid)) << 1,
            )),
            18 => {
                m.payload_invalid(now);
                Ok(0.0)
            }
            20 => m.report_sent(sid, b != 0.0).map(|_| 0.0),
            21 => {
                m.report_packets(a != 0.0);
                Ok(0.0)
            }
            _ => Ok(0.0),
        };
        result.map_err(|e| e.as_str())
    }
}

/// The JSON text and the attachments of a packet: the text as its offset in `frame` (the message
/// JavaScript passed to op 3) when it is the end of it and every character before it is ASCII
/// (so that the offset in bytes is the one in UTF-16 code units), the text itself otherwise.
fn push_packet(out: &Array, packet: &Packet, frame: Option<&str>, received: &[(Bytes, JsValue)]) {
    let data = packet.data().map_or("[]", RawJson::as_str);
    let offset = frame.and_then(|f| {
        let at = (data.as_ptr() as usize).checked_sub(f.as_ptr() as usize)?;
        let prefix = f.as_bytes().get(..at)?;
        (at + data.len() == f.len() && prefix.iter().all(|&b| b < 128)).then_some(at)
    });
    match offset {
        Some(at) => push_num(out, at as f64),
        None => {
            push(out, &data.into());
        }
    }
    push(out, &bytes_array(packet.attachments(), received));
}

impl Core {
    /// The array of one output (see the crate docs): its code, then the elements after it.
    fn output(&mut self, output: Output) -> Array {
        let frame = self.frame.as_ref().map(Str::as_str);
        let received = &self.received[..];
        let out = Array::new();
        let push = |v: JsValue| {
            push(&out, &v);
        };
        let num = |x: f64| push_num(&out, x);
        match output {
            Output::Io(io) => {
                let (code, transport) = match &io {
                    Io::Get { transport, .. } => (0, *transport),
                    Io::Post { transport, .. } => (1, *transport),
                    Io::WsOpen { transport, .. } => (2, *transport),
                    Io::WsSend { transport, .. } => (3, *transport),
                    Io::Close { transport } => (4, *transport),
                };
                num(f64::from(code));
                num(transport.as_u64() as f64);
                match io {
                    Io::Get { query, .. } | Io::WsOpen { query, .. } => push(query_pairs(&query)),
                    Io::Post { query, body, .. } => {
                        push(query_pairs(&query));
                        push(JsValue::from_str(&body));
                    }
                    Io::WsSend { frame, .. } => push(match frame {
                        Frame::Text(t) => JsValue::from_str(&t),
                        Frame::Binary(b) => bytes_value(&b, received),
                    }),
                    Io::Close { .. } => {}
                }
            }
            Output::Event(event) => {
                let (code, socket) = match &event {
                    Event::Connect { socket, .. } => (10, Some(*socket)),
                    Event::ConnectError { socket, .. } => (11, Some(*socket)),
                    Event::Disconnect { socket, .. } => (12, Some(*socket)),
                    Event::Event { socket, .. } => (13, Some(*socket)),
                    Event::Ack { socket, .. } => (14, Some(*socket)),
                    Event::AckError { socket, .. } => (15, Some(*socket)),
                    Event::AuthNeeded { socket } => (16, Some(*socket)),
                    Event::Sent { socket, .. } => (17, Some(*socket)),
                    Event::Packet { .. } => (18, None),
                    Event::Open => (20, None),
                    Event::Error { .. } => (21, None),
                    Event::Ping => (22, None),
                    Event::Close { .. } => (23, None),
                    Event::ReconnectAttempt(_) => (24, None),
                    Event::Reconnect(_) => (25, None),
                    Event::ReconnectError { .. } => (26, None),
                    Event::ReconnectFailed => (27, None),
                    Event::Upgrading(_) => (28, None),
                    Event::Upgrade(_) => (29, None),
                    Event::UpgradeError(_) => (30, None),
                    // A kind of event added to the core later: code 9, which `ferrio.js` ignores.
                    _ => (9, None),
                };
                num(f64::from(code));
                if let Some(socket) = socket {
                    num(socket.index() as f64);
                }
                match event {
                    Event::Connect { sid, recovered, .. } => {
                        push(JsValue::from_str(&sid));
                        push(JsValue::from_bool(recovered));
                    }
                    Event::ConnectError { message, data, .. } => {
                        push(message.into());
                        push(opt_str(data.as_ref().map(RawJson::as_str)));
                    }
                    Event::Disconnect {
                        reason,
                        description,
                        ..
                    } => {
                        push(reason.as_str().into());
                        push(opt_str(description.as_deref()));
                    }
                    Event::Sent { packet, .. } => push_packet(&out, &packet, None, &[]),
                    Event::Packet { packet } => {
                        num(f64::from(packet.kind() as u8));
                        push(JsValue::from_str(packet.nsp()));
                        push(opt_str(packet.data().map(RawJson::as_str)));
                        push(bytes_array(packet.attachments(), received));
                        let id = packet.id().and_then(|i| i.as_u64());
                        num(id.filter(|&i| i <= 1 << 53).map_or(-1.0, |i| i as f64));
                    }
                    Event::Event { packet, .. } => {
                        push_packet(&out, &packet, frame, received);
                        let id = packet.id().and_then(|i| i.as_u64());
                        num(id.filter(|&i| i <= 1 << 53).map_or(-1.0, |i| i as f64));
                    }
                    Event::Ack { ack, packet, .. } => {
                        num(ack.as_u64() as f64);
                        push_packet(&out, &packet, frame, received);
                    }
                    Event::AckError { ack, error, .. } => {
                        num(ack.as_u64() as f64);
                        push(error.as_str().into());
                    }
                    Event::Error { message }
                    | Event::ReconnectError { message }
                    | Event::UpgradeError(message) => push(message.into()),
                    Event::Close {
                        reason,
                        description,
                    } => {
                        push(reason.as_str().into());
                        push(opt_str(description.as_deref()));
                    }
                    Event::ReconnectAttempt(a) | Event::Reconnect(a) => num(f64::from(a)),
                    _ => {}
                }
            }
        }
        out
    }
}
