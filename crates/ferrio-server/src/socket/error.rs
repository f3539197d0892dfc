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

/// Why an event's handler did not run or failed, as [`Socket::on_handler_error`] hears it:
/// the event's arguments did not fit the handler's types (the event was dropped), or the
/// handler returned an `Err`.
///
/// [`Socket::on_handler_error`]: crate::Socket::on_handler_error
#[derive(Debug)]
pub struct HandlerError {
    event: String,
    kind: HandlerErrorKind,
}

#[derive(Debug)]
enum HandlerErrorKind {
    Arguments(serde_json::Error),
    Failed(String),
}

impl HandlerError {
    pub(crate) fn arguments(event: String, error: serde_json::Error) -> HandlerError {
        HandlerError {
            event,
            kind: HandlerErrorKind::Arguments(error),
        }
    }

    pub(crate) fn failed(event: String, message: String) -> HandlerError {
        HandlerError {
            event,
            kind: HandlerErrorKind::Failed(message),
        }
    }

    /// The event's name.
    pub fn event(&self) -> &str {
        &self.event
    }

    /// The error of deserializing the event's arguments into the handler's types, when that is
    /// what failed (the handler did not run).
    pub fn arguments_error(&self) -> Option<&serde_json::Error> {
        match &self.kind {
            HandlerErrorKind::Arguments(e) => Some(e),
            HandlerErrorKind::Failed(_) => None,
        }
    }

    /// True if the arguments did not fit the handler's types (the handler did not run).
    pub fn is_arguments(&self) -> bool {
        matches!(self.kind, HandlerErrorKind::Arguments(_))
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            HandlerErrorKind::Arguments(e) => {
                write!(f, "arguments of `{}` do not fit: {e}", self.event)
            }
            HandlerErrorKind::Failed(m) => write!(f, "handler of `{}` failed: {m}", self.event),
        }
    }
}

impl std::error::Error for HandlerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            HandlerErrorKind::Arguments(e) => Some(e),
            HandlerErrorKind::Failed(_) => None,
        }
    }
}
