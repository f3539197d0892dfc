//! The [`Manager`] handle and the driver of the core's manager machine on the page's event loop:
//! `WebSocket` and `fetch` for the transports, `setTimeout` for the machine's timers.
//!
//! Every input (a call of the API, a transport's callback, a timer) is queued as a
//! [`Command`], then [`Shared::drive`] applies the queue to the machine and performs its
//! outputs. User code never runs while the machine is borrowed: socket events go to each
//! socket's dispatcher task, manager events are handed to their listeners after the machine is
//! released. A call that arrives while the machine is being driven (from a synchronous
//! callback) is queued and applied by the drive under way.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::rc::{Rc, Weak};
use std::time::Duration;

use bytes::Bytes;
use ferrio_proto::engine::client::{Input, Io, Query, Transport, TransportId};
use ferrio_proto::engine::{Frame, OpenPacket, Packet as EnginePacket};
use ferrio_proto::socket::client::{
    self as core, AckId, Event, ManagerConfig, OpenFailures, Output, SocketId,
};
use ferrio_proto::socket::{Packet, RawJson};
use ferrio_proto::{Instant, Str};
use futures_channel::{mpsc, oneshot};
use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{AbortController, BinaryType, MessageEvent, RequestInit, Response, WebSocket};

pub use ferrio_proto::socket::client::DisconnectReason;

use crate::error::{AckError, ConnectError, ConnectionError, EmitError, TransportError};
use crate::socket::{self, Item, SocketShared};
use crate::SocketBuilder;

/// Writes a line to the browser console (`console.warn`).
pub(crate) fn log(line: &str) {
    web_sys::console::warn_1(&JsValue::from_str(line));
}

/// Something that happened to the connection (the reference's Manager events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManagerEvent {
    /// The Engine.IO session opened (`open`).
    Open,
    /// Opening failed (`error`): the transport's error (engine.io-client's `TransportError`),
    /// or the timeout.
    Error(ConnectionError),
    /// The server pinged (`ping`).
    Ping,
    /// The connection closed (`close`).
    Close(DisconnectReason),
    /// A reconnection attempt starts (`reconnect_attempt`; 1 for the first).
    ReconnectAttempt(u32),
    /// A reconnection attempt succeeded (`reconnect`).
    Reconnect(u32),
    /// A reconnection attempt failed (`reconnect_error`).
    ReconnectError(ConnectionError),
    /// No attempts left (`reconnect_failed`).
    ReconnectFailed,
}

/// Something that happened to the Engine.IO connection under a [`Manager`] (the events of
/// `socket.io-client`'s `io.engine`; see [`Manager::engine`]). The core reports the session's
/// packets once the engine has a listener.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineEvent {
    /// The session opened (`open`), after its [`Handshake`](EngineEvent::Handshake).
    Open,
    /// The server's handshake arrived (`handshake`): the session id, the transports to
    /// upgrade to, the heartbeat settings.
    Handshake(OpenPacket),
    /// A packet arrived (`packet`), before the session acts on it (a polling response's
    /// packets one by one). The WebSocket probe's answer is not one (the probe is not the
    /// session's transport yet).
    Packet(EnginePacket),
    /// Any packet arrived: the server is alive (`heartbeat`, after each
    /// [`Packet`](EngineEvent::Packet)).
    Heartbeat,
    /// The server pinged (`ping`; the pong is on its way).
    Ping,
    /// A message arrived (`data` and `message`): [`EnginePacket::Message`] (text) or
    /// [`EnginePacket::Binary`].
    Message(EnginePacket),
    /// A packet goes out (`packetCreate`): each packet of a long-polling POST as the request
    /// starts, each WebSocket frame as it is sent. The probe and the `upgrade` packet, which
    /// go straight to the new transport, are not reported (as engine.io-client).
    PacketCreate(EnginePacket),
    /// What was written went out (`drain`): a long-polling POST was answered, or a WebSocket
    /// frame was handed to the browser.
    Drain,
    /// The probe was answered: the session pauses its transport to move to this one
    /// (`upgrading`); [`Upgrade`](EngineEvent::Upgrade) or
    /// [`UpgradeError`](EngineEvent::UpgradeError) follows.
    Upgrading(Transport),
    /// The session moved to this transport (`upgrade`), just after the `upgrade` packet went
    /// out on it.
    Upgrade(Transport),
    /// The WebSocket probe failed; the session keeps polling (`upgradeError`): `probe error`,
    /// `probe error: transport closed`, or `probe error: ` and the transport's error.
    UpgradeError(String),
    /// The session failed to open (`error`).
    Error(ConnectionError),
    /// The session closed (`close`), or failed to open.
    Close {
        /// Why.
        reason: DisconnectReason,
        /// Details from the transport or the decoder.
        description: Option<String>,
    },
}

type ManagerHandler = Rc<dyn Fn(&ManagerEvent)>;
pub(crate) type PacketHandler = Rc<dyn Fn(&Packet)>;
pub(crate) type EngineHandler = Rc<dyn Fn(&EngineEvent)>;

/// What a drive hands to listeners once the machine is released, in order.
enum Note {
    Manager(ManagerEvent),
    Engine(EngineEvent),
    Packet(Packet),
}

