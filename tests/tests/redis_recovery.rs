//! Connection state recovery across the nodes of a cluster, with the Redis streams adapter:
//! Ferrio nodes with [`StreamsRedisAdapter`] and a Node.js node running npm `socket.io` 4.8 with
//! `@socket.io/redis-streams-adapter` 0.3.1 (`tests/node/redis-node.js`, flavor `streams`), all
//! with recovery on, and an npm `socket.io-client` client.
//!
//! The client connects to node A, joins a room, stores data and receives an event (so it has an
//! offset); its transport is cut without a clean disconnect; events are broadcast from node C
//! meanwhile; it reconnects to node B within the window. It must be recovered: the same id,
//! its rooms, its data, and every event it missed, in order, each with its stream offset.
//!
//! Needs Redis on 127.0.0.1:6379 (each test uses its own stream and channel prefix).

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrio_redis::streams::{StreamsRedisAdapter, StreamsRedisAdapterConfig};
use ferrio_server::{AckSender, Ferrio, RecoveryConfig, Socket};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, oneshot};

const REDIS: &str = "redis://127.0.0.1:6379/";
const WAIT: Duration = Duration::from_secs(10);
/// The recovery window of every node.
const WINDOW_MS: u64 = 10_000;

fn unique_key(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("ferrio-recovery-{test}-{}-{nanos}", std::process::id())
}

/// A Ferrio server with the streams adapter and recovery on, serving on a free port.
struct RustNode {
    io: Ferrio,
    adapter: StreamsRedisAdapter,
    url: String,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for RustNode {
    fn drop(&mut self) {
        self.adapter.close();
        self.task.abort();
    }
}

async fn rust_node(key: &str) -> RustNode {
    let adapter = StreamsRedisAdapter::with_config(
        REDIS,
        StreamsRedisAdapterConfig {
            stream_name: key.to_owned(),
            channel_prefix: key.to_owned(),
            requests_timeout: Duration::from_secs(3),
            ..StreamsRedisAdapterConfig::default()
        },
    )
    .await
    .expect("redis reachable");
    let io = Ferrio::builder()
        .adapter(adapter.clone())
        .connection_state_recovery(RecoveryConfig {
            max_disconnection_duration: Duration::from_millis(WINDOW_MS),
            ..RecoveryConfig::default()
        })
        .build();
    io.of("/").on_connection(|socket: Socket| async move {
        if !socket.recovered() {
            let auth = socket.handshake().auth_raw().to_value().unwrap_or_default();
            socket
                .set_shared_data(&json!({"lang": "rust", "name": auth.get("name")}))
                .unwrap();
        }
        socket.on(
            "join",
            |socket: Socket, (room,): (String,), ack: AckSender| async move {
                socket.join(room);
                ack.send(&("ok",))
            },
        );
        socket.on(
            "set-data",
            |socket: Socket, (value,): (Value,), ack: AckSender| async move {
                socket.set_shared_data(&value).unwrap();
                ack.send(&())
            },
        );
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(io.clone().serve(listener));
    RustNode {
        io,
        adapter,
        url,
        task,
    }
}

/// The Node.js node (streams adapter, recovery on) and its clients, driven over JSON lines.
struct Agent {
    _child: Child,
    stdin: ChildStdin,
    next_id: u64,
    replies: Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>,
    events: mpsc::UnboundedReceiver<Value>,
    log: Vec<Value>,
    url: String,
}

impl Agent {
    async fn start(key: &str) -> Agent {
        let dir = ferrio_tests::node_dir();
        assert!(
            dir.join("node_modules").is_dir(),
            "run npm ci in tests/node"
        );
        let mut child = Command::new("node")
            .arg(dir.join("redis-node.js"))
            .args([REDIS, key, "streams", &WINDOW_MS.to_string()])
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let replies: Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>> = Arc::default();
        let (tx, mut events) = mpsc::unbounded_channel();
        let r = replies.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if let Some(id) = v.get("id").and_then(Value::as_u64) {
                    if let Some(tx) = r.lock().unwrap().remove(&id) {
                        let _ = tx.send(v);
                    }
                } else {
                    let _ = tx.send(v);
                }
            }
        });
        let ready = tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("node node ready in time")
            .expect("node node ready");
        assert_eq!(ready["event"], "ready", "{ready}");
        let url = format!("http://127.0.0.1:{}", ready["port"]);
        Agent {
            _child: child,
            stdin,
            next_id: 1,
            replies,
            events,
            log: Vec::new(),
            url,
        }
    }

