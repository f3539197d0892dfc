//! The real `socket.io-client` 4.8.4 under Node against `ferrio-server`, sending CONNECT again
//! while the namespace's connect middleware decides (see `tests/node/connect-retries.js`): every
//! CONNECT is answered, a refusal starts a new middleware run with the auth of the CONNECT that
//! came meanwhile, and the socket ends up connected.
//!
//! Run `npm ci` in `tests/node` first.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use ferrio_server::{ConnectError, Ferrio, Message, Socket};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

type Verdict = oneshot::Sender<Result<(), ConnectError>>;

/// The middleware runs the client drives through `/control`.
struct Runs {
    /// Runs that started and were not handed to `next-attempt` yet: their auth and verdict.
    started: tokio::sync::Mutex<mpsc::UnboundedReceiver<(Value, Verdict)>>,
    /// Runs handed to `next-attempt`, waiting for `decide`, oldest first.
    waiting: Mutex<VecDeque<Verdict>>,
    count: Mutex<usize>,
}

fn server() -> Ferrio {
    let (started_tx, started) = mpsc::unbounded_channel();
    let runs = Arc::new(Runs {
        started: tokio::sync::Mutex::new(started),
        waiting: Mutex::new(VecDeque::new()),
        count: Mutex::new(0),
    });
    let io = Ferrio::builder().build();
    let admin = io.of("/admin");
    {
        let runs = runs.clone();
        admin.use_connect(move |socket: Socket| {
            let (started_tx, runs) = (started_tx.clone(), runs.clone());
            async move {
                *runs.count.lock().expect("lock") += 1;
                let auth = socket.handshake().auth_raw().to_value().expect("auth");
                let (verdict, answer) = oneshot::channel();
                let _ = started_tx.send((auth, verdict));
                answer
                    .await
                    .unwrap_or_else(|_| Err(ConnectError::new("test gone")))
            }
        });
    }
    admin.on_connection(|socket: Socket| async move {
        socket.on("echo", |_: Socket, msg: Message| async move {
            let (n,): (u32,) = msg.args()?;
            msg.ack(&(n,))?;
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        });
    });
    io.of("/control").on_connection(move |socket: Socket| {
        let runs = runs.clone();
        async move {
            let r = runs.clone();
            socket.on("next-attempt", move |_: Socket, msg: Message| {
                let r = r.clone();
                async move {
                    let next = r.started.lock().await.recv().await;
                    let Some((auth, verdict)) = next else { return };
                    r.waiting.lock().expect("lock").push_back(verdict);
                    let _ = msg.ack(&(auth,));
                }
            });
            let r = runs.clone();
            socket.on("decide", move |_: Socket, msg: Message| {
                let r = r.clone();
                async move {
                    let Ok((accept,)) = msg.args::<(bool,)>() else {
                        return;
                    };
                    let verdict = r.waiting.lock().expect("lock").pop_front();
                    let answered = verdict.is_some_and(|v| {
                        v.send(if accept {
                            Ok(())
                        } else {
                            Err(ConnectError::new("no"))
                        })
                        .is_ok()
                    });
                    let _ = msg.ack(&(answered,));
                }
            });
            let r = runs.clone();
            socket.on("attempts", move |_: Socket, msg: Message| {
                let r = r.clone();
                async move {
                    let count = *r.count.lock().expect("lock");
                    let _ = msg.ack(&(count,));
                }
            });
        }
    });
    io
}

async fn run(transports: &[&str]) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let served = tokio::spawn(server().serve(listener));
    let input = serde_json::json!({ "url": url, "transports": transports }).to_string();
    let out = tokio::task::spawn_blocking(move || {
        ferrio_tests::run_node_script("connect-retries.js", input.as_bytes())
    })
    .await
    .expect("node ran");
    served.abort();
    let out = String::from_utf8_lossy(&out);
    for step in ["ok retries", "ALL OK"] {
        assert!(out.lines().any(|l| l == step), "{step} missing in:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_client_retries_over_polling() {
    run(&["polling"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_client_retries_over_websocket() {
    run(&["websocket"]).await;
}
