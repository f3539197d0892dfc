//! The Engine.IO transport driver: HTTP long-polling and WebSocket requests turned into inputs of
//! one task per session, which owns the session's state machine and its WebSockets.
//!
//! # One task per session
//!
//! Every Engine.IO session is a tokio task that owns its machine (a bare
//! [`ferrio_proto::engine::server::Session`] or a Socket.IO
//! [`ferrio_proto::socket::server::Connection`]) and loops:
//!
//! ```text
//! loop {
//!     while let Some(out) = machine.poll_transport() { perform(out) } // answer polls, write frames
//!     take the commands handlers sent from this task meanwhile, and poll the machine again
//!     write what is queued on the WebSocket (without waiting)
//!     select { HTTP request, upgrade probe => machine.handle_input(now, Input::Poll(..) / ..),
//!              message from a WebSocket => machine.handle_input(now, Input::WsFrame(..)),
//!              command from the application => machine.handle_command(now, ..),
//!              sleep_until(machine.poll_timeout()) => machine.handle_input(now, Input::Timeout) }
//! }
//! ```
//!
//! HTTP handlers send their request to the task and wait for the answer on a oneshot channel.
//! A session's WebSockets (its transport, and a probe during an upgrade) are owned by the task
//! itself ([`crate::websocket`]): it reads their messages and writes its frames to them in the
//! same loop, with no reader or writer task between the socket and the machine. A session
//! opened over WebSocket runs in the task that accepted the upgrade.
//!
//! # Per-session limits
//!
//! | Queue | Bound | At the bound |
//! |---|---|---|
//! | inputs (HTTP requests, upgrade probes) and commands from the application (emits, acks, broadcasts), in one queue | [`COMMAND_QUEUE`] | an HTTP request waits for room (TCP back-pressure); a command closes the session (`buffer full`): a broadcast never waits for one slow client |
//! | WebSocket messages | read one at a time by the session task | TCP back-pressure |
//! | bytes queued on a WebSocket | `max_http_buffer_size` → volatile packets dropped; 10 × `max_http_buffer_size` | the session is closed (`buffer full`) |
//! | bytes buffered for a polling client | 10 × `max_http_buffer_size` (in the machine) | the session is closed (`buffer full`) |
//! | a POST body | `max_http_buffer_size` | 413; reading stops past the limit |
//! | a POST body that stops arriving | `body_read_timeout` without a byte (default 30 s) | 408 with `Connection: close`; the session closes (`transport error`) |
//! | a POST body whose session ended (heartbeat, close) | the session's end | 400 (`Session ID unknown`) with `Connection: close`, at once |
//! | a request head (kept by the session for a handshake) | `max_http_header_size` (default 16 KiB) | 431 with `Connection: close` |
//! | a WebSocket message | `max_http_buffer_size` | close code 1009, session closed |

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::Poll;

use bytes::{Bytes, BytesMut};
use ferrio_proto::engine::server::{self as eio, RequestError, RequestId, Transport};
use ferrio_proto::engine::Protocol;
use ferrio_proto::{Instant, Str};
use futures_util::future::Either;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body as HttpBody;
use http_body_util::BodyExt;
use tokio::sync::{oneshot, Notify};
use tracing::{debug, info_span, trace, Instrument};

use crate::clock::Clock;
use crate::config::EngineOptions;
use crate::engine::{ConnectionError, EngineRequest};
use crate::http::{
    closing, head_size, header_too_large, not_found, wants_websocket, websocket_accept, Body,
    Encoding, Responder,
};
use crate::queue;
use crate::stats::EngineStats;
use crate::websocket::{WsConn, WsEvent};
use ferrio_proto::engine::request::{
    self, ErrorCode, Handshake, Policy, Query, RequestHead, Route, SessionAction,
};

/// Application commands (emits, acks, broadcasts) and HTTP requests waiting for a session
/// task, in one queue.
pub const COMMAND_QUEUE: usize = 1024;

/// Polling responses larger than this are compressed on a blocking thread.
const COMPRESS_INLINE_MAX: usize = 64 * 1024;

/// Commands a session task takes in one go before it writes their frames.
const COMMAND_BATCH: usize = 64;

/// A session's state machine as the driver sees it: the inputs of [`eio::Session`], plus the
/// application's commands. Application events are handled inside [`Machine::poll_transport`];
/// only I/O actions come out.
pub(crate) trait Machine: Send + 'static {
    type Command: Send + 'static;
    /// One input of the session (see [`eio::Input`]); the machine runs its due timers first.
    fn handle_input(&mut self, now: Instant, input: eio::Input) -> Result<(), RequestError>;
    fn poll_timeout(&self) -> Option<Instant>;
    /// The next transport action; application outputs met on the way are handled.
    fn poll_transport(&mut self, now: Instant) -> Option<eio::Io>;
    /// False when [`Machine::poll_transport`] has nothing to do now (no output waiting, nothing
    /// held back for the application): the call that would find nothing is skipped. True
    /// whenever unsure.
    fn has_work(&self) -> bool {
        true
    }
    fn handle_command(&mut self, now: Instant, command: Self::Command);
    /// While events wait for room in an application queue: a future that resolves when there
    /// may be room (the loop then polls the machine again).
    fn wait_for_room(&self) -> Option<crate::BoxFuture<()>> {
        None
    }
    /// The transport failed as `description` says (the session closes with `transport
    /// error` next): what the disconnections that follow are told.
    fn transport_failed(&mut self, description: Str) {
        let _ = description;
    }
    /// A bound was reached (see the module docs): close the session.
    fn close_overloaded(&mut self, now: Instant);
    /// The server shuts down: close the session.
    fn close_shutdown(&mut self, now: Instant);
    fn is_closed(&self) -> bool;
    /// The Engine.IO session: its counters and close reason.
    fn engine(&self) -> &eio::Session;
}

/// What a session is told about itself and given to talk to its own task.
pub(crate) struct NewSession<C> {
    pub(crate) now: Instant,
    pub(crate) sid: Str,
    /// What the handshake asked for: Engine.IO 4, or 3 when `allow_eio3` let a v3 client in,
    /// the transport, base64 for binary.
    pub(crate) handshake: Handshake,
    pub(crate) link: SessionLink<C>,
    pub(crate) request: RequestInfo,
}

/// What a session task receives, in order: from HTTP handlers and upgrades, and from the
/// application. One queue, so that an idle session keeps one queue's memory, not two.
enum Msg<C> {
    Input(Input),
    Command(C),
}

/// The sending side of a session's queue.
type Inbox<C> = queue::Sender<Msg<C>>;

/// The handle the application keeps on a session: its queue and shared state.
pub(crate) struct SessionLink<C> {
    commands: Inbox<C>,
    pub(crate) shared: Arc<SessionShared>,
}

impl<C> std::fmt::Debug for SessionLink<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLink")
            .field("sid", &self.shared.sid)
            .finish()
    }
}

impl<C> Clone for SessionLink<C> {
    fn clone(&self) -> Self {
        SessionLink {
            commands: self.commands.clone(),
            shared: self.shared.clone(),
        }
    }
}

