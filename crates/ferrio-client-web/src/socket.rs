//! The [`Socket`] handle: one namespace of a [`Manager`], its handlers and its emits.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::time::Duration;

use ferrio_proto::socket::client::{EmitOptions, SocketOptions};
use ferrio_proto::socket::{AckId, Packet, RawJson};
use ferrio_proto::Str;
use futures_channel::{mpsc, oneshot};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::driver::{log, Command, DisconnectReason, Manager, Shared};
use crate::error::{AckError, ConnectError, EmitError};

/// A boxed future, as handlers return (not `Send`: a page has one thread).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

pub(crate) type AuthFn = Rc<dyn Fn() -> BoxFuture<Option<serde_json::Value>>>;
type ErasedHandler = Rc<dyn Fn(Socket, Message) -> BoxFuture<()>>;
type AnyHandler = Rc<dyn Fn(&Socket, &Message)>;
type ErrorHandler = Rc<dyn Fn(&Socket, &str, &str)>;
type OutgoingHandler = Rc<dyn Fn(&str, &Packet)>;
type ConnectHandler = Rc<dyn Fn(Socket) -> BoxFuture<()>>;
type ConnectErrorHandler = Rc<dyn Fn(Socket, ConnectError) -> BoxFuture<()>>;
type DisconnectHandler = Rc<dyn Fn(Socket, DisconnectReason) -> BoxFuture<()>>;

/// The connection state of a socket, as the driver last saw it.
#[derive(Debug, Clone, Default)]
pub(crate) struct State {
    pub(crate) connected: bool,
    pub(crate) id: Option<String>,
    pub(crate) recovered: bool,
    /// A `connect_error` after which the socket will not connect by itself.
    pub(crate) failure: Option<ConnectError>,
    /// The last `connect_error`, whether the socket retries or not.
    pub(crate) last_error: Option<ConnectError>,
    /// Connected, or connecting or waiting to reconnect (`socket.active`).
    pub(crate) active: bool,
}

/// What the driver hands to a socket's dispatcher.
#[derive(Debug)]
pub(crate) enum Item {
    Connect,
    ConnectError(ConnectError),
    Disconnect(DisconnectReason),
    Event(Packet),
    /// An emit went out (the core's `Event::Sent`): for the `on_any_outgoing` listeners.
    Sent(Packet),
}

/// Identifies one registered listener of a socket, to remove it later
/// ([`Socket::off_listener`], [`Socket::off_any_listener`]). Every registration returns a new
/// one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerId(u64);

type List<T> = Vec<(ListenerId, T)>;

fn remove_id<T>(list: &mut List<T>, id: ListenerId) -> bool {
    let before = list.len();
    list.retain(|(i, _)| *i != id);
    list.len() != before
}

fn functions<T: Clone>(list: &List<T>) -> Vec<T> {
    list.iter().map(|(_, f)| f.clone()).collect()
}

#[derive(Default)]
struct Handlers {
    next_id: u64,
    events: HashMap<String, List<ErasedHandler>>,
    any: List<AnyHandler>,
    errors: List<ErrorHandler>,
    outgoing: List<OutgoingHandler>,
    connect: List<ConnectHandler>,
    connect_error: List<ConnectErrorHandler>,
    disconnect: List<DisconnectHandler>,
}

impl Handlers {
    fn id(&mut self) -> ListenerId {
        self.next_id += 1;
        ListenerId(self.next_id)
    }

    fn clear(&mut self, event: &str) {
        self.events.remove(event);
        match event {
            "connect" => self.connect.clear(),
            "connect_error" => self.connect_error.clear(),
            "disconnect" => self.disconnect.clear(),
            _ => {}
        }
    }

