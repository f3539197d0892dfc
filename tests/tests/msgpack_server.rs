//! `ferrio-server` with the msgpack parser against the real `socket.io-client` 4.8.4 and
//! `socket.io-msgpack-parser` 3.0.2 under Node (`tests/node/client-msgpack.js`), through the e2e
//! test server's `/msgpack/` profile, over each transport: connect with auth, acks both ways,
//! binary inline both ways, rooms and broadcasts, connect errors, and bad input closing only the
//! offender.
//!
//! Run `npm ci` in `tests/node` first.

#[allow(dead_code, clippy::unwrap_used)]
#[path = "../../crates/ferrio-server/examples/e2e.rs"]
mod e2e;

async fn run(transports: &[&str]) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(e2e::run(listener));
    let input = serde_json::json!({ "url": url, "path": "/msgpack/", "transports": transports })
        .to_string();
    let out = tokio::task::spawn_blocking(move || {
        ferrio_tests::run_node_script("client-msgpack.js", input.as_bytes())
    })
    .await
    .expect("node ran");
    server.abort();
    let out = String::from_utf8_lossy(&out);
    for step in [
        "ok connect",
        "ok client-ack",
        "ok binary",
        "ok server-ack",
        "ok rooms",
        "ok connect-error",
        "ok bad-input",
        "ALL OK",
    ] {
        assert!(out.lines().any(|l| l == step), "{step} missing in:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgpack_client_over_websocket() {
    run(&["websocket"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgpack_client_over_polling() {
    run(&["polling"]).await;
}
