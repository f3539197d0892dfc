//! The server side of one Socket.IO client connection: namespaces multiplexed over one
//! Engine.IO session, the CONNECT handshake answered later by the application (middleware runs
//! outside the core), the connect timeout, events and acks per namespace, server acks with
//! deadlines, DISCONNECT both ways, and the reference's closes on protocol violations.
//!
//! [`Connection`] owns the [`crate::engine::server::Session`] and takes the same [`Input`]: the
//! driver feeds it HTTP requests, WebSocket frames and the time, and performs [`Output::Io`]
//! actions; the application sees [`Output::Event`]s ([`Event::Connect`], [`Event::Event`],
//! [`Event::Ack`], [`Event::Disconnect`]) and answers with commands ([`Connection::accept`],
//! [`Connection::send`], ...).
//!
//! ```
//! use ferrio_proto::engine::{server as eio, Frame, Protocol};
//! use ferrio_proto::socket::server::{Config, Connection, Event, Input, Output};
//! use ferrio_proto::{Instant, Str};
//!
//! let t = Instant::from_millis(0);
//! let mut c = Connection::new(t, "eio-sid".into(), Protocol::V4, eio::Transport::WebSocket, eio::Config::default(), Config::default());
//! while c.poll_output().is_some() {} // the open packet
//! c.handle_input(t, Input::WsFrame(Frame::Text(Str::from(r#"40{"token":"abc"}"#)))).unwrap();
//! let Some(Output::Event(Event::Connect { nsp, auth, .. })) = c.poll_output() else { panic!() };
//! assert_eq!(auth.as_str(), r#"{"token":"abc"}"#);
//! c.accept(t, &nsp, "socket-id", None, []).unwrap(); // after the middleware said yes
//! assert_eq!(c.poll_output(), Some(Output::Io(eio::Io::WsSend { frame: Frame::Text(r#"40{"sid":"socket-id"}"#.into()), compress: true })));
//! ```
//!
//! # Every CONNECT gets an answer
//!
//! A client may send CONNECT for a namespace again before the first one is answered
//! (`socket.io-client` does when `socket.connect()` is called while the first is pending, or
//! when the application retries with new auth). The reference starts one more middleware run
//! for each; here one decision is pending per namespace at a time, and every CONNECT is
//! answered once:
//!
//! - [`Event::Connect`] starts a decision that answers one CONNECT. The CONNECTs that arrive
//!   while it is pending are counted (a saturating `u32`) and only the last one's auth is kept,
//!   so a namespace's pending state has a fixed size however many arrive.
//! - [`Connection::accept`] sends the CONNECT accept (same socket id) once for each CONNECT
//!   received: the decision's and those that came during it. The namespace is joined.
//! - [`Connection::reject`] sends CONNECT_ERROR once for each CONNECT the decision answers.
//!   If more arrived meanwhile, a new decision starts at once: a new [`Event::Connect`] for the
//!   namespace with the last one's auth (and its [`RecoveryRequest`]), which answers all of
//!   them when it is decided.
//! - The connect timeout is not changed by any of this: it closes the connection if no
//!   namespace is joined `connect_timeout` after it opened, whatever decisions are pending.
//! - The answers of one decision are bounded by the session's write bound
//!   ([`eio::Config::max_buffered_bytes`]): if they would take more bytes than that, those that
//!   fit are sent and the connection closes with [`DisconnectReason::BufferFull`], as a client
//!   that does not read what it asked for is closed on any transport.
//!   CONNECTs past `u32::MAX` during one decision are not answered.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::time::Duration;

use bytes::Bytes;

use super::compat::{connect_accept, connect_error, split_v4_namespace};
use super::decode::{Decoder, DEFAULT_MAX_ATTACHMENTS};
use super::error::DecodeError;
use super::json::RawJson;
use super::packet::{AckId, EncodedPacket, Packet, PacketType};
use super::parser::Parser;
use crate::engine::request::Handshake;
use crate::engine::server::{self as eio, CloseReason, SendOptions};
pub use crate::engine::server::{Input, RequestError};
use crate::outputs::Outputs;

/// The reference's CONNECT_ERROR message for a namespace the server does not have.
pub const INVALID_NAMESPACE: &str = "Invalid namespace";
use crate::engine::{Frame, Protocol};
use crate::{scan, Instant, Str};

/// Connection settings, with `socket.io`'s defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Time a client has to join a namespace before it is closed (`connectTimeout`, 45 s).
    pub connect_timeout: Duration,
    /// Most binary attachments accepted per packet (`maxAttachments`, 10).
    pub max_attachments: usize,
    /// Most acks one socket (one joined namespace) waits for at once (default
    /// [`DEFAULT_MAX_PENDING_ACKS`](super::DEFAULT_MAX_PENDING_ACKS), 4096; the reference has no
    /// bound). At the bound [`Connection::emit_with_ack`] and [`Connection::expect_ack`] refuse
    /// a new one with [`CommandError::TooManyPendingAcks`] (the event is not sent); an answer, a
    /// timeout or the socket leaving makes room again.
    pub max_pending_acks: usize,
    /// The parser of every packet of the connection (default [`Parser::json`]); the client
    /// must use the same one.
    pub parser: Parser,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            connect_timeout: Duration::from_millis(45_000),
            max_attachments: DEFAULT_MAX_ATTACHMENTS,
            max_pending_acks: super::DEFAULT_MAX_PENDING_ACKS,
            parser: Parser::json(),
        }
    }
}