    fn remove(&mut self, event: &str, id: ListenerId) -> bool {
        let mut removed = false;
        if let Some(list) = self.events.get_mut(event) {
            removed = remove_id(list, id);
            if list.is_empty() {
                self.events.remove(event);
            }
        }
        removed
            || match event {
                "connect" => remove_id(&mut self.connect, id),
                "connect_error" => remove_id(&mut self.connect_error, id),
                "disconnect" => remove_id(&mut self.disconnect, id),
                _ => false,
            }
    }

    fn count(&self, event: &str) -> usize {
        let reserved = match event {
            "connect" => self.connect.len(),
            "connect_error" => self.connect_error.len(),
            "disconnect" => self.disconnect.len(),
            _ => 0,
        };
        self.events.get(event).map_or(0, Vec::len) + reserved
    }
}

/// What a socket handle, the driver and the dispatcher share.
pub(crate) struct SocketShared {
    pub(crate) nsp: Str,
    pub(crate) options: SocketOptions,
    pub(crate) auth_fn: Option<AuthFn>,
    state: RefCell<State>,
    /// Woken at every change of `state`.
    watchers: RefCell<Vec<oneshot::Sender<()>>>,
    handlers: RefCell<Handlers>,
    /// The socket has `on_any_outgoing` listeners: the core reports its emits as they go out.
    pub(crate) report_sent: Cell<bool>,
}

impl SocketShared {
    pub(crate) fn new(nsp: Str, options: SocketOptions, auth_fn: Option<AuthFn>) -> SocketShared {
        SocketShared {
            nsp,
            options,
            auth_fn,
            state: RefCell::new(State::default()),
            watchers: RefCell::new(Vec::new()),
            handlers: RefCell::new(Handlers::default()),
            report_sent: Cell::new(false),
        }
    }

    /// Changes the state and wakes those waiting on it.
    pub(crate) fn modify(&self, f: impl FnOnce(&mut State)) {
        if let Ok(mut s) = self.state.try_borrow_mut() {
            f(&mut s);
        }
        for w in self.watchers.take() {
            let _ = w.send(());
        }
    }

    pub(crate) fn state(&self) -> State {
        self.state
            .try_borrow()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    fn with_handlers<R>(&self, f: impl FnOnce(&mut Handlers) -> R) -> R {
        // Never borrowed across user code: the lists are copied out before handlers run.
        match self.handlers.try_borrow_mut() {
            Ok(mut h) => f(&mut h),
            Err(_) => f(&mut Handlers::default()),
        }
    }
}

/// Runs a socket's handlers, one at a time, in the order the driver handed the items over.
pub(crate) async fn dispatch(
    shared: Rc<SocketShared>,
    manager: Weak<Shared>,
    mut items: mpsc::UnboundedReceiver<Item>,
) {
    while let Some(item) = items.next().await {
        let Some(inner) = manager.upgrade() else {
            return;
        };
        let socket = Socket {
            shared: shared.clone(),
            manager: Manager { inner },
        };
        match item {
            Item::Sent(packet) => {
                let Some(name) = packet.event_name().map(|n| n.into_owned()) else {
                    continue;
                };
                for l in shared.with_handlers(|h| functions(&h.outgoing)) {
                    l(&name, &packet);
                }
            }
            Item::Connect => {
                for h in shared.with_handlers(|h| functions(&h.connect)) {
                    h(socket.clone()).await;
                }
            }
            Item::ConnectError(e) => {
                for h in shared.with_handlers(|h| functions(&h.connect_error)) {
                    h(socket.clone(), e.clone()).await;
                }
            }
            Item::Disconnect(reason) => {
                for h in shared.with_handlers(|h| functions(&h.disconnect)) {
                    h(socket.clone(), reason).await;
                }
            }
            Item::Event(packet) => {
                let Some(name) = packet.event_name().map(|n| n.into_owned()) else {
                    continue;
                };
                let ack = AckSender {
                    target: packet.id().map(|id| (socket.clone(), id.clone())),
                    sent: Rc::new(Cell::new(false)),
                };
                let message = Message { packet, name, ack };
                let (any, handlers) = shared.with_handlers(|h| {
                    let handlers = h.events.get(&message.name).map(functions);
                    (functions(&h.any), handlers.unwrap_or_default())
                });
                for h in any {
                    h(&socket, &message);
                }
                for h in handlers {
                    h(socket.clone(), message.clone()).await;
                }
            }
        }
    }
}

/// An event from the server: its name, its arguments and, if the server asked for one, the
/// means to acknowledge it. A clone shares the acknowledgement: only the first answer is sent.
#[derive(Clone)]
pub struct Message {
    packet: Packet,
    name: String,
    ack: AckSender,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("event", &self.name)
            .field("packet", &self.packet)
            .finish()
    }
}

