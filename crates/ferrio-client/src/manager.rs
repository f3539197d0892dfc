//! The [`Manager`] handle and the task driving the core's manager machine.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use ferrio_proto::engine::client::{Input, Io, Transport, TransportId};
use ferrio_proto::socket::client::{
    self as core, AckId, Event, ManagerConfig, OpenFailures, Output, SocketId,
};
use ferrio_proto::socket::{Packet, RawJson};
use ferrio_proto::Instant;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

pub use ferrio_proto::socket::client::DisconnectReason;

pub(crate) use crate::command::Command;
use crate::command::{self, Commands, Setting};
use crate::error::{AckError, ConnectError, ConnectionError, EmitError};
use crate::socket::{self, Item, SocketShared};
use crate::transport::{Completion, Endpoint, WsCommand};
use crate::SocketBuilder;

/// Events for a socket's handlers waiting in the socket's queue. When it is full the
/// connection's task stops reading the transports (what the last transport message carried
/// waits in the task, in order) until the handlers take an event: a server sending faster than
/// the handlers run is slowed down by TCP, and no event is lost or reordered.
///
/// One socket's full queue stops the reading for the whole connection (every namespace). A
/// handler that waits for the server (an acknowledgement) while its queue is full waits until
/// the acknowledgement times out, or the heartbeat does (`ping timeout`: the connection closes,
/// the acknowledgement fails, and the manager reconnects).
pub const EVENT_QUEUE: usize = 256;

/// Events for the [`Manager::on_event`] listeners waiting in their queue. When it is full the
/// connection's task waits for the listeners (they are synchronous functions: they never wait
/// on the task).
pub const MANAGER_EVENT_QUEUE: usize = 64;

/// Transport reports (HTTP responses, WebSocket messages) waiting for the connection's task.
/// When it is full the reporting task waits: a WebSocket is not read further, so a server cannot
/// make the client buffer without bound.
const TRANSPORT_QUEUE: usize = 32;

/// Frames waiting for a WebSocket's writer. Past it the frames wait in the connection's task
/// and the task takes no command until the writer has room.
const WS_WRITE_QUEUE: usize = 64;

/// Answers of `auth_fn` waiting for the connection's task; the auth task waits for room.
const AUTH_QUEUE: usize = 8;

/// Something that happened to the connection (the reference's Manager events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManagerEvent {
    /// The Engine.IO session opened (`open`).
    Open,
    /// Opening failed (`error`): the transport's failure, the timeout, or another reason.
    Error(ConnectionError),
    /// The server pinged (`ping`).
    Ping,
    /// The connection closed (`close`).
    Close(DisconnectReason),
    /// A reconnection attempt starts (`reconnect_attempt`; 1 for the first).
    ReconnectAttempt(u32),
    /// A reconnection attempt succeeded (`reconnect`).
    Reconnect(u32),
    /// A reconnection attempt failed (`reconnect_error`), and why.
    ReconnectError(ConnectionError),
    /// No attempts left (`reconnect_failed`).
    ReconnectFailed,
}

type ManagerHandler = Arc<dyn Fn(&ManagerEvent) + Send + Sync>;

/// What the driver tells the handles about the Engine.IO session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct EngineStatus {
    sid: Option<String>,
    transport: Option<Transport>,
}

pub(crate) struct ManagerShared {
    commands: Arc<Commands>,
    engine: Arc<Mutex<EngineStatus>>,
    pub(crate) sockets: Mutex<HashMap<String, Arc<SocketShared>>>,
    handlers: Arc<Mutex<Vec<ManagerHandler>>>,
    /// The parser of every packet (fixed for the connection's life).
    parser: ferrio_proto::socket::Parser,
}

/// One connection to a server, multiplexing the sockets of several namespaces
/// (`socket.io-client`'s `Manager`). Cheap to clone. Built by
/// [`ClientBuilder::manager`](crate::ClientBuilder::manager), or reached from a socket with
/// [`Socket::manager`](crate::Socket::manager).
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = ferrio_client::io("http://localhost:3000").manager()?;
/// manager.on_event(|e| println!("manager: {e:?}"));
/// let admin = manager.socket("/admin").connect().await?;
/// let chat = manager.socket("/chat").connect().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Manager {
    pub(crate) inner: Arc<ManagerShared>,
}

