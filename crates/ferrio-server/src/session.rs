//! The Socket.IO session: one Engine.IO connection's [`Connection`] machine, its sockets (one
//! per joined namespace) and their event queues, CONNECT handling (namespace middlewares,
//! connection state recovery), acks, and the task that runs each socket's handlers.
//!
//! An event is handled in the session's own task when its socket's task has nothing running
//! or queued (`SocketInner::unfinished` is zero): its handlers are polled once there, and the
//! commands they send (acks, emits) are taken by the session before it waits again, without
//! waking any task. Handlers that wait go on in the socket's task, ahead of the events queued
//! after them.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use ferrio_proto::engine::server::{self as eio, SendOptions};
use ferrio_proto::socket::recovery::{Admission, PersistedSession, Position, Restored};
use ferrio_proto::socket::server::{
    AckError as CoreAckError, CommandError, Config, Connection, DisconnectReason, Event, Output,
    RecoveryRequest,
};
use ferrio_proto::socket::{AckId, EncodedPacket, Packet, RawJson};
use ferrio_proto::{Instant, Str};
use tokio::sync::oneshot;
use tracing::{debug, info_span, warn, Instrument};

use crate::command::{Command, Connected, EmitWithAck};
use crate::namespace::{Namespace, NsInner, RoomEvents};
use crate::queue;
use crate::server::{Lookup, Matcher, Shared, EVENT_QUEUE};
use crate::socket::{ConnectError, DisconnectHandler, Disconnection, Handshake, Socket};
use crate::transport::{App, Machine, NewSession, RequestInfo, SessionLink};

/// The Socket.IO application of the Engine.IO endpoint: makes each new session's machine.
pub(crate) struct SocketApp {
    pub(crate) shared: Arc<Shared>,
    pub(crate) engine_config: eio::Config,
    pub(crate) config: Config,
}

impl App for SocketApp {
    type Machine = SocketMachine;

    fn create(&self, s: NewSession<Command>) -> SocketMachine {
        let conn = Connection::from_handshake(
            s.now,
            s.sid,
            &s.handshake,
            self.engine_config.clone(),
            self.config.clone(),
        );
        SocketMachine {
            conn,
            shared: self.shared.clone(),
            link: s.link,
            request: Arc::new(s.request),
            sockets: HashMap::new(),
            acks: HashMap::new(),
            waiting: VecDeque::new(),
            waiting_bytes: 0,
            max_waiting_bytes: self.engine_config.max_payload.saturating_mul(10),
            decode_error: None,
        }
    }
}

struct Slot {
    socket: Socket,
    events: queue::Sender<SocketWork>,
    /// The socket's span, entered while its handlers run in the session's task.
    span: tracing::Span,
}

/// What a socket's handler task is given, in order.
enum SocketWork {
    /// An event to handle (boxed: a queue keeps room for a few entries once it had them).
    Event(Box<Packet>),
    /// An event the session began to handle in its own task, whose handlers wait for
    /// something: the task goes on with it.
    Resume(crate::BoxFuture<()>),
}

/// One session's machine: its `Connection`, its sockets, the acks and the events in flight.
pub(crate) struct SocketMachine {
    conn: Connection,
    shared: Arc<Shared>,
    link: SessionLink<Command>,
    request: Arc<RequestInfo>,
    /// The joined namespaces' sockets.
    sockets: HashMap<Str, Slot>,
    /// Emits waiting for their ack, by namespace and ack id: exactly those the connection
    /// waits for (an entry leaves with the connection's `Ack` or `AckFailed`, which every
    /// pending ack ends with: answer, timeout, the socket leaving, the connection closing).
    acks: HashMap<(Str, u64), oneshot::Sender<Result<Packet, CoreAckError>>>,
    /// Events that found their socket's queue full, in arrival order (a burst from the client).
    waiting: VecDeque<Packet>,
    waiting_bytes: usize,
    max_waiting_bytes: usize,
    /// What the connection is being closed for, when more is known than the reason (a
    /// decoding error, a failed WebSocket): the description of the disconnections that follow.
    decode_error: Option<Str>,
}

/// A CONNECT being admitted: everything needed to make its socket, here or in a task.
struct Admit {
    ns: Arc<NsInner>,
    link: SessionLink<Command>,
    request: Arc<RequestInfo>,
    auth: RawJson,
    recovery: Option<RecoveryRequest>,
    /// The private id of a fresh session (with connection state recovery on).
    fresh_pid: Option<Str>,
    /// The id of the socket unless it recovers its previous one.
    fresh_id: Str,
    /// The session the cluster handed back, when it keeps recovery
    /// ([`Admit::take_cluster_session`]).
    taken: Option<Restored>,
}

