//! Error types.

use std::fmt;

pub use ferrio_proto::socket::client::{ClientError, ConnectionError, TransportError};

/// Why a client could not be built or connected.
#[derive(Debug)]
pub enum Error {
    /// The URL is not `http(s)://host[:port][/namespace][?query]` (or `ws(s)://`, or a URL
    /// relative to the page).
    InvalidUrl(String),
    /// An extra header whose name or value the browser refuses (see
    /// [`ClientBuilder::extra_header`](crate::ClientBuilder::extra_header)).
    InvalidHeader(String),
    /// The client is closed.
    Closed,
    /// The core refused the socket (an auth payload that is not a JSON object, say).
    Client(ClientError),
    /// The socket could not connect (see [`ConnectError`]).
    Connect(ConnectError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidUrl(u) => write!(f, "invalid URL: {u}"),
            Error::InvalidHeader(h) => write!(f, "invalid header: {h}"),
            Error::Closed => f.write_str("the client is closed"),
            Error::Client(e) => write!(f, "{e}"),
            Error::Connect(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}

/// A `connect_error`: the server's middleware refused the socket (with the `data` it attached),
/// or the connection could not be opened (then [`cause`](ConnectError::cause) says why).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectError {
    /// The error message (`err.message`).
    pub message: String,
    /// The `data` the server's middleware attached (`err.data`), if any.
    pub data: Option<serde_json::Value>,
    /// Why the connection could not be opened, when that is the error (socket.io-client gives
    /// the transport's `TransportError` itself, or `Error("timeout")`), also after the last
    /// reconnection attempt failed (`reconnection failed`: the last attempt's); `None` when
    /// the server refused the socket.
    pub cause: Option<ConnectionError>,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connect error: {}", self.message)
    }
}

impl std::error::Error for ConnectError {}

/// Why an emit was refused. (The server's `EmitError` has the same first variants.)
#[derive(Debug)]
#[non_exhaustive]
pub enum EmitError {
    /// The arguments did not serialise (they must serialise as a sequence: a tuple).
    Serialize(serde_json::Error),
    /// A reserved event name (`connect`, `connect_error`, `disconnect`, ...).
    ReservedEvent(String),
    /// The client's task is gone.
    Closed,
    /// Kept for the same shape as `ferrio-client`'s `EmitError`: the browser client sends
    /// every emit to the core at once and never returns it.
    QueueFull,
    /// The core refused the packet (send buffer full, say).
    Client(ClientError),
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmitError::ReservedEvent(name) => write!(f, "\"{name}\" is a reserved event name"),
            EmitError::Serialize(e) => write!(f, "arguments do not serialise: {e}"),
            EmitError::Closed => f.write_str("the client is closed"),
            EmitError::QueueFull => f.write_str("the command queue is full"),
            EmitError::Client(e) => write!(f, "{e}"),
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
impl From<ferrio_proto::socket::EventError> for EmitError {
    fn from(e: ferrio_proto::socket::EventError) -> Self {
        use ferrio_proto::socket::EventError;
        match e {
            EventError::Reserved(name) => EmitError::ReservedEvent(name),
            EventError::Serialize(e) => EmitError::Serialize(e),
            // A refusal the core adds later: its message, as a serialisation error.
            other => EmitError::Serialize(serde::ser::Error::custom(other)),
        }
    }
}

/// Why an acknowledgement did not come. (The server's `AckError` has the same shape.)
#[derive(Debug)]
#[non_exhaustive]
pub enum AckError {
    /// No answer in time (`operation has timed out`).
    Timeout,
    /// The socket disconnected before the answer (`socket has been disconnected`).
    Disconnected,
    /// The emit itself failed.
    Emit(EmitError),
}

impl fmt::Display for AckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AckError::Timeout => f.write_str("operation has timed out"),
            AckError::Disconnected => f.write_str("socket has been disconnected"),
            AckError::Emit(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for AckError {}

impl From<ferrio_proto::socket::AckError> for AckError {
    fn from(e: ferrio_proto::socket::AckError) -> Self {
        match e {
            ferrio_proto::socket::AckError::Timeout => AckError::Timeout,
            ferrio_proto::socket::AckError::Disconnected => AckError::Disconnected,
            ferrio_proto::socket::AckError::TooManyPendingAcks => {
                AckError::Emit(EmitError::Client(ClientError::TooManyPendingAcks))
            }
        }
    }
}

impl From<EmitError> for AckError {
    fn from(e: EmitError) -> Self {
        AckError::Emit(e)
    }
}
