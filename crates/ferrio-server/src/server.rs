//! [`Ferrio`], the Socket.IO server: namespaces over Engine.IO sessions, each session's
//! [`Connection`] machine driven by its task.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ferrio_proto::engine::server::{self as eio, SendOptions};
use ferrio_proto::socket::recovery::{PersistedSession, RecoveryConfig, Restored};
use ferrio_proto::socket::server::{
    AckError as CoreAckError, Config, Connection, DisconnectReason, Event, Output, RecoveryRequest,
};
use ferrio_proto::socket::{EncodedPacket, Packet, RawJson};
use ferrio_proto::{Instant, Str};
use http::{Request, Response};
use http_body::Body as HttpBody;
use serde::Serialize;
use tokio::sync::oneshot;
use tracing::{debug, info_span, Instrument};

use crate::adapter::{Adapter, AdapterError, LocalNamespace, RemoteSocket};
use crate::clock::Clock;
use crate::config::{engine_options, EngineOptions};
use crate::http::Body;
use crate::namespace::{BroadcastOperator, Namespace, NsInner, RoomEvents};
use crate::queue;
use crate::socket::{ConnectError, EmitError, Handshake, Socket};
use crate::transport::{App, Endpoint, Machine, NewSession, RequestInfo, SessionLink};

/// Events received by a socket and waiting for its handlers in the socket's queue. Past it,
/// events wait in the session (in order) up to 10 × `max_http_buffer_size` bytes; past that the
/// client's connection is closed (`buffer full`).
pub const EVENT_QUEUE: usize = 256;

/// Commands from the application to a session task. Kept small (the rare, large ones boxed):
/// each session's queue allocates room for 32 of them at once.
pub(crate) enum Command {
    /// Send an encoded packet to `socket` (shared: a broadcast queues the same packet for
    /// every recipient, and a small `Command` keeps the queue's first block small).
    Send {
        socket: Socket,
        packet: Arc<EncodedPacket>,
        volatile: bool,
    },
    /// Send an event carrying an ack id and wait for the answer.
    EmitWithAck(Box<EmitWithAck>),
    /// `socket.disconnect(false)`.
    Disconnect(Socket),
    /// `socket.disconnect(true)`.
    Close(Socket),
    /// `socket.conn.close()`: the Engine.IO connection closes, no DISCONNECT is sent.
    CloseTransport(Socket),
    /// The middlewares of a pending CONNECT are done.
    Connected(Box<Connected>),
}

/// [`Command::EmitWithAck`]: the event, its ack id, and where the answer goes.
pub(crate) struct EmitWithAck {
    pub(crate) socket: Socket,
    pub(crate) packet: EncodedPacket,
    pub(crate) ack_id: u64,
    pub(crate) timeout: Duration,
    pub(crate) reply: oneshot::Sender<Result<Packet, CoreAckError>>,
}

/// [`Command::Connected`]: the outcome of a CONNECT's middlewares.
pub(crate) struct Connected {
    socket: Socket,
    result: Result<(), ConnectError>,
    restored: Option<Restored>,
}

type Matcher = Arc<dyn Fn(&str) -> bool + Send + Sync>;

struct Shared {
    namespaces: RwLock<HashMap<Str, Namespace>>,
    /// Parent namespaces of dynamic namespaces, with the names they accept.
    dynamic: RwLock<Vec<(Matcher, Namespace)>>,
    recovery: Option<RecoveryConfig>,
    clock: Clock,
    adapter: Option<Arc<dyn Adapter>>,
}

impl Shared {
    /// A new namespace, with its cluster adapter if the server has one.
    fn new_namespace(&self, name: Str) -> Arc<NsInner> {
        let inner = Arc::new(NsInner::new(name, self.clock, self.recovery.clone()));
        if let Some(adapter) = &self.adapter {
            let _ = inner
                .adapter
                .set(adapter.namespace(LocalNamespace::new(&inner)));
        }
        inner
    }

    fn namespace(&self, name: &str) -> Option<Namespace> {
        self.namespaces.read().ok()?.get(name).cloned()
    }