thread_local! {
    /// The session whose task runs application code on this thread right now
    /// ([`SessionLink::run_here`]), if any.
    static RUNNING: std::cell::Cell<*const SessionShared> = const { std::cell::Cell::new(std::ptr::null()) };
}

/// Restores [`RUNNING`] when application code run by a session task returns (or panics).
pub(crate) struct RunningHere {
    previous: *const SessionShared,
}

impl Drop for RunningHere {
    fn drop(&mut self) {
        RUNNING.with(|r| r.set(self.previous));
    }
}

impl<C> SessionLink<C> {
    /// Marks this thread as running application code for this session, inside the session's
    /// own task, until the guard is dropped: commands sent to the session meanwhile are queued
    /// without waking its task, which takes them before it waits again.
    pub(crate) fn run_here(&self) -> RunningHere {
        let current = Arc::as_ptr(&self.shared);
        RunningHere {
            previous: RUNNING.with(|r| r.replace(current)),
        }
    }

    /// Queues a command without waiting; a full queue closes the session. Returns whether the
    /// command was queued.
    pub(crate) fn send(&self, command: C) -> bool {
        let here = RUNNING.with(|r| r.get()) == Arc::as_ptr(&self.shared);
        let sent = if here {
            self.commands.try_send_quiet(Msg::Command(command))
        } else {
            self.commands.try_send(Msg::Command(command))
        };
        match sent {
            Ok(()) => true,
            Err(queue::TrySendError::Full(_)) => {
                debug!(sid = %self.shared.sid, "command queue full: closing the session");
                // The session's task has the queue's items to take: it sees the flag in the
                // round that takes them.
                self.shared.overloaded.store(true, Ordering::Release);
                false
            }
            Err(queue::TrySendError::Closed(_)) => false,
        }
    }

    /// Queues a command, waiting for room. Returns whether the command was queued.
    pub(crate) async fn send_waiting(&self, command: C) -> bool {
        self.commands.send(Msg::Command(command)).await.is_ok()
    }
}

/// State a session shares with the application.
#[derive(Debug)]
pub(crate) struct SessionShared {
    pub(crate) sid: Str,
    transport: AtomicU8,
    /// Set when the session upgraded to WebSocket.
    upgraded: AtomicBool,
    /// Set when the session's task ended.
    closed: AtomicBool,
    /// Set when a command found the session's queue full: the session closes.
    overloaded: AtomicBool,
    /// Wakes those waiting for an upgrade or the end.
    changed: Notify,
}

impl SessionShared {
    pub(crate) fn transport(&self) -> Transport {
        if self.transport.load(Ordering::Relaxed) == 1 {
            Transport::WebSocket
        } else {
            Transport::Polling
        }
    }

    fn set_transport(&self, t: Transport) {
        self.transport
            .store(u8::from(t == Transport::WebSocket), Ordering::Relaxed);
    }

    fn new(sid: Str, transport: Transport) -> SessionShared {
        let shared = SessionShared {
            sid,
            transport: AtomicU8::new(0),
            upgraded: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            overloaded: AtomicBool::new(false),
            changed: Notify::new(),
        };
        shared.set_transport(transport);
        shared
    }

    /// The transport once the session upgraded (at once if it has), `None` if it ends first.
    pub(crate) async fn upgraded(&self) -> Option<Transport> {
        loop {
            let notified = self.changed.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the flags are read, so that no change is missed.
            notified.as_mut().enable();
            if self.upgraded.load(Ordering::Acquire) {
                return Some(self.transport());
            }
            if self.closed.load(Ordering::Acquire) {
                return None;
            }
            notified.await;
        }
    }

    fn mark_upgraded(&self) {
        self.set_transport(Transport::WebSocket);
        self.upgraded.store(true, Ordering::Release);
        self.changed.notify_waiters();
    }

    fn mark_closed(&self) {
        self.closed.store(true, Ordering::Release);
        self.changed.notify_waiters();
    }
}

/// What the first request of a session said (for `socket.handshake()`).
///
/// Most applications never read a session's headers or query after its handshake, so they are
/// kept in the compact form they came in and made into a `HeaderMap` and a list when first
/// read; the map's values are slices of the same bytes, not a second copy. The request's
/// extensions (what the application's tower layers put there: a session, a user, the peer's
/// address) are kept as a clone, without hyper's upgrade handle; nothing else of the request
/// (its body, hyper's buffer) is kept.
#[derive(Debug, Clone)]
pub(crate) struct RequestInfo {
    /// The headers as `name:value` lines, each ended by `\n` (which no header holds).
    header_lines: Bytes,
    headers: OnceLock<HeaderMap>,
    query: OnceLock<Vec<(String, String)>>,
    pub(crate) url: String,
    pub(crate) issued: u64,
    pub(crate) address: Option<std::net::SocketAddr>,
    /// The request came over TLS, as far as the server can tell: the [`Encrypted`] mark, or
    /// an HTTP/2 request with the `https` scheme.
    pub(crate) secure: bool,
    pub(crate) extensions: http::Extensions,
}

impl RequestInfo {
    /// What `req` said, at `issued` (milliseconds); `address_of` finds the client's address in
    /// its extensions when no [`RemoteAddr`] is there.
    pub(crate) fn new<B>(
        req: &Request<B>,
        issued: u64,
        address_of: Option<&crate::config::AddressOf>,
    ) -> RequestInfo {
        let extensions = kept_extensions(req.extensions());
        let address = extensions
            .get::<RemoteAddr>()
            .map(|a| a.0)
            .or_else(|| address_of.and_then(|f| f(&extensions)));
        RequestInfo {
            header_lines: header_lines(req.headers()),
            headers: OnceLock::new(),
            query: OnceLock::new(),
            url: req.uri().to_string(),
            issued,
            address,
            // (An `https` URI only from HTTP/2, whose `:scheme` the connection sets: over
            // HTTP/1.1 an absolute request target is the client's word, plain HTTP or not.)
            secure: extensions.get::<Encrypted>().is_some()
                || (req.version() == http::Version::HTTP_2
                    && req.uri().scheme() == Some(&http::uri::Scheme::HTTPS)),
            extensions,
        }
    }

    /// The request's headers.
    pub(crate) fn headers(&self) -> &HeaderMap {
        self.headers.get_or_init(|| {
            let mut map = HeaderMap::new();
            let lines = &self.header_lines;
            let mut start = 0;
            while let Some(len) = lines[start..].iter().position(|b| *b == b'\n') {
                let line = &lines[start..start + len];
                if let Some(colon) = line.iter().position(|b| *b == b':') {
                    // The value shares the lines' bytes.
                    let value = lines.slice(start + colon + 1..start + len);
                    if let (Ok(name), Ok(value)) = (
                        HeaderName::from_bytes(&line[..colon]),
                        HeaderValue::from_maybe_shared(value),
                    ) {
                        map.append(name, value);
                    }
                }
                start += len + 1;
            }
            map
        })
    }

    /// The request's query parameters, decoded, in order.
    pub(crate) fn query(&self) -> &[(String, String)] {
        self.query
            .get_or_init(|| Query::parse(self.url.split_once('?').map(|(_, q)| q)).all())
    }
}