impl Drop for ManagerShared {
    fn drop(&mut self) {
        self.commands.close_senders();
    }
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager").finish_non_exhaustive()
    }
}

impl Manager {
    /// Starts the driver task of a manager on the current tokio runtime.
    pub(crate) fn spawn(
        config: ManagerConfig,
        endpoint: Endpoint,
        handlers: Vec<ManagerHandler>,
    ) -> Result<Manager, crate::Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| crate::Error::NoRuntime)?;
        let commands = Arc::new(Commands::default());
        let command_rx = command::Receiver(commands.clone());
        let handlers = Arc::new(Mutex::new(handlers));
        let engine = Arc::new(Mutex::new(EngineStatus::default()));
        let inner = Arc::new(ManagerShared {
            commands,
            engine: engine.clone(),
            sockets: Mutex::new(HashMap::new()),
            handlers: handlers.clone(),
            parser: config.parser.clone(),
        });
        let (events, event_rx) = mpsc::channel(MANAGER_EVENT_QUEUE);
        runtime.spawn(dispatch_manager_events(handlers, event_rx));
        let (completions, completion_rx) = mpsc::channel(TRANSPORT_QUEUE);
        let (auth_tx, auth_rx) = mpsc::channel(AUTH_QUEUE);
        let driver = Driver {
            machine: core::Manager::new(config),
            start: tokio::time::Instant::now(),
            endpoint: Arc::new(endpoint),
            completions,
            gets: HashMap::new(),
            websockets: HashMap::new(),
            sockets: HashMap::new(),
            acks: HashMap::new(),
            events,
            manager_events: VecDeque::new(),
            auth_tx,
            manager: Arc::downgrade(&inner),
            engine,
            last_engine: EngineStatus::default(),
            failures: OpenFailures::default(),
        };
        runtime.spawn(driver.run(command_rx, completion_rx, auth_rx));
        Ok(Manager { inner })
    }

    /// Queues a command for the driver (see [`Commands::push`] for the bound).
    pub(crate) fn command(&self, command: Command) -> Result<(), EmitError> {
        self.inner.commands.push(command, || {
            self.inner
                .sockets
                .lock()
                .map(|s| s.values().map(|s| s.nsp.clone()).collect())
                .unwrap_or_default()
        })
    }

    /// A builder for the socket of namespace `nsp` on this connection (`manager.socket(nsp)`).
    pub fn socket(&self, nsp: &str) -> SocketBuilder {
        SocketBuilder::new(self.clone(), nsp)
    }

    /// Adds a listener of the connection's events (`open`, `close`, `reconnect_attempt`,
    /// `reconnect`, `reconnect_error`, `reconnect_failed`, ...). Listeners run on a task of
    /// their own, in order.
    pub fn on_event(&self, listener: impl Fn(&ManagerEvent) + Send + Sync + 'static) {
        if let Ok(mut h) = self.inner.handlers.lock() {
            h.push(Arc::new(listener));
        }
    }

    /// Disconnects every socket and closes the connection (one opened by [`Manager::open`]
    /// too), without reconnecting.
    pub fn close(&self) {
        let _ = self.command(Command::Close);
    }

    /// Opens the connection (`manager.open()`, `manager.connect()`) without waiting: with no
    /// socket at all, or again after [`Manager::close`] (the sockets stay disconnected until
    /// their [`Socket::connect`](crate::Socket::connect)). Nothing happens while the connection
    /// is open or opening, or while a reconnection attempt is pending. The outcome shows in the
    /// [`Manager::on_event`] listeners: [`ManagerEvent::Open`], or [`ManagerEvent::Error`] (then
    /// the reconnection attempts, if reconnection is on).
    pub fn open(&self) {
        let _ = self.command(Command::Open);
    }

    fn set(&self, setting: Setting) {
        let _ = self.command(Command::Set(setting));
    }

    /// Turns reconnection on or off (`manager.reconnection(v)`). Turning it off cancels a
    /// pending attempt; as in the reference, turning it back on takes effect from the next
    /// opening of the connection.
    pub fn set_reconnection(&self, enabled: bool) {
        self.set(Setting::Reconnection(enabled));
    }

    /// Sets the most reconnection attempts before [`ManagerEvent::ReconnectFailed`]
    /// (`manager.reconnectionAttempts(v)`; `None` or `Some(0)`: unlimited). The attempts made
    /// since the last connection count: the limit is checked when the next attempt would be
    /// scheduled.
    pub fn set_reconnection_attempts(&self, attempts: Option<u32>) {
        self.set(Setting::ReconnectionAttempts(attempts));
    }

    /// Sets the first delay between reconnection attempts (`manager.reconnectionDelay(v)`;
    /// zero: the default, 1 s). The next delay computed uses it; an attempt already scheduled
    /// keeps its time, as in the reference.
    pub fn set_reconnection_delay(&self, delay: Duration) {
        self.set(Setting::ReconnectionDelay(delay));
    }

    /// Sets the largest delay between reconnection attempts
    /// (`manager.reconnectionDelayMax(v)`; zero: the default, 5 s). Applies from the next delay
    /// computed.
    pub fn set_reconnection_delay_max(&self, delay: Duration) {
        self.set(Setting::ReconnectionDelayMax(delay));
    }

    /// Sets the jitter of the reconnection delays (`manager.randomizationFactor(v)`; outside
    /// `(0, 1]`: none). Applies from the next delay computed.
    pub fn set_randomization_factor(&self, factor: f64) {
        self.set(Setting::RandomizationFactor(factor));
    }

    /// Sets the time the connection has to open before the attempt fails with `timeout`
    /// (`manager.timeout(v)`; `None`: no limit). The next opening uses it; one under way keeps
    /// its deadline.
    pub fn set_timeout(&self, timeout: Option<Duration>) {
        self.set(Setting::Timeout(timeout));
    }

    /// Replaces the query parameters sent with every request (socket.io-client's
    /// `manager.opts.query = ...`, to refresh a token, say). The next session sends them; one
    /// open (or opening) now keeps its own. Listeners run once the step that made their event
    /// is done, so a `reconnect_attempt` listener is too late for its own attempt: set it when
    /// the connection closes or an attempt fails, before the next one.
    ///
    /// ```no_run
    /// # fn f(manager: ferrio_client::Manager, fresh_token: fn() -> String) {
    /// use ferrio_client::ManagerEvent;
    ///
    /// let m = manager.clone();
    /// manager.on_event(move |event| {
    ///     if matches!(event, ManagerEvent::Close(_) | ManagerEvent::Error(_)) {
    ///         m.set_query(&[("token", fresh_token().as_str())]);
    ///     }
    /// });
    /// # }
    /// ```
    pub fn set_query(&self, query: &[(&str, &str)]) {
        let query = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.set(Setting::Query(query));
    }

    /// The Engine.IO session id, while open.
    pub fn engine_id(&self) -> Option<String> {
        self.inner.engine.lock().ok().and_then(|e| e.sid.clone())
    }

    /// The transport in use (it becomes [`Transport::WebSocket`] after an upgrade), while open.
    pub fn transport(&self) -> Option<Transport> {
        self.inner.engine.lock().ok().and_then(|e| e.transport)
    }

    /// The parser of every packet of the connection ([`ClientBuilder::parser`](crate::ClientBuilder::parser)).
    pub fn parser(&self) -> &ferrio_proto::socket::Parser {
        &self.inner.parser
    }

    pub(crate) fn has_socket(&self, nsp: &str) -> bool {
        self.inner
            .sockets
            .lock()
            .map(|s| s.contains_key(nsp))
            .unwrap_or(false)
    }
}

