//! The Ferrio twin of `tests/node/client-server.js`: the same namespaces, handlers and options on
//! ferrio-server, so that ferrio-client's interop tests run against both servers.
//!
//! Usage: `client_test_server [PORT] [--recovery]`. Listens on 127.0.0.1:PORT (0: a free port)
//! and prints `listening <port>`; exits by itself after 60 s. See the Node script for what
//! every handler does.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ferrio_server::{ConnectError, Ferrio, Message, Namespace, RawArgs, RecoveryConfig, Socket};
use serde_json::{json, Value};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn setup(ns: &Namespace, received: Arc<Mutex<Vec<Value>>>) {
    let nsp = ns.name().to_owned();
    let namespace = ns.clone();
    ns.on_connection(move |socket: Socket| {
        let nsp = nsp.clone();
        let received = received.clone();
        let namespace = namespace.clone();
        async move {
            let handshake = socket.handshake();
            let header = handshake
                .headers()
                .get("x-ferrio")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let welcome = json!({
                "auth": handshake.auth_raw().to_value().unwrap_or_default(),
                "nsp": nsp,
                "engine": socket.engine_id(),
                "transport": socket.transport().name(),
                "recovered": socket.recovered(),
                "id": socket.id(),
                "header": header,
                "query": handshake.query_param("room"),
            });
            let _ = socket.emit("welcome", &(welcome,));
            socket.on("transport", |socket: Socket, msg: Message| async move {
                msg.ack(&(socket.transport().name(),))
            });
            socket.on("echo", |socket: Socket, msg: Message| async move {
                let args = msg.raw_args()?;
                socket.emit("echo-back", &args)?;
                if msg.ack_requested() {
                    msg.ack(&args)?;
                }
                Ok::<(), BoxError>(())
            });
            socket.on("ask", |socket: Socket, msg: Message| async move {
                let question = msg.raw_args()?;
                let reply = socket
                    .timeout(Duration::from_secs(5))
                    .emit_with_ack("question", &question);
                tokio::spawn(async move {
                    let answer = match reply.await {
                        // emitWithAck resolves with the first argument of the answer.
                        Ok(reply) => reply
                            .raw_args()
                            .ok()
                            .and_then(|a| a.values().first().cloned())
                            .unwrap_or(Value::Null),
                        Err(e) => Value::from(format!("error: {e}")),
                    };
                    let _ = socket.emit("answer", &(answer,));
                });
                Ok::<(), BoxError>(())
            });
            socket.on("binary", |socket: Socket, msg: Message| async move {
                let nested = Nested {
                    nested: Bytes::from_static(&[4, 5]),
                };
                socket.emit("binary-back", &(Bytes::from_static(&[1, 2, 3]), nested))?;
                if msg.ack_requested() {
                    let args = msg.raw_args()?;
                    let len = first_binary_len(&args);
                    msg.ack(&(len, Bytes::from_static(&[9, 8, 7])))?;
                }
                Ok::<(), BoxError>(())
            });
            let list = received.clone();
            socket.on("buffered", move |_s: Socket, msg: Message| {
                let list = list.clone();
                async move {
                    if let Ok(args) = msg.raw_args() {
                        if let (Some(n), Ok(mut l)) = (args.values().first(), list.lock()) {
                            l.push(n.clone());
                        }
                    }
                }
            });
            let list = received.clone();
            socket.on("stats", move |_s: Socket, msg: Message| {
                let list = list.clone();
                async move {
                    let current = list.lock().map(|l| l.clone()).unwrap_or_default();
                    msg.ack(&(current,))
                }
            });
            socket.on("drop-me", move |socket: Socket, _msg: Message| {
                let namespace = namespace.clone();
                async move {
                    let room = socket.id().to_owned();
                    socket.close_transport();
                    tokio::spawn(async move {
                        for n in 1..=3 {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            let _ = namespace.to(room.clone()).emit("missed", &(n,));
                        }
                    });
                }
            });
        }
    });
}

#[derive(serde::Serialize)]
struct Nested {
    nested: Bytes,
}

/// The length of the first argument if it is binary, else -1 (as the Node script answers).
fn first_binary_len(args: &RawArgs) -> i64 {
    let is_placeholder = args
        .values()
        .first()
        .and_then(|v| v.get("_placeholder"))
        .is_some();
    match (is_placeholder, args.attachments().first()) {
        (true, Some(data)) => data.len() as i64,
        _ => -1,
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port: u16 = args.iter().find_map(|a| a.parse().ok()).unwrap_or(0);
    let recovery = args.iter().any(|a| a == "--recovery");
    let mut builder = Ferrio::builder()
        .ping_interval(Duration::from_millis(2000))
        .ping_timeout(Duration::from_millis(2000));
    if recovery {
        builder = builder.connection_state_recovery(RecoveryConfig {
            max_disconnection_duration: Duration::from_millis(30_000),
            ..RecoveryConfig::default()
        });
    }
    let io = builder.build();
    let received = Arc::new(Mutex::new(Vec::new()));
    for nsp in ["/", "/a", "/b"] {
        setup(&io.of(nsp), received.clone());
    }
    let private = io.of("/private");
    private.use_connect(|socket: Socket| async move {
        let token = socket
            .handshake()
            .auth_raw()
            .to_value()
            .ok()
            .and_then(|a| a.get("token").cloned());
        if token == Some(Value::from("secret")) {
            Ok(())
        } else {
            Err(ConnectError::new("not authorized").with_data(&json!({"code": 401})))
        }
    });
    setup(&private, received);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening {}", listener.local_addr()?.port());
    tokio::spawn(async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        std::process::exit(0);
    });
    io.serve(listener).await
}
