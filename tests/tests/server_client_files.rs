//! The browser client served under the server's path (ferrio-server's `serve-client` feature,
//! Node's `serveClient`): the bundles are the npm package's (the version `tests/node` installs),
//! with the ETag and caching headers Node's socket.io sends, 304 on a matching `If-None-Match`,
//! gzip when accepted; off with `serve_client(false)`; Socket.IO itself still answers under the
//! path.

use std::io::Read as _;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LIMIT: Duration = Duration::from_secs(30);

async fn server(builder: ferrio_server::FerrioBuilder) -> SocketAddr {
    let io = builder.build();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(io.serve(listener));
    addr
}

/// An answer: its status, its headers (names in lower case) and its body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `GET target` with `headers` on a fresh connection, read to its end.
async fn get(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Answer {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let mut request = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    tcp.write_all(request.as_bytes()).await.expect("request");
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).await.expect("answer");
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head")
        + 4;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_owned()))
        .collect();
    let mut body = raw[end..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size");
        let size = usize::from_str_radix(std::str::from_utf8(&data[..line_end]).expect("hex"), 16)
            .expect("a size");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 2 + size + 2..];
    }
}

/// The npm package's bundle `name`, as `tests/node` installed it.
fn npm_bundle(name: &str) -> Vec<u8> {
    std::fs::read(
        ferrio_tests::node_dir()
            .join("node_modules/socket.io-client/dist")
            .join(name),
    )
    .expect("run npm ci in tests/node")
}

fn npm_version() -> String {
    let package = std::fs::read_to_string(
        ferrio_tests::node_dir().join("node_modules/socket.io-client/package.json"),
    )
    .expect("package.json");
    let package: serde_json::Value = serde_json::from_str(&package).expect("JSON");
    package["version"].as_str().expect("a version").to_owned()
}

#[tokio::test]
async fn served_client_is_the_npm_package() {
    tokio::time::timeout(LIMIT, async {
        let addr = server(ferrio_server::Ferrio::builder()).await;
        let etag = format!("\"{}\"", npm_version());
        for name in [
            "socket.io.js",
            "socket.io.min.js",
            "socket.io.esm.min.js",
            "socket.io.msgpack.min.js",
        ] {
            let a = get(addr, &format!("/socket.io/{name}"), &[]).await;
            assert_eq!(a.status, 200, "{name}");
            assert_eq!(
                a.header("content-type"),
                Some("application/javascript; charset=utf-8")
            );
            assert_eq!(a.header("etag"), Some(etag.as_str()), "{name}");
            assert_eq!(a.header("cache-control"), Some("public, max-age=0"));
            assert!(
                a.body == npm_bundle(name),
                "{name} differs from the npm package's"
            );
        }
    })
    .await
    .expect("in time");
}

#[tokio::test]
async fn etag_gzip_and_the_switch() {
    tokio::time::timeout(LIMIT, async {
        let addr = server(ferrio_server::Ferrio::builder()).await;
        let etag = format!("\"{}\"", npm_version());
        let weak = format!("W/{etag}");
        for tag in [etag.as_str(), weak.as_str()] {
            let a = get(addr, "/socket.io/socket.io.js", &[("If-None-Match", tag)]).await;
            assert_eq!((a.status, a.body.len()), (304, 0), "{tag}");
        }
        let stale = get(
            addr,
            "/socket.io/socket.io.js",
            &[("If-None-Match", "\"4.0.0\"")],
        )
        .await;
        assert_eq!(stale.status, 200);

        let zipped = get(
            addr,
            "/socket.io/socket.io.min.js",
            &[("Accept-Encoding", "br, gzip;q=0.8")],
        )
        .await;
        assert_eq!(zipped.header("content-encoding"), Some("gzip"));
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&zipped.body[..])
            .read_to_end(&mut plain)
            .expect("gzip");
        assert!(plain == npm_bundle("socket.io.min.js"));
        assert!(zipped.body.len() < plain.len() / 2);

        // Socket.IO itself under the same path.
        let handshake = get(addr, "/socket.io/?EIO=4&transport=polling", &[]).await;
        assert_eq!(handshake.status, 200);
        assert!(handshake.body.starts_with(b"0{\"sid\":"));
        // A source map, or another file: not served.
        let map = get(addr, "/socket.io/socket.io.js.map", &[]).await;
        assert_ne!(map.status, 200);

        let off = server(ferrio_server::Ferrio::builder().serve_client(false)).await;
        let a = get(off, "/socket.io/socket.io.js", &[]).await;
        assert_ne!(a.status, 200);
        assert!(a.header("etag").is_none());
    })
    .await
    .expect("in time");
}
