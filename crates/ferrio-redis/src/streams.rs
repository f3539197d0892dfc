//! The Redis streams adapter, wire-compatible with npm `@socket.io/redis-streams-adapter` 0.3,
//! with connection state recovery across the nodes of a cluster.
//!
//! Broadcasts without ack, `sockets_join`, `sockets_leave` and `disconnect_sockets` are appended
//! to a Redis stream (`XADD <stream> MAXLEN ~ <max_len> * uid .. nsp .. type .. data ..`) that
//! every node reads with one dedicated connection per stream (`XREAD ... BLOCK`). The requests
//! that wait for answers (broadcasts with ack, server-side emits, `fetch_sockets`) and the
//! answers go over pub/sub: `<prefix>#<nsp>#` and `<prefix>#<nsp>#<uid>#`, in the reference's
//! msgpack. The server count is the number of subscribers of `<prefix>#<nsp>#`.
//!
//! Because the stream keeps the broadcasts in order, it is also the cluster's log for
//! connection state recovery: an event's offset is its stream entry id, a disconnected socket's
//! session is kept under `<session_key_prefix><pid>` (base64 msgpack, expiring with the
//! recovery window), and a client that reconnects to any node gets its id, rooms, data and the
//! events it missed.
//!
//! ```no_run
//! use ferrio_redis::streams::{StreamsRedisAdapter, StreamsRedisAdapterConfig};
//! use ferrio_server::Ferrio;
//!
//! # async fn run() -> Result<(), ferrio_redis::RedisError> {
//! let config = StreamsRedisAdapterConfig {
//!     stream_name: "chat-events".to_owned(),
//!     ..StreamsRedisAdapterConfig::default()
//! };
//! let adapter = StreamsRedisAdapter::with_config("redis://127.0.0.1:6379/", config).await?;
//! let io = Ferrio::builder().adapter(adapter.clone()).build();
//! io.of("/").on_connection(|socket| async move {
//!     // Reaches the sockets of every server of the cluster, through the stream.
//!     let _ = socket.broadcast().emit("joined", &(socket.id(),));
//! });
//! // ... serve, and at the end:
//! adapter.close();
//! # Ok(())
//! # }
//! ```
//!
//! # Connection state recovery across the cluster
//!
//! Turn recovery on in the server ([`ferrio_server::FerrioBuilder::connection_state_recovery`])
//! on every node (Ferrio or Node, with the same stream, channel prefix and session key prefix):
//! a client whose connection is lost can reconnect to any node within the window.
//!
//! ```no_run
//! use std::time::Duration;
//! use ferrio_redis::streams::StreamsRedisAdapter;
//! use ferrio_server::{Ferrio, RecoveryConfig};
//!
//! # async fn run() -> Result<(), ferrio_redis::RedisError> {
//! let adapter = StreamsRedisAdapter::connect("redis://127.0.0.1:6379/").await?;
//! let io = Ferrio::builder()
//!     .adapter(adapter)
//!     .connection_state_recovery(RecoveryConfig {
//!         max_disconnection_duration: Duration::from_secs(120),
//!         ..RecoveryConfig::default()
//!     })
//!     .build();
//! io.of("/").on_connection(|socket| async move {
//!     if socket.recovered() {
//!         // Same id, rooms and shared data as before; the missed events were sent.
//!     }
//! });
//! # Ok(())
//! # }
//! ```
//!
//! Needs Redis 6.2 or later (exclusive `XRANGE` ranges). Sessions that do not decode, malformed
//! offsets and entries that cannot be read are skipped (logged): the client then starts afresh.
//!
//! ## What is and is not recoverable
//!
//! A client gets its socket id, rooms, shared data
//! ([`Socket::set_shared_data`](ferrio_server::Socket::set_shared_data)) and the events it
//! missed when all of these hold:
//!
//! - its connection was lost, not ended on purpose: the transport closed or failed, a ping
//!   timed out, or the server shut down. A disconnection the client or the server asked for ends
//!   the session (it is deleted);
//! - it reconnects within the window (`max_disconnection_duration`), to any node of the cluster,
//!   Ferrio or Node;
//! - it has an offset, that is it received at least one event kept for recovery (as in the
//!   reference, a client with none starts afresh), and that event is still in the stream
//!   (`max_len` trims the oldest);
//! - nobody recovered that session before (a restore takes it).
//!
//! The events given back are those of its namespace sent to every socket or to one of its rooms,
//! not excepting them, and not volatile nor asking for an ack (they cannot be replayed). Typed
//! data ([`Socket::insert_data`](ferrio_server::Socket::insert_data)) stays on the server that
//! had it: only the shared data travels.
//!
//! **When a node dies.** The reference saves a session only when its socket disconnects, so
//! the clients of a node that crashes, is killed or loses its host cannot recover anywhere.
//! Ferrio also saves the session of every connected socket when it connects and then every half
//! window, valid for two windows: the clients of a Ferrio node that dies recover on any other
//! node, Ferrio or Node (the key is the one the reference reads), with the rooms and data of the
//! last save; rooms joined or left after it are not, and events sent to a room joined after it
//! are not given back. A client whose node has not yet noticed that its connection is gone can
//! recover elsewhere from that save at once; when the old node notices, it saves the session
//! again, so a later recovery with the same private id gets the rooms that node knew.

