//! HTTP pieces of the Engine.IO transport: error responses with the reference's codes (the
//! codes and the checks are `ferrio_proto::engine::request`'s), CORS headers, polling
//! compression, WebSocket handshake checks.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;

use crate::config::Cors;
use ferrio_proto::engine::request::ErrorCode;

/// The body of every response Ferrio writes.
pub type Body = Full<Bytes>;

/// A compression for long-polling responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Gzip,
    Deflate,
}

impl Encoding {
    /// The encoding to use for a request with these headers, if the body reaches `threshold`:
    /// gzip if accepted, else deflate (the reference's preference), by `Accept-Encoding`.
    pub(crate) fn negotiate(headers: &HeaderMap) -> Option<Encoding> {
        let accepted: Vec<(String, f32)> = headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|item| {
                let mut parts = item.split(';');
                let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
                let q = parts
                    .filter_map(|p| p.trim().strip_prefix("q="))
                    .find_map(|q| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                (name, q)
            })
            .collect();
        let quality = |name: &str| {
            accepted
                .iter()
                .find(|(n, _)| n == name)
                .or_else(|| accepted.iter().find(|(n, _)| n == "*"))
                .map_or(0.0, |(_, q)| *q)
        };
        let (gzip, deflate) = (quality("gzip"), quality("deflate"));
        if gzip > 0.0 && gzip >= deflate {
            Some(Encoding::Gzip)
        } else if deflate > 0.0 {
            Some(Encoding::Deflate)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip",
            Encoding::Deflate => "deflate",
        }
    }

    /// `body` compressed (`None` if the compressor failed, which writing to memory does not).
    fn compress(self, body: &[u8]) -> Option<Bytes> {
        use std::io::Write as _;
        let level = flate2::Compression::default();
        let out = match self {
            Encoding::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), level);
                e.write_all(body).ok()?;
                e.finish().ok()?
            }
            Encoding::Deflate => {
                let mut e = flate2::write::DeflateEncoder::new(Vec::new(), level);
                e.write_all(body).ok()?;
                e.finish().ok()?
            }
        };
        Some(Bytes::from(out))
    }
}

/// Builds responses with the endpoint's CORS headers.
#[derive(Debug, Clone)]
pub(crate) struct Responder {
    /// The CORS configuration, when the request's origin is allowed.
    cors: Option<Cors>,
    /// Boxed, as `set_cookie`: a pending long poll keeps its responder, and most have neither.
    allow_origin: Option<Box<HeaderValue>>,
    vary: bool,
    set_cookie: Option<Box<HeaderValue>>,
    /// Headers the application's hooks added (`initial_headers`, `headers`), written last.
    extra: Option<std::sync::Arc<HeaderMap>>,
}

impl Responder {
    pub(crate) fn new(cors: Option<&Cors>, headers: &HeaderMap) -> Responder {
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        let allow_origin = cors
            .and_then(|c| c.allow_origin(origin))
            .and_then(|o| HeaderValue::from_str(&o).ok())
            .map(Box::new);
        Responder {
            cors: cors.filter(|_| allow_origin.is_some()).cloned(),
            allow_origin,
            vary: cors.is_some_and(Cors::varies),
            set_cookie: None,
            extra: None,
        }
    }

    /// Adds `headers` to the answers built from now on, after (and over) the server's own.
    pub(crate) fn with_headers(mut self, headers: Option<HeaderMap>) -> Responder {
        self.extra = headers.filter(|h| !h.is_empty()).map(std::sync::Arc::new);
        self
    }

    /// The application's headers, over those of `h`.
    fn extra_headers(&self, h: &mut HeaderMap) {
        if let Some(extra) = &self.extra {
            h.extend(HeaderMap::clone(extra));
        }
    }

    /// Adds `Set-Cookie: value` to the answers built from now on (the handshake's).
    pub(crate) fn with_cookie(mut self, value: &str) -> Responder {
        self.set_cookie = HeaderValue::from_str(value).ok().map(Box::new);
        self
    }

