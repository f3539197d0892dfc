//! The server inside an application: what tower layers put into the handshake request's
//! extensions reaches the connect middlewares and the sockets (over polling and over a
//! WebSocket-only connection), the client's address under axum's `serve` and under the
//! server's own, CORS with credentials, and the session cookie's attributes. Raw HTTP/1.1 and
//! WebSocket over blocking TCP, the servers on their own runtimes.

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use ferrio_server::{ConnectError, Cookie, Cors, Ferrio, Socket};
use serde_json::Value;

/// How long a test waits for the server (a bound, never an expectation).
const PATIENCE: Duration = Duration::from_secs(20);

/// What the application's authentication layer found.
#[derive(Clone, Debug)]
struct User(String);

/// A tower layer that puts the `x-user` header's value into the request's extensions as a
/// [`User`] (a stand-in for a session or authentication layer).
#[derive(Clone)]
struct UserLayer;

impl<S> tower_layer::Layer<S> for UserLayer {
    type Service = UserService<S>;
    fn layer(&self, inner: S) -> UserService<S> {
        UserService { inner }
    }
}

#[derive(Clone)]
struct UserService<S> {
    inner: S,
}

impl<S, B> tower_service::Service<http::Request<B>> for UserService<S>
where
    S: tower_service::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> S::Future {
        let user = req
            .headers()
            .get("x-user")
            .and_then(|v| v.to_str().ok())
            .map(|v| User(v.to_owned()));
        if let Some(user) = user {
            req.extensions_mut().insert(user);
        }
        self.inner.call(req)
    }
}

/// A server whose namespace `/` admits only sockets whose handshake request carried a
/// [`User`], and greets each with `hello` (the user, the address and `secure` as the
/// handshake tells them).
fn server(builder: ferrio_server::FerrioBuilder) -> Ferrio {
    let io = builder.build();
    io.of("/")
        .use_connect(|socket: Socket| async move {
            match socket.handshake().extensions().get::<User>() {
                Some(_) => Ok(()),
                None => Err(ConnectError::new("unauthorized")),
            }
        })
        .on_connection(|socket: Socket| async move {
            let handshake = socket.handshake();
            let user = handshake.extensions().get::<User>().map(|u| u.0.clone());
            let address = handshake.address().map(|a| a.to_string());
            let _ = socket.emit("hello", &(user, address, handshake.secure()));
        });
    io
}

/// A server on 127.0.0.1, served by its own runtime until dropped.
struct Running {
    addr: SocketAddr,
    _rt: tokio::runtime::Runtime,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// `io` behind [`UserLayer`], served by the crate's own `serve`.
fn serve_own(io: Ferrio) -> Running {
    let rt = runtime();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let service = tower_layer::Layer::layer(&UserLayer, io);
    rt.spawn(ferrio_server::serve(listener, move |req| {
        let mut service = service.clone();
        async move {
            let result: Result<_, Infallible> =
                tower_service::Service::call(&mut service, req).await;
            match result {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
    }));
    Running { addr, _rt: rt }
}

/// `io` mounted in an axum router with [`UserLayer`] around it, served by axum's `serve` (with
/// the peer address as `ConnectInfo` when `connect_info`).
fn serve_axum(io: Ferrio, connect_info: bool) -> Running {
    let rt = runtime();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "home" }))
        .layer(ferrio_server::FerrioLayer::new(io))
        .layer(UserLayer);
    if connect_info {
        rt.spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
    } else {
        rt.spawn(async move { axum::serve(listener, app).await });
    }
    Running { addr, _rt: rt }
}

/// A response: status, headers (lower-case names, in order) and body.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// Reads a response head from `stream`: the status, the headers and what was read past it.
fn read_head(stream: &mut TcpStream) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).expect("a response");
        assert!(n > 0, "closed before a response head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, buf[end..].to_vec())
}

