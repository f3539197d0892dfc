//! Engine.IO 3 clients (`allow_eio3`): the real `socket.io-client` 2.5.0 under Node
//! (`tests/node/client-v2.js`), over polling, WebSocket and the upgrade; and the refusal when the
//! option is off.

use bytes::Bytes;
use ferrio_server::{AckSender, Ferrio, Message, Socket};
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
