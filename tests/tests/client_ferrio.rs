//! `ferrio-client` against `ferrio-server` (its e2e test server, compiled in here and started on a
//! free port of 127.0.0.1 for each test), over long-polling, WebSocket and the upgrade: Rust on
//! both ends.

#[allow(dead_code, clippy::unwrap_used)]
#[path = "../../crates/ferrio-server/examples/e2e.rs"]
mod e2e;

use std::time::Duration;

use bytes::Bytes;
use ferrio_client::{AckSender, Error, Socket, Transport};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);

struct Server {
    url: String,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let handle = tokio::spawn(e2e::run(listener));
        Server {
            url: format!("http://{addr}"),
            handle,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

async fn whoami(socket: &Socket) -> Value {
    let reply = socket
        .timeout(WAIT)
        .emit_with_ack("whoami", &())
        .await
        .expect("whoami acked");
    reply.args::<(Value,)>().expect("an object").0
}

async fn run(transports: &[Transport]) {
    let server = Server::start().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (wtx, mut wrx) = mpsc::unbounded_channel();
    let socket = ferrio_client::io(&format!("{}/custom", server.url))
        .transports(transports)
        .force_new(true)
        .reconnection(false)
        .auth(json!({ "token": 7 }))
        .on(
            "auth",
            move |_s: Socket, (auth,): (Value,), _ack: AckSender| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(auth);
                }
            },
        )
        .on(
            "ask",
            |_s: Socket, (question,): (Value,), ack: AckSender| async move {
                let _ = ack.send(&(json!({ "answer": question }),));
            },
        )
        .on(
            "message-back",
            move |_s: Socket, (word,): (String,), _ack: AckSender| {
                let wtx = wtx.clone();
                async move {
                    assert_ne!(word, "boom", "a handler that panics");
                    let _ = wtx.send(word);
                }
            },
        )
        .connect()
        .await
        .expect("connects");
    let auth = tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("auth in time");
    assert_eq!(auth, Some(json!({ "token": 7 })));

    let me = whoami(&socket).await;
    assert_eq!(me["nsp"], json!("/custom"));
    assert_eq!(me["id"].as_str(), socket.id().as_deref());
    if transports.len() > 1 {
        let mut transport = me["transport"].clone();
        for _ in 0..50 {
            if transport == json!("websocket") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            transport = whoami(&socket).await["transport"].clone();
        }
        assert_eq!(transport, json!("websocket"), "upgraded");
    }

    // an ack with binary, both ways
    let reply = socket
        .timeout(WAIT)
        .emit_with_ack(
            "message-with-ack",
            &(1, Bytes::from_static(b"\x01\x02"), json!({ "k": "v" })),
        )
        .await
        .expect("acked");
    let (n, data, obj): (i32, Bytes, Value) = reply.args().expect("typed");
    assert_eq!(
        (n, &data[..], obj),
        (1, &b"\x01\x02"[..], json!({ "k": "v" }))
    );

    // the server asks, the client answers
    let reply = socket
        .timeout(WAIT)
        .emit_with_ack("ask-client", &("why", 5000))
        .await
        .expect("acked");
    let (answer,): (Value,) = reply.args().expect("answer");
    assert_eq!(answer["ok"], json!(true), "{answer}");
    assert_eq!(answer["reply"], json!([{ "answer": "why" }]), "{answer}");

    // a handler that panics does not stop the next events
    socket.emit("message", &("boom",)).expect("emitted");
    socket.emit("message", &("fine",)).expect("emitted");
    let word = tokio::time::timeout(WAIT, wrx.recv())
        .await
        .expect("in time");
    assert_eq!(word.as_deref(), Some("fine"));

