//! A Redis that stops answering for a while (`DEBUG SLEEP`) makes the operations that wait for
//! the other servers fail cleanly within the requests timeout, instead of hanging until Redis
//! wakes: `fetch_sockets`, `server_side_emit_with_ack` and a broadcast with acks each end with
//! an error while Redis still sleeps. Local delivery goes on meanwhile, and once Redis answers
//! again the cluster works again.
//!
//! The same when Redis itself answers but is slow to pass the requests on to the other server
//! (its link held back by a TCP proxy of the test's own): the operations end with a timeout
//! before that server saw them, and the answers it sends late are dropped.
//!
//! Every test starts a `redis-server` of its own on a free port (with `--enable-debug-command
//! yes`), two Ferrio servers with the adapter under test and a short requests timeout, and a
//! Socket.IO client on each.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ferrio_client::Socket as ClientSocket;
use ferrio_redis::streams::{StreamsRedisAdapter, StreamsRedisAdapterConfig};
use ferrio_redis::{
    RedisAdapter, RedisAdapterConfig, ShardedRedisAdapter, ShardedRedisAdapterConfig,
};
use ferrio_server::{AckError, AdapterError, EmitError, Ferrio};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// How long anything may take before the test gives up (never asserted as a duration).
const WAIT: Duration = Duration::from_secs(15);

/// How long Redis sleeps, in seconds. Every operation under test must end, with an error, while
/// it still sleeps: an operation that waited for Redis instead would succeed after it.
const SLEEP_SECS: u64 = 4;

/// The requests timeout of the nodes: well inside the sleep.
const REQUESTS_TIMEOUT: Duration = Duration::from_millis(1000);

const KEY: &str = "ferrio-slow";

/// A `redis-server` of this test's own on a free port, that accepts `DEBUG SLEEP`.
struct OwnRedis {
    port: u16,
    child: Child,
}

impl OwnRedis {
    fn start() -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--enable-debug-command", "yes"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server installed");
        let redis = OwnRedis { port, child };
        let deadline = std::time::Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Sends `DEBUG SLEEP` on a connection of the test's own (the nodes' connections are left
    /// untouched) and returns that connection, on which Redis answers once awake.
    fn sleep(&self) -> std::net::TcpStream {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let secs = SLEEP_SECS.to_string();
        let cmd = format!(
            "*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n${}\r\n{secs}\r\n",
            secs.len()
        );
        conn.write_all(cmd.as_bytes()).unwrap();
        conn
    }
}

impl Drop for OwnRedis {
    /// Kills the server this test started (and only it).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (on a blocking thread, bounded) until Redis answers the `DEBUG SLEEP` sent on `conn`.
async fn awake(mut conn: std::net::TcpStream) {
    let answer = tokio::task::spawn_blocking(move || {
        conn.set_read_timeout(Some(WAIT)).unwrap();
        let mut buf = [0u8; 16];
        let n = conn.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    })
    .await
    .unwrap();
    assert_eq!(answer, "+OK\r\n", "Redis answers DEBUG SLEEP once awake");
}

#[derive(Clone, Copy, Debug)]
enum Flavor {
    Classic,
    Sharded,
    Streams,
}

/// A Ferrio server with the adapter, serving on a free port, and one client connected to it
/// that answers every event asking for an ack with `"ok-<label>"`.
struct Node {
    label: &'static str,
    io: Ferrio,
    close: Box<dyn Fn() + Send + Sync>,
    /// The events the client received: (event, first argument).
    client_events: mpsc::UnboundedReceiver<(String, Value)>,
    _client: ClientSocket,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        (self.close)();
        self.task.abort();
    }
}

impl Node {
    async fn start(flavor: Flavor, redis: &OwnRedis, label: &'static str) -> Node {
        Node::start_at(flavor, &redis.url(), label).await
    }

