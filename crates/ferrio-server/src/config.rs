//! Options of the Engine.IO layer, shared by [`crate::Ferrio`] and [`crate::engine::Engine`].

use std::time::Duration;

use ferrio_proto::engine::server as eio;

pub use ferrio_proto::engine::server::Transport;

/// Cross-origin resource sharing for the HTTP long-polling requests (the reference's `cors`
/// option). Off unless configured: no `Access-Control-*` header is written and preflight
/// requests are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    origins: Option<Vec<String>>,
}

impl Cors {
    /// Allows every origin: `Access-Control-Allow-Origin: *`.
    pub fn any() -> Cors {
        Cors { origins: None }
    }

    /// Allows these origins only: a request whose `Origin` is one of them gets it echoed back in
    /// `Access-Control-Allow-Origin` (with `Vary: Origin`); others get no CORS headers.
    pub fn origins<I, S>(origins: I) -> Cors
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cors {
            origins: Some(origins.into_iter().map(Into::into).collect()),
        }
    }

    /// The `Access-Control-Allow-Origin` value for a request with this `Origin`, if any.
    pub(crate) fn allow_origin(&self, origin: Option<&str>) -> Option<String> {
        match &self.origins {
            None => Some("*".to_owned()),
            Some(list) => {
                let origin = origin?;
                list.iter().any(|o| o == origin).then(|| origin.to_owned())
            }
        }
    }

    pub(crate) fn varies(&self) -> bool {
        self.origins.is_some()
    }
}

/// The session cookie written on the handshake response (the reference's `cookie` option, off by
/// default): `io=<sid>; Path=/; HttpOnly; SameSite=Lax` with the defaults, for sticky sessions
/// behind a load balancer.
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
}

impl Default for Cookie {
    fn default() -> Self {
        Cookie {
            name: "io".to_owned(),
            path: Some("/".to_owned()),
            http_only: true,
            same_site: Some("Lax".to_owned()),
        }
    }
}

impl Cookie {
    /// The `Set-Cookie` value for session `sid`.
    pub(crate) fn header(&self, sid: &str) -> String {
        let mut v = format!("{}={sid}", self.name);
        if let Some(path) = &self.path {
            v.push_str("; Path=");
            v.push_str(path);
            if self.http_only {
                v.push_str("; HttpOnly");
            }
        }
        if let Some(same_site) = &self.same_site {
            v.push_str("; SameSite=");
            v.push_str(same_site);
        }
        v
    }
}

/// Decides whether a handshake request may open a session (`allowRequest`); the error string
/// is sent back with 403.
pub(crate) type AllowRequest =
    std::sync::Arc<dyn Fn(http::Request<()>) -> crate::BoxFuture<Result<(), String>> + Send + Sync>;

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
    /// Longest request head accepted (see the builder's `max_http_header_size`).
    pub(crate) max_http_header_size: usize,
    /// Time a POST body may go without delivering a byte (see `body_read_timeout`).
    pub(crate) body_read_timeout: Duration,
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
            .field("max_http_header_size", &self.max_http_header_size)
            .field("body_read_timeout", &self.body_read_timeout)
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
            max_http_header_size: DEFAULT_MAX_HTTP_HEADER_SIZE,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
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
        /// The server's own `serve` (and [`crate::serve`]) also stops reading a request head
        /// this long plus 512 bytes (the separators of up to 100 header lines, hyper's limit)
        /// and answers 431 itself, so that a client cannot make a connection buffer more;
        /// [`crate::serve`] used directly with a handler of its own applies the default,
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

        /// CORS for the long-polling requests (default: none).
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
        /// `.cookie(Cookie::default())` for `io=<sid>; Path=/; HttpOnly; SameSite=Lax`.
        pub fn cookie(mut self, cookie: crate::Cookie) -> Self {
            self.engine.cookie = Some(cookie);
            self
        }

        /// After each write to a WebSocket, yields the OS thread (default false), so that a peer
        /// on the same machine that the write woke up can read it before the next write, as
        /// happens between a write and its callback in Node's event loop. It costs a system
        /// call per write; it is meant for test servers whose clients read one message at a
        /// time, on a busy machine.
        pub fn yield_after_flush(mut self, yes: bool) -> Self {
            self.engine.yield_after_flush = yes;
            self
        }

        /// Decides whether a handshake request (polling or WebSocket, without a session id)
        /// may open a session (`allowRequest`). It gets the request without its body; an
        /// `Err(message)` is answered with 403 `{"code":4,"message":...}`.
        pub fn allow_request<F, Fut>(mut self, allow: F) -> Self
        where
            F: Fn(http::Request<()>) -> Fut + Send + Sync + 'static,
            Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
        {
            self.engine.allow_request = Some(std::sync::Arc::new(move |req| Box::pin(allow(req))));
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
    }
}