impl Message {
    /// The event name.
    pub fn event(&self) -> &str {
        &self.name
    }

    /// The arguments (after the name) as `T`, a tuple (`(A,)` for one); `bytes::Bytes` reads
    /// binary attachments.
    pub fn args<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        self.packet.args()
    }

    /// The decoded packet.
    pub fn packet(&self) -> &Packet {
        &self.packet
    }

    /// The means to acknowledge the event (a no-op sender if the server asked for none).
    pub fn ack_sender(&self) -> AckSender {
        self.ack.clone()
    }

    /// True if the server waits for an acknowledgement.
    pub fn ack_requested(&self) -> bool {
        self.ack.requested()
    }

    /// Acknowledges the event with `args` (a tuple); see [`AckSender::send`].
    pub fn ack<T: Serialize + ?Sized>(&self, args: &T) -> Result<(), EmitError> {
        self.ack.send(args)
    }
}

/// Answers an event the server emitted with an acknowledgement (`emitWithAck`). Only the first
/// answer is sent; if the server asked for no acknowledgement, sending does nothing.
#[derive(Clone)]
pub struct AckSender {
    target: Option<(Socket, AckId)>,
    sent: Rc<Cell<bool>>,
}

impl fmt::Debug for AckSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckSender")
            .field("id", &self.target.as_ref().map(|(_, id)| id))
            .finish()
    }
}

impl AckSender {
    /// True if the server asked for an acknowledgement.
    pub fn requested(&self) -> bool {
        self.target.is_some()
    }

    /// Sends the acknowledgement with `args`, a tuple (`()` for none); `bytes::Bytes` anywhere
    /// becomes a binary attachment.
    pub fn send<T: Serialize + ?Sized>(&self, args: &T) -> Result<(), EmitError> {
        let Some((socket, id)) = &self.target else {
            return Ok(());
        };
        if self.sent.replace(true) {
            return Ok(());
        }
        let packet = Packet::ack_with(socket.shared.nsp.clone(), id, args)?;
        socket.manager.command(Command::Ack {
            nsp: socket.shared.nsp.clone(),
            packet,
        })
    }
}

/// The server's answer to an [`Socket::emit_with_ack`].
#[derive(Debug, Clone)]
pub struct AckReply {
    packet: Packet,
}

impl AckReply {
    /// The answer's arguments as `T` (a tuple; `bytes::Bytes` reads binary attachments).
    pub fn args<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        self.packet.args()
    }

    /// The decoded ACK packet.
    pub fn packet(&self) -> &Packet {
        &self.packet
    }
}

/// The outcome of an event handler: `()`, or a `Result` whose error is logged to the console.
pub trait HandlerOutput {
    /// Reports a failure.
    fn report(self, event: &str);
}

impl HandlerOutput for () {
    fn report(self, _event: &str) {}
}

impl<E: fmt::Display> HandlerOutput for Result<(), E> {
    fn report(self, event: &str) {
        if let Err(e) = self {
            log(&format!("ferrio: handler of \"{event}\" failed: {e}"));
        }
    }
}

