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
//! s.handle_input(t, Input::PollResponse { transport, body: open.into() });
//! assert_eq!(s.poll_output(), Some(Output::Event(Event::Open)));
//! assert_eq!(s.handshake().map(|h| h.sid.as_str()), Some("abc"));
//! // the next long-poll carries the sid
//! let Some(Output::Io(Io::Get { query, .. })) = s.poll_output() else { panic!() };
//! assert!(query.contains(&("sid".to_string(), "abc".to_string())));
//! // no ping within pingInterval + pingTimeout closes the session
//! assert_eq!(s.poll_timeout(), Some(Instant::from_millis(45_000)));
//! ```

// This file: the public types, the `Session` with its commands, the input dispatch, the
// handshake, the heartbeat and the closes. The rest of the machine, by the state it owns:
mod polling; // the long-polling cycle (GET and POST in flight)
mod query; // request query parameters and the cache buster
mod upgrade; // the WebSocket probe and the switch
mod write; // the write buffer and its flush to the transport

use std::fmt;
use std::time::Duration;

use bytes::Bytes;

use self::polling::PollState;
use self::upgrade::Probe;
use self::write::Queued;
use super::handshake::OpenPacket;
use super::packet::{Frame, Packet, Protocol};
pub use super::server::Transport;
use crate::fifo::Fifo;
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
        /// The body, as text: a driver that has it as bytes checks them once with
        /// [`Input::poll_response`]; the browser's strings are UTF-8 already, so its module
        /// carries no UTF-8 check.
        body: Str,
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

impl Input {
    /// The input for a GET of polling `transport` answered with `body`: [`Input::PollResponse`]
    /// when `body` is UTF-8, otherwise [`Input::TransportError`] (`parser error: invalid UTF-8
    /// text`, which fails the session as any undecodable payload does).
    pub fn poll_response(transport: TransportId, body: Bytes) -> Input {
        match Str::from_utf8(body) {
            Ok(body) => Input::PollResponse { transport, body },
            Err(_) => Input::TransportError {
                transport,
                description: super::error::DecodeError::InvalidUtf8.as_str().to_owned(),
            },
        }
    }
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
        /// A v4 polling payload (text: send its bytes, `Str::as_bytes`, or the string itself).
        body: Str,
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
#[non_exhaustive]
pub enum Event {
    /// A packet of the session arrived, before the session acts on it (engine.io-client's
    /// `packet`): each packet of a polling response, each WebSocket frame of the session's
    /// transport. The upgrade probe's answer is not one. Only after
    /// [`Session::report_packets`].
    #[cfg(feature = "engine-events")]
    Packet(Packet),
    /// The session handed a packet of its write buffer to its transport (engine.io-client's
    /// `packetCreate`): messages and pongs, not the probe, the `upgrade` packet or the `close`
    /// POSTed when closing. Only after [`Session::report_packets`].
    #[cfg(feature = "engine-events")]
    PacketCreate(Packet),
    /// The handshake arrived: the session is open. The handshake is [`Session::handshake`].
    Open,
    /// A text message from the server.
    Message(Str),
    /// A binary message from the server.
    Binary(Bytes),
    /// The server pinged (the pong is already queued).
    Ping,
    /// The probe was answered (`3probe`): the session pauses its transport to switch to this
    /// one (engine.io-client's `upgrading`). [`Event::Upgrade`] or [`Event::UpgradeError`]
    /// follows.
    Upgrading(Transport),
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

fn transport_from_name(name: &str) -> Option<Transport> {
    match name {
        "polling" => Some(Transport::Polling),
        "websocket" => Some(Transport::WebSocket),
        _ => None,
    }
}

const PONG: Str = Str::from_static("3");
const CLOSE_PAYLOAD: Str = Str::from_static("1");

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
    /// Oldest first; a POST answered takes its frames off the front in one move (a `Vec`: no
    /// `VecDeque` code in the browser build).
    write_buffer: Vec<Queued>,
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
    outputs: Fifo<Output>,
    /// Whether [`Event::Packet`] and [`Event::PacketCreate`] are reported.
    #[cfg(feature = "engine-events")]
    report_packets: bool,
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
            write_buffer: Vec::new(),
            buffered_bytes: 0,
            in_flight: 0,
            stamps: 0,
            upgrading: false,
            prior_websocket_success: false,
            #[cfg(feature = "engine-events")]
            report_packets: false,
            opening_index: 0,
            outputs: Fifo::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Replaces the query parameters of [`Config::query`]: the transports add them to their
    /// URLs from their next request on. (The Socket.IO manager changes them between sessions
    /// only, as engine.io-client copies its `query` when a session starts.)
    pub fn set_query(&mut self, query: Query) {
        self.config.query = query;
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
        self.send_list(now, frames.into_iter().collect(), compress)
    }

    /// [`send`](Self::send) with the frames in a `Vec` (one copy of the code for every caller).
    pub(crate) fn send_list(
        &mut self,
        now: Instant,
        frames: Vec<Frame>,
        compress: bool,
    ) -> Result<(), SendError> {
        if !matches!(self.state, State::Opening | State::Open) || self.has_ping_expired(now) {
            return Err(SendError::Closed);
        }
        self.enqueue(frames, compress, true)
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

    /// Asks for [`Event::Packet`] and [`Event::PacketCreate`] from now on (engine.io-client's
    /// `packet` and `packetCreate`), or stops them. Off by default: a session nobody listens to
    /// copies no packet.
    #[cfg(feature = "engine-events")]
    pub fn report_packets(&mut self, on: bool) {
        self.report_packets = on;
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

    fn on_ws_open(&mut self, transport: TransportId) {
        if self.probe.as_ref().is_some_and(|p| p.id == transport) {
            self.on_probe_open();
            return;
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
        let packet = Packet::decode(frame, Protocol::V4);
        if let Ok(packet) = &packet {
            self.report_received(packet);
        }
        match packet {
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
        self.outputs.pop()
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
        self.outputs.push(Output::Io(io));
    }

    fn event(&mut self, event: Event) {
        self.outputs.push(Output::Event(event));
    }

    /// [`Event::Packet`] for a packet received on the session's transport, if asked for.
    pub(super) fn report_received(&mut self, packet: &Packet) {
        #[cfg(feature = "engine-events")]
        if self.report_packets {
            self.event(Event::Packet(packet.clone()));
        }
        #[cfg(not(feature = "engine-events"))]
        let _ = packet;
    }

    /// [`Event::PacketCreate`] for a frame of the write buffer handed to the transport, if
    /// asked for.
    #[cfg(feature = "engine-events")]
    pub(super) fn report_created(&mut self, frame: &Frame) {
        if self.report_packets {
            if let Ok(packet) = Packet::decode(frame.clone(), Protocol::V4) {
                self.event(Event::PacketCreate(packet));
            }
        }
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
                    self.write_buffer.push(Queued {
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
        self.upgrades.clear();
        for name in &open.upgrades {
            match transport_from_name(name) {
                Some(t) if self.config.transports.contains(&t) && Some(t) != current => {
                    self.upgrades.push(t)
                }
                _ => {}
            }
        }
        // (Kept by the session alone: `Event::Open` carries no copy.)
        self.handshake = Some(open);
        self.prior_websocket_success = current == Some(Transport::WebSocket);
        let was_opening = self.state == State::Opening;
        if was_opening {
            self.state = State::Open;
            self.event(Event::Open);
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
