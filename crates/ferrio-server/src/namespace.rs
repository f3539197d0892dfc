//! Namespaces, their middlewares and connection handlers, the in-memory adapter (rooms over
//! [`RoomIndex`]), broadcasts, and the calls into a cluster adapter.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock, Weak};
use std::time::Duration;

use ferrio_proto::rooms::{BroadcastOptions, RoomEvent, RoomIndex};
use ferrio_proto::socket::recovery::{self, PersistedSession, RecoveryConfig, RecoveryStore};
use ferrio_proto::socket::server::AckIds;
use ferrio_proto::socket::{is_reserved_event, EventError, Packet, Parser, RawJson};
use ferrio_proto::{Instant, Str};
use futures_util::stream::{BoxStream, FuturesUnordered, StreamExt};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::adapter::{
    AdapterError, ClusterRecovery, ClusterSession, NamespaceAdapter, RemoteSocket, ServerAck,
    ServerSideEmitError, SocketInfo,
};
use crate::clock::Clock;
use crate::command::{Command, EmitWithAck};
use crate::socket::{AckError, AckReply, ConnectError, EmitError, Socket};
use crate::BoxFuture;

pub(crate) type Middleware =
    Arc<dyn Fn(Socket) -> BoxFuture<Result<(), ConnectError>> + Send + Sync>;
pub(crate) type ConnectionHandler = Arc<dyn Fn(Socket) -> BoxFuture<()> + Send + Sync>;
pub(crate) type RoomEventHandler = Arc<dyn Fn(&RoomEvent) + Send + Sync>;
pub(crate) type ServerEventHandler =
    Arc<dyn Fn(Vec<Value>, ServerAck) -> BoxFuture<()> + Send + Sync>;

/// How long the cluster part of a broadcast with acks waits when no timeout was set.
const CLUSTER_ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// Room events to hand out once the namespace lock is released, each with whether its room is
/// private (a socket's own id room).
pub(crate) struct RoomEvents {
    events: Vec<RoomEvent>,
    private: Vec<bool>,
}

impl RoomEvents {
    /// `events`, a room being private if it is the id of a socket of `st` or of the socket the
    /// event is about (a socket's own room, created and deleted with it).
    pub(crate) fn new(events: Vec<RoomEvent>, st: &NsState) -> RoomEvents {
        Self::with_socket(events, st, None)
    }

    /// Like [`RoomEvents::new`]; `socket` is the socket being added or removed.
    pub(crate) fn with_socket(
        events: Vec<RoomEvent>,
        st: &NsState,
        socket: Option<&str>,
    ) -> RoomEvents {
        let private = events
            .iter()
            .map(|e| {
                let room: &str = e.room();
                socket == Some(room) || st.sockets.contains_key(room)
            })
            .collect();
        RoomEvents { events, private }
    }
}

/// The adapter state of one namespace.
pub(crate) struct NsState {
    pub(crate) rooms: RoomIndex,
    pub(crate) sockets: HashMap<Str, Socket>,
    ack_ids: AckIds,
    pub(crate) recovery: Option<RecoveryStore>,
    /// The sockets whose `disconnecting` handlers run, by private id (with recovery on): a
    /// CONNECT recovering one of them waits until it left, when its session is kept.
    pub(crate) leaving: HashMap<Str, Socket>,
    /// The typed data ([`Socket::insert_data`]) of the sessions the recovery store keeps, by
    /// private id: handed back with the session, dropped with it (at most one entry per kept
    /// session; an expired session's entry goes at the store's next expiry).
    pub(crate) kept_data: HashMap<Str, http::Extensions>,
}

pub(crate) struct NsInner {
    pub(crate) name: Str,
    clock: Clock,
    middlewares: RwLock<Vec<Middleware>>,
    connection: RwLock<Vec<ConnectionHandler>>,
    server_events: RwLock<HashMap<String, Vec<ServerEventHandler>>>,
    room_handlers: RwLock<Vec<RoomEventHandler>>,
    state: Mutex<NsState>,
    /// The cluster adapter, when the server has one.
    pub(crate) adapter: OnceLock<Arc<dyn NamespaceAdapter>>,
    /// The server's application state (`FerrioBuilder::state`), set when the server creates
    /// the namespace.
    pub(crate) app_state: OnceLock<Arc<http::Extensions>>,
    /// The server's parser: every packet of the namespace is encoded with it.
    pub(crate) parser: Parser,
    /// The connection state recovery settings, when recovery is on.
    pub(crate) recovery_config: Option<RecoveryConfig>,
    /// The task that expires the recovery store's events and sessions has started.
    expiry: AtomicBool,
    /// Called when the last socket left (a dynamic child with
    /// `cleanup_empty_child_namespaces`): takes the namespace out of the server.
    on_empty: OnceLock<Box<dyn Fn() + Send + Sync>>,
    /// Taken out of the server (set under the state lock, while it had no socket).
    removed: AtomicBool,
    /// The namespaces created as children of this one, when it is a dynamic parent
    /// (`Ferrio::of_dynamic`): its emits go to them (Node's `ParentNamespace`). Children that
    /// `cleanup_empty_child_namespaces` removed are dropped from it as it is read.
    children: Mutex<Vec<Weak<NsInner>>>,
}

