//! # ferrio-redis
//!
//! Cluster adapters for [`ferrio_server`] over Redis (classic and sharded pub/sub, streams) and
//! emitters. The classic one is wire-compatible with the classic
//! adapter of Node's `@socket.io/redis-adapter` 8.x (`createAdapter`): the same channels
//! (`socket.io#<nsp>#[<room>#]`, `socket.io-request#<nsp>#`, `socket.io-response#<nsp>#`), the
//! same msgpack broadcasts (binary inline, as notepack.io writes them), the same JSON and msgpack
//! requests and responses, one node uid per namespace. Ferrio and Node servers can share one
//! cluster: broadcasts (to rooms, with `except`, with acks), `fetch_sockets`, `sockets_join`,
//! `sockets_leave`, `disconnect_sockets`, server-side events (with acks) and the server count
//! work across both.
//!
//! ```no_run
//! use ferrio_redis::RedisAdapter;
//! use ferrio_server::Ferrio;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let adapter = RedisAdapter::connect("redis://127.0.0.1:6379/").await?;
//! let io = Ferrio::builder().adapter(adapter).build();
//! io.of("/").on_connection(|socket| async move {
//!     // Reaches the sockets of every server of the cluster.
//!     let _ = socket.broadcast().emit("joined", &(socket.id(),));
//! });
//! io.serve(tokio::net::TcpListener::bind("127.0.0.1:3000").await?).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # When Redis is down
//!
//! Local delivery goes on. The connections reconnect by themselves (the subscriber subscribes
//! again); messages published while Redis cannot be reached are dropped (at most
//! [`hub::PUBLISH_QUEUE`] wait), and the operations that wait for other servers
//! (`fetch_sockets`, `server_count`, acks, server-side emits with ack) fail with an
//! [`AdapterError`](ferrio_server::AdapterError) within the request timeout.
//!
//! Once Redis is back nothing more is lost: a connection Redis closed is known closed at once,
//! and the next message connects again before it is written (it is not written on the dead
//! connection first). A message whose write failed is not sent again (Redis may have received
//! it: it would reach the clients twice). A connection that dies without Redis closing it (a
//! network or host gone, no close received) is noticed later: a publish or query on it fails by
//! the response timeout (5 s) and the next one connects again. The subscriber connections,
//! which otherwise only read, send a `PING` every [`hub::HEALTH_CHECK_INTERVAL`] (5 s): one not
//! answered within [`hub::HEALTH_CHECK_TIMEOUT`] (5 s) makes the subscriber drop the connection,
//! connect again and subscribe to everything again. So a subscriber cut off silently is replaced
//! within about 10 s after the cut (plus the time to connect); messages published meanwhile do
//! not reach this server's clients.
//!
//! On a Redis Cluster the connections to the nodes are the Redis client's cluster connections:
//! it reconnects a node's connection and subscribes again by itself (a node restarted, slots
//! moved), with the same 5 s response timeout; the health-check pings go to every master. That
//! the first messages after a node's restart are not lost is only guaranteed on a single Redis.
//!
//! # The sharded variant
//!
//! [`ShardedRedisAdapter`] speaks the protocol of `createShardedAdapter` (Redis 7 sharded
//! pub/sub, `SPUBLISH`/`SSUBSCRIBE`): the reference's `ClusterAdapter` messages, JSON or msgpack
//! when they carry binary, a channel per public room in the default [`SubscriptionMode`]. It
//! runs on a single Redis ([`ShardedRedisAdapter::connect`]) or on a Redis Cluster
//! ([`ShardedRedisAdapter::connect_cluster`]), where each channel is subscribed to and published
//! on at the shard that owns its slot.
//!
//! # The streams variant
//!
//! [`StreamsRedisAdapter`] speaks the protocol of `@socket.io/redis-streams-adapter` 0.3:
//! broadcasts and room operations are entries of a Redis stream that every node reads from where
//! it left off, so a node cut off from Redis gets what was written meanwhile once it is back;
//! the requests that wait for answers go over pub/sub. The stream is also the cluster's log for
//! connection state recovery: a client recovers on any Ferrio or Node node of the cluster, and
//! on another node when its own died (see [`streams`] for what is and is not recoverable).
//!
//! # Emitters
//!
//! [`emitter::Emitter`] sends to the clients of a cluster from a process that runs no Socket.IO
//! server (a worker, a cron job), in the classic, sharded or streams format; the `emitter`
//! example is a command-line one.
//!
//! Not supported yet: a custom parser (msgpack is the reference's default), the classic and
//! streams adapters on a Redis Cluster (the streams adapter's `useShardedPubSub`).

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod cluster;
mod codec;
mod commands;
pub mod emitter;
#[doc(hidden)]
pub mod fuzzing;
pub mod hub;
mod node;
mod requests;
mod sharded;
pub mod streams;

