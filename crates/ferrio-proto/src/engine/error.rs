//! Errors of the Engine.IO codecs.

use std::fmt;

/// Why an Engine.IO packet or payload could not be decoded.
///
/// The reference parser reports all of these as one `parser error` packet, after which the server
/// closes the session with the reason `parse error`; Ferrio keeps the cause for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// An empty frame or payload record.
    Empty,
    /// The first character is not a packet type (`0`–`6`, or `b` for base64 binary).
    UnknownType(char),
    /// A frame or payload that should be UTF-8 text is not.
    InvalidUtf8,
    /// Binary data attached to a packet type other than `message` (EIO v3 forms only).
    BinaryNotMessage,
    /// A v3 payload whose length prefixes do not frame its records exactly.
    InvalidLength,
}

impl DecodeError {
    /// The message without the details (`Display` adds the character to an unknown type).
    pub fn as_str(&self) -> &'static str {
        match self {
            DecodeError::Empty => "parser error: empty packet",
            DecodeError::UnknownType(_) => "parser error: unknown packet type",
            DecodeError::InvalidUtf8 => "parser error: invalid UTF-8 text",
            DecodeError::BinaryNotMessage => {
                "parser error: binary data on a packet that is not a message"
            }
            DecodeError::InvalidLength => "parser error: invalid payload length",
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnknownType(c) => write!(f, "{} {c:?}", self.as_str()),
            _ => f.write_str(self.as_str()),
        }
    }
}

impl std::error::Error for DecodeError {}
