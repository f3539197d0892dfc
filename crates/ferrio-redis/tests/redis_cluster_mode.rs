//! The sharded adapter on a real Redis Cluster: three masters started by the test on free
//! ports, two Ferrio servers connected with `ShardedRedisAdapter::connect_cluster`, a Socket.IO
//! client on each. Broadcasts (to all, to rooms whose channels live on different shards, with
//! acks), `fetch_sockets`, server-side events with acks and the server count work across them.

mod common;

use common::Proxy;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ferrio_client::{AckSender as ClientAck, Socket as ClientSocket};
use ferrio_redis::{ShardedRedisAdapter, ShardedRedisAdapterConfig};
use ferrio_server::{Ferrio, Socket};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// How long anything may take before the test gives up (never asserted as a duration).
const WAIT: Duration = Duration::from_secs(30);

/// Rooms every client joins; their channels hash to slots spread over the masters.
const ROOMS: [&str; 6] = ["red", "green", "blue", "amber", "violet", "teal"];

/// A Redis Cluster of three masters, started by this test, on free ports.
struct OwnCluster {
    ports: Vec<u16>,
    /// The ports the nodes announce to clients (their own, or proxies in front of them).
    announced: Vec<u16>,
    children: Vec<Child>,
    dir: PathBuf,
}

