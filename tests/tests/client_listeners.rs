//! `ferrio-client`'s listener API (several handlers per event, `off` by id, `once`, the
//! `any` listeners and their counts), `Socket::active`, and the manager's `open` and run-time
//! reconnection settings, against a `ferrio-server` started on a free port of 127.0.0.1.

use std::time::Duration;

use ferrio_client::{
    AckSender, ConnectionError, DisconnectReason, Manager, ManagerEvent, Socket, Transport,
    TransportError,
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);

/// A server answering `echo` with an `echo-back` event carrying the same arguments, and `bye`
/// by disconnecting the socket.
struct Server {
    url: String,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start() -> Server {
        let io = ferrio_server::Ferrio::builder().build();
        io.of("/")
            .on_connection(|socket: ferrio_server::Socket| async move {
                socket.on(
                    "echo",
                    |s: ferrio_server::Socket, msg: ferrio_server::Message| async move {
                        s.emit("echo-back", &msg.raw_args()?)?;
                        Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
                    },
                );
                socket.on(
                    "bye",
                    |s: ferrio_server::Socket, _msg: ferrio_server::Message| async move {
                        s.disconnect(false);
                    },
                );
            });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        Server {
            url: format!("http://{addr}/"),
            handle: tokio::spawn(io.serve(listener)),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("in time")
        .expect("a value")
}

/// Handler of `echo-back` reporting `tag` and the number it carried.
fn tagged(
    tx: &mpsc::UnboundedSender<String>,
    tag: &'static str,
) -> impl Fn(Socket, (u32,), AckSender) -> std::future::Ready<()> + Send + Sync + 'static {
    let tx = tx.clone();
    move |_s: Socket, (n,): (u32,), _ack: AckSender| {
        let _ = tx.send(format!("{tag} {n}"));
        std::future::ready(())
    }
}

/// Emits `echo` with `n` and collects what the listeners report, up to the `end` handler's
/// report for the same number (so that nothing reported later belongs to this round: the
/// handlers run in order).
async fn round(socket: &Socket, rx: &mut mpsc::UnboundedReceiver<String>, n: u32) -> Vec<String> {
    socket.emit("echo", &(n,)).expect("emitted");
    let mut seen = Vec::new();
    loop {
        let got = next(rx).await;
        if got == format!("end {n}") {
            return seen;
        }
        seen.push(got);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_handlers_once_and_off_by_id() {
    let server = Server::start().await;
    let socket = ferrio_client::io(&server.url)
        .transports(&[Transport::WebSocket])
        .force_new(true)
        .connect()
        .await
        .expect("connects");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let a = socket.on("echo-back", tagged(&tx, "a"));
    let b = socket.on("echo-back", tagged(&tx, "b"));
    let once = socket.once("echo-back", tagged(&tx, "once"));
    let end = socket.on("echo-back", tagged(&tx, "end"));
    assert_eq!(socket.listeners("echo-back"), 4);
    assert_eq!(socket.listeners("other"), 0);

    assert_eq!(round(&socket, &mut rx, 1).await, ["a 1", "b 1", "once 1"]);
    assert_eq!(socket.listeners("echo-back"), 3, "the once handler left");
    assert!(!socket.off_listener("echo-back", once), "already gone");
    assert_eq!(round(&socket, &mut rx, 2).await, ["a 2", "b 2"]);

    assert!(socket.off_listener("echo-back", a));
    assert!(!socket.off_listener("echo-back", a), "removed once");
    assert!(!socket.off_listener("other", b), "an id of another event");
    assert_eq!(round(&socket, &mut rx, 3).await, ["b 3"]);

    // a `once` removed before it ran never runs
    let once = socket.once("echo-back", tagged(&tx, "once"));
    assert!(socket.off_listener("echo-back", once));
    assert_eq!(round(&socket, &mut rx, 4).await, ["b 4"]);

    // `off(event)` removes them all
    socket.off("echo-back");
    assert_eq!(socket.listeners("echo-back"), 0);
    assert!(!socket.off_listener("echo-back", end));
    socket.on("echo-back", tagged(&tx, "end"));
    assert_eq!(round(&socket, &mut rx, 5).await, Vec::<String>::new());
    socket.disconnect();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_and_outgoing_listeners_prepend_and_off_by_id() {
    let server = Server::start().await;
    let socket = ferrio_client::io(&server.url)
        .transports(&[Transport::Polling])
        .force_new(true)
        .connect()
        .await
        .expect("connects");
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    socket.on("echo-back", tagged(&tx, "end"));
    let any = |tag: &'static str| {
        let tx = tx.clone();
        move |_s: &Socket, m: &ferrio_client::Message| {
            let (n,): (u32,) = m.args().expect("a number");
            let _ = tx.send(format!("{tag} {} {n}", m.event()));
        }
    };
    let out = |tag: &'static str| {
        let tx = tx.clone();
        move |event: &str, p: &ferrio_client::Packet| {
            let (n,): (u32,) = p.args().expect("a number");
            let _ = tx.send(format!("{tag} {event} {n}"));
        }
    };
    let any1 = socket.on_any(any("any1"));
    let any0 = socket.prepend_any(any("any0"));
    let out1 = socket.on_any_outgoing(out("out1"));
    let out0 = socket.prepend_any_outgoing(out("out0"));
    assert_eq!(
        (socket.listeners_any(), socket.listeners_any_outgoing()),
        (2, 2)
    );
    assert_eq!(
        round(&socket, &mut rx, 1).await,
        [
            "out0 echo 1",
            "out1 echo 1",
            "any0 echo-back 1",
            "any1 echo-back 1"
        ]
    );

    assert!(socket.off_any_listener(any0));
    assert!(!socket.off_any_listener(any0));
    assert!(socket.off_any_outgoing_listener(out1));
    assert!(!socket.off_any_outgoing_listener(out1));
    assert!(
        !socket.off_any_listener(out0),
        "an outgoing id is not an any id"
    );
    assert_eq!(
        (socket.listeners_any(), socket.listeners_any_outgoing()),
        (1, 1)
    );
    assert_eq!(
        round(&socket, &mut rx, 2).await,
        ["out0 echo 2", "any1 echo-back 2"]
    );

    assert!(socket.off_any_outgoing_listener(out0));
    socket.off_any();
    assert!(!socket.off_any_listener(any1));
    assert_eq!(
        (socket.listeners_any(), socket.listeners_any_outgoing()),
        (0, 0)
    );
    assert_eq!(round(&socket, &mut rx, 3).await, Vec::<String>::new());
    socket.disconnect();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_all_listeners_and_the_reserved_names() {
    let server = Server::start().await;
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let socket = ferrio_client::io(&server.url)
        .transports(&[Transport::WebSocket])
        .force_new(true)
        .open()
        .expect("opens");
    let ctx = tx.clone();
    let connect = socket.on_connect(move |_s| {
        let _ = ctx.send("connect".to_owned());
        std::future::ready(())
    });
    let dtx = tx.clone();
    socket.on_disconnect(move |_s, reason| {
        let _ = dtx.send(format!("disconnect {reason}"));
        std::future::ready(())
    });
    socket.on_connect_error(|_s, _e| std::future::ready(()));
    socket.on_any(|_s, _m| {});
    socket.on("echo-back", tagged(&tx, "end"));
    assert_eq!(
        ["connect", "connect_error", "disconnect", "echo-back"].map(|e| socket.listeners(e)),
        [1, 1, 1, 1]
    );
    assert_eq!(next(&mut rx).await, "connect");

    // `off_listener("connect", id)` reaches an `on_connect` handler
    assert!(socket.off_listener("connect", connect));
    assert!(!socket.off_listener("disconnect", connect));
    socket.emit("bye", &()).expect("emitted");
    assert_eq!(next(&mut rx).await, "disconnect io server disconnect");
    socket.connect();
    socket.wait_connected().await.expect("connects again");
    assert_eq!(
        round(&socket, &mut rx, 1).await,
        Vec::<String>::new(),
        "no connect report"
    );

    socket.remove_all_listeners();
    assert_eq!(
        ["connect", "connect_error", "disconnect", "echo-back"].map(|e| socket.listeners(e)),
        [0, 0, 0, 0]
    );
    assert_eq!(socket.listeners_any(), 1, "the any listeners stay");
    socket.on("echo-back", tagged(&tx, "end"));
    socket.emit("bye", &()).expect("emitted");
    until(&socket, |s| !s.active()).await;
    socket.connect();
    socket.wait_connected().await.expect("connects again");
    assert_eq!(
        round(&socket, &mut rx, 2).await,
        Vec::<String>::new(),
        "no disconnect report"
    );
    socket.disconnect();
}

/// Waits until `f` is true of the socket's handle (the driver updates it when it took the
/// command or the event).
async fn until(socket: &Socket, f: impl Fn(&Socket) -> bool) {
    tokio::time::timeout(WAIT, async {
        while !f(socket) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_follows_the_socket() {
    let server = Server::start().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let socket = ferrio_client::io(&server.url)
        .transports(&[Transport::WebSocket])
        .force_new(true)
        .with_socket(move |s| {
            s.on_disconnect(move |_s, reason: DisconnectReason| {
                let _ = tx.send(reason);
                std::future::ready(())
            });
        })
        .connect()
        .await
        .expect("connects");
    assert!(socket.active());
    socket.disconnect();
    assert!(!socket.active(), "at once");
    assert_eq!(next(&mut rx).await, DisconnectReason::IoClientDisconnect);
    assert!(!socket.active());
    socket.connect();
    assert!(socket.active(), "at once");
    socket.wait_connected().await.expect("connects again");
    assert!(socket.active());
    // the server's disconnect is final: not active any more
    socket.emit("bye", &()).expect("emitted");
    assert_eq!(next(&mut rx).await, DisconnectReason::IoServerDisconnect);
    until(&socket, |s| !s.active()).await;
}

/// A port of 127.0.0.1 nothing listens on.
async fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}/")
}

fn events(manager: &Manager) -> mpsc::UnboundedReceiver<ManagerEvent> {
    let (tx, rx) = mpsc::unbounded_channel();
    manager.on_event(move |e| {
        let _ = tx.send(e.clone());
    });
    rx
}

async fn until_event(rx: &mut mpsc::UnboundedReceiver<ManagerEvent>, want: &ManagerEvent) {
    until_matches(rx, |e| e == want).await;
}

async fn until_matches(
    rx: &mut mpsc::UnboundedReceiver<ManagerEvent>,
    f: impl Fn(&ManagerEvent) -> bool,
) {
    while !f(&next(rx).await) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnection_settings_change_at_run_time() {
    let url = closed_port().await;
    // unlimited attempts, close together
    let manager = ferrio_client::io(&url)
        .transports(&[Transport::Polling])
        .reconnection_delay(Duration::from_millis(10))
        .reconnection_delay_max(Duration::from_millis(20))
        .manager()
        .expect("manager");
    let mut rx = events(&manager);
    let socket = manager.socket("/").open().expect("opens");
    until_event(&mut rx, &ManagerEvent::ReconnectAttempt(1)).await;
    assert!(socket.active(), "waiting for the next attempt");
    assert!(!socket.connected());
    // with unlimited attempts this never comes
    manager.set_reconnection_attempts(Some(2));
    until_event(&mut rx, &ManagerEvent::ReconnectFailed).await;

    // turned off, then a new opening fails once and stays closed
    manager.set_reconnection_attempts(None);
    manager.set_reconnection(false);
    manager.set_timeout(Some(WAIT));
    socket.connect();
    until_matches(&mut rx, |e| matches!(e, ManagerEvent::Error(_))).await;
    // the `connect_error` says the socket does not retry
    let err = socket.wait_connected().await.expect_err("no attempt left");
    assert!(err.message.contains("poll error"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manager_open_without_a_socket_and_after_close() {
    let server = Server::start().await;
    let manager = ferrio_client::io(&server.url)
        .transports(&[Transport::WebSocket])
        .manager()
        .expect("manager");
    let mut rx = events(&manager);
    manager.open();
    until_event(&mut rx, &ManagerEvent::Open).await;
    let first = manager.engine_id().expect("a session");
    manager.close();
    until_event(&mut rx, &ManagerEvent::Close(DisconnectReason::ForcedClose)).await;
    manager.open();
    until_event(&mut rx, &ManagerEvent::Open).await;
    let second = manager.engine_id().expect("a session");
    assert_ne!(first, second, "a new session");
    // a socket joins the open connection
    let socket = manager.socket("/").connect().await.expect("connects");
    assert_eq!(manager.engine_id(), Some(second));
    let (tx, mut echo) = mpsc::unbounded_channel();
    socket.on("echo-back", tagged(&tx, "end"));
    assert_eq!(round(&socket, &mut echo, 7).await, Vec::<String>::new());
    manager.close();
}

/// A server that answers every request `403 Forbidden` with the body `go away`.
async fn forbidding() -> String {
    let app =
        axum::Router::new().fallback(|| async { (axum::http::StatusCode::FORBIDDEN, "go away") });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/")
}

/// The next `error` (or `reconnect_error`, with `reconnect`) of `rx`.
async fn next_error(
    rx: &mut mpsc::UnboundedReceiver<ManagerEvent>,
    reconnect: bool,
) -> ConnectionError {
    loop {
        match next(rx).await {
            ManagerEvent::Error(e) if !reconnect => return e,
            ManagerEvent::ReconnectError(e) if reconnect => return e,
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_failures_carry_their_typed_cause() {
    let url = forbidding().await;

    // Long-polling refused: the status and the server's explanation, in `error`,
    // `reconnect_error` and the socket's `connect_error`.
    let manager = ferrio_client::io(&url)
        .transports(&[Transport::Polling])
        .reconnection_attempts(1)
        .reconnection_delay(Duration::from_millis(10))
        .manager()
        .expect("manager");
    let mut rx = events(&manager);
    let socket = manager.socket("/").open().expect("opens");
    let refused = TransportError {
        message: "xhr poll error".into(),
        status: Some(403),
        description: "HTTP 403".into(),
        context: Some("go away".into()),
    };
    let expected = ConnectionError::Transport(Box::new(refused.clone()));
    assert_eq!(next_error(&mut rx, false).await, expected);
    assert_eq!(next_error(&mut rx, true).await, expected);
    let err = socket.wait_connected().await.expect_err("refused");
    assert_eq!(err.message, "reconnection failed");
    assert_eq!(err.cause, Some(expected));

    // A WebSocket refused: its status too.
    let manager = ferrio_client::io(&url)
        .transports(&[Transport::WebSocket])
        .reconnection(false)
        .manager()
        .expect("manager");
    let mut rx = events(&manager);
    let _socket = manager.socket("/").open().expect("opens");
    match next_error(&mut rx, false).await {
        ConnectionError::Transport(e) => {
            assert_eq!(
                (e.message.as_str(), e.status, e.context.as_deref()),
                ("websocket error", Some(403), Some("go away"))
            );
        }
        other => panic!("not a transport error: {other:?}"),
    }

    // A server that never answers: the manager's timeout.
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let silent_url = format!("http://{}/", silent.local_addr().expect("addr"));
    let manager = ferrio_client::io(&silent_url)
        .transports(&[Transport::Polling])
        .reconnection(false)
        .timeout(Duration::from_millis(200))
        .manager()
        .expect("manager");
    let mut rx = events(&manager);
    let socket = manager.socket("/").open().expect("opens");
    assert_eq!(next_error(&mut rx, false).await, ConnectionError::Timeout);
    let err = socket.wait_connected().await.expect_err("timed out");
    assert_eq!(err.cause, Some(ConnectionError::Timeout));
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_set_at_run_time_goes_with_the_next_session() {
    // The server reports each session's `token`, and closes the transport on `drop`.
    let (tx, mut tokens) = mpsc::unbounded_channel::<String>();
    let io = ferrio_server::Ferrio::builder().build();
    io.of("/")
        .on_connection(move |socket: ferrio_server::Socket| {
            let tx = tx.clone();
            async move {
                let token = socket
                    .handshake()
                    .query()
                    .iter()
                    .find(|(k, _)| k == "token")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                let _ = tx.send(token);
                socket.on(
                    "drop",
                    |s: ferrio_server::Socket, _msg: ferrio_server::Message| async move {
                        s.close_transport();
                    },
                );
            }
        });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    let server = tokio::spawn(io.serve(listener));

    let manager = ferrio_client::io(&url)
        .query("token", "a")
        .reconnection_delay(Duration::from_millis(10))
        .manager()
        .expect("manager");
    let socket = manager.socket("/").open().expect("opens");
    socket.wait_connected().await.expect("connects");
    assert_eq!(next(&mut tokens).await, "a");
    // Set while the session is open: it keeps its own, the next one sends the new token.
    manager.set_query(&[("token", "b")]);
    socket.emit("drop", &()).expect("emit");
    assert_eq!(next(&mut tokens).await, "b");
    server.abort();
}
