//! Emitters: send to the clients of a cluster from a process that runs no Socket.IO server (a
//! worker, a cron job, a command line tool).
//!
//! An [`Emitter`] writes the messages the cluster's adapter reads, with the sender id
//! `"emitter"`, as the reference emitters do, in one of three [`Format`]s:
//!
//! | [`Format`] | the servers run | written with |
//! |---|---|---|
//! | [`Format::Classic`] | [`RedisAdapter`](crate::RedisAdapter), Node's `createAdapter` of `@socket.io/redis-adapter` (what `@socket.io/redis-emitter` writes) | `PUBLISH` |
//! | [`Format::Sharded`] | [`ShardedRedisAdapter`](crate::ShardedRedisAdapter), Node's `createShardedAdapter` | `SPUBLISH` |
//! | [`Format::Streams`] | [`StreamsRedisAdapter`](crate::streams::StreamsRedisAdapter), Node's `@socket.io/redis-streams-adapter` 0.3 | `XADD` (server-side events: `PUBLISH`) |
//!
//! The format (and its prefix, key or stream name) must be the one the servers use: an emitter
//! writing another format reaches no one.
//!
//! ```no_run
//! use bytes::Bytes;
//! use ferrio_redis::emitter::{Emitter, Format};
//!
//! # async fn run() -> Result<(), ferrio_redis::emitter::EmitterError> {
//! let emitter = Emitter::connect("redis://127.0.0.1:6379/", Format::classic()).await?;
//! // Every client of namespace "/" on every server.
//! emitter.emit("news", &("hello", 1)).await?;
//! // The clients in room "admins" but not in room "muted", of namespace "/chat"; binary data
//! // (`Bytes`, anywhere in the arguments) reaches them as binary.
//! emitter
//!     .of("/chat")
//!     .to("admins")
//!     .except("muted")
//!     .emit("report", &(Bytes::from_static(b"\x01\x02"),))
//!     .await?;
//! // Room membership and disconnection, on every server.
//! emitter.to("room1").sockets_join("room2").await?;
//! emitter.to("banned").disconnect_sockets(true).await?;
//! // The servers' own listeners (`on_server_event` in Ferrio, `io.on(event)` in Node).
//! emitter.server_side_emit("reload", &("config",)).await?;
//! # Ok(())
//! # }
//! ```
//!
//! Every operation returns once Redis has the message; the servers deliver it to their clients
//! right after. Nothing waits for an answer from the servers: acknowledgements and
//! `fetch_sockets` need a server of the cluster.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ferrio_proto::socket::{event_json, is_reserved_event};
use ferrio_proto::Str;
use ferrio_server::IntoRooms;
use redis::RedisError;
use rmpv::Value as Mp;
use serde::Serialize;

use crate::cluster::{self, has_binary};
use crate::codec::{self, map, AsJson};
use crate::commands::CommandConn;
#[cfg(test)]
use crate::streams::wire::hash_code;
use crate::streams::wire::stream_name;
use crate::SubscriptionMode;

/// The sender id of every message an emitter writes (the reference's `EMITTER_UID`): servers
/// never take it for another server.
pub const EMITTER_UID: &str = "emitter";

/// Request types of the classic protocol.
mod classic_kind {
    pub const REMOTE_JOIN: u64 = 2;
    pub const REMOTE_LEAVE: u64 = 3;
    pub const REMOTE_DISCONNECT: u64 = 4;
    pub const SERVER_SIDE_EMIT: u64 = 6;
}

/// The classic format: the protocol of `createAdapter` (`@socket.io/redis-adapter`) and
/// `@socket.io/redis-emitter`, the one [`RedisAdapter`](crate::RedisAdapter) speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicFormat {
    /// The channel prefix (`key`, default `socket.io`).
    pub key: String,
}

impl Default for ClassicFormat {
    fn default() -> Self {
        ClassicFormat {
            key: "socket.io".to_owned(),
        }
    }
}

/// The sharded format: the protocol of `createShardedAdapter` (Redis 7 sharded pub/sub), the
/// one [`ShardedRedisAdapter`](crate::ShardedRedisAdapter) speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardedFormat {
    /// The channel prefix (`channelPrefix`, default `socket.io`).
    pub channel_prefix: String,
    /// The servers' `subscriptionMode` (default dynamic): which rooms have a channel of their
    /// own, that a broadcast to that one room is published on. It must be the servers' mode:
    /// with [`SubscriptionMode::Static`] servers listen on no room channel.
    pub subscription_mode: SubscriptionMode,
}

impl Default for ShardedFormat {
    fn default() -> Self {
        ShardedFormat {
            channel_prefix: "socket.io".to_owned(),
            subscription_mode: SubscriptionMode::Dynamic,
        }
    }
}