    /// The namespace `name` if it exists, or a new child of the first dynamic parent that
    /// accepts the name.
    fn namespace_or_child(&self, name: &str) -> Option<Namespace> {
        if let Some(ns) = self.namespace(name) {
            return Some(ns);
        }
        let parent = self
            .dynamic
            .read()
            .ok()?
            .iter()
            .find(|(matches, _)| matches(name))
            .map(|(_, parent)| parent.clone())?;
        let mut map = self.namespaces.write().unwrap_or_else(|e| e.into_inner());
        let ns = map
            .entry(Str::from(name))
            .or_insert_with(|| {
                let inner = self.new_namespace(Str::from(name));
                inner.inherit(&parent.inner);
                Namespace { inner }
            })
            .clone();
        Some(ns)
    }

    fn of(&self, name: &str) -> Namespace {
        let name = normalize_nsp(name);
        if let Some(ns) = self.namespace(&name) {
            return ns;
        }
        let mut map = self.namespaces.write().unwrap_or_else(|e| e.into_inner());
        map.entry(name.clone())
            .or_insert_with(|| Namespace {
                inner: self.new_namespace(name),
            })
            .clone()
    }
}

fn normalize_nsp(name: &str) -> Str {
    if name.starts_with('/') {
        Str::from(name)
    } else {
        Str::from(format!("/{name}"))
    }
}

/// The Socket.IO server (`io`). Cheap to clone: every clone is the same server.
///
/// ```no_run
/// use ferrio_server::{AckSender, Ferrio, Socket};
///
/// # async fn run() -> std::io::Result<()> {
/// let io = Ferrio::builder().build();
/// io.of("/").on_connection(|socket: Socket| async move {
///     socket.on("chat", |socket: Socket, (text,): (String,), ack: AckSender| async move {
///         socket.broadcast().emit("chat", &(text,))?;
///         ack.send(&("ok",))
///     });
/// });
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// io.serve(listener).await
/// # }
/// ```
#[derive(Clone)]
pub struct Ferrio {
    endpoint: Arc<Endpoint<SocketApp>>,
}

impl std::fmt::Debug for Ferrio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ferrio")
            .field("path", &self.endpoint.options.path)
            .finish_non_exhaustive()
    }
}

impl Ferrio {
    /// A builder with socket.io's defaults.
    pub fn builder() -> FerrioBuilder {
        FerrioBuilder {
            engine: EngineOptions::new("/socket.io/"),
            connect_timeout: Duration::from_millis(45_000),
            max_attachments: ferrio_proto::socket::DEFAULT_MAX_ATTACHMENTS,
            recovery: None,
            adapter: None,
        }
    }

    /// The namespace `name`, created if it does not exist yet (`io.of(name)`). Clients asking
    /// for a namespace that was never created get `Invalid namespace`.
    pub fn of(&self, name: &str) -> Namespace {
        self.endpoint.app.shared.of(name)
    }

    /// A parent for dynamic namespaces (`io.of(regex)` / `io.of(fn)`): every namespace a client
    /// asks for whose name `matches` accepts is created on its first CONNECT, with the
    /// middlewares and connection handlers the returned parent has at that moment. Namespaces
    /// created with [`Ferrio::of`] take precedence.
    ///
    /// ```
    /// # fn f(io: ferrio_server::Ferrio) {
    /// io.of_dynamic(|name| name.starts_with("/workspace-"))
    ///     .on_connection(|socket| async move {
    ///         let _ = socket.emit("welcome", &(socket.nsp(),));
    ///     });
    /// # }
    /// ```
    pub fn of_dynamic<F>(&self, matches: F) -> Namespace
    where
        F: Fn(&str) -> bool + Send + Sync + 'static,
    {
        let mut dynamic = self
            .endpoint
            .app
            .shared
            .dynamic
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let parent = Namespace {
            inner: Arc::new(NsInner::new(
                Str::from(format!("/_{}", dynamic.len())),
                self.endpoint.app.shared.clock,
                None,
            )),
        };
        dynamic.push((Arc::new(matches), parent.clone()));
        parent
    }

    /// A broadcast to the members of `room` in the main namespace.
    pub fn to(&self, room: impl Into<Str>) -> BroadcastOperator {
        self.of("/").to(room)
    }

