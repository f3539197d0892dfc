//! The Redis connections one adapter shares between its namespaces: a subscriber connection
//! that reconnects and subscribes again by itself, an ordered publisher, and the command
//! connection it writes on, which knows when Redis closed it and connects again before the
//! next write, so the first messages after an outage are not lost.
//!
//! Classic pub/sub subscribes on the Redis client's async `PubSub` connection (RESP2).
//!
//! Sharded pub/sub (`SSUBSCRIBE`) goes through the Redis client too, over RESP3, whose
//! subscription confirmations and `smessage` pushes the client routes itself:
//!
//! * a single Redis: a multiplexed connection with a push sender, on which `SSUBSCRIBE` and
//!   `SUNSUBSCRIBE` are sent as plain commands, one channel per command. The `redis` crate
//!   (1.8.1) has `ssubscribe`/`sunsubscribe` methods only on its cluster connection
//!   (`cluster_async::ClusterConnection`), not on `MultiplexedConnection`, `ConnectionManager`
//!   or the RESP2 `aio::PubSub`; but its multiplexed connection takes the RESP3 `ssubscribe`
//!   confirmation as the command's reply and hands `smessage` pushes to the push sender, which
//!   is all this needs (a command with several channels would get several confirmations for
//!   one reply, hence one channel per command);
//! * a Redis Cluster: the cluster connection's `ssubscribe`, which sends each channel to the
//!   shard that owns its slot and subscribes again by itself when a node's connection is
//!   replaced or the slots move. `SPUBLISH` is routed by its channel like any keyed command,
//!   and `PUBSUB SHARDNUMSUB` goes to every node, the counts summed per channel.
//!
//! Every subscriber connection is checked with a `PING` every [`HEALTH_CHECK_INTERVAL`] (on a
//! cluster, to every master): if no answer comes within [`HEALTH_CHECK_TIMEOUT`] the connection
//! is dropped and a new one subscribes to everything again. So a connection whose peer vanished
//! without closing it (a network cut, a host gone) is replaced within about the sum of the two.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{MultipleNodeRoutingInfo, ResponsePolicy, RoutingInfo};
use redis::{PushInfo, PushKind, Value};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::commands::{self, CommandConn};
use crate::RedisError;

/// Publishes waiting to be written to Redis. Past it (Redis slow or down for long) further
/// cluster messages are dropped with a warning; local delivery is not affected.
pub const PUBLISH_QUEUE: usize = 4096;

/// How often every subscriber connection sends a `PING` to check that Redis still answers.
pub const HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// How long a health-check `PING` may wait for its answer; past it the subscriber connection
/// is dropped and replaced. A silently dead connection is thus replaced within
/// [`HEALTH_CHECK_INTERVAL`] + [`HEALTH_CHECK_TIMEOUT`] (10 s).
pub const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

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

/// Where the hub's Redis is.
#[derive(Clone)]
enum Target {
    /// One Redis server.
    Single(redis::Client),
    /// A Redis Cluster, found from these nodes.
    Cluster(Vec<redis::ConnectionInfo>),
}

/// A change to the sharded subscriptions: (subscribe, channels).
type ShardOp = (bool, Vec<String>);

enum Subscriber {
    /// The live classic subscriber connection's command side, if connected.
    Async(Option<PubSubSink>),
    /// The live sharded subscriber's queue of (un)subscriptions, if connected: the subscriber
    /// task sends them in order.
    Sharded(Option<mpsc::UnboundedSender<ShardOp>>),
}

struct Subscriptions {
    /// Channel or pattern → the namespace adapter it feeds.
    routes: HashMap<(Route, String), Weak<dyn Listener>>,
    subscriber: Subscriber,
}

/// The connection publishes and `PUBSUB` queries go on.
enum Commands {
    Single(Arc<CommandConn>),
    Cluster(ClusterConnection),
}