impl Admit {
    /// Makes the socket now, runs its middlewares when they must run, and reports the outcome
    /// to the session (which answers the CONNECT).
    async fn admit_and_report(self) {
        let link = self.link.clone();
        let now = self.ns.now();
        let (socket, restored, run) = self.socket(now);
        let result = if run {
            run_middlewares(&socket).await
        } else {
            Ok(())
        };
        link.send_waiting(Command::Connected(Box::new(Connected {
            socket,
            result,
            restored,
        })))
        .await;
    }

    /// True if the session to recover is kept by the cluster ([`crate::ClusterRecovery`]):
    /// it is asked for it in a task before the socket is made.
    fn recovers_from_cluster(&self) -> bool {
        self.recovery.as_ref().is_some_and(|r| r.offset.is_some())
            && self.ns.shared_recovery().is_some()
    }

    /// Asks the cluster for the session the client wants back (with an offset only, as the
    /// reference: a client with no offset starts anew). A failure to reach the cluster also
    /// starts a fresh session.
    async fn take_cluster_session(&mut self) {
        let (Some(request), Some(adapter)) = (self.recovery.as_ref(), self.ns.adapter.get()) else {
            return;
        };
        let (Some(offset), Some(log)) = (request.offset.as_deref(), adapter.recovery()) else {
            return;
        };
        match log.restore(&request.pid, offset).await {
            Ok(Some(r)) => {
                self.taken = Some(Restored {
                    session: PersistedSession {
                        sid: r.session.sid,
                        pid: r.session.pid,
                        rooms: r.session.rooms,
                        data: (!r.session.data.is_null())
                            .then(|| RawJson::from_value(&r.session.data)),
                        since: Position::START,
                    },
                    missed: r.missed,
                });
            }
            Ok(None) => debug!(nsp = %self.ns.name, "no session to recover in the cluster"),
            Err(e) => warn!(nsp = %self.ns.name, "cannot recover from the cluster: {e}"),
        }
    }

    /// Makes the socket: with connection state recovery on, the store decides between the
    /// previous session back (id, rooms to join, data) and a fresh one. Also says whether the
    /// middlewares run.
    fn socket(self, now: Instant) -> (Socket, Option<Restored>, bool) {
        let shared = self.ns.shared_recovery().is_some();
        let skip_middlewares = self
            .ns
            .recovery_config
            .as_ref()
            .is_some_and(|c| c.skip_middlewares);
        let (admission, typed) = if shared {
            // The cluster keeps the sessions: the one it handed back, or a fresh one.
            let admission = self.fresh_pid.map(|fresh_pid| match self.taken {
                Some(restored) => Admission {
                    pid: restored.session.pid.clone(),
                    since: Position::START,
                    run_middlewares: !skip_middlewares,
                    restored: Some(restored),
                },
                None => Admission {
                    restored: None,
                    pid: fresh_pid,
                    since: Position::START,
                    run_middlewares: true,
                },
            });
            (admission, None)
        } else {
            let mut guard = self.ns.state();
            let st = &mut *guard;
            match (st.recovery.as_mut(), self.fresh_pid) {
                (Some(store), Some(fresh_pid)) => {
                    let admission = store.admit(now, self.recovery.as_ref(), fresh_pid);
                    // The store hands a session over once, whatever the outcome: so its typed
                    // data leaves the namespace too.
                    let typed = self
                        .recovery
                        .as_ref()
                        .and_then(|r| st.kept_data.remove(r.pid.as_str()));
                    (Some(admission), typed)
                }
                _ => (None, None),
            }
        };
        let (restored, pid, run_middlewares) = match admission {
            Some(a) => (a.restored, Some(a.pid), a.run_middlewares),
            None => (None, None, true),
        };
        let id = restored
            .as_ref()
            .map_or(self.fresh_id, |r| r.session.sid.clone());
        let socket = Socket::new(
            id,
            self.ns,
            self.link,
            Handshake::new(self.request, self.auth),
            restored.is_some(),
            pid,
        );
        if let Some(r) = &restored {
            let shared = r.session.data.as_ref().and_then(|d| d.to_value().ok());
            socket.restore_data(typed, shared);
        }
        (socket, restored, run_middlewares)
    }
}

/// Runs the connect middlewares of `socket`'s namespace in order, up to the first refusal.
async fn run_middlewares(socket: &Socket) -> Result<(), ConnectError> {
    for middleware in socket.inner.ns.middlewares() {
        middleware(socket.clone()).await?;
    }
    Ok(())
}

impl SocketMachine {
    /// The socket joined to namespace `nsp`, if any. Most sessions join one namespace: its
    /// name is compared without hashing it.
    fn slot(&self, nsp: &str) -> Option<&Slot> {
        if self.sockets.len() == 1 {
            let (name, slot) = self.sockets.iter().next()?;
            return (&**name == nsp).then_some(slot);
        }
        self.sockets.get(nsp)
    }

