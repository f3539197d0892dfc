//! [`io`] and the builders: [`ClientBuilder`] (connection and socket options) and
//! [`SocketBuilder`] (one namespace of a [`Manager`]).

use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use ferrio_proto::engine::client::Transport;
use ferrio_proto::socket::client::{Auth, ManagerConfig, SocketOptions};
use ferrio_proto::socket::Parser;
use ferrio_proto::Str;

use crate::driver::{
    Command, Endpoint, EngineEvent, EngineHandler, Manager, ManagerEvent, PacketHandler,
};
use crate::error::Error;
use crate::socket::{self, AuthFn, EventHandler, Socket, SocketShared};
use ferrio_proto::socket::Packet;

/// Starts building a client for `url` (`io(url)`): `http(s)://host[:port][/namespace][?query]`
/// (`ws(s)://` is accepted too), or a URL relative to the page (`/chat`: the page's server,
/// namespace `/chat`). The namespace is the URL's path (`/` if none); the URL's query is sent
/// with every request.
pub fn io(url: &str) -> ClientBuilder {
    ClientBuilder::new(url)
}

type ManagerListener = Rc<dyn Fn(&ManagerEvent)>;

/// Options of one transport, over the [`ClientBuilder`]'s own
/// ([`ClientBuilder::transport_options`], engine.io-client's `transportOptions[name]`). An
/// option set here replaces the builder's for that transport (headers too: the list, not
/// header by header).
#[derive(Debug, Clone, Default)]
pub struct TransportOptions {
    extra_headers: Option<Vec<(String, String)>>,
    request_timeout: Option<Duration>,
    protocols: Option<Vec<String>>,
}

impl TransportOptions {
    /// No options: the builder's apply.
    pub fn new() -> TransportOptions {
        TransportOptions::default()
    }

    /// Adds a header to this transport's HTTP requests (`extraHeaders`; long-polling only: a
    /// browser's WebSocket cannot send headers).
    pub fn extra_header(mut self, name: &str, value: &str) -> Self {
        self.extra_headers
            .get_or_insert_with(Vec::new)
            .push((name.to_owned(), value.to_owned()));
        self
    }

    /// A bound on each of this transport's requests (`requestTimeout`; long-polling only).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// WebSocket subprotocols (`protocols`; WebSocket only).
    pub fn protocols(mut self, protocols: &[&str]) -> Self {
        self.protocols = Some(protocols.iter().map(|p| (*p).to_owned()).collect());
        self
    }
}
type SocketSetup = Box<dyn FnOnce(&Socket)>;

/// A parsed URL: TLS or not, `host[:port]`, the namespace, the query.
struct Target {
    secure: bool,
    host: String,
    nsp: String,
    query: Vec<(String, String)>,
}

/// Options of a connection and of its first socket (see [`io`]).
pub struct ClientBuilder {
    url: String,
    path: String,
    add_trailing_slash: bool,
    query: Option<Vec<(String, String)>>,
    protocols: Vec<String>,
    request_timeout: Option<Duration>,
    extra_headers: Vec<(String, String)>,
    polling_options: TransportOptions,
    websocket_options: TransportOptions,
    close_on_beforeunload: bool,
    config: ManagerConfig,
    manager_handlers: Vec<ManagerListener>,
    packet_handlers: Vec<PacketHandler>,
    engine_handlers: Vec<EngineHandler>,
    socket: SocketSettings,
}

/// Socket options and handlers gathered before the socket exists.
#[derive(Default)]
pub(crate) struct SocketSettings {
    auth: Option<serde_json::Value>,
    auth_fn: Option<AuthFn>,
    ack_timeout: Option<Duration>,
    retries: u32,
    handlers: Vec<SocketSetup>,
}

