//! The server side of one Engine.IO session: handshake, heartbeat, the long-polling cycle,
//! WebSocket, the upgrade from polling to WebSocket, and close, as `engine.io` 6.6 does them.
//!
//! The driver (the HTTP/WebSocket server) owns sockets, requests and timers and nothing else:
//!
//! ```text
//! loop {
//!     while let Some(out) = session.poll_output() { perform(out) }   // answer polls, write frames
//!     let input = select {
//!         GET  => Input::Poll(request_id),                 // Err: answer 400 / 500
//!         POST => Input::Post { body, binary },            // Err: 400 / 413; Ok: 200 "ok"
//!         frame on the WebSocket => Input::WsFrame(frame),
//!         sleep_until(session.poll_timeout()) => Input::Timeout,
//!     };
//!     session.handle_input(now, input)                     // the timers due run first
//! }
//! ```
//!
//! ```
//! use std::time::Duration;
//! use ferrio_proto::engine::server::{Config, Input, Io, Output, Session, Transport};
//! use ferrio_proto::engine::{Packet, Protocol};
//! use ferrio_proto::Instant;
//!
//! let t0 = Instant::from_millis(0);
//! let mut s = Session::new(t0, "abc".into(), Protocol::V4, Transport::Polling, Config::default());
//! s.handle_input(t0, Input::Poll(1)).unwrap(); // the handshake GET
//! let Some(Output::Io(Io::PollResponse { request: 1, body, .. })) = s.poll_output() else { panic!() };
//! assert!(body.starts_with(br#"0{"sid":"abc","upgrades":["websocket"],"pingInterval":25000"#));
//! // pingInterval later the server pings through the next GET
//! s.handle_input(t0, Input::Poll(2)).unwrap();
//! assert_eq!(s.poll_timeout(), Some(Instant::from_millis(25_000)));
//! s.handle_input(Instant::from_millis(25_000), Input::Timeout).unwrap();
//! let Some(Output::Io(Io::PollResponse { request: 2, body, .. })) = s.poll_output() else { panic!() };
//! assert_eq!(&body[..], b"2");
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;

use super::handshake::OpenPacket;
use super::packet::{encode_base64_into, Frame, Packet, Protocol};
use super::payload::{decode_payload_bytes, encode_payload};
use super::payload_v3::{
    decode_payload_v3, decode_payload_v3_binary, encode_payload_v3, encode_payload_v3_binary,
};
use super::request::Handshake;
pub use super::transport::Transport;
use crate::outputs::Outputs;
use crate::{Instant, Str};

/// Session settings, with `engine.io`'s defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Time between server pings (`pingInterval`, 25 s).
    pub ping_interval: Duration,
    /// Time the client has to answer a ping (`pingTimeout`, 20 s).
    pub ping_timeout: Duration,
    /// Time the client has to finish an upgrade after opening the WebSocket (`upgradeTimeout`, 10 s).
    pub upgrade_timeout: Duration,
    /// Largest POST body or WebSocket message accepted, and the `maxPayload` advertised
    /// (`maxHttpBufferSize`, 1 MB).
    pub max_payload: usize,
    /// Whether polling sessions may upgrade to WebSocket (`allowUpgrades`, true).
    pub allow_upgrades: bool,
    /// Whether the WebSocket transport is enabled (it is the only upgrade target).
    pub websocket_enabled: bool,
    /// Time a polling session being closed waits for a GET to deliver the close packet (30 s).
    pub close_timeout: Duration,
    /// Interval of the `noop` answers to a pending GET during an upgrade (100 ms).
    pub upgrade_noop_interval: Duration,
    /// Bytes of outgoing packets a polling session may hold while no GET is pending. Past it the
    /// session is closed with [`CloseReason::BufferFull`] (a client that stopped polling cannot
    /// make the server hold unbounded memory). Default: 10 × `max_payload`. The Socket.IO
    /// connection also caps by it the answers to CONNECTs retried while one is being decided,
    /// over either transport (past it: closed with `buffer full`).
    pub max_buffered_bytes: usize,
    /// A `message` sent right after `open` (`initialPacket`).
    pub initial_packet: Option<Str>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            upgrade_timeout: Duration::from_millis(10_000),
            max_payload: 1_000_000,
            allow_upgrades: true,
            websocket_enabled: true,
            close_timeout: Duration::from_millis(30_000),
            upgrade_noop_interval: Duration::from_millis(100),
            max_buffered_bytes: 10_000_000,
            initial_packet: None,
        }
    }
}

/// Why a session closed: the reasons `engine.io` reports (plus [`CloseReason::BufferFull`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The transport failed, or the client broke a rule (`transport error`).
    TransportError,
    /// The client closed (`transport close`).
    TransportClose,
    /// The server closed the session (`forced close`).
    ForcedClose,
    /// No heartbeat answer in time (`ping timeout`).
    PingTimeout,
    /// The client sent a payload that does not decode (`parse error`).
    ParseError,
    /// Too many bytes waited for a client that does not poll (Ferrio's bound; see
    /// [`Config::max_buffered_bytes`]).
    BufferFull,
}