/// A request's extensions as a session keeps them: a clone, without the connection's upgrade
/// handle (hyper's or [`crate::conn`]'s, which the WebSocket upgrade takes from the request
/// itself).
pub(crate) fn kept_extensions(extensions: &http::Extensions) -> http::Extensions {
    let mut kept = extensions.clone();
    crate::conn::remove_upgrade(&mut kept);
    kept
}

/// `headers` as `name:value\n` lines: one allocation that owns its bytes. (hyper's header
/// values are slices of the connection's 8 KiB read buffer: a session keeping them would keep
/// that whole buffer alive.)
fn header_lines(headers: &HeaderMap) -> Bytes {
    let len = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 2)
        .sum();
    let mut lines = Vec::with_capacity(len);
    for (name, value) in headers {
        lines.extend_from_slice(name.as_str().as_bytes());
        lines.push(b':');
        lines.extend_from_slice(value.as_bytes());
        lines.push(b'\n');
    }
    Bytes::from(lines)
}

/// Creates the machine of each new session.
pub(crate) trait App: Send + Sync + 'static {
    type Machine: Machine;
    fn create(&self, session: NewSession<<Self::Machine as Machine>::Command>) -> Self::Machine;
}

/// The remote address of a connection, put in request extensions by [`crate::serve`](fn@crate::serve).
#[derive(Debug, Clone, Copy)]
pub struct RemoteAddr(pub std::net::SocketAddr);

/// The mark of a request that came over TLS, in its extensions: `Ferrio::serve_tls` (the `tls`
/// feature) puts it there. A service that ends TLS itself in front of [`crate::Ferrio`]'s
/// `tower` service (hyper with `tokio-rustls`, say) may put it there too, so that
/// `socket.handshake().secure()` is true.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encrypted;

/// Where the answer to a GET goes: the payload and whether it is binary, or the refusal.
/// A polling response's payload: its body, whether it is a v3 binary payload, and whether it
/// may be compressed (some packet in it allowed compression).
struct PollBody {
    body: Bytes,
    binary: bool,
    compress: bool,
}

type PollReply = oneshot::Sender<Result<PollBody, RequestError>>;

/// What HTTP handlers and WebSocket upgrades give a session task.
enum Input {
    Poll {
        reply: PollReply,
    },
    PostStart {
        binary: bool,
        reply: oneshot::Sender<Result<(), RequestError>>,
        /// Kept by the session task while the POST's body is read, and dropped with the task:
        /// the handler stops reading the body when the session ends.
        alive: oneshot::Sender<()>,
    },
    /// Boxed: a queue of inputs allocates room for 32 at once, most of them polls.
    Post(Box<PostInput>),
    /// A POST whose whole body had arrived with its head: its start and its body at once.
    PostWhole(Box<PostInput>),
    /// A WebSocket carrying this session's id is open: the upgrade probe.
    Upgrade(Box<WsConn>),
    /// The server shuts down.
    Shutdown,
}

struct PostInput {
    body: Option<Bytes>,
    binary: bool,
    reply: oneshot::Sender<Result<(), RequestError>>,
}

struct SessionEntry<C> {
    inbox: Inbox<C>,
    protocol: Protocol,
}

/// The command type of an application's machines.
type CommandOf<A> = <<A as App>::Machine as Machine>::Command;

/// One Engine.IO endpoint: its options, its sessions, and the application behind it.
pub(crate) struct Endpoint<A: App> {
    pub(crate) app: A,
    pub(crate) options: EngineOptions,
    pub(crate) clock: Clock,
    sessions: Mutex<HashMap<Str, SessionEntry<CommandOf<A>>>>,
    /// The server-wide counters, once enabled.
    pub(crate) stats: OnceLock<EngineStats>,
}

impl<A: App> Endpoint<A> {
    pub(crate) fn new(app: A, options: EngineOptions, clock: Clock) -> Endpoint<A> {
        Endpoint {
            app,
            options,
            clock,
            sessions: Mutex::new(HashMap::new()),
            stats: OnceLock::new(),
        }
    }

