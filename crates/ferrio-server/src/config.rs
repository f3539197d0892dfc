//! Options of the Engine.IO layer, shared by [`crate::Ferrio`] and [`crate::engine::Engine`].

use std::time::Duration;

use ferrio_proto::engine::server as eio;

pub use ferrio_proto::engine::server::Transport;

/// Cross-origin resource sharing for the HTTP long-polling requests (the reference's `cors`
/// option). Off unless configured: no `Access-Control-*` header is written and preflight
/// (`OPTIONS`) requests are not answered as such, so that a CORS layer of the surrounding
/// application (tower-http's `CorsLayer` in an axum app) is the only one to write them.
///
/// ```
/// use ferrio_server::{Cors, Ferrio};
/// use std::time::Duration;
///
/// let io = Ferrio::builder()
///     .cors(
///         Cors::origins(["https://app.example.com"])
///             .credentials(true)
///             .exposed_headers(["x-request-id"])
///             .max_age(Duration::from_secs(600)),
///     )
///     .build();
/// # drop(io);
/// ```
#[derive(Clone)]
pub struct Cors {
    // Shared: every allowed request's answer keeps a handle on it.
    inner: std::sync::Arc<CorsConfig>,
}

#[derive(Clone)]
struct CorsConfig {
    origins: AllowOrigin,
    credentials: bool,
    methods: Option<String>,
    allowed_headers: Option<String>,
    exposed_headers: Option<String>,
    max_age: Option<Duration>,
}

/// Which origins a [`Cors`] allows.
#[derive(Clone)]
enum AllowOrigin {
    Any,
    List(Vec<String>),
    Predicate(std::sync::Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl Cors {
    fn config(&mut self) -> &mut CorsConfig {
        std::sync::Arc::make_mut(&mut self.inner)
    }
}

impl std::fmt::Debug for Cors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let origins: &dyn std::fmt::Debug = match &self.inner.origins {
            AllowOrigin::Any => &"*",
            AllowOrigin::List(list) => list,
            AllowOrigin::Predicate(_) => &"<predicate>",
        };
        f.debug_struct("Cors")
            .field("origins", origins)
            .field("credentials", &self.inner.credentials)
            .field("methods", &self.inner.methods)
            .field("allowed_headers", &self.inner.allowed_headers)
            .field("exposed_headers", &self.inner.exposed_headers)
            .field("max_age", &self.inner.max_age)
            .finish()
    }
}

/// Joins header values with `,`.
fn join<I, S>(items: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    items
        .into_iter()
        .map(|s| s.as_ref().trim().to_owned())
        .collect::<Vec<_>>()
        .join(",")
}

impl Cors {
    fn with_origins(origins: AllowOrigin) -> Cors {
        Cors {
            inner: std::sync::Arc::new(CorsConfig {
                origins,
                credentials: false,
                methods: None,
                allowed_headers: None,
                exposed_headers: None,
                max_age: None,
            }),
        }
    }

    /// Allows every origin: `Access-Control-Allow-Origin: *`; with
    /// [`Cors::credentials`], the request's `Origin` echoed instead (with `Vary: Origin`), since
    /// browsers refuse `*` on a request with credentials.
    pub fn any() -> Cors {
        Cors::with_origins(AllowOrigin::Any)
    }

