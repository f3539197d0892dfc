//! The standalone Engine.IO server API (`ferrio_server::engine::Engine`, the `engine.io` package's
//! role): what a session knows of its opening request, and why it closed.

use bytes::Bytes;
use ferrio_server::engine::Engine;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::client::*;

#[tokio::test]
async fn a_session_knows_its_request_and_its_close_reason() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let engine = Engine::builder()
        .on_connection(move |mut socket| {
            let tx = tx.clone();
            async move {
                let opened = json!({
                    "id": socket.id(),
                    "protocol": socket.protocol(),
                    "url": socket.url(),
                    "header": socket.headers().get("x-test").and_then(|v| v.to_str().ok()),
                    "foo": socket.query().iter().find(|(k, _)| k == "foo").map(|(_, v)| v.clone()),
                    "address": socket.address().map(|a| a.ip().to_string()),
                });
                let _ = tx.send(opened);
                while let Some(message) = socket.recv().await {
                    socket.send(message);
                }
                let _ = tx.send(json!({ "closed": socket.close_reason() }));
            }
        })
        .build();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(engine.serve(listener));

    let r = http(
        addr,
        "GET",
        "/engine.io/?EIO=4&transport=polling&foo=bar",
        &[("x-test", "yes")],
        Bytes::new(),
    )
    .await;
    let open: Value = serde_json::from_str(&r.text()[1..]).unwrap();
    let sid = open["sid"].as_str().unwrap();
    let opened = rx.recv().await.unwrap();
    assert_eq!(opened["id"], sid);
    assert_eq!(opened["protocol"], 4);
    assert_eq!(opened["url"], "/engine.io/?EIO=4&transport=polling&foo=bar");
    assert_eq!(opened["header"], "yes");
    assert_eq!(opened["foo"], "bar");
    assert_eq!(opened["address"], "127.0.0.1");

    // The client closes the session: the application's loop ends and sees why.
    let url = format!("/engine.io/?EIO=4&transport=polling&sid={sid}");
    assert_eq!(post(addr, &url, "1").await.status, 200);
    assert_eq!(
        rx.recv().await.unwrap(),
        json!({"closed": "transport close"})
    );
}

/// A WebSocket client that stops reading while the server writes to it: its session is closed
/// once more than 10 × `max_http_buffer_size` bytes wait to be written (the kernel's socket
/// buffers full), instead of queueing without bound; another session goes on.
#[tokio::test]
async fn a_websocket_client_that_stops_reading_is_closed() {
    const MESSAGE: usize = 1000;
    // 100 MB at most: far more than the loopback socket buffers hold.
    const MAX_MESSAGES: usize = 100_000;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let engine = Engine::builder()
        .max_http_buffer_size(MESSAGE)
        .on_connection(move |mut socket| {
            let tx = tx.clone();
            async move {
                while let Some(message) = socket.recv().await {
                    if message != ferrio_proto::engine::Packet::Message("flood".into()) {
                        socket.send(message);
                        continue;
                    }
                    let payload = "x".repeat(MESSAGE);
                    let mut sent = 0;
                    while sent < MAX_MESSAGES
                        && socket.send(ferrio_proto::engine::Packet::Message(
                            payload.as_str().into(),
                        ))
                    {
                        sent += 1;
                        if sent % 100 == 0 {
                            // Paced, so that the session's command queue keeps up and the
                            // bound met is the WebSocket's.
                            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                        }
                    }
                    let _ = tx.send(sent);
                }
                let _ = tx.send(usize::MAX);
            }
        })
        .build();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(engine.serve(listener));

    let mut slow = ws(addr, "/engine.io/?EIO=4&transport=websocket")
        .await
        .unwrap();
    slow.text().await;
    slow.send_text("4flood").await;
    // The flood stops (the session closed) well before its cap, and the application's loop
    // ends.
    let sent = rx.recv().await.unwrap();
    assert!(
        sent < MAX_MESSAGES,
        "{sent} messages queued without a close"
    );
    assert_eq!(rx.recv().await, Some(usize::MAX));

    let mut other = ws(addr, "/engine.io/?EIO=4&transport=websocket")
        .await
        .unwrap();
    other.text().await;
    other.send_text("4still here").await;
    assert_eq!(other.text_app().await, "4still here");
    drop(slow);
}

