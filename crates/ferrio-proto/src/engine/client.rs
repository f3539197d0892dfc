//! The client side of an Engine.IO v4 session, as `engine.io-client` 6.6 runs it: the handshake,
//! the heartbeat (pong to every ping, `ping timeout` when pings stop), the long-polling cycle, the
//! upgrade to WebSocket, and close from either side.
//!
//! The driver (tokio, or the browser) owns HTTP requests, WebSockets and timers and nothing else.
//! It performs each [`Io`] the session asks for and reports what came back, naming the transport
//! by the [`TransportId`] the session gave it:
//!
//! ```text
//! session.open();
//! loop {
//!     while let Some(out) = session.poll_output() {
//!         match out {
//!             Output::Io(Io::Get { transport, query })       => start GET,
//!             Output::Io(Io::Post { transport, query, body }) => start POST,
//!             Output::Io(Io::WsOpen { transport, query })    => connect a WebSocket,
//!             Output::Io(Io::WsSend { transport, frame, .. }) => write the frame,
//!             Output::Io(Io::Close { transport })            => close it, abort its GET,
//!             Output::Event(event)                            => hand to the upper layer,
//!         }
//!     }
//!     let input = select {
//!         GET answered 200       => Input::PollResponse { transport, body },
//!         POST answered 200      => Input::PostResponse { transport },
//!         request failed / non-200 / WebSocket error => Input::TransportError { transport, description },
//!         WebSocket connected    => Input::WsOpen { transport },
//!         WebSocket message      => Input::WsFrame { transport, frame },
//!         WebSocket closed       => Input::WsClosed { transport },
//!         sleep_until(session.poll_timeout()) => Input::Timeout,
//!     };
//!     session.handle_input(now, input);                  // the timers due run first
//! }
//! ```
//!
//! Input for a transport the session no longer uses (a late answer, a closed probe) is ignored,
//! so the driver never has to track which requests are still wanted.
//!
//! Rules followed (`engine.io-client` 6.6.8): the first transport of [`Config::transports`]
//! opens; every ping is answered with a pong and resets the heartbeat deadline
//! (`pingInterval + pingTimeout`; nothing else resets it); one GET and one POST at most are in
//! flight per polling transport, a POST carrying the front of the write buffer cut as
//! `_getWritablePackets` does; an upgrade probes `websocket` with `2probe`, and on `3probe` waits
//! for the GET and POST in flight, sends `5` and switches.
//!
//! Deliberate differences from the reference, all on paths where it hangs or leaks:
//! - a first packet that is not the handshake fails the session at once with `transport error`
//!   (the reference waits for the manager's connect timeout);
//! - a `close` packet is honoured over WebSocket too (the reference ignores it there; servers
//!   never send it);
//! - a probe answered with anything but `3probe` is closed (the reference leaves it open), and a
//!   probe failing after `3probe` resumes polling (the reference stays paused until the ping
//!   timeout);
//! - frames queued during an upgrade are sent before a requested close completes (the reference
//!   drops them); a close before the handshake releases the transport at once;
//! - the write buffer is bounded ([`Config::max_buffered_bytes`]).
//!
//! ```
//! use bytes::Bytes;
//! use ferrio_proto::engine::client::{Config, Event, Input, Io, Output, Session};
//! use ferrio_proto::engine::Frame;
//! use ferrio_proto::Instant;
//!
//! let t = Instant::from_millis(0);
//! let mut s = Session::new(Config::default());
//! s.open();
//! let Some(Output::Io(Io::Get { transport, query })) = s.poll_output() else { panic!() };
//! let names: Vec<&str> = query.iter().map(|(k, _)| k.as_str()).collect();
//! assert_eq!(names, ["EIO", "transport", "t"]); // `t`: the cache buster of polling requests
//! let open = r#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
//! s.handle_input(t, Input::PollResponse { transport, body: Bytes::from(open) });
//! let Some(Output::Event(Event::Open(handshake))) = s.poll_output() else { panic!() };
//! assert_eq!(handshake.sid, "abc");
//! // the next long-poll carries the sid
//! let Some(Output::Io(Io::Get { query, .. })) = s.poll_output() else { panic!() };
//! assert!(query.contains(&("sid".to_string(), "abc".to_string())));
//! // no ping within pingInterval + pingTimeout closes the session
//! assert_eq!(s.poll_timeout(), Some(Instant::from_millis(45_000)));
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;

use super::handshake::OpenPacket;
use super::packet::{Frame, Packet, Protocol};
use super::payload::{decode_payload_bytes, encode_payload};
pub use super::server::Transport;
use crate::{Instant, Str};

/// Query parameters of a request, in order, the cache buster included (see
/// [`Config::timestamp_requests`]). The driver appends them to the URL, percent-encoded.
pub type Query = Vec<(String, String)>;

/// Names one transport (one long-polling channel or one WebSocket) of a [`Session`]. Ids are never
/// reused by a session, across reopens included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransportId(u64);

impl TransportId {
    /// The id as a number (for the driver's maps and logs).
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// The id numbered `id` (as [`TransportId::as_u64`] gave it), for a driver that hands ids
    /// to another language as numbers. Input naming a transport the session does not use is
    /// ignored, so the driver need not check.
    pub fn from_u64(id: u64) -> TransportId {
        TransportId(id)
    }
}

impl fmt::Display for TransportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "transport#{}", self.0)
    }
}

/// Session settings, with `engine.io-client`'s defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The transports the client may use, in order of preference; the first opens the session,
    /// the others are only used as upgrades the server offers (`transports`,
    /// `["polling", "websocket"]`).
    pub transports: Vec<Transport>,
    /// Whether to probe the upgrades the server offers (`upgrade`, true).
    pub upgrade: bool,
    /// Open directly with WebSocket if the previous session of this [`Session`] ended up on a
    /// WebSocket (`rememberUpgrade`, false).
    pub remember_upgrade: bool,
    /// If the first transport fails to open, try the next ones in order before giving up
    /// (`tryAllTransports`, false).
    pub try_all_transports: bool,
    /// Ask the server for binary as base64 text (`b64=1`) and send binary WebSocket messages as
    /// `b` + base64 text (`forceBase64`, false).
    pub force_base64: bool,
    /// Extra query parameters for every request (`query`). `EIO`, `transport` and `sid` are set
    /// by the session and override keys of the same name.
    pub query: Query,
    /// Most bytes of outgoing frames the write buffer holds (frames waiting for a POST or for the
    /// end of an upgrade). [`Session::send`] refuses frames that would go past it, unless the
    /// buffer is empty. Heartbeat answers are never refused. `engine.io-client` has no bound;
    /// default 16 MiB.
    pub max_buffered_bytes: usize,
    /// Which requests carry a cache-busting parameter (`timestampRequests`): `None` (the
    /// default) stamps polling requests only, `Some(true)` WebSocket requests too,
    /// `Some(false)` none.
    pub timestamp_requests: Option<bool>,
    /// The cache-busting parameter's name (`timestampParam`, `t`).
    pub timestamp_param: String,
    /// The randomness behind the cache-busting values, from the driver (a random number per
    /// page or process): each request's value is this seed's prefix and the request's number,
    /// unique within the session and unlike another session's.
    pub stamp_seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            transports: vec![Transport::Polling, Transport::WebSocket],
            upgrade: true,
            remember_upgrade: false,
            try_all_transports: false,
            force_base64: false,
            query: Vec::new(),
            max_buffered_bytes: 16 * 1024 * 1024,
            timestamp_requests: None,
            timestamp_param: "t".to_owned(),
            stamp_seed: 0,
        }
    }
}

/// A binary message as `b` + base64 text (the v4 form for a peer that cannot take binary).
fn base64_frame(data: &[u8]) -> Frame {
    let mut text = bytes::BytesMut::from(&b"b"[..]);
    super::packet::encode_base64_into(data, &mut text);
    // base64 is ASCII: always UTF-8.
    Frame::Text(Str::from_utf8(text.freeze()).unwrap_or_default())
}

/// Why a session closed, as `engine.io-client` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The transport closed, or the server sent a `close` packet (`transport close`).
    TransportClose,
    /// A request failed, a WebSocket errored, or the server sent something that does not decode
    /// (`transport error`; the reference turns an undecodable packet into an `error` packet and
    /// closes with this reason).
    TransportError,
    /// No ping from the server within `pingInterval + pingTimeout` (`ping timeout`).
    PingTimeout,
    /// [`Session::close`] or [`Session::abort`] (`forced close`).
    ForcedClose,
}

