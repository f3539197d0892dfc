//! A bare Engine.IO server (the `engine.io` package's role): sessions that exchange text and
//! binary messages, with heartbeats, long-polling, WebSocket and the upgrade, but no namespaces,
//! events or acks. [`crate::Ferrio`] is the Socket.IO server built on the same transport.
//!
//! ```no_run
//! use ferrio_server::engine::Engine;
//!
//! # async fn run() -> std::io::Result<()> {
//! // An echo server: every message goes back to the session it came from.
//! let engine = Engine::builder()
//!     .on_connection(|mut socket| async move {
//!         while let Some(message) = socket.recv().await {
//!             socket.send(message);
//!         }
//!     })
//!     .build();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! engine.serve(listener).await
//! # }
//! ```

use std::future::Future;
use std::sync::{Arc, OnceLock};

use ferrio_proto::engine::server as eio;
use ferrio_proto::engine::Packet;
use ferrio_proto::Instant;
use http::{Request, Response};
use http_body::Body as HttpBody;
use tracing::debug;

use crate::clock::Clock;
use crate::config::{engine_options, EngineOptions};
use crate::http::Body;
use crate::queue;
use crate::transport::{App, Endpoint, Machine, NewSession, RequestInfo, SessionLink};
use crate::{BoxFuture, Transport};

/// Messages received and not yet read by the application, per session. Past it the session is
/// closed.
pub const MESSAGE_QUEUE: usize = 256;

type ConnectionHandler = Arc<dyn Fn(EngineSocket) -> BoxFuture<()> + Send + Sync>;

/// A bare Engine.IO server. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    endpoint: Arc<Endpoint<EngineApp>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("path", &self.endpoint.options.path)
            .finish_non_exhaustive()
    }
}

/// Builds an [`Engine`]; see [`Engine::builder`].
pub struct EngineBuilder {
    engine: EngineOptions,
    on_connection: Option<ConnectionHandler>,
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// A builder with the reference's defaults and the path `/engine.io/`.
    pub fn builder() -> EngineBuilder {
        EngineBuilder {
            engine: EngineOptions::new("/engine.io/"),
            on_connection: None,
        }
    }

    /// Serves one HTTP request for this endpoint (404 if its path is not under the prefix).
    pub fn handle<B>(
        &self,
        req: Request<B>,
    ) -> impl Future<Output = Response<Body>> + Send + 'static
    where
        B: HttpBody + Send + 'static,
        B::Data: Send,
        B::Error: std::fmt::Display,
    {
        self.endpoint.clone().handle(req)
    }

    /// True if `path` is under this endpoint's prefix.
    pub fn matches(&self, path: &str) -> bool {
        self.endpoint.matches(path)
    }

    /// The request heads' bound (the builder's `max_http_header_size`).
    #[cfg(feature = "tls")]
    pub(crate) fn max_http_header_size(&self) -> usize {
        self.endpoint.options.max_http_header_size
    }

    /// The number of open sessions.
    pub fn session_count(&self) -> usize {
        self.endpoint.session_count()
    }

    /// Enables the endpoint's counters (the first call) and returns a handle on them; see
    /// [`crate::Ferrio::engine_stats`].
    pub fn engine_stats(&self) -> crate::EngineStats {
        self.endpoint.stats.get_or_init(Default::default).clone()
    }

    /// Closes every session (buffered messages are delivered first on WebSocket; polling
    /// clients get the close packet with their next GET).
    pub async fn close(&self) {
        self.endpoint.close_all().await;
    }

    /// Serves HTTP/1.1 connections from `listener` until the process ends (a failed accept is
    /// logged and retried; request heads bounded by the builder's `max_http_header_size`), with
    /// Ferrio's own connections as [`crate::Ferrio::serve`] does.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        let max_header_size = self.endpoint.options.max_http_header_size;
        crate::serve::serve_own(
            listener,
            move |req| self.handle(req),
            std::future::pending(),
            max_header_size,
        )
        .await
    }
}

impl EngineBuilder {
    engine_options!();

    /// Runs `handler` for every new session, in a task of its own.
    pub fn on_connection<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(EngineSocket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_connection = Some(Arc::new(move |s| Box::pin(handler(s))));
        self
    }