    /// Allows these origins only (compared byte for byte with the `Origin` header, e.g.
    /// `https://example.com:8443`): a request whose `Origin` is one of them gets it echoed back
    /// in `Access-Control-Allow-Origin`; others get no `Access-Control-*` header (they are still
    /// answered: browsers enforce CORS, the server does not). Every answer carries
    /// `Vary: Origin`.
    pub fn origins<I, S>(origins: I) -> Cors
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cors::with_origins(AllowOrigin::List(
            origins.into_iter().map(Into::into).collect(),
        ))
    }

    /// Allows the origins for which `allow` returns true, as [`Cors::origins`] does for a list.
    pub fn origin_predicate<F>(allow: F) -> Cors
    where
        F: Fn(&str) -> bool + Send + Sync + 'static,
    {
        Cors::with_origins(AllowOrigin::Predicate(std::sync::Arc::new(allow)))
    }

    /// Lets browsers send credentials (cookies, HTTP authentication) on cross-origin requests:
    /// `Access-Control-Allow-Credentials: true` on allowed requests (default false). The
    /// allowed origin is then always the request's own, never `*`.
    pub fn credentials(mut self, yes: bool) -> Cors {
        self.config().credentials = yes;
        self
    }

    /// The methods a preflight answer allows (`Access-Control-Allow-Methods`; default
    /// `GET,HEAD,PUT,PATCH,POST,DELETE`, as the reference).
    pub fn methods<I, S>(mut self, methods: I) -> Cors
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.config().methods = Some(join(methods));
        self
    }

    /// The request headers a preflight answer allows (`Access-Control-Allow-Headers`); by
    /// default those the preflight asked for (`Access-Control-Request-Headers`) are allowed.
    pub fn allowed_headers<I, S>(mut self, headers: I) -> Cors
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.config().allowed_headers = Some(join(headers));
        self
    }

    /// The response headers a page may read (`Access-Control-Expose-Headers`; default none).
    pub fn exposed_headers<I, S>(mut self, headers: I) -> Cors
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.config().exposed_headers = Some(join(headers));
        self
    }

    /// How long a browser may cache a preflight answer (`Access-Control-Max-Age`, in whole
    /// seconds; default: not sent).
    pub fn max_age(mut self, max_age: Duration) -> Cors {
        self.config().max_age = Some(max_age);
        self
    }

    /// The `Access-Control-Allow-Origin` value for a request with this `Origin`, if any.
    pub(crate) fn allow_origin(&self, origin: Option<&str>) -> Option<String> {
        let allowed = match &self.inner.origins {
            AllowOrigin::Any if !self.inner.credentials => return Some("*".to_owned()),
            AllowOrigin::Any => true,
            AllowOrigin::List(list) => origin.is_some_and(|o| list.iter().any(|l| l == o)),
            AllowOrigin::Predicate(allow) => origin.is_some_and(|o| allow(o)),
        };
        origin.filter(|_| allowed).map(str::to_owned)
    }

    /// True if the answers depend on the request's `Origin` (`Vary: Origin`).
    pub(crate) fn varies(&self) -> bool {
        !matches!(self.inner.origins, AllowOrigin::Any) || self.inner.credentials
    }

    pub(crate) fn allows_credentials(&self) -> bool {
        self.inner.credentials
    }

    pub(crate) fn methods_value(&self) -> &str {
        self.inner
            .methods
            .as_deref()
            .unwrap_or("GET,HEAD,PUT,PATCH,POST,DELETE")
    }

    pub(crate) fn allowed_headers_value(&self) -> Option<&str> {
        self.inner.allowed_headers.as_deref()
    }

    pub(crate) fn exposed_headers_value(&self) -> Option<&str> {
        self.inner.exposed_headers.as_deref()
    }

    pub(crate) fn max_age_value(&self) -> Option<Duration> {
        self.inner.max_age
    }
}

