//! The Redis connections one adapter shares between its namespaces: a subscriber connection
//! that reconnects and subscribes again by itself, an ordered publisher, and the command
//! connection it writes on, which knows when Redis closed it and connects again before the
//! next write, so the first messages after an outage are not lost.
//!
//! Classic pub/sub subscribes on an async `PubSub` connection. Sharded pub/sub (`SSUBSCRIBE`)
//! is not offered by the Redis client's connections to a standalone server, so the sharded
//! subscriber owns a plain TCP connection: a thread reads the pushes with the Redis client's
//! RESP parser, and (un)subscriptions are written to the same socket as they come.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use redis::aio::PubSubSink;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::commands::{self, CommandConn};
use crate::RedisError;

/// Publishes waiting to be written to Redis. Past it (Redis slow or down for long) further
/// cluster messages are dropped with a warning; local delivery is not affected.
pub const PUBLISH_QUEUE: usize = 4096;

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long Redis may take to answer a command (past it the connection is replaced).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// What a message from Redis is routed by.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Route {
    /// A `PSUBSCRIBE` pattern (broadcast channels).
    Pattern,
    /// A `SUBSCRIBE` or `SSUBSCRIBE` channel.
    Channel,
}

/// Which pub/sub a hub uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    /// `PUBLISH`, `SUBSCRIBE`, `PSUBSCRIBE`.
    Classic,
    /// Redis 7 sharded pub/sub: `SPUBLISH`, `SSUBSCRIBE`.
    Sharded,
}

/// What receives the messages of the channels it registered.
pub(crate) trait Listener: Send + Sync + 'static {
    /// A message on `channel`.
    fn on_message(self: Arc<Self>, channel: &str, payload: &[u8]);
}

/// The sharded subscriber's socket, shared by its reading thread and the writers.
#[derive(Default)]
struct ShardedConn {
    /// The write side of the live connection, if connected.
    writer: Mutex<Option<TcpStream>>,
    stopped: AtomicBool,
}