impl CloseReason {
    /// The reason as `engine.io` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::TransportError => "transport error",
            CloseReason::TransportClose => "transport close",
            CloseReason::ForcedClose => "forced close",
            CloseReason::PingTimeout => "ping timeout",
            CloseReason::ParseError => "parse error",
            CloseReason::BufferFull => "buffer full",
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request the session refuses: a polling request, which the driver answers with the status
/// given, or an upgrade, whose WebSocket the driver accepts and closes at once (as the
/// reference does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// A second GET while one is pending (400; the session closes with `transport error`).
    PollOverlap,
    /// A second POST while one is being read (400; the session closes with `transport error`).
    PostOverlap,
    /// A binary (`application/octet-stream`) POST on protocol v4 (400; the session closes).
    BinaryPostOnV4,
    /// A POST body over `max_payload` (413; the session stays open).
    PayloadTooLarge,
    /// A polling request on a session that is not (or no longer) polling: upgraded, or opened
    /// over WebSocket (400, `Bad request`, context `TRANSPORT_MISMATCH`).
    TransportMismatch,
    /// The body does not decode; the session is closed with `parse error` (400).
    InvalidPayload,
    /// The session is closed (400, `Session ID unknown`).
    Closed,
    /// An upgrade while upgrades are disabled, or on a session that is not polling.
    UpgradeNotAllowed,
    /// An upgrade while one is under way, or done.
    AlreadyUpgrading,
}

impl RequestError {
    /// The HTTP status code the reference answers with.
    pub fn status(self) -> u16 {
        match self {
            RequestError::PayloadTooLarge => 413,
            _ => 400,
        }
    }

    /// The Engine.IO error code of the 400 answer (`None` for the bare 413).
    pub fn code(self) -> Option<super::request::ErrorCode> {
        use super::request::ErrorCode;
        match self {
            RequestError::PayloadTooLarge => None,
            RequestError::Closed => Some(ErrorCode::UnknownSid),
            _ => Some(ErrorCode::BadRequest),
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RequestError::PollOverlap => "overlap from client",
            RequestError::PostOverlap => "data request overlap from client",
            RequestError::BinaryPostOnV4 => "invalid content",
            RequestError::PayloadTooLarge => "payload too large",
            RequestError::TransportMismatch => "transport mismatch",
            RequestError::InvalidPayload => "parse error",
            RequestError::Closed => "session closed",
            RequestError::UpgradeNotAllowed => "upgrade not allowed",
            RequestError::AlreadyUpgrading => "already upgrading",
        })
    }
}

impl std::error::Error for RequestError {}

/// Identifies a pending long-poll GET, chosen by the driver.
pub type RequestId = u64;

/// Everything that reaches a session from outside: the driver's HTTP requests, WebSocket
/// events, and the passing of time. Given to [`Session::handle_input`], which runs the timers
/// due at `now` first.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub enum Input {
    /// Nothing but time: the timers due run (see [`Session::poll_timeout`]).
    Timeout,
    /// A long-poll GET arrived. On `Ok` the request stays pending until an
    /// [`Io::PollResponse`] names it; on `Err` answer with [`RequestError::status`].
    Poll(RequestId),
    /// The client went away while its GET was pending ("poll connection closed prematurely").
    PollAborted(RequestId),
    /// A POST started: given before its body is read, so that overlapping POSTs are refused as
    /// the reference refuses them. `binary` is true for `Content-Type: application/octet-stream`.
    PostStart {
        /// The body is a v3 binary payload.
        binary: bool,
    },
    /// The POST body was read (or `None`: the client aborted it). The driver answers 200 `ok`
    /// on `Ok`. Bodies over `max_payload` are refused with 413 and the session stays open; the
    /// driver may stop reading once the limit is passed and pass the bytes it has.
    Post {
        /// The body.
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::fuzzing::option_bytes))]
        body: Option<Bytes>,
        /// The body is a v3 binary payload.
        binary: bool,
    },
    /// A frame arrived on the session's WebSocket. Messages over `max_payload` close the
    /// session (the WebSocket layer should refuse them first, with close code 1009).
    WsFrame(Frame),
    /// The session's WebSocket closed (`error`: it failed rather than closed cleanly).
    WsClosed {
        /// It failed rather than closed cleanly.
        error: bool,
    },
    /// The driver's write queue for the session's WebSocket went below (`true`) or above
    /// (`false`) its limit. Only volatile packets depend on it.
    WsWritable(bool),
    /// A WebSocket request carrying this session's id arrived (the upgrade). On `Ok` the driver
    /// completes the WebSocket handshake and passes its frames as [`Input::ProbeFrame`]; on
    /// `Err` it accepts and closes it at once.
    UpgradeRequest,
    /// A frame arrived on the WebSocket being probed: `2probe` is answered `3probe`, `5`
    /// completes the upgrade, anything else closes the probe.
    ProbeFrame(Frame),
    /// The WebSocket being probed closed or failed: the upgrade is abandoned.
    ProbeClosed,
}