/// The session cookie written on the handshake response (the reference's `cookie` option, off by
/// default): `io=<sid>; Path=/; HttpOnly; SameSite=Lax` with the defaults, for sticky sessions
/// behind a load balancer. Attributes are written in the order of the reference's cookie
/// serializer: `Max-Age`, `Domain`, `Path`, `Expires`, `HttpOnly`, `Partitioned`, `SameSite`,
/// `Secure`.
///
/// ```
/// use ferrio_server::{Cookie, Ferrio};
/// use std::time::Duration;
///
/// let io = Ferrio::builder()
///     .cookie(Cookie {
///         max_age: Some(Duration::from_secs(86_400)),
///         secure: true,
///         same_site: Some("None".into()),
///         partitioned: true,
///         ..Cookie::default()
///     })
///     .build();
/// # drop(io);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    /// The cookie name (default `io`).
    pub name: String,
    /// `Path` (default `/`; `None` leaves it out, and `HttpOnly` with it, as the reference).
    pub path: Option<String>,
    /// `HttpOnly` (default true).
    pub http_only: bool,
    /// `SameSite` (default `Lax`).
    pub same_site: Option<String>,
    /// `Max-Age` in whole seconds, with the matching `Expires` date (default none: a session
    /// cookie).
    pub max_age: Option<Duration>,
    /// `Domain` (default none: the host of the request only).
    pub domain: Option<String>,
    /// `Secure`: sent over HTTPS only (default false).
    pub secure: bool,
    /// `Partitioned` (CHIPS: a third-party cookie kept per top-level site; browsers want
    /// `Secure` with it; default false).
    pub partitioned: bool,
}

impl Default for Cookie {
    fn default() -> Self {
        Cookie {
            name: "io".to_owned(),
            path: Some("/".to_owned()),
            http_only: true,
            same_site: Some("Lax".to_owned()),
            max_age: None,
            domain: None,
            secure: false,
            partitioned: false,
        }
    }
}

impl Cookie {
    /// The `Set-Cookie` value for session `sid`, written at `now_ms` (milliseconds since the
    /// Unix epoch, for `Expires`).
    pub(crate) fn header(&self, sid: &str, now_ms: u64) -> String {
        let mut v = format!("{}={sid}", self.name);
        if let Some(max_age) = self.max_age {
            v.push_str(&format!("; Max-Age={}", max_age.as_secs()));
        }
        if let Some(domain) = &self.domain {
            v.push_str("; Domain=");
            v.push_str(domain);
        }
        if let Some(path) = &self.path {
            v.push_str("; Path=");
            v.push_str(path);
        }
        if let Some(max_age) = self.max_age {
            let expires = now_ms / 1000 + max_age.as_secs();
            v.push_str("; Expires=");
            v.push_str(&http_date(expires));
        }
        if self.path.is_some() && self.http_only {
            v.push_str("; HttpOnly");
        }
        if self.partitioned {
            v.push_str("; Partitioned");
        }
        if let Some(same_site) = &self.same_site {
            v.push_str("; SameSite=");
            v.push_str(same_site);
        }
        if self.secure {
            v.push_str("; Secure");
        }
        v
    }
}

/// `secs` (since the Unix epoch) as an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn http_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Finds the client's address in a request's extensions, besides [`crate::RemoteAddr`].
pub(crate) type AddressOf =
    std::sync::Arc<dyn Fn(&http::Extensions) -> Option<std::net::SocketAddr> + Send + Sync>;

/// Decides whether a handshake request may open a session (`allowRequest`); the error string
/// is sent back with 403.
pub(crate) type AllowRequest =
    std::sync::Arc<dyn Fn(http::Request<()>) -> crate::BoxFuture<Result<(), String>> + Send + Sync>;

