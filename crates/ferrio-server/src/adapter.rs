//! The adapter interface: how a cluster adapter (Redis, ...) carries a namespace's broadcasts,
//! queries and server-side events to the other servers of a cluster.
//!
//! Every namespace keeps its own sockets and rooms in memory (the reference's in-memory
//! `Adapter`); that is the whole story for a single server, the default. A cluster adapter adds
//! the other nodes: the server calls its [`NamespaceAdapter`] after doing the local part of an
//! operation, and the adapter calls back into the namespace through [`LocalNamespace`] when a
//! message from another node arrives. Nothing in the server changes when an adapter is plugged in
//! with [`crate::FerrioBuilder::adapter`].

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use ferrio_proto::rooms::{BroadcastOptions, RoomEvent};
use ferrio_proto::socket::Packet;
use ferrio_proto::Str;
use futures_util::stream::BoxStream;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::namespace::{BroadcastOperator, IntoRooms, NsInner};
use crate::socket::{AckError, AckReply, EmitError};
use crate::BoxFuture;

/// Why a cluster operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdapterError {
    /// The other servers did not all answer in time (`message` says how many did, in the
    /// reference's words).
    Timeout(String),
    /// The cluster transport failed (for Redis: the connection is down).
    Transport(String),
}

impl std::fmt::Display for AdapterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdapterError::Timeout(m) => write!(f, "{m}"),
            AdapterError::Transport(m) => write!(f, "cluster transport error: {m}"),
        }
    }
}

impl std::error::Error for AdapterError {}

/// A server-side emit with ack that did not get every answer: why, and the answers that came.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSideEmitError {
    /// Why not every server answered.
    pub error: AdapterError,
    /// The answers that came in time.
    pub responses: Vec<Value>,
}

impl std::fmt::Display for ServerSideEmitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for ServerSideEmitError {}

/// A cluster adapter: makes the [`NamespaceAdapter`] of every namespace the server creates.
pub trait Adapter: Send + Sync + 'static {
    /// The adapter of one namespace, called once when the namespace is created (`io.of`, or a
    /// dynamic namespace's first CONNECT). `local` is how the adapter reaches the namespace's
    /// own sockets when a message from another node arrives.
    fn namespace(&self, local: LocalNamespace) -> Arc<dyn NamespaceAdapter>;
}

/// The cluster side of one namespace. The server has already done the local part of every
/// operation when it calls these; none of them is called for an operation flagged `local`.
pub trait NamespaceAdapter: Send + Sync + 'static {
    /// Sends a broadcast to the other nodes. `packet` is an EVENT without ack id.
    fn broadcast(&self, packet: &Packet, opts: &BroadcastOptions);

    /// Sends a broadcast asking each recipient for an ack to the other nodes and gathers their
    /// answers: resolves once every other node reported how many clients it asked and every one
    /// of them answered, or at `timeout` with what arrived (the missing answers as
    /// [`AckError::Timeout`]). Each answer is the ACK packet's data.
    fn broadcast_with_ack(
        &self,
        packet: &Packet,
        opts: &BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<Result<Vec<Result<Packet, AckError>>, AdapterError>>;

    /// The number of servers in the cluster, this one included.
    fn server_count(&self) -> BoxFuture<Result<usize, AdapterError>>;

    /// The sockets the other nodes have that `opts` selects.
    fn fetch_sockets(
        &self,
        opts: &BroadcastOptions,
    ) -> BoxFuture<Result<Vec<SocketInfo>, AdapterError>>;

    /// Makes the sockets `opts` selects on other nodes join `rooms`.
    fn sockets_join(&self, opts: &BroadcastOptions, rooms: &[Str]);

    /// Makes the sockets `opts` selects on other nodes leave `rooms`.
    fn sockets_leave(&self, opts: &BroadcastOptions, rooms: &[Str]);

    /// Disconnects the sockets `opts` selects on other nodes.
    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool);

    /// Sends a server-side event (`data` = `[event, ...args]`) to the other nodes.
    fn server_side_emit(&self, data: Vec<Value>);

    /// A room of this server's namespace was created or deleted, or a socket joined or left one
    /// (the reference adapter's room events). `private` is true for a socket's own id room. The
    /// sharded Redis adapter subscribes to a channel per room this way; the default does
    /// nothing.
    fn room_event(&self, event: &RoomEvent, private: bool) {
        let _ = (event, private);
    }

    /// Sends a server-side event asking for acks: resolves with one answer per other node, or
    /// fails with the answers that came if some did not come in time.
    fn server_side_emit_with_ack(
        &self,
        data: Vec<Value>,
    ) -> BoxFuture<Result<Vec<Value>, ServerSideEmitError>>;

    /// The adapter's share of connection state recovery, when it keeps the events and the
    /// sessions for the whole cluster (the Redis streams adapter): a client may then recover
    /// on any node. `None`, the default, leaves them in this server's memory: a client
    /// recovers only on the server it left.
    fn recovery(&self) -> Option<&dyn ClusterRecovery> {
        None
    }
}