async fn dispatch_manager_events(
    handlers: Arc<Mutex<Vec<ManagerHandler>>>,
    mut events: mpsc::Receiver<ManagerEvent>,
) {
    while let Some(event) = events.recv().await {
        let hs: Vec<ManagerHandler> = match handlers.lock() {
            Ok(h) => h.clone(),
            Err(_) => continue,
        };
        for h in hs {
            h(&event);
        }
    }
}

struct SocketEntry {
    shared: Arc<SocketShared>,
    items: mpsc::Sender<Item>,
    /// Items that found the socket's queue full, in order. While one socket has some, the
    /// driver reads no transport.
    backlog: VecDeque<Item>,
    /// The core's `is_active` as last copied to the handles.
    last_active: bool,
}

impl SocketEntry {
    /// Hands an item to the socket's dispatcher, or keeps it (in order) if its queue is full.
    fn deliver(&mut self, item: Item) {
        if self.backlog.is_empty() {
            match self.items.try_send(item) {
                Ok(()) | Err(TrySendError::Closed(_)) => {}
                Err(TrySendError::Full(item)) => self.backlog.push_back(item),
            }
            return;
        }
        // While the handlers are stuck, a failed reconnection attempt follows another: a
        // `connect_error` that finds the previous one (retrying too) still waiting replaces it,
        // so that the backlog does not grow with the attempts.
        if let (
            Item::ConnectError { retrying: true, .. },
            Some(last @ Item::ConnectError { retrying: true, .. }),
        ) = (&item, self.backlog.back_mut())
        {
            *last = item;
            return;
        }
        self.backlog.push_back(item);
    }

