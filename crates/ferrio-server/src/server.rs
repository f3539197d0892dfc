//! [`Ferrio`], the Socket.IO server, and its builder: the namespaces, static and dynamic, that
//! every session shares ([`Shared`]), in front of the Engine.IO endpoint. Each session's
//! machine lives in [`crate::session`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ferrio_proto::socket::recovery::RecoveryConfig;
use ferrio_proto::socket::server::Config;
use ferrio_proto::socket::Parser;
use ferrio_proto::Str;
use http::{Request, Response};
use http_body::Body as HttpBody;
use serde::Serialize;
use serde_json::Value;

use crate::adapter::{Adapter, AdapterError, LocalNamespace, RemoteSocket};
use crate::clock::Clock;
use crate::config::{engine_options, EngineOptions};
use crate::http::Body;
use crate::namespace::{BroadcastOperator, IntoRooms, Namespace, NsInner};
use crate::session::SocketApp;
use crate::socket::{ConnectError, EmitError, Handshake, Socket};
use crate::transport::Endpoint;
use crate::BoxFuture;

/// Events received by a socket and waiting for its handlers in the socket's queue. Past it,
/// events wait in the session (in order) up to 10 × `max_http_buffer_size` bytes; past that the
/// client's connection is closed (`buffer full`).
pub const EVENT_QUEUE: usize = 256;

/// What decides whether a dynamic parent accepts a namespace name.
#[derive(Clone)]
pub(crate) enum Matcher {
    /// [`Ferrio::of_dynamic`]: the name alone, decided in the session.
    Name(Arc<dyn Fn(&str) -> bool + Send + Sync>),
    /// [`Ferrio::of_dynamic_with`]: the name, the CONNECT's auth and the handshake, decided in
    /// a task of its own.
    Connect(Arc<dyn Fn(String, Value, Handshake) -> BoxFuture<bool> + Send + Sync>),
}

type NewNamespaceHandler = Arc<dyn Fn(Namespace) + Send + Sync>;

/// Where a CONNECT's namespace name leads.
pub(crate) enum Lookup {
    /// An existing namespace, or a child just created by a name matcher.
    Found(Namespace),
    /// Dynamic parents to ask in order, the first of them with an async matcher
    /// ([`Shared::decide`]).
    Decide(Vec<(Matcher, Namespace)>),
    /// No namespace has or accepts the name.
    Unknown,
}

/// What every session of the server shares: the namespaces and the server-wide options.
pub(crate) struct Shared {
    namespaces: RwLock<HashMap<Str, Namespace>>,
    /// Parent namespaces of dynamic namespaces, with the names they accept.
    dynamic: RwLock<Vec<(Matcher, Namespace)>>,
    /// The `new_namespace` handlers.
    on_new_namespace: RwLock<Vec<NewNamespaceHandler>>,
    /// `cleanup_empty_child_namespaces`.
    cleanup_children: bool,
    /// The browser client is served under the path (`serveClient`).
    #[cfg(feature = "serve-client")]
    serve_client: bool,
    /// [`Ferrio::close`] was called: handshakes are refused.
    closed: AtomicBool,
    pub(crate) recovery: Option<RecoveryConfig>,
    pub(crate) clock: Clock,
    adapter: Option<Arc<dyn Adapter>>,
    /// The application state given to the builder ([`FerrioBuilder::state`]).
    pub(crate) app_state: Arc<http::Extensions>,
    /// The parser of every packet ([`FerrioBuilder::parser`]).
    pub(crate) parser: Parser,
}

