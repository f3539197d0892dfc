//! The real `socket.io-client` 4.8.4 under Node against the e2e server, over each transport
//! (see `tests/node/client-e2e.js`): connect, acks both ways, binary both ways, rooms and
//! broadcasts with two clients, middleware refusal with data, connection state recovery.

use super::client::Server;

async fn run(transports: &[&str]) {
    let s = Server::start().await;
    let input = serde_json::json!({ "url": s.url(), "transports": transports }).to_string();
    let out = tokio::task::spawn_blocking(move || {
        ferrio_tests::run_node_script("client-e2e.js", input.as_bytes())
    })
    .await
    .expect("node ran");
    let out = String::from_utf8_lossy(&out);
    for step in [
        "ok connect",
        "ok client-ack",
        "ok binary",
        "ok server-ack",
        "ok rooms",
        "ok server-disconnect",
        "ok middleware",
        "ok recovery",
        "ALL OK",
    ] {
        assert!(out.lines().any(|l| l == step), "{step} missing in:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_client_over_polling() {
    run(&["polling"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_client_over_websocket() {
    run(&["websocket"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_client_upgrading_from_polling() {
    run(&["polling", "websocket"]).await;
}