/// How a packet is sent ([`Session::send`]): the reference's `volatile` and `compress` flags.
/// As in the reference, `volatile` is off and `compress` on by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendOptions {
    /// Dropped, rather than buffered, when the transport cannot take it at once.
    pub volatile: bool,
    /// Compression may be applied (polling `httpCompression`; WebSocket per-message deflate,
    /// from its threshold on); false keeps the packet's frames uncompressed.
    pub compress: bool,
}

impl Default for SendOptions {
    fn default() -> SendOptions {
        SendOptions {
            volatile: false,
            compress: true,
        }
    }
}

/// Why [`Session::send`] did not queue a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The session is closed or closing.
    Closed,
    /// A volatile packet, and the transport could not take it at once: dropped.
    NotWritable,
    /// The write buffer went past [`Config::max_buffered_bytes`]: the session is closing with
    /// [`CloseReason::BufferFull`].
    BufferFull,
}

impl SendError {
    /// The reason, as `Display` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            SendError::Closed => "session closed",
            SendError::NotWritable => "transport not writable",
            SendError::BufferFull => "write buffer full",
        }
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for SendError {}

/// An I/O action for the driver. Not `#[non_exhaustive]`: every driver must perform every
/// action, so a new one is a change that drivers must see at compile time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Io {
    /// Answer the pending GET `request` with status 200 and this body. `binary` selects
    /// `application/octet-stream` (v3 binary payloads) over `text/plain; charset=UTF-8`.
    /// `compress` is true if any packet in it asked for compression.
    PollResponse {
        /// The GET being answered.
        request: RequestId,
        /// The payload.
        body: Bytes,
        /// True for a v3 binary payload.
        binary: bool,
        /// Whether compression may be applied (`httpCompression`).
        compress: bool,
    },
    /// Write a frame on the session's WebSocket. `compress` is the [`SendOptions::compress`] of
    /// the packet it belongs to (true for the session's own packets: open, ping, pong): when
    /// false the frame goes uncompressed whatever its size.
    WsSend {
        /// The frame.
        frame: Frame,
        /// Whether per-message compression may be applied.
        compress: bool,
    },
    /// Close the session's WebSocket.
    WsClose,
    /// Write a frame on the WebSocket being probed for an upgrade.
    ProbeSend(Frame),
    /// Close the WebSocket being probed; the upgrade failed, the session goes on polling.
    ProbeClose,
    /// The upgrade is done: the probe WebSocket is now the session's WebSocket.
    Upgraded,
}

/// Something for the upper layer (the Socket.IO connection, or an application using Engine.IO
/// alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A text message from the client.
    Message(Str),
    /// A binary message from the client.
    Binary(Bytes),
    /// The session is closed. Nothing follows.
    Closed(CloseReason),
}

/// What the driver must do, or pass up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Perform an I/O action.
    Io(Io),
    /// Pass an event to the upper layer.
    Event(Event),
}

/// The earlier of two optional instants (`None` is never).
pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// Closing after the write buffer drains (server-initiated close).
    Closing,
    Closed,
}

#[derive(Debug, Clone)]
struct Upgrade {
    deadline: Instant,
    /// Next `noop` for a pending GET, once the probe ping arrived.
    next_noop: Option<Instant>,
}

/// What a session received and sent: the Engine.IO packets that carry data and their data's
/// bytes, counted as the reference's Admin UI counts a raw socket's `packet` and `packetCreate`
/// events. A packet counts when it has data: a text message (or a v3 ping) that is not empty, or
/// a binary message (a `Buffer` is data even when empty); the bytes are the data's length (UTF-8
/// for text, decoded for base64). The `open` packet and the `initial_packet` are sent before
/// anything could listen there and are not counted, nor are pings, pongs, `noop`, `close` or the
/// upgrade probe, which carry no data or are not the session's packets yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets with data received from the client.
    pub packets_in: u64,
    /// Their data's bytes.
    pub bytes_in: u64,
    /// Packets with data sent to the client (accepted by [`Session::send`]).
    pub packets_out: u64,
    /// Their data's bytes.
    pub bytes_out: u64,
}

impl Stats {
    /// `self - earlier`, field by field (saturating): what happened since `earlier`.
    #[must_use]
    pub fn since(&self, earlier: &Stats) -> Stats {
        Stats {
            packets_in: self.packets_in.saturating_sub(earlier.packets_in),
            bytes_in: self.bytes_in.saturating_sub(earlier.bytes_in),
            packets_out: self.packets_out.saturating_sub(earlier.packets_out),
            bytes_out: self.bytes_out.saturating_sub(earlier.bytes_out),
        }
    }
}

/// The data bytes of a frame given to [`Session::send`] (an encoded packet: its type character
/// and its data, or a binary message's data) that counts as a packet with data, or `None`.
fn data_len(frame: &Frame) -> Option<u64> {
    match frame {
        Frame::Text(s) if s.len() <= 1 => None,
        Frame::Text(s) => Some(s.len() as u64 - 1),
        Frame::Binary(b) => Some(b.len() as u64),
    }
}

