//! HTTP/1.1 as `Ferrio::serve` speaks it, over raw TCP: keep-alive, pipelining, HTTP/1.0,
//! chunked and `Expect: 100-continue` request bodies, the answers to bad requests, and a client
//! that goes away while its long poll waits.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

use ferrio_server::{Ferrio, Socket};

mod common;

use common::raw_http::*;
use common::PATIENCE;

/// A server whose sockets report how they left.
fn reporting_server(io: Ferrio) -> (Server, mpsc::Receiver<String>) {
    let (tx, rx) = mpsc::channel();
    io.of("/").on_connection(move |socket: Socket| {
        let tx = tx.clone();
        async move {
            socket.on_disconnect(move |_, reason| {
                let _ = tx.send(reason.to_string());
                async {}
            });
        }
    });
    (serve(io), rx)
}

/// Asserts that `reply` is the answer to the CONNECT of the main namespace.
fn assert_connected(reply: &Reply) {
    assert_eq!(reply.status, 200, "{}", reply.head);
    assert!(reply.text().starts_with("40{\"sid\":"), "{}", reply.text());
}

#[test]
fn one_connection_carries_requests_one_after_another() {
    let server = serve(Ferrio::builder().build());
    let mut stream = connect(server.addr);
    stream.write_all(HANDSHAKE).unwrap();
    let sid = sid_of(&read_reply(&mut stream));
    stream.write_all(&post(&sid, "40")).unwrap();
    let reply = read_reply(&mut stream);
    assert_eq!((reply.status, reply.text().as_str()), (200, "ok"));
    assert!(!reply.closes(), "{}", reply.head);
    stream.write_all(&get(&sid)).unwrap();
    assert_connected(&read_reply(&mut stream));
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = serve(Ferrio::builder().build());
    let sid = open_session(server.addr);
    let mut stream = connect(server.addr);
    let mut requests = post(&sid, "40");
    requests.extend_from_slice(&get(&sid));
    stream.write_all(&requests).unwrap();
    let reply = read_reply(&mut stream);
    assert_eq!((reply.status, reply.text().as_str()), (200, "ok"));
    assert_connected(&read_reply(&mut stream));
}

