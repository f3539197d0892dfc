//! The Engine.IO expectations of the official v4 suite (and the test server's protocol section),
//! against `/engine.io/` (echo) and, for the shared checks, `/socket.io/`.

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::client::*;

const EIO: &str = "/engine.io/";

#[tokio::test]
async fn handshake_over_polling() {
    let s = Server::start().await;
    for prefix in [EIO, "/socket.io/"] {
        let r = get(s.addr, &format!("{prefix}?EIO=4&transport=polling")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("text/plain; charset=UTF-8"));
        assert_eq!(r.header("cache-control"), Some("no-store"));
        let text = r.text();
        assert!(text.starts_with('0'));
        let open: Value = serde_json::from_str(&text[1..]).unwrap();
        let keys: Vec<&String> = open.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 5, "{text}");
        assert!(text.starts_with(r#"0{"sid":""#), "{text}");
        assert_eq!(open["upgrades"], serde_json::json!(["websocket"]));
        assert_eq!(open["pingInterval"], 300);
        assert_eq!(open["pingTimeout"], 200);
        assert_eq!(open["maxPayload"], 1_000_000);
        let sid = open["sid"].as_str().unwrap();
        assert_eq!(sid.len(), 20);
    }
    // Sids are not reused.
    let a = handshake(s.addr, EIO).await;
    let b = handshake(s.addr, EIO).await;
    assert_ne!(a, b);
}

#[tokio::test]
async fn handshake_errors() {
    let s = Server::start().await;
    for prefix in [EIO, "/socket.io/"] {
        for (method, query, code) in [
            ("GET", "transport=polling", 5),
            ("GET", "EIO=abc&transport=polling", 5),
            ("GET", "EIO=3&transport=polling", 5),
            ("GET", "EIO=4", 0),
            ("GET", "EIO=4&transport=abc", 0),
            ("POST", "EIO=4&transport=polling", 2),
            ("PUT", "EIO=4&transport=polling", 2),
            ("GET", "EIO=4&transport=websocket", 3),
            ("GET", "EIO=3&transport=websocket", 3),
            ("GET", "EIO=4&transport=polling&sid=unknown", 1),
        ] {
            let r = http(
                s.addr,
                method,
                &format!("{prefix}?{query}"),
                &[],
                Bytes::new(),
            )
            .await;
            assert_eq!(r.status, 400, "{method} {query}");
            assert_eq!(r.header("content-type"), Some("application/json"));
            assert_eq!(r.code(), Some(code), "{method} {query}: {}", r.text());
        }
    }
    let r = get(s.addr, "/engine.io/?EIO=4&transport=abc").await;
    assert_eq!(r.text(), r#"{"code":0,"message":"Transport unknown"}"#);
}

#[tokio::test]
async fn handshake_over_websocket() {
    let s = Server::start().await;
    let mut ws = ws(s.addr, "/engine.io/?EIO=4&transport=websocket")
        .await
        .unwrap();
    let open = ws.text().await;
    let v: Value = serde_json::from_str(&open[1..]).unwrap();
    assert!(open.starts_with('0'));
    assert_eq!(v["upgrades"], serde_json::json!([]));
    assert_eq!(v["pingInterval"], 300);
    // Bad EIO or transport: no session.
    assert!(ws_refused(s.addr, "/engine.io/?EIO=abc&transport=websocket").await);
    assert!(ws_refused(s.addr, "/engine.io/?EIO=3&transport=websocket").await);
    assert!(ws_refused(s.addr, "/engine.io/?EIO=4&transport=abc").await);
    assert!(ws_refused(s.addr, "/engine.io/?EIO=4&transport=websocket&sid=unknown").await);
    assert!(ws_refused(s.addr, "/elsewhere/?EIO=4&transport=websocket").await);
}

async fn ws_refused(addr: std::net::SocketAddr, target: &str) -> bool {
    match ws(addr, target).await {
        Err(_) => true,
        Ok(mut ws) => ws.closed_within(Duration::from_secs(1), false).await,
    }
}

#[tokio::test]
async fn polling_messages_are_echoed_and_batched() {
    let s = Server::start().await;
    let sid = handshake(s.addr, EIO).await;
    let url = polling(EIO, &sid);
    let r = post(s.addr, &url, "4hello").await;
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    assert_eq!(r.header("content-type"), Some("text/html"));
    assert_eq!(get(s.addr, &url).await.text(), "4hello");

    let batch = "4test1\u{1e}4test2\u{1e}4test3";
    assert_eq!(post(s.addr, &url, batch).await.status, 200);
    assert_eq!(get(s.addr, &url).await.text(), batch);

    let mixed = "4hello\u{1e}bAQIDBA==";
    assert_eq!(post(s.addr, &url, mixed).await.status, 200);
    assert_eq!(get(s.addr, &url).await.text(), mixed);

    // Empty binary and any Unicode survive.
    let odd = "b\u{1e}4€😀\u{1e}4";
    assert_eq!(post(s.addr, &url, odd).await.status, 200);
    assert_eq!(get(s.addr, &url).await.text(), odd);
}

#[tokio::test]
async fn invalid_polling_packet_closes_the_session() {
    let s = Server::start().await;
    let sid = handshake(s.addr, EIO).await;
    let url = polling(EIO, &sid);
    let r = post(s.addr, &url, "abc").await;
    assert_eq!(r.status, 400);
    assert_eq!(get(s.addr, &url).await.status, 400);
}

#[tokio::test]
async fn binary_post_is_refused() {
    let s = Server::start().await;
    let sid = handshake(s.addr, EIO).await;
    let url = polling(EIO, &sid);
    let r = http(
        s.addr,
        "POST",
        &url,
        &[("content-type", "application/octet-stream")],
        "4hello",
    )
    .await;
    assert_eq!(r.status, 400);
    let r = http(s.addr, "PUT", &url, &[], "4hello").await;
    assert!(r.status >= 400, "{}", r.status);
}

#[tokio::test]
async fn duplicate_polls_close_the_session() {
    let s = Server::start().await;
    let sid = handshake(s.addr, EIO).await;
    let url = polling(EIO, &sid);
    let first = tokio::spawn({
        let url = url.clone();
        let addr = s.addr;
        async move { get(addr, &url).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = get(s.addr, &url).await;
    let first = first.await.unwrap();
    assert_eq!((first.status, first.text().as_str()), (200, "1"));
    assert!(second.status == 400 || second.status == 500);
    assert_eq!(get(s.addr, &url).await.status, 400);
}

#[tokio::test]
async fn cancelled_poll_closes_the_session() {
    let s = Server::start().await;
    let sid = handshake(s.addr, EIO).await;
    let url = polling(EIO, &sid);
    let mut stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    stream
        .write_all(format!("GET {url} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(stream);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(get(s.addr, &url).await.status, 400);
}

/// A POST to `url` that announces a 100-byte body and sends only its first bytes; the server
/// has begun reading it when this returns.
async fn partial_post(addr: std::net::SocketAddr, url: &str) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!(
                "POST {url} HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain;charset=UTF-8\r\n\
                 content-length: 100\r\n\r\n4part"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream
}

/// A POST whose client goes away before its body is complete closes the session, as the
/// reference's `data request connection closed prematurely` does.
#[tokio::test]
async fn aborted_post_closes_the_session() {
    let s = Server::start().await;
    let sid = handshake(s.addr, EIO).await;
    let url = polling(EIO, &sid);
    drop(partial_post(s.addr, &url).await);
    let r = tokio::time::timeout(Duration::from_secs(2), get(s.addr, &url))
        .await
        .expect("the session still waits for the POST");
    assert_eq!(r.status, 400);
}

/// A second POST while the first is still being received is refused with 400 and closes the
/// session (the reference's `data request overlap from client`).
#[tokio::test]
async fn overlapping_posts_close_the_session() {
    let s = Server::start().await;
    let sid = handshake(s.addr, EIO).await;
    let url = polling(EIO, &sid);
    let first = partial_post(s.addr, &url).await;
    assert_eq!(post(s.addr, &url, "4second").await.status, 400);
    assert_eq!(get(s.addr, &url).await.status, 400);
    drop(first);
}

#[tokio::test]
async fn websocket_messages_are_echoed() {
    let s = Server::start().await;
    let mut ws = ws(s.addr, "/engine.io/?EIO=4&transport=websocket")
        .await
        .unwrap();
    ws.text().await;
    ws.send_text("4hello").await;
    assert_eq!(ws.text_app().await, "4hello");
    ws.send_binary(&[1, 2, 3, 4]).await;
    assert_eq!(&ws.binary_app().await[..], &[1, 2, 3, 4]);
    ws.send_binary(&[]).await;
    assert_eq!(&ws.binary_app().await[..], &[] as &[u8]);
    // A text frame `b<base64>` is a binary message.
    ws.send_text("bAQID").await;
    assert_eq!(&ws.binary_app().await[..], &[1, 2, 3]);
    ws.send_text("4€ unicode 😀").await;
    assert_eq!(ws.text_app().await, "4€ unicode 😀");
    ws.send_text("abc").await;
    assert!(ws.closed_within(Duration::from_secs(1), true).await);
}

#[tokio::test]
async fn heartbeat_over_polling() {
    let s = Server::start().await;
    let sid = handshake(s.addr, EIO).await;
    let url = polling(EIO, &sid);
    for _ in 0..3 {
        let r = get(s.addr, &url).await;
        assert_eq!(r.text(), "2");
        assert_eq!(post(s.addr, &url, "3").await.text(), "ok");
    }
    // A silent client is gone after pingInterval + pingTimeout.
    let sid = handshake(s.addr, EIO).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(get(s.addr, &polling(EIO, &sid)).await.status, 400);
}

#[tokio::test]
async fn heartbeat_over_websocket() {
    let s = Server::start().await;
    let mut ws = ws(s.addr, "/engine.io/?EIO=4&transport=websocket")
        .await
        .unwrap();
    ws.text().await;
    for _ in 0..3 {
        assert_eq!(ws.text().await, "2");
        ws.send_text("3").await;
    }
    let started = tokio::time::Instant::now();
    assert!(ws.closed_within(Duration::from_secs(2), false).await);
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn client_ping_closes_the_session() {
    let s = Server::start().await;
    let mut ws = ws(s.addr, "/engine.io/?EIO=4&transport=websocket")
        .await
        .unwrap();
    ws.text().await;
    ws.send_text("2").await;
    assert!(ws.closed_within(Duration::from_millis(250), false).await);
}

#[tokio::test]
async fn close_over_polling() {
    let s = Server::start().await;
    let sid = handshake(s.addr, EIO).await;
    let url = polling(EIO, &sid);
    let pending = tokio::spawn({
        let url = url.clone();
        let addr = s.addr;
        async move { get(addr, &url).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(post(s.addr, &url, "1").await.status, 200);
    assert_eq!(pending.await.unwrap().text(), "6");
    assert_eq!(get(s.addr, &url).await.status, 400);
}

#[tokio::test]
async fn close_over_websocket() {
    let s = Server::start().await;
    let mut ws = ws(s.addr, "/engine.io/?EIO=4&transport=websocket")
        .await
        .unwrap();
    ws.text().await;
    ws.send_text("1").await;
    // The reference ignores `1` over WebSocket: the session ends by ping timeout.
    assert!(ws.closed_within(Duration::from_secs(2), false).await);
}

#[tokio::test]
async fn upgrade_from_polling_to_websocket() {
    let s = Server::start().await;
    let sid = handshake(s.addr, EIO).await;
    let url = polling(EIO, &sid);
    let mut ws = ws(
        s.addr,
        &format!("{EIO}?EIO=4&transport=websocket&sid={sid}"),
    )
    .await
    .unwrap();
    ws.send_text("2probe").await;
    assert_eq!(ws.text().await, "3probe");
    // A GET pending during the upgrade is released with a noop.
    let r = get(s.addr, &url).await;
    assert_eq!(r.text(), "6");
    // Something queued before the upgrade completes arrives on the WebSocket.
    assert_eq!(post(s.addr, &url, "4queued").await.status, 200);
    ws.send_text("5").await;
    assert_eq!(ws.text_app().await, "4queued");
    ws.send_text("4hello").await;
    assert_eq!(ws.text_app().await, "4hello");
    // Polling after the upgrade: 400.
    assert_eq!(get(s.addr, &url).await.status, 400);
    // Another WebSocket for that sid is closed.
    let mut other = ws_or_none(
        s.addr,
        &format!("{EIO}?EIO=4&transport=websocket&sid={sid}"),
    )
    .await;
    if let Some(other) = other.as_mut() {
        assert!(other.closed_within(Duration::from_secs(1), false).await);
    }
    // The upgraded session goes on.
    ws.send_text("4still").await;
    assert_eq!(ws.text_app().await, "4still");
}

async fn ws_or_none(addr: std::net::SocketAddr, target: &str) -> Option<Ws> {
    ws(addr, target).await.ok()
}

#[tokio::test]
async fn oversized_post_is_refused_with_413() {
    let s = Server::start().await;
    let sid = handshake(s.addr, EIO).await;
    let url = polling(EIO, &sid);
    let body = format!("4{}", "x".repeat(1_000_001));
    let r = post(s.addr, &url, body).await;
    assert_eq!(r.status, 413);
    // Nothing was delivered: the next GET has a ping, not an echo (or the session is gone).
    let r = get(s.addr, &url).await;
    assert!(r.status == 400 || r.text() == "2", "{}", r.text());
}

#[tokio::test]
async fn oversized_websocket_message_closes_with_1009() {
    let s = Server::start().await;
    let mut ws = ws(s.addr, "/engine.io/?EIO=4&transport=websocket")
        .await
        .unwrap();
    let open = ws.text().await;
    let sid = serde_json::from_str::<Value>(&open[1..]).unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    ws.send_text(&format!("4{}", "x".repeat(1_000_001))).await;
    assert_eq!(ws.close_code().await, Some(1009));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(get(s.addr, &polling(EIO, &sid)).await.status, 400);
}

#[tokio::test]
async fn cors() {
    let s = Server::start().await;
    for prefix in [EIO, "/socket.io/"] {
        let r = http(
            s.addr,
            "GET",
            &format!("{prefix}?EIO=4&transport=polling"),
            &[("origin", "http://example.com")],
            Bytes::new(),
        )
        .await;
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        let r = http(
            s.addr,
            "OPTIONS",
            &format!("{prefix}?EIO=4&transport=polling"),
            &[
                ("origin", "http://example.com"),
                ("access-control-request-method", "POST"),
            ],
            Bytes::new(),
        )
        .await;
        assert!(r.status == 204 || r.status == 200);
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        let methods = r.header("access-control-allow-methods").unwrap();
        assert!(methods.contains("GET") && methods.contains("POST"));
    }
    // /recovery/: no CORS at all.
    let r = http(
        s.addr,
        "GET",
        "/recovery/?EIO=4&transport=polling",
        &[("origin", "http://example.com")],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r
        .headers
        .keys()
        .all(|k| !k.as_str().starts_with("access-control")));
    let r = http(
        s.addr,
        "OPTIONS",
        "/recovery/?EIO=4&transport=polling",
        &[("origin", "http://example.com")],
        Bytes::new(),
    )
    .await;
    assert!(r.status >= 400);
    assert!(r
        .headers
        .keys()
        .all(|k| !k.as_str().starts_with("access-control")));
}

#[tokio::test]
async fn other_paths_get_404_and_garbage_is_dropped() {
    let s = Server::start().await;
    assert_eq!(get(s.addr, "/").await.status, 404);
    assert_eq!(
        get(s.addr, "/socket.io?EIO=4&transport=polling")
            .await
            .status,
        404
    );
    // Not HTTP at all: the connection is closed (a 400 first is fine).
    let mut garbage = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    garbage.write_all(b"\x00\x01garbage\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(WAIT, garbage.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "connection left open");
    // An Origin header with control characters: 400.
    let mut bad = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    bad.write_all(
        b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nOrigin: http://a\x01b\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(WAIT, bad.read_to_end(&mut buf)).await;
    assert!(
        buf.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    // A half-open connection does not stop the others.
    let mut idle = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    idle.write_all(b"GET /engine.io/?EIO=4").await.unwrap();
    let sid = handshake(s.addr, EIO).await;
    assert_eq!(sid.len(), 20);
    // An invalid Sec-WebSocket-Key is not accepted.
    let r = http(
        s.addr,
        "GET",
        "/engine.io/?EIO=4&transport=websocket",
        &[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "not-a-key"),
        ],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn websocket_protocol_violations_close_only_that_session() {
    let s = Server::start().await;
    let mut good = ws(s.addr, "/engine.io/?EIO=4&transport=websocket")
        .await
        .unwrap();
    good.text().await;
    // Invalid UTF-8 in a text frame, sent raw (the client library would refuse to).
    let mut raw = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    raw.write_all(
        b"GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = raw.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 101"));
    // Masked text frame with bytes ff fe (invalid UTF-8).
    raw.write_all(&[0x81, 0x82, 0, 0, 0, 0, 0xff, 0xfe])
        .await
        .unwrap();
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match raw.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok());
    // Unmasked frame from a client.
    let mut raw = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    raw.write_all(
        b"GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let _ = raw.read(&mut buf).await.unwrap();
    raw.write_all(&[0x81, 0x06, b'4', b'h', b'e', b'l', b'l', b'o'])
        .await
        .unwrap();
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match raw.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok());
    // A frame with a reserved bit set (RSV1, no extension negotiated).
    let mut raw = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    raw.write_all(
        b"GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let _ = raw.read(&mut buf).await.unwrap();
    raw.write_all(&[0xc1, 0x82, 0, 0, 0, 0, b'4', b'x'])
        .await
        .unwrap();
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match raw.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok());
    // The other session was not affected.
    good.send_text("4still here").await;
    assert_eq!(good.text_app().await, "4still here");
}

#[tokio::test]
async fn polling_right_after_the_upgrade_is_refused() {
    // The suite's sequence: `5` then at once a GET with the same sid, then a second WebSocket.
    let s = Server::start().await;
    // The Socket.IO suite does not even wait for `3probe` before sending `5`.
    for wait_for_probe in [true, false, true, false, false] {
        let sid = handshake(s.addr, EIO).await;
        let mut ws = ws(
            s.addr,
            &format!("{EIO}?EIO=4&transport=websocket&sid={sid}"),
        )
        .await
        .unwrap();
        if wait_for_probe {
            ws.send_text("2probe").await;
            assert_eq!(ws.text().await, "3probe");
            ws.send_text("5").await;
        } else {
            // `2probe` and `5` in one go (a GET racing a `5` still in flight would be pending
            // during the upgrade and released with a noop, which is also correct).
            ws.send_texts(&["2probe", "5"]).await;
        }
        assert_eq!(get(s.addr, &polling(EIO, &sid)).await.status, 400);
        let second = ws_or_none(
            s.addr,
            &format!("{EIO}?EIO=4&transport=websocket&sid={sid}"),
        )
        .await;
        if let Some(mut second) = second {
            assert!(second.closed_within(Duration::from_secs(1), false).await);
        }
        if !wait_for_probe {
            assert_eq!(ws.text().await, "3probe");
        }
        ws.send_text("4hello").await;
        assert_eq!(ws.text_app().await, "4hello");
    }
}

/// A client frame (masked, with a zero key) of `payload`; `padded` writes a 16-bit length even
/// where 7 bits would do.
fn client_frame(first: u8, payload: &[u8], padded: bool) -> Vec<u8> {
    let mut f = vec![first];
    match payload.len() {
        n if n < 126 && !padded => f.push(0x80 | n as u8),
        n if n < 65536 => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

/// The next frame from the server other than a heartbeat ping (answered): its first byte and
/// payload.
async fn server_frame(raw: &mut tokio::net::TcpStream) -> (u8, Vec<u8>) {
    loop {
        let mut head = [0u8; 2];
        raw.read_exact(&mut head).await.unwrap();
        let len = match head[1] & 0x7f {
            126 => raw.read_u16().await.unwrap() as usize,
            127 => raw.read_u64().await.unwrap() as usize,
            n => n as usize,
        };
        let mut payload = vec![0u8; len];
        raw.read_exact(&mut payload).await.unwrap();
        if head[0] == 0x81 && payload == b"2" {
            raw.write_all(&client_frame(0x81, b"3", false))
                .await
                .unwrap();
            continue;
        }
        return (head[0], payload);
    }
}

/// Writes `bytes` in pieces of `piece` bytes, pausing between them, so that the server reads
/// part of a frame and waits for the rest.
async fn write_slowly(raw: &mut tokio::net::TcpStream, bytes: &[u8], piece: usize) {
    for chunk in bytes.chunks(piece) {
        raw.write_all(chunk).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn websocket_frames_split_fragmented_and_padded_arrive_whole() {
    // A WebSocket's read state is dropped while the connection is idle: a frame that arrives in
    // pieces, a message in fragments, a control frame between them and a padded header must
    // all still be read as they were sent.
    let s = Server::start().await;
    let mut raw = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    raw.set_nodelay(true).unwrap();
    raw.write_all(
        b"GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let mut response = Vec::new();
    while !response.ends_with(b"\r\n\r\n") {
        response.push(raw.read_u8().await.unwrap());
    }
    assert!(response.starts_with(b"HTTP/1.1 101"));
    let (first, open) = server_frame(&mut raw).await;
    assert_eq!((first, open[0]), (0x81, b'0'));

    // One frame in pieces of 3 bytes.
    write_slowly(&mut raw, &client_frame(0x81, b"4split", false), 3).await;
    assert_eq!(server_frame(&mut raw).await, (0x81, b"4split".to_vec()));

    // A message in three fragments, a ping between two of them, each sent after a pause.
    write_slowly(&mut raw, &client_frame(0x01, b"4fr", false), 100).await;
    write_slowly(&mut raw, &client_frame(0x89, b"ping", false), 100).await;
    assert_eq!(server_frame(&mut raw).await, (0x8a, b"ping".to_vec()));
    write_slowly(&mut raw, &client_frame(0x00, b"agm", false), 100).await;
    write_slowly(&mut raw, &client_frame(0x80, b"ent", false), 100).await;
    assert_eq!(server_frame(&mut raw).await, (0x81, b"4fragment".to_vec()));

    // A padded header, then a message larger than the read buffer, in pieces.
    write_slowly(&mut raw, &client_frame(0x81, b"4padded", true), 100).await;
    assert_eq!(server_frame(&mut raw).await, (0x81, b"4padded".to_vec()));
    let big: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
    write_slowly(&mut raw, &client_frame(0x82, &big, false), 16 * 1024).await;
    assert_eq!(server_frame(&mut raw).await, (0x82, big));

    // Two frames in one write, after all of that.
    let mut two = client_frame(0x81, b"4one", false);
    two.extend(client_frame(0x81, b"4two", false));
    raw.write_all(&two).await.unwrap();
    assert_eq!(server_frame(&mut raw).await, (0x81, b"4one".to_vec()));
    assert_eq!(server_frame(&mut raw).await, (0x81, b"4two".to_vec()));
}