impl NsInner {
    pub(crate) fn new(
        name: Str,
        clock: Clock,
        recovery: Option<RecoveryConfig>,
        parser: Parser,
    ) -> NsInner {
        NsInner {
            name,
            clock,
            parser,
            recovery_config: recovery.clone(),
            middlewares: RwLock::new(Vec::new()),
            connection: RwLock::new(Vec::new()),
            server_events: RwLock::new(HashMap::new()),
            room_handlers: RwLock::new(Vec::new()),
            adapter: OnceLock::new(),
            app_state: OnceLock::new(),
            expiry: AtomicBool::new(false),
            on_empty: OnceLock::new(),
            children: Mutex::new(Vec::new()),
            removed: AtomicBool::new(false),
            state: Mutex::new(NsState {
                rooms: RoomIndex::new(),
                sockets: HashMap::new(),
                ack_ids: AckIds::default(),
                recovery: recovery.map(RecoveryStore::new),
                leaving: HashMap::new(),
                kept_data: HashMap::new(),
            }),
        }
    }

    /// The server's application state of type `T`.
    pub(crate) fn app_state<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.app_state.get()?.get::<Arc<T>>().cloned()
    }

    /// The adapter state. A poisoned lock (a panic while it was held) is taken over: the index
    /// is only changed by short, panic-free sections.
    pub(crate) fn state(&self) -> MutexGuard<'_, NsState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives this (new, child) namespace the middlewares and connection handlers of `parent`.
    pub(crate) fn inherit(self: &Arc<Self>, parent: &NsInner) {
        if let Ok(mut m) = self.middlewares.write() {
            m.extend(parent.middlewares());
        }
        if let Ok(mut h) = self.connection.write() {
            h.extend(parent.connection_handlers());
        }
        let mut children = parent.children.lock().unwrap_or_else(|e| e.into_inner());
        children.retain(|c| c.upgrade().is_some_and(|c| !c.is_removed()));
        children.push(Arc::downgrade(self));
    }

    /// The children of a dynamic parent still in the server (none for another namespace).
    fn children(&self) -> Vec<Arc<NsInner>> {
        let children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        children
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|c| !c.is_removed())
            .collect()
    }

    /// Sets what to do when the last socket has left (see `on_empty`).
    pub(crate) fn set_on_empty(&self, hook: Box<dyn Fn() + Send + Sync>) {
        let _ = self.on_empty.set(hook);
    }

    /// Marks the namespace removed if no socket is in it or leaving it; true if it was.
    pub(crate) fn mark_removed_if_empty(&self) -> bool {
        let st = self.state();
        if !st.sockets.is_empty() || !st.leaving.is_empty() {
            return false;
        }
        self.removed.store(true, Ordering::Release);
        true
    }

    /// True once the namespace was taken out of the server: a socket must not join it. Read
    /// under the state lock (`removed` is set under it).
    pub(crate) fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Acquire)
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

    /// The namespace clock's time.
    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Takes socket `socket` out of the namespace once it disconnected: it leaves its rooms,
    /// and, with connection state recovery on and a recoverable reason, its session is kept,
    /// with its rooms, its JSON data and its typed data as they are now. Then its `disconnect`
    /// handlers may run. A socket whose id was taken over in the meantime (see
    /// `SocketMachine::accept`) only stops being waited for.
    pub(crate) fn remove_socket(&self, socket: &Socket, now: Instant) {
        let id = socket.inner.id.clone();
        let reason = socket.reason().reason();
        let events = {
            let mut guard = self.state();
            let st = &mut *guard;
            if let Some(pid) = &socket.inner.pid {
                if st
                    .leaving
                    .get(pid)
                    .is_some_and(|s| Arc::ptr_eq(&s.inner, &socket.inner))
                {
                    st.leaving.remove(pid);
                }
            }
            let current = st
                .sockets
                .get(&id)
                .is_some_and(|s| Arc::ptr_eq(&s.inner, &socket.inner));
            if current {
                let rooms: Vec<Str> = st.rooms.rooms_of(&id).cloned().collect();
                st.sockets.remove(&id);
                let events = st.rooms.remove_socket(&id);
                let shared = self.shared_recovery();
                if let (Some(log), Some(pid)) = (shared, socket.inner.pid.clone()) {
                    // The cluster keeps the session, or forgets the live snapshot of it.
                    if reason.is_recoverable() {
                        let ttl = self.recovery_window();
                        log.persist(cluster_session(socket, pid, rooms), ttl);
                    } else {
                        log.discard(&pid);
                    }
                } else if let (Some(store), Some(pid)) =
                    (st.recovery.as_mut(), socket.inner.pid.clone())
                {
                    let session = PersistedSession {
                        sid: id.clone(),
                        pid: pid.clone(),
                        rooms,
                        data: Some(RawJson::from_value(&socket.shared_data())),
                        since: socket.inner.since.get().copied().unwrap_or_default(),
                    };
                    // Kept if the reason allows it (the store decides).
                    if store.leave(now, reason, session) {
                        let typed = socket.typed_data();
                        if typed.is_empty() {
                            st.kept_data.remove(&pid);
                        } else {
                            st.kept_data.insert(pid, typed);
                        }
                    }
                }
                Some(RoomEvents::with_socket(events, st, Some(&id)))
            } else {
                None
            }
        };
        let removed = events.is_some();
        if let Some(events) = events {
            self.room_events(events);
        }
        socket.mark_left();
        if removed {
            if let Some(on_empty) = self.on_empty.get() {
                if self.state().sockets.is_empty() {
                    on_empty();
                }
            }
        }
    }

    pub(crate) fn next_ack_id(&self) -> u64 {
        self.state().ack_ids.next_id()
    }

    /// With connection state recovery on, starts (once, from within the runtime) the task that
    /// gives the recovery store its timer: it sleeps until the store's next expiry
    /// ([`RecoveryStore::poll_timeout`]) and drops what expired, so that the events and sessions
    /// of a quiet namespace are freed on time, not when the store is next used. It ends with the
    /// namespace.
    pub(crate) fn drive_recovery_expiry(self: &Arc<Self>) {
        if self.shared_recovery().is_some() {
            self.drive_session_snapshots();
            return;
        }
        let Some(period) = self
            .state()
            .recovery
            .as_ref()
            .map(|s| s.config().max_disconnection_duration)
        else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.expiry.swap(true, Ordering::AcqRel) {
            return;
        }
        let ns = Arc::downgrade(self);
        let clock = self.clock;
        runtime.spawn(async move {
            loop {
                let next = {
                    let Some(ns) = ns.upgrade() else { return };
                    let st = ns.state();
                    st.recovery.as_ref().and_then(RecoveryStore::poll_timeout)
                };
                // Nothing stored: anything stored from now on expires a full period later.
                let at = next.unwrap_or_else(|| clock.now() + period);
                tokio::time::sleep_until(clock.deadline(at)).await;
                let Some(ns) = ns.upgrade() else { return };
                let mut guard = ns.state();
                let st = &mut *guard;
                if let Some(store) = st.recovery.as_mut() {
                    store.handle_timeout(clock.now());
                    // The typed data of the sessions that expired goes with them: O(kept data)
                    // per expiry, only when some is kept.
                    if !st.kept_data.is_empty() {
                        st.kept_data.retain(|pid, _| store.has_session(pid));
                    }
                }
            }
        });
    }

    /// With the cluster keeping recovery ([`NamespaceAdapter::recovery`]), starts (once) the
    /// task that saves the sessions of the connected sockets every half recovery window, for
    /// [`LIVE_SESSION_TTL`] windows: so a client whose server died without saving its session
    /// still recovers on another one, with its rooms and data as of the last save. It ends
    /// with the namespace.
    fn drive_session_snapshots(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.expiry.swap(true, Ordering::AcqRel) {
            return;
        }
        let period = (self.recovery_window() / 2).max(Duration::from_millis(100));
        let ns = Arc::downgrade(self);
        runtime.spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(ns) = ns.upgrade() else { return };
                ns.save_live_sessions();
            }
        });
    }

    /// Saves the session of every connected socket of this namespace with the cluster (see
    /// [`NsInner::drive_session_snapshots`]). Under the state lock, so that a socket leaving
    /// meanwhile has its final session saved (or discarded) after this snapshot.
    pub(crate) fn save_live_sessions(&self) {
        let Some(log) = self.shared_recovery() else {
            return;
        };
        let ttl = self.recovery_window().saturating_mul(LIVE_SESSION_TTL);
        let st = self.state();
        for (id, socket) in &st.sockets {
            if let Some(pid) = socket.inner.pid.clone() {
                let rooms = st.rooms.rooms_of(id).cloned().collect();
                log.persist(cluster_session(socket, pid, rooms), ttl);
            }
        }
    }

    /// Saves the session of `socket`, just connected, with the cluster (when it keeps recovery).
    pub(crate) fn save_live_session(&self, socket: &Socket) {
        let (Some(log), Some(pid)) = (self.shared_recovery(), socket.inner.pid.clone()) else {
            return;
        };
        let ttl = self.recovery_window().saturating_mul(LIVE_SESSION_TTL);
        let st = self.state();
        let rooms = st.rooms.rooms_of(socket.id()).cloned().collect();
        log.persist(cluster_session(socket, pid, rooms), ttl);
    }

    /// The cluster's recovery log, when recovery is on and the adapter keeps it.
    pub(crate) fn shared_recovery(&self) -> Option<&dyn ClusterRecovery> {
        self.recovery_config.as_ref()?;
        self.adapter.get()?.recovery()
    }

    /// How long a disconnected socket's session is kept (`max_disconnection_duration`).
    pub(crate) fn recovery_window(&self) -> Duration {
        self.recovery_config
            .as_ref()
            .map_or(Duration::ZERO, |c| c.max_disconnection_duration)
    }

    /// With connection state recovery on, stores an event for replay and returns it with its
    /// offset; `None` when recovery is off or the packet is not kept.
    pub(crate) fn record(&self, packet: &Packet, opts: &BroadcastOptions) -> Option<Packet> {
        let now = self.clock.now();
        self.state().recovery.as_mut()?.record(now, packet, opts)
    }

    pub(crate) fn join(&self, id: &Str, rooms: Vec<Str>) {
        let events = {
            let mut st = self.state();
            if !st.rooms.has_socket(id) {
                return;
            }
            let events = st.rooms.join(id, rooms);
            RoomEvents::new(events, &st)
        };
        self.room_events(events);
    }

    pub(crate) fn leave(&self, id: &str, rooms: &[Str]) {
        let events = {
            let mut st = self.state();
            let mut events = Vec::new();
            for room in rooms {
                events.extend(st.rooms.leave(id, room));
            }
            RoomEvents::new(events, &st)
        };
        self.room_events(events);
    }

    /// Tells the adapter and the room event handlers about `events` (with no lock held).
    pub(crate) fn room_events(&self, events: RoomEvents) {
        if events.events.is_empty() {
            return;
        }
        if let Some(adapter) = self.adapter.get() {
            for (event, private) in events.events.iter().zip(&events.private) {
                adapter.room_event(event, *private);
            }
        }
        let handlers = self
            .room_handlers
            .read()
            .map(|h| h.clone())
            .unwrap_or_default();
        for handler in handlers {
            for event in &events.events {
                handler(event);
            }
        }
    }

    /// The rooms socket `id` is in: read from the index's own set for the socket, so the cost
    /// grows with that socket's rooms, not with the namespace's.
    pub(crate) fn rooms_of(&self, id: &str) -> Vec<String> {
        self.state()
            .rooms
            .rooms_of(id)
            .map(|r| r.to_string())
            .collect()
    }

    /// The cluster adapter, unless the operation is flagged `local`.
    fn cluster(&self, opts: &BroadcastOptions) -> Option<&Arc<dyn NamespaceAdapter>> {
        if opts.flags.local {
            None
        } else {
            self.adapter.get()
        }
    }

    /// Sends `packet` to every socket `opts` selects, here and (through the adapter) on the
    /// other nodes.
    pub(crate) fn broadcast(&self, packet: Packet, opts: &BroadcastOptions) {
        if let Some(adapter) = self.cluster(opts) {
            if let Some(log) = self
                .shared_recovery()
                .filter(|_| recovery::is_kept(&packet, opts))
            {
                // The log delivers it here too, with its offset, once written.
                log.broadcast(packet, opts.clone());
                return;
            }
            adapter.broadcast(&packet, opts);
        }
        self.broadcast_local(packet, opts);
    }

    /// Sends `packet` to every local socket `opts` selects: recorded for recovery and encoded
    /// once, the same bytes queued for every recipient.
    pub(crate) fn broadcast_local(&self, packet: Packet, opts: &BroadcastOptions) {
        let now = self.clock.now();
        let shared = self.shared_recovery().is_some();
        let mut st = self.state();
        let packet = match st.recovery.as_mut() {
            // A cluster that keeps the log gave the packet its offset already.
            Some(store) if !shared => store.record(now, &packet, opts).unwrap_or(packet),
            _ => packet,
        };
        let encoded = Arc::new(self.parser.encode(&packet));
        let mut listening = Vec::new();
        let mut send = |socket: &Socket| {
            socket.inner.link.send(Command::Send {
                socket: socket.clone(),
                packet: encoded.clone(),
                volatile: opts.flags.volatile,
                // `compress` is on unless the broadcast said `compress(false)`.
                compress: opts.flags.compress != Some(false),
            });
            if socket.has_outgoing_listeners() {
                listening.push(socket.clone());
            }
        };
        if opts.rooms.is_empty() && opts.except.is_empty() {
            // Every socket of the namespace: no need to look each up by its id.
            st.sockets.values().for_each(&mut send);
        } else {
            for id in st.rooms.targets(opts) {
                if let Some(socket) = st.sockets.get(id) {
                    send(socket);
                }
            }
        }
        drop(st);
        for socket in listening {
            socket.notify_outgoing(&packet);
        }
    }
}