    fn is_current(&self, socket: &Socket) -> bool {
        // The usual case, one namespace and the command for its socket: known by the pointer,
        // without comparing names.
        if self.sockets.len() == 1
            && self
                .sockets
                .values()
                .next()
                .is_some_and(|s| Arc::ptr_eq(&s.socket.inner, &socket.inner))
        {
            return true;
        }
        self.slot(socket.nsp()).is_some_and(|s| {
            Arc::ptr_eq(&s.socket.inner, &socket.inner) || s.socket.id() == socket.id()
        })
    }

    fn on_connect(
        &mut self,
        now: Instant,
        nsp: Str,
        auth: RawJson,
        recovery: Option<RecoveryRequest>,
    ) {
        match self.shared.lookup(&nsp) {
            Lookup::Found(ns) => self.admit(now, ns, nsp, auth, recovery),
            Lookup::Decide(parents) => self.decide(now, nsp, auth, recovery, parents),
            Lookup::Unknown => {
                debug!(%nsp, "CONNECT to an unknown namespace");
                let _ = self.conn.reject_unknown_namespace(now, &nsp);
            }
        }
    }

    /// A CONNECT to a name only async dynamic matchers can accept: they are asked in a task,
    /// which then admits the socket (middlewares included) or refuses the name, and reports
    /// as the middlewares do ([`Command::Connected`]); the session goes on meanwhile.
    fn decide(
        &mut self,
        now: Instant,
        nsp: Str,
        auth: RawJson,
        recovery: Option<RecoveryRequest>,
        parents: Vec<(Matcher, Namespace)>,
    ) {
        // Children get the server's recovery configuration.
        let fresh_pid = if self.shared.recovery.is_some() {
            crate::id::generate().map(Some)
        } else {
            Some(None)
        };
        let fresh_id = self.conn.fixed_socket_id(&nsp).or_else(crate::id::generate);
        let (Some(fresh_pid), Some(fresh_id)) = (fresh_pid, fresh_id) else {
            let _ = self.conn.reject(now, &nsp, "Bad request", None);
            return;
        };
        let shared = self.shared.clone();
        let link = self.link.clone();
        let request = self.request.clone();
        let auth_value = auth.to_value().unwrap_or(serde_json::Value::Null);
        let handshake = Handshake::new(request.clone(), auth.clone());
        tokio::spawn(
            async move {
                let decided = shared
                    .clone()
                    .decide(nsp.clone(), auth_value, handshake, parents)
                    .await;
                let Some(ns) = decided else {
                    debug!(%nsp, "CONNECT to a namespace no dynamic parent accepts");
                    // The refusal names the namespace through its socket: one of a namespace
                    // that is in no server.
                    let nowhere =
                        Arc::new(NsInner::new(nsp, shared.clock, None, shared.parser.clone()));
                    let socket = Socket::new(
                        fresh_id,
                        nowhere,
                        link.clone(),
                        Handshake::new(request, auth),
                        false,
                        None,
                    );
                    link.send_waiting(Command::Connected(Box::new(Connected {
                        socket,
                        result: Err(ConnectError::new(
                            ferrio_proto::socket::server::INVALID_NAMESPACE,
                        )),
                        restored: None,
                    })))
                    .await;
                    return;
                };
                let leaving = recovery
                    .as_ref()
                    .and_then(|r| ns.inner.state().leaving.get(r.pid.as_str()).cloned());
                if let Some(previous) = leaving {
                    previous.left().await;
                }
                let mut admit = Admit {
                    ns: ns.inner.clone(),
                    link: link.clone(),
                    request,
                    auth,
                    recovery,
                    fresh_pid,
                    fresh_id,
                    taken: None,
                };
                if admit.recovers_from_cluster() {
                    admit.take_cluster_session().await;
                }
                admit.admit_and_report().await;
            }
            .in_current_span(),
        );
    }