    /// Moves the backlog to the queue while it has room.
    fn flush(&mut self) {
        while let Some(item) = self.backlog.pop_front() {
            match self.items.try_send(item) {
                Ok(()) => {}
                Err(TrySendError::Closed(_)) => self.backlog.clear(),
                Err(TrySendError::Full(item)) => {
                    self.backlog.push_front(item);
                    return;
                }
            }
        }
    }
}

/// A WebSocket's writer, as the driver sees it.
struct WsWriter {
    commands: mpsc::Sender<WsCommand>,
    /// Frames that found the writer's queue full, in order. While a writer has some, the driver
    /// takes no command.
    backlog: VecDeque<WsCommand>,
}

impl WsWriter {
    fn send(&mut self, command: WsCommand) {
        if self.backlog.is_empty() {
            match self.commands.try_send(command) {
                Ok(()) | Err(TrySendError::Closed(_)) => {}
                Err(TrySendError::Full(command)) => self.backlog.push_back(command),
            }
        } else {
            self.backlog.push_back(command);
        }
    }

    fn flush(&mut self) {
        while let Some(command) = self.backlog.pop_front() {
            match self.commands.try_send(command) {
                Ok(()) => {}
                Err(TrySendError::Closed(_)) => self.backlog.clear(),
                Err(TrySendError::Full(command)) => {
                    self.backlog.push_front(command);
                    return;
                }
            }
        }
    }

