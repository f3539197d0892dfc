//! The client side of Socket.IO, as `socket.io-client` 4.8 runs it: a [`Manager`] owning one
//! Engine.IO [`Session`](eio::Session), multiplexing namespace sockets over it, with the CONNECT
//! handshake (auth asked again on every reconnection), emits with per-socket ack ids, ack
//! timeouts, the offline send buffer, the reliable delivery queue (`retries`), reconnection with
//! the reference's backoff, and connection state recovery.
//!
//! The driver performs [`Output::Io`] actions exactly as for a bare [`eio::Session`] (see the
//! [engine client](crate::engine::client) docs) and reports the same [`Input`] to
//! [`Manager::handle_input`]; the application sees [`Output::Event`]s and calls
//! the commands ([`Manager::open_socket`], [`Manager::emit`], [`Manager::ack`], ...). Nothing
//! here runs a callback: an async auth function of the wrapper is asked for with
//! [`Event::AuthNeeded`] and answers with [`Manager::provide_auth`].
//!
//! ```
//! use ferrio_proto::engine::client::{Config as EngineConfig, Input, Io, Transport};
//! use ferrio_proto::engine::Frame;
//! use ferrio_proto::socket::client::{EmitOptions, Event, Manager, ManagerConfig, Output, SocketOptions};
//! use ferrio_proto::socket::Packet;
//! use ferrio_proto::Instant;
//!
//! let t = Instant::from_millis(0);
//! let engine = EngineConfig { transports: vec![Transport::WebSocket], ..EngineConfig::default() };
//! let mut m = Manager::new(ManagerConfig { engine, ..ManagerConfig::default() });
//! let socket = m.open_socket(t, "/", SocketOptions::default()).unwrap();
//! let Some(Output::Io(Io::WsOpen { transport: ws, .. })) = m.poll_output() else { panic!() };
//! m.handle_input(t, Input::WsOpen { transport: ws });
//! let open = r#"0{"sid":"e","upgrades":[],"pingInterval":25000,"pingTimeout":20000}"#;
//! m.handle_input(t, Input::WsFrame { transport: ws, frame: Frame::Text(open.into()) });
//! assert_eq!(m.poll_output(), Some(Output::Event(Event::Open)));
//! // the CONNECT for "/"
//! assert_eq!(m.poll_output(), Some(Output::Io(Io::WsSend { transport: ws, frame: Frame::Text("40".into()), compress: true })));
//! m.handle_input(t, Input::WsFrame { transport: ws, frame: Frame::Text(r#"40{"sid":"s"}"#.into()) });
//! assert_eq!(m.poll_output(), Some(Output::Event(Event::Connect { socket, sid: "s".into(), recovered: false })));
//! let ack = m.emit(t, socket, Packet::event_with("/", "hello", &("world",)).unwrap(), EmitOptions::with_ack()).unwrap();
//! assert!(ack.is_some());
//! let Some(Output::Io(Io::WsSend { frame, .. })) = m.poll_output() else { panic!() };
//! assert_eq!(frame, Frame::Text(r#"420["hello","world"]"#.into()));
//! ```
//!
//! Deliberate differences from `socket.io-client` 4.8:
//! - every ack asked for ends in exactly one [`Event::Ack`] or [`Event::AckError`]: on
//!   disconnection an ack without timeout fails too (the reference silently drops plain
//!   callbacks), except while its packet waits in the send buffer (it goes out after the next
//!   CONNECT accept; if the socket never connects again it stays pending);
//! - an Engine.IO session that closes before opening fails the attempt at once (the reference
//!   waits for its connect timeout);
//! - [`Manager::connect_socket`] on a socket still waiting for its accept does not send a second
//!   CONNECT; [`Manager::set_reconnection`]`(false)` cancels a pending attempt; a manager with
//!   nothing open reports no second `close`;
//! - a CONNECT_ERROR carrying a bare string (protocol v4 servers) gives that string as message;
//! - a socket disconnected while its CONNECT is on the way leaves the namespace again when the
//!   accept arrives (the reference drops the accept and leaves a socket joined on the server);
//! - events received between a CONNECT and its accept are dropped if the connection closes
//!   first (the reference keeps them and delivers them on the next session, twice after a
//!   recovery that replays them);
//! - the buffers below are bounded.
//!
//! Buffers and their bounds:
//!
//! | Buffer | Bound | At the bound |
//! |---|---|---|
//! | offline send buffer (emits while not connected) | [`ManagerConfig::max_send_buffer`] packets per socket (the reference: none) | [`Manager::emit`] returns [`ClientError::SendBufferFull`]; nothing is queued |
//! | reliable delivery queue (`retries`) | the same number of packets per socket (the reference: none) | same |
//! | engine write buffer (connected emits not yet written) | [`eio::Config::max_buffered_bytes`] | [`ClientError::WriteBufferFull`] |
//! | receive buffer (events before the CONNECT accept) | [`ManagerConfig::max_receive_buffer`] packets (the reference: none) | the connection is closed with `parse error`, as for any packet the client cannot take |
//! | pending acks | one per emit asking for one; the application bounds it by its emits, as in the reference | - |
//! | output queue | what one call produced, if drained after every call | - |

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use super::backoff::{Backoff, SplitMix64};
use super::decode::{Decoder, DEFAULT_MAX_ATTACHMENTS};
use super::json::RawJson;
use super::packet::{EncodedPacket, Packet, PacketType};
pub use crate::engine::client::Input;
use crate::engine::client::{self as eio, CloseReason, Io, SendError};
use crate::{scan, Instant, Str};

/// Names a socket (one namespace) of a [`Manager`]. Sockets are never removed: a namespace keeps
/// its id across disconnections and reconnections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(u32);

impl SocketId {
    /// The id as an index (sockets are numbered from 0 in creation order).
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The id of the socket numbered `index`, for a driver that hands ids to another language
    /// as numbers. A command naming a socket the manager never opened is refused with
    /// [`ClientError::UnknownSocket`].
    pub fn from_index(index: u32) -> SocketId {
        SocketId(index)
    }
}

/// Names an emit waiting for its acknowledgement. Unique per socket; unrelated to the ack id on
/// the wire (an emit retried by the delivery queue is sent with a new wire id each time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AckId(u64);

impl AckId {
    /// The handle as a number.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

/// The auth payload of a socket's CONNECT (`auth` option).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// The same payload on every connection: a JSON object, or nothing (`40`).
    Static(Option<RawJson>),
    /// Asked for on every connection with [`Event::AuthNeeded`], answered with
    /// [`Manager::provide_auth`] (the reference's `auth: (cb) => ...`).
    Callback,
}

impl Default for Auth {
    fn default() -> Self {
        Auth::Static(None)
    }
}

/// Per-socket settings (`SocketOptions`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SocketOptions {
    /// The CONNECT payload (`auth`).
    pub auth: Auth,
    /// Reliable delivery: when above 0, every non-volatile emit goes through a queue, one in
    /// flight at a time, re-sent until acknowledged or tried more than `retries` times
    /// (`retries`, 0). Loss is detected through ack timeouts, so set `ack_timeout` too.
    pub retries: u32,
    /// Default ack timeout of this socket's emits (`ackTimeout`, none).
    pub ack_timeout: Option<Duration>,
}

/// Manager settings, with `socket.io-client`'s defaults.
///
/// As in the reference, a zero `reconnection_delay` or `reconnection_delay_max` means the
/// default, and `reconnection_attempts: Some(0)` means unlimited (`opts.x || default`).
#[derive(Debug, Clone, PartialEq)]
pub struct ManagerConfig {
    /// The Engine.IO session settings (transports, upgrade, query).
    pub engine: eio::Config,
    /// Whether to reconnect after the connection is lost (`reconnection`, true).
    pub reconnection: bool,
    /// Attempts before giving up with [`Event::ReconnectFailed`] (`reconnectionAttempts`;
    /// `None`: unlimited).
    pub reconnection_attempts: Option<u32>,
    /// First delay between attempts (`reconnectionDelay`, 1 s).
    pub reconnection_delay: Duration,
    /// Largest delay between attempts (`reconnectionDelayMax`, 5 s).
    pub reconnection_delay_max: Duration,
    /// Jitter of the delays, in `(0, 1]`; anything else disables it (`randomizationFactor`, 0.5).
    pub randomization_factor: f64,
    /// Time the Engine.IO session has to open before the attempt fails with `timeout`
    /// (`timeout`, 20 s; `None`: no limit).
    pub timeout: Option<Duration>,
    /// Seed of the [`SplitMix64`] generator drawing the backoff jitter (the core has no
    /// randomness: drivers pass a random seed, tests a fixed one).
    pub seed: u64,
    /// Most packets a socket buffers while not connected, and most packets in its delivery queue.
    /// Default 1024.
    pub max_send_buffer: usize,
    /// Most events a socket holds between its CONNECT and the server's accept (the replay of a
    /// recovered session arrives there). Default 10 000.
    pub max_receive_buffer: usize,
    /// Most binary attachments accepted per packet (`maxAttachments`, 10).
    pub max_attachments: usize,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            engine: eio::Config::default(),
            reconnection: true,
            reconnection_attempts: None,
            reconnection_delay: Duration::from_millis(1000),
            reconnection_delay_max: Duration::from_millis(5000),
            randomization_factor: 0.5,
            timeout: Some(Duration::from_millis(20_000)),
            seed: 0,
            max_send_buffer: 1024,
            max_receive_buffer: 10_000,
            max_attachments: DEFAULT_MAX_ATTACHMENTS,
        }
    }
}

/// Flags of one emit (the reference's `timeout()`, `volatile`, `compress()` and ack callback).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmitOptions {
    /// Ask the server for an acknowledgement: [`Manager::emit`] returns an [`AckId`], answered
    /// once by [`Event::Ack`] or [`Event::AckError`].
    pub ack: bool,
    /// Ack timeout of this emit; `None` uses the socket's [`SocketOptions::ack_timeout`].
    pub timeout: Option<Duration>,
    /// Drop the packet if the transport cannot take it right now (`volatile`).
    pub volatile: bool,
    /// Allow per-message compression (`compress`, true).
    pub compress: bool,
}

impl Default for EmitOptions {
    fn default() -> Self {
        EmitOptions {
            ack: false,
            timeout: None,
            volatile: false,
            compress: true,
        }
    }
}

impl EmitOptions {
    /// The defaults, asking for an acknowledgement.
    pub fn with_ack() -> EmitOptions {
        EmitOptions {
            ack: true,
            ..EmitOptions::default()
        }
    }

    /// The defaults, asking for an acknowledgement within `timeout`.
    pub fn with_ack_timeout(timeout: Duration) -> EmitOptions {
        EmitOptions {
            ack: true,
            timeout: Some(timeout),
            ..EmitOptions::default()
        }
    }
}

/// Why a socket disconnected or the manager closed, as `socket.io-client` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisconnectReason {
    /// The server sent DISCONNECT (`io server disconnect`); the socket does not reconnect.
    IoServerDisconnect,
    /// [`Manager::disconnect`] (`io client disconnect`).
    IoClientDisconnect,
    /// The server stopped pinging (`ping timeout`).
    PingTimeout,
    /// The transport closed (`transport close`).
    TransportClose,
    /// The transport failed (`transport error`).
    TransportError,
    /// A packet from the server did not decode (`parse error`).
    ParseError,
    /// The manager closed itself, its last socket being gone (`forced close`; only in
    /// [`Event::Close`]).
    ForcedClose,
}