    /// A CONNECT to namespace `ns`: admitted here, or in a task when middlewares must run or a
    /// socket it recovers is still leaving.
    fn admit(
        &mut self,
        now: Instant,
        ns: Namespace,
        nsp: Str,
        auth: RawJson,
        recovery: Option<RecoveryRequest>,
    ) {
        // The ids a fresh socket gets (the randomness is the driver's): with connection state
        // recovery on, a private id too, unless the store gives the previous session back.
        let (recovering, leaving) = {
            let st = ns.inner.state();
            let leaving = recovery
                .as_ref()
                .and_then(|r| st.leaving.get(r.pid.as_str()).cloned());
            (st.recovery.is_some(), leaving)
        };
        let fresh_pid = if recovering {
            crate::id::generate().map(Some)
        } else {
            Some(None)
        };
        let fresh_id = self.conn.fixed_socket_id(&nsp).or_else(crate::id::generate);
        let (Some(fresh_pid), Some(fresh_id)) = (fresh_pid, fresh_id) else {
            let _ = self.conn.reject(now, &nsp, "Bad request", None);
            return;
        };
        let admit = Admit {
            ns: ns.inner.clone(),
            link: self.link.clone(),
            request: self.request.clone(),
            auth,
            recovery,
            fresh_pid,
            fresh_id,
            taken: None,
        };
        if leaving.is_some() || admit.recovers_from_cluster() {
            // The socket to recover is still running its `disconnecting` handlers (its session
            // is kept once they are done), or the cluster keeps the session: the admission
            // waits for that in a task (the core waits for this CONNECT's answer meanwhile, as
            // for middlewares).
            let mut admit = admit;
            tokio::spawn(
                async move {
                    if let Some(previous) = leaving {
                        previous.left().await;
                    }
                    if admit.recovers_from_cluster() {
                        admit.take_cluster_session().await;
                    }
                    admit.admit_and_report().await;
                }
                .in_current_span(),
            );
            return;
        }
        let (socket, restored, run) = admit.socket(now);
        if !run || ns.inner.middlewares().is_empty() {
            self.accept(now, socket, restored);
            return;
        }
        let link = self.link.clone();
        tokio::spawn(
            async move {
                let result = run_middlewares(&socket).await;
                link.send_waiting(Command::Connected(Box::new(Connected {
                    socket,
                    result,
                    restored,
                })))
                .await;
            }
            .in_current_span(),
        );
    }

    fn accept(&mut self, now: Instant, socket: Socket, restored: Option<Restored>) {
        let ns = socket.inner.ns.clone();
        let id = socket.inner.id.clone();
        let nsp = ns.name.clone();
        let events = {
            let mut st = ns.state();
            if ns.is_removed() {
                // Its last socket left and `cleanup_empty_child_namespaces` took it out of the
                // server while this CONNECT was being admitted: decided again, as a new one.
                drop(st);
                debug!(%nsp, "namespace removed meanwhile: CONNECT decided again");
                let auth = socket.handshake().auth_raw().clone();
                self.on_connect(now, nsp, auth, None);
                return;
            }
            let mut events = Vec::new();
            if st
                .sockets
                .get(&id)
                .is_some_and(|old| !Arc::ptr_eq(&old.inner, &socket.inner))
            {
                // A socket with this id (an EIO 3 client's, which is fixed) still runs its
                // `disconnecting` handlers: the new one takes the id over, the old one leaves
                // its rooms now.
                st.sockets.remove(&id);
                events.extend(st.rooms.remove_socket(&id));
            }
            events.extend(st.rooms.add_socket(id.clone()));
            let since = match &restored {
                Some(r) => {
                    events.extend(st.rooms.join(&id, r.session.rooms.iter().cloned()));
                    Some(r.session.since)
                }
                None => st.recovery.as_ref().map(|s| s.position()),
            };
            if let Some(since) = since {
                let _ = socket.inner.since.set(since);
            }
            st.sockets.insert(id.clone(), socket.clone());
            RoomEvents::new(events, &st)
        };
        ns.room_events(events);
        let missed: Vec<EncodedPacket> = restored
            .iter()
            .flat_map(|r| r.missed.iter().map(|p| ns.parser.encode(p)))
            .collect();
        let pid = socket.inner.pid.clone();
        if let Err(e) = self
            .conn
            .accept(now, &nsp, &id, pid.as_deref(), missed.iter())
        {
            debug!(%nsp, socket = %id, "not accepted: {e}");
            let events = {
                let mut st = ns.state();
                st.sockets.remove(&id);
                let events = st.rooms.remove_socket(&id);
                RoomEvents::with_socket(events, &st, Some(&id))
            };
            ns.room_events(events);
            return;
        }
        debug!(%nsp, socket = %id, recovered = socket.recovered(), "socket connected");
        ns.drive_recovery_expiry();
        socket.mark_connected();
        ns.save_live_session(&socket);
        let (tx, rx) = queue::channel(EVENT_QUEUE);
        let span = info_span!("socket", %nsp, id = %id);
        // The connection handlers run first, in the socket's task: events wait behind them.
        socket.inner.unfinished.store(1, Ordering::Release);
        self.sockets.insert(
            nsp.clone(),
            Slot {
                socket: socket.clone(),
                events: tx,
                span: span.clone(),
            },
        );
        tokio::spawn(run_socket(socket, rx).instrument(span));
    }