    // refused by the middleware
    let refused = ferrio_client::io(&format!("{}/restricted", server.url))
        .transports(transports)
        .force_new(true)
        .reconnection(false)
        .auth(json!({ "token": "nope" }))
        .connect()
        .await;
    match refused {
        Err(Error::Connect(e)) => {
            assert_eq!(e.message, "not authorized");
            assert_eq!(e.data, Some(json!({ "reason": "invalid token" })));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    socket.disconnect();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferrio_server_over_polling() {
    tokio::time::timeout(Duration::from_secs(30), run(&[Transport::Polling]))
        .await
        .expect("in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferrio_server_over_websocket() {
    tokio::time::timeout(Duration::from_secs(30), run(&[Transport::WebSocket]))
        .await
        .expect("in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferrio_server_with_upgrade() {
    tokio::time::timeout(
        Duration::from_secs(30),
        run(&[Transport::Polling, Transport::WebSocket]),
    )
    .await
    .expect("in time");
}

/// Handlers of one socket run one at a time, in the order the events arrived, even when an
/// earlier one takes longer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_run_in_order() {
    let server = Server::start().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let socket = ferrio_client::io(&format!("{}/", server.url))
        .transports(&[Transport::WebSocket])
        .force_new(true)
        .on(
            "message-back",
            move |_s: Socket, (n,): (u64,), _ack: AckSender| {
                let tx = tx.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(20 - n % 20)).await;
                    let _ = tx.send(n);
                }
            },
        )
        .connect()
        .await
        .expect("connects");
    for n in 0..40u64 {
        socket.emit("message", &(n,)).expect("emitted");
    }
    let mut seen = Vec::new();
    while seen.len() < 40 {
        let n = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("in time")
            .expect("a number");
        seen.push(n);
    }
    assert_eq!(seen, (0..40).collect::<Vec<_>>());
    socket.disconnect();
}

/// `once` runs a handler for the first event only; `send` emits `message`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_and_send() {
    let server = Server::start().await;
    let socket = ferrio_client::io(&format!("{}/", server.url))
        .transports(&[Transport::Polling])
        .force_new(true)
        .connect()
        .await
        .expect("connects");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let first = tx.clone();
    socket.once(
        "message-back",
        move |_s: Socket, (n,): (u32,), _ack: AckSender| {
            let first = first.clone();
            async move {
                let _ = first.send(("once", n));
            }
        },
    );
    socket.send(&(1,)).expect("sent");
    let got = tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("in time");
    assert_eq!(got, Some(("once", 1)));
    socket.on(
        "message-back",
        move |_s: Socket, (n,): (u32,), _ack: AckSender| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(("on", n));
            }
        },
    );
    socket.send(&(2,)).expect("sent");
    let got = tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("in time");
    assert_eq!(got, Some(("on", 2)));
    socket.disconnect();
}

/// A server with its own options, answering `echo` with its arguments (binary kept) and
/// `cookie` with the `Cookie` header of the session's first request.
async fn custom_server(
    builder: ferrio_server::FerrioBuilder,
) -> (String, tokio::task::JoinHandle<std::io::Result<()>>) {
    let io = builder.build();
    io.of("/")
        .on_connection(|socket: ferrio_server::Socket| async move {
            socket.on(
                "echo",
                |_s: ferrio_server::Socket, msg: ferrio_server::Message| async move {
                    msg.ack(&msg.raw_args()?)?;
                    Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
                },
            );
            socket.on(
                "cookie",
                |s: ferrio_server::Socket, msg: ferrio_server::Message| async move {
                    let cookie = s
                        .handshake()
                        .headers()
                        .get("cookie")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    msg.ack(&(cookie,))
                },
            );
        });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    (format!("http://{addr}"), tokio::spawn(io.serve(listener)))
}

