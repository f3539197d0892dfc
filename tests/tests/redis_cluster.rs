//! A mixed cluster behind a real Redis: Ferrio nodes with `ferrio-redis` and a Node.js node
//! running npm `socket.io` 4.8 with `@socket.io/redis-adapter` 8.3 (`tests/node/redis-node.js`),
//! with npm `socket.io-client` clients on every node. Every cluster operation is checked in both
//! directions.
//!
//! Every test runs with the classic adapter (`createAdapter` / [`RedisAdapter`]), the sharded one
//! (`createShardedAdapter` / [`ShardedRedisAdapter`], Redis 7 sharded pub/sub) and the streams
//! one (`@socket.io/redis-streams-adapter` 0.3 / [`StreamsRedisAdapter`]).
//!
//! Needs Redis on 127.0.0.1:6379 (each test uses its own channel prefix) and, for the restart
//! test, the `redis-server` binary (it starts its own on a free port).

use std::collections::{BTreeSet, HashMap};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ferrio_redis::streams::{StreamsRedisAdapter, StreamsRedisAdapterConfig};
use ferrio_redis::{
    RedisAdapter, RedisAdapterConfig, ShardedRedisAdapter, ShardedRedisAdapterConfig,
    SubscriptionMode,
};
use ferrio_server::{AckSender, Ferrio, Socket};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, oneshot};

const REDIS: &str = "redis://127.0.0.1:6379/";
const WAIT: Duration = Duration::from_secs(10);

fn unique_key(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("ferrio-test-{test}-{}-{nanos}", std::process::id())
}

/// Which protocol the cluster speaks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Flavor {
    Classic,
    /// Sharded, in the default `dynamic` subscription mode.
    Sharded,
    ShardedStatic,
    ShardedDynamicPrivate,
    /// The Redis streams adapter (stream and channel prefix = the test's key), recovery off.
    Streams,
}

impl Flavor {
    /// The adapter and subscription mode arguments of `redis-node.js`.
    fn args(self) -> [&'static str; 2] {
        match self {
            Flavor::Classic => ["classic", "dynamic"],
            Flavor::Sharded => ["sharded", "dynamic"],
            Flavor::ShardedStatic => ["sharded", "static"],
            Flavor::ShardedDynamicPrivate => ["sharded", "dynamic-private"],
            Flavor::Streams => ["streams", "0"],
        }
    }

    fn mode(self) -> SubscriptionMode {
        match self {
            Flavor::ShardedStatic => SubscriptionMode::Static,
            Flavor::ShardedDynamicPrivate => SubscriptionMode::DynamicPrivate,
            _ => SubscriptionMode::Dynamic,
        }
    }
}

/// With sharded pub/sub, a room's messages travel on a channel of its own that the nodes having
/// the room subscribe to as it is created: waits until `n` nodes listen on it.
async fn wait_for_room_channel(flavor: Flavor, redis: &str, key: &str, room: &str, n: usize) {
    if matches!(
        flavor,
        Flavor::Classic | Flavor::ShardedStatic | Flavor::Streams
    ) {
        return;
    }
    let client = redis::Client::open(redis).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let channel = format!("{key}#/#{room}#");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, count): (String, usize) = redis::cmd("PUBSUB")
            .arg("SHARDNUMSUB")
            .arg(&channel)
            .query_async(&mut conn)
            .await
            .unwrap();
        if count == n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{count} subscribers on {channel}, want {n}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A Ferrio server with a Redis adapter, serving on a free port.