    /// Builds the server.
    pub fn build(self) -> Engine {
        let app = EngineApp {
            on_connection: self.on_connection,
            config: self.engine.session_config(),
        };
        Engine {
            endpoint: Arc::new(Endpoint::new(app, self.engine, Clock::new())),
        }
    }
}

/// An HTTP request of the Engine.IO endpoint, as the engine's hooks see it (the `req` of Node's
/// `initial_headers`, `headers`, `connection_error` and `generateId`): its method, URI,
/// headers and extensions, without its body.
#[derive(Debug, Clone, Copy)]
pub struct EngineRequest<'a> {
    method: &'a http::Method,
    uri: &'a http::Uri,
    headers: &'a http::HeaderMap,
    extensions: &'a http::Extensions,
}

impl<'a> EngineRequest<'a> {
    pub(crate) fn new<B>(req: &'a Request<B>) -> EngineRequest<'a> {
        EngineRequest {
            method: req.method(),
            uri: req.uri(),
            headers: req.headers(),
            extensions: req.extensions(),
        }
    }

    /// The request's method.
    pub fn method(&self) -> &'a http::Method {
        self.method
    }

    /// The request's URI (path and query: `/socket.io/?EIO=4&transport=polling`).
    pub fn uri(&self) -> &'a http::Uri {
        self.uri
    }

    /// The request's headers.
    pub fn headers(&self) -> &'a http::HeaderMap {
        self.headers
    }

    /// The request's extensions (what the application's tower layers and the server put there,
    /// such as [`crate::RemoteAddr`]).
    pub fn extensions(&self) -> &'a http::Extensions {
        self.extensions
    }
}

/// A request the engine refused (Node's `connection_error` event): the code and message of
/// the answer's `{"code":N,"message":"..."}` body, what led to it, and the request. See the
/// builders' `on_connection_error`.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionError<'a> {
    pub(crate) code: u8,
    pub(crate) message: &'a str,
    pub(crate) detail: Option<&'static str>,
    pub(crate) request: EngineRequest<'a>,
}

impl<'a> ConnectionError<'a> {
    /// The Engine.IO error code: 0 transport unknown, 1 session id unknown, 2 bad handshake
    /// method, 3 bad request, 4 forbidden, 5 unsupported protocol version.
    pub fn code(&self) -> u8 {
        self.code
    }

    /// The message sent to the client (`Session ID unknown`, ...; for code 4, the one
    /// `allow_request` gave).
    pub fn message(&self) -> &'a str {
        self.message
    }

    /// What led to a `Bad request` when the message does not say it, such as
    /// `invalid WebSocket handshake` or `generated id already in use` (Node's `context`).
    pub fn detail(&self) -> Option<&'static str> {
        self.detail
    }

    /// The refused request.
    pub fn request(&self) -> EngineRequest<'a> {
        self.request
    }
}

/// One Engine.IO session as the application sees it (the reference's engine.io `Socket`).
#[derive(Debug)]
pub struct EngineSocket {
    link: SessionLink<Command>,
    messages: queue::Receiver<Packet>,
    request: Arc<RequestInfo>,
    protocol: ferrio_proto::engine::Protocol,
    reason: Arc<OnceLock<String>>,
}

impl EngineSocket {
    /// The session id.
    pub fn id(&self) -> &str {
        &self.link.shared.sid
    }

    /// The current transport.
    pub fn transport(&self) -> Transport {
        self.link.shared.transport()
    }

    /// The Engine.IO protocol version the client speaks (4, or 3 with `allow_eio3`).
    pub fn protocol(&self) -> u8 {
        match self.protocol {
            ferrio_proto::engine::Protocol::V3 => 3,
            ferrio_proto::engine::Protocol::V4 => 4,
        }
    }

    /// The headers of the request that opened the session (`socket.request.headers`).
    pub fn headers(&self) -> &http::HeaderMap {
        self.request.headers()
    }

    /// The query parameters of that request.
    pub fn query(&self) -> &[(String, String)] {
        self.request.query()
    }

    /// The URL of that request (path and query).
    pub fn url(&self) -> &str {
        &self.request.url
    }

    /// The client's address, as [`crate::Handshake::address`] finds it.
    pub fn address(&self) -> Option<std::net::SocketAddr> {
        self.request.address
    }

    /// The extensions of the request that opened the session, as
    /// [`crate::Handshake::extensions`] keeps them.
    pub fn extensions(&self) -> &http::Extensions {
        &self.request.extensions
    }

