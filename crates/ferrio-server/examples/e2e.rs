//! The end-to-end test server: the server that the acceptance tests and the official Engine.IO
//! v4 and Socket.IO v5 compliance suites talk to. It makes behaviour observable from the network;
//! it is not a demo.
//!
//! One HTTP/1.1 listener on 127.0.0.1:3000 (`PORT` overrides the port), endpoints chosen by
//! path prefix, 404 for anything else:
//!
//! | Prefix | What |
//! |---|---|
//! | `/engine.io/` | bare Engine.IO echo: every message goes back unchanged (300 / 200 ms heartbeat, CORS `*`; Engine.IO 3 clients too when `ALLOW_EIO3=1`) |
//! | `/socket.io/` | Socket.IO, compliance profile: 300 / 200 ms heartbeat, 1000 ms connect timeout, no recovery, CORS `*`; namespaces `/`, `/custom`, `/restricted` (token `let-me-in`) |
//! | `/recovery/` | Socket.IO, recovery profile: default heartbeat, connection state recovery with a 5000 ms window, no CORS; namespace `/` |
//! | `/msgpack/` | Socket.IO with the msgpack parser (`e2e/msgpack.rs`): the `/socket.io/` profile, every packet in `socket.io-msgpack-parser`'s format |
//! | `/app/`, `/login` | the application profile (`e2e/app.rs`): an axum app whose user layer reads the `user` cookie into the request's extensions, `/login?user=<name>` sets it, CORS with credentials for three origins; namespace `/` admits only a handshake that carried a user |
//!
//! Every namespace runs the standard handler set (see [`standard_handlers`]).
//!
//! ```text
//! cargo run -p ferrio-server --example e2e            # 127.0.0.1:3000
//! PORT=3100 cargo run -p ferrio-server --example e2e
//! ALLOW_EIO3=1 cargo run -p ferrio-server --example e2e   # for the Engine.IO v3 suite
//! ```

use std::time::Duration;

use bytes::Bytes;
use ferrio_server::engine::Engine;
use ferrio_server::{
    serve, Body, ConnectError, Cors, Ferrio, FerrioBuilder, Message, Namespace, RawArgs,
    RecoveryConfig, Socket,
};
use serde::Serialize;
use serde_json::{json, Value};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[path = "e2e/app.rs"]
mod app;
#[path = "e2e/msgpack.rs"]
mod msgpack;

/// The three endpoints.
#[derive(Clone)]
pub struct E2e {
    /// `/engine.io/`.
    pub engine: Engine,
    /// `/socket.io/`.
    pub compliance: Ferrio,
    /// `/recovery/`.
    pub recovery: Ferrio,
}

/// Builds the three endpoints.
pub fn build() -> E2e {
    build_with(|builder, _path| builder)
}

/// The compliance profile of test-server spec section 3 at `path`, on `builder` (which may
/// bring a cluster adapter, or another parser: `/msgpack/`): its engine options, and the
/// namespaces `/`, `/custom` and `/restricted` with the standard handler set.
pub fn compliance(builder: FerrioBuilder, path: &str) -> Ferrio {
    let io = builder
        .path(path)
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(200))
        .max_http_buffer_size(1_000_000)
        .connect_timeout(Duration::from_millis(1000))
        .cors(Cors::any())
        .yield_after_flush(true)
        .build();
    standard_handlers(&io.of("/"));
    standard_handlers(&io.of("/custom"));
    let restricted = io.of("/restricted");
    restricted.use_connect(|socket: Socket| async move {
        let token = socket
            .handshake()
            .auth_raw()
            .to_value()
            .ok()
            .and_then(|auth| auth.get("token").cloned());
        if token == Some(Value::from("let-me-in")) {
            Ok(())
        } else {
            Err(ConnectError::new("not authorized").with_data(&json!({"reason": "invalid token"})))
        }
    });
    standard_handlers(&restricted);
    io
}