    /// Emits to every socket of the main namespace.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, args: &T) -> Result<(), EmitError> {
        self.of("/").emit(event, args)
    }

    /// The sockets of the main namespace on every server of the cluster (`fetchSockets`).
    pub fn fetch_sockets(
        &self,
    ) -> impl Future<Output = Result<Vec<RemoteSocket>, AdapterError>> + Send + 'static {
        self.of("/").fetch_sockets()
    }

    /// Sends a server-side event to the other servers' main namespace
    /// ([`Namespace::server_side_emit`]).
    pub fn server_side_emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> Result<(), EmitError> {
        self.of("/").server_side_emit(event, args)
    }

    /// Serves one HTTP request for this endpoint (404 if its path is not under the prefix).
    /// This is what to call from another HTTP stack.
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

    /// True if `path` is under this endpoint's prefix (the `path` option).
    pub fn matches(&self, path: &str) -> bool {
        self.endpoint.matches(path)
    }

    /// The number of open Engine.IO sessions.
    pub fn session_count(&self) -> usize {
        self.endpoint.session_count()
    }

    /// Closes every client connection (`io.close()`): no DISCONNECT is sent, sockets leave with
    /// `server shutting down` (a reason connection state recovery keeps sessions for), and the
    /// clients see their transport close and reconnect. Stopping the listener is up to the
    /// caller (drop the [`Ferrio::serve`] future).
    pub async fn close(&self) {
        self.endpoint.close_all().await;
    }

    /// Serves HTTP/1.1 connections from `listener` (other paths get 404). Runs until the
    /// listener fails.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        crate::serve(listener, move |req| self.handle(req)).await
    }

    /// Serves as [`Ferrio::serve`] until `shutdown` resolves, then shuts down gracefully: the
    /// listener is closed and every client connection is closed as by [`Ferrio::close`]
    /// (`server shutting down`, kept by connection state recovery), and this returns.
    ///
    /// ```no_run
    /// # async fn run(io: ferrio_server::Ferrio) -> std::io::Result<()> {
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    /// io.serve_with_shutdown(listener, async {
    ///     let _ = tokio::signal::ctrl_c().await;
    /// })
    /// .await
    /// # }
    /// ```
    pub async fn serve_with_shutdown(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let io = self.clone();
        let served =
            crate::serve::serve_with_shutdown(listener, move |req| io.handle(req), shutdown).await;
        self.close().await;
        served
    }
}

/// Builds a [`Ferrio`] server; see [`Ferrio::builder`].
#[derive(Debug)]
pub struct FerrioBuilder {
    engine: EngineOptions,
    connect_timeout: Duration,
    max_attachments: usize,
    recovery: Option<RecoveryConfig>,
    adapter: Option<Arc<dyn Adapter>>,
}

impl std::fmt::Debug for dyn Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Adapter")
    }
}

impl FerrioBuilder {
    /// Joins a cluster through `adapter` (for example the Redis adapter): broadcasts, room and
    /// disconnect operations, `fetch_sockets` and server-side events then reach every server.
    /// Without one the server is alone (the reference's in-memory adapter).
    pub fn adapter(mut self, adapter: impl Adapter) -> Self {
        self.adapter = Some(Arc::new(adapter));
        self
    }

    engine_options!();

    /// Time a client has to join a namespace before its connection is closed
    /// (`connectTimeout`, default 45 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Most binary attachments accepted in one packet (default 10).
    pub fn max_attachments(mut self, n: usize) -> Self {
        self.max_attachments = n;
        self
    }

    /// Turns connection state recovery on (`connectionStateRecovery`): a client that lost its
    /// connection gets its socket id, rooms and missed events back if it reconnects within
    /// `max_disconnection_duration`.
    pub fn connection_state_recovery(mut self, config: RecoveryConfig) -> Self {
        self.recovery = Some(config);
        self
    }

    /// Builds the server, with its main namespace `/`.
    pub fn build(self) -> Ferrio {
        let clock = Clock::new();
        let shared = Arc::new(Shared {
            namespaces: RwLock::new(HashMap::new()),
            dynamic: RwLock::new(Vec::new()),
            recovery: self.recovery.clone(),
            clock,
            adapter: self.adapter.clone(),
        });
        shared.of("/");
        let app = SocketApp {
            shared,
            engine_config: self.engine.session_config(),
            config: Config {
                connect_timeout: self.connect_timeout,
                max_attachments: self.max_attachments,
            },
        };
        Ferrio {
            endpoint: Arc::new(Endpoint::new(app, self.engine, clock)),
        }
    }
}