    async fn call(&mut self, mut op: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        op["id"] = json!(id);
        let (tx, rx) = oneshot::channel();
        self.replies.lock().unwrap().insert(id, tx);
        let line = format!("{op}\n");
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        let reply = tokio::time::timeout(WAIT, rx)
            .await
            .unwrap_or_else(|_| panic!("no answer to {op}"))
            .unwrap();
        assert!(reply.get("error").is_none(), "{op} failed: {reply}");
        reply
    }

    /// Waits for client `name` to receive event `ev`; returns its arguments.
    async fn client_got(&mut self, name: &str, ev: &str) -> Value {
        let is = |e: &Value| e["event"] == "client_event" && e["name"] == name && e["ev"] == ev;
        if let Some(e) = self.log.iter().find(|e| is(e)) {
            return e["args"].clone();
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let e = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!("no {ev} at {name} within {WAIT:?}; got {:#?}", self.log)
                })
                .expect("node node running");
            self.log.push(e.clone());
            if is(&e) {
                return e["args"].clone();
            }
        }
    }

    /// The events client `name` received so far, in order: `(event, args)`.
    fn received(&self, name: &str) -> Vec<(String, Value)> {
        self.log
            .iter()
            .filter(|e| e["event"] == "client_event" && e["name"] == name)
            .map(|e| (e["ev"].as_str().unwrap().to_owned(), e["args"].clone()))
            .collect()
    }

    /// The sockets of the whole cluster, as the Node node fetches them.
    async fn fetch(&mut self) -> Vec<Value> {
        self.call(json!({"op": "fetch"})).await["sockets"]
            .as_array()
            .unwrap()
            .clone()
    }

    async fn server_count(&mut self) -> u64 {
        self.call(json!({"op": "server_count"})).await["count"]
            .as_u64()
            .unwrap()
    }
}

/// Which server plays which part.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Server {
    Rust1,
    Rust2,
    Node,
}

struct Cluster {
    r1: RustNode,
    r2: RustNode,
    node: Agent,
}

impl Cluster {
    async fn start(key: &str) -> Cluster {
        let r1 = rust_node(key).await;
        let r2 = rust_node(key).await;
        let mut node = Agent::start(key).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let counts = [
                node.server_count().await as usize,
                r1.io.of("/").server_count().await.unwrap_or(0),
                r2.io.of("/").server_count().await.unwrap_or(0),
            ];
            if counts == [3, 3, 3] {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "cluster not formed: {counts:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Cluster { r1, r2, node }
    }

    fn url(&self, server: Server) -> String {
        match server {
            Server::Rust1 => self.r1.url.clone(),
            Server::Rust2 => self.r2.url.clone(),
            Server::Node => self.node.url.clone(),
        }
    }

    /// Broadcasts `ev` (`args`) from `server` to `rooms` (everyone if empty).
    async fn emit(&mut self, server: Server, rooms: &[&str], ev: &str, args: Value) {
        let io = match server {
            Server::Rust1 => &self.r1.io,
            Server::Rust2 => &self.r2.io,
            Server::Node => {
                self.node
                    .call(json!({"op": "emit", "rooms": rooms, "ev": ev, "args": args}))
                    .await;
                return;
            }
        };
        let op = io
            .of("/")
            .to(rooms.iter().map(|r| r.to_string()).collect::<Vec<_>>());
        // `{"$bin": hex}` as the second argument is sent as binary.
        match args
            .get(1)
            .and_then(|a| a.get("$bin"))
            .and_then(Value::as_str)
        {
            Some(hex) => {
                let bytes: Vec<u8> = (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                    .collect();
                op.emit(ev, &(args[0].clone(), bytes::Bytes::from(bytes)))
                    .unwrap();
            }
            None => {
                let args: Vec<Value> = serde_json::from_value(args).unwrap();
                op.emit(ev, &args).unwrap();
            }
        }
    }
}

/// True if `v` is a stream entry id.
fn is_offset(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.split_once('-').is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        })
    })
}

/// `args` without its offset (checked to be one).
fn without_offset(args: &Value) -> Value {
    let mut items = args.as_array().unwrap().clone();
    let offset = items.pop().expect("an offset");
    assert!(is_offset(&offset), "{args} does not end with an offset");
    Value::Array(items)
}