impl Shared {
    /// A new namespace, with its cluster adapter if the server has one.
    fn new_namespace(&self, name: Str) -> Arc<NsInner> {
        let inner = Arc::new(NsInner::new(
            name,
            self.clock,
            self.recovery.clone(),
            self.parser.clone(),
        ));
        let _ = inner.app_state.set(self.app_state.clone());
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

    /// Runs the `new_namespace` handlers for `ns` (with no lock held).
    fn created(&self, ns: &Namespace) {
        let handlers = self
            .on_new_namespace
            .read()
            .map(|h| h.clone())
            .unwrap_or_default();
        for handler in handlers {
            handler(ns.clone());
        }
    }

    /// Where the CONNECT to `name` leads: the namespace if it exists, a new child of the first
    /// dynamic parent whose name matcher accepts it (asked in order, up to the first async
    /// matcher), or the parents left to ask.
    pub(crate) fn lookup(self: &Arc<Self>, name: &str) -> Lookup {
        if let Some(ns) = self.namespace(name) {
            return Lookup::Found(ns);
        }
        let dynamic = match self.dynamic.read() {
            Ok(d) => d.clone(),
            Err(_) => return Lookup::Unknown,
        };
        for (i, (matcher, parent)) in dynamic.iter().enumerate() {
            match matcher {
                Matcher::Name(matches) => {
                    if matches(name) {
                        return Lookup::Found(self.child(name, parent));
                    }
                }
                Matcher::Connect(_) => return Lookup::Decide(dynamic[i..].to_vec()),
            }
        }
        Lookup::Unknown
    }

    /// Asks `parents` in order whether one accepts `name` (awaiting the async matchers): its
    /// new child (or the namespace if it was created meanwhile), or `None`.
    pub(crate) async fn decide(
        self: Arc<Self>,
        name: Str,
        auth: Value,
        handshake: Handshake,
        parents: Vec<(Matcher, Namespace)>,
    ) -> Option<Namespace> {
        for (matcher, parent) in parents {
            let accepted = match matcher {
                Matcher::Name(matches) => matches(&name),
                Matcher::Connect(matches) => {
                    use futures_util::FutureExt as _;
                    let asked = matches(name.to_string(), auth.clone(), handshake.clone());
                    // A panicking matcher refuses the name.
                    std::panic::AssertUnwindSafe(asked)
                        .catch_unwind()
                        .await
                        .unwrap_or_else(|_| {
                            tracing::error!(nsp = %name, "dynamic namespace matcher panicked");
                            false
                        })
                }
            };
            if accepted {
                return Some(self.child(&name, &parent));
            }
        }
        None
    }

    /// The namespace `name`, created as a child of `parent` if it does not exist.
    fn child(self: &Arc<Self>, name: &str, parent: &Namespace) -> Namespace {
        let mut map = self.namespaces.write().unwrap_or_else(|e| e.into_inner());
        if let Some(ns) = map.get(name) {
            return ns.clone();
        }
        let inner = self.new_namespace(Str::from(name));
        inner.inherit(&parent.inner);
        if self.cleanup_children {
            let shared = Arc::downgrade(self);
            let child = Arc::downgrade(&inner);
            inner.set_on_empty(Box::new(move || {
                if let (Some(shared), Some(child)) = (shared.upgrade(), child.upgrade()) {
                    shared.remove_if_empty(&child);
                }
            }));
        }
        let ns = Namespace { inner };
        map.insert(Str::from(name), ns.clone());
        drop(map);
        self.created(&ns);
        ns
    }

    /// Takes the child namespace `ns` out of the server if it has no socket left
    /// (`cleanupEmptyChildNamespaces`); its adapter goes with it. A CONNECT admitted into it
    /// meanwhile sees it removed and is decided again (`NsInner::is_removed`).
    fn remove_if_empty(&self, ns: &Arc<NsInner>) {
        let mut map = self.namespaces.write().unwrap_or_else(|e| e.into_inner());
        if !map.get(&ns.name).is_some_and(|n| Arc::ptr_eq(&n.inner, ns)) {
            return;
        }
        if !ns.mark_removed_if_empty() {
            return;
        }
        map.remove(&ns.name);
    }

    fn of(&self, name: &str) -> Namespace {
        let name = normalize_nsp(name);
        if let Some(ns) = self.namespace(&name) {
            return ns;
        }
        let mut map = self.namespaces.write().unwrap_or_else(|e| e.into_inner());
        if let Some(ns) = map.get(&name) {
            return ns.clone();
        }
        let ns = Namespace {
            inner: self.new_namespace(name.clone()),
        };
        map.insert(name, ns.clone());
        drop(map);
        self.created(&ns);
        ns
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
    pub(crate) endpoint: Arc<Endpoint<SocketApp>>,
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
            cleanup_empty_child_namespaces: false,
            app_state: http::Extensions::new(),
            parser: Parser::json(),
            #[cfg(feature = "serve-client")]
            serve_client: true,
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
    /// created with [`Ferrio::of`] take precedence. An event emitted on the parent (`emit`,
    /// `send`, and through `to`/`except`) goes to every child, as with Node's parent
    /// namespaces.
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
        self.push_parent(Matcher::Name(Arc::new(matches)))
    }

    /// A parent for dynamic namespaces decided with the whole CONNECT (Node's
    /// `io.of((name, auth, next) => ...)`): `matches` gets the namespace name, the CONNECT's
    /// auth payload (`null` when the client sent none) and the [`Handshake`] of the session
    /// (headers, query, address, the extensions of the request that opened it), and its future
    /// says whether the namespace is created. It runs in a task of its own, as connect
    /// middlewares do, so a slow matcher holds up only this CONNECT: the session's other
    /// namespaces go on meanwhile. A refused name gets the `Invalid namespace` CONNECT_ERROR;
    /// the next CONNECT to it asks again. Parents are asked in the order they were added
    /// (with [`Ferrio::of_dynamic`] too), and an existing namespace is joined without asking.
    /// The child gets the parent's middlewares and connection handlers as they are when it is
    /// created.
    ///
    /// ```
    /// # fn f(io: ferrio_server::Ferrio) {
    /// io.of_dynamic_with(|name, auth, handshake| async move {
    ///     let token = auth.get("token").and_then(|t| t.as_str()).map(str::to_owned);
    ///     let tenant = handshake.headers().get("x-tenant").cloned();
    ///     // An async check: a database, another service...
    ///     name.starts_with("/tenant-") && token.is_some() && tenant.is_some()
    /// })
    /// .on_connection(|socket| async move {
    ///     let _ = socket.emit("welcome", &(socket.nsp(),));
    /// });
    /// # }
    /// ```
    pub fn of_dynamic_with<F, Fut>(&self, matches: F) -> Namespace
    where
        F: Fn(String, Value, Handshake) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        let matcher = Matcher::Connect(Arc::new(move |name, auth, handshake| {
            Box::pin(matches(name, auth, handshake)) as BoxFuture<bool>
        }));
        self.push_parent(matcher)
    }