struct RustNode {
    io: Ferrio,
    close: Box<dyn Fn() + Send + Sync>,
    url: String,
    server_events: mpsc::UnboundedReceiver<Vec<Value>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for RustNode {
    fn drop(&mut self) {
        (self.close)();
        self.task.abort();
    }
}

async fn rust_node(flavor: Flavor, redis: &str, key: &str, label: &'static str) -> RustNode {
    let timeout = Duration::from_secs(3);
    let (builder, close): (_, Box<dyn Fn() + Send + Sync>) = match flavor {
        Flavor::Classic => {
            let adapter = RedisAdapter::with_config(
                redis,
                RedisAdapterConfig {
                    key: key.to_owned(),
                    requests_timeout: timeout,
                    ..RedisAdapterConfig::default()
                },
            )
            .await
            .expect("redis reachable");
            (
                Ferrio::builder().adapter(adapter.clone()),
                Box::new(move || adapter.close()),
            )
        }
        Flavor::Sharded | Flavor::ShardedStatic | Flavor::ShardedDynamicPrivate => {
            let adapter = ShardedRedisAdapter::with_config(
                redis,
                ShardedRedisAdapterConfig {
                    channel_prefix: key.to_owned(),
                    requests_timeout: timeout,
                    subscription_mode: flavor.mode(),
                },
            )
            .await
            .expect("redis reachable");
            (
                Ferrio::builder().adapter(adapter.clone()),
                Box::new(move || adapter.close()),
            )
        }
        Flavor::Streams => {
            let adapter = StreamsRedisAdapter::with_config(
                redis,
                StreamsRedisAdapterConfig {
                    stream_name: key.to_owned(),
                    channel_prefix: key.to_owned(),
                    requests_timeout: timeout,
                    ..StreamsRedisAdapterConfig::default()
                },
            )
            .await
            .expect("redis reachable");
            (
                Ferrio::builder().adapter(adapter.clone()),
                Box::new(move || adapter.close()),
            )
        }
    };
    let io = builder.build();
    let (tx, server_events) = mpsc::unbounded_channel();
    for nsp in ["/", "/chat"] {
        let ns = io.of(nsp);
        ns.on_connection(|socket: Socket| async move {
            let auth = socket.handshake().auth_raw().to_value().unwrap_or_default();
            socket
                .set_shared_data(&json!({"lang": "rust", "name": auth.get("name")}))
                .unwrap();
            socket.on(
                "join",
                |socket: Socket, (room,): (String,), ack: AckSender| async move {
                    socket.join(room);
                    ack.send(&("ok",))
                },
            );
        });
        let tx = tx.clone();
        ns.on_server_event("srv", move |args, ack| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(args);
                ack.send(&format!("pong-from-{label}")).unwrap();
            }
        });
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(io.clone().serve(listener));
    RustNode {
        io,
        close,
        url,
        server_events,
        task,
    }
}

/// The Node.js node and its clients, driven over JSON lines.
struct Agent {
    _child: Child,
    stdin: ChildStdin,
    next_id: u64,
    replies: Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>,
    events: mpsc::UnboundedReceiver<Value>,
    /// Every event received so far.
    log: Vec<Value>,
    url: String,
}