/// Connection state recovery kept by the cluster: an ordered log of the broadcasts every node
/// reads, whose entry ids are the offsets clients keep, and the sessions of disconnected sockets
/// where every node finds them. Used only when recovery is on for the namespace
/// ([`crate::FerrioBuilder::connection_state_recovery`]); the server then keeps neither events nor
/// sessions in memory.
///
/// Every method is called with the namespace's lock held, so none may block: they queue their
/// work and return (the order of calls is the order of effects).
pub trait ClusterRecovery: Send + Sync {
    /// Sends a broadcast that recovery keeps ([`recovery::is_kept`]: an event without ack id,
    /// not volatile; a socket's own emits are broadcasts to its id room) through the log. Called
    /// instead of [`NamespaceAdapter::broadcast`] *and* of the local delivery: once the entry is
    /// written, the adapter delivers it to this server's sockets with
    /// [`LocalNamespace::broadcast`], its entry id appended ([`recovery::with_offset`]), in the
    /// order of calls. If the log cannot be written, it still delivers it locally, without an
    /// offset.
    ///
    /// [`recovery::is_kept`]: ferrio_proto::socket::recovery::is_kept
    /// [`recovery::with_offset`]: ferrio_proto::socket::recovery::with_offset
    fn broadcast(&self, packet: Packet, opts: BroadcastOptions);

    /// Keeps `session` for `ttl`, for any node. Called when a socket leaves for a recoverable
    /// reason (with the recovery window as `ttl`), and for connected sockets, at connection and
    /// then periodically (with a longer `ttl`), so that the sessions of a server that dies
    /// without saving them are still found.
    fn persist(&self, session: ClusterSession, ttl: Duration);

    /// Forgets the session kept under `pid`: its socket left for a reason that ends it.
    fn discard(&self, pid: &str);

    /// Takes the session kept under `pid` (no other connection can take it after this call)
    /// and the events after `offset` that concern it, oldest first, their entry ids appended.
    /// `Ok(None)` if the offset is malformed or unknown, or there is no such session.
    fn restore(
        &self,
        pid: &str,
        offset: &str,
    ) -> BoxFuture<Result<Option<ClusterRestored>, AdapterError>>;
}

/// A socket's session as the cluster keeps it for connection state recovery.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSession {
    /// The socket id, which the recovered socket takes again.
    pub sid: Str,
    /// The private id the client presents to recover.
    pub pid: Str,
    /// The rooms the socket was in, its own id room included.
    pub rooms: Vec<Str>,
    /// The socket's shared data ([`crate::Socket::set_shared_data`]); `Null` when none.
    pub data: Value,
}

/// What [`ClusterRecovery::restore`] hands back.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterRestored {
    /// The session.
    pub session: ClusterSession,
    /// The events the client missed, oldest first, each with its offset appended.
    pub missed: Vec<Packet>,
}

/// What the cluster knows of a socket (the reference's `RemoteSocket` data): the form
/// `fetchSockets` answers carry between nodes.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct SocketInfo {
    /// The socket id.
    pub id: String,
    /// The handshake, in the reference's shape (`headers`, `time`, `address`, `xdomain`,
    /// `secure`, `issued`, `url`, `query`, `auth`).
    #[serde(default)]
    pub handshake: Value,
    /// The rooms the socket is in, its own id room included.
    #[serde(default)]
    pub rooms: Vec<String>,
    /// The socket's shared data ([`crate::Socket::set_shared_data`]).
    #[serde(default)]
    pub data: Value,
}

/// A socket returned by [`BroadcastOperator::fetch_sockets`]: on this server or another one of
/// the cluster. Its operations go through the cluster like a broadcast to its id room.
#[derive(Clone)]
pub struct RemoteSocket {
    info: SocketInfo,
    ns: Arc<NsInner>,
    /// How long [`RemoteSocket::emit_with_ack`] waits ([`RemoteSocket::timeout`]).
    timeout: Option<Duration>,
}