impl ShardedFormat {
    /// The channel of a broadcast to `rooms`: the room's own for one room that has a channel,
    /// the namespace's otherwise.
    fn broadcast_channel(&self, nsp: &str, rooms: &[Str]) -> String {
        let mut channel = format!("{}#{nsp}#", self.channel_prefix);
        if let [room] = rooms {
            let own = match self.subscription_mode {
                SubscriptionMode::Static => false,
                SubscriptionMode::Dynamic => !looks_like_a_socket_id(room),
                SubscriptionMode::DynamicPrivate => true,
            };
            if own {
                channel.push_str(room);
                channel.push('#');
            }
        }
        channel
    }
}

/// The streams format: the protocol of `@socket.io/redis-streams-adapter` 0.3. Broadcasts and
/// room operations are appended to the namespace's stream (so servers with connection state
/// recovery replay missed broadcasts to reconnecting clients); server-side events are published
/// on the namespace's channel, as the adapter itself sends them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamsFormat {
    /// The stream name (`streamName`, default `socket.io`).
    pub stream_name: String,
    /// How many streams the namespaces are spread over (`streamCount`, default 1). With more
    /// than one, namespace `nsp` goes to `<stream_name>-<i>`, `i` being the reference's
    /// `hashCode(nsp) % streamCount` (negative for some names, as in JavaScript). 0 counts as 1.
    ///
    /// Node's adapter (0.3.1) reads only the streams `0..stream_count`: its clients of a
    /// namespace whose index is negative get no broadcast from other servers or emitters
    /// (Ferrio's [`StreamsRedisAdapter`](crate::streams::StreamsRedisAdapter) reads them).
    pub stream_count: u32,
    /// The approximate maximum length of the stream (`maxLen`, default 10000; `MAXLEN ~`).
    pub max_len: u64,
    /// The channel prefix of the server-side events (`channelPrefix`, default `socket.io`).
    pub channel_prefix: String,
    /// Publish server-side events with `SPUBLISH` (`useShardedPubSub`, default false).
    pub use_sharded_pub_sub: bool,
}

impl Default for StreamsFormat {
    fn default() -> Self {
        StreamsFormat {
            stream_name: "socket.io".to_owned(),
            stream_count: 1,
            max_len: 10_000,
            channel_prefix: "socket.io".to_owned(),
            use_sharded_pub_sub: false,
        }
    }
}

impl StreamsFormat {
    /// The stream namespace `nsp` is written to.
    pub fn stream_for(&self, nsp: &str) -> String {
        stream_name(&self.stream_name, self.stream_count, nsp)
    }
}

/// What an [`Emitter`] writes: the protocol of the cluster's adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// `createAdapter` / [`RedisAdapter`](crate::RedisAdapter).
    Classic(ClassicFormat),
    /// `createShardedAdapter` / [`ShardedRedisAdapter`](crate::ShardedRedisAdapter).
    Sharded(ShardedFormat),
    /// `@socket.io/redis-streams-adapter` 0.3 /
    /// [`StreamsRedisAdapter`](crate::streams::StreamsRedisAdapter).
    Streams(StreamsFormat),
}

impl Format {
    /// The classic format with the default key `socket.io`.
    pub fn classic() -> Format {
        Format::Classic(ClassicFormat::default())
    }

    /// The sharded format with the default channel prefix `socket.io`.
    pub fn sharded() -> Format {
        Format::Sharded(ShardedFormat::default())
    }

    /// The streams format with the defaults (stream `socket.io`, one stream, `MAXLEN ~ 10000`).
    pub fn streams() -> Format {
        Format::Streams(StreamsFormat::default())
    }
}

impl Default for Format {
    /// The classic format, as `@socket.io/redis-emitter`.
    fn default() -> Self {
        Format::classic()
    }
}

/// The emitter's options.
#[derive(Debug, Clone)]
pub struct EmitterConfig {
    /// What to write (default: [`Format::classic`]).
    pub format: Format,
    /// How long connecting to Redis may take (default 5 s).
    pub connect_timeout: Duration,
    /// How long Redis may take to confirm a write (default 5 s).
    pub response_timeout: Duration,
}

impl Default for EmitterConfig {
    fn default() -> Self {
        EmitterConfig {
            format: Format::default(),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
        }
    }
}

/// Why an emitter operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum EmitterError {
    /// The event name is one Socket.IO reserves (`connect`, `connect_error`, `disconnect`,
    /// `disconnecting`, `newListener`, `removeListener`).
    ReservedEvent(String),
    /// The arguments could not be serialised (they must serialise as a sequence: a tuple).
    Serialize(serde_json::Error),
    /// Redis could not be reached or refused the write.
    Redis(RedisError),
}

impl fmt::Display for EmitterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmitterError::ReservedEvent(name) => write!(f, "\"{name}\" is a reserved event name"),
            EmitterError::Serialize(e) => write!(f, "cannot serialise the arguments: {e}"),
            EmitterError::Redis(e) => write!(f, "redis: {e}"),
        }
    }
}