/// A free port whose cluster bus port (+10000) is free too.
fn free_cluster_port(taken: &[u16]) -> u16 {
    loop {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if port > 55000 || taken.contains(&port) {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
}

impl OwnCluster {
    fn start() -> OwnCluster {
        let mut ports = Vec::new();
        for _ in 0..3 {
            let port = free_cluster_port(&ports);
            ports.push(port);
        }
        OwnCluster::start_on(ports, None)
    }

    /// Starts the nodes on `ports`; with `announced`, node i tells clients to connect to
    /// `announced[i]` instead of its own port (a proxy in front of it).
    fn start_on(ports: Vec<u16>, announced: Option<Vec<u16>>) -> OwnCluster {
        let dir = std::env::temp_dir().join(format!(
            "ferrio-redis-cluster-{}-{}",
            std::process::id(),
            ports[0]
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cluster = OwnCluster {
            ports: ports.clone(),
            announced: announced.clone().unwrap_or_else(|| ports.clone()),
            children: Vec::new(),
            dir: dir.clone(),
        };
        for (i, port) in ports.iter().enumerate() {
            let conf = dir.join(format!("nodes-{port}.conf"));
            let mut command = Command::new("redis-server");
            command
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args(["--cluster-enabled", "yes", "--cluster-config-file"])
                .arg(&conf)
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"]);
            if let Some(announced) = &announced {
                command
                    .args(["--cluster-announce-ip", "127.0.0.1"])
                    .args(["--cluster-announce-port", &announced[i].to_string()])
                    .args(["--cluster-announce-bus-port", &(port + 10000).to_string()]);
            }
            let child = command
                .current_dir(&dir)
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server installed");
            cluster.children.push(child);
        }
        let deadline = std::time::Instant::now() + WAIT;
        for port in &ports {
            while std::net::TcpStream::connect(("127.0.0.1", *port)).is_err() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "redis-server did not start"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let status = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(ports.iter().map(|p| format!("127.0.0.1:{p}")))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli installed");
        assert!(status.success(), "redis-cli --cluster create failed");
        for port in &ports {
            loop {
                let info = Command::new("redis-cli")
                    .args(["-p", &port.to_string(), "cluster", "info"])
                    .output()
                    .expect("redis-cli installed");
                if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "the cluster did not become ready"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        cluster
    }

    fn urls(&self) -> Vec<String> {
        self.announced
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}/"))
            .collect()
    }

    /// The shard channels each master has subscribers on (`PUBSUB SHARDCHANNELS`, asked of
    /// every master on a connection of the test's own).
    async fn shard_channels(&self) -> Vec<Vec<String>> {
        let mut all = Vec::new();
        for port in &self.ports {
            let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let channels: Vec<String> = redis::cmd("PUBSUB")
                .arg("SHARDCHANNELS")
                .query_async(&mut conn)
                .await
                .unwrap();
            all.push(channels);
        }
        all
    }
}

impl OwnCluster {
    /// True once every room of [`ROOMS`] has its channel (`<prefix>#/#<room>#`) subscribed on
    /// some master.
    async fn has_room_channels(&self, prefix: &str) -> bool {
        let per_master = self.shard_channels().await;
        ROOMS.iter().all(|room| {
            per_master
                .iter()
                .any(|chs| chs.contains(&format!("{prefix}#/#{room}#")))
        })
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        // Only the servers this test started.
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Ferrio server on the cluster, serving on a free port, with one client connected to it.
struct Node {
    label: &'static str,
    io: Ferrio,
    adapter: ShardedRedisAdapter,
    /// The events the client received: (event, first argument).
    client_events: common::Events,
    _client: ClientSocket,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.adapter.close();
        self.task.abort();
    }
}

impl Node {
    async fn start(cluster: &OwnCluster, prefix: &str, label: &'static str) -> Node {
        let urls = cluster.urls();
        let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
        let adapter = ShardedRedisAdapter::with_cluster_config(
            &urls,
            ShardedRedisAdapterConfig {
                channel_prefix: prefix.to_owned(),
                requests_timeout: Duration::from_secs(5),
                ..ShardedRedisAdapterConfig::default()
            },
        )
        .await
        .expect("redis cluster reachable");
        let io = Ferrio::builder().adapter(adapter.clone()).build();
        io.of("/").on_connection(|socket: Socket| async move {
            for room in ROOMS {
                socket.join(room);
            }
        });
        io.of("/")
            .on_server_event("ping", move |_args, ack| async move {
                let _ = ack.send(&format!("pong-from-{label}"));
            });
        let (url, task) = common::serve(&io).await;
        let builder = ferrio_client::io(&url).on(
            "ask",
            move |_s: ClientSocket, (n,): (u64,), ack: ClientAck| async move {
                let _ = ack.send(&(format!("{label}-{n}"),));
            },
        );
        let (client, client_events) = common::recording_client(builder, None).await;
        Node {
            label,
            io,
            adapter,
            client_events,
            _client: client,
            task,
        }
    }

    /// Waits for the client to receive `event`, and returns its first argument.
    async fn client_got(&mut self, event: &str) -> Value {
        common::client_got(&mut self.client_events, self.label, event, WAIT).await
    }

    /// Waits for the client to receive `event` with first argument `value` (skipping others).
    async fn client_got_value(&mut self, event: &str, value: Value) {
        while self.client_got(event).await != value {}
    }

    /// The events the client received so far, `event` only.
    fn drain(&mut self, event: &str) -> Vec<Value> {
        let mut got = Vec::new();
        while let Ok((ev, arg)) = self.client_events.try_recv() {
            if ev == event {
                got.push(arg);
            }
        }
        got
    }
}

/// Waits (bounded) until `done` holds.
async fn wait_until<F, Fut>(what: &str, done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    common::poll_until(WAIT, Duration::from_millis(100), what, done).await;
}

/// Broadcasts `ask` with `n` and acks from `io`: the answers of every client, sorted.
async fn ask_everyone(io: &Ferrio, n: u64) -> Vec<String> {
    let replies = io
        .of("/")
        .timeout(Duration::from_secs(5))
        .emit_with_ack("ask", &(n,))
        .await
        .unwrap();
    let mut answers: Vec<String> = replies
        .into_iter()
        .map(|r| r.expect("answered").args::<(String,)>().unwrap().0)
        .collect();
    answers.sort();
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_adapter_on_a_redis_cluster() {
    let cluster = OwnCluster::start();
    let prefix = format!("ferrio-cluster-{}", std::process::id());
    let mut a = Node::start(&cluster, &prefix, "a").await;
    let mut b = Node::start(&cluster, &prefix, "b").await;

    // Both servers count each other: SHARDNUMSUB summed over the masters.
    let (io_a, io_b) = (a.io.clone(), b.io.clone());
    wait_until("both servers see a cluster of two", || {
        let (io_a, io_b) = (io_a.clone(), io_b.clone());
        async move {
            io_a.of("/").server_count().await.ok() == Some(2)
                && io_b.of("/").server_count().await.ok() == Some(2)
        }
    })
    .await;

    // Every room has its channel, subscribed by both servers, and the channels are spread
    // over the shards (each SSUBSCRIBE went to the master that owns the channel's slot).
    wait_until("every room channel is subscribed on its shard", || {
        cluster.has_room_channels(&prefix)
    })
    .await;
    let per_master = cluster.shard_channels().await;
    let used = per_master
        .iter()
        .filter(|chs| chs.iter().any(|c| c.starts_with(&prefix)))
        .count();
    assert!(used >= 2, "channels on one shard only: {per_master:?}");

    // Broadcast to all, both ways.
    a.io.emit("all", &("from-a",)).unwrap();
    b.client_got_value("all", json!("from-a")).await;
    b.io.emit("all", &("from-b",)).unwrap();
    a.client_got_value("all", json!("from-b")).await;

    // Broadcast to each room (a channel per room, on different shards), both ways.
    for room in ROOMS {
        let event = format!("in-{room}");
        a.io.of("/").to(room).emit(&event, &("from-a",)).unwrap();
        b.client_got_value(&event, json!("from-a")).await;
        b.io.of("/").to(room).emit(&event, &("from-b",)).unwrap();
        a.client_got_value(&event, json!("from-b")).await;
    }
    // A room nobody joined reaches nobody.
    a.io.of("/").to("nobody").emit("stray", &(1,)).unwrap();
    a.io.emit("marker", &(1,)).unwrap();
    b.client_got("marker").await;
    assert!(b.drain("stray").is_empty());

    // Broadcast with acks: both clients answer, the remote one through the cluster.
    let answers = ask_everyone(&a.io, 7).await;
    assert_eq!(answers, vec!["a-7".to_owned(), "b-7".to_owned()]);

    // fetch_sockets sees the sockets of both servers, with their rooms.
    let sockets = b.io.fetch_sockets().await.unwrap();
    assert_eq!(sockets.len(), 2);
    for socket in &sockets {
        for room in ROOMS {
            assert!(socket.rooms().iter().any(|r| r == room));
        }
    }

    // Server-side events with ack, both ways.
    let answers =
        a.io.of("/")
            .server_side_emit_with_ack("ping", &())
            .await
            .unwrap();
    assert_eq!(answers, vec![json!("pong-from-b")]);
    let answers =
        b.io.of("/")
            .server_side_emit_with_ack("ping", &())
            .await
            .unwrap();
    assert_eq!(answers, vec![json!("pong-from-a")]);

    // A server that leaves is no longer counted.
    b.adapter.close();
    let io_a = a.io.clone();
    wait_until("the cluster shrinks to one", || {
        let io_a = io_a.clone();
        async move { io_a.of("/").server_count().await.ok() == Some(1) }
    })
    .await;
}

/// A Node.js server (`createShardedAdapter` on a node-redis cluster client) with one client,
/// driven over JSON lines (`tests/node/sharded-cluster-node.js`).
struct NodeJs {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: mpsc::UnboundedReceiver<Value>,
    /// Client events read while waiting for an answer.
    events: Vec<(String, Value)>,
    next_id: u64,
}

impl NodeJs {
    async fn start(cluster: &OwnCluster, prefix: &str) -> NodeJs {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/node");
        assert!(
            dir.join("node_modules").is_dir(),
            "run `npm ci` in tests/node first"
        );
        let mut child = tokio::process::Command::new("node")
            .arg(dir.join("sharded-cluster-node.js"))
            .arg(prefix)
            .args(cluster.urls())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node installed");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(value);
                }
            }
        });
        let mut node = NodeJs {
            child,
            stdin,
            lines,
            events: Vec::new(),
            next_id: 0,
        };
        let ready = node.next_line().await;
        assert_eq!(ready["event"], "ready", "node failed: {ready}");
        node
    }

    async fn next_line(&mut self) -> Value {
        match tokio::time::timeout(WAIT, self.lines.recv()).await {
            Ok(Some(line)) => line,
            Ok(None) => panic!("the node process exited"),
            Err(_) => panic!("the node process is silent"),
        }
    }

    /// Sends `request` and returns its answer.
    async fn call(&mut self, mut request: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        request["id"] = json!(id);
        let mut line = request.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        loop {
            let line = self.next_line().await;
            if line["id"] == json!(id) {
                assert!(line.get("error").is_none(), "node: {line}");
                return line;
            }
            if line["event"] == "client_event" {
                let first = line["args"].get(0).cloned().unwrap_or(Value::Null);
                self.events
                    .push((line["ev"].as_str().unwrap_or_default().to_owned(), first));
            }
        }
    }

    /// Waits for the Node client to receive `event` with first argument `value`.
    async fn client_got_value(&mut self, event: &str, value: Value) {
        let wanted = (event.to_owned(), value);
        loop {
            if let Some(i) = self.events.iter().position(|e| *e == wanted) {
                self.events.remove(i);
                return;
            }
            let line = self.next_line().await;
            if line["event"] == "client_event" {
                let first = line["args"].get(0).cloned().unwrap_or(Value::Null);
                self.events
                    .push((line["ev"].as_str().unwrap_or_default().to_owned(), first));
            }
        }
    }

    async fn stop(mut self) {
        drop(self.stdin);
        let _ = tokio::time::timeout(WAIT, self.child.wait()).await;
        let _ = self.child.kill().await;
    }
}

/// A Ferrio server and a Node.js server (`createShardedAdapter` with node-redis `createCluster`)
/// on the same Redis Cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferrio_and_node_share_a_redis_cluster() {
    let cluster = OwnCluster::start();
    let prefix = format!("ferrio-mixed-{}", std::process::id());
    let mut rust = Node::start(&cluster, &prefix, "rust").await;
    let mut node = NodeJs::start(&cluster, &prefix).await;

    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let theirs = node.call(json!({"op": "server_count"})).await["count"].clone();
        let ours = rust.io.of("/").server_count().await.ok();
        if theirs == json!(2) && ours == Some(2) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "server counts: node {theirs}, rust {ours:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Node subscribes to its room channels when its socket joins; wait for them all.
    wait_until("every room channel has both servers", || {
        cluster.has_room_channels(&prefix)
    })
    .await;

    // Broadcasts to all and to every room, both ways.
    rust.io.emit("all", &("from-rust",)).unwrap();
    node.client_got_value("all", json!("from-rust")).await;
    node.call(json!({"op": "emit", "ev": "all", "args": ["from-node"]}))
        .await;
    rust.client_got_value("all", json!("from-node")).await;
    for room in ROOMS {
        let event = format!("in-{room}");
        rust.io
            .of("/")
            .to(room)
            .emit(&event, &("from-rust",))
            .unwrap();
        node.client_got_value(&event, json!("from-rust")).await;
        node.call(json!({"op": "emit", "room": room, "ev": event, "args": ["from-node"]}))
            .await;
        rust.client_got_value(&event, json!("from-node")).await;
    }

    // Broadcast with acks, both ways.
    let answers = ask_everyone(&rust.io, 3).await;
    assert_eq!(answers, vec!["node-3".to_owned(), "rust-3".to_owned()]);
    let reply = node
        .call(json!({"op": "emit_ack", "ev": "ask", "args": [4], "timeout": 5000}))
        .await;
    let mut acks: Vec<String> = reply["acks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    acks.sort();
    assert_eq!(acks, vec!["node-4".to_owned(), "rust-4".to_owned()]);

    // fetch_sockets, both ways.
    let sockets = rust.io.fetch_sockets().await.unwrap();
    assert_eq!(sockets.len(), 2);
    let reply = node.call(json!({"op": "fetch_sockets"})).await;
    assert_eq!(reply["sockets"].as_array().unwrap().len(), 2);

    // Server-side events with ack, both ways.
    let answers = rust
        .io
        .of("/")
        .server_side_emit_with_ack("ping", &())
        .await
        .unwrap();
    assert_eq!(answers, vec![json!("pong-from-node")]);
    let reply = node
        .call(json!({"op": "sse_ack", "ev": "ping", "args": []}))
        .await;
    assert_eq!(reply["answers"], json!(["pong-from-rust"]));

    node.stop().await;
}

/// A server whose connections to every cluster node are cut silently replaces its subscriber
/// connection (health-check pings) and gets the other servers' broadcasts again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_subscriber_reconnects_after_a_network_cut() {
    let mut ports = Vec::new();
    for _ in 0..3 {
        let port = free_cluster_port(&ports);
        ports.push(port);
    }
    let mut proxies = Vec::new();
    for port in &ports {
        proxies.push(Proxy::start(*port).await);
    }
    let cluster = OwnCluster::start_on(ports, Some(proxies.iter().map(|p| p.port).collect()));
    let prefix = format!("ferrio-cut-{}", std::process::id());
    let mut a = Node::start(&cluster, &prefix, "a").await;
    wait_until("node a listens on its room channels", || {
        cluster.has_room_channels(&prefix)
    })
    .await;

    // Every connection node a has is cut; node b connects afterwards, through working paths.
    for proxy in &proxies {
        proxy.black_hole();
    }
    let b = Node::start(&cluster, &prefix, "b").await;
    // Within the health-check bound (10 s) plus reconnection; the wait is only an upper limit.
    common::send_until_received(
        &mut a.client_events,
        "after-cut",
        Duration::from_secs(40),
        "node a never got node b's broadcasts after the cut",
        |n| {
            b.io.of("/").to("red").emit("after-cut", &(n,)).unwrap();
            b.io.emit("after-cut", &(n,)).unwrap();
        },
    )
    .await;
}
