//! A fetched socket's emit with an acknowledgement (`remoteSocket.timeout(ms).emitWithAck()`),
//! for sockets of this server: the answer, a timeout, a socket that is gone.

mod common;

use std::time::Duration;

use common::{patiently, serve, RawWs};
use ferrio_server::{AckError, Ferrio, Socket};
use tokio::sync::mpsc;

/// Connects a client to `/`.
async fn connect(addr: std::net::SocketAddr) -> RawWs {
    let mut ws = RawWs::open(addr).await;
    ws.send("40").await;
    let accept = ws.recv().await;
    assert!(accept.starts_with("40{"), "not an accept: {accept}");
    ws
}

/// The ack id and the rest of an event that asks for an answer (`42<id>[...]`).
fn ack_id(packet: &str) -> (String, String) {
    let rest = packet
        .strip_prefix("42")
        .unwrap_or_else(|| panic!("not an event: {packet}"));
    let digits = rest.find('[').expect("arguments");
    assert!(digits > 0, "no ack id in {packet}");
    (rest[..digits].to_owned(), rest[digits..].to_owned())
}

#[tokio::test]
async fn a_fetched_socket_answers_its_emit_with_ack() {
    let io = Ferrio::builder().build();
    let addr = serve(io.clone()).await;
    let mut ws = connect(addr).await;
    let sockets = patiently("fetch", io.fetch_sockets()).await.unwrap();
    assert_eq!(sockets.len(), 1);
    let socket = sockets[0].timeout(Duration::from_secs(20));

    let reply = tokio::spawn(socket.emit_with_ack("ping", &(1,)));
    let (id, args) = ack_id(&ws.recv().await);
    assert_eq!(args, r#"["ping",1]"#);
    ws.send(&format!(r#"43{id}["pong",2]"#)).await;
    let reply = patiently("the answer", reply).await.unwrap().unwrap();
    assert_eq!(
        reply.args::<(String, u32)>().unwrap(),
        ("pong".to_owned(), 2)
    );

    // No answer within the timeout.
    let quick = sockets[0].timeout(Duration::from_millis(50));
    let unanswered = tokio::spawn(quick.emit_with_ack("ping", &()));
    let _ = ack_id(&ws.recv().await);
    let err = patiently("the timeout", unanswered)
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, AckError::Timeout), "{err:?}");
}

#[tokio::test]
async fn a_socket_that_left_fails_its_emit_with_ack() {
    let (tx, mut gone) = mpsc::unbounded_channel();
    let io = Ferrio::builder().build();
    io.on_connection(move |socket: Socket| {
        let tx = tx.clone();
        async move {
            socket.on_disconnect(move |_, _| {
                let _ = tx.send(());
                async {}
            });
        }
    });
    let addr = serve(io.clone()).await;
    let mut ws = connect(addr).await;
    let sockets = patiently("fetch", io.fetch_sockets()).await.unwrap();

    // Disconnected while the answer is awaited (no timeout: waited for until then).
    let pending = tokio::spawn(sockets[0].emit_with_ack("ping", &()));
    let _ = ack_id(&ws.recv().await);
    ws.send("41").await;
    patiently("the disconnection", gone.recv()).await.unwrap();
    let err = patiently("the failure", pending)
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, AckError::Disconnected), "{err:?}");

    // Already gone: nothing to wait for.
    let err = patiently("the failure", sockets[0].emit_with_ack("ping", &()))
        .await
        .unwrap_err();
    assert!(matches!(err, AckError::Disconnected), "{err:?}");
}