impl std::error::Error for EmitterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EmitterError::ReservedEvent(_) => None,
            EmitterError::Serialize(e) => Some(e),
            EmitterError::Redis(e) => Some(e),
        }
    }
}

impl From<RedisError> for EmitterError {
    fn from(e: RedisError) -> Self {
        EmitterError::Redis(e)
    }
}

impl From<serde_json::Error> for EmitterError {
    fn from(e: serde_json::Error) -> Self {
        EmitterError::Serialize(e)
    }
}

/// Sends to the clients of a cluster without being one of its servers. Cheap to clone: every
/// clone (and every [`of`](Emitter::of)) shares one Redis connection, connected again on
/// demand if Redis closes it.
///
/// ```no_run
/// use ferrio_redis::emitter::{Emitter, EmitterConfig, Format, StreamsFormat};
///
/// # async fn run() -> Result<(), ferrio_redis::emitter::EmitterError> {
/// let format = Format::Streams(StreamsFormat {
///     stream_name: "my-app".to_owned(),
///     ..StreamsFormat::default()
/// });
/// let emitter = Emitter::connect("redis://127.0.0.1:6379/", format).await?;
/// emitter.volatile().emit("tick", &(42,)).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Emitter {
    shared: Arc<Shared>,
    nsp: Str,
}

struct Shared {
    conn: CommandConn,
    format: Format,
}

impl fmt::Debug for Emitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emitter")
            .field("format", &self.shared.format)
            .field("nsp", &self.nsp)
            .finish()
    }
}

impl Emitter {
    /// Connects to the Redis at `url` (`redis://host:port/`) to write `format`, for namespace
    /// `/`. Must be called inside a tokio runtime.
    pub async fn connect(url: &str, format: Format) -> Result<Emitter, EmitterError> {
        Emitter::with_config(
            url,
            EmitterConfig {
                format,
                ..EmitterConfig::default()
            },
        )
        .await
    }

    /// Connects to the Redis at `url` with `config`, for namespace `/`.
    pub async fn with_config(url: &str, config: EmitterConfig) -> Result<Emitter, EmitterError> {
        let client = redis::Client::open(url)?;
        let conn =
            CommandConn::connect(client, config.connect_timeout, config.response_timeout).await?;
        Ok(Emitter {
            shared: Arc::new(Shared {
                conn,
                format: config.format,
            }),
            nsp: Str::from_static("/"),
        })
    }

    /// The same emitter for namespace `nsp` (a leading `/` is added if missing).
    pub fn of(&self, nsp: &str) -> Emitter {
        let nsp = if nsp.starts_with('/') {
            Str::from(nsp)
        } else {
            Str::from(format!("/{nsp}"))
        };
        Emitter {
            shared: self.shared.clone(),
            nsp,
        }
    }

    /// The namespace this emitter targets.
    pub fn namespace(&self) -> &str {
        &self.nsp
    }

    /// The format this emitter writes.
    pub fn format(&self) -> &Format {
        &self.shared.format
    }

    fn operator(&self) -> BroadcastOperator {
        BroadcastOperator {
            emitter: self.clone(),
            rooms: Vec::new(),
            except: Vec::new(),
            volatile: false,
            compress: None,
        }
    }

    /// Targets the sockets in `rooms` (one room or several, see [`IntoRooms`]; with several, a
    /// socket in any of them). A socket id is the room of that socket alone.
    pub fn to(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.operator().to(rooms)
    }

    /// Same as [`to`](Emitter::to).
    pub fn in_(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.operator().to(rooms)
    }

    /// Leaves out the sockets in `rooms`.
    pub fn except(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.operator().except(rooms)
    }

    /// The event may be dropped for clients that cannot take it right now (and is not kept for
    /// connection state recovery).
    pub fn volatile(&self) -> BroadcastOperator {
        self.operator().volatile()
    }

    /// Whether the event should be compressed on the way to the clients.
    pub fn compress(&self, compress: bool) -> BroadcastOperator {
        self.operator().compress(compress)
    }

    /// Emits `event` with `args` (a tuple, `()` for none) to every client of the namespace.
    /// `bytes::Bytes` anywhere in the arguments reaches the clients as binary.
    pub async fn emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> Result<(), EmitterError> {
        self.operator().emit(event, args).await
    }

    /// Makes every socket of the namespace join `rooms`.
    pub async fn sockets_join(&self, rooms: impl IntoRooms) -> Result<(), EmitterError> {
        self.operator().sockets_join(rooms).await
    }

    /// Makes every socket of the namespace leave `rooms`.
    pub async fn sockets_leave(&self, rooms: impl IntoRooms) -> Result<(), EmitterError> {
        self.operator().sockets_leave(rooms).await
    }

    /// Disconnects every socket of the namespace; `close` also closes their connections.
    pub async fn disconnect_sockets(&self, close: bool) -> Result<(), EmitterError> {
        self.operator().disconnect_sockets(close).await
    }