//! # When Redis is down
//!
//! Local delivery goes on. Each stream's reader connects again by itself and goes on from the
//! last entry it read, so the entries other nodes appended while this node could not reach
//! Redis are delivered once it can (as long as the stream still holds them: `max_len`). What this
//! node writes while Redis cannot be reached is lost for the other nodes (and broadcasts kept
//! for recovery then go to the local clients without an offset).

mod ns;
pub(crate) mod wire;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use ferrio_server::{Adapter, LocalNamespace, NamespaceAdapter};
use redis::AsyncConnectionConfig;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::commands::CommandConn;
use crate::hub::{self, Hub};
use crate::RedisError;

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long Redis may take to answer a command (past it the connection is replaced).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Writes waiting for Redis; past it (Redis slow or down for long) the further cluster messages
/// are dropped with a warning (a broadcast kept for recovery is still delivered locally).
const WRITE_QUEUE: usize = 4096;

/// Most writes sent in one pipeline.
const WRITE_BATCH: usize = 256;

/// The adapter's options, with the reference's names and defaults.
#[derive(Debug, Clone)]
pub struct StreamsRedisAdapterConfig {
    /// The stream (`streamName`, default `socket.io`); with several streams, their common
    /// prefix (`<stream_name>-<n>`).
    pub stream_name: String,
    /// How many streams the namespaces are spread over (`streamCount`, default 1): a namespace
    /// uses stream `hashCode(nsp) % stream_count`, which may be negative as in JavaScript.
    pub stream_count: u32,
    /// The prefix of the pub/sub channels (`channelPrefix`, default `socket.io`).
    pub channel_prefix: String,
    /// The stream's approximate maximum length (`maxLen`, default 10 000): `XADD ... MAXLEN ~`.
    pub max_len: u64,
    /// How many entries one `XREAD` (or one restore `XRANGE`) fetches (`readCount`, default 100).
    pub read_count: u64,
    /// How long one `XREAD` blocks waiting for entries (`blockTimeInMs`, default 5 s).
    pub block_time: Duration,
    /// The prefix of the keys that hold the recovery sessions (`sessionKeyPrefix`, default
    /// `sio:session:`).
    pub session_key_prefix: String,
    /// How long to wait for the other servers' answers (default 5 s).
    pub requests_timeout: Duration,
    /// Write every entry's data as JSON, even with binary in it, a binary becoming
    /// `{"type":"Buffer","data":[...]}` as `JSON.stringify` writes a Node `Buffer`
    /// (`onlyPlaintext`, default false: data with binary goes as base64 msgpack).
    pub only_plaintext: bool,
}

impl Default for StreamsRedisAdapterConfig {
    fn default() -> Self {
        StreamsRedisAdapterConfig {
            stream_name: "socket.io".to_owned(),
            stream_count: 1,
            channel_prefix: "socket.io".to_owned(),
            max_len: 10_000,
            read_count: 100,
            block_time: Duration::from_millis(5000),
            session_key_prefix: "sio:session:".to_owned(),
            requests_timeout: Duration::from_secs(5),
            only_plaintext: false,
        }
    }
}

/// The Redis streams adapter (`@socket.io/redis-streams-adapter` 0.3): give it to
/// [`ferrio_server::FerrioBuilder::adapter`]. Cheap to clone; every clone shares the
/// connections. See the [module documentation](self).
#[derive(Clone)]
pub struct StreamsRedisAdapter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for StreamsRedisAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamsRedisAdapter")
            .field("config", &self.shared.config)
            .finish()
    }
}