use std::sync::Arc;
use std::time::Duration;

use ferrio_server::{Adapter, LocalNamespace, NamespaceAdapter};

pub use redis::RedisError;
pub use sharded::{ShardedRedisAdapterConfig, SubscriptionMode};
pub use streams::{StreamsRedisAdapter, StreamsRedisAdapterConfig};

/// The adapter's options, with the reference's defaults.
#[derive(Debug, Clone)]
pub struct RedisAdapterConfig {
    /// The channel prefix (`key`, default `socket.io`).
    pub key: String,
    /// How long to wait for the other servers' answers (`requestsTimeout`, default 5 s).
    pub requests_timeout: Duration,
    /// Answer requests on the requester's own response channel
    /// (`publishOnSpecificResponseChannel`, default false).
    pub publish_on_specific_response_channel: bool,
}

impl Default for RedisAdapterConfig {
    fn default() -> Self {
        RedisAdapterConfig {
            key: "socket.io".to_owned(),
            requests_timeout: Duration::from_secs(5),
            publish_on_specific_response_channel: false,
        }
    }
}

/// The Redis adapter: give it to [`ferrio_server::FerrioBuilder::adapter`]. Cheap to clone;
/// every clone shares the connections.
#[derive(Clone)]
pub struct RedisAdapter {
    hub: Arc<hub::Hub>,
    config: RedisAdapterConfig,
}

impl std::fmt::Debug for RedisAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAdapter")
            .field("config", &self.config)
            .finish()
    }
}

impl RedisAdapter {
    /// Connects to the Redis at `url` (`redis://host:port/`) with the default options. Must be
    /// called inside a tokio runtime.
    pub async fn connect(url: &str) -> Result<RedisAdapter, RedisError> {
        RedisAdapter::with_config(url, RedisAdapterConfig::default()).await
    }

    /// Connects to the Redis at `url` with `config`.
    pub async fn with_config(
        url: &str,
        config: RedisAdapterConfig,
    ) -> Result<RedisAdapter, RedisError> {
        let client = redis::Client::open(url)?;
        let hub = hub::Hub::start(client, hub::Mode::Classic).await?;
        Ok(RedisAdapter { hub, config })
    }

    /// Leaves the cluster: stops the subscriber and the publisher (the other servers stop
    /// counting this one).
    pub fn close(&self) {
        self.hub.close();
    }
}

impl Adapter for RedisAdapter {
    fn namespace(&self, local: LocalNamespace) -> Arc<dyn NamespaceAdapter> {
        Arc::new(node::Handle(node::NsAdapter::start(
            self.hub.clone(),
            local,
            self.config.clone(),
        )))
    }
}

/// The sharded Redis adapter (`createShardedAdapter`): give it to
/// [`ferrio_server::FerrioBuilder::adapter`]. Needs Redis 7 or later. Cheap to clone.
///
/// ```no_run
/// use ferrio_redis::ShardedRedisAdapter;
/// use ferrio_server::Ferrio;
///
/// # async fn run() -> Result<(), ferrio_redis::RedisError> {
/// let adapter = ShardedRedisAdapter::connect("redis://127.0.0.1:6379/").await?;
/// let io = Ferrio::builder().adapter(adapter).build();
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ShardedRedisAdapter {
    hub: Arc<hub::Hub>,
    config: ShardedRedisAdapterConfig,
}