    /// The number of open sessions.
    pub(crate) fn session_count(&self) -> usize {
        self.sessions.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// Closes every session (the server is shutting down).
    pub(crate) async fn close_all(&self) {
        let inboxes: Vec<Inbox<CommandOf<A>>> = self
            .sessions
            .lock()
            .map(|s| s.values().map(|e| e.inbox.clone()).collect())
            .unwrap_or_default();
        for tx in inboxes {
            let _ = tx.send(Msg::Input(Input::Shutdown)).await;
        }
    }

    fn lookup(&self, sid: &str) -> Option<(Inbox<CommandOf<A>>, Protocol)> {
        self.sessions
            .lock()
            .ok()
            .and_then(|s| s.get(sid).map(|e| (e.inbox.clone(), e.protocol)))
    }

    fn remove(&self, sid: &str) {
        if let Ok(mut s) = self.sessions.lock() {
            s.remove(sid);
        }
    }

    /// True if `path` is under this endpoint's prefix.
    pub(crate) fn matches(&self, path: &str) -> bool {
        path.starts_with(&self.options.path)
    }

    /// Serves one HTTP request (404 if its path is not under the prefix).
    ///
    /// The request is routed before the returned future is first polled, and that future holds
    /// only what the answer still needs: a pending long-poll GET (one per idle polling client)
    /// keeps a few hundred bytes, not the whole request.
    pub(crate) fn handle<B>(
        self: Arc<Self>,
        req: Request<B>,
    ) -> impl Future<Output = Response<Body>> + Send + 'static
    where
        B: HttpBody + Send + 'static,
        B::Data: Send,
        B::Error: std::fmt::Display,
    {
        // An enum of the three futures, not an async block matching on `Next`: that block
        // would hold the routed request's `Next` beside the long poll's future made from it.
        match self.route(req) {
            Next::Done(response) => Either::Left(std::future::ready(response)),
            Next::Poll(inbox, responder, compression) => {
                Either::Right(Either::Left(poll(inbox, responder, compression)))
            }
            Next::Later(answer) => Either::Right(Either::Right(answer)),
        }
    }

    /// What a request is, and what answering it takes.
    fn route<B>(self: &Arc<Self>, req: Request<B>) -> Next<CommandOf<A>>
    where
        B: HttpBody + Send + 'static,
        B::Data: Send,
        B::Error: std::fmt::Display,
    {
        if !self.matches(req.uri().path()) {
            return Next::Done(not_found());
        }
        if head_size(&req) > self.options.max_http_header_size {
            return Next::Done(header_too_large());
        }
        let headers = req.headers();
        let responder = Responder::new(self.options.cors.as_ref(), headers);
        if req.method() == Method::OPTIONS && self.options.cors.is_some() {
            return Next::Done(self.hooked(responder, &req, false).preflight(headers));
        }
        let query = Query::parse(req.uri().query());
        let origins: Vec<&[u8]> = headers
            .get_all(http::header::ORIGIN)
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        let method = match *req.method() {
            Method::GET => request::Method::Get,
            Method::POST => request::Method::Post,
            _ => request::Method::Other,
        };
        let head = RequestHead {
            method,
            query: &query,
            websocket_upgrade: wants_websocket(headers),
            origins: &origins,
        };
        let policy = Policy {
            polling: self.options.polling,
            websocket: self.options.websocket,
            allow_eio3: self.options.allow_eio3,
        };
        let route = match request::verify(&head, &policy) {
            Ok(route) => route,
            Err(code) => return Next::Done(self.refuse(&req, responder, code, None)),
        };
        let handshake = match route {
            Route::Handshake(handshake) => handshake,
            Route::Session {
                ref sid, action, ..
            } => {
                let Some((inputs, protocol)) = self.lookup(sid) else {
                    let code = ErrorCode::UnknownSid;
                    return Next::Done(self.refuse(&req, responder, code, None));
                };
                if let Err(code) = route.check_session(protocol) {
                    return Next::Done(self.refuse(&req, responder, code, None));
                }
                let responder = self.hooked(responder, &req, false);
                return match action {
                    SessionAction::Upgrade => {
                        Next::Done(self.upgrade(req, responder, UpgradeTarget::Probe(inputs)))
                    }
                    SessionAction::Poll => Next::Poll(inputs, responder, self.compression(headers)),
                    SessionAction::Post => {
                        let limits = BodyLimits {
                            max: self.options.max_http_buffer_size,
                            timeout: self.options.body_read_timeout,
                        };
                        Next::Later(Box::pin(post(inputs, req, responder, limits)))
                    }
                    SessionAction::OtherMethod => {
                        Next::Done(responder.status(StatusCode::INTERNAL_SERVER_ERROR))
                    }
                };
            }
        };
        let endpoint = self.clone();
        Next::Later(Box::pin(endpoint.handshake(req, responder, handshake)))
    }

    /// A handshake request that passed the checks: `allowRequest`, then the new session.
    async fn handshake<B>(
        self: Arc<Self>,
        req: Request<B>,
        responder: Responder,
        handshake: Handshake,
    ) -> Response<Body>
    where
        B: HttpBody + Send + 'static,
        B::Data: Send,
        B::Error: std::fmt::Display,
    {
        if let Some(allow) = &self.options.allow_request {
            let mut head = Request::new(());
            *head.method_mut() = req.method().clone();
            *head.uri_mut() = req.uri().clone();
            *head.headers_mut() = req.headers().clone();
            *head.extensions_mut() = kept_extensions(req.extensions());
            if let Err(message) = allow(head).await {
                self.report(&req, ErrorCode::Forbidden as u8, &message, None);
                return self.hooked(responder, &req, false).forbidden(&message);
            }
        }
        let responder = self.hooked(responder, &req, true);
        let info = RequestInfo::new(
            &req,
            self.clock.now().as_millis(),
            self.options.address_of.as_ref(),
        );
        let sid = match &self.options.id_generator {
            Some(generate) => {
                let id = generate(&EngineRequest::new(&req));
                let refused = if !valid_id(&id) {
                    Some("generated id is not a valid session id")
                } else if self.lookup(&id).is_some() {
                    Some(ID_IN_USE)
                } else {
                    None
                };
                if let Some(detail) = refused {
                    self.report(
                        &req,
                        ErrorCode::BadRequest as u8,
                        "Bad request",
                        Some(detail),
                    );
                    return responder.error(ErrorCode::BadRequest);
                }
                Str::from(id)
            }
            None => match crate::id::generate() {
                Some(sid) => sid,
                None => {
                    let detail = Some("no random id");
                    self.report(&req, ErrorCode::BadRequest as u8, "Bad request", detail);
                    return responder.error(ErrorCode::BadRequest);
                }
            },
        };
        let responder = match &self.options.cookie {
            Some(cookie) => responder.with_cookie(&cookie.header(&sid, info.issued)),
            None => responder,
        };
        match handshake.transport {
            Transport::WebSocket => {
                let target = UpgradeTarget::NewSession(Box::new(info), sid, handshake);
                self.upgrade(req, responder, target)
            }
            Transport::Polling => {
                let compression = self.compression(req.headers());
                let Some((inputs, run)) = self.open(sid, handshake, info, None) else {
                    // Another handshake took the generated id meanwhile.
                    self.report(
                        &req,
                        ErrorCode::BadRequest as u8,
                        "Bad request",
                        Some(ID_IN_USE),
                    );
                    return responder.error(ErrorCode::BadRequest);
                };
                // The session keeps `info`, not the request.
                drop(req);
                tokio::spawn(run);
                poll(inputs, responder, compression).await
            }
        }
    }

    /// `responder` with the headers of the application's hooks for `req`: `initial_headers`
    /// then `headers` for the answer that opens a session (`initial`), `headers` otherwise.
    fn hooked<B>(&self, responder: Responder, req: &Request<B>, initial: bool) -> Responder {
        let initial_hook = self.options.initial_headers.as_ref().filter(|_| initial);
        if initial_hook.is_none() && self.options.headers.is_none() {
            return responder;
        }
        let view = EngineRequest::new(req);
        let mut headers = HeaderMap::new();
        for hook in [initial_hook, self.options.headers.as_ref()]
            .into_iter()
            .flatten()
        {
            hook(&mut headers, &view);
        }
        responder.with_headers(Some(headers))
    }

    /// Tells the application's `on_connection_error` hook that `req` is refused.
    fn report<B>(&self, req: &Request<B>, code: u8, message: &str, detail: Option<&'static str>) {
        if let Some(hook) = &self.options.on_connection_error {
            hook(&ConnectionError {
                code,
                message,
                detail,
                request: EngineRequest::new(req),
            });
        }
    }

    /// The answer refusing `req` with `code`, reported to `on_connection_error`.
    fn refuse<B>(
        &self,
        req: &Request<B>,
        responder: Responder,
        code: ErrorCode,
        detail: Option<&'static str>,
    ) -> Response<Body> {
        self.report(req, code as u8, code.message(), detail);
        self.hooked(responder, req, false).error(code)
    }

    /// How to compress the polling responses to a request with these headers.
    fn compression(&self, headers: &http::HeaderMap) -> Option<(Encoding, usize)> {
        let threshold = self.options.http_compression?;
        Some((Encoding::negotiate(headers)?, threshold))
    }

    /// Creates a session: its queue and the future that runs it (the session task); `ws` is the
    /// WebSocket of a session opened over it. `None` if an open session has the id `sid`.
    fn open(
        self: &Arc<Self>,
        sid: Str,
        handshake: Handshake,
        request: RequestInfo,
        ws: Option<Box<WsConn>>,
    ) -> Option<(
        Inbox<CommandOf<A>>,
        impl Future<Output = ()> + Send + 'static,
    )> {
        let (inbox_tx, mut inbox_rx) = queue::channel(COMMAND_QUEUE);
        // A session that gets bursts of commands (broadcasts) keeps their room between bursts;
        // its timer rounds (a heartbeat at least every ping interval) give it back.
        inbox_rx.keep_room();
        // The id is taken before the machine is made: a generated id that an open session
        // has is refused here, without a trace.
        {
            let Ok(mut sessions) = self.sessions.lock() else {
                return None;
            };
            if sessions.contains_key(&sid) {
                return None;
            }
            sessions.insert(
                sid.clone(),
                SessionEntry {
                    inbox: inbox_tx.clone(),
                    protocol: handshake.protocol,
                },
            );
        }
        let shared = Arc::new(SessionShared::new(sid.clone(), handshake.transport));
        let link = SessionLink {
            commands: inbox_tx.clone(),
            shared: shared.clone(),
        };
        let machine = self.app.create(NewSession {
            now: self.clock.now(),
            sid: sid.clone(),
            handshake,
            link,
            request,
        });
        let counted = self.stats.get().map(|stats| {
            stats.opened();
            Box::new((stats.clone(), eio::Stats::default()))
        });
        // Boxed: an async block that captures a large value and moves it into the future it
        // awaits holds room for it twice.
        let task = Box::new(SessionTask {
            counted,
            machine,
            inbox: inbox_rx,
            shared,
            polls: Vec::new(),
            next_request: 0,
            main: ws,
            probe: None,
            max_buffered: self.options.max_buffered_bytes(),
            writable_below: self.options.max_http_buffer_size,
            ws_writable: true,
            post_alive: None,
        });
        let endpoint = self.clone();
        let span = info_span!("session", %sid, transport = handshake.transport.name());
        let run = async move {
            debug!("open");
            let shared = task.shared.clone();
            task.run(endpoint.clock).await;
            endpoint.remove(&sid);
            shared.mark_closed();
            debug!("closed");
        }
        .instrument(span);
        Some((inbox_tx, run))
    }

    fn upgrade<B>(
        self: &Arc<Self>,
        mut req: Request<B>,
        responder: Responder,
        target: UpgradeTarget<CommandOf<A>>,
    ) -> Response<Body> {
        if req.method() != Method::GET {
            let detail = Some("WebSocket upgrade that is not a GET");
            self.report(&req, ErrorCode::BadRequest as u8, "Bad request", detail);
            return responder.error(ErrorCode::BadRequest);
        }
        let Some(accept) = websocket_accept(req.headers()) else {
            let detail = Some("invalid WebSocket handshake");
            self.report(&req, ErrorCode::BadRequest as u8, "Bad request", detail);
            return responder.error(ErrorCode::BadRequest);
        };
        let deflate = self
            .options
            .per_message_deflate
            .as_ref()
            .and_then(|settings| crate::deflate::negotiate(req.headers(), settings));
        let extension = deflate.as_ref().map(|(_, answer)| answer.clone());
        let deflate = deflate.map(|(agreed, _)| agreed);
        let on_upgrade = crate::conn::on_upgrade(&mut req);
        let endpoint = self.clone();
        // One task for the WebSocket's whole life: a session opened over it runs in it, and a
        // probe is handed to its session's task.
        tokio::spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(u) => u,
                Err(e) => {
                    debug!("WebSocket upgrade failed: {e}");
                    return;
                }
            };
            let options = &endpoint.options;
            let ws = WsConn::new(
                upgraded,
                options.max_http_buffer_size,
                options.yield_after_flush,
                deflate,
            );
            match target {
                UpgradeTarget::Probe(inbox) => {
                    if let Err(Msg::Input(Input::Upgrade(ws))) =
                        inbox.send(Msg::Input(Input::Upgrade(Box::new(ws)))).await
                    {
                        ws.close();
                    }
                }
                UpgradeTarget::NewSession(info, sid, handshake) => {
                    if options.yield_after_flush {
                        // The 101 is written: let a local peer read it alone before the `open`
                        // packet (see `yield_after_flush`).
                        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    }
                    let ws = Box::new(ws);
                    // (`open` drops the WebSocket, closing it, when another handshake took the
                    // generated id after this one was answered.)
                    if let Some((_, run)) = endpoint.open(sid, handshake, *info, Some(ws)) {
                        run.await;
                    } else {
                        debug!("generated id already in use: WebSocket closed");
                    }
                }
            }
        });
        let mut res = responder.switching_protocols(&accept);
        if let Some(extension) = extension {
            res.headers_mut()
                .insert(http::header::SEC_WEBSOCKET_EXTENSIONS, extension);
        }
        res
    }
}