    fn build(
        &self,
        status: StatusCode,
        content_type: Option<&'static str>,
        body: Bytes,
    ) -> Response<Body> {
        let mut res = Response::new(Full::new(body));
        *res.status_mut() = status;
        let h = res.headers_mut();
        if let Some(ct) = content_type {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        self.cors_headers(h);
        self.extra_headers(h);
        res
    }

    fn cors_headers(&self, h: &mut HeaderMap) {
        if let Some(cookie) = &self.set_cookie {
            h.insert(header::SET_COOKIE, HeaderValue::clone(cookie));
        }
        if self.vary {
            h.append(header::VARY, HeaderValue::from_static("Origin"));
        }
        if let Some(origin) = &self.allow_origin {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::clone(origin),
            );
        }
        if let Some(cors) = &self.cors {
            if cors.allows_credentials() {
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
            }
            if let Some(v) = cors
                .exposed_headers_value()
                .and_then(|v| HeaderValue::from_str(v).ok())
            {
                h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, v);
            }
        }
    }

    /// 400 with `{"code":N,"message":"..."}`.
    pub(crate) fn error(&self, code: ErrorCode) -> Response<Body> {
        self.build(
            StatusCode::BAD_REQUEST,
            Some("application/json"),
            Bytes::from(code.body()),
        )
    }

    /// 403 with `{"code":4,"message":...}` (`allowRequest` said no, with its message).
    pub(crate) fn forbidden(&self, message: &str) -> Response<Body> {
        let body =
            serde_json::json!({"code": ErrorCode::Forbidden as u8, "message": message}).to_string();
        self.build(
            StatusCode::FORBIDDEN,
            Some("application/json"),
            Bytes::from(body),
        )
    }

    /// `408 Request Timeout`, closing the connection (a body that stopped arriving).
    pub(crate) fn timeout(&self) -> Response<Body> {
        closing(self.status(StatusCode::REQUEST_TIMEOUT))
    }

    /// A bare status (413, 500, ...).
    pub(crate) fn status(&self, status: StatusCode) -> Response<Body> {
        self.build(status, None, Bytes::new())
    }

    /// A long-polling answer, compressed with `encoding` when given.
    pub(crate) fn payload(
        &self,
        body: Bytes,
        binary: bool,
        encoding: Option<Encoding>,
    ) -> Response<Body> {
        let ct = if binary {
            "application/octet-stream"
        } else {
            "text/plain; charset=UTF-8"
        };
        let (body, encoding) = match encoding.and_then(|e| e.compress(&body).map(|c| (c, e))) {
            Some((compressed, e)) => (compressed, Some(e)),
            None => (body, None),
        };
        let mut res = self.build(StatusCode::OK, Some(ct), body);
        let h = res.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(e) = encoding {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(e.name()));
            h.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        }
        self.extra_headers(h);
        res
    }

    /// The answer to a POST whose data was taken.
    pub(crate) fn ok(&self) -> Response<Body> {
        self.build(StatusCode::OK, Some("text/html"), Bytes::from_static(b"ok"))
    }

    /// The answer to a CORS preflight request (allowed origin or not: a refused origin gets
    /// no `Access-Control-*` header, which is how browsers learn of the refusal).
    pub(crate) fn preflight(&self, headers: &HeaderMap) -> Response<Body> {
        let mut res = self.build(StatusCode::NO_CONTENT, None, Bytes::new());
        let h = res.headers_mut();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        let Some(cors) = &self.cors else {
            return res;
        };
        if let Ok(v) = HeaderValue::from_str(cors.methods_value()) {
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v);
        }
        match cors.allowed_headers_value() {
            Some(allowed) => {
                if let Ok(v) = HeaderValue::from_str(allowed) {
                    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
                }
            }
            None => {
                if let Some(asked) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
                    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
                    h.append(
                        header::VARY,
                        HeaderValue::from_static("Access-Control-Request-Headers"),
                    );
                }
            }
        }
        if let Some(max_age) = cors.max_age_value() {
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from(max_age.as_secs()),
            );
        }
        self.extra_headers(h);
        res
    }

    /// 101 Switching Protocols for a WebSocket handshake.
    pub(crate) fn switching_protocols(&self, accept: &str) -> Response<Body> {
        let mut res = Response::new(Full::new(Bytes::new()));
        *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = res.headers_mut();
        if let Some(cookie) = &self.set_cookie {
            h.insert(header::SET_COOKIE, HeaderValue::clone(cookie));
        }
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        if let Ok(v) = HeaderValue::from_str(accept) {
            h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
        }
        self.extra_headers(h);
        res
    }
}

