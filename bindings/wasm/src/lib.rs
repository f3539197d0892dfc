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
//! Every method takes `now`, the caller's clock in milliseconds (`performance.now()`), so the
//! crate needs no browser API and builds and tests on the host as well.
//!
//! Outputs ([`Core::poll_output`]) are arrays whose first element is a code:
//!
//! | code | output | elements after the code |
//! |---|---|---|
//! | 0 | GET | transport id, query (names and values, alternating) |
//! | 1 | POST | transport id, query, body (string) |
//! | 2 | WebSocket open | transport id, query |
//! | 3 | WebSocket send | transport id, frame (string or `Uint8Array`) |
//! | 4 | close transport | transport id |
//! | 10 | socket `connect` | socket, socket id from the server |
//! | 11 | socket `connect_error` | socket, message, data as JSON text or `undefined` |
//! | 12 | socket `disconnect` | socket, reason, description or `undefined` |
//! | 13 | event from the server | socket, JSON text of `[name, ...args]`, attachments, ack id or -1 |
//! | 14 | ack of an emit | socket, ack handle, JSON text of the arguments, attachments |
//! | 15 | ack failed | socket, ack handle, message |
//! | 16 | auth needed | socket |
//! | 20 | manager event | name (`open`, `error`, `ping`, `close`, `reconnect_attempt`, `reconnect`, `reconnect_error`, `reconnect_failed`), argument or `undefined` |

use std::time::Duration;

use bytes::Bytes;
use ferrio_proto::engine::client::{Config as EngineConfig, Io, Query, Transport, TransportId};
use ferrio_proto::engine::Frame;
use ferrio_proto::socket::client::{
    Auth, ClientError, EmitOptions, Event, Manager, ManagerConfig, Output, SocketId, SocketOptions,
};
use ferrio_proto::socket::{Packet, RawJson};
use ferrio_proto::Instant;
use js_sys::{Array, Uint8Array};
use wasm_bindgen::prelude::*;

/// The allocator: talc, smaller than the default dlmalloc in the wasm module.
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

/// One connection to a server (`Manager` of `socket.io-client`), with its namespace sockets.
#[wasm_bindgen]
pub struct Core {
    manager: Manager,
    /// Sockets by index: transport ids and socket ids are handed to JavaScript as numbers.
    sockets: Vec<SocketId>,
    /// Transports in use (the core's ids have no public constructor: the ones JavaScript hands
    /// back are looked up here; input for a released transport is dropped, as the core would).
    transports: Vec<TransportId>,
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
    query
        .iter()
        .flat_map(|(k, v)| [JsValue::from_str(k), JsValue::from_str(v)])
        .collect::<Array>()
        .into()
}

fn err(e: ClientError) -> JsValue {
    JsValue::from_str(e.as_str())
}

fn bytes_array(items: &[Bytes]) -> Array {
    items
        .iter()
        .map(|b| JsValue::from(Uint8Array::from(&b[..])))
        .collect()
}

fn attachments_from(list: &Array) -> Vec<Bytes> {
    list.iter()
        .map(|v| Bytes::from(Uint8Array::new(&v).to_vec()))
        .collect()
}

fn parse_json(text: String) -> Result<RawJson, JsValue> {
    RawJson::parse(text).map_err(|_| JsValue::from_str("invalid JSON"))
}

fn opt_str(s: Option<String>) -> JsValue {
    s.map_or(JsValue::UNDEFINED, |s| JsValue::from_str(&s))
}

