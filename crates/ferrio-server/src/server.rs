//! [`Ferrio`], the Socket.IO server, and its builder: the namespaces, static and dynamic, that
//! every session shares ([`Shared`]), in front of the Engine.IO endpoint. Each session's
//! machine lives in [`crate::session`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ferrio_proto::socket::recovery::RecoveryConfig;
use ferrio_proto::socket::server::Config;
use ferrio_proto::Str;
use http::{Request, Response};
use http_body::Body as HttpBody;
use serde::Serialize;

use crate::adapter::{Adapter, AdapterError, LocalNamespace, RemoteSocket};
use crate::clock::Clock;
use crate::config::{engine_options, EngineOptions};
use crate::http::Body;
use crate::namespace::{BroadcastOperator, IntoRooms, Namespace, NsInner};
use crate::session::SocketApp;
use crate::socket::{ConnectError, EmitError, Socket};
use crate::transport::Endpoint;

/// Events received by a socket and waiting for its handlers in the socket's queue. Past it,
/// events wait in the session (in order) up to 10 × `max_http_buffer_size` bytes; past that the
/// client's connection is closed (`buffer full`).
pub const EVENT_QUEUE: usize = 256;

type Matcher = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// What every session of the server shares: the namespaces and the server-wide options.
pub(crate) struct Shared {
    namespaces: RwLock<HashMap<Str, Namespace>>,
    /// Parent namespaces of dynamic namespaces, with the names they accept.
    dynamic: RwLock<Vec<(Matcher, Namespace)>>,
    pub(crate) recovery: Option<RecoveryConfig>,
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
    pub(crate) fn namespace_or_child(&self, name: &str) -> Option<Namespace> {
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
            max_pending_acks: ferrio_proto::socket::DEFAULT_MAX_PENDING_ACKS,
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

    /// Adds a connect middleware to the main namespace (`io.use`): [`Namespace::use_connect`].
    pub fn use_connect<F, Fut>(&self, middleware: F) -> &Self
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        self.of("/").use_connect(middleware);
        self
    }

    /// Adds a connection handler to the main namespace (`io.on("connection")`):
    /// [`Namespace::on_connection`].
    ///
    /// ```
    /// # fn f(io: ferrio_server::Ferrio) {
    /// io.use_connect(|_socket| async { Ok(()) })
    ///     .on_connection(|socket| async move {
    ///         socket.join(["lobby", "news"]);
    ///     });
    /// # }
    /// ```
    pub fn on_connection<F, Fut>(&self, handler: F) -> &Self
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.of("/").on_connection(handler);
        self
    }

    /// A broadcast to the members of `rooms` (one room or several, see [`IntoRooms`]) in the
    /// main namespace.
    pub fn to(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.of("/").to(rooms)
    }

    /// The same as [`Ferrio::to`] (`io.in`).
    pub fn in_(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.of("/").in_(rooms)
    }

    /// A broadcast to every socket of the main namespace but the members of `rooms`.
    pub fn except(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.of("/").except(rooms)
    }

    /// A volatile broadcast to the main namespace (`io.volatile`): see
    /// [`BroadcastOperator::volatile`].
    pub fn volatile(&self) -> BroadcastOperator {
        self.of("/").volatile()
    }

    /// A broadcast reaching only the sockets of the main namespace on this server
    /// (`io.local`).
    pub fn local(&self) -> BroadcastOperator {
        self.of("/").local()
    }

    /// A broadcast to the main namespace whose acks are awaited at most `timeout`
    /// (`io.timeout(ms)`): see [`BroadcastOperator::emit_with_ack_all`].
    pub fn timeout(&self, timeout: Duration) -> BroadcastOperator {
        self.of("/").timeout(timeout)
    }

    /// Makes every socket of the main namespace join `rooms` (`io.socketsJoin`).
    pub fn sockets_join(&self, rooms: impl IntoRooms) {
        self.of("/").sockets_join(rooms)
    }

    /// Makes every socket of the main namespace leave `rooms` (`io.socketsLeave`).
    pub fn sockets_leave(&self, rooms: impl IntoRooms) {
        self.of("/").sockets_leave(rooms)
    }

    /// Disconnects every socket of the main namespace (`io.disconnectSockets`); with `close`,
    /// their whole connections are closed.
    pub fn disconnect_sockets(&self, close: bool) {
        self.of("/").disconnect_sockets(close)
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
        let limit = self.endpoint.options.max_http_header_size;
        crate::serve::serve_connections(
            listener,
            move |req| self.handle(req),
            std::future::pending(),
            limit,
        )
        .await
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
        let limit = self.endpoint.options.max_http_header_size;
        let served =
            crate::serve::serve_connections(listener, move |req| io.handle(req), shutdown, limit)
                .await;
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
    max_pending_acks: usize,
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

    /// Most acknowledgements one socket waits for at once (default 4096,
    /// [`DEFAULT_MAX_PENDING_ACKS`](ferrio_proto::socket::DEFAULT_MAX_PENDING_ACKS); the
    /// reference has no bound). Each costs about 1 KB until it is answered or times out, so a
    /// client that never answers emits without a timeout would otherwise grow the server
    /// without limit. At the bound a new [`Socket::emit_with_ack`](crate::Socket::emit_with_ack)
    /// fails at once with
    /// [`AckError::Emit`](crate::AckError::Emit)`(`[`EmitError::TooManyPendingAcks`](crate::EmitError::TooManyPendingAcks)`)`
    /// and the event is not sent (nor is a broadcast with ack to that socket); the connection
    /// stays up.
    pub fn max_pending_acks(mut self, n: usize) -> Self {
        self.max_pending_acks = n;
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
                max_pending_acks: self.max_pending_acks,
            },
        };
        Ferrio {
            endpoint: Arc::new(Endpoint::new(app, self.engine, clock)),
        }
    }
}
