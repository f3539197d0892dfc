//! A socket's way out: its `disconnecting` handlers run while it is still in its rooms (and a
//! broadcast to them reaches the other members), its `disconnect` handlers once it left them,
//! both with the reason and its description; with connection state recovery, its data (typed
//! and JSON) comes back with the recovered socket.

mod common;

use std::time::Duration;

use common::{patiently, serve, RawWs};
use ferrio_server::{DisconnectReason, Disconnection, Ferrio, Message, RecoveryConfig, Socket};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// What the handlers saw: which handler, the socket's rooms then (sorted), the disconnection.
type Seen = (&'static str, Vec<String>, Disconnection);

fn sorted(mut rooms: Vec<String>) -> Vec<String> {
    rooms.sort();
    rooms
}

/// The accept's JSON (`40{...}`), skipping nothing else.
fn accept(text: &str) -> Value {
    let json = text
        .strip_prefix("40")
        .unwrap_or_else(|| panic!("not an accept: {text}"));
    serde_json::from_str(json).expect("accept JSON")
}

#[tokio::test]
async fn disconnecting_sees_the_rooms_and_broadcasts_to_them() {
    let (tx, mut seen) = mpsc::unbounded_channel::<Seen>();
    let io = Ferrio::builder().build();
    io.of("/").on_connection(move |socket: Socket| {
        let tx = tx.clone();
        async move {
            socket.join("lobby");
            let disconnecting = tx.clone();
            socket.on_disconnecting(move |socket, disconnection| {
                let tx = disconnecting.clone();
                async move {
                    let _ = socket.to("lobby").emit("leaving", &(socket.id(),));
                    let _ = tx.send(("disconnecting", sorted(socket.rooms()), disconnection));
                }
            });
            socket.on_disconnect(move |socket, disconnection| {
                let tx = tx.clone();
                async move {
                    let _ = socket.to("lobby").emit("left", &(socket.id(),));
                    let _ = tx.send(("disconnect", sorted(socket.rooms()), disconnection));
                }
            });
        }
    });
    let addr = serve(io).await;
    let mut a = RawWs::open(addr).await;
    a.send("40").await;
    let a_id = accept(&a.recv().await)["sid"].as_str().unwrap().to_owned();
    let mut b = RawWs::open(addr).await;
    b.send("40").await;
    let b_id = accept(&b.recv().await)["sid"].as_str().unwrap().to_owned();

    // a leaves: its disconnecting handler still sees its rooms and reaches b through them.
    a.send("41").await;
    let (which, rooms, disconnection) = patiently("disconnecting", seen.recv()).await.unwrap();
    assert_eq!(which, "disconnecting");
    assert_eq!(rooms, sorted(vec![a_id.clone(), "lobby".to_owned()]));
    assert_eq!(disconnection, DisconnectReason::ClientNamespaceDisconnect);
    assert_eq!(disconnection.description(), None);
    let (which, rooms, disconnection) = patiently("disconnect", seen.recv()).await.unwrap();
    assert_eq!(which, "disconnect");
    assert!(rooms.is_empty(), "{rooms:?}");
    assert_eq!(
        disconnection.reason(),
        DisconnectReason::ClientNamespaceDisconnect
    );
    assert_eq!(b.recv().await, format!(r#"42["leaving","{a_id}"]"#));
    assert_eq!(b.recv().await, format!(r#"42["left","{a_id}"]"#));

    // b sends something undecodable: the description says what.
    b.send("42{").await;
    let (which, rooms, disconnection) = patiently("disconnecting", seen.recv()).await.unwrap();
    assert_eq!(which, "disconnecting");
    assert_eq!(rooms, sorted(vec![b_id, "lobby".to_owned()]));
    assert_eq!(disconnection, DisconnectReason::ForcedClose);
    assert!(
        disconnection.description().is_some_and(|d| !d.is_empty()),
        "{disconnection:?}"
    );
    let (which, _, again) = patiently("disconnect", seen.recv()).await.unwrap();
    assert_eq!((which, again), ("disconnect", disconnection));

    // c's WebSocket fails (a text frame that is not UTF-8): a transport error, described.
    let c = RawWs::open(addr).await;
    c.send("40").await;
    c.send_raw(&[0x81, 0x82, 0, 0, 0, 0, 0xff, 0xfe]).await;
    let (which, _, disconnection) = patiently("disconnecting", seen.recv()).await.unwrap();
    assert_eq!(which, "disconnecting");
    assert_eq!(disconnection, DisconnectReason::TransportError);
    let description = disconnection.description().unwrap_or_default();
    assert!(
        description.starts_with("websocket error: ") && description.contains("utf-8"),
        "{description}"
    );
    let (which, _, again) = patiently("disconnect", seen.recv()).await.unwrap();
    assert_eq!((which, again), ("disconnect", disconnection));
}

/// Typed data the application keeps with a socket.
#[derive(Clone, Debug, PartialEq)]
struct User(String);

/// Set by the `disconnecting` handler: what it stores is kept too.
#[derive(Clone, Debug, PartialEq)]
struct Farewell;

/// A recovery server; with `slow_disconnecting`, a `disconnecting` handler that takes a while
/// and stores [`Farewell`], so that a client coming back at once finds the socket still
/// leaving.
async fn recovery_server(slow_disconnecting: bool) -> std::net::SocketAddr {
    let io = Ferrio::builder()
        .connection_state_recovery(RecoveryConfig {
            max_disconnection_duration: Duration::from_secs(30),
            ..RecoveryConfig::default()
        })
        .build();
    io.of("/").on_connection(move |socket: Socket| async move {
        socket.on(
            "set",
            |socket: Socket, (name,): (String,), _ack| async move {
                socket.insert_data(User(name.clone()));
                socket.set_shared_data(&json!({"name": name}))
            },
        );
        socket.on("get", |socket: Socket, msg: Message| async move {
            msg.ack(&(json!({
                "user": socket.data::<User>().map(|u| u.0),
                "farewell": socket.data::<Farewell>().is_some(),
                "shared": socket.shared_data(),
                "recovered": socket.recovered(),
            }),))
        });
        if slow_disconnecting {
            socket.on_disconnecting(|socket, _| async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                socket.insert_data(Farewell);
            });
        }
    });
    serve(io).await
}

async fn typed_and_json_data_come_back(slow_disconnecting: bool) {
    let addr = recovery_server(slow_disconnecting).await;
    let mut ws = RawWs::open(addr).await;
    ws.send("40").await;
    let first = accept(&ws.recv().await);
    ws.send(r#"42["set","ann"]"#).await;
    ws.send(r#"421["get"]"#).await;
    let before: Value = serde_json::from_str(ws.recv().await.strip_prefix("431").unwrap()).unwrap();
    assert_eq!(before[0]["user"], "ann");
    // The transport dies; the client comes back at once.
    drop(ws);
    let mut ws = RawWs::open(addr).await;
    ws.send(&format!(
        r#"40{{"pid":"{}"}}"#,
        first["pid"].as_str().unwrap()
    ))
    .await;
    let again = accept(&ws.recv().await);
    assert_eq!(again["sid"], first["sid"]);
    ws.send(r#"421["get"]"#).await;
    let after: Value = serde_json::from_str(ws.recv().await.strip_prefix("431").unwrap()).unwrap();
    assert_eq!(
        after[0],
        json!({
            "user": "ann",
            "farewell": slow_disconnecting,
            "shared": {"name": "ann"},
            "recovered": true,
        })
    );
}

#[tokio::test]
async fn recovery_restores_typed_and_json_data() {
    typed_and_json_data_come_back(false).await;
}

/// The socket to recover is still in its `disconnecting` handler when the client comes back:
/// the recovery waits for it, and gets what the handler stored too.
#[tokio::test]
async fn recovery_waits_for_disconnecting_handlers() {
    typed_and_json_data_come_back(true).await;
}