    /// Adds a parent for dynamic namespaces, asked after those already added.
    fn push_parent(&self, matcher: Matcher) -> Namespace {
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
                self.endpoint.app.shared.parser.clone(),
            )),
        };
        dynamic.push((matcher, parent.clone()));
        parent
    }

    /// Runs `handler` for every namespace created from now on (Node's
    /// `io.on("new_namespace", ...)`): by [`Ferrio::of`] and as a child of a dynamic parent
    /// (again after [`FerrioBuilder::cleanup_empty_child_namespaces`] removed it). It runs
    /// right after the namespace is created, on the task that created it (a session's, for a
    /// dynamic child: keep it short), before any socket joins it: a place to add middlewares
    /// and handlers.
    ///
    /// ```
    /// # fn f(io: ferrio_server::Ferrio) {
    /// io.on_new_namespace(|ns| {
    ///     tracing::info!(nsp = ns.name(), "namespace created");
    /// });
    /// # }
    /// ```
    pub fn on_new_namespace<F>(&self, handler: F) -> &Self
    where
        F: Fn(Namespace) + Send + Sync + 'static,
    {
        self.endpoint
            .app
            .shared
            .on_new_namespace
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(handler));
        self
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

    /// A broadcast to the main namespace with the `compress` flag set (`io.compress(false)`):
    /// see [`BroadcastOperator::compress`].
    pub fn compress(&self, compress: bool) -> BroadcastOperator {
        self.of("/").compress(compress)
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

    /// Emits a `message` event to every socket of the main namespace (`io.send(...args)`).
    pub fn send<T: Serialize + ?Sized>(&self, args: &T) -> Result<(), EmitError> {
        self.of("/").send(args)
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

    /// Sends a server-side event to the other servers' main namespace and gathers their
    /// answers ([`Namespace::server_side_emit_with_ack`](crate::Namespace::server_side_emit_with_ack)).
    pub fn server_side_emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> impl Future<Output = Result<Vec<serde_json::Value>, crate::ServerSideEmitError>> + Send + 'static
    {
        self.of("/").server_side_emit_with_ack(event, args)
    }

    /// Adds a handler for a server-side event sent to the main namespace by another server
    /// ([`Namespace::on_server_event`](crate::Namespace::on_server_event)).
    pub fn on_server_event<F, Fut>(&self, event: &str, handler: F) -> &Self
    where
        F: Fn(Vec<serde_json::Value>, crate::ServerAck) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.of("/").on_server_event(event, handler);
        self
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
        use futures_util::future::Either;
        #[cfg(feature = "serve-client")]
        if self.endpoint.app.shared.serve_client {
            if let Some(res) = crate::client_files::answer(&req, &self.endpoint.options.path) {
                return Either::Left(std::future::ready(res));
            }
        }
        if self.endpoint.app.shared.closed.load(Ordering::Acquire)
            && self.matches(req.uri().path())
            && is_handshake(req.uri().query())
        {
            return Either::Left(std::future::ready(shutting_down()));
        }
        Either::Right(self.endpoint.clone().handle(req))
    }

    /// True if `path` is under this endpoint's prefix (the `path` option).
    pub fn matches(&self, path: &str) -> bool {
        self.endpoint.matches(path)
    }

    /// The application state of type `T` given to [`FerrioBuilder::state`], if any.
    pub fn state<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.endpoint.app.shared.app_state.get::<Arc<T>>().cloned()
    }

    /// The namespaces of this server (Node's `io._nsps`), in no particular order.
    pub fn namespaces(&self) -> Vec<Namespace> {
        let map = self.endpoint.app.shared.namespaces.read();
        map.map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The number of open Engine.IO sessions.
    pub fn session_count(&self) -> usize {
        self.endpoint.session_count()
    }

    /// Enables the server-wide Engine.IO counters (the first call) and returns a handle on
    /// them: sessions opened and closed by reason, and the packets with data received and sent
    /// with their bytes (what the Admin UI shows as `rawConnection`, `rawDisconnection`,
    /// `packetsIn`, `packetsOut`, `bytesIn`, `bytesOut`). Only the sessions opened from then on
    /// are counted; until it is called, counting costs nothing.
    pub fn engine_stats(&self) -> crate::EngineStats {
        self.endpoint.stats.get_or_init(Default::default).clone()
    }

    /// Shuts the server down (`io.close()`) and returns once every session has ended.
    ///
    /// From the call on, a handshake (a request under the path without a `sid`, polling or
    /// WebSocket) is answered `503 Service Unavailable` with `Connection: close` and the body
    /// `{"code":3,"message":"Server shutting down"}`: Node closes its HTTP server instead,
    /// which a service inside a larger HTTP stack cannot do; 503 is what a load balancer takes
    /// as "try another node", and socket.io clients retry it as a failed connection. Every
    /// socket leaves with `server shutting down` (its `disconnecting` and `disconnect`
    /// handlers see it; connection state recovery keeps its session) and every Engine.IO
    /// connection is closed without a DISCONNECT, so clients see their transport close and
    /// reconnect (to another node, or to this one once it serves again: there is no reopening;
    /// build a new server). Stopping the listener is up to the caller: see
    /// [`Ferrio::serve_with_shutdown`], or under axum:
    ///
    /// ```no_run
    /// # async fn run(io: ferrio_server::Ferrio) -> std::io::Result<()> {
    /// use ferrio_server::FerrioLayer;
    ///
    /// let app = axum::Router::new().layer(FerrioLayer::new(io.clone()));
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    /// axum::serve(listener, app)
    ///     .with_graceful_shutdown(async move {
    ///         let _ = tokio::signal::ctrl_c().await;
    ///         // Ends the Socket.IO sessions, whose long polls and WebSockets would
    ///         // otherwise keep axum waiting.
    ///         io.close().await;
    ///     })
    ///     .await
    /// # }
    /// ```
    pub async fn close(&self) {
        self.endpoint
            .app
            .shared
            .closed
            .store(true, Ordering::Release);
        // A handshake that passed the check just before the flag was set may still open a
        // session: close again until none is left.
        loop {
            self.endpoint.close_all().await;
            if self.endpoint.session_count() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Serves HTTP/1.1 connections from `listener` (other paths get 404), until the process
    /// ends (a failed accept is logged and retried).
    ///
    /// The connections are Ferrio's own, not hyper's: keep-alive, pipelining, chunked request
    /// bodies, `Expect: 100-continue` and WebSocket upgrades as hyper serves them, and a read
    /// buffer only while a request is being read, so that an idle connection, a waiting long
    /// poll included, holds none. A request head may be `max_http_header_size` long (431
    /// beyond) and must arrive within 30 s.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        let limit = self.endpoint.options.max_http_header_size;
        crate::serve::serve_own(
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
            crate::serve::serve_own(listener, move |req| io.handle(req), shutdown, limit).await;
        self.close().await;
        served
    }
}

/// True if the query of a request has no `sid`: it opens a session.
fn is_handshake(query: Option<&str>) -> bool {
    !form_urlencoded::parse(query.unwrap_or("").as_bytes()).any(|(k, _)| k == "sid")
}

/// The answer to a handshake once [`Ferrio::close`] was called.
fn shutting_down() -> Response<Body> {
    let mut res = Response::new(Body::new(bytes::Bytes::from_static(
        br#"{"code":3,"message":"Server shutting down"}"#,
    )));
    *res.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
    let headers = res.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    res
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
    cleanup_empty_child_namespaces: bool,
    app_state: http::Extensions,
    parser: Parser,
    #[cfg(feature = "serve-client")]
    serve_client: bool,
}

impl std::fmt::Debug for dyn Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Adapter")
    }
}

