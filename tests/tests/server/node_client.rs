//! The real `socket.io-client` 4.8.4 under Node against the e2e server, over each transport
//! (see `tests/node/client-e2e.js`): connect, acks both ways, arguments passed on in the order
//! of their keys, binary both ways (large attachments too), rooms and
//! broadcasts with two clients, middleware refusal with data, connection state recovery; and
//! 100 clients × 100 acked emits with none lost (`tests/node/client-load.js`).

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
        "ok large binary",
        "ok key order",
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

/// Runs `tests/node/client-load.js`: `clients` connections of `socket.io-client`, each with
/// `emits` acked emits all in flight at once; every ack must come back once, with its own value.
///
/// The server is the e2e server's standard handler set on a server with socket.io's default
/// options, not the e2e server's `/socket.io/` endpoint: that one has the compliance suites'
/// 300 / 200 ms heartbeat, which 100 polling clients sharing one Node event loop do not always
/// keep on a 2-core machine while they send and ack 10 000 events: a late ping or pong ends
/// sessions, as the protocol says (`ping timeout`, `transport close`, `transport error`
/// disconnects in 1 to 3 runs out of 6 when measured; with the default heartbeat, none in 40).
/// Each test takes about 1.5 s.
async fn load(transports: &[&str], clients: usize, emits: usize) {
    let io = ferrio_server::Ferrio::builder().build();
    crate::e2e::standard_handlers(&io.of("/"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(io.serve(listener));
    let input = serde_json::json!({
        "url": url,
        "clients": clients,
        "emits": emits,
        "transports": transports,
    })
    .to_string();
    let out = tokio::task::spawn_blocking(move || {
        ferrio_tests::run_node_script("client-load.js", input.as_bytes())
    })
    .await
    .expect("node ran");
    server.abort();
    let out = String::from_utf8_lossy(&out);
    let summary: serde_json::Value = out
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no summary in:\n{out}"));
    assert_eq!(summary["ok"], true, "{summary}");
    assert_eq!(summary["acked"], clients * emits, "{summary}");
    for count in ["missing", "wrong", "duplicates", "unknown", "disconnects"] {
        assert_eq!(summary[count], 0, "{count}: {summary}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_clients_times_hundred_acked_emits_over_websocket() {
    load(&["websocket"], 100, 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_clients_times_hundred_acked_emits_over_polling() {
    load(&["polling"], 100, 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_clients_times_hundred_acked_emits_after_upgrading() {
    load(&["polling", "websocket"], 100, 100).await;
}

/// Runs `tests/node/client-lifecycle.js`: `set-data` / `get-data`, `peer-disconnecting` (with the
/// leaving socket's rooms) then `peer-disconnect`, and the data of a recovered socket.
async fn lifecycle(transports: &[&str]) {
    let s = Server::start().await;
    let input = serde_json::json!({ "url": s.url(), "transports": transports }).to_string();
    let out = tokio::task::spawn_blocking(move || {
        ferrio_tests::run_node_script("client-lifecycle.js", input.as_bytes())
    })
    .await
    .expect("node ran");
    let out = String::from_utf8_lossy(&out);
    for step in [
        "ok data",
        "ok peer-disconnecting",
        "ok recovered-data",
        "ALL OK",
    ] {
        assert!(out.lines().any(|l| l == step), "{step} missing in:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_client_data_peer_disconnecting_and_recovered_data_over_websocket() {
    lifecycle(&["websocket"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_client_data_peer_disconnecting_and_recovered_data_over_polling() {
    lifecycle(&["polling"]).await;
}
