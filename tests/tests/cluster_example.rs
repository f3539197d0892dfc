//! The cluster node as a user runs it: `examples/cluster` of ferrio-redis, built by cargo, two
//! of them beside its Node.js twin (`tests/node/cluster-node.js`: npm `socket.io` 4.8 with the
//! adapter of the same mode), all three against a `redis-server` of the test's own. npm
//! `socket.io-client` clients (`tests/node/cluster-client.js`) on every node drive the cluster
//! handlers and check what comes back: broadcasts with acks, `fetch-sockets`, server-side emits
//! with and without acks, from a client of each node kind.
//!
//! One test per mode: classic (`createAdapter`), sharded (`createShardedAdapter`, Redis 7
//! sharded pub/sub) and streams (`@socket.io/redis-streams-adapter`). Needs the `redis-server`
//! binary (7.0 or later) and `npm ci` in `tests/node`.
//!
//! In the streams mode, connection state recovery across the nodes: a client whose connection
//! is lost comes back on another node; a client whose Ferrio node is killed (SIGKILL) comes back
//! on another node too, Ferrio or Node, as Ferrio saves the sessions of its connected sockets;
//! and, for contrast, the clients of a killed Node node cannot, as the reference saves a
//! session only when its socket disconnects.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, oneshot};

const WAIT: Duration = Duration::from_secs(20);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `cluster` example, built once (debug profile) as a user builds it:
/// `cargo build -p ferrio-redis --example cluster`, run from `target/debug/examples/cluster`.
fn cluster_example() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let status = std::process::Command::new(env!("CARGO"))
                .args(["build", "-q", "-p", "ferrio-redis", "--example", "cluster"])
                .status()
                .unwrap();
            assert!(status.success(), "cannot build the cluster example");
            let exe = std::env::current_exe().unwrap();
            let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
            profile_dir.join("examples").join("cluster")
        })
        .clone()
}

/// A `redis-server` of the test's own on a free port: the nodes' fixed prefixes (`socket.io`)
/// meet no one else's.
struct OwnRedis {
    port: u16,
    child: std::process::Child,
}

impl OwnRedis {
    fn start() -> OwnRedis {
        let port = free_port();
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server installed");
        let deadline = std::time::Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        OwnRedis { port, child }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Classic,
    Sharded,
    Streams,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Classic => "classic",
            Mode::Sharded => "sharded",
            Mode::Streams => "streams",
        }
    }

    /// The channels every node of the cluster listens on, with the `PUBSUB` subcommand that
    /// counts their listeners.
    fn channels(self) -> (&'static str, Vec<String>) {
        let mut channels: Vec<String> = ["/", "/custom"]
            .iter()
            .map(|nsp| match self {
                Mode::Classic => format!("socket.io-request#{nsp}#"),
                Mode::Sharded | Mode::Streams => format!("socket.io#{nsp}#"),
            })
            .collect();
        if self == Mode::Streams {
            channels.push("socket.io-recovery#/#".to_owned());
        }
        let count = if self == Mode::Sharded {
            "SHARDNUMSUB"
        } else {
            "NUMSUB"
        };
        (count, channels)
    }
}

/// A cluster node process (the example or its Node.js twin).
struct NodeProcess {
    child: Child,
    url: String,
}