/// A manager setting changed at run time (the core's `Manager::set_*`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Setting {
    Reconnection(bool),
    Query(Vec<(String, String)>),
    ReconnectionAttempts(Option<u32>),
    ReconnectionDelay(Duration),
    ReconnectionDelayMax(Duration),
    RandomizationFactor(f64),
    Timeout(Option<Duration>),
}

/// An input for the driver.
pub(crate) enum Command {
    /// Opens the socket if the driver does not know it yet, and connects it.
    Connect {
        shared: Rc<SocketShared>,
    },
    Disconnect {
        nsp: Str,
    },
    Emit {
        nsp: Str,
        packet: Packet,
        options: core::EmitOptions,
        reply: Option<oneshot::Sender<Result<Packet, AckError>>>,
    },
    Ack {
        nsp: Str,
        packet: Packet,
    },
    Close,
    Open,
    Set(Setting),
    /// Report every decoded packet (a `packet` listener was added).
    ReportPackets,
    /// Report the Engine.IO packets (the first engine listener).
    ReportEnginePackets,
    /// A transport failed (reported to the machine as `Input::TransportError`).
    Failed {
        transport: TransportId,
        error: TransportError,
    },
    /// The answer of an auth function.
    Auth {
        socket: SocketId,
        auth: Option<RawJson>,
    },
    /// A transport's report, or `Input::Timeout`.
    Input(Input),
}

/// What the handles know of the Engine.IO session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct EngineStatus {
    sid: Option<String>,
    transport: Option<Transport>,
}

/// Where the server is.
pub(crate) struct Endpoint {
    /// `http:` or `https:`.
    pub(crate) secure: bool,
    /// `host[:port]`.
    pub(crate) host: String,
    /// The Engine.IO path.
    pub(crate) path: String,
    /// WebSocket subprotocols (`protocols`).
    pub(crate) protocols: Vec<String>,
    /// A bound on each polling request (`requestTimeout`).
    pub(crate) request_timeout: Option<Duration>,
    /// Headers of the polling requests (`extraHeaders`).
    pub(crate) headers: Vec<(String, String)>,
    /// Close silently on the page's `beforeunload` (`closeOnBeforeunload`).
    pub(crate) close_on_beforeunload: bool,
}

impl Endpoint {
    fn url(&self, websocket: bool, query: &Query) -> String {
        let scheme = match (websocket, self.secure) {
            (false, false) => "http",
            (false, true) => "https",
            (true, false) => "ws",
            (true, true) => "wss",
        };
        let mut q = String::new();
        for (i, (k, v)) in query.iter().enumerate() {
            if i > 0 {
                q.push('&');
            }
            q.push_str(&String::from(js_sys::encode_uri_component(k)));
            q.push('=');
            q.push_str(&String::from(js_sys::encode_uri_component(v)));
        }
        format!("{scheme}://{}{}?{q}", self.host, self.path)
    }
}

/// A WebSocket and the callbacks it calls.
struct Ws {
    socket: WebSocket,
    _callbacks: Vec<Closure<dyn FnMut(JsValue)>>,
}

impl Ws {
    /// Detaches the callbacks (so that the browser never calls a dropped closure) and closes.
    fn release(self) {
        self.socket.set_onopen(None);
        self.socket.set_onmessage(None);
        self.socket.set_onclose(None);
        self.socket.set_onerror(None);
        let _ = self.socket.close();
    }
}

/// The `setTimeout` set for the machine's next deadline: its handle, the deadline, the callback.
type Timer = (i32, Instant, Closure<dyn FnMut()>);

/// The machine and the I/O in flight.
struct Driver {
    machine: core::Manager,
    endpoint: Rc<Endpoint>,
    /// `Date.now()` at the start: the machine's instants count from it.
    origin: f64,
    last_now: u64,
    websockets: HashMap<TransportId, Ws>,
    gets: HashMap<TransportId, AbortController>,
    timer: Option<Timer>,
    /// The callback of the timer that fired last, kept until the next one fires: a callback is
    /// not dropped while it runs.
    fired: Option<Closure<dyn FnMut()>>,
    sockets: HashMap<SocketId, SocketEntry>,
    acks: HashMap<(SocketId, AckId), oneshot::Sender<Result<Packet, AckError>>>,
    last_engine: EngineStatus,
    /// The URL of each open long-polling transport's last request (for the `close` packet
    /// sent on `beforeunload`).
    poll_urls: HashMap<TransportId, String>,
    /// Transports closed on `beforeunload` behind the machine's back: what they report, and
    /// what the machine asks of them, is dropped until the machine closes them itself.
    silenced: HashSet<TransportId>,
    /// The transport failures reported to the machine and its last `error`, to give its
    /// messages their typed cause (the core keeps a failure's text only).
    failures: OpenFailures,
}

struct SocketEntry {
    shared: Rc<SocketShared>,
    items: mpsc::UnboundedSender<Item>,
    last_active: bool,
}

/// What the handles and the callbacks share.
pub(crate) struct Shared {
    driver: RefCell<Driver>,
    pending: RefCell<VecDeque<Command>>,
    handlers: RefCell<Vec<ManagerHandler>>,
    packet_handlers: RefCell<Vec<PacketHandler>>,
    engine_handlers: RefCell<Vec<EngineHandler>>,
    /// The `beforeunload` listener while it is registered.
    beforeunload: RefCell<Option<Closure<dyn FnMut()>>>,
    close_on_beforeunload: bool,
    pub(crate) sockets: RefCell<HashMap<String, Rc<SocketShared>>>,
    engine: RefCell<EngineStatus>,
    parser: ferrio_proto::socket::Parser,
    closed: Cell<bool>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.disarm_beforeunload();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        for (_, ws) in self.websockets.drain() {
            ws.release();
        }
        for (_, get) in self.gets.drain() {
            get.abort();
        }
        if let (Some((handle, _, _)), Some(window)) = (self.timer.take(), web_sys::window()) {
            window.clear_timeout_with_handle(handle);
        }
    }
}