#[derive(Debug, Clone)]
struct Queued {
    frame: Frame,
    compress: bool,
}

/// One Engine.IO session, server side. See the [module docs](self).
#[derive(Debug)]
pub struct Session {
    sid: Str,
    protocol: Protocol,
    config: Config,
    supports_binary: bool,
    state: State,
    transport: Transport,
    upgraded: bool,
    upgrade: Option<Upgrade>,
    // long-polling
    pending_get: Option<RequestId>,
    post_in_flight: bool,
    buffer: VecDeque<Queued>,
    buffered_bytes: usize,
    /// A polling close waits for a GET to deliver `1`, until this instant.
    close_deadline: Option<Instant>,
    // heartbeat
    next_ping: Option<Instant>,
    ping_deadline: Option<Instant>,
    refreshed: bool,
    ws_writable: bool,
    outputs: Outputs<Output>,
    stats: Stats,
    close_reason: Option<CloseReason>,
}

impl Session {
    /// Opens a session: the `open` packet (and `initial_packet`) are queued, the heartbeat starts.
    ///
    /// `sid` comes from the driver (generated from its randomness). For a polling session the
    /// handshake GET is then given as [`Input::Poll`] like any other.
    pub fn new(
        now: Instant,
        sid: Str,
        protocol: Protocol,
        transport: Transport,
        config: Config,
    ) -> Session {
        let handshake = Handshake {
            transport,
            protocol,
            base64: false,
        };
        Session::from_handshake(now, sid, &handshake, config)
    }

    /// Opens a session for a verified handshake request (see
    /// [`super::request::Route::Handshake`]): its protocol and transport, and, when the client
    /// asked for base64 (`b64`), binary messages as `b` + base64 text frames over WebSocket (`b4`
    /// + base64 for v3) and v3 polling payloads kept as text. v4 polling payloads are always text.
    pub fn from_handshake(
        now: Instant,
        sid: Str,
        handshake: &Handshake,
        config: Config,
    ) -> Session {
        let Handshake {
            transport,
            protocol,
            base64,
        } = *handshake;
        let mut s = Session {
            sid,
            protocol,
            config,
            supports_binary: !base64,
            state: State::Open,
            transport,
            upgraded: false,
            upgrade: None,
            pending_get: None,
            post_in_flight: false,
            buffer: VecDeque::new(),
            buffered_bytes: 0,
            close_deadline: None,
            next_ping: None,
            ping_deadline: None,
            refreshed: false,
            ws_writable: true,
            outputs: Outputs::new(),
            stats: Stats::default(),
            close_reason: None,
        };
        let upgrades = if transport == Transport::Polling
            && s.config.allow_upgrades
            && s.config.websocket_enabled
        {
            vec!["websocket".to_owned()]
        } else {
            Vec::new()
        };
        let open = OpenPacket {
            sid: s.sid.to_string(),
            upgrades,
            ping_interval: millis(s.config.ping_interval),
            ping_timeout: millis(s.config.ping_timeout),
            max_payload: Some(s.config.max_payload as u64),
        };
        // The session's own packets (open, ping, pong) may be compressed: the reference's
        // `sendPacket` default.
        s.push(Frame::Text(open.to_frame()), true);
        if let Some(initial) = s.config.initial_packet.clone() {
            s.push(Packet::Message(initial).encode(), true);
        }
        match protocol {
            Protocol::V4 => s.next_ping = Some(now + s.config.ping_interval),
            Protocol::V3 => {
                s.ping_deadline = Some(now + s.config.ping_interval + s.config.ping_timeout)
            }
        }
        s
    }

    /// The session id.
    pub fn sid(&self) -> &Str {
        &self.sid
    }

    /// The protocol revision of the client.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The current transport.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// True once the session is closed.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// True if a packet sent now reaches the transport at once (a GET is pending, or the
    /// WebSocket is writable): volatile packets are dropped otherwise.
    pub fn is_writable(&self) -> bool {
        self.state == State::Open
            && match self.transport {
                Transport::Polling => self.pending_get.is_some(),
                Transport::WebSocket => self.ws_writable,
            }
    }