/// The `Cookie` header the server saw on the session's first request.
async fn sent_cookie(socket: &Socket) -> Option<String> {
    let (cookie,): (Option<String>,) = socket
        .timeout(WAIT)
        .emit_with_ack("cookie", &())
        .await
        .expect("cookie")
        .args()
        .expect("cookie arg");
    cookie
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_http_options() {
    // try_all_transports: WebSocket first on a polling-only server falls back to polling.
    let (url, server) = custom_server(
        ferrio_server::Ferrio::builder().transports(&[ferrio_server::Transport::Polling]),
    )
    .await;
    let refused = ferrio_client::io(&format!("{url}/"))
        .transports(&[Transport::WebSocket, Transport::Polling])
        .force_new(true)
        .reconnection(false)
        .connect()
        .await;
    assert!(
        refused.is_err(),
        "without the option the first failure ends it"
    );
    let socket = ferrio_client::io(&format!("{url}/"))
        .transports(&[Transport::WebSocket, Transport::Polling])
        .try_all_transports(true)
        .force_new(true)
        .reconnection(false)
        .connect()
        .await
        .expect("connects over polling");
    assert_eq!(socket.manager().transport(), Some(Transport::Polling));
    socket.disconnect();
    server.abort();

    // with_credentials: the session cookie comes back on the next connection's requests;
    // force_base64: binary both ways as base64 text over WebSocket.
    let (url, server) =
        custom_server(ferrio_server::Ferrio::builder().cookie(ferrio_server::Cookie::default()))
            .await;
    let socket = ferrio_client::io(&format!("{url}/"))
        .transports(&[Transport::WebSocket])
        .with_credentials(true)
        .force_base64(true)
        .timestamp_requests(true)
        .force_new(true)
        .connect()
        .await
        .expect("connects");
    let reply = socket
        .timeout(WAIT)
        .emit_with_ack("echo", &(Bytes::from_static(&[1, 2, 3]),))
        .await
        .expect("echo");
    let (data,): (Bytes,) = reply.args().expect("binary back");
    assert_eq!(&data[..], &[1, 2, 3]);
    let first_sid = socket.manager().engine_id().expect("engine id");
    let cookie = sent_cookie(&socket).await;
    assert_eq!(cookie, None, "nothing to send on the first handshake");
    // The connection drops; the reconnection's handshake carries the cookie of the first.
    socket.manager().close();
    socket.connect();
    tokio::time::timeout(WAIT, socket.wait_connected())
        .await
        .expect("in time")
        .expect("reconnected");
    let cookie = sent_cookie(&socket).await;
    assert_eq!(cookie, Some(format!("io={first_sid}")));
    socket.disconnect();
    server.abort();
}

/// A server recording the numbers emitted as `n` (`seen` answers them, in order of arrival) and
/// answering `flood` with `count` events `seq` (0, 1, ...), sent in batches so that its own
/// command queue holds.
async fn bounds_server() -> (String, tokio::task::JoinHandle<std::io::Result<()>>) {
    use std::sync::{Arc, Mutex};
    let io = ferrio_server::Ferrio::builder().build();
    io.of("/")
        .on_connection(|socket: ferrio_server::Socket| async move {
            let seen = Arc::new(Mutex::new(Vec::<u64>::new()));
            let record = seen.clone();
            socket.on(
                "n",
                move |_s: ferrio_server::Socket, msg: ferrio_server::Message| {
                    let record = record.clone();
                    async move {
                        let (n,): (u64,) = msg.args().expect("a number");
                        record.lock().expect("lock").push(n);
                    }
                },
            );
            socket.on(
                "seen",
                move |_s: ferrio_server::Socket, msg: ferrio_server::Message| {
                    let seen = seen.clone();
                    async move {
                        let numbers = seen.lock().expect("lock").clone();
                        let _ = msg.ack(&(numbers,));
                    }
                },
            );
            socket.on(
                "flood",
                |s: ferrio_server::Socket, msg: ferrio_server::Message| async move {
                    let (count,): (u64,) = msg.args().expect("a count");
                    for i in 0..count {
                        s.emit("seq", &(i,)).expect("emitted");
                        if i % 100 == 99 {
                            tokio::time::sleep(Duration::from_millis(2)).await;
                        }
                    }
                },
            );
        });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    (format!("http://{addr}"), tokio::spawn(io.serve(listener)))
}

/// What the server of [`bounds_server`] received as `n`, once it received `count` of them (a
/// full command queue is waited out: emit again later).
async fn seen_by_server(socket: &Socket, count: usize) -> Vec<u64> {
    for _ in 0..250 {
        match socket.timeout(WAIT).emit_with_ack("seen", &()).await {
            Ok(reply) => {
                let (numbers,): (Vec<u64>,) = reply.args().expect("numbers");
                if numbers.len() >= count {
                    return numbers;
                }
            }
            Err(ferrio_client::AckError::Emit(ferrio_client::EmitError::QueueFull)) => {}
            Err(e) => panic!("seen: {e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the server did not receive {count} events");
}

/// The command queue's bound: on a single-threaded runtime nothing lets the connection's task
/// run during a synchronous loop of emits, so exactly `COMMAND_QUEUE` of them are taken, the
/// others fail with `QueueFull` (and so does an `emit_with_ack`); every emit taken reaches the
/// server, in order. Over WebSocket the writer's own bound is crossed on the way (the task stops
/// taking commands until the network drains it), over polling the core's write buffer batches
/// them.
#[tokio::test]
async fn emits_past_the_command_queue_fail() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let (url, server) = bounds_server().await;
        for transport in [Transport::WebSocket, Transport::Polling] {
            let socket = ferrio_client::io(&format!("{url}/"))
                .transports(&[transport])
                .force_new(true)
                .reconnection(false)
                .connect()
                .await
                .expect("connects");
            let queue = ferrio_client::COMMAND_QUEUE;
            let mut taken = 0;
            for n in 0..queue as u64 + 100 {
                match socket.emit("n", &(n,)) {
                    Ok(()) => {
                        assert_eq!(taken, n, "the emits taken are the first ones");
                        taken += 1;
                    }
                    Err(ferrio_client::EmitError::QueueFull) => {}
                    Err(e) => panic!("unexpected error {e}"),
                }
            }
            assert_eq!(taken, queue as u64, "{transport:?}");
            let with_ack = socket.emit_with_ack("seen", &()).await;
            assert!(
                matches!(
                    with_ack,
                    Err(ferrio_client::AckError::Emit(
                        ferrio_client::EmitError::QueueFull
                    ))
                ),
                "{with_ack:?}"
            );
            let seen = seen_by_server(&socket, queue).await;
            assert_eq!(seen, (0..queue as u64).collect::<Vec<_>>(), "{transport:?}");
            socket.disconnect();
        }
        server.abort();
    })
    .await
    .expect("in time");
}