impl DisconnectReason {
    /// The reason as `socket.io-client` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::IoServerDisconnect => "io server disconnect",
            DisconnectReason::IoClientDisconnect => "io client disconnect",
            DisconnectReason::PingTimeout => "ping timeout",
            DisconnectReason::TransportClose => "transport close",
            DisconnectReason::TransportError => "transport error",
            DisconnectReason::ParseError => "parse error",
            DisconnectReason::ForcedClose => "forced close",
        }
    }

    fn from_engine(reason: CloseReason) -> DisconnectReason {
        match reason {
            CloseReason::TransportClose => DisconnectReason::TransportClose,
            CloseReason::TransportError => DisconnectReason::TransportError,
            CloseReason::PingTimeout => DisconnectReason::PingTimeout,
            CloseReason::ForcedClose => DisconnectReason::ForcedClose,
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub use super::error::AckError;

/// The manager's connection state (`_readyState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadyState {
    /// No Engine.IO session (maybe waiting to reconnect).
    Closed,
    /// The Engine.IO session is opening.
    Opening,
    /// The Engine.IO session is open.
    Open,
}

/// Something for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The Engine.IO session opened (manager `open`).
    Open,
    /// Opening the Engine.IO session failed (manager `error`).
    Error {
        /// The cause (`timeout`, or the transport's error).
        message: String,
    },
    /// The server pinged (manager `ping`).
    Ping,
    /// The connection closed (manager `close`). Sockets get their own [`Event::Disconnect`].
    Close {
        /// Why.
        reason: DisconnectReason,
        /// Details from the transport or the decoder.
        description: Option<String>,
    },
    /// A reconnection attempt starts (`reconnect_attempt`; 1 for the first).
    ReconnectAttempt(u32),
    /// A reconnection attempt succeeded (`reconnect`).
    Reconnect(u32),
    /// A reconnection attempt failed (`reconnect_error`); the next one is scheduled.
    ReconnectError {
        /// The cause.
        message: String,
    },
    /// No attempts left (`reconnect_failed`).
    ReconnectFailed,
    /// A socket with [`Auth::Callback`] needs its auth payload for the CONNECT about to be sent:
    /// answer with [`Manager::provide_auth`].
    AuthNeeded {
        /// The socket.
        socket: SocketId,
    },
    /// The server accepted the socket (`connect`). Events the server sent before its accept
    /// (a recovered session's missed events) come just before this.
    Connect {
        /// The socket.
        socket: SocketId,
        /// The socket's id from the server (`socket.id`).
        sid: Str,
        /// The server recovered the previous session (`socket.recovered`): its rooms and the
        /// events missed meanwhile came back.
        recovered: bool,
    },
    /// The socket could not connect (`connect_error`).
    ConnectError {
        /// The socket.
        socket: SocketId,
        /// The error message.
        message: String,
        /// The `data` the server's middleware attached, if any.
        data: Option<RawJson>,
        /// True when the socket stays active and connects again by itself when the manager
        /// reconnects (the Engine.IO session failed to open, and reconnection goes on); false
        /// when it will not: the server refused it (CONNECT_ERROR; the socket is inactive, see
        /// [`Manager::connect_socket`]), or the manager gave up.
        retrying: bool,
    },
    /// The socket disconnected (`disconnect`). Acks waiting on it failed just after (unless
    /// their packet is still buffered).
    Disconnect {
        /// The socket.
        socket: SocketId,
        /// Why.
        reason: DisconnectReason,
        /// Details from the transport or the decoder.
        description: Option<String>,
    },
    /// An event from the server. If `packet.id()` is set the server wants an answer: send it
    /// with [`Manager::ack`] (once).
    Event {
        /// The socket.
        socket: SocketId,
        /// The EVENT or BINARY_EVENT.
        packet: Packet,
    },
    /// The server acknowledged an emit.
    Ack {
        /// The socket.
        socket: SocketId,
        /// The handle [`Manager::emit`] returned.
        ack: AckId,
        /// The ACK or BINARY_ACK (its `args()` are the answer).
        packet: Packet,
    },
    /// An acknowledgement will not come.
    AckError {
        /// The socket.
        socket: SocketId,
        /// The handle [`Manager::emit`] returned.
        ack: AckId,
        /// Why.
        error: AckError,
    },
}

/// What the driver or the application must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A transport action for the driver, see [`eio::Io`].
    Io(Io),
    /// Something for the application.
    Event(Event),
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientError {
    /// No socket with this id.
    UnknownSocket,
    /// An auth payload that is not a JSON object.
    InvalidAuth,
    /// [`Manager::emit`] takes EVENT or BINARY_EVENT packets with a valid, non-reserved name.
    InvalidEvent,
    /// [`Manager::ack`] takes ACK or BINARY_ACK packets with an id.
    InvalidAck,
    /// The socket's send buffer (or delivery queue) is full ([`ManagerConfig::max_send_buffer`]).
    SendBufferFull,
    /// The Engine.IO write buffer is full ([`eio::Config::max_buffered_bytes`]).
    WriteBufferFull,
    /// There is no open Engine.IO session to carry the packet (acks are not buffered).
    NotConnected,
}

impl ClientError {
    /// The message, as `Display` writes it.
    pub fn as_str(&self) -> &'static str {
        match self {
            ClientError::UnknownSocket => "unknown socket",
            ClientError::InvalidAuth => "auth must be a JSON object",
            ClientError::InvalidEvent => "not an event, or a reserved event name",
            ClientError::InvalidAck => "not an ack with an id",
            ClientError::SendBufferFull => "send buffer full",
            ClientError::WriteBufferFull => "write buffer full",
            ClientError::NotConnected => "not connected",
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for ClientError {}

const V2_SERVER: &str = "It seems you are trying to reach a Socket.IO server in v2.x with a v3.x client, but they are not compatible (more information here: https://socket.io/docs/v3/migrating-from-2-x-to-3-0/)";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AckTarget {
    /// The application's handle.
    User(AckId),
    /// The internal ack of a delivery-queue entry.
    Queue(u64),
}

#[derive(Debug, Clone)]
struct PendingAck {
    deadline: Option<Instant>,
    target: AckTarget,
}

#[derive(Debug, Clone)]
struct Buffered {
    id: Option<u64>,
    encoded: EncodedPacket,
    compress: bool,
}

#[derive(Debug, Clone)]
struct Queued {
    seq: u64,
    user: Option<AckId>,
    packet: Packet,
    try_count: u32,
    pending: bool,
    timeout: Option<Duration>,
    compress: bool,
}

#[derive(Debug, Clone)]
struct SocketState {
    nsp: Str,
    options: SocketOptions,
    /// Subscribed to the manager: connects whenever it opens.
    active: bool,
    connected: bool,
    sid: Option<Str>,
    pid: Option<Str>,
    last_offset: Option<String>,
    recovered: bool,
    awaiting_auth: bool,
    /// A CONNECT was sent on the current connection and neither its accept nor its refusal has
    /// arrived yet.
    connect_pending: bool,
    next_wire_id: u64,
    next_handle: u64,
    /// Pending acks by wire id, in id order (ids only grow, and answers mostly come in order:
    /// inserts append and removals are near the front).
    acks: VecDeque<(u64, PendingAck)>,
    send_buffer: VecDeque<Buffered>,
    receive_buffer: VecDeque<Packet>,
    queue: VecDeque<Queued>,
    queue_seq: u64,
}

impl SocketState {
    fn new(nsp: Str, options: SocketOptions) -> SocketState {
        SocketState {
            nsp,
            options,
            active: false,
            connected: false,
            sid: None,
            pid: None,
            last_offset: None,
            recovered: false,
            awaiting_auth: false,
            connect_pending: false,
            next_wire_id: 0,
            next_handle: 0,
            acks: VecDeque::new(),
            send_buffer: VecDeque::new(),
            receive_buffer: VecDeque::new(),
            queue: VecDeque::new(),
            queue_seq: 0,
        }
    }

    fn new_handle(&mut self) -> AckId {
        let h = AckId(self.next_handle);
        self.next_handle += 1;
        h
    }
}

/// The Socket.IO client manager. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Manager {
    config: ManagerConfig,
    engine: eio::Session,
    decoder: Decoder,
    ready: ReadyState,
    reconnecting: bool,
    skip_reconnect: bool,
    opening_for_reconnect: bool,
    connect_deadline: Option<Instant>,
    reconnect_deadline: Option<Instant>,
    backoff: Backoff,
    rng: SplitMix64,
    sockets: Vec<SocketState>,
    /// Ack deadlines, sorted (a plain sorted queue: deadlines are mostly added in order).
    ack_deadlines: VecDeque<(Instant, SocketId, u64)>,
    outputs: VecDeque<Output>,
}

impl Manager {
    /// A manager with no connection yet: [`Manager::open_socket`] (or [`Manager::connect`])
    /// opens it.
    pub fn new(mut config: ManagerConfig) -> Manager {
        if config.reconnection_delay.is_zero() {
            config.reconnection_delay = Duration::from_millis(1000);
        }
        if config.reconnection_delay_max.is_zero() {
            config.reconnection_delay_max = Duration::from_millis(5000);
        }
        if config.reconnection_attempts == Some(0) {
            config.reconnection_attempts = None;
        }
        Manager {
            engine: eio::Session::new(config.engine.clone()),
            decoder: Decoder::with_max_attachments(config.max_attachments),
            ready: ReadyState::Closed,
            reconnecting: false,
            skip_reconnect: false,
            opening_for_reconnect: false,
            connect_deadline: None,
            reconnect_deadline: None,
            backoff: Backoff::new(
                config.reconnection_delay,
                config.reconnection_delay_max,
                config.randomization_factor,
            ),
            rng: SplitMix64::new(config.seed),
            sockets: Vec::new(),
            ack_deadlines: VecDeque::new(),
            outputs: VecDeque::new(),
            config,
        }
    }

    /// The settings (normalised as described on [`ManagerConfig`]).
    pub fn config(&self) -> &ManagerConfig {
        &self.config
    }

    /// The Engine.IO session (its sid, transport, handshake).
    pub fn engine(&self) -> &eio::Session {
        &self.engine
    }

    /// The connection state.
    pub fn ready_state(&self) -> ReadyState {
        self.ready
    }

    /// True while waiting for (or making) a reconnection attempt.
    pub fn is_reconnecting(&self) -> bool {
        self.reconnecting
    }

    /// Turns reconnection on or off (`reconnection(v)`). Turning it off cancels a pending
    /// attempt.
    pub fn set_reconnection(&mut self, enabled: bool) {
        self.config.reconnection = enabled;
        if !enabled {
            self.skip_reconnect = true;
            if self.reconnecting && self.ready == ReadyState::Closed {
                self.reconnecting = false;
                self.reconnect_deadline = None;
            }
        }
    }

    /// Opens the connection (`open()`) if it is closed and no reconnection is pending. Sockets
    /// do this themselves; calling it is only needed to connect before any socket exists.
    pub fn connect(&mut self, now: Instant) {
        if !self.reconnecting {
            self.open(now, false);
        }
        self.pump(now);
    }

    /// Closes the connection without reconnecting (`manager.close()`): a `close` event with
    /// `forced close`, and a `disconnect` with the same reason for every active socket (which
    /// stays active: [`Manager::connect`] or a socket's connect opens the connection again).
    pub fn close(&mut self, now: Instant) {
        self.close_manager(now);
        self.pump(now);
    }

    /// Creates the socket of namespace `nsp` and connects it (`manager.socket(nsp, opts)` with
    /// `autoConnect`). If the namespace already has a socket, that one is returned (connected
    /// again if it was inactive) and `options` are ignored, as in the reference.
    pub fn open_socket(
        &mut self,
        now: Instant,
        nsp: &str,
        options: SocketOptions,
    ) -> Result<SocketId, ClientError> {
        if let Auth::Static(Some(auth)) = &options.auth {
            if !is_json_object(auth) {
                return Err(ClientError::InvalidAuth);
            }
        }
        let nsp = super::packet::normalize_nsp(Str::from(nsp));
        if let Some(id) = self.socket_for(&nsp) {
            if !self.sockets[id.index()].active {
                self.connect_socket(now, id)?;
            }
            return Ok(id);
        }
        let id = SocketId(u32::try_from(self.sockets.len()).unwrap_or(u32::MAX));
        self.sockets.push(SocketState::new(nsp, options));
        self.connect_socket(now, id)?;
        Ok(id)
    }