impl CloseReason {
    /// The reason as `engine.io-client` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::TransportClose => "transport close",
            CloseReason::TransportError => "transport error",
            CloseReason::PingTimeout => "ping timeout",
            CloseReason::ForcedClose => "forced close",
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that reaches a session from outside: the outcome of the driver's requests and
/// WebSockets, named by the [`TransportId`] the session gave them, and the passing of time.
/// Given to [`Session::handle_input`], which runs the timers due at `now` first.
///
/// Input for a transport the session no longer uses (a late answer, a closed probe) is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub enum Input {
    /// Nothing but time: the timers due run (see [`Session::poll_timeout`]).
    Timeout,
    /// The answer (status 200) to the GET of polling `transport`.
    PollResponse {
        /// The polling transport.
        transport: TransportId,
        /// The body.
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::fuzzing::bytes))]
        body: Bytes,
    },
    /// The answer (status 200, `ok`) to the POST of polling `transport`.
    PostResponse {
        /// The polling transport.
        transport: TransportId,
    },
    /// A WebSocket asked for with [`Io::WsOpen`] is connected.
    WsOpen {
        /// The WebSocket.
        transport: TransportId,
    },
    /// A frame arrived on WebSocket `transport`.
    WsFrame {
        /// The WebSocket.
        transport: TransportId,
        /// The frame.
        frame: Frame,
    },
    /// WebSocket `transport` closed (by the server or the network).
    WsClosed {
        /// The WebSocket.
        transport: TransportId,
    },
    /// A request of `transport` failed (network error, or a status other than 200), or its
    /// WebSocket reported an error. `description` is kept in the close event (the reference's
    /// `xhr poll error`, `xhr post error`, `websocket error`, or the HTTP status).
    TransportError {
        /// The transport.
        transport: TransportId,
        /// What failed.
        description: String,
    },
}

/// An I/O action for the driver. Not `#[non_exhaustive]`: every driver must perform every
/// action, so a new one is a change that drivers must see at compile time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Io {
    /// Start an HTTP long-polling GET. At most one GET per transport is in flight; answer with
    /// [`Input::PollResponse`] or [`Input::TransportError`].
    Get {
        /// The polling transport.
        transport: TransportId,
        /// Its query parameters.
        query: Query,
    },
    /// Start an HTTP POST with this body (`Content-Type: text/plain;charset=UTF-8`). At most one
    /// POST per transport is in flight; answer with [`Input::PostResponse`] or
    /// [`Input::TransportError`].
    Post {
        /// The polling transport.
        transport: TransportId,
        /// Its query parameters.
        query: Query,
        /// A v4 polling payload.
        body: Bytes,
    },
    /// Connect a WebSocket; report [`Input::WsOpen`] when connected.
    WsOpen {
        /// The new transport.
        transport: TransportId,
        /// Its query parameters (with `sid` when this is an upgrade probe).
        query: Query,
    },
    /// Write a frame on a WebSocket.
    WsSend {
        /// The WebSocket.
        transport: TransportId,
        /// The frame.
        frame: Frame,
        /// Whether per-message compression may be used (`compress` option of the packet).
        compress: bool,
    },
    /// Release a transport: close the WebSocket (after the frames already handed over), or abort
    /// the GET in flight. A POST already started may complete; its outcome is ignored, as is
    /// anything else reported for this transport from now on.
    Close {
        /// The transport.
        transport: TransportId,
    },
}

/// Something for the upper layer (the Socket.IO manager, or an application using Engine.IO alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The handshake arrived: the session is open.
    Open(OpenPacket),
    /// A text message from the server.
    Message(Str),
    /// A binary message from the server.
    Binary(Bytes),
    /// The server pinged (the pong is already queued).
    Ping,
    /// The session moved to this transport after a successful probe.
    Upgrade(Transport),
    /// A probe failed; the session keeps its transport. The text is the reference's
    /// (`probe error`, `probe error: transport closed`, `probe error: <cause>`). A probe still
    /// running when the session closes is released without this event.
    UpgradeError(String),
    /// The session closed (if it was never opened: opening failed). Nothing else follows until
    /// the session is opened again.
    Close {
        /// Why.
        reason: CloseReason,
        /// Details, such as the error the driver reported.
        description: Option<String>,
    },
}

/// What the driver must do, or pass up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Perform an I/O action.
    Io(Io),
    /// Pass an event to the upper layer.
    Event(Event),
}

/// Why [`Session::send`] refused frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The session is closed or closing (or its heartbeat just expired, which closes it).
    Closed,
    /// The write buffer would go past [`Config::max_buffered_bytes`].
    BufferFull,
    /// A text frame that is not a `message` (`4…`): only messages may be sent.
    NotAMessage,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::Closed => "session closed",
            SendError::BufferFull => "write buffer full",
            SendError::NotAMessage => "only message frames can be sent",
        })
    }
}

impl std::error::Error for SendError {}

/// The lifecycle of a session (`readyState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not open: new, or closed. [`Session::open`] starts a new session.
    Closed,
    /// Waiting for the handshake.
    Opening,
    /// Open.
    Open,
    /// [`Session::close`] was called; waiting for the write buffer to drain and any upgrade to
    /// finish.
    Closing,
}

/// The readiness of a polling transport (`readyState` of `Polling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PollState {
    /// Waiting for the handshake packet.
    Opening,
    /// Polling.
    Open,
    /// An upgrade waits for the GET and POST in flight before switching.
    Pausing,
}

#[derive(Debug, Clone)]
enum Kind {
    Polling {
        state: PollState,
        get_in_flight: bool,
        post_in_flight: bool,
    },
    WebSocket {
        open: bool,
    },
}

#[derive(Debug, Clone)]
struct Active {
    id: TransportId,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProbeStage {
    /// The WebSocket is connecting.
    Connecting,
    /// `2probe` sent, waiting for `3probe`.
    AwaitingPong,
    /// `3probe` received; polling is pausing.
    Pausing,
}

#[derive(Debug, Clone)]
struct Probe {
    id: TransportId,
    stage: ProbeStage,
}

#[derive(Debug, Clone)]
struct Queued {
    frame: Frame,
    compress: bool,
}

fn frame_len(frame: &Frame) -> usize {
    match frame {
        Frame::Text(s) => s.len(),
        Frame::Binary(b) => b.len(),
    }
}

/// `byteLength(packet.data)` of `engine.io-client`: UTF-8 bytes of text data (the type character
/// excluded), `ceil(len * 1.33)` for binary.
fn data_byte_length(frame: &Frame) -> u64 {
    match frame {
        Frame::Text(s) => s.len().saturating_sub(1) as u64,
        Frame::Binary(b) => (b.len() as f64 * 1.33).ceil() as u64,
    }
}

fn set_param(query: &mut Query, key: &str, value: &str) {
    match query.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) => *v = value.to_owned(),
        None => query.push((key.to_owned(), value.to_owned())),
    }
}

/// A cache-busting value: a prefix drawn from `seed`, then the request's number, both in base 36
/// (the reference draws from the clock and `Math.random`, which the core does not have).
fn cache_buster(seed: u64, n: u64) -> String {
    // SplitMix64's finaliser: nearby seeds give unrelated prefixes.
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let mut out = String::with_capacity(12);
    push_base36(&mut out, z % 2_176_782_336); // 36^6: six digits at most
    push_base36(&mut out, n);
    out
}

fn push_base36(out: &mut String, mut n: u64) {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut buf = [0u8; 13];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = DIGITS[(n % 36) as usize];
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.extend(buf[i..].iter().map(|&b| char::from(b)));
}

fn transport_from_name(name: &str) -> Option<Transport> {
    match name {
        "polling" => Some(Transport::Polling),
        "websocket" => Some(Transport::WebSocket),
        _ => None,
    }
}

const PONG: Str = Str::from_static("3");
const PROBE_PING: Str = Str::from_static("2probe");
const UPGRADE: Str = Str::from_static("5");
const CLOSE_PAYLOAD: Bytes = Bytes::from_static(b"1");

/// One Engine.IO client session. See the [module docs](self).
///
/// A `Session` can be opened again after it closed (a reconnection): transport ids keep counting
/// up, so input for a transport of a previous connection is ignored.
///
/// Buffers: the write buffer is bounded by [`Config::max_buffered_bytes`]; the output queue
/// holds what one call produced (one payload's packets at most) as long as the driver drains it
/// after every call.
#[derive(Debug, Clone)]
pub struct Session {
    config: Config,
    state: State,
    next_id: u64,
    active: Option<Active>,
    probe: Option<Probe>,
    handshake: Option<OpenPacket>,
    upgrades: Vec<Transport>,
    /// No ping by then ⇒ `ping timeout` (`_pingTimeoutTime`).
    ping_deadline: Option<Instant>,
    write_buffer: VecDeque<Queued>,
    buffered_bytes: usize,
    /// Cache-busting values given so far.
    stamps: u64,
    /// Frames at the front of the write buffer carried by the POST in flight (`_prevBufferLen`).
    in_flight: usize,
    /// A probe answered; frames wait until the switch (`upgrading`).
    upgrading: bool,
    /// The last session ended up on a WebSocket (`priorWebsocketSuccess`).
    prior_websocket_success: bool,
    /// The index in `config.transports` of the transport being opened (`tryAllTransports`).
    opening_index: usize,
    outputs: VecDeque<Output>,
}