    /// Emits `event` with `args` (a tuple) to the servers of the cluster themselves (their
    /// server-side listeners of this namespace). Without acknowledgement, as the reference
    /// emitters.
    pub async fn server_side_emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> Result<(), EmitterError> {
        let data = event_data(event, args)?;
        let write = self.shared.format.server_side_emit(&self.nsp, data);
        self.write(write).await
    }

    async fn write(&self, write: Write) -> Result<(), EmitterError> {
        let checkout = self.shared.conn.get().await?;
        let mut conn = checkout.conn.clone();
        let result: Result<redis::Value, RedisError> = write.command().query_async(&mut conn).await;
        if let Err(e) = &result {
            checkout.failed(e);
        }
        result.map(drop).map_err(EmitterError::Redis)
    }
}

/// A target (rooms, exceptions, flags) for an emitter's operations: made by
/// [`Emitter::to`], [`Emitter::except`] and the like, chained, then used once or many times.
#[derive(Debug, Clone)]
pub struct BroadcastOperator {
    emitter: Emitter,
    rooms: Vec<Str>,
    except: Vec<Str>,
    volatile: bool,
    compress: Option<bool>,
}

fn add_rooms(set: &mut Vec<Str>, rooms: impl IntoRooms) {
    for room in rooms.into_rooms() {
        if !set.contains(&room) {
            set.push(room);
        }
    }
}

impl BroadcastOperator {
    /// Also targets the sockets in `rooms`.
    pub fn to(mut self, rooms: impl IntoRooms) -> BroadcastOperator {
        add_rooms(&mut self.rooms, rooms);
        self
    }

    /// Same as [`to`](BroadcastOperator::to).
    pub fn in_(self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.to(rooms)
    }

    /// Also leaves out the sockets in `rooms`.
    pub fn except(mut self, rooms: impl IntoRooms) -> BroadcastOperator {
        add_rooms(&mut self.except, rooms);
        self
    }

    /// The event may be dropped for clients that cannot take it right now.
    pub fn volatile(mut self) -> BroadcastOperator {
        self.volatile = true;
        self
    }

    /// Whether the event should be compressed on the way to the clients.
    pub fn compress(mut self, compress: bool) -> BroadcastOperator {
        self.compress = Some(compress);
        self
    }

    fn target(&self) -> Target<'_> {
        Target {
            nsp: &self.emitter.nsp,
            rooms: &self.rooms,
            except: &self.except,
            volatile: self.volatile,
            compress: self.compress,
        }
    }

    /// Emits `event` with `args` (a tuple, `()` for none) to the targeted clients.
    /// `bytes::Bytes` anywhere in the arguments reaches the clients as binary.
    pub async fn emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> Result<(), EmitterError> {
        let data = event_data(event, args)?;
        let write = self.emitter.shared.format.broadcast(&self.target(), data);
        self.emitter.write(write).await
    }

    /// Makes the targeted sockets join `rooms`.
    pub async fn sockets_join(&self, rooms: impl IntoRooms) -> Result<(), EmitterError> {
        let op = RoomOp::Join(rooms.into_rooms());
        let write = self.emitter.shared.format.room_op(&self.target(), op);
        self.emitter.write(write).await
    }

    /// Makes the targeted sockets leave `rooms`.
    pub async fn sockets_leave(&self, rooms: impl IntoRooms) -> Result<(), EmitterError> {
        let op = RoomOp::Leave(rooms.into_rooms());
        let write = self.emitter.shared.format.room_op(&self.target(), op);
        self.emitter.write(write).await
    }

    /// Disconnects the targeted sockets; `close` also closes their connections.
    pub async fn disconnect_sockets(&self, close: bool) -> Result<(), EmitterError> {
        let write = self
            .emitter
            .shared
            .format
            .room_op(&self.target(), RoomOp::Disconnect(close));
        self.emitter.write(write).await
    }
}

/// `[event, ...args]` as msgpack, binary inline; reserved names refused.
fn event_data<T: Serialize + ?Sized>(event: &str, args: &T) -> Result<Mp, EmitterError> {
    if is_reserved_event(event) {
        return Err(EmitterError::ReservedEvent(event.to_owned()));
    }
    let (json, attachments) = event_json(event, args)?;
    Ok(codec::json_to_mp(&json.to_value()?, &attachments))
}

/// Who an operation targets.
struct Target<'a> {
    nsp: &'a str,
    rooms: &'a [Str],
    except: &'a [Str],
    volatile: bool,
    compress: Option<bool>,
}

