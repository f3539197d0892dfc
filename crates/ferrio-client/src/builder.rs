//! [`io`] and the builders: [`ClientBuilder`] (connection and socket options) and
//! [`SocketBuilder`] (one namespace of a [`Manager`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use ferrio_proto::engine::client::Transport;
use ferrio_proto::socket::client::{Auth, ManagerConfig, SocketOptions};
use ferrio_proto::socket::Parser;
use ferrio_proto::Str;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::error::Error;
use crate::manager::{Command, Manager, ManagerEvent, ManagerShared};
use crate::socket::{self, AuthFn, EventHandler, Socket, SocketShared};
use crate::transport::{default_tls, Endpoint, HttpOptions};

/// Starts building a client for `url` (`io(url)`): `http(s)://host[:port][/namespace][?query]`
/// (`ws(s)://` is accepted too). The namespace is the URL's path (`/` if none); the URL's query
/// is sent with every request.
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// let socket = ferrio_client::io("http://localhost:3000/chat")
///     .auth(serde_json::json!({ "token": "abc" }))
///     .reconnection_delay(Duration::from_millis(500))
///     .ack_timeout(Duration::from_secs(5))
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
pub fn io(url: &str) -> ClientBuilder {
    ClientBuilder::new(url)
}

type ManagerListener = Arc<dyn Fn(&ManagerEvent) + Send + Sync>;
type SocketSetup = Box<dyn FnOnce(&Socket) + Send>;

/// A parsed URL: TLS or not, `host:port`, the namespace, the query.
struct Target {
    secure: bool,
    authority: String,
    nsp: String,
    query: Vec<(String, String)>,
}