/// One connection to a server, multiplexing the sockets of several namespaces
/// (`socket.io-client`'s `Manager`). Cheap to clone. Built by
/// [`ClientBuilder::manager`](crate::ClientBuilder::manager), or reached from a socket with
/// [`Socket::manager`](crate::Socket::manager). The connection lives as long as a handle
/// does.
#[derive(Clone)]
pub struct Manager {
    pub(crate) inner: Rc<Shared>,
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager").finish_non_exhaustive()
    }
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

impl Manager {
    pub(crate) fn new(
        config: ManagerConfig,
        endpoint: Endpoint,
        handlers: Vec<ManagerHandler>,
        packet_handlers: Vec<PacketHandler>,
        engine_handlers: Vec<EngineHandler>,
    ) -> Manager {
        let parser = config.parser.clone();
        let close_on_beforeunload = endpoint.close_on_beforeunload;
        let mut machine = core::Manager::new(config);
        machine.report_packets(!packet_handlers.is_empty());
        machine.report_engine_packets(!engine_handlers.is_empty());
        let driver = Driver {
            machine,
            endpoint: Rc::new(endpoint),
            origin: now_ms(),
            last_now: 0,
            websockets: HashMap::new(),
            gets: HashMap::new(),
            timer: None,
            fired: None,
            sockets: HashMap::new(),
            acks: HashMap::new(),
            last_engine: EngineStatus::default(),
            poll_urls: HashMap::new(),
            silenced: HashSet::new(),
            failures: OpenFailures::default(),
        };
        let manager = Manager {
            inner: Rc::new(Shared {
                driver: RefCell::new(driver),
                pending: RefCell::new(VecDeque::new()),
                handlers: RefCell::new(handlers),
                packet_handlers: RefCell::new(packet_handlers),
                engine_handlers: RefCell::new(engine_handlers),
                beforeunload: RefCell::new(None),
                close_on_beforeunload,
                sockets: RefCell::new(HashMap::new()),
                engine: RefCell::new(EngineStatus::default()),
                parser,
                closed: Cell::new(false),
            }),
        };
        Shared::arm_beforeunload(&manager.inner);
        manager
    }

    /// Queues a command and drives the machine.
    pub(crate) fn command(&self, command: Command) -> Result<(), EmitError> {
        if self.inner.closed.get() {
            return Err(EmitError::Closed);
        }
        self.inner.pending.borrow_mut().push_back(command);
        Shared::drive(&self.inner);
        Ok(())
    }

    /// A builder for the socket of namespace `nsp` on this connection (`manager.socket(nsp)`).
    pub fn socket(&self, nsp: &str) -> SocketBuilder {
        SocketBuilder::new(self.clone(), nsp)
    }

    /// Adds a listener of the connection's events (`open`, `close`, `reconnect_attempt`,
    /// `reconnect`, `reconnect_error`, `reconnect_failed`, ...). Listeners run in order, on the
    /// page's event loop.
    pub fn on_event(&self, listener: impl Fn(&ManagerEvent) + 'static) {
        self.inner.handlers.borrow_mut().push(Rc::new(listener));
    }

    /// Adds a listener of every packet the server sends, whatever its namespace and type,
    /// before it takes effect (the manager's `packet` event: CONNECT, EVENT, ACK, DISCONNECT,
    /// CONNECT_ERROR, with their binary attachments). Packets are copied for it only once a
    /// listener is added.
    pub fn on_packet(&self, listener: impl Fn(&Packet) + 'static) {
        let first = {
            let mut list = self.inner.packet_handlers.borrow_mut();
            list.push(Rc::new(listener));
            list.len() == 1
        };
        if first {
            let _ = self.command(Command::ReportPackets);
        }
    }

    /// The Engine.IO connection under this manager (`io.engine`): its session id, its
    /// transport, its events.
    pub fn engine(&self) -> Engine {
        Engine {
            inner: self.inner.clone(),
        }
    }

    /// Disconnects every socket and closes the connection, without reconnecting. The
    /// `beforeunload` listener of
    /// [`close_on_beforeunload`](crate::ClientBuilder::close_on_beforeunload) is removed.
    pub fn close(&self) {
        self.inner.disarm_beforeunload();
        let _ = self.command(Command::Close);
    }

    /// Opens the connection (`manager.open()`) without waiting.
    pub fn open(&self) {
        Shared::arm_beforeunload(&self.inner);
        let _ = self.command(Command::Open);
    }

    fn set(&self, setting: Setting) {
        let _ = self.command(Command::Set(setting));
    }

    /// Turns reconnection on or off (`manager.reconnection(v)`).
    pub fn set_reconnection(&self, enabled: bool) {
        self.set(Setting::Reconnection(enabled));
    }

    /// Sets the most reconnection attempts (`manager.reconnectionAttempts(v)`; `None`:
    /// unlimited).
    pub fn set_reconnection_attempts(&self, attempts: Option<u32>) {
        self.set(Setting::ReconnectionAttempts(attempts));
    }

