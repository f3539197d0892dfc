//! What one client may make the HTTP layer hold: a POST body that stops arriving, and a request
//! head. Raw HTTP/1.1 over TCP, as a misbehaving client sends it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use ferrio_server::{Ferrio, Socket};

mod common;

use common::raw_http::*;
use common::PATIENCE;

/// `io` behind an axum router (as its fallback service), served by axum.
fn serve_axum(io: Ferrio) -> Server {
    let app = axum::Router::new()
        .route("/hello", axum::routing::get(|| async { "hello" }))
        .fallback_service(io);
    Server::on(runtime(), move |listener| async move {
        axum::serve(listener, app).await
    })
}

/// A polling handshake with a header `x-big` of `big` bytes (none if 0).
fn polling_handshake(big: usize) -> Vec<u8> {
    let mut req =
        b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\n".to_vec();
    if big > 0 {
        req.extend_from_slice(format!("x-big: {}\r\n", "a".repeat(big)).as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    req
}

/// A WebSocket handshake (a session opened over WebSocket) with a header `x-big` of `big` bytes.
fn websocket_handshake(big: usize) -> Vec<u8> {
    format!(
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nx-big: {}\r\n\r\n",
        "a".repeat(big)
    )
    .into_bytes()
}

/// A whole Socket.IO connection over polling (handshake, CONNECT to `/`, its answer): the
/// server serves this client.
fn connect_socket(addr: SocketAddr) {
    let sid = open_session(addr);
    let reply = exchange(addr, &post(&sid, "40"));
    assert_eq!((reply.status, reply.text().as_str()), (200, "ok"));
    let reply = exchange(addr, &get(&sid));
    assert_eq!(reply.status, 200);
    assert!(reply.text().starts_with("40{\"sid\":"), "{}", reply.text());
}

/// Starts a POST that announces 1 000 000 bytes on session `sid`, sends 900 000 of them, and
/// stalls: the connection.
fn stalled_post(addr: SocketAddr, sid: &str) -> TcpStream {
    let mut stream = connect(addr);
    let head = format!(
        "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: text/plain;charset=UTF-8\r\nContent-Length: 1000000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&vec![b'4'; 900_000]).unwrap();
    stream
}

#[test]
fn a_stalled_post_body_is_given_up_after_body_read_timeout() {
    // The heartbeat would not end the session for two minutes: only the body's timeout can.
    let io = Ferrio::builder()
        .ping_interval(Duration::from_secs(60))
        .ping_timeout(Duration::from_secs(60))
        .body_read_timeout(Duration::from_millis(500))
        .build();
    io.of("/");
    let server = serve(io);
    let sid = open_session(server.addr);
    let mut stalled = stalled_post(server.addr, &sid);

    // Another client is served meanwhile.
    connect_socket(server.addr);

    let answer = String::from_utf8_lossy(&wait_closed(&mut stalled)).into_owned();
    assert!(
        answer.starts_with("HTTP/1.1 408") && answer.contains("connection: close"),
        "{answer}"
    );
    // The POST was given up as an aborted one: the session is closed.
    let reply = exchange(server.addr, &get(&sid));
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (400, r#"{"code":1,"message":"Session ID unknown"}"#)
    );
    connect_socket(server.addr);
}

#[test]
fn a_stalled_post_body_ends_with_its_session() {
    // The body's own timeout is far away: the session's end (its pong never arrives) is what
    // ends the read.
    let io = Ferrio::builder()
        .ping_interval(Duration::from_millis(500))
        .ping_timeout(Duration::from_millis(500))
        .body_read_timeout(Duration::from_secs(600))
        .build();
    let (closed_tx, closed_rx) = mpsc::channel();
    io.of("/").on_connection(move |socket: Socket| {
        let closed_tx = closed_tx.clone();
        async move {
            socket.on_disconnect(move |_, reason| {
                let _ = closed_tx.send(reason.to_string());
                async {}
            });
        }
    });
    let server = serve(io);
    let sid = open_session(server.addr);
    let reply = exchange(server.addr, &post(&sid, "40"));
    assert_eq!(reply.status, 200);
    let mut stalled = stalled_post(server.addr, &sid);

    connect_socket(server.addr);

    let answer = String::from_utf8_lossy(&wait_closed(&mut stalled)).into_owned();
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    assert_eq!(
        closed_rx.recv_timeout(PATIENCE).unwrap(),
        "ping timeout",
        "the stalled client's socket left on its heartbeat"
    );
    connect_socket(server.addr);
}

/// Asserts what `server` answers to handshakes with a 20 KiB header (431, the connection
/// closed) and with a 15 KiB one (a session), over polling and WebSocket.
fn check_handshake_heads(server: &Server, seen: &mpsc::Receiver<usize>) {
    for request in [polling_handshake(20 * 1024), websocket_handshake(20 * 1024)] {
        let mut stream = connect(server.addr);
        stream.write_all(&request).unwrap();
        let reply = read_reply(&mut stream);
        assert_eq!(reply.status, 431, "{}", reply.head);
        assert!(reply.closes(), "{}", reply.head);
        wait_closed(&mut stream);
    }

    // 15 KiB over polling: a session, whose socket sees the header.
    let reply = exchange(server.addr, &polling_handshake(15 * 1024));
    assert_eq!(reply.status, 200, "{}", reply.head);
    let open: serde_json::Value = serde_json::from_str(&reply.text()[1..]).unwrap();
    let sid = open["sid"].as_str().unwrap();
    assert_eq!(exchange(server.addr, &post(sid, "40")).status, 200);
    assert_eq!(seen.recv_timeout(PATIENCE).unwrap(), 15 * 1024);

    // 15 KiB over WebSocket: the upgrade, then the open packet.
    let mut stream = connect(server.addr);
    stream.write_all(&websocket_handshake(15 * 1024)).unwrap();
    let reply = read_reply(&mut stream);
    assert_eq!(reply.status, 101, "{}", reply.head);
    let mut frame = [0u8; 4];
    stream.read_exact(&mut frame).unwrap();
    assert_eq!((frame[0], &frame[2..]), (0x81, &b"0{"[..]));
}

/// A server whose sockets report the length of their handshake's `x-big` header.
fn reporting_server() -> (Ferrio, mpsc::Receiver<usize>) {
    let io = Ferrio::builder().build();
    let (seen_tx, seen_rx) = mpsc::channel();
    io.of("/").on_connection(move |socket: Socket| {
        let len = socket
            .handshake()
            .headers()
            .get("x-big")
            .map_or(0, |v| v.len());
        let _ = seen_tx.send(len);
        async {}
    });
    (io, seen_rx)
}

#[test]
fn handshake_heads_are_bounded_under_serve() {
    let (io, seen) = reporting_server();
    let server = serve(io);
    check_handshake_heads(&server, &seen);
}

#[test]
fn handshake_heads_are_bounded_through_the_tower_service() {
    // axum reads heads up to hyper's default (about 400 KB): the service itself refuses.
    let (io, seen) = reporting_server();
    let server = serve_axum(io);
    check_handshake_heads(&server, &seen);
    // Routes of the application are not the server's business.
    let reply = exchange(
        server.addr,
        format!(
            "GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nx-big: {}\r\n\r\n",
            "a".repeat(20 * 1024)
        )
        .as_bytes(),
    );
    assert_eq!((reply.status, reply.text().as_str()), (200, "hello"));
}

#[test]
fn serve_bounds_request_heads_before_the_handler() {
    let rt = runtime();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(ferrio_server::serve(listener, |_req| async {
        http::Response::new(ferrio_server::Body::new(bytes::Bytes::from_static(b"seen")))
    }));
    let request = |big: usize| {
        format!(
            "GET /any HTTP/1.1\r\nHost: 127.0.0.1\r\nx-big: {}\r\n\r\n",
            "a".repeat(big)
        )
    };
    let reply = exchange(addr, request(15 * 1024).as_bytes());
    assert_eq!((reply.status, reply.text().as_str()), (200, "seen"));
    let reply = exchange(addr, request(20 * 1024).as_bytes());
    assert_eq!(reply.status, 431);
}