/// Why a socket (one namespace of a connection) disconnected, as `socket.io` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisconnectReason {
    /// The transport failed (`transport error`).
    TransportError,
    /// The client closed the transport (`transport close`).
    TransportClose,
    /// The Engine.IO session was closed by the server (`forced close`).
    ForcedClose,
    /// The client stopped answering pings (`ping timeout`).
    PingTimeout,
    /// The client sent a payload that does not decode (`parse error`).
    ParseError,
    /// The server is shutting down (`server shutting down`).
    ServerShuttingDown,
    /// The server closed the whole connection (`forced server close`).
    ForcedServerClose,
    /// The client left the namespace (`client namespace disconnect`).
    ClientNamespaceDisconnect,
    /// The server disconnected the socket (`server namespace disconnect`).
    ServerNamespaceDisconnect,
    /// The client stopped polling while too much data waited for it (`buffer full`).
    BufferFull,
}

impl DisconnectReason {
    /// The reason as `socket.io` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::TransportError => "transport error",
            DisconnectReason::TransportClose => "transport close",
            DisconnectReason::ForcedClose => "forced close",
            DisconnectReason::PingTimeout => "ping timeout",
            DisconnectReason::ParseError => "parse error",
            DisconnectReason::ServerShuttingDown => "server shutting down",
            DisconnectReason::ForcedServerClose => "forced server close",
            DisconnectReason::ClientNamespaceDisconnect => "client namespace disconnect",
            DisconnectReason::ServerNamespaceDisconnect => "server namespace disconnect",
            DisconnectReason::BufferFull => "buffer full",
        }
    }

    /// True for the reasons after which connection state recovery keeps the session.
    pub fn is_recoverable(self) -> bool {
        super::recovery::is_recoverable(self.as_str())
    }

    fn from_engine(reason: CloseReason) -> DisconnectReason {
        match reason {
            CloseReason::TransportError => DisconnectReason::TransportError,
            CloseReason::TransportClose => DisconnectReason::TransportClose,
            CloseReason::ForcedClose => DisconnectReason::ForcedClose,
            CloseReason::PingTimeout => DisconnectReason::PingTimeout,
            CloseReason::ParseError => DisconnectReason::ParseError,
            CloseReason::BufferFull => DisconnectReason::BufferFull,
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub use super::error::AckError;

/// A client asking to recover its previous session (connection state recovery): the `pid` and,
/// when it received any event, the `offset` of the last one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryRequest {
    /// The private session id from the previous CONNECT accept.
    pub pid: Str,
    /// The offset of the last event received, if any.
    pub offset: Option<Str>,
}

/// The ack-id counter of one namespace (`nsp._ids++`): shared by all its sockets, so that one
/// broadcast with acks carries one id and is encoded once for every recipient.
#[derive(Debug, Default, Clone)]
pub struct AckIds(u64);

impl AckIds {
    /// The next id.
    pub fn next_id(&mut self) -> u64 {
        let id = self.0;
        self.0 = self.0.wrapping_add(1);
        id
    }
}

/// Something for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A client asks to join `nsp`. The application runs its middleware and answers with
    /// [`Connection::accept`] or [`Connection::reject`].
    Connect {
        /// The namespace (query string removed for EIO 3 clients).
        nsp: Str,
        /// The auth object (`{}` if none was sent).
        auth: RawJson,
        /// Present when the client asks to recover a previous session.
        recovery: Option<RecoveryRequest>,
    },
    /// An event from a joined namespace; if `packet.id()` is set, answer with [`Connection::ack`].
    Event(Packet),
    /// The answer to an event sent with [`Connection::emit_with_ack`].
    Ack(Packet),
    /// An acknowledgement that will not come.
    AckFailed {
        /// The namespace of the event.
        nsp: Str,
        /// Its ack id.
        id: u64,
        /// Why.
        error: AckError,
    },
    /// A socket left: its namespace is no longer joined.
    Disconnect {
        /// The namespace.
        nsp: Str,
        /// Why.
        reason: DisconnectReason,
    },
    /// The client sent something that does not decode; the connection is being closed.
    /// (The reference emits this as an `error` event on each of the client's sockets.)
    Error(DecodeError),
    /// The connection is closed. Nothing follows.
    Closed(DisconnectReason),
}