impl std::fmt::Debug for RemoteSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSocket")
            .field("info", &self.info)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl RemoteSocket {
    pub(crate) fn new(info: SocketInfo, ns: Arc<NsInner>) -> RemoteSocket {
        RemoteSocket {
            info,
            ns,
            timeout: None,
        }
    }

    /// The socket id.
    pub fn id(&self) -> &str {
        &self.info.id
    }

    /// The handshake, in the reference's JSON shape.
    pub fn handshake(&self) -> &Value {
        &self.info.handshake
    }

    /// The rooms the socket was in when fetched.
    pub fn rooms(&self) -> &[String] {
        &self.info.rooms
    }

    /// The socket's shared data when fetched: the JSON value its server set with
    /// [`Socket::set_shared_data`](crate::Socket::set_shared_data) (`{}` until set), Node's
    /// `socket.data`. The typed values of [`Socket::insert_data`](crate::Socket::insert_data)
    /// stay on their server and are not part of it.
    pub fn data(&self) -> &Value {
        &self.info.data
    }

    /// Everything fetched.
    pub fn info(&self) -> &SocketInfo {
        &self.info
    }

    fn operator(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.ns.clone()).to(Str::from(self.info.id.as_str()))
    }

    /// This socket, with how long [`RemoteSocket::emit_with_ack`] waits for its answer
    /// (`remoteSocket.timeout(ms)`).
    pub fn timeout(&self, timeout: Duration) -> RemoteSocket {
        RemoteSocket {
            timeout: Some(timeout),
            ..self.clone()
        }
    }

    /// Emits `event` with `args` (a tuple) to this socket, wherever it is, and waits for its
    /// acknowledgement (`remoteSocket.timeout(ms).emitWithAck(...)`, which resolves with an
    /// array of that one answer; here, the answer itself): [`AckError::Timeout`] when the
    /// [`RemoteSocket::timeout`] ran out, [`AckError::Disconnected`] when the socket left
    /// first (or was already gone), [`AckError::Emit`] when the event could not be sent.
    ///
    /// It goes through the cluster as [`BroadcastOperator::emit_with_ack`] to the socket's id
    /// room: a socket on this server answers directly; one on another server answers through
    /// the cluster adapter's `broadcast_with_ack`, which waits at most the timeout (5 s
    /// without one). Without a timeout, a socket on this server is waited for until it
    /// answers or disconnects.
    ///
    /// ```
    /// # async fn f(io: ferrio_server::Ferrio) -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// for socket in io.fetch_sockets().await? {
    ///     let reply = socket
    ///         .timeout(Duration::from_secs(1))
    ///         .emit_with_ack("ping", &())
    ///         .await?;
    ///     let (pong,): (String,) = reply.args()?;
    /// #   let _ = pong;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> impl std::future::Future<Output = Result<AckReply, AckError>> + Send + 'static {
        let mut operator = self.operator();
        if let Some(timeout) = self.timeout {
            operator = operator.timeout(timeout);
        }
        let answers = operator.emit_with_ack(event, args);
        async move {
            let answers = answers.await.map_err(AckError::Emit)?;
            // One socket has the id: its answer, or nothing if it is gone.
            answers
                .into_iter()
                .next()
                .unwrap_or(Err(AckError::Disconnected))
        }
    }

    /// Emits `event` with `args` (a tuple) to this socket, wherever it is.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, args: &T) -> Result<(), EmitError> {
        self.operator().emit(event, args)
    }

    /// Makes the socket join `rooms`: one room or several (see [`IntoRooms`]), wherever the
    /// socket is.
    pub fn join(&self, rooms: impl IntoRooms) {
        self.operator().sockets_join_rooms(rooms.into_rooms())
    }

    /// Makes the socket leave `rooms`: one room or several (see [`IntoRooms`]).
    pub fn leave(&self, rooms: impl IntoRooms) {
        self.operator().sockets_leave(rooms)
    }

    /// Disconnects the socket (with `close`, its whole connection).
    pub fn disconnect(&self, close: bool) {
        self.operator().disconnect_sockets(close)
    }
}

/// The answer to a server-side event that asked for one; cheap to clone, the first
/// [`ServerAck::send`] wins (as in the reference).
#[derive(Clone, Default)]
pub struct ServerAck {
    reply: Option<Arc<Mutex<Option<oneshot::Sender<Value>>>>>,
}

impl std::fmt::Debug for ServerAck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerAck")
            .field("requested", &self.requested())
            .finish()
    }
}

impl ServerAck {
    /// An ack that sends its value on `reply`.
    pub fn new(reply: oneshot::Sender<Value>) -> ServerAck {
        ServerAck {
            reply: Some(Arc::new(Mutex::new(Some(reply)))),
        }
    }

    /// True if the sender asked for an answer.
    pub fn requested(&self) -> bool {
        self.reply.is_some()
    }