impl Agent {
    async fn start(flavor: Flavor, redis: &str, key: &str) -> Agent {
        let dir = ferrio_tests::node_dir();
        assert!(
            dir.join("node_modules").is_dir(),
            "run npm ci in tests/node"
        );
        let mut child = Command::new("node")
            .arg(dir.join("redis-node.js"))
            .arg(redis)
            .arg(key)
            .args(flavor.args())
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

    /// Waits for an event matching `pred` (looking at the ones already received first).
    async fn event(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(e) = self.log.iter().find(|e| pred(e)) {
            return e.clone();
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let e = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}; got {:#?}", self.log))
                .expect("node node running");
            self.log.push(e.clone());
            if pred(&e) {
                return e;
            }
        }
    }

    /// Waits for client `name` to receive event `ev`; returns its arguments.
    async fn client_got(&mut self, name: &str, ev: &str) -> Value {
        let e = self
            .event(&format!("{ev} at {name}"), |e| {
                e["event"] == "client_event" && e["name"] == name && e["ev"] == ev
            })
            .await;
        e["args"].clone()
    }

    /// True if client `name` received event `ev` so far.
    fn client_saw(&self, name: &str, ev: &str) -> bool {
        self.log
            .iter()
            .any(|e| e["event"] == "client_event" && e["name"] == name && e["ev"] == ev)
    }

    async fn client(&mut self, name: &str, url: &str, nsp: &str) -> String {
        let reply = self
            .call(json!({"op": "client", "name": name, "url": url, "nsp": nsp}))
            .await;
        reply["sid"].as_str().unwrap().to_owned()
    }

    async fn server_count(&mut self, nsp: &str) -> u64 {
        self.call(json!({"op": "server_count", "nsp": nsp})).await["count"]
            .as_u64()
            .unwrap()
    }
}

/// Waits until every node counts `n` servers in `nsp`.
async fn wait_for_cluster(agent: &mut Agent, nodes: &[&RustNode], nsp: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut counts = vec![agent.server_count(nsp).await as usize];
        for node in nodes {
            counts.push(node.io.of(nsp).server_count().await.unwrap_or(0));
        }
        if counts.iter().all(|&c| c == n) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "cluster not formed: counts {counts:?}, want {n}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn bin(hex: &str) -> Value {
    json!({ "$bin": hex })
}

async fn broadcasts_reach_every_node_both_ways(flavor: Flavor) {
    let key = unique_key("broadcast");
    let r1 = rust_node(flavor, REDIS, &key, "r1").await;
    let r2 = rust_node(flavor, REDIS, &key, "r2").await;
    let mut node = Agent::start(flavor, REDIS, &key).await;
    wait_for_cluster(&mut node, &[&r1, &r2], "/", 3).await;
    let node_url = node.url.clone();
    node.client("a", &r1.url, "/").await;
    node.client("b", &r2.url, "/").await;
    node.client("c", &node_url, "/").await;

    // Rust → every node, binary inline.
    r1.io
        .emit("hello", &("from-rust", Bytes::from_static(&[1, 2, 3])))
        .unwrap();
    for name in ["a", "b", "c"] {
        assert_eq!(
            node.client_got(name, "hello").await,
            json!(["from-rust", bin("010203")])
        );
    }

    // Node → every node.
    node.call(json!({"op": "emit", "ev": "hi", "args": ["from-node", bin("0405")]}))
        .await;
    for name in ["a", "b", "c"] {
        assert_eq!(
            node.client_got(name, "hi").await,
            json!(["from-node", bin("0405")])
        );
    }

    // Rooms: a (Rust) and c (Node) join room1; b does not.
    for name in ["a", "c"] {
        node.call(json!({"op": "client_emit", "name": name, "ev": "join", "args": ["room1"], "ack": true}))
            .await;
    }
    wait_for_room_channel(flavor, REDIS, &key, "room1", 2).await;
    r2.io.to("room1").emit("room-msg", &("r2",)).unwrap();
    node.call(json!({"op": "emit", "rooms": ["room1"], "ev": "room-msg-node", "args": []}))
        .await;
    // Except: everyone but room1 → b only.
    node.call(json!({"op": "emit", "except": ["room1"], "ev": "not-room1", "args": []}))
        .await;
    r1.io
        .of("/")
        .except("room1")
        .emit("not-room1-rust", &())
        .unwrap();
    for name in ["a", "c"] {
        assert_eq!(node.client_got(name, "room-msg").await, json!(["r2"]));
        node.client_got(name, "room-msg-node").await;
    }
    node.client_got("b", "not-room1").await;
    node.client_got("b", "not-room1-rust").await;
    // A last broadcast to all proves the others were not merely late.
    r2.io.emit("sentinel", &()).unwrap();
    for name in ["a", "b", "c"] {
        node.client_got(name, "sentinel").await;
    }
    assert!(!node.client_saw("b", "room-msg") && !node.client_saw("b", "room-msg-node"));
    for name in ["a", "c"] {
        assert!(!node.client_saw(name, "not-room1") && !node.client_saw(name, "not-room1-rust"));
    }

    // `local` stays on the node.
    r1.io.of("/").local().emit("local-only", &()).unwrap();
    r1.io.emit("after-local", &()).unwrap();
    node.client_got("a", "local-only").await;
    for name in ["b", "c"] {
        node.client_got(name, "after-local").await;
        assert!(!node.client_saw(name, "local-only"));
    }

    // Namespaces are separate: a /chat broadcast reaches /chat clients only.
    wait_for_cluster(&mut node, &[&r1, &r2], "/chat", 3).await;
    node.client("chat-a", &r1.url, "/chat").await;
    node.client("chat-c", &node_url, "/chat").await;
    node.call(json!({"op": "emit", "nsp": "/chat", "ev": "in-chat", "args": [1]}))
        .await;
    r2.io.of("/chat").emit("in-chat-rust", &(2,)).unwrap();
    assert_eq!(node.client_got("chat-a", "in-chat").await, json!([1]));
    assert_eq!(node.client_got("chat-c", "in-chat-rust").await, json!([2]));
    node.client_got("chat-a", "in-chat-rust").await;
    r1.io.emit("sentinel2", &()).unwrap();
    node.client_got("a", "sentinel2").await;
    assert!(!node.client_saw("a", "in-chat") && !node.client_saw("c", "in-chat-rust"));
}

#[derive(serde::Deserialize)]
struct AckBody {
    from: String,
    args: (Bytes,),
}

async fn broadcast_acks_are_gathered_across_nodes(flavor: Flavor) {
    let key = unique_key("acks");
    let r1 = rust_node(flavor, REDIS, &key, "r1").await;
    let r2 = rust_node(flavor, REDIS, &key, "r2").await;
    let mut node = Agent::start(flavor, REDIS, &key).await;
    wait_for_cluster(&mut node, &[&r1, &r2], "/", 3).await;
    let node_url = node.url.clone();
    node.client("a", &r1.url, "/").await;
    node.client("b", &r2.url, "/").await;
    node.client("c", &node_url, "/").await;
    node.client("d", &node_url, "/").await;

    // Rust asks every client of the cluster; binary goes out and comes back in the answers.
    let replies = r1
        .io
        .of("/")
        .timeout(Duration::from_secs(3))
        .emit_with_ack("ask", &(Bytes::from_static(&[7, 7]),))
        .await
        .unwrap();
    let mut from = BTreeSet::new();
    for reply in replies {
        let (body,): (AckBody,) = reply.expect("answered").args().unwrap();
        assert_eq!(body.args.0.as_ref(), [7, 7]);
        from.insert(body.from);
    }
    assert_eq!(from, BTreeSet::from(["a", "b", "c", "d"].map(String::from)));

    // Node asks every client of the cluster, the Rust nodes' included.
    let reply = node
        .call(json!({"op": "emit", "ev": "ask", "args": [bin("0909")], "ack_timeout": 3000}))
        .await;
    let acks = reply["acks"].as_array().unwrap();
    let from: BTreeSet<&str> = acks.iter().map(|a| a["from"].as_str().unwrap()).collect();
    assert_eq!(from, BTreeSet::from(["a", "b", "c", "d"]));
    for a in acks {
        assert_eq!(a["args"], json!([bin("0909")]));
    }

    // A room on one node only: the other nodes report zero clients and the answer comes at
    // once, not at the timeout.
    node.call(
        json!({"op": "client_emit", "name": "c", "ev": "join", "args": ["solo"], "ack": true}),
    )
    .await;
    let started = std::time::Instant::now();
    let replies = r2
        .io
        .to("solo")
        .timeout(Duration::from_secs(8))
        .emit_with_ack("ask", &(Bytes::from_static(&[1]),))
        .await
        .unwrap();
    assert_eq!(replies.len(), 1);
    assert!(started.elapsed() < Duration::from_secs(8));
}

async fn fetch_sockets_and_remote_socket_operations(flavor: Flavor) {
    let key = unique_key("fetch");
    let r1 = rust_node(flavor, REDIS, &key, "r1").await;
    let mut node = Agent::start(flavor, REDIS, &key).await;
    wait_for_cluster(&mut node, &[&r1], "/", 2).await;
    let node_url = node.url.clone();
    let a = node.client("a", &r1.url, "/").await;
    let c = node.client("c", &node_url, "/").await;

    // Rust fetches: its own socket and the Node one, with handshake, rooms and data.
    let sockets = r1.io.fetch_sockets().await.unwrap();
    let by_id: HashMap<&str, _> = sockets.iter().map(|s| (s.id(), s)).collect();
    assert_eq!(by_id.len(), 2);
    assert_eq!(
        by_id[c.as_str()].data(),
        &json!({"lang": "node", "name": "c"})
    );
    assert_eq!(by_id[c.as_str()].rooms(), std::slice::from_ref(&c));
    assert_eq!(by_id[c.as_str()].handshake()["auth"], json!({"name": "c"}));
    assert_eq!(
        by_id[a.as_str()].data(),
        &json!({"lang": "rust", "name": "a"})
    );

    // Node fetches: the Rust socket looks like one of its own.
    let fetched = node.call(json!({"op": "fetch"})).await;
    let list = fetched["sockets"].as_array().unwrap();
    let rust = list
        .iter()
        .find(|s| s["id"] == a.as_str())
        .expect("rust socket");
    assert_eq!(rust["data"], json!({"lang": "rust", "name": "a"}));
    assert_eq!(rust["rooms"], json!([a]));
    assert_eq!(rust["auth"], json!({"name": "a"}));
    assert_eq!(rust["address"], "127.0.0.1");
    assert_eq!(rust["query"]["EIO"], "4");
    assert!(rust["url"].as_str().unwrap().starts_with("/socket.io/?"));

    // Rust drives the Node socket through its RemoteSocket.
    let remote_c = by_id[c.as_str()].clone();
    remote_c.emit("direct", &("to-c",)).unwrap();
    assert_eq!(node.client_got("c", "direct").await, json!(["to-c"]));
    remote_c.join("vip");
    // Node drives the Rust socket.
    node.call(
        json!({"op": "remote", "sid": a, "action": "emit", "ev": "direct", "args": ["to-a"]}),
    )
    .await;
    assert_eq!(node.client_got("a", "direct").await, json!(["to-a"]));
    node.call(json!({"op": "remote", "sid": a, "action": "join", "room": "vip"}))
        .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let vip = r1.io.of("/").to("vip").fetch_sockets().await.unwrap();
        let mut ids: Vec<&str> = vip.iter().map(|s| s.id()).collect();
        ids.sort();
        let mut want = vec![a.as_str(), c.as_str()];
        want.sort();
        if ids == want {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "vip = {ids:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // socketsJoin / socketsLeave both ways.
    r1.io.of("/").sockets_join("everyone");
    node.call(json!({"op": "sockets_join", "rooms": ["vip"], "room": "vips2"}))
        .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let fetched = node
            .call(json!({"op": "fetch", "rooms": ["everyone"]}))
            .await;
        let in_both = fetched["sockets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["rooms"].as_array().unwrap().contains(&json!("vips2")))
            .count();
        if in_both == 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{fetched}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    node.call(json!({"op": "sockets_leave", "room": "everyone"}))
        .await;
    r1.io.of("/").sockets_leave("vips2");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let rooms: Vec<Value> = r1
            .io
            .fetch_sockets()
            .await
            .unwrap()
            .iter()
            .flat_map(|s| s.rooms().iter().map(|r| json!(r)))
            .collect();
        if !rooms.contains(&json!("everyone")) && !rooms.contains(&json!("vips2")) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{rooms:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // disconnectSockets both ways: Node disconnects the Rust socket, Rust the Node one.
    node.call(json!({"op": "disconnect_sockets", "rooms": [a]}))
        .await;
    let e = node
        .event("a disconnected", |e| {
            e["event"] == "client_disconnect" && e["name"] == "a"
        })
        .await;
    assert_eq!(e["reason"], "io server disconnect");
    r1.io.of("/").to(c.clone()).disconnect_sockets(false);
    let e = node
        .event("c disconnected", |e| {
            e["event"] == "client_disconnect" && e["name"] == "c"
        })
        .await;
    assert_eq!(e["reason"], "io server disconnect");
    // And a RemoteSocket's disconnect.
    let b = node.client("b", &node_url, "/").await;
    let sockets = r1.io.fetch_sockets().await.unwrap();
    let remote_b = sockets.iter().find(|s| s.id() == b).expect("b fetched");
    remote_b.disconnect(true);
    let e = node
        .event("b disconnected", |e| {
            e["event"] == "client_disconnect" && e["name"] == "b"
        })
        .await;
    assert_eq!(e["reason"], "io server disconnect");
}

async fn server_side_events_with_and_without_acks(flavor: Flavor) {
    let key = unique_key("sse");
    let mut r1 = rust_node(flavor, REDIS, &key, "r1").await;
    let mut r2 = rust_node(flavor, REDIS, &key, "r2").await;
    let mut node = Agent::start(flavor, REDIS, &key).await;
    wait_for_cluster(&mut node, &[&r1, &r2], "/", 3).await;

    // Rust → the others, without ack.
    r1.io.server_side_emit("srv", &("a", 1)).unwrap();
    let e = node
        .event("server event", |e| e["event"] == "server_event")
        .await;
    assert_eq!(e["args"], json!(["a", 1]));
    let got = tokio::time::timeout(WAIT, r2.server_events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, vec![json!("a"), json!(1)]);

    // Rust → the others, with ack: one answer per other server.
    let mut answers = r1
        .io
        .of("/")
        .server_side_emit_with_ack("srv", &("b",))
        .await
        .unwrap();
    answers.sort_by_key(|v| v.to_string());
    assert_eq!(
        answers,
        vec![json!("pong-from-node"), json!("pong-from-r2")]
    );
    // The sender does not hear its own event.
    assert!(r1.server_events.try_recv().is_err());

    // Node → the Rust nodes, with ack.
    let reply = node
        .call(json!({"op": "sse_ack", "ev": "srv", "args": ["c"]}))
        .await;
    let mut responses: Vec<String> = reply["responses"]
        .as_array()
        .unwrap_or_else(|| panic!("{reply}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    responses.sort();
    assert_eq!(responses, ["pong-from-r1", "pong-from-r2"]);
    for node in [&mut r1, &mut r2] {
        let mut got = Vec::new();
        while let Ok(Some(e)) = tokio::time::timeout(WAIT, node.server_events.recv()).await {
            got = e;
            if got == vec![json!("c")] {
                break;
            }
        }
        assert_eq!(got, vec![json!("c")]);
    }

    // A server that never answers: the ack fails after the request timeout with what came.
    let silent = node.server_count("/").await;
    assert_eq!(silent, 3);
    r2.io.of("/").on_server_event("quiet", |_, _| async {});
    let err = r1
        .io
        .of("/")
        .server_side_emit_with_ack("quiet", &())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "timeout reached: only 0 responses received out of 2"
    );
}

/// A `redis-server` of our own on a free port, to stop and start.
struct OwnRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    fn start(port: u16) -> OwnRedis {
        let mut redis = OwnRedis { port, child: None };
        redis.restart();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn restart(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server installed");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn nodes_recover_when_redis_restarts(flavor: Flavor) {
    let mut redis = OwnRedis::start(free_port());
    let key = unique_key("restart");
    let r1 = rust_node(flavor, &redis.url(), &key, "r1").await;
    let mut node = Agent::start(flavor, &redis.url(), &key).await;
    wait_for_cluster(&mut node, &[&r1], "/", 2).await;
    let node_url = node.url.clone();
    node.client("a", &r1.url, "/").await;
    node.client("c", &node_url, "/").await;
    r1.io.emit("before", &()).unwrap();
    node.client_got("c", "before").await;

    redis.kill();
    // Local delivery goes on; cluster queries fail within the request timeout.
    r1.io.emit("while-down", &(1,)).unwrap();
    assert_eq!(node.client_got("a", "while-down").await, json!([1]));
    let started = std::time::Instant::now();
    let err = r1.io.fetch_sockets().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(8), "{err}");
    assert!(r1.io.of("/").server_count().await.is_err());

    redis.restart();
    // Both nodes reconnect and subscribe again by themselves.
    wait_for_cluster(&mut node, &[&r1], "/", 2).await;
    r1.io.emit("after", &("rust",)).unwrap();
    assert_eq!(node.client_got("c", "after").await, json!(["rust"]));
    node.call(json!({"op": "emit", "ev": "after-node", "args": []}))
        .await;
    node.client_got("a", "after-node").await;
    let sockets = r1.io.fetch_sockets().await.unwrap();
    assert_eq!(sockets.len(), 2);
}

/// The `cluster` example of ferrio-redis, built (or found up to date) by cargo.
fn cluster_example() -> std::path::PathBuf {
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", "ferrio-redis", "--example", "cluster"])
        .status()
        .unwrap();
    assert!(status.success(), "cannot build the cluster example");
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    profile_dir.join("examples").join("cluster")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_example_nodes_serve_side_by_side() {
    let key = unique_key("example");
    let binary = cluster_example();
    let ports = [free_port(), free_port()];
    let _nodes: Vec<tokio::process::Child> = ports
        .iter()
        .map(|port| {
            Command::new(&binary)
                .args(["--port", &port.to_string(), "--redis", REDIS, "--key", &key])
                .stdout(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("cluster example starts")
        })
        .collect();
    let mut node = Agent::start(Flavor::Classic, REDIS, &key).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while node.server_count("/").await != 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "example nodes did not join"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let node_url = node.url.clone();
    node.client("x", &format!("http://127.0.0.1:{}", ports[0]), "/")
        .await;
    node.client("y", &format!("http://127.0.0.1:{}", ports[1]), "/")
        .await;
    node.client("z", &node_url, "/").await;
    // The e2e handlers: `broadcast` goes to every other socket, here across the cluster.
    node.call(json!({"op": "client_emit", "name": "x", "ev": "broadcast", "args": ["hey", bin("01")], "ack": true}))
        .await;
    for name in ["y", "z"] {
        assert_eq!(
            node.client_got(name, "broadcast").await,
            json!(["hey", bin("01")])
        );
    }
    assert!(!node.client_saw("x", "broadcast"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_reach_every_node_both_ways_classic() {
    broadcasts_reach_every_node_both_ways(Flavor::Classic).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_reach_every_node_both_ways_sharded() {
    broadcasts_reach_every_node_both_ways(Flavor::Sharded).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_acks_are_gathered_across_nodes_classic() {
    broadcast_acks_are_gathered_across_nodes(Flavor::Classic).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_acks_are_gathered_across_nodes_sharded() {
    broadcast_acks_are_gathered_across_nodes(Flavor::Sharded).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_sockets_and_remote_socket_operations_classic() {
    fetch_sockets_and_remote_socket_operations(Flavor::Classic).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_sockets_and_remote_socket_operations_sharded() {
    fetch_sockets_and_remote_socket_operations(Flavor::Sharded).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_events_with_and_without_acks_classic() {
    server_side_events_with_and_without_acks(Flavor::Classic).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_events_with_and_without_acks_sharded() {
    server_side_events_with_and_without_acks(Flavor::Sharded).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_recover_when_redis_restarts_classic() {
    nodes_recover_when_redis_restarts(Flavor::Classic).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_recover_when_redis_restarts_sharded() {
    nodes_recover_when_redis_restarts(Flavor::Sharded).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_reach_every_node_both_ways_sharded_static() {
    broadcasts_reach_every_node_both_ways(Flavor::ShardedStatic).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_reach_every_node_both_ways_sharded_dynamic_private() {
    broadcasts_reach_every_node_both_ways(Flavor::ShardedDynamicPrivate).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_sockets_and_remote_socket_operations_sharded_dynamic_private() {
    fetch_sockets_and_remote_socket_operations(Flavor::ShardedDynamicPrivate).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_reach_every_node_both_ways_streams() {
    broadcasts_reach_every_node_both_ways(Flavor::Streams).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_acks_are_gathered_across_nodes_streams() {
    broadcast_acks_are_gathered_across_nodes(Flavor::Streams).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_sockets_and_remote_socket_operations_streams() {
    fetch_sockets_and_remote_socket_operations(Flavor::Streams).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_events_with_and_without_acks_streams() {
    server_side_events_with_and_without_acks(Flavor::Streams).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_recover_when_redis_restarts_streams() {
    nodes_recover_when_redis_restarts(Flavor::Streams).await
}