/// An event handler for [`Socket::on`], shaped as `ferrio-client`'s. Implemented for
///
/// - `Fn(Socket, Message) -> impl Future`: the raw event ([`Message::args`], [`Message::ack`]);
/// - `Fn(Socket, T, AckSender) -> impl Future` with `T: DeserializeOwned` (a tuple): typed
///   arguments. An event whose arguments do not fit `T` does not run the handler: it goes to
///   the [`Socket::on_error`] listeners and to the console.
///
/// The future's output is `()` or a `Result` (see [`HandlerOutput`]).
pub trait EventHandler<M>: 'static {
    /// Runs the handler.
    fn call(&self, socket: Socket, message: Message) -> BoxFuture<()>;
}

impl<F, Fut> EventHandler<(Message,)> for F
where
    F: Fn(Socket, Message) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: HandlerOutput,
{
    fn call(&self, socket: Socket, message: Message) -> BoxFuture<()> {
        let event = message.name.clone();
        let fut = self(socket, message);
        Box::pin(async move { fut.await.report(&event) })
    }
}

impl<F, Fut, T> EventHandler<(T, AckSender)> for F
where
    F: Fn(Socket, T, AckSender) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: HandlerOutput,
    T: DeserializeOwned + 'static,
{
    fn call(&self, socket: Socket, message: Message) -> BoxFuture<()> {
        match message.args::<T>() {
            Ok(args) => {
                let event = message.name.clone();
                let fut = self(socket, args, message.ack);
                Box::pin(async move { fut.await.report(&event) })
            }
            Err(e) => {
                let error = e.to_string();
                log(&format!(
                    "ferrio: event \"{}\" dropped, its arguments do not fit: {error}",
                    message.name
                ));
                for h in socket.shared.with_handlers(|h| functions(&h.errors)) {
                    h(&socket, &message.name, &error);
                }
                Box::pin(async {})
            }
        }
    }
}

fn erase<H, M>(handler: H) -> ErasedHandler
where
    H: EventHandler<M>,
{
    let handler = Rc::new(handler);
    Rc::new(move |s, m| handler.call(s, m))
}

/// One namespace of a [`Manager`] (`socket.io-client`'s `Socket`). Cheap to clone: every clone
/// is the same socket. Handlers run one at a time, in the order the events arrived.
#[derive(Clone)]
pub struct Socket {
    pub(crate) shared: Rc<SocketShared>,
    pub(crate) manager: Manager,
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("nsp", &self.shared.nsp)
            .field("id", &self.id())
            .finish()
    }
}

impl Socket {
    /// The namespace.
    pub fn nsp(&self) -> &str {
        &self.shared.nsp
    }

    /// The socket id the server gave (`socket.id`), while connected.
    pub fn id(&self) -> Option<String> {
        self.shared.state().id
    }

    /// True while connected (`socket.connected`).
    pub fn connected(&self) -> bool {
        self.shared.state().connected
    }

    /// True while the socket is connected or will connect by itself (`socket.active`).
    pub fn active(&self) -> bool {
        self.shared.state().active
    }

    /// True if the last connection recovered the previous session (`socket.recovered`).
    pub fn recovered(&self) -> bool {
        self.shared.state().recovered
    }

    /// The manager this socket belongs to (`socket.io`).
    pub fn manager(&self) -> &Manager {
        &self.manager
    }

    /// Adds a handler of `event`, after those already there (`on`); see [`EventHandler`]. The
    /// returned id removes this handler alone ([`Socket::off_listener`]).
    pub fn on<H, M>(&self, event: &str, handler: H) -> ListenerId
    where
        H: EventHandler<M>,
    {
        let handler = erase(handler);
        self.shared.with_handlers(|h| {
            let id = h.id();
            h.events
                .entry(event.to_owned())
                .or_default()
                .push((id, handler));
            id
        })
    }