struct SocketApp {
    shared: Arc<Shared>,
    engine_config: eio::Config,
    config: Config,
}

impl App for SocketApp {
    type Machine = SocketMachine;

    fn create(&self, s: NewSession<Command>) -> SocketMachine {
        let conn = Connection::from_handshake(
            s.now,
            s.sid,
            &s.handshake,
            self.engine_config.clone(),
            self.config.clone(),
        );
        SocketMachine {
            conn,
            shared: self.shared.clone(),
            link: s.link,
            request: Arc::new(s.request),
            sockets: HashMap::new(),
            acks: HashMap::new(),
            waiting: VecDeque::new(),
            waiting_bytes: 0,
            max_waiting_bytes: self.engine_config.max_payload.saturating_mul(10),
        }
    }
}

struct Slot {
    socket: Socket,
    /// Boxed: a queue keeps room for a few entries once it had them.
    events: queue::Sender<Box<Packet>>,
}

struct SocketMachine {
    conn: Connection,
    shared: Arc<Shared>,
    link: SessionLink<Command>,
    request: Arc<RequestInfo>,
    /// The joined namespaces' sockets.
    sockets: HashMap<Str, Slot>,
    /// Emits waiting for their ack, by namespace and ack id.
    acks: HashMap<(Str, u64), oneshot::Sender<Result<Packet, CoreAckError>>>,
    /// Events that found their socket's queue full, in arrival order (a burst from the client).
    waiting: VecDeque<Packet>,
    waiting_bytes: usize,
    max_waiting_bytes: usize,
}

impl SocketMachine {
    fn is_current(&self, socket: &Socket) -> bool {
        self.sockets.get(socket.nsp()).is_some_and(|s| {
            Arc::ptr_eq(&s.socket.inner, &socket.inner) || s.socket.id() == socket.id()
        })
    }

    fn on_connect(
        &mut self,
        now: Instant,
        nsp: Str,
        auth: RawJson,
        recovery: Option<RecoveryRequest>,
    ) {
        let Some(ns) = self.shared.namespace_or_child(&nsp) else {
            debug!(%nsp, "CONNECT to an unknown namespace");
            let _ = self.conn.reject_unknown_namespace(now, &nsp);
            return;
        };
        let restored = match (&recovery, self.shared.recovery.is_some()) {
            (Some(req), true) => ns
                .inner
                .state()
                .recovery
                .as_mut()
                .and_then(|store| store.restore(now, &req.pid, req.offset.as_deref())),
            _ => None,
        };
        let id = match &restored {
            Some(r) => Some(r.session.sid.clone()),
            None => self.conn.fixed_socket_id(&nsp).or_else(crate::id::generate),
        };
        let pid = match (&restored, self.shared.recovery.is_some()) {
            (Some(r), _) => Some(Some(r.session.pid.clone())),
            (None, true) => Some(crate::id::generate()),
            (None, false) => None,
        };
        let (Some(id), Some(pid)) = (id, pid.map_or(Some(None), |p| p.map(Some))) else {
            let _ = self.conn.reject(now, &nsp, "Bad request", None);
            return;
        };
        let socket = Socket::new(
            id,
            ns.inner.clone(),
            self.link.clone(),
            Handshake::new(self.request.clone(), auth),
            restored.is_some(),
            pid,
        );
        let skip = restored.is_some()
            && self
                .shared
                .recovery
                .as_ref()
                .is_some_and(|r| r.skip_middlewares);
        let middlewares = ns.inner.middlewares();
        if skip || middlewares.is_empty() {
            self.accept(now, socket, restored);
            return;
        }
        let link = self.link.clone();
        tokio::spawn(
            async move {
                let mut result = Ok(());
                for middleware in middlewares {
                    result = middleware(socket.clone()).await;
                    if result.is_err() {
                        break;
                    }
                }
                link.send_waiting(Command::Connected(Box::new(Connected {
                    socket,
                    result,
                    restored,
                })))
                .await;
            }
            .in_current_span(),
        );
    }

