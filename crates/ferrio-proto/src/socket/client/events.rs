//! What the manager hands out: [`Output`]s (I/O for the driver, [`Event`]s for the application),
//! the reasons and states they carry, and the [`ClientError`] of a refused command.

use std::fmt;

use super::{AckError, AckId, SocketId};
use crate::engine::client::{CloseReason, Io, Transport};
use crate::socket::json::RawJson;
use crate::socket::packet::Packet;
use crate::Str;

/// Why a socket disconnected or the manager closed, as `socket.io-client` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisconnectReason {
    /// The server sent DISCONNECT (`io server disconnect`); the socket does not reconnect.
    IoServerDisconnect,
    /// [`Manager::disconnect`](super::Manager::disconnect) (`io client disconnect`).
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

    /// The Engine.IO close reason under its Socket.IO name.
    pub(super) fn from_engine(reason: CloseReason) -> DisconnectReason {
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
    /// The upgrade probe was answered; the session is pausing its transport to switch (the
    /// engine's `upgrading`).
    Upgrading(Transport),
    /// The session moved to this transport after a successful probe (the engine's `upgrade`).
    Upgrade(Transport),
    /// An upgrade probe failed and the session keeps its transport (the engine's
    /// `upgradeError`), with the reference's text (`probe error`, `probe error: <cause>`).
    UpgradeError(String),
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
    /// A socket with [`Auth::Callback`](super::Auth::Callback) needs its auth payload for the
    /// CONNECT about to be sent: answer with
    /// [`Manager::provide_auth`](super::Manager::provide_auth).
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
        /// [`Manager::connect_socket`](super::Manager::connect_socket)), or the manager gave up.
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
    /// with [`Manager::ack`](super::Manager::ack) (once).
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
        /// The handle [`Manager::emit`](super::Manager::emit) returned.
        ack: AckId,
        /// The ACK or BINARY_ACK (its `args()` are the answer).
        packet: Packet,
    },
    /// An acknowledgement will not come.
    AckError {
        /// The socket.
        socket: SocketId,
        /// The handle [`Manager::emit`](super::Manager::emit) returned.
        ack: AckId,
        /// Why.
        error: AckError,
    },
    /// An emit of the socket goes out: handed to the Engine.IO session, at once or from the
    /// send buffer after the CONNECT accept (then before [`Event::Connect`]). This is when
    /// `socket.io-client` runs its `onAnyOutgoing` listeners. Only for a socket that asked with
    /// [`Manager::report_sent`](super::Manager::report_sent); a volatile emit that is dropped
    /// is not reported.
    Sent {
        /// The socket.
        socket: SocketId,
        /// The EVENT or BINARY_EVENT, with the ack id it carries.
        packet: Packet,
    },
    /// A packet arrived from the server and decoded, whatever its namespace and type, before
    /// the manager acts on it (the manager's `packet` event of `socket.io-client`). Only after
    /// [`Manager::report_packets`](super::Manager::report_packets).
    Packet {
        /// The packet (binary attachments included).
        packet: Packet,
    },
    /// An Engine.IO packet of the connection arrived, before it is acted on (`io.engine`'s
    /// `packet`): the handshake, pings, messages, `close`; not the upgrade probe's answer.
    /// Only after [`Manager::report_engine_packets`](super::Manager::report_engine_packets).
    #[cfg(feature = "engine-events")]
    EnginePacket(crate::engine::Packet),
    /// The connection handed an Engine.IO packet to its transport (`io.engine`'s
    /// `packetCreate`): messages and pongs; not the upgrade probe or the `upgrade` packet.
    /// Only after [`Manager::report_engine_packets`](super::Manager::report_engine_packets).
    #[cfg(feature = "engine-events")]
    EnginePacketCreate(crate::engine::Packet),
}

/// What the driver or the application must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A transport action for the driver, see [`eio::Io`](crate::engine::client::Io).
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
    /// [`Manager::emit`](super::Manager::emit) takes EVENT or BINARY_EVENT packets with a valid,
    /// non-reserved name.
    InvalidEvent,
    /// [`Manager::ack`](super::Manager::ack) takes ACK or BINARY_ACK packets with an id.
    InvalidAck,
    /// The socket's send buffer (or delivery queue) is full
    /// ([`ManagerConfig::max_send_buffer`](super::ManagerConfig::max_send_buffer)).
    SendBufferFull,
    /// The Engine.IO write buffer is full
    /// ([`eio::Config::max_buffered_bytes`](crate::engine::client::Config::max_buffered_bytes)).
    WriteBufferFull,
    /// There is no open Engine.IO session to carry the packet (acks are not buffered).
    NotConnected,
    /// The socket already waits for
    /// [`ManagerConfig::max_pending_acks`](super::ManagerConfig::max_pending_acks) acks: the
    /// emit asking for one more was refused, nothing was sent.
    TooManyPendingAcks,
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
            ClientError::TooManyPendingAcks => "too many pending acks",
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for ClientError {}