    /// The packets with data received and sent so far, and their bytes (see [`Stats`]).
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Why the session closed, once it is closed.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.close_reason
    }

    /// Bytes waiting for the next GET.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }

    /// Sends frames to the client (one Socket.IO packet: its text frame and attachments).
    /// Volatile frames are dropped when the transport is not writable. Nothing is sent once the
    /// session is closing.
    pub fn send(
        &mut self,
        now: Instant,
        frames: impl IntoIterator<Item = Frame>,
        options: SendOptions,
    ) -> Result<(), SendError> {
        let _ = now;
        if self.state != State::Open {
            return Err(SendError::Closed);
        }
        if options.volatile && !self.is_writable() {
            return Err(SendError::NotWritable);
        }
        for frame in frames {
            if let Some(len) = data_len(&frame) {
                self.stats.packets_out += 1;
                self.stats.bytes_out += len;
            }
            self.push(frame, options.compress);
        }
        // Over WebSocket the frames went out as they were pushed: nothing to flush.
        if self.transport == Transport::Polling {
            if self.buffered_bytes > self.config.max_buffered_bytes {
                self.close_with(CloseReason::BufferFull);
                return Err(SendError::BufferFull);
            }
            self.flush();
        }
        Ok(())
    }

    /// Handles one input, after the timers due at `now` (see [`Input`] for each).
    pub fn handle_input(&mut self, now: Instant, input: Input) -> Result<(), RequestError> {
        self.on_timeout(now);
        match input {
            Input::Timeout => {}
            Input::Poll(request) => self.on_poll(request)?,
            Input::PollAborted(request) => self.on_poll_aborted(request),
            Input::PostStart { binary } => self.on_post_start(binary)?,
            Input::Post { body, binary } => self.on_post(now, body, binary)?,
            Input::WsFrame(frame) => self.on_ws_frame(now, frame),
            Input::WsClosed { error } => self.on_ws_closed(error),
            Input::WsWritable(writable) => self.ws_writable = writable,
            Input::UpgradeRequest => self.on_upgrade_request(now)?,
            Input::ProbeFrame(frame) => self.on_probe_frame(now, frame),
            // The peer closed it already: nothing to close, the session goes on polling.
            Input::ProbeClosed => self.upgrade = None,
        }
        Ok(())
    }

    /// Closes the session from the server side (`socket.close()`): buffered packets are
    /// delivered first, then the close packet on polling; the reason is `forced close`.
    pub fn close(&mut self, now: Instant) {
        if self.state != State::Open {
            return;
        }
        self.state = State::Closing;
        self.next_ping = None;
        match self.transport {
            Transport::WebSocket => {
                self.flush();
                self.finish(CloseReason::ForcedClose);
            }
            Transport::Polling => {
                self.close_deadline = Some(now + self.config.close_timeout);
                self.flush();
            }
        }
    }

    fn on_poll(&mut self, request: RequestId) -> Result<(), RequestError> {
        self.check_polling()?;
        if self.pending_get.is_some() {
            // The reference errors the transport: the first GET receives the close packet.
            self.close_with(CloseReason::TransportError);
            return Err(RequestError::PollOverlap);
        }
        self.pending_get = Some(request);
        self.flush();
        Ok(())
    }

    fn on_poll_aborted(&mut self, request: RequestId) {
        if self.pending_get == Some(request) {
            self.pending_get = None;
            self.close_with(CloseReason::TransportError);
        }
    }

    fn on_post_start(&mut self, binary: bool) -> Result<(), RequestError> {
        self.check_polling()?;
        if self.post_in_flight {
            self.close_with(CloseReason::TransportError);
            return Err(RequestError::PostOverlap);
        }
        if binary && self.protocol == Protocol::V4 {
            self.close_with(CloseReason::TransportError);
            return Err(RequestError::BinaryPostOnV4);
        }
        self.post_in_flight = true;
        Ok(())
    }

    fn on_post(
        &mut self,
        now: Instant,
        body: Option<Bytes>,
        binary: bool,
    ) -> Result<(), RequestError> {
        if !self.post_in_flight {
            self.on_post_start(binary)?;
        }
        self.post_in_flight = false;
        let Some(body) = body else {
            // "data request connection closed prematurely"
            self.close_with(CloseReason::TransportError);
            return Err(RequestError::Closed);
        };
        if self.state == State::Closed {
            return Err(RequestError::Closed);
        }
        if body.len() > self.config.max_payload {
            return Err(RequestError::PayloadTooLarge);
        }
        let packets = match (self.protocol, binary) {
            (Protocol::V4, _) => match decode_payload_bytes(body) {
                Ok(iter) => iter.collect::<Vec<_>>(),
                Err(e) => vec![Err(e)],
            },
            (Protocol::V3, true) => match decode_payload_v3_binary(body) {
                Ok(ps) => ps.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            },
            (Protocol::V3, false) => match Str::from_utf8(body).map(|s| decode_payload_v3(&s)) {
                Ok(Ok(ps)) => ps.into_iter().map(Ok).collect(),
                Ok(Err(e)) => vec![Err(e)],
                Err(_) => vec![Err(super::DecodeError::InvalidUtf8)],
            },
        };
        for packet in packets {
            if self.state == State::Closed {
                break;
            }
            if packet.is_err() {
                self.close_with(CloseReason::ParseError);
                return Err(RequestError::InvalidPayload);
            }
            match packet {
                Ok(Packet::Close) => {
                    // The client closes: a pending GET is answered with `noop`.
                    if let Some(request) = self.pending_get.take() {
                        self.respond(request, vec![Packet::Noop.encode()], false);
                    }
                    self.finish(CloseReason::TransportClose);
                }
                Ok(p) => self.on_packet(now, p),
                Err(_) => self.close_with(CloseReason::ParseError),
            }
        }
        Ok(())
    }

    fn on_ws_frame(&mut self, now: Instant, frame: Frame) {
        if self.transport != Transport::WebSocket || self.state == State::Closed {
            return;
        }
        if frame_len(&frame) > self.config.max_payload {
            self.close_with(CloseReason::TransportError);
            return;
        }
        match Packet::decode(frame, self.protocol) {
            // Over WebSocket the reference ignores a `close` packet: the client closes the socket.
            Ok(Packet::Close) => {}
            Ok(p) => self.on_packet(now, p),
            Err(_) => self.close_with(CloseReason::ParseError),
        }
    }

    fn on_ws_closed(&mut self, error: bool) {
        if self.transport == Transport::WebSocket && self.state != State::Closed {
            let reason = if error {
                CloseReason::TransportError
            } else {
                CloseReason::TransportClose
            };
            // The WebSocket is gone already: nothing to close.
            self.finish_inner(reason, false);
        }
    }

    fn on_upgrade_request(&mut self, now: Instant) -> Result<(), RequestError> {
        if self.state == State::Closed {
            return Err(RequestError::Closed);
        }
        if self.upgrade.is_some() || self.upgraded {
            return Err(RequestError::AlreadyUpgrading);
        }
        if self.transport != Transport::Polling
            || !self.config.allow_upgrades
            || !self.config.websocket_enabled
        {
            return Err(RequestError::UpgradeNotAllowed);
        }
        self.upgrade = Some(Upgrade {
            deadline: now + self.config.upgrade_timeout,
            next_noop: None,
        });
        Ok(())
    }

    fn on_probe_frame(&mut self, now: Instant, frame: Frame) {
        if self.upgrade.is_none() {
            return;
        }
        match Packet::decode(frame, self.protocol) {
            Ok(Packet::Ping(data)) if &*data == "probe" => {
                self.outputs.push(Output::Io(Io::ProbeSend(
                    Packet::Pong(Str::from_static("probe")).encode(),
                )));
                if let Some(u) = self.upgrade.as_mut() {
                    u.next_noop = Some(now + self.config.upgrade_noop_interval);
                }
            }
            Ok(Packet::Upgrade) if self.state != State::Closed => self.complete_upgrade(),
            _ => self.abort_upgrade(),
        }
    }

    /// The next thing the driver must do, or pass up.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop()
    }

    /// Whether [`Session::poll_output`] has something now.
    #[must_use]
    pub fn has_output(&self) -> bool {
        !self.outputs.is_empty()
    }

    /// When [`Input::Timeout`] must be given next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Closed {
            return None;
        }
        let timers = earliest(
            self.next_ping,
            earliest(self.ping_deadline, self.close_deadline),
        );
        match &self.upgrade {
            Some(u) => earliest(timers, earliest(Some(u.deadline), u.next_noop)),
            None => timers,
        }
    }

    /// Runs the timers that are due at `now`.
    fn on_timeout(&mut self, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        if self.ping_deadline.is_some_and(|d| d <= now) {
            self.ping_deadline = None;
            self.close_with(CloseReason::PingTimeout);
            return;
        }
        if self.close_deadline.is_some_and(|d| d <= now) {
            self.close_deadline = None;
            self.finish(CloseReason::ForcedClose);
            return;
        }
        if self.next_ping.is_some_and(|d| d <= now) {
            self.next_ping = None;
            self.refreshed = false;
            self.push(Packet::Ping(Str::default()).encode(), true);
            self.ping_deadline = Some(now + self.config.ping_timeout);
            self.flush();
        }
        if let Some(u) = self.upgrade.as_mut() {
            if u.deadline <= now {
                self.abort_upgrade();
            } else if u.next_noop.is_some_and(|d| d <= now) {
                u.next_noop = Some(now + self.config.upgrade_noop_interval);
                if let Some(request) = self.pending_get.take() {
                    self.respond(request, vec![Packet::Noop.encode()], false);
                }
            }
        }
    }

    fn check_polling(&self) -> Result<(), RequestError> {
        if self.state == State::Closed {
            return Err(RequestError::Closed);
        }
        if self.transport != Transport::Polling {
            return Err(RequestError::TransportMismatch);
        }
        Ok(())
    }

    fn on_packet(&mut self, now: Instant, packet: Packet) {
        if self.state != State::Open {
            return;
        }
        // engine.io 6.6.12: while waiting for a pong, the first other packet refreshes the
        // ping-timeout timer, once.
        if self.protocol == Protocol::V4
            && self.ping_deadline.is_some()
            && !self.refreshed
            && !matches!(packet, Packet::Pong(_))
        {
            self.ping_deadline = Some(now + self.config.ping_timeout);
            self.refreshed = true;
        }
        // The reference's `packet` event, for the packets that carry data.
        let len = match &packet {
            Packet::Ping(s) | Packet::Pong(s) | Packet::Message(s) if !s.is_empty() => {
                Some(s.len() as u64)
            }
            Packet::Binary(b) => Some(b.len() as u64),
            _ => None,
        };
        if let Some(len) = len {
            self.stats.packets_in += 1;
            self.stats.bytes_in += len;
        }
        match packet {
            Packet::Ping(data) => match self.protocol {
                Protocol::V4 => self.close_with(CloseReason::TransportError),
                Protocol::V3 => {
                    self.ping_deadline =
                        Some(now + self.config.ping_interval + self.config.ping_timeout);
                    self.push(Packet::Pong(data).encode(), true);
                    self.flush();
                }
            },
            Packet::Pong(_) => match self.protocol {
                Protocol::V3 => self.close_with(CloseReason::TransportError),
                Protocol::V4 => {
                    self.ping_deadline = None;
                    self.next_ping = Some(now + self.config.ping_interval);
                }
            },
            Packet::Message(text) => self.outputs.push(Output::Event(Event::Message(text))),
            Packet::Binary(data) => self.outputs.push(Output::Event(Event::Binary(data))),
            Packet::Open(_) | Packet::Close | Packet::Upgrade | Packet::Noop => {}
        }
    }

    /// A frame as this session's WebSocket carries it: binary data with the v3 type byte, or as
    /// base64 text for a client that cannot take binary.
    fn ws_frame(&self, frame: Frame) -> Frame {
        let Frame::Binary(data) = frame else {
            return frame;
        };
        let packet = Packet::Binary(data);
        match (self.supports_binary, self.protocol) {
            (true, Protocol::V4) => packet.encode(),
            (true, Protocol::V3) => packet.encode_v3(),
            (false, protocol) => {
                let mut text = match protocol {
                    Protocol::V4 => b"b".to_vec(),
                    Protocol::V3 => b"b4".to_vec(),
                };
                if let Packet::Binary(data) = &packet {
                    encode_base64_into(data, &mut text);
                }
                // base64 is ASCII: always UTF-8.
                Frame::Text(Str::from_utf8(Bytes::from(text)).unwrap_or_default())
            }
        }
    }

    fn push(&mut self, frame: Frame, compress: bool) {
        if self.transport == Transport::WebSocket {
            // A text frame goes as it is; only a binary one may need another form.
            let frame = match frame {
                Frame::Text(_) => frame,
                Frame::Binary(_) => self.ws_frame(frame),
            };
            self.outputs
                .push(Output::Io(Io::WsSend { frame, compress }));
            return;
        }
        self.buffered_bytes += frame.polling_len() + 1;
        self.buffer.push_back(Queued { frame, compress });
    }

    /// Sends what is buffered if the transport can take it, and completes a pending close.
    fn flush(&mut self) {
        if self.state == State::Closed || self.transport != Transport::Polling {
            return;
        }
        let Some(request) = self.pending_get else {
            return;
        };
        if self.buffer.is_empty() && self.state != State::Closing {
            return;
        }
        self.pending_get = None;
        let mut frames = Vec::new();
        let mut size = 0;
        let mut compress = false;
        while let Some(q) = self.buffer.front() {
            let len = q.frame.polling_len() + 1;
            if !frames.is_empty() && size + len > self.config.max_payload {
                break;
            }
            size += len;
            compress |= q.compress;
            self.buffered_bytes = self.buffered_bytes.saturating_sub(len);
            if let Some(q) = self.buffer.pop_front() {
                frames.push(q.frame);
            }
        }
        let closing = self.state == State::Closing && self.buffer.is_empty();
        if closing {
            frames.push(Packet::Close.encode());
        }
        self.respond(request, frames, compress);
        if closing {
            self.finish(CloseReason::ForcedClose);
        }
    }

    fn respond(&mut self, request: RequestId, frames: Vec<Frame>, compress: bool) {
        let (body, binary) = match self.protocol {
            Protocol::V4 => (encode_payload(&frames), false),
            Protocol::V3 => {
                if self.supports_binary && frames.iter().any(|f| matches!(f, Frame::Binary(_))) {
                    (encode_payload_v3_binary(&frames), true)
                } else {
                    (encode_payload_v3(&frames), false)
                }
            }
        };
        self.outputs.push(Output::Io(Io::PollResponse {
            request,
            body,
            binary,
            compress,
        }));
    }

    fn complete_upgrade(&mut self) {
        self.upgrade = None;
        self.upgraded = true;
        // The polling transport is discarded; a GET still pending is released with `noop`.
        if let Some(request) = self.pending_get.take() {
            self.respond(request, vec![Packet::Noop.encode()], false);
        }
        self.transport = Transport::WebSocket;
        self.outputs.push(Output::Io(Io::Upgraded));
        self.buffered_bytes = 0;
        let buffered: Vec<Queued> = self.buffer.drain(..).collect();
        for q in buffered {
            let frame = self.ws_frame(q.frame);
            self.outputs.push(Output::Io(Io::WsSend {
                frame,
                compress: q.compress,
            }));
        }
        if self.state == State::Closing {
            self.finish(CloseReason::ForcedClose);
        }
    }

    fn abort_upgrade(&mut self) {
        if self.upgrade.take().is_some() {
            self.outputs.push(Output::Io(Io::ProbeClose));
        }
    }

    /// Closes because of an error or a timeout: the transport is closed the way the reference
    /// closes it (a pending GET receives the close packet).
    fn close_with(&mut self, reason: CloseReason) {
        if self.state == State::Closed {
            return;
        }
        if let Some(request) = self.pending_get.take() {
            self.respond(request, vec![Packet::Close.encode()], false);
        }
        self.finish(reason);
    }

    fn finish(&mut self, reason: CloseReason) {
        self.finish_inner(reason, true);
    }

    fn finish_inner(&mut self, reason: CloseReason, close_ws: bool) {
        if self.state == State::Closed {
            return;
        }
        if close_ws && self.transport == Transport::WebSocket {
            self.outputs.push(Output::Io(Io::WsClose));
        }
        self.abort_upgrade();
        self.state = State::Closed;
        self.buffer.clear();
        self.buffered_bytes = 0;
        self.next_ping = None;
        self.ping_deadline = None;
        self.close_deadline = None;
        self.close_reason = Some(reason);
        self.outputs.push(Output::Event(Event::Closed(reason)));
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn frame_len(frame: &Frame) -> usize {
    match frame {
        Frame::Text(s) => s.len(),
        Frame::Binary(b) => b.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_is_the_smaller_instant_none_being_never() {
        let (a, b) = (Instant::from_millis(5), Instant::from_millis(9));
        assert_eq!(earliest(Some(a), Some(b)), Some(a));
        assert_eq!(earliest(Some(b), Some(a)), Some(a));
        assert_eq!(earliest(None, Some(b)), Some(b));
        assert_eq!(earliest(Some(b), None), Some(b));
        assert_eq!(earliest(None, None), None);
    }

    fn frames(s: &mut Session) {
        while s.poll_output().is_some() {}
    }

    #[test]
    fn packets_with_data_are_counted_both_ways_with_their_bytes() {
        let t0 = Instant::from_millis(0);
        let config = Config {
            initial_packet: Some("0".into()),
            ..Config::default()
        };
        let mut s = Session::new(t0, "abc".into(), Protocol::V4, Transport::WebSocket, config);
        frames(&mut s);
        // The open packet and the initial packet are not counted.
        assert_eq!(s.stats(), Stats::default());
        for frame in [
            Frame::Text("4héllo".into()), // 6 bytes of UTF-8 data
            Frame::Text("4".into()),      // empty: not counted
            Frame::Text("3".into()),      // pong without data
            Frame::Binary(Bytes::from_static(b"\x01\x02\x03")),
            Frame::Binary(Bytes::new()), // a Buffer is data, even empty
        ] {
            s.handle_input(t0, Input::WsFrame(frame)).expect("input");
        }
        frames(&mut s);
        s.send(
            t0,
            [
                Frame::Text("42[\"a\"]".into()),
                Frame::Binary(Bytes::from_static(b"xy")),
            ],
            SendOptions::default(),
        )
        .expect("send");
        s.send(t0, [Frame::Text("4".into())], SendOptions::default())
            .expect("send");
        // A ping carries no data.
        s.handle_input(Instant::from_millis(25_000), Input::Timeout)
            .expect("ping");
        let stats = s.stats();
        assert_eq!(
            stats,
            Stats {
                packets_in: 3,
                bytes_in: 6 + 3,
                packets_out: 2,
                bytes_out: 6 + 2,
            }
        );
        assert_eq!(
            stats.since(&Stats {
                packets_in: 1,
                bytes_in: 6,
                packets_out: 2,
                bytes_out: 1,
            }),
            Stats {
                packets_in: 2,
                bytes_in: 3,
                packets_out: 0,
                bytes_out: 7,
            }
        );
        assert_eq!(s.close_reason(), None);
        s.handle_input(t0, Input::WsClosed { error: false })
            .expect("closed");
        assert_eq!(s.close_reason(), Some(CloseReason::TransportClose));
        // Nothing is sent once closed.
        assert!(s
            .send(t0, [Frame::Text("4x".into())], SendOptions::default())
            .is_err());
        assert_eq!(s.stats().packets_out, 2);
    }

    #[test]
    fn polling_payloads_are_counted_per_packet() {
        let t0 = Instant::from_millis(0);
        let mut s = Session::new(
            t0,
            "abc".into(),
            Protocol::V4,
            Transport::Polling,
            Config::default(),
        );
        s.handle_input(t0, Input::Poll(1)).expect("handshake");
        frames(&mut s);
        s.handle_input(
            t0,
            Input::Post {
                body: Some(Bytes::from_static(b"4ab\x1ebAQID\x1e4")),
                binary: false,
            },
        )
        .expect("post");
        assert_eq!(
            s.stats(),
            Stats {
                packets_in: 2,
                bytes_in: 2 + 3,
                ..Stats::default()
            }
        );
        s.handle_input(
            t0,
            Input::Post {
                body: Some(Bytes::from_static(b"1")),
                binary: false,
            },
        )
        .expect("close");
        assert_eq!(s.close_reason(), Some(CloseReason::TransportClose));
    }
}