impl NsInner {
    /// Sends `packet` with a fresh ack id to every local socket `opts` selects (encoded once):
    /// how many were asked, and their answers as they come.
    pub(crate) fn broadcast_with_ack_local(
        &self,
        packet: Packet,
        opts: &BroadcastOptions,
        timeout: Duration,
    ) -> (usize, BoxStream<'static, Result<Packet, AckError>>) {
        let ack_id = self.next_ack_id();
        let packet = packet.with_id(ack_id);
        let encoded = self.parser.encode(&packet);
        let st = self.state();
        let replies = FuturesUnordered::new();
        let mut listening = Vec::new();
        for id in st.rooms.targets(opts) {
            let Some(socket) = st.sockets.get(id) else {
                continue;
            };
            if socket.has_outgoing_listeners() {
                listening.push(socket.clone());
            }
            let (reply, rx) = oneshot::channel();
            socket
                .inner
                .link
                .send(Command::EmitWithAck(Box::new(EmitWithAck {
                    socket: socket.clone(),
                    packet: encoded.clone(),
                    ack_id,
                    timeout,
                    compress: opts.flags.compress != Some(false),
                    reply,
                })));
            replies.push(async move {
                match rx.await {
                    Ok(Ok(packet)) => Ok(packet),
                    Ok(Err(e)) => Err(e.into()),
                    Err(_) => Err(AckError::Disconnected),
                }
            });
        }
        drop(st);
        for socket in listening {
            socket.notify_outgoing(&packet);
        }
        (replies.len(), replies.boxed())
    }

