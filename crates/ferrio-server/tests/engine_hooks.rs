//! The Engine.IO hooks, as Node's engine has them: `initial_headers` and `headers` on the
//! answers, `connection_error` for refused requests, `generateId`, and the session's `upgrade`.
//! Raw HTTP/1.1 and WebSocket clients against a bare Engine.IO server.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrio_server::engine::{Engine, EngineBuilder};
use ferrio_server::Transport;
use http::HeaderValue;
use tungstenite::Message;

/// How long a test waits for the server to do something (a bound, never an expectation).
const PATIENCE: Duration = Duration::from_secs(20);

/// A server on 127.0.0.1, served by its own runtime until dropped.
struct Server {
    addr: SocketAddr,
    rt: tokio::runtime::Runtime,
}

fn serve(builder: EngineBuilder) -> Server {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(builder.build().serve(listener));
    Server { addr, rt }
}

/// An answer: status, head (lowercase), body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            (n.trim() == name).then(|| v.trim())
        })
    }
}

/// One request on a connection of its own, with these extra header lines (a POST carries a
/// noop packet).
fn request(addr: SocketAddr, method: &str, path: &str, extra: &str) -> Answer {
    let body = if method == "POST" { "6" } else { "" };
    request_with_body(addr, method, path, extra, body)
}

fn request_with_body(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra: &str,
    body: &str,
) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{extra}\
         Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    Answer {
        status: head.split(' ').nth(1).unwrap().parse().unwrap(),
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}

/// The session id of a handshake answer (`0{"sid":"..."...}`).
fn sid_of(answer: &Answer) -> String {
    answer
        .body
        .split("\"sid\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no sid in {}", answer.body))
        .to_owned()
}

fn handshake(addr: SocketAddr) -> Answer {
    request(addr, "GET", "/engine.io/?EIO=4&transport=polling", "")
}

type WebSocket = tungstenite::WebSocket<TcpStream>;

/// A WebSocket to `/engine.io/` with this query, and the `101` answer's headers.
fn websocket(addr: SocketAddr, query: &str) -> (WebSocket, http::HeaderMap) {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let url = format!("ws://{addr}/engine.io/?EIO=4&transport=websocket{query}");
    let (ws, response) = tungstenite::client(url.as_str(), stream).expect("WebSocket handshake");
    (ws, response.headers().clone())
}

fn recv_text(ws: &mut WebSocket) -> String {
    loop {
        match ws.read().expect("a WebSocket message") {
            Message::Text(t) => return t.to_string(),
            Message::Close(_) => panic!("the server closed the WebSocket"),
            _ => continue,
        }
    }
}

#[test]
fn initial_headers_go_on_the_opening_answer_and_headers_on_every_answer() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let server = serve(
        Engine::builder()
            .initial_headers(move |headers, req| {
                seen2.lock().unwrap().push(req.uri().to_string());
                headers.insert("x-initial", HeaderValue::from_static("1"));
            })
            .headers(|headers, req| {
                // It runs after `initial_headers`, and sees what that one added.
                let opening = headers.contains_key("x-initial");
                headers.insert("x-every", HeaderValue::from_static("1"));
                headers.insert(
                    "x-saw-initial",
                    HeaderValue::from_static(if opening { "yes" } else { "no" }),
                );
                assert!(req.uri().path().starts_with("/engine.io/"));
            }),
    );
    let addr = server.addr;

    let open = handshake(addr);
    assert_eq!(open.status, 200, "{}", open.body);
    assert_eq!(open.header("x-initial"), Some("1"));
    assert_eq!(open.header("x-every"), Some("1"));
    assert_eq!(open.header("x-saw-initial"), Some("yes"));

    // A poll of the open session: `headers` only.
    let sid = sid_of(&open);
    let poll = request(
        addr,
        "POST",
        &format!("/engine.io/?EIO=4&transport=polling&sid={sid}"),
        "",
    );
    assert_eq!((poll.status, poll.body.as_str()), (200, "ok"));
    assert_eq!(poll.header("x-initial"), None);
    assert_eq!(poll.header("x-every"), Some("1"));
    assert_eq!(poll.header("x-saw-initial"), Some("no"));

    // A refusal: `headers` only.
    let refused = request(
        addr,
        "GET",
        "/engine.io/?EIO=4&transport=carrier-pigeon",
        "",
    );
    assert_eq!(refused.status, 400);
    assert_eq!(refused.header("x-initial"), None);
    assert_eq!(refused.header("x-every"), Some("1"));

    // A session opened over WebSocket: both, on the `101`.
    let (_ws, headers) = websocket(addr, "");
    assert_eq!(
        headers.get("x-initial").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    assert_eq!(
        headers.get("x-every").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[1].contains("transport=websocket"), "{seen:?}");
}