/// `res` with `Connection: close`: the connection ends once it is written (and a body not read
/// to its end is not waited for).
pub(crate) fn closing(mut res: Response<Body>) -> Response<Body> {
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

/// The size of a request's head as Node's `--max-http-header-size` counts it: the request
/// target and every header's name and value (without separators).
pub(crate) fn head_size<B>(req: &http::Request<B>) -> usize {
    let uri = req.uri();
    let target = uri.scheme_str().map_or(0, |s| s.len() + 3)
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.path_and_query().map_or(0, |p| p.as_str().len());
    req.headers().iter().fold(target, |n, (name, value)| {
        n.saturating_add(name.as_str().len() + value.len())
    })
}

/// `431 Request Header Fields Too Large`, closing the connection (as Node answers a head over
/// its limit).
pub(crate) fn header_too_large() -> Response<Body> {
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
    closing(res)
}

/// 404 for a path no endpoint serves.
pub(crate) fn not_found() -> Response<Body> {
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = StatusCode::NOT_FOUND;
    res
}

/// True if the comma-separated header value `value` holds `token` (ASCII case ignored).
pub(crate) fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// True if the request asks for a WebSocket upgrade (`Upgrade: websocket`).
pub(crate) fn wants_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The `Sec-WebSocket-Accept` value for a valid WebSocket handshake request (RFC 6455 §4.2.1:
/// `Connection: Upgrade`, version 13, a key that is 16 bytes in base64), `None` otherwise.
pub(crate) fn websocket_accept(headers: &HeaderMap) -> Option<String> {
    use base64::Engine as _;
    if !headers
        .get_all(header::CONNECTION)
        .iter()
        .any(|v| has_token(v.as_bytes(), b"upgrade"))
    {
        return None;
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION)?.as_bytes() != b"13" {
        return None;
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?.as_bytes();
    let decoded = base64::engine::general_purpose::STANDARD.decode(key).ok()?;
    if decoded.len() != 16 {
        return None;
    }
    Some(tungstenite::handshake::derive_accept_key(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body() {
        let r = Responder::new(None, &HeaderMap::new()).error(ErrorCode::TransportUnknown);
        assert_eq!(r.status(), 400);
        assert_eq!(
            r.into_body().into_inner_for_test(),
            r#"{"code":0,"message":"Transport unknown"}"#
        );
    }

    trait Inner {
        fn into_inner_for_test(self) -> String;
    }
    impl Inner for Body {
        fn into_inner_for_test(self) -> String {
            use http_body::Body as _;
            let mut b = self;
            let frame = std::pin::Pin::new(&mut b)
                .poll_frame(&mut std::task::Context::from_waker(std::task::Waker::noop()));
            match frame {
                std::task::Poll::Ready(Some(Ok(f))) => {
                    String::from_utf8(f.into_data().unwrap().to_vec()).unwrap()
                }
                _ => String::new(),
            }
        }
    }

    #[test]
    fn head_size_counts_as_node() {
        let req = http::Request::builder()
            .uri("/socket.io/?EIO=4")
            .header("host", "a:1")
            .header("x-b", "cd")
            .body(())
            .unwrap();
        assert_eq!(head_size(&req), 17 + 4 + 3 + 3 + 2);
        let absolute = http::Request::builder()
            .uri("http://a:1/x")
            .body(())
            .unwrap();
        assert_eq!(head_size(&absolute), "http://a:1/x".len());
    }

    #[test]
    fn websocket_keys() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        h.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        h.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        assert_eq!(
            websocket_accept(&h).as_deref(),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
        h.insert(header::SEC_WEBSOCKET_KEY, HeaderValue::from_static("short"));
        assert_eq!(websocket_accept(&h), None);
    }
}