    /// Adds a handler of `event` that runs for the next event only, then is removed (`once`).
    /// The returned id removes it before it ran ([`Socket::off_listener`]).
    pub fn once<H, M>(&self, event: &str, handler: H) -> ListenerId
    where
        H: EventHandler<M>,
    {
        let erased = erase(handler);
        let name = event.to_owned();
        let fired = Rc::new(Cell::new(false));
        self.shared.with_handlers(|h| {
            let id = h.id();
            let handler: ErasedHandler = Rc::new(move |socket: Socket, message: Message| {
                if fired.replace(true) {
                    return Box::pin(async {});
                }
                socket.off_listener(&name, id);
                erased(socket, message)
            });
            h.events
                .entry(event.to_owned())
                .or_default()
                .push((id, handler));
            id
        })
    }

    /// Removes one handler of `event`, the one registration returned `id` (`off(event, fn)`).
    pub fn off_listener(&self, event: &str, id: ListenerId) -> bool {
        self.shared.with_handlers(|h| h.remove(event, id))
    }

    /// Removes every handler of `event` (`off(event)`).
    pub fn off(&self, event: &str) {
        self.shared.with_handlers(|h| h.clear(event));
    }

    /// Removes every event handler and every `connect`, `connect_error` and `disconnect`
    /// handler (`removeAllListeners()`).
    pub fn remove_all_listeners(&self) {
        self.shared.with_handlers(|h| {
            h.events.clear();
            h.connect.clear();
            h.connect_error.clear();
            h.disconnect.clear();
        });
    }

    /// How many handlers `event` has (`listeners(event).length`).
    pub fn listeners(&self, event: &str) -> usize {
        self.shared.with_handlers(|h| h.count(event))
    }

    /// Adds a listener called with every incoming event before its handlers (`onAny`).
    pub fn on_any(&self, listener: impl Fn(&Socket, &Message) + 'static) -> ListenerId {
        self.shared.with_handlers(|h| {
            let id = h.id();
            h.any.push((id, Rc::new(listener)));
            id
        })
    }

    /// Adds a listener as [`Socket::on_any`] does, but before the other such listeners
    /// (`prependAny`).
    pub fn prepend_any(&self, listener: impl Fn(&Socket, &Message) + 'static) -> ListenerId {
        self.shared.with_handlers(|h| {
            let id = h.id();
            h.any.insert(0, (id, Rc::new(listener)));
            id
        })
    }

    /// Removes every [`Socket::on_any`] listener (`offAny()`).
    pub fn off_any(&self) {
        self.shared.with_handlers(|h| h.any.clear());
    }

    /// Removes the [`Socket::on_any`] listener whose registration returned `id`.
    pub fn off_any_listener(&self, id: ListenerId) -> bool {
        self.shared.with_handlers(|h| remove_id(&mut h.any, id))
    }

    /// How many [`Socket::on_any`] listeners there are (`listenersAny().length`).
    pub fn listeners_any(&self) -> usize {
        self.shared.with_handlers(|h| h.any.len())
    }

    /// Adds a listener called with every outgoing event, acks excluded (`onAnyOutgoing`), when
    /// it goes out: at once while connected, after the CONNECT accept for an emit buffered
    /// while disconnected. It runs in order with the socket's other handlers.
    pub fn on_any_outgoing(&self, listener: impl Fn(&str, &Packet) + 'static) -> ListenerId {
        self.add_outgoing(false, Rc::new(listener))
    }

    /// Adds a listener as [`Socket::on_any_outgoing`] does, but before the other such
    /// listeners (`prependAnyOutgoing`).
    pub fn prepend_any_outgoing(&self, listener: impl Fn(&str, &Packet) + 'static) -> ListenerId {
        self.add_outgoing(true, Rc::new(listener))
    }

    fn add_outgoing(&self, first: bool, listener: OutgoingHandler) -> ListenerId {
        let id = self.shared.with_handlers(|h| {
            let id = h.id();
            if first {
                h.outgoing.insert(0, (id, listener));
            } else {
                h.outgoing.push((id, listener));
            }
            id
        });
        self.shared.report_sent.set(true);
        id
    }