/// What the driver or the application must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A transport action for the driver: answer a poll, write or close a WebSocket, complete
    /// an upgrade.
    Io(eio::Io),
    /// Something for the application.
    Event(Event),
}

/// Why a command of the application was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    /// The connection is closed or closing.
    Closed,
    /// The namespace is not joined.
    NotConnected,
    /// No CONNECT for the namespace waits for an answer.
    NoPendingConnect,
    /// A volatile packet the transport could not take at once: dropped.
    NotWritable,
    /// The session's write buffer overflowed; the connection is closing.
    BufferFull,
    /// The socket already waits for [`Config::max_pending_acks`] acks: the event was not sent.
    TooManyPendingAcks,
}

impl CommandError {
    /// The reason, as `Display` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandError::Closed => "connection closed",
            CommandError::NotConnected => "namespace not joined",
            CommandError::NoPendingConnect => "no pending CONNECT",
            CommandError::NotWritable => "transport not writable",
            CommandError::BufferFull => "write buffer full",
            CommandError::TooManyPendingAcks => "too many pending acks",
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for CommandError {}

impl From<eio::SendError> for CommandError {
    fn from(e: eio::SendError) -> Self {
        match e {
            eio::SendError::NotWritable => CommandError::NotWritable,
            eio::SendError::BufferFull => CommandError::BufferFull,
            _ => CommandError::Closed,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum NsState {
    /// CONNECT received, the application's answer is pending.
    Connecting(PendingConnect),
    /// Joined.
    Connected,
}

/// The namespaces of one connection by name, ordered: a sorted vector, since a connection
/// has one or a few (a `BTreeMap` node holds room for eleven, 0.9 KB per connection).
#[derive(Debug, Default)]
struct NsMap(Vec<(Str, NsState)>);

impl NsMap {
    fn find(&self, nsp: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(n, _)| n.as_str().cmp(nsp))
    }

    fn get(&self, nsp: &str) -> Option<&NsState> {
        self.find(nsp)
            .ok()
            .and_then(|i| self.0.get(i))
            .map(|(_, s)| s)
    }

    fn get_mut(&mut self, nsp: &str) -> Option<&mut NsState> {
        let i = self.find(nsp).ok()?;
        self.0.get_mut(i).map(|(_, s)| s)
    }

    /// Inserts or replaces the state of `nsp`; returns the one replaced.
    fn insert(&mut self, nsp: Str, state: NsState) -> Option<NsState> {
        match self.find(&nsp) {
            Ok(i) => self
                .0
                .get_mut(i)
                .map(|slot| std::mem::replace(&mut slot.1, state)),
            Err(i) => {
                self.0.insert(i, (nsp, state));
                None
            }
        }
    }

    fn remove_entry(&mut self, nsp: &str) -> Option<(Str, NsState)> {
        let i = self.find(nsp).ok()?;
        Some(self.0.remove(i))
    }

    fn remove(&mut self, nsp: &str) -> Option<NsState> {
        self.remove_entry(nsp).map(|(_, s)| s)
    }

    fn iter(&self) -> impl Iterator<Item = (&Str, &NsState)> {
        self.0.iter().map(|(n, s)| (n, s))
    }

    fn values(&self) -> impl Iterator<Item = &NsState> {
        self.0.iter().map(|(_, s)| s)
    }

    fn clear(&mut self) {
        self.0 = Vec::new();
    }
}

/// A namespace's pending CONNECT decision (see the module docs): a fixed size, however many
/// CONNECTs arrive while it is pending.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PendingConnect {
    /// The CONNECTs the decision answers (1, or the retries a refusal handed on).
    answers: u32,
    /// The CONNECTs received since the decision started.
    retries: u32,
    /// The auth of the last of them; `Some` when `retries > 0`.
    retry_auth: Option<RawJson>,
}

impl PendingConnect {
    fn new(answers: u32) -> PendingConnect {
        PendingConnect {
            answers,
            retries: 0,
            retry_auth: None,
        }
    }