    /// A node that reaches Redis at `url`.
    async fn start_at(flavor: Flavor, url: &str, label: &'static str) -> Node {
        let (io, close): (Ferrio, Box<dyn Fn() + Send + Sync>) = match flavor {
            Flavor::Classic => {
                let adapter = RedisAdapter::with_config(
                    url,
                    RedisAdapterConfig {
                        key: KEY.to_owned(),
                        requests_timeout: REQUESTS_TIMEOUT,
                        ..RedisAdapterConfig::default()
                    },
                )
                .await
                .expect("redis reachable");
                (
                    Ferrio::builder().adapter(adapter.clone()).build(),
                    Box::new(move || adapter.close()),
                )
            }
            Flavor::Sharded => {
                let adapter = ShardedRedisAdapter::with_config(
                    url,
                    ShardedRedisAdapterConfig {
                        channel_prefix: KEY.to_owned(),
                        requests_timeout: REQUESTS_TIMEOUT,
                        ..ShardedRedisAdapterConfig::default()
                    },
                )
                .await
                .expect("redis reachable");
                (
                    Ferrio::builder().adapter(adapter.clone()).build(),
                    Box::new(move || adapter.close()),
                )
            }
            Flavor::Streams => {
                let adapter = StreamsRedisAdapter::with_config(
                    url,
                    StreamsRedisAdapterConfig {
                        stream_name: KEY.to_owned(),
                        channel_prefix: KEY.to_owned(),
                        requests_timeout: REQUESTS_TIMEOUT,
                        ..StreamsRedisAdapterConfig::default()
                    },
                )
                .await
                .expect("redis reachable");
                (
                    Ferrio::builder().adapter(adapter.clone()).build(),
                    Box::new(move || adapter.close()),
                )
            }
        };
        io.of("/")
            .on_server_event("ping", move |_args, ack| async move {
                let _ = ack.send(&format!("pong-from-{label}"));
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server_url = format!("http://{}/", listener.local_addr().unwrap());
        let task = tokio::spawn(io.clone().serve(listener));
        let (tx, client_events) = mpsc::unbounded_channel();
        let client = ferrio_client::io(&server_url)
            .with_socket(move |socket| {
                socket.on_any(move |_socket, message| {
                    if message.ack_requested() {
                        let _ = message.ack(&(format!("ok-{label}"),));
                    }
                    let first = message
                        .args::<Vec<Value>>()
                        .ok()
                        .and_then(|a| a.into_iter().next());
                    let _ = tx.send((message.event().to_owned(), first.unwrap_or(Value::Null)));
                });
            })
            .connect()
            .await
            .expect("client connects");
        Node {
            label,
            io,
            close,
            client_events,
            _client: client,
            task,
        }
    }

    /// Waits for the client to receive `event`, and returns its first argument.
    async fn client_got(&mut self, event: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.client_events.recv()).await {
                Ok(Some((ev, arg))) if ev == event => return arg,
                Ok(Some(_)) => {}
                Ok(None) => panic!("the client of node {} is gone", self.label),
                Err(_) => panic!("the client of node {} never received {event:?}", self.label),
            }
        }
    }
}