impl Session {
    /// A closed session; [`Session::open`] starts it.
    pub fn new(config: Config) -> Session {
        Session {
            config,
            state: State::Closed,
            next_id: 0,
            active: None,
            probe: None,
            handshake: None,
            upgrades: Vec::new(),
            ping_deadline: None,
            write_buffer: VecDeque::new(),
            buffered_bytes: 0,
            in_flight: 0,
            stamps: 0,
            upgrading: false,
            prior_websocket_success: false,
            opening_index: 0,
            outputs: VecDeque::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The lifecycle state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The session id, once the handshake arrived (cleared on close).
    pub fn sid(&self) -> Option<&str> {
        self.handshake.as_ref().map(|h| h.sid.as_str())
    }

    /// The handshake of the open session.
    pub fn handshake(&self) -> Option<&OpenPacket> {
        self.handshake.as_ref()
    }

    /// The transport in use, if the session is not closed.
    pub fn transport(&self) -> Option<Transport> {
        self.active.as_ref().map(|a| match a.kind {
            Kind::Polling { .. } => Transport::Polling,
            Kind::WebSocket { .. } => Transport::WebSocket,
        })
    }

    /// True between a successful probe and the switch to the new transport.
    pub fn is_upgrading(&self) -> bool {
        self.upgrading
    }

    /// True if the transport can take a write now (`transport.writable`): polling with no POST
    /// in flight after the handshake, or an open WebSocket. Socket.IO drops `volatile` packets
    /// when this is false.
    pub fn is_writable(&self) -> bool {
        match self.active.as_ref().map(|a| &a.kind) {
            Some(Kind::Polling {
                state,
                post_in_flight,
                ..
            }) => *state != PollState::Opening && !post_in_flight,
            Some(Kind::WebSocket { open }) => *open,
            None => false,
        }
    }

    /// Bytes of frames in the write buffer (the POST in flight included).
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }

    /// Starts a session (`new Socket()`): the first configured transport (or WebSocket, see
    /// [`Config::remember_upgrade`]) is opened. Does nothing unless the session is closed.
    ///
    /// With no transports configured the session reports [`Event::Close`] at once (the reference
    /// emits `error` "No transports available").
    pub fn open(&mut self) {
        if self.state != State::Closed {
            return;
        }
        self.handshake = None;
        self.upgrades.clear();
        self.ping_deadline = None;
        self.clear_write_buffer();
        self.upgrading = false;
        self.probe = None;
        let Some(&first) = self.config.transports.first() else {
            self.event(Event::Close {
                reason: CloseReason::TransportError,
                description: Some("No transports available".to_owned()),
            });
            return;
        };
        let kind = if self.config.remember_upgrade
            && self.prior_websocket_success
            && self.config.transports.contains(&Transport::WebSocket)
        {
            Transport::WebSocket
        } else {
            first
        };
        self.opening_index = self
            .config
            .transports
            .iter()
            .position(|t| *t == kind)
            .unwrap_or(0);
        self.start_transport(kind);
    }

    /// Opens `kind` as the session's first transport.
    fn start_transport(&mut self, kind: Transport) {
        self.state = State::Opening;
        let id = self.new_id();
        let query = self.query(kind);
        match kind {
            Transport::Polling => {
                self.active = Some(Active {
                    id,
                    kind: Kind::Polling {
                        state: PollState::Opening,
                        get_in_flight: true,
                        post_in_flight: false,
                    },
                });
                self.io(Io::Get {
                    transport: id,
                    query,
                });
            }
            Transport::WebSocket => {
                self.active = Some(Active {
                    id,
                    kind: Kind::WebSocket { open: false },
                });
                self.io(Io::WsOpen {
                    transport: id,
                    query,
                });
            }
        }
    }

    /// Queues frames for the server: each must be a `message` (a text frame `4…`, or binary), as
    /// built by [`Packet::encode`] or `socket::EncodedPacket::frames`. The frames are kept together.
    ///
    /// Frames sent before the handshake wait for it. Checks the heartbeat first, as the
    /// reference's `_hasPingExpired` (a throttled timer may not have fired yet): if it expired,
    /// the session closes with `ping timeout` and the frames are refused.
    pub fn send(
        &mut self,
        now: Instant,
        frames: impl IntoIterator<Item = Frame>,
        compress: bool,
    ) -> Result<(), SendError> {
        if !matches!(self.state, State::Opening | State::Open) || self.has_ping_expired(now) {
            return Err(SendError::Closed);
        }
        self.enqueue(frames, compress, true)
    }

    /// Queues message frames; `bounded` applies [`Config::max_buffered_bytes`].
    pub(crate) fn enqueue(
        &mut self,
        frames: impl IntoIterator<Item = Frame>,
        compress: bool,
        bounded: bool,
    ) -> Result<(), SendError> {
        if !matches!(self.state, State::Opening | State::Open) {
            return Err(SendError::Closed);
        }
        let frames: Vec<Frame> = frames.into_iter().collect();
        if frames
            .iter()
            .any(|f| matches!(f, Frame::Text(t) if !t.starts_with('4')))
        {
            return Err(SendError::NotAMessage);
        }
        let total: usize = frames.iter().map(frame_len).sum();
        if bounded
            && !self.write_buffer.is_empty()
            && self.buffered_bytes.saturating_add(total) > self.config.max_buffered_bytes
        {
            return Err(SendError::BufferFull);
        }
        self.buffered_bytes += total;
        self.write_buffer
            .extend(frames.into_iter().map(|frame| Queued { frame, compress }));
        self.flush();
        Ok(())
    }

    /// True if the heartbeat deadline has passed without a ping (`_hasPingExpired`); the session
    /// is then closed with `ping timeout` at once. False before the handshake and once closed.
    pub fn has_ping_expired(&mut self, now: Instant) -> bool {
        if !matches!(self.state, State::Open | State::Closing) {
            return false;
        }
        match self.ping_deadline {
            Some(deadline) if now >= deadline => {
                self.on_close(CloseReason::PingTimeout, None);
                true
            }
            _ => false,
        }
    }

    /// Closes the session (`close()`): once the write buffer has drained and any upgrade under
    /// way has finished, the session closes with `forced close`; over polling a `close` packet is
    /// POSTed first. Does nothing if the session is closed or closing.
    pub fn close(&mut self) {
        if matches!(self.state, State::Opening | State::Open) {
            self.state = State::Closing;
            self.maybe_finish_close();
        }
    }

    /// Closes the session now with `forced close`, dropping the write buffer. Used to tear a
    /// session down without waiting (a new connection replacing it, say).
    pub fn abort(&mut self) {
        self.on_close(CloseReason::ForcedClose, None);
    }

    /// Handles one input, after the timers due at `now` (see [`Input`] for each).
    pub fn handle_input(&mut self, now: Instant, input: Input) {
        self.on_timeout(now);
        match input {
            Input::Timeout => {}
            Input::PollResponse { transport, body } => self.on_poll_response(now, transport, body),
            Input::PostResponse { transport } => self.on_post_response(transport),
            Input::WsOpen { transport } => self.on_ws_open(transport),
            Input::WsFrame { transport, frame } => self.on_ws_frame(now, transport, frame),
            Input::WsClosed { transport } => self.on_ws_closed(transport),
            Input::TransportError {
                transport,
                description,
            } => self.on_transport_error(transport, description),
        }
    }

    fn on_poll_response(&mut self, now: Instant, transport: TransportId, body: Bytes) {
        match self.polling(transport) {
            Some(Kind::Polling { get_in_flight, .. }) if *get_in_flight => *get_in_flight = false,
            _ => return,
        }
        let packets = match decode_payload_bytes(body) {
            Ok(packets) => packets,
            Err(e) => {
                self.on_transport_failure(e.as_str().to_owned());
                return;
            }
        };
        for packet in packets {
            match packet {
                Err(e) => {
                    self.on_transport_failure(e.as_str().to_owned());
                    return;
                }
                Ok(Packet::Close) => {
                    self.on_close(
                        CloseReason::TransportClose,
                        Some("transport closed by the server".to_owned()),
                    );
                    return;
                }
                Ok(packet) => {
                    if let (Packet::Open(_), Some(Kind::Polling { state, .. })) =
                        (&packet, self.polling(transport))
                    {
                        if *state == PollState::Opening {
                            *state = PollState::Open;
                        }
                    }
                    self.on_packet(now, packet);
                    if self.state == State::Closed {
                        return;
                    }
                }
            }
        }
        match self.polling(transport) {
            Some(Kind::Polling {
                state: PollState::Open,
                ..
            }) => self.poll(),
            Some(Kind::Polling {
                state: PollState::Pausing,
                ..
            }) => self.check_pause(),
            _ => {}
        }
    }

    fn on_post_response(&mut self, transport: TransportId) {
        match self.polling(transport) {
            Some(Kind::Polling { post_in_flight, .. }) if *post_in_flight => {
                *post_in_flight = false
            }
            _ => return,
        }
        self.on_drain();
        if self.upgrading {
            self.check_pause();
        }
    }

    fn on_ws_open(&mut self, transport: TransportId) {
        if let Some(probe) = self.probe.as_mut() {
            if probe.id == transport {
                if probe.stage == ProbeStage::Connecting {
                    probe.stage = ProbeStage::AwaitingPong;
                    self.io(Io::WsSend {
                        transport,
                        frame: Frame::Text(PROBE_PING),
                        compress: false,
                    });
                }
                return;
            }
        }
        if let Some(Active {
            id,
            kind: Kind::WebSocket { open },
        }) = self.active.as_mut()
        {
            if *id == transport && !*open {
                *open = true;
                self.flush();
            }
        }
    }

    fn on_ws_frame(&mut self, now: Instant, transport: TransportId, frame: Frame) {
        if self.probe.as_ref().is_some_and(|p| p.id == transport) {
            self.on_probe_frame(frame);
            return;
        }
        match self.active.as_ref() {
            Some(Active {
                id,
                kind: Kind::WebSocket { .. },
            }) if *id == transport => {}
            _ => return,
        }
        match Packet::decode(frame, Protocol::V4) {
            Ok(Packet::Close) => self.on_close(
                CloseReason::TransportClose,
                Some("transport closed by the server".to_owned()),
            ),
            Ok(packet) => self.on_packet(now, packet),
            Err(e) => self.on_transport_failure(e.as_str().to_owned()),
        }
    }

    fn on_ws_closed(&mut self, transport: TransportId) {
        if self.probe.as_ref().is_some_and(|p| p.id == transport) {
            self.probe_failed("probe error: transport closed".to_owned());
        } else if self.active.as_ref().is_some_and(|a| a.id == transport) {
            self.on_close(CloseReason::TransportClose, None);
        }
    }

    fn on_transport_error(&mut self, transport: TransportId, description: String) {
        if self.probe.as_ref().is_some_and(|p| p.id == transport) {
            self.probe_failed("probe error: ".to_owned() + &description);
        } else if self.active.as_ref().is_some_and(|a| a.id == transport) {
            self.on_transport_failure(description);
        }
    }

    /// The next output, if any. Drain after every call.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`Input::Timeout`] must be given next: the heartbeat deadline.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Closed {
            return None;
        }
        self.ping_deadline
    }

    /// Time passed: closes the session with `ping timeout` if no ping arrived in time.
    fn on_timeout(&mut self, now: Instant) {
        if self.state != State::Closed && self.ping_deadline.is_some_and(|d| now >= d) {
            self.on_close(CloseReason::PingTimeout, None);
        }
    }

    // --- internals ---------------------------------------------------------------------------

    fn new_id(&mut self) -> TransportId {
        let id = TransportId(self.next_id);
        self.next_id += 1;
        id
    }

    fn io(&mut self, io: Io) {
        self.outputs.push_back(Output::Io(io));
    }

    fn event(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }

    fn query(&mut self, transport: Transport) -> Query {
        let mut query = self.config.query.clone();
        set_param(&mut query, "EIO", "4");
        set_param(&mut query, "transport", transport.name());
        if self.config.force_base64 {
            set_param(&mut query, "b64", "1");
        }
        if let Some(handshake) = &self.handshake {
            set_param(&mut query, "sid", &handshake.sid);
        }
        // engine.io-client: polling requests unless `timestampRequests` is false, WebSocket
        // ones only if it is true.
        let stamped = match self.config.timestamp_requests {
            None => transport == Transport::Polling,
            Some(yes) => yes,
        };
        if stamped {
            self.stamps += 1;
            let value = cache_buster(self.config.stamp_seed, self.stamps);
            set_param(&mut query, &self.config.timestamp_param, &value);
        }
        query
    }

    /// The state of the active transport if it is polling transport `id`.
    fn polling(&mut self, id: TransportId) -> Option<&mut Kind> {
        match self.active.as_mut() {
            Some(a) if a.id == id && matches!(a.kind, Kind::Polling { .. }) => Some(&mut a.kind),
            _ => None,
        }
    }

    fn clear_write_buffer(&mut self) {
        self.write_buffer.clear();
        self.buffered_bytes = 0;
        self.in_flight = 0;
    }

    /// Starts the next long-poll if the polling transport is open and idle (`_poll`).
    fn poll(&mut self) {
        let Some(Active {
            id,
            kind:
                Kind::Polling {
                    state: PollState::Open,
                    get_in_flight,
                    ..
                },
        }) = self.active.as_mut()
        else {
            return;
        };
        if *get_in_flight {
            return;
        }
        *get_in_flight = true;
        let id = *id;
        let query = self.query(Transport::Polling);
        self.io(Io::Get {
            transport: id,
            query,
        });
    }

    /// Handles one packet from the active transport (`_onPacket`).
    fn on_packet(&mut self, now: Instant, packet: Packet) {
        if self.handshake.is_none() {
            // Only the handshake is expected first; the reference would hang until the
            // manager's connect timeout, Ferrio fails the session at once.
            match packet {
                Packet::Open(data) => match OpenPacket::parse(&data) {
                    Ok(open) => self.on_handshake(now, open),
                    Err(e) => {
                        self.on_transport_failure("invalid handshake: ".to_owned() + e.as_str())
                    }
                },
                _ => self.on_transport_failure("expected the handshake".to_owned()),
            }
            return;
        }
        match packet {
            Packet::Ping(_) => {
                if self.state != State::Closing {
                    self.write_buffer.push_back(Queued {
                        frame: Frame::Text(PONG),
                        compress: false,
                    });
                    self.buffered_bytes += 1;
                    self.flush();
                }
                self.event(Event::Ping);
                self.reset_ping_timeout(now);
            }
            Packet::Message(text) => self.event(Event::Message(text)),
            Packet::Binary(data) => self.event(Event::Binary(data)),
            Packet::Close => self.on_close(
                CloseReason::TransportClose,
                Some("transport closed by the server".to_owned()),
            ),
            Packet::Open(_) | Packet::Pong(_) | Packet::Upgrade | Packet::Noop => {}
        }
    }

    /// `onHandshake` + `onOpen`: the session is open, the write buffer flushes, upgrades are
    /// probed, the heartbeat starts.
    fn on_handshake(&mut self, now: Instant, open: OpenPacket) {
        let current = self.transport();
        self.upgrades = open
            .upgrades
            .iter()
            .filter_map(|name| transport_from_name(name))
            .filter(|t| self.config.transports.contains(t) && Some(*t) != current)
            .collect();
        self.handshake = Some(open.clone());
        self.prior_websocket_success = current == Some(Transport::WebSocket);
        let was_opening = self.state == State::Opening;
        if was_opening {
            self.state = State::Open;
            self.event(Event::Open(open));
        }
        self.flush();
        if self.state == State::Open
            && self.config.upgrade
            && current == Some(Transport::Polling)
            && self.upgrades.contains(&Transport::WebSocket)
        {
            self.start_probe();
        }
        self.reset_ping_timeout(now);
        self.maybe_finish_close();
    }

    fn reset_ping_timeout(&mut self, now: Instant) {
        if let Some(h) = &self.handshake {
            let ms = h.ping_interval.saturating_add(h.ping_timeout);
            self.ping_deadline = Some(now + Duration::from_millis(ms));
        }
    }

    /// `flush`: hands the writable part of the write buffer to the transport.
    fn flush(&mut self) {
        if self.state == State::Closed || self.upgrading || self.write_buffer.is_empty() {
            return;
        }
        let count = self.writable_count();
        let Some(active) = self.active.as_mut() else {
            return;
        };
        let id = active.id;
        match &mut active.kind {
            Kind::Polling {
                state,
                post_in_flight,
                ..
            } => {
                if *state == PollState::Opening || *post_in_flight {
                    return;
                }
                *post_in_flight = true;
                self.in_flight = count;
                let body = encode_payload(self.write_buffer.iter().take(count).map(|q| &q.frame));
                let query = self.query(Transport::Polling);
                self.io(Io::Post {
                    transport: id,
                    query,
                    body,
                });
            }
            Kind::WebSocket { open } => {
                if !*open {
                    return;
                }
                while let Some(q) = self.write_buffer.pop_front() {
                    let frame = match q.frame {
                        Frame::Binary(data) if self.config.force_base64 => base64_frame(&data),
                        frame => frame,
                    };
                    self.outputs.push_back(Output::Io(Io::WsSend {
                        transport: id,
                        frame,
                        compress: q.compress,
                    }));
                }
                self.buffered_bytes = 0;
                self.in_flight = 0;
                self.maybe_finish_close();
            }
        }
    }

    /// `_getWritablePackets`: over polling, the write buffer is cut so that
    /// `1 + Σ(byteLength(data) + 2) <= maxPayload` (the first packet always goes).
    fn writable_count(&self) -> usize {
        let len = self.write_buffer.len();
        let max = self
            .handshake
            .as_ref()
            .and_then(|h| h.max_payload)
            .unwrap_or(0);
        let polling = matches!(
            self.active.as_ref().map(|a| &a.kind),
            Some(Kind::Polling { .. })
        );
        if max == 0 || !polling || len <= 1 {
            return len;
        }
        let mut size: u64 = 1;
        for (i, q) in self.write_buffer.iter().enumerate() {
            size = size.saturating_add(data_byte_length(&q.frame));
            if i > 0 && size > max {
                return i;
            }
            size = size.saturating_add(2);
        }
        len
    }

    /// `_onDrain`: the POST in flight completed.
    fn on_drain(&mut self) {
        for _ in 0..self.in_flight {
            if let Some(q) = self.write_buffer.pop_front() {
                self.buffered_bytes = self.buffered_bytes.saturating_sub(frame_len(&q.frame));
            }
        }
        self.in_flight = 0;
        if self.write_buffer.is_empty() {
            self.maybe_finish_close();
        } else {
            self.flush();
        }
    }

    /// Completes a [`Session::close`] once nothing waits to be written and no upgrade is under way.
    fn maybe_finish_close(&mut self) {
        if self.state == State::Closing
            && self.handshake.is_some()
            && self.write_buffer.is_empty()
            && !self.upgrading
        {
            self.on_close(CloseReason::ForcedClose, None);
        } else if self.state == State::Closing && self.handshake.is_none() {
            // Closing before the handshake: nothing can be written yet, give up the transport.
            self.on_close(CloseReason::ForcedClose, None);
        }
    }

    fn start_probe(&mut self) {
        if self.probe.is_some() {
            return;
        }
        let id = self.new_id();
        self.probe = Some(Probe {
            id,
            stage: ProbeStage::Connecting,
        });
        self.prior_websocket_success = false;
        let query = self.query(Transport::WebSocket);
        self.io(Io::WsOpen {
            transport: id,
            query,
        });
    }

    fn on_probe_frame(&mut self, frame: Frame) {
        let Some(probe) = self.probe.as_mut() else {
            return;
        };
        if probe.stage != ProbeStage::AwaitingPong {
            // Before `3probe` nothing else is expected; after it, the reference ignores frames
            // until the switch.
            return;
        }
        match Packet::decode(frame, Protocol::V4) {
            Ok(Packet::Pong(data)) if &*data == "probe" => {
                probe.stage = ProbeStage::Pausing;
                self.upgrading = true;
                self.prior_websocket_success = true;
                if let Some(Active {
                    kind: Kind::Polling { state, .. },
                    ..
                }) = self.active.as_mut()
                {
                    *state = PollState::Pausing;
                }
                self.check_pause();
            }
            _ => self.probe_failed("probe error".to_owned()),
        }
    }

    /// `pause`: once the polling transport has no GET and no POST in flight, switch.
    fn check_pause(&mut self) {
        if !self
            .probe
            .as_ref()
            .is_some_and(|p| p.stage == ProbeStage::Pausing)
        {
            return;
        }
        let idle = matches!(
            self.active.as_ref().map(|a| &a.kind),
            Some(Kind::Polling {
                state: PollState::Pausing,
                get_in_flight: false,
                post_in_flight: false,
            })
        );
        if idle {
            self.switch_to_probe();
        }
    }

    fn switch_to_probe(&mut self) {
        let (Some(probe), Some(old)) = (self.probe.take(), self.active.take()) else {
            return;
        };
        self.io(Io::Close { transport: old.id });
        self.active = Some(Active {
            id: probe.id,
            kind: Kind::WebSocket { open: true },
        });
        self.io(Io::WsSend {
            transport: probe.id,
            frame: Frame::Text(UPGRADE),
            compress: false,
        });
        self.event(Event::Upgrade(Transport::WebSocket));
        self.upgrading = false;
        self.in_flight = 0;
        self.flush();
        self.maybe_finish_close();
    }

    /// The probe failed: close it, report `upgradeError`, and keep (or resume) polling.
    fn probe_failed(&mut self, description: String) {
        let Some(probe) = self.probe.take() else {
            return;
        };
        self.io(Io::Close {
            transport: probe.id,
        });
        self.event(Event::UpgradeError(description));
        if probe.stage == ProbeStage::Pausing {
            self.upgrading = false;
            if let Some(Active {
                kind: Kind::Polling { state, .. },
                ..
            }) = self.active.as_mut()
            {
                *state = PollState::Open;
            }
            self.poll();
            self.flush();
            self.maybe_finish_close();
        }
    }

    /// `_onError`: a transport failure closes the session with `transport error`.
    fn on_transport_failure(&mut self, description: String) {
        self.prior_websocket_success = false;
        // `tryAllTransports`: a transport that fails before the handshake gives way to the next.
        let next = self.opening_index + 1;
        if self.config.try_all_transports
            && self.state == State::Opening
            && self.handshake.is_none()
            && next < self.config.transports.len()
        {
            if let Some(active) = self.active.take() {
                self.io(Io::Close {
                    transport: active.id,
                });
            }
            self.opening_index = next;
            let kind = self.config.transports[next];
            self.start_transport(kind);
            return;
        }
        self.on_close(CloseReason::TransportError, Some(description));
    }

    /// `_onClose`: releases the transports and reports the close once.
    fn on_close(&mut self, reason: CloseReason, description: Option<String>) {
        if self.state == State::Closed {
            return;
        }
        self.ping_deadline = None;
        if let Some(probe) = self.probe.take() {
            self.io(Io::Close {
                transport: probe.id,
            });
        }
        if let Some(active) = self.active.take() {
            if let Kind::Polling {
                state,
                post_in_flight,
                ..
            } = active.kind
            {
                // The client's own closes tell the server with a `close` packet, when a POST
                // can be made (one at a time) and the session exists.
                let ours = matches!(reason, CloseReason::ForcedClose | CloseReason::PingTimeout);
                if ours && state != PollState::Opening && !post_in_flight {
                    let query = self.query(Transport::Polling);
                    self.io(Io::Post {
                        transport: active.id,
                        query,
                        body: CLOSE_PAYLOAD,
                    });
                }
            }
            self.io(Io::Close {
                transport: active.id,
            });
        }
        self.state = State::Closed;
        self.handshake = None;
        self.upgrading = false;
        self.clear_write_buffer();
        self.event(Event::Close {
            reason,
            description,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: &str = r#"0{"sid":"s1","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
    const OPEN_NO_UPGRADE: &str = r#"0{"sid":"s1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn drain(s: &mut Session) -> Vec<Output> {
        std::iter::from_fn(|| s.poll_output()).collect()
    }

    fn poll_response(s: &mut Session, now: Instant, transport: TransportId, body: Bytes) {
        s.handle_input(now, Input::PollResponse { transport, body });
    }

    fn post_response(s: &mut Session, now: Instant, transport: TransportId) {
        s.handle_input(now, Input::PostResponse { transport });
    }

    fn ws_open(s: &mut Session, now: Instant, transport: TransportId) {
        s.handle_input(now, Input::WsOpen { transport });
    }

    fn ws_frame(s: &mut Session, now: Instant, transport: TransportId, frame: Frame) {
        s.handle_input(now, Input::WsFrame { transport, frame });
    }

    fn ws_closed(s: &mut Session, now: Instant, transport: TransportId) {
        s.handle_input(now, Input::WsClosed { transport });
    }

    fn transport_error(s: &mut Session, now: Instant, transport: TransportId, description: &str) {
        s.handle_input(
            now,
            Input::TransportError {
                transport,
                description: description.into(),
            },
        );
    }

    fn timeout(s: &mut Session, now: Instant) {
        s.handle_input(now, Input::Timeout);
    }

    fn q(pairs: &[(&str, &str)]) -> Query {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn text(s: &str) -> Frame {
        Frame::Text(Str::from(s))
    }

    fn msg(s: &str) -> Frame {
        text(&format!("4{s}"))
    }

    /// Opens a polling session with `open` as the handshake; returns its transport id.
    fn open_polling(s: &mut Session, open: &str) -> TransportId {
        s.open();
        let Some(Output::Io(Io::Get { transport, .. })) = s.poll_output() else {
            panic!("handshake GET")
        };
        poll_response(s, t(0), transport, Bytes::from(open.to_owned()));
        transport
    }

    fn events(outputs: &[Output]) -> Vec<Event> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Event(e) => Some(e.clone()),
                _ => None,
            })
            .collect()
    }

    fn posts(outputs: &[Output]) -> Vec<String> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Io(Io::Post { body, .. }) => {
                    Some(String::from_utf8_lossy(body).into_owned())
                }
                _ => None,
            })
            .collect()
    }

    fn gets(outputs: &[Output]) -> usize {
        outputs
            .iter()
            .filter(|o| matches!(o, Output::Io(Io::Get { .. })))
            .count()
    }

    fn ws_sent(outputs: &[Output]) -> Vec<Frame> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Io(Io::WsSend { frame, .. }) => Some(frame.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn polling_handshake() {
        let mut s = Session::new(Config {
            query: q(&[("token", "x"), ("EIO", "3")]),
            ..Config::default()
        });
        s.open();
        assert_eq!(s.state(), State::Opening);
        let first = drain(&mut s);
        let [Output::Io(Io::Get { transport, query })] = first.as_slice() else {
            panic!("{first:?}")
        };
        // user keys first, EIO overridden in place, then the cache buster
        assert_eq!(
            query,
            &q(&[
                ("token", "x"),
                ("EIO", "4"),
                ("transport", "polling"),
                ("t", &cache_buster(0, 1))
            ])
        );
        assert!(!s.is_writable());
        poll_response(&mut s, t(10), *transport, Bytes::from(OPEN_NO_UPGRADE));
        let out = drain(&mut s);
        let Output::Event(Event::Open(open)) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(open.sid, "s1");
        assert_eq!(open.max_payload, Some(1_000_000));
        let Output::Io(Io::Get { query, .. }) = &out[1] else {
            panic!("{out:?}")
        };
        assert_eq!(
            query,
            &q(&[
                ("token", "x"),
                ("EIO", "4"),
                ("transport", "polling"),
                ("sid", "s1"),
                ("t", &cache_buster(0, 2))
            ])
        );
        assert_eq!(out.len(), 2);
        assert_eq!(s.state(), State::Open);
        assert_eq!(s.sid(), Some("s1"));
        assert!(s.is_writable());
        assert_eq!(s.poll_timeout(), Some(t(10 + 45_000)));
    }

    #[test]
    fn messages_in_the_handshake_payload_follow_open() {
        let mut s = Session::new(Config::default());
        open_polling(&mut s, &format!("{OPEN_NO_UPGRADE}\u{1e}4hello\u{1e}bAQID"));
        let ev = events(&drain(&mut s));
        assert!(matches!(ev[0], Event::Open(_)));
        assert_eq!(ev[1], Event::Message("hello".into()));
        assert_eq!(ev[2], Event::Binary(Bytes::from_static(&[1, 2, 3])));
    }

    #[test]
    fn ping_is_answered_and_resets_the_deadline() {
        let mut s = Session::new(Config::default());
        let id = open_polling(&mut s, OPEN_NO_UPGRADE);
        drain(&mut s);
        poll_response(&mut s, t(25_000), id, Bytes::from_static(b"2"));
        let out = drain(&mut s);
        assert_eq!(posts(&out), ["3"]);
        assert_eq!(events(&out), [Event::Ping]);
        assert_eq!(gets(&out), 1);
        assert_eq!(s.poll_timeout(), Some(t(70_000)));
        // messages do not reset the heartbeat; only pings do
        poll_response(&mut s, t(60_000), id, Bytes::from_static(b"4x"));
        assert_eq!(s.poll_timeout(), Some(t(70_000)));
    }

    #[test]
    fn ping_timeout_closes_and_posts_close() {
        let mut s = Session::new(Config::default());
        let id = open_polling(&mut s, OPEN_NO_UPGRADE);
        drain(&mut s);
        timeout(&mut s, t(44_999));
        assert!(drain(&mut s).is_empty());
        timeout(&mut s, t(45_000));
        let out = drain(&mut s);
        assert_eq!(posts(&out), ["1"]);
        assert!(out.contains(&Output::Io(Io::Close { transport: id })));
        assert_eq!(
            events(&out),
            [Event::Close {
                reason: CloseReason::PingTimeout,
                description: None
            }]
        );
        assert_eq!(s.state(), State::Closed);
        assert_eq!(s.poll_timeout(), None);
        // a late GET answer is ignored
        poll_response(&mut s, t(45_001), id, Bytes::from_static(b"2"));
        assert!(drain(&mut s).is_empty());
    }

    #[test]
    fn expired_heartbeat_is_checked_before_sending() {
        let mut s = Session::new(Config::default());
        open_polling(&mut s, OPEN_NO_UPGRADE);
        drain(&mut s);
        assert!(!s.has_ping_expired(t(44_000)));
        assert_eq!(
            s.send(t(50_000), [msg("late")], true),
            Err(SendError::Closed)
        );
        let out = drain(&mut s);
        assert_eq!(posts(&out), ["1"]);
        assert!(events(&out).contains(&Event::Close {
            reason: CloseReason::PingTimeout,
            description: None
        }));
    }

    #[test]
    fn one_post_in_flight_and_one_get() {
        let mut s = Session::new(Config::default());
        let id = open_polling(&mut s, OPEN_NO_UPGRADE);
        drain(&mut s);
        s.send(t(1), [msg("a")], true).expect("send");
        assert!(!s.is_writable());
        s.send(t(2), [msg("b")], true).expect("send");
        s.send(
            t(3),
            [msg("c"), Frame::Binary(Bytes::from_static(&[1]))],
            true,
        )
        .expect("send");
        let out = drain(&mut s);
        assert_eq!(posts(&out), ["4a"]);
        assert_eq!(s.buffered_bytes(), 2 + 2 + 2 + 1);
        // a POST answer for another transport changes nothing
        post_response(&mut s, t(4), TransportId(99));
        assert!(drain(&mut s).is_empty());
        post_response(&mut s, t(5), id);
        let out = drain(&mut s);
        assert_eq!(posts(&out), ["4b\u{1e}4c\u{1e}bAQ=="]);
        post_response(&mut s, t(6), id);
        assert!(drain(&mut s).is_empty());
        assert_eq!(s.buffered_bytes(), 0);
        assert!(s.is_writable());
        // the GET cycle: each answer starts exactly one new GET
        poll_response(&mut s, t(7), id, Bytes::from_static(b"6"));
        assert_eq!(gets(&drain(&mut s)), 1);
        // a duplicate answer (no GET in flight on our side) is ignored
        poll_response(&mut s, t(7), TransportId(42), Bytes::from_static(b"6"));
        assert!(drain(&mut s).is_empty());
    }

    #[test]
    fn post_is_cut_to_max_payload() {
        let open = r#"0{"sid":"s1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":20}"#;
        let mut s = Session::new(Config::default());
        let id = open_polling(&mut s, open);
        drain(&mut s);
        // hold the POST with a first message, then queue five of 5 data bytes each
        s.send(t(1), [msg("x")], true).expect("send");
        for _ in 0..5 {
            s.send(t(1), [msg("hello")], true).expect("send");
        }
        drain(&mut s);
        // 1 + (5+2) + (5+2) = 15; a third makes 1 + 7 + 7 + 5 = 20 <= 20; a fourth 27 > 20
        post_response(&mut s, t(2), id);
        assert_eq!(posts(&drain(&mut s)), ["4hello\u{1e}4hello\u{1e}4hello"]);
        post_response(&mut s, t(3), id);
        assert_eq!(posts(&drain(&mut s)), ["4hello\u{1e}4hello"]);
        // binary data counts ceil(len * 1.33): 12 bytes count 16 (1 + 16 + 2 + ...)
        s.send(t(4), [msg("x")], true).expect("send");
        drain(&mut s);
        post_response(&mut s, t(5), id);
        drain(&mut s);
        s.send(t(6), [Frame::Binary(Bytes::from(vec![0u8; 12]))], true)
            .expect("send");
        s.send(t(6), [msg("ab")], true).expect("send");
        drain(&mut s);
        post_response(&mut s, t(7), id);
        let out = drain(&mut s);
        assert_eq!(posts(&out), ["bAAAAAAAAAAAAAAAA"]);
        post_response(&mut s, t(8), id);
        assert_eq!(posts(&drain(&mut s)), ["4ab"]);
        post_response(&mut s, t(9), id);
        assert!(drain(&mut s).is_empty());
        // a single packet larger than maxPayload still goes
        s.send(t(9), [msg(&"y".repeat(50))], true).expect("send");
        assert_eq!(posts(&drain(&mut s)).len(), 1);
    }

    #[test]
    fn write_buffer_is_bounded() {
        let mut s = Session::new(Config {
            max_buffered_bytes: 10,
            ..Config::default()
        });
        open_polling(&mut s, OPEN_NO_UPGRADE);
        drain(&mut s);
        // an empty buffer takes anything
        s.send(t(1), [msg(&"z".repeat(20))], true).expect("send");
        assert_eq!(s.send(t(1), [msg("a")], true), Err(SendError::BufferFull));
        assert_eq!(
            s.send(t(1), [text("2ping")], true),
            Err(SendError::NotAMessage)
        );
    }

    #[test]
    fn server_close_packet_closes() {
        let mut s = Session::new(Config::default());
        let id = open_polling(&mut s, OPEN_NO_UPGRADE);
        drain(&mut s);
        poll_response(&mut s, t(1), id, Bytes::from_static(b"4a\x1e1\x1e4b"));
        let out = drain(&mut s);
        assert_eq!(
            events(&out),
            [
                Event::Message("a".into()),
                Event::Close {
                    reason: CloseReason::TransportClose,
                    description: Some("transport closed by the server".into())
                }
            ]
        );
        assert!(posts(&out).is_empty(), "no close packet back");
        assert_eq!(gets(&out), 0);
    }

    #[test]
    fn undecodable_payload_is_a_transport_error() {
        let mut s = Session::new(Config::default());
        let id = open_polling(&mut s, OPEN_NO_UPGRADE);
        drain(&mut s);
        poll_response(&mut s, t(1), id, Bytes::from_static(b"4a\x1ex"));
        let ev = events(&drain(&mut s));
        assert_eq!(ev[0], Event::Message("a".into()));
        assert!(matches!(
            ev[1],
            Event::Close {
                reason: CloseReason::TransportError,
                ..
            }
        ));
    }

    #[test]
    fn handshake_must_come_first() {
        let mut s = Session::new(Config::default());
        open_polling(&mut s, "4hello");
        let ev = events(&drain(&mut s));
        assert!(matches!(
            ev.as_slice(),
            [Event::Close {
                reason: CloseReason::TransportError,
                ..
            }]
        ));
        // and the session can be opened again, with fresh transport ids
        s.open();
        let Some(Output::Io(Io::Get { transport, .. })) = s.poll_output() else {
            panic!()
        };
        assert_eq!(transport, TransportId(1));
    }

    #[test]
    fn request_errors_close_with_transport_error() {
        let mut s = Session::new(Config::default());
        let id = open_polling(&mut s, OPEN_NO_UPGRADE);
        drain(&mut s);
        transport_error(&mut s, t(1), id, "xhr poll error");
        let out = drain(&mut s);
        assert_eq!(
            events(&out),
            [Event::Close {
                reason: CloseReason::TransportError,
                description: Some("xhr poll error".into())
            }]
        );
        assert!(posts(&out).is_empty());
        assert_eq!(out[0], Output::Io(Io::Close { transport: id }));
    }

    #[test]
    fn forced_close_waits_for_the_write_buffer() {
        let mut s = Session::new(Config::default());
        let id = open_polling(&mut s, OPEN_NO_UPGRADE);
        drain(&mut s);
        s.send(t(1), [msg("a")], true).expect("send");
        s.send(t(1), [msg("b")], true).expect("send");
        drain(&mut s);
        s.close();
        assert_eq!(s.state(), State::Closing);
        assert_eq!(s.send(t(1), [msg("c")], true), Err(SendError::Closed));
        assert!(drain(&mut s).is_empty());
        // pings are not answered while closing (`_sendPacket` returns early)
        poll_response(&mut s, t(2), id, Bytes::from_static(b"2"));
        assert!(posts(&drain(&mut s)).is_empty());
        post_response(&mut s, t(3), id);
        assert_eq!(posts(&drain(&mut s)), ["4b"]);
        post_response(&mut s, t(4), id);
        let out = drain(&mut s);
        assert_eq!(posts(&out), ["1"]);
        assert_eq!(
            events(&out),
            [Event::Close {
                reason: CloseReason::ForcedClose,
                description: None
            }]
        );
    }

    #[test]
    fn close_before_the_handshake() {
        let mut s = Session::new(Config::default());
        s.open();
        let Some(Output::Io(Io::Get { transport, .. })) = s.poll_output() else {
            panic!()
        };
        s.close();
        let out = drain(&mut s);
        assert_eq!(out[0], Output::Io(Io::Close { transport }));
        assert!(posts(&out).is_empty());
        assert_eq!(s.state(), State::Closed);
    }

    /// Opens polling with an upgrade offer; returns (polling id, probe id) with the probe's
    /// `2probe` already checked.
    fn start_upgrade(s: &mut Session) -> (TransportId, TransportId) {
        let poll = open_polling(s, OPEN);
        let out = drain(s);
        let probe = out
            .iter()
            .find_map(|o| match o {
                Output::Io(Io::WsOpen { transport, query }) => {
                    assert_eq!(
                        query,
                        &q(&[("EIO", "4"), ("transport", "websocket"), ("sid", "s1")])
                    );
                    Some(*transport)
                }
                _ => None,
            })
            .expect("probe opened");
        ws_open(s, t(1), probe);
        assert_eq!(ws_sent(&drain(s)), [text("2probe")]);
        (poll, probe)
    }

    #[test]
    fn upgrade_waits_for_the_get_and_the_post() {
        let mut s = Session::new(Config::default());
        let (poll, probe) = start_upgrade(&mut s);
        s.send(t(2), [msg("a")], true).expect("send"); // POST in flight
        assert_eq!(posts(&drain(&mut s)), ["4a"]);
        ws_frame(&mut s, t(3), probe, text("3probe"));
        assert!(s.is_upgrading());
        s.send(t(3), [msg("b")], true).expect("send"); // waits for the switch
        assert!(drain(&mut s).is_empty());
        // the pending GET is answered with a noop: no new GET, still waiting for the POST
        poll_response(&mut s, t(4), poll, Bytes::from_static(b"6"));
        assert!(drain(&mut s).is_empty());
        post_response(&mut s, t(5), poll);
        let out = drain(&mut s);
        assert_eq!(
            out,
            [
                Output::Io(Io::Close { transport: poll }),
                Output::Io(Io::WsSend {
                    transport: probe,
                    frame: text("5"),
                    compress: false
                }),
                Output::Event(Event::Upgrade(Transport::WebSocket)),
                Output::Io(Io::WsSend {
                    transport: probe,
                    frame: text("4b"),
                    compress: true
                }),
            ]
        );
        assert_eq!(s.transport(), Some(Transport::WebSocket));
        assert!(!s.is_upgrading());
        // from now on frames go over the WebSocket at once, pings too
        ws_frame(&mut s, t(6), probe, text("2"));
        let out = drain(&mut s);
        assert_eq!(ws_sent(&out), [text("3")]);
        assert_eq!(events(&out), [Event::Ping]);
        s.send(
            t(7),
            [msg("c"), Frame::Binary(Bytes::from_static(&[9]))],
            false,
        )
        .expect("send");
        assert_eq!(
            ws_sent(&drain(&mut s)),
            [text("4c"), Frame::Binary(Bytes::from_static(&[9]))]
        );
        // input for the old polling transport is ignored
        poll_response(&mut s, t(8), poll, Bytes::from_static(b"4late"));
        assert!(drain(&mut s).is_empty());
        // a WebSocket close is a transport close, without a close packet
        ws_closed(&mut s, t(9), probe);
        let out = drain(&mut s);
        assert_eq!(
            events(&out),
            [Event::Close {
                reason: CloseReason::TransportClose,
                description: None
            }]
        );
    }

    #[test]
    fn failed_probe_keeps_polling() {
        let mut s = Session::new(Config::default());
        let (poll, probe) = start_upgrade(&mut s);
        ws_frame(&mut s, t(2), probe, text("3nope"));
        let out = drain(&mut s);
        assert_eq!(
            out,
            [
                Output::Io(Io::Close { transport: probe }),
                Output::Event(Event::UpgradeError("probe error".into()))
            ]
        );
        assert_eq!(s.transport(), Some(Transport::Polling));
        s.send(t(3), [msg("a")], true).expect("send");
        assert_eq!(posts(&drain(&mut s)), ["4a"]);
        poll_response(&mut s, t(4), poll, Bytes::from_static(b"4x"));
        assert_eq!(gets(&drain(&mut s)), 1);
    }

    #[test]
    fn probe_failing_while_pausing_resumes_polling() {
        let mut s = Session::new(Config::default());
        let (poll, probe) = start_upgrade(&mut s);
        ws_frame(&mut s, t(2), probe, text("3probe"));
        s.send(t(2), [msg("held")], true).expect("send");
        assert!(drain(&mut s).is_empty());
        transport_error(&mut s, t(3), probe, "websocket error");
        let out = drain(&mut s);
        assert_eq!(
            events(&out),
            [Event::UpgradeError("probe error: websocket error".into())]
        );
        assert!(!s.is_upgrading());
        assert_eq!(posts(&out), ["4held"]);
        // the GET was still in flight, so no second one
        assert_eq!(gets(&out), 0);
        poll_response(&mut s, t(4), poll, Bytes::from_static(b"6"));
        assert_eq!(gets(&drain(&mut s)), 1);
    }

    #[test]
    fn probe_closed_before_answering() {
        let mut s = Session::new(Config::default());
        let (_poll, probe) = start_upgrade(&mut s);
        ws_closed(&mut s, t(2), probe);
        assert_eq!(
            events(&drain(&mut s)),
            [Event::UpgradeError("probe error: transport closed".into())]
        );
    }

    #[test]
    fn no_probe_without_upgrade_or_websocket() {
        let mut s = Session::new(Config {
            upgrade: false,
            ..Config::default()
        });
        open_polling(&mut s, OPEN);
        assert!(!drain(&mut s)
            .iter()
            .any(|o| matches!(o, Output::Io(Io::WsOpen { .. }))));
        let mut s = Session::new(Config {
            transports: vec![Transport::Polling],
            ..Config::default()
        });
        open_polling(&mut s, OPEN);
        assert!(!drain(&mut s)
            .iter()
            .any(|o| matches!(o, Output::Io(Io::WsOpen { .. }))));
    }

    #[test]
    fn close_during_upgrade_waits_for_it() {
        let mut s = Session::new(Config::default());
        let (poll, probe) = start_upgrade(&mut s);
        ws_frame(&mut s, t(2), probe, text("3probe"));
        s.close();
        assert_eq!(s.state(), State::Closing);
        assert!(drain(&mut s).is_empty());
        poll_response(&mut s, t(3), poll, Bytes::from_static(b"6"));
        let out = drain(&mut s);
        assert!(events(&out).contains(&Event::Upgrade(Transport::WebSocket)));
        assert_eq!(
            events(&out).last(),
            Some(&Event::Close {
                reason: CloseReason::ForcedClose,
                description: None
            })
        );
        assert_eq!(
            out.last(),
            Some(&Output::Event(Event::Close {
                reason: CloseReason::ForcedClose,
                description: None
            }))
        );
        assert!(out.contains(&Output::Io(Io::Close { transport: probe })));
    }

    #[test]
    fn websocket_first() {
        let mut s = Session::new(Config {
            transports: vec![Transport::WebSocket],
            ..Config::default()
        });
        s.open();
        let Some(Output::Io(Io::WsOpen { transport, query })) = s.poll_output() else {
            panic!()
        };
        assert_eq!(query, q(&[("EIO", "4"), ("transport", "websocket")]));
        // frames sent before the socket opens wait for it
        s.send(t(0), [msg("early")], true).expect("send");
        assert!(drain(&mut s).is_empty());
        ws_open(&mut s, t(1), transport);
        assert_eq!(ws_sent(&drain(&mut s)), [text("4early")]);
        ws_frame(&mut s, t(2), transport, text(OPEN_NO_UPGRADE));
        let ev = events(&drain(&mut s));
        assert!(matches!(ev.as_slice(), [Event::Open(_)]));
        assert_eq!(s.transport(), Some(Transport::WebSocket));
        ws_frame(
            &mut s,
            t(3),
            transport,
            Frame::Binary(Bytes::from_static(&[1])),
        );
        assert_eq!(
            events(&drain(&mut s)),
            [Event::Binary(Bytes::from_static(&[1]))]
        );
        // closing over WebSocket sends no close packet
        s.close();
        let out = drain(&mut s);
        assert!(ws_sent(&out).is_empty());
        assert_eq!(out[0], Output::Io(Io::Close { transport }));
    }

    #[test]
    fn remember_upgrade_opens_with_websocket_next_time() {
        let mut s = Session::new(Config {
            remember_upgrade: true,
            ..Config::default()
        });
        let (poll, probe) = start_upgrade(&mut s);
        ws_frame(&mut s, t(2), probe, text("3probe"));
        poll_response(&mut s, t(3), poll, Bytes::from_static(b"6"));
        drain(&mut s);
        s.abort();
        drain(&mut s);
        s.open();
        assert!(matches!(
            s.poll_output(),
            Some(Output::Io(Io::WsOpen { .. }))
        ));
    }

    #[test]
    fn no_transports() {
        let mut s = Session::new(Config {
            transports: vec![],
            ..Config::default()
        });
        s.open();
        assert!(matches!(
            events(&drain(&mut s)).as_slice(),
            [Event::Close {
                reason: CloseReason::TransportError,
                ..
            }]
        ));
    }

    #[test]
    fn try_all_transports_opens_the_next_one_after_a_failure() {
        let mut s = Session::new(Config {
            transports: vec![Transport::WebSocket, Transport::Polling],
            try_all_transports: true,
            ..Config::default()
        });
        s.open();
        let Some(Output::Io(Io::WsOpen { transport, .. })) = s.poll_output() else {
            panic!("WebSocket first")
        };
        transport_error(&mut s, t(0), transport, "websocket error");
        let out = drain(&mut s);
        assert!(events(&out).is_empty(), "no close: {out:?}");
        assert_eq!(out[0], Output::Io(Io::Close { transport }));
        let Some(Output::Io(Io::Get {
            transport: get,
            query,
        })) = out.get(1).cloned()
        else {
            panic!("then polling: {out:?}")
        };
        assert_eq!(
            query,
            q(&[
                ("EIO", "4"),
                ("transport", "polling"),
                ("t", &cache_buster(0, 1))
            ])
        );
        // The last one failing too closes the session, as without the option.
        transport_error(&mut s, t(1), get, "xhr poll error");
        assert!(matches!(
            events(&drain(&mut s)).as_slice(),
            [Event::Close {
                reason: CloseReason::TransportError,
                ..
            }]
        ));
        // A new session starts again from the first transport.
        s.open();
        assert!(matches!(
            s.poll_output(),
            Some(Output::Io(Io::WsOpen { .. }))
        ));
        // Without the option the first failure closes.
        let mut s = Session::new(Config {
            transports: vec![Transport::WebSocket, Transport::Polling],
            ..Config::default()
        });
        s.open();
        let Some(Output::Io(Io::WsOpen { transport, .. })) = s.poll_output() else {
            panic!()
        };
        transport_error(&mut s, t(0), transport, "websocket error");
        assert!(matches!(
            events(&drain(&mut s)).as_slice(),
            [Event::Close { .. }]
        ));
    }

    #[test]
    fn force_base64_asks_for_text_and_sends_binary_as_text() {
        let mut s = Session::new(Config {
            transports: vec![Transport::WebSocket],
            force_base64: true,
            ..Config::default()
        });
        s.open();
        let Some(Output::Io(Io::WsOpen { transport, query })) = s.poll_output() else {
            panic!()
        };
        assert_eq!(
            query,
            q(&[("EIO", "4"), ("transport", "websocket"), ("b64", "1")])
        );
        ws_open(&mut s, t(1), transport);
        ws_frame(&mut s, t(2), transport, text(OPEN_NO_UPGRADE));
        drain(&mut s);
        s.send(t(3), [Frame::Binary(Bytes::from_static(&[1, 2, 3]))], true)
            .expect("send");
        assert_eq!(ws_sent(&drain(&mut s)), [text("bAQID")]);
        // base64 binary from the server reads as binary
        ws_frame(&mut s, t(4), transport, text("bAQID"));
        assert_eq!(
            events(&drain(&mut s)),
            [Event::Binary(Bytes::from_static(&[1, 2, 3]))]
        );
    }

    /// Every request's query, in order, for a session opened over polling that upgrades.
    fn stamps_of(config: Config) -> Vec<(Transport, Option<String>)> {
        let mut s = Session::new(config);
        s.open();
        let first = drain(&mut s);
        let [Output::Io(Io::Get { transport, .. })] = first.as_slice() else {
            panic!("{first:?}")
        };
        poll_response(&mut s, t(0), *transport, Bytes::from(OPEN));
        let mut seen = Vec::new();
        for out in first.iter().chain(drain(&mut s).iter()) {
            let (kind, query) = match out {
                Output::Io(Io::Get { query, .. } | Io::Post { query, .. }) => {
                    (Transport::Polling, query)
                }
                Output::Io(Io::WsOpen { query, .. }) => (Transport::WebSocket, query),
                _ => continue,
            };
            let stamp = query.iter().find(|(k, _)| k == "t" || k == "ts");
            seen.push((kind, stamp.map(|(k, v)| format!("{k}={v}"))));
        }
        seen
    }

    #[test]
    fn cache_busters_follow_timestamp_requests() {
        // By default polling requests are stamped, each with its own value, WebSocket ones not.
        let seen = stamps_of(Config::default());
        let polls: Vec<_> = seen
            .iter()
            .filter(|(k, _)| *k == Transport::Polling)
            .collect();
        assert!(polls.len() >= 2, "{seen:?}");
        assert!(polls.iter().all(|(_, v)| v.is_some()));
        assert_ne!(polls[0].1, polls[1].1);
        assert!(seen.contains(&(Transport::WebSocket, None)), "{seen:?}");
        // `timestampRequests: true` stamps the WebSocket too, under `timestampParam`.
        let seen = stamps_of(Config {
            timestamp_requests: Some(true),
            timestamp_param: "ts".into(),
            ..Config::default()
        });
        assert!(seen
            .iter()
            .all(|(_, v)| v.as_deref().is_some_and(|v| v.starts_with("ts="))));
        assert!(seen.iter().any(|(k, _)| *k == Transport::WebSocket));
        // `false`: nothing is stamped.
        let seen = stamps_of(Config {
            timestamp_requests: Some(false),
            ..Config::default()
        });
        assert!(seen.iter().all(|(_, v)| v.is_none()), "{seen:?}");
        // Another seed, another prefix: a new page does not meet a cached answer.
        assert_ne!(cache_buster(1, 1), cache_buster(2, 1));
        assert_ne!(cache_buster(1, 1), cache_buster(1, 2));
    }
}