    /// One more CONNECT while the decision is pending.
    fn retry(&mut self, auth: RawJson) {
        self.retries = self.retries.saturating_add(1);
        self.retry_auth = Some(auth);
    }
}

/// The auth of a CONNECT that carries none.
fn empty_auth() -> RawJson {
    RawJson::from_trusted(Str::from_static("{}"))
}

/// One client connection, server side. See the [module docs](self).
#[derive(Debug)]
pub struct Connection {
    engine: eio::Session,
    parser: Parser,
    decoder: Decoder,
    /// Ordered, so that closes list namespaces in the same order every run.
    namespaces: NsMap,
    connect_deadline: Option<Instant>,
    /// The most bytes of answers one CONNECT decision sends (the session's write bound).
    max_connect_answer_bytes: usize,
    /// The acks waited for: by namespace (a namespace without any has no entry), the deadline
    /// of each id.
    acks: HashMap<Str, HashMap<u64, Instant>>,
    ack_deadlines: BTreeSet<(Instant, Str, u64)>,
    max_pending_acks: usize,
    /// Set when the server closes the connection itself, to report its reason.
    closing_reason: Option<DisconnectReason>,
    closed: bool,
    /// The time of the input being handled (for closes started while decoding).
    now: Instant,
    /// What the driver and the application get next. The Engine.IO session's own queue may
    /// also hold transport actions [`Connection::send`] left there (when this one was empty):
    /// they are older than anything here, and [`Connection::poll_output`] takes them after it.
    outputs: Outputs<Output>,
}

impl Connection {
    /// Opens a connection over a new Engine.IO session (see [`eio::Session::new`]). An EIO 3
    /// client joins `/` implicitly: a [`Event::Connect`] for `/` is produced at once.
    pub fn new(
        now: Instant,
        sid: Str,
        protocol: Protocol,
        transport: eio::Transport,
        engine_config: eio::Config,
        config: Config,
    ) -> Connection {
        let handshake = Handshake {
            transport,
            protocol,
            base64: false,
        };
        Connection::from_handshake(now, sid, &handshake, engine_config, config)
    }

    /// Opens a connection for a verified handshake request (see
    /// [`eio::Session::from_handshake`]).
    pub fn from_handshake(
        now: Instant,
        sid: Str,
        handshake: &Handshake,
        engine_config: eio::Config,
        config: Config,
    ) -> Connection {
        let protocol = handshake.protocol;
        let max_connect_answer_bytes = engine_config.max_buffered_bytes;
        let engine = eio::Session::from_handshake(now, sid, handshake, engine_config);
        let mut c = Connection {
            engine,
            decoder: config.parser.decoder(config.max_attachments),
            parser: config.parser,
            connect_deadline: Some(now + config.connect_timeout),
            max_connect_answer_bytes,
            namespaces: NsMap::default(),
            acks: HashMap::new(),
            ack_deadlines: BTreeSet::new(),
            max_pending_acks: config.max_pending_acks,
            closing_reason: None,
            closed: false,
            now,
            outputs: Outputs::new(),
        };
        c.pump();
        if protocol == Protocol::V3 {
            c.on_connect(Str::from_static("/"), None);
        }
        c
    }

    /// The id a socket of `nsp` must have on this connection when the protocol fixes it: an
    /// EIO 3 client derives it from the session id ([`super::v3_socket_id`]); `None` for EIO 4,
    /// whose sockets get a fresh id from the server.
    pub fn fixed_socket_id(&self, nsp: &str) -> Option<Str> {
        match self.engine.protocol() {
            Protocol::V3 => Some(super::v3_socket_id(nsp, self.engine.sid())),
            Protocol::V4 => None,
        }
    }

    /// The Engine.IO session.
    pub fn engine(&self) -> &eio::Session {
        &self.engine
    }

    /// True if `nsp` is joined (accepted and not disconnected).
    pub fn is_connected(&self, nsp: &str) -> bool {
        self.namespaces.get(nsp) == Some(&NsState::Connected)
    }

    /// The joined namespaces.
    pub fn namespaces(&self) -> impl Iterator<Item = &Str> {
        self.namespaces
            .iter()
            .filter(|(_, s)| **s == NsState::Connected)
            .map(|(n, _)| n)
    }

    /// True once the connection is closed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The acks the socket of `nsp` waits for (see [`Config::max_pending_acks`]).
    pub fn pending_acks(&self, nsp: &str) -> usize {
        self.acks.get(nsp).map_or(0, HashMap::len)
    }

    /// The acks waited for, all namespaces together.
    pub fn pending_acks_total(&self) -> usize {
        self.acks.values().map(HashMap::len).sum()
    }

    // ---- input -----------------------------------------------------------------------------

    /// Handles one input (the Engine.IO session's [`Input`]), after the timers due at `now`:
    /// the connection's own (acks, the connect timeout) and the session's.
    pub fn handle_input(&mut self, now: Instant, input: Input) -> Result<(), RequestError> {
        self.settle();
        self.on_timeout(now);
        if input == Input::Timeout {
            return Ok(());
        }
        let r = self.engine.handle_input(now, input);
        self.pump();
        r
    }

    // ---- application commands -----------------------------------------------------------------

