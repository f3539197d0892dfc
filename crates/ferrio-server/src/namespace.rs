//! Namespaces, their middlewares and connection handlers, the in-memory adapter (rooms over
//! [`RoomIndex`]) and broadcasts.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use ferrio_proto::rooms::{BroadcastOptions, RoomIndex};
use ferrio_proto::socket::recovery::{RecoveryConfig, RecoveryStore};
use ferrio_proto::socket::server::{AckError as CoreAckError, AckIds};
use ferrio_proto::socket::Packet;
use ferrio_proto::Str;
use serde::Serialize;
use tokio::sync::oneshot;

use crate::clock::Clock;
use crate::server::Command;
use crate::socket::{check_event, AckError, AckReply, ConnectError, EmitError, Socket};
use crate::BoxFuture;

pub(crate) type Middleware =
    Arc<dyn Fn(Socket) -> BoxFuture<Result<(), ConnectError>> + Send + Sync>;
pub(crate) type ConnectionHandler = Arc<dyn Fn(Socket) -> BoxFuture<()> + Send + Sync>;

/// The adapter state of one namespace.
pub(crate) struct NsState {
    pub(crate) rooms: RoomIndex,
    pub(crate) sockets: HashMap<Str, Socket>,
    ack_ids: AckIds,
    pub(crate) recovery: Option<RecoveryStore>,
}

pub(crate) struct NsInner {
    pub(crate) name: Str,
    clock: Clock,
    middlewares: RwLock<Vec<Middleware>>,
    connection: RwLock<Vec<ConnectionHandler>>,
    state: Mutex<NsState>,
}

impl NsInner {
    pub(crate) fn new(name: Str, clock: Clock, recovery: Option<RecoveryConfig>) -> NsInner {
        NsInner {
            name,
            clock,
            middlewares: RwLock::new(Vec::new()),
            connection: RwLock::new(Vec::new()),
            state: Mutex::new(NsState {
                rooms: RoomIndex::new(),
                sockets: HashMap::new(),
                ack_ids: AckIds::default(),
                recovery: recovery.map(RecoveryStore::new),
            }),
        }
    }

    /// The adapter state. A poisoned lock (a panic while it was held) is taken over: the index
    /// is only changed by short, panic-free sections.
    pub(crate) fn state(&self) -> MutexGuard<'_, NsState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives this (new, child) namespace the middlewares and connection handlers of `parent`.
    pub(crate) fn inherit(&self, parent: &NsInner) {
        if let Ok(mut m) = self.middlewares.write() {
            m.extend(parent.middlewares());
        }
        if let Ok(mut h) = self.connection.write() {
            h.extend(parent.connection_handlers());
        }
    }