impl Target<'_> {
    fn rooms(&self) -> Mp {
        strings(self.rooms)
    }

    fn except(&self) -> Mp {
        strings(self.except)
    }

    fn flags(&self) -> Mp {
        let mut flags = Vec::new();
        if self.volatile {
            flags.push(("volatile", Mp::Boolean(true)));
        }
        if let Some(compress) = self.compress {
            flags.push(("compress", Mp::Boolean(compress)));
        }
        map(flags)
    }

    /// `{rooms, except, flags}` as the `ClusterAdapter` writes it.
    fn cluster_opts(&self, with_flags: bool) -> Mp {
        let flags = if with_flags {
            self.flags()
        } else {
            map(vec![])
        };
        map(vec![
            ("rooms", self.rooms()),
            ("except", self.except()),
            ("flags", flags),
        ])
    }
}

fn strings(items: &[Str]) -> Mp {
    Mp::Array(items.iter().map(|s| Mp::from(s.as_ref())).collect())
}

/// A room operation.
enum RoomOp {
    Join(Vec<Str>),
    Leave(Vec<Str>),
    Disconnect(bool),
}

/// One Redis command.
#[derive(Debug, PartialEq)]
enum Write {
    /// `PUBLISH` or `SPUBLISH`.
    Publish {
        sharded: bool,
        channel: String,
        payload: Vec<u8>,
    },
    /// `XADD <stream> MAXLEN ~ <max_len> * uid emitter nsp <nsp> type <kind> data <data>`.
    Append {
        stream: String,
        max_len: u64,
        nsp: String,
        kind: u64,
        data: String,
    },
}

impl Write {
    fn command(&self) -> redis::Cmd {
        match self {
            Write::Publish {
                sharded,
                channel,
                payload,
            } => {
                let mut cmd = redis::cmd(if *sharded { "SPUBLISH" } else { "PUBLISH" });
                cmd.arg(channel).arg(payload.as_slice());
                cmd
            }
            Write::Append {
                stream,
                max_len,
                nsp,
                kind,
                data,
            } => {
                let mut cmd = redis::cmd("XADD");
                cmd.arg(stream)
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(*max_len)
                    .arg("*")
                    .arg("uid")
                    .arg(EMITTER_UID)
                    .arg("nsp")
                    .arg(nsp)
                    .arg("type")
                    .arg(kind.to_string())
                    .arg("data")
                    .arg(data);
                cmd
            }
        }
    }
}

/// JSON text of a msgpack tree (which holds no binary).
fn json_text(value: &Mp) -> Vec<u8> {
    // Serialising a tree with string keys to a Vec cannot fail.
    serde_json::to_vec(&AsJson(value)).unwrap_or_default()
}

/// A `ClusterAdapter` message `{type, data, uid, nsp}`.
fn envelope(kind: u64, data: Mp, nsp: &str) -> Mp {
    cluster::envelope(kind, data, EMITTER_UID, nsp)
}

/// A room channel of the sharded protocol is used for one public room only; the reference
/// tells socket ids (private rooms) by their length (`looksLikeASocketId`: 20 UTF-16 units).
fn looks_like_a_socket_id(room: &str) -> bool {
    room.encode_utf16().count() == 20
}

impl Format {
    fn broadcast(&self, target: &Target<'_>, data: Mp) -> Write {
        let nsp = target.nsp;
        match self {
            Format::Classic(ClassicFormat { key }) => {
                let packet = map(vec![
                    ("type", Mp::from(2)),
                    ("data", data),
                    ("nsp", Mp::from(nsp)),
                ]);
                let opts = map(vec![
                    ("rooms", target.rooms()),
                    ("flags", target.flags()),
                    ("except", target.except()),
                ]);
                let msg = Mp::Array(vec![Mp::from(EMITTER_UID), packet, opts]);
                let mut channel = format!("{key}#{nsp}#");
                if let [room] = target.rooms {
                    channel.push_str(room);
                    channel.push('#');
                }
                Write::Publish {
                    sharded: false,
                    channel,
                    payload: codec::encode_msgpack(&msg).to_vec(),
                }
            }
            Format::Sharded(sharded) => {
                let channel = sharded.broadcast_channel(nsp, target.rooms);
                let data = broadcast_data(target, data);
                sharded_publish(channel, cluster::kind::BROADCAST, data, nsp)
            }
            Format::Streams(streams) => {
                streams.append(nsp, cluster::kind::BROADCAST, broadcast_data(target, data))
            }
        }
    }

