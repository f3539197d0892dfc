//! [`Disconnection`]: why a socket left, as its `disconnecting` and `disconnect` handlers see it.

use std::fmt;

use ferrio_proto::socket::server::DisconnectReason;
use ferrio_proto::Str;

/// Why a socket disconnected: the reason (`transport close`, `ping timeout`, ...) and, when
/// there is one, a description of what went wrong (the reference's `(reason, description)`
/// pair of the `disconnecting` and `disconnect` events).
///
/// It compares equal to its [`DisconnectReason`] and displays as the reason's string.
///
/// ```
/// # fn f(socket: ferrio_server::Socket) {
/// use ferrio_server::DisconnectReason;
/// socket.on_disconnect(|socket, disconnection| async move {
///     if disconnection == DisconnectReason::ClientNamespaceDisconnect {
///         return;
///     }
///     let why = disconnection.description().unwrap_or("");
///     tracing::info!(id = socket.id(), %disconnection, why, "connection lost");
/// });
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnection {
    reason: DisconnectReason,
    description: Option<Str>,
}

impl Disconnection {
    /// A disconnection for `reason`, with an optional description.
    pub fn new(reason: DisconnectReason, description: Option<Str>) -> Disconnection {
        Disconnection {
            reason,
            description,
        }
    }

    /// The reason.
    pub fn reason(&self) -> DisconnectReason {
        self.reason
    }

    /// The reason as `socket.io` writes it (`client namespace disconnect`, `ping timeout`, ...).
    pub fn as_str(&self) -> &'static str {
        self.reason.as_str()
    }

    /// What went wrong, when the server knows more than the reason: for a connection closed
    /// because the client sent something that does not decode (`forced close`), the decoding
    /// error; for a WebSocket that failed (`transport error`), how (`websocket error: ...`,
    /// as the reference's `Error` object says). `None` otherwise.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
}

impl From<DisconnectReason> for Disconnection {
    fn from(reason: DisconnectReason) -> Disconnection {
        Disconnection::new(reason, None)
    }
}

impl PartialEq<DisconnectReason> for Disconnection {
    fn eq(&self, other: &DisconnectReason) -> bool {
        self.reason == *other
    }
}

impl fmt::Display for Disconnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