    /// Lets the transport go: the frames already handed over are written, then the WebSocket
    /// closes. If the writer has no room left, a task of its own waits for it (the writer does
    /// not depend on the driver, so it ends once the network took the frames or failed).
    fn release(mut self) {
        self.send(WsCommand::Close);
        if self.backlog.is_empty() {
            return;
        }
        let WsWriter { commands, backlog } = self;
        tokio::spawn(async move {
            for command in backlog {
                if commands.send(command).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Waits until `queue` (if any) has room for one more message.
async fn room<T>(queue: Option<&mpsc::Sender<T>>) {
    match queue {
        // The permit is dropped at once: the driver is the queue's only sender, so the
        // `try_send` that follows finds the room. A closed queue returns at once too.
        Some(queue) => drop(queue.reserve().await),
        None => std::future::pending().await,
    }
}

/// The task owning the core's manager: performs its I/O, feeds it what came back, the handles'
/// commands and the time, and hands its events to the dispatchers.
///
/// It never waits on a task that may wait on it: it waits for room only in the manager-event
/// queue (its listeners are synchronous); for a socket's handlers and for a WebSocket's writer it
/// keeps what does not fit and stops taking the input that makes more (the transports, resp. the
/// commands) until there is room, serving the rest (timers, auth, the other inputs) meanwhile.
struct Driver {
    machine: core::Manager,
    start: tokio::time::Instant,
    endpoint: Arc<Endpoint>,
    completions: mpsc::Sender<(TransportId, Completion)>,
    gets: HashMap<TransportId, AbortHandle>,
    websockets: HashMap<TransportId, WsWriter>,
    sockets: HashMap<SocketId, SocketEntry>,
    acks: HashMap<(SocketId, AckId), oneshot::Sender<Result<Packet, AckError>>>,
    events: mpsc::Sender<ManagerEvent>,
    /// Manager events of the last step, handed to the listeners before the next input.
    manager_events: VecDeque<ManagerEvent>,
    auth_tx: mpsc::Sender<(SocketId, Option<RawJson>)>,
    manager: Weak<ManagerShared>,
    engine: Arc<Mutex<EngineStatus>>,
    last_engine: EngineStatus,
    /// The transport failures reported to the machine and its last `error`, to give its
    /// messages their typed cause.
    failures: OpenFailures,
}

impl Driver {
    fn now(&self) -> Instant {
        let ms = self.start.elapsed().as_millis();
        Instant::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    async fn run(
        mut self,
        commands: command::Receiver,
        mut completions: mpsc::Receiver<(TransportId, Completion)>,
        mut auth: mpsc::Receiver<(SocketId, Option<RawJson>)>,
    ) {
        loop {
            while let Some(out) = self.machine.poll_output() {
                self.perform(out);
            }
            self.publish_engine_status();
            self.publish_active();
            while let Some(event) = self.manager_events.pop_front() {
                // The listeners are synchronous and never wait on the driver.
                let _ = self.events.send(event).await;
            }
            let deadline = self
                .machine
                .poll_timeout()
                .map(|t| self.start + std::time::Duration::from_millis(t.as_millis()));
            // A socket whose handlers are behind: no transport is read until it has room.
            let handlers_full = self
                .sockets
                .values()
                .find(|s| !s.backlog.is_empty())
                .map(|s| &s.items);
            // A WebSocket the network does not drain, or a polling write buffer past half its
            // bound: no command is taken (emits fail with `QueueFull` once the queue is full).
            let writer_full = self
                .websockets
                .values()
                .find(|w| !w.backlog.is_empty())
                .map(|w| &w.commands);
            let engine = self.machine.engine();
            let buffer_full = engine.buffered_bytes() > engine.config().max_buffered_bytes / 2;
            let take_commands = writer_full.is_none() && !buffer_full;
            let read_transports = handlers_full.is_none();
            tokio::select! {
                command = commands.recv(), if take_commands => match command {
                    Some(c) => self.command(c),
                    None => break,
                },
                Some((id, c)) = completions.recv(), if read_transports => self.completion(id, c),
                Some((socket, a)) = auth.recv() => {
                    let now = self.now();
                    if let Err(e) = self.machine.provide_auth(now, socket, a) {
                        tracing::warn!("auth refused: {e}");
                    }
                }
                () = sleep_until(deadline) => {
                    let now = self.now();
                    self.machine.handle_input(now, Input::Timeout);
                }
                () = room(handlers_full) => {
                    for entry in self.sockets.values_mut() {
                        entry.flush();
                    }
                }
                () = room(writer_full) => {
                    for writer in self.websockets.values_mut() {
                        writer.flush();
                    }
                }
            }
        }
        tracing::debug!("all handles dropped, client driver stops");
        for (_, writer) in self.websockets.drain() {
            writer.release();
        }
        for (_, get) in self.gets.drain() {
            get.abort();
        }
    }

    /// Copies the session id and transport for the handles when they changed.
    fn publish_engine_status(&mut self) {
        let engine = self.machine.engine();
        let status = EngineStatus {
            sid: engine.sid().map(str::to_owned),
            transport: engine.transport(),
        };
        if status != self.last_engine {
            tracing::debug!(sid = ?status.sid, transport = ?status.transport, "engine");
            if let Ok(mut e) = self.engine.lock() {
                *e = status.clone();
            }
            self.last_engine = status;
        }
    }

    /// Copies each socket's `active` for [`Socket::active`](crate::Socket::active) when the
    /// core's changed (so that the value a handle set on `connect`/`disconnect` stands until
    /// the command was taken).
    fn publish_active(&mut self) {
        for (id, entry) in &mut self.sockets {
            let active = self.machine.is_active(*id);
            if active != entry.last_active {
                entry.last_active = active;
                entry.shared.state.send_modify(|s| s.active = active);
            }
        }
    }

    fn command(&mut self, command: Command) {
        let now = self.now();
        match command {
            Command::Open => self.machine.connect(now),
            Command::Set(setting) => match setting {
                Setting::Reconnection(on) => self.machine.set_reconnection(on),
                Setting::ReconnectionAttempts(n) => self.machine.set_reconnection_attempts(n),
                Setting::ReconnectionDelay(d) => self.machine.set_reconnection_delay(d),
                Setting::ReconnectionDelayMax(d) => self.machine.set_reconnection_delay_max(d),
                Setting::RandomizationFactor(f) => self.machine.set_randomization_factor(f),
                Setting::Timeout(t) => self.machine.set_timeout(t),
                Setting::Query(q) => self.machine.set_query(q),
            },
            Command::Connect { shared } => {
                let known = self
                    .machine
                    .socket_for(&shared.nsp)
                    .filter(|id| self.sockets.contains_key(id));
                if let Some(id) = known {
                    let _ = self.machine.connect_socket(now, id);
                    return;
                }
                let result = self
                    .machine
                    .open_socket(now, &shared.nsp, shared.options.clone());
                match result {
                    Ok(id) => {
                        if let std::collections::hash_map::Entry::Vacant(v) = self.sockets.entry(id)
                        {
                            let (tx, rx) = mpsc::channel(EVENT_QUEUE);
                            tokio::spawn(socket::dispatch(
                                shared.clone(),
                                self.manager.clone(),
                                rx,
                            ));
                            v.insert(SocketEntry {
                                shared,
                                items: tx,
                                backlog: VecDeque::new(),
                                last_active: false,
                            });
                        }
                    }
                    Err(e) => shared.state.send_modify(|s| {
                        s.active = false;
                        s.failure = Some(ConnectError {
                            message: e.to_string(),
                            data: None,
                            cause: None,
                        })
                    }),
                }
            }
            Command::Disconnect { nsp } => {
                if let Some(id) = self.machine.socket_for(&nsp) {
                    let _ = self.machine.disconnect(now, id);
                }
            }
            Command::Close => {
                let ids: Vec<SocketId> = self.sockets.keys().copied().collect();
                for id in ids {
                    let _ = self.machine.disconnect(now, id);
                }
                // A connection opened without a socket ([`Manager::open`]) closes too.
                self.machine.close(now);
            }
            Command::Emit {
                nsp,
                packet,
                options,
                reply,
            } => {
                let Some(id) = self.machine.socket_for(&nsp) else {
                    if let Some(r) = reply {
                        let _ = r.send(Err(AckError::Emit(EmitError::Client(
                            core::ClientError::UnknownSocket,
                        ))));
                    }
                    return;
                };
                // Reported as it goes out only to a socket with `on_any_outgoing` listeners.
                if let Some(entry) = self.sockets.get(&id) {
                    let report = entry.shared.report_sent.load(Ordering::Acquire);
                    let _ = self.machine.report_sent(id, report);
                }
                match self.machine.emit(now, id, packet, options) {
                    Ok(Some(ack)) => {
                        if let Some(r) = reply {
                            self.acks.insert((id, ack), r);
                        }
                    }
                    Ok(None) => {}
                    Err(e) => match reply {
                        Some(r) => {
                            let _ = r.send(Err(AckError::Emit(EmitError::Client(e))));
                        }
                        None => tracing::warn!(%nsp, "emit refused: {e}"),
                    },
                }
            }
            Command::Ack { nsp, packet } => {
                if let Some(id) = self.machine.socket_for(&nsp) {
                    if let Err(e) = self.machine.ack(now, id, packet) {
                        tracing::warn!(%nsp, "ack not sent: {e}");
                    }
                }
            }
        }
    }

    fn completion(&mut self, id: TransportId, completion: Completion) {
        let transport = id;
        let input = match completion {
            Completion::Poll(body) => {
                self.gets.remove(&id);
                Input::poll_response(transport, body)
            }
            Completion::Posted => Input::PostResponse { transport },
            Completion::WsOpen => Input::WsOpen { transport },
            Completion::WsFrame(frame) => Input::WsFrame { transport, frame },
            Completion::WsClosed => {
                self.websockets.remove(&id);
                Input::WsClosed { transport }
            }
            Completion::Error(error) => {
                tracing::debug!(%id, "transport error: {error}");
                let description = self.failures.transport_failed(error);
                self.gets.remove(&id);
                self.websockets.remove(&id);
                Input::TransportError {
                    transport,
                    description,
                }
            }
        };
        let now = self.now();
        self.machine.handle_input(now, input);
    }

    fn perform(&mut self, out: Output) {
        match out {
            Output::Io(io) => self.io(io),
            Output::Event(event) => self.event(event),
        }
    }

    fn io(&mut self, io: Io) {
        match io {
            Io::Get { transport, query } => {
                let endpoint = self.endpoint.clone();
                let report = self.completions.clone();
                let task = tokio::spawn(async move {
                    let c = endpoint.request(&query, None).await;
                    let _ = report.send((transport, c)).await;
                });
                self.gets.insert(transport, task.abort_handle());
            }
            Io::Post {
                transport,
                query,
                body,
            } => {
                let endpoint = self.endpoint.clone();
                let report = self.completions.clone();
                tokio::spawn(async move {
                    let c = endpoint.request(&query, Some(body.into_bytes())).await;
                    let _ = report.send((transport, c)).await;
                });
            }
            Io::WsOpen { transport, query } => {
                let (tx, rx) = mpsc::channel(WS_WRITE_QUEUE);
                self.websockets.insert(
                    transport,
                    WsWriter {
                        commands: tx,
                        backlog: VecDeque::new(),
                    },
                );
                tokio::spawn(self.endpoint.clone().websocket(
                    transport,
                    query,
                    rx,
                    self.completions.clone(),
                ));
            }
            Io::WsSend {
                transport,
                frame,
                compress,
            } => {
                if let Some(ws) = self.websockets.get_mut(&transport) {
                    ws.send(WsCommand::Send(frame, compress));
                }
            }
            Io::Close { transport } => {
                if let Some(ws) = self.websockets.remove(&transport) {
                    ws.release();
                }
                if let Some(get) = self.gets.remove(&transport) {
                    get.abort();
                }
            }
        }
    }

    fn manager_event(&mut self, event: ManagerEvent) {
        tracing::debug!(?event, "manager event");
        self.manager_events.push_back(event);
    }

    fn deliver(&mut self, socket: SocketId, item: Item) {
        if let Some(entry) = self.sockets.get_mut(&socket) {
            entry.deliver(item);
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Open => {
                self.failures.opened();
                self.manager_event(ManagerEvent::Open)
            }
            Event::Error { message } => {
                let cause = self.failures.open_error(&message);
                self.manager_event(ManagerEvent::Error(cause))
            }
            Event::Ping => self.manager_event(ManagerEvent::Ping),
            Event::Close { reason, .. } => self.manager_event(ManagerEvent::Close(reason)),
            Event::ReconnectAttempt(n) => self.manager_event(ManagerEvent::ReconnectAttempt(n)),
            Event::Reconnect(n) => self.manager_event(ManagerEvent::Reconnect(n)),
            Event::ReconnectError { message } => {
                let cause = self.failures.reconnect_error(&message);
                self.manager_event(ManagerEvent::ReconnectError(cause))
            }
            Event::ReconnectFailed => {
                self.manager_event(ManagerEvent::ReconnectFailed);
                let cause = self.failures.last_error().cloned();
                for entry in self.sockets.values() {
                    entry.shared.state.send_modify(|s| {
                        if !s.connected {
                            s.failure = Some(ConnectError {
                                message: "reconnection failed".to_owned(),
                                data: None,
                                cause: cause.clone(),
                            });
                        }
                    });
                }
            }
            Event::AuthNeeded { socket } => {
                let auth_fn = self
                    .sockets
                    .get(&socket)
                    .and_then(|e| e.shared.auth_fn.clone());
                let tx = self.auth_tx.clone();
                match auth_fn {
                    Some(f) => {
                        tokio::spawn(async move {
                            use futures_util::FutureExt;
                            use std::panic::{catch_unwind, AssertUnwindSafe};
                            // A panicking auth function is logged and the CONNECT goes without
                            // auth, so that the socket is not left waiting.
                            let auth = match catch_unwind(AssertUnwindSafe(|| f())) {
                                Ok(fut) => AssertUnwindSafe(fut).catch_unwind().await.ok(),
                                Err(_) => None,
                            };
                            if auth.is_none() {
                                tracing::error!("the auth function panicked");
                            }
                            let auth = auth.flatten();
                            let _ = tx.send((socket, socket::auth_json(auth.as_ref()))).await;
                        });
                    }
                    None => {
                        // Not through the auth queue: the driver never waits on itself.
                        let now = self.now();
                        if let Err(e) = self.machine.provide_auth(now, socket, None) {
                            tracing::warn!("auth refused: {e}");
                        }
                    }
                }
            }
            Event::Connect {
                socket,
                sid,
                recovered,
            } => {
                let id = Some(sid.to_string());
                tracing::debug!(socket = socket.index(), ?id, recovered, "connect");
                if let Some(entry) = self.sockets.get(&socket) {
                    entry.shared.state.send_modify(|s| {
                        s.connected = true;
                        s.id = id;
                        s.recovered = recovered;
                        s.failure = None;
                        s.last_error = None;
                    });
                }
                self.deliver(socket, Item::Connect);
            }
            Event::ConnectError {
                socket,
                message,
                data,
                retrying,
            } => {
                // Without data, the connection's own failure (the `error` just before).
                let cause = self.failures.connect_error(&message, data.is_some());
                let error = ConnectError {
                    message,
                    data: data.and_then(|d| d.to_value().ok()),
                    cause,
                };
                tracing::debug!(socket = socket.index(), %error, retrying, "connect_error");
                if let Some(entry) = self.sockets.get(&socket) {
                    entry.shared.state.send_modify(|s| {
                        if !retrying {
                            s.failure = Some(error.clone());
                        }
                        s.last_error = Some(error.clone());
                    });
                }
                self.deliver(socket, Item::ConnectError { error, retrying });
            }
            Event::Disconnect { socket, reason, .. } => {
                tracing::debug!(socket = socket.index(), %reason, "disconnect");
                if let Some(entry) = self.sockets.get(&socket) {
                    entry.shared.state.send_modify(|s| {
                        s.connected = false;
                        s.id = None;
                    });
                }
                self.deliver(socket, Item::Disconnect(reason));
            }
            Event::Event { socket, packet } => self.deliver(socket, Item::Event(packet)),
            Event::Sent { socket, packet } => self.deliver(socket, Item::Sent(packet)),
            Event::Ack {
                socket,
                ack,
                packet,
            } => {
                if let Some(r) = self.acks.remove(&(socket, ack)) {
                    let _ = r.send(Ok(packet));
                }
            }
            Event::AckError { socket, ack, error } => {
                if let Some(r) = self.acks.remove(&(socket, ack)) {
                    let _ = r.send(Err(error.into()));
                }
            }
            // A later kind of event this client does not handle yet.
            _ => {}
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