/// Builds the three endpoints, passing each Socket.IO endpoint's builder (and its path) through
/// `configure` first: how the cluster example adds its adapter.
pub fn build_with(configure: impl Fn(FerrioBuilder, &str) -> FerrioBuilder) -> E2e {
    let engine = Engine::builder()
        .path("/engine.io/")
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(200))
        .max_http_buffer_size(1_000_000)
        .cors(Cors::any())
        .allow_eio3(std::env::var_os("ALLOW_EIO3").is_some_and(|v| v == "1"))
        .yield_after_flush(true)
        .on_connection(|mut socket| async move {
            while let Some(message) = socket.recv().await {
                socket.send(message);
            }
        })
        .build();

    let compliance = compliance(configure(Ferrio::builder(), "/socket.io/"), "/socket.io/");

    let recovery = configure(Ferrio::builder(), "/recovery/")
        .path("/recovery/")
        .max_http_buffer_size(1_000_000)
        .connection_state_recovery(RecoveryConfig {
            max_disconnection_duration: Duration::from_millis(5000),
            skip_middlewares: true,
            ..RecoveryConfig::default()
        })
        .yield_after_flush(true)
        .build();
    standard_handlers(&recovery.of("/"));

    E2e {
        engine,
        compliance,
        recovery,
    }
}

/// Serves the three endpoints on `listener` (404 elsewhere).
pub async fn run(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    serve_endpoints(listener, build()).await
}

/// Serves `e2e` on `listener` (404 elsewhere).
pub async fn serve_endpoints(listener: tokio::net::TcpListener, e2e: E2e) -> std::io::Result<()> {
    let app = app::build();
    let msgpack = msgpack::build();
    serve(listener, move |req| {
        let e2e = e2e.clone();
        let app = app.clone();
        let msgpack = msgpack.clone();
        async move {
            let path = req.uri().path();
            if e2e.engine.matches(path) {
                e2e.engine.handle(req).await
            } else if e2e.compliance.matches(path) {
                e2e.compliance.handle(req).await
            } else if e2e.recovery.matches(path) {
                e2e.recovery.handle(req).await
            } else if msgpack.matches(path) {
                msgpack.handle(req).await
            } else if app::serves(path) {
                app::handle(&app, req).await
            } else {
                let mut res = http::Response::new(Body::new(Bytes::new()));
                *res.status_mut() = http::StatusCode::NOT_FOUND;
                res
            }
        }
    })
    .await
}

/// A room name as JavaScript's `String(room)` writes it.
fn room_name(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => "undefined".to_owned(),
    }
}

/// The socket's rooms, sorted, without its own id room.
fn rooms(socket: &Socket) -> Vec<String> {
    let mut rooms = socket.rooms();
    rooms.retain(|r| r != socket.id());
    rooms.sort();
    rooms
}

/// The arguments from index `from` on, attachments kept.
fn rest(args: &RawArgs, from: usize) -> RawArgs {
    RawArgs::new(
        args.values().iter().skip(from).cloned().collect(),
        args.attachments().to_vec(),
    )
}

/// Marks a socket whose data was set by `set-data` (`get-data` answers `null` otherwise).
#[derive(Clone)]
struct DataStored;

#[derive(Serialize)]
struct Answer {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply: Option<RawArgs>,
}