impl StreamsRedisAdapter {
    /// Connects to the Redis at `url` (`redis://host:port/`) with the default options. Must be
    /// called inside a tokio runtime.
    pub async fn connect(url: &str) -> Result<StreamsRedisAdapter, RedisError> {
        StreamsRedisAdapter::with_config(url, StreamsRedisAdapterConfig::default()).await
    }

    /// Connects to the Redis at `url` with `config`.
    pub async fn with_config(
        url: &str,
        config: StreamsRedisAdapterConfig,
    ) -> Result<StreamsRedisAdapter, RedisError> {
        let client = redis::Client::open(url)?;
        let hub = Hub::start(client.clone(), hub::Mode::Classic).await?;
        let commands = Arc::new(
            CommandConn::connect(client.clone(), CONNECT_TIMEOUT, RESPONSE_TIMEOUT).await?,
        );
        let (writes, queue) = mpsc::channel(WRITE_QUEUE);
        let writer = tokio::spawn(run_writer(commands.clone(), queue, config.max_len));
        // The configured streams are read from their current end, as of now: every entry
        // appended once this returns is delivered.
        let names: Vec<String> = if config.stream_count <= 1 {
            vec![config.stream_name.clone()]
        } else {
            (0..config.stream_count)
                .map(|i| format!("{}-{i}", config.stream_name))
                .collect()
        };
        let mut starts = Vec::with_capacity(names.len());
        {
            let checkout = commands.get().await?;
            let mut conn = checkout.conn.clone();
            for name in names {
                let start = match last_id(&mut conn, &name).await {
                    Ok(start) => Some(start),
                    Err(e) if crate::commands::is_connection_error(&e) => {
                        checkout.failed(&e);
                        return Err(e);
                    }
                    // Redis refused (the key is not a stream): the reader retries and reports.
                    Err(e) => {
                        warn!(error = %e, stream = name, "redis streams adapter: cannot read the stream's end");
                        None
                    }
                };
                starts.push((name, start));
            }
        }
        let shared = Arc::new(Shared {
            hub,
            client,
            commands,
            writes,
            config,
            runtime: tokio::runtime::Handle::current(),
            streams: Mutex::new(HashMap::new()),
            tasks: Mutex::new(vec![writer]),
            closed: AtomicBool::new(false),
        });
        for (name, start) in starts {
            shared.start_reader(name, start);
        }
        Ok(StreamsRedisAdapter { shared })
    }

    /// Leaves the cluster: stops the stream readers, the subscriber and the writer (the other
    /// servers stop counting this one).
    pub fn close(&self) {
        self.shared.close();
    }
}

impl Adapter for StreamsRedisAdapter {
    fn namespace(&self, local: LocalNamespace) -> Arc<dyn NamespaceAdapter> {
        Arc::new(ns::Handle(ns::StreamsNs::start(self.shared.clone(), local)))
    }
}

/// One write to Redis, sent in order with the others.
pub(crate) enum Write {
    /// `XADD <stream> MAXLEN ~ <max_len> * <fields>`; `then` gets the entry id (None if the
    /// write failed).
    Append {
        stream: String,
        fields: Vec<(&'static str, Vec<u8>)>,
        then: Option<Box<dyn FnOnce(Option<String>) + Send>>,
    },
    /// `PUBLISH <channel> <payload>`.
    Publish { channel: String, payload: Bytes },
    /// `SET <key> <value> PX <ttl_ms>`.
    Set {
        key: String,
        value: String,
        ttl_ms: u64,
    },
    /// `DEL <key>`.
    Del { key: String },
    /// No command: runs in order with the callbacks of the appends around it.
    Deliver(Box<dyn FnOnce() + Send>),
}

/// A stream's reader and the namespaces it feeds.
struct StreamReader {
    namespaces: HashMap<String, Weak<ns::StreamsNs>>,
    task: JoinHandle<()>,
}

/// What the clones of an adapter and its namespaces share.
pub(crate) struct Shared {
    hub: Arc<Hub>,
    client: redis::Client,
    /// The ordered writes' connection, also used for the restore queries.
    commands: Arc<CommandConn>,
    writes: mpsc::Sender<Write>,
    config: StreamsRedisAdapterConfig,
    runtime: tokio::runtime::Handle,
    /// Stream name → its reader.
    streams: Mutex<HashMap<String, StreamReader>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    closed: AtomicBool,
}

impl Shared {
    /// Queues `write` (never blocks). If the queue is full, a broadcast kept for recovery is
    /// handed back without offset (it is still delivered locally).
    pub(crate) fn write(&self, write: Write) {
        if let Err(e) = self.writes.try_send(write) {
            warn!("redis streams adapter: write queue full or closed, cluster message dropped");
            let write = match e {
                mpsc::error::TrySendError::Full(w) | mpsc::error::TrySendError::Closed(w) => w,
            };
            if let Write::Append {
                then: Some(then), ..
            } = write
            {
                // Not from here: the caller may hold the namespace's lock.
                self.runtime.spawn(async move { then(None) });
            }
        }
    }