    /// Hands an event to its socket. When nothing of the socket is running or queued (its
    /// task is idle), its handlers start here, in the session's task: most finish at once (an
    /// ack, an emit), without a wake-up of the socket's task and another of the session's
    /// for the commands they send. Handlers that wait for something go on in the socket's
    /// task, and the events after them queue behind them there: one socket's events are
    /// still handled one at a time, in order.
    fn on_event(&mut self, now: Instant, packet: Packet) {
        if !self.waiting.is_empty() {
            self.wait(now, packet);
            return;
        }
        let Some(slot) = self.slot(packet.nsp()) else {
            return;
        };
        if slot.socket.inner.unfinished.load(Ordering::Acquire) == 0 && inline_budget() {
            let work = {
                let _running = self.link.run_here();
                let _span = slot.span.enter();
                start_event(&slot.socket, packet)
            };
            if let Some(rest) = work {
                // The task is idle and its queue empty: there is room.
                let _ = send_work(slot, SocketWork::Resume(rest));
            }
            return;
        }
        if let Err(packet) = send_work(slot, SocketWork::Event(Box::new(packet))) {
            self.wait(now, *packet);
        }
    }

    /// Keeps an event until its socket's queue has room; past the byte bound the connection
    /// is closed.
    fn wait(&mut self, now: Instant, packet: Packet) {
        self.waiting_bytes += packet_size(&packet);
        self.waiting.push_back(packet);
        if self.waiting_bytes > self.max_waiting_bytes {
            debug!("events waiting for their handlers past the bound: closing the connection");
            self.waiting.clear();
            self.waiting_bytes = 0;
            self.conn.close(now, DisconnectReason::BufferFull);
        }
    }

    /// Hands the waiting events to their sockets while there is room, in order.
    fn flush_waiting(&mut self) {
        while let Some(packet) = self.waiting.pop_front() {
            let size = packet_size(&packet);
            let Some(slot) = self.slot(packet.nsp()) else {
                self.waiting_bytes = self.waiting_bytes.saturating_sub(size);
                continue;
            };
            match send_work(slot, SocketWork::Event(Box::new(packet))) {
                Ok(()) => self.waiting_bytes = self.waiting_bytes.saturating_sub(size),
                Err(packet) => {
                    self.waiting.push_front(*packet);
                    return;
                }
            }
        }
    }

    fn on_disconnect(&mut self, now: Instant, nsp: Str, reason: DisconnectReason) {
        let Some(slot) = self.sockets.remove(&nsp) else {
            return;
        };
        // Events of this socket still waiting are not for a socket that may join again later.
        let before = self.waiting.len();
        let mut freed = 0;
        self.waiting.retain(|p| {
            let keep = p.nsp() != &nsp;
            if !keep {
                freed += packet_size(p);
            }
            keep
        });
        if self.waiting.len() != before {
            self.waiting_bytes = self.waiting_bytes.saturating_sub(freed);
        }
        let socket = slot.socket;
        let ns = socket.inner.ns.clone();
        debug!(%nsp, socket = %socket.id(), %reason, "socket disconnected");
        let disconnection = Disconnection::new(reason, self.decode_error.clone());
        socket.mark_disconnected(disconnection.clone());
        let handlers = socket.disconnecting_handlers();
        let runtime = tokio::runtime::Handle::try_current();
        match runtime {
            Ok(runtime) if !handlers.is_empty() => {
                if let Some(pid) = &socket.inner.pid {
                    ns.state().leaving.insert(pid.clone(), socket.clone());
                }
                let span = info_span!("socket", %nsp, id = %socket.id());
                runtime.spawn(run_disconnecting(socket, handlers, disconnection).instrument(span));
            }
            // No handler to wait for (or no runtime left to run them on).
            _ => ns.remove_socket(&socket, now),
        }
        // Dropping `slot.events` ends the socket's task once it handled what was queued.
    }
}

impl Drop for SocketMachine {
    /// A session ended without its sockets leaving (its task stopped early): they leave now,
    /// as if the transport had closed, so that they are not left in their rooms.
    fn drop(&mut self) {
        let nsps: Vec<Str> = self.sockets.keys().cloned().collect();
        for nsp in nsps {
            let now = match self.sockets.get(&nsp) {
                Some(slot) => slot.socket.inner.ns.now(),
                None => continue,
            };
            self.on_disconnect(now, nsp, DisconnectReason::TransportClose);
        }
    }
}

/// Runs a socket's `disconnecting` handlers, then takes it out of its namespace.
async fn run_disconnecting(
    socket: Socket,
    handlers: Vec<DisconnectHandler>,
    disconnection: Disconnection,
) {
    use futures_util::FutureExt as _;
    use std::panic::AssertUnwindSafe;
    for handler in handlers {
        if AssertUnwindSafe(handler(socket.clone(), disconnection.clone()))
            .catch_unwind()
            .await
            .is_err()
        {
            tracing::error!("disconnecting handler panicked");
        }
    }
    let ns = socket.inner.ns.clone();
    ns.remove_socket(&socket, ns.now());
}