    /// Connects a socket again (`socket.connect()`), after [`Manager::disconnect`], a server
    /// DISCONNECT or a CONNECT_ERROR. Opens the manager if needed.
    pub fn connect_socket(&mut self, now: Instant, socket: SocketId) -> Result<(), ClientError> {
        let s = self.state_mut(socket)?;
        if s.connected {
            return Ok(());
        }
        let was_active = s.active;
        s.active = true;
        if !self.reconnecting {
            self.open(now, false);
        }
        if self.ready == ReadyState::Open && !was_active {
            self.socket_on_open(now, socket);
        }
        self.pump(now);
        Ok(())
    }

    /// Disconnects a socket (`socket.disconnect()`): sends DISCONNECT if connected; the socket
    /// becomes inactive and reports [`DisconnectReason::IoClientDisconnect`]. When no socket is
    /// active any more, the manager closes the connection (after the write buffer drains).
    pub fn disconnect(&mut self, now: Instant, socket: SocketId) -> Result<(), ClientError> {
        let s = self.state(socket)?;
        let connected = s.connected;
        if connected {
            let encoded = Packet::disconnect(s.nsp.clone()).encode();
            let _ = self.engine.enqueue(encoded.frames(), true, false);
        }
        self.destroy(now, socket);
        if connected {
            self.on_socket_close(now, socket, DisconnectReason::IoClientDisconnect, None);
        }
        self.pump(now);
        Ok(())
    }

    /// Answers [`Event::AuthNeeded`]: the CONNECT is sent with `auth` (a JSON object, or none).
    /// Ignored if no auth is awaited (the connection closed since, say; a new
    /// [`Event::AuthNeeded`] comes with the next one).
    pub fn provide_auth(
        &mut self,
        now: Instant,
        socket: SocketId,
        auth: Option<RawJson>,
    ) -> Result<(), ClientError> {
        if auth.as_ref().is_some_and(|a| !is_json_object(a)) {
            return Err(ClientError::InvalidAuth);
        }
        let s = self.state_mut(socket)?;
        if !s.awaiting_auth {
            return Ok(());
        }
        s.awaiting_auth = false;
        if self.ready == ReadyState::Open {
            self.send_connect(socket, auth);
        }
        self.pump(now);
        Ok(())
    }

    /// Emits an event (`socket.emit`). `packet` is an EVENT or BINARY_EVENT, built for instance
    /// with [`Packet::event_with`]; its namespace and ack id are replaced by the socket's.
    ///
    /// Sent at once when the socket is connected (and the heartbeat has not expired), otherwise
    /// kept in the send buffer and sent after the next CONNECT accept. A volatile emit is dropped
    /// instead when the transport is not writable. With [`SocketOptions::retries`], non-volatile
    /// emits go through the delivery queue. With `options.ack`, returns the handle that
    /// [`Event::Ack`] or [`Event::AckError`] will carry, exactly once (but see the module docs
    /// for an inactive socket's buffer).
    pub fn emit(
        &mut self,
        now: Instant,
        socket: SocketId,
        packet: Packet,
        options: EmitOptions,
    ) -> Result<Option<AckId>, ClientError> {
        let s = self.state(socket)?;
        if !packet.has_event_name() {
            return Err(ClientError::InvalidEvent);
        }
        let mut packet = packet.with_nsp(s.nsp.clone());
        packet.id = None;
        let result = if s.options.retries > 0 && !options.volatile {
            self.add_to_queue(now, socket, packet, options)
        } else {
            self.emit_packet(now, socket, packet, options, None, true)
        };
        self.pump(now);
        result
    }

    /// Answers an event the server sent with an ack id: `packet` is an ACK or BINARY_ACK built
    /// for instance with [`Packet::ack_with`] (its namespace is replaced by the socket's). Acks
    /// are sent at once, never buffered.
    pub fn ack(
        &mut self,
        now: Instant,
        socket: SocketId,
        packet: Packet,
    ) -> Result<(), ClientError> {
        let s = self.state(socket)?;
        if !packet.kind().is_ack() || packet.id().is_none() {
            return Err(ClientError::InvalidAck);
        }
        let encoded = packet.with_nsp(s.nsp.clone()).encode();
        let result = match self.engine.send(now, encoded.frames(), true) {
            Ok(()) => Ok(()),
            Err(SendError::BufferFull) => Err(ClientError::WriteBufferFull),
            Err(_) => Err(ClientError::NotConnected),
        };
        self.pump(now);
        result
    }

    // --- socket state -----------------------------------------------------------------------

    /// The namespace of a socket.
    pub fn socket_nsp(&self, socket: SocketId) -> Option<&str> {
        self.sockets.get(socket.index()).map(|s| &*s.nsp)
    }

    /// The socket for a namespace, if one was opened.
    pub fn socket_for(&self, nsp: &str) -> Option<SocketId> {
        let i = self.sockets.iter().position(|s| s.nsp == nsp)?;
        Some(SocketId(u32::try_from(i).ok()?))
    }

    /// The socket's id from the server (`socket.id`), while connected.
    pub fn socket_sid(&self, socket: SocketId) -> Option<&str> {
        self.sockets
            .get(socket.index())
            .and_then(|s| s.sid.as_deref())
    }

    /// True while the socket is connected (`connected`).
    pub fn is_connected(&self, socket: SocketId) -> bool {
        self.sockets
            .get(socket.index())
            .is_some_and(|s| s.connected)
    }

    /// True if the socket connects whenever the manager (re)opens (`active`); false after
    /// [`Manager::disconnect`], a server DISCONNECT or a CONNECT_ERROR.
    pub fn is_active(&self, socket: SocketId) -> bool {
        self.sockets.get(socket.index()).is_some_and(|s| s.active)
    }

    /// True if the last CONNECT accept recovered the previous session (`recovered`).
    pub fn is_recovered(&self, socket: SocketId) -> bool {
        self.sockets
            .get(socket.index())
            .is_some_and(|s| s.recovered)
    }

    /// Packets waiting in the socket's send buffer (`sendBuffer.length`).
    pub fn send_buffer_len(&self, socket: SocketId) -> usize {
        self.sockets
            .get(socket.index())
            .map_or(0, |s| s.send_buffer.len())
    }

    /// Emits waiting in the socket's delivery queue.
    pub fn queue_len(&self, socket: SocketId) -> usize {
        self.sockets
            .get(socket.index())
            .map_or(0, |s| s.queue.len())
    }

    // --- input ------------------------------------------------------------------------------

    /// Handles one input (the Engine.IO session's [`Input`]), after the timers due at `now`:
    /// the heartbeat, the connect timeout, a reconnection attempt, ack timeouts.
    pub fn handle_input(&mut self, now: Instant, input: Input) {
        self.on_timeout(now);
        if input != Input::Timeout {
            self.engine.handle_input(now, input);
            self.pump(now);
        }
    }

    /// The next output, if any. Drain after every call.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`Input::Timeout`] must be given next: the heartbeat, the connect timeout, the next
    /// reconnection attempt, or the earliest ack deadline.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.engine.poll_timeout(),
            self.connect_deadline,
            self.reconnect_deadline,
            self.ack_deadlines.front().map(|(d, _, _)| *d),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Time passed: heartbeat, connect timeout, reconnection attempt, ack timeouts.
    fn on_timeout(&mut self, now: Instant) {
        self.engine.handle_input(now, Input::Timeout);
        self.pump(now);
        if self.connect_deadline.is_some_and(|d| d <= now) {
            self.connect_deadline = None;
            self.on_open_error(now, "timeout".to_owned());
            self.pump(now);
        }
        if self.reconnect_deadline.is_some_and(|d| d <= now) {
            self.reconnect_deadline = None;
            if !self.skip_reconnect {
                self.event(Event::ReconnectAttempt(self.backoff.attempts()));
                self.open(now, true);
            }
            self.pump(now);
        }
        while let Some(&(deadline, socket, id)) = self.ack_deadlines.front() {
            if deadline > now {
                break;
            }
            self.ack_deadlines.pop_front();
            self.on_ack_timeout(now, socket, id);
        }
        self.pump(now);
    }

    // --- internals ----------------------------------------------------------------------------

    fn state(&self, socket: SocketId) -> Result<&SocketState, ClientError> {
        self.sockets
            .get(socket.index())
            .ok_or(ClientError::UnknownSocket)
    }

    fn state_mut(&mut self, socket: SocketId) -> Result<&mut SocketState, ClientError> {
        self.sockets
            .get_mut(socket.index())
            .ok_or(ClientError::UnknownSocket)
    }

    fn event(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }

    /// Moves the engine's outputs over: I/O to the driver, events through the manager. Only
    /// called at the end of public entry points (and by `open`, itself only called from them),
    /// so events are handled in order.
    fn pump(&mut self, now: Instant) {
        while let Some(out) = self.engine.poll_output() {
            match out {
                eio::Output::Io(io) => self.outputs.push_back(Output::Io(io)),
                eio::Output::Event(event) => self.on_engine_event(now, event),
            }
        }
    }

    fn on_engine_event(&mut self, now: Instant, event: eio::Event) {
        match self.ready {
            // A connection the manager gave up on: its events are ignored.
            ReadyState::Closed => {}
            ReadyState::Opening => match event {
                eio::Event::Open(_) => self.on_open(now),
                eio::Event::Close {
                    reason,
                    description,
                } => self.on_open_error(
                    now,
                    description.unwrap_or_else(|| reason.as_str().to_owned()),
                ),
                _ => {}
            },
            ReadyState::Open => match event {
                eio::Event::Message(text) => {
                    let decoded = self.decoder.decode_text(text);
                    self.on_decoded(now, decoded);
                }
                eio::Event::Binary(data) => {
                    let decoded = self.decoder.decode_binary(data);
                    self.on_decoded(now, decoded);
                }
                eio::Event::Ping => self.event(Event::Ping),
                eio::Event::Close {
                    reason,
                    description,
                } => self.on_close(now, DisconnectReason::from_engine(reason), description),
                eio::Event::Open(_) | eio::Event::Upgrade(_) | eio::Event::UpgradeError(_) => {}
            },
        }
    }

    fn on_decoded(
        &mut self,
        now: Instant,
        decoded: Result<Option<Packet>, super::error::DecodeError>,
    ) {
        match decoded {
            Ok(Some(packet)) => self.on_packet(now, packet),
            Ok(None) => {}
            Err(e) => self.on_close(
                now,
                DisconnectReason::ParseError,
                Some(e.as_str().to_owned()),
            ),
        }
    }

    /// `open(fn)`: starts an Engine.IO session if the manager is closed.
    fn open(&mut self, now: Instant, for_reconnect: bool) {
        if self.ready != ReadyState::Closed {
            return;
        }
        if self.engine.state() != eio::State::Closed {
            // A previous session still draining (a close packet, say) is given up now; its
            // events are dropped by `pump` since the manager is closed.
            self.engine.abort();
            self.pump(now);
        }
        self.engine.open();
        self.ready = ReadyState::Opening;
        self.skip_reconnect = false;
        self.opening_for_reconnect = for_reconnect;
        self.connect_deadline = self.config.timeout.map(|t| now + t);
    }

    /// `cleanup()`: timers and the partial binary packet of the decoder.
    fn cleanup(&mut self) {
        self.decoder.reset();
        self.connect_deadline = None;
        self.reconnect_deadline = None;
    }

    /// `onopen`: sockets send their CONNECT.
    fn on_open(&mut self, now: Instant) {
        self.cleanup();
        self.ready = ReadyState::Open;
        self.event(Event::Open);
        for i in 0..self.sockets.len() {
            if self.sockets[i].active {
                self.socket_on_open(now, SocketId(i as u32));
            }
        }
        if self.opening_for_reconnect {
            self.opening_for_reconnect = false;
            let attempt = self.backoff.attempts();
            self.reconnecting = false;
            self.backoff.reset();
            self.event(Event::Reconnect(attempt));
        }
    }