    /// Removes every [`Socket::on_any_outgoing`] listener (`offAnyOutgoing()`).
    pub fn off_any_outgoing(&self) {
        self.shared.with_handlers(|h| h.outgoing.clear());
        self.shared.report_sent.set(false);
    }

    /// Removes the [`Socket::on_any_outgoing`] listener whose registration returned `id`.
    pub fn off_any_outgoing_listener(&self, id: ListenerId) -> bool {
        let (removed, empty) = self
            .shared
            .with_handlers(|h| (remove_id(&mut h.outgoing, id), h.outgoing.is_empty()));
        if empty {
            self.shared.report_sent.set(false);
        }
        removed
    }

    /// How many [`Socket::on_any_outgoing`] listeners there are.
    pub fn listeners_any_outgoing(&self) -> usize {
        self.shared.with_handlers(|h| h.outgoing.len())
    }

    /// Adds a listener of the events whose arguments did not fit a typed handler (an addition
    /// to `ferrio-client`'s API): it gets the event name and the deserialisation error.
    pub fn on_error(&self, listener: impl Fn(&Socket, &str, &str) + 'static) -> ListenerId {
        self.shared.with_handlers(|h| {
            let id = h.id();
            h.errors.push((id, Rc::new(listener)));
            id
        })
    }

    /// Adds a `connect` handler (called on every connection, reconnections included).
    pub fn on_connect<F, Fut>(&self, handler: F) -> ListenerId
    where
        F: Fn(Socket) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.shared.with_handlers(|h| {
            let id = h.id();
            h.connect.push((id, Rc::new(move |s| Box::pin(handler(s)))));
            id
        })
    }

    /// Adds a `connect_error` handler: the server refused the socket (message and data of the
    /// middleware's error) or the connection failed.
    pub fn on_connect_error<F, Fut>(&self, handler: F) -> ListenerId
    where
        F: Fn(Socket, ConnectError) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.shared.with_handlers(|h| {
            let id = h.id();
            h.connect_error
                .push((id, Rc::new(move |s, e| Box::pin(handler(s, e)))));
            id
        })
    }

    /// Adds a `disconnect` handler.
    pub fn on_disconnect<F, Fut>(&self, handler: F) -> ListenerId
    where
        F: Fn(Socket, DisconnectReason) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.shared.with_handlers(|h| {
            let id = h.id();
            h.disconnect
                .push((id, Rc::new(move |s, r| Box::pin(handler(s, r)))));
            id
        })
    }

    /// Emits `event` with `args`, a tuple (`()` for none); `bytes::Bytes` anywhere becomes a
    /// binary attachment. While disconnected the packet is buffered and sent on reconnection.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, args: &T) -> Result<(), EmitError> {
        self.emitter().emit(event, args)
    }

    /// Emits a `message` event (`send`).
    pub fn send<T: Serialize + ?Sized>(&self, args: &T) -> Result<(), EmitError> {
        self.emit("message", args)
    }

    /// Emits `event` and waits for the server's acknowledgement (`emitWithAck`), within the
    /// socket's `ack_timeout` if one was set. The emit is made when this is called, not when
    /// the future is polled.
    pub fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> impl Future<Output = Result<AckReply, AckError>> + 'static {
        self.emitter().emit_with_ack(event, args)
    }

    /// An emitter whose acknowledgements time out after `timeout` (`socket.timeout(ms)`).
    pub fn timeout(&self, timeout: Duration) -> Emitter {
        self.emitter().timeout(timeout)
    }

    /// An emitter whose packets are dropped if the transport is not writable (`volatile`).
    pub fn volatile(&self) -> Emitter {
        self.emitter().volatile()
    }

    /// An emitter with per-message compression allowed or not (`compress`; the browser
    /// decides whether it compresses).
    pub fn compress(&self, compress: bool) -> Emitter {
        self.emitter().compress(compress)
    }

    fn emitter(&self) -> Emitter {
        Emitter {
            socket: self.clone(),
            options: EmitOptions::default(),
        }
    }

    /// Connects again (`socket.connect()`), after [`Socket::disconnect`], a server disconnect or
    /// a refusal.
    pub fn connect(&self) {
        self.shared.modify(|s| {
            s.failure = None;
            s.last_error = None;
            s.active = true;
        });
        let _ = self.manager.command(Command::Connect {
            shared: self.shared.clone(),
        });
    }

    /// Waits until the socket is connected, or the connection failed for good (refused by the
    /// server, or reconnection is off or gave up). While the manager retries, this keeps
    /// waiting.
    pub async fn wait_connected(&self) -> Result<(), ConnectError> {
        self.wait(false).await
    }

    /// Waits until connected or until the next `connect_error` (`first_error`), or a final one.
    pub(crate) async fn wait(&self, first_error: bool) -> Result<(), ConnectError> {
        loop {
            let (tx, rx) = oneshot::channel();
            {
                let s = self.shared.state();
                if s.connected {
                    return Ok(());
                }
                if let Some(e) = s.failure {
                    return Err(e);
                }
                if let (true, Some(e)) = (first_error, s.last_error) {
                    return Err(e);
                }
                self.shared.watchers.borrow_mut().push(tx);
            }
            if rx.await.is_err() {
                return Err(ConnectError {
                    message: "client closed".to_owned(),
                    data: None,
                    cause: None,
                });
            }
        }
    }

    /// Disconnects (`socket.disconnect()`): the server is told, and the socket does not
    /// reconnect until [`Socket::connect`].
    pub fn disconnect(&self) {
        self.shared.modify(|s| s.active = false);
        let _ = self.manager.command(Command::Disconnect {
            nsp: self.shared.nsp.clone(),
        });
    }
}