/// What a waiting packet costs: its JSON text and attachments, plus a fixed overhead for the
/// packet itself and its buffers, so that a flood of tiny events is bounded too.
fn packet_size(packet: &Packet) -> usize {
    const OVERHEAD: usize = 128;
    OVERHEAD
        + packet.data().map_or(0, |d| d.as_str().len())
        + packet
            .attachments()
            .iter()
            .map(|a| a.len() + OVERHEAD)
            .sum::<usize>()
}

/// Queues work for a socket's task, counted in its `unfinished` until the task is done with
/// it. An event that finds the queue full is given back; work for a task that is gone is
/// dropped.
fn send_work(slot: &Slot, work: SocketWork) -> Result<(), Box<Packet>> {
    let unfinished = &slot.socket.inner.unfinished;
    unfinished.fetch_add(1, Ordering::AcqRel);
    match slot.events.try_send(work) {
        Ok(()) => Ok(()),
        Err(e) => {
            unfinished.fetch_sub(1, Ordering::AcqRel);
            match e {
                queue::TrySendError::Full(SocketWork::Event(packet)) => Err(packet),
                _ => Ok(()),
            }
        }
    }
}

/// Whether the session's task may handle one more event itself: each spends a unit of the
/// task's cooperative budget, so that a burst of events (one polling POST holds many) still
/// lets other tasks run now and then; without budget, the event goes to the socket's task.
fn inline_budget() -> bool {
    use std::task::{Context, Poll, Waker};
    let mut cx = Context::from_waker(Waker::noop());
    match tokio::task::coop::poll_proceed(&mut cx) {
        Poll::Ready(coop) => {
            coop.made_progress();
            true
        }
        Poll::Pending => false,
    }
}

/// Starts handling an event in the session's task (see [`SocketMachine::on_event`]): its
/// handlers run until they finish or wait for something. What is left to run, if anything,
/// is returned, for the socket's task.
fn start_event(socket: &Socket, packet: Packet) -> Option<crate::BoxFuture<()>> {
    use std::panic::AssertUnwindSafe;
    use std::task::{Context, Poll, Waker};
    if socket.handlers_only() {
        return start_handlers(socket, packet);
    }
    let mut work: crate::BoxFuture<()> = Box::pin(handle_event(socket.clone(), packet));
    // Polled without a waker: what is left is polled again by the socket's task, which then
    // waits with its own.
    let mut cx = Context::from_waker(Waker::noop());
    match std::panic::catch_unwind(AssertUnwindSafe(|| work.as_mut().poll(&mut cx))) {
        Ok(Poll::Ready(())) => None,
        Ok(Poll::Pending) => Some(work),
        Err(_) => {
            tracing::error!("event handling panicked");
            None
        }
    }
}

/// [`start_event`] for a socket without event middlewares and catch-all listeners (the usual
/// one): the event's handlers are called and polled once here, one after the other, as
/// [`handle_event`] runs them, without boxing the event's handling. A handler that waits
/// goes on in what is returned, the handlers after it then.
fn start_handlers(socket: &Socket, packet: Packet) -> Option<crate::BoxFuture<()>> {
    use std::panic::AssertUnwindSafe;
    use std::task::{Context, Poll, Waker};
    let handlers = socket.handlers(&packet.event_name()?)?;
    // The name, should a handler panic (the last handler takes the message itself).
    let data = packet.data().cloned();
    let event = move || {
        let data = data.clone()?;
        let packet = Packet::event(ferrio_proto::socket::MAIN_NAMESPACE, data, Vec::new());
        packet.event_name().map(std::borrow::Cow::into_owned)
    };
    let mut message = Some(socket.message(packet));
    let mut cx = Context::from_waker(Waker::noop());
    for (i, (_, handler)) in handlers.iter().enumerate() {
        let again = if i + 1 == handlers.len() {
            message.take()
        } else {
            message.as_ref().map(Socket::message_again)
        }?;
        let started = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let mut running = handler(socket.clone(), again);
            match running.as_mut().poll(&mut cx) {
                Poll::Ready(()) => None,
                Poll::Pending => Some(running),
            }
        }));
        let running = match started {
            Ok(None) => continue,
            Ok(Some(running)) => running,
            Err(_) => {
                tracing::error!(
                    event = event().unwrap_or_default(),
                    "event handler panicked"
                );
                continue;
            }
        };
        // It waits: it and the handlers after it go on in the socket's task.
        let socket = socket.clone();
        return Some(Box::pin(async move {
            use futures_util::FutureExt as _;
            if AssertUnwindSafe(running).catch_unwind().await.is_err() {
                tracing::error!(
                    event = event().unwrap_or_default(),
                    "event handler panicked"
                );
            }
            if let Some(message) = message {
                call_handlers(&socket, &handlers, i + 1, &message).await;
            }
        }));
    }
    None
}