impl NodeProcess {
    /// Starts `program args` with `--port P --redis URL` appended (and `--adapter M` but in
    /// the classic mode, as the spec's harness does), `CLUSTER_ADAPTER` in its environment;
    /// waits until it listens.
    async fn start(program: &str, args: &[&str], mode: Mode, redis: &str) -> NodeProcess {
        let port = free_port();
        let mut command = Command::new(program);
        command
            .args(args)
            .args(["--port", &port.to_string(), "--redis", redis]);
        if mode != Mode::Classic {
            command.args(["--adapter", mode.name()]);
        }
        let mut child = command
            .env("CLUSTER_ADAPTER", mode.name())
            .current_dir(ferrio_tests::node_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{program} {args:?} ({mode:?}) exited: {status}");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{program} {args:?} does not listen"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        NodeProcess {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn ferrio(mode: Mode, redis: &str) -> NodeProcess {
        let binary = cluster_example();
        NodeProcess::start(binary.to_str().unwrap(), &[], mode, redis).await
    }

    async fn node(mode: Mode, redis: &str) -> NodeProcess {
        let script = ferrio_tests::node_dir().join("cluster-node.js");
        NodeProcess::start("node", &[script.to_str().unwrap()], mode, redis).await
    }

    /// SIGKILL, as a crash or an out-of-memory kill: the node saves nothing on its way out.
    async fn kill(mut self) {
        self.child.start_kill().expect("the node is running");
        let _ = self.child.wait().await;
    }

    /// SIGTERM, then SIGKILL if it is still running 3 s later.
    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        if tokio::time::timeout(Duration::from_secs(3), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// Waits until the three nodes listen on every namespace's channels.
async fn wait_for_cluster(mode: Mode, redis: &str) {
    let client = redis::Client::open(redis).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let (count, channels) = mode.channels();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut cmd = redis::cmd("PUBSUB");
        cmd.arg(count);
        for channel in &channels {
            cmd.arg(channel);
        }
        let answer: Vec<redis::Value> = cmd.query_async(&mut conn).await.unwrap();
        let counts: Vec<i64> = answer
            .chunks(2)
            .map(|pair| match &pair[1] {
                redis::Value::Int(n) => *n,
                _ => -1,
            })
            .collect();
        if counts.iter().all(|&n| n == 3) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "cluster not formed: {channels:?} have {counts:?} listeners, want 3"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The socket.io-client clients, driven over JSON lines.
struct Clients {
    _child: Child,
    stdin: ChildStdin,
    next_id: u64,
    replies: Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>,
    events: mpsc::UnboundedReceiver<Value>,
    log: Vec<Value>,
}

impl Clients {
    async fn start() -> Clients {
        let dir = ferrio_tests::node_dir();
        assert!(
            dir.join("node_modules").is_dir(),
            "run npm ci in tests/node"
        );
        let mut child = Command::new("node")
            .arg(dir.join("cluster-client.js"))
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
                match v.get("id").and_then(Value::as_u64) {
                    Some(id) => {
                        if let Some(tx) = r.lock().unwrap().remove(&id) {
                            let _ = tx.send(v);
                        }
                    }
                    None => {
                        let _ = tx.send(v);
                    }
                }
            }
        });
        let ready = tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("clients ready in time")
            .expect("clients ready");
        assert_eq!(ready["event"], "ready", "{ready}");
        Clients {
            _child: child,
            stdin,
            next_id: 1,
            replies,
            events,
            log: Vec::new(),
        }
    }

    async fn call(&mut self, mut op: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        op["id"] = json!(id);
        let (tx, rx) = oneshot::channel();
        self.replies.lock().unwrap().insert(id, tx);
        self.stdin
            .write_all(format!("{op}\n").as_bytes())
            .await
            .unwrap();
        let reply = tokio::time::timeout(WAIT, rx)
            .await
            .unwrap_or_else(|_| panic!("no answer to {op}"))
            .unwrap();
        assert!(reply.get("error").is_none(), "{op} failed: {reply}");
        reply
    }

    /// Connects client `name` to `nsp` of the node at `url`; returns its socket id.
    async fn connect(&mut self, name: &str, url: &str, nsp: &str, silent: bool) -> String {
        let reply = self
            .call(json!({"op": "client", "name": name, "url": url, "nsp": nsp, "silent": silent}))
            .await;
        reply["sid"].as_str().unwrap().to_owned()
    }

    /// Emits `ev` (`args`) from client `name` and returns the server's ack (its first argument).
    async fn ask(&mut self, name: &str, ev: &str, args: Value) -> Value {
        self.call(json!({"op": "emit", "name": name, "ev": ev, "args": args, "ack": true}))
            .await["ack"]
            .clone()
    }

    /// Waits for client `name` to receive event `ev` with arguments `args`.
    async fn got(&mut self, name: &str, ev: &str, args: &Value) {
        let matches = |e: &Value| {
            e["event"] == "client_event" && e["name"] == name && e["ev"] == ev && &e["args"] == args
        };
        if self.log.iter().any(matches) {
            return;
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let e = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("{name} got no {ev} {args}; got {:#?}", self.log))
                .expect("clients running");
            self.log.push(e.clone());
            if matches(&e) {
                return;
            }
        }
    }
}

impl Clients {
    /// Waits for client `name` to receive event `ev` whose first argument is `first`; returns
    /// all its arguments.
    async fn got_first(&mut self, name: &str, ev: &str, first: impl Into<Value>) -> Value {
        let first: Value = first.into();
        let matches = |e: &Value| {
            e["event"] == "client_event"
                && e["name"] == name
                && e["ev"] == ev
                && e["args"][0] == first
        };
        if let Some(e) = self.log.iter().find(|e| matches(e)) {
            return e["args"].clone();
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let e = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("{name} got no {ev} {first}; got {:#?}", self.log))
                .expect("clients running");
            self.log.push(e.clone());
            if matches(&e) {
                return e["args"].clone();
            }
        }
    }
}

/// A `broadcast-with-ack` answer with its replies in a fixed order (by the answering client).
fn sorted_replies(mut answer: Value) -> Value {
    if let Some(replies) = answer["replies"].as_array_mut() {
        replies.sort_by_key(|r| r["from"].as_str().unwrap_or("").to_owned());
    }
    answer
}

/// A `server-side-emit-with-ack` answer with its replies in a fixed order.
fn sorted_node_replies(mut answer: Value) -> Value {
    if let Some(replies) = answer["replies"].as_array_mut() {
        replies.sort_by_key(|r| r.to_string());
    }
    answer
}

/// The reply of client `from` to an `ask` carrying `args`.
fn reply(from: &str, args: Value) -> Value {
    json!({"from": from, "args": args})
}

/// The `server-side-ack` answer of a node whose sockets are `sockets`.
fn node_reply(sockets: &[&String]) -> Value {
    let mut sockets: Vec<&String> = sockets.to_vec();
    sockets.sort();
    json!({"sockets": sockets})
}

async fn cluster_handlers_work_across_the_cluster(mode: Mode) {
    let redis = OwnRedis::start();
    let url = redis.url();
    let f1 = NodeProcess::ferrio(mode, &url).await;
    let f2 = NodeProcess::ferrio(mode, &url).await;
    let n = NodeProcess::node(mode, &url).await;
    wait_for_cluster(mode, &url).await;
    let mut c = Clients::start().await;

    // Namespace `/`: a and d on the first Ferrio node, b on the second, e on the Node node.
    let a = c.connect("a", &f1.url, "/", false).await;
    let b = c.connect("b", &f2.url, "/", false).await;
    let e = c.connect("e", &n.url, "/", false).await;
    let d = c.connect("d", &f1.url, "/", false).await;
    c.ask("a", "set-data", json!([{"name": "a", "tags": [1, 2]}]))
        .await;
    c.ask("b", "set-data", json!(["bee"])).await;
    c.ask("e", "set-data", json!([{"name": "e"}])).await;
    assert_eq!(c.ask("a", "join", json!(["room1"])).await, json!(["room1"]));
    assert_eq!(c.ask("b", "join", json!(["room2"])).await, json!(["room2"]));
    c.ask("e", "join", json!(["room2"])).await;
    assert_eq!(
        c.ask("e", "join", json!(["room1"])).await,
        json!(["room1", "room2"])
    );

    // fetch-sockets: every node's sockets, their rooms and data, sorted by id.
    let mut all = vec![
        json!({"id": a, "rooms": ["room1"], "data": {"name": "a", "tags": [1, 2]}}),
        json!({"id": b, "rooms": ["room2"], "data": "bee"}),
        json!({"id": e, "rooms": ["room1", "room2"], "data": {"name": "e"}}),
        json!({"id": d, "rooms": [], "data": null}),
    ];
    all.sort_by_key(|s| s["id"].as_str().unwrap().to_owned());
    for asker in ["a", "b", "e"] {
        assert_eq!(
            c.ask(asker, "fetch-sockets", json!([null])).await,
            Value::Array(all.clone()),
            "fetch-sockets from {asker} ({mode:?})"
        );
    }
    let room1: Vec<Value> = all
        .iter()
        .filter(|s| s["id"] == a || s["id"] == e)
        .cloned()
        .collect();
    for asker in ["d", "e"] {
        assert_eq!(
            c.ask(asker, "fetch-sockets", json!(["room1"])).await,
            Value::Array(room1.clone()),
            "fetch-sockets room1 from {asker} ({mode:?})"
        );
    }

    // broadcast-with-ack: every other socket of the cluster is asked, the replies come back.
    let q = json!(["q", 1, {"deep": [true]}]);
    let everyone = [("a", &a), ("b", &b), ("d", &d), ("e", &e)];
    for sender in ["a", "b", "e"] {
        let mut args = json!([5000, null]);
        args.as_array_mut()
            .unwrap()
            .extend(q.as_array().unwrap().iter().cloned());
        let answer = sorted_replies(c.ask(sender, "broadcast-with-ack", args).await);
        let replies: Vec<Value> = everyone
            .iter()
            .filter(|(name, _)| *name != sender)
            .map(|(name, _)| reply(name, q.clone()))
            .collect();
        assert_eq!(
            answer,
            json!({"ok": true, "replies": replies}),
            "broadcast-with-ack from {sender} ({mode:?})"
        );
    }
    // To a room: its members but the sender.
    let answer = sorted_replies(
        c.ask("b", "broadcast-with-ack", json!([5000, "room1", "r"]))
            .await,
    );
    assert_eq!(
        answer,
        json!({"ok": true, "replies": [reply("a", json!(["r"])), reply("e", json!(["r"]))]})
    );
    let answer = sorted_replies(
        c.ask("e", "broadcast-with-ack", json!([5000, "room2", "r2"]))
            .await,
    );
    assert_eq!(
        answer,
        json!({"ok": true, "replies": [reply("b", json!(["r2"]))]})
    );

    // server-side-emit: the other nodes' sockets get `server-side`, the sender's node's do not.
    assert_eq!(
        c.ask("a", "server-side-emit", json!(["from-ferrio", {"n": 1}]))
            .await,
        Value::Null
    );
    for name in ["b", "e"] {
        c.got(name, "server-side", &json!(["from-ferrio", {"n": 1}]))
            .await;
    }
    c.ask("e", "server-side-emit", json!(["from-node"])).await;
    for name in ["a", "b", "d"] {
        c.got(name, "server-side", &json!(["from-node"])).await;
    }
    c.ask("b", "server-side-emit", json!(["from-ferrio-2"]))
        .await;
    for name in ["a", "d", "e"] {
        c.got(name, "server-side", &json!(["from-ferrio-2"])).await;
    }
    // Each node's own message came back to none of its sockets (a later one got through).
    c.ask("a", "server-side-emit", json!(["sentinel"])).await;
    for name in ["b", "e"] {
        c.got(name, "server-side", &json!(["sentinel"])).await;
    }
    for (name, own) in [
        ("a", "from-ferrio"),
        ("d", "from-ferrio"),
        ("b", "from-ferrio-2"),
        ("e", "from-node"),
    ] {
        assert!(
            !c.log
                .iter()
                .any(|ev| ev["name"] == name && ev["ev"] == "server-side" && ev["args"][0] == own),
            "{name} got its own node's server-side event {own} ({mode:?})"
        );
    }

    // server-side-emit-with-ack: one reply per other node, listing that node's sockets.
    let f1_reply = node_reply(&[&a, &d]);
    let f2_reply = node_reply(&[&b]);
    let n_reply = node_reply(&[&e]);
    for (sender, expected) in [
        ("a", vec![f2_reply.clone(), n_reply.clone()]),
        ("b", vec![f1_reply.clone(), n_reply.clone()]),
        ("e", vec![f1_reply.clone(), f2_reply.clone()]),
    ] {
        let answer = sorted_node_replies(
            c.ask(sender, "server-side-emit-with-ack", json!(["ping", 2]))
                .await,
        );
        let expected = sorted_node_replies(json!({"ok": true, "replies": Value::Array(expected)}));
        assert_eq!(
            answer, expected,
            "server-side-emit-with-ack from {sender} ({mode:?})"
        );
    }

    // Namespace `/custom`, apart from `/`: w (first Ferrio node) and y (Node node) never answer.
    let x = c.connect("x", &f1.url, "/custom", false).await;
    let y = c.connect("y", &n.url, "/custom", true).await;
    let z = c.connect("z", &f2.url, "/custom", false).await;
    let w = c.connect("w", &f1.url, "/custom", true).await;
    let mut custom = [x.clone(), y.clone(), z.clone(), w.clone()];
    custom.sort();
    let custom: Vec<Value> = custom
        .iter()
        .map(|id| json!({"id": id, "rooms": [], "data": null}))
        .collect();
    assert_eq!(
        c.ask("y", "fetch-sockets", json!([null])).await,
        Value::Array(custom)
    );
    // A timeout: ok false, with the replies that came.
    for (sender, answering) in [("x", vec!["z"]), ("z", vec!["x"]), ("y", vec!["x", "z"])] {
        let answer = sorted_replies(
            c.ask(sender, "broadcast-with-ack", json!([2000, null, "t"]))
                .await,
        );
        let replies: Vec<Value> = answering
            .iter()
            .map(|name| reply(name, json!(["t"])))
            .collect();
        assert_eq!(
            answer,
            json!({"ok": false, "replies": replies}),
            "broadcast-with-ack timing out, from {sender} ({mode:?})"
        );
    }
    let answer = sorted_node_replies(
        c.ask("x", "server-side-emit-with-ack", json!(["ping"]))
            .await,
    );
    assert_eq!(
        answer,
        sorted_node_replies(json!({"ok": true, "replies": [node_reply(&[&z]), node_reply(&[&y])]}))
    );

    f1.stop().await;
    f2.stop().await;
    n.stop().await;
}

/// Waits until Redis holds the recovery session `pid` (the node that lost the connection wrote
/// it).
async fn wait_for_session(redis: &str, pid: &str) {
    let client = redis::Client::open(redis).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("sio:session:{pid}");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let exists: i64 = redis::cmd("EXISTS")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        if exists == 1 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no recovery session {key} in Redis"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Streams mode, `/recovery/`: a client whose connection is lost on one node comes back on
/// another (Ferrio to Node, Node to Ferrio) with its session: the same id, its rooms, its data
/// and the room events it missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_example_streams_recovery_across_nodes() {
    let mode = Mode::Streams;
    let redis = OwnRedis::start();
    let url = redis.url();
    let f1 = NodeProcess::ferrio(mode, &url).await;
    let f2 = NodeProcess::ferrio(mode, &url).await;
    let n = NodeProcess::node(mode, &url).await;
    wait_for_cluster(mode, &url).await;
    let mut c = Clients::start().await;
    let connect = |name: &str, node: &NodeProcess, auth: Value| json!({"op": "client", "name": name, "url": node.url, "nsp": "/", "path": "/recovery/", "auth": auth});

    // The sender and observer on the second Ferrio node.
    c.call(connect("o", &f2, json!({}))).await;
    assert_eq!(
        c.ask("o", "join", json!(["observers"])).await,
        json!(["observers"])
    );

    for (lost, back, from, to, room) in [
        ("r1", "r1-back", &f1, &n, "room-a"),
        ("r2", "r2-back", &n, &f1, "room-b"),
    ] {
        let sid = c.call(connect(lost, from, json!({}))).await["sid"]
            .as_str()
            .unwrap()
            .to_owned();
        c.ask(lost, "set-data", json!([{"who": lost}])).await;
        assert_eq!(c.ask(lost, "join", json!([room])).await, json!([room]));
        c.ask("o", "room-emit", json!([room, "before"])).await;
        let before = c.got_first(lost, "room-emit", "before").await;
        let state = c.call(json!({"op": "state", "name": lost})).await;
        let (pid, offset) = (state["pid"].clone(), state["offset"].clone());
        assert!(pid.is_string(), "no pid: {state}");
        assert_eq!(before[1], offset, "the event carries its offset");

        // The connection is lost: the session is kept, the room's events too.
        c.call(json!({"op": "drop", "name": lost})).await;
        // (With recovery on, every event carries its offset as a last argument.)
        c.got_first(
            "o",
            "peer-disconnect",
            json!({"id": sid, "reason": "transport close"}),
        )
        .await;
        wait_for_session(&url, pid.as_str().unwrap()).await;
        c.ask("o", "room-emit", json!([room, "missed", 1])).await;

        // Back on another node, with the session id and the offset.
        let again = c
            .call(connect(back, to, json!({"pid": pid, "offset": offset})))
            .await;
        assert_eq!(again["sid"], json!(sid), "recovered with the same id");
        let missed = c.got_first(back, "room-emit", "missed").await;
        assert_eq!(missed[1], json!(1));
        let whoami = c.ask(back, "whoami", json!([])).await;
        assert_eq!(whoami["recovered"], json!(true), "{whoami}");
        assert_eq!(whoami["rooms"], json!([room]), "{whoami}");
        assert_eq!(
            c.ask(back, "get-data", json!([])).await,
            json!({"who": lost})
        );
    }

    f1.stop().await;
    f2.stop().await;
    n.stop().await;
}

/// The standard handlers answer alike on a Ferrio node and on the Node.js node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_example_standard_handlers_answer_as_the_node_twin() {
    let mode = Mode::Classic;
    let redis = OwnRedis::start();
    let url = redis.url();
    let f1 = NodeProcess::ferrio(mode, &url).await;
    let f2 = NodeProcess::ferrio(mode, &url).await;
    let n = NodeProcess::node(mode, &url).await;
    wait_for_cluster(mode, &url).await;
    let mut c = Clients::start().await;