impl FerrioBuilder {
    /// Serves the browser client under the server's path (Node's `serveClient`; on by default
    /// with the `serve-client` feature, which embeds it): `socket.io-client`'s
    /// `socket.io.js`, `socket.io.min.js`, `socket.io.esm.min.js` and
    /// `socket.io.msgpack.min.js`, so that a page can load
    /// `<script src="/socket.io/socket.io.js">`. With an ETag (the client's version, 304 when
    /// it matches), `Cache-Control: public, max-age=0` and gzip; no source maps.
    #[cfg(feature = "serve-client")]
    pub fn serve_client(mut self, serve: bool) -> Self {
        self.serve_client = serve;
        self
    }

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
    /// [`AckError::Emit`](crate::AckError::Emit)`(`[`EmitError::TooManyPendingAcks`]`)`
    /// and the event is not sent (nor is a broadcast with ack to that socket); the connection
    /// stays up.
    pub fn max_pending_acks(mut self, n: usize) -> Self {
        self.max_pending_acks = n;
        self
    }

    /// The parser of every packet (default [`Parser::json`], the reference's default parser).
    /// `Parser::msgpack()` speaks the npm package `socket.io-msgpack-parser` 3.x: each packet is
    /// one binary message, binary values inline. As in Node there is no negotiation: clients
    /// must use the same parser; a client sending another parser's packets is closed at its first
    /// packet. [`Parser::custom`] plugs in an application's own.
    ///
    /// ```
    /// use ferrio_server::{Ferrio, Parser};
    /// let io = Ferrio::builder().parser(Parser::msgpack()).build();
    /// # let _ = io;
    /// ```
    pub fn parser(mut self, parser: Parser) -> Self {
        self.parser = parser;
        self
    }