/// Why a generated session id was refused.
const ID_IN_USE: &str = "generated id already in use";

/// True if an application's session id can be used: 1 to 256 URL-safe bytes (RFC 3986's
/// unreserved characters), which a query string carries as they are.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= crate::config::MAX_GENERATED_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
}

/// How a routed request is answered.
enum Next<C> {
    /// Already answered.
    Done(Response<Body>),
    /// A long-poll GET: the session answers when it has something to send.
    Poll(Inbox<C>, Responder, Option<(Encoding, usize)>),
    /// A POST or a handshake.
    Later(crate::BoxFuture<Response<Body>>),
}

enum UpgradeTarget<C> {
    Probe(Inbox<C>),
    /// A session opened over WebSocket, its id and what its handshake asked for.
    NewSession(Box<RequestInfo>, Str, Handshake),
}

/// A long-poll GET: queued to its session at once, answered when the session has something
/// to send.
///
/// The future is what an idle polling client keeps on the server, so it holds little: the
/// responder, the compression settings and the reply's receiver. Waiting for room in a full
/// queue and compressing a large body off the runtime's workers are boxed futures of their own.
fn poll<C: Send + 'static>(
    inbox: Inbox<C>,
    responder: Responder,
    compression: Option<(Encoding, usize)>,
) -> impl Future<Output = Response<Body>> + Send + 'static {
    let (reply, rx) = oneshot::channel();
    let room = match inbox.try_send(Msg::Input(Input::Poll { reply })) {
        Ok(()) => None,
        Err(queue::TrySendError::Closed(_)) => {
            return Either::Left(std::future::ready(responder.error(ErrorCode::UnknownSid)));
        }
        Err(queue::TrySendError::Full(msg)) => {
            let queued: crate::BoxFuture<bool> =
                Box::pin(async move { inbox.send(msg).await.is_ok() });
            Some(queued)
        }
    };
    Either::Right(poll_reply(room, rx, responder, compression))
}

/// The rest of [`poll`]: waits for room in the queue if it was full, then for the reply.
async fn poll_reply(
    room: Option<crate::BoxFuture<bool>>,
    rx: oneshot::Receiver<Result<PollBody, RequestError>>,
    responder: Responder,
    compression: Option<(Encoding, usize)>,
) -> Response<Body> {
    if let Some(queued) = room {
        if !queued.await {
            return responder.error(ErrorCode::UnknownSid);
        }
    }
    let later = {
        let body = match rx.await {
            Ok(Ok(body)) => body,
            Ok(Err(e)) => return request_error(&responder, e),
            Err(_) => return responder.error(ErrorCode::UnknownSid),
        };
        match poll_answer(responder, compression, body) {
            Either::Left(response) => return response,
            Either::Right(later) => later,
        }
    };
    later.await
}