    /// Waits until the session upgrades from long-polling to WebSocket (Node's
    /// `socket.on("upgrade", transport => ...)`) and returns the new transport, at once if it
    /// already has; `None` if the session closes without upgrading (a session opened over
    /// WebSocket never upgrades).
    pub async fn upgraded(&self) -> Option<Transport> {
        self.link.shared.upgraded().await
    }

    /// Why the session closed (`transport close`, `ping timeout`, `forced close`, ...), once
    /// [`EngineSocket::recv`] has returned `None`.
    pub fn close_reason(&self) -> Option<&str> {
        self.reason.get().map(String::as_str)
    }

    /// The next message from the client ([`Packet::Message`] or [`Packet::Binary`]), or `None`
    /// once the session is closed.
    pub async fn recv(&mut self) -> Option<Packet> {
        self.messages.recv().await
    }

    /// Sends a message ([`Packet::Message`] or [`Packet::Binary`]; other packets are ignored).
    /// Returns false if the session is closed.
    pub fn send(&self, message: Packet) -> bool {
        if !matches!(message, Packet::Message(_) | Packet::Binary(_)) {
            return false;
        }
        self.link.send(Command::Send(message))
    }

    /// Closes the session (buffered messages are delivered first).
    pub fn close(&self) {
        self.link.send(Command::Close);
    }
}

#[derive(Debug)]
enum Command {
    Send(Packet),
    Close,
}

struct EngineApp {
    on_connection: Option<ConnectionHandler>,
    config: eio::Config,
}

impl App for EngineApp {
    type Machine = EngineMachine;

    fn create(&self, s: NewSession<Command>) -> EngineMachine {
        let session = eio::Session::from_handshake(s.now, s.sid, &s.handshake, self.config.clone());
        let (tx, rx) = queue::channel(MESSAGE_QUEUE);
        let reason = Arc::new(OnceLock::new());
        let socket = EngineSocket {
            link: s.link.clone(),
            messages: rx,
            request: Arc::new(s.request),
            protocol: s.handshake.protocol,
            reason: reason.clone(),
        };
        if let Some(handler) = self.on_connection.clone() {
            tokio::spawn(handler(socket));
        }
        EngineMachine {
            session,
            to_app: Some(tx),
            reason,
        }
    }
}

struct EngineMachine {
    session: eio::Session,
    to_app: Option<queue::Sender<Packet>>,
    reason: Arc<OnceLock<String>>,
}

impl Machine for EngineMachine {
    type Command = Command;

    fn handle_input(&mut self, now: Instant, input: eio::Input) -> Result<(), eio::RequestError> {
        self.session.handle_input(now, input)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.session.poll_timeout()
    }

    fn poll_transport(&mut self, now: Instant) -> Option<eio::Io> {
        loop {
            let packet = match self.session.poll_output()? {
                eio::Output::Io(io) => return Some(io),
                eio::Output::Event(eio::Event::Message(text)) => Packet::Message(text),
                eio::Output::Event(eio::Event::Binary(data)) => Packet::Binary(data),
                eio::Output::Event(eio::Event::Closed(reason)) => {
                    debug!(%reason, "engine session closed");
                    // Set before the queue closes, so the application sees it after `None`.
                    let _ = self.reason.set(reason.to_string());
                    self.to_app = None;
                    continue;
                }
            };
            let full = match &self.to_app {
                Some(tx) => tx
                    .try_send(packet)
                    .is_err_and(|e| matches!(e, queue::TrySendError::Full(_))),
                None => false,
            };
            if full {
                debug!("message queue full: closing the session");
                self.session.close(now);
            }
        }
    }

    fn handle_command(&mut self, now: Instant, command: Command) {
        match command {
            Command::Send(packet) => {
                // A closed session takes nothing: the application learns it from `recv`.
                let _ = self
                    .session
                    .send(now, [packet.encode()], eio::SendOptions::default());
            }
            Command::Close => self.session.close(now),
        }
    }

    fn close_overloaded(&mut self, now: Instant) {
        self.session.close(now);
    }

    fn close_shutdown(&mut self, now: Instant) {
        self.session.close(now);
    }

    fn is_closed(&self) -> bool {
        self.session.is_closed()
    }

    fn engine(&self) -> &eio::Session {
        &self.session
    }
}