    /// Accepts a pending CONNECT for `nsp` with the socket id `sid` (and `pid` when connection
    /// state recovery is on). `replay` holds the packets a recovered client missed: they are sent
    /// before the accept, as the reference does. The accept is sent once for each CONNECT
    /// received for `nsp` since the decision started (see the module docs).
    pub fn accept<'a>(
        &mut self,
        now: Instant,
        nsp: &str,
        sid: &str,
        pid: Option<&str>,
        replay: impl IntoIterator<Item = &'a EncodedPacket>,
    ) -> Result<(), CommandError> {
        self.settle();
        let (name, pending) = self.end_decision(nsp)?;
        self.namespaces.insert(name, NsState::Connected);
        self.connect_deadline = None;
        // The missed packets and the accept go out together (one polling response when they
        // fit), so that a client cannot receive the replay without the accept.
        let accept = self
            .parser
            .encode(&connect_accept(self.engine.protocol(), nsp, sid, pid));
        let frames: Vec<Frame> = replay
            .into_iter()
            .flat_map(EncodedPacket::frames)
            .chain(accept.frames())
            .collect();
        // A session that cannot take them closes: the socket then leaves with
        // `Event::Disconnect`, as any joined socket does.
        if self
            .engine
            .send(now, frames, SendOptions::default())
            .is_ok()
        {
            // The CONNECTs that came while the application decided get the same accept.
            let again = pending
                .answers
                .saturating_add(pending.retries)
                .saturating_sub(1);
            self.send_answers(now, &accept, again);
        }
        self.pump();
        Ok(())
    }

    /// Refuses a pending CONNECT to a namespace the server does not have, with the reference's
    /// `{"message":"Invalid namespace"}`.
    pub fn reject_unknown_namespace(
        &mut self,
        now: Instant,
        nsp: &str,
    ) -> Result<(), CommandError> {
        self.settle();
        self.reject(now, nsp, INVALID_NAMESPACE, None)
    }

    /// Refuses a pending CONNECT with a CONNECT_ERROR carrying `message` (and `data`), e.g. a
    /// middleware's error: sent once for each CONNECT the decision answers. If more CONNECTs for
    /// `nsp` arrived while it was decided, a new decision starts: a new [`Event::Connect`] with
    /// the last one's auth, which answers all of them (see the module docs).
    pub fn reject(
        &mut self,
        now: Instant,
        nsp: &str,
        message: &str,
        data: Option<&RawJson>,
    ) -> Result<(), CommandError> {
        self.settle();
        let (name, pending) = self.end_decision(nsp)?;
        let error = self
            .parser
            .encode(&connect_error(self.engine.protocol(), nsp, message, data));
        // A session that cannot take them is closing: the CONNECTs are refused all the same.
        self.send_answers(now, &error, pending.answers);
        self.pump();
        if let Some(auth) = pending.retry_auth {
            if self.check_open().is_ok() {
                self.start_connect(name, auth, pending.retries);
            }
        }
        Ok(())
    }

    /// Sends an encoded packet (an event, or an ack) to the client. The packet's namespace must
    /// be joined. Volatile packets are dropped when the transport is not writable.
    pub fn send(
        &mut self,
        now: Instant,
        packet: &EncodedPacket,
        nsp: &str,
        options: SendOptions,
    ) -> Result<(), CommandError> {
        self.check_connected(nsp)?;
        let sent = self.engine.send(now, packet.frames(), options);
        // A sent packet is transport actions only: with nothing waiting before them they stay
        // in the session's queue, where `poll_output` takes them, instead of being moved up
        // here one by one (a broadcast sends one packet to every connection).
        if sent.is_err() || !self.outputs.is_empty() {
            self.pump();
        }
        Ok(sent?)
    }

    /// Sends an event that carries ack id `id` (from the namespace's [`AckIds`]) and waits for
    /// the answer until `now + timeout`: the answer comes as [`Event::Ack`], or
    /// [`Event::AckFailed`] — exactly one of them. Refused with
    /// [`CommandError::TooManyPendingAcks`], nothing sent, when the socket already waits for
    /// [`Config::max_pending_acks`] acks.
    pub fn emit_with_ack(
        &mut self,
        now: Instant,
        packet: &EncodedPacket,
        nsp: &str,
        id: u64,
        timeout: Duration,
    ) -> Result<(), CommandError> {
        self.emit_with_ack_options(now, packet, nsp, id, timeout, SendOptions::default())
    }

    /// [`Connection::emit_with_ack`] with the packet's [`SendOptions`] (`compress(false)`; a
    /// volatile packet the transport cannot take is dropped, and no answer is waited for).
    pub fn emit_with_ack_options(
        &mut self,
        now: Instant,
        packet: &EncodedPacket,
        nsp: &str,
        id: u64,
        timeout: Duration,
        options: SendOptions,
    ) -> Result<(), CommandError> {
        self.settle();
        self.check_ack_room(nsp, id)?;
        self.send(now, packet, nsp, options)?;
        self.register_ack(now, nsp, id, timeout);
        Ok(())
    }

    /// Registers an ack the connection waits for (the packet was sent by other means, e.g. a
    /// broadcast written with [`Connection::send`]). The namespace must be joined; at the bound
    /// ([`Config::max_pending_acks`]) it is refused with [`CommandError::TooManyPendingAcks`]:
    /// check [`Connection::pending_acks`] before sending such a packet.
    pub fn expect_ack(
        &mut self,
        now: Instant,
        nsp: &str,
        id: u64,
        timeout: Duration,
    ) -> Result<(), CommandError> {
        self.settle();
        self.check_connected(nsp)?;
        self.check_ack_room(nsp, id)?;
        self.register_ack(now, nsp, id, timeout);
        Ok(())
    }