/// The answer to a long poll with `body`: made at once, or (a large body to compress) a future
/// that compresses it on a blocking thread.
fn poll_answer(
    responder: Responder,
    compression: Option<(Encoding, usize)>,
    body: PollBody,
) -> Either<Response<Body>, crate::BoxFuture<Response<Body>>> {
    let PollBody {
        body,
        binary,
        compress,
    } = body;
    // As the reference's `httpCompression`: only a response with a packet that allows
    // compression, and only from the threshold on.
    let encoding = compression
        .filter(|(_, threshold)| compress && body.len() >= *threshold)
        .map(|(e, _)| e);
    if encoding.is_none() || body.len() <= COMPRESS_INLINE_MAX {
        return Either::Left(responder.payload(body, binary, encoding));
    }
    // Compressing a large body takes a while: not on a runtime worker.
    Either::Right(Box::pin(async move {
        let r = responder.clone();
        match tokio::task::spawn_blocking(move || r.payload(body, binary, encoding)).await {
            Ok(response) => response,
            Err(_) => responder.status(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }))
}

/// How a POST body is read.
#[derive(Debug, Clone, Copy)]
struct BodyLimits {
    /// Reading stops past this many bytes (`max_http_buffer_size`).
    max: usize,
    /// Time without a byte of the body after which it is given up (`body_read_timeout`).
    timeout: std::time::Duration,
}

async fn post<B, C: Send + 'static>(
    inbox: Inbox<C>,
    req: Request<B>,
    responder: Responder,
    limits: BodyLimits,
) -> Response<Body>
where
    B: HttpBody + Send + 'static,
    B::Data: Send,
    B::Error: std::fmt::Display,
{
    let binary = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/octet-stream"));
    let body = req.into_body();
    let mut body = std::pin::pin!(body);
    // A small POST usually arrives whole with its head: then its start and its body go to the
    // session together, and the handler waits for one answer instead of two.
    let mut first = BytesMut::new();
    let whole = match futures_util::FutureExt::now_or_never(body.as_mut().frame()) {
        Some(Some(Ok(frame))) => {
            if let Ok(data) = frame.into_data() {
                append(&mut first, data);
            }
            body.is_end_stream()
        }
        Some(Some(Err(e))) => {
            debug!("POST body aborted: {e}");
            return request_error(&responder, RequestError::Closed);
        }
        Some(None) => true,
        None => false,
    };
    if whole {
        return post_whole(inbox, responder, first.freeze(), binary).await;
    }
    let (reply, rx) = oneshot::channel();
    let (alive, mut session) = oneshot::channel();
    if inbox
        .send(Msg::Input(Input::PostStart {
            binary,
            reply,
            alive,
        }))
        .await
        .is_err()
    {
        return request_error(&responder, RequestError::Closed);
    }
    // (Dropped before the answer arrives, the session ends the POST itself.)
    match rx.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return request_error(&responder, e),
        Err(_) => return request_error(&responder, RequestError::Closed),
    }
    // The session counts this POST as in progress: it must hear its end even if the client
    // goes away and hyper drops this handler.
    let mut guard = PostGuard {
        inbox: Some(inbox),
        binary,
    };
    let body = match read_body(body, first, limits, &mut session).await {
        BodyRead::Done(body) => Some(body),
        BodyRead::Aborted => None,
        BodyRead::Stalled => {
            debug!("POST body stalled: closing its connection");
            // The guard tells the session that the POST ended without its body.
            drop(guard);
            return responder.timeout();
        }
        BodyRead::SessionEnded => {
            debug!("session ended while its POST body was read: closing its connection");
            return closing(request_error(&responder, RequestError::Closed));
        }
    };
    let (reply, rx) = oneshot::channel();
    let post = PostInput {
        body,
        binary,
        reply,
    };
    let Some(inbox) = guard.inbox.as_ref() else {
        return request_error(&responder, RequestError::Closed);
    };
    // Dropped while it waits for room, the post is dropped unsent and the guard ends it.
    if inbox
        .send(Msg::Input(Input::Post(Box::new(post))))
        .await
        .is_err()
    {
        return request_error(&responder, RequestError::Closed);
    }
    guard.inbox = None;
    match rx.await {
        Ok(Ok(())) => responder.ok(),
        Ok(Err(e)) => request_error(&responder, e),
        Err(_) => request_error(&responder, RequestError::Closed),
    }
}

/// A POST whose whole body is `body`: started and ended in one input.
async fn post_whole<C: Send + 'static>(
    inbox: Inbox<C>,
    responder: Responder,
    body: Bytes,
    binary: bool,
) -> Response<Body> {
    let (reply, rx) = oneshot::channel();
    let post = PostInput {
        body: Some(body),
        binary,
        reply,
    };
    if inbox
        .send(Msg::Input(Input::PostWhole(Box::new(post))))
        .await
        .is_err()
    {
        return request_error(&responder, RequestError::Closed);
    }
    match rx.await {
        Ok(Ok(())) => responder.ok(),
        Ok(Err(e)) => request_error(&responder, e),
        Err(_) => request_error(&responder, RequestError::Closed),
    }
}

/// Appends a body frame's bytes to `buf`.
fn append(buf: &mut BytesMut, mut data: impl bytes::Buf) {
    while data.has_remaining() {
        let chunk = data.chunk();
        let n = chunk.len();
        buf.extend_from_slice(chunk);
        data.advance(n);
    }
}

/// Tells the session that a POST it started ended without a body, if the handler is dropped
/// (the client went away) before it sent the body.
struct PostGuard<C: Send + 'static> {
    inbox: Option<Inbox<C>>,
    binary: bool,
}

impl<C: Send + 'static> Drop for PostGuard<C> {
    fn drop(&mut self) {
        let Some(inbox) = self.inbox.take() else {
            return;
        };
        let post = PostInput {
            body: None,
            binary: self.binary,
            reply: oneshot::channel().0,
        };
        if let Err(queue::TrySendError::Full(post)) =
            inbox.try_send(Msg::Input(Input::Post(Box::new(post))))
        {
            // The queue is full: wait for room in a task of its own.
            tokio::spawn(async move {
                let _ = inbox.send(post).await;
            });
        }
    }
}

/// How reading a POST body ended.
enum BodyRead {
    /// The body, or its first bytes past `max` (the session then refuses it with 413).
    Done(Bytes),
    /// The client aborted it.
    Aborted,
    /// No byte of it arrived for `timeout`.
    Stalled,
    /// The session ended (`session` resolved).
    SessionEnded,
}

/// Reads a body after its first bytes `buf`, stopping as soon as it is over `limits.max`
/// bytes, when no byte of it arrives for `limits.timeout`, or when `session` resolves (its
/// sender, kept by the session task, is dropped when the session ends).
async fn read_body<B>(
    body: B,
    mut buf: BytesMut,
    limits: BodyLimits,
    session: &mut oneshot::Receiver<()>,
) -> BodyRead
where
    B: HttpBody,
    B::Error: std::fmt::Display,
{
    let deadline = |now: tokio::time::Instant| {
        // A timeout too long for the clock is no timeout (a year is as good).
        now.checked_add(limits.timeout)
            .unwrap_or_else(|| now + std::time::Duration::from_secs(365 * 24 * 3600))
    };
    let timer = tokio::time::sleep_until(deadline(tokio::time::Instant::now()));
    let mut timer = std::pin::pin!(timer);
    let mut body = std::pin::pin!(body);
    if buf.len() > limits.max {
        return BodyRead::Done(buf.freeze());
    }
    loop {
        let frame = tokio::select! {
            biased;
            frame = body.frame() => frame,
            _ = &mut *session => return BodyRead::SessionEnded,
            () = &mut timer => return BodyRead::Stalled,
        };
        let Some(frame) = frame else {
            break;
        };
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    timer.as_mut().reset(deadline(tokio::time::Instant::now()));
                    append(&mut buf, data);
                    if buf.len() > limits.max {
                        break;
                    }
                }
            }
            Err(e) => {
                debug!("POST body aborted: {e}");
                return BodyRead::Aborted;
            }
        }
    }
    BodyRead::Done(buf.freeze())
}