/// Runs a socket's handlers: the connection handlers, then each event in order, then, once
/// the socket left its namespace, the disconnect handlers. A panicking handler is logged; the
/// socket goes on.
async fn run_socket(socket: Socket, mut events: queue::Receiver<SocketWork>) {
    use futures_util::FutureExt as _;
    use std::panic::AssertUnwindSafe;
    for handler in socket.inner.ns.connection_handlers() {
        if AssertUnwindSafe(handler(socket.clone()))
            .catch_unwind()
            .await
            .is_err()
        {
            tracing::error!("connection handler panicked");
        }
    }
    socket.inner.unfinished.fetch_sub(1, Ordering::AcqRel);
    while let Some(work) = events.recv().await {
        match work {
            SocketWork::Event(packet) => handle_event(socket.clone(), *packet).await,
            SocketWork::Resume(rest) => {
                if AssertUnwindSafe(rest).catch_unwind().await.is_err() {
                    tracing::error!("event handling panicked");
                }
            }
        }
        socket.inner.unfinished.fetch_sub(1, Ordering::AcqRel);
    }
    socket.left().await;
    let reason = socket.reason();
    for handler in socket.disconnect_handlers() {
        if AssertUnwindSafe(handler(socket.clone(), reason.clone()))
            .catch_unwind()
            .await
            .is_err()
        {
            tracing::error!("disconnect handler panicked");
        }
    }
}

/// Handles one event: the event middlewares, the catch-all listeners, then the event's
/// handlers, one after the other. A panicking handler is logged; the others still run.
async fn handle_event(socket: Socket, packet: Packet) {
    use futures_util::FutureExt as _;
    use std::panic::AssertUnwindSafe;
    let Some(name) = packet.event_name() else {
        return;
    };
    let middlewares = socket.event_middlewares();
    if !middlewares.is_empty() {
        let name = name.clone().into_owned();
        let Ok(args) = crate::socket::RawArgs::from_event(&packet) else {
            return;
        };
        for middleware in middlewares {
            let outcome = AssertUnwindSafe(middleware(socket.clone(), name.clone(), args.clone()))
                .catch_unwind()
                .await;
            let message = match outcome {
                Ok(Ok(())) => continue,
                Ok(Err(message)) => message,
                Err(_) => {
                    tracing::error!(event = name, "event middleware panicked");
                    return;
                }
            };
            for handler in socket.error_handlers() {
                if AssertUnwindSafe(handler(socket.clone(), message.clone()))
                    .catch_unwind()
                    .await
                    .is_err()
                {
                    tracing::error!("error handler panicked");
                }
            }
            return;
        }
    }
    let any = socket.any_handlers();
    if !any.is_empty() {
        let name = name.clone().into_owned();
        match crate::socket::RawArgs::from_event(&packet) {
            Ok(args) => {
                for listener in any {
                    if AssertUnwindSafe(listener(socket.clone(), name.clone(), args.clone()))
                        .catch_unwind()
                        .await
                        .is_err()
                    {
                        tracing::error!(event = name, "catch-all handler panicked");
                    }
                }
            }
            Err(e) => tracing::debug!(event = name, "arguments unreadable: {e}"),
        }
    }
    let Some(handlers) = socket.handlers(&name) else {
        return;
    };
    call_handlers(&socket, &handlers, 0, &socket.message(packet)).await;
}

/// Calls `handlers` from index `from` on, one after the other with `message`, each awaited;
/// a panicking one is logged and the next runs.
async fn call_handlers(
    socket: &Socket,
    handlers: &crate::socket::Listeners,
    from: usize,
    message: &crate::socket::Message,
) {
    use futures_util::FutureExt as _;
    use std::panic::AssertUnwindSafe;
    for (_, handler) in handlers.iter().skip(from) {
        let again = Socket::message_again(message);
        if AssertUnwindSafe(handler(socket.clone(), again))
            .catch_unwind()
            .await
            .is_err()
        {
            tracing::error!(event = %message.event(), "event handler panicked");
        }
    }
}

impl Machine for SocketMachine {
    type Command = Command;

    fn handle_input(&mut self, now: Instant, input: eio::Input) -> Result<(), eio::RequestError> {
        self.conn.handle_input(now, input)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.conn.poll_timeout()
    }

    fn has_work(&self) -> bool {
        self.conn.has_output() || !self.waiting.is_empty()
    }

