//! `Ferrio::engine_stats`: sessions opened and closed (by close reason), and the Engine.IO
//! packets with data received and sent with their bytes, over WebSocket and long-polling.

mod common;

use std::time::Duration;

use common::{patiently, serve, Polling, RawWs};
use ferrio_server::{CloseReason, EngineStats, EngineStatsSnapshot, Ferrio, Message, Socket};

/// An echo server, with its counters enabled.
async fn echo_server() -> (std::net::SocketAddr, EngineStats) {
    let io = Ferrio::builder().build();
    io.on_connection(|socket: Socket| async move {
        socket.on("echo", |s: Socket, msg: Message| async move {
            let (text,): (String,) = msg.args().expect("one string");
            let _ = s.emit("echo", &(text,));
        });
    });
    let stats = io.engine_stats();
    (serve(io).await, stats)
}

/// The data bytes of a message packet as the client sees it (`4` + data).
fn data(message: &str) -> u64 {
    (message.len() - 1) as u64
}

/// Waits (bounded) until `done` holds for the snapshot.
async fn until(
    what: &str,
    stats: &EngineStats,
    done: impl Fn(&EngineStatsSnapshot) -> bool,
) -> EngineStatsSnapshot {
    patiently(what, async {
        loop {
            let s = stats.snapshot();
            if done(&s) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

#[tokio::test]
async fn websocket_packets_and_bytes_are_counted_both_ways() {
    let (addr, stats) = echo_server().await;
    assert_eq!(stats.snapshot(), EngineStatsSnapshot::default());
    let mut ws = RawWs::open(addr).await;
    let connect = "40";
    ws.send(connect).await;
    let accept = ws.recv().await;
    assert!(accept.starts_with("40{"), "{accept}");
    let event = r#"42["echo","héllo"]"#;
    ws.send(event).await;
    let echo = ws.recv().await;
    assert_eq!(echo, event);
    // The open packet carries the handshake but is not counted (as the reference's listeners
    // attach after it was sent); a pong is no data.
    ws.send("3").await;
    ws.send(event).await;
    assert_eq!(ws.recv().await, event);
    let s = stats.snapshot();
    assert_eq!(s.opened, 1);
    assert_eq!(s.packets_in, 3);
    assert_eq!(s.bytes_in, data(connect) + 2 * data(event));
    assert_eq!(s.packets_out, 3);
    assert_eq!(s.bytes_out, data(&accept) + 2 * data(&echo));
    assert_eq!(s.closed_total(), 0);
    drop(ws);
    let s = until("the close", &stats, |s| s.closed_total() == 1).await;
    assert_eq!(s.opened, 1);
}

#[tokio::test]
async fn polling_packets_and_bytes_are_counted_both_ways() {
    let (addr, stats) = echo_server().await;
    let polling = Polling::open(addr).await;
    polling.post(&["40"]).await;
    let accept = polling.get().await;
    assert_eq!(accept.len(), 1);
    assert!(accept[0].starts_with("40{"), "{accept:?}");
    let event = r#"42["echo","dé"]"#;
    polling.post(&[event, event]).await;
    let mut echoes = Vec::new();
    while echoes.len() < 2 {
        echoes.extend(polling.get().await);
    }
    assert_eq!(echoes, [event, event]);
    let s = stats.snapshot();
    assert_eq!(s.opened, 1);
    assert_eq!(s.packets_in, 3);
    assert_eq!(s.bytes_in, data("40") + 2 * data(event));
    assert_eq!(s.packets_out, 3);
    assert_eq!(s.bytes_out, data(&accept[0]) + 2 * data(event));
    // The client closes.
    polling.post(&["1"]).await;
    let s = until("the close", &stats, |s| s.closed_total() == 1).await;
    assert_eq!(s.closed(CloseReason::TransportClose), 1);
}

#[tokio::test]
async fn a_session_without_a_socket_is_opened_and_closed() {
    let (addr, stats) = echo_server().await;
    let polling = Polling::open(addr).await;
    assert_eq!(stats.snapshot().opened, 1);
    polling.post(&["1"]).await;
    let s = until("the close", &stats, |s| s.closed_total() == 1).await;
    assert_eq!(s.closed(CloseReason::TransportClose), 1);
    assert_eq!((s.packets_in, s.packets_out), (0, 0));
}

#[tokio::test]
async fn nothing_is_counted_before_the_counters_are_enabled() {
    let io = Ferrio::builder().build();
    let addr = serve(io.clone()).await;
    let polling = Polling::open(addr).await;
    polling.post(&["40"]).await;
    assert!(polling.get().await[0].starts_with("40{"));
    let stats = io.engine_stats();
    // The session opened before: not counted, even when it goes on.
    polling.post(&["41"]).await;
    polling.post(&["1"]).await;
    let other = Polling::open(addr).await;
    assert_eq!(stats.snapshot().opened, 1);
    other.post(&["1"]).await;
    let s = until("the close", &stats, |s| s.closed_total() == 1).await;
    assert_eq!((s.packets_in, s.packets_out), (0, 0));
}