    fn room_op(&self, target: &Target<'_>, op: RoomOp) -> Write {
        let nsp = target.nsp;
        match self {
            Format::Classic(ClassicFormat { key }) => {
                let opts = map(vec![("rooms", target.rooms()), ("except", target.except())]);
                let (kind, last) = match op {
                    RoomOp::Join(rooms) => (classic_kind::REMOTE_JOIN, ("rooms", strings(&rooms))),
                    RoomOp::Leave(rooms) => {
                        (classic_kind::REMOTE_LEAVE, ("rooms", strings(&rooms)))
                    }
                    RoomOp::Disconnect(close) => (
                        classic_kind::REMOTE_DISCONNECT,
                        ("close", Mp::Boolean(close)),
                    ),
                };
                // As the reference emitter: no uid (no server takes it for its own).
                let request = map(vec![("type", Mp::from(kind)), ("opts", opts), last]);
                Write::Publish {
                    sharded: false,
                    channel: format!("{key}-request#{nsp}#"),
                    payload: json_text(&request),
                }
            }
            Format::Sharded(ShardedFormat { channel_prefix, .. }) => {
                let (kind, data) = cluster_room_op(target, op);
                sharded_publish(format!("{channel_prefix}#{nsp}#"), kind, data, nsp)
            }
            Format::Streams(streams) => {
                let (kind, data) = cluster_room_op(target, op);
                streams.append(nsp, kind, data)
            }
        }
    }

    fn server_side_emit(&self, nsp: &str, data: Mp) -> Write {
        match self {
            Format::Classic(ClassicFormat { key }) => {
                let request = map(vec![
                    ("uid", Mp::from(EMITTER_UID)),
                    ("type", Mp::from(classic_kind::SERVER_SIDE_EMIT)),
                    ("data", data),
                ]);
                // JSON as the reference; msgpack (which the servers also read on this channel)
                // when there is binary to carry.
                let payload = if has_binary(&request) {
                    codec::encode_msgpack(&request).to_vec()
                } else {
                    json_text(&request)
                };
                Write::Publish {
                    sharded: false,
                    channel: format!("{key}-request#{nsp}#"),
                    payload,
                }
            }
            Format::Sharded(ShardedFormat { channel_prefix, .. }) => sharded_publish(
                format!("{channel_prefix}#{nsp}#"),
                cluster::kind::SERVER_SIDE_EMIT,
                map(vec![("packet", data)]),
                nsp,
            ),
            Format::Streams(streams) => {
                // An ephemeral message: the 0.3 adapter publishes it (always msgpack) rather
                // than appending it to the stream.
                let message = envelope(
                    cluster::kind::SERVER_SIDE_EMIT,
                    map(vec![("packet", data)]),
                    nsp,
                );
                Write::Publish {
                    sharded: streams.use_sharded_pub_sub,
                    channel: format!("{}#{nsp}#", streams.channel_prefix),
                    payload: codec::encode_msgpack(&message).to_vec(),
                }
            }
        }
    }
}

/// `{packet: {type: 2, data}, opts: {rooms, except, flags}}`.
fn broadcast_data(target: &Target<'_>, data: Mp) -> Mp {
    map(vec![
        ("packet", map(vec![("type", Mp::from(2)), ("data", data)])),
        ("opts", target.cluster_opts(true)),
    ])
}

fn cluster_room_op(target: &Target<'_>, op: RoomOp) -> (u64, Mp) {
    let opts = ("opts", target.cluster_opts(false));
    match op {
        RoomOp::Join(rooms) => (
            cluster::kind::SOCKETS_JOIN,
            map(vec![opts, ("rooms", strings(&rooms))]),
        ),
        RoomOp::Leave(rooms) => (
            cluster::kind::SOCKETS_LEAVE,
            map(vec![opts, ("rooms", strings(&rooms))]),
        ),
        RoomOp::Disconnect(close) => (
            cluster::kind::DISCONNECT_SOCKETS,
            map(vec![opts, ("close", Mp::Boolean(close))]),
        ),
    }
}

/// A sharded-protocol message: JSON, or msgpack when it carries binary (the reference's rule).
fn sharded_publish(channel: String, kind: u64, data: Mp, nsp: &str) -> Write {
    let message = envelope(kind, data, nsp);
    let payload = if has_binary(&message) {
        codec::encode_msgpack(&message).to_vec()
    } else {
        json_text(&message)
    };
    Write::Publish {
        sharded: true,
        channel,
        payload,
    }
}

impl StreamsFormat {
    /// A stream entry: `data` as JSON, or as base64 msgpack when it carries binary.
    fn append(&self, nsp: &str, kind: u64, data: Mp) -> Write {
        let data = if has_binary(&data) {
            base64(&codec::encode_msgpack(&data))
        } else {
            String::from_utf8(json_text(&data)).unwrap_or_default()
        };
        Write::Append {
            stream: self.stream_for(nsp),
            max_len: self.max_len,
            nsp: nsp.to_owned(),
            kind,
            data,
        }
    }
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn target<'a>(rooms: &'a [Str], except: &'a [Str]) -> Target<'a> {
        Target {
            nsp: "/",
            rooms,
            except,
            volatile: false,
            compress: None,
        }
    }

    fn publish(write: Write) -> (bool, String, Vec<u8>) {
        match write {
            Write::Publish {
                sharded,
                channel,
                payload,
            } => (sharded, channel, payload),
            other => panic!("not a publish: {other:?}"),
        }
    }