impl std::fmt::Debug for ShardedRedisAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedRedisAdapter")
            .field("config", &self.config)
            .finish()
    }
}

impl ShardedRedisAdapter {
    /// Connects to the Redis at `url` with the default options. Must be called inside a
    /// tokio runtime.
    pub async fn connect(url: &str) -> Result<ShardedRedisAdapter, RedisError> {
        ShardedRedisAdapter::with_config(url, ShardedRedisAdapterConfig::default()).await
    }

    /// Connects to the Redis at `url` with `config`.
    pub async fn with_config(
        url: &str,
        config: ShardedRedisAdapterConfig,
    ) -> Result<ShardedRedisAdapter, RedisError> {
        let client = redis::Client::open(url)?;
        let hub = hub::Hub::start(client, hub::Mode::Sharded).await?;
        Ok(ShardedRedisAdapter { hub, config })
    }

    /// Connects to a Redis Cluster (7 or later) with the default options: `nodes` are the URLs
    /// (`redis://host:port/`) of some of its nodes, from which the others are found. Every
    /// channel is subscribed to (`SSUBSCRIBE`) and published on (`SPUBLISH`) at the shard that
    /// owns its slot, and the server count (`PUBSUB SHARDNUMSUB`) is summed over the nodes.
    /// Must be called inside a tokio runtime.
    ///
    /// ```no_run
    /// use ferrio_redis::ShardedRedisAdapter;
    /// use ferrio_server::Ferrio;
    ///
    /// # async fn run() -> Result<(), ferrio_redis::RedisError> {
    /// let adapter = ShardedRedisAdapter::connect_cluster(&[
    ///     "redis://10.0.0.1:7000/",
    ///     "redis://10.0.0.2:7000/",
    ///     "redis://10.0.0.3:7000/",
    /// ])
    /// .await?;
    /// let io = Ferrio::builder().adapter(adapter).build();
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect_cluster(nodes: &[&str]) -> Result<ShardedRedisAdapter, RedisError> {
        ShardedRedisAdapter::with_cluster_config(nodes, ShardedRedisAdapterConfig::default()).await
    }

    /// Connects to the Redis Cluster that `nodes` belong to, with `config` (see
    /// [`connect_cluster`](ShardedRedisAdapter::connect_cluster)).
    pub async fn with_cluster_config(
        nodes: &[&str],
        config: ShardedRedisAdapterConfig,
    ) -> Result<ShardedRedisAdapter, RedisError> {
        let nodes = nodes
            .iter()
            .map(|url| redis::IntoConnectionInfo::into_connection_info(*url))
            .collect::<Result<Vec<_>, _>>()?;
        let hub = hub::Hub::start_cluster(nodes).await?;
        Ok(ShardedRedisAdapter { hub, config })
    }

    /// Leaves the cluster: stops the subscriber and the publisher.
    pub fn close(&self) {
        self.hub.close();
    }
}

impl Adapter for ShardedRedisAdapter {
    fn namespace(&self, local: LocalNamespace) -> Arc<dyn NamespaceAdapter> {
        Arc::new(sharded::Handle(sharded::ShardedNs::start(
            self.hub.clone(),
            local,
            self.config.clone(),
        )))
    }
}

/// Randomness from the clock, for the unlikely case the OS generator fails (ids only need to
/// differ between nodes and pending requests).
fn fallback_random() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    now.as_nanos() as u64 ^ u64::from(std::process::id()).rotate_left(32)
}

/// A node or request id as the reference's `uid2(6)` makes them: 6 URL-safe characters.
fn uid() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = [0u8; 6];
    if getrandom::fill(&mut bytes).is_err() {
        let random = fallback_random();
        bytes = [0, 1, 2, 3, 4, 5].map(|i| (random >> (i * 8)) as u8);
    }
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 63)]))
        .collect()
}
