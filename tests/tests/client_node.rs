//! `ferrio-client` against the real npm `socket.io` 4.8 server (`tests/node/client-server.js`,
//! started on a free port of 127.0.0.1 for each test and killed by its handle at the end), over
//! long-polling, WebSocket, and polling upgraded to WebSocket; and the same tests against
//! ferrio-server (`src/bin/client_test_server.rs`, the script's twin), the `_ferrio` ones. TLS
//! runs against Node only.
//!
//! Run `npm ci` in `tests/node` first.

use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferrio_client::{AckSender, ClientBuilder, Error, ManagerEvent, Socket, Transport};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

const LIMIT: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(10);

/// The server the client talks to: npm `socket.io` under Node, or ferrio-server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Peer {
    Node,
    Ferrio,
}

struct NodeServer {
    child: Child,
    port: u16,
}

impl NodeServer {
    async fn start(peer: Peer, port: u16, recovery: bool) -> NodeServer {
        let flags: &[&str] = if recovery { &["--recovery"] } else { &[] };
        NodeServer::start_with(peer, port, flags).await
    }

    async fn start_with(peer: Peer, port: u16, flags: &[&str]) -> NodeServer {
        let dir = ferrio_tests::node_dir();
        let mut cmd = match peer {
            Peer::Node => {
                assert!(
                    dir.join("node_modules").is_dir(),
                    "run npm ci in tests/node first"
                );
                let mut cmd = Command::new("node");
                cmd.arg(dir.join("client-server.js"));
                cmd
            }
            Peer::Ferrio => Command::new(env!("CARGO_BIN_EXE_client_test_server")),
        };
        cmd.arg(port.to_string())
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        cmd.args(flags);
        let mut child = cmd.spawn().expect("node starts (is Node.js installed?)");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("the server prints its port in time")
            .expect("stdout readable")
            .expect("a line");
        let port = line
            .strip_prefix("listening ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line: {line}"));
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        NodeServer { child, port }
    }

    fn url(&self, nsp: &str) -> String {
        format!("http://127.0.0.1:{}{nsp}", self.port)
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Events (name and arguments as JSON) a socket received, in order.
struct Recorder {
    rx: mpsc::UnboundedReceiver<(String, Value)>,
}

impl Recorder {
    /// A recorder, and the hook that attaches it to a socket before the socket connects (so
    /// that no event can arrive before it listens).
    fn hook() -> (impl FnOnce(&Socket) + Send + 'static, Recorder) {
        let (tx, rx) = mpsc::unbounded_channel();
        let hook = move |socket: &Socket| {
            socket.on_any(move |_, msg| {
                let args: Value = msg.args().unwrap_or(Value::Null);
                let _ = tx.send((msg.event().to_owned(), args));
            });
        };
        (hook, Recorder { rx })
    }

    fn builder(builder: ClientBuilder) -> (ClientBuilder, Recorder) {
        let (hook, rec) = Recorder::hook();
        (builder.with_socket(hook), rec)
    }

    /// The arguments of the next `event`, skipping others.
    async fn next(&mut self, event: &str) -> Value {
        let wait = async {
            loop {
                let (name, args) = self.rx.recv().await.expect("socket alive");
                if name == event {
                    return args;
                }
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .unwrap_or_else(|_| panic!("no {event} within {WAIT:?}"))
    }
}

fn client(url: &str, transports: &[Transport]) -> ClientBuilder {
    ferrio_client::io(url)
        .transports(transports)
        .force_new(true)
        .reconnection_delay(Duration::from_millis(300))
        .reconnection_delay_max(Duration::from_millis(600))
        .randomization_factor(0.0)
}

const POLLING: &[Transport] = &[Transport::Polling];
const WEBSOCKET: &[Transport] = &[Transport::WebSocket];
const UPGRADE: &[Transport] = &[Transport::Polling, Transport::WebSocket];

/// Asks the server for the socket's transport until it is `expected` (an upgrade completes a
/// little after the connection).
async fn current_transport(socket: &Socket, expected: &str) -> String {
    let mut name = String::new();
    for _ in 0..50 {
        let reply = socket
            .timeout(WAIT)
            .emit_with_ack("transport", &())
            .await
            .expect("transport acked");
        name = reply.args::<(String,)>().expect("a name").0;
        if name == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    name
}

async fn bounded(f: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("test finished in time");
}

// --- events, acks and binary both ways -------------------------------------------------------

async fn events_acks_binary(peer: Peer, transports: &[Transport]) {
    let server = NodeServer::start(peer, 0, false).await;
    let (builder, mut rec) = Recorder::builder(
        client(&server.url("/"), transports)
            .auth(json!({ "token": "abc" }))
            .extra_header("x-ferrio", "yes")
            .query("room", "r1")
            .on(
                "question",
                |_s: Socket, (q,): (String,), ack: AckSender| async move {
                    ack.send(&(format!("answer to {q}"), 42)).expect("ack sent");
                },
            ),
    );
    let socket = builder.connect().await.expect("connects");
    assert!(socket.connected());
    assert!(socket.id().is_some());
    let welcome = rec.next("welcome").await;
    assert_eq!(welcome[0]["auth"], json!({ "token": "abc" }));
    assert_eq!(welcome[0]["id"], json!(socket.id().expect("id")));
    assert_eq!(welcome[0]["header"], json!("yes"));
    assert_eq!(welcome[0]["query"], json!("r1"));
    let expected = if transports == POLLING {
        "polling"
    } else {
        "websocket"
    };
    assert_eq!(current_transport(&socket, expected).await, expected);
    let manager_transport = if transports == POLLING {
        Transport::Polling
    } else {
        Transport::WebSocket
    };
    for _ in 0..50 {
        if socket.manager().transport() == Some(manager_transport) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(socket.manager().transport(), Some(manager_transport));
    assert_eq!(
        socket.manager().engine_id().as_deref(),
        welcome[0]["engine"].as_str()
    );

    // outgoing listener, volatile and uncompressed emits: the listener sees what goes out
    let (otx, mut orx) = mpsc::unbounded_channel();
    socket.on_any_outgoing(move |event, packet| {
        let (arg,): (String,) = packet.args().unwrap_or_default();
        let _ = otx.send(format!("{event}:{arg}"));
    });
    socket.volatile().emit("echo", &("v",)).expect("volatile");
    socket
        .compress(false)
        .emit("echo", &("c",))
        .expect("uncompressed");
    // a volatile packet may be dropped when the transport is busy (and is then not reported,
    // as socket.io-client does not report it); the other one arrives
    let mut back = rec.next("echo-back").await;
    let volatile_sent = back == json!(["v"]);
    if volatile_sent {
        back = rec.next("echo-back").await;
    }
    assert_eq!(back, json!(["c"]));
    let mut seen = vec![orx.recv().await.expect("reported")];
    if seen[0] == "echo:v" {
        seen.push(orx.recv().await.expect("reported"));
    }
    assert_eq!(seen.last().map(String::as_str), Some("echo:c"));
    if volatile_sent {
        assert_eq!(seen, ["echo:v", "echo:c"]);
    }

    // client emit, server ack
    let reply = socket
        .timeout(WAIT)
        .emit_with_ack("echo", &("hi", 1, json!({ "k": [true] })))
        .await
        .expect("acked");
    let (a, b, c): (String, i32, Value) = reply.args().expect("typed reply");
    assert_eq!((a.as_str(), b, c), ("hi", 1, json!({ "k": [true] })));
    assert_eq!(
        rec.next("echo-back").await,
        json!(["hi", 1, { "k": [true] }])
    );

    // server emitWithAck answered by the client
    socket.emit("ask", &("life",)).expect("emitted");
    // emitWithAck resolves with the first argument of the answer
    assert_eq!(rec.next("answer").await, json!(["answer to life"]));

    // binary both ways
    let (btx, mut brx) = mpsc::unbounded_channel();
    socket.on(
        "binary-back",
        move |_s: Socket, (data, nested): (Bytes, Value), _ack: AckSender| {
            let btx = btx.clone();
            async move {
                let _ = btx.send((data, nested));
            }
        },
    );
    let reply = socket
        .timeout(WAIT)
        .emit_with_ack("binary", &(Bytes::from_static(&[1, 2, 3, 4]),))
        .await
        .expect("binary acked");
    let (len, data): (u32, Bytes) = reply.args().expect("binary reply");
    assert_eq!(len, 4);
    assert_eq!(&data[..], &[9, 8, 7]);
    let (data, nested) = tokio::time::timeout(WAIT, brx.recv())
        .await
        .expect("binary-back in time")
        .expect("binary-back");
    assert_eq!(&data[..], &[1, 2, 3]);
    assert!(nested.get("nested").is_some(), "{nested}");

    // binary nested in an object, from the client
    #[derive(serde::Serialize)]
    struct Photo {
        name: &'static str,
        data: Bytes,
    }
    let reply = socket
        .timeout(WAIT)
        .emit_with_ack(
            "echo",
            &(Photo {
                name: "p",
                data: Bytes::from_static(b"\x00\xff"),
            },),
        )
        .await
        .expect("acked");
    #[derive(serde::Deserialize)]
    struct PhotoBack {
        name: String,
        data: Bytes,
    }
    let (photo,): (PhotoBack,) = reply.args().expect("photo back");
    assert_eq!(photo.name, "p");
    assert_eq!(&photo.data[..], b"\x00\xff");

    // disconnect, then connect again: a new session, a new welcome
    socket.disconnect();
    while socket.connected() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(socket.id().is_none());
    socket.connect();
    tokio::time::timeout(WAIT, socket.wait_connected())
        .await
        .expect("in time")
        .expect("connected again");
    assert_eq!(
        rec.next("welcome").await[0]["auth"],
        json!({ "token": "abc" })
    );
    let reply = socket
        .timeout(WAIT)
        .emit_with_ack("echo", &("again",))
        .await
        .expect("acked");
    assert_eq!(reply.args::<(String,)>().expect("echo").0, "again");

    socket.disconnect();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_acks_binary_over_polling() {
    bounded(events_acks_binary(Peer::Node, POLLING)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_acks_binary_over_polling_ferrio() {
    bounded(events_acks_binary(Peer::Ferrio, POLLING)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_acks_binary_over_websocket() {
    bounded(events_acks_binary(Peer::Node, WEBSOCKET)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_acks_binary_over_websocket_ferrio() {
    bounded(events_acks_binary(Peer::Ferrio, WEBSOCKET)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_acks_binary_with_upgrade() {
    bounded(events_acks_binary(Peer::Node, UPGRADE)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_acks_binary_with_upgrade_ferrio() {
    bounded(events_acks_binary(Peer::Ferrio, UPGRADE)).await;
}

// --- namespaces and middleware refusal --------------------------------------------------------

async fn namespaces(peer: Peer, transports: &[Transport]) {
    let server = NodeServer::start(peer, 0, false).await;
    let manager = client(&server.url("/"), transports)
        .manager()
        .expect("manager");
    let mut engines = Vec::new();
    for nsp in ["/", "/a", "/b"] {
        let (hook, mut rec) = Recorder::hook();
        let socket = manager
            .socket(nsp)
            .with_socket(hook)
            .open()
            .expect("socket");
        socket.wait_connected().await.expect("connects");
        let welcome = rec.next("welcome").await;
        assert_eq!(welcome[0]["nsp"], json!(nsp));
        engines.push(welcome[0]["engine"].clone());
        let reply = socket
            .timeout(WAIT)
            .emit_with_ack("echo", &(nsp,))
            .await
            .expect("acked");
        assert_eq!(reply.args::<(String,)>().expect("reply").0, nsp);
    }
    assert!(
        engines.windows(2).all(|w| w[0] == w[1]),
        "one Engine.IO connection: {engines:?}"
    );

    // io() with the same server shares the connection (multiplex), unless force_new
    let base = server.url("");
    let mut welcomes = Vec::new();
    let mut sockets = Vec::new();
    for (nsp, force_new) in [("/a", false), ("/b", false), ("/b", true)] {
        let (builder, mut rec) = Recorder::builder(
            ferrio_client::io(&format!("{base}{nsp}"))
                .transports(transports)
                .force_new(force_new),
        );
        sockets.push(builder.connect().await.expect("connects"));
        welcomes.push(rec.next("welcome").await[0]["engine"].clone());
    }
    assert_eq!(welcomes[0], welcomes[1], "multiplexed: {welcomes:?}");
    assert_ne!(welcomes[1], welcomes[2], "force_new: {welcomes:?}");
    for s in sockets {
        s.disconnect();
    }

    // refused by the middleware, with message and data
    let refused = manager
        .socket("/private")
        .auth(json!({ "token": "wrong" }))
        .connect()
        .await;
    match refused {
        Err(Error::Connect(e)) => {
            assert_eq!(e.message, "not authorized");
            assert_eq!(e.data, Some(json!({ "code": 401 })));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // the other namespaces are still connected
    let root = manager.socket("/").open().expect("same socket");
    assert!(root.connected());

    // the same namespace with the right token, on a new connection
    let ok = client(&server.url("/private"), transports)
        .auth(json!({ "token": "secret" }))
        .connect()
        .await
        .expect("accepted");
    assert!(ok.connected());
    ok.disconnect();
    manager.close();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_over_polling() {
    bounded(namespaces(Peer::Node, POLLING)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_over_polling_ferrio() {
    bounded(namespaces(Peer::Ferrio, POLLING)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_over_websocket() {
    bounded(namespaces(Peer::Node, WEBSOCKET)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_over_websocket_ferrio() {
    bounded(namespaces(Peer::Ferrio, WEBSOCKET)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_with_upgrade() {
    bounded(namespaces(Peer::Node, UPGRADE)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_with_upgrade_ferrio() {
    bounded(namespaces(Peer::Ferrio, UPGRADE)).await;
}

// --- server restarted mid-session --------------------------------------------------------------

async fn server_restart(peer: Peer, transports: &[Transport]) {
    let server = NodeServer::start(peer, 0, false).await;
    let port = server.port;
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let (dtx, mut drx) = mpsc::unbounded_channel();
    let (ctx, mut crx) = mpsc::unbounded_channel();
    let (mtx, mut mrx) = mpsc::unbounded_channel();
    let (builder, mut rec) = Recorder::builder(
        client(&server.url("/"), transports)
            .on_manager_event(move |e| {
                let _ = mtx.send(e.clone());
            })
            .auth_fn(move || {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                async move { Some(json!({ "n": n })) }
            })
            .with_socket(move |s| {
                s.on_disconnect(move |_, reason| {
                    let dtx = dtx.clone();
                    async move {
                        let _ = dtx.send(reason);
                    }
                });
                s.on_connect(move |_| {
                    let ctx = ctx.clone();
                    async move {
                        let _ = ctx.send(());
                    }
                });
            }),
    );
    let socket = builder.connect().await.expect("connects");
    assert_eq!(rec.next("welcome").await[0]["auth"], json!({ "n": 1 }));
    tokio::time::timeout(WAIT, crx.recv())
        .await
        .expect("connect event");

    server.stop().await;
    let reason = tokio::time::timeout(WAIT, drx.recv())
        .await
        .expect("disconnect in time")
        .expect("disconnect");
    assert!(!socket.connected(), "{reason}");
    for n in 1..=3 {
        socket.emit("buffered", &(n,)).expect("buffered");
    }

    let server = NodeServer::start(peer, port, false).await;
    tokio::time::timeout(WAIT, crx.recv())
        .await
        .expect("reconnected in time");
    assert!(socket.connected());
    let welcome = rec.next("welcome").await;
    assert!(welcome[0]["auth"]["n"].as_u64() >= Some(2), "{welcome}");
    let mut seen = Vec::new();
    while let Ok(e) = mrx.try_recv() {
        seen.push(e);
    }
    assert!(seen.contains(&ManagerEvent::Open), "{seen:?}");
    assert!(
        seen.iter().any(|e| matches!(e, ManagerEvent::Close(_))),
        "{seen:?}"
    );
    assert!(
        seen.contains(&ManagerEvent::ReconnectAttempt(1)),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|e| matches!(e, ManagerEvent::Reconnect(_))),
        "{seen:?}"
    );
    let stats = socket
        .timeout(WAIT)
        .emit_with_ack("stats", &())
        .await
        .expect("stats");
    assert_eq!(
        stats.args::<(Vec<u32>,)>().expect("list").0,
        [1, 2, 3],
        "buffered emits delivered exactly once"
    );
    socket.disconnect();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_over_polling() {
    bounded(server_restart(Peer::Node, POLLING)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_over_polling_ferrio() {
    bounded(server_restart(Peer::Ferrio, POLLING)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_over_websocket() {
    bounded(server_restart(Peer::Node, WEBSOCKET)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_over_websocket_ferrio() {
    bounded(server_restart(Peer::Ferrio, WEBSOCKET)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_with_upgrade() {
    bounded(server_restart(Peer::Node, UPGRADE)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_with_upgrade_ferrio() {
    bounded(server_restart(Peer::Ferrio, UPGRADE)).await;
}

// --- connection state recovery ----------------------------------------------------------------

async fn recovery(peer: Peer, transports: &[Transport]) {
    let server = NodeServer::start(peer, 0, true).await;
    let (builder, mut rec) = Recorder::builder(
        client(&server.url("/"), transports)
            .reconnection_delay(Duration::from_millis(600))
            .reconnection_delay_max(Duration::from_millis(600)),
    );
    let socket = builder.connect().await.expect("connects");
    let first = rec.next("welcome").await;
    assert_eq!(first[0]["recovered"], json!(false));
    assert!(!socket.recovered());
    let id = socket.id().expect("id");

    socket.emit("drop-me", &()).expect("emitted");
    let mut missed = Vec::new();
    for _ in 0..3 {
        missed.push(rec.next("missed").await[0].clone());
    }
    assert_eq!(missed, [json!(1), json!(2), json!(3)]);
    let welcome = rec.next("welcome").await;
    assert_eq!(welcome[0]["recovered"], json!(true), "{welcome}");
    assert!(socket.recovered());
    assert_eq!(socket.id().as_deref(), Some(id.as_str()), "same socket id");
    socket.disconnect();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_over_polling() {
    bounded(recovery(Peer::Node, POLLING)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_over_polling_ferrio() {
    bounded(recovery(Peer::Ferrio, POLLING)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_over_websocket() {
    bounded(recovery(Peer::Node, WEBSOCKET)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_over_websocket_ferrio() {
    bounded(recovery(Peer::Ferrio, WEBSOCKET)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_with_upgrade() {
    bounded(recovery(Peer::Node, UPGRADE)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_with_upgrade_ferrio() {
    bounded(recovery(Peer::Ferrio, UPGRADE)).await;
}

// --- failures to connect ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_timeout_and_refused_connection() {
    bounded(async {
        // a server that accepts TCP connections and never answers
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = silent.local_addr().expect("addr");
        let holder = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((c, _)) = silent.accept().await {
                held.push(c);
            }
        });
        for transports in [POLLING, WEBSOCKET] {
            let started = std::time::Instant::now();
            let result = client(&format!("http://{addr}/"), transports)
                .timeout(Duration::from_millis(300))
                .reconnection(false)
                .connect()
                .await;
            match result {
                Err(Error::Connect(e)) => assert_eq!(e.message, "timeout"),
                other => panic!("expected a timeout, got {other:?}"),
            }
            assert!(started.elapsed() < Duration::from_secs(5));
        }
        holder.abort();

        // nothing listening: the first connect_error ends connect()
        let free = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = free.local_addr().expect("addr");
        drop(free);
        let result = client(&format!("http://{addr}/"), UPGRADE).connect().await;
        assert!(matches!(result, Err(Error::Connect(_))), "{result:?}");

        // open() and wait_connected() wait through the attempts, until reconnect_failed
        let (mtx, mut mrx) = mpsc::unbounded_channel();
        let socket = client(&format!("http://{addr}/"), UPGRADE)
            .reconnection_attempts(2)
            .reconnection_delay(Duration::from_millis(50))
            .on_manager_event(move |e| {
                let _ = mtx.send(e.clone());
            })
            .open()
            .expect("socket");
        let failure = socket.wait_connected().await;
        assert!(failure.is_err(), "{failure:?}");
        let mut seen = Vec::new();
        while seen.last() != Some(&ManagerEvent::ReconnectFailed) {
            let e = tokio::time::timeout(WAIT, mrx.recv())
                .await
                .expect("manager events in time")
                .expect("an event");
            seen.push(e);
        }
        // as in socket.io-client, the last reconnect_error comes just after reconnect_failed
        if let Ok(Some(e)) = tokio::time::timeout(WAIT, mrx.recv()).await {
            seen.push(e);
        }
        let attempts: Vec<_> = seen
            .iter()
            .filter(|e| matches!(e, ManagerEvent::ReconnectAttempt(_)))
            .collect();
        assert_eq!(
            attempts,
            [
                &ManagerEvent::ReconnectAttempt(1),
                &ManagerEvent::ReconnectAttempt(2)
            ],
            "{seen:?}"
        );
        assert_eq!(
            seen.iter()
                .filter(|e| matches!(e, ManagerEvent::ReconnectError(_)))
                .count(),
            2,
            "{seen:?}"
        );
    })
    .await;
}

// --- reliable delivery -----------------------------------------------------------------------

async fn retries_with_ack_timeout(peer: Peer) {
    bounded(async {
        let server = NodeServer::start(peer, 0, false).await;
        let socket = client(&server.url("/a"), WEBSOCKET)
            .retries(2)
            .ack_timeout(Duration::from_secs(2))
            .connect()
            .await
            .expect("connects");
        for n in 0..3 {
            let reply = socket.emit_with_ack("echo", &(n,)).await.expect("acked");
            assert_eq!(reply.args::<(i32,)>().expect("n").0, n);
        }
        socket.disconnect();
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_with_ack_timeout_node() {
    retries_with_ack_timeout(Peer::Node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_with_ack_timeout_ferrio() {
    retries_with_ack_timeout(Peer::Ferrio).await;
}

// --- TLS -------------------------------------------------------------------------------------

async fn tls(transports: &[Transport]) {
    static DIRS: AtomicU32 = AtomicU32::new(0);
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("cert");
    let dir = std::env::temp_dir().join(format!(
        "ferrio-client-tls-{}-{}",
        std::process::id(),
        DIRS.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).expect("cert.pem");
    std::fs::write(dir.join("key.pem"), cert.key_pair.serialize_pem()).expect("key.pem");
    let server = NodeServer::start_with(Peer::Node, 0, &["--tls", &dir.to_string_lossy()]).await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).expect("root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let url = format!("https://127.0.0.1:{}/", server.port);
    let (builder, mut rec) = Recorder::builder(
        client(&url, transports)
            .tls_config(Arc::new(config))
            .auth(json!({ "over": "tls" })),
    );
    let socket = builder.connect().await.expect("connects over TLS");
    assert_eq!(
        rec.next("welcome").await[0]["auth"],
        json!({ "over": "tls" })
    );
    let expected = if transports == POLLING {
        "polling"
    } else {
        "websocket"
    };
    assert_eq!(current_transport(&socket, expected).await, expected);
    let reply = socket
        .timeout(WAIT)
        .emit_with_ack("binary", &(Bytes::from_static(b"tls"),))
        .await
        .expect("acked");
    assert_eq!(reply.args::<(u32, Bytes)>().expect("reply").0, 3);
    socket.disconnect();

    // without the certificate among the roots, the connection fails
    let refused = client(&url, transports).reconnection(false).connect().await;
    assert!(matches!(refused, Err(Error::Connect(_))), "{refused:?}");
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_over_polling() {
    bounded(tls(POLLING)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_over_websocket() {
    bounded(tls(WEBSOCKET)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_upgrade() {
    bounded(tls(UPGRADE)).await;
}

// --- the listener API and the manager's open, against the reference server --------------------

async fn next_value<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("in time")
        .expect("a value")
}

async fn until_event(
    events: &mut mpsc::UnboundedReceiver<ManagerEvent>,
    want: ManagerEvent,
) -> Result<(), tokio::time::error::Elapsed> {
    tokio::time::timeout(WAIT, async {
        while events.recv().await.expect("an event") != want {}
    })
    .await
}

/// `Manager::open` makes an Engine.IO session the reference server accepts without any socket;
/// after `close`, it opens a new one; a socket then joins it. Two `welcome` handlers both run,
/// in order.
async fn manager_open_and_several_handlers(peer: Peer, transports: &[Transport]) {
    let server = NodeServer::start(peer, 0, false).await;
    let manager = client(&server.url("/"), transports)
        .manager()
        .expect("manager");
    let (etx, mut events) = mpsc::unbounded_channel();
    manager.on_event(move |e| {
        let _ = etx.send(e.clone());
    });
    manager.open();
    until_event(&mut events, ManagerEvent::Open)
        .await
        .expect("opens");
    let first = manager.engine_id().expect("a session");
    manager.close();
    until_event(
        &mut events,
        ManagerEvent::Close(ferrio_client::DisconnectReason::ForcedClose),
    )
    .await
    .expect("closes");
    manager.open();
    until_event(&mut events, ManagerEvent::Open)
        .await
        .expect("opens again");
    let second = manager.engine_id().expect("a session");
    assert_ne!(first, second);

    let (tx, mut rx) = mpsc::unbounded_channel();
    let (tx1, tx2) = (tx.clone(), tx.clone());
    let socket = manager
        .socket("/")
        .with_socket(move |s| {
            s.on(
                "welcome",
                move |_s: Socket, (w,): (Value,), _ack: AckSender| {
                    let _ = tx1.send(("first", w["engine"].clone()));
                    std::future::ready(())
                },
            );
            s.on(
                "welcome",
                move |_s: Socket, (w,): (Value,), _ack: AckSender| {
                    let _ = tx2.send(("second", w["engine"].clone()));
                    std::future::ready(())
                },
            );
        })
        .connect()
        .await
        .expect("connects");
    assert_eq!(next_value(&mut rx).await, ("first", json!(second)));
    assert_eq!(
        next_value(&mut rx).await,
        ("second", json!(second)),
        "same session"
    );
    assert_eq!(socket.listeners("welcome"), 2);
    assert!(socket.active());
    manager.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manager_open_and_several_handlers_over_polling() {
    bounded(manager_open_and_several_handlers(Peer::Node, POLLING)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manager_open_and_several_handlers_over_websocket() {
    bounded(manager_open_and_several_handlers(Peer::Node, WEBSOCKET)).await;
}
