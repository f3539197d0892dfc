//! The streams adapter against bad input: entries and pub/sub messages it cannot read, sessions
//! that do not decode and malformed offsets are skipped; the reader and the node go on.
//!
//! Needs Redis on 127.0.0.1:6379 (each test uses its own stream, channel and session prefix).

mod common;

use std::time::Duration;

use ferrio_redis::streams::{StreamsRedisAdapter, StreamsRedisAdapterConfig};
use ferrio_server::{Ferrio, RecoveryConfig};
use serde_json::{json, Value};
use tokio::sync::mpsc;

const REDIS: &str = "redis://127.0.0.1:6379/";
const WAIT: Duration = Duration::from_secs(10);

fn unique_key(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("ferrio-streams-{test}-{}-{nanos}", std::process::id())
}

struct Node {
    adapter: StreamsRedisAdapter,
    url: String,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.adapter.close();
        self.task.abort();
    }
}

async fn node(key: &str) -> Node {
    let adapter = StreamsRedisAdapter::with_config(
        REDIS,
        StreamsRedisAdapterConfig {
            stream_name: key.to_owned(),
            channel_prefix: key.to_owned(),
            session_key_prefix: format!("{key}:session:"),
            ..StreamsRedisAdapterConfig::default()
        },
    )
    .await
    .expect("redis reachable");
    let io = Ferrio::builder()
        .adapter(adapter.clone())
        .connection_state_recovery(RecoveryConfig {
            max_disconnection_duration: Duration::from_secs(10),
            ..RecoveryConfig::default()
        })
        .build();
    io.of("/").on_connection(|_socket| async {});
    let (url, task) = common::serve(&io).await;
    Node { adapter, url, task }
}

/// A client of `node` (with `auth`), and the events it receives: (event, arguments).
async fn client(
    node: &Node,
    auth: Value,
) -> (
    ferrio_client::Socket,
    mpsc::UnboundedReceiver<(String, Value)>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let socket = ferrio_client::io(&node.url)
        .auth(auth)
        .with_socket(move |socket| {
            socket.on_any(move |_socket, message| {
                // Binary as a list of bytes.
                let args = match message.args::<(bytes::Bytes, Value)>() {
                    Ok((bytes, offset)) => json!([bytes.to_vec(), offset]),
                    Err(_) => message.args::<Value>().unwrap_or(Value::Null),
                };
                let _ = tx.send((message.event().to_owned(), args));
            });
        })
        .connect()
        .await
        .expect("client connects");
    (socket, rx)
}

async fn next_event(events: &mut mpsc::UnboundedReceiver<(String, Value)>) -> (String, Value) {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("an event in time")
        .expect("client alive")
}

async fn redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(REDIS)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// `XADD <stream> * <fields>` as another node would; returns the entry id.
async fn append(
    conn: &mut redis::aio::MultiplexedConnection,
    key: &str,
    fields: &[(&str, &str)],
) -> String {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(key).arg("*");
    for (name, value) in fields {
        cmd.arg(*name).arg(*value);
    }
    cmd.query_async(conn).await.unwrap()
}

