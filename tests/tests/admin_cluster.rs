//! The Socket.IO Admin UI over a mixed cluster behind a real Redis: a Ferrio node with
//! `ferrio-redis` (classic, then sharded) and `ferrio_admin::instrument`, and a Node.js node running npm
//! `socket.io` 4.8 with `@socket.io/redis-adapter` 8.3 and `instrument()` from
//! `@socket.io/admin-ui` 0.5 (`tests/node/admin-cluster-node.js`), each with its own server id.
//! npm `socket.io-client` clients play the application's clients and the UI on both nodes.
//!
//! One UI sees both servers: `server_stats` of both server ids reach the admin namespace of
//! either node, and so do `socket_connected`, `room_joined` and `socket_disconnected`;
//! `all_sockets` on either lists the sockets of both nodes with their `clientId` and
//! `transport` (each node reads those of the other's sockets from `data._admin` in the
//! fetched sockets); and the UI's `join` and `_disconnect` on one node reach the sockets of the
//! other. Besides, the `session` event's order against the UI's listener, with the reference
//! (`tests/node/admin-cluster-session.js`).
//!
//! Needs Redis on 127.0.0.1:6379 (the test uses its own key prefix) and `npm ci` in
//! `tests/node`.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrio_admin::{instrument, AdminHandle, AdminOptions, Auth, Mode};
use ferrio_redis::{
    RedisAdapter, RedisAdapterConfig, ShardedRedisAdapter, ShardedRedisAdapterConfig,
    SubscriptionMode,
};
use ferrio_server::Ferrio;
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

/// Which Redis adapter the cluster runs.
#[derive(Clone, Copy, Debug)]
enum Flavor {
    /// `createAdapter` / [`RedisAdapter`].
    Classic,
    /// `createShardedAdapter` / [`ShardedRedisAdapter`] (Redis 7 sharded pub/sub).
    Sharded,
}

impl Flavor {
    /// The adapter argument of `admin-cluster-node.js`.
    fn arg(self) -> &'static str {
        match self {
            Flavor::Classic => "classic",
            Flavor::Sharded => "sharded",
        }
    }
}