/// Adds headers to Engine.IO responses (`initial_headers`, `headers`).
pub(crate) type HeadersHook =
    std::sync::Arc<dyn Fn(&mut http::HeaderMap, &crate::engine::EngineRequest<'_>) + Send + Sync>;

/// Hears every request the engine refuses (`connection_error`).
pub(crate) type ConnectionErrorHook =
    std::sync::Arc<dyn Fn(&crate::engine::ConnectionError<'_>) + Send + Sync>;

/// Makes the id of a new Engine.IO session (`generateId`).
pub(crate) type IdGenerator =
    std::sync::Arc<dyn Fn(&crate::engine::EngineRequest<'_>) -> String + Send + Sync>;

/// The longest session id an [`IdGenerator`] may make (longer ones refuse the handshake).
pub(crate) const MAX_GENERATED_ID_LEN: usize = 256;

/// The Engine.IO options, with the reference's defaults.
#[derive(Clone)]
pub(crate) struct EngineOptions {
    pub(crate) path: String,
    pub(crate) ping_interval: Duration,
    pub(crate) ping_timeout: Duration,
    pub(crate) upgrade_timeout: Duration,
    pub(crate) max_http_buffer_size: usize,
    pub(crate) polling: bool,
    pub(crate) websocket: bool,
    pub(crate) allow_upgrades: bool,
    pub(crate) cors: Option<Cors>,
    pub(crate) allow_request: Option<AllowRequest>,
    pub(crate) yield_after_flush: bool,
    /// Compress polling responses of at least this many bytes (`httpCompression`).
    pub(crate) http_compression: Option<usize>,
    pub(crate) cookie: Option<Cookie>,
    pub(crate) allow_eio3: bool,
    /// Where the client's address is, when not in a [`crate::RemoteAddr`].
    pub(crate) address_of: Option<AddressOf>,
    /// Longest request head accepted (see the builder's `max_http_header_size`).
    pub(crate) max_http_header_size: usize,
    /// Time a POST body may go without delivering a byte (see `body_read_timeout`).
    pub(crate) body_read_timeout: Duration,
    /// Headers added to the handshake's answer (`initial_headers`).
    pub(crate) initial_headers: Option<HeadersHook>,
    /// Headers added to every answer (`headers`).
    pub(crate) headers: Option<HeadersHook>,
    /// Told of every refused request (`connection_error`).
    pub(crate) on_connection_error: Option<ConnectionErrorHook>,
    /// Makes session ids (`generateId`); random ones without it.
    pub(crate) id_generator: Option<IdGenerator>,
    /// WebSocket compression (`perMessageDeflate`); off without it.
    pub(crate) per_message_deflate: Option<crate::PerMessageDeflate>,
}

/// The default of `max_http_header_size`: 16 KiB, Node's `--max-http-header-size`.
pub(crate) const DEFAULT_MAX_HTTP_HEADER_SIZE: usize = 16 * 1024;

/// The default of `body_read_timeout`.
pub(crate) const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

impl std::fmt::Debug for EngineOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineOptions")
            .field("path", &self.path)
            .field("ping_interval", &self.ping_interval)
            .field("ping_timeout", &self.ping_timeout)
            .field("upgrade_timeout", &self.upgrade_timeout)
            .field("max_http_buffer_size", &self.max_http_buffer_size)
            .field("polling", &self.polling)
            .field("websocket", &self.websocket)
            .field("allow_upgrades", &self.allow_upgrades)
            .field("cors", &self.cors)
            .field("allow_request", &self.allow_request.is_some())
            .field("yield_after_flush", &self.yield_after_flush)
            .field("http_compression", &self.http_compression)
            .field("cookie", &self.cookie)
            .field("allow_eio3", &self.allow_eio3)
            .field("address_of", &self.address_of.is_some())
            .field("max_http_header_size", &self.max_http_header_size)
            .field("body_read_timeout", &self.body_read_timeout)
            .field("initial_headers", &self.initial_headers.is_some())
            .field("headers", &self.headers.is_some())
            .field("on_connection_error", &self.on_connection_error.is_some())
            .field("id_generator", &self.id_generator.is_some())
            .field("per_message_deflate", &self.per_message_deflate)
            .finish()
    }
}

impl EngineOptions {
    pub(crate) fn new(path: &str) -> EngineOptions {
        EngineOptions {
            path: normalize_path(path),
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            upgrade_timeout: Duration::from_millis(10_000),
            max_http_buffer_size: 1_000_000,
            polling: true,
            websocket: true,
            allow_upgrades: true,
            cors: None,
            allow_request: None,
            yield_after_flush: false,
            http_compression: Some(1024),
            cookie: None,
            allow_eio3: false,
            address_of: None,
            max_http_header_size: DEFAULT_MAX_HTTP_HEADER_SIZE,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            initial_headers: None,
            headers: None,
            on_connection_error: None,
            id_generator: None,
            per_message_deflate: None,
        }
    }

    pub(crate) fn set_transports(&mut self, transports: &[Transport]) {
        self.polling = transports.contains(&Transport::Polling);
        self.websocket = transports.contains(&Transport::WebSocket);
    }

    /// The configuration of each Engine.IO session machine.
    pub(crate) fn session_config(&self) -> eio::Config {
        let defaults = eio::Config::default();
        eio::Config {
            ping_interval: self.ping_interval,
            ping_timeout: self.ping_timeout,
            upgrade_timeout: self.upgrade_timeout,
            max_payload: self.max_http_buffer_size,
            allow_upgrades: self.allow_upgrades,
            websocket_enabled: self.websocket,
            max_buffered_bytes: self.max_buffered_bytes(),
            ..defaults
        }
    }

    /// Bytes a session may have queued for a client before it is closed (polling buffer or
    /// WebSocket write queue): 10 × `max_http_buffer_size`.
    pub(crate) fn max_buffered_bytes(&self) -> usize {
        self.max_http_buffer_size.saturating_mul(10)
    }
}

/// `socket.io` → `/socket.io/`: a leading slash and a trailing one (the reference's
/// `addTrailingSlash`).
fn normalize_path(path: &str) -> String {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        "/".to_owned()
    } else {
        format!("/{trimmed}/")
    }
}