#[test]
fn refused_requests_reach_on_connection_error() {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let errors2 = errors.clone();
    let server = serve(
        Engine::builder()
            .transports(&[Transport::Polling, Transport::WebSocket])
            .allow_request(|req| async move {
                match req.uri().query().is_some_and(|q| q.contains("deny")) {
                    true => Err("not you".to_owned()),
                    false => Ok(()),
                }
            })
            .on_connection_error(move |e| {
                errors2.lock().unwrap().push((
                    e.code(),
                    e.message().to_owned(),
                    e.detail(),
                    e.request().uri().to_string(),
                ));
            }),
    );
    let addr = server.addr;
    let cases = [
        ("GET", "/engine.io/?EIO=4&transport=carrier-pigeon", "", 400),
        (
            "GET",
            "/engine.io/?EIO=4&transport=polling&sid=nope",
            "",
            400,
        ),
        ("POST", "/engine.io/?EIO=4&transport=polling", "", 400),
        ("GET", "/engine.io/?EIO=4&transport=polling&deny=1", "", 403),
        ("GET", "/engine.io/?EIO=5&transport=polling", "", 400),
        (
            "GET",
            "/engine.io/?EIO=4&transport=websocket",
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: short\r\n",
            400,
        ),
    ];
    for (method, path, extra, status) in cases {
        let answer = request(addr, method, path, extra);
        assert_eq!(answer.status, status, "{method} {path}: {}", answer.body);
    }
    // An accepted request is not reported.
    assert_eq!(handshake(addr).status, 200);

    let errors = errors.lock().unwrap().clone();
    let summary: Vec<(u8, &str, Option<&str>)> = errors
        .iter()
        .map(|(code, message, detail, _)| (*code, message.as_str(), *detail))
        .collect();
    assert_eq!(
        summary,
        [
            (0, "Transport unknown", None),
            (1, "Session ID unknown", None),
            (2, "Bad handshake method", None),
            (4, "not you", None),
            (5, "Unsupported protocol version", None),
            (3, "Bad request", Some("invalid WebSocket handshake")),
        ]
    );
    assert!(errors[1].3.ends_with("sid=nope"), "{:?}", errors[1]);
}

#[test]
fn generated_ids_name_sessions_and_a_duplicate_or_invalid_one_is_refused() {
    let next = Arc::new(Mutex::new(vec!["bad id", "room-1.a~b_C", "room-1.a~b_C"]));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let errors2 = errors.clone();
    let server = serve(
        Engine::builder()
            .id_generator(move |req| {
                assert!(req.uri().query().unwrap_or("").contains("EIO=4"));
                next.lock().unwrap().pop().unwrap_or("spare").to_owned()
            })
            .on_connection_error(move |e| {
                errors2.lock().unwrap().push((e.code(), e.detail()));
            }),
    );
    let addr = server.addr;

    let first = handshake(addr);
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(sid_of(&first), "room-1.a~b_C");
    // The session answers under that id.
    let post = request(
        addr,
        "POST",
        "/engine.io/?EIO=4&transport=polling&sid=room-1.a~b_C",
        "",
    );
    assert_eq!(post.status, 200);

    // The same id again, while its session is open: refused, the first session untouched.
    let again = handshake(addr);
    assert_eq!(
        (again.status, again.body.as_str()),
        (400, r#"{"code":3,"message":"Bad request"}"#)
    );
    // An id that is not URL-safe: refused.
    let bad = handshake(addr);
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(
        *errors.lock().unwrap(),
        [
            (3, Some("generated id already in use")),
            (3, Some("generated id is not a valid session id")),
        ]
    );
    // The generator keeps being asked.
    assert_eq!(sid_of(&handshake(addr)), "spare");
}

#[test]
fn a_session_tells_when_it_upgrades_and_when_it_closes_without_upgrading() {
    let (tx, rx) = std::sync::mpsc::channel();
    let server = serve(Engine::builder().on_connection(move |socket| {
        let tx = tx.clone();
        async move {
            let upgraded = socket.upgraded().await;
            tx.send((socket.id().to_owned(), upgraded)).unwrap();
        }
    }));
    let addr = server.addr;

    // Polling, then the WebSocket probe and the upgrade packet.
    let sid = sid_of(&handshake(addr));
    let (mut ws, _) = websocket(addr, &format!("&sid={sid}"));
    ws.send(Message::text("2probe")).unwrap();
    assert_eq!(recv_text(&mut ws), "3probe");
    // Nothing is reported before the upgrade is complete.
    assert!(rx.try_recv().is_err());
    ws.send(Message::text("5")).unwrap();
    let (id, upgraded) = rx.recv_timeout(PATIENCE).expect("the upgrade");
    assert_eq!(
        (id.as_str(), upgraded),
        (sid.as_str(), Some(Transport::WebSocket))
    );

    // A polling session that closes (the client's close packet) without upgrading.
    let sid = sid_of(&handshake(addr));
    let close = request_with_body(
        addr,
        "POST",
        &format!("/engine.io/?EIO=4&transport=polling&sid={sid}"),
        "",
        "1",
    );
    assert_eq!(close.status, 200);
    let (id, upgraded) = rx.recv_timeout(PATIENCE).expect("the close");
    assert_eq!((id.as_str(), upgraded), (sid.as_str(), None));
    drop(server.rt);
}