impl SocketSettings {
    fn build(self, manager: Manager, nsp: &str) -> Result<Socket, Error> {
        let nsp = if nsp.starts_with('/') {
            nsp.to_owned()
        } else {
            format!("/{nsp}")
        };
        let existing = manager.inner.sockets.borrow().get(&nsp).cloned();
        let shared = match existing {
            Some(shared) => shared,
            None => {
                let auth = if self.auth_fn.is_some() {
                    Auth::Callback
                } else {
                    Auth::Static(socket::auth_json(self.auth.as_ref()))
                };
                let options = SocketOptions {
                    auth,
                    retries: self.retries,
                    ack_timeout: self.ack_timeout,
                };
                let shared = Rc::new(SocketShared::new(
                    Str::from(nsp.as_str()),
                    options,
                    self.auth_fn,
                ));
                manager
                    .inner
                    .sockets
                    .borrow_mut()
                    .insert(nsp.clone(), shared.clone());
                shared
            }
        };
        let socket = socket::handle(shared.clone(), manager.clone());
        for h in self.handlers {
            h(&socket);
        }
        shared.modify(|s| {
            s.failure = None;
            s.last_error = None;
            s.active = true;
        });
        manager
            .command(Command::Connect { shared })
            .map_err(|_| Error::Closed)?;
        Ok(socket)
    }
}

macro_rules! socket_options {
    () => {
        /// The CONNECT payload (`auth`), a JSON object, sent on every connection.
        pub fn auth(mut self, auth: serde_json::Value) -> Self {
            self.settings().auth = Some(auth);
            self
        }

        /// An async function giving the CONNECT payload, called before every connection
        /// (`auth: (cb) => ...`); `None` sends none.
        pub fn auth_fn<F, Fut>(mut self, f: F) -> Self
        where
            F: Fn() -> Fut + 'static,
            Fut: Future<Output = Option<serde_json::Value>> + 'static,
        {
            self.settings().auth_fn = Some(Rc::new(move || Box::pin(f())));
            self
        }

        /// The default timeout of this socket's acknowledgements (`ackTimeout`).
        pub fn ack_timeout(mut self, timeout: Duration) -> Self {
            self.settings().ack_timeout = Some(timeout);
            self
        }

        /// Reliable delivery: every emit is retried up to `retries` times until acknowledged
        /// (`retries`; set an `ack_timeout` too).
        pub fn retries(mut self, retries: u32) -> Self {
            self.settings().retries = retries;
            self
        }

        /// Adds an event handler before the socket connects (see [`Socket::on`]), so that
        /// no event sent right after the connection is missed.
        pub fn on<H, M>(mut self, event: &str, handler: H) -> Self
        where
            H: EventHandler<M>,
        {
            let event = event.to_owned();
            self.settings().handlers.push(Box::new(move |s: &Socket| {
                s.on(&event, handler);
            }));
            self
        }

        /// Runs `f` with the socket before it connects: to add `connect`, `disconnect` and
        /// other handlers with [`Socket`]'s own methods.
        pub fn with_socket(mut self, f: impl FnOnce(&Socket) + 'static) -> Self {
            self.settings().handlers.push(Box::new(f));
            self
        }
    };
}

impl ClientBuilder {
    fn new(url: &str) -> ClientBuilder {
        ClientBuilder {
            url: url.to_owned(),
            path: "/socket.io".to_owned(),
            add_trailing_slash: true,
            query: None,
            protocols: Vec::new(),
            request_timeout: None,
            extra_headers: Vec::new(),
            polling_options: TransportOptions::default(),
            websocket_options: TransportOptions::default(),
            close_on_beforeunload: false,
            config: ManagerConfig::default(),
            manager_handlers: Vec::new(),
            packet_handlers: Vec::new(),
            engine_handlers: Vec::new(),
            socket: SocketSettings::default(),
        }
    }

    fn settings(&mut self) -> &mut SocketSettings {
        &mut self.socket
    }

    socket_options!();

    /// The Engine.IO path (`path`, `/socket.io`).
    pub fn path(mut self, path: &str) -> Self {
        self.path = path.to_owned();
        self
    }

