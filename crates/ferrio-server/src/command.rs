//! [`Command`]: what the application asks of a Socket.IO session task (emits, acks,
//! disconnects, the outcome of a CONNECT's middlewares), sent by sockets, namespaces and
//! broadcasts through the session's queue and performed by the session's machine.

use std::sync::Arc;
use std::time::Duration;

use ferrio_proto::socket::recovery::Restored;
use ferrio_proto::socket::server::AckError as CoreAckError;
use ferrio_proto::socket::{EncodedPacket, Packet};
use tokio::sync::oneshot;

use crate::socket::{ConnectError, Socket};

/// Commands from the application to a session task. Kept small (the rare, large ones boxed):
/// each session's queue allocates room for 32 of them at once.
pub(crate) enum Command {
    /// Send an encoded packet to `socket` (shared: a broadcast queues the same packet for
    /// every recipient, and a small `Command` keeps the queue's first block small).
    Send {
        socket: Socket,
        packet: Arc<EncodedPacket>,
        volatile: bool,
        /// False keeps the packet uncompressed (`compress(false)`).
        compress: bool,
    },
    /// Send an event carrying an ack id and wait for the answer.
    EmitWithAck(Box<EmitWithAck>),
    /// `socket.disconnect(false)`.
    Disconnect(Socket),
    /// `socket.disconnect(true)`.
    Close(Socket),
    /// `socket.conn.close()`: the Engine.IO connection closes, no DISCONNECT is sent.
    CloseTransport(Socket),
    /// The middlewares of a pending CONNECT are done.
    Connected(Box<Connected>),
}

/// [`Command::EmitWithAck`]: the event, its ack id, and where the answer goes.
pub(crate) struct EmitWithAck {
    pub(crate) socket: Socket,
    pub(crate) packet: EncodedPacket,
    pub(crate) ack_id: u64,
    pub(crate) timeout: Duration,
    /// False keeps the packet uncompressed (`compress(false)`).
    pub(crate) compress: bool,
    pub(crate) reply: oneshot::Sender<Result<Packet, CoreAckError>>,
}

/// [`Command::Connected`]: the outcome of a CONNECT's middlewares.
pub(crate) struct Connected {
    pub(crate) socket: Socket,
    pub(crate) result: Result<(), ConnectError>,
    pub(crate) restored: Option<Restored>,
}