    fn accept(&mut self, now: Instant, socket: Socket, restored: Option<Restored>) {
        let ns = socket.inner.ns.clone();
        let id = socket.inner.id.clone();
        let nsp = ns.name.clone();
        let events = {
            let mut st = ns.state();
            let mut events = st.rooms.add_socket(id.clone());
            let since = match &restored {
                Some(r) => {
                    events.extend(st.rooms.join(&id, r.session.rooms.iter().cloned()));
                    Some(r.session.since)
                }
                None => st.recovery.as_ref().map(|s| s.position()),
            };
            if let Some(since) = since {
                let _ = socket.inner.since.set(since);
            }
            st.sockets.insert(id.clone(), socket.clone());
            RoomEvents::new(events, &st)
        };
        ns.room_events(events);
        let missed: Vec<EncodedPacket> = restored
            .iter()
            .flat_map(|r| r.missed.iter().map(Packet::encode))
            .collect();
        let pid = socket.inner.pid.clone();
        if let Err(e) = self
            .conn
            .accept(now, &nsp, &id, pid.as_deref(), missed.iter())
        {
            debug!(%nsp, socket = %id, "not accepted: {e}");
            let events = {
                let mut st = ns.state();
                st.sockets.remove(&id);
                let events = st.rooms.remove_socket(&id);
                RoomEvents::with_socket(events, &st, Some(&id))
            };
            ns.room_events(events);
            return;
        }
        debug!(%nsp, socket = %id, recovered = socket.recovered(), "socket connected");
        socket.mark_connected();
        let (tx, rx) = queue::channel(EVENT_QUEUE);
        self.sockets.insert(
            nsp.clone(),
            Slot {
                socket: socket.clone(),
                events: tx,
            },
        );
        let span = info_span!("socket", %nsp, id = %id);
        tokio::spawn(run_socket(socket, rx).instrument(span));
    }

    fn on_event(&mut self, now: Instant, packet: Packet) {
        if self.waiting.is_empty() {
            let Some(slot) = self.sockets.get(packet.nsp()) else {
                return;
            };
            match slot.events.try_send(Box::new(packet)) {
                Ok(()) | Err(queue::TrySendError::Closed(_)) => {}
                Err(queue::TrySendError::Full(packet)) => self.wait(now, *packet),
            }
        } else {
            self.wait(now, packet);
        }
    }

    /// Keeps an event until its socket's queue has room; past the byte bound the connection
    /// is closed.
    fn wait(&mut self, now: Instant, packet: Packet) {
        self.waiting_bytes += packet_size(&packet);
        self.waiting.push_back(packet);
        if self.waiting_bytes > self.max_waiting_bytes {
            debug!("events waiting for their handlers past the bound: closing the connection");
            self.waiting.clear();
            self.waiting_bytes = 0;
            self.conn.close(now, DisconnectReason::BufferFull);
        }
    }

    /// Hands the waiting events to their sockets while there is room, in order.
    fn flush_waiting(&mut self) {
        while let Some(packet) = self.waiting.pop_front() {
            let size = packet_size(&packet);
            let Some(slot) = self.sockets.get(packet.nsp()) else {
                self.waiting_bytes = self.waiting_bytes.saturating_sub(size);
                continue;
            };
            match slot.events.try_send(Box::new(packet)) {
                Ok(()) | Err(queue::TrySendError::Closed(_)) => {
                    self.waiting_bytes = self.waiting_bytes.saturating_sub(size)
                }
                Err(queue::TrySendError::Full(packet)) => {
                    self.waiting.push_front(*packet);
                    return;
                }
            }
        }
    }

    fn on_disconnect(&mut self, now: Instant, nsp: Str, reason: DisconnectReason) {
        let Some(slot) = self.sockets.remove(&nsp) else {
            return;
        };
        // Events of this socket still waiting are not for a socket that may join again later.
        let before = self.waiting.len();
        let mut freed = 0;
        self.waiting.retain(|p| {
            let keep = p.nsp() != &nsp;
            if !keep {
                freed += packet_size(p);
            }
            keep
        });
        if self.waiting.len() != before {
            self.waiting_bytes = self.waiting_bytes.saturating_sub(freed);
        }
        let socket = slot.socket;
        let ns = socket.inner.ns.clone();
        let id = socket.inner.id.clone();
        let events = {
            let mut st = ns.state();
            let rooms: Vec<Str> = st.rooms.rooms_of(&id).cloned().collect();
            st.sockets.remove(&id);
            let events = st.rooms.remove_socket(&id);
            if let (Some(store), Some(pid), true) = (
                st.recovery.as_mut(),
                socket.inner.pid.clone(),
                reason.is_recoverable(),
            ) {
                store.persist(
                    now,
                    PersistedSession {
                        sid: id.clone(),
                        pid,
                        rooms,
                        data: None,
                        since: socket.inner.since.get().copied().unwrap_or_default(),
                    },
                );
            }
            RoomEvents::with_socket(events, &st, Some(&id))
        };
        ns.room_events(events);
        debug!(%nsp, socket = %id, %reason, "socket disconnected");
        socket.mark_disconnected(reason);
        // Dropping `slot.events` ends the socket's task once it handled what was queued.
    }
}