    /// Sets the first delay between reconnection attempts (`manager.reconnectionDelay(v)`).
    pub fn set_reconnection_delay(&self, delay: Duration) {
        self.set(Setting::ReconnectionDelay(delay));
    }

    /// Sets the largest delay between reconnection attempts (`manager.reconnectionDelayMax(v)`).
    pub fn set_reconnection_delay_max(&self, delay: Duration) {
        self.set(Setting::ReconnectionDelayMax(delay));
    }

    /// Sets the jitter of the reconnection delays (`manager.randomizationFactor(v)`).
    pub fn set_randomization_factor(&self, factor: f64) {
        self.set(Setting::RandomizationFactor(factor));
    }

    /// Sets the time the connection has to open (`manager.timeout(v)`; `None`: no limit).
    pub fn set_timeout(&self, timeout: Option<Duration>) {
        self.set(Setting::Timeout(timeout));
    }

    /// Replaces the query parameters sent with every request (`manager.opts.query = ...`, to
    /// refresh a token, say). The next session sends them; one open (or opening) now keeps its
    /// own. (Listeners run once the step that made their event is done: a `reconnect_attempt`
    /// listener is too late for its own attempt; set it when the connection closes or an
    /// attempt fails.)
    pub fn set_query(&self, query: &[(&str, &str)]) {
        let query = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.set(Setting::Query(query));
    }

    /// The Engine.IO session id, while open.
    pub fn engine_id(&self) -> Option<String> {
        self.inner.engine.borrow().sid.clone()
    }

    /// The transport in use (it becomes [`Transport::WebSocket`] after an upgrade), while open.
    pub fn transport(&self) -> Option<Transport> {
        self.inner.engine.borrow().transport
    }

    /// The parser of every packet of the connection.
    pub fn parser(&self) -> &ferrio_proto::socket::Parser {
        &self.inner.parser
    }
}

/// The Engine.IO connection under a [`Manager`] (`socket.io-client`'s `io.engine`), from
/// [`Manager::engine`]. Cheap to clone; it stays the same across reconnections (its
/// [`id`](Engine::id) changes).
#[derive(Clone)]
pub struct Engine {
    inner: Rc<Shared>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("id", &self.id())
            .field("transport", &self.transport())
            .finish()
    }
}

impl Engine {
    /// The session id from the handshake (`engine.id`), while open.
    pub fn id(&self) -> Option<String> {
        self.inner.engine.borrow().sid.clone()
    }

    /// The transport in use (`engine.transport.name`: [`Transport::name`]), while open; it
    /// becomes [`Transport::WebSocket`] after an upgrade.
    pub fn transport(&self) -> Option<Transport> {
        self.inner.engine.borrow().transport
    }

    /// Adds a listener of the connection's events (`engine.on(...)`, see [`EngineEvent`]).
    /// Listeners run in order, on the page's event loop, after the machine has taken the
    /// input. The core reports the Engine.IO packets once there is one.
    pub fn on_event(&self, listener: impl Fn(&EngineEvent) + 'static) {
        let first = {
            let mut list = self.inner.engine_handlers.borrow_mut();
            list.push(Rc::new(listener));
            list.len() == 1
        };
        if first {
            self.inner
                .pending
                .borrow_mut()
                .push_back(Command::ReportEnginePackets);
            Shared::drive(&self.inner);
        }
    }
}

impl Shared {
    /// Registers the `beforeunload` listener if the option asks for it and it is not there.
    fn arm_beforeunload(self: &Rc<Self>) {
        if !self.close_on_beforeunload || self.beforeunload.borrow().is_some() {
            return;
        }
        let Some(window) = web_sys::window() else {
            return;
        };
        let weak = Rc::downgrade(self);
        let listener = Closure::<dyn FnMut()>::new(move || {
            if let Some(shared) = weak.upgrade() {
                if let Ok(mut d) = shared.driver.try_borrow_mut() {
                    d.silence();
                }
            }
        });
        if window
            .add_event_listener_with_callback("beforeunload", listener.as_ref().unchecked_ref())
            .is_ok()
        {
            *self.beforeunload.borrow_mut() = Some(listener);
        }
    }

    /// Removes the `beforeunload` listener, if registered.
    fn disarm_beforeunload(&self) {
        let Some(listener) = self.beforeunload.borrow_mut().take() else {
            return;
        };
        if let Some(window) = web_sys::window() {
            let _ = window.remove_event_listener_with_callback(
                "beforeunload",
                listener.as_ref().unchecked_ref(),
            );
        }
    }

    /// Applies the queued commands and performs the machine's outputs, until the queue is
    /// empty; then sets the timer and hands the manager events to their listeners. Does nothing
    /// if a drive is under way (it takes the queue).
    fn drive(self: &Rc<Self>) {
        let mut notes = Vec::new();
        {
            let Ok(mut d) = self.driver.try_borrow_mut() else {
                return;
            };
            let engine = !self.engine_handlers.borrow().is_empty();
            loop {
                let command = self.pending.borrow_mut().pop_front();
                let Some(command) = command else {
                    break;
                };
                d.command(command, self, engine.then_some(&mut notes));
                while let Some(out) = d.machine.poll_output() {
                    d.perform(out, self, &mut notes, engine);
                }
            }
            d.publish(self);
            d.schedule(self);
        }
        if notes.is_empty() {
            return;
        }
        let handlers = self.handlers.borrow().clone();
        let packet_handlers = self.packet_handlers.borrow().clone();
        let engine_handlers = self.engine_handlers.borrow().clone();
        for note in &notes {
            match note {
                Note::Manager(event) => handlers.iter().for_each(|h| h(event)),
                Note::Engine(event) => engine_handlers.iter().for_each(|h| h(event)),
                Note::Packet(packet) => packet_handlers.iter().for_each(|h| h(packet)),
            }
        }
    }