#[wasm_bindgen]
impl Core {
    /// A manager. `transports` lists the transports in order of preference, two bits each from
    /// the lowest (1: polling, 2: websocket; 0 ends the list; none: both, polling first). The
    /// `query` option is added to URLs by the caller. Negative numbers mean the default
    /// (`reconnection_attempts`: unlimited, `timeout`: none). `flags` holds `rememberUpgrade`
    /// (1), `tryAllTransports` (2) and `forceBase64` (4).
    #[wasm_bindgen(constructor)]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        transports: u32,
        upgrade: bool,
        reconnection: bool,
        reconnection_attempts: f64,
        reconnection_delay: f64,
        reconnection_delay_max: f64,
        randomization_factor: f64,
        timeout: f64,
        seed: f64,
        flags: u32,
    ) -> Core {
        let mut list = Vec::new();
        let mut bits = transports;
        while bits & 3 != 0 {
            list.push(if bits & 3 == 1 {
                Transport::Polling
            } else {
                Transport::WebSocket
            });
            bits >>= 2;
        }
        let transports = list;
        let defaults = ManagerConfig::default();
        let engine = EngineConfig {
            transports: if transports.is_empty() {
                EngineConfig::default().transports
            } else {
                transports
            },
            upgrade,
            remember_upgrade: flags & 1 != 0,
            try_all_transports: flags & 2 != 0,
            force_base64: flags & 4 != 0,
            ..EngineConfig::default()
        };
        let config = ManagerConfig {
            engine,
            reconnection,
            reconnection_attempts: (reconnection_attempts.is_finite()
                && reconnection_attempts >= 0.0)
                .then_some(reconnection_attempts as u32),
            reconnection_delay: millis(reconnection_delay).unwrap_or(defaults.reconnection_delay),
            reconnection_delay_max: millis(reconnection_delay_max)
                .unwrap_or(defaults.reconnection_delay_max),
            randomization_factor: if randomization_factor.is_finite() {
                randomization_factor
            } else {
                defaults.randomization_factor
            },
            timeout: millis(timeout),
            seed: seed as u64,
            ..defaults
        };
        Core {
            manager: Manager::new(config),
            sockets: Vec::new(),
            transports: Vec::new(),
        }
    }

    fn socket(&self, socket: u32) -> Result<SocketId, JsValue> {
        self.sockets
            .get(socket as usize)
            .copied()
            .ok_or_else(|| err(ClientError::UnknownSocket))
    }

    fn index(&mut self, id: SocketId) -> u32 {
        match self.sockets.iter().position(|s| *s == id) {
            Some(i) => i as u32,
            None => {
                self.sockets.push(id);
                (self.sockets.len() - 1) as u32
            }
        }
    }

    /// Opens (or finds) the socket of namespace `nsp` and connects it. `auth` is the JSON text
    /// of the CONNECT payload, `undefined` for none; `auth_callback` asks for it on every
    /// connection instead (output 16, answered with [`Core::provide_auth`]).
    #[wasm_bindgen(js_name = openSocket)]
    pub fn open_socket(
        &mut self,
        now: f64,
        nsp: &str,
        auth: Option<String>,
        auth_callback: bool,
        ack_timeout: f64,
        retries: u32,
    ) -> Result<u32, JsValue> {
        let auth = if auth_callback {
            Auth::Callback
        } else {
            Auth::Static(auth.map(parse_json).transpose()?)
        };
        let options = SocketOptions {
            auth,
            retries,
            ack_timeout: millis(ack_timeout),
        };
        let id = self
            .manager
            .open_socket(at(now), nsp, options)
            .map_err(err)?;
        Ok(self.index(id))
    }

    /// Connects a socket again (`socket.connect()`).
    #[wasm_bindgen(js_name = connectSocket)]
    pub fn connect_socket(&mut self, now: f64, socket: u32) -> Result<(), JsValue> {
        let id = self.socket(socket)?;
        self.manager.connect_socket(at(now), id).map_err(err)
    }

    /// Disconnects a socket (`socket.disconnect()`).
    pub fn disconnect(&mut self, now: f64, socket: u32) -> Result<(), JsValue> {
        let id = self.socket(socket)?;
        self.manager.disconnect(at(now), id).map_err(err)
    }

    /// Answers output 16 with the JSON text of the auth object (`undefined`: none).
    #[wasm_bindgen(js_name = provideAuth)]
    pub fn provide_auth(
        &mut self,
        now: f64,
        socket: u32,
        auth: Option<String>,
    ) -> Result<(), JsValue> {
        let id = self.socket(socket)?;
        let auth = auth.map(parse_json).transpose()?;
        self.manager.provide_auth(at(now), id, auth).map_err(err)
    }

    /// Emits `data`, the JSON text of `[name, ...args]` with placeholders for `attachments`.
    /// Returns the ack handle, or -1 when no ack was asked for (`timeout` negative: the socket's
    /// default).
    #[allow(clippy::too_many_arguments)]
    pub fn emit(
        &mut self,
        now: f64,
        socket: u32,
        data: String,
        attachments: &Array,
        ack: bool,
        timeout: f64,
        volatile: bool,
        compress: bool,
    ) -> Result<f64, JsValue> {
        let id = self.socket(socket)?;
        let packet = Packet::event("/", parse_json(data)?, attachments_from(attachments));
        let options = EmitOptions {
            ack,
            timeout: millis(timeout),
            volatile,
            compress,
        };
        let handle = self
            .manager
            .emit(at(now), id, packet, options)
            .map_err(err)?;
        Ok(handle.map_or(-1.0, |h| h.as_u64() as f64))
    }

    /// Answers an event of the server that carried ack id `id`; `data` is the JSON text of the
    /// argument array.
    pub fn ack(
        &mut self,
        now: f64,
        socket: u32,
        id: f64,
        data: String,
        attachments: &Array,
    ) -> Result<(), JsValue> {
        let sid = self.socket(socket)?;
        let packet = Packet::ack(
            "/",
            id as u64,
            parse_json(data)?,
            attachments_from(attachments),
        );
        self.manager.ack(at(now), sid, packet).map_err(err)
    }

    /// Opens the connection if it is closed (`manager.open()`).
    pub fn connect(&mut self, now: f64) {
        self.manager.connect(at(now));
    }

    /// Closes the connection without reconnecting (`manager.close()`).
    pub fn close(&mut self, now: f64) {
        self.manager.close(at(now));
    }

    /// Turns reconnection on or off.
    #[wasm_bindgen(js_name = setReconnection)]
    pub fn set_reconnection(&mut self, enabled: bool) {
        self.manager.set_reconnection(enabled);
    }

    /// The socket id the server gave, while connected.
    #[wasm_bindgen(js_name = socketId)]
    pub fn socket_id(&self, socket: u32) -> Option<String> {
        let id = self.sockets.get(socket as usize)?;
        self.manager.socket_sid(*id).map(str::to_owned)
    }

    /// Whether the socket is connected.
    pub fn connected(&self, socket: u32) -> bool {
        self.sockets
            .get(socket as usize)
            .is_some_and(|id| self.manager.is_connected(*id))
    }

    /// Whether the socket reconnects by itself (`socket.active`).
    pub fn active(&self, socket: u32) -> bool {
        self.sockets
            .get(socket as usize)
            .is_some_and(|id| self.manager.is_active(*id))
    }

    /// Whether the last connection recovered the previous session (`socket.recovered`).
    pub fn recovered(&self, socket: u32) -> bool {
        self.sockets
            .get(socket as usize)
            .is_some_and(|id| self.manager.is_recovered(*id))
    }

    /// A GET answered 200 with this body.
    #[wasm_bindgen(js_name = pollResponse)]
    pub fn poll_response(&mut self, now: f64, transport: f64, body: String) {
        if let Some(t) = self.tid(transport) {
            self.manager
                .handle_poll_response(at(now), t, Bytes::from(body));
        }
    }

    /// A POST answered 200.
    #[wasm_bindgen(js_name = postResponse)]
    pub fn post_response(&mut self, now: f64, transport: f64) {
        if let Some(t) = self.tid(transport) {
            self.manager.handle_post_response(at(now), t);
        }
    }

    /// A WebSocket connected.
    #[wasm_bindgen(js_name = wsOpen)]
    pub fn ws_open(&mut self, now: f64, transport: f64) {
        if let Some(t) = self.tid(transport) {
            self.manager.handle_ws_open(at(now), t);
        }
    }

    /// A WebSocket text message.
    #[wasm_bindgen(js_name = wsText)]
    pub fn ws_text(&mut self, now: f64, transport: f64, text: String) {
        if let Some(t) = self.tid(transport) {
            self.manager
                .handle_ws_frame(at(now), t, Frame::Text(text.into()));
        }
    }

    /// A WebSocket binary message.
    #[wasm_bindgen(js_name = wsBinary)]
    pub fn ws_binary(&mut self, now: f64, transport: f64, data: Vec<u8>) {
        if let Some(t) = self.tid(transport) {
            self.manager
                .handle_ws_frame(at(now), t, Frame::Binary(Bytes::from(data)));
        }
    }

    /// A WebSocket closed.
    #[wasm_bindgen(js_name = wsClosed)]
    pub fn ws_closed(&mut self, now: f64, transport: f64) {
        if let Some(t) = self.tid(transport) {
            self.manager.handle_ws_closed(at(now), t);
        }
    }

    /// A request failed or a WebSocket errored.
    #[wasm_bindgen(js_name = transportError)]
    pub fn transport_error(&mut self, now: f64, transport: f64, description: String) {
        if let Some(t) = self.tid(transport) {
            self.manager.handle_transport_error(at(now), t, description);
        }
    }

    /// When [`Core::timeout`] must be called next (same clock as `now`), or -1.
    #[wasm_bindgen(js_name = pollTimeout)]
    pub fn poll_timeout(&self) -> f64 {
        self.manager
            .poll_timeout()
            .map_or(-1.0, |t| t.as_millis() as f64)
    }

    /// Time passed.
    pub fn timeout(&mut self, now: f64) {
        self.manager.handle_timeout(at(now));
    }

    /// The next output (see the crate docs), or `undefined`. Drain after every call.
    #[wasm_bindgen(js_name = pollOutput)]
    pub fn poll_output(&mut self) -> JsValue {
        loop {
            let Some(output) = self.manager.poll_output() else {
                return JsValue::UNDEFINED;
            };
            if let Some(v) = self.output(output) {
                return v.into();
            }
        }
    }
}