    fn register_ack(&mut self, now: Instant, nsp: &str, id: u64, timeout: Duration) {
        let deadline = now + timeout;
        // The namespace's acks share one copy of its name.
        let nsp = match self.acks.get_key_value(nsp) {
            Some((key, _)) => key.clone(),
            None => Str::from(nsp),
        };
        let acks = self.acks.entry(nsp.clone()).or_default();
        if let Some(old) = acks.insert(id, deadline) {
            self.ack_deadlines.remove(&(old, nsp.clone(), id));
        }
        self.ack_deadlines.insert((deadline, nsp, id));
    }

    /// Refuses a new pending ack past the bound (an id already waited for only gets a new
    /// deadline).
    fn check_ack_room(&self, nsp: &str, id: u64) -> Result<(), CommandError> {
        match self.acks.get(nsp) {
            Some(acks) if acks.len() >= self.max_pending_acks && !acks.contains_key(&id) => {
                Err(CommandError::TooManyPendingAcks)
            }
            _ => Ok(()),
        }
    }

    /// Forgets the pending ack `id` of `nsp`; its deadline if it was pending.
    fn remove_ack(&mut self, nsp: &str, id: u64) -> Option<Instant> {
        let acks = self.acks.get_mut(nsp)?;
        let deadline = acks.remove(&id)?;
        if acks.is_empty() {
            self.acks.remove(nsp);
        }
        Some(deadline)
    }

    /// Answers the client's event with an ACK or BINARY_ACK packet (see [`Packet::ack_with`]),
    /// in the packet's namespace, which must be joined.
    pub fn ack(&mut self, now: Instant, packet: Packet) -> Result<(), CommandError> {
        self.settle();
        let nsp = packet.nsp().clone();
        let encoded = self.parser.encode(&packet);
        self.send(now, &encoded, &nsp, SendOptions::default())
    }

    /// Disconnects the socket of `nsp` (`socket.disconnect()`): DISCONNECT is sent, the
    /// Engine.IO session stays open.
    pub fn disconnect(&mut self, now: Instant, nsp: &str) -> Result<(), CommandError> {
        self.settle();
        self.check_connected(nsp)?;
        let packet = self.parser.encode(&Packet::disconnect(Str::from(nsp)));
        // The socket leaves even if the DISCONNECT cannot be written (the session is closing).
        let _ = self
            .engine
            .send(now, packet.frames(), SendOptions::default());
        self.leave(Str::from(nsp), DisconnectReason::ServerNamespaceDisconnect);
        self.pump();
        Ok(())
    }

    /// Closes the whole connection. With [`DisconnectReason::ForcedServerClose`]
    /// (`socket.disconnect(true)`) every joined namespace gets DISCONNECT first; with
    /// [`DisconnectReason::ServerShuttingDown`] (`io.close()`) the session just closes.
    pub fn close(&mut self, now: Instant, reason: DisconnectReason) {
        self.settle();
        if self.closed {
            return;
        }
        if reason == DisconnectReason::ForcedServerClose {
            let frames: Vec<Frame> = self
                .namespaces()
                .flat_map(|nsp| {
                    self.parser
                        .encode(&Packet::disconnect(nsp.clone()))
                        .frames()
                        .collect::<Vec<_>>()
                })
                .collect();
            // A session already closing takes nothing more; the close goes on regardless.
            let _ = self.engine.send(now, frames, SendOptions::default());
        }
        self.shutdown(now, reason);
        self.pump();
    }

    fn check_open(&self) -> Result<(), CommandError> {
        if self.closed || self.closing_reason.is_some() {
            return Err(CommandError::Closed);
        }
        Ok(())
    }

    fn check_connected(&self, nsp: &str) -> Result<(), CommandError> {
        self.check_open()?;
        if !self.is_connected(nsp) {
            return Err(CommandError::NotConnected);
        }
        Ok(())
    }

    /// Ends the pending CONNECT decision of `nsp`: the namespace is forgotten (the caller
    /// records it joined if it is), its name and pending state are returned.
    fn end_decision(&mut self, nsp: &str) -> Result<(Str, PendingConnect), CommandError> {
        self.check_open()?;
        match self.namespaces.remove_entry(nsp) {
            Some((name, NsState::Connecting(pending))) => Ok((name, pending)),
            Some((name, state)) => {
                self.namespaces.insert(name, state);
                Err(CommandError::NoPendingConnect)
            }
            None => Err(CommandError::NoPendingConnect),
        }
    }