impl ShardedConn {
    /// Writes `command channels...` if connected (a failed write is noticed by the reader,
    /// which reconnects and subscribes to everything again).
    fn send(&self, command: &str, channels: &[String]) {
        if channels.is_empty() {
            return;
        }
        if let Ok(mut writer) = self.writer.lock() {
            if let Some(stream) = writer.as_mut() {
                let _ = stream.write_all(&redis::cmd(command).arg(channels).get_packed_command());
            }
        }
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        if let Ok(mut writer) = self.writer.lock() {
            if let Some(stream) = writer.take() {
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

enum Subscriber {
    /// The live classic subscriber connection's command side, if connected.
    Async(Option<PubSubSink>),
    /// The sharded subscriber.
    Sharded(Arc<ShardedConn>),
}

struct Subscriptions {
    /// Channel or pattern → the namespace adapter it feeds.
    routes: HashMap<(Route, String), Weak<dyn Listener>>,
    subscriber: Subscriber,
}

pub(crate) struct Hub {
    client: redis::Client,
    /// Publishes and `PUBSUB` queries.
    commands: Arc<CommandConn>,
    publish: mpsc::Sender<(String, Bytes)>,
    subs: Mutex<Subscriptions>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Hub {
    /// Connects the command connection and starts the subscriber and publisher tasks.
    pub(crate) async fn start(client: redis::Client, mode: Mode) -> Result<Arc<Hub>, RedisError> {
        let commands = Arc::new(
            CommandConn::connect(client.clone(), CONNECT_TIMEOUT, RESPONSE_TIMEOUT).await?,
        );
        let (publish, queue) = mpsc::channel(PUBLISH_QUEUE);
        let (subscriber, sharded) = match mode {
            Mode::Classic => (Subscriber::Async(None), None),
            Mode::Sharded => {
                let conn = Arc::new(ShardedConn::default());
                (Subscriber::Sharded(conn.clone()), Some(conn))
            }
        };
        let hub = Arc::new(Hub {
            client,
            commands,
            publish,
            subs: Mutex::new(Subscriptions {
                routes: HashMap::new(),
                subscriber,
            }),
            tasks: Mutex::new(Vec::new()),
        });
        let command = match mode {
            Mode::Classic => "PUBLISH",
            Mode::Sharded => "SPUBLISH",
        };
        let publisher = tokio::spawn(run_publisher(hub.commands.clone(), queue, command));
        let mut tasks = vec![publisher];
        match sharded {
            None => tasks.push(tokio::spawn(run_subscriber(Arc::downgrade(&hub)))),
            Some(conn) => {
                let weak = Arc::downgrade(&hub);
                let info = hub.client.get_connection_info().clone();
                let runtime = tokio::runtime::Handle::current();
                std::thread::Builder::new()
                    .name("ferrio-redis-ssubscribe".into())
                    .spawn(move || run_sharded_subscriber(weak, info, conn, runtime))
                    .map_err(|e| RedisError::from(std::io::Error::other(e)))?;
            }
        }
        if let Ok(mut t) = hub.tasks.lock() {
            t.extend(tasks);
        }
        Ok(hub)
    }

    /// Stops the tasks; the subscriber connection closes, so Redis stops counting this node.
    pub(crate) fn close(&self) {
        if let Ok(mut tasks) = self.tasks.lock() {
            for task in tasks.drain(..) {
                task.abort();
            }
        }
        if let Ok(mut subs) = self.subs.lock() {
            subs.routes.clear();
            match &mut subs.subscriber {
                Subscriber::Async(sink) => *sink = None,
                Subscriber::Sharded(conn) => conn.stop(),
            }
        }
    }

    /// `PUBSUB <subcommand> <channel>` (`NUMSUB` or `SHARDNUMSUB`): how many connections listen
    /// on `channel`, that is the servers of the cluster, this one included. A query that fails
    /// on a broken connection is asked once more on a new one (it changes nothing in Redis).
    pub(crate) async fn subscriber_count(
        &self,
        subcommand: &'static str,
        channel: &str,
        timeout: Duration,
    ) -> Result<usize, ferrio_server::AdapterError> {
        let mut cmd = redis::cmd("PUBSUB");
        cmd.arg(subcommand).arg(channel);
        let query = async {
            let mut retried = false;
            loop {
                let checkout = self.commands.get().await?;
                let mut conn = checkout.conn.clone();
                match cmd.query_async::<(String, usize)>(&mut conn).await {
                    Ok(answer) => return Ok(answer),
                    Err(e) => {
                        checkout.failed(&e);
                        if retried || !commands::is_connection_error(&e) {
                            return Err(e);
                        }
                        retried = true;
                    }
                }
            }
        };
        match tokio::time::timeout(timeout, query).await {
            Ok(Ok((_, n))) => Ok(n),
            Ok(Err(e)) => Err(ferrio_server::AdapterError::Transport(e.to_string())),
            Err(_) => Err(ferrio_server::AdapterError::Transport(format!(
                "redis did not answer PUBSUB {subcommand}"
            ))),
        }
    }

    /// Queues a publish; it is written in order with the others.
    pub(crate) fn publish(&self, channel: String, payload: Bytes) {
        if let Err(e) = self.publish.try_send((channel, payload)) {
            warn!(error = %e, "redis adapter: publish queue full or closed, cluster message dropped");
        }
    }

    /// Routes `names` (channels or patterns) to `listener` and subscribes to them now if
    /// connected (else on the next connection).
    pub(crate) fn register(&self, route: Route, names: Vec<String>, listener: Weak<dyn Listener>) {
        let sink = {
            let Ok(mut subs) = self.subs.lock() else {
                return;
            };
            for name in &names {
                subs.routes.insert((route, name.clone()), listener.clone());
            }
            match &subs.subscriber {
                Subscriber::Async(sink) => sink.clone(),
                Subscriber::Sharded(conn) => {
                    conn.send("SSUBSCRIBE", &names);
                    return;
                }
            }
        };
        if let Some(mut sink) = sink {
            tokio::spawn(async move {
                let result = match route {
                    Route::Pattern => sink.psubscribe(&names).await,
                    Route::Channel => sink.subscribe(&names).await,
                };
                if let Err(e) = result {
                    warn!(error = %e, "redis adapter: subscribe failed (retried on reconnection)");
                }
            });
        }
    }

    /// Subscribes to channel `name` (routed to `listener`) if `wanted()` says so, else
    /// unsubscribes, deciding and acting under the routes lock: concurrent room creations and
    /// deletions cannot leave a room without its channel, whatever order their events come in.
    pub(crate) fn sync_channel(
        &self,
        name: String,
        wanted: impl FnOnce() -> bool,
        listener: Weak<dyn Listener>,
    ) {
        let key = (Route::Channel, name);
        let sink = {
            let Ok(mut subs) = self.subs.lock() else {
                return;
            };
            let want = wanted();
            if want == subs.routes.contains_key(&key) {
                return;
            }
            if want {
                subs.routes.insert(key.clone(), listener);
            } else {
                subs.routes.remove(&key);
            }
            let command = if want { "SSUBSCRIBE" } else { "SUNSUBSCRIBE" };
            match &subs.subscriber {
                Subscriber::Sharded(conn) => {
                    conn.send(command, std::slice::from_ref(&key.1));
                    return;
                }
                Subscriber::Async(sink) => sink.clone().map(|s| (s, want)),
            }
        };
        if let Some((mut sink, want)) = sink {
            let names = vec![key.1];
            tokio::spawn(async move {
                let _ = if want {
                    sink.subscribe(&names).await
                } else {
                    sink.unsubscribe(&names).await
                };
            });
        }
    }

    fn route(&self, route: Route, name: &str) -> Option<Arc<dyn Listener>> {
        self.subs
            .lock()
            .ok()?
            .routes
            .get(&(route, name.to_owned()))?
            .upgrade()
    }

    /// Everything to subscribe to on a new connection: (channels, patterns).
    fn all_routes(&self) -> (Vec<String>, Vec<String>) {
        let Ok(subs) = self.subs.lock() else {
            return (Vec::new(), Vec::new());
        };
        let mut channels = Vec::new();
        let mut patterns = Vec::new();
        for (route, name) in subs.routes.keys() {
            match route {
                Route::Channel => channels.push(name.clone()),
                Route::Pattern => patterns.push(name.clone()),
            }
        }
        (channels, patterns)
    }

    /// Takes the new classic connection's sink and returns everything to subscribe to.
    fn connected(&self, sink: PubSubSink) -> (Vec<String>, Vec<String>) {
        if let Ok(mut subs) = self.subs.lock() {
            subs.subscriber = Subscriber::Async(Some(sink));
        }
        self.all_routes()
    }

    fn disconnected(&self) {
        if let Ok(mut subs) = self.subs.lock() {
            if let Subscriber::Async(sink) = &mut subs.subscriber {
                *sink = None;
            }
        }
    }

    fn dispatch(&self, msg: redis::Msg) {
        let channel = msg.get_channel_name();
        let payload = msg.get_payload_bytes();
        let listener = if msg.from_pattern() {
            msg.get_pattern::<String>()
                .ok()
                .and_then(|pattern| self.route(Route::Pattern, &pattern))
        } else {
            self.route(Route::Channel, channel)
        };
        if let Some(listener) = listener {
            listener.on_message(channel, payload);
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.close();
    }
}

async fn run_subscriber(hub: Weak<Hub>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(client) = hub.upgrade().map(|h| h.client.clone()) else {
            return;
        };
        let pubsub = match tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub()).await {
            Ok(Ok(pubsub)) => pubsub,
            Ok(Err(e)) => {
                debug!(error = %e, "redis adapter: subscriber cannot connect");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
            Err(_) => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        let (mut sink, mut stream) = pubsub.split();
        let Some((channels, patterns)) = hub.upgrade().map(|h| h.connected(sink.clone())) else {
            return;
        };
        let subscribed = async {
            if !channels.is_empty() {
                sink.subscribe(&channels).await?;
            }
            if !patterns.is_empty() {
                sink.psubscribe(&patterns).await?;
            }
            Ok::<(), redis::RedisError>(())
        }
        .await;
        if let Err(e) = subscribed {
            warn!(error = %e, "redis adapter: subscribing failed, reconnecting");
            if let Some(h) = hub.upgrade() {
                h.disconnected();
            }
            tokio::time::sleep(backoff).await;
            continue;
        }
        debug!("redis adapter: subscriber connected");
        while let Some(msg) = stream.next().await {
            let Some(h) = hub.upgrade() else {
                return;
            };
            backoff = Duration::from_millis(100);
            h.dispatch(msg);
        }
        warn!("redis adapter: subscriber connection lost, reconnecting");
        if let Some(h) = hub.upgrade() {
            h.disconnected();
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Most publishes written in one round trip.
const PUBLISH_BATCH: usize = 256;

/// Writes the queued publishes in order: whatever is waiting goes out as one pipeline (one round
/// trip), so throughput does not stop at one message per round trip.
///
/// Each pipeline goes on a connection not known to be closed (a closed one is replaced first).
/// A pipeline that fails once written is not written again: the error does not tell whether
/// Redis received it, and a message published twice would reach the clients twice.
async fn run_publisher(
    commands: Arc<CommandConn>,
    mut queue: mpsc::Receiver<(String, Bytes)>,
    command: &'static str,
) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    while queue.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        let mut pipe = redis::pipe();
        for (channel, payload) in &batch {
            pipe.cmd(command)
                .arg(channel)
                .arg(payload.as_ref())
                .ignore();
        }
        match commands.get().await {
            Ok(checkout) => {
                let mut conn = checkout.conn.clone();
                let result: Result<(), redis::RedisError> = pipe.query_async(&mut conn).await;
                if let Err(e) = result {
                    checkout.failed(&e);
                    warn!(error = %e, count = batch.len(), "redis adapter: publish failed, messages dropped");
                }
            }
            Err(e) => {
                warn!(error = %e, count = batch.len(), "redis adapter: redis unreachable, messages dropped");
            }
        }
        batch.clear();
    }
}

/// The sharded subscriber: reads pushes from its own connection (blocking), reconnecting and
/// subscribing to every registered channel again when the connection fails. Runs until the hub
/// is gone or closed.
fn run_sharded_subscriber(
    hub: Weak<Hub>,
    info: redis::ConnectionInfo,
    conn: Arc<ShardedConn>,
    runtime: tokio::runtime::Handle,
) {
    // Listeners spawn tasks (answers to requests) from this thread.
    let _runtime = runtime.enter();
    let mut backoff = Duration::from_millis(100);
    while !conn.stopped.load(Ordering::Acquire) {
        let reader = match connect_sharded(&info) {
            Ok(stream) => stream,
            Err(e) => {
                debug!(error = %e, "redis adapter: sharded subscriber cannot connect");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        let Ok(writer) = reader.try_clone() else {
            continue;
        };
        // Publish the writer and subscribe to everything under the routes lock, so that a
        // registration either sees the new writer or is in this list.
        {
            let Some(h) = hub.upgrade() else {
                return;
            };
            let Ok(subs) = h.subs.lock() else {
                return;
            };
            // A Redis that stops reading must not hold a writer (and the routes lock) forever.
            let _ = writer.set_write_timeout(Some(CONNECT_TIMEOUT));
            if let Ok(mut w) = conn.writer.lock() {
                *w = Some(writer);
            }
            let channels: Vec<String> = subs.routes.keys().map(|(_, name)| name.clone()).collect();
            conn.send("SSUBSCRIBE", &channels);
        }
        if conn.stopped.load(Ordering::Acquire) {
            // `close()` ran while this connection was being made: do not leave it open.
            conn.stop();
            return;
        }
        debug!("redis adapter: sharded subscriber connected");
        let mut reader = std::io::BufReader::new(reader);
        let mut parser = redis::Parser::new();
        loop {
            let value = match parser.parse_value(&mut reader) {
                Ok(value) => value,
                Err(_) => break,
            };
            // A value came: the connection works, the next failure starts a short backoff.
            backoff = Duration::from_millis(100);
            if let Some((channel, payload)) = smessage(&value) {
                let Some(h) = hub.upgrade() else {
                    return;
                };
                if let Some(listener) = h.route(Route::Channel, &channel) {
                    listener.on_message(&channel, payload);
                }
            }
        }
        if let Ok(mut w) = conn.writer.lock() {
            *w = None;
        }
        if conn.stopped.load(Ordering::Acquire) {
            return;
        }
        warn!("redis adapter: sharded subscriber connection lost, reconnecting");
        // A Redis that accepts and closes at once must not make this a busy loop.
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// A TCP connection to the Redis of `info`, authenticated if the URL has credentials.
fn connect_sharded(info: &redis::ConnectionInfo) -> std::io::Result<TcpStream> {
    let redis::ConnectionAddr::Tcp(host, port) = info.addr() else {
        return Err(std::io::Error::other(
            "the sharded adapter needs a redis:// (TCP) address",
        ));
    };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), *port))?
        .next()
        .ok_or_else(|| std::io::Error::other("redis host did not resolve"))?;
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    stream.set_nodelay(true)?;
    let settings = info.redis_settings();
    if let Some(password) = settings.password() {
        let mut auth = redis::cmd("AUTH");
        if let Some(user) = settings.username() {
            auth.arg(user);
        }
        auth.arg(password);
        stream.write_all(&auth.get_packed_command())?;
        stream.set_read_timeout(Some(CONNECT_TIMEOUT))?;
        let mut reader = std::io::BufReader::new(stream.try_clone()?);
        match redis::Parser::new().parse_value(&mut reader) {
            Ok(redis::Value::Okay) | Ok(redis::Value::SimpleString(_)) => {}
            _ => return Err(std::io::Error::other("redis refused the credentials")),
        }
        stream.set_read_timeout(None)?;
    }
    Ok(stream)
}

/// `(channel, payload)` of an `smessage` push.
fn smessage(value: &redis::Value) -> Option<(String, &[u8])> {
    let items = match value {
        redis::Value::Array(items) => items.as_slice(),
        redis::Value::Push { data, .. } => data.as_slice(),
        _ => return None,
    };
    match items {
        [redis::Value::BulkString(kind), redis::Value::BulkString(channel), redis::Value::BulkString(payload)]
            if kind.as_slice() == b"smessage" =>
        {
            Some((
                String::from_utf8_lossy(channel).into_owned(),
                payload.as_slice(),
            ))
        }
        _ => None,
    }
}
