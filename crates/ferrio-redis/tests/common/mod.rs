//! Helpers shared by the integration tests: a `redis-server` of the test's own, a TCP proxy in
//! front of Redis that can cut, black-hole or hold back its connections, Ferrio servers with one
//! of the adapters and a recording client, bounded waits.
//!
//! Every test file uses only some of them.
#![allow(dead_code)]

use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrio_client::{ClientBuilder, Socket as ClientSocket};
use ferrio_redis::streams::{StreamsRedisAdapter, StreamsRedisAdapterConfig};
use ferrio_redis::{
    RedisAdapter, RedisAdapterConfig, ShardedRedisAdapter, ShardedRedisAdapterConfig,
};
use ferrio_server::{Adapter, Ferrio};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// How long anything may take before a test gives up (never asserted as a duration).
pub const WAIT: Duration = Duration::from_secs(15);

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` of the test's own on a free port, to kill and start again. Dropping it
/// kills the server it started (and only it).
pub struct OwnRedis {
    pub port: u16,
    args: Vec<String>,
    child: Option<Child>,
}

impl OwnRedis {
    /// Starts one and waits until it accepts connections.
    pub fn start() -> OwnRedis {
        OwnRedis::start_with(&[])
    }

    /// Starts one with more `redis-server` arguments.
    pub fn start_with(args: &[&str]) -> OwnRedis {
        let mut redis = OwnRedis {
            port: free_port(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            child: None,
        };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Starts the server (again) on its port and waits until it accepts connections.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .args(&self.args)
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
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills Redis, leaves it down for `outage`, starts it again on the same port.
    pub async fn outage(&mut self, outage: Duration) {
        self.kill();
        tokio::time::sleep(outage).await;
        self.restart();
    }

    /// Sends `DEBUG SLEEP <secs>` (the server must have been started with
    /// `--enable-debug-command yes`) on a connection of the test's own (the nodes' connections
    /// are left untouched) and returns that connection, on which Redis answers once awake.
    pub fn debug_sleep(&self, secs: u64) -> std::net::TcpStream {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let secs = secs.to_string();
        let cmd = format!(
            "*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n${}\r\n{secs}\r\n",
            secs.len()
        );
        conn.write_all(cmd.as_bytes()).unwrap();
        conn
    }

    /// The clients of this Redis that listen on `channels` channels, `patterns` patterns and
    /// `shard_channels` shard channels (`CLIENT LIST`, on a connection of the test's own: the
    /// nodes' connections are left untouched).
    pub async fn subscribers(
        &self,
        channels: usize,
        patterns: usize,
        shard_channels: usize,
    ) -> usize {
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

    pub async fn connection(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
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

/// A TCP proxy in front of a Redis (one port on 127.0.0.1). Its connections can be cut (closed,
/// new ones refused until [`Proxy::restore`]), turned into black holes (nothing forwarded any
/// more in either direction, nothing closed, as when a network path dies; connections made
/// afterwards are forwarded normally), or held back (what Redis sends is delivered only once
/// released, as over a slow link: nothing is lost or closed).
pub struct Proxy {
    pub port: u16,
    upstream: u16,
    accept: Option<JoinHandle<()>>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    /// Connections opened before this generation are black holes.
    generation: watch::Sender<u64>,
    held: watch::Sender<bool>,
}

impl Proxy {
    pub async fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut proxy = Proxy {
            port,
            upstream,
            accept: None,
            links: Arc::default(),
            generation: watch::channel(0u64).0,
            held: watch::channel(false).0,
        };
        proxy.serve(listener);
        proxy
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn serve(&mut self, listener: TcpListener) {
        let links = self.links.clone();
        let upstream = self.upstream;
        let generation = self.generation.subscribe();
        let held = self.held.subscribe();
        self.accept = Some(tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                // This connection dies at the next black hole.
                let born = *generation.borrow();
                let generation = generation.clone();
                let held = held.clone();
                let link = tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                        return;
                    };
                    let (from_node, to_node) = inbound.into_split();
                    let (from_redis, to_redis) = outbound.into_split();
                    tokio::join!(
                        pump(from_node, to_redis, generation.clone(), born, None),
                        pump(from_redis, to_node, generation, born, Some(held)),
                    );
                });
                links.lock().unwrap().push(link);
            }
        }));
    }

    /// Closes every proxied connection and stops listening.
    pub fn cut(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn restore(&mut self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
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

    /// Stops forwarding on every connection open now, in both directions, closing nothing.
    pub fn black_hole(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// Holds back everything Redis sends from now on (until released).
    pub fn hold(&self) {
        self.held.send_replace(true);
    }

    /// Delivers what was held, and all that follows.
    pub fn release(&self) {
        self.held.send_replace(false);
    }

    /// Whether it still holds.
    pub fn holding(&self) -> bool {
        *self.held.borrow()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}

/// Copies `from` to `to` until the connection closes or is black-holed (then holds both halves
/// open forever without reading or writing). With `held`, what is read waits while it is held.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut generation: watch::Receiver<u64>,
    born: u64,
    mut held: Option<watch::Receiver<bool>>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if *generation.borrow() != born {
                        break;
                    }
                    if let Some(held) = &mut held {
                        // Held: wait for the release before passing it on.
                        if held.wait_for(|held| !*held).await.is_err() {
                            return;
                        }
                    }
                    if to.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            },
            changed = generation.changed() => {
                if changed.is_err() || *generation.borrow() != born {
                    break;
                }
            }
        }
    }
    // A black hole: the halves stay open, nothing moves.
    std::future::pending::<()>().await;
    drop((from, to));
}

/// Which adapter a [`Node`] runs.
#[derive(Clone, Copy, Debug)]
pub enum Flavor {
    Classic,
    Sharded,
    Streams,
}

/// How a [`Node`] is set up.
pub struct NodeConfig {
    /// The channel prefix (and stream name) of the adapter.
    pub key: String,
    /// The node's name: its server answers the server-side event `ping` with
    /// `"pong-from-<label>"`.
    pub label: &'static str,
    /// The adapter's requests timeout (its default when `None`).
    pub requests_timeout: Option<Duration>,
    /// Whether the client answers every event that asks for an ack with `"ok-<label>"`.
    pub answer_acks: bool,
}

/// The events a client received: (event, first argument).
pub type Events = mpsc::UnboundedReceiver<(String, Value)>;

/// A Ferrio server with the adapter, serving on a free port, and one client connected to it.
pub struct Node {
    pub label: &'static str,
    pub io: Ferrio,
    close: Box<dyn Fn() + Send + Sync>,
    /// The events the client received: (event, first argument).
    pub client_events: Events,
    _client: ClientSocket,
    task: JoinHandle<std::io::Result<()>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        (self.close)();
        self.task.abort();
    }
}

impl Node {
    /// A node of `flavor` that reaches Redis at `url`.
    pub async fn start(flavor: Flavor, url: &str, config: NodeConfig) -> Node {
        let NodeConfig {
            key,
            label,
            requests_timeout,
            answer_acks,
        } = config;
        let (io, close) = match flavor {
            Flavor::Classic => {
                let mut config = RedisAdapterConfig {
                    key: key.clone(),
                    ..RedisAdapterConfig::default()
                };
                if let Some(timeout) = requests_timeout {
                    config.requests_timeout = timeout;
                }
                let adapter = RedisAdapter::with_config(url, config).await;
                with_adapter(adapter.expect("redis reachable"), RedisAdapter::close)
            }
            Flavor::Sharded => {
                let mut config = ShardedRedisAdapterConfig {
                    channel_prefix: key.clone(),
                    ..ShardedRedisAdapterConfig::default()
                };
                if let Some(timeout) = requests_timeout {
                    config.requests_timeout = timeout;
                }
                let adapter = ShardedRedisAdapter::with_config(url, config).await;
                with_adapter(
                    adapter.expect("redis reachable"),
                    ShardedRedisAdapter::close,
                )
            }
            Flavor::Streams => {
                let mut config = StreamsRedisAdapterConfig {
                    stream_name: key.clone(),
                    channel_prefix: key.clone(),
                    ..StreamsRedisAdapterConfig::default()
                };
                if let Some(timeout) = requests_timeout {
                    config.requests_timeout = timeout;
                }
                let adapter = StreamsRedisAdapter::with_config(url, config).await;
                with_adapter(
                    adapter.expect("redis reachable"),
                    StreamsRedisAdapter::close,
                )
            }
        };
        io.of("/")
            .on_server_event("ping", move |_args, ack| async move {
                let _ = ack.send(&format!("pong-from-{label}"));
            });
        let (server_url, task) = serve(&io).await;
        let ack_label = answer_acks.then_some(label);
        let (client, client_events) =
            recording_client(ferrio_client::io(&server_url), ack_label).await;
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
    pub async fn client_got(&mut self, event: &str) -> Value {
        client_got(&mut self.client_events, self.label, event, WAIT).await
    }
}

/// A server with `adapter`, and what closes the adapter.
fn with_adapter<A: Adapter + Clone>(
    adapter: A,
    close: fn(&A),
) -> (Ferrio, Box<dyn Fn() + Send + Sync>) {
    let io = Ferrio::builder().adapter(adapter.clone()).build();
    (io, Box::new(move || close(&adapter)))
}

/// Serves `io` on a free port of 127.0.0.1: its URL and the serving task.
pub async fn serve(io: &Ferrio) -> (String, JoinHandle<std::io::Result<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    (url, tokio::spawn(io.clone().serve(listener)))
}

/// Connects the client of `builder`, which records every event it receives with its first
/// argument; with `ack_label`, it answers every event asking for an ack with `"ok-<label>"`.
pub async fn recording_client(
    builder: ClientBuilder,
    ack_label: Option<&'static str>,
) -> (ClientSocket, Events) {
    let (tx, events) = mpsc::unbounded_channel();
    let client = builder
        .with_socket(move |socket| {
            socket.on_any(move |_socket, message| {
                if let Some(label) = ack_label {
                    if message.ack_requested() {
                        let _ = message.ack(&(format!("ok-{label}"),));
                    }
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
    (client, events)
}

/// Waits (at most `within`) for the client of node `label` to receive `event`, and returns its
/// first argument.
pub async fn client_got(events: &mut Events, label: &str, event: &str, within: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some((ev, arg))) if ev == event => return arg,
            Ok(Some(_)) => {}
            Ok(None) => panic!("the client of node {label} is gone"),
            Err(_) => panic!("the client of node {label} never received {event:?}"),
        }
    }
}

/// Waits (at most `within`, asking every `every`) until `done` holds.
pub async fn poll_until<F, Fut>(within: Duration, every: Duration, what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(every).await;
    }
}

/// Waits (bounded by [`WAIT`]) until `done` holds.
pub async fn wait_until<F, Fut>(what: &str, done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    poll_until(WAIT, Duration::from_millis(50), what, done).await;
}

/// Calls `send` with 1, 2, 3… every 300 ms until `events` gets `event`; panics with `failure`
/// past `within`.
pub async fn send_until_received(
    events: &mut Events,
    event: &str,
    within: Duration,
    failure: &str,
    mut send: impl FnMut(u64),
) {
    let deadline = tokio::time::Instant::now() + within;
    let mut tick = tokio::time::interval(Duration::from_millis(300));
    let mut n = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                assert!(tokio::time::Instant::now() < deadline, "{failure}");
                n += 1;
                send(n);
            }
            got = events.recv() => {
                if got.expect("client alive").0 == event {
                    return;
                }
            }
        }
    }
}