    /// What `fetchSockets` reports of the local sockets `opts` selects.
    pub(crate) fn socket_infos(&self, opts: &BroadcastOptions) -> Vec<SocketInfo> {
        let st = self.state();
        st.rooms
            .targets(opts)
            .filter_map(|id| st.sockets.get(id))
            .map(|socket| SocketInfo {
                id: socket.id().to_owned(),
                handshake: socket.handshake().to_json(),
                rooms: st
                    .rooms
                    .rooms_of(socket.id())
                    .map(|r| r.to_string())
                    .collect(),
                data: socket.shared_data(),
            })
            .collect()
    }

    pub(crate) fn sockets_join_local(&self, opts: &BroadcastOptions, rooms: &[Str]) {
        let events = {
            let mut st = self.state();
            let ids: Vec<Str> = st.rooms.targets(opts).cloned().collect();
            let mut events = Vec::new();
            for id in ids {
                events.extend(st.rooms.join(&id, rooms.iter().cloned()));
            }
            RoomEvents::new(events, &st)
        };
        self.room_events(events);
    }

    pub(crate) fn sockets_leave_local(&self, opts: &BroadcastOptions, rooms: &[Str]) {
        let events = {
            let mut st = self.state();
            let ids: Vec<Str> = st.rooms.targets(opts).cloned().collect();
            let mut events = Vec::new();
            for id in ids {
                for room in rooms {
                    events.extend(st.rooms.leave(&id, room));
                }
            }
            RoomEvents::new(events, &st)
        };
        self.room_events(events);
    }