fn tid_num(t: TransportId) -> JsValue {
    JsValue::from_f64(t.as_u64() as f64)
}

fn arr(items: &[JsValue]) -> Array {
    items.iter().collect()
}

impl Core {
    fn tid(&self, t: f64) -> Option<TransportId> {
        self.transports
            .iter()
            .copied()
            .find(|id| id.as_u64() as f64 == t)
    }

    fn track(&mut self, t: TransportId) {
        if !self.transports.contains(&t) {
            self.transports.push(t);
        }
    }

    fn output(&mut self, output: Output) -> Option<Array> {
        let n = |x: u32| JsValue::from_f64(f64::from(x));
        Some(match output {
            Output::Transport(io) => match io {
                Io::Get { transport, .. }
                | Io::Post { transport, .. }
                | Io::WsOpen { transport, .. }
                    if !self.transports.contains(&transport) =>
                {
                    self.track(transport);
                    return self.output(Output::Transport(io));
                }
                Io::Get { transport, query } => {
                    arr(&[n(0), tid_num(transport), query_pairs(&query)])
                }
                Io::Post {
                    transport,
                    query,
                    body,
                } => arr(&[
                    n(1),
                    tid_num(transport),
                    query_pairs(&query),
                    JsValue::from_str(std::str::from_utf8(&body).unwrap_or_default()),
                ]),
                Io::WsOpen { transport, query } => {
                    arr(&[n(2), tid_num(transport), query_pairs(&query)])
                }
                Io::WsSend {
                    transport, frame, ..
                } => arr(&[
                    n(3),
                    tid_num(transport),
                    match frame {
                        Frame::Text(t) => JsValue::from_str(&t),
                        Frame::Binary(b) => Uint8Array::from(&b[..]).into(),
                    },
                ]),
                Io::Close { transport } => {
                    self.transports.retain(|t| *t != transport);
                    arr(&[n(4), tid_num(transport)])
                }
            },
            Output::Event(event) => match event {
                Event::Connect { socket } => {
                    let sid = opt_str(self.manager.socket_sid(socket).map(str::to_owned));
                    arr(&[n(10), n(self.index(socket)), sid])
                }
                Event::ConnectError {
                    socket,
                    message,
                    data,
                } => arr(&[
                    n(11),
                    n(self.index(socket)),
                    message.into(),
                    opt_str(data.map(|d| d.as_str().to_owned())),
                ]),
                Event::Disconnect {
                    socket,
                    reason,
                    description,
                } => arr(&[
                    n(12),
                    n(self.index(socket)),
                    reason.as_str().into(),
                    opt_str(description),
                ]),
                Event::Event { socket, packet } => arr(&[
                    n(13),
                    n(self.index(socket)),
                    packet.data().map_or("[]", RawJson::as_str).into(),
                    bytes_array(packet.attachments()).into(),
                    packet
                        .id()
                        .map_or(JsValue::from_f64(-1.0), |i| JsValue::from_f64(i as f64)),
                ]),
                Event::Ack {
                    socket,
                    ack,
                    packet,
                } => arr(&[
                    n(14),
                    n(self.index(socket)),
                    JsValue::from_f64(ack.as_u64() as f64),
                    packet.data().map_or("[]", RawJson::as_str).into(),
                    bytes_array(packet.attachments()).into(),
                ]),
                Event::AckError { socket, ack, error } => arr(&[
                    n(15),
                    n(self.index(socket)),
                    JsValue::from_f64(ack.as_u64() as f64),
                    error.as_str().into(),
                ]),
                Event::AuthNeeded { socket } => arr(&[n(16), n(self.index(socket))]),
                Event::Open => arr(&[n(20), "open".into()]),
                Event::Error { message } => arr(&[n(20), "error".into(), message.into()]),
                Event::Ping => arr(&[n(20), "ping".into()]),
                Event::Close { reason, .. } => {
                    arr(&[n(20), "close".into(), reason.as_str().into()])
                }
                Event::ReconnectAttempt(a) => arr(&[n(20), "reconnect_attempt".into(), n(a)]),
                Event::Reconnect(a) => arr(&[n(20), "reconnect".into(), n(a)]),
                Event::ReconnectError { message } => {
                    arr(&[n(20), "reconnect_error".into(), message.into()])
                }
                Event::ReconnectFailed => arr(&[n(20), "reconnect_failed".into()]),
            },
        })
    }
}