#[test]
fn an_http_1_0_request_is_answered_and_its_connection_closed() {
    let server = serve(Ferrio::builder().build());
    let mut stream = connect(server.addr);
    stream
        .write_all(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.0\r\n\r\n")
        .unwrap();
    let reply = read_reply(&mut stream);
    assert!(
        reply.head.starts_with("HTTP/1.0 200 OK\r\n"),
        "{}",
        reply.head
    );
    sid_of(&reply);
    assert_eq!(wait_closed(&mut stream), b"");
}

#[test]
fn connection_close_is_honoured() {
    let server = serve(Ferrio::builder().build());
    let mut stream = connect(server.addr);
    stream
        .write_all(
            b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\n\
              Connection: close\r\n\r\n",
        )
        .unwrap();
    let reply = read_reply(&mut stream);
    sid_of(&reply);
    assert!(reply.closes(), "{}", reply.head);
    assert_eq!(wait_closed(&mut stream), b"");
}

#[test]
fn a_chunked_post_body_is_read() {
    let server = serve(Ferrio::builder().build());
    let sid = open_session(server.addr);
    let mut stream = connect(server.addr);
    let request = format!(
        "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Transfer-Encoding: chunked\r\n\r\n1;ext=1\r\n4\r\n1\r\n0\r\n0\r\nx-trailer: 1\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let reply = read_reply(&mut stream);
    assert_eq!((reply.status, reply.text().as_str()), (200, "ok"));
    stream.write_all(&get(&sid)).unwrap();
    assert_connected(&read_reply(&mut stream));
}

#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let server = serve(Ferrio::builder().build());
    let sid = open_session(server.addr);
    let mut stream = connect(server.addr);
    let head = format!(
        "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Length: 2\r\nExpect: 100-continue\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut continue_ = [0u8; 25];
    stream.read_exact(&mut continue_).unwrap();
    assert_eq!(&continue_, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"40").unwrap();
    let reply = read_reply(&mut stream);
    assert_eq!((reply.status, reply.text().as_str()), (200, "ok"));
    stream.write_all(&get(&sid)).unwrap();
    assert_connected(&read_reply(&mut stream));
}

#[test]
fn an_oversized_head_is_answered_431() {
    let server = serve(Ferrio::builder().build());
    let mut request = b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n".to_vec();
    for i in 0..200 {
        request.extend_from_slice(format!("x-h{i}: {}\r\n", "a".repeat(100)).as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    let mut stream = connect(server.addr);
    stream.write_all(&request).unwrap();
    let reply = read_reply(&mut stream);
    assert_eq!(reply.status, 431, "{}", reply.head);
    assert!(reply.closes(), "{}", reply.head);
    wait_closed(&mut stream);
}

#[test]
fn an_oversized_body_is_answered_413() {
    let io = Ferrio::builder().max_http_buffer_size(1000).build();
    let server = serve(io);
    let sid = open_session(server.addr);
    let mut stream = connect(server.addr);
    stream.write_all(&post(&sid, &"4".repeat(2000))).unwrap();
    let reply = read_reply(&mut stream);
    assert_eq!(reply.status, 413, "{}", reply.head);
    // The rest of the body was read past: the connection serves the next request.
    stream.write_all(HANDSHAKE).unwrap();
    sid_of(&read_reply(&mut stream));
}

#[test]
fn malformed_heads_are_answered_400() {
    let server = serve(Ferrio::builder().build());
    for request in [
        &b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n"[..],
        b"GET /socket.io/?EIO=4&transport=polling HTTP/9.9\r\n\r\n",
        b"POST /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nContent-Length: x\r\n\r\n",
    ] {
        let mut stream = connect(server.addr);
        stream.write_all(request).unwrap();
        let reply = read_reply(&mut stream);
        assert_eq!(reply.status, 400, "{}", reply.head);
        assert!(reply.closes(), "{}", reply.head);
        wait_closed(&mut stream);
    }
}

#[test]
fn a_bad_chunk_size_ends_the_connection() {
    let server = serve(Ferrio::builder().build());
    let sid = open_session(server.addr);
    let mut stream = connect(server.addr);
    let request = format!(
        "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Transfer-Encoding: chunked\r\n\r\n{}\r\n",
        "f".repeat(64 * 1024)
    );
    // The server may close before it read everything.
    let _ = stream.write_all(request.as_bytes());
    let answer = String::from_utf8_lossy(&wait_closed(&mut stream)).into_owned();
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    // The server still serves.
    open_session(server.addr);
}

#[test]
fn a_client_leaving_during_its_long_poll_ends_its_session() {
    // The heartbeat would not end the session within the test: only the closed connection can.
    let io = Ferrio::builder()
        .ping_interval(Duration::from_secs(60))
        .ping_timeout(Duration::from_secs(60))
        .build();
    let (server, left) = reporting_server(io);
    let sid = open_session(server.addr);
    let mut stream = connect(server.addr);
    stream.write_all(&post(&sid, "40")).unwrap();
    assert_eq!(read_reply(&mut stream).status, 200);
    stream.write_all(&get(&sid)).unwrap();
    assert_connected(&read_reply(&mut stream));
    // The long poll waits; the client goes away.
    stream.write_all(&get(&sid)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    drop(stream);
    assert_eq!(left.recv_timeout(PATIENCE).unwrap(), "transport error");
}

/// Reads one unmasked WebSocket frame from `stream`: its first byte and its payload.
fn read_frame(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).unwrap();
    let len = match head[1] & 0x7f {
        126 => {
            let mut ext = [0u8; 2];
            stream.read_exact(&mut ext).unwrap();
            usize::from(u16::from_be_bytes(ext))
        }
        127 => panic!("an unexpectedly long frame"),
        n => usize::from(n),
    };
    let mut payload = vec![0; len];
    stream.read_exact(&mut payload).unwrap();
    (head[0], payload)
}

#[test]
fn bytes_sent_right_after_an_upgrade_request_reach_the_websocket() {
    let server = serve(Ferrio::builder().build());
    let mut stream = connect(server.addr);
    // The upgrade request and, in the same write, a masked text frame: CONNECT to `/`.
    let mut request = b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n\
        Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        .to_vec();
    request.extend_from_slice(&[0x81, 0x82, 1, 2, 3, 4, b'4' ^ 1, b'0' ^ 2]);
    stream.write_all(&request).unwrap();
    let reply = read_reply(&mut stream);
    assert_eq!(reply.status, 101, "{}", reply.head);
    let (op, open) = read_frame(&mut stream);
    assert_eq!(
        (op, open[0]),
        (0x81, b'0'),
        "{}",
        String::from_utf8_lossy(&open)
    );
    let (op, connected) = read_frame(&mut stream);
    let connected = String::from_utf8_lossy(&connected).into_owned();
    assert!(
        op == 0x81 && connected.starts_with("40{\"sid\":"),
        "{connected}"
    );
}

#[test]
fn large_bodies_arrive_whole_over_content_length_and_chunked() {
    // An Engine.IO echo server: a message posted comes back with the next poll.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let engine = ferrio_server::engine::Engine::builder()
        .path("/socket.io/")
        .on_connection(|mut socket| async move {
            while let Some(message) = socket.recv().await {
                socket.send(message);
            }
        })
        .build();
    rt.spawn(engine.serve(listener));

    let message: String = (0..600_000)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    let sid = open_session(addr);
    let mut stream = connect(addr);
    for chunked in [false, true] {
        let payload = format!("4{message}");
        let request = if chunked {
            let mut r = format!(
                "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\n\
                 Host: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            .into_bytes();
            for piece in payload.as_bytes().chunks(70_000) {
                r.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                r.extend_from_slice(piece);
                r.extend_from_slice(b"\r\n");
            }
            r.extend_from_slice(b"0\r\n\r\n");
            r
        } else {
            post(&sid, &payload)
        };
        stream.write_all(&request).unwrap();
        let reply = read_reply(&mut stream);
        assert_eq!((reply.status, reply.text().as_str()), (200, "ok"));
        stream.write_all(&get(&sid)).unwrap();
        let reply = read_reply(&mut stream);
        assert_eq!(reply.status, 200, "{}", reply.head);
        assert!(reply.text() == payload, "the message came back changed");
    }
}