/// What a waiting packet costs: its JSON text and attachments, plus a fixed overhead for the
/// packet itself and its buffers, so that a flood of tiny events is bounded too.
fn packet_size(packet: &Packet) -> usize {
    const OVERHEAD: usize = 128;
    OVERHEAD
        + packet.data().map_or(0, |d| d.as_str().len())
        + packet
            .attachments()
            .iter()
            .map(|a| a.len() + OVERHEAD)
            .sum::<usize>()
}

/// Runs a socket's handlers: the connection handlers, then each event in order, then the
/// disconnect handlers. A panicking handler is logged; the socket goes on.
async fn run_socket(socket: Socket, mut events: queue::Receiver<Box<Packet>>) {
    use futures_util::FutureExt as _;
    use std::panic::AssertUnwindSafe;
    for handler in socket.inner.ns.connection_handlers() {
        if AssertUnwindSafe(handler(socket.clone()))
            .catch_unwind()
            .await
            .is_err()
        {
            tracing::error!("connection handler panicked");
        }
    }
    'events: while let Some(packet) = events.recv().await {
        let packet = *packet;
        let Some(name) = packet.event_name().map(|n| n.into_owned()) else {
            continue;
        };
        let middlewares = socket.event_middlewares();
        if !middlewares.is_empty() {
            let Ok(args) = crate::socket::RawArgs::from_event(&packet) else {
                continue;
            };
            for middleware in middlewares {
                let outcome =
                    AssertUnwindSafe(middleware(socket.clone(), name.clone(), args.clone()))
                        .catch_unwind()
                        .await;
                let message = match outcome {
                    Ok(Ok(())) => continue,
                    Ok(Err(message)) => message,
                    Err(_) => {
                        tracing::error!(event = name, "event middleware panicked");
                        continue 'events;
                    }
                };
                for handler in socket.error_handlers() {
                    if AssertUnwindSafe(handler(socket.clone(), message.clone()))
                        .catch_unwind()
                        .await
                        .is_err()
                    {
                        tracing::error!("error handler panicked");
                    }
                }
                continue 'events;
            }
        }
        let any = socket.any_handlers();
        if !any.is_empty() {
            match crate::socket::RawArgs::from_event(&packet) {
                Ok(args) => {
                    for listener in any {
                        if AssertUnwindSafe(listener(socket.clone(), name.clone(), args.clone()))
                            .catch_unwind()
                            .await
                            .is_err()
                        {
                            tracing::error!(event = name, "catch-all handler panicked");
                        }
                    }
                }
                Err(e) => tracing::debug!(event = name, "arguments unreadable: {e}"),
            }
        }
        let handlers = socket.handlers(&name);
        if handlers.is_empty() {
            continue;
        }
        let message = socket.message(packet);
        for handler in handlers {
            let message = Socket::message_again(&message);
            if AssertUnwindSafe(handler(socket.clone(), message))
                .catch_unwind()
                .await
                .is_err()
            {
                tracing::error!(event = name, "event handler panicked");
            }
        }
    }
    let reason = socket.reason();
    for handler in socket.disconnect_handlers() {
        if AssertUnwindSafe(handler(socket.clone(), reason))
            .catch_unwind()
            .await
            .is_err()
        {
            tracing::error!("disconnect handler panicked");
        }
    }
}

impl Machine for SocketMachine {
    type Command = Command;

    fn handle_input(&mut self, now: Instant, input: eio::Input) -> Result<(), eio::RequestError> {
        self.conn.handle_input(now, input)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.conn.poll_timeout()
    }