/// The standard handler set of every namespace of the test server.
pub fn standard_handlers(ns: &Namespace) {
    ns.on_connection(|socket: Socket| async move {
        let auth = socket
            .handshake()
            .auth_raw()
            .to_value()
            .unwrap_or_else(|_| json!({}));
        let _ = socket.emit("auth", &(&auth,));

        socket.on("message", |socket: Socket, msg: Message| async move {
            socket.emit("message-back", &msg.raw_args()?)?;
            Ok::<(), BoxError>(())
        });
        socket.on(
            "message-with-ack",
            |_socket: Socket, msg: Message| async move {
                msg.ack(&msg.raw_args()?)?;
                Ok::<(), BoxError>(())
            },
        );
        socket.on("emit-with-ack", |socket: Socket, msg: Message| async move {
            let reply = socket.emit_with_ack("emit-with-ack", &msg.raw_args()?);
            // Wait for the client's answer without holding up this socket's other events.
            tokio::spawn(async move {
                if let Ok(Ok(args)) = reply.await.map(|r| r.raw_args()) {
                    let _ = socket.emit("emit-with-ack", &args);
                }
            });
            Ok::<(), BoxError>(())
        });
        socket.on("ask-client", |socket: Socket, msg: Message| async move {
            let args = msg.raw_args()?;
            let payload = RawArgs::new(
                args.values().iter().take(1).cloned().collect(),
                args.attachments().to_vec(),
            );
            let timeout = args.values().get(1).and_then(Value::as_f64).unwrap_or(0.0);
            let reply = socket
                .timeout(Duration::from_millis(timeout.max(0.0) as u64))
                .emit_with_ack("ask", &payload);
            let ack = msg.ack_sender();
            tokio::spawn(async move {
                let answer = match reply.await.map(|r| r.raw_args()) {
                    Ok(Ok(reply)) => Answer {
                        ok: true,
                        reply: Some(reply),
                    },
                    _ => Answer {
                        ok: false,
                        reply: None,
                    },
                };
                let _ = ack.send(&(answer,));
            });
            Ok::<(), BoxError>(())
        });
        socket.on("whoami", move |socket: Socket, msg: Message| {
            let auth = socket
                .handshake()
                .auth_raw()
                .to_value()
                .unwrap_or_else(|_| json!({}));
            async move {
                msg.ack(&(json!({
                    "id": socket.id(),
                    "nsp": socket.nsp(),
                    "engineId": socket.engine_id(),
                    "transport": socket.transport().name(),
                    "rooms": rooms(&socket),
                    "auth": auth,
                    "recovered": socket.recovered(),
                }),))
            }
        });
        // The rooms list (sorted: a cost that grows with the socket's rooms) only for an ack.
        socket.on("join", |socket: Socket, msg: Message| async move {
            let args = msg.raw_args()?;
            socket.join(room_name(args.values().first()));
            if msg.ack_requested() {
                msg.ack(&(rooms(&socket),))?;
            }
            Ok::<(), BoxError>(())
        });
        socket.on("leave", |socket: Socket, msg: Message| async move {
            let args = msg.raw_args()?;
            socket.leave(&room_name(args.values().first()));
            if msg.ack_requested() {
                msg.ack(&(rooms(&socket),))?;
            }
            Ok::<(), BoxError>(())
        });
        socket.on("room-emit", |socket: Socket, msg: Message| async move {
            let args = msg.raw_args()?;
            let room = room_name(args.values().first());
            socket.to(room).emit("room-emit", &rest(&args, 1))?;
            msg.ack(&())?;
            Ok::<(), BoxError>(())
        });
        socket.on("broadcast", |socket: Socket, msg: Message| async move {
            socket.broadcast().emit("broadcast", &msg.raw_args()?)?;
            msg.ack(&())?;
            Ok::<(), BoxError>(())
        });
        socket.on("disconnect-me", |socket: Socket, msg: Message| async move {
            let args = msg.raw_args()?;
            let close = args.values().first() == Some(&Value::Bool(true));
            socket.disconnect(close);
            Ok::<(), BoxError>(())
        });
        socket.on("set-data", |socket: Socket, msg: Message| async move {
            let args = msg.raw_args()?;
            let value = args.values().first().cloned().unwrap_or(Value::Null);
            // The value is the socket's data itself (what fetch-sockets and recovery carry);
            // the marker tells a stored `{}` from none.
            socket.set_shared_data(&value)?;
            socket.insert_data(DataStored);
            msg.ack(&())?;
            Ok::<(), BoxError>(())
        });
        socket.on("get-data", |socket: Socket, msg: Message| async move {
            // A socket recovered from another server of a cluster has the data stored there
            // (the marker is this server's own), unless it is none (`null`, or Node's `{}`).
            let data = socket.shared_data();
            let stored = socket.data::<DataStored>().is_some()
                || (socket.recovered() && !data.is_null() && data != json!({}));
            msg.ack(&(if stored { data } else { Value::Null },))?;
            Ok::<(), BoxError>(())
        });
        // Still in its rooms: they are listed; the `observers` broadcast leaves it out anyway.
        socket.on_disconnecting(|socket, disconnection| async move {
            let _ = socket.namespace().to("observers").except(socket.id()).emit(
                "peer-disconnecting",
                &(json!({
                    "id": socket.id(),
                    "reason": disconnection.as_str(),
                    "rooms": rooms(&socket),
                }),),
            );
        });
        socket.on_disconnect(|socket, disconnection| async move {
            let _ = socket.namespace().to("observers").emit(
                "peer-disconnect",
                &(json!({"id": socket.id(), "reason": disconnection.as_str()}),),
            );
        });
    });
}

/// One thread, as the reference Node.js server has, and `yield_after_flush` on every endpoint:
/// packets written one after the other (the CONNECT accept, then the `auth` event of the
/// connection handler) reach a local client in separate reads even on a busy machine, which the
/// official Socket.IO suite's message-by-message reads rely on.
#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("e2e test server listening on http://127.0.0.1:{port}");
    run(listener).await
}