/// A POST whose request is dropped while its body is still coming (its client gone, or a
/// timeout layer in front of the server): the session hears that the POST ended and closes, as
/// for an aborted POST, instead of waiting for that body forever. (Also: an Engine without a
/// connection handler keeps its sessions open.)
#[tokio::test]
async fn a_post_dropped_mid_body_ends_for_the_session() {
    use futures_util::StreamExt;
    use http_body_util::{BodyExt, Empty, StreamBody};
    use hyper::body::Frame;
    use std::time::Duration;

    let engine = Engine::builder().build();
    let get = |url: &str| http::Request::get(url).body(Empty::<Bytes>::new()).unwrap();
    let open = engine
        .handle(get("/engine.io/?EIO=4&transport=polling"))
        .await;
    let body = open.into_body().collect().await.unwrap().to_bytes();
    let open: Value = serde_json::from_slice(&body[1..]).unwrap();
    let url = format!(
        "/engine.io/?EIO=4&transport=polling&sid={}",
        open["sid"].as_str().unwrap()
    );

    // Without a connection handler the session still works.
    let full = http::Request::post(&url)
        .header("content-type", "text/plain;charset=UTF-8")
        .body(http_body_util::Full::new(Bytes::from_static(b"4whole")))
        .unwrap();
    assert_eq!(engine.handle(full).await.status(), 200);

    // A body that sends its first bytes, then nothing more.
    let chunks = futures_util::stream::iter([Ok::<_, std::convert::Infallible>(Frame::data(
        Bytes::from_static(b"4part"),
    ))])
    .chain(futures_util::stream::pending());
    let post = http::Request::post(&url)
        .header("content-type", "text/plain;charset=UTF-8")
        .body(StreamBody::new(chunks))
        .unwrap();
    // The POST never completes; dropping it at the timeout is the client going away.
    if let Ok(r) = tokio::time::timeout(Duration::from_millis(100), engine.handle(post)).await {
        panic!("the POST was answered: {}", r.status());
    }
    let r = tokio::time::timeout(Duration::from_secs(2), engine.handle(get(&url)))
        .await
        .expect("the session still waits for the dropped POST");
    assert_eq!(r.status(), 400);
}

/// A client that asked for base64 (`b64=1`, as `forceBase64` clients do) cannot take binary
/// frames: the bare Engine.IO server sends it binary as `b` + base64 text frames over WebSocket
/// (and, over polling, as `b` records, as every v4 payload does), while a client that did not
/// ask gets a binary frame.
#[tokio::test]
async fn a_base64_client_gets_binary_as_base64_text_frames() {
    let engine = Engine::builder()
        .on_connection(|mut socket| async move {
            while let Some(message) = socket.recv().await {
                socket.send(message);
            }
        })
        .build();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(engine.serve(listener));

    let mut base64 = ws(addr, "/engine.io/?EIO=4&transport=websocket&b64=1")
        .await
        .unwrap();
    base64.text().await; // open
    base64.send_binary(&[1, 2, 3]).await;
    assert_eq!(base64.text().await, "bAQID");

    let mut binary = ws(addr, "/engine.io/?EIO=4&transport=websocket")
        .await
        .unwrap();
    binary.text().await;
    binary.send_binary(&[1, 2, 3]).await;
    match binary.next().await {
        Some(tokio_tungstenite::tungstenite::Message::Binary(b)) => assert_eq!(&b[..], [1, 2, 3]),
        other => panic!("expected a binary frame, got {other:?}"),
    }
}