fn broadcast(ev: &str) -> String {
    json!({"packet": {"type": 2, "data": [ev, 1]}, "opts": {"rooms": [], "except": [], "flags": {}}})
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_entries_and_messages_are_skipped() {
    let key = unique_key("bad-input");
    let node = node(&key).await;
    let (_socket, mut events) = client(&node, json!({})).await;
    let mut conn = redis().await;
    let good = broadcast("bad");
    let bad_entries: Vec<Vec<(&str, &str)>> = vec![
        vec![("uid", "x"), ("type", "3"), ("data", &good)],
        vec![("uid", "x"), ("nsp", "/"), ("data", &good)],
        vec![
            ("uid", "x"),
            ("nsp", "/"),
            ("type", "three"),
            ("data", &good),
        ],
        vec![
            ("uid", "x"),
            ("nsp", "/"),
            ("type", "3"),
            ("data", "{not json"),
        ],
        vec![
            ("uid", "x"),
            ("nsp", "/"),
            ("type", "3"),
            ("data", "%%%not base64"),
        ],
        // Base64 of 0xc1, not msgpack; of a msgpack array, not a message.
        vec![("uid", "x"), ("nsp", "/"), ("type", "3"), ("data", "wQ==")],
        vec![("uid", "x"), ("nsp", "/"), ("type", "3"), ("data", "kgEC")],
        vec![
            ("uid", "x"),
            ("nsp", "/"),
            ("type", "3"),
            ("data", r#"{"packet":{"data":"not an event"}}"#),
        ],
        vec![("uid", "x"), ("nsp", "/"), ("type", "99"), ("data", &good)],
        vec![("foreign", "entry")],
    ];
    for fields in &bad_entries {
        append(&mut conn, &key, fields).await;
    }
    // On the request channel: a classic adapter's broadcast array, JSON, garbage.
    let channel = format!("{key}#/#");
    for payload in [
        b"\x93\xa6abcdef\x80\x80".as_slice(),
        br#"{"type":3,"nsp":"/","uid":"x"}"#.as_slice(),
        b"\xc1\xc1".as_slice(),
    ] {
        let _: usize = redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(payload)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    // The node goes on: the next good entries reach the client, in order.
    append(
        &mut conn,
        &key,
        &[
            ("uid", "x"),
            ("nsp", "/"),
            ("type", "3"),
            ("data", &broadcast("good")),
        ],
    )
    .await;
    let captured =
        "gqZwYWNrZXSCpHR5cGUCpGRhdGGSo2JpbsQDAQIDpG9wdHODpXJvb21zkKZleGNlcHSQpWZsYWdzgA==";
    append(
        &mut conn,
        &key,
        &[
            ("uid", "x"),
            ("nsp", "/"),
            ("type", "3"),
            ("data", captured),
        ],
    )
    .await;
    let (ev, args) = next_event(&mut events).await;
    assert_eq!(ev, "good");
    assert_eq!(args[0], 1);
    let (ev, args) = next_event(&mut events).await;
    assert_eq!(ev, "bin");
    assert_eq!(args[0], json!([1, 2, 3]), "{args}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sessions_and_offsets_start_a_fresh_session() {
    let key = unique_key("bad-session");
    let node = node(&key).await;
    let mut conn = redis().await;
    let offset = append(
        &mut conn,
        &key,
        &[
            ("uid", "x"),
            ("nsp", "/"),
            ("type", "3"),
            ("data", &broadcast("old")),
        ],
    )
    .await;

    // A session that does not decode, with a good offset.
    let session_key = format!("{key}:session:p1");
    let _: () = redis::cmd("SET")
        .arg(&session_key)
        .arg("%%% not a session")
        .query_async(&mut conn)
        .await
        .unwrap();
    let (_socket, _events) = client(&node, json!({"pid": "p1", "offset": offset})).await;
    // It was taken all the same: nobody can try it again.
    let exists: usize = redis::cmd("EXISTS")
        .arg(&session_key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(exists, 0);

    // Malformed offsets, with a session that decodes.
    let good_session = "hKNzaWS0c1V6WERrWXhtVEQwRWt2ZEFBQUGjcGlktEU0NjdwbDlzVlBZRDhXS1VBQUFCpXJvb21zkrRzVXpYRGtZeG1URDBFa3ZkQUFBQaVyb29tMaRkYXRhgaR1c2VypWFsaWNl";
    let session_key = format!("{key}:session:E467pl9sVPYD8WKUAAAB");
    for bad in ["", "MzEo9-6", "1-2-3", "1795357745917", "(0-1"] {
        let _: () = redis::cmd("SET")
            .arg(&session_key)
            .arg(good_session)
            .query_async(&mut conn)
            .await
            .unwrap();
        let (socket, _events) =
            client(&node, json!({"pid": "E467pl9sVPYD8WKUAAAB", "offset": bad})).await;
        assert_ne!(socket.id().as_deref(), Some("sUzXDkYxmTD0EkvdAAAA"));
    }
    // And an offset that is not in the stream.
    let (socket, _events) = client(
        &node,
        json!({"pid": "E467pl9sVPYD8WKUAAAB", "offset": "1-1"}),
    )
    .await;
    assert_ne!(socket.id().as_deref(), Some("sUzXDkYxmTD0EkvdAAAA"));

    // The same session with a good offset is recovered: the id, and the events after it.
    append(
        &mut conn,
        &key,
        &[
            ("uid", "x"),
            ("nsp", "/"),
            ("type", "3"),
            ("data", &broadcast("missed")),
        ],
    )
    .await;
    let _: () = redis::cmd("SET")
        .arg(&session_key)
        .arg(good_session)
        .query_async(&mut conn)
        .await
        .unwrap();
    let (socket, mut events) = client(
        &node,
        json!({"pid": "E467pl9sVPYD8WKUAAAB", "offset": offset}),
    )
    .await;
    // (The client did not present the private id itself: it cannot tell it recovered.)
    assert_eq!(socket.id().as_deref(), Some("sUzXDkYxmTD0EkvdAAAA"));
    let (ev, args) = next_event(&mut events).await;
    assert_eq!(ev, "missed");
    assert_eq!(args[0], 1);
}

/// With several streams, a namespace writes to and reads from `<name>-<hashCode(nsp) % count>`,
/// negative indices included (as JavaScript's `%` gives them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_are_spread_over_several_streams() {
    let key = unique_key("spread");
    let config = StreamsRedisAdapterConfig {
        stream_name: key.clone(),
        stream_count: 3,
        channel_prefix: key.clone(),
        ..StreamsRedisAdapterConfig::default()
    };
    let a = StreamsRedisAdapter::with_config(REDIS, config.clone())
        .await
        .unwrap();
    let b = StreamsRedisAdapter::with_config(REDIS, config)
        .await
        .unwrap();
    let io_a = Ferrio::builder().adapter(a.clone()).build();
    let io_b = Ferrio::builder().adapter(b.clone()).build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let task = tokio::spawn(io_b.clone().serve(listener));
    let mut conn = redis().await;
    // hashCode("/") = 47 → stream 2; hashCode("/dashboard") = -1694060731 → stream -1.
    for (nsp, stream) in [
        ("/", format!("{key}-2")),
        ("/dashboard", format!("{key}--1")),
    ] {
        io_a.of(nsp);
        io_b.of(nsp).on_connection(|_socket| async {});
        let (tx, mut events) = mpsc::unbounded_channel();
        let _socket = ferrio_client::io(&format!("{url}{}", nsp.trim_start_matches('/')))
            .with_socket(move |socket| {
                socket.on_any(move |_socket, message| {
                    let _ = tx.send(message.event().to_owned());
                });
            })
            .connect()
            .await
            .expect("client connects");
        io_a.of(nsp).emit("hello", &(nsp,)).unwrap();
        let got = tokio::time::timeout(WAIT, events.recv()).await.unwrap();
        assert_eq!(got.as_deref(), Some("hello"));
        let length: usize = redis::cmd("XLEN")
            .arg(&stream)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(length, 1, "{nsp} writes to {stream}");
    }
    a.close();
    b.close();
    task.abort();
}