fn request_error(responder: &Responder, e: RequestError) -> Response<Body> {
    trace!("request refused: {e}");
    match e.code() {
        Some(code) => responder.error(code),
        None => {
            responder.status(StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST))
        }
    }
}

struct SessionTask<M: Machine> {
    machine: M,
    inbox: queue::Receiver<Msg<M::Command>>,
    shared: Arc<SessionShared>,
    /// Pending GETs (one, or two for the moment an overlap is refused).
    polls: Vec<(RequestId, PollReply)>,
    next_request: RequestId,
    /// The session's WebSocket, once it has one.
    main: Option<Box<WsConn>>,
    /// A WebSocket probing an upgrade.
    probe: Option<Box<WsConn>>,
    max_buffered: usize,
    writable_below: usize,
    /// What the machine was last told of the WebSocket's write queue.
    ws_writable: bool,
    /// Held while a POST's body is read; dropped with the task, which stops that read.
    post_alive: Option<oneshot::Sender<()>>,
    /// The server-wide counters, if they were enabled when the session opened, and the
    /// machine's counts last added to them (boxed: a pointer per session when counting is off).
    counted: Option<Box<(EngineStats, eio::Stats)>>,
}

impl<M: Machine> SessionTask<M> {
    async fn run(mut self: Box<Self>, clock: Clock) {
        // One timer for the session's life, moved only when the machine's deadline changes
        // (not re-created for every input or delivery).
        let timer = tokio::time::sleep(std::time::Duration::from_secs(3600));
        tokio::pin!(timer);
        let mut armed: Option<tokio::time::Instant> = None;
        // The machine's deadline the timer is armed for: the timer moves (and the clock is
        // read for it) only when that changes, not every round.
        let mut armed_for: Option<Instant> = None;
        // The clock as the input that ended the last wait read it: the round that handles the
        // input's outputs goes on with it instead of reading the clock again.
        let mut read_now: Option<Instant> = None;
        loop {
            let now = read_now.take().unwrap_or_else(|| clock.now());
            self.drain(now);
            // Commands the application queued from this task (an event's handler run here, see
            // `SessionLink::run_here`) are taken now, without a wake-up, so that their frames
            // are written in this round (a few at a time; the rest through the queue below).
            for _ in 0..COMMAND_BATCH {
                let Some(msg) = self.inbox.try_recv() else {
                    break;
                };
                // The clock as this round read it: these commands were sent within it.
                let now = self.fire_due_timers(now);
                self.on_msg(now, msg);
                self.drain(now);
            }
            if let Some(counted) = self.counted.as_deref_mut() {
                counted.0.add(self.machine.engine().stats(), &mut counted.1);
            }
            // Write what this round queued now; the task is woken when more can be written.
            if self.main.is_some() || self.probe.is_some() {
                std::future::poll_fn(|cx| {
                    for w in [&mut self.main, &mut self.probe].into_iter().flatten() {
                        w.flush_now(cx);
                    }
                    Poll::Ready(())
                })
                .await;
            }
            if let Some(w) = &self.main {
                let queued = w.queued();
                if queued > self.max_buffered {
                    debug!(queued, "WebSocket write queue full: closing the session");
                    self.machine.close_overloaded(now);
                    continue;
                }
                let writable = queued < self.writable_below;
                if writable != self.ws_writable {
                    self.ws_writable = writable;
                    let _ = self
                        .machine
                        .handle_input(now, eio::Input::WsWritable(writable));
                }
            }
            if self.shared.overloaded.load(Ordering::Acquire) {
                self.shared.overloaded.store(false, Ordering::Relaxed);
                debug!("queue full: closing the session");
                self.machine.close_overloaded(now);
                continue;
            }
            if self.machine.is_closed() {
                break;
            }
            let next = self.machine.poll_timeout();
            if next != armed_for || armed.is_none() != next.is_none() {
                let deadline = next.map(|t| clock.deadline(t));
                if deadline != armed {
                    if let Some(d) = deadline {
                        timer.as_mut().reset(d);
                    }
                    armed = deadline;
                }
                armed_for = next;
            }
            let room = self.machine.wait_for_room();
            let first_poll = &mut self.polls;
            // An input or command that finds a timer due is handled after it (as the
            // reference's event loop runs due timers before I/O), whichever branch wins.
            tokio::select! {
                () = &mut timer, if armed.is_some() => {
                    armed = None;
                    if let Some(w) = &mut self.main {
                        w.tick();
                    }
                    self.inbox.release();
                    let now = clock.now();
                    read_now = Some(now);
                    let _ = self.machine.handle_input(now, eio::Input::Timeout);
                }
                msg = self.inbox.recv() => match msg {
                    Some(msg) => {
                        let now = self.fire_due_timers(clock.now());
                        read_now = Some(now);
                        self.on_msg(now, msg);
                        self.drain(now);
                        // Take what is already waiting too, so that the frames of a burst
                        // of commands are written together. Each command's outputs are taken
                        // before the next command: the machine's output queue holds one at a
                        // time instead of growing with the burst (and giving its room back
                        // after it, for every burst).
                        for _ in 1..COMMAND_BATCH {
                            // Each message spends a unit of the task's cooperative budget, as
                            // `recv` does; with none left the rest waits until the runtime
                            // ran the other tasks.
                            if !tokio::task::coop::has_budget_remaining() {
                                break;
                            }
                            let Some(msg) = self.inbox.try_recv() else {
                                break;
                            };
                            tokio::task::coop::consume_budget().await;
                            self.on_msg(now, msg);
                            self.drain(now);
                        }
                    }
                    // The endpoint keeps a sender while the session runs.
                    None => break,
                },
                event = ws_event(&mut self.main) => {
                    let input = match event {
                        WsEvent::Frame(frame) => eio::Input::WsFrame(frame),
                        WsEvent::Closed { error } => {
                            if let Some(w) = self.main.take() {
                                w.close();
                            }
                            let failed = error.is_some();
                            if let Some(description) = error {
                                self.machine.transport_failed(description);
                            }
                            eio::Input::WsClosed { error: failed }
                        }
                    };
                    let now = clock.now();
                    read_now = Some(now);
                    let _ = self.machine.handle_input(now, input);
                }
                event = ws_event(&mut self.probe) => {
                    let input = match event {
                        WsEvent::Frame(frame) => eio::Input::ProbeFrame(frame),
                        WsEvent::Closed { .. } => {
                            if let Some(w) = self.probe.take() {
                                w.close();
                            }
                            eio::Input::ProbeClosed
                        }
                    };
                    let _ = self.machine.handle_input(clock.now(), input);
                }
                id = poll_gone(first_poll) => {
                    self.polls.retain(|(i, _)| *i != id);
                    let _ = self.machine.handle_input(clock.now(), eio::Input::PollAborted(id));
                }
                () = async move {
                    match room {
                        Some(room) => room.await,
                        None => std::future::pending().await,
                    }
                } => {}
            }
        }
        if let Some(w) = self.main.take() {
            w.close();
        }
        if let Some(w) = self.probe.take() {
            w.close();
        }
        if let Some(counted) = self.counted.as_deref_mut() {
            let engine = self.machine.engine();
            let (stats, last) = counted;
            stats.add(engine.stats(), last);
            // A task that ends with its session open (the endpoint went away) was closed by
            // the server.
            stats.closed(
                engine
                    .close_reason()
                    .unwrap_or(eio::CloseReason::ForcedClose),
            );
        }
    }