    /// Sends `packet` `count` times, once for each CONNECT a decision answers. Past the
    /// session's write bound the connection closes with `buffer full` (see the module docs).
    fn send_answers(&mut self, now: Instant, packet: &EncodedPacket, count: u32) {
        let size: usize = packet.frames().map(|f| f.polling_len() + 1).sum();
        let mut bytes = 0usize;
        for _ in 0..count {
            bytes = bytes.saturating_add(size);
            if bytes > self.max_connect_answer_bytes {
                self.shutdown(now, DisconnectReason::BufferFull);
                return;
            }
            // A session that cannot take it is closing: nothing more goes out.
            if self
                .engine
                .send(now, packet.frames(), SendOptions::default())
                .is_err()
            {
                return;
            }
        }
    }

    // ---- the machine --------------------------------------------------------------------------

    /// The next thing to do, for the driver ([`Output::Io`]) or the application
    /// ([`Output::Event`]).
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        if let Some(out) = self.outputs.pop() {
            return Some(out);
        }
        // What `send` left in the session's queue (transport actions).
        match self.engine.poll_output()? {
            eio::Output::Io(io) => Some(Output::Io(io)),
            other => {
                self.pump_one(other);
                self.pump();
                self.outputs.pop()
            }
        }
    }

    /// Whether [`Connection::poll_output`] has something now: a driver that performs the
    /// outputs of every command as it goes can skip the call that finds none.
    #[must_use]
    pub fn has_output(&self) -> bool {
        !self.outputs.is_empty() || self.engine.has_output()
    }

