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
//! | pending acks | [`ManagerConfig::max_pending_acks`] per socket (the reference: none) | [`Manager::emit`] asking for an ack returns [`ClientError::TooManyPendingAcks`]; nothing is sent |
//! | output queue | what one call produced, if drained after every call | - |

// This file: the `Manager` with its commands and accessors, the per-socket state, and the machine
// loop (timers, the engine's outputs, incoming packets to their socket). The rest, by the state
// it owns:
mod acks; // ack handles and wire ids, pending acks, their deadlines and timeouts
mod buffers; // emits sent, buffered offline or dropped; events held until the CONNECT accept
mod config; // ManagerConfig, SocketOptions, EmitOptions, Auth
mod connect; // a socket's CONNECT (auth, recovery pid and offset), accept, refusal and close
mod delivery; // the reliable delivery queue (`retries`)
mod events; // Event, Output, DisconnectReason, ReadyState, ClientError
mod failure; // TransportError, ConnectionError, OpenFailures: open failures typed for drivers
mod reconnect; // the connection: open, open failure, close, reconnection with backoff

use std::time::Duration;

pub use self::acks::AckId;
use self::acks::PendingAck;
use self::buffers::Buffered;
use self::config::is_json_object;
pub use self::config::{Auth, EmitOptions, ManagerConfig, SocketOptions};
use self::delivery::Queued;
pub use self::events::{ClientError, DisconnectReason, Event, Output, ReadyState};
pub use self::failure::{ConnectionError, OpenFailures, TransportError};
use super::backoff::{Backoff, SplitMix64};
use super::decode::Decoder;
pub use super::error::AckError;
use super::json::RawJson;
use super::packet::{Packet, PacketType};
pub use crate::engine::client::Input;
use crate::engine::client::{self as eio, SendError};
use crate::fifo::Fifo;
use crate::{Instant, Str};

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

