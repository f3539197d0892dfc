//! The settings: the manager's ([`ManagerConfig`]), a socket's ([`SocketOptions`], with its
//! [`Auth`]) and an emit's ([`EmitOptions`]).

use std::time::Duration;

use crate::engine::client as eio;
use crate::socket::decode::DEFAULT_MAX_ATTACHMENTS;
use crate::socket::json::RawJson;
use crate::socket::parser::Parser;

/// The auth payload of a socket's CONNECT (`auth` option).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// The same payload on every connection: a JSON object, or nothing (`40`).
    Static(Option<RawJson>),
    /// Asked for on every connection with [`Event::AuthNeeded`](super::Event::AuthNeeded),
    /// answered with [`Manager::provide_auth`](super::Manager::provide_auth) (the reference's
    /// `auth: (cb) => ...`).
    Callback,
}

impl Default for Auth {
    fn default() -> Self {
        Auth::Static(None)
    }
}

/// Per-socket settings (`SocketOptions`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SocketOptions {
    /// The CONNECT payload (`auth`).
    pub auth: Auth,
    /// Reliable delivery: when above 0, every non-volatile emit goes through a queue, one in
    /// flight at a time, re-sent until acknowledged or tried more than `retries` times
    /// (`retries`, 0). Loss is detected through ack timeouts, so set `ack_timeout` too.
    pub retries: u32,
    /// Default ack timeout of this socket's emits (`ackTimeout`, none).
    pub ack_timeout: Option<Duration>,
}

/// Manager settings, with `socket.io-client`'s defaults.
///
/// As in the reference, a zero `reconnection_delay` or `reconnection_delay_max` means the
/// default, and `reconnection_attempts: Some(0)` means unlimited (`opts.x || default`).
#[derive(Debug, Clone, PartialEq)]
pub struct ManagerConfig {
    /// The Engine.IO session settings (transports, upgrade, query).
    pub engine: eio::Config,
    /// Whether to reconnect after the connection is lost (`reconnection`, true).
    pub reconnection: bool,
    /// Attempts before giving up with [`Event::ReconnectFailed`](super::Event::ReconnectFailed)
    /// (`reconnectionAttempts`; `None`: unlimited).
    pub reconnection_attempts: Option<u32>,
    /// First delay between attempts (`reconnectionDelay`, 1 s).
    pub reconnection_delay: Duration,
    /// Largest delay between attempts (`reconnectionDelayMax`, 5 s).
    pub reconnection_delay_max: Duration,
    /// Jitter of the delays, in `(0, 1]`; anything else disables it (`randomizationFactor`, 0.5).
    pub randomization_factor: f64,
    /// Time the Engine.IO session has to open before the attempt fails with `timeout`
    /// (`timeout`, 20 s; `None`: no limit).
    pub timeout: Option<Duration>,
    /// Seed of the [`SplitMix64`](crate::socket::backoff::SplitMix64) generator drawing the backoff
    /// jitter (the core has no randomness: drivers pass a random seed, tests a fixed one).
    pub seed: u64,
    /// Most packets a socket buffers while not connected, and most packets in its delivery queue.
    /// Default 1024.
    pub max_send_buffer: usize,
    /// Most events a socket holds between its CONNECT and the server's accept (the replay of a
    /// recovered session arrives there). Default 10 000.
    pub max_receive_buffer: usize,
    /// Most binary attachments accepted per packet (`maxAttachments`, 10).
    pub max_attachments: usize,
    /// Most acks a socket waits for at once (default
    /// [`DEFAULT_MAX_PENDING_ACKS`](crate::socket::DEFAULT_MAX_PENDING_ACKS), 4096; the reference
    /// has no bound). At the bound [`Manager::emit`](super::Manager::emit) refuses an emit asking
    /// for one more with [`ClientError::TooManyPendingAcks`](super::ClientError::TooManyPendingAcks), and nothing is
    /// sent; an answer, a timeout or a disconnection makes room again.
    pub max_pending_acks: usize,
    /// Leaves the JSON of the text events it hands over to the application (default `false`):
    /// for a driver that parses every one of them anyway (the browser client, with
    /// `JSON.parse`). Such a payload is checked for its shape only (see
    /// [`Decoder::defer_json_check`](crate::socket::Decoder::defer_json_check)), and the driver
    /// reports one that does not parse with
    /// [`Manager::payload_invalid`](super::Manager::payload_invalid), which closes the connection
    /// with `parse error` as an invalid packet does. An event the driver may never parse (its
    /// namespace has no socket or an inactive one, or it is buffered until the CONNECT accept)
    /// is checked in full by the manager, and the recovery offset is taken only from an event
    /// that reads as JSON.
    pub defer_json_check: bool,
    /// The parser of every packet (default [`Parser::json`]); the server must use the same one.
    pub parser: Parser,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig::with_parser(Parser::json())
    }
}

impl ManagerConfig {
    /// The default settings with `parser` instead of [`Parser::json`]: for a driver whose
    /// parser differs from the start (the browser client reads numbers with the page's
    /// `Number()`, [`Parser::json_with`]), so that the default parser is never made, and Rust's
    /// number conversions stay out of its build.
    pub fn with_parser(parser: Parser) -> ManagerConfig {
        ManagerConfig {
            engine: eio::Config::default(),
            reconnection: true,
            reconnection_attempts: None,
            reconnection_delay: Duration::from_millis(1000),
            reconnection_delay_max: Duration::from_millis(5000),
            randomization_factor: 0.5,
            timeout: Some(Duration::from_millis(20_000)),
            seed: 0,
            max_send_buffer: 1024,
            max_receive_buffer: 10_000,
            max_attachments: DEFAULT_MAX_ATTACHMENTS,
            max_pending_acks: crate::socket::DEFAULT_MAX_PENDING_ACKS,
            defer_json_check: false,
            parser,
        }
    }
}

/// Flags of one emit (the reference's `timeout()`, `volatile`, `compress()` and ack callback).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmitOptions {
    /// Ask the server for an acknowledgement: [`Manager::emit`](super::Manager::emit) returns an
    /// [`AckId`](super::AckId), answered once by [`Event::Ack`](super::Event::Ack) or
    /// [`Event::AckError`](super::Event::AckError).
    pub ack: bool,
    /// Ack timeout of this emit; `None` uses the socket's [`SocketOptions::ack_timeout`].
    pub timeout: Option<Duration>,
    /// Drop the packet if the transport cannot take it right now (`volatile`).
    pub volatile: bool,
    /// Allow per-message compression (`compress`, true).
    pub compress: bool,
}

impl Default for EmitOptions {
    fn default() -> Self {
        EmitOptions {
            ack: false,
            timeout: None,
            volatile: false,
            compress: true,
        }
    }
}

impl EmitOptions {
    /// The defaults, asking for an acknowledgement.
    pub fn with_ack() -> EmitOptions {
        EmitOptions {
            ack: true,
            ..EmitOptions::default()
        }
    }

    /// The defaults, asking for an acknowledgement within `timeout`.
    pub fn with_ack_timeout(timeout: Duration) -> EmitOptions {
        EmitOptions {
            ack: true,
            timeout: Some(timeout),
            ..EmitOptions::default()
        }
    }
}

/// True if the JSON text is an object.
pub(super) fn is_json_object(json: &RawJson) -> bool {
    crate::scan::trim_ws(json.as_str()).starts_with('{')
}
