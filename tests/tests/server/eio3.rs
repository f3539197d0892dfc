//! Engine.IO 3 clients (`allow_eio3`): the real `socket.io-client` 2.5.0 under Node
//! (`tests/node/client-v2.js`), over polling, WebSocket and the upgrade; the refusal when the
//! option is off; and every expectation of the official Engine.IO v3 test suite
//! (`docs/engine.io-protocol/v3-test-suite/` of the socket.io repository) against the e2e
//! server's `/engine.io/` echo profile with `allow_eio3`, over raw HTTP and WebSocket.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use ferrio_server::engine::Engine;
use ferrio_server::{AckSender, Cors, Ferrio, Message, Socket};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use super::client::*;

fn v3_server() -> Ferrio {
    let io = Ferrio::builder().allow_eio3(true).build();
    io.of("/").on_connection(|socket: Socket| async move {
        let _ = socket.emit("welcome", &(socket.id(),));
        socket.on("echo", |_s: Socket, msg: Message| async move {
            msg.ack(&msg.raw_args()?)?;
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        });
        socket.on(
            "echo-bin",
            |socket: Socket, (data,): (Bytes,), _ack: AckSender| async move {
                socket.emit("bin", &(data,))
            },
        );
    });
    io.of("/chat").on_connection(|socket: Socket| async move {
        socket.on("whoami", |socket: Socket, msg: Message| async move {
            let auth: Value = socket.handshake().auth_raw().to_value().unwrap_or_default();
            msg.ack(&(auth["token"].clone(),))
        });
    });
    io
}