/// Options of a connection and of its first socket (see [`io`]).
pub struct ClientBuilder {
    url: String,
    path: String,
    query: Option<Vec<(String, String)>>,
    headers: Vec<(String, String)>,
    tls: Option<Arc<rustls::ClientConfig>>,
    config: ManagerConfig,
    add_trailing_slash: bool,
    force_new: bool,
    multiplex: bool,
    http: HttpOptions,
    manager_handlers: Vec<ManagerListener>,
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
        let existing = manager
            .inner
            .sockets
            .lock()
            .ok()
            .and_then(|s| s.get(&nsp).cloned());
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
                let shared = Arc::new(SocketShared::new(
                    Str::from(nsp.as_str()),
                    options,
                    self.auth_fn,
                ));
                if let Ok(mut s) = manager.inner.sockets.lock() {
                    s.insert(nsp.clone(), shared.clone());
                }
                shared
            }
        };
        let socket = Socket {
            shared: shared.clone(),
            manager: manager.clone(),
        };
        for h in self.handlers {
            h(&socket);
        }
        shared.state.send_modify(|s| {
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
            F: Fn() -> Fut + Send + Sync + 'static,
            Fut: Future<Output = Option<serde_json::Value>> + Send + 'static,
        {
            self.settings().auth_fn = Some(Arc::new(move || Box::pin(f())));
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
        /// no event sent right after the connection is missed. Its id is not returned:
        /// [`Socket::off`] removes it, or register it in [`with_socket`](Self::with_socket) with
        /// [`Socket::on`] to keep the id.
        pub fn on<H, M>(mut self, event: &str, handler: H) -> Self
        where
            H: EventHandler<M>,
        {
            let event = event.to_owned();
            let handler = socket::erase(handler);
            self.settings().handlers.push(Box::new(move |s: &Socket| {
                socket::register(&s.shared, &event, |_| handler);
            }));
            self
        }

        /// Runs `f` on the socket before it connects, to register any handler
        /// ([`Socket::on_connect`], [`Socket::on_disconnect`], [`Socket::on_any`], ...).
        pub fn with_socket(mut self, f: impl FnOnce(&Socket) + Send + 'static) -> Self {
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
            query: None,
            headers: Vec::new(),
            tls: None,
            config: ManagerConfig::default(),
            add_trailing_slash: true,
            force_new: false,
            multiplex: true,
            http: HttpOptions::default(),
            manager_handlers: Vec::new(),
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

    /// Whether to add a trailing slash to the path (`addTrailingSlash`, true).
    pub fn add_trailing_slash(mut self, add: bool) -> Self {
        self.add_trailing_slash = add;
        self
    }

    /// Adds a query parameter sent with every request (`query`; replaces the URL's query).
    pub fn query(mut self, key: &str, value: &str) -> Self {
        self.query
            .get_or_insert_with(Vec::new)
            .push((key.to_owned(), value.to_owned()));
        self
    }

    /// Adds a header sent with every HTTP request and the WebSocket handshake
    /// (`extraHeaders`).
    pub fn extra_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The transports, in order: the first opens the connection, the others are upgrades
    /// (`transports`, `[Polling, WebSocket]`).
    pub fn transports(mut self, transports: &[Transport]) -> Self {
        self.config.engine.transports = transports.to_vec();
        self
    }

    /// Whether to upgrade to WebSocket when the server offers it (`upgrade`, true).
    pub fn upgrade(mut self, upgrade: bool) -> Self {
        self.config.engine.upgrade = upgrade;
        self
    }

    /// Open directly with WebSocket when the previous connection of this Manager ended up on
    /// WebSocket (`rememberUpgrade`, false).
    pub fn remember_upgrade(mut self, yes: bool) -> Self {
        self.config.engine.remember_upgrade = yes;
        self
    }

    /// If the first transport fails to open, try the next ones before giving up
    /// (`tryAllTransports`, false).
    pub fn try_all_transports(mut self, yes: bool) -> Self {
        self.config.engine.try_all_transports = yes;
        self
    }

    /// Ask for binary as base64 text and send binary WebSocket messages as text
    /// (`forceBase64`, false).
    pub fn force_base64(mut self, yes: bool) -> Self {
        self.config.engine.force_base64 = yes;
        self
    }

    /// Keep the cookies the server sets (such as the session cookie a load balancer sticks to)
    /// and send them back on every request and WebSocket handshake (`withCredentials`, false).
    pub fn with_credentials(mut self, yes: bool) -> Self {
        self.http.with_credentials = yes;
        self
    }

    /// A bound on each long-polling request (`requestTimeout`, none): past it the request
    /// fails as a transport error.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.http.request_timeout = Some(timeout);
        self
    }

    /// Cache-busting stamps (`timestampRequests`): by default polling requests carry one and
    /// WebSocket handshakes do not; `true` stamps both, `false` neither.
    pub fn timestamp_requests(mut self, yes: bool) -> Self {
        self.config.engine.timestamp_requests = Some(yes);
        self
    }

    /// The stamp's query parameter (`timestampParam`, `t`).
    pub fn timestamp_param(mut self, name: &str) -> Self {
        self.config.engine.timestamp_param = name.to_owned();
        self
    }

    /// WebSocket subprotocols to ask for (`protocols`, none).
    pub fn protocols(mut self, protocols: &[&str]) -> Self {
        self.http.protocols = protocols.iter().map(|p| (*p).to_owned()).collect();
        self
    }

    /// Offer WebSocket compression (`permessage-deflate`, RFC 7692) to the server (default
    /// false; `perMessageDeflate`). Messages the server sends compressed are inflated (up to
    /// 64 MiB each), and the client asks the server to compress each message on its own, so
    /// that no inflate context is kept between messages (a server that refuses that may still
    /// compress with its context, which is then kept). When the server accepts, the client
    /// compresses the messages it sends from the threshold on
    /// ([`ClientBuilder::per_message_deflate_threshold`]) unless emitted with
    /// `compress(false)`, as the server's answer allows (`client_no_context_takeover`,
    /// `client_max_window_bits`).
    pub fn per_message_deflate(mut self, yes: bool) -> Self {
        self.http.per_message_deflate = yes;
        self
    }

    /// With [`ClientBuilder::per_message_deflate`], messages shorter than this many bytes are
    /// sent uncompressed (default 1024, as Node's `ws`).
    pub fn per_message_deflate_threshold(mut self, bytes: usize) -> Self {
        self.http.deflate_threshold = Some(bytes);
        self
    }

    /// Whether to reconnect after the connection is lost (`reconnection`, true).
    pub fn reconnection(mut self, reconnection: bool) -> Self {
        self.config.reconnection = reconnection;
        self
    }

    /// Attempts before giving up (`reconnectionAttempts`, unlimited).
    pub fn reconnection_attempts(mut self, attempts: u32) -> Self {
        self.config.reconnection_attempts = Some(attempts);
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

    /// TLS settings for `https`/`wss` (default: rustls with the Mozilla root certificates).
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Always create a new connection (`forceNew`, false).
    pub fn force_new(mut self, force_new: bool) -> Self {
        self.force_new = force_new;
        self
    }

    /// Share the connection with other sockets to the same server and path (`multiplex`,
    /// true).
    pub fn multiplex(mut self, multiplex: bool) -> Self {
        self.multiplex = multiplex;
        self
    }

    /// Adds a listener of the connection's events before it opens (see
    /// [`Manager::on_event`]). Applies only if a new connection is made.
    pub fn on_manager_event(
        mut self,
        listener: impl Fn(&ManagerEvent) + Send + Sync + 'static,
    ) -> Self {
        self.manager_handlers.push(Arc::new(listener));
        self
    }

    /// The seed of the reconnection jitter (random by default).
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }

    /// Most acknowledgements a socket waits for at once (default 4096; `socket.io-client` has
    /// no bound). At the bound a new emit asking for one fails at once with
    /// [`AckError::Emit`](crate::AckError::Emit)`(`[`EmitError::Client`](crate::EmitError::Client)`(`[`ClientError::TooManyPendingAcks`](crate::ClientError::TooManyPendingAcks)`))`
    /// and is not sent; an answer, a timeout or a disconnection makes room again.
    pub fn max_pending_acks(mut self, n: usize) -> Self {
        self.config.max_pending_acks = n;
        self
    }

    /// The parser of every packet (`parser`, default [`Parser::json`]): `Parser::msgpack()`
    /// speaks the npm package `socket.io-msgpack-parser` 3.x, as a Node server created with
    /// `parser: require("socket.io-msgpack-parser")` does. The server must use the same one.
    /// A connection is shared ([`ClientBuilder::multiplex`]) only between sockets asking for
    /// the same parser.
    ///
    /// ```
    /// use ferrio_client::{io, Parser};
    /// let builder = io("http://localhost:3000").parser(Parser::msgpack());
    /// # let _ = builder;
    /// ```
    pub fn parser(mut self, parser: Parser) -> Self {
        self.config.parser = parser;
        self
    }

    /// Splits the URL: (secure, authority, namespace, query).
    fn parse_url(&self) -> Result<Target, Error> {
        let uri: http::Uri = self
            .url
            .parse()
            .map_err(|e| Error::InvalidUrl(format!("{}: {e}", self.url)))?;
        let secure = match uri.scheme_str() {
            Some("http" | "ws") => false,
            Some("https" | "wss") => true,
            _ => {
                return Err(Error::InvalidUrl(format!(
                    "{}: no http(s) scheme",
                    self.url
                )))
            }
        };
        let authority = uri
            .authority()
            .ok_or_else(|| Error::InvalidUrl(format!("{}: no host", self.url)))?;
        let port = authority
            .port_u16()
            .unwrap_or(if secure { 443 } else { 80 });
        let authority = format!("{}:{port}", authority.host());
        let nsp = match uri.path() {
            "" => "/".to_owned(),
            p => p.to_owned(),
        };
        let query = uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        Ok(Target {
            secure,
            authority,
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
        authority: String,
        url_query: Vec<(String, String)>,
    ) -> Result<Manager, Error> {
        let mut headers = HeaderMap::new();
        for (k, v) in &self.headers {
            let name = HeaderName::try_from(k.as_str())
                .map_err(|e| Error::InvalidHeader(format!("{k}: {e}")))?;
            let value = HeaderValue::try_from(v.as_str())
                .map_err(|e| Error::InvalidHeader(format!("{k}: {e}")))?;
            headers.append(name, value);
        }
        let tls = match &self.tls {
            Some(t) => t.clone(),
            None => default_tls().map_err(|e| Error::Tls(e.to_string()))?,
        };
        let endpoint = Endpoint::new(
            secure,
            authority,
            self.engine_path(),
            headers,
            tls,
            self.http.clone(),
        );
        let mut config = self.config.clone();
        config.engine.query = self.query.clone().unwrap_or(url_query);
        // The cache busters' prefix: unlike another process's, so that no cache in between
        // answers a request with another's response.
        config.engine.stamp_seed = getrandom::u64().unwrap_or(0x5eed);
        if config.seed == 0 {
            config.seed = getrandom::u64().unwrap_or(0x5eed);
        }
        Manager::spawn(config, endpoint, std::mem::take(&mut self.manager_handlers))
    }

    /// Builds a new connection (never shared, whatever `force_new`/`multiplex` say); open
    /// sockets on it with [`Manager::socket`]. Needs a running tokio runtime.
    pub fn manager(mut self) -> Result<Manager, Error> {
        let t = self.parse_url()?;
        self.new_manager(t.secure, t.authority, t.query)
    }

    /// Creates the socket and starts connecting, without waiting (`io(url)`); handlers
    /// registered on the builder are in place before anything arrives. Needs a running tokio
    /// runtime.
    pub fn open(mut self) -> Result<Socket, Error> {
        let Target {
            secure,
            authority,
            nsp,
            query,
        } = self.parse_url()?;
        let key = format!(
            "{}://{authority}{}",
            if secure { "https" } else { "http" },
            self.engine_path()
        );
        let shareable = !self.force_new && self.multiplex;
        let cached = if shareable {
            cache()
                .lock()
                .ok()
                .and_then(|c| c.get(&key).and_then(Weak::upgrade))
                .map(|inner| Manager { inner })
                .filter(|m| !m.has_socket(&nsp) && m.parser() == &self.config.parser)
        } else {
            None
        };
        let manager = match cached {
            Some(m) => m,
            None => {
                let m = self.new_manager(secure, authority, query)?;
                if shareable {
                    if let Ok(mut c) = cache().lock() {
                        c.retain(|_, w| w.strong_count() > 0);
                        c.insert(key, Arc::downgrade(&m.inner));
                    }
                }
                m
            }
        };
        std::mem::take(&mut self.socket).build(manager, &nsp)
    }

    /// Creates the socket and waits until it is connected. Fails at the first `connect_error`:
    /// the server's refusal (message and data), or a connection that could not be made (the
    /// socket is then disconnected: no retries go on in the background). To wait through the
    /// reconnection attempts instead, use [`ClientBuilder::open`] and
    /// [`Socket::wait_connected`].
    pub async fn connect(self) -> Result<Socket, Error> {
        connect(self.open()?).await
    }
}

fn cache() -> &'static Mutex<HashMap<String, Weak<ManagerShared>>> {
    static CACHE: std::sync::OnceLock<Mutex<HashMap<String, Weak<ManagerShared>>>> =
        std::sync::OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parts() {
        let t = io("http://example.com/chat?room=a%20b&x=1")
            .parse_url()
            .unwrap();
        assert!(!t.secure);
        assert_eq!(t.authority, "example.com:80");
        assert_eq!(t.nsp, "/chat");
        assert_eq!(
            t.query,
            [
                ("room".to_owned(), "a b".to_owned()),
                ("x".to_owned(), "1".to_owned())
            ]
        );
        let t = io("wss://h:8443").parse_url().unwrap();
        assert!(t.secure);
        assert_eq!((t.authority.as_str(), t.nsp.as_str()), ("h:8443", "/"));
        assert!(matches!(
            io("localhost:3000").parse_url(),
            Err(Error::InvalidUrl(_))
        ));
        assert!(matches!(
            io("ftp://h/").parse_url(),
            Err(Error::InvalidUrl(_))
        ));
    }

    #[test]
    fn engine_path_gets_its_slashes() {
        assert_eq!(io("http://h").engine_path(), "/socket.io/");
        assert_eq!(io("http://h").path("/x/").engine_path(), "/x/");
        assert_eq!(io("http://h").path("y").engine_path(), "/y/");
        assert_eq!(
            io("http://h")
                .path("/y")
                .add_trailing_slash(false)
                .engine_path(),
            "/y"
        );
    }

    #[test]
    fn no_runtime_is_an_error() {
        assert!(matches!(io("http://h").manager(), Err(Error::NoRuntime)));
        assert!(matches!(io("http://h").open(), Err(Error::NoRuntime)));
    }

    #[test]
    fn bad_header_is_an_error() {
        let r = io("http://h").extra_header("bad header", "v").manager();
        assert!(matches!(r, Err(Error::InvalidHeader(_))));
    }
}