/// Retries `fetch_sockets` on `node` (bounded) until it lists the sockets of both nodes.
async fn fetch_lists_both(node: &Node) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(sockets) = node.io.fetch_sockets().await {
            if sockets.len() == 2 {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "fetch_sockets on node {} never listed both nodes' sockets",
            node.label
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn cross_node_requests_time_out_while_redis_sleeps(flavor: Flavor) {
    let redis = OwnRedis::start();
    let mut a = Node::start(flavor, &redis, "a").await;
    let b = Node::start(flavor, &redis, "b").await;
    // The cluster works: both nodes see each other.
    fetch_lists_both(&a).await;

    let sleeper = redis.sleep();
    // Let Redis read the command before the requests go out.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let fetch = tokio::spawn(a.io.fetch_sockets());
    let server_side = tokio::spawn(a.io.of("/").server_side_emit_with_ack("ping", &()));
    let broadcast = tokio::spawn(a.io.timeout(REQUESTS_TIMEOUT).emit_with_ack("ask", &()));
    // Local delivery goes on meanwhile: the local client receives a local emit.
    a.io.local().emit("local", &("still-here",)).unwrap();
    assert_eq!(a.client_got("local").await, json!("still-here"));
    let (fetch, server_side, broadcast) =
        tokio::time::timeout(WAIT, async { tokio::join!(fetch, server_side, broadcast) })
            .await
            .expect("the cross-node requests end");
    let (fetch, server_side, broadcast) =
        (fetch.unwrap(), server_side.unwrap(), broadcast.unwrap());
    // ... and all that happened while Redis still slept: it has not answered the DEBUG SLEEP.
    sleeper.set_nonblocking(true).unwrap();
    let mut probe = [0u8; 16];
    let still_asleep = matches!(
        (&sleeper).read(&mut probe),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
    );
    sleeper.set_nonblocking(false).unwrap();
    assert!(
        still_asleep,
        "{flavor:?}: the cross-node requests waited for Redis to wake up"
    );

    // Each failed: Redis never relayed them, so they cannot have completed.
    assert!(
        fetch.is_err(),
        "{flavor:?}: fetch_sockets while Redis sleeps: {:?}",
        fetch.map(|s| s.len())
    );
    let server_side = server_side.expect_err("server_side_emit_with_ack while Redis sleeps");
    assert!(
        server_side.responses.is_empty(),
        "no other node could answer: {server_side:?}"
    );
    match broadcast {
        Err(EmitError::Cluster(_)) => {}
        Ok(replies) => {
            // Node a's own client answered; node b's part failed.
            assert!(
                replies.iter().any(|r| r.is_ok()),
                "{flavor:?}: the local client's ack is missing: {replies:?}"
            );
            assert!(
                replies
                    .iter()
                    .any(|r| matches!(r, Err(AckError::Timeout | AckError::Emit(_)))),
                "{flavor:?}: the broadcast with acks succeeded while Redis slept: {replies:?}"
            );
        }
        Err(e) => panic!("{flavor:?}: unexpected broadcast error {e:?}"),
    }

    // Once Redis is awake the cluster works again.
    awake(sleeper).await;
    fetch_lists_both(&a).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match a.io.of("/").server_side_emit_with_ack("ping", &()).await {
            Ok(answers) => {
                assert_eq!(answers, vec![json!("pong-from-b")]);
                break;
            }
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "{flavor:?}: server-side emits never answered again: {e:?}"
            ),
        }
    }
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_node_requests_time_out_while_redis_sleeps_classic() {
    cross_node_requests_time_out_while_redis_sleeps(Flavor::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_node_requests_time_out_while_redis_sleeps_sharded() {
    cross_node_requests_time_out_while_redis_sleeps(Flavor::Sharded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_node_requests_time_out_while_redis_sleeps_streams() {
    cross_node_requests_time_out_while_redis_sleeps(Flavor::Streams).await;
}

/// A TCP proxy between one node and Redis that can hold back what Redis sends to the node (as
/// a slow or congested link does): nothing is lost or closed, it is delivered once released.
struct HoldingProxy {
    port: u16,
    held: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl HoldingProxy {
    async fn start(upstream: u16) -> HoldingProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (held, gate) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let mut links = tokio::task::JoinSet::new();
            while let Ok((inbound, _)) = listener.accept().await {
                let gate = gate.clone();
                links.spawn(async move {
                    let Ok(outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    let (mut from_node, mut to_node) = inbound.into_split();
                    let (mut from_redis, mut to_redis) = outbound.into_split();
                    let up = tokio::io::copy(&mut from_node, &mut to_redis);
                    let down = async move {
                        let mut gate = gate;
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = match tokio::io::AsyncReadExt::read(&mut from_redis, &mut buf)
                                .await
                            {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            // Held: wait for the release before passing it on.
                            if gate.wait_for(|held| !*held).await.is_err() {
                                return;
                            }
                            if tokio::io::AsyncWriteExt::write_all(&mut to_node, &buf[..n])
                                .await
                                .is_err()
                            {
                                return;
                            }
                        }
                    };
                    let _ = tokio::join!(up, down);
                });
            }
        });
        HoldingProxy { port, held, task }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Holds back everything Redis sends to the node from now on (until released).
    fn hold(&self) {
        self.held.send_replace(true);
    }

    /// Delivers what was held, and all that follows.
    fn release(&self) {
        self.held.send_replace(false);
    }

    /// Whether it still holds.
    fn holding(&self) -> bool {
        *self.held.borrow()
    }
}

impl Drop for HoldingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Redis answers node a at once, but what it sends to node b is held back: node b sees the
/// requests late, and its answers come late. Node a's requests end with an error within the
/// requests timeout (before node b could even see them), the late answers that come after are
/// dropped, and the cluster works again once the link is fast again.
async fn requests_time_out_when_the_other_node_answers_late(flavor: Flavor) {
    let redis = OwnRedis::start();
    let proxy = HoldingProxy::start(redis.port).await;
    let mut a = Node::start(flavor, &redis, "a").await;
    let b = Node::start_at(flavor, &proxy.url(), "b").await;
    fetch_lists_both(&a).await;

    proxy.hold();
    let fetch = tokio::spawn(a.io.fetch_sockets());
    let server_side = tokio::spawn(a.io.of("/").server_side_emit_with_ack("ping", &()));
    let broadcast = tokio::spawn(a.io.timeout(REQUESTS_TIMEOUT).emit_with_ack("ask", &()));
    a.io.local().emit("local", &("still-here",)).unwrap();
    assert_eq!(a.client_got("local").await, json!("still-here"));
    let (fetch, server_side, broadcast) =
        tokio::time::timeout(WAIT, async { tokio::join!(fetch, server_side, broadcast) })
            .await
            .expect("the cross-node requests end");
    let (fetch, server_side, broadcast) =
        (fetch.unwrap(), server_side.unwrap(), broadcast.unwrap());
    // Node b has not seen any of them yet.
    assert!(proxy.holding());

    match fetch {
        Err(AdapterError::Timeout(_)) => {}
        other => panic!(
            "{flavor:?}: fetch_sockets without node b's answer: {:?}",
            other.map(|s| s.len())
        ),
    }
    let server_side = server_side.expect_err("server_side_emit_with_ack without node b's answer");
    assert!(
        matches!(server_side.error, AdapterError::Timeout(_)),
        "{flavor:?}: {server_side:?}"
    );
    assert!(server_side.responses.is_empty(), "{server_side:?}");
    match broadcast {
        // Node a's client answered; node b's part timed out.
        Ok(replies) => {
            assert_eq!(
                replies.iter().filter(|r| r.is_ok()).count(),
                1,
                "{flavor:?}: only node a's client could answer: {replies:?}"
            );
            assert!(
                replies.iter().any(|r| matches!(r, Err(AckError::Timeout))),
                "{flavor:?}: node b's part did not time out: {replies:?}"
            );
        }
        Err(EmitError::Cluster(AdapterError::Timeout(_))) => {}
        Err(e) => panic!("{flavor:?}: unexpected broadcast error {e:?}"),
    }

    // Node b gets the requests now and answers them, too late: node a drops the answers and
    // goes on working.
    proxy.release();
    fetch_lists_both(&a).await;
    let answers =
        a.io.of("/")
            .server_side_emit_with_ack("ping", &())
            .await
            .expect("node b answers again");
    assert_eq!(answers, vec![json!("pong-from-b")]);
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_time_out_when_the_other_node_answers_late_classic() {
    requests_time_out_when_the_other_node_answers_late(Flavor::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_time_out_when_the_other_node_answers_late_sharded() {
    requests_time_out_when_the_other_node_answers_late(Flavor::Sharded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_time_out_when_the_other_node_answers_late_streams() {
    requests_time_out_when_the_other_node_answers_late(Flavor::Streams).await;
}