    /// Whether the path ends with a slash (`addTrailingSlash`, true).
    pub fn add_trailing_slash(mut self, add: bool) -> Self {
        self.add_trailing_slash = add;
        self
    }

    /// Adds a query parameter to every request (`query`); replaces the URL's query.
    pub fn query(mut self, key: &str, value: &str) -> Self {
        self.query
            .get_or_insert_with(Vec::new)
            .push((key.to_owned(), value.to_owned()));
        self
    }

    /// The transports, in order (`transports`, polling then WebSocket).
    pub fn transports(mut self, transports: &[Transport]) -> Self {
        self.config.engine.transports = transports.to_vec();
        self
    }

    /// Whether to upgrade to the transports the server offers (`upgrade`, true).
    pub fn upgrade(mut self, upgrade: bool) -> Self {
        self.config.engine.upgrade = upgrade;
        self
    }

    /// Open with WebSocket directly after a connection that upgraded (`rememberUpgrade`).
    pub fn remember_upgrade(mut self, yes: bool) -> Self {
        self.config.engine.remember_upgrade = yes;
        self
    }

    /// Try the next transport when the first fails to open (`tryAllTransports`).
    pub fn try_all_transports(mut self, yes: bool) -> Self {
        self.config.engine.try_all_transports = yes;
        self
    }

    /// Binary as base64 text (`forceBase64`).
    pub fn force_base64(mut self, yes: bool) -> Self {
        self.config.engine.force_base64 = yes;
        self
    }

    /// Adds a header to every long-polling request (`extraHeaders`). A browser's WebSocket
    /// cannot send headers: over WebSocket only the browser's own go (cookies included). A
    /// name or value that is not valid HTTP makes [`ClientBuilder::connect`] fail with
    /// [`Error::InvalidHeader`]; a header the browser forbids on requests (`Cookie`, `Host`,
    /// `Origin`, ...) is dropped by it; a header other than the CORS-safelisted ones makes a
    /// cross-origin request preflighted (the server's CORS settings must allow it).
    pub fn extra_header(mut self, name: &str, value: &str) -> Self {
        self.extra_headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Options of one transport over the others (`transportOptions`): extra headers and
    /// the request timeout of [`Transport::Polling`], the subprotocols of
    /// [`Transport::WebSocket`]. Set again for the same transport, replaces the options.
    pub fn transport_options(mut self, transport: Transport, options: TransportOptions) -> Self {
        match transport {
            Transport::Polling => self.polling_options = options,
            Transport::WebSocket => self.websocket_options = options,
        }
        self
    }

    /// Close the connection when the page is about to unload (`closeOnBeforeunload`, false):
    /// on the window's `beforeunload` event the transports are closed at once and silently
    /// (the sockets get no `disconnect`), so that the server sees `transport close` without
    /// waiting for a ping timeout. The listener is removed when the manager is closed or
    /// dropped. (If the page stays, the connection comes back by the heartbeat's timeout and
    /// a reconnection, as with socket.io-client.)
    pub fn close_on_beforeunload(mut self, yes: bool) -> Self {
        self.close_on_beforeunload = yes;
        self
    }

    /// A bound on each polling request (`requestTimeout`, none).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Stamp every request, WebSocket ones too (`timestampRequests`).
    pub fn timestamp_requests(mut self, yes: bool) -> Self {
        self.config.engine.timestamp_requests = Some(yes);
        self
    }

    /// The cache-busting parameter's name (`timestampParam`, `t`).
    pub fn timestamp_param(mut self, name: &str) -> Self {
        self.config.engine.timestamp_param = name.to_owned();
        self
    }

    /// WebSocket subprotocols (`protocols`).
    pub fn protocols(mut self, protocols: &[&str]) -> Self {
        self.protocols = protocols.iter().map(|p| (*p).to_owned()).collect();
        self
    }

    /// Reconnect after a lost connection (`reconnection`, true).
    pub fn reconnection(mut self, reconnection: bool) -> Self {
        self.config.reconnection = reconnection;
        self
    }

    /// Most reconnection attempts (`reconnectionAttempts`, unlimited; 0: unlimited).
    pub fn reconnection_attempts(mut self, attempts: u32) -> Self {
        self.config.reconnection_attempts = (attempts > 0).then_some(attempts);
        self
    }

    /// The first delay between attempts (`reconnectionDelay`, 1 s).
    pub fn reconnection_delay(mut self, delay: Duration) -> Self {
        self.config.reconnection_delay = delay;
        self
    }

    /// The largest delay between attempts (`reconnectionDelayMax`, 5 s).
    pub fn reconnection_delay_max(mut self, delay: Duration) -> Self {
        self.config.reconnection_delay_max = delay;
        self
    }

    /// The jitter of the delays (`randomizationFactor`, 0.5).
    pub fn randomization_factor(mut self, factor: f64) -> Self {
        self.config.randomization_factor = factor;
        self
    }

    /// The time the connection has to open (`timeout`, 20 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = Some(timeout);
        self
    }

