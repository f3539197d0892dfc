//! `ferrio-admin` with Ferrio's own client: the `_admin` part of the shared data that other
//! nodes of a cluster see in `fetch_sockets` (development mode only), and an admin namespace
//! without authentication. The Admin UI's whole exchange is tested with the npm client in the
//! `ferrio-tests` crate (`tests/tests/admin_ui.rs`).

use ferrio_admin::{instrument, AdminOptions, Auth, Mode};
use ferrio_client::Transport;
use ferrio_server::{AckSender, Ferrio, Socket};
use serde_json::{json, Value};

/// A server whose `/` acknowledges `ping` (so that a client knows its connection handlers ran).
async fn serve(mode: Mode) -> (Ferrio, String, ferrio_admin::AdminHandle) {
    let io = Ferrio::builder().build();
    io.of("/").on_connection(|socket: Socket| async move {
        socket.on("ping", |_s: Socket, (): (), ack: AckSender| async move {
            ack.send(&("pong",))
        });
    });
    let mut options = AdminOptions::new(Auth::None);
    options.mode = mode;
    let admin = instrument(&io, options).expect("instrumented");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(io.clone().serve(listener));
    (io, url, admin)
}

/// The shared data of the only socket of `/`, once its connection handlers ran.
async fn fetched_data(mode: Mode) -> (Value, String) {
    let (io, url, _admin) = serve(mode).await;
    let client = ferrio_client::io(&format!("{url}/"))
        .transports(&[Transport::WebSocket])
        .connect()
        .await
        .expect("connected");
    let reply = client.emit_with_ack("ping", &()).await.expect("pong");
    assert_eq!(reply.args::<(String,)>().expect("args").0, "pong");
    let engine = client.manager().engine_id().expect("engine id");
    let sockets = io.of("/").fetch_sockets().await.expect("fetched");
    assert_eq!(sockets.len(), 1);
    (sockets[0].data().clone(), engine)
}

#[tokio::test]
async fn fetched_sockets_carry_the_admin_part_in_development_mode() {
    let (data, engine) = fetched_data(Mode::Development).await;
    assert_eq!(
        data,
        json!({"_admin": {"clientId": &engine[..12], "transport": "websocket"}})
    );
}

#[tokio::test]
async fn production_mode_leaves_the_data_alone() {
    let (data, _) = fetched_data(Mode::Production).await;
    assert_eq!(data, json!({}));
}

#[tokio::test]
async fn without_authentication_anyone_gets_config_and_no_session() {
    let (_io, url, _admin) = serve(Mode::Development).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let admin = ferrio_client::io(&format!("{url}/admin"))
        .with_socket(move |s| {
            s.on_any(move |_s, msg| {
                let args: Vec<Value> = msg.args().unwrap_or_default();
                let _ = tx.send((msg.event().to_owned(), args));
            });
        })
        .connect()
        .await
        .expect("connected");
    let mut names = Vec::new();
    loop {
        let (event, args) = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
            .await
            .expect("an event in time")
            .expect("open");
        names.push(event.clone());
        if event == "all_sockets" {
            let me = args[0]
                .as_array()
                .expect("array")
                .iter()
                .find(|s| s["id"] == json!(admin.id()))
                .cloned()
                .expect("the admin socket is listed");
            assert_eq!(me["nsp"], "/admin");
            assert_eq!(me["data"], json!({}));
            break;
        }
        if event == "config" {
            assert_eq!(
                args[0]["supportedFeatures"],
                json!([
                    "EMIT",
                    "JOIN",
                    "LEAVE",
                    "DISCONNECT",
                    "MJOIN",
                    "MLEAVE",
                    "MDISCONNECT",
                    "AGGREGATED_EVENTS",
                    "ALL_EVENTS"
                ])
            );
        }
    }
    assert!(names.contains(&"config".to_owned()), "{names:?}");
    assert!(!names.contains(&"session".to_owned()), "{names:?}");
}

/// The bcrypt hash of "changeit" (cost 10).
const CHANGEIT: &str = "$2a$10$LBytqDjH8CiopW5V9gVP/er9rJLxKTShReFVBCWXnvVsgWkWMbtQ2";

/// A flood of logins runs at most `MAX_PASSWORD_CHECKS` bcrypt checks at once: the attempts
/// that find every check slot taken are refused at once, even with the right password, and a
/// later attempt is checked again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_checks_are_bounded_under_a_flood_of_logins() {
    let io = Ferrio::builder().build();
    let admin = instrument(
        &io,
        AdminOptions::new(Auth::Basic {
            username: "admin".into(),
            password_hash: CHANGEIT.into(),
        }),
    )
    .expect("instrumented");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/admin", listener.local_addr().expect("addr"));
    tokio::spawn(io.clone().serve(listener));
    let login = |url: String| async move {
        ferrio_client::io(&url)
            .force_new(true)
            .reconnection(false)
            .transports(&[Transport::WebSocket])
            .auth(json!({"username": "admin", "password": "changeit"}))
            .connect()
            .await
    };
    // All at once: each bcrypt check takes far longer than the CONNECTs take to arrive.
    let attempts = 8;
    let results = futures_util::future::join_all((0..attempts).map(|_| login(url.clone()))).await;
    let admitted = results.iter().filter(|r| r.is_ok()).count();
    let refused: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(ToString::to_string))
        .collect();
    assert!(admitted >= 1, "{refused:?}");
    assert!(
        !refused.is_empty(),
        "all {attempts} attempts were checked at once"
    );
    assert!(
        refused.iter().all(|e| e.contains("invalid credentials")),
        "{refused:?}"
    );
    // Once the flood is over, the right password is checked (and admitted) again.
    assert!(login(url).await.is_ok());
    drop(admin);
}
