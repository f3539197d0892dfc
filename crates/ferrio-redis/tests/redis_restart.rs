//! No cluster message is lost once Redis is back after an outage: the first broadcast, the
//! first request and the first answer each node sends after a restart reach the other node,
//! with no traffic in between to wake the connections up.
//!
//! Every test starts a `redis-server` of its own on a free port (it is killed and started
//! again), two Ferrio servers with the adapter under test, and a Socket.IO client on each.
//!
//! With the streams adapter, one more case: the entries another node appends while this node's
//! link to Redis is down (cut by a TCP proxy between this node and Redis, Redis itself keeps
//! running) are delivered once the link is back.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ferrio_client::Socket as ClientSocket;
use ferrio_redis::streams::{StreamsRedisAdapter, StreamsRedisAdapterConfig};
use ferrio_redis::{
    RedisAdapter, RedisAdapterConfig, ShardedRedisAdapter, ShardedRedisAdapterConfig,
};
use ferrio_server::Ferrio;
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// How long anything may take before the test gives up (never asserted as a duration).
const WAIT: Duration = Duration::from_secs(15);

/// How long Redis stays down.
const OUTAGE: Duration = Duration::from_millis(500);

const KEY: &str = "ferrio-restart";

/// A `redis-server` of this test's own on a free port, to kill and start again.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    fn start() -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = OwnRedis { port, child: None };
        redis.restart();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn restart(&mut self) {
        let child = Command::new("redis-server")
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

    /// Kills the server this test started (and only it).
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills Redis, leaves it down a moment, starts it again on the same port.
    async fn outage(&mut self) {
        self.kill();
        tokio::time::sleep(OUTAGE).await;
        self.restart();
    }

    /// The clients of this Redis that listen on `channels` channels, `patterns` patterns and
    /// `shard_channels` shard channels (`CLIENT LIST`, on a connection of the test's own: the
    /// nodes' connections are left untouched).
    async fn subscribers(&self, channels: usize, patterns: usize, shard_channels: usize) -> usize {
        let Ok(mut conn) = self.connection().await else {
            return 0;
        };
        let list: String = match redis::cmd("CLIENT")
            .arg("LIST")
            .query_async(&mut conn)
            .await
        {
            Ok(list) => list,
            Err(_) => return 0,
        };
        let fields = [
            format!(" sub={channels} "),
            format!(" psub={patterns} "),
            format!(" ssub={shard_channels} "),
        ];
        list.lines()
            .filter(|client| fields.iter().all(|field| client.contains(field.as_str())))
            .count()
    }

    async fn connection(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        redis::Client::open(self.url())?
            .get_multiplexed_async_connection()
            .await
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

#[derive(Clone, Copy, Debug)]
enum Flavor {
    Classic,
    Sharded,
    Streams,
}

impl Flavor {
    /// True once both nodes' subscribers listen on all their channels.
    async fn subscribed(self, redis: &OwnRedis) -> bool {
        let listening = match self {
            // The request channel, the common and the node's own response channels, and the
            // broadcast pattern.
            Flavor::Classic => redis.subscribers(3, 1, 0).await,
            // The namespace's channel and the node's response channel.
            Flavor::Sharded => redis.subscribers(0, 0, 2).await,
            // The namespace's channel and the node's response channel.
            Flavor::Streams => redis.subscribers(2, 0, 0).await,
        };
        listening == 2
    }

    /// The connections of one node that are not subscribers.
    fn command_connections(self) -> usize {
        match self {
            Flavor::Classic | Flavor::Sharded => 1,
            // The pub/sub queries', the ordered writes' and the stream reader's.
            Flavor::Streams => 3,
        }
    }
}

/// A Ferrio server with the adapter, serving on a free port, and one client connected to it.
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
        let timeout = Duration::from_secs(5);
        let (io, close): (Ferrio, Box<dyn Fn() + Send + Sync>) = match flavor {
            Flavor::Classic => {
                let adapter = RedisAdapter::with_config(
                    url,
                    RedisAdapterConfig {
                        key: KEY.to_owned(),
                        requests_timeout: timeout,
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
                        requests_timeout: timeout,
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
                        requests_timeout: timeout,
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
                    let first = message.args::<Vec<Value>>().ok().and_then(|mut a| {
                        if a.is_empty() {
                            None
                        } else {
                            Some(a.remove(0))
                        }
                    });
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

/// Waits (bounded) until `done` holds.
async fn wait_until<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two nodes of `flavor` on a Redis of the test's own, their subscribers listening, each with
/// its client, the cluster checked working.
async fn cluster(flavor: Flavor) -> (OwnRedis, Node, Node) {
    let redis = OwnRedis::start();
    let a = Node::start(flavor, &redis, "a").await;
    let mut b = Node::start(flavor, &redis, "b").await;
    wait_until("both subscribers listen", || flavor.subscribed(&redis)).await;
    a.io.emit("before", &("a",)).unwrap();
    assert_eq!(b.client_got("before").await, json!("a"));
    (redis, a, b)
}

/// Kills Redis and starts it again, then waits for the subscribers to listen again; nothing
/// else is sent meanwhile, so what the test sends next is the first write of each node's
/// command connection since Redis went away.
async fn restart(flavor: Flavor, redis: &mut OwnRedis) {
    redis.outage().await;
    wait_until("the subscribers listen again", || flavor.subscribed(redis)).await;
}

async fn first_broadcasts_after_restart_are_delivered(flavor: Flavor) {
    let (mut redis, mut a, mut b) = cluster(flavor).await;
    restart(flavor, &mut redis).await;
    a.io.emit("from-a", &("after",)).unwrap();
    assert_eq!(b.client_got("from-a").await, json!("after"));
    b.io.emit("from-b", &("after",)).unwrap();
    assert_eq!(a.client_got("from-b").await, json!("after"));
}

/// Redis closes the nodes' command connections only (as its idle `timeout` or `CLIENT KILL`
/// do): the subscribers notice nothing, the next broadcast still goes out.
async fn first_broadcast_after_redis_closed_the_command_connections(flavor: Flavor) {
    let (redis, mut a, b) = cluster(flavor).await;
    let mut conn = redis.connection().await.unwrap();
    let killed: usize = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        killed,
        2 * flavor.command_connections(),
        "the command connections of both nodes"
    );
    // Redis closed them before answering; give the nodes a moment to read the close.
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.io.emit("from-b", &("after",)).unwrap();
    assert_eq!(a.client_got("from-b").await, json!("after"));
}

async fn first_requests_after_restart_get_their_answers(flavor: Flavor) {
    let (mut redis, a, b) = cluster(flavor).await;
    // Node a's question and node b's answer are each their node's first message.
    restart(flavor, &mut redis).await;
    let answers =
        a.io.of("/")
            .server_side_emit_with_ack("ping", &())
            .await
            .expect("node b answers the first request after the restart");
    assert_eq!(answers, vec![json!("pong-from-b")]);
    // The other way, with `fetch_sockets`.
    restart(flavor, &mut redis).await;
    let sockets =
        b.io.fetch_sockets()
            .await
            .expect("node a answers the first fetch after the restart");
    assert_eq!(sockets.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_broadcasts_after_restart_are_delivered_classic() {
    first_broadcasts_after_restart_are_delivered(Flavor::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_broadcasts_after_restart_are_delivered_sharded() {
    first_broadcasts_after_restart_are_delivered(Flavor::Sharded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_requests_after_restart_get_their_answers_classic() {
    first_requests_after_restart_get_their_answers(Flavor::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_requests_after_restart_get_their_answers_sharded() {
    first_requests_after_restart_get_their_answers(Flavor::Sharded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_broadcast_after_redis_closed_the_command_connections_classic() {
    first_broadcast_after_redis_closed_the_command_connections(Flavor::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_broadcast_after_redis_closed_the_command_connections_sharded() {
    first_broadcast_after_redis_closed_the_command_connections(Flavor::Sharded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_broadcasts_after_restart_are_delivered_streams() {
    first_broadcasts_after_restart_are_delivered(Flavor::Streams).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_requests_after_restart_get_their_answers_streams() {
    first_requests_after_restart_get_their_answers(Flavor::Streams).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_broadcast_after_redis_closed_the_command_connections_streams() {
    first_broadcast_after_redis_closed_the_command_connections(Flavor::Streams).await;
}

/// A TCP proxy in front of Redis, whose link can be cut (every connection closed, new ones
/// refused) and restored on the same port.
struct Proxy {
    port: u16,
    upstream: u16,
    accept: Option<tokio::task::JoinHandle<()>>,
    links: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: u16) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut proxy = Proxy {
            port,
            upstream,
            accept: None,
            links: Default::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let links = self.links.clone();
        let upstream = self.upstream;
        self.accept = Some(tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let link = tokio::spawn(async move {
                    let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                links.lock().unwrap().push(link);
            }
        }));
    }

    /// Closes every proxied connection and stops listening.
    fn cut(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    /// Listens again on the same port.
    async fn restore(&mut self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        let listener = loop {
            match tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(listener) => break listener,
                Err(e) => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "cannot listen again: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        self.serve(listener);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}

/// Node a reaches Redis through a proxy whose link is cut; node b appends entries meanwhile.
/// Once the link is back, a's reader goes on from the last entry it read: it delivers them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_appended_while_the_reader_link_was_down_are_delivered() {
    let redis = OwnRedis::start();
    let mut proxy = Proxy::start(redis.port).await;
    let mut a = Node::start_at(Flavor::Streams, &proxy.url(), "a").await;
    let b = Node::start(Flavor::Streams, &redis, "b").await;
    wait_until("both subscribers listen", || {
        Flavor::Streams.subscribed(&redis)
    })
    .await;
    b.io.emit("before", &("b",)).unwrap();
    assert_eq!(a.client_got("before").await, json!("b"));

    proxy.cut();
    // Redis sees node a's connections go.
    wait_until("node a's subscriber is gone", || async {
        redis.subscribers(2, 0, 0).await == 1
    })
    .await;
    let mut conn = redis.connection().await.unwrap();
    let length = |mut conn: redis::aio::MultiplexedConnection| async move {
        redis::cmd("XLEN")
            .arg(KEY)
            .query_async::<usize>(&mut conn)
            .await
            .unwrap()
    };
    let before = length(conn.clone()).await;
    b.io.emit("while-down", &(1,)).unwrap();
    b.io.emit("while-down", &(2,)).unwrap();
    wait_until("node b appended both", || {
        let conn = conn.clone();
        async move { length(conn).await == before + 2 }
    })
    .await;

    proxy.restore().await;
    assert_eq!(a.client_got("while-down").await, json!(1));
    assert_eq!(a.client_got("while-down").await, json!(2));
    let _ = redis::cmd("PING").query_async::<String>(&mut conn).await;
}