    /// Adds a listener of the connection's events (see [`Manager::on_event`]), in place before
    /// the connection opens.
    pub fn on_manager_event(mut self, listener: impl Fn(&ManagerEvent) + 'static) -> Self {
        self.manager_handlers.push(Rc::new(listener));
        self
    }

    /// Adds a listener of every packet the server sends, whatever its namespace and type,
    /// before it takes effect (the manager's `packet` event; see [`Manager::on_packet`]).
    pub fn on_packet(mut self, listener: impl Fn(&Packet) + 'static) -> Self {
        self.packet_handlers.push(Rc::new(listener));
        self
    }

    /// Adds a listener of the Engine.IO connection's events (`io.engine.on(...)`; see
    /// [`Engine::on_event`](crate::Engine::on_event)), in place before the connection opens.
    pub fn on_engine_event(mut self, listener: impl Fn(&EngineEvent) + 'static) -> Self {
        self.engine_handlers.push(Rc::new(listener));
        self
    }

    /// The seed of the reconnection jitter (random by default).
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }

    /// Most acknowledgements waited for at once per socket; past it `emit_with_ack` fails.
    pub fn max_pending_acks(mut self, n: usize) -> Self {
        self.config.max_pending_acks = n;
        self
    }

    /// The parser of every packet (the default JSON one: `ferrio-proto` is built here without
    /// the other parsers).
    pub fn parser(mut self, parser: Parser) -> Self {
        self.config.parser = parser;
        self
    }

    /// Splits the URL (resolved against the page's): (secure, host, namespace, query).
    fn parse_url(&self) -> Result<Target, Error> {
        let invalid = |why: &str| Error::InvalidUrl(format!("{}: {why}", self.url));
        let base = web_sys::window()
            .and_then(|w| w.location().href().ok())
            .unwrap_or_default();
        let url = if base.is_empty() {
            web_sys::Url::new(&self.url)
        } else {
            web_sys::Url::new_with_base(&self.url, &base)
        }
        .map_err(|_| invalid("not a URL"))?;
        let secure = match url.protocol().as_str() {
            "http:" | "ws:" => false,
            "https:" | "wss:" => true,
            _ => return Err(invalid("no http(s) scheme")),
        };
        let host = url.host();
        if host.is_empty() {
            return Err(invalid("no host"));
        }
        let nsp = match url.pathname().as_str() {
            "" => "/".to_owned(),
            p => p.to_owned(),
        };
        let mut query = Vec::new();
        let search = url.search();
        for pair in search.trim_start_matches('?').split('&') {
            if pair.is_empty() {
                continue;
            }
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                js_sys::decode_uri_component(&s.replace('+', " "))
                    .map(String::from)
                    .unwrap_or_else(|_| s.to_owned())
            };
            query.push((decode(k), decode(v)));
        }
        Ok(Target {
            secure,
            host,
            nsp,
            query,
        })
    }

    fn engine_path(&self) -> String {
        let mut path = self.path.trim_end_matches('/').to_owned();
        if !path.starts_with('/') {
            path.insert(0, '/');
        }
        if self.add_trailing_slash {
            path.push('/');
        }
        path
    }

    fn new_manager(
        &mut self,
        secure: bool,
        host: String,
        url_query: Vec<(String, String)>,
    ) -> Result<Manager, Error> {
        let polling = std::mem::take(&mut self.polling_options);
        let websocket = std::mem::take(&mut self.websocket_options);
        let headers = polling
            .extra_headers
            .unwrap_or_else(|| std::mem::take(&mut self.extra_headers));
        // Refused by the browser now rather than as a failed request later.
        if !headers.is_empty() {
            let check = web_sys::Headers::new()
                .map_err(|_| Error::InvalidHeader("no Headers in this browser".to_owned()))?;
            for (name, value) in &headers {
                check
                    .set(name, value)
                    .map_err(|_| Error::InvalidHeader(format!("{name}: {value}")))?;
            }
        }
        let endpoint = Endpoint {
            secure,
            host,
            path: self.engine_path(),
            protocols: websocket
                .protocols
                .unwrap_or_else(|| std::mem::take(&mut self.protocols)),
            request_timeout: polling.request_timeout.or(self.request_timeout),
            headers,
            close_on_beforeunload: self.close_on_beforeunload,
        };
        let mut config = self.config.clone();
        config.engine.query = self.query.clone().unwrap_or(url_query);
        let random = || (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64 | 1;
        config.engine.stamp_seed = random();
        if config.seed == 0 {
            config.seed = random();
        }
        Ok(Manager::new(
            config,
            endpoint,
            std::mem::take(&mut self.manager_handlers),
            std::mem::take(&mut self.packet_handlers),
            std::mem::take(&mut self.engine_handlers),
        ))
    }

    /// Builds a new connection; open sockets on it with [`Manager::socket`].
    pub fn manager(mut self) -> Result<Manager, Error> {
        let t = self.parse_url()?;
        self.new_manager(t.secure, t.host, t.query)
    }

    /// Creates the socket and starts connecting, without waiting (`io(url)`); handlers
    /// registered on the builder are in place before anything arrives.
    pub fn open(mut self) -> Result<Socket, Error> {
        let t = self.parse_url()?;
        let manager = self.new_manager(t.secure, t.host, t.query)?;
        std::mem::take(&mut self.socket).build(manager, &t.nsp)
    }

    /// Creates the socket and waits until it is connected. Fails at the first `connect_error`
    /// (the socket is then disconnected); to wait through the reconnection attempts instead,
    /// use [`ClientBuilder::open`] and [`Socket::wait_connected`].
    pub async fn connect(self) -> Result<Socket, Error> {
        connect(self.open()?).await
    }
}

/// Options of one socket of a [`Manager`] (see [`Manager::socket`]).
pub struct SocketBuilder {
    manager: Manager,
    nsp: String,
    socket: SocketSettings,
}

impl SocketBuilder {
    pub(crate) fn new(manager: Manager, nsp: &str) -> SocketBuilder {
        SocketBuilder {
            manager,
            nsp: nsp.to_owned(),
            socket: SocketSettings::default(),
        }
    }

    fn settings(&mut self) -> &mut SocketSettings {
        &mut self.socket
    }

    socket_options!();

    /// Creates the socket and starts connecting, without waiting. If the namespace already has
    /// a socket on this manager, that one is returned (its options unchanged).
    pub fn open(self) -> Result<Socket, Error> {
        self.socket.build(self.manager, &self.nsp)
    }

    /// Creates the socket and waits until it is connected (see [`ClientBuilder::connect`]).
    pub async fn connect(self) -> Result<Socket, Error> {
        connect(self.open()?).await
    }
}

async fn connect(socket: Socket) -> Result<Socket, Error> {
    match socket.wait(true).await {
        Ok(()) => Ok(socket),
        Err(e) => {
            socket.disconnect();
            Err(Error::Connect(e))
        }
    }
}