    pub(crate) fn disconnect_local(&self, opts: &BroadcastOptions, close: bool) {
        let sockets: Vec<Socket> = {
            let st = self.state();
            st.rooms
                .targets(opts)
                .filter_map(|id| st.sockets.get(id).cloned())
                .collect()
        };
        for socket in sockets {
            socket.disconnect(close);
        }
    }

    /// Runs the server-side event handlers of `data[0]`, each in its own task.
    pub(crate) fn server_side_event(&self, data: Vec<Value>, ack: ServerAck) {
        let Some(Value::String(event)) = data.first() else {
            return;
        };
        let handlers = self
            .server_events
            .read()
            .ok()
            .and_then(|h| h.get(event).cloned())
            .unwrap_or_default();
        let args: Vec<Value> = data.into_iter().skip(1).collect();
        for handler in handlers {
            tokio::spawn(handler(args.clone(), ack.clone()));
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

    /// The server's application state of type `T` ([`crate::FerrioBuilder::state`]), if any.
    pub fn state<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.inner.app_state()
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

    /// A broadcast to the members of `rooms` (one room or several, see [`IntoRooms`]).
    ///
    /// ```
    /// # fn f(io: ferrio_server::Ferrio) -> Result<(), ferrio_server::EmitError> {
    /// let chat = io.of("/chat");
    /// chat.to("room-1").emit("news", &("one room",))?;
    /// chat.to(["room-1", "room-2"]).except("muted").emit("news", &("two rooms",))?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn to(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        BroadcastOperator::new(self.inner.clone()).to(rooms)
    }

    /// The same as [`Namespace::to`] (`namespace.in`).
    pub fn in_(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.to(rooms)
    }

    /// A broadcast to every socket but the members of `rooms`.
    pub fn except(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        BroadcastOperator::new(self.inner.clone()).except(rooms)
    }

    /// A volatile broadcast to every socket of the namespace (`namespace.volatile`): see
    /// [`BroadcastOperator::volatile`].
    pub fn volatile(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.inner.clone()).volatile()
    }

    /// A broadcast to every socket of the namespace with the `compress` flag set
    /// (`namespace.compress(false)`): see [`BroadcastOperator::compress`].
    pub fn compress(&self, compress: bool) -> BroadcastOperator {
        BroadcastOperator::new(self.inner.clone()).compress(compress)
    }

    /// The rooms of the namespace on this server, the sockets' own id rooms included (the
    /// reference's `io.of(name).adapter.rooms.keys()`), in no particular order.
    pub fn rooms(&self) -> Vec<String> {
        self.inner
            .state()
            .rooms
            .rooms()
            .map(|r| r.to_string())
            .collect()
    }

    /// A broadcast to every socket of the namespace whose acks are awaited at most `timeout`
    /// ([`BroadcastOperator::emit_with_ack`]).
    pub fn timeout(&self, timeout: Duration) -> BroadcastOperator {
        BroadcastOperator::new(self.inner.clone()).timeout(timeout)
    }