    /// Turns connection state recovery on (`connectionStateRecovery`): a client that lost its
    /// connection gets its socket id, rooms and missed events back if it reconnects within
    /// `max_disconnection_duration`.
    ///
    /// Where it can reconnect depends on the adapter. By default (and with the pub/sub Redis
    /// adapters) the events and sessions are kept in this server's memory: the client recovers
    /// only on this server, with its typed data ([`Socket::insert_data`](crate::Socket::insert_data))
    /// too. With an adapter that keeps them for the cluster ([`crate::NamespaceAdapter::recovery`],
    /// such as the Redis streams adapter) it recovers on any server of the cluster, with its
    /// id, rooms, shared data ([`Socket::set_shared_data`](crate::Socket::set_shared_data)) and
    /// missed events, but not its typed data (it is not serialisable); as in the reference, a
    /// client that received no event yet has no offset and starts anew. The sessions of
    /// connected sockets are also saved with the cluster every half window, so that a server
    /// that dies without saving them does not lose them: their clients recover on another
    /// server with the rooms and data of the last save.
    pub fn connection_state_recovery(mut self, config: RecoveryConfig) -> Self {
        self.recovery = Some(config);
        self
    }

    /// Removes a child namespace of a dynamic parent ([`Ferrio::of_dynamic`],
    /// [`Ferrio::of_dynamic_with`]) once its last socket has left (`cleanupEmptyChildNamespaces`,
    /// default false as in Node): its rooms, its recovery store and its cluster adapter go with
    /// it (the adapter is dropped). A later CONNECT to the name asks the parents again and
    /// creates it anew (the `new_namespace` handlers run again). A [`Namespace`] handle kept by
    /// the application still works but reaches no new socket. Namespaces made with
    /// [`Ferrio::of`] are never removed.
    pub fn cleanup_empty_child_namespaces(mut self, cleanup: bool) -> Self {
        self.cleanup_empty_child_namespaces = cleanup;
        self
    }