    /// Queues a report from a callback and drives.
    fn report(weak: &Weak<Shared>, input: Input) {
        if let Some(shared) = weak.upgrade() {
            shared.pending.borrow_mut().push_back(Command::Input(input));
            Shared::drive(&shared);
        }
    }

    /// Queues a transport's failure from a callback and drives.
    fn fail(weak: &Weak<Shared>, transport: TransportId, error: TransportError) {
        if let Some(shared) = weak.upgrade() {
            shared
                .pending
                .borrow_mut()
                .push_back(Command::Failed { transport, error });
            Shared::drive(&shared);
        }
    }
}

/// The transport an input is about, if any.
fn input_transport(input: &Input) -> Option<TransportId> {
    match input {
        Input::PollResponse { transport, .. }
        | Input::PostResponse { transport }
        | Input::WsOpen { transport }
        | Input::WsFrame { transport, .. }
        | Input::WsClosed { transport }
        | Input::TransportError { transport, .. } => Some(*transport),
        _ => None,
    }
}

/// The engine events of a packet the core reports received, as engine.io-client emits them:
/// `packet`, `heartbeat`, then `handshake`, `ping` or `data`/`message`.
fn received(notes: &mut Vec<Note>, packet: EnginePacket) {
    let then = match &packet {
        EnginePacket::Open(data) => OpenPacket::parse(data).ok().map(EngineEvent::Handshake),
        EnginePacket::Ping(_) => Some(EngineEvent::Ping),
        EnginePacket::Message(_) | EnginePacket::Binary(_) => {
            Some(EngineEvent::Message(packet.clone()))
        }
        _ => None,
    };
    notes.push(Note::Engine(EngineEvent::Packet(packet)));
    notes.push(Note::Engine(EngineEvent::Heartbeat));
    if let Some(event) = then {
        notes.push(Note::Engine(event));
    }
}

impl Driver {
    fn now(&mut self) -> Instant {
        let elapsed = now_ms() - self.origin;
        let ms = if elapsed.is_finite() && elapsed > 0.0 {
            elapsed as u64
        } else {
            0
        };
        // Monotonic even if the wall clock steps back.
        self.last_now = self.last_now.max(ms);
        Instant::from_millis(self.last_now)
    }

    /// Sets the timer for the machine's next deadline.
    fn schedule(&mut self, shared: &Rc<Shared>) {
        let next = self.machine.poll_timeout();
        let current = self.timer.as_ref().map(|(_, at, _)| *at);
        if next == current {
            return;
        }
        let Some(window) = web_sys::window() else {
            return;
        };
        if let Some((handle, _, _)) = self.timer.take() {
            window.clear_timeout_with_handle(handle);
        }
        let Some(at) = next else {
            return;
        };
        let now = self.now();
        let delay = at.saturating_since(now).as_millis().min(i32::MAX as u128) as i32;
        let weak = Rc::downgrade(shared);
        let fire = Closure::<dyn FnMut()>::new(move || {
            if let Some(shared) = weak.upgrade() {
                if let Ok(mut d) = shared.driver.try_borrow_mut() {
                    d.fired = d.timer.take().map(|(_, _, callback)| callback);
                }
                Shared::report(&weak, Input::Timeout);
            }
        });
        match window.set_timeout_with_callback_and_timeout_and_arguments_0(
            fire.as_ref().unchecked_ref(),
            delay,
        ) {
            Ok(handle) => self.timer = Some((handle, at, fire)),
            Err(_) => log("ferrio: setTimeout failed"),
        }
    }

    /// Copies the engine status and each socket's `active` for the handles.
    fn publish(&mut self, shared: &Shared) {
        let status = EngineStatus {
            sid: self.machine.engine().sid().map(|s| s.to_string()),
            transport: self.machine.engine().transport(),
        };
        if status != self.last_engine {
            *shared.engine.borrow_mut() = status.clone();
            self.last_engine = status;
        }
        for (id, entry) in &mut self.sockets {
            let active = self.machine.is_active(*id);
            if active != entry.last_active {
                entry.last_active = active;
                entry.shared.modify(|s| s.active = active);
            }
        }
    }

    /// Closes every transport at once without telling the machine (`beforeunload`): the
    /// server sees the connection close, the sockets hear nothing. An open long-polling
    /// transport also sends a `close` packet (a `keepalive` request, which may outlive the
    /// page), as engine.io-client's does.
    fn silence(&mut self) {
        for (id, ws) in self.websockets.drain() {
            ws.release();
            self.silenced.insert(id);
        }
        for (id, get) in self.gets.drain() {
            get.abort();
            self.silenced.insert(id);
        }
        let headers = self.endpoint.headers.clone();
        for (id, url) in self.poll_urls.drain() {
            self.silenced.insert(id);
            let body = ferrio_proto::engine::encode_payload(&[EnginePacket::Close.encode()]);
            let headers = headers.clone();
            wasm_bindgen_futures::spawn_local(async move {
                let _ = fetch(&url, Some(body), &headers, None, None, true).await;
            });
        }
    }