    /// Answers with `value` (one value, as the reference's callback takes one argument).
    /// Does nothing if no answer was asked or one was already sent.
    pub fn send<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), serde_json::Error> {
        let value = serde_json::to_value(value)?;
        if let Some(reply) = &self.reply {
            if let Some(tx) = reply.lock().ok().and_then(|mut r| r.take()) {
                let _ = tx.send(value);
            }
        }
        Ok(())
    }
}

/// A namespace as its cluster adapter sees it: the local part of every operation, run for
/// messages that come from other nodes. Holds the namespace weakly (no cycle through the
/// adapter); once the server is gone every call does nothing.
#[derive(Clone)]
pub struct LocalNamespace {
    name: Str,
    ns: Weak<NsInner>,
}

impl std::fmt::Debug for LocalNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalNamespace")
            .field("name", &self.name)
            .finish()
    }
}

impl LocalNamespace {
    pub(crate) fn new(ns: &Arc<NsInner>) -> LocalNamespace {
        LocalNamespace {
            name: ns.name.clone(),
            ns: Arc::downgrade(ns),
        }
    }

    /// The namespace name.
    pub fn name(&self) -> &Str {
        &self.name
    }

    /// True when connection state recovery is on for this namespace: then an adapter that
    /// keeps the recovery log ([`NamespaceAdapter::recovery`]) appends an entry's offset to the
    /// events it delivers ([`ferrio_proto::socket::recovery::with_offset`]).
    pub fn recovery_enabled(&self) -> bool {
        self.ns
            .upgrade()
            .is_some_and(|ns| ns.recovery_config.is_some())
    }

    /// Sends `packet` to the local sockets `opts` selects. With connection state recovery on,
    /// the namespace gives it an offset of its own, unless the adapter keeps the recovery log
    /// ([`NamespaceAdapter::recovery`]): it is then sent exactly as given.
    pub fn broadcast(&self, packet: Packet, opts: &BroadcastOptions) {
        if let Some(ns) = self.ns.upgrade() {
            ns.broadcast_local(packet, opts);
        }
    }

    /// Sends `packet` to the local sockets `opts` selects, asking each for an ack: the number
    /// of sockets asked, and their answers (or errors) as they come, ending at `timeout`.
    pub fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: &BroadcastOptions,
        timeout: Duration,
    ) -> (usize, BoxStream<'static, Result<Packet, AckError>>) {
        match self.ns.upgrade() {
            Some(ns) => ns.broadcast_with_ack_local(packet, opts, timeout),
            None => (0, Box::pin(futures_util::stream::empty())),
        }
    }

    /// The local sockets `opts` selects.
    pub fn fetch_sockets(&self, opts: &BroadcastOptions) -> Vec<SocketInfo> {
        self.ns
            .upgrade()
            .map(|ns| ns.socket_infos(opts))
            .unwrap_or_default()
    }

    /// The ids of the local sockets in any of `rooms` (all sockets if `rooms` is empty).
    pub fn socket_ids(&self, rooms: &[Str]) -> Vec<Str> {
        let opts = BroadcastOptions {
            rooms: rooms.iter().cloned().collect(),
            ..BroadcastOptions::default()
        };
        self.ns
            .upgrade()
            .map(|ns| ns.state().rooms.targets(&opts).cloned().collect())
            .unwrap_or_default()
    }

    /// Every room that has a local member (socket id rooms included).
    pub fn rooms(&self) -> Vec<Str> {
        self.ns
            .upgrade()
            .map(|ns| ns.state().rooms.rooms().cloned().collect())
            .unwrap_or_default()
    }

    /// True if a local socket is in `room`.
    pub fn has_room(&self, room: &str) -> bool {
        self.ns
            .upgrade()
            .is_some_and(|ns| ns.state().rooms.has_room(room))
    }

    /// Makes the local sockets `opts` selects join `rooms`.
    pub fn sockets_join(&self, opts: &BroadcastOptions, rooms: &[Str]) {
        if let Some(ns) = self.ns.upgrade() {
            ns.sockets_join_local(opts, rooms);
        }
    }

    /// Makes the local sockets `opts` selects leave `rooms`.
    pub fn sockets_leave(&self, opts: &BroadcastOptions, rooms: &[Str]) {
        if let Some(ns) = self.ns.upgrade() {
            ns.sockets_leave_local(opts, rooms);
        }
    }

    /// Disconnects the local sockets `opts` selects.
    pub fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        if let Some(ns) = self.ns.upgrade() {
            ns.disconnect_local(opts, close);
        }
    }

    /// Runs the namespace's server-side event handlers for `data` (`[event, ...args]`);
    /// `ack` carries the answer when the sender asked for one.
    pub fn server_side_event(&self, data: Vec<Value>, ack: ServerAck) {
        if let Some(ns) = self.ns.upgrade() {
            ns.server_side_event(data, ack);
        }
    }
}