    /// Emits to every socket of the namespace.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, args: &T) -> Result<(), EmitError> {
        BroadcastOperator::new(self.inner.clone()).emit(event, args)
    }

    /// Emits a `message` event to every socket of the namespace (`namespace.send(...args)`).
    pub fn send<T: Serialize + ?Sized>(&self, args: &T) -> Result<(), EmitError> {
        self.emit("message", args)
    }

    /// Makes every socket of the namespace join `rooms` (`socketsJoin`).
    pub fn sockets_join(&self, rooms: impl IntoRooms) {
        BroadcastOperator::new(self.inner.clone()).sockets_join_rooms(rooms.into_rooms())
    }

    /// Makes every socket of the namespace leave `rooms` (`socketsLeave`).
    pub fn sockets_leave(&self, rooms: impl IntoRooms) {
        BroadcastOperator::new(self.inner.clone()).sockets_leave(rooms)
    }

    /// Disconnects every socket of the namespace (`disconnectSockets`).
    pub fn disconnect_sockets(&self, close: bool) {
        BroadcastOperator::new(self.inner.clone()).disconnect_sockets(close)
    }

    /// Reaches only the sockets of this server, not the rest of the cluster (`local`).
    pub fn local(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.inner.clone()).local()
    }

    /// The sockets of the namespace on every server of the cluster (`fetchSockets`).
    pub fn fetch_sockets(
        &self,
    ) -> impl Future<Output = Result<Vec<RemoteSocket>, AdapterError>> + Send + 'static {
        BroadcastOperator::new(self.inner.clone()).fetch_sockets()
    }

    /// The number of servers in the cluster, this one included (1 without a cluster
    /// adapter).
    pub fn server_count(
        &self,
    ) -> impl Future<Output = Result<usize, AdapterError>> + Send + 'static {
        let remote = self.inner.adapter.get().map(|a| a.server_count());
        async move {
            match remote {
                Some(count) => count.await,
                None => Ok(1),
            }
        }
    }

    /// Adds a handler for the adapter's room events (`create-room`, `join-room`, `leave-room`,
    /// `delete-room`, as `io.of(nsp).adapter.on(...)`), for the sockets of this server. It runs
    /// right after the change, with no lock held; keep it short.
    pub fn on_room_event<F>(&self, handler: F) -> &Self
    where
        F: Fn(&RoomEvent) + Send + Sync + 'static,
    {
        if let Ok(mut h) = self.inner.room_handlers.write() {
            h.push(Arc::new(handler));
        }
        self
    }

    /// Adds a handler for the server-side event `event` sent by another server of the cluster
    /// ([`Namespace::server_side_emit`]). It gets the arguments and a [`ServerAck`] to answer
    /// with when the sender asked for one.
    pub fn on_server_event<F, Fut>(&self, event: &str, handler: F) -> &Self
    where
        F: Fn(Vec<Value>, ServerAck) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if let Ok(mut h) = self.inner.server_events.write() {
            h.entry(event.to_owned())
                .or_default()
                .push(Arc::new(move |args, ack| Box::pin(handler(args, ack))));
        }
        self
    }

    /// Sends `event` with `args` (a tuple of JSON values) to the other servers of the cluster
    /// (`serverSideEmit`); their [`Namespace::on_server_event`] handlers run. Without a cluster
    /// adapter there is no one to tell and this does nothing.
    pub fn server_side_emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> Result<(), EmitError> {
        let data = server_event_data(event, args)?;
        if let Some(adapter) = self.inner.adapter.get() {
            adapter.server_side_emit(data);
        }
        Ok(())
    }

    /// Like [`Namespace::server_side_emit`], asking every other server for one answer:
    /// resolves with the answers, or fails (with those that came) if some server did not answer
    /// within the adapter's request timeout. Alone, it resolves at once with none.
    pub fn server_side_emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> impl Future<Output = Result<Vec<Value>, ServerSideEmitError>> + Send + 'static {
        let started = server_event_data(event, args).map(|data| {
            self.inner
                .adapter
                .get()
                .map(|a| a.server_side_emit_with_ack(data))
        });
        async move {
            match started {
                Ok(Some(answers)) => answers.await,
                Ok(None) => Ok(Vec::new()),
                Err(e) => Err(ServerSideEmitError {
                    error: AdapterError::Transport(e.to_string()),
                    responses: Vec::new(),
                }),
            }
        }
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

    /// Also reaches the members of `rooms` (one room or several, see [`IntoRooms`]).
    pub fn to(mut self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.opts.rooms.extend(rooms.into_rooms());
        self
    }

    /// The same as [`BroadcastOperator::to`] (`in`).
    pub fn in_(self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.to(rooms)
    }

    /// Leaves out the members of `rooms` (a socket id is a room too).
    pub fn except(mut self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.opts.except.extend(rooms.into_rooms());
        self
    }

    /// Drops the packet for a recipient whose transport cannot take it right now; volatile
    /// packets are not kept for connection state recovery.
    pub fn volatile(mut self) -> BroadcastOperator {
        self.opts.flags.volatile = true;
        self
    }

    /// Sets the `compress` flag (`compress(false)`; on by default), here and on the other nodes
    /// of a cluster: with `false` the packet goes uncompressed over WebSocket
    /// (`per_message_deflate`) whatever its size, and a polling response holding only such
    /// packets is not compressed (`http_compression`).
    pub fn compress(mut self, compress: bool) -> BroadcastOperator {
        self.opts.flags.compress = Some(compress);
        self
    }

    /// Reaches only the sockets of this server, not the rest of the cluster (`local`).
    pub fn local(mut self) -> BroadcastOperator {
        self.opts.flags.local = true;
        self
    }

    /// The sockets of this server that are selected.
    pub fn sockets(&self) -> Vec<Socket> {
        let st = self.ns.state();
        st.rooms
            .targets(&self.opts)
            .filter_map(|id| st.sockets.get(id).cloned())
            .collect()
    }

    /// The sockets selected on every server of the cluster (`fetchSockets`): id, handshake,
    /// rooms and shared data, with operations that reach the socket wherever it is. Fails if
    /// another server did not answer in time or the cluster is unreachable.
    pub fn fetch_sockets(
        &self,
    ) -> impl Future<Output = Result<Vec<RemoteSocket>, AdapterError>> + Send + 'static {
        let ns = self.ns.clone();
        let local = ns.socket_infos(&self.opts);
        let remote = self
            .ns
            .cluster(&self.opts)
            .map(|a| a.fetch_sockets(&self.opts));
        async move {
            let mut infos = local;
            if let Some(remote) = remote {
                infos.extend(remote.await?);
            }
            Ok(infos
                .into_iter()
                .map(|info| RemoteSocket::new(info, ns.clone()))
                .collect())
        }
    }

    /// Makes every socket selected join `rooms` (`socketsJoin`), on every server.
    pub fn sockets_join(&self, rooms: impl IntoRooms) {
        self.sockets_join_rooms(rooms.into_rooms());
    }

    /// Makes every socket selected join `rooms`, on every server.
    pub(crate) fn sockets_join_rooms(&self, rooms: Vec<Str>) {
        if let Some(adapter) = self.ns.cluster(&self.opts) {
            adapter.sockets_join(&self.opts, &rooms);
        }
        self.ns.sockets_join_local(&self.opts, &rooms);
    }

    /// Makes every socket selected leave `rooms` (`socketsLeave`; one room or several), on
    /// every server.
    pub fn sockets_leave(&self, rooms: impl IntoRooms) {
        let rooms = rooms.into_rooms();
        if let Some(adapter) = self.ns.cluster(&self.opts) {
            adapter.sockets_leave(&self.opts, &rooms);
        }
        self.ns.sockets_leave_local(&self.opts, &rooms);
    }

    /// Disconnects every socket selected (`disconnectSockets`), on every server; with
    /// `close`, their whole connections are closed.
    pub fn disconnect_sockets(&self, close: bool) {
        if let Some(adapter) = self.ns.cluster(&self.opts) {
            adapter.disconnect_sockets(&self.opts, close);
        }
        self.ns.disconnect_local(&self.opts, close);
    }

    /// Sets how long [`BroadcastOperator::emit_with_ack`] waits for the answers (without it,
    /// it waits until every socket answered or disconnected).
    pub fn timeout(mut self, timeout: Duration) -> BroadcastOperator {
        self.opts.flags.timeout = Some(timeout);
        self
    }

    /// Emits `event` with `args` (a tuple) to every socket selected, asking each for an
    /// acknowledgement: one ack id for all, the packet encoded once. Resolves, once every socket
    /// answered, timed out or disconnected, with one result per socket (the reference's
    /// `emitWithAck` gives one result for all: [`BroadcastOperator::emit_with_ack_all`]). With a cluster adapter
    /// the other servers' sockets answer too; their part waits for the timeout (5 s if none was
    /// set), and a cluster that cannot be reached fails the whole emit.
    pub fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> impl Future<Output = Result<Vec<Result<AckReply, AckError>>, EmitError>> + Send + 'static
    {
        let started = Packet::outgoing_event(self.ns.name.clone(), event, args)
            .map_err(EmitError::from)
            .map(|packet| {
                let remote = self.ns.cluster(&self.opts).map(|adapter| {
                    let timeout = self.opts.flags.timeout.unwrap_or(CLUSTER_ACK_TIMEOUT);
                    adapter.broadcast_with_ack(&packet, &self.opts, timeout)
                });
                let timeout = self.opts.flags.timeout.unwrap_or(Duration::MAX);
                let (_, local) = self
                    .ns
                    .broadcast_with_ack_local(packet, &self.opts, timeout);
                (local, remote)
            });
        async move {
            let (local, remote) = started?;
            let (local, remote) =
                futures_util::future::join(local.collect::<Vec<_>>(), async move {
                    match remote {
                        Some(remote) => remote.await.map(Some),
                        None => Ok(None),
                    }
                })
                .await;
            let remote = remote.map_err(EmitError::Cluster)?.unwrap_or_default();
            Ok(local
                .into_iter()
                .chain(remote)
                .map(|r| r.map(AckReply::new))
                .collect())
        }
    }

    /// Emits `event` with `args` (a tuple) to every socket selected, asking each for an
    /// acknowledgement, with one result for all as the reference's `emitWithAck`
    /// (`io.timeout(ms).emitWithAck(...)`): the clients' answers, in no particular order, or an
    /// error if some socket did not answer: [`AckError::Timeout`] when the timeout
    /// ([`BroadcastOperator::timeout`]) ran out, [`AckError::Disconnected`] when it left first,
    /// [`AckError::Emit`] when the event could not be sent (the cluster could not be reached).
    /// The reference's answer of a client is the first argument it acknowledged with; here each
    /// [`AckReply`] holds all of them. It resolves once every socket answered or failed; for the
    /// answer of each socket, failures included, use [`BroadcastOperator::emit_with_ack`].
    ///
    /// ```
    /// # async fn f(io: ferrio_server::Ferrio) -> Result<(), ferrio_server::AckError> {
    /// use std::time::Duration;
    /// let answers = io.timeout(Duration::from_secs(5)).emit_with_ack_all("poll", &()).await?;
    /// let votes: Vec<String> = answers
    ///     .iter()
    ///     .filter_map(|reply| reply.args::<(String,)>().ok().map(|(vote,)| vote))
    ///     .collect();
    /// # let _ = votes;
    /// # Ok(())
    /// # }
    /// ```
    pub fn emit_with_ack_all<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> impl Future<Output = Result<Vec<AckReply>, AckError>> + Send + 'static {
        let each = self.emit_with_ack(event, args);
        async move { each.await.map_err(AckError::Emit)?.into_iter().collect() }
    }

    /// Emits `event` with `args` (a tuple) to every socket selected. The packet is encoded once
    /// and its bytes shared by all recipients.
    ///
    /// On a dynamic parent ([`Ferrio::of_dynamic`](crate::Ferrio::of_dynamic)) the event goes
    /// to the sockets `to`/`except` select in every child namespace (its arguments serialised
    /// once, the packet encoded once per child for its namespace), as
    /// Node's parent namespaces do; the parent's other operations concern its own sockets, of
    /// which it has none.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, args: &T) -> Result<(), EmitError> {
        let packet = Packet::outgoing_event(self.ns.name.clone(), event, args)?;
        let children = self.ns.children();
        if !children.is_empty() {
            // The arguments serialised once; each child's copy names its namespace.
            for child in children {
                child.broadcast(packet.clone().with_nsp(child.name.clone()), &self.opts);
            }
            return Ok(());
        }
        self.ns.broadcast(packet, &self.opts);
        Ok(())
    }

    /// Emits a `message` event to every socket selected (`send(...args)`).
    pub fn send<T: Serialize + ?Sized>(&self, args: &T) -> Result<(), EmitError> {
        self.emit("message", args)
    }
}

