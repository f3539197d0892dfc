//! `ferrio-client` with the msgpack parser against the real npm `socket.io` 4.8 server created
//! with `parser: require("socket.io-msgpack-parser")` (`tests/node/server-msgpack.js`, started on
//! a free port of 127.0.0.1 for each test and killed by its handle at the end), over long-polling
//! and WebSocket: connect with auth, events and acks both ways, binary inline both ways, a
//! middleware's refusal, and a server's undecodable messages closing the connection with
//! `parse error`. And the same client against ferrio-server's msgpack profile (the e2e test
//! server's `/msgpack/`), both ends Ferrio.
//!
//! Run `npm ci` in `tests/node` first.

#[allow(dead_code, clippy::unwrap_used)]
#[path = "../../crates/ferrio-server/examples/e2e.rs"]
mod e2e;

use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use ferrio_client::{AckSender, ClientBuilder, DisconnectReason, Error, Parser, Socket, Transport};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);
const LIMIT: Duration = Duration::from_secs(30);

struct NodeServer {
    child: Child,
    port: u16,
}

impl NodeServer {
    async fn start() -> NodeServer {
        let dir = ferrio_tests::node_dir();
        assert!(
            dir.join("node_modules").is_dir(),
            "run npm ci in tests/node first"
        );
        let mut child = Command::new("node")
            .arg(dir.join("server-msgpack.js"))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts (is Node.js installed?)");
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

fn client(url: &str, transports: &[Transport]) -> ClientBuilder {
    ferrio_client::io(url)
        .parser(Parser::msgpack())
        .transports(transports)
        .force_new(true)
        .reconnection(false)
}

/// The arguments of every event a socket receives, by name, in order.
fn recorder(builder: ClientBuilder) -> (ClientBuilder, mpsc::UnboundedReceiver<(String, Value)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let builder = builder.with_socket(move |socket: &Socket| {
        socket.on_any(move |_, msg| {
            let args: Value = msg.args().unwrap_or(Value::Null);
            let _ = tx.send((msg.event().to_owned(), args));
        });
    });
    (builder, rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<(String, Value)>, event: &str) -> Value {
    let wait = async {
        loop {
            let (name, args) = rx.recv().await.expect("socket alive");
            if name == event {
                return args;
            }
        }
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .unwrap_or_else(|_| panic!("no {event} within {WAIT:?}"))
}

async fn against_node(transports: &[Transport]) {
    let server = NodeServer::start().await;
    let (builder, mut rec) = recorder(
        client(&server.url("/"), transports)
            .auth(json!({ "token": "abc", "n": 1.5 }))
            .on(
                "question",
                |_s: Socket, (q,): (String,), ack: AckSender| async move {
                    ack.send(&(format!("answer to {q}"), Bytes::from_static(&[5, 6])))
                        .expect("ack sent");
                },
            ),
    );
    let socket = builder.connect().await.expect("connects");
    let welcome = next(&mut rec, "welcome").await;
    assert_eq!(welcome[0]["auth"], json!({ "token": "abc", "n": 1.5 }));
    assert_eq!(welcome[0]["id"], json!(socket.id().expect("id")));
    let transport = if transports == [Transport::Polling] {
        "polling"
    } else {
        "websocket"
    };
    assert_eq!(welcome[0]["transport"], json!(transport));

    // client emit with ack: numbers as JavaScript has them, binary inline both ways
    let reply = socket
        .timeout(WAIT)
        .emit_with_ack(
            "echo",
            &(
                "hi",
                -7,
                0.25,
                4_294_967_296u64,
                json!({ "k": [true, null] }),
                Bytes::from_static(&[1, 2]),
            ),
        )
        .await
        .expect("acked");
    let (a, b, c, d, e, f): (String, i32, f64, u64, Value, Bytes) =
        reply.args().expect("typed reply");
    assert_eq!(
        (a.as_str(), b, c, d, e),
        ("hi", -7, 0.25, 4_294_967_296, json!({ "k": [true, null] }))
    );
    assert_eq!(&f[..], &[1, 2]);
    let back = next(&mut rec, "echo-back").await;
    assert_eq!(back[0], json!("hi"));

    // the server's emitWithAck, answered by the client with binary
    socket.emit("ask", &("life",)).expect("emitted");
    let answer = next(&mut rec, "answer").await;
    assert_eq!(answer[0], json!("answer to life"));

    // binary from the server, in an event and in an ack
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
        .emit_with_ack("binary", &())
        .await
        .expect("binary acked");
    let (data,): (Bytes,) = reply.args().expect("binary reply");
    assert_eq!(&data[..], &[9, 8, 7]);
    let (data, nested) = tokio::time::timeout(WAIT, brx.recv())
        .await
        .expect("binary-back in time")
        .expect("binary-back");
    assert_eq!(&data[..], &[1, 2, 3]);
    assert!(nested.get("nested").is_some(), "{nested}");

    // a middleware's refusal, with data; then acceptance
    let refused = client(&server.url("/private"), transports)
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
    let ok = client(&server.url("/private"), transports)
        .auth(json!({ "token": "secret" }))
        .connect()
        .await
        .expect("accepted");
    assert!(ok.connected());

    // what the server writes that is no packet closes the connection, as parse error
    for which in ["malformed", "shape", "types"] {
        let victim = client(&server.url("/"), transports)
            .connect()
            .await
            .expect("connects");
        let (dtx, mut drx) = mpsc::unbounded_channel();
        victim.on_disconnect(move |_s, reason| {
            let _ = dtx.send(reason);
            async {}
        });
        victim.emit("garbage", &(which,)).expect("emitted");
        let reason = tokio::time::timeout(WAIT, drx.recv())
            .await
            .expect("closed in time")
            .expect("a reason");
        assert_eq!(reason, DisconnectReason::ParseError, "{which}");
    }
    // the others are unaffected
    let reply = socket
        .timeout(WAIT)
        .emit_with_ack("echo", &("still",))
        .await
        .expect("still acked");
    assert_eq!(reply.args::<(String,)>().expect("one").0, "still");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgpack_client_against_node_over_polling() {
    tokio::time::timeout(LIMIT, against_node(&[Transport::Polling]))
        .await
        .expect("in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgpack_client_against_node_over_websocket() {
    tokio::time::timeout(LIMIT, against_node(&[Transport::WebSocket]))
        .await
        .expect("in time");
}

/// Both ends Ferrio: the client against the e2e server's `/msgpack/` profile, upgrading from
/// polling to WebSocket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgpack_client_against_ferrio() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(e2e::run(listener));
    let run = async {
        let (builder, mut rec) = recorder(
            client(
                &format!("http://{addr}/custom"),
                &[Transport::Polling, Transport::WebSocket],
            )
            .path("/msgpack/")
            .auth(json!({ "who": "ferrio" })),
        );
        let socket = builder.connect().await.expect("connects");
        assert_eq!(next(&mut rec, "auth").await, json!([{ "who": "ferrio" }]));
        let reply = socket
            .timeout(WAIT)
            .emit_with_ack(
                "message-with-ack",
                &(1, "two", Bytes::from_static(&[3]), json!({ "f": 0.5 })),
            )
            .await
            .expect("acked");
        let (a, b, c, d): (i32, String, Bytes, Value) = reply.args().expect("typed");
        assert_eq!(
            (a, b.as_str(), &c[..], d),
            (1, "two", &[3u8][..], json!({ "f": 0.5 }))
        );
        let refused = client(
            &format!("http://{addr}/restricted"),
            &[Transport::WebSocket],
        )
        .path("/msgpack/")
        .connect()
        .await;
        match refused {
            Err(Error::Connect(e)) => {
                assert_eq!(e.message, "not authorized");
                assert_eq!(e.data, Some(json!({ "reason": "invalid token" })));
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    };
    tokio::time::timeout(LIMIT, run).await.expect("in time");
    server.abort();
}
