//! Why a connection could not be opened, typed for the application: the transport's failure
//! ([`TransportError`], engine.io-client's), the timeout, or another close
//! ([`ConnectionError`]); and [`OpenFailures`], which a driver keeps to give the manager's
//! `error`, `reconnect_error` and `connect_error` messages their typed cause.
//!
//! The manager knows a driver's failure by its text only ([`Input::TransportError`]'s
//! `description`, which a driver writes as its [`TransportError`]'s `Display`); the manager's
//! own messages (`timeout`, `parse error`, an invalid handshake) never read like a transport's
//! (`xhr poll error: …`, `websocket error: …`), so the text names the failure exactly.
//!
//! [`Input::TransportError`]: crate::engine::client::Input::TransportError

use std::fmt;

/// A transport's failure: engine.io-client's `TransportError` (`message`, `description`,
/// `context`), with the HTTP status apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    /// What failed, as engine.io-client names it: `xhr poll error` (a long-polling GET),
    /// `xhr post error` (a long-polling POST) or `websocket error`.
    pub message: String,
    /// The HTTP status of the answer that was not 200: `Some(0)` when none came (a network
    /// error, or the request's timeout passed), as engine.io-client's `description`; `None`
    /// for a WebSocket that failed without an HTTP answer.
    pub status: Option<u16>,
    /// What the transport said: `HTTP <status>`, the network error, or the WebSocket's error.
    pub description: String,
    /// The body of an answer other than 200 (the server's explanation), if any.
    pub context: Option<String>,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.message, self.description)?;
        match &self.context {
            Some(c) if !c.is_empty() => write!(f, ": {c}"),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for TransportError {}

/// Why the connection could not be opened: the manager's `error` and `reconnect_error`, and
/// the cause of a socket's `connect_error` that comes from them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionError {
    /// A transport failed (engine.io-client's `TransportError`; boxed, so that the errors that
    /// carry this one stay small).
    Transport(Box<TransportError>),
    /// The connection did not open within the manager's timeout (`Error("timeout")`).
    Timeout,
    /// The session closed while opening for another reason (a handshake that does not decode,
    /// say): its description.
    Other(String),
}

impl ConnectionError {
    /// The error's message (`err.message`): the transport's, `timeout`, or the reason.
    pub fn message(&self) -> &str {
        match self {
            ConnectionError::Transport(e) => &e.message,
            ConnectionError::Timeout => "timeout",
            ConnectionError::Other(m) => m,
        }
    }
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionError::Transport(e) => write!(f, "{e}"),
            ConnectionError::Timeout => f.write_str("timeout"),
            ConnectionError::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ConnectionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectionError::Transport(e) => Some(&**e),
            _ => None,
        }
    }
}

/// What a driver keeps to type the manager's open failures: the last transport failure it
/// reported, and the last `error`. Report failures with [`OpenFailures::transport_failed`]
/// (whose text goes to the manager) and turn the manager's messages into causes with the other
/// methods.
///
/// ```
/// use ferrio_proto::socket::client::{ConnectionError, OpenFailures, TransportError};
///
/// let mut failures = OpenFailures::default();
/// let description = failures.transport_failed(TransportError {
///     message: "xhr poll error".into(),
///     status: Some(403),
///     description: "HTTP 403".into(),
///     context: Some("forbidden".into()),
/// });
/// // `description` goes to the manager as `Input::TransportError`; its `Event::Error` then
/// // carries that text back:
/// let cause = failures.open_error(&description);
/// assert!(matches!(&cause, ConnectionError::Transport(e) if e.status == Some(403)));
/// assert_eq!(failures.open_error("timeout"), ConnectionError::Timeout);
/// ```
#[derive(Debug, Clone, Default)]
pub struct OpenFailures {
    last_transport: Option<TransportError>,
    last_open: Option<(String, ConnectionError)>,
}

impl OpenFailures {
    /// Records a transport's failure; returns the description to report to the manager
    /// (`Input::TransportError`).
    pub fn transport_failed(&mut self, error: TransportError) -> String {
        let description = error.to_string();
        self.last_transport = Some(error);
        description
    }

    /// The connection opened (`Event::Open`): the failures before it no longer explain
    /// anything (a server's `connect_error` from now on is its own).
    pub fn opened(&mut self) {
        self.last_transport = None;
        self.last_open = None;
    }

    /// The cause of the manager's `error` (`Event::Error`) with `message`; remembered for the
    /// `reconnect_error` and `connect_error` that follow it.
    pub fn open_error(&mut self, message: &str) -> ConnectionError {
        let cause = match &self.last_transport {
            Some(e) if e.to_string() == message => ConnectionError::Transport(Box::new(e.clone())),
            _ if message == "timeout" => ConnectionError::Timeout,
            _ => ConnectionError::Other(message.to_owned()),
        };
        self.last_open = Some((message.to_owned(), cause.clone()));
        cause
    }

    /// The cause of the manager's `reconnect_error` (`Event::ReconnectError`) with `message`:
    /// the `error` just before it.
    pub fn reconnect_error(&mut self, message: &str) -> ConnectionError {
        match &self.last_open {
            Some((m, cause)) if m == message => cause.clone(),
            _ => self.open_error(message),
        }
    }

    /// The cause of the last `error`: why the last attempt failed (after `reconnect_failed`,
    /// say).
    pub fn last_error(&self) -> Option<&ConnectionError> {
        self.last_open.as_ref().map(|(_, cause)| cause)
    }

    /// The cause of a socket's `connect_error` (`Event::ConnectError`) with `message`: the
    /// connection's own failure (the `error` just before) when it has no `data`; `None` when
    /// the server refused the socket.
    pub fn connect_error(&self, message: &str, has_data: bool) -> Option<ConnectionError> {
        match &self.last_open {
            Some((m, cause)) if !has_data && m == message => Some(cause.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> TransportError {
        TransportError {
            message: "xhr poll error".into(),
            status: Some(403),
            description: "HTTP 403".into(),
            context: None,
        }
    }

    #[test]
    fn messages_name_their_cause() {
        let mut f = OpenFailures::default();
        assert_eq!(
            f.open_error("parse error"),
            ConnectionError::Other("parse error".into())
        );
        assert_eq!(
            f.connect_error("parse error", false),
            Some(ConnectionError::Other("parse error".into()))
        );
        let text = f.transport_failed(refused());
        assert_eq!(text, "xhr poll error: HTTP 403");
        assert_eq!(
            f.open_error(&text),
            ConnectionError::Transport(Box::new(refused()))
        );
        assert_eq!(
            f.reconnect_error(&text),
            ConnectionError::Transport(Box::new(refused()))
        );
        // A refusal by the server's middleware (with data, or another message) has none.
        assert_eq!(f.connect_error(&text, true), None);
        assert_eq!(f.connect_error("not allowed", false), None);
        assert_eq!(f.open_error("timeout"), ConnectionError::Timeout);
        assert_eq!(f.reconnect_error("timeout"), ConnectionError::Timeout);
        assert_eq!(f.last_error(), Some(&ConnectionError::Timeout));
        // Once the connection opens, a server's refusal with the same text is its own.
        f.opened();
        assert_eq!(f.connect_error("timeout", false), None);
        assert_eq!(f.last_error(), None);
    }
}