/// One room or several, for [`Socket::join`], [`Socket::leave_rooms`], `to`, `in_`, `except`,
/// `sockets_join` and `sockets_leave` (the reference takes a room or an array of rooms).
/// Implemented for a room name (`&str`, `String`, `&String`, [`Str`]) and for arrays, slices
/// and `Vec`s of them; for an iterator, collect it into a `Vec` first.
///
/// ```
/// # fn f(socket: ferrio_server::Socket) {
/// socket.join("a");
/// socket.join(["b", "c"]);
/// let mine: Vec<String> = socket.rooms();
/// socket.leave_rooms(mine.iter().filter(|r| r.starts_with('b')).collect::<Vec<_>>());
/// # }
/// ```
pub trait IntoRooms {
    /// The room names.
    fn into_rooms(self) -> Vec<Str>;
}

impl IntoRooms for &str {
    fn into_rooms(self) -> Vec<Str> {
        vec![Str::from(self)]
    }
}

impl IntoRooms for String {
    fn into_rooms(self) -> Vec<Str> {
        vec![Str::from(self)]
    }
}

impl IntoRooms for &String {
    fn into_rooms(self) -> Vec<Str> {
        vec![Str::from(self.as_str())]
    }
}

impl IntoRooms for Str {
    fn into_rooms(self) -> Vec<Str> {
        vec![self]
    }
}