    let mut transcripts = Vec::new();
    for (name, node) in [("ferrio", &f1), ("node", &n)] {
        let sid = c.connect(name, &node.url, "/custom", false).await;
        let mut t = vec![json!(c.got_first(name, "auth", json!({})).await)];
        for (ev, args) in [
            ("message-with-ack", json!(["x", {"a": [1, null]}])),
            ("join", json!(["r1"])),
            ("join", json!([5])),
            ("leave", json!(["r1"])),
            ("get-data", json!([])),
            ("set-data", json!([{"k": 1}])),
            ("get-data", json!([])),
            ("ask-client", json!([{"q": 1}, 5000])),
            // A room of its own: the other kind's client is still connected.
            ("join", json!([name])),
            ("fetch-sockets", json!([name])),
            ("server-side-emit", json!(["s"])),
        ] {
            t.push(json!([ev, c.ask(name, ev, args).await]));
        }
        c.call(json!({"op": "emit", "name": name, "ev": "message", "args": ["m", 2]}))
            .await;
        t.push(json!(c.got_first(name, "message-back", "m").await));
        t.push(json!(c.got_first(name, "ask", json!({"q": 1})).await));
        let mut whoami = c.ask(name, "whoami", json!([])).await;
        assert_eq!(whoami["id"], json!(sid));
        assert!(whoami["engineId"].is_string());
        whoami["id"] = Value::Null;
        whoami["engineId"] = Value::Null;
        t.push(whoami);
        // The answers that name the socket or the client, made comparable.
        let text = t
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
            .replace(&sid, "<sid>")
            .replace(&format!("\"{name}\""), "\"<client>\"");
        transcripts.push(text);
    }
    assert!(
        transcripts[0].contains(
            r#"["fetch-sockets",[{"data":{"k":1},"id":"<sid>","rooms":["5","<client>"]}]]"#
        ),
        "{}",
        transcripts[0]
    );
    assert_eq!(
        transcripts[0], transcripts[1],
        "Ferrio's answers (left) differ from Node's (right)"
    );

