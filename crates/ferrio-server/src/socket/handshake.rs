//! [`Handshake`]: what the client's first HTTP request and its CONNECT said.

use std::sync::Arc;

use ferrio_proto::socket::RawJson;
use serde::de::DeserializeOwned;

use crate::transport::RequestInfo;

/// What the client's first request and its CONNECT said.
#[derive(Debug, Clone)]
pub struct Handshake {
    request: Arc<RequestInfo>,
    auth: RawJson,
}

impl Handshake {
    pub(crate) fn new(request: Arc<RequestInfo>, auth: RawJson) -> Handshake {
        Handshake { request, auth }
    }

    /// The headers of the first HTTP request.
    pub fn headers(&self) -> &http::HeaderMap {
        self.request.headers()
    }

    /// The query parameters of the first HTTP request (`EIO`, `transport`, `t` included).
    pub fn query(&self) -> &[(String, String)] {
        self.request.query()
    }

    /// The first value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.request
            .query()
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The URL of the first HTTP request (path and query).
    pub fn url(&self) -> &str {
        &self.request.url
    }

    /// When the session opened, in milliseconds since the Unix epoch.
    pub fn issued(&self) -> u64 {
        self.request.issued
    }

    /// When the session opened, as the reference's `handshake.time` (JavaScript's
    /// `Date.toString()` in UTC, e.g. `Sun Nov 22 2026 14:28:18 GMT+0000 (Coordinated Universal
    /// Time)`).
    pub fn time(&self) -> String {
        ferrio_proto::date::js_date_string(self.request.issued)
    }

    /// The client's address (the peer of the TCP connection that opened the session): from the
    /// [`crate::RemoteAddr`] that [`crate::serve`](fn@crate::serve) and [`crate::Ferrio::serve`] put into each
    /// request's extensions, or else as the builder's
    /// [`remote_address`](crate::FerrioBuilder::remote_address) finds it (axum's `ConnectInfo`
    /// under axum's `serve`). `None` when neither is there.
    pub fn address(&self) -> Option<std::net::SocketAddr> {
        self.request.address
    }

    /// True if the first request came over TLS as far as the server can tell: it was served by
    /// `Ferrio::serve_tls` (the `tls` feature), it carries the [`Encrypted`](crate::Encrypted)
    /// mark (put it there in a stack that ends TLS itself), or it is an HTTP/2 request with the
    /// `https` scheme. An absolute `https://` request target over HTTP/1.1 does not count: the
    /// client chose it. TLS that ends in a proxy before this server is not seen (Node's
    /// `handshake.secure` is false then too).
    pub fn secure(&self) -> bool {
        self.request.secure
    }

    /// True if the first request was cross-origin as far as the server can tell: it carried
    /// an `Origin` header (Node's `handshake.xdomain`).
    pub fn xdomain(&self) -> bool {
        self.request.headers().contains_key(http::header::ORIGIN)
    }

    /// The extensions of the request that opened the Engine.IO session (the handshake GET, or
    /// the WebSocket upgrade of a WebSocket-only client; Node's `socket.request`): what the
    /// application's tower layers put there, such as a session, an authenticated user or
    /// axum's `ConnectInfo`. A clone taken when the session opened; later requests of the
    /// session do not change it.
    ///
    /// ```
    /// use ferrio_server::{ConnectError, Ferrio, Socket};
    ///
    /// #[derive(Clone)]
    /// struct User(String);
    ///
    /// let io = Ferrio::builder().build();
    /// io.of("/").use_connect(|socket: Socket| async move {
    ///     match socket.handshake().extensions().get::<User>() {
    ///         Some(_user) => Ok(()),
    ///         None => Err(ConnectError::new("unauthorized")),
    ///     }
    /// });
    /// ```
    pub fn extensions(&self) -> &http::Extensions {
        &self.request.extensions
    }

    /// The CONNECT payload (`{}` when there was none).
    pub fn auth_raw(&self) -> &RawJson {
        &self.auth
    }

    /// The CONNECT payload as `T`.
    pub fn auth<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        self.auth.deserialize()
    }

    /// The handshake in the reference's JSON shape, as cluster adapters carry it: `headers`
    /// (lower-case names; repeated headers joined with `, `), `time` (as JavaScript's
    /// `Date.toString()` writes it, in UTC), `address`, `xdomain` (an `Origin` header was sent),
    /// `secure` (see [`Handshake::secure`]), `issued`, `url`, `query` (the last value
    /// of each name), `auth`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::{Map, Value};
        let mut headers = Map::new();
        for name in self.request.headers().keys() {
            let values: Vec<&str> = self
                .request
                .headers()
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            headers.insert(name.as_str().to_owned(), Value::String(values.join(", ")));
        }
        let query: Map<String, Value> = self
            .request
            .query()
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        serde_json::json!({
            "headers": headers,
            "time": ferrio_proto::date::js_date_string(self.request.issued),
            "address": self.request.address.map(|a| a.ip().to_string()).unwrap_or_default(),
            "xdomain": self.xdomain(),
            "secure": self.request.secure,
            "issued": self.request.issued,
            "url": self.request.url,
            "query": query,
            "auth": self.auth.to_value().unwrap_or_default(),
        })
    }
}