    #[test]
    fn classic_broadcast_is_what_the_reference_emitter_writes() {
        let data = event_data("hello", &("from-emitter",)).unwrap();
        let rooms = [Str::from("room1")];
        let (sharded, channel, payload) =
            publish(Format::classic().broadcast(&target(&rooms, &[]), data));
        assert!(!sharded);
        assert_eq!(channel, "socket.io#/#room1#");
        let expected = Mp::Array(vec![
            Mp::from("emitter"),
            map(vec![
                ("type", Mp::from(2)),
                (
                    "data",
                    Mp::Array(vec![Mp::from("hello"), Mp::from("from-emitter")]),
                ),
                ("nsp", Mp::from("/")),
            ]),
            map(vec![
                ("rooms", Mp::Array(vec![Mp::from("room1")])),
                ("flags", map(vec![])),
                ("except", Mp::Array(vec![])),
            ]),
        ]);
        assert_eq!(payload, codec::encode_msgpack(&expected).to_vec());
    }

    #[test]
    fn classic_requests_are_what_the_reference_emitter_writes() {
        let rooms = [Str::from("room1")];
        let (_, channel, payload) = publish(
            Format::classic().room_op(&target(&rooms, &[]), RoomOp::Join(vec![Str::from("room9")])),
        );
        assert_eq!(channel, "socket.io-request#/#");
        assert_eq!(
            String::from_utf8(payload).unwrap(),
            r#"{"type":2,"opts":{"rooms":["room1"],"except":[]},"rooms":["room9"]}"#
        );
        let data = event_data("srv", &("e",)).unwrap();
        let (_, channel, payload) = publish(Format::classic().server_side_emit("/", data));
        assert_eq!(channel, "socket.io-request#/#");
        assert_eq!(
            String::from_utf8(payload).unwrap(),
            r#"{"uid":"emitter","type":6,"data":["srv","e"]}"#
        );
        let (_, _, payload) =
            publish(Format::classic().room_op(&target(&[], &[]), RoomOp::Disconnect(true)));
        assert_eq!(
            String::from_utf8(payload).unwrap(),
            r#"{"type":4,"opts":{"rooms":[],"except":[]},"close":true}"#
        );
    }

    #[test]
    fn flags_and_several_rooms_use_the_namespace_channel() {
        let rooms = [Str::from("r1"), Str::from("r2")];
        let mut t = target(&rooms, &[]);
        t.volatile = true;
        t.compress = Some(false);
        t.nsp = "/admin";
        let data = event_data("x", &()).unwrap();
        let (_, channel, payload) = publish(Format::classic().broadcast(&t, data));
        assert_eq!(channel, "socket.io#/admin#");
        let msg = codec::decode_msgpack(&payload).unwrap();
        let opts = &msg.as_array().unwrap()[2];
        assert_eq!(
            codec::mp_to_json(opts).to_string(),
            r#"{"except":[],"flags":{"compress":false,"volatile":true},"rooms":["r1","r2"]}"#
        );
    }

    #[test]
    fn sharded_messages_are_cluster_envelopes() {
        let data = event_data("hello", &("world", 1)).unwrap();
        let (sharded, channel, payload) =
            publish(Format::sharded().broadcast(&target(&[], &[]), data));
        assert!(sharded);
        assert_eq!(channel, "socket.io#/#");
        assert_eq!(
            String::from_utf8(payload).unwrap(),
            r#"{"type":3,"data":{"packet":{"type":2,"data":["hello","world",1]},"opts":{"rooms":[],"except":[],"flags":{}}},"uid":"emitter","nsp":"/"}"#
        );
        // One public room: its channel; binary: msgpack.
        let rooms = [Str::from("room1")];
        let data = event_data("bin", &(Bytes::from_static(&[1, 2, 3]),)).unwrap();
        let (_, channel, payload) =
            publish(Format::sharded().broadcast(&target(&rooms, &[]), data));
        assert_eq!(channel, "socket.io#/#room1#");
        let msg = codec::decode_msgpack(&payload).unwrap();
        let packet = codec::get(codec::get(&msg, "data").unwrap(), "packet").unwrap();
        assert_eq!(
            codec::get(packet, "data").unwrap(),
            &Mp::Array(vec![Mp::from("bin"), Mp::Binary(vec![1, 2, 3])])
        );
        // A socket id: the namespace channel.
        let rooms = [Str::from("q-H4pbPSjuiBD0xSAAAA")];
        let data = event_data("priv", &()).unwrap();
        let (_, channel, _) = publish(Format::sharded().broadcast(&target(&rooms, &[]), data));
        assert_eq!(channel, "socket.io#/#");
        let (_, channel, payload) = publish(
            Format::sharded().room_op(&target(&rooms, &[]), RoomOp::Join(vec![Str::from("r3")])),
        );
        assert_eq!(channel, "socket.io#/#");
        assert_eq!(
            String::from_utf8(payload).unwrap(),
            r#"{"type":4,"data":{"opts":{"rooms":["q-H4pbPSjuiBD0xSAAAA"],"except":[],"flags":{}},"rooms":["r3"]},"uid":"emitter","nsp":"/"}"#
        );
        let data = event_data("srv", &("b",)).unwrap();
        let (_, _, payload) = publish(Format::sharded().server_side_emit("/", data));
        assert_eq!(
            String::from_utf8(payload).unwrap(),
            r#"{"type":9,"data":{"packet":["srv","b"]},"uid":"emitter","nsp":"/"}"#
        );
    }