async fn client_recovers_on_another_node(from: Server, to: Server, sender: Server) {
    let key = unique_key(&format!("{from:?}-{to:?}").to_lowercase());
    let mut cluster = Cluster::start(&key).await;
    let from_url = cluster.url(from);
    let to_url = cluster.url(to);
    let sender_url = cluster.url(sender);
    let node = &mut cluster.node;

    // A witness on the sending node, in room1, to know when the broadcasts are through.
    node.call(json!({"op": "client", "name": "witness", "url": sender_url}))
        .await;
    node.call(json!({"op": "client_emit", "name": "witness", "ev": "join", "args": ["room1"], "ack": true}))
        .await;

    let first = node
        .call(json!({"op": "client", "name": "c1", "url": from_url}))
        .await;
    let sid = first["sid"].as_str().unwrap().to_owned();
    assert!(first["pid"].is_string(), "no private id: {first}");
    assert_eq!(first["recovered"], false);
    node.call(
        json!({"op": "client_emit", "name": "c1", "ev": "join", "args": ["room1"], "ack": true}),
    )
    .await;
    node.call(json!({"op": "client_emit", "name": "c1", "ev": "set-data", "args": [{"score": 42}], "ack": true}))
        .await;
    cluster.emit(sender, &[], "before", json!([1])).await;
    let node = &mut cluster.node;
    let before = node.client_got("c1", "before").await;
    assert_eq!(without_offset(&before), json!([1]));

    // The transport dies; wait until the cluster no longer sees the socket.
    node.call(json!({"op": "client_cut", "name": "c1"})).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while node.fetch().await.iter().any(|s| s["id"] == sid.as_str()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{sid} still connected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Missed: to everyone, to room1, to another room (not for c1), to everyone but room1
    // (not for c1), binary.
    cluster.emit(sender, &[], "missed", json!(["all", 1])).await;
    cluster
        .emit(sender, &["room1"], "missed", json!(["room1", 2]))
        .await;
    cluster
        .emit(sender, &["room2"], "missed", json!(["room2", 3]))
        .await;
    cluster
        .emit(sender, &[], "missed", json!(["bin", {"$bin": "0102"}]))
        .await;
    cluster.emit(sender, &["room1"], "last", json!([])).await;
    let node = &mut cluster.node;
    node.client_got("witness", "last").await;

    let again = node
        .call(json!({"op": "client_reconnect", "name": "c2", "url": to_url, "from": "c1"}))
        .await;
    assert_eq!(again["recovered"], true, "{again}");
    assert_eq!(again["sid"], sid.as_str());
    node.client_got("c2", "last").await;
    let got: Vec<(String, Value)> = node
        .received("c2")
        .into_iter()
        .map(|(ev, args)| (ev, without_offset(&args)))
        .collect();
    assert_eq!(
        got,
        [
            ("missed".to_owned(), json!(["all", 1])),
            ("missed".to_owned(), json!(["room1", 2])),
            ("missed".to_owned(), json!(["bin", {"$bin": "0102"}])),
            ("last".to_owned(), json!([])),
        ]
    );

    // Its rooms: a room broadcast from any node reaches it; its data: the cluster sees it.
    cluster
        .emit(sender, &["room1"], "after", json!(["room1"]))
        .await;
    let node = &mut cluster.node;
    assert_eq!(
        without_offset(&node.client_got("c2", "after").await),
        json!(["room1"])
    );
    let sockets = node.fetch().await;
    let me = sockets
        .iter()
        .find(|s| s["id"] == sid.as_str())
        .unwrap_or_else(|| panic!("{sid} not in {sockets:?}"));
    assert_eq!(me["data"], json!({"score": 42}));
    let mut rooms = vec![sid.clone(), "room1".to_owned()];
    rooms.sort();
    assert_eq!(me["rooms"], json!(rooms));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_recovers_from_ferrio_to_ferrio() {
    client_recovers_on_another_node(Server::Rust1, Server::Rust2, Server::Node).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_recovers_from_ferrio_to_node() {
    client_recovers_on_another_node(Server::Rust1, Server::Node, Server::Rust2).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_recovers_from_node_to_ferrio() {
    client_recovers_on_another_node(Server::Node, Server::Rust1, Server::Rust2).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_session_or_offset_starts_afresh() {
    let key = unique_key("unknown");
    let mut cluster = Cluster::start(&key).await;
    let r1 = cluster.url(Server::Rust1);
    let r2 = cluster.url(Server::Rust2);
    let node = &mut cluster.node;
    let first = node
        .call(json!({"op": "client", "name": "c1", "url": r1}))
        .await;
    cluster.emit(Server::Rust1, &[], "before", json!([])).await;
    let node = &mut cluster.node;
    node.client_got("c1", "before").await;
    // A clean disconnect ends the session: no recovery on another node.
    node.call(json!({"op": "client_close", "name": "c1"})).await;
    let sid = first["sid"].as_str().unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while node.fetch().await.iter().any(|s| s["id"] == sid) {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let again = node
        .call(json!({"op": "client_reconnect", "name": "c2", "url": r2, "from": "c1"}))
        .await;
    assert_eq!(again["recovered"], false, "{again}");
    assert_ne!(again["sid"], first["sid"]);
}