/// One request on a fresh connection (`Connection: close`), read to its end.
fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    let mut stream = connect(addr);
    let mut req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).unwrap();
    let (status, headers, mut rest) = read_head(&mut stream);
    let _ = stream.read_to_end(&mut rest);
    let body = if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
    {
        dechunk(&rest)
    } else {
        rest
    };
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..i]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[i + 2..i + 2 + size]);
        data = &data[i + 4 + size..];
    }
    out
}

/// The session id of an Engine.IO open packet.
fn sid_of(open: &str) -> String {
    let v: Value = serde_json::from_str(open.trim_start_matches('0')).expect("open packet");
    v["sid"].as_str().expect("sid").to_owned()
}

/// Over polling, with `headers` on the handshake only: the open packet, then CONNECT to `/`;
/// returns the packets received after it (the CONNECT reply, and `hello` if admitted).
fn connect_polling(addr: SocketAddr, headers: &[(&str, &str)]) -> Vec<String> {
    connect_polling_at(addr, "/socket.io/?EIO=4&transport=polling", headers)
}

/// [`connect_polling`] with the handshake's request target `target`.
fn connect_polling_at(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Vec<String> {
    let open = request(addr, "GET", target, headers, "");
    assert_eq!(open.status, 200, "{}", open.text());
    let sid = sid_of(&open.text());
    let url = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let posted = request(addr, "POST", &url, &[], "40");
    assert_eq!(posted.status, 200, "{}", posted.text());
    let mut packets = Vec::new();
    while packets.len() < 2 {
        let got = request(addr, "GET", &url, &[], "");
        assert_eq!(got.status, 200, "{}", got.text());
        packets.extend(got.text().split('\x1e').map(str::to_owned));
        if packets.iter().any(|p| p.starts_with("44")) {
            break;
        }
    }
    packets
}

/// A WebSocket-only client: `headers` on the upgrade request.
struct Ws {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Ws {
    fn open(addr: SocketAddr, headers: &[(&str, &str)]) -> Ws {
        let mut stream = connect(addr);
        let mut req = format!(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {addr}\r\n\
             Upgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        );
        for (name, value) in headers {
            req.push_str(&format!("{name}: {value}\r\n"));
        }
        req.push_str("\r\n");
        stream.write_all(req.as_bytes()).unwrap();
        let (status, _, buf) = read_head(&mut stream);
        assert_eq!(status, 101);
        let mut ws = Ws { stream, buf };
        let open = ws.recv();
        assert!(open.starts_with("0{"), "{open}");
        ws
    }

    fn send(&mut self, text: &str) {
        let mut f = vec![0x81, 0x80 | u8::try_from(text.len()).unwrap(), 0, 0, 0, 0];
        f.extend_from_slice(text.as_bytes());
        self.stream.write_all(&f).unwrap();
    }

    /// The next text message (pings answered and skipped).
    fn recv(&mut self) -> String {
        let mut chunk = [0u8; 4096];
        loop {
            if self.buf.len() >= 2 {
                let (len, start) = match self.buf[1] & 0x7f {
                    126 if self.buf.len() >= 4 => (
                        usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]])),
                        4,
                    ),
                    126 => (usize::MAX, 0),
                    n => (usize::from(n), 2),
                };
                if len != usize::MAX && self.buf.len() >= start + len {
                    let opcode = self.buf[0] & 0x0f;
                    let payload = self.buf[start..start + len].to_vec();
                    self.buf.drain(..start + len);
                    assert_ne!(opcode, 8, "the server closed the WebSocket");
                    let text = String::from_utf8(payload).unwrap();
                    if text == "2" {
                        self.send("3");
                        continue;
                    }
                    return text;
                }
            }
            let n = self.stream.read(&mut chunk).expect("a frame");
            assert!(n > 0, "closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// The `hello` arguments: user, address, secure.
fn hello(packets: &[String]) -> Value {
    let p = packets
        .iter()
        .find(|p| p.starts_with("42"))
        .unwrap_or_else(|| panic!("no hello in {packets:?}"));
    let v: Value = serde_json::from_str(&p[2..]).unwrap();
    assert_eq!(v[0], "hello");
    v
}

#[test]
fn an_absolute_https_target_over_plain_http_is_not_secure() {
    let running = serve_own(server(Ferrio::builder()));
    let target = format!(
        "https://{}/socket.io/?EIO=4&transport=polling",
        running.addr
    );
    let admitted = connect_polling_at(running.addr, &target, &[("x-user", "ann")]);
    assert!(admitted[0].starts_with("40{"), "{admitted:?}");
    // (user, address, secure): the client's word is not TLS.
    assert_eq!(hello(&admitted)[3], false);
}

#[test]
fn a_layers_extension_reaches_the_middleware_and_the_socket_over_polling() {
    for running in [
        serve_own(server(Ferrio::builder())),
        serve_axum(server(Ferrio::builder()), false),
    ] {
        let admitted = connect_polling(running.addr, &[("x-user", "ann")]);
        assert!(admitted[0].starts_with("40{"), "{admitted:?}");
        assert_eq!(hello(&admitted)[1], "ann");

        let refused = connect_polling(running.addr, &[]);
        assert_eq!(refused[0], r#"44{"message":"unauthorized"}"#);
    }
}

#[test]
fn a_layers_extension_reaches_the_middleware_and_the_socket_over_websocket_only() {
    for running in [
        serve_own(server(Ferrio::builder())),
        serve_axum(server(Ferrio::builder()), false),
    ] {
        let mut ws = Ws::open(running.addr, &[("x-user", "bob")]);
        ws.send("40");
        assert!(ws.recv().starts_with("40{"));
        let greeting = ws.recv();
        assert_eq!(hello(&[greeting])[1], "bob");

        let mut ws = Ws::open(running.addr, &[]);
        ws.send("40");
        assert_eq!(ws.recv(), r#"44{"message":"unauthorized"}"#);
    }
}

#[test]
fn the_address_under_the_crates_serve_and_under_axum_serve_with_connect_info() {
    let own = serve_own(server(Ferrio::builder()));
    let axum_connect_info = serve_axum(
        server(
            Ferrio::builder()
                .remote_address(|ext| ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)),
        ),
        true,
    );
    for running in [own, axum_connect_info] {
        let mut ws = Ws::open(running.addr, &[("x-user", "cy")]);
        let local = ws.stream.local_addr().unwrap();
        ws.send("40");
        assert!(ws.recv().starts_with("40{"));
        let greeting = hello(&[ws.recv()]);
        assert_eq!(greeting[2], local.to_string());
        assert_eq!(greeting[3], false, "plain HTTP is not secure");
    }
    // Without connect info, axum's `serve` tells nothing of the peer.
    let bare = serve_axum(server(Ferrio::builder()), false);
    let mut ws = Ws::open(bare.addr, &[("x-user", "cy")]);
    ws.send("40");
    assert!(ws.recv().starts_with("40{"));
    assert_eq!(hello(&[ws.recv()])[2], Value::Null);
}

#[test]
fn cors_with_credentials_echoes_allowed_origins_only() {
    let io = server(
        Ferrio::builder().cors(
            Cors::origins(["http://app.test:3080", "https://admin.test"])
                .credentials(true)
                .methods(["GET", "POST"])
                .exposed_headers(["x-trace"])
                .max_age(Duration::from_secs(600)),
        ),
    );
    let running = serve_own(io);
    let addr = running.addr;

    let preflight = request(
        addr,
        "OPTIONS",
        "/socket.io/?EIO=4&transport=polling",
        &[
            ("Origin", "https://admin.test"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type,x-user"),
        ],
        "",
    );
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://admin.test")
    );
    assert_eq!(
        preflight.header("access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(
        preflight.header("access-control-allow-methods"),
        Some("GET,POST")
    );
    assert_eq!(
        preflight.header("access-control-allow-headers"),
        Some("content-type,x-user")
    );
    assert_eq!(preflight.header("access-control-max-age"), Some("600"));
    assert!(preflight.all("vary").contains(&"Origin"));

    let handshake = request(
        addr,
        "GET",
        "/socket.io/?EIO=4&transport=polling",
        &[("Origin", "http://app.test:3080")],
        "",
    );
    assert_eq!(handshake.status, 200);
    assert_eq!(
        handshake.header("access-control-allow-origin"),
        Some("http://app.test:3080")
    );
    assert_eq!(
        handshake.header("access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(
        handshake.header("access-control-expose-headers"),
        Some("x-trace")
    );
    assert!(handshake.all("vary").contains(&"Origin"));

    // Another origin is answered, without any `Access-Control-*` header.
    for method in ["GET", "OPTIONS"] {
        let other = request(
            addr,
            method,
            "/socket.io/?EIO=4&transport=polling",
            &[
                ("Origin", "http://evil.test"),
                ("Access-Control-Request-Method", "GET"),
            ],
            "",
        );
        assert!(
            other.status == 200 || other.status == 204,
            "{}",
            other.status
        );
        assert!(
            other
                .headers
                .iter()
                .all(|(n, _)| !n.starts_with("access-control")),
            "{:?}",
            other.headers
        );
        assert!(other.all("vary").contains(&"Origin"));
    }

    // Any origin with credentials: the request's own, never `*`.
    let running = serve_own(server(
        Ferrio::builder().cors(Cors::any().credentials(true)),
    ));
    let any = request(
        running.addr,
        "GET",
        "/socket.io/?EIO=4&transport=polling",
        &[("Origin", "http://elsewhere.test")],
        "",
    );
    assert_eq!(
        any.header("access-control-allow-origin"),
        Some("http://elsewhere.test")
    );
    assert_eq!(any.header("access-control-allow-credentials"), Some("true"));
}

#[test]
fn without_cors_the_server_writes_no_cors_header_for_the_apps_layer_to_conflict_with() {
    let running = serve_axum(server(Ferrio::builder()), false);
    let r = request(
        running.addr,
        "GET",
        "/socket.io/?EIO=4&transport=polling",
        &[("Origin", "http://app.test:3080")],
        "",
    );
    assert_eq!(r.status, 200);
    assert!(
        r.headers
            .iter()
            .all(|(n, v)| !(n.starts_with("access-control") || (n == "vary" && v == "Origin"))),
        "{:?}",
        r.headers
    );
}

#[test]
fn the_session_cookie_carries_its_attributes() {
    let running = serve_own(server(Ferrio::builder().cookie(Cookie {
        max_age: Some(Duration::from_secs(86_400)),
        domain: Some("app.test".into()),
        secure: true,
        partitioned: true,
        same_site: Some("None".into()),
        ..Cookie::default()
    })));
    let open = request(
        running.addr,
        "GET",
        "/socket.io/?EIO=4&transport=polling",
        &[],
        "",
    );
    let sid = sid_of(&open.text());
    let cookie = open.header("set-cookie").expect("a session cookie");
    let prefix = format!("io={sid}; Max-Age=86400; Domain=app.test; Path=/; Expires=");
    assert!(cookie.starts_with(&prefix), "{cookie}");
    assert!(
        cookie.ends_with(" GMT; HttpOnly; Partitioned; SameSite=None; Secure"),
        "{cookie}"
    );
    // The expiry date is a day ahead of now, give or take the test's own time.
    let expires = &cookie
        [prefix.len()..cookie.len() - "; HttpOnly; Partitioned; SameSite=None; Secure".len()];
    assert_eq!(
        expires.len(),
        "Sun, 06 Nov 1994 08:49:37 GMT".len(),
        "{expires}"
    );
}
