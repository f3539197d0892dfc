//! `ferrio-admin` against what the Socket.IO Admin UI does, with the real `socket.io-client`
//! under Node playing the UI (`tests/node/admin-ui.js`): a wrong password refused, a login's
//! `session`, `config` and `all_sockets`, `server_stats` and its counters, another client's
//! `socket_connected`, `room_joined`, `event_received` and `event_sent`, the UI's `join`,
//! `emit`, `leave` and `_disconnect`, a login with the session id; and a read-only server in
//! production mode, which ignores the commands and tells nothing per socket; and the e2e
//! server's `/app/` profile, whose `/admin` namespace is the Admin UI's. Then the official UI
//! itself (the npm package's `ui/dist`) in headless Chromium (`tests/node/admin-ui-browser.js`,
//! with playwright-core from `bindings/wasm`): log in, the sockets list, a socket's rooms,
//! disconnecting it.
//!
//! Run `npm ci` in `tests/node` (and in `bindings/wasm` for the browser test) first.

#[allow(dead_code, clippy::unwrap_used)]
#[path = "../../crates/ferrio-server/examples/e2e.rs"]
mod e2e;

use ferrio_admin::{instrument, AdminHandle, AdminOptions, Auth, Mode};
use ferrio_server::{AckSender, Cors, Ferrio, Message, Socket};

/// The bcrypt hash of `changeit` (made by the npm `bcryptjs`, cost 4).
const HASH: &str = "$2a$04$kmAFzMOM3PTsvWSf1dNM0uB0RFGSZKzIeBtackP4/DiCIPZgR/mXG";

/// A server on a free port of 127.0.0.1 with the handlers `admin-ui.js` expects.
async fn start(mode: Mode, read_only: bool) -> (String, AdminHandle, tokio::task::JoinHandle<()>) {
    let io = Ferrio::builder().build();
    io.of("/").on_connection(|socket: Socket| async move {
        socket.on("hello", |socket: Socket, msg: Message| async move {
            socket.emit("hi", &msg.raw_args()?)?;
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        });
        socket.on(
            "ping",
            |_socket: Socket, (): (), ack: AckSender| async move { ack.send(&("pong",)) },
        );
    });
    io.of_dynamic(|name| name.starts_with("/dyn-"));
    let admin = instrument(
        &io,
        AdminOptions {
            auth: Auth::Basic {
                username: "admin".into(),
                password_hash: HASH.into(),
            },
            mode,
            read_only,
            namespace_name: "/admin".into(),
            server_id: None,
        },
    )
    .expect("instrumented");
    io.of("/admin").on_connection(|socket: Socket| async move {
        socket.on(
            "probe",
            |_socket: Socket, (): (), ack: AckSender| async move { ack.send(&("probe",)) },
        );
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        let _ = io.serve(listener).await;
    });
    (url, admin, server)
}

async fn run(profile: &str, mode: Mode, read_only: bool, steps: &[&str]) {
    let (url, admin, server) = start(mode, read_only).await;
    let input = serde_json::json!({ "url": url, "profile": profile }).to_string();
    let out = tokio::task::spawn_blocking(move || {
        ferrio_tests::run_node_script("admin-ui.js", input.as_bytes())
    })
    .await
    .expect("node ran");
    server.abort();
    admin.close();
    let out = String::from_utf8_lossy(&out);
    for step in steps.iter().chain(&["ALL OK"]) {
        assert!(out.lines().any(|l| l == *step), "{step} missing in:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_ui_in_development_mode() {
    run(
        "development",
        Mode::Development,
        false,
        &[
            "ok refused",
            "ok login",
            "ok stats",
            "ok socket_connected",
            "ok events",
            "ok commands",
            "ok dynamic",
            "ok session",
            "ok disconnect",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_admin_in_production_mode() {
    run("readonly", Mode::Production, true, &["ok readonly"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_e2e_servers_app_profile_has_the_admin_namespace() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(e2e::run(listener));
    let input = serde_json::json!({ "url": url, "profile": "app", "path": "/app/" }).to_string();
    let out = tokio::task::spawn_blocking(move || {
        ferrio_tests::run_node_script("admin-ui.js", input.as_bytes())
    })
    .await
    .expect("node ran");
    server.abort();
    let out = String::from_utf8_lossy(&out);
    for step in ["ok app admin", "ok app client", "ALL OK"] {
        assert!(out.lines().any(|l| l == step), "{step} missing in:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_ui_in_headless_chromium() {
    // The UI's page is served from 127.0.0.1 on a port the script picks.
    let io = Ferrio::builder()
        .cors(Cors::origin_predicate(|o| o.starts_with("http://127.0.0.1:")).credentials(true))
        .build();
    io.of("/").on_connection(|socket: Socket| async move {
        socket.join("lobby");
    });
    // A second namespace, which the dashboard lists.
    io.of("/chat");
    let admin = instrument(
        &io,
        AdminOptions::new(Auth::Basic {
            username: "admin".into(),
            password_hash: HASH.into(),
        }),
    )
    .expect("instrumented");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        let _ = io.serve(listener).await;
    });
    let input = serde_json::json!({ "url": url }).to_string();
    let out = tokio::task::spawn_blocking(move || {
        ferrio_tests::run_node_script("admin-ui-browser.js", input.as_bytes())
    })
    .await
    .expect("node ran");
    server.abort();
    admin.close();
    let out = String::from_utf8_lossy(&out);
    for step in [
        "ok connected",
        "ok namespaces",
        "ok listed",
        "ok rooms",
        "ok disconnected",
        "ALL OK",
    ] {
        assert!(out.lines().any(|l| l == step), "{step} missing in:\n{out}");
    }
}