/// Emit flags: [`Socket::timeout`], [`Socket::volatile`], [`Socket::compress`], chained.
#[derive(Debug, Clone)]
pub struct Emitter {
    socket: Socket,
    options: EmitOptions,
}

impl Emitter {
    /// Acknowledgements time out after `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Emitter {
        self.options.timeout = Some(timeout);
        self
    }

    /// The packet is dropped if the transport is not writable now.
    pub fn volatile(mut self) -> Emitter {
        self.options.volatile = true;
        self
    }

    /// Per-message compression allowed or not.
    pub fn compress(mut self, compress: bool) -> Emitter {
        self.options.compress = compress;
        self
    }

    fn send(
        &self,
        event: &str,
        args: &(impl Serialize + ?Sized),
        ack: bool,
        reply: Option<oneshot::Sender<Result<Packet, AckError>>>,
    ) -> Result<(), EmitError> {
        let packet = Packet::outgoing_event(self.socket.shared.nsp.clone(), event, args)?;
        self.socket.manager.command(Command::Emit {
            nsp: self.socket.shared.nsp.clone(),
            packet,
            options: EmitOptions {
                ack,
                ..self.options
            },
            reply,
        })
    }

    /// See [`Socket::emit`].
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, args: &T) -> Result<(), EmitError> {
        self.send(event, args, false, None)
    }

    /// See [`Socket::emit_with_ack`].
    pub fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> impl Future<Output = Result<AckReply, AckError>> + 'static {
        let (tx, rx) = oneshot::channel();
        let sent = self.send(event, args, true, Some(tx));
        async move {
            sent?;
            match rx.await {
                Ok(Ok(packet)) => Ok(AckReply { packet }),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(AckError::Emit(EmitError::Closed)),
            }
        }
    }
}

/// An auth payload: a JSON object (or nothing) as the core wants it.
pub(crate) fn auth_json(value: Option<&serde_json::Value>) -> Option<RawJson> {
    value.map(RawJson::from_value)
}

/// A handle of the socket `shared` on `manager`.
pub(crate) fn handle(shared: Rc<SocketShared>, manager: Manager) -> Socket {
    Socket { shared, manager }
}