    /// The `error` path of `open()`: the session did not open.
    fn on_open_error(&mut self, now: Instant, message: String) {
        self.cleanup();
        if self.engine.state() != eio::State::Closed {
            self.engine.abort();
        }
        self.ready = ReadyState::Closed;
        self.event(Event::Error {
            message: message.clone(),
        });
        // The sockets' `connect_error` come next, before the reconnection's events; whether
        // they retry is known once the reconnection is decided.
        let mark = self.outputs.len();
        let waiting: Vec<SocketId> = (0..self.sockets.len())
            .filter(|&i| self.sockets[i].active && !self.sockets[i].connected)
            .map(|i| SocketId(i as u32))
            .collect();
        if self.opening_for_reconnect {
            self.opening_for_reconnect = false;
            self.reconnecting = false;
            self.reconnect(now);
            self.event(Event::ReconnectError {
                message: message.clone(),
            });
        } else if !self.reconnecting && self.config.reconnection && self.backoff.attempts() == 0 {
            // `maybeReconnectOnOpen`: only the first failure starts the reconnection loop.
            self.reconnect(now);
        }
        let retrying = self.reconnecting;
        for (k, socket) in waiting.into_iter().enumerate() {
            let error = Event::ConnectError {
                socket,
                message: message.clone(),
                data: None,
                retrying,
            };
            self.outputs.insert(mark + k, Output::Event(error));
        }
    }

    /// `onclose`: the open connection is gone.
    fn on_close(&mut self, now: Instant, reason: DisconnectReason, description: Option<String>) {
        self.cleanup();
        if self.engine.state() != eio::State::Closed {
            self.engine.close();
        }
        self.backoff.reset();
        self.ready = ReadyState::Closed;
        self.event(Event::Close {
            reason,
            description: description.clone(),
        });
        for i in 0..self.sockets.len() {
            self.sockets[i].connect_pending = false;
            self.sockets[i].receive_buffer.clear();
            if self.sockets[i].active {
                self.on_socket_close(now, SocketId(i as u32), reason, description.clone());
            }
        }
        if self.config.reconnection && !self.skip_reconnect {
            self.reconnect(now);
        }
    }

    /// `_close`: the last socket is gone, close without reconnecting.
    /// (The reference also reports a `close` when there was nothing to close, a second
    /// `disconnect()` say; Ferrio reports it only for a connection or a pending attempt.)
    fn close_manager(&mut self, now: Instant) {
        let something = self.ready != ReadyState::Closed || self.reconnecting;
        self.skip_reconnect = true;
        self.reconnecting = false;
        if something {
            self.on_close(now, DisconnectReason::ForcedClose, None);
        } else {
            self.cleanup();
        }
    }

    /// `reconnect()`: schedules the next attempt, or gives up.
    fn reconnect(&mut self, now: Instant) {
        if self.reconnecting || self.skip_reconnect {
            return;
        }
        let limit = self.config.reconnection_attempts.unwrap_or(u32::MAX);
        if self.config.reconnection_attempts.is_some() && self.backoff.attempts() >= limit {
            self.backoff.reset();
            self.reconnecting = false;
            self.event(Event::ReconnectFailed);
        } else {
            let delay = self.backoff.duration(self.rng.next_f64());
            self.reconnecting = true;
            self.reconnect_deadline = Some(now + delay);
        }
    }

    /// `_destroy(socket)`: the socket leaves; the manager closes when none is active.
    fn destroy(&mut self, now: Instant, socket: SocketId) {
        if let Some(s) = self.sockets.get_mut(socket.index()) {
            s.active = false;
            s.awaiting_auth = false;
        }
        if !self.sockets.iter().any(|s| s.active) {
            self.close_manager(now);
        }
    }

    /// Socket `onopen`: send the CONNECT, or ask for its auth first.
    fn socket_on_open(&mut self, _now: Instant, socket: SocketId) {
        let s = &mut self.sockets[socket.index()];
        match &s.options.auth {
            Auth::Static(auth) => {
                let auth = auth.clone();
                self.send_connect(socket, auth);
            }
            Auth::Callback => {
                if !s.awaiting_auth {
                    s.awaiting_auth = true;
                    self.event(Event::AuthNeeded { socket });
                }
            }
        }
    }

    /// `_sendConnectPacket`: with a pid, `{"pid","offset",...auth}` (auth keys override).
    fn send_connect(&mut self, socket: SocketId, auth: Option<RawJson>) {
        let s = &self.sockets[socket.index()];
        let data = match &s.pid {
            Some(pid) => Some(recovery_payload(
                pid,
                s.last_offset.as_deref(),
                auth.as_ref(),
            )),
            None => auth,
        };
        let encoded = Packet::connect(s.nsp.clone(), data).encode();
        let _ = self.engine.enqueue(encoded.frames(), true, false);
        self.sockets[socket.index()].connect_pending = true;
    }

    /// Socket `onclose`.
    fn on_socket_close(
        &mut self,
        now: Instant,
        socket: SocketId,
        reason: DisconnectReason,
        description: Option<String>,
    ) {
        let s = &mut self.sockets[socket.index()];
        s.connected = false;
        s.sid = None;
        s.awaiting_auth = false;
        // Events held for an accept that will not come on this connection are dropped, so they
        // are neither delivered on a later session nor twice after a recovery replays them.
        s.receive_buffer.clear();
        self.event(Event::Disconnect {
            socket,
            reason,
            description,
        });
        self.clear_acks(now, socket);
    }

    /// `_clearAcks`: acks whose packet was sent will not come; those still buffered wait.
    fn clear_acks(&mut self, now: Instant, socket: SocketId) {
        let s = &self.sockets[socket.index()];
        let ids: Vec<u64> = s
            .acks
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| !s.send_buffer.iter().any(|b| b.id == Some(*id)))
            .collect();
        for id in ids {
            let Some(pending) = remove_ack(&mut self.sockets[socket.index()].acks, id) else {
                continue;
            };
            if let Some(d) = pending.deadline {
                remove_sorted(&mut self.ack_deadlines, &(d, socket, id));
            }
            match pending.target {
                AckTarget::User(ack) => self.event(Event::AckError {
                    socket,
                    ack,
                    error: AckError::Disconnected,
                }),
                // The queue's internal ack only hears of errors when it has a timeout (it is an
                // error-first callback only then); without one it is dropped and the entry is
                // sent again after the next CONNECT accept.
                AckTarget::Queue(seq) if pending.deadline.is_some() => {
                    self.on_queue_result(now, socket, seq, Err(AckError::Disconnected))
                }
                AckTarget::Queue(_) => {}
            }
        }
    }

    fn on_packet(&mut self, now: Instant, packet: Packet) {
        let Some(socket) = self.socket_for(packet.nsp()) else {
            return;
        };
        let s = &mut self.sockets[socket.index()];
        if matches!(
            packet.kind(),
            PacketType::Connect | PacketType::ConnectError
        ) {
            let was_pending = std::mem::take(&mut s.connect_pending);
            if !s.active && was_pending && packet.kind() == PacketType::Connect {
                // The application disconnected this socket while its CONNECT was on the way:
                // leave the namespace the server has just joined, so that no socket lingers
                // there and a later CONNECT is not a second one.
                let encoded = Packet::disconnect(s.nsp.clone()).encode();
                let _ = self.engine.enqueue(encoded.frames(), true, false);
                return;
            }
        }
        if !s.active {
            return;
        }
        match packet.kind() {
            PacketType::Connect => self.on_connect_packet(now, socket, &packet),
            PacketType::Event | PacketType::BinaryEvent => self.on_event(now, socket, packet),
            PacketType::Ack | PacketType::BinaryAck => self.on_ack(now, socket, packet),
            PacketType::Disconnect => {
                self.destroy(now, socket);
                self.on_socket_close(now, socket, DisconnectReason::IoServerDisconnect, None);
            }
            PacketType::ConnectError => {
                self.destroy(now, socket);
                let (message, data) = connect_error_parts(&packet);
                self.event(Event::ConnectError {
                    socket,
                    message,
                    data,
                    retrying: false,
                });
            }
        }
    }

    fn on_connect_packet(&mut self, now: Instant, socket: SocketId, packet: &Packet) {
        let field = |name: &str| {
            packet
                .data()
                .and_then(|d| scan::member(d.as_str(), name))
                .and_then(scan::string)
                .filter(|s| !s.is_empty())
                .map(|s| Str::from(s.into_owned()))
        };
        match field("sid") {
            Some(sid) => {
                let pid = field("pid");
                self.on_connect(now, socket, sid, pid);
            }
            None => self.event(Event::ConnectError {
                socket,
                message: V2_SERVER.to_owned(),
                data: None,
                retrying: self.sockets[socket.index()].active,
            }),
        }
    }

    /// Socket `onconnect`: received events first, then the send buffer, then the delivery
    /// queue's head, then `connect`.
    fn on_connect(&mut self, now: Instant, socket: SocketId, sid: Str, pid: Option<Str>) {
        let s = &mut self.sockets[socket.index()];
        s.sid = Some(sid.clone());
        let recovered = pid.is_some() && s.pid == pid;
        s.recovered = recovered;
        s.pid = pid;
        s.connected = true;
        s.awaiting_auth = false;
        let received = std::mem::take(&mut s.receive_buffer);
        let to_send = std::mem::take(&mut s.send_buffer);
        for packet in received {
            self.deliver(socket, packet);
        }
        for b in to_send {
            let _ = self.engine.enqueue(b.encoded.frames(), b.compress, false);
        }
        self.drain_queue(now, socket, true);
        self.event(Event::Connect {
            socket,
            sid,
            recovered,
        });
    }

    fn on_event(&mut self, now: Instant, socket: SocketId, packet: Packet) {
        let s = &mut self.sockets[socket.index()];
        if s.connected {
            self.deliver(socket, packet);
        } else if s.receive_buffer.len() >= self.config.max_receive_buffer {
            self.on_close(
                now,
                DisconnectReason::ParseError,
                Some("receive buffer full".to_owned()),
            );
        } else {
            s.receive_buffer.push_back(packet);
        }
    }

    /// `emitEvent`: hands the event over and records its offset for recovery (the last element
    /// of the data array when it is a string, the pid being set, and no ack id attached: the
    /// reference appends its ack callback to the arguments first).
    fn deliver(&mut self, socket: SocketId, packet: Packet) {
        let s = &mut self.sockets[socket.index()];
        if s.pid.is_some() && packet.id().is_none() {
            if let Some(offset) = packet.data().and_then(|d| last_string(d.as_str())) {
                s.last_offset = Some(offset);
            }
        }
        self.event(Event::Event { socket, packet });
    }

    fn on_ack(&mut self, now: Instant, socket: SocketId, packet: Packet) {
        let Some(id) = packet.id() else {
            return;
        };
        let Some(pending) = remove_ack(&mut self.sockets[socket.index()].acks, id) else {
            return; // unknown or already answered: ignored, as in the reference
        };
        if let Some(d) = pending.deadline {
            remove_sorted(&mut self.ack_deadlines, &(d, socket, id));
        }
        match pending.target {
            AckTarget::User(ack) => self.event(Event::Ack {
                socket,
                ack,
                packet,
            }),
            AckTarget::Queue(seq) => self.on_queue_result(now, socket, seq, Ok(packet)),
        }
    }

    fn on_ack_timeout(&mut self, now: Instant, socket: SocketId, id: u64) {
        let s = &mut self.sockets[socket.index()];
        let Some(pending) = remove_ack(&mut s.acks, id) else {
            return;
        };
        s.send_buffer.retain(|b| b.id != Some(id));
        match pending.target {
            AckTarget::User(ack) => self.event(Event::AckError {
                socket,
                ack,
                error: AckError::Timeout,
            }),
            AckTarget::Queue(seq) => self.on_queue_result(now, socket, seq, Err(AckError::Timeout)),
        }
    }