    fn poll_transport(&mut self, now: Instant) -> Option<eio::Io> {
        self.flush_waiting();
        loop {
            let event = match self.conn.poll_output()? {
                Output::Io(io) => return Some(io),
                Output::Event(event) => event,
            };
            match event {
                Event::Connect {
                    nsp,
                    auth,
                    recovery,
                } => self.on_connect(now, nsp, auth, recovery),
                Event::Event(packet) => self.on_event(now, packet),
                Event::Ack(packet) => {
                    if let Some(id) = packet.id() {
                        if let Some(reply) = self.acks.remove(&(packet.nsp().clone(), id)) {
                            let _ = reply.send(Ok(packet));
                        }
                    }
                }
                Event::AckFailed { nsp, id, error } => {
                    if let Some(reply) = self.acks.remove(&(nsp, id)) {
                        let _ = reply.send(Err(error));
                    }
                }
                Event::Disconnect { nsp, reason } => self.on_disconnect(now, nsp, reason),
                Event::Error(e) => debug!("closing the connection: {e}"),
                Event::Closed(reason) => debug!(%reason, "connection closed"),
                // A later kind of event this server does not handle yet.
                _ => {}
            }
        }
    }

    fn wait_for_room(&self) -> Option<crate::BoxFuture<()>> {
        let packet = self.waiting.front()?;
        let Some(slot) = self.sockets.get(packet.nsp()) else {
            // Its socket is gone: the next flush drops it and goes on with the others.
            return Some(Box::pin(std::future::ready(())));
        };
        let events = slot.events.clone();
        Some(Box::pin(async move {
            // Only this session sends on the queue, so the room is still there when the
            // waiting events are flushed.
            events.room().await;
        }))
    }

    fn handle_command(&mut self, now: Instant, command: Command) {
        match command {
            Command::Send {
                socket,
                packet,
                volatile,
            } => {
                if self.is_current(&socket) {
                    let options = SendOptions {
                        volatile,
                        compress: false,
                    };
                    // A volatile packet the transport cannot take is dropped, as the reference
                    // drops it; a closed connection takes nothing.
                    let _ = self.conn.send(now, &packet, socket.nsp(), options);
                }
            }
            Command::EmitWithAck(emit) => {
                let EmitWithAck {
                    socket,
                    packet,
                    ack_id,
                    timeout,
                    reply,
                } = *emit;
                let nsp = &socket.inner.ns.name;
                if self.is_current(&socket)
                    && self
                        .conn
                        .emit_with_ack(now, &packet, nsp, ack_id, timeout)
                        .is_ok()
                {
                    self.acks.insert((nsp.clone(), ack_id), reply);
                } else {
                    let _ = reply.send(Err(CoreAckError::Disconnected));
                }
            }
            Command::Disconnect(socket) => {
                if self.is_current(&socket) {
                    let _ = self.conn.disconnect(now, socket.nsp());
                }
            }
            Command::Close(socket) => {
                if self.is_current(&socket) {
                    // As the reference's `socket.disconnect(true)`: this socket leaves with
                    // `server namespace disconnect`, the others with `forced server close`.
                    let _ = self.conn.disconnect(now, socket.nsp());
                    self.conn.close(now, DisconnectReason::ForcedServerClose);
                }
            }
            Command::CloseTransport(socket) => {
                if self.is_current(&socket) {
                    self.conn.close(now, DisconnectReason::ForcedClose);
                }
            }
            Command::Connected(connected) => {
                let Connected {
                    socket,
                    result,
                    restored,
                } = *connected;
                match result {
                    Ok(()) => self.accept(now, socket, restored),
                    Err(e) => {
                        debug!(nsp = socket.nsp(), "CONNECT refused: {e}");
                        let data = e.data_json();
                        let _ = self
                            .conn
                            .reject(now, socket.nsp(), e.message(), data.as_ref());
                    }
                }
            }
        }
    }

    fn close_overloaded(&mut self, now: Instant) {
        self.conn.close(now, DisconnectReason::BufferFull);
    }

    fn close_shutdown(&mut self, now: Instant) {
        self.conn.close(now, DisconnectReason::ServerShuttingDown);
    }

    fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }
}
