//! Emitters: a process that runs no Socket.IO server writes to Redis, and the clients of a mixed
//! cluster (a Ferrio node and a Node.js node, npm `socket.io-client` clients on both) get it.
//!
//! The emitters: Ferrio's `examples/emitter` command line and the [`Emitter`] library in the
//! three formats (classic, sharded, streams), and npm `@socket.io/redis-emitter` 5.1.0
//! (`tests/node/emitter.js`, classic only). The Node nodes: `tests/node/redis-node.js`
//! (`@socket.io/redis-adapter` 8.3, classic or sharded) and `tests/node/emitter-node.js`
//! (`@socket.io/redis-streams-adapter` 0.3.1).
//!
//! The command lines write the default prefix `socket.io`, so their tests start a
//! `redis-server` of their own on a free port; the library tests use the Redis on
//! 127.0.0.1:6379 with a prefix of their own.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use ferrio_redis::emitter::{
    ClassicFormat, Emitter, EmitterError, Format, ShardedFormat, StreamsFormat,
};
use ferrio_redis::streams::{StreamsRedisAdapter, StreamsRedisAdapterConfig};
use ferrio_redis::{
    RedisAdapter, RedisAdapterConfig, ShardedRedisAdapter, ShardedRedisAdapterConfig,
    SubscriptionMode,
};
use ferrio_server::{AckSender, Ferrio, Socket};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
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

/// The cluster's adapter, and the format the emitter writes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Classic,
    /// Sharded, in the default `dynamic` subscription mode.
    Sharded,
    ShardedStatic,
    ShardedDynamicPrivate,
    Streams,
}

impl Mode {
    /// `CLUSTER_ADAPTER` of the command lines.
    fn env(self) -> &'static str {
        match self {
            Mode::Classic => "classic",
            Mode::Sharded | Mode::ShardedStatic | Mode::ShardedDynamicPrivate => "sharded",
            Mode::Streams => "streams",
        }
    }

    fn subscription_mode(self) -> SubscriptionMode {
        match self {
            Mode::ShardedStatic => SubscriptionMode::Static,
            Mode::ShardedDynamicPrivate => SubscriptionMode::DynamicPrivate,
            _ => SubscriptionMode::Dynamic,
        }
    }

    /// True if the nodes subscribe to a channel per room as it is created.
    fn room_channels(self) -> bool {
        matches!(self, Mode::Sharded | Mode::ShardedDynamicPrivate)
    }

    fn format(self, key: &str, stream_count: u32) -> Format {
        match self {
            Mode::Classic => Format::Classic(ClassicFormat {
                key: key.to_owned(),
            }),
            Mode::Sharded | Mode::ShardedStatic | Mode::ShardedDynamicPrivate => {
                Format::Sharded(ShardedFormat {
                    channel_prefix: key.to_owned(),
                    subscription_mode: self.subscription_mode(),
                })
            }
            Mode::Streams => Format::Streams(StreamsFormat {
                stream_name: key.to_owned(),
                channel_prefix: key.to_owned(),
                stream_count,
                ..StreamsFormat::default()
            }),
        }
    }
}

/// Who writes the operations under test.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Via {
    /// `examples/emitter` of ferrio-redis.
    RustCli,
    /// npm `@socket.io/redis-emitter` (`tests/node/emitter.js`).
    NodeCli,
    /// [`Emitter`] called directly.
    Library,
}

/// A `redis-server` of our own on a free port.
struct OwnRedis {
    port: u16,
    child: std::process::Child,
}