    /// The `emit` body after the queue check: register the ack, then send, buffer or drop.
    fn emit_packet(
        &mut self,
        now: Instant,
        socket: SocketId,
        mut packet: Packet,
        options: EmitOptions,
        queue_entry: Option<u64>,
        bounded: bool,
    ) -> Result<Option<AckId>, ClientError> {
        let writable = self.engine.is_writable();
        let connected =
            self.sockets[socket.index()].connected && !self.engine.has_ping_expired(now);
        let discard = options.volatile && !writable;
        let max_send_buffer = self.config.max_send_buffer;
        let s = &mut self.sockets[socket.index()];
        if bounded && !discard && !connected && s.send_buffer.len() >= max_send_buffer {
            return Err(ClientError::SendBufferFull);
        }
        let target = match queue_entry {
            Some(seq) => Some(AckTarget::Queue(seq)),
            None if options.ack => Some(AckTarget::User(s.new_handle())),
            None => None,
        };
        let wire_id = target.map(|_| {
            let id = s.next_wire_id;
            s.next_wire_id += 1;
            id
        });
        packet.id = wire_id;
        let encoded = packet.encode();
        if discard {
            // dropped; an ack asked for still waits for its timeout or the disconnection
        } else if connected {
            match self
                .engine
                .enqueue(encoded.frames(), options.compress, bounded)
            {
                Ok(()) => {}
                Err(SendError::BufferFull) => {
                    let s = &mut self.sockets[socket.index()];
                    if wire_id.is_some() {
                        s.next_wire_id -= 1;
                    }
                    return Err(ClientError::WriteBufferFull);
                }
                // The engine is closing: keep the packet for the next connection.
                Err(_) => self.sockets[socket.index()]
                    .send_buffer
                    .push_back(Buffered {
                        id: wire_id,
                        encoded,
                        compress: options.compress,
                    }),
            }
        } else {
            s.send_buffer.push_back(Buffered {
                id: wire_id,
                encoded,
                compress: options.compress,
            });
        }
        let timeout = options
            .timeout
            .or(self.sockets[socket.index()].options.ack_timeout);
        if let (Some(id), Some(target)) = (wire_id, target) {
            let deadline = timeout.map(|t| now + t);
            if let Some(d) = deadline {
                insert_sorted(&mut self.ack_deadlines, (d, socket, id));
            }
            let acks = &mut self.sockets[socket.index()].acks;
            let at = acks.partition_point(|(k, _)| *k < id);
            acks.insert(at, (id, PendingAck { deadline, target }));
        }
        Ok(match target {
            Some(AckTarget::User(h)) => Some(h),
            _ => None,
        })
    }

    /// `_addToQueue`.
    fn add_to_queue(
        &mut self,
        now: Instant,
        socket: SocketId,
        packet: Packet,
        options: EmitOptions,
    ) -> Result<Option<AckId>, ClientError> {
        let max = self.config.max_send_buffer;
        let s = &mut self.sockets[socket.index()];
        if s.queue.len() >= max {
            return Err(ClientError::SendBufferFull);
        }
        let user = options.ack.then(|| s.new_handle());
        let seq = s.queue_seq;
        s.queue_seq += 1;
        s.queue.push_back(Queued {
            seq,
            user,
            packet,
            try_count: 0,
            pending: false,
            timeout: options.timeout,
            compress: options.compress,
        });
        self.drain_queue(now, socket, false);
        Ok(user)
    }

    /// `_drainQueue(force)`: (re)sends the head of the queue when connected.
    fn drain_queue(&mut self, now: Instant, socket: SocketId, force: bool) {
        let s = &mut self.sockets[socket.index()];
        if !s.connected {
            return;
        }
        let Some(head) = s.queue.front_mut() else {
            return;
        };
        if head.pending && !force {
            return;
        }
        head.pending = true;
        head.try_count = head.try_count.saturating_add(1);
        let packet = head.packet.clone();
        let options = EmitOptions {
            ack: true,
            timeout: head.timeout,
            volatile: false,
            compress: head.compress,
        };
        let seq = head.seq;
        let _ = self.emit_packet(now, socket, packet, options, Some(seq), false);
    }

    /// The queue's internal ack callback.
    fn on_queue_result(
        &mut self,
        now: Instant,
        socket: SocketId,
        seq: u64,
        result: Result<Packet, AckError>,
    ) {
        let retries = self.sockets[socket.index()].options.retries;
        let s = &mut self.sockets[socket.index()];
        let Some(head) = s.queue.front_mut() else {
            return;
        };
        if head.seq != seq {
            return; // already acknowledged
        }
        head.pending = false;
        match result {
            Err(error) => {
                if head.try_count > retries {
                    let user = head.user;
                    s.queue.pop_front();
                    if let Some(ack) = user {
                        self.event(Event::AckError { socket, ack, error });
                    }
                }
            }
            Ok(packet) => {
                let user = head.user;
                s.queue.pop_front();
                if let Some(ack) = user {
                    self.event(Event::Ack {
                        socket,
                        ack,
                        packet,
                    });
                }
            }
        }
        self.drain_queue(now, socket, false);
    }
}

/// True if the JSON text is an object.
fn is_json_object(json: &RawJson) -> bool {
    json.as_str().trim_start().starts_with('{')
}

/// Removes the pending ack `id` from a socket's id-ordered acks.
fn remove_ack(acks: &mut VecDeque<(u64, PendingAck)>, id: u64) -> Option<PendingAck> {
    let i = acks.binary_search_by_key(&id, |(k, _)| *k).ok()?;
    acks.remove(i).map(|(_, pending)| pending)
}

/// Inserts into a sorted queue, after equal items.
fn insert_sorted<T: Ord>(queue: &mut VecDeque<T>, item: T) {
    let at = queue.partition_point(|x| *x <= item);
    queue.insert(at, item);
}

/// Removes one item equal to `item` from a sorted queue.
fn remove_sorted<T: Ord>(queue: &mut VecDeque<T>, item: &T) {
    if let Ok(i) = queue.binary_search(item) {
        queue.remove(i);
    }
}

/// The message and data of a CONNECT_ERROR: `{"message","data"?}` (v5), or a bare string.
fn connect_error_parts(packet: &Packet) -> (String, Option<RawJson>) {
    let Some(data) = packet.data() else {
        return (String::new(), None);
    };
    let text = data.as_str();
    let read = |token: &str| scan::string(token).map_or_else(|| token.to_owned(), Cow::into_owned);
    match scan::validate(text) {
        Some(scan::Kind::Object) => {
            let message = scan::member(text, "message").map(read).unwrap_or_default();
            let data = scan::member(text, "data")
                .and_then(|d| data.as_shared().slice_ref(d))
                .map(RawJson::from_trusted);
            (message, data)
        }
        _ => (read(text), None),
    }
}

/// `Object.assign({ pid, offset }, auth)` as JSON text: `pid` then `offset` (left out when
/// there is none), then the auth members; an auth key equal to an earlier one replaces its value
/// in place. The auth members keep their text and order.
fn recovery_payload(pid: &str, offset: Option<&str>, auth: Option<&RawJson>) -> RawJson {
    let pid = scan::quote(pid);
    let offset = offset.map(scan::quote);
    let mut members: Vec<(Cow<'_, str>, Option<&str>)> = vec![
        (Cow::Borrowed("pid"), Some(&pid)),
        (Cow::Borrowed("offset"), offset.as_deref()),
    ];
    for (key, value) in scan::object_members(auth.map_or("", |a| a.as_str())) {
        let Some(key) = scan::string(key) else {
            continue;
        };
        match members.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = Some(value),
            None => members.push((key, Some(value))),
        }
    }
    let mut text = String::from("{");
    for (key, value) in members {
        let Some(value) = value else {
            continue;
        };
        if text.len() > 1 {
            text.push(',');
        }
        scan::push_string(&mut text, &key);
        text.push(':');
        text.push_str(value);
    }
    text.push('}');
    RawJson::from_trusted(Str::from(text))
}