    /// Performs what the machine has for the transport now.
    fn drain(&mut self, now: Instant) {
        while self.machine.has_work() {
            match self.machine.poll_transport(now) {
                Some(out) => self.perform(out),
                None => break,
            }
        }
    }

    /// Runs the machine's timers if one is due at `now`, before commands that arrived late
    /// (inputs run them themselves).
    fn fire_due_timers(&mut self, now: Instant) -> Instant {
        if self.machine.poll_timeout().is_some_and(|t| t <= now) {
            let _ = self.machine.handle_input(now, eio::Input::Timeout);
        }
        now
    }

    fn perform(&mut self, out: eio::Io) {
        match out {
            eio::Io::PollResponse {
                request,
                body,
                binary,
                compress,
            } => {
                if let Some(i) = self.polls.iter().position(|(id, _)| *id == request) {
                    let (_, reply) = self.polls.swap_remove(i);
                    let _ = reply.send(Ok(PollBody {
                        body,
                        binary,
                        compress,
                    }));
                }
            }
            eio::Io::WsSend { frame, compress } => {
                if let Some(w) = &mut self.main {
                    w.send(frame, compress);
                }
            }
            eio::Io::WsClose => {
                if let Some(w) = self.main.take() {
                    w.close();
                }
            }
            eio::Io::ProbeSend(frame) => {
                if let Some(w) = &mut self.probe {
                    // The probe's answers are tiny: the threshold leaves them uncompressed.
                    w.send(frame, true);
                }
            }
            eio::Io::ProbeClose => {
                if let Some(w) = self.probe.take() {
                    w.close();
                }
            }
            eio::Io::Upgraded => {
                debug!("upgraded to websocket");
                self.main = self.probe.take();
                self.shared.mark_upgraded();
            }
        }
    }

    fn on_msg(&mut self, now: Instant, msg: Msg<M::Command>) {
        match msg {
            Msg::Input(input) => self.on_input(now, input),
            Msg::Command(command) => self.machine.handle_command(now, command),
        }
    }

    fn on_input(&mut self, now: Instant, input: Input) {
        match input {
            Input::Poll { reply } => {
                let id = self.next_request;
                self.next_request += 1;
                self.polls.push((id, reply));
                if let Err(e) = self.machine.handle_input(now, eio::Input::Poll(id)) {
                    if let Some(i) = self.polls.iter().position(|(r, _)| *r == id) {
                        let (_, reply) = self.polls.swap_remove(i);
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Input::PostStart {
                binary,
                reply,
                alive,
            } => {
                let started = self
                    .machine
                    .handle_input(now, eio::Input::PostStart { binary });
                let accepted = started.is_ok();
                if reply.send(started).is_err() && accepted {
                    // The request went away before it heard the answer: its POST is over.
                    let body = None;
                    let _ = self
                        .machine
                        .handle_input(now, eio::Input::Post { body, binary });
                } else if accepted {
                    self.post_alive = Some(alive);
                }
            }
            Input::PostWhole(post) => {
                let PostInput {
                    body,
                    binary,
                    reply,
                } = *post;
                let done = self
                    .machine
                    .handle_input(now, eio::Input::PostStart { binary })
                    .and_then(|()| {
                        self.machine
                            .handle_input(now, eio::Input::Post { body, binary })
                    });
                let _ = reply.send(done);
            }
            Input::Post(post) => {
                self.post_alive = None;
                let PostInput {
                    body,
                    binary,
                    reply,
                } = *post;
                let _ = reply.send(
                    self.machine
                        .handle_input(now, eio::Input::Post { body, binary }),
                );
            }
            Input::Upgrade(ws) => {
                match self.machine.handle_input(now, eio::Input::UpgradeRequest) {
                    Ok(()) => {
                        // A probe still open is replaced (its session refused nothing yet).
                        if let Some(old) = self.probe.replace(ws) {
                            old.close();
                        }
                    }
                    Err(e) => {
                        debug!("upgrade refused: {e:?}");
                        ws.close();
                    }
                }
            }
            Input::Shutdown => self.machine.close_shutdown(now),
        }
    }
}

/// The next event of a session's WebSocket (writing what is queued on it meanwhile); never
/// resolves without one.
async fn ws_event(ws: &mut Option<Box<WsConn>>) -> WsEvent {
    match ws {
        Some(ws) => std::future::poll_fn(|cx| ws.poll_event(cx)).await,
        None => std::future::pending().await,
    }
}

/// Resolves when the client of the first pending GET went away.
async fn poll_gone(polls: &mut [(RequestId, PollReply)]) -> RequestId {
    match polls.first_mut() {
        Some((id, reply)) => {
            reply.closed().await;
            *id
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_info_keeps_headers_and_query_as_they_came() {
        let req = Request::builder()
            .uri("/socket.io/?EIO=4&name=J%C3%B6&b64=1&name=x")
            .header("x-a", "1")
            .header("x-a", "2")
            .header("host", "example.com:3000")
            .header("x-latin", HeaderValue::from_bytes(b"caf\xe9").unwrap())
            .body(())
            .unwrap();
        let info = RequestInfo::new(&req, 7, None);
        assert_eq!(info.url, "/socket.io/?EIO=4&name=J%C3%B6&b64=1&name=x");
        assert_eq!(info.headers(), req.headers());
        let a: Vec<_> = info.headers().get_all("x-a").iter().collect();
        assert_eq!(a, ["1", "2"]);
        assert_eq!(info.headers()["x-latin"].as_bytes(), b"caf\xe9");
        let expected = [("EIO", "4"), ("name", "Jö"), ("b64", "1"), ("name", "x")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(info.query(), &expected[..]);
        // The map's values are the kept lines' bytes, not a second copy of them.
        let kept = info.header_lines.as_ptr_range();
        assert!(info
            .headers()
            .values()
            .all(|v| kept.contains(&v.as_bytes().as_ptr())));
        let plain = Request::builder().uri("/socket.io/").body(()).unwrap();
        let info = RequestInfo::new(&plain, 7, None);
        assert!(info.query().is_empty() && info.headers().is_empty());
    }
}