    /// Starts reading `stream` after entry `start` (its current end if `None`).
    fn start_reader(self: &Arc<Self>, stream: String, start: Option<String>) {
        let Ok(mut streams) = self.streams.lock() else {
            return;
        };
        let task = self.runtime.spawn(run_reader(
            Arc::downgrade(self),
            self.client.clone(),
            stream.clone(),
            start,
        ));
        streams.insert(
            stream,
            StreamReader {
                namespaces: HashMap::new(),
                task,
            },
        );
    }

    /// Feeds the entries of `stream` for namespace `nsp` to `ns`, starting the stream's reader
    /// if it has none yet (a stream outside the configured ones: a negative index).
    fn attach(self: &Arc<Self>, stream: &str, nsp: &str, ns: Weak<ns::StreamsNs>) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let known = self
            .streams
            .lock()
            .is_ok_and(|streams| streams.contains_key(stream));
        if !known {
            // Its end cannot be asked for without waiting: it is read from the entries of the
            // last millisecond on (entry ids start with the Redis server's clock in ms), so
            // that what other nodes append once this namespace exists is not missed.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                .unwrap_or(0);
            self.start_reader(
                stream.to_owned(),
                Some(format!("{}-0", now.saturating_sub(1))),
            );
        }
        if let Ok(mut streams) = self.streams.lock() {
            if let Some(reader) = streams.get_mut(stream) {
                reader.namespaces.insert(nsp.to_owned(), ns);
            }
        }
    }

    /// The namespace adapter `nsp` of `stream`, if alive.
    fn namespace(&self, stream: &str, nsp: &str) -> Option<Arc<ns::StreamsNs>> {
        self.streams
            .lock()
            .ok()?
            .get(stream)?
            .namespaces
            .get(nsp)?
            .upgrade()
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        if let Ok(mut streams) = self.streams.lock() {
            for (_, reader) in streams.drain() {
                reader.task.abort();
            }
        }
        if let Ok(mut tasks) = self.tasks.lock() {
            for task in tasks.drain(..) {
                task.abort();
            }
        }
        self.hub.close();
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.close();
    }
}

/// Writes the queued commands in order: whatever is waiting goes out as one pipeline. A
/// pipeline whose write failed is not sent again (Redis may have received it); the recovery
/// broadcasts in it are then delivered locally without offset.
async fn run_writer(commands: Arc<CommandConn>, mut queue: mpsc::Receiver<Write>, max_len: u64) {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    while queue.recv_many(&mut batch, WRITE_BATCH).await > 0 {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for write in &batch {
            match write {
                Write::Append { stream, fields, .. } => {
                    let cmd = pipe
                        .cmd("XADD")
                        .arg(stream)
                        .arg("MAXLEN")
                        .arg("~")
                        .arg(max_len)
                        .arg("*");
                    for (name, value) in fields {
                        cmd.arg(*name).arg(value.as_slice());
                    }
                }
                Write::Publish { channel, payload } => {
                    pipe.cmd("PUBLISH").arg(channel).arg(payload.as_ref());
                }
                Write::Set { key, value, ttl_ms } => {
                    pipe.cmd("SET")
                        .arg(key)
                        .arg(value)
                        .arg("PX")
                        .arg((*ttl_ms).max(1));
                }
                Write::Del { key } => {
                    pipe.cmd("DEL").arg(key);
                }
                Write::Deliver(_) => {}
            }
        }
        let commands_in_batch = batch.iter().any(|w| !matches!(w, Write::Deliver(_)));
        let results: Vec<redis::RedisResult<redis::Value>> = if !commands_in_batch {
            Vec::new()
        } else {
            match commands.get().await {
                Ok(checkout) => {
                    let mut conn = checkout.conn.clone();
                    match pipe.query_async(&mut conn).await {
                        Ok(results) => results,
                        Err(e) => {
                            checkout.failed(&e);
                            warn!(error = %e, count = batch.len(), "redis streams adapter: write failed, cluster messages dropped");
                            Vec::new()
                        }
                    }
                }
                Err(e) => {
                    warn!(error = %e, count = batch.len(), "redis streams adapter: redis unreachable, cluster messages dropped");
                    Vec::new()
                }
            }
        };
        let mut results = results.into_iter();
        for write in batch.drain(..) {
            if let Write::Deliver(deliver) = write {
                deliver();
                continue;
            }
            let result = results.next();
            let Write::Append { then, .. } = write else {
                if let Some(Err(e)) = result {
                    warn!(error = %e, "redis streams adapter: redis refused a write");
                }
                continue;
            };
            let id = match result {
                Some(Ok(redis::Value::BulkString(id))) => String::from_utf8(id).ok(),
                Some(Ok(redis::Value::SimpleString(id))) => Some(id),
                Some(Err(e)) => {
                    warn!(error = %e, "redis streams adapter: redis refused an XADD");
                    None
                }
                _ => None,
            };
            if let Some(then) = then {
                then(id);
            }
        }
    }
}

