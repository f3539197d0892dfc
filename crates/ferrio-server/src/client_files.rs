//! The browser client served under the server's path (`serveClient`, the `serve-client`
//! feature): the bundles of `socket.io-client` (see `client-dist/README.md`), as Node's
//! socket.io serves them. `GET` or `HEAD` of `<path>socket.io.js`, `socket.io.min.js`,
//! `socket.io.esm.min.js` or `socket.io.msgpack.min.js`: the file with the ETag `"<version>"` and
//! `Cache-Control: public, max-age=0`, `304 Not Modified` when `If-None-Match` names that ETag
//! (weak or not), gzip when the client accepts it (compressed once, kept). The source maps
//! are not served.

use std::sync::OnceLock;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};

use crate::http::Body;

/// The version of the bundles (their ETag).
pub(crate) const CLIENT_VERSION: &str = "4.8.4";

/// One bundle: its name under the path, its bytes, and their gzip, made at the first request
/// that accepts it.
struct File {
    name: &'static str,
    bytes: &'static [u8],
    gzip: OnceLock<Bytes>,
}

static FILES: [File; 4] = [
    File {
        name: "socket.io.js",
        bytes: include_bytes!("../client-dist/socket.io.js"),
        gzip: OnceLock::new(),
    },
    File {
        name: "socket.io.min.js",
        bytes: include_bytes!("../client-dist/socket.io.min.js"),
        gzip: OnceLock::new(),
    },
    File {
        name: "socket.io.esm.min.js",
        bytes: include_bytes!("../client-dist/socket.io.esm.min.js"),
        gzip: OnceLock::new(),
    },
    File {
        name: "socket.io.msgpack.min.js",
        bytes: include_bytes!("../client-dist/socket.io.msgpack.min.js"),
        gzip: OnceLock::new(),
    },
];

/// The answer to `req` if it asks for a bundle under `path` (the server's);
/// `None` for any other request.
pub(crate) fn answer<B>(req: &Request<B>, path: &str) -> Option<Response<Body>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return None;
    }
    let rest = req.uri().path().strip_prefix(path.trim_end_matches('/'))?;
    let name = rest.strip_prefix('/')?;
    let file = FILES.iter().find(|f| f.name == name)?;
    let etag = format!("\"{CLIENT_VERSION}\"");
    let headers = req.headers();
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim())
                .any(|t| t == etag || t.strip_prefix("W/") == Some(etag.as_str()))
        });
    let mut res = if matches {
        let mut res = Response::new(Body::new(Bytes::new()));
        *res.status_mut() = StatusCode::NOT_MODIFIED;
        res
    } else {
        let gzip = headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|e| e.split(';').next().map(str::trim) == Some("gzip"));
        let body = if gzip {
            file.gzip.get_or_init(|| compress(file.bytes)).clone()
        } else {
            Bytes::from_static(file.bytes)
        };
        let mut res = Response::new(Body::new(if req.method() == Method::HEAD {
            Bytes::new()
        } else {
            body
        }));
        let headers = res.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/javascript; charset=utf-8"),
        );
        if gzip {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        res
    };
    let headers = res.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=0"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    Some(res)
}

/// `bytes` gzipped (at the best level: it is done once).
fn compress(bytes: &[u8]) -> Bytes {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // (Writing to a `Vec` cannot fail.)
    let _ = encoder.write_all(bytes);
    Bytes::from(encoder.finish().unwrap_or_default())
}