/// The handlers' queue's bound: the server floods a socket whose first handler waits. The client
/// stops reading the WebSocket once `EVENT_QUEUE` events wait (an acknowledgement the server
/// sends behind the flood does not come through meanwhile, so it times out), still takes the
/// application's emits, and once the handler goes on every event runs, once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_handler_slows_the_server_down_and_loses_nothing() {
    use std::sync::Arc;
    const COUNT: u64 = 3000;
    tokio::time::timeout(Duration::from_secs(30), async {
        let (url, server) = bounds_server().await;
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let waiting = gate.clone();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let socket = ferrio_client::io(&format!("{url}/"))
            .transports(&[Transport::WebSocket])
            .force_new(true)
            .reconnection(false)
            .on("seq", move |_s: Socket, (n,): (u64,), _ack: AckSender| {
                let waiting = waiting.clone();
                let tx = tx.clone();
                async move {
                    if n == 0 {
                        let _ = waiting.acquire().await;
                    }
                    let _ = tx.send(n);
                }
            })
            .connect()
            .await
            .expect("connects");
        socket.emit("flood", &(COUNT,)).expect("emitted");
        // The server sends its answer after the whole flood: the client, not reading while its
        // handler waits, does not see it.
        let behind = socket
            .timeout(Duration::from_millis(500))
            .emit_with_ack("seen", &())
            .await;
        assert!(
            matches!(behind, Err(ferrio_client::AckError::Timeout)),
            "{behind:?}"
        );
        assert!(rx.try_recv().is_err(), "the first handler still waits");
        // The connection's task still takes the application's emits.
        socket
            .emit("n", &(7,))
            .expect("an emit while the handlers are behind");
        gate.add_permits(1);
        let mut got = Vec::with_capacity(COUNT as usize);
        while got.len() < COUNT as usize {
            let n = tokio::time::timeout(WAIT, rx.recv())
                .await
                .expect("in time")
                .expect("a number");
            got.push(n);
        }
        assert_eq!(got, (0..COUNT).collect::<Vec<_>>());
        assert_eq!(seen_by_server(&socket, 1).await, [7]);
        assert!(socket.connected());
        socket.disconnect();
        server.abort();
    })
    .await
    .expect("in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_acks_are_bounded() {
    use ferrio_client::{AckError, ClientError, EmitError};
    let server = Server::start().await;
    let socket = ferrio_client::io(&format!("{}/custom", server.url))
        .transports(&[Transport::WebSocket])
        .force_new(true)
        .reconnection(false)
        .max_pending_acks(2)
        .connect()
        .await
        .expect("connected");
    // The server answers `message` with `message-back`, never with an ack: these two wait.
    let waiting = [
        socket.emit_with_ack("message", &("a",)),
        socket.emit_with_ack("message", &("b",)),
    ];
    let over = tokio::time::timeout(WAIT, socket.emit_with_ack("message", &("c",)))
        .await
        .expect("refused without waiting for the server");
    assert!(
        matches!(
            over,
            Err(AckError::Emit(EmitError::Client(
                ClientError::TooManyPendingAcks
            )))
        ),
        "{over:?}"
    );
    assert!(socket.connected());
    drop(waiting);
}