async fn run(transports: &[&str]) {
    let io = v3_server();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _server = tokio::spawn(io.serve(listener));
    let input = json!({"url": format!("http://{addr}"), "transports": transports}).to_string();
    let out = tokio::task::spawn_blocking(move || {
        ferrio_tests::run_node_script("client-v2.js", input.as_bytes())
    })
    .await
    .expect("node ran");
    let out = String::from_utf8_lossy(&out);
    assert!(out.contains("ALL OK"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_client_2_over_polling() {
    run(&["polling"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_client_2_over_websocket() {
    run(&["websocket"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_client_2_upgrading_from_polling() {
    run(&["polling", "websocket"]).await;
}

#[tokio::test]
async fn eio3_is_refused_unless_allowed() {
    let io = Ferrio::builder().build();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _server = tokio::spawn(io.serve(listener));
    let r = get(addr, "/socket.io/?EIO=3&transport=polling").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), Some(5));
}

/// The e2e server's `/engine.io/` profile (echo, 300 / 200 ms heartbeat, 1e6 bytes, CORS `*`)
/// with `allow_eio3`, as `ALLOW_EIO3=1` makes it; stopped on drop.
struct EchoV3 {
    addr: SocketAddr,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for EchoV3 {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

async fn echo_v3() -> EchoV3 {
    let engine = Engine::builder()
        .path("/engine.io/")
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(200))
        .max_http_buffer_size(1_000_000)
        .cors(Cors::any())
        .allow_eio3(true)
        .on_connection(|mut socket| async move {
            while let Some(message) = socket.recv().await {
                socket.send(message);
            }
        })
        .build();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = tokio::spawn(ferrio_server::serve(listener, move |req| {
        let engine = engine.clone();
        async move { engine.handle(req).await }
    }));
    EchoV3 { addr, handle }
}

const V3: &str = "/engine.io/?EIO=3&transport=polling";

/// Opens a v3 polling session (`&b64=1` unless `binary`) and returns its sid.
async fn v3_session(addr: SocketAddr, binary: bool) -> String {
    let r = get(addr, &format!("{V3}{}", if binary { "" } else { "&b64=1" })).await;
    assert_eq!(r.status, 200);
    let text = r.text();
    let (_, open) = text.split_once(':').expect("length prefix");
    let open: Value = serde_json::from_str(&open[1..]).expect("open json");
    open["sid"].as_str().expect("sid").to_owned()
}

fn v3_url(sid: &str) -> String {
    format!("{V3}&sid={sid}")
}

#[tokio::test]
async fn v3_suite_handshake_over_polling() {
    let s = echo_v3().await;
    let r = get(s.addr, V3).await;
    assert_eq!(r.status, 200);
    let text = r.text();
    let (length, content) = text.split_once(':').expect("length prefix");
    assert_eq!(length, content.encode_utf16().count().to_string());
    assert!(content.starts_with('0'), "{content}");
    let open: Value = serde_json::from_str(&content[1..]).unwrap();
    assert!(open["sid"].is_string());
    assert_eq!(open["upgrades"], json!(["websocket"]));
    assert_eq!(open["pingInterval"], json!(300));
    assert_eq!(open["pingTimeout"], json!(200));
    // `maxPayload`: absent (as Node's engine.io sends it to v3 clients) or 1e6.
    assert!(matches!(
        open.get("maxPayload"),
        None | Some(Value::Number(_))
    ));
    assert!(open
        .get("maxPayload")
        .is_none_or(|max| max == &json!(1_000_000)));
    // An invalid transport, or a POST without a session: 400.
    assert_eq!(get(s.addr, "/engine.io/?EIO=3").await.status, 400);
    assert_eq!(
        get(s.addr, "/engine.io/?EIO=3&transport=abc").await.status,
        400
    );
    assert_eq!(post(s.addr, V3, Bytes::new()).await.status, 400);
}

#[tokio::test]
async fn v3_suite_handshake_over_websocket() {
    let s = echo_v3().await;
    let mut ws = ws(s.addr, "/engine.io/?EIO=3&transport=websocket")
        .await
        .unwrap();
    let open = ws.text().await;
    assert!(open.starts_with('0'), "{open}");
    let open: Value = serde_json::from_str(&open[1..]).unwrap();
    assert!(open["sid"].is_string());
    assert_eq!(open["upgrades"], json!([]));
    assert_eq!(open["pingInterval"], json!(300));
    assert_eq!(open["pingTimeout"], json!(200));
}

#[tokio::test]
async fn v3_suite_polling_text_payloads_are_echoed() {
    let s = echo_v3().await;
    for body in [
        "6:4hello",
        "6:4test16:4test26:4test3",
        "6:4hello10:b4AQIDBA==",
    ] {
        let url = v3_url(&v3_session(s.addr, false).await);
        let r = post(s.addr, &url, body).await;
        assert_eq!((r.status, r.text().as_str()), (200, "ok"));
        let r = get(s.addr, &url).await;
        assert_eq!((r.status, r.text().as_str()), (200, body));
    }
}

#[tokio::test]
async fn v3_suite_polling_binary_payload_for_a_binary_client() {
    let s = echo_v3().await;
    let url = v3_url(&v3_session(s.addr, true).await);
    let r = post(s.addr, &url, "6:4hello10:b4AQIDBA==").await;
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    let r = get(s.addr, &url).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body.as_ref(),
        &[0, 6, 255, 52, 104, 101, 108, 108, 111, 1, 5, 255, 4, 1, 2, 3, 4]
    );
}

#[tokio::test]
async fn v3_suite_invalid_polling_payload_closes_the_session() {
    let s = echo_v3().await;
    let url = v3_url(&v3_session(s.addr, false).await);
    assert_eq!(post(s.addr, &url, "abc").await.status, 400);
    assert_eq!(get(s.addr, &url).await.status, 400);
}

#[tokio::test]
async fn v3_suite_websocket_messages() {
    let s = echo_v3().await;
    let target = "/engine.io/?EIO=3&transport=websocket";
    let mut ws1 = ws(s.addr, target).await.unwrap();
    ws1.text().await;
    ws1.send_text("4hello").await;
    assert_eq!(ws1.text().await, "4hello");
    // Binary frames carry the packet type byte both ways.
    ws1.send_binary(&[4, 1, 2, 3, 4]).await;
    assert_eq!(ws1.binary_app().await.as_ref(), &[4, 1, 2, 3, 4]);
    // An invalid packet closes the session.
    let mut ws2 = ws(s.addr, target).await.unwrap();
    ws2.text().await;
    ws2.send_text("abc").await;
    assert!(ws2.closed_within(WAIT, false).await);
}

#[tokio::test]
async fn v3_suite_heartbeat_over_polling() {
    let s = echo_v3().await;
    let url = v3_url(&v3_session(s.addr, false).await);
    for _ in 0..3 {
        assert_eq!(post(s.addr, &url, "1:2").await.status, 200);
        let r = get(s.addr, &url).await;
        assert_eq!((r.status, r.text().as_str()), (200, "1:3"));
    }
    // Without client pings the session ends (pingInterval + pingTimeout after the last one):
    // the poll held meanwhile is released, and a ping after that is refused.
    let r = get(s.addr, &url).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(post(s.addr, &url, "1:2").await.status, 400);
}

#[tokio::test]
async fn v3_suite_heartbeat_over_websocket() {
    let s = echo_v3().await;
    let mut ws = ws(s.addr, "/engine.io/?EIO=3&transport=websocket")
        .await
        .unwrap();
    ws.text().await;
    for _ in 0..3 {
        ws.send_text("2").await;
        assert_eq!(ws.text().await, "3");
    }
    // Without client pings the server closes the WebSocket.
    assert!(ws.closed_within(WAIT, false).await);
}

#[tokio::test]
async fn v3_suite_close() {
    let s = echo_v3().await;
    let url = v3_url(&v3_session(s.addr, false).await);
    let pending = tokio::spawn({
        let url = url.clone();
        let addr = s.addr;
        async move { get(addr, &url).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(post(s.addr, &url, "1:1").await.status, 200);
    let r = pending.await.unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "1:6"));
    assert_eq!(get(s.addr, &url).await.status, 400);

    let mut ws = ws(s.addr, "/engine.io/?EIO=3&transport=websocket")
        .await
        .unwrap();
    ws.text().await;
    ws.send_text("1").await;
    assert!(ws.closed_within(WAIT, false).await);
}

#[tokio::test]
async fn v3_suite_upgrade() {
    let s = echo_v3().await;
    let sid = v3_session(s.addr, false).await;
    let url = v3_url(&sid);
    let target = format!("/engine.io/?EIO=3&transport=websocket&sid={sid}");
    let mut ws1 = ws(s.addr, &target).await.unwrap();
    ws1.send_text("2probe").await;
    assert_eq!(ws1.text().await, "3probe");
    // The poll during the upgrade gets a noop.
    let r = get(s.addr, &url).await;
    assert_eq!((r.status, r.text().as_str()), (200, "1:6"));
    ws1.send_texts(&["5", "4hello"]).await;
    assert_eq!(ws1.text().await, "4hello");
    // After the upgrade, polling with that sid is refused ...
    assert_eq!(get(s.addr, &url).await.status, 400);
    // ... and another WebSocket with that sid is closed, the upgraded one going on.
    if let Ok(mut other) = ws(s.addr, &target).await {
        assert!(other.closed_within(WAIT, false).await);
    }
    ws1.send_text("4hello").await;
    assert_eq!(ws1.text().await, "4hello");
}