/// Shared builder methods for the Engine.IO options.
macro_rules! engine_options {
    () => {
        /// The path prefix requests are served under (default `/socket.io/` for Socket.IO,
        /// `/engine.io/` for a bare Engine.IO server). A trailing slash is added.
        pub fn path(mut self, path: &str) -> Self {
            self.engine.path = crate::config::EngineOptions::new(path).path;
            self
        }

        /// Time between server pings (`pingInterval`, default 25 s).
        pub fn ping_interval(mut self, d: std::time::Duration) -> Self {
            self.engine.ping_interval = d;
            self
        }

        /// Time the client has to answer a ping (`pingTimeout`, default 20 s).
        pub fn ping_timeout(mut self, d: std::time::Duration) -> Self {
            self.engine.ping_timeout = d;
            self
        }

        /// Time a client has to complete an upgrade to WebSocket (`upgradeTimeout`, default 10 s).
        pub fn upgrade_timeout(mut self, d: std::time::Duration) -> Self {
            self.engine.upgrade_timeout = d;
            self
        }

        /// Largest POST body or WebSocket message accepted, advertised as `maxPayload`
        /// (`maxHttpBufferSize`, default 1 000 000 bytes). Larger POSTs get 413; larger
        /// WebSocket messages close the session (close code 1009).
        pub fn max_http_buffer_size(mut self, bytes: usize) -> Self {
            self.engine.max_http_buffer_size = bytes;
            self
        }

        /// The transports accepted (default both, polling and WebSocket).
        pub fn transports(mut self, transports: &[crate::Transport]) -> Self {
            self.engine.set_transports(transports);
            self
        }

        /// Largest request head accepted, in bytes (Node's `--max-http-header-size`, default
        /// 16 KiB), counted as Node counts it: the request target (path and query) and every
        /// header's name and value. A request under the server's path with more is answered
        /// `431 Request Header Fields Too Large` with `Connection: close`, before anything else
        /// is looked at, whatever serves it (the server's own `serve`, or another stack through
        /// the `tower` service): a session keeps its handshake's headers for its whole life,
        /// so this also bounds what each session holds for them.
        ///
        /// The server's own `serve` (and [`crate::serve`](fn@crate::serve)), and `serve_tls`
        /// (the `tls` feature), also stop reading a request head this long plus 512 bytes (the
        /// separators of up to 100 header lines, hyper's limit) and answer 431 themselves, so
        /// that a client cannot make a connection buffer more;
        /// [`crate::serve`](fn@crate::serve) used directly with a handler of its own applies the default,
        /// 16 KiB. Another stack applies its own bound while it reads the head (hyper's
        /// default is about 400 KB), then this one.
        pub fn max_http_header_size(mut self, bytes: usize) -> Self {
            self.engine.max_http_header_size = bytes;
            self
        }

        /// Time a long-polling POST may go without receiving any byte of its body (default
        /// 30 s, as long as `serve` gives a client to send its headers). Past it the POST is
        /// answered `408 Request Timeout` with `Connection: close` (the connection is closed
        /// and what was read of the body freed), and the session closes (`transport error`),
        /// as when the client aborts a POST. A body that keeps trickling in is bounded by the
        /// heartbeat instead: the client's pong waits behind it, so its session closes at most
        /// `ping_interval` + `ping_timeout` after the previous pong, and a POST whose session
        /// ended is answered `400` (`Session ID unknown`) with `Connection: close` at once.
        /// Slow links are not cut by it: only a link that delivers nothing for this long is.
        pub fn body_read_timeout(mut self, d: std::time::Duration) -> Self {
            self.engine.body_read_timeout = d;
            self
        }

        /// Whether polling sessions may upgrade to WebSocket (`allowUpgrades`, default true).
        pub fn allow_upgrades(mut self, yes: bool) -> Self {
            self.engine.allow_upgrades = yes;
            self
        }

        /// CORS for the long-polling requests (default: none; see [`crate::Cors`]). In a tower
        /// application that already has a CORS layer in front of this server, leave this
        /// unset: the server then writes no `Access-Control-*` header of its own.
        pub fn cors(mut self, cors: crate::Cors) -> Self {
            self.engine.cors = Some(cors);
            self
        }

        /// Compresses long-polling responses (gzip or deflate, as the request's
        /// `Accept-Encoding` allows) of at least `threshold` bytes (`httpCompression`, default
        /// on with a 1024-byte threshold); `None` turns it off.
        pub fn http_compression(mut self, threshold: Option<usize>) -> Self {
            self.engine.http_compression = threshold;
            self
        }

        /// Accepts Engine.IO 3 clients (`socket.io-client` 2.x) besides version 4 (`allowEIO3`,
        /// default false): their payloads, heartbeat (client pings) and the Socket.IO v4 forms
        /// of CONNECT are handled by the core. JSONP polling is not supported.
        pub fn allow_eio3(mut self, yes: bool) -> Self {
            self.engine.allow_eio3 = yes;
            self
        }

        /// Writes a session cookie on the handshake response (`cookie`, default off), e.g.
        /// `.cookie(Cookie::default())` for `io=<sid>; Path=/; HttpOnly; SameSite=Lax`; see
        /// [`crate::Cookie`] for `Max-Age`, `Domain`, `Secure` and `Partitioned`.
        pub fn cookie(mut self, cookie: crate::Cookie) -> Self {
            self.engine.cookie = Some(cookie);
            self
        }

        /// Where to find the client's address in the extensions of the request that opened a
        /// session, for [`Handshake::address`](crate::Handshake::address) and
        /// `EngineSocket::address`, when the server that accepted the connection did not put a
        /// [`crate::RemoteAddr`] there ([`crate::serve`](fn@crate::serve) and this server's own `serve` do).
        /// Under axum's `serve`, with
        /// `into_make_service_with_connect_info::<SocketAddr>()`:
        ///
        /// ```
        /// use axum::extract::ConnectInfo;
        /// use std::net::SocketAddr;
        ///
        /// let io = ferrio_server::Ferrio::builder()
        ///     .remote_address(|ext| ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0))
        ///     .build();
        /// # drop(io);
        /// ```
        pub fn remote_address<F>(mut self, address_of: F) -> Self
        where
            F: Fn(&http::Extensions) -> Option<std::net::SocketAddr> + Send + Sync + 'static,
        {
            self.engine.address_of = Some(std::sync::Arc::new(address_of));
            self
        }

        /// Compresses WebSocket messages with `permessage-deflate` (RFC 7692) for clients that
        /// offer it (`perMessageDeflate`; off by default, as in Node's engine.io). Messages
        /// below the settings' threshold (1024 bytes by default) are sent uncompressed; the
        /// client's compressed messages are accepted, and the `max_http_buffer_size` limit
        /// applies to their inflated size. A packet emitted with `compress(false)` goes
        /// uncompressed whatever its size. See [`PerMessageDeflate`](crate::PerMessageDeflate)
        /// for the parameters and the memory each connection holds.
        pub fn per_message_deflate(mut self, settings: crate::PerMessageDeflate) -> Self {
            self.engine.per_message_deflate = Some(settings);
            self
        }

        /// After each write to a WebSocket, yields the OS thread (default false), so that a peer
        /// on the same machine that the write woke up can read it before the next write, as
        /// happens between a write and its callback in Node's event loop. It costs a system
        /// call per write; it is meant for test servers whose clients read one message at a
        /// time, on a busy machine. For the same reason a session opened over WebSocket waits
        /// 1 ms after its `101 Switching Protocols` before its `open` packet, so that a client
        /// reads the two apart (the `ws` client drops a message that arrives with its `101`
        /// before a listener added after `open` can see it).
        pub fn yield_after_flush(mut self, yes: bool) -> Self {
            self.engine.yield_after_flush = yes;
            self
        }

        /// Decides whether a handshake request (polling or WebSocket, without a session id)
        /// may open a session (`allowRequest`). It gets the request without its body (its
        /// extensions included, as [`Handshake::extensions`](crate::Handshake::extensions)
        /// keeps them); an
        /// `Err(message)` is answered with 403 `{"code":4,"message":...}`.
        pub fn allow_request<F, Fut>(mut self, allow: F) -> Self
        where
            F: Fn(http::Request<()>) -> Fut + Send + Sync + 'static,
            Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
        {
            self.engine.allow_request = Some(std::sync::Arc::new(move |req| Box::pin(allow(req))));
            self
        }

        /// Adds headers to the answer that opens a session (Node's
        /// `engine.on("initial_headers", (headers, req) => ...)`): the handshake's polling
        /// answer, or the `101 Switching Protocols` of a session opened over WebSocket. The
        /// hook gets the headers to add (empty at first; what it inserts replaces the server's
        /// own header of that name) and the request
        /// ([`EngineRequest`](crate::engine::EngineRequest)). It runs before the
        /// [`headers`](Self::headers) hook, which sees what it added.
        ///
        /// ```
        /// use http::HeaderValue;
        ///
        /// let io = ferrio_server::Ferrio::builder()
        ///     .initial_headers(|headers, _req| {
        ///         headers.insert("x-session-opened", HeaderValue::from_static("1"));
        ///     })
        ///     .build();
        /// # drop(io);
        /// ```
        pub fn initial_headers<F>(mut self, hook: F) -> Self
        where
            F: Fn(&mut http::HeaderMap, &crate::engine::EngineRequest<'_>) + Send + Sync + 'static,
        {
            self.engine.initial_headers = Some(std::sync::Arc::new(hook));
            self
        }

        /// Adds headers to every answer of the Engine.IO endpoint (Node's
        /// `engine.on("headers", (headers, req) => ...)`): polls, POSTs, handshakes, WebSocket
        /// `101`s, CORS preflights, and the error answers too (unlike Node, where refusals
        /// carry only their own headers); not the `431` of an oversized request head, nor the
        /// `404` of a path outside the endpoint. The hook runs once per request, when it is
        /// routed; what it inserts replaces the server's own header of that name.
        pub fn headers<F>(mut self, hook: F) -> Self
        where
            F: Fn(&mut http::HeaderMap, &crate::engine::EngineRequest<'_>) + Send + Sync + 'static,
        {
            self.engine.headers = Some(std::sync::Arc::new(hook));
            self
        }

        /// Hears every request the engine refuses (Node's
        /// `engine.on("connection_error", err => ...)`), with the code, the message and the
        /// request ([`ConnectionError`](crate::engine::ConnectionError)): an unknown or
        /// disabled transport (0), an unknown session id (1), a handshake that is not a GET
        /// (2), a malformed request (3: a bad WebSocket handshake, a transport that does not
        /// match the session's, a refused generated id), [`allow_request`](Self::allow_request)
        /// saying no (4, with its message), an unsupported `EIO` version (5). Requests of
        /// an open session that its transport refuses (an overlapping poll, a too large POST)
        /// are not reported here. The hook runs on the request's task: keep it short.
        pub fn on_connection_error<F>(mut self, hook: F) -> Self
        where
            F: Fn(&crate::engine::ConnectionError<'_>) + Send + Sync + 'static,
        {
            self.engine.on_connection_error = Some(std::sync::Arc::new(hook));
            self
        }

        /// Makes the id of each new Engine.IO session from its handshake request (Node's
        /// `generateId`) instead of 20 random URL-safe characters. The ids must be unique
        /// among open sessions and unguessable (a session id is the only credential of a
        /// polling request), non-empty, at most 256 bytes, of URL-safe characters only
        /// (`A-Z a-z 0-9 - _ . ~`). An id that breaks these rules, or that an open session
        /// already has, is not used: the handshake is refused with 400
        /// (`{"code":3,"message":"Bad request"}`; a session opening over WebSocket has its
        /// connection closed when the duplicate is found only after the `101`) and reported to
        /// [`on_connection_error`](Self::on_connection_error).
        pub fn id_generator<F>(mut self, generate: F) -> Self
        where
            F: Fn(&crate::engine::EngineRequest<'_>) -> String + Send + Sync + 'static,
        {
            self.engine.id_generator = Some(std::sync::Arc::new(generate));
            self
        }
    };
}

pub(crate) use engine_options;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_get_slashes() {
        assert_eq!(normalize_path("socket.io"), "/socket.io/");
        assert_eq!(normalize_path("/socket.io/"), "/socket.io/");
        assert_eq!(normalize_path("/"), "/");
    }

    #[test]
    fn cors_origins() {
        assert_eq!(Cors::any().allow_origin(None).as_deref(), Some("*"));
        let c = Cors::origins(["http://a"]);
        assert_eq!(
            c.allow_origin(Some("http://a")).as_deref(),
            Some("http://a")
        );
        assert_eq!(c.allow_origin(Some("http://b")), None);
        assert_eq!(c.allow_origin(None), None);
        // Never `*` with credentials.
        let any = Cors::any().credentials(true);
        assert_eq!(
            any.allow_origin(Some("http://x")).as_deref(),
            Some("http://x")
        );
        assert_eq!(any.allow_origin(None), None);
        let p = Cors::origin_predicate(|o| o.ends_with(".example.com"));
        assert_eq!(
            p.allow_origin(Some("https://a.example.com")).as_deref(),
            Some("https://a.example.com")
        );
        assert_eq!(p.allow_origin(Some("https://example.org")), None);
    }

    #[test]
    fn cookie_attributes() {
        let c = Cookie {
            max_age: Some(Duration::from_secs(3600)),
            domain: Some("example.com".into()),
            secure: true,
            partitioned: true,
            same_site: Some("None".into()),
            ..Cookie::default()
        };
        // 1994-11-06T08:49:37Z, RFC 9110's example date, minus an hour.
        let now_ms = (784_111_777 - 3600) * 1000;
        assert_eq!(
            c.header("abc", now_ms),
            "io=abc; Max-Age=3600; Domain=example.com; Path=/; \
             Expires=Sun, 06 Nov 1994 08:49:37 GMT; HttpOnly; Partitioned; SameSite=None; Secure"
        );
        assert_eq!(
            Cookie::default().header("abc", 0),
            "io=abc; Path=/; HttpOnly; SameSite=Lax"
        );
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
    }
}