impl IntoRooms for &Str {
    fn into_rooms(self) -> Vec<Str> {
        vec![self.clone()]
    }
}

impl<T: IntoRooms> IntoRooms for Vec<T> {
    fn into_rooms(self) -> Vec<Str> {
        self.into_iter().flat_map(IntoRooms::into_rooms).collect()
    }
}

impl<T: IntoRooms, const N: usize> IntoRooms for [T; N] {
    fn into_rooms(self) -> Vec<Str> {
        self.into_iter().flat_map(IntoRooms::into_rooms).collect()
    }
}

impl<T: AsRef<str>> IntoRooms for &[T] {
    fn into_rooms(self) -> Vec<Str> {
        self.iter().map(|r| Str::from(r.as_ref())).collect()
    }
}

/// `[event, ...args]` for a server-side event.
/// How many recovery windows the saved session of a connected socket lasts: saved every half
/// window, so that after its server dies it is found for at least one full window.
pub(crate) const LIVE_SESSION_TTL: u32 = 2;

/// `socket`'s session as the cluster keeps it: its id, private id, `rooms` and shared data.
fn cluster_session(socket: &Socket, pid: Str, rooms: Vec<Str>) -> ClusterSession {
    ClusterSession {
        sid: socket.inner.id.clone(),
        pid,
        rooms,
        data: socket.shared_data(),
    }
}

fn server_event_data<T: Serialize + ?Sized>(
    event: &str,
    args: &T,
) -> Result<Vec<Value>, EmitError> {
    if is_reserved_event(event) {
        return Err(EventError::Reserved(event.to_owned()).into());
    }
    let mut data = vec![Value::String(event.to_owned())];
    match serde_json::to_value(args)? {
        Value::Array(args) => data.extend(args),
        Value::Null => {}
        _ => {
            return Err(EmitError::Serialize(serde::ser::Error::custom(
                "arguments must serialise as a sequence: pass a tuple, e.g. (value,)",
            )))
        }
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The store's sessions and events are dropped when they expire, by the namespace's own
    /// timer, with nothing else touching the store.
    #[tokio::test(start_paused = true)]
    async fn the_recovery_store_expires_on_its_own() {
        let config = RecoveryConfig {
            max_disconnection_duration: Duration::from_millis(100),
            ..RecoveryConfig::default()
        };
        let ns = Arc::new(NsInner::new(
            "/".into(),
            Clock::new(),
            Some(config),
            Parser::json(),
        ));
        ns.drive_recovery_expiry();
        let count = |ns: &NsInner| ns.state().recovery.as_ref().map(|s| s.session_count());
        let session = PersistedSession {
            sid: "s".into(),
            pid: "p".into(),
            rooms: vec!["s".into()],
            data: None,
            since: Default::default(),
        };
        let now = ns.clock.now();
        {
            let mut st = ns.state();
            if let Some(store) = st.recovery.as_mut() {
                store.persist(now, session);
            }
            // The session's typed data, and a stale entry whose session is already gone.
            let mut typed = http::Extensions::new();
            typed.insert(7u8);
            st.kept_data.insert("p".into(), typed.clone());
            st.kept_data.insert("gone".into(), typed);
        }
        let kept = |ns: &NsInner| {
            let mut pids: Vec<String> =
                ns.state().kept_data.keys().map(|p| p.to_string()).collect();
            pids.sort();
            pids
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            count(&ns),
            Some(1),
            "kept within max_disconnection_duration"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(count(&ns), Some(0), "dropped once expired");
        assert!(kept(&ns).is_empty(), "the typed data goes with its session");
    }
}