    pub(crate) fn middlewares(&self) -> Vec<Middleware> {
        self.middlewares
            .read()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    pub(crate) fn connection_handlers(&self) -> Vec<ConnectionHandler> {
        self.connection
            .read()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    pub(crate) fn next_ack_id(&self) -> u64 {
        self.state().ack_ids.next_id()
    }

    /// With connection state recovery on, stores an event for replay and returns it with its
    /// offset; `None` when recovery is off or the packet is not kept.
    pub(crate) fn record(&self, packet: &Packet, opts: &BroadcastOptions) -> Option<Packet> {
        let now = self.clock.now();
        self.state().recovery.as_mut()?.record(now, packet, opts)
    }

    pub(crate) fn join(&self, id: &Str, room: Str) {
        let mut st = self.state();
        if st.rooms.has_socket(id) {
            st.rooms.join(id, [room]);
        }
    }

    pub(crate) fn leave(&self, id: &str, room: &str) {
        self.state().rooms.leave(id, room);
    }

    pub(crate) fn rooms_of(&self, id: &str) -> Vec<String> {
        self.state()
            .rooms
            .rooms_of(id)
            .map(|r| r.to_string())
            .collect()
    }

    /// Sends `packet` to every socket `opts` selects: recorded for recovery and encoded once,
    /// the same bytes queued for every recipient.
    pub(crate) fn broadcast(&self, packet: Packet, opts: &BroadcastOptions) {
        let now = self.clock.now();
        let mut st = self.state();
        let packet = match st.recovery.as_mut() {
            Some(store) => store.record(now, &packet, opts).unwrap_or(packet),
            None => packet,
        };
        let encoded = packet.encode();
        for id in st.rooms.targets(opts) {
            if let Some(socket) = st.sockets.get(id) {
                socket.inner.link.send(Command::Send {
                    nsp: self.name.clone(),
                    id: id.clone(),
                    packet: encoded.clone(),
                    volatile: opts.flags.volatile,
                });
            }
        }
    }
}

/// A namespace (`io.of("/chat")`): its middlewares, connection handlers, sockets and rooms.
/// Cheap to clone.
#[derive(Clone)]
pub struct Namespace {
    pub(crate) inner: Arc<NsInner>,
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace")
            .field("name", &self.inner.name)
            .finish()
    }
}

impl Namespace {
    /// The namespace name (`/`, `/chat`).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Adds a connect middleware (`namespace.use`). Middlewares run in order, asynchronously,
    /// before the CONNECT is accepted; the first `Err` refuses the connection with a
    /// CONNECT_ERROR carrying its message and data.
    ///
    /// ```
    /// # fn f(io: ferrio_server::Ferrio) {
    /// use ferrio_server::{ConnectError, Socket};
    /// #[derive(serde::Deserialize)]
    /// struct Auth { token: String }
    /// io.of("/admin").use_connect(|socket: Socket| async move {
    ///     match socket.handshake().auth::<Auth>() {
    ///         Ok(auth) if auth.token == "secret" => Ok(()),
    ///         _ => Err(ConnectError::new("not authorized")
    ///             .with_data(&serde_json::json!({"reason": "invalid token"}))),
    ///     }
    /// });
    /// # }
    /// ```
    pub fn use_connect<F, Fut>(&self, middleware: F) -> &Self
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        if let Ok(mut m) = self.inner.middlewares.write() {
            m.push(Arc::new(move |s| Box::pin(middleware(s))));
        }
        self
    }

    /// Adds a connection handler, run for every socket that joins, before its events are
    /// handled (register event handlers there).
    pub fn on_connection<F, Fut>(&self, handler: F) -> &Self
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if let Ok(mut h) = self.inner.connection.write() {
            h.push(Arc::new(move |s| Box::pin(handler(s))));
        }
        self
    }

    /// A broadcast to the members of `room`.
    pub fn to(&self, room: impl Into<Str>) -> BroadcastOperator {
        BroadcastOperator::new(self.inner.clone()).to(room)
    }

    /// A broadcast to every socket but the members of `room`.
    pub fn except(&self, room: impl Into<Str>) -> BroadcastOperator {
        BroadcastOperator::new(self.inner.clone()).except(room)
    }

    /// Emits to every socket of the namespace.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, args: &T) -> Result<(), EmitError> {
        BroadcastOperator::new(self.inner.clone()).emit(event, args)
    }

    /// Makes every socket of the namespace join `room` (`socketsJoin`).
    pub fn sockets_join(&self, room: impl Into<Str>) {
        BroadcastOperator::new(self.inner.clone()).sockets_join(room)
    }

    /// Makes every socket of the namespace leave `room` (`socketsLeave`).
    pub fn sockets_leave(&self, room: &str) {
        BroadcastOperator::new(self.inner.clone()).sockets_leave(room)
    }

    /// Disconnects every socket of the namespace (`disconnectSockets`).
    pub fn disconnect_sockets(&self, close: bool) {
        BroadcastOperator::new(self.inner.clone()).disconnect_sockets(close)
    }

    /// The sockets currently connected.
    pub fn sockets(&self) -> Vec<Socket> {
        self.inner.state().sockets.values().cloned().collect()
    }

    /// The socket with id `id`, if it is connected.
    pub fn socket(&self, id: &str) -> Option<Socket> {
        self.inner.state().sockets.get(id).cloned()
    }
}

/// Who a broadcast reaches (`to`, `except`) and how (`volatile`); built by
/// [`Namespace::to`], [`Socket::to`], [`Socket::broadcast`].
#[derive(Clone)]
pub struct BroadcastOperator {
    ns: Arc<NsInner>,
    opts: BroadcastOptions,
}

impl std::fmt::Debug for BroadcastOperator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BroadcastOperator")
            .field("nsp", &self.ns.name)
            .field("opts", &self.opts)
            .finish()
    }
}

impl BroadcastOperator {
    pub(crate) fn new(ns: Arc<NsInner>) -> BroadcastOperator {
        BroadcastOperator {
            ns,
            opts: BroadcastOptions::new(),
        }
    }

