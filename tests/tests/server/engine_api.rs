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
