//! What can go wrong: failed emits ([`EmitError`]), unanswered acks ([`AckError`]), refused
//! connections ([`ConnectError`]); the reserved event names are the core's
//! ([`ferrio_proto::socket::Packet::outgoing_event`]).

use std::fmt;

use ferrio_proto::socket::{EventError, RawJson};
use serde::Serialize;
use serde_json::Value;

/// Why an emit failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum EmitError {
    /// The arguments do not serialise as a sequence of JSON values (pass a tuple: `(x,)`).
    Serialize(serde_json::Error),
    /// The event name is reserved (`connect`, `disconnect`, ...).
    ReservedEvent(String),
    /// The socket is disconnected.
    Disconnected,
    /// The cluster adapter could not reach the other servers.
    Cluster(crate::adapter::AdapterError),
    /// An emit asking for an acknowledgement, refused at once: the socket already waits for
    /// as many as [`FerrioBuilder::max_pending_acks`](crate::FerrioBuilder::max_pending_acks)
    /// allows. Nothing was sent; the connection stays up.
    TooManyPendingAcks,
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmitError::Serialize(e) => write!(f, "cannot serialise the arguments: {e}"),
            EmitError::ReservedEvent(name) => write!(f, "\"{name}\" is a reserved event name"),
            EmitError::Disconnected => f.write_str("the socket is disconnected"),
            EmitError::Cluster(e) => write!(f, "{e}"),
            EmitError::TooManyPendingAcks => f.write_str("too many pending acks"),
        }
    }
}

impl std::error::Error for EmitError {}

impl From<serde_json::Error> for EmitError {
    fn from(e: serde_json::Error) -> Self {
        EmitError::Serialize(e)
    }
}

/// The core's refusal of an event to send (a reserved name, arguments that do not serialise).
impl From<EventError> for EmitError {
    fn from(e: EventError) -> Self {
        match e {
            EventError::Reserved(name) => EmitError::ReservedEvent(name),
            EventError::Serialize(e) => EmitError::Serialize(e),
            // A refusal the core adds later: its message, as a serialisation error.
            other => EmitError::Serialize(serde::ser::Error::custom(other)),
        }
    }
}

/// Why an emit with acknowledgement got no answer.
#[derive(Debug)]
#[non_exhaustive]
pub enum AckError {
    /// No answer within the timeout (`operation has timed out`).
    Timeout,
    /// The socket disconnected before the answer came.
    Disconnected,
    /// The event could not be sent.
    Emit(EmitError),
}

impl fmt::Display for AckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AckError::Timeout => f.write_str("operation has timed out"),
            AckError::Disconnected => f.write_str("socket has been disconnected"),
            AckError::Emit(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for AckError {}

impl From<EmitError> for AckError {
    fn from(e: EmitError) -> Self {
        AckError::Emit(e)
    }
}

/// The session's answer about an ack: a refusal at the bound is an emit that failed.
impl From<ferrio_proto::socket::AckError> for AckError {
    fn from(e: ferrio_proto::socket::AckError) -> Self {
        use ferrio_proto::socket::AckError as Core;
        match e {
            Core::Timeout => AckError::Timeout,
            Core::TooManyPendingAcks => AckError::Emit(EmitError::TooManyPendingAcks),
            Core::Disconnected => AckError::Disconnected,
        }
    }
}

/// Refuses a connection from a namespace middleware: the client gets a CONNECT_ERROR with this
/// `message` (and `data`), e.g. `44/admin,{"message":"not authorized","data":{"reason":"x"}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectError {
    message: String,
    data: Option<Value>,
}

impl ConnectError {
    /// A refusal with a message.
    pub fn new(message: impl Into<String>) -> ConnectError {
        ConnectError {
            message: message.into(),
            data: None,
        }
    }

    /// Adds the `data` the client receives (`err.data` in socket.io-client).
    pub fn with_data<T: Serialize>(mut self, data: &T) -> ConnectError {
        self.data = serde_json::to_value(data).ok();
        self
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn data_json(&self) -> Option<RawJson> {
        self.data.as_ref().map(RawJson::from_value)
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConnectError {}