    fn command(&mut self, command: Command, shared: &Rc<Shared>, notes: Option<&mut Vec<Note>>) {
        let now = self.now();
        match command {
            Command::Failed { transport, error } => {
                let description = self.failures.transport_failed(error);
                self.command(
                    Command::Input(Input::TransportError {
                        transport,
                        description,
                    }),
                    shared,
                    notes,
                );
            }
            Command::ReportPackets => self.machine.report_packets(true),
            Command::ReportEnginePackets => self.machine.report_engine_packets(true),
            Command::Input(input) => {
                if input_transport(&input).is_some_and(|t| self.silenced.contains(&t)) {
                    return;
                }
                if let (Some(notes), Input::PostResponse { .. }) = (notes, &input) {
                    notes.push(Note::Engine(EngineEvent::Drain));
                }
                match &input {
                    Input::PollResponse { transport, .. } => {
                        self.gets.remove(transport);
                    }
                    Input::WsClosed { transport } => {
                        if let Some(ws) = self.websockets.remove(transport) {
                            ws.release();
                        }
                    }
                    Input::TransportError { transport, .. } => {
                        self.gets.remove(transport);
                        self.poll_urls.remove(transport);
                        if let Some(ws) = self.websockets.remove(transport) {
                            ws.release();
                        }
                    }
                    _ => {}
                }
                self.machine.handle_input(now, input)
            }
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
            Command::Auth { socket, auth } => {
                if let Err(e) = self.machine.provide_auth(now, socket, auth) {
                    log(&format!("ferrio: auth refused: {e}"));
                }
            }
            Command::Connect { shared: socket } => {
                let known = self
                    .machine
                    .socket_for(&socket.nsp)
                    .filter(|id| self.sockets.contains_key(id));
                if let Some(id) = known {
                    let _ = self.machine.connect_socket(now, id);
                    return;
                }
                match self
                    .machine
                    .open_socket(now, &socket.nsp, socket.options.clone())
                {
                    Ok(id) => {
                        let (tx, rx) = mpsc::unbounded();
                        wasm_bindgen_futures::spawn_local(socket::dispatch(
                            socket.clone(),
                            Rc::downgrade(shared),
                            rx,
                        ));
                        self.sockets.insert(
                            id,
                            SocketEntry {
                                shared: socket,
                                items: tx,
                                last_active: false,
                            },
                        );
                    }
                    Err(e) => socket.modify(|s| {
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
                    let _ = self.machine.report_sent(id, entry.shared.report_sent.get());
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
                        None => log(&format!("ferrio: emit refused on {nsp}: {e}")),
                    },
                }
            }
            Command::Ack { nsp, packet } => {
                if let Some(id) = self.machine.socket_for(&nsp) {
                    if let Err(e) = self.machine.ack(now, id, packet) {
                        log(&format!("ferrio: ack not sent on {nsp}: {e}"));
                    }
                }
            }
        }
    }

    fn perform(&mut self, out: Output, shared: &Rc<Shared>, notes: &mut Vec<Note>, engine: bool) {
        match out {
            Output::Io(io) => self.io(io, shared),
            Output::Event(event) => self.event(event, shared, notes, engine),
        }
    }

    fn io(&mut self, io: Io, shared: &Rc<Shared>) {
        let silenced = match &io {
            Io::Get { transport, .. }
            | Io::Post { transport, .. }
            | Io::WsSend { transport, .. } => self.silenced.contains(transport),
            Io::Close { transport } => {
                self.silenced.remove(transport);
                self.poll_urls.remove(transport);
                false
            }
            Io::WsOpen { .. } => false,
        };
        if silenced {
            return;
        }
        match io {
            Io::Get { transport, query } => {
                let controller = AbortController::new().ok();
                let abort = controller.clone();
                let url = self.endpoint.url(false, &query);
                self.poll_urls.insert(transport, url.clone());
                let weak = Rc::downgrade(shared);
                let timeout = self.endpoint.request_timeout;
                let headers = self.endpoint.headers.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    match fetch(&url, None, &headers, abort, timeout, false).await {
                        Ok(body) => Shared::report(&weak, Input::poll_response(transport, body)),
                        Err(error) => Shared::fail(&weak, transport, error),
                    }
                });
                if let Some(c) = controller {
                    self.gets.insert(transport, c);
                }
            }
            Io::Post {
                transport,
                query,
                body,
            } => {
                let url = self.endpoint.url(false, &query);
                self.poll_urls.insert(transport, url.clone());
                let weak = Rc::downgrade(shared);
                let timeout = self.endpoint.request_timeout;
                let headers = self.endpoint.headers.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    match fetch(
                        &url,
                        Some(body.into_bytes()),
                        &headers,
                        None,
                        timeout,
                        false,
                    )
                    .await
                    {
                        Ok(_) => Shared::report(&weak, Input::PostResponse { transport }),
                        Err(error) => Shared::fail(&weak, transport, error),
                    }
                });
            }
            Io::WsOpen { transport, query } => {
                let url = self.endpoint.url(true, &query);
                match open_websocket(&url, &self.endpoint.protocols, transport, shared) {
                    Ok(ws) => {
                        self.websockets.insert(transport, ws);
                    }
                    Err(error) => {
                        // Reported through the queue: the machine is being driven now.
                        shared
                            .pending
                            .borrow_mut()
                            .push_back(Command::Failed { transport, error });
                    }
                }
            }
            Io::WsSend {
                transport, frame, ..
            } => {
                let Some(ws) = self.websockets.get(&transport) else {
                    return;
                };
                let sent = match &frame {
                    Frame::Text(text) => ws.socket.send_with_str(text),
                    Frame::Binary(data) => ws.socket.send_with_u8_array(data),
                };
                if sent.is_err() {
                    shared.pending.borrow_mut().push_back(Command::Failed {
                        transport,
                        error: TransportError {
                            message: "websocket error".to_owned(),
                            status: None,
                            description: "send failed".to_owned(),
                            context: None,
                        },
                    });
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

    fn deliver(&mut self, socket: SocketId, item: Item) {
        if let Some(entry) = self.sockets.get(&socket) {
            let _ = entry.items.unbounded_send(item);
        }
    }

    fn event(&mut self, event: Event, shared: &Rc<Shared>, notes: &mut Vec<Note>, engine: bool) {
        let engine_note = |notes: &mut Vec<Note>, e: EngineEvent| {
            if engine {
                notes.push(Note::Engine(e));
            }
        };
        match event {
            Event::Open => {
                self.failures.opened();
                engine_note(notes, EngineEvent::Open);
                notes.push(Note::Manager(ManagerEvent::Open));
            }
            Event::Error { message } => {
                let cause = self.failures.open_error(&message);
                if cause == ConnectionError::Timeout {
                    engine_note(
                        notes,
                        EngineEvent::Close {
                            reason: DisconnectReason::ForcedClose,
                            description: None,
                        },
                    );
                } else {
                    engine_note(notes, EngineEvent::Error(cause.clone()));
                    engine_note(
                        notes,
                        EngineEvent::Close {
                            reason: DisconnectReason::TransportError,
                            description: Some(message.clone()),
                        },
                    );
                }
                notes.push(Note::Manager(ManagerEvent::Error(cause)));
            }
            Event::Ping => notes.push(Note::Manager(ManagerEvent::Ping)),
            Event::Upgrading(transport) => engine_note(notes, EngineEvent::Upgrading(transport)),
            Event::Upgrade(transport) => engine_note(notes, EngineEvent::Upgrade(transport)),
            Event::UpgradeError(text) => engine_note(notes, EngineEvent::UpgradeError(text)),
            Event::Close {
                reason,
                description,
            } => {
                engine_note(
                    notes,
                    EngineEvent::Close {
                        reason,
                        description,
                    },
                );
                notes.push(Note::Manager(ManagerEvent::Close(reason)));
            }
            Event::ReconnectAttempt(n) => {
                notes.push(Note::Manager(ManagerEvent::ReconnectAttempt(n)))
            }
            Event::Reconnect(n) => notes.push(Note::Manager(ManagerEvent::Reconnect(n))),
            Event::ReconnectError { message } => {
                let cause = self.failures.reconnect_error(&message);
                notes.push(Note::Manager(ManagerEvent::ReconnectError(cause)));
            }
            Event::Packet { packet } => notes.push(Note::Packet(packet)),
            Event::EnginePacket(packet) if engine => received(notes, packet),
            Event::EnginePacketCreate(packet) => {
                engine_note(notes, EngineEvent::PacketCreate(packet));
                // A WebSocket takes each frame at once (`drain`); over polling the POST's
                // answer is the drain.
                if self.machine.engine().transport() == Some(Transport::WebSocket) {
                    engine_note(notes, EngineEvent::Drain);
                }
            }
            Event::ReconnectFailed => {
                notes.push(Note::Manager(ManagerEvent::ReconnectFailed));
                // The last attempt's failure, as the tokio client gives it.
                let cause = self.failures.last_error().cloned();
                for entry in self.sockets.values() {
                    entry.shared.modify(|s| {
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
                match auth_fn {
                    Some(f) => {
                        let weak = Rc::downgrade(shared);
                        wasm_bindgen_futures::spawn_local(async move {
                            let auth = f().await;
                            if let Some(shared) = weak.upgrade() {
                                shared.pending.borrow_mut().push_back(Command::Auth {
                                    socket,
                                    auth: socket::auth_json(auth.as_ref()),
                                });
                                Shared::drive(&shared);
                            }
                        });
                    }
                    None => {
                        let now = self.now();
                        if let Err(e) = self.machine.provide_auth(now, socket, None) {
                            log(&format!("ferrio: auth refused: {e}"));
                        }
                    }
                }
            }
            Event::Connect {
                socket,
                sid,
                recovered,
            } => {
                if let Some(entry) = self.sockets.get(&socket) {
                    entry.shared.modify(|s| {
                        s.connected = true;
                        s.id = Some(sid.to_string());
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
                if let Some(entry) = self.sockets.get(&socket) {
                    entry.shared.modify(|s| {
                        if !retrying {
                            s.failure = Some(error.clone());
                        }
                        s.last_error = Some(error.clone());
                    });
                }
                self.deliver(socket, Item::ConnectError(error));
            }
            Event::Disconnect { socket, reason, .. } => {
                if let Some(entry) = self.sockets.get(&socket) {
                    entry.shared.modify(|s| {
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

/// Opens a WebSocket whose callbacks report to the driver.
fn open_websocket(
    url: &str,
    protocols: &[String],
    transport: TransportId,
    shared: &Rc<Shared>,
) -> Result<Ws, TransportError> {
    let socket = if protocols.is_empty() {
        WebSocket::new(url)
    } else {
        let list = js_sys::Array::new();
        for p in protocols {
            list.push(&JsValue::from_str(p));
        }
        WebSocket::new_with_str_sequence(url, &list)
    }
    .map_err(|e| TransportError {
        message: "websocket error".to_owned(),
        status: None,
        description: describe(&e),
        context: None,
    })?;
    socket.set_binary_type(BinaryType::Arraybuffer);
    let weak = Rc::downgrade(shared);
    let on_open = {
        let weak = weak.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |_| {
            Shared::report(&weak, Input::WsOpen { transport });
        })
    };
    let on_message = {
        let weak = weak.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
            let Ok(e) = e.dyn_into::<MessageEvent>() else {
                return;
            };
            let data = e.data();
            let frame = if let Some(text) = data.as_string() {
                Frame::Text(Str::from(text))
            } else if let Ok(buffer) = data.dyn_into::<ArrayBuffer>() {
                Frame::Binary(Bytes::from(Uint8Array::new(&buffer).to_vec()))
            } else {
                return;
            };
            Shared::report(&weak, Input::WsFrame { transport, frame });
        })
    };
    let on_close = {
        let weak = weak.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |_| {
            Shared::report(&weak, Input::WsClosed { transport });
        })
    };
    let on_error = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        // A browser tells nothing of a WebSocket's failure but that there was one.
        let kind = e
            .dyn_ref::<web_sys::Event>()
            .map(|e| e.type_())
            .unwrap_or_else(|| "error".to_owned());
        let error = TransportError {
            message: "websocket error".to_owned(),
            status: None,
            description: format!("{kind} event"),
            context: None,
        };
        Shared::fail(&weak, transport, error);
    });
    socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    socket.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    Ok(Ws {
        socket,
        _callbacks: vec![on_open, on_message, on_close, on_error],
    })
}

fn describe(e: &JsValue) -> String {
    e.as_string()
        .or_else(|| {
            e.dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// A long-polling GET (`body: None`) or POST, with the `extraHeaders`; the body of a 200
/// answer. `controller` aborts it (the driver's, for a GET it may release); `timeout` aborts it
/// too (`requestTimeout`). `keepalive`: the request may outlive the page (the `close` packet
/// on `beforeunload`).
async fn fetch(
    url: &str,
    body: Option<Bytes>,
    headers: &[(String, String)],
    controller: Option<AbortController>,
    timeout: Option<Duration>,
    keepalive: bool,
) -> Result<Bytes, TransportError> {
    let reason = if body.is_some() {
        "xhr post error"
    } else {
        "xhr poll error"
    };
    let error = |status: u16, description: String, context: Option<String>| TransportError {
        message: reason.to_owned(),
        status: Some(status),
        description,
        context,
    };
    let js_error = |e: JsValue| error(0, describe(&e), None);
    let window = web_sys::window().ok_or_else(|| error(0, "no window".to_owned(), None))?;
    let init = RequestInit::new();
    let controller = match (controller, timeout) {
        (None, Some(_)) => AbortController::new().ok(),
        (c, _) => c,
    };
    if let Some(c) = &controller {
        init.set_signal(Some(&c.signal()));
    }
    let mut timer = None;
    if let (Some(limit), Some(c)) = (timeout, controller.clone()) {
        let on_timeout = Closure::<dyn FnMut()>::new(move || c.abort());
        let ms = limit.as_millis().min(i32::MAX as u128) as i32;
        if let Ok(h) = window.set_timeout_with_callback_and_timeout_and_arguments_0(
            on_timeout.as_ref().unchecked_ref(),
            ms,
        ) {
            timer = Some((h, on_timeout));
        }
    }
    let request_headers = web_sys::Headers::new().map_err(js_error)?;
    for (name, value) in headers {
        request_headers.set(name, value).map_err(js_error)?;
    }
    if let Some(body) = &body {
        init.set_method("POST");
        request_headers
            .set("Content-Type", "text/plain;charset=UTF-8")
            .map_err(js_error)?;
        init.set_body(&Uint8Array::from(&body[..]));
    } else {
        init.set_method("GET");
    }
    init.set_headers(&request_headers);
    if keepalive {
        let _ = js_sys::Reflect::set(&init, &"keepalive".into(), &JsValue::TRUE);
    }
    let result = async {
        let response =
            wasm_bindgen_futures::JsFuture::from(window.fetch_with_str_and_init(url, &init))
                .await
                .map_err(js_error)?;
        let response: Response = response.dyn_into().map_err(js_error)?;
        let buffer =
            wasm_bindgen_futures::JsFuture::from(response.array_buffer().map_err(js_error)?)
                .await
                .map_err(js_error)?;
        let bytes = Uint8Array::new(&buffer).to_vec();
        let status = response.status();
        if status != 200 {
            return Err(error(
                status,
                format!("HTTP {status}"),
                Some(String::from_utf8_lossy(&bytes).into_owned()),
            ));
        }
        Ok(Bytes::from(bytes))
    }
    .await;
    if let Some((h, _closure)) = timer {
        window.clear_timeout_with_handle(h);
    }
    result
}