    /// When [`Input::Timeout`] must be given next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let acks = self.ack_deadlines.first().map(|(d, _, _)| *d);
        eio::earliest(
            self.engine.poll_timeout(),
            eio::earliest(self.connect_deadline, acks),
        )
    }

    /// Runs the timers due at `now`: the session's first, then the acks and the connect timeout.
    fn on_timeout(&mut self, now: Instant) {
        self.now = now;
        if self.closed {
            return;
        }
        // The session refuses nothing on a timeout.
        let _ = self.engine.handle_input(now, Input::Timeout);
        self.pump();
        if self.closed {
            return;
        }
        while let Some((deadline, nsp, id)) = self.ack_deadlines.first().cloned() {
            if deadline > now {
                break;
            }
            self.ack_deadlines.pop_first();
            self.remove_ack(&nsp, id);
            self.outputs.push(Output::Event(Event::AckFailed {
                nsp,
                id,
                error: AckError::Timeout,
            }));
        }
        if self.connect_deadline.is_some_and(|d| d <= now) {
            self.connect_deadline = None;
            if !self.namespaces.values().any(|s| *s == NsState::Connected) {
                self.shutdown(now, DisconnectReason::ForcedServerClose);
            }
        }
        self.pump();
    }

    /// Moves the Engine.IO session's outputs up: transport actions pass through, messages are
    /// decoded, the close is reported per socket.
    fn pump(&mut self) {
        while let Some(out) = self.engine.poll_output() {
            self.pump_one(out);
        }
    }

    /// Moves one output of the Engine.IO session up (see [`Connection::pump`]).
    fn pump_one(&mut self, out: eio::Output) {
        match out {
            eio::Output::Io(io) => self.outputs.push(Output::Io(io)),
            eio::Output::Event(eio::Event::Message(text)) => self.on_text(text),
            eio::Output::Event(eio::Event::Binary(data)) => self.on_binary(data),
            eio::Output::Event(eio::Event::Closed(reason)) => self.on_engine_closed(reason),
        }
    }

    /// Moves up what [`Connection::send`] left in the session's queue, before anything else
    /// is done: every other method finds the session's queue empty, as when `send` moved its
    /// outputs up itself.
    fn settle(&mut self) {
        if self.engine.has_output() {
            self.pump();
        }
    }

    fn on_text(&mut self, text: Str) {
        if self.closed || self.closing_reason.is_some() {
            return;
        }
        match self.decoder.decode_text(text) {
            Ok(Some(packet)) => self.on_packet(packet),
            Ok(None) => {}
            Err(e) => self.on_decode_error(e),
        }
    }

    fn on_binary(&mut self, data: Bytes) {
        if self.closed || self.closing_reason.is_some() {
            return;
        }
        match self.decoder.decode_binary(data) {
            Ok(Some(packet)) => self.on_packet(packet),
            Ok(None) => {}
            Err(e) => self.on_decode_error(e),
        }
    }

    fn on_decode_error(&mut self, error: DecodeError) {
        // socket.io: every socket of the client gets an `error` event, then `conn.close()`.
        self.outputs.push(Output::Event(Event::Error(error)));
        self.decoder.reset();
        self.shutdown(self.now, DisconnectReason::ForcedClose);
    }

    /// Closes from the server side: every joined socket leaves at once with `reason`; the
    /// Engine.IO session closes after delivering what is queued (on polling, with the next GET).
    fn shutdown(&mut self, now: Instant, reason: DisconnectReason) {
        if self.closing_reason.is_some() || self.closed {
            return;
        }
        let joined: Vec<Str> = self.namespaces().cloned().collect();
        for nsp in joined {
            self.leave(nsp, reason);
        }
        self.namespaces.clear();
        self.connect_deadline = None;
        self.closing_reason = Some(reason);
        self.engine.close(now);
    }

    fn on_packet(&mut self, packet: Packet) {
        let (nsp, auth) = match self.engine.protocol() {
            Protocol::V3 if packet.kind() == PacketType::Connect => {
                let (path, auth) = split_v4_namespace(packet.nsp());
                (Str::from(path), Some(auth))
            }
            _ => (packet.nsp().clone(), packet.data().cloned()),
        };
        match (self.namespaces.get_mut(&nsp), packet.kind()) {
            (None, PacketType::Connect) => self.on_connect(nsp, auth),
            // Another CONNECT while one is being decided (the reference would start one more
            // attempt): counted, and answered when the pending decision is made.
            (Some(NsState::Connecting(pending)), PacketType::Connect) => {
                pending.retry(auth.unwrap_or_else(empty_auth));
            }
            (Some(NsState::Connected), kind)
                if kind != PacketType::Connect && kind != PacketType::ConnectError =>
            {
                self.on_socket_packet(nsp, packet)
            }
            // Anything else is the reference's "invalid state": the connection is closed.
            _ => self.close_invalid_state(),
        }
    }

    fn on_connect(&mut self, nsp: Str, auth: Option<RawJson>) {
        self.start_connect(nsp, auth.unwrap_or_else(empty_auth), 1);
    }

    /// Starts a decision for `nsp` that answers `answers` CONNECTs: [`Event::Connect`] for the
    /// application.
    fn start_connect(&mut self, nsp: Str, auth: RawJson, answers: u32) {
        let recovery = match self.engine.protocol() {
            Protocol::V4 => recovery_request(&auth),
            Protocol::V3 => None,
        };
        let pending = PendingConnect::new(answers);
        self.namespaces
            .insert(nsp.clone(), NsState::Connecting(pending));
        self.outputs.push(Output::Event(Event::Connect {
            nsp,
            auth,
            recovery,
        }));
    }

    fn on_socket_packet(&mut self, nsp: Str, packet: Packet) {
        match packet.kind() {
            PacketType::Event | PacketType::BinaryEvent => {
                self.outputs.push(Output::Event(Event::Event(packet)));
            }
            PacketType::Ack | PacketType::BinaryAck => {
                // An ACK with an unknown id is ignored (one beyond `u64` is never ours).
                let Some(id) = packet.id().and_then(AckId::as_u64) else {
                    return;
                };
                if let Some(deadline) = self.remove_ack(&nsp, id) {
                    self.ack_deadlines.remove(&(deadline, nsp, id));
                    self.outputs.push(Output::Event(Event::Ack(packet)));
                }
            }
            PacketType::Disconnect => {
                self.leave(nsp, DisconnectReason::ClientNamespaceDisconnect);
            }
            PacketType::Connect | PacketType::ConnectError => self.close_invalid_state(),
        }
    }

    fn close_invalid_state(&mut self) {
        self.shutdown(self.now, DisconnectReason::ForcedServerClose);
    }

    /// A socket leaves `nsp`: its pending acks fail, the application is told.
    fn leave(&mut self, nsp: Str, reason: DisconnectReason) {
        if self.namespaces.remove(&nsp) != Some(NsState::Connected) {
            return;
        }
        // In deadline order, as they would have timed out.
        let mut failed: Vec<(Instant, u64)> = self
            .acks
            .remove(&nsp)
            .unwrap_or_default()
            .into_iter()
            .map(|(id, deadline)| (deadline, id))
            .collect();
        failed.sort_unstable();
        for (deadline, id) in failed {
            self.ack_deadlines.remove(&(deadline, nsp.clone(), id));
            self.outputs.push(Output::Event(Event::AckFailed {
                nsp: nsp.clone(),
                id,
                error: AckError::Disconnected,
            }));
        }
        self.outputs
            .push(Output::Event(Event::Disconnect { nsp, reason }));
    }

    fn on_engine_closed(&mut self, reason: CloseReason) {
        if self.closed {
            return;
        }
        let reason = self
            .closing_reason
            .take()
            .unwrap_or_else(|| DisconnectReason::from_engine(reason));
        let joined: Vec<Str> = self.namespaces().cloned().collect();
        for nsp in joined {
            self.leave(nsp, reason);
        }
        self.namespaces.clear();
        self.closed = true;
        self.connect_deadline = None;
        self.outputs.push(Output::Event(Event::Closed(reason)));
    }
}

/// The `pid` and `offset` of a CONNECT's auth, when `pid` is a string (the last of repeated
/// keys, as `JSON.parse` keeps it).
fn recovery_request(auth: &RawJson) -> Option<RecoveryRequest> {
    let text = auth.as_str();
    let string = |key: &str| {
        scan::member(text, key)
            .and_then(scan::string)
            .map(|s| Str::from(s.into_owned()))
    };
    Some(RecoveryRequest {
        pid: string("pid")?,
        offset: string("offset"),
    })
}