    f1.stop().await;
    f2.stop().await;
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_example_classic() {
    cluster_handlers_work_across_the_cluster(Mode::Classic).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_example_sharded() {
    cluster_handlers_work_across_the_cluster(Mode::Sharded).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_example_streams() {
    cluster_handlers_work_across_the_cluster(Mode::Streams).await
}

/// The client `name` of the `/recovery/` endpoint of `node`, connecting with `auth` (a private
/// session id and an offset to recover a session).
fn recovery_client(name: &str, node: &NodeProcess, auth: Value) -> Value {
    json!({"op": "client", "name": name, "url": node.url, "nsp": "/", "path": "/recovery/", "auth": auth})
}

/// Waits (at most [`WAIT`]) until Redis holds a session `pid` whose stored copy (base64
/// msgpack, as the reference stores it) names every one of `needles`: a save made after the
/// client joined its room and stored its data. Returns whether one came; the caller goes on
/// either way, so that a missing save shows as what the client sees.
async fn live_save_holds(redis: &str, pid: &str, needles: &[&str]) -> bool {
    use base64::Engine as _;
    let client = redis::Client::open(redis).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("sio:session:{pid}");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let stored: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let bytes = stored.and_then(|text| {
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .ok()
        });
        if let Some(bytes) = bytes {
            let holds = |needle: &&str| {
                bytes
                    .windows(needle.len())
                    .any(|window| window == needle.as_bytes())
            };
            if needles.iter().all(holds) {
                return true;
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A client of `/recovery/` on `node`, in `room` with data `{"who": <marker>}`, that received
/// one room event (so it has an offset, sent by client `sender`). Returns its socket id, private
/// id and offset.
async fn settled_recovery_client(
    c: &mut Clients,
    name: &str,
    node: &NodeProcess,
    room: &str,
    marker: &str,
    sender: &str,
) -> (String, Value, Value) {
    let sid = c.call(recovery_client(name, node, json!({}))).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    c.ask(name, "set-data", json!([{"who": marker}])).await;
    assert_eq!(c.ask(name, "join", json!([room])).await, json!([room]));
    c.ask(sender, "room-emit", json!([room, "before"])).await;
    let before = c.got_first(name, "room-emit", "before").await;
    let state = c.call(json!({"op": "state", "name": name})).await;
    assert!(state["pid"].is_string(), "no pid: {state}");
    assert_eq!(before[1], state["offset"], "the event carries its offset");
    (sid, state["pid"].clone(), state["offset"].clone())
}

/// Streams mode, `/recovery/`: a Ferrio node saves the session of each connected socket (when
/// it connects, then every half recovery window), so when the node dies — SIGKILL here, as a
/// crash: it saves nothing on its way out — its clients recover on another node, Ferrio or
/// Node, within the window: the same id, the rooms and data of the last save, and the room
/// events sent while they were away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_ferrio_node_s_clients_recover_on_another_node() {
    let mode = Mode::Streams;
    let redis = OwnRedis::start();
    let url = redis.url();
    let f1 = NodeProcess::ferrio(mode, &url).await;
    let f2 = NodeProcess::ferrio(mode, &url).await;
    let n = NodeProcess::node(mode, &url).await;
    wait_for_cluster(mode, &url).await;
    let mut c = Clients::start().await;

    // A sender on each node that takes a client over: o on the second Ferrio node, p on the
    // Node node. r1 and r2 on the first Ferrio node, each in its room, with its data.
    c.call(recovery_client("o", &f2, json!({}))).await;
    c.call(recovery_client("p", &n, json!({}))).await;
    let plan = [
        ("r1", "r1-back", "room-f", "o", &f2, "Ferrio"),
        ("r2", "r2-back", "room-n", "p", &n, "Node"),
    ];
    let mut lost = Vec::new();
    for (name, _, room, sender, _, _) in plan {
        let marker = format!("{name}-data");
        lost.push(settled_recovery_client(&mut c, name, &f1, room, &marker, sender).await);
    }
    // The first node saves them every 2.5 s: wait for a save made after the joins.
    let mut saved = Vec::new();
    for ((name, _, room, ..), (_, pid, _)) in plan.iter().zip(&lost) {
        let marker = format!("{name}-data");
        saved.push(live_save_holds(&url, pid.as_str().unwrap(), &[room, &marker]).await);
    }

    f1.kill().await;
    // While they are away, an event to each room, from the node that takes its client over.
    for (_, _, room, sender, _, _) in plan {
        c.ask(sender, "room-emit", json!([room, "missed", 1])).await;
    }

    // Each client back on another node, with the private id and the offset it had.
    for (((name, back, room, sender, node, kind), (sid, pid, offset)), saved) in
        plan.into_iter().zip(lost).zip(saved)
    {
        let again = c
            .call(recovery_client(
                back,
                node,
                json!({"pid": pid, "offset": offset}),
            ))
            .await;
        assert_eq!(
            again["sid"],
            json!(sid),
            "{name} of the killed Ferrio node recovers on the {kind} node with its id \
             (a save with its room and data was seen in Redis before the kill: {saved})"
        );
        let missed = c.got_first(back, "room-emit", "missed").await;
        assert_eq!(missed[1], json!(1));
        let whoami = c.ask(back, "whoami", json!([])).await;
        assert_eq!(whoami["recovered"], json!(true), "{kind}: {whoami}");
        assert_eq!(whoami["rooms"], json!([room]), "{kind}: {whoami}");
        assert_eq!(
            c.ask(back, "get-data", json!([])).await,
            json!({"who": format!("{name}-data")}),
            "{name}'s data on the {kind} node"
        );
        // Back in its room: the room's next event reaches it.
        c.ask(sender, "room-emit", json!([room, "after"])).await;
        c.got_first(back, "room-emit", "after").await;
    }

    f2.stop().await;
    n.stop().await;
}

/// The reference's limit, for contrast: a Node node saves a session only when its socket
/// disconnects, so the clients of a Node node that is killed cannot recover anywhere: on a
/// Ferrio node they start afresh (a new id, no rooms, no data, `recovered` false). A client of
/// a Ferrio node killed at the same moment recovers there (from Ferrio's live save).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_reference_node_s_clients_cannot_recover() {
    let mode = Mode::Streams;
    let redis = OwnRedis::start();
    let url = redis.url();
    let f1 = NodeProcess::ferrio(mode, &url).await;
    let f2 = NodeProcess::ferrio(mode, &url).await;
    let n = NodeProcess::node(mode, &url).await;
    wait_for_cluster(mode, &url).await;
    let mut c = Clients::start().await;

    // The sender o on the second Ferrio node; nc on the Node node, fc on the first Ferrio node.
    c.call(recovery_client("o", &f2, json!({}))).await;
    let (n_sid, n_pid, n_offset) =
        settled_recovery_client(&mut c, "nc", &n, "room-n", "nc-data", "o").await;
    let (f_sid, f_pid, f_offset) =
        settled_recovery_client(&mut c, "fc", &f1, "room-f", "fc-data", "o").await;
    // Long enough for a save of both, had the Node node made one: the Ferrio node did.
    let saved = live_save_holds(&url, f_pid.as_str().unwrap(), &["room-f", "fc-data"]).await;

    n.kill().await;
    f1.kill().await;
    c.ask("o", "room-emit", json!(["room-n", "missed", 1]))
        .await;
    c.ask("o", "room-emit", json!(["room-f", "missed", 1]))
        .await;

    // The Node node's client: nothing to recover.
    let again = c
        .call(recovery_client(
            "nc-back",
            &f2,
            json!({"pid": n_pid, "offset": n_offset}),
        ))
        .await;
    assert_ne!(again["sid"], json!(n_sid), "a new id");
    let whoami = c.ask("nc-back", "whoami", json!([])).await;
    assert_eq!(whoami["recovered"], json!(false), "{whoami}");
    assert_eq!(whoami["rooms"], json!([]), "{whoami}");
    assert_eq!(c.ask("nc-back", "get-data", json!([])).await, Value::Null);

    // The Ferrio node's client, killed at the same moment: recovered.
    let again = c
        .call(recovery_client(
            "fc-back",
            &f2,
            json!({"pid": f_pid, "offset": f_offset}),
        ))
        .await;
    assert_eq!(
        again["sid"],
        json!(f_sid),
        "the killed Ferrio node's client recovers with its id \
         (a save with its room and data was seen in Redis before the kill: {saved})"
    );
    let missed = c.got_first("fc-back", "room-emit", "missed").await;
    assert_eq!(missed[1], json!(1));
    let whoami = c.ask("fc-back", "whoami", json!([])).await;
    assert_eq!(whoami["recovered"], json!(true), "{whoami}");
    assert_eq!(whoami["rooms"], json!(["room-f"]), "{whoami}");
    assert_eq!(
        c.ask("fc-back", "get-data", json!([])).await,
        json!({"who": "fc-data"})
    );

    f2.stop().await;
}