impl OwnRedis {
    fn start() -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        OwnRedis::start_on(port)
    }

    fn start_on(port: u16) -> OwnRedis {
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
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Ferrio server on a free port with the adapter of `mode`; namespaces `/` and `/chat`, a
/// `join` handler, and a server-side listener `srv` whose calls land in `server_events`.
struct RustNode {
    io: Ferrio,
    close: Box<dyn Fn() + Send + Sync>,
    url: String,
    server_events: mpsc::UnboundedReceiver<(String, Vec<Value>)>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for RustNode {
    fn drop(&mut self) {
        (self.close)();
        self.task.abort();
    }
}

async fn rust_node(mode: Mode, redis: &str, key: &str, stream_count: u32) -> RustNode {
    let timeout = Duration::from_secs(3);
    let (builder, close): (_, Box<dyn Fn() + Send + Sync>) = match mode {
        Mode::Classic => {
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
        Mode::Sharded | Mode::ShardedStatic | Mode::ShardedDynamicPrivate => {
            let adapter = ShardedRedisAdapter::with_config(
                redis,
                ShardedRedisAdapterConfig {
                    channel_prefix: key.to_owned(),
                    requests_timeout: timeout,
                    subscription_mode: mode.subscription_mode(),
                },
            )
            .await
            .expect("redis reachable");
            (
                Ferrio::builder().adapter(adapter.clone()),
                Box::new(move || adapter.close()),
            )
        }
        Mode::Streams => {
            let adapter = StreamsRedisAdapter::with_config(
                redis,
                StreamsRedisAdapterConfig {
                    stream_name: key.to_owned(),
                    channel_prefix: key.to_owned(),
                    stream_count,
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
    // `/notifications`: a namespace whose stream index is negative with 3 streams.
    for nsp in ["/", "/chat", "/notifications"] {
        let ns = io.of(nsp);
        ns.on_connection(|socket: Socket| async move {
            socket.on(
                "join",
                |socket: Socket, (room,): (String,), ack: AckSender| async move {
                    socket.join(room);
                    ack.send(&("ok",))
                },
            );
        });
        let tx = tx.clone();
        ns.on_server_event("srv", move |args, _ack| {
            let _ = tx.send((nsp.to_owned(), args));
            async {}
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

/// The Node.js node and every client (on both nodes), driven over JSON lines.
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
    async fn start(mode: Mode, redis: &str, key: &str, stream_count: u32) -> Agent {
        let dir = ferrio_tests::node_dir();
        assert!(
            dir.join("node_modules").is_dir(),
            "run npm ci in tests/node"
        );
        let mut cmd = Command::new("node");
        match mode {
            Mode::Classic | Mode::Sharded | Mode::ShardedStatic | Mode::ShardedDynamicPrivate => {
                let subscription_mode = match mode.subscription_mode() {
                    SubscriptionMode::Static => "static",
                    SubscriptionMode::Dynamic => "dynamic",
                    SubscriptionMode::DynamicPrivate => "dynamic-private",
                };
                cmd.arg(dir.join("redis-node.js")).args([
                    redis,
                    key,
                    mode.env(),
                    subscription_mode,
                ]);
            }
            Mode::Streams => {
                cmd.arg(dir.join("emitter-node.js"))
                    .args([redis, key, &stream_count.to_string()]);
            }
        }
        let mut child = cmd
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

    /// Takes the events received so far into the log.
    fn drain(&mut self) {
        while let Ok(e) = self.events.try_recv() {
            self.log.push(e);
        }
    }

    /// Waits for an event matching `pred` (looking at the ones already received first).
    async fn event(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.drain();
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
    fn client_saw(&mut self, name: &str, ev: &str) -> bool {
        self.drain();
        self.log
            .iter()
            .any(|e| e["event"] == "client_event" && e["name"] == name && e["ev"] == ev)
    }

    /// True if client `name` was disconnected so far.
    fn disconnected(&mut self, name: &str) -> bool {
        self.drain();
        self.log
            .iter()
            .any(|e| e["event"] == "client_disconnect" && e["name"] == name)
    }

    async fn client(&mut self, name: &str, url: &str, nsp: &str) -> String {
        let reply = self
            .call(json!({"op": "client", "name": name, "url": url, "nsp": nsp}))
            .await;
        reply["sid"].as_str().unwrap().to_owned()
    }

    async fn join(&mut self, name: &str, room: &str) {
        let reply = self
            .call(json!({"op": "client_emit", "name": name, "ev": "join", "args": [room], "ack": true}))
            .await;
        assert_eq!(reply["ack"], "ok", "{reply}");
    }

    async fn server_count(&mut self, nsp: &str) -> u64 {
        self.call(json!({"op": "server_count", "nsp": nsp})).await["count"]
            .as_u64()
            .unwrap()
    }
}

fn bin(hex: &str) -> Value {
    json!({ "$bin": hex })
}

/// The `emitter` example of ferrio-redis, built (or found up to date) by cargo once.
fn emitter_example() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "ferrio-redis", "--example", "emitter"])
            .status()
            .unwrap();
        assert!(status.success(), "cannot build the emitter example");
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
        profile_dir.join("examples").join("emitter")
    })
    .clone()
}

/// Runs an emitter command line; returns whether it succeeded and what it wrote on stderr.
async fn run_cli(via: Via, mode: Mode, redis: &str, args: &[&str]) -> (bool, String) {
    let mut cmd = match via {
        Via::RustCli => Command::new(emitter_example()),
        Via::NodeCli => {
            let mut cmd = Command::new("node");
            cmd.arg(ferrio_tests::node_dir().join("emitter.js"))
                .current_dir(ferrio_tests::node_dir());
            cmd
        }
        Via::Library => unreachable!("not a command line"),
    };
    let output = tokio::time::timeout(
        WAIT,
        cmd.arg(redis)
            .args(args)
            .env("CLUSTER_ADAPTER", mode.env())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the emitter exits in time")
    .expect("the emitter runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A JSON argument list whose `{"$binary": "<base64>"}` objects serialise as binary data.
struct WithBinary<'a>(&'a Value);

impl Serialize for WithBinary<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(members) => {
                if let (1, Some(Value::String(b64))) = (members.len(), members.get("$binary")) {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .map_err(serde::ser::Error::custom)?;
                    return s.serialize_bytes(&bytes);
                }
                let mut map = s.serialize_map(Some(members.len()))?;
                for (k, v) in members {
                    map.serialize_entry(k, &WithBinary(v))?;
                }
                map.end()
            }
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&WithBinary(item))?;
                }
                seq.end()
            }
            other => other.serialize(s),
        }
    }
}

/// A Ferrio node and a Node node of one cluster, the clients of both, and an emitter.
struct Cluster {
    mode: Mode,
    via: Via,
    redis_url: String,
    /// The library emitter (markers, and the operations under test with [`Via::Library`]).
    emitter: Emitter,
    agent: Agent,
    rust: RustNode,
    markers: u32,
    _own_redis: Option<OwnRedis>,
}

impl Drop for Cluster {
    /// Removes the streams a library test wrote to the shared Redis.
    fn drop(&mut self) {
        let Format::Streams(format) = self.emitter.format() else {
            return;
        };
        if self._own_redis.is_some() {
            return;
        }
        let name = &format.stream_name;
        let keys: Vec<String> = std::iter::once(name.clone())
            .chain((-2..=2).map(|i| format!("{name}-{i}")))
            .collect();
        let url = self.redis_url.clone();
        let _ = std::thread::spawn(move || {
            let mut conn = redis::Client::open(url).ok()?.get_connection().ok()?;
            redis::cmd("DEL").arg(keys).query::<usize>(&mut conn).ok()
        })
        .join();
    }
}

impl Cluster {
    async fn start(mode: Mode, via: Via, stream_count: u32) -> Cluster {
        // The command lines write the default prefix: a Redis of their own. The library gets a
        // prefix of its own on the shared one.
        let (own_redis, redis_url, key) = if via == Via::Library {
            (
                None,
                REDIS.to_owned(),
                unique_key(&format!("emitter-{}", mode.env())),
            )
        } else {
            let own = OwnRedis::start();
            let url = own.url();
            (Some(own), url, "socket.io".to_owned())
        };
        let emitter = Emitter::connect(&redis_url, mode.format(&key, stream_count))
            .await
            .expect("redis reachable");
        let agent = Agent::start(mode, &redis_url, &key, stream_count).await;
        let rust = rust_node(mode, &redis_url, &key, stream_count).await;
        let mut cluster = Cluster {
            mode,
            via,
            redis_url,
            emitter,
            agent,
            rust,
            markers: 0,
            _own_redis: own_redis,
        };
        for nsp in ["/", "/chat"] {
            cluster.wait_for_servers(nsp, 2).await;
        }
        let (node_url, rust_url) = (cluster.agent.url.clone(), cluster.rust.url.clone());
        let agent = &mut cluster.agent;
        agent.client("n1", &node_url, "/").await;
        agent.client("n2", &node_url, "/").await;
        agent.client("r1", &rust_url, "/").await;
        agent.client("r2", &rust_url, "/").await;
        agent.client("nc", &node_url, "/chat").await;
        agent.client("rc", &rust_url, "/chat").await;
        agent.join("n2", "room1").await;
        agent.join("r2", "room1").await;
        cluster.wait_for_room_channel("room1", 2).await;
        cluster.warm_up("/", &["n1", "n2", "r1", "r2"]).await;
        cluster.warm_up("/chat", &["nc", "rc"]).await;
        cluster
    }

    /// Waits until both nodes count `n` servers in `nsp`.
    async fn wait_for_servers(&mut self, nsp: &str, n: usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let counts = [
                self.agent.server_count(nsp).await as usize,
                self.rust.io.of(nsp).server_count().await.unwrap_or(0),
            ];
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

    /// With sharded pub/sub, a room's messages travel on a channel of its own that the nodes
    /// having the room subscribe to as it is created (and leave as it is deleted): waits until
    /// `n` nodes listen on it.
    async fn wait_for_room_channel(&self, room: &str, n: usize) {
        if !self.mode.room_channels() {
            return;
        }
        let key = match self.emitter.format() {
            Format::Sharded(f) => f.channel_prefix.clone(),
            _ => unreachable!(),
        };
        let client = redis::Client::open(self.redis_url.as_str()).unwrap();
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

    /// Emits `warm-up` to `nsp` until every client named got one: the nodes read what the
    /// emitter writes (a stream reader starts at the stream's end once it runs).
    async fn warm_up(&mut self, nsp: &str, names: &[&str]) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            self.emitter
                .of(nsp)
                .emit("warm-up", &())
                .await
                .expect("written");
            tokio::time::sleep(Duration::from_millis(100)).await;
            if names.iter().all(|n| self.agent.client_saw(n, "warm-up")) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the nodes do not read the emitter: {:#?}",
                self.agent.log
            );
        }
    }

    /// Emits a new marker event to every client of `/` (they are all still connected) and
    /// waits until `names` got it: what was written before it has been delivered by then.
    async fn marker(&mut self, names: &[&str]) {
        self.markers += 1;
        let ev = format!("marker-{}", self.markers);
        self.emitter.emit(&ev, &()).await.expect("written");
        for name in names {
            self.agent.client_got(name, &ev).await;
        }
    }

    /// One operation, through the emitter under test.
    async fn op(
        &mut self,
        op: &str,
        nsp: &str,
        room: &str,
        event: &str,
        args: Value,
        except: Option<&str>,
    ) {
        if self.via == Via::Library {
            let emitter = self.emitter.of(nsp);
            let mut target = emitter.except(except.map(|r| vec![r]).unwrap_or_default());
            if !room.is_empty() {
                target = target.to(room);
            }
            let rooms = || -> Vec<String> {
                args.as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap().to_owned())
                    .collect()
            };
            let result = match op {
                "emit" => target.emit(event, &WithBinary(&args)).await,
                "server-side-emit" => emitter.server_side_emit(event, &WithBinary(&args)).await,
                "sockets-join" => target.sockets_join(rooms()).await,
                "sockets-leave" => target.sockets_leave(rooms()).await,
                "disconnect-sockets" => target.disconnect_sockets(args[0] == true).await,
                other => panic!("unknown operation {other}"),
            };
            result.unwrap_or_else(|e| panic!("{op} failed: {e}"));
            return;
        }
        let args = args.to_string();
        let mut argv = vec![op, nsp, room, event, args.as_str()];
        argv.extend(except);
        let (ok, stderr) = run_cli(self.via, self.mode, &self.redis_url, &argv).await;
        assert!(ok, "{:?} {argv:?} failed: {stderr}", self.via);
    }
}

/// Every operation of an emitter reaches the clients (or the servers) of both nodes.
async fn emitter_reaches_both_nodes(mode: Mode, via: Via) {
    let mut c = Cluster::start(mode, via, 1).await;
    let everyone = ["n1", "n2", "r1", "r2"];

    // To every client of the namespace.
    c.op(
        "emit",
        "/",
        "",
        "hello",
        json!(["world", 1, {"a": true}]),
        None,
    )
    .await;
    for name in everyone {
        assert_eq!(
            c.agent.client_got(name, "hello").await,
            json!(["world", 1, {"a": true}]),
            "{name}"
        );
    }

    // To a room.
    c.op("emit", "/", "room1", "to-room", json!(["r"]), None)
        .await;
    for name in ["n2", "r2"] {
        assert_eq!(c.agent.client_got(name, "to-room").await, json!(["r"]));
    }
    c.marker(&everyone).await;
    for name in ["n1", "r1"] {
        assert!(
            !c.agent.client_saw(name, "to-room"),
            "{name} is not in room1"
        );
    }

    // Except a room.
    c.op("emit", "/", "", "not-room1", json!([]), Some("room1"))
        .await;
    for name in ["n1", "r1"] {
        assert_eq!(c.agent.client_got(name, "not-room1").await, json!([]));
    }
    c.marker(&everyone).await;
    for name in ["n2", "r2"] {
        assert!(!c.agent.client_saw(name, "not-room1"), "{name} is in room1");
    }

    // Binary data arrives as binary, wherever it is.
    c.op(
        "emit",
        "/",
        "",
        "bin",
        json!([{"$binary": "AQID"}, {"nested": [{"$binary": "/w=="}], "n": 2.5}]),
        None,
    )
    .await;
    for name in everyone {
        assert_eq!(
            c.agent.client_got(name, "bin").await,
            json!([bin("010203"), {"nested": [bin("ff")], "n": 2.5}]),
            "{name}"
        );
    }

    // Another namespace.
    c.op("emit", "/chat", "", "chat-only", json!(["c"]), None)
        .await;
    for name in ["nc", "rc"] {
        assert_eq!(c.agent.client_got(name, "chat-only").await, json!(["c"]));
    }
    c.marker(&everyone).await;
    for name in everyone {
        assert!(!c.agent.client_saw(name, "chat-only"), "{name} is in /");
    }
    for name in ["nc", "rc"] {
        assert!(!c.agent.client_saw(name, "hello"), "{name} is in /chat");
    }

    // The members of room1 join room2; a room2 emit then reaches them only.
    c.op("sockets-join", "/", "room1", "", json!(["room2"]), None)
        .await;
    c.wait_for_room_channel("room2", 2).await;
    c.op("emit", "/", "room2", "in-room2", json!([2]), None)
        .await;
    for name in ["n2", "r2"] {
        assert_eq!(c.agent.client_got(name, "in-room2").await, json!([2]));
    }
    c.marker(&everyone).await;
    for name in ["n1", "r1"] {
        assert!(!c.agent.client_saw(name, "in-room2"), "{name} did not join");
    }

    // Everyone leaves room2: a room2 emit reaches no one.
    c.op("sockets-leave", "/", "", "", json!(["room2"]), None)
        .await;
    c.wait_for_room_channel("room2", 0).await;
    c.op("emit", "/", "room2", "after-leave", json!([]), None)
        .await;
    c.marker(&everyone).await;
    for name in everyone {
        assert!(
            !c.agent.client_saw(name, "after-leave"),
            "{name} left room2"
        );
    }

    // A server-side event reaches the servers' own listeners.
    c.op("server-side-emit", "/", "", "srv", json!(["a", 1]), None)
        .await;
    let e = c
        .agent
        .event("the node's server-side event", |e| {
            e["event"] == "server_event" && e["ev"] == "srv"
        })
        .await;
    assert_eq!(e["nsp"], "/");
    assert_eq!(e["args"], json!(["a", 1]));
    let (nsp, args) = tokio::time::timeout(WAIT, c.rust.server_events.recv())
        .await
        .expect("the Ferrio node's server-side event")
        .unwrap();
    assert_eq!((nsp.as_str(), args), ("/", vec![json!("a"), json!(1)]));
    // With binary (msgpack then, in every format): Node's listener gets a Buffer. (The
    // reference emitter writes JSON, where a Buffer becomes {"type":"Buffer","data":[...]}.)
    if via != Via::NodeCli {
        c.op(
            "server-side-emit",
            "/chat",
            "",
            "srv",
            json!([{"$binary": "AQID"}, "b"]),
            None,
        )
        .await;
        let e = c
            .agent
            .event("the node's binary server-side event", |e| {
                e["event"] == "server_event" && e["ev"] == "srv" && e["nsp"] == "/chat"
            })
            .await;
        assert_eq!(e["args"], json!([bin("010203"), "b"]));
        let (nsp, args) = tokio::time::timeout(WAIT, c.rust.server_events.recv())
            .await
            .expect("the Ferrio node's binary server-side event")
            .unwrap();
        assert_eq!((nsp.as_str(), args.len()), ("/chat", 2));
        assert_eq!(args[1], "b");
    }

    // The members of room1 are disconnected; the others stay.
    c.op("disconnect-sockets", "/", "room1", "", json!([false]), None)
        .await;
    for name in ["n2", "r2"] {
        let e = c
            .agent
            .event(&format!("{name} disconnected"), |e| {
                e["event"] == "client_disconnect" && e["name"] == name
            })
            .await;
        assert_eq!(e["reason"], "io server disconnect", "{name}");
    }
    c.marker(&["n1", "r1"]).await;
    for name in ["n1", "r1", "nc", "rc"] {
        assert!(!c.agent.disconnected(name), "{name} was not in room1");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_cli_reaches_classic_nodes() {
    emitter_reaches_both_nodes(Mode::Classic, Via::RustCli).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_cli_reaches_sharded_nodes() {
    emitter_reaches_both_nodes(Mode::Sharded, Via::RustCli).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_cli_reaches_streams_nodes() {
    emitter_reaches_both_nodes(Mode::Streams, Via::RustCli).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_emitter_reaches_classic_nodes() {
    emitter_reaches_both_nodes(Mode::Classic, Via::NodeCli).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_reaches_classic_nodes_with_its_own_key() {
    emitter_reaches_both_nodes(Mode::Classic, Via::Library).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_reaches_sharded_nodes_with_its_own_prefix() {
    emitter_reaches_both_nodes(Mode::Sharded, Via::Library).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_reaches_sharded_static_nodes() {
    emitter_reaches_both_nodes(Mode::ShardedStatic, Via::Library).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_reaches_sharded_dynamic_private_nodes() {
    emitter_reaches_both_nodes(Mode::ShardedDynamicPrivate, Via::Library).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_reaches_streams_nodes_with_its_own_stream() {
    emitter_reaches_both_nodes(Mode::Streams, Via::Library).await;
}

/// Several rooms at once, a socket id as the room (a private room: never a room channel in the
/// sharded protocol), flags, and `Bytes` as an argument.
async fn rooms_socket_ids_and_flags(mode: Mode) {
    let mut c = Cluster::start(mode, Via::Library, 1).await;
    let everyone = ["n1", "n2", "r1", "r2"];
    let n1 = c
        .agent
        .call(json!({"op": "client", "name": "n1b", "url": c.agent.url.clone(), "nsp": "/"}))
        .await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let r1 = c
        .agent
        .call(json!({"op": "client", "name": "r1b", "url": c.rust.url.clone(), "nsp": "/"}))
        .await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(n1.len(), 20);
    if mode == Mode::ShardedDynamicPrivate {
        // Socket id rooms have channels too.
        c.wait_for_room_channel(&n1, 1).await;
        c.wait_for_room_channel(&r1, 1).await;
    }

    // One socket id: only that client.
    for (sid, name) in [(&n1, "n1b"), (&r1, "r1b")] {
        c.emitter
            .to(sid.as_str())
            .emit("private", &(name,))
            .await
            .unwrap();
        assert_eq!(c.agent.client_got(name, "private").await, json!([name]));
    }
    // Several rooms (a socket in two of them gets it once), flags, binary.
    c.emitter
        .to(vec![n1.clone(), r1.clone()])
        .in_("room1")
        .to(r1.as_str())
        .volatile()
        .compress(false)
        .emit("multi", &(Bytes::from_static(&[7]), "x"))
        .await
        .unwrap();
    for name in ["n1b", "r1b", "n2", "r2"] {
        assert_eq!(
            c.agent.client_got(name, "multi").await,
            json!([bin("07"), "x"])
        );
    }
    c.marker(&everyone).await;
    for name in ["n1", "r1"] {
        assert!(!c.agent.client_saw(name, "multi"), "{name} is not targeted");
    }
    let count = c
        .agent
        .log
        .iter()
        .filter(|e| e["event"] == "client_event" && e["ev"] == "multi")
        .count();
    assert_eq!(count, 4, "one delivery per client");

    // Reserved names are refused, nothing is written.
    for name in ["connect", "disconnect", "disconnecting", "newListener"] {
        assert!(matches!(
            c.emitter.emit(name, &()).await,
            Err(EmitterError::ReservedEvent(n)) if n == name
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_targets_socket_ids_and_several_rooms_classic() {
    rooms_socket_ids_and_flags(Mode::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_targets_socket_ids_and_several_rooms_sharded() {
    rooms_socket_ids_and_flags(Mode::Sharded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_targets_socket_ids_and_several_rooms_sharded_dynamic_private() {
    rooms_socket_ids_and_flags(Mode::ShardedDynamicPrivate).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_targets_socket_ids_and_several_rooms_streams() {
    rooms_socket_ids_and_flags(Mode::Streams).await;
}

/// With several streams, the emitter writes a namespace's entries to the stream its nodes use:
/// `<name>-<hashCode(nsp) % count>`, negative indexes included. (Node's adapter 0.3.1 writes a
/// namespace with a negative index to such a stream too, but reads only streams `0..count`: its
/// clients of that namespace get no broadcast from another node, emitters included. A Ferrio
/// node reads its namespaces' streams.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_emitter_picks_the_namespace_stream() {
    let mut c = Cluster::start(Mode::Streams, Via::Library, 3).await;
    let Format::Streams(format) = c.emitter.format().clone() else {
        unreachable!()
    };
    let streams: Vec<String> = ["/", "/chat", "/notifications"]
        .iter()
        .map(|nsp| format.stream_for(nsp))
        .collect();
    let name = &format.stream_name;
    assert_eq!(
        streams,
        [
            format!("{name}-2"),
            format!("{name}-1"),
            format!("{name}--2")
        ]
    );
    c.wait_for_servers("/notifications", 2).await;
    let (node_url, rust_url) = (c.agent.url.clone(), c.rust.url.clone());
    c.agent.client("nn", &node_url, "/notifications").await;
    c.agent.client("rn", &rust_url, "/notifications").await;
    c.warm_up("/notifications", &["rn"]).await;
    for nsp in ["/chat", "/notifications"] {
        c.emitter
            .of(nsp)
            .emit("spread", &("over", nsp))
            .await
            .unwrap();
    }
    for (client, nsp) in [("nc", "/chat"), ("rc", "/chat"), ("rn", "/notifications")] {
        assert_eq!(
            c.agent.client_got(client, "spread").await,
            json!(["over", nsp])
        );
    }
    let client = redis::Client::open(REDIS).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let len: usize = redis::cmd("XLEN")
        .arg(&streams[2])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(len >= 2, "{} has {len} entries", streams[2]);
}

/// The command lines fail, with a message, on what they cannot do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_lines_refuse_bad_input() {
    for via in [Via::RustCli, Via::NodeCli] {
        let (ok, stderr) = run_cli(
            via,
            Mode::Classic,
            REDIS,
            &["emit", "/", "", "connect", "[]"],
        )
        .await;
        assert!(!ok && stderr.contains("reserved"), "{via:?}: {stderr}");
    }
    let bad: [&[&str]; 4] = [
        &["emit", "/", ""],
        &["explode", "/", "", "x", "[]"],
        &["emit", "/", "", "x", "{}"],
        &["disconnect-sockets", "/", "", "", "[\"yes\"]"],
    ];
    for args in bad {
        let (ok, stderr) = run_cli(Via::RustCli, Mode::Classic, REDIS, args).await;
        assert!(!ok && !stderr.is_empty(), "{args:?}");
    }
    let (ok, stderr) = run_cli(
        Via::RustCli,
        Mode::Classic,
        "redis://127.0.0.1:1/",
        &["emit", "/", "", "x", "[]"],
    )
    .await;
    assert!(!ok && stderr.contains("redis"), "{stderr}");
}

/// Ferrio's command line writes, byte for byte, what npm `@socket.io/redis-emitter` writes for
/// the same operations (classic format).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_cli_writes_what_the_reference_emitter_writes() {
    use futures_util::StreamExt;

    let redis = OwnRedis::start();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.psubscribe("*").await.unwrap();
    let mut messages = pubsub.into_on_message();
    let operations: [&[&str]; 7] = [
        &[
            "emit",
            "/",
            "",
            "hello",
            r#"["world",1,2.5,-3,null,{"a":[true,"x"]}]"#,
        ],
        &[
            "emit",
            "/",
            "room1",
            "bin",
            r#"[{"$binary":"AQID"},{"n":{"$binary":""}}]"#,
            "room2",
        ],
        &["emit", "/chat", "", "c", "[]", "room2"],
        &["sockets-join", "/", "room1", "", r#"["room3","room4"]"#],
        &["sockets-leave", "/", "", "", r#"["room3"]"#, "room1"],
        &["disconnect-sockets", "/", "room1", "", "[true]"],
        &["server-side-emit", "/chat", "", "srv", r#"["a",{"b":1}]"#],
    ];
    for args in operations {
        let mut written = Vec::new();
        for via in [Via::NodeCli, Via::RustCli] {
            let (ok, stderr) = run_cli(via, Mode::Classic, &redis.url(), args).await;
            assert!(ok, "{via:?} {args:?}: {stderr}");
            let msg = tokio::time::timeout(WAIT, messages.next())
                .await
                .expect("a message in time")
                .expect("subscribed");
            written.push((
                msg.get_channel_name().to_owned(),
                msg.get_payload_bytes().to_vec(),
            ));
        }
        assert_eq!(written[0], written[1], "{args:?}");
    }
}

/// An emitter outlives a Redis restart: while Redis is down its operations fail, once it is
/// back they are written again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emitter_writes_again_after_redis_restarts() {
    use futures_util::StreamExt;

    let redis = OwnRedis::start();
    let (port, url) = (redis.port, redis.url());
    let emitter = Emitter::connect(&url, Format::classic()).await.unwrap();
    emitter.emit("before", &()).await.unwrap();
    drop(redis);
    assert!(matches!(
        emitter.emit("while-down", &()).await,
        Err(EmitterError::Redis(_))
    ));
    let _redis = OwnRedis::start_on(port);
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.psubscribe("socket.io#*").await.unwrap();
    let mut messages = pubsub.into_on_message();
    emitter.of("/chat").emit("after", &(1,)).await.unwrap();
    let msg = tokio::time::timeout(WAIT, messages.next())
        .await
        .expect("written after the restart")
        .unwrap();
    assert_eq!(msg.get_channel_name(), "socket.io#/chat#");
}