impl Commands {
    /// `cmd` on a working connection; on a single Redis, a query that fails on a broken
    /// connection is asked once more on a new one (only for commands that change nothing).
    async fn query(&self, cmd: &redis::Cmd) -> redis::RedisResult<Value> {
        match self {
            Commands::Single(commands) => {
                let mut retried = false;
                loop {
                    let checkout = commands.get().await?;
                    let mut conn = checkout.conn.clone();
                    match cmd.query_async::<Value>(&mut conn).await {
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
            }
            Commands::Cluster(conn) => cmd.query_async::<Value>(&mut conn.clone()).await,
        }
    }
}

pub(crate) struct Hub {
    target: Target,
    /// Publishes and `PUBSUB` queries.
    commands: Arc<Commands>,
    publish: mpsc::Sender<(String, Bytes)>,
    subs: Mutex<Subscriptions>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Hub {
    /// Connects the command connection and starts the subscriber and publisher tasks.
    pub(crate) async fn start(client: redis::Client, mode: Mode) -> Result<Arc<Hub>, RedisError> {
        let commands = Commands::Single(Arc::new(
            CommandConn::connect(client.clone(), CONNECT_TIMEOUT, RESPONSE_TIMEOUT).await?,
        ));
        Ok(Hub::launch(Target::Single(client), commands, mode))
    }

    /// Connects to the Redis Cluster that `nodes` belong to (sharded pub/sub only) and starts
    /// the subscriber and publisher tasks.
    pub(crate) async fn start_cluster(
        nodes: Vec<redis::ConnectionInfo>,
    ) -> Result<Arc<Hub>, RedisError> {
        let client = cluster_client(&nodes, None)?;
        let conn = tokio::time::timeout(
            CONNECT_TIMEOUT + RESPONSE_TIMEOUT,
            client.get_async_connection(),
        )
        .await
        .map_err(|_| timed_out("redis cluster connection timed out"))??;
        Ok(Hub::launch(
            Target::Cluster(nodes),
            Commands::Cluster(conn),
            Mode::Sharded,
        ))
    }

    fn launch(target: Target, commands: Commands, mode: Mode) -> Arc<Hub> {
        let (publish, queue) = mpsc::channel(PUBLISH_QUEUE);
        let subscriber = match mode {
            Mode::Classic => Subscriber::Async(None),
            Mode::Sharded => Subscriber::Sharded(None),
        };
        let hub = Arc::new(Hub {
            target,
            commands: Arc::new(commands),
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
        let subscriber = match mode {
            Mode::Classic => tokio::spawn(run_subscriber(Arc::downgrade(&hub))),
            Mode::Sharded => tokio::spawn(run_sharded_subscriber(Arc::downgrade(&hub))),
        };
        if let Ok(mut t) = hub.tasks.lock() {
            t.extend([publisher, subscriber]);
        }
        hub
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
                Subscriber::Sharded(ops) => *ops = None,
            }
        }
    }

    /// `PUBSUB <subcommand> <channel>` (`NUMSUB` or `SHARDNUMSUB`): how many connections listen
    /// on `channel`, that is the servers of the cluster, this one included (summed over the
    /// nodes of a Redis Cluster). A query that fails on a broken connection is asked once more
    /// on a new one (it changes nothing in Redis).
    pub(crate) async fn subscriber_count(
        &self,
        subcommand: &'static str,
        channel: &str,
        timeout: Duration,
    ) -> Result<usize, ferrio_server::AdapterError> {
        let mut cmd = redis::cmd("PUBSUB");
        cmd.arg(subcommand).arg(channel);
        match tokio::time::timeout(timeout, self.commands.query(&cmd)).await {
            Ok(Ok(answer)) => count_of(&answer, channel).ok_or_else(|| {
                ferrio_server::AdapterError::Transport(format!(
                    "unexpected answer to PUBSUB {subcommand}: {answer:?}"
                ))
            }),
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
                Subscriber::Sharded(ops) => {
                    if let Some(ops) = ops {
                        let _ = ops.send((true, names));
                    }
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
            match &subs.subscriber {
                Subscriber::Sharded(ops) => {
                    // Queued under the routes lock: the subscriber sends them in this order.
                    if let Some(ops) = ops {
                        let _ = ops.send((want, vec![key.1]));
                    }
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
    fn all_routes(subs: &Subscriptions) -> (Vec<String>, Vec<String>) {
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
        let Ok(mut subs) = self.subs.lock() else {
            return (Vec::new(), Vec::new());
        };
        subs.subscriber = Subscriber::Async(Some(sink));
        Hub::all_routes(&subs)
    }

    /// Takes the new sharded connection's queue and returns every channel to subscribe to:
    /// under the routes lock, so that a registration either is in the list or is queued.
    fn sharded_connected(&self, ops: mpsc::UnboundedSender<ShardOp>) -> Vec<String> {
        let Ok(mut subs) = self.subs.lock() else {
            return Vec::new();
        };
        subs.subscriber = Subscriber::Sharded(Some(ops));
        Hub::all_routes(&subs).0
    }

    fn disconnected(&self) {
        if let Ok(mut subs) = self.subs.lock() {
            match &mut subs.subscriber {
                Subscriber::Async(sink) => *sink = None,
                Subscriber::Sharded(ops) => *ops = None,
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

    /// Hands an `smessage` push to the listener of its channel.
    fn dispatch_push(&self, push: &PushInfo) {
        if let Some((channel, payload)) = smessage(&push.data) {
            if let Some(listener) = self.route(Route::Channel, &channel) {
                listener.on_message(&channel, payload);
            }
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.close();
    }
}

fn timed_out(what: &'static str) -> RedisError {
    RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, what))
}

/// The cluster client for `nodes`, speaking RESP3 and handing pushes to `pushes` if given.
fn cluster_client(
    nodes: &[redis::ConnectionInfo],
    pushes: Option<PushHandler>,
) -> Result<redis::cluster::ClusterClient, RedisError> {
    let mut builder = redis::cluster::ClusterClientBuilder::new(nodes.to_vec())
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT);
    if let Some(pushes) = pushes {
        builder = builder
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(pushes);
    }
    builder.build()
}

/// The subscriber count in a `PUBSUB NUMSUB`/`SHARDNUMSUB` answer: `[channel, n]` from a single
/// Redis, a map `{channel: n}` (summed over the nodes) from the cluster client.
fn count_of(answer: &Value, channel: &str) -> Option<usize> {
    let pairs: Vec<(&Value, &Value)> = match answer {
        Value::Array(items) => items
            .chunks(2)
            .filter_map(|pair| match pair {
                [k, v] => Some((k, v)),
                _ => None,
            })
            .collect(),
        Value::Map(entries) => entries.iter().map(|(k, v)| (k, v)).collect(),
        _ => return None,
    };
    pairs.into_iter().find_map(|(k, v)| match (k, v) {
        (Value::BulkString(name), Value::Int(n)) if name.as_slice() == channel.as_bytes() => {
            usize::try_from(*n).ok()
        }
        _ => None,
    })
}

/// Resolves once a health-check `PING` (sent every [`HEALTH_CHECK_INTERVAL`]) failed or got no
/// answer within [`HEALTH_CHECK_TIMEOUT`].
async fn health_check<F, Fut>(mut ping: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = redis::RedisResult<()>>,
{
    loop {
        tokio::time::sleep(HEALTH_CHECK_INTERVAL).await;
        match tokio::time::timeout(HEALTH_CHECK_TIMEOUT, ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                warn!(error = %e, "redis adapter: subscriber health check failed, reconnecting");
                return;
            }
            Err(_) => {
                warn!("redis adapter: subscriber connection does not answer PING, reconnecting");
                return;
            }
        }
    }
}

async fn run_subscriber(hub: Weak<Hub>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let client = match hub.upgrade().map(|h| h.target.clone()) {
            Some(Target::Single(client)) => client,
            _ => return,
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
        // In RESP2 subscribe mode `PING` is answered `["pong", ""]`, which the sink takes as
        // the command's reply.
        let pinger = sink.clone();
        let health = health_check(move || {
            let mut sink = pinger.clone();
            async move { sink.ping::<Value>().await.map(drop) }
        });
        tokio::pin!(health);
        loop {
            tokio::select! {
                msg = stream.next() => {
                    let Some(msg) = msg else {
                        warn!("redis adapter: subscriber connection lost, reconnecting");
                        break;
                    };
                    let Some(h) = hub.upgrade() else {
                        return;
                    };
                    backoff = Duration::from_millis(100);
                    h.dispatch(msg);
                }
                () = &mut health => break,
            }
        }
        if let Some(h) = hub.upgrade() {
            h.disconnected();
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Takes the pushes of the sharded subscriber's connection as the Redis client reads them: each
/// `smessage` goes to its listener at once, in the client's reading task, so nothing queues
/// between the socket and the listeners (a burst is read no faster than it is handled, and
/// the client reads no further meanwhile). A lost connection, or the client dropping this
/// handler, wakes `lost`.
struct PushHandler {
    hub: Weak<Hub>,
    lost: Arc<LostSignal>,
}

/// Wakes the sharded subscriber when its connection is gone: on a `Disconnection` push of a
/// single connection, and when the Redis client drops the last [`PushHandler`].
struct LostSignal {
    notify: Notify,
    /// Whether `Disconnection` pushes count (a single connection; the cluster client replaces
    /// a node's connection by itself).
    single: bool,
}

impl PushHandler {
    fn new(hub: Weak<Hub>, single: bool) -> PushHandler {
        PushHandler {
            hub,
            lost: Arc::new(LostSignal {
                notify: Notify::new(),
                single,
            }),
        }
    }

    fn handle(&self, push: PushInfo) -> Result<(), ()> {
        match push.kind {
            PushKind::SMessage => match self.hub.upgrade() {
                Some(hub) => hub.dispatch_push(&push),
                None => return Err(()),
            },
            PushKind::Disconnection if self.lost.single => self.lost.notify.notify_one(),
            _ => {}
        }
        Ok(())
    }
}

impl redis::aio::AsyncPushSender for PushHandler {
    fn send(&self, info: PushInfo) -> Result<(), redis::aio::SendError> {
        self.handle(info).map_err(|()| redis::aio::SendError)
    }
}

impl Drop for PushHandler {
    fn drop(&mut self) {
        // The client let go of its connection (the subscriber may be waiting on it).
        self.lost.notify.notify_one();
    }
}

/// A sharded subscriber connection (RESP3, pushes handed to a [`PushHandler`]).
#[derive(Clone)]
enum ShardConn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ShardConn {
    async fn connect(target: &Target, pushes: PushHandler) -> redis::RedisResult<ShardConn> {
        match target {
            Target::Single(client) => {
                let info = client.get_connection_info().clone();
                let settings = info
                    .redis_settings()
                    .clone()
                    .set_protocol(redis::ProtocolVersion::RESP3);
                let client = redis::Client::open(info.set_redis_settings(settings))?;
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_push_sender(pushes);
                let conn = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                Ok(ShardConn::Single(conn))
            }
            Target::Cluster(nodes) => {
                let client = cluster_client(nodes, Some(pushes))?;
                Ok(ShardConn::Cluster(client.get_async_connection().await?))
            }
        }
    }

    /// `SSUBSCRIBE` (or `SUNSUBSCRIBE`) each of `channels`, one channel per command: each may
    /// belong to another shard, and a single Redis answers each with one confirmation.
    async fn apply(&mut self, subscribe: bool, channels: &[String]) -> redis::RedisResult<()> {
        if channels.is_empty() {
            return Ok(());
        }
        match self {
            ShardConn::Single(conn) => {
                let command = if subscribe {
                    "SSUBSCRIBE"
                } else {
                    "SUNSUBSCRIBE"
                };
                let mut pipe = redis::pipe();
                for channel in channels {
                    pipe.cmd(command).arg(channel);
                }
                pipe.query_async::<Value>(conn).await.map(drop)
            }
            ShardConn::Cluster(conn) => {
                for channel in channels {
                    if subscribe {
                        conn.ssubscribe(channel).await?;
                    } else {
                        conn.sunsubscribe(channel).await?;
                    }
                }
                Ok(())
            }
        }
    }

    /// One `PING` (to every master of a cluster).
    async fn ping(mut self) -> redis::RedisResult<()> {
        match &mut self {
            ShardConn::Single(conn) => redis::cmd("PING").query_async::<Value>(conn).await,
            ShardConn::Cluster(conn) => {
                conn.route_command(
                    redis::cmd("PING"),
                    RoutingInfo::MultiNode((
                        MultipleNodeRoutingInfo::AllMasters,
                        Some(ResponsePolicy::AllSucceeded),
                    )),
                )
                .await
            }
        }
        .map(drop)
    }
}

/// The sharded subscriber: subscribes to every registered channel on a new connection, sends
/// the (un)subscriptions queued meanwhile in order, hands the messages to their listeners, and
/// connects again when the connection is lost or fails its health check. Runs until the hub is
/// gone or closed.
async fn run_sharded_subscriber(hub: Weak<Hub>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(target) = hub.upgrade().map(|h| h.target.clone()) else {
            return;
        };
        let single = matches!(target, Target::Single(_));
        let handler = PushHandler::new(hub.clone(), single);
        let lost = handler.lost.clone();
        let connecting = ShardConn::connect(&target, handler);
        let mut conn =
            match tokio::time::timeout(CONNECT_TIMEOUT + RESPONSE_TIMEOUT, connecting).await {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => {
                    debug!(error = %e, "redis adapter: sharded subscriber cannot connect");
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
        let (ops_tx, mut ops) = mpsc::unbounded_channel();
        let Some(channels) = hub.upgrade().map(|h| h.sharded_connected(ops_tx)) else {
            return;
        };
        if let Err(e) = conn.apply(true, &channels).await {
            warn!(error = %e, "redis adapter: subscribing failed, reconnecting");
            if let Some(h) = hub.upgrade() {
                h.disconnected();
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
            continue;
        }
        debug!("redis adapter: sharded subscriber connected");
        backoff = Duration::from_millis(100);
        let pinger = conn.clone();
        let health = health_check(move || pinger.clone().ping());
        tokio::pin!(health);
        loop {
            tokio::select! {
                // Messages go to their listeners from the client's reading task (`PushHandler`);
                // this task learns only of a lost connection.
                () = lost.notify.notified() => {
                    warn!("redis adapter: sharded subscriber connection lost, reconnecting");
                    break;
                }
                op = ops.recv() => {
                    let Some((subscribe, channels)) = op else { break };
                    if let Err(e) = conn.apply(subscribe, &channels).await {
                        if commands::is_connection_error(&e) {
                            warn!(error = %e, "redis adapter: (un)subscribing failed, reconnecting");
                            break;
                        }
                        warn!(error = %e, "redis adapter: (un)subscribing refused");
                    }
                }
                () = &mut health => break,
            }
        }
        if let Some(h) = hub.upgrade() {
            h.disconnected();
        }
        drop(conn);
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
///
/// On a Redis Cluster each publish goes to the shard of its channel, one after the other.
async fn run_publisher(
    commands: Arc<Commands>,
    mut queue: mpsc::Receiver<(String, Bytes)>,
    command: &'static str,
) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    while queue.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        match commands.as_ref() {
            Commands::Single(commands) => publish_single(commands, &batch, command).await,
            Commands::Cluster(conn) => {
                let mut conn = conn.clone();
                for (channel, payload) in &batch {
                    let result: redis::RedisResult<()> = redis::cmd(command)
                        .arg(channel)
                        .arg(payload.as_ref())
                        .query_async(&mut conn)
                        .await;
                    if let Err(e) = result {
                        warn!(error = %e, "redis adapter: publish failed, message dropped");
                    }
                }
            }
        }
        batch.clear();
    }
}

async fn publish_single(commands: &CommandConn, batch: &[(String, Bytes)], command: &str) {
    let mut pipe = redis::pipe();
    for (channel, payload) in batch {
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
}

/// `(channel, payload)` of an `smessage` push (its data: channel, payload).
fn smessage(data: &[Value]) -> Option<(String, &[u8])> {
    match data {
        [Value::BulkString(channel), Value::BulkString(payload)]
        | [_, Value::BulkString(channel), Value::BulkString(payload)] => Some((
            String::from_utf8_lossy(channel).into_owned(),
            payload.as_slice(),
        )),
        _ => None,
    }
}