    #[test]
    fn sharded_room_channels_follow_the_subscription_mode() {
        let public = [Str::from("room1")];
        let private = [Str::from("q-H4pbPSjuiBD0xSAAAA")];
        for (mode, public_channel, private_channel) in [
            (SubscriptionMode::Static, "p#/#", "p#/#"),
            (SubscriptionMode::Dynamic, "p#/#room1#", "p#/#"),
            (
                SubscriptionMode::DynamicPrivate,
                "p#/#room1#",
                "p#/#q-H4pbPSjuiBD0xSAAAA#",
            ),
        ] {
            let format = ShardedFormat {
                channel_prefix: "p".to_owned(),
                subscription_mode: mode,
            };
            assert_eq!(format.broadcast_channel("/", &public), public_channel);
            assert_eq!(format.broadcast_channel("/", &private), private_channel);
            assert_eq!(format.broadcast_channel("/", &[]), "p#/#");
        }
    }

    #[test]
    fn streams_entries_are_what_the_streams_adapter_reads() {
        let rooms = [Str::from("room1")];
        let data = event_data("bin", &(Bytes::from_static(&[1, 2, 3]),)).unwrap();
        let write = Format::streams().broadcast(&target(&rooms, &[]), data);
        // The base64 an adapter node writes for the same broadcast.
        assert_eq!(
            write,
            Write::Append {
                stream: "socket.io".to_owned(),
                max_len: 10_000,
                nsp: "/".to_owned(),
                kind: 3,
                data: "gqZwYWNrZXSCpHR5cGUCpGRhdGGSo2JpbsQDAQIDpG9wdHODpXJvb21zkaVyb29tMaZleGNlcHSQpWZsYWdzgA==".to_owned(),
            }
        );
        let packed = write.command().get_packed_command();
        let text = String::from_utf8_lossy(&packed);
        assert!(text.contains("XADD\r\n$9\r\nsocket.io\r\n$6\r\nMAXLEN\r\n$1\r\n~\r\n$5\r\n10000\r\n$1\r\n*\r\n$3\r\nuid\r\n$7\r\nemitter\r\n$3\r\nnsp\r\n$1\r\n/\r\n$4\r\ntype\r\n$1\r\n3\r\n$4\r\ndata"), "{text}");
        let data = event_data("hello", &("world",)).unwrap();
        let Write::Append { data, .. } = Format::streams().broadcast(&target(&[], &[]), data)
        else {
            panic!("not an entry");
        };
        assert_eq!(
            data,
            r#"{"packet":{"type":2,"data":["hello","world"]},"opts":{"rooms":[],"except":[],"flags":{}}}"#
        );
        // Server-side events are published, msgpack.
        let data = event_data("srv", &("a",)).unwrap();
        let (sharded, channel, payload) = publish(Format::streams().server_side_emit("/", data));
        assert!(!sharded);
        assert_eq!(channel, "socket.io#/#");
        assert_eq!(
            codec::mp_to_json(&codec::decode_msgpack(&payload).unwrap()).to_string(),
            r#"{"data":{"packet":["srv","a"]},"nsp":"/","type":9,"uid":"emitter"}"#
        );
    }

    #[test]
    fn streams_are_chosen_by_the_namespace_hash() {
        assert_eq!(hash_code(""), 0);
        assert_eq!(hash_code("/"), 47);
        assert_eq!(hash_code("hello"), 99_162_322);
        // Overflows wrap as in Java; negative indexes keep their sign as JavaScript's `%`.
        assert_eq!(hash_code("polygenelubricants"), i32::MIN);
        let format = StreamsFormat {
            stream_count: 3,
            ..StreamsFormat::default()
        };
        assert_eq!(format.stream_for("/"), "socket.io-2");
        assert_eq!(format.stream_for("polygenelubricants"), "socket.io--2");
        assert_eq!(StreamsFormat::default().stream_for("/chat"), "socket.io");
    }

    #[test]
    fn reserved_events_are_refused() {
        for name in ["connect", "disconnect", "newListener"] {
            assert!(matches!(
                event_data(name, &()),
                Err(EmitterError::ReservedEvent(n)) if n == name
            ));
        }
        assert!(matches!(
            event_data("x", &5),
            Err(EmitterError::Serialize(_))
        ));
    }

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }
}