/// One namespace socket. Each part of its state is handled by one file of this module: `active`,
/// `connected`, the sid and the recovery fields by `connect`, the ack ids and `acks` by `acks`,
/// `send_buffer` and `receive_buffer` by `buffers`, `queue` by `delivery`.
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
    /// The application wants [`Event::Sent`] for this socket's emits.
    report_sent: bool,
    next_wire_id: u64,
    next_handle: u64,
    /// Pending acks by wire id, in id order (ids only grow: inserts append). At most
    /// [`ManagerConfig::max_pending_acks`] user acks (plus the delivery queue's), so a removal's
    /// shift stays bounded; a `Vec` keeps the browser build smaller than a `VecDeque` would.
    acks: Vec<(u64, PendingAck)>,
    /// The offline buffers: appended to, filtered, and taken whole (`Vec`s, smaller in the
    /// browser build than `VecDeque`s).
    send_buffer: Vec<Buffered>,
    receive_buffer: Vec<Packet>,
    /// The delivery queue, oldest first: appended to and taken from the front, at most
    /// [`ManagerConfig::max_send_buffer`] entries (a `Vec`: no `VecDeque` code in the browser
    /// build).
    queue: Vec<Queued>,
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
            report_sent: false,
            next_wire_id: 0,
            next_handle: 0,
            acks: Vec::new(),
            send_buffer: Vec::new(),
            receive_buffer: Vec::new(),
            queue: Vec::new(),
            queue_seq: 0,
        }
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
    /// Query parameters set while a session was open, for the next one.
    next_query: Option<eio::Query>,
    backoff: Backoff,
    rng: SplitMix64,
    sockets: Vec<SocketState>,
    /// Ack deadlines, sorted (deadlines are mostly added in order, so inserts mostly append;
    /// the due ones leave together).
    ack_deadlines: Vec<(Instant, SocketId, u64)>,
    outputs: Fifo<Output>,
    /// Whether [`Event::Packet`] is reported.
    report_packets: bool,
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
            // The engine settings are the session's alone (see `config()`): moved, not cloned.
            engine: eio::Session::new(std::mem::take(&mut config.engine)),
            decoder: {
                let mut decoder = config.parser.decoder(config.max_attachments);
                decoder.defer_json_check(config.defer_json_check);
                decoder
            },
            ready: ReadyState::Closed,
            reconnecting: false,
            skip_reconnect: false,
            opening_for_reconnect: false,
            connect_deadline: None,
            reconnect_deadline: None,
            next_query: None,
            backoff: Backoff::new(
                config.reconnection_delay,
                config.reconnection_delay_max,
                config.randomization_factor,
            ),
            rng: SplitMix64::new(config.seed),
            sockets: Vec::new(),
            ack_deadlines: Vec::new(),
            outputs: Fifo::new(),
            report_packets: false,
            config,
        }
    }

    /// The settings (normalised as described on [`ManagerConfig`]), but for its `engine`
    /// settings: those move into the Engine.IO session when the manager is made (no copy kept),
    /// so read them with [`Manager::engine`]`().config()`; the field holds the defaults.
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

    /// The application could not parse the JSON of an event this manager handed over with its
    /// check deferred ([`ManagerConfig::defer_json_check`]): the connection closes with
    /// `parse error` ("invalid payload"), as for a packet the decoder refuses, and reconnects if
    /// reconnection is on. Ignored unless the connection is open.
    pub fn payload_invalid(&mut self, now: Instant) {
        if self.ready == ReadyState::Open {
            self.on_close(
                now,
                DisconnectReason::ParseError,
                Some(super::DecodeError::InvalidPayload.as_str().to_owned()),
            );
        }
    }

    /// Replaces the query parameters sent with every request (`manager.opts.query = ...`, to
    /// refresh a token, say): the next session sends them; a session open now (or opening)
    /// keeps its own, as engine.io-client copies its `query` when a session starts.
    pub fn set_query(&mut self, query: Vec<(String, String)>) {
        if self.ready == ReadyState::Closed && self.engine.state() == eio::State::Closed {
            self.engine.set_query(query);
            self.next_query = None;
        } else {
            self.next_query = Some(query);
        }
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

    /// Sets the most reconnection attempts before giving up (`reconnectionAttempts(v)`; `None`
    /// or `Some(0)`: unlimited, as in [`ManagerConfig`]). Checked when the next attempt is
    /// scheduled, against the attempts already made since the last connection.
    pub fn set_reconnection_attempts(&mut self, attempts: Option<u32>) {
        self.config.reconnection_attempts = attempts.filter(|n| *n != 0);
    }

    /// Sets the first delay between attempts (`reconnectionDelay(v)`; zero: the default, 1 s,
    /// as in [`ManagerConfig`]). The next delay computed uses it (an attempt already scheduled
    /// keeps its time, as in the reference); the attempts made so far still count.
    pub fn set_reconnection_delay(&mut self, delay: Duration) {
        self.config.reconnection_delay = if delay.is_zero() {
            Duration::from_millis(1000)
        } else {
            delay
        };
        self.rebuild_backoff();
    }

    /// Sets the largest delay between attempts (`reconnectionDelayMax(v)`; zero: the default,
    /// 5 s). Applies as [`Manager::set_reconnection_delay`] does.
    pub fn set_reconnection_delay_max(&mut self, delay: Duration) {
        self.config.reconnection_delay_max = if delay.is_zero() {
            Duration::from_millis(5000)
        } else {
            delay
        };
        self.rebuild_backoff();
    }

    /// Sets the jitter of the delays (`randomizationFactor(v)`; outside `(0, 1]`: none).
    /// Applies as [`Manager::set_reconnection_delay`] does.
    pub fn set_randomization_factor(&mut self, factor: f64) {
        self.config.randomization_factor = factor;
        self.rebuild_backoff();
    }

    /// Sets the time an Engine.IO session has to open (`timeout(v)`; `None`: no limit). The
    /// next opening uses it; one under way keeps its deadline, as in the reference.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.config.timeout = timeout;
    }

    /// A backoff with the settings of now and the attempts counted so far.
    fn rebuild_backoff(&mut self) {
        let attempts = self.backoff.attempts();
        let mut backoff = Backoff::new(
            self.config.reconnection_delay,
            self.config.reconnection_delay_max,
            self.config.randomization_factor,
        );
        // `Backoff` counts its attempts itself: each `duration` counts one (the number drawn
        // does not matter here). Bounded by the attempts made, one per failed connection.
        for _ in 0..attempts {
            let _ = backoff.duration(0.0);
        }
        self.backoff = backoff;
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
            let encoded = self
                .config
                .parser
                .encode(&Packet::disconnect(s.nsp.clone()));
            let _ = self.engine.enqueue(encoded.frame_list(), true, false);
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
        // Its id is replaced when it is sent (`emit_packet`).
        let packet = packet.with_nsp(s.nsp.clone());
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
        let encoded = self.config.parser.encode(&packet.with_nsp(s.nsp.clone()));
        let result = match self.engine.send_list(now, encoded.frame_list(), true) {
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

    /// Asks for [`Event::Sent`] for the socket's emits from now on (`onAnyOutgoing` listeners),
    /// or stops it. Off by default, so that a socket without such listeners keeps no copy of
    /// what it buffers.
    pub fn report_sent(&mut self, socket: SocketId, on: bool) -> Result<(), ClientError> {
        self.state_mut(socket)?.report_sent = on;
        Ok(())
    }

    /// Asks for [`Event::Packet`] (every packet decoded from the server, the manager's `packet`
    /// event) from now on, or stops it. Off by default: a manager without such listeners copies
    /// no packet.
    pub fn report_packets(&mut self, on: bool) {
        self.report_packets = on;
    }

    /// Asks for [`Event::EnginePacket`] and [`Event::EnginePacketCreate`] (the Engine.IO
    /// packets of the connection, `io.engine`'s `packet` and `packetCreate`) from now on, or
    /// stops them. Off by default.
    #[cfg(feature = "engine-events")]
    pub fn report_engine_packets(&mut self, on: bool) {
        self.engine.report_packets(on);
    }

    /// True while a binary packet waits for its attachments (the decoder's
    /// [`is_reconstructing`](crate::socket::Decoder::is_reconstructing)): the binary messages
    /// that come next belong to it.
    pub fn is_reconstructing(&self) -> bool {
        self.decoder.is_reconstructing()
    }

    /// Whether the manager reads the bytes of the WebSocket binary messages it is given. With
    /// the JSON parser it never does: such a message is the next attachment of the binary
    /// packet announced before it, counted and handed back as it came, in order, in the
    /// packet's attachments ([`Event::Event`], [`Event::Ack`], [`Event::Packet`]), so a driver
    /// that keeps the data itself may give a stand-in (any bytes of its own, say a small buffer
    /// it can recognise) and put the data back in place of it. Malformed input is refused the
    /// same either way (a message no packet waits for, a placeholder beyond the attachments).
    /// With another parser (msgpack) a binary message is a whole packet, read: true.
    pub fn reads_binary_messages(&self) -> bool {
        !self.config.parser.is_json()
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
        self.outputs.pop()
    }

    /// When [`Input::Timeout`] must be given next: the heartbeat, the connect timeout, the next
    /// reconnection attempt, or the earliest ack deadline.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = self.engine.poll_timeout();
        for d in [
            self.connect_deadline,
            self.reconnect_deadline,
            self.ack_deadlines.first().map(|(d, _, _)| *d),
        ] {
            next = match (next, d) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        next
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
        // The due deadlines leave in one piece, in order (again if handling them added due
        // ones: a retry with no delay).
        loop {
            let due = self.ack_deadlines.partition_point(|(d, _, _)| *d <= now);
            if due == 0 {
                break;
            }
            let rest = self.ack_deadlines.split_off(due);
            for (_, socket, id) in std::mem::replace(&mut self.ack_deadlines, rest) {
                self.on_ack_timeout(now, socket, id);
            }
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
        self.outputs.push(Output::Event(event));
    }

    /// Moves the engine's outputs over: I/O to the driver, events through the manager. Only
    /// called at the end of public entry points (and by `open`, itself only called from them),
    /// so events are handled in order.
    fn pump(&mut self, now: Instant) {
        while let Some(out) = self.engine.poll_output() {
            match out {
                eio::Output::Io(io) => self.outputs.push(Output::Io(io)),
                eio::Output::Event(event) => self.on_engine_event(now, event),
            }
        }
    }

    fn on_engine_event(&mut self, now: Instant, event: eio::Event) {
        #[cfg(feature = "engine-events")]
        let event = match event {
            // The connection's packets, reported while it is the manager's.
            eio::Event::Packet(packet) => {
                if self.ready != ReadyState::Closed {
                    self.event(Event::EnginePacket(packet));
                }
                return;
            }
            eio::Event::PacketCreate(packet) => {
                if self.ready != ReadyState::Closed {
                    self.event(Event::EnginePacketCreate(packet));
                }
                return;
            }
            event => event,
        };
        match self.ready {
            // A connection the manager gave up on: its events are ignored.
            ReadyState::Closed => {}
            ReadyState::Opening => match event {
                eio::Event::Open => self.on_open(now),
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
                eio::Event::Upgrading(t) => self.event(Event::Upgrading(t)),
                eio::Event::Upgrade(t) => self.event(Event::Upgrade(t)),
                eio::Event::UpgradeError(text) => self.event(Event::UpgradeError(text)),
                _ => {}
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

    /// False only for an event whose JSON check was deferred
    /// ([`ManagerConfig::defer_json_check`]) and whose payload is not JSON (nesting past
    /// [`MAX_JSON_DEPTH`](crate::socket::MAX_JSON_DEPTH) included): every other packet was
    /// checked by the decoder.
    pub(super) fn reads_as_json(&self, packet: &Packet) -> bool {
        !self.config.defer_json_check
            || packet.kind() != PacketType::Event
            || packet
                .data()
                .is_none_or(|d| crate::scan::validate(d.as_str()).is_some())
    }

    /// An event whose JSON check was deferred ([`ManagerConfig::defer_json_check`]) that the
    /// application may never parse (for no socket, or buffered): checked here
    /// ([`Manager::reads_as_json`]), and the connection closed with `parse error` if it is not
    /// JSON, as the decoder would have. True when it closed.
    pub(super) fn check_unread(&mut self, now: Instant, packet: &Packet) -> bool {
        let invalid = !self.reads_as_json(packet);
        if invalid {
            self.payload_invalid(now);
        }
        invalid
    }

    /// A packet from the server, to its namespace's socket.
    fn on_packet(&mut self, now: Instant, packet: Packet) {
        if self.report_packets {
            self.event(Event::Packet {
                packet: packet.clone(),
            });
        }
        let Some(socket) = self.socket_for(packet.nsp()) else {
            self.check_unread(now, &packet);
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
                let encoded = self
                    .config
                    .parser
                    .encode(&Packet::disconnect(s.nsp.clone()));
                let _ = self.engine.enqueue(encoded.frame_list(), true, false);
                return;
            }
        }
        if !s.active {
            self.check_unread(now, &packet);
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
            PacketType::ConnectError => self.on_connect_error(now, socket, &packet),
        }
    }
}

// `report_packets`: the decoded packets reported as they arrive, and only when asked for.
#[cfg(test)]
mod report_tests {
    use super::*;
    use crate::engine::client::{Io, Transport};
    use crate::engine::Frame;
    use bytes::Bytes;

    /// The engine settings given to the manager are the session's, and the manager's first
    /// request follows them.
    #[test]
    fn engine_settings_go_to_the_session() {
        let mut config = ManagerConfig::default();
        config.engine.transports = vec![Transport::WebSocket];
        config.engine.query = vec![("token".to_owned(), "abc".to_owned())];
        config.engine.timestamp_param = "ts".to_owned();
        let mut m = Manager::new(config);
        let engine = m.engine().config();
        assert_eq!(engine.transports, [Transport::WebSocket]);
        assert_eq!(engine.timestamp_param, "ts");
        m.connect(Instant::from_millis(0));
        let query = std::iter::from_fn(|| m.poll_output())
            .find_map(|o| match o {
                Output::Io(Io::WsOpen { query, .. }) => Some(query),
                _ => None,
            })
            .expect("a WebSocket first");
        assert!(query.contains(&("token".to_owned(), "abc".to_owned())));
    }

    /// A WebSocket-only manager with its socket for `/` opened, and the transport it asked for.
    fn opened(report: bool) -> (Manager, eio::TransportId) {
        let mut config = ManagerConfig::default();
        config.engine.transports = vec![Transport::WebSocket];
        let mut m = Manager::new(config);
        m.report_packets(report);
        let t = Instant::from_millis(0);
        m.open_socket(t, "/", SocketOptions::default())
            .expect("socket");
        let transport = std::iter::from_fn(|| m.poll_output())
            .find_map(|o| match o {
                Output::Io(Io::WsOpen { transport, .. }) => Some(transport),
                _ => None,
            })
            .expect("ws open");
        m.handle_input(t, Input::WsOpen { transport });
        (m, transport)
    }

    fn frames(m: &mut Manager, transport: eio::TransportId, texts: &[&str]) -> Vec<Event> {
        let t = Instant::from_millis(1);
        for text in texts {
            let frame = Frame::Text(Str::from(*text));
            m.handle_input(t, Input::WsFrame { transport, frame });
        }
        std::iter::from_fn(|| m.poll_output())
            .filter_map(|o| match o {
                Output::Event(e) => Some(e),
                Output::Io(_) => None,
            })
            .collect()
    }

    const OPEN: &str =
        r#"0{"sid":"e","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000}"#;

    /// The events after the binary messages `data`, each given as it is.
    fn binaries(m: &mut Manager, transport: eio::TransportId, data: &[Bytes]) -> Vec<Event> {
        let t = Instant::from_millis(2);
        for b in data {
            let frame = Frame::Binary(b.clone());
            m.handle_input(t, Input::WsFrame { transport, frame });
        }
        frames(m, transport, &[])
    }

    fn parse_error(events: &[Event]) -> bool {
        events.iter().any(|e| {
            matches!(
                e,
                Event::Disconnect {
                    reason: DisconnectReason::ParseError,
                    ..
                }
            )
        })
    }

    #[test]
    fn binary_messages_come_back_as_given_with_the_json_parser() {
        let (mut m, transport) = opened(true);
        assert!(!m.reads_binary_messages());
        frames(&mut m, transport, &[OPEN, r#"40{"sid":"s"}"#]);
        // Stand-ins for the data a driver keeps: bytes that are no attachment's content.
        let stand_ins = [Bytes::from_static(b"#0"), Bytes::from(vec![1u8])];
        let header = r#"452-["bin",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]"#;
        assert!(frames(&mut m, transport, &[header]).is_empty());
        let events = binaries(&mut m, transport, &stand_ins);
        // The event and the reported packet hold the very buffers given, in their order.
        let mut seen = 0;
        for e in &events {
            let packet = match e {
                Event::Event { packet, .. } | Event::Packet { packet } => packet,
                _ => continue,
            };
            seen += 1;
            assert_eq!(packet.attachments().len(), 2);
            for (a, b) in packet.attachments().iter().zip(&stand_ins) {
                assert_eq!((a.as_ptr(), a.len()), (b.as_ptr(), b.len()));
            }
            assert_eq!(packet.data().map(RawJson::as_str), Some(&header[4..]));
        }
        assert_eq!(seen, 2);
        assert!(!parse_error(&events));
    }

    #[test]
    fn stand_ins_do_not_hide_malformed_binary_packets() {
        let stand_in = Bytes::from_static(b"x");
        // A connected manager that has been given `text` frames, then the stand-in if `binary`.
        let after = |text: &[&str], binary: bool| {
            let (mut m, transport) = opened(false);
            frames(&mut m, transport, &[OPEN, r#"40{"sid":"s"}"#]);
            let mut events = frames(&mut m, transport, text);
            if binary {
                events.extend(binaries(&mut m, transport, std::slice::from_ref(&stand_in)));
            }
            events
        };
        // A binary message no packet waits for.
        assert!(parse_error(&after(&[], true)));
        // A placeholder beyond the attachments that came.
        assert!(parse_error(&after(
            &[r#"451-["a",{"_placeholder":true,"num":1}]"#],
            true
        )));
        // Text while attachments are awaited.
        let events = after(
            &[r#"452-["a",{"_placeholder":true,"num":0}]"#, r#"42["b"]"#],
            false,
        );
        assert!(parse_error(&events));
    }

    #[cfg(feature = "msgpack")]
    #[test]
    fn the_msgpack_parser_reads_binary_messages() {
        let config = ManagerConfig {
            parser: crate::socket::Parser::msgpack(),
            ..ManagerConfig::default()
        };
        assert!(Manager::new(config).reads_binary_messages());
    }

    #[test]
    fn packets_are_reported_only_when_asked_for() {
        let script = [
            OPEN,
            r#"40{"sid":"s"}"#,
            r#"42["a",1]"#,
            r#"42/other,["b"]"#,
        ];
        let (mut m, transport) = opened(false);
        let events = frames(&mut m, transport, &script);
        assert!(events.iter().all(|e| !matches!(e, Event::Packet { .. })));
        assert!(events.iter().any(|e| matches!(e, Event::Connect { .. })));

        let (mut m, transport) = opened(true);
        let events = frames(&mut m, transport, &script);
        let packets: Vec<(PacketType, String, Option<String>)> = events
            .iter()
            .filter_map(|e| match e {
                Event::Packet { packet } => Some((
                    packet.kind(),
                    packet.nsp().to_string(),
                    packet.data().map(|d| d.as_str().to_owned()),
                )),
                _ => None,
            })
            .collect();
        // Every packet, the one for a namespace without a socket included, before its effect.
        assert_eq!(
            packets,
            [
                (
                    PacketType::Connect,
                    "/".into(),
                    Some(r#"{"sid":"s"}"#.into())
                ),
                (PacketType::Event, "/".into(), Some(r#"["a",1]"#.into())),
                (PacketType::Event, "/other".into(), Some(r#"["b"]"#.into())),
            ]
        );
        let first_packet = events
            .iter()
            .position(|e| matches!(e, Event::Packet { .. }));
        let connect = events
            .iter()
            .position(|e| matches!(e, Event::Connect { .. }));
        assert!(first_packet < connect);
        m.report_packets(false);
        let events = frames(&mut m, transport, &[r#"42["c"]"#]);
        assert!(events.iter().all(|e| !matches!(e, Event::Packet { .. })));
    }
}