/// A Ferrio server with a Redis adapter and the Admin UI's namespace, on a free port.
struct FerrioNode {
    io: Ferrio,
    close: Box<dyn Fn() + Send + Sync>,
    url: String,
    _admin: AdminHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for FerrioNode {
    fn drop(&mut self) {
        (self.close)();
        self.task.abort();
    }
}

async fn ferrio_node(flavor: Flavor, key: &str, server_id: &str) -> FerrioNode {
    let timeout = Duration::from_secs(3);
    let (builder, close): (_, Box<dyn Fn() + Send + Sync>) = match flavor {
        Flavor::Classic => {
            let adapter = RedisAdapter::with_config(
                REDIS,
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
        Flavor::Sharded => {
            let adapter = ShardedRedisAdapter::with_config(
                REDIS,
                ShardedRedisAdapterConfig {
                    channel_prefix: key.to_owned(),
                    requests_timeout: timeout,
                    subscription_mode: SubscriptionMode::Dynamic,
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
    io.of("/");
    let admin = instrument(
        &io,
        AdminOptions {
            auth: Auth::None,
            mode: Mode::Development,
            read_only: false,
            namespace_name: "/admin".into(),
            server_id: Some(server_id.to_owned()),
        },
    )
    .expect("instrumented");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(io.clone().serve(listener));
    FerrioNode {
        io,
        close,
        url,
        _admin: admin,
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
    async fn start(flavor: Flavor, key: &str, server_id: &str) -> Agent {
        let dir = ferrio_tests::node_dir();
        assert!(
            dir.join("node_modules").is_dir(),
            "run npm ci in tests/node"
        );
        let mut child = Command::new("node")
            .arg(dir.join("admin-cluster-node.js"))
            .arg(REDIS)
            .arg(key)
            .arg(server_id)
            .arg(flavor.arg())
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

    /// Waits for client `name` to receive event `ev` with arguments `pred` accepts; returns
    /// the arguments.
    async fn client_got(&mut self, name: &str, ev: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let e = self
            .event(&format!("{ev} at {name}"), |e| {
                e["event"] == "client_event"
                    && e["name"] == name
                    && e["ev"] == ev
                    && pred(&e["args"])
            })
            .await;
        e["args"].clone()
    }

    /// Connects client `name` to `url + nsp`; returns its socket id and Engine.IO id.
    async fn client(&mut self, name: &str, url: &str, nsp: &str) -> (String, String) {
        let reply = self
            .call(json!({"op": "client", "name": name, "url": url, "nsp": nsp}))
            .await;
        (
            reply["sid"].as_str().unwrap().to_owned(),
            reply["engine_id"].as_str().unwrap().to_owned(),
        )
    }

    async fn server_count(&mut self, nsp: &str) -> usize {
        let count = self.call(json!({"op": "server_count", "nsp": nsp})).await["count"]
            .as_u64()
            .unwrap();
        usize::try_from(count).unwrap()
    }
}

/// Waits until both nodes count 2 servers in `nsp`.
async fn wait_for_cluster(agent: &mut Agent, node: &FerrioNode, nsp: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let counts = [
            agent.server_count(nsp).await,
            node.io.of(nsp).server_count().await.unwrap_or(0),
        ];
        if counts == [2, 2] {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "cluster not formed on {nsp}: counts {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `_admin` part a socket's data carries: the first 12 characters of its Engine.IO id and
/// its transport.
fn admin_part(engine_id: &str) -> Value {
    json!({"clientId": &engine_id[..12], "transport": "websocket"})
}

/// The socket `sid` of namespace `/` in an `all_sockets` list.
fn listed<'a>(all: &'a Value, sid: &str) -> &'a Value {
    all.as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == sid && s["nsp"] == "/")
        .unwrap_or_else(|| panic!("{sid} not in all_sockets: {all:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_admin_ui_sees_a_ferrio_node_and_a_node_node_classic() {
    one_admin_ui_sees_a_ferrio_node_and_a_node_node(Flavor::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_admin_ui_sees_a_ferrio_node_and_a_node_node_sharded() {
    one_admin_ui_sees_a_ferrio_node_and_a_node_node(Flavor::Sharded).await;
}

async fn one_admin_ui_sees_a_ferrio_node_and_a_node_node(flavor: Flavor) {
    let key = unique_key("admin");
    let ferrio_id = format!("ferrio-{}", std::process::id());
    let node_id = format!("node-{}", std::process::id());
    let ferrio = ferrio_node(flavor, &key, &ferrio_id).await;
    let mut node = Agent::start(flavor, &key, &node_id).await;
    let node_url = node.url.clone();
    wait_for_cluster(&mut node, &ferrio, "/").await;
    wait_for_cluster(&mut node, &ferrio, "/admin").await;

    // The UI on each node, then one application client on each node (WebSocket only, so the
    // transport is known).
    node.client("ui-ferrio", &ferrio.url, "/admin").await;
    node.client("ui-node", &node_url, "/admin").await;
    let (on_ferrio, on_ferrio_engine) = node.client("on-ferrio", &ferrio.url, "/").await;
    let (on_node, on_node_engine) = node.client("on-node", &node_url, "/").await;

    // Both UIs hear of both connections, each socket with its client id and transport.
    for ui in ["ui-ferrio", "ui-node"] {
        for (sid, engine) in [(&on_ferrio, &on_ferrio_engine), (&on_node, &on_node_engine)] {
            let args = node
                .client_got(ui, "socket_connected", |args| args[0]["id"] == sid.as_str())
                .await;
            assert_eq!(args[0]["clientId"], &engine[..12], "{ui}: {args:#}");
            assert_eq!(args[0]["transport"], "websocket", "{ui}: {args:#}");
            assert_eq!(args[0]["nsp"], "/", "{ui}: {args:#}");
        }
    }

    // The fetched sockets carry `data._admin` both ways: what Node reads of Ferrio's sockets
    // and what Ferrio reads of Node's.
    let fetched = node.call(json!({"op": "fetch", "nsp": "/"})).await;
    let from_ferrio = fetched["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == on_ferrio.as_str())
        .unwrap_or_else(|| panic!("{on_ferrio} not fetched by Node: {fetched}"))
        .clone();
    assert_eq!(from_ferrio["data"]["_admin"], admin_part(&on_ferrio_engine));
    let from_node = ferrio.io.of("/").fetch_sockets().await.unwrap();
    let from_node = from_node
        .iter()
        .find(|s| s.id() == on_node)
        .expect("the Node socket fetched by Ferrio");
    assert_eq!(from_node.data()["_admin"], admin_part(&on_node_engine));

    // A UI connecting now on each node gets both nodes' sockets in `all_sockets`.
    node.client("late-ui-ferrio", &ferrio.url, "/admin").await;
    node.client("late-ui-node", &node_url, "/admin").await;
    for ui in ["late-ui-ferrio", "late-ui-node"] {
        // `all_sockets` lists both nodes' sockets, each with its client id and transport, and
        // without `_admin` in its data.
        let all = node.client_got(ui, "all_sockets", |_| true).await;
        let all = &all[0];
        for (sid, engine) in [(&on_ferrio, &on_ferrio_engine), (&on_node, &on_node_engine)] {
            let s = listed(all, sid);
            assert_eq!(s["clientId"], &engine[..12], "{ui}: {s:#}");
            assert_eq!(s["transport"], "websocket", "{ui}: {s:#}");
            assert!(s["data"].get("_admin").is_none(), "{ui}: {s:#}");
            assert_eq!(s["rooms"], json!([sid]), "{ui}: {s:#}");
        }
        // `server_stats` of both servers.
        for id in [&ferrio_id, &node_id] {
            let stats = node
                .client_got(ui, "server_stats", |args| {
                    args[0]["serverId"] == id.as_str()
                })
                .await;
            let names: Vec<&Value> = stats[0]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| &n["name"])
                .collect();
            assert!(names.contains(&&json!("/admin")), "{ui}: {stats}");
        }
    }

    // The UI on the Ferrio node makes the Node node's socket join a room, and the UI on the
    // Node node makes the Ferrio node's socket join one: each node announces it to both UIs.
    node.call(json!({"op": "client_emit", "name": "ui-ferrio", "ev": "join", "args": ["/", "vip", on_node]}))
        .await;
    node.call(json!({"op": "client_emit", "name": "ui-node", "ev": "join", "args": ["/", "vip", on_ferrio]}))
        .await;
    for ui in ["ui-ferrio", "ui-node"] {
        for sid in [&on_node, &on_ferrio] {
            node.client_got(ui, "room_joined", |args| {
                args[0] == "/" && args[1] == "vip" && args[2] == sid.as_str()
            })
            .await;
        }
    }
    let rooms = node
        .call(json!({"op": "rooms", "nsp": "/", "sid": on_node}))
        .await;
    let mut want = [on_node.clone(), "vip".to_owned()];
    want.sort();
    assert_eq!(rooms["rooms"], json!(want));
    let mut ferrio_rooms = ferrio.io.of("/").socket(&on_ferrio).unwrap().rooms();
    ferrio_rooms.sort();
    let mut want = [on_ferrio.clone(), "vip".to_owned()];
    want.sort();
    assert_eq!(ferrio_rooms, want);

    // `_disconnect` from the UI on the Ferrio node, filtered by the Node socket's id, reaches
    // that socket only.
    node.call(json!({"op": "client_emit", "name": "ui-ferrio", "ev": "_disconnect", "args": ["/", false, on_node]}))
        .await;
    let gone = node
        .event("on-node disconnected", |e| {
            e["event"] == "client_disconnect" && e["name"] == "on-node"
        })
        .await;
    assert_eq!(gone["reason"], "io server disconnect");
    for ui in ["ui-ferrio", "ui-node"] {
        node.client_got(ui, "socket_disconnected", |args| {
            args[0] == "/" && args[1] == on_node.as_str()
        })
        .await;
    }
    assert!(ferrio.io.of("/").socket(&on_ferrio).is_some());
    assert!(!node
        .log
        .iter()
        .any(|e| e["event"] == "client_disconnect" && e["name"] != "on-node"));
}

/// The bcrypt hash of `changeit` (made by the npm `bcryptjs`, cost 4).
const HASH: &str = "$2a$04$kmAFzMOM3PTsvWSf1dNM0uB0RFGSZKzIeBtackP4/DiCIPZgR/mXG";

/// The UI listens for `session` only once connected: sent right after the CONNECT reply, as
/// here, the session id reaches it; sent before, as the reference does, it is replayed by the
/// client before the UI listens and lost (`tests/node/admin-cluster-session.js` logs in to
/// both as the UI does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_gets_its_session_id_which_the_reference_order_loses() {
    let io = Ferrio::builder().build();
    let admin = instrument(
        &io,
        AdminOptions::new(Auth::Basic {
            username: "admin".into(),
            password_hash: HASH.into(),
        }),
    )
    .expect("instrumented");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(io.serve(listener));
    let input = json!({ "url": url }).to_string();
    let out = tokio::task::spawn_blocking(move || {
        ferrio_tests::run_node_script("admin-cluster-session.js", input.as_bytes())
    })
    .await
    .unwrap();
    server.abort();
    admin.close();
    let out: Value = serde_json::from_slice(&out).unwrap();
    for id in out["ferrio"].as_array().unwrap() {
        let id = id
            .as_str()
            .unwrap_or_else(|| panic!("no session id: {out}"));
        assert!(
            id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{out}"
        );
    }
    assert_eq!(out["reference"], json!([null, null]), "{out}");
}
