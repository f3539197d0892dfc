//! Errors of the Socket.IO codec.

use std::fmt;

/// Why a Socket.IO packet could not be decoded. The messages are the reference decoder's.
///
/// On the server any of these closes the client's Engine.IO session; on the client the Manager
/// closes with the reason `parse error`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The type character is not `0`–`6`.
    UnknownPacketType,
    /// The attachment count of a binary packet is missing, malformed, or zero.
    IllegalAttachments,
    /// A binary packet announces more attachments than the decoder accepts.
    TooManyAttachments {
        /// The configured maximum.
        limit: usize,
    },
    /// The JSON payload does not parse or has the wrong shape for the packet type.
    InvalidPayload,
    /// The ack id has white space between its digits (JavaScript would read `NaN`).
    InvalidAckId,
    /// A text packet arrived while the attachments of a binary packet were still expected.
    UnexpectedText,
    /// A binary message arrived when no binary packet was waiting for attachments.
    UnexpectedBinary,
    /// A `{"_placeholder":true,"num":N}` whose `num` is not an index of a received attachment.
    InvalidPlaceholder,
    /// A message of the msgpack parser that is not one well-formed msgpack map (or a text
    /// message, which that parser never sends).
    InvalidMsgpack,
}

impl DecodeError {
    /// The message without the details (`Display` adds the limit to `too many attachments`).
    pub fn as_str(&self) -> &'static str {
        match self {
            DecodeError::UnknownPacketType => "unknown packet type",
            DecodeError::IllegalAttachments => "Illegal attachments",
            DecodeError::TooManyAttachments { .. } => "too many attachments",
            DecodeError::InvalidPayload => "invalid payload",
            DecodeError::InvalidAckId => "invalid ack id",
            DecodeError::UnexpectedText => "got plaintext data when reconstructing a packet",
            DecodeError::UnexpectedBinary => "got binary data when not reconstructing a packet",
            DecodeError::InvalidPlaceholder => "illegal attachments",
            DecodeError::InvalidMsgpack => "invalid msgpack",
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TooManyAttachments { limit } => {
                write!(f, "{} (limit {limit})", self.as_str())
            }
            _ => f.write_str(self.as_str()),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Why an acknowledgement asked for will not come (both sides: the server's `emit_with_ack`, the
/// client's emits with an ack). The messages are the reference's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckError {
    /// No answer in time (`operation has timed out`).
    Timeout,
    /// The socket disconnected before the answer (`socket has been disconnected`).
    Disconnected,
    /// The emit was refused at once, nothing was sent: the socket already waits for as many
    /// acknowledgements as its limit allows (`too many pending acks`; see
    /// [`DEFAULT_MAX_PENDING_ACKS`](super::DEFAULT_MAX_PENDING_ACKS)). The reference has no such
    /// limit.
    TooManyPendingAcks,
}

impl AckError {
    /// The message, as `Display` writes it.
    pub fn as_str(&self) -> &'static str {
        match self {
            AckError::Timeout => "operation has timed out",
            AckError::Disconnected => "socket has been disconnected",
            AckError::TooManyPendingAcks => "too many pending acks",
        }
    }
}

impl fmt::Display for AckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for AckError {}

/// Why an event to send could not be built ([`super::Packet::outgoing_event`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum EventError {
    /// The name is reserved (`connect`, `connect_error`, `disconnect`, `disconnecting`,
    /// `newListener`, `removeListener`): the reference's `emit` throws for these.
    Reserved(String),
    /// The arguments do not serialise as a sequence of JSON values (pass a tuple: `(x,)`).
    Serialize(serde_json::Error),
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventError::Reserved(name) => write!(f, "\"{name}\" is a reserved event name"),
            EventError::Serialize(e) => write!(f, "cannot serialise the arguments: {e}"),
        }
    }
}

impl std::error::Error for EventError {}