    /// Adds a value of application state (a database pool, a configuration, a client of
    /// another service...) that every handler reaches with [`Socket::state`],
    /// [`Namespace::state`] or [`Ferrio::state`]: no global and no clone captured by each
    /// closure (axum's `with_state`, socketioxide's `State`). One value per type: a second
    /// value of the same type replaces the first. The value is shared (an `Arc`), never copied.
    ///
    /// ```
    /// use ferrio_server::{Ferrio, Socket};
    /// use std::sync::atomic::{AtomicU64, Ordering};
    ///
    /// struct Visits(AtomicU64);
    ///
    /// let io = Ferrio::builder().state(Visits(AtomicU64::new(0))).build();
    /// io.of("/").on_connection(|socket: Socket| async move {
    ///     if let Some(visits) = socket.state::<Visits>() {
    ///         let n = visits.0.fetch_add(1, Ordering::Relaxed) + 1;
    ///         let _ = socket.emit("visits", &(n,));
    ///     }
    /// });
    /// assert!(io.state::<Visits>().is_some());
    /// ```
    pub fn state<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.app_state.insert(Arc::new(value));
        self
    }

    /// Builds the server, with its main namespace `/`.
    pub fn build(self) -> Ferrio {
        let clock = Clock::new();
        let shared = Arc::new(Shared {
            namespaces: RwLock::new(HashMap::new()),
            dynamic: RwLock::new(Vec::new()),
            on_new_namespace: RwLock::new(Vec::new()),
            cleanup_children: self.cleanup_empty_child_namespaces,
            #[cfg(feature = "serve-client")]
            serve_client: self.serve_client,
            closed: AtomicBool::new(false),
            recovery: self.recovery.clone(),
            clock,
            adapter: self.adapter.clone(),
            app_state: Arc::new(self.app_state.clone()),
            parser: self.parser.clone(),
        });
        shared.of("/");
        let app = SocketApp {
            shared,
            engine_config: self.engine.session_config(),
            config: Config {
                connect_timeout: self.connect_timeout,
                max_attachments: self.max_attachments,
                max_pending_acks: self.max_pending_acks,
                parser: self.parser.clone(),
            },
        };
        Ferrio {
            endpoint: Arc::new(Endpoint::new(app, self.engine, clock)),
        }
    }
}
