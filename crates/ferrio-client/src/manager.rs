//! The [`Manager`] handle and the task driving the core's manager machine.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, Weak};

use ferrio_proto::engine::client::{Input, Io, Transport, TransportId};
use ferrio_proto::socket::client::{
    self as core, AckId, EmitOptions, Event, ManagerConfig, Output, SocketId,
};
use ferrio_proto::socket::{Packet, RawJson};
use ferrio_proto::{Instant, Str};
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;

pub use ferrio_proto::socket::client::DisconnectReason;

use crate::error::{AckError, ConnectError, EmitError};
use crate::socket::{self, Item, SocketShared};
use crate::transport::{Completion, Endpoint, WsCommand};
use crate::SocketBuilder;

/// A command from a handle to the driver.
pub(crate) enum Command {
    Open {
        shared: Arc<SocketShared>,
    },
    Connect {
        nsp: Str,
    },
    Disconnect {
        nsp: Str,
    },
    Emit {
        nsp: Str,
        packet: Packet,
        options: EmitOptions,
        reply: Option<oneshot::Sender<Result<Packet, AckError>>>,
    },
    Ack {
        nsp: Str,
        packet: Packet,
    },
    Close,
}

/// Something that happened to the connection (the reference's Manager events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManagerEvent {
    /// The Engine.IO session opened (`open`).
    Open,
    /// Opening failed (`error`).
    Error(String),
    /// The server pinged (`ping`).
    Ping,
    /// The connection closed (`close`).
    Close(DisconnectReason),
    /// A reconnection attempt starts (`reconnect_attempt`; 1 for the first).
    ReconnectAttempt(u32),
    /// A reconnection attempt succeeded (`reconnect`).
    Reconnect(u32),
    /// A reconnection attempt failed (`reconnect_error`).
    ReconnectError(String),
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
    commands: mpsc::UnboundedSender<Command>,
    engine: Arc<Mutex<EngineStatus>>,
    pub(crate) sockets: Mutex<HashMap<String, Arc<SocketShared>>>,
    handlers: Arc<Mutex<Vec<ManagerHandler>>>,
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
        let (commands, command_rx) = mpsc::unbounded_channel();
        let handlers = Arc::new(Mutex::new(handlers));
        let engine = Arc::new(Mutex::new(EngineStatus::default()));
        let inner = Arc::new(ManagerShared {
            commands,
            engine: engine.clone(),
            sockets: Mutex::new(HashMap::new()),
            handlers: handlers.clone(),
        });
        let (events, event_rx) = mpsc::unbounded_channel();
        runtime.spawn(dispatch_manager_events(handlers, event_rx));
        let (completions, completion_rx) = mpsc::unbounded_channel();
        let (auth_tx, auth_rx) = mpsc::unbounded_channel();
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
            auth_tx,
            manager: Arc::downgrade(&inner),
            engine,
            last_engine: EngineStatus::default(),
        };
        runtime.spawn(driver.run(command_rx, completion_rx, auth_rx));
        Ok(Manager { inner })
    }

    pub(crate) fn command(&self, command: Command) -> Result<(), EmitError> {
        self.inner
            .commands
            .send(command)
            .map_err(|_| EmitError::Closed)
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

    /// Disconnects every socket and closes the connection.
    pub fn close(&self) {
        let _ = self.command(Command::Close);
    }

    /// The Engine.IO session id, while open.
    pub fn engine_id(&self) -> Option<String> {
        self.inner.engine.lock().ok().and_then(|e| e.sid.clone())
    }

    /// The transport in use (it becomes [`Transport::WebSocket`] after an upgrade), while open.
    pub fn transport(&self) -> Option<Transport> {
        self.inner.engine.lock().ok().and_then(|e| e.transport)
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
    mut events: mpsc::UnboundedReceiver<ManagerEvent>,
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
    items: mpsc::UnboundedSender<Item>,
}

/// The task owning the core's manager: performs its I/O, feeds it what came back, the handles'
/// commands and the time, and hands its events to the dispatchers.
struct Driver {
    machine: core::Manager,
    start: tokio::time::Instant,
    endpoint: Arc<Endpoint>,
    completions: mpsc::UnboundedSender<(TransportId, Completion)>,
    gets: HashMap<TransportId, AbortHandle>,
    websockets: HashMap<TransportId, mpsc::UnboundedSender<WsCommand>>,
    sockets: HashMap<SocketId, SocketEntry>,
    acks: HashMap<(SocketId, AckId), oneshot::Sender<Result<Packet, AckError>>>,
    events: mpsc::UnboundedSender<ManagerEvent>,
    auth_tx: mpsc::UnboundedSender<(SocketId, Option<RawJson>)>,
    manager: Weak<ManagerShared>,
    engine: Arc<Mutex<EngineStatus>>,
    last_engine: EngineStatus,
}

impl Driver {
    fn now(&self) -> Instant {
        let ms = self.start.elapsed().as_millis();
        Instant::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut completions: mpsc::UnboundedReceiver<(TransportId, Completion)>,
        mut auth: mpsc::UnboundedReceiver<(SocketId, Option<RawJson>)>,
    ) {
        loop {
            while let Some(out) = self.machine.poll_output() {
                self.perform(out);
            }
            self.publish_engine_status();
            let deadline = self
                .machine
                .poll_timeout()
                .map(|t| self.start + std::time::Duration::from_millis(t.as_millis()));
            tokio::select! {
                command = commands.recv() => match command {
                    Some(c) => self.command(c),
                    None => break,
                },
                Some((id, c)) = completions.recv() => self.completion(id, c),
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
            }
        }
        tracing::debug!("all handles dropped, client driver stops");
        for (_, ws) in self.websockets.drain() {
            let _ = ws.send(WsCommand::Close);
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

    fn command(&mut self, command: Command) {
        let now = self.now();
        match command {
            Command::Open { shared } => {
                let result = self
                    .machine
                    .open_socket(now, &shared.nsp, shared.options.clone());
                match result {
                    Ok(id) => {
                        if let std::collections::hash_map::Entry::Vacant(v) = self.sockets.entry(id)
                        {
                            let (tx, rx) = mpsc::unbounded_channel();
                            tokio::spawn(socket::dispatch(
                                shared.clone(),
                                self.manager.clone(),
                                rx,
                            ));
                            v.insert(SocketEntry { shared, items: tx });
                        }
                    }
                    Err(e) => shared.state.send_modify(|s| {
                        s.failure = Some(ConnectError {
                            message: e.to_string(),
                            data: None,
                        })
                    }),
                }
            }
            Command::Connect { nsp } => {
                if let Some(id) = self.machine.socket_for(&nsp) {
                    let _ = self.machine.connect_socket(now, id);
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
                Input::PollResponse { transport, body }
            }
            Completion::Posted => Input::PostResponse { transport },
            Completion::WsOpen => Input::WsOpen { transport },
            Completion::WsFrame(frame) => Input::WsFrame { transport, frame },
            Completion::WsClosed => {
                self.websockets.remove(&id);
                Input::WsClosed { transport }
            }
            Completion::Error(description) => {
                tracing::debug!(%id, "transport error: {description}");
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
                    let _ = report.send((transport, c));
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
                    let c = endpoint.request(&query, Some(body)).await;
                    let _ = report.send((transport, c));
                });
            }
            Io::WsOpen { transport, query } => {
                let (tx, rx) = mpsc::unbounded_channel();
                self.websockets.insert(transport, tx);
                tokio::spawn(self.endpoint.clone().websocket(
                    transport,
                    query,
                    rx,
                    self.completions.clone(),
                ));
            }
            Io::WsSend {
                transport, frame, ..
            } => {
                if let Some(ws) = self.websockets.get(&transport) {
                    let _ = ws.send(WsCommand::Send(frame));
                }
            }
            Io::Close { transport } => {
                if let Some(ws) = self.websockets.remove(&transport) {
                    let _ = ws.send(WsCommand::Close);
                }
                if let Some(get) = self.gets.remove(&transport) {
                    get.abort();
                }
            }
        }
    }

    fn manager_event(&self, event: ManagerEvent) {
        tracing::debug!(?event, "manager event");
        let _ = self.events.send(event);
    }

    fn to_socket(&self, socket: SocketId, item: Item) {
        if let Some(entry) = self.sockets.get(&socket) {
            let _ = entry.items.send(item);
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Open => self.manager_event(ManagerEvent::Open),
            Event::Error { message } => self.manager_event(ManagerEvent::Error(message)),
            Event::Ping => self.manager_event(ManagerEvent::Ping),
            Event::Close { reason, .. } => self.manager_event(ManagerEvent::Close(reason)),
            Event::ReconnectAttempt(n) => self.manager_event(ManagerEvent::ReconnectAttempt(n)),
            Event::Reconnect(n) => self.manager_event(ManagerEvent::Reconnect(n)),
            Event::ReconnectError { message } => {
                self.manager_event(ManagerEvent::ReconnectError(message))
            }
            Event::ReconnectFailed => {
                self.manager_event(ManagerEvent::ReconnectFailed);
                for entry in self.sockets.values() {
                    entry.shared.state.send_modify(|s| {
                        if !s.connected {
                            s.failure = Some(ConnectError {
                                message: "reconnection failed".to_owned(),
                                data: None,
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
                            let _ = tx.send((socket, socket::auth_json(auth.as_ref())));
                        });
                    }
                    None => {
                        let _ = tx.send((socket, None));
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
                self.to_socket(socket, Item::Connect);
            }
            Event::ConnectError {
                socket,
                message,
                data,
                retrying,
            } => {
                let error = ConnectError {
                    message,
                    data: data.and_then(|d| d.to_value().ok()),
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
                self.to_socket(socket, Item::ConnectError(error));
            }
            Event::Disconnect { socket, reason, .. } => {
                tracing::debug!(socket = socket.index(), %reason, "disconnect");
                if let Some(entry) = self.sockets.get(&socket) {
                    entry.shared.state.send_modify(|s| {
                        s.connected = false;
                        s.id = None;
                    });
                }
                self.to_socket(socket, Item::Disconnect(reason));
            }
            Event::Event { socket, packet } => self.to_socket(socket, Item::Event(packet)),
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