/// The last entry id of `stream` ("0-0" if it is empty): where a new reader starts, as `$`
/// would, but a known id to go on from if the connection drops before the first entry, and
/// known before the adapter is handed out (no entry appended after that is missed).
async fn last_id(
    conn: &mut redis::aio::MultiplexedConnection,
    stream: &str,
) -> redis::RedisResult<String> {
    let reply: redis::Value = redis::cmd("XREVRANGE")
        .arg(stream)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await?;
    Ok(wire::parse_entries(&reply)
        .into_iter()
        .next()
        .map(|(id, _)| id)
        .unwrap_or_else(|| "0-0".to_owned()))
}

/// Reads `stream` for as long as the adapter lives: `XREAD COUNT <read_count> BLOCK <block>
/// STREAMS <stream> <last id>` on a connection of its own, connecting again (with backoff) when
/// it fails and going on from the last entry read.
async fn run_reader(
    shared: Weak<Shared>,
    client: redis::Client,
    stream: String,
    start: Option<String>,
) {
    let Some((read_count, block_time)) = shared
        .upgrade()
        .map(|s| (s.config.read_count.max(1), s.config.block_time))
    else {
        return;
    };
    let block_ms = u64::try_from(block_time.as_millis()).unwrap_or(u64::MAX);
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(block_time + RESPONSE_TIMEOUT));
    let mut last: Option<String> = start;
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut conn = match client
            .get_multiplexed_async_connection_with_config(&config)
            .await
        {
            Ok(conn) => conn,
            Err(e) => {
                debug!(error = %e, stream, "redis streams adapter: reader cannot connect");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        if last.is_none() {
            match last_id(&mut conn, &stream).await {
                Ok(id) => last = Some(id),
                Err(e) => {
                    debug!(error = %e, stream, "redis streams adapter: reader cannot start");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            }
        }
        debug!(stream, "redis streams adapter: reader connected");
        loop {
            let from = last.clone().unwrap_or_else(|| "$".to_owned());
            let reply: redis::RedisResult<redis::Value> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(read_count)
                .arg("BLOCK")
                .arg(block_ms)
                .arg("STREAMS")
                .arg(&stream)
                .arg(&from)
                .query_async(&mut conn)
                .await;
            let reply = match reply {
                Ok(reply) => reply,
                Err(e) if crate::commands::is_connection_error(&e) => {
                    warn!(error = %e, stream, "redis streams adapter: reader connection lost, reconnecting");
                    break;
                }
                Err(e) => {
                    // Redis refused (e.g. the key is not a stream): try again later.
                    warn!(error = %e, stream, "redis streams adapter: XREAD failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            let Some(shared) = shared.upgrade() else {
                return;
            };
            if shared.closed.load(Ordering::Acquire) {
                return;
            }
            for (id, fields) in wire::parse_xread(&reply) {
                dispatch(&shared, &stream, &id, &fields);
                last = Some(id);
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Hands one entry to its namespace; malformed or foreign entries are skipped.
fn dispatch(shared: &Shared, stream: &str, id: &str, fields: &[(Vec<u8>, Vec<u8>)]) {
    let message = match wire::decode_entry(fields) {
        Ok(message) => message,
        Err(e) => {
            return debug!(error = %e, stream, id, "redis streams adapter: entry skipped");
        }
    };
    if let Some(ns) = shared.namespace(stream, &message.nsp) {
        ns.on_message(message, Some(id));
    }
}