    pub(crate) fn flag_broadcast(mut self) -> BroadcastOperator {
        self.opts.flags.broadcast = true;
        self
    }

    /// Also reaches the members of `room`.
    pub fn to(mut self, room: impl Into<Str>) -> BroadcastOperator {
        self.opts.rooms.insert(room.into());
        self
    }

    /// Leaves out the members of `room` (a socket id is a room too).
    pub fn except(mut self, room: impl Into<Str>) -> BroadcastOperator {
        self.opts.except.insert(room.into());
        self
    }

    /// Drops the packet for a recipient whose transport cannot take it right now; volatile
    /// packets are not kept for connection state recovery.
    pub fn volatile(mut self) -> BroadcastOperator {
        self.opts.flags.volatile = true;
        self
    }

    /// The sockets selected (`fetchSockets`, this server only).
    pub fn sockets(&self) -> Vec<Socket> {
        let st = self.ns.state();
        st.rooms
            .targets(&self.opts)
            .filter_map(|id| st.sockets.get(id).cloned())
            .collect()
    }

    /// Makes every socket selected join `room` (`socketsJoin`).
    pub fn sockets_join(&self, room: impl Into<Str>) {
        let room = room.into();
        let mut st = self.ns.state();
        let ids: Vec<Str> = st.rooms.targets(&self.opts).cloned().collect();
        for id in ids {
            st.rooms.join(&id, [room.clone()]);
        }
    }

    /// Makes every socket selected leave `room` (`socketsLeave`).
    pub fn sockets_leave(&self, room: &str) {
        let mut st = self.ns.state();
        let ids: Vec<Str> = st.rooms.targets(&self.opts).cloned().collect();
        for id in ids {
            st.rooms.leave(&id, room);
        }
    }

    /// Disconnects every socket selected (`disconnectSockets`); with `close`, their whole
    /// connections are closed.
    pub fn disconnect_sockets(&self, close: bool) {
        for socket in self.sockets() {
            socket.disconnect(close);
        }
    }

    /// Sets how long [`BroadcastOperator::emit_with_ack`] waits for the answers (without it,
    /// it waits until every socket answered or disconnected).
    pub fn timeout(mut self, timeout: Duration) -> BroadcastOperator {
        self.opts.flags.timeout = Some(timeout);
        self
    }

    /// Emits `event` with `args` (a tuple) to every socket selected, asking each for an
    /// acknowledgement: one ack id for all, the packet encoded once. Resolves, once every socket
    /// answered, timed out or disconnected, with one result per socket.
    pub fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> impl Future<Output = Result<Vec<Result<AckReply, AckError>>, EmitError>> + Send + 'static
    {
        let replies = check_event(event)
            .and_then(|()| Ok(Packet::event_with(self.ns.name.clone(), event, args)?))
            .map(|packet| {
                let ack_id = self.ns.next_ack_id();
                let encoded = packet.with_id(ack_id).encode();
                let timeout = self.opts.flags.timeout.unwrap_or(Duration::MAX);
                let st = self.ns.state();
                let mut replies = Vec::new();
                for id in st.rooms.targets(&self.opts) {
                    let Some(socket) = st.sockets.get(id) else {
                        continue;
                    };
                    let (reply, rx) = oneshot::channel();
                    socket.inner.link.send(Command::EmitWithAck {
                        nsp: self.ns.name.clone(),
                        id: id.clone(),
                        packet: encoded.clone(),
                        ack_id,
                        timeout,
                        reply,
                    });
                    replies.push(rx);
                }
                replies
            });
        async move {
            let replies = futures_util::future::join_all(replies?).await;
            Ok(replies
                .into_iter()
                .map(|r| match r {
                    Ok(Ok(packet)) => Ok(AckReply::new(packet)),
                    Ok(Err(CoreAckError::Timeout)) => Err(AckError::Timeout),
                    Ok(Err(_)) | Err(_) => Err(AckError::Disconnected),
                })
                .collect())
        }
    }

    /// Emits `event` with `args` (a tuple) to every socket selected. The packet is encoded once
    /// and its bytes shared by all recipients.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, args: &T) -> Result<(), EmitError> {
        check_event(event)?;
        let packet = Packet::event_with(self.ns.name.clone(), event, args)?;
        self.ns.broadcast(packet, &self.opts);
        Ok(())
    }
}