/// The last element of a JSON array if it is a string.
fn last_string(json: &str) -> Option<String> {
    scan::string(scan::array_items(json).last()?).map(Cow::into_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::client::{Config as EngineConfig, Transport, TransportId};
    use crate::engine::Frame;
    use bytes::Bytes;

    const OPEN: &str = r#"0{"sid":"e1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn raw(s: &str) -> RawJson {
        RawJson::parse(s).expect("json")
    }

    fn ev(name: &str) -> Packet {
        Packet::event_with("/", name, &()).expect("event")
    }

    /// A driver over WebSocket that records what the manager asks for.
    struct H {
        m: Manager,
        now: u64,
        ws: Option<TransportId>,
        sent: Vec<String>,
        events: Vec<Event>,
        io: Vec<Io>,
    }

    impl H {
        fn config() -> ManagerConfig {
            ManagerConfig {
                engine: EngineConfig {
                    transports: vec![Transport::WebSocket],
                    ..EngineConfig::default()
                },
                seed: 7,
                ..ManagerConfig::default()
            }
        }

        fn new(config: ManagerConfig) -> H {
            H {
                m: Manager::new(config),
                now: 0,
                ws: None,
                sent: Vec::new(),
                events: Vec::new(),
                io: Vec::new(),
            }
        }

        fn now(&self) -> Instant {
            t(self.now)
        }

        fn drain(&mut self) {
            while let Some(out) = self.m.poll_output() {
                match out {
                    Output::Io(Io::WsOpen { transport, query }) => {
                        self.ws = Some(transport);
                        self.io.push(Io::WsOpen { transport, query });
                    }
                    Output::Io(Io::WsSend {
                        frame: Frame::Text(s),
                        ..
                    }) => self.sent.push(s.to_string()),
                    Output::Io(Io::WsSend {
                        frame: Frame::Binary(b),
                        ..
                    }) => self.sent.push(format!("<binary {}>", b.len())),
                    Output::Io(io) => self.io.push(io),
                    Output::Event(e) => self.events.push(e),
                }
            }
        }

        fn ws(&self) -> TransportId {
            self.ws.expect("a WebSocket was opened")
        }

        /// Gives `input` to the manager at the current time and drains what it produced.
        fn input(&mut self, input: Input) {
            self.m.handle_input(self.now(), input);
            self.drain();
        }

        fn server(&mut self, text: &str) {
            let ws = self.ws();
            self.input(Input::WsFrame {
                transport: ws,
                frame: Frame::Text(Str::from(text)),
            });
        }

        fn handshake(&mut self) {
            let ws = self.ws();
            self.input(Input::WsOpen { transport: ws });
            self.server(OPEN);
        }

        fn ws_closed(&mut self) {
            let ws = self.ws();
            self.input(Input::WsClosed { transport: ws });
        }

        fn sent(&mut self) -> Vec<String> {
            std::mem::take(&mut self.sent)
        }

        fn events(&mut self) -> Vec<Event> {
            std::mem::take(&mut self.events)
        }

        fn open(&mut self, nsp: &str, options: SocketOptions) -> SocketId {
            let id = self
                .m
                .open_socket(self.now(), nsp, options)
                .expect("open_socket");
            self.drain();
            id
        }

        /// Opens `/` with `options`, connects, and forgets what that produced.
        fn connected_with(&mut self, options: SocketOptions) -> SocketId {
            let s = self.open("/", options);
            self.handshake();
            self.server(r#"40{"sid":"s1"}"#);
            self.sent();
            self.events();
            s
        }

        fn connected(&mut self) -> SocketId {
            self.connected_with(SocketOptions::default())
        }

        fn emit(&mut self, socket: SocketId, packet: Packet, opts: EmitOptions) -> Option<AckId> {
            let r = self.m.emit(self.now(), socket, packet, opts).expect("emit");
            self.drain();
            r
        }

        fn tick(&mut self, ms: u64) {
            self.now = ms;
            self.input(Input::Timeout);
        }

        /// Waits for the scheduled reconnection attempt and completes the handshake.
        fn reconnect(&mut self) {
            let at = self.m.poll_timeout().expect("an attempt is scheduled");
            self.tick(at.as_millis());
            self.handshake();
        }
    }

    fn disconnect(socket: SocketId, reason: DisconnectReason) -> Event {
        Event::Disconnect {
            socket,
            reason,
            description: None,
        }
    }

    fn close(reason: DisconnectReason) -> Event {
        Event::Close {
            reason,
            description: None,
        }
    }

    #[test]
    fn close_then_connect_again() {
        let mut h = H::new(H::config());
        let s = h.connected_with(SocketOptions::default());
        h.events();
        let now = h.now();
        h.m.close(now);
        h.drain();
        let events = h.events();
        assert!(
            events.contains(&close(DisconnectReason::ForcedClose)),
            "{events:?}"
        );
        assert!(events.iter().any(|e| matches!(
            e,
            Event::Disconnect { socket, reason: DisconnectReason::ForcedClose, .. } if *socket == s
        )));
        assert!(!h.m.is_connected(s));
        // no reconnection is scheduled
        assert!(h.m.poll_timeout().is_none());
        h.m.connect(now);
        assert_eq!(h.m.ready_state(), ReadyState::Opening);
    }

    #[test]
    fn connects_the_main_namespace() {
        let mut h = H::new(H::config());
        let s = h.open("/", SocketOptions::default());
        assert_eq!(s.index(), 0);
        assert_eq!(h.m.ready_state(), ReadyState::Opening);
        h.handshake();
        assert_eq!(h.events(), [Event::Open]);
        assert_eq!(h.m.ready_state(), ReadyState::Open);
        assert_eq!(h.sent(), ["40"]);
        assert!(!h.m.is_connected(s));
        h.server(r#"40{"sid":"abc"}"#);
        assert_eq!(
            h.events(),
            [Event::Connect {
                socket: s,
                sid: "abc".into(),
                recovered: false
            }]
        );
        assert_eq!(h.m.socket_sid(s), Some("abc"));
        assert!(h.m.is_connected(s));
        assert!(h.m.is_active(s));
        assert!(!h.m.is_recovered(s));
    }

    #[test]
    fn namespaces_and_static_auth() {
        let mut h = H::new(H::config());
        let admin = h.open(
            "admin",
            SocketOptions {
                auth: Auth::Static(Some(raw(r#"{"token":"abc"}"#))),
                ..SocketOptions::default()
            },
        );
        assert_eq!(h.m.socket_nsp(admin), Some("/admin"));
        assert_eq!(h.m.socket_for("/admin"), Some(admin));
        let bad = SocketOptions {
            auth: Auth::Static(Some(raw("[1]"))),
            ..SocketOptions::default()
        };
        assert_eq!(
            h.m.open_socket(h.now(), "/x", bad),
            Err(ClientError::InvalidAuth)
        );
        h.handshake();
        assert_eq!(h.sent(), [r#"40/admin,{"token":"abc"}"#]);
        // a socket created while the manager is open sends its CONNECT at once
        let main = h.open("/", SocketOptions::default());
        assert_eq!(h.sent(), ["40"]);
        // the same namespace gives the same socket
        assert_eq!(
            h.m.open_socket(h.now(), "/admin", SocketOptions::default()),
            Ok(admin)
        );
        assert!(h.sent().is_empty());
        // answers may come in any order
        h.server(r#"40{"sid":"m"}"#);
        h.server(r#"40/admin,{"sid":"a"}"#);
        assert_eq!(
            h.events(),
            [
                Event::Open,
                Event::Connect {
                    socket: main,
                    sid: "m".into(),
                    recovered: false
                },
                Event::Connect {
                    socket: admin,
                    sid: "a".into(),
                    recovered: false
                }
            ]
        );
    }

    #[test]
    fn auth_callback_is_asked_on_every_connection() {
        let mut h = H::new(H::config());
        let s = h.open(
            "/",
            SocketOptions {
                auth: Auth::Callback,
                ..SocketOptions::default()
            },
        );
        h.handshake();
        assert_eq!(h.events(), [Event::Open, Event::AuthNeeded { socket: s }]);
        assert!(h.sent().is_empty());
        assert_eq!(
            h.m.provide_auth(h.now(), s, Some(raw("1"))),
            Err(ClientError::InvalidAuth)
        );
        h.m.provide_auth(h.now(), s, Some(raw(r#"{"token":"t1"}"#)))
            .expect("auth");
        h.drain();
        assert_eq!(h.sent(), [r#"40{"token":"t1"}"#]);
        // a second answer is ignored
        h.m.provide_auth(h.now(), s, None).expect("auth");
        h.drain();
        assert!(h.sent().is_empty());
        h.server(r#"40{"sid":"a"}"#);
        h.ws_closed();
        h.events();
        h.reconnect();
        assert_eq!(
            h.events(),
            [
                Event::ReconnectAttempt(1),
                Event::Open,
                Event::AuthNeeded { socket: s },
                Event::Reconnect(1)
            ]
        );
        h.m.provide_auth(h.now(), s, Some(raw(r#"{"token":"t2"}"#)))
            .expect("auth");
        h.drain();
        assert_eq!(h.sent(), [r#"40{"token":"t2"}"#]);
    }

    #[test]
    fn emits_before_connect_are_buffered_and_flushed_once() {
        let mut h = H::new(H::config());
        let s = h.open("/", SocketOptions::default());
        assert_eq!(h.emit(s, ev("a"), EmitOptions::default()), None);
        assert_eq!(h.emit(s, ev("b"), EmitOptions::with_ack()), Some(AckId(0)));
        assert_eq!(h.m.send_buffer_len(s), 2);
        h.handshake();
        h.events();
        assert_eq!(h.sent(), ["40"]);
        // an event sent before the accept is held, then delivered before `connect`
        h.server(r#"42["early"]"#);
        assert!(h.events().is_empty());
        h.server(r#"40{"sid":"x"}"#);
        let events = h.events();
        let [Event::Event { socket, packet }, Event::Connect { socket: c, .. }] = events.as_slice()
        else {
            panic!("{events:?}")
        };
        assert_eq!((*socket, *c), (s, s));
        assert_eq!(packet.event_name().as_deref(), Some("early"));
        assert_eq!(h.sent(), [r#"42["a"]"#, r#"420["b"]"#]);
        assert_eq!(h.m.send_buffer_len(s), 0);
        // a reconnection does not send them again
        h.ws_closed();
        assert_eq!(
            h.events(),
            [
                close(DisconnectReason::TransportClose),
                disconnect(s, DisconnectReason::TransportClose),
                Event::AckError {
                    socket: s,
                    ack: AckId(0),
                    error: AckError::Disconnected
                }
            ]
        );
        h.reconnect();
        h.server(r#"40{"sid":"y"}"#);
        assert_eq!(h.sent(), ["40"]);
    }

    #[test]
    fn acks_are_matched_per_socket_with_ids_from_zero() {
        let mut h = H::new(H::config());
        let main = h.connected();
        let admin = h.open("/admin", SocketOptions::default());
        h.server(r#"40/admin,{"sid":"a"}"#);
        h.sent();
        h.events();
        let a0 = h.emit(main, ev("x"), EmitOptions::with_ack());
        let b0 = h.emit(admin, ev("x"), EmitOptions::with_ack());
        let a1 = h.emit(main, ev("y"), EmitOptions::with_ack());
        assert_eq!(
            h.sent(),
            [r#"420["x"]"#, r#"42/admin,0["x"]"#, r#"421["y"]"#]
        );
        h.server(r#"431["second"]"#);
        h.server(r#"43/admin,0[]"#);
        h.server(r#"431[]"#); // answered already: ignored
        h.server(r#"437[]"#); // unknown: ignored
        h.server(r#"430[1]"#);
        let events = h.events();
        assert_eq!(events.len(), 3, "{events:?}");
        let ack_of = |e: &Event| match e {
            Event::Ack {
                socket,
                ack,
                packet,
            } => (*socket, Some(*ack), packet.clone()),
            other => panic!("{other:?}"),
        };
        let (s, id, p) = ack_of(&events[0]);
        assert_eq!((s, id), (main, a1));
        assert_eq!(p.args::<(String,)>().expect("args").0, "second");
        assert_eq!(ack_of(&events[1]).0, admin);
        assert_eq!(ack_of(&events[1]).1, b0);
        assert_eq!(ack_of(&events[2]).1, a0);
    }

    #[test]
    fn ack_timeout() {
        let mut h = H::new(H::config());
        let s = h.connected_with(SocketOptions {
            ack_timeout: Some(Duration::from_millis(3000)),
            ..SocketOptions::default()
        });
        let a = h.emit(
            s,
            ev("x"),
            EmitOptions::with_ack_timeout(Duration::from_millis(1000)),
        );
        let b = h.emit(s, ev("y"), EmitOptions::with_ack()); // the socket's 3 s
        assert_eq!(h.m.poll_timeout(), Some(t(1000)));
        h.tick(999);
        assert!(h.events().is_empty());
        h.tick(1000);
        assert_eq!(
            h.events(),
            [Event::AckError {
                socket: s,
                ack: a.expect("ack"),
                error: AckError::Timeout
            }]
        );
        h.server("430[]"); // too late
        assert!(h.events().is_empty());
        assert_eq!(h.m.poll_timeout(), Some(t(3000)));
        h.server("431[]");
        assert!(matches!(h.events().as_slice(), [Event::Ack { ack, .. }] if Some(*ack) == b));
        assert_eq!(
            h.m.poll_timeout(),
            Some(t(45_000)),
            "only the heartbeat left"
        );
    }

    #[test]
    fn a_buffered_packet_that_timed_out_is_not_sent() {
        let mut h = H::new(H::config());
        let s = h.open("/", SocketOptions::default());
        h.emit(
            s,
            ev("x"),
            EmitOptions::with_ack_timeout(Duration::from_millis(500)),
        );
        h.emit(s, ev("y"), EmitOptions::default());
        h.tick(500);
        assert_eq!(
            h.events(),
            [Event::AckError {
                socket: s,
                ack: AckId(0),
                error: AckError::Timeout
            }]
        );
        assert_eq!(h.m.send_buffer_len(s), 1);
        h.handshake();
        h.server(r#"40{"sid":"x"}"#);
        assert_eq!(h.sent(), ["40", r#"42["y"]"#]);
    }

    #[test]
    fn disconnection_fails_sent_acks_but_keeps_buffered_ones() {
        let mut h = H::new(H::config());
        let s = h.connected();
        let sent = h.emit(s, ev("a"), EmitOptions::with_ack()).expect("ack");
        assert_eq!(h.sent(), [r#"420["a"]"#]);
        h.ws_closed();
        assert_eq!(
            h.events(),
            [
                close(DisconnectReason::TransportClose),
                disconnect(s, DisconnectReason::TransportClose),
                Event::AckError {
                    socket: s,
                    ack: sent,
                    error: AckError::Disconnected
                }
            ]
        );
        let buffered = h.emit(s, ev("b"), EmitOptions::with_ack()).expect("ack");
        h.reconnect();
        h.server(r#"40{"sid":"s2"}"#);
        assert_eq!(h.sent(), ["40", r#"421["b"]"#]);
        h.server("431[]");
        let events = h.events();
        assert!(matches!(events.last(), Some(Event::Ack { ack, .. }) if *ack == buffered));
    }

    #[test]
    fn retries_resend_the_head_until_the_limit() {
        let mut h = H::new(H::config());
        let s = h.connected_with(SocketOptions {
            retries: 2,
            ack_timeout: Some(Duration::from_millis(100)),
            ..SocketOptions::default()
        });
        let a = h.emit(s, ev("x"), EmitOptions::with_ack()).expect("ack");
        assert_eq!(h.emit(s, ev("y"), EmitOptions::default()), None);
        assert_eq!(h.sent(), [r#"420["x"]"#]);
        assert_eq!(h.m.queue_len(s), 2);
        h.tick(100);
        assert_eq!(h.sent(), [r#"421["x"]"#]);
        h.tick(200);
        assert_eq!(h.sent(), [r#"422["x"]"#]);
        assert!(h.events().is_empty());
        // the third try timed out: 3 > retries, the emit fails and the next one goes
        h.tick(300);
        assert_eq!(
            h.events(),
            [Event::AckError {
                socket: s,
                ack: a,
                error: AckError::Timeout
            }]
        );
        assert_eq!(h.sent(), [r#"423["y"]"#]);
        h.server("433[]");
        assert!(h.events().is_empty(), "no ack was asked for y");
        assert_eq!(h.m.queue_len(s), 0);
        // volatile emits bypass the queue
        h.emit(
            s,
            ev("v"),
            EmitOptions {
                volatile: true,
                ..EmitOptions::default()
            },
        );
        assert_eq!(h.sent(), [r#"42["v"]"#]);
    }

    #[test]
    fn retries_deliver_in_order() {
        let mut h = H::new(H::config());
        let s = h.connected_with(SocketOptions {
            retries: 1,
            ack_timeout: Some(Duration::from_millis(1000)),
            ..SocketOptions::default()
        });
        let x = h.emit(s, ev("x"), EmitOptions::with_ack()).expect("ack");
        let y = h.emit(s, ev("y"), EmitOptions::with_ack()).expect("ack");
        assert_eq!(h.sent(), [r#"420["x"]"#]);
        h.server(r#"430["ok"]"#);
        assert!(matches!(h.events().as_slice(), [Event::Ack { ack, .. }] if *ack == x));
        assert_eq!(h.sent(), [r#"421["y"]"#]);
        h.server("430[]"); // duplicate of the first answer
        assert!(h.events().is_empty());
        h.server("431[]");
        assert!(matches!(h.events().as_slice(), [Event::Ack { ack, .. }] if *ack == y));
    }

    #[test]
    fn the_queue_survives_a_disconnection() {
        let mut h = H::new(H::config());
        let s = h.connected_with(SocketOptions {
            retries: 3,
            ack_timeout: Some(Duration::from_millis(10_000)),
            ..SocketOptions::default()
        });
        h.emit(s, ev("x"), EmitOptions::with_ack()).expect("ack");
        assert_eq!(h.sent(), [r#"420["x"]"#]);
        h.ws_closed();
        assert_eq!(h.m.queue_len(s), 1);
        h.reconnect();
        h.server(r#"40{"sid":"s2"}"#);
        assert_eq!(h.sent(), ["40", r#"421["x"]"#]);
    }

    /// The backoff formula written out again, independently of [`Backoff`].
    fn formula(attempts: i32, rand: f64) -> u64 {
        let ms = 1000.0 * 2f64.powi(attempts);
        let deviation = (rand * 0.5 * ms).floor();
        let ms = if ((rand * 10.0).floor() as i64) & 1 == 0 {
            ms - deviation
        } else {
            ms + deviation
        };
        ms.min(5000.0) as u64
    }

    #[test]
    fn reconnection_delays_follow_the_formula_with_the_seeded_randoms() {
        let mut h = H::new(ManagerConfig {
            seed: 42,
            ..H::config()
        });
        let s = h.connected();
        let mut rng = SplitMix64::new(42);
        h.ws_closed();
        h.events();
        let mut now = 0;
        let mut delays = Vec::new();
        for attempt in 1..=5u32 {
            let delay = formula(attempt as i32 - 1, rng.next_f64());
            delays.push(delay);
            assert_eq!(
                h.m.poll_timeout(),
                Some(t(now + delay)),
                "attempt {attempt}"
            );
            now += delay;
            h.tick(now);
            assert_eq!(h.events(), [Event::ReconnectAttempt(attempt)]);
            let ws = h.ws();
            h.m.handle_input(
                t(now),
                Input::TransportError {
                    transport: ws,
                    description: "websocket error".into(),
                },
            );
            h.drain();
            let message = "websocket error".to_owned();
            assert_eq!(
                h.events(),
                [
                    Event::Error {
                        message: message.clone()
                    },
                    Event::ConnectError {
                        socket: s,
                        message: message.clone(),
                        data: None,
                        retrying: true,
                    },
                    Event::ReconnectError { message }
                ]
            );
        }
        // the delays grow and stay within [min/2, max] around 1000 * 2^n
        assert!(
            delays.iter().all(|d| (500..=5000).contains(d)),
            "{delays:?}"
        );
    }

    #[test]
    fn reconnect_failed_after_the_attempts() {
        let mut h = H::new(ManagerConfig {
            reconnection_attempts: Some(2),
            ..H::config()
        });
        let s = h.connected();
        h.ws_closed();
        h.events();
        for _ in 0..2 {
            let at = h.m.poll_timeout().expect("attempt");
            h.tick(at.as_millis());
            h.ws_closed();
        }
        let events = h.events();
        assert_eq!(events[events.len() - 2], Event::ReconnectFailed);
        assert!(matches!(events.last(), Some(Event::ReconnectError { .. })));
        assert_eq!(h.m.poll_timeout(), None);
        assert!(h.m.is_active(s), "the socket still connects if asked");
        h.m.connect(h.now());
        h.drain();
        assert_eq!(h.m.ready_state(), ReadyState::Opening);
    }

    #[test]
    fn successful_reconnection() {
        let mut h = H::new(H::config());
        let s = h.connected();
        h.ws_closed();
        assert_eq!(
            h.events(),
            [
                close(DisconnectReason::TransportClose),
                disconnect(s, DisconnectReason::TransportClose)
            ]
        );
        assert!(h.m.is_active(s));
        assert!(h.m.is_reconnecting());
        h.reconnect();
        assert_eq!(
            h.events(),
            [Event::ReconnectAttempt(1), Event::Open, Event::Reconnect(1)]
        );
        assert_eq!(h.sent(), ["40"]);
        h.server(r#"40{"sid":"s2"}"#);
        assert_eq!(
            h.events(),
            [Event::Connect {
                socket: s,
                sid: "s2".into(),
                recovered: false
            }]
        );
        assert!(!h.m.is_reconnecting());
        assert_eq!(h.m.socket_sid(s), Some("s2"));
    }

    #[test]
    fn server_disconnect_is_final_for_the_socket() {
        let mut h = H::new(H::config());
        let main = h.connected();
        let admin = h.open("/admin", SocketOptions::default());
        h.server(r#"40/admin,{"sid":"a"}"#);
        h.events();
        h.server("41/admin,");
        assert_eq!(
            h.events(),
            [disconnect(admin, DisconnectReason::IoServerDisconnect)]
        );
        assert!(!h.m.is_active(admin));
        assert_eq!(h.m.ready_state(), ReadyState::Open);
        // events for an inactive socket are dropped
        h.server(r#"42/admin,["x"]"#);
        assert!(h.events().is_empty());
        // the last active socket gone, the manager closes and does not reconnect
        h.io.clear();
        h.server("41");
        assert_eq!(
            h.events(),
            [
                close(DisconnectReason::ForcedClose),
                disconnect(main, DisconnectReason::IoServerDisconnect)
            ]
        );
        assert!(h.io.contains(&Io::Close { transport: h.ws() }));
        assert_eq!(h.m.poll_timeout(), None);
        assert!(!h.m.is_reconnecting());
        // connecting it again is up to the application
        h.m.connect_socket(h.now(), main).expect("connect");
        h.drain();
        assert_eq!(h.m.ready_state(), ReadyState::Opening);
    }

    #[test]
    fn connect_error_deactivates_the_socket() {
        let mut h = H::new(H::config());
        let s = h.open("/", SocketOptions::default());
        h.handshake();
        h.events();
        h.server(r#"44{"message":"not authorized","data":{"reason":"bad token"}}"#);
        assert_eq!(
            h.events(),
            [
                close(DisconnectReason::ForcedClose),
                Event::ConnectError {
                    socket: s,
                    message: "not authorized".into(),
                    data: Some(raw(r#"{"reason":"bad token"}"#)),
                    retrying: false,
                }
            ]
        );
        assert!(!h.m.is_active(s));
        assert_eq!(h.m.poll_timeout(), None);
    }

    #[test]
    fn accept_without_sid_is_a_v2_server() {
        let mut h = H::new(H::config());
        let s = h.open("/", SocketOptions::default());
        h.handshake();
        h.events();
        h.server("40");
        let events = h.events();
        assert!(
            matches!(&events[..], [Event::ConnectError { socket, message, .. }] if *socket == s && message.contains("v2.x"))
        );
        assert!(h.m.is_active(s));
    }

    #[test]
    fn client_disconnect() {
        let mut h = H::new(H::config());
        let s = h.connected();
        let a = h.emit(s, ev("x"), EmitOptions::with_ack()).expect("ack");
        h.sent();
        h.m.disconnect(h.now(), s).expect("disconnect");
        h.drain();
        assert_eq!(h.sent(), ["41"]);
        assert_eq!(
            h.events(),
            [
                close(DisconnectReason::ForcedClose),
                disconnect(s, DisconnectReason::IoClientDisconnect),
                Event::AckError {
                    socket: s,
                    ack: a,
                    error: AckError::Disconnected
                }
            ]
        );
        assert_eq!(h.m.engine().state(), eio::State::Closed);
        assert_eq!(h.m.poll_timeout(), None);
        assert!(!h.m.is_active(s));
        // a second disconnect has nothing left to do
        h.m.disconnect(h.now(), s).expect("disconnect");
        h.drain();
        assert!(h.events().is_empty() && h.sent().is_empty());
    }

    #[test]
    fn disconnecting_during_the_reconnection_wait_stops_it() {
        let mut h = H::new(H::config());
        let s = h.connected();
        h.ws_closed();
        h.events();
        h.m.disconnect(h.now(), s).expect("disconnect");
        h.drain();
        assert_eq!(h.events(), [close(DisconnectReason::ForcedClose)]);
        assert!(!h.m.is_reconnecting());
        assert_eq!(h.m.poll_timeout(), None);
    }

    #[test]
    fn parse_error_closes_and_reconnects() {
        let mut h = H::new(H::config());
        let s = h.connected();
        h.server("4999");
        let description = Some("unknown packet type".to_owned());
        assert_eq!(
            h.events(),
            [
                Event::Close {
                    reason: DisconnectReason::ParseError,
                    description: description.clone()
                },
                Event::Disconnect {
                    socket: s,
                    reason: DisconnectReason::ParseError,
                    description
                }
            ]
        );
        assert!(h.m.is_reconnecting());
        h.reconnect();
        assert_eq!(h.sent(), ["40"]);
    }

    #[test]
    fn ping_timeout_disconnects() {
        let mut h = H::new(H::config());
        let s = h.connected();
        h.server("2");
        assert_eq!(h.sent(), ["3"]);
        assert_eq!(h.events(), [Event::Ping]);
        h.tick(45_000);
        assert_eq!(
            h.events(),
            [
                close(DisconnectReason::PingTimeout),
                disconnect(s, DisconnectReason::PingTimeout)
            ]
        );
    }

    #[test]
    fn an_expired_heartbeat_buffers_the_emit() {
        let mut h = H::new(H::config());
        let s = h.connected();
        h.now = 50_000; // the timer has not fired yet
        let a = h.emit(s, ev("x"), EmitOptions::with_ack()).expect("ack");
        assert!(h.sent().is_empty());
        assert_eq!(
            h.events(),
            [
                close(DisconnectReason::PingTimeout),
                disconnect(s, DisconnectReason::PingTimeout)
            ],
            "the buffered emit's ack waits"
        );
        assert_eq!(h.m.send_buffer_len(s), 1);
        h.reconnect();
        h.server(r#"40{"sid":"s2"}"#);
        assert_eq!(h.sent(), ["40", r#"420["x"]"#]);
        h.server("430[]");
        assert!(matches!(h.events().last(), Some(Event::Ack { ack, .. }) if *ack == a));
    }

    #[test]
    fn recovery_sends_pid_and_last_offset() {
        let mut h = H::new(H::config());
        let s = h.open(
            "/",
            SocketOptions {
                auth: Auth::Static(Some(raw(r#"{"token":"t"}"#))),
                ..SocketOptions::default()
            },
        );
        h.handshake();
        assert_eq!(h.sent(), [r#"40{"token":"t"}"#]);
        h.server(r#"40{"sid":"a","pid":"p"}"#);
        h.server(r#"42["e",1,"o1"]"#);
        h.server(r#"421["e","o2"]"#); // an ack id: the reference's last argument is a callback
        h.server(r#"42["e",{"x":"o3"}]"#); // last element not a string
        h.ws_closed();
        h.events();
        h.reconnect();
        assert_eq!(h.sent(), [r#"40{"pid":"p","offset":"o1","token":"t"}"#]);
        // the server replays what was missed, then accepts with the same pid
        h.server(r#"42["missed","o4"]"#);
        h.server(r#"40{"sid":"a","pid":"p"}"#);
        let events = h.events();
        assert!(
            matches!(
                &events[..],
                [Event::ReconnectAttempt(1), Event::Open, Event::Reconnect(1), Event::Event { packet, .. }, Event::Connect { .. }]
                    if packet.event_name().as_deref() == Some("missed")
            ),
            "{events:?}"
        );
        assert!(h.m.is_recovered(s));
        h.ws_closed();
        h.reconnect();
        assert_eq!(h.sent(), [r#"40{"pid":"p","offset":"o4","token":"t"}"#]);
        // a server without recovery: no pid in the accept, none sent next time
        h.server(r#"40{"sid":"b"}"#);
        assert!(!h.m.is_recovered(s));
        h.ws_closed();
        h.reconnect();
        assert_eq!(h.sent(), [r#"40{"token":"t"}"#]);
    }

    #[test]
    fn recovery_payload_merges_auth_like_object_assign() {
        assert_eq!(recovery_payload("p", None, None).as_str(), r#"{"pid":"p"}"#);
        assert_eq!(
            recovery_payload(
                "p",
                Some("o"),
                Some(&raw(r#"{ "a" : 1, "offset":"mine", "b":{"c":[1,"}"]} }"#))
            )
            .as_str(),
            r#"{"pid":"p","offset":"mine","a":1,"b":{"c":[1,"}"]}}"#
        );
        // an offset given only by auth keeps the second place, as in the JavaScript object
        assert_eq!(
            recovery_payload("p", None, Some(&raw(r#"{"x":"\"","offset":2}"#))).as_str(),
            r#"{"pid":"p","offset":2,"x":"\""}"#
        );
        assert_eq!(
            recovery_payload("p", Some("o"), Some(&raw("{}"))).as_str(),
            r#"{"pid":"p","offset":"o"}"#
        );
    }

    #[test]
    fn last_string_element() {
        assert_eq!(last_string(r#"["e",1,"o"]"#).as_deref(), Some("o"));
        assert_eq!(last_string(r#"["e",{"a":"b"}]"#), None);
        assert_eq!(last_string(r#"["a\"b"]"#).as_deref(), Some("a\"b"));
        assert_eq!(last_string(r#"["e",[1,"x"],null]"#), None);
        assert_eq!(last_string("[]"), None);
    }

    #[test]
    fn volatile_is_dropped_when_not_writable() {
        let mut h = H::new(H::config());
        let s = h.open("/", SocketOptions::default());
        let volatile = EmitOptions {
            volatile: true,
            ..EmitOptions::default()
        };
        h.emit(s, ev("gone"), volatile);
        assert_eq!(h.m.send_buffer_len(s), 0);
        h.handshake();
        h.server(r#"40{"sid":"x"}"#);
        h.sent();
        h.emit(s, ev("kept"), volatile);
        assert_eq!(h.sent(), [r#"42["kept"]"#]);
    }

    #[test]
    fn volatile_over_polling_is_dropped_while_a_post_is_in_flight() {
        let mut m = Manager::new(ManagerConfig::default());
        let s = m
            .open_socket(t(0), "/", SocketOptions::default())
            .expect("open");
        let Some(Output::Io(Io::Get { transport, .. })) = m.poll_output() else {
            panic!()
        };
        m.handle_input(
            t(1),
            Input::PollResponse {
                transport,
                body: Bytes::from(OPEN),
            },
        );
        while m.poll_output().is_some() {}
        m.handle_input(
            t(2),
            Input::PollResponse {
                transport,
                body: Bytes::from_static(br#"40{"sid":"x"}"#),
            },
        );
        let out: Vec<_> = std::iter::from_fn(|| m.poll_output()).collect();
        assert!(out.contains(&Output::Event(Event::Connect {
            socket: s,
            sid: "x".into(),
            recovered: false
        })));
        // the CONNECT's POST is still in flight
        assert!(!m.engine().is_writable());
        let volatile = EmitOptions {
            volatile: true,
            ..EmitOptions::default()
        };
        m.emit(t(3), s, ev("dropped"), volatile).expect("emit");
        m.handle_input(t(4), Input::PostResponse { transport });
        m.emit(t(5), s, ev("sent"), volatile).expect("emit");
        let posts: Vec<_> = std::iter::from_fn(|| m.poll_output())
            .filter_map(|o| match o {
                Output::Io(Io::Post { body, .. }) => Some(body),
                _ => None,
            })
            .collect();
        assert_eq!(posts, [Bytes::from_static(br#"42["sent"]"#)]);
    }

    #[test]
    fn send_buffer_is_bounded() {
        let mut h = H::new(ManagerConfig {
            max_send_buffer: 2,
            ..H::config()
        });
        let s = h.open("/", SocketOptions::default());
        h.emit(s, ev("a"), EmitOptions::default());
        h.emit(s, ev("b"), EmitOptions::default());
        assert_eq!(
            h.m.emit(h.now(), s, ev("c"), EmitOptions::with_ack()),
            Err(ClientError::SendBufferFull)
        );
        h.handshake();
        h.server(r#"40{"sid":"x"}"#);
        h.sent();
        // the refused emit used no ack id
        assert_eq!(h.emit(s, ev("d"), EmitOptions::with_ack()), Some(AckId(0)));
        assert_eq!(h.sent(), [r#"420["d"]"#]);
    }

    #[test]
    fn invalid_commands_are_refused() {
        let mut h = H::new(H::config());
        let s = h.connected();
        let now = h.now();
        assert_eq!(
            h.m.emit(
                now,
                s,
                Packet::event("/", raw(r#"["connect"]"#), vec![]),
                EmitOptions::default()
            ),
            Err(ClientError::InvalidEvent)
        );
        assert_eq!(
            h.m.emit(
                now,
                s,
                Packet::ack("/", 1, raw("[]"), vec![]),
                EmitOptions::default()
            ),
            Err(ClientError::InvalidEvent)
        );
        assert_eq!(
            h.m.emit(now, SocketId(9), ev("x"), EmitOptions::default()),
            Err(ClientError::UnknownSocket)
        );
        assert_eq!(h.m.ack(now, s, ev("x")), Err(ClientError::InvalidAck));
        h.m.disconnect(now, s).expect("disconnect");
        assert_eq!(
            h.m.ack(now, s, Packet::ack("/", 1, raw("[]"), vec![])),
            Err(ClientError::NotConnected)
        );
    }

    #[test]
    fn connect_timeout() {
        let mut h = H::new(H::config());
        let s = h.open("/", SocketOptions::default());
        let ws = h.ws();
        assert_eq!(h.m.poll_timeout(), Some(t(20_000)));
        h.tick(20_000);
        let message = "timeout".to_owned();
        assert_eq!(
            h.events(),
            [
                Event::Error {
                    message: message.clone()
                },
                Event::ConnectError {
                    socket: s,
                    message,
                    data: None,
                    retrying: true,
                }
            ]
        );
        assert!(h.io.contains(&Io::Close { transport: ws }));
        assert!(h.m.is_reconnecting());
        // a late handshake on the abandoned WebSocket is ignored
        h.input(Input::WsOpen { transport: ws });
        assert!(h.sent().is_empty() && h.events().is_empty());
    }

    #[test]
    fn answering_server_events_and_binary() {
        let mut h = H::new(H::config());
        let s = h.connected();
        h.server(r#"4212["question"]"#);
        let events = h.events();
        let [Event::Event { packet, .. }] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(packet.id(), Some(12));
        let answer = Packet::ack_with("/ignored", 12, &("answer",)).expect("ack");
        h.m.ack(h.now(), s, answer).expect("ack");
        h.drain();
        assert_eq!(h.sent(), [r#"4312["answer"]"#]);
        // binary in both directions
        h.server(r#"451-["file",{"_placeholder":true,"num":0}]"#);
        assert!(h.events().is_empty());
        let ws = h.ws();
        h.input(Input::WsFrame {
            transport: ws,
            frame: Frame::Binary(Bytes::from_static(&[1, 2, 3])),
        });
        let events = h.events();
        let [Event::Event { packet, .. }] = events.as_slice() else {
            panic!("{events:?}")
        };
        let (data,): (Bytes,) = packet.args().expect("args");
        assert_eq!(&data[..], &[1, 2, 3]);
        let out = Packet::event_with("/", "up", &(Bytes::from_static(&[9, 9]),)).expect("event");
        h.emit(s, out, EmitOptions::default());
        assert_eq!(
            h.sent(),
            [
                r#"451-["up",{"_placeholder":true,"num":0}]"#.to_owned(),
                "<binary 2>".to_owned()
            ]
        );
    }

    #[test]
    fn receive_buffer_is_bounded() {
        let mut h = H::new(ManagerConfig {
            max_receive_buffer: 1,
            ..H::config()
        });
        let s = h.open("/", SocketOptions::default());
        h.handshake();
        h.events();
        h.server(r#"42["a"]"#);
        h.server(r#"42["b"]"#);
        assert_eq!(
            h.events(),
            [
                Event::Close {
                    reason: DisconnectReason::ParseError,
                    description: Some("receive buffer full".into())
                },
                Event::Disconnect {
                    socket: s,
                    reason: DisconnectReason::ParseError,
                    description: Some("receive buffer full".into())
                }
            ]
        );
    }

    #[test]
    fn events_held_for_an_accept_that_never_came_are_dropped() {
        let mut h = H::new(H::config());
        let s = h.open("/", SocketOptions::default());
        h.handshake();
        // a replayed event arrives, then the connection dies before the accept
        h.server(r#"42["missed",1]"#);
        h.ws_closed();
        h.events();
        h.reconnect();
        h.server(r#"40{"sid":"s2"}"#);
        let events = h.events();
        assert!(events
            .iter()
            .any(|e| matches!(e, Event::Connect { socket, .. } if *socket == s)));
        assert!(
            !events.iter().any(|e| matches!(e, Event::Event { .. })),
            "the event of the dead connection is not delivered: {events:?}"
        );
    }

    #[test]
    fn a_socket_disconnected_while_connecting_leaves_when_accepted() {
        let mut h = H::new(H::config());
        let root = h.open("/", SocketOptions::default());
        let admin = h.open("/admin", SocketOptions::default());
        h.handshake();
        h.server(r#"40{"sid":"s1"}"#);
        h.sent();
        h.m.disconnect(h.now(), admin).expect("disconnect");
        h.drain();
        assert!(h.sent().is_empty(), "not connected yet: nothing to send");
        h.server(r#"40/admin,{"sid":"s2"}"#);
        assert_eq!(h.sent(), ["41/admin,"]);
        let events = h.events();
        assert!(!events
            .iter()
            .any(|e| matches!(e, Event::Connect { socket, .. } if *socket == admin)));
        assert!(h.m.is_connected(root));
    }

    #[test]
    fn turning_reconnection_off_cancels_the_attempt() {
        let mut h = H::new(H::config());
        h.connected();
        h.ws_closed();
        assert!(h.m.is_reconnecting());
        h.m.set_reconnection(false);
        assert!(!h.m.is_reconnecting());
        assert_eq!(h.m.poll_timeout(), None);
    }
}