    fn poll_transport(&mut self, now: Instant) -> Option<eio::Io> {
        self.flush_waiting();
        loop {
            let event = match self.conn.poll_output() {
                Some(Output::Io(io)) => return Some(io),
                Some(Output::Event(event)) => event,
                None => {
                    debug_assert_eq!(self.acks.len(), self.conn.pending_acks_total());
                    return None;
                }
            };
            match event {
                Event::Connect {
                    nsp,
                    auth,
                    recovery,
                } => self.on_connect(now, nsp, auth, recovery),
                Event::Event(packet) => self.on_event(now, packet),
                Event::Ack(packet) => {
                    if let Some(id) = packet.id().and_then(AckId::as_u64) {
                        if let Some(reply) = self.acks.remove(&(packet.nsp().clone(), id)) {
                            let _ = reply.send(Ok(packet));
                        }
                    }
                }
                Event::AckFailed { nsp, id, error } => {
                    if let Some(reply) = self.acks.remove(&(nsp, id)) {
                        let _ = reply.send(Err(error));
                    }
                }
                Event::Disconnect { nsp, reason } => self.on_disconnect(now, nsp, reason),
                Event::Error(e) => {
                    debug!("closing the connection: {e}");
                    self.decode_error = Some(Str::from(e.to_string()));
                }
                Event::Closed(reason) => debug!(%reason, "connection closed"),
                // A later kind of event this server does not handle yet.
                _ => {}
            }
        }
    }

    fn wait_for_room(&self) -> Option<crate::BoxFuture<()>> {
        let packet = self.waiting.front()?;
        let Some(slot) = self.slot(packet.nsp()) else {
            // Its socket is gone: the next flush drops it and goes on with the others.
            return Some(Box::pin(std::future::ready(())));
        };
        let events = slot.events.clone();
        Some(Box::pin(async move {
            // Only this session sends on the queue, so the room is still there when the
            // waiting events are flushed.
            events.room().await;
        }))
    }

    fn handle_command(&mut self, now: Instant, command: Command) {
        match command {
            Command::Send {
                socket,
                packet,
                volatile,
                compress,
            } => {
                if self.is_current(&socket) {
                    let options = SendOptions { volatile, compress };
                    // A volatile packet the transport cannot take is dropped, as the reference
                    // drops it; a closed connection takes nothing.
                    let _ = self.conn.send(now, &packet, socket.nsp(), options);
                }
            }
            Command::EmitWithAck(emit) => {
                let EmitWithAck {
                    socket,
                    packet,
                    ack_id,
                    timeout,
                    compress,
                    reply,
                } = *emit;
                let nsp = &socket.inner.ns.name;
                let sent = if self.is_current(&socket) {
                    let options = SendOptions {
                        volatile: false,
                        compress,
                    };
                    self.conn
                        .emit_with_ack_options(now, &packet, nsp, ack_id, timeout, options)
                } else {
                    Err(CommandError::NotConnected)
                };
                match sent {
                    Ok(()) => {
                        self.acks.insert((nsp.clone(), ack_id), reply);
                    }
                    Err(CommandError::TooManyPendingAcks) => {
                        debug!(%nsp, "emit with ack refused: too many pending acks");
                        let _ = reply.send(Err(CoreAckError::TooManyPendingAcks));
                    }
                    Err(_) => {
                        let _ = reply.send(Err(CoreAckError::Disconnected));
                    }
                }
            }
            Command::Disconnect(socket) => {
                if self.is_current(&socket) {
                    let _ = self.conn.disconnect(now, socket.nsp());
                }
            }
            Command::Close(socket) => {
                if self.is_current(&socket) {
                    // As the reference's `socket.disconnect(true)`: this socket leaves with
                    // `server namespace disconnect`, the others with `forced server close`.
                    let _ = self.conn.disconnect(now, socket.nsp());
                    self.conn.close(now, DisconnectReason::ForcedServerClose);
                }
            }
            Command::CloseTransport(socket) => {
                if self.is_current(&socket) {
                    self.conn.close(now, DisconnectReason::ForcedClose);
                }
            }
            Command::Connected(connected) => {
                let Connected {
                    socket,
                    result,
                    restored,
                } = *connected;
                match result {
                    Ok(()) => self.accept(now, socket, restored),
                    Err(e) => {
                        debug!(nsp = socket.nsp(), "CONNECT refused: {e}");
                        let data = e.data_json();
                        // If more CONNECTs came while the middlewares ran, the refusal starts
                        // a new attempt: an `Event::Connect` that `poll_transport` hands to
                        // `on_connect`, which runs them again. The core asks for one attempt
                        // per namespace at a time, so two never run at once.
                        let _ = self
                            .conn
                            .reject(now, socket.nsp(), e.message(), data.as_ref());
                    }
                }
            }
        }
    }

    fn transport_failed(&mut self, description: Str) {
        self.decode_error.get_or_insert(description);
    }

    fn close_overloaded(&mut self, now: Instant) {
        self.conn.close(now, DisconnectReason::BufferFull);
    }

    fn close_shutdown(&mut self, now: Instant) {
        self.conn.close(now, DisconnectReason::ServerShuttingDown);
    }

    fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }

    fn engine(&self) -> &eio::Session {
        self.conn.engine()
    }
}
