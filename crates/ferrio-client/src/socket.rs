//! The [`Socket`] handle: one namespace of a [`Manager`], its handlers and its emits.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use ferrio_proto::socket::client::{EmitOptions, SocketOptions};
use ferrio_proto::socket::{AckId, Packet, RawJson};
use ferrio_proto::Str;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};

pub use ferrio_proto::socket::client::DisconnectReason;

use crate::error::{AckError, ConnectError, EmitError};
use crate::manager::{Command, Manager, ManagerShared};

/// A boxed future, as handlers return.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

pub(crate) type AuthFn = Arc<dyn Fn() -> BoxFuture<Option<serde_json::Value>> + Send + Sync>;
type ErasedHandler = Arc<dyn Fn(Socket, Message) -> BoxFuture<()> + Send + Sync>;
type AnyHandler = Arc<dyn Fn(&Socket, &Message) + Send + Sync>;
type OutgoingHandler = Arc<dyn Fn(&str, &Packet) + Send + Sync>;
type ConnectHandler = Arc<dyn Fn(Socket) -> BoxFuture<()> + Send + Sync>;
type ConnectErrorHandler = Arc<dyn Fn(Socket, ConnectError) -> BoxFuture<()> + Send + Sync>;
type DisconnectHandler = Arc<dyn Fn(Socket, DisconnectReason) -> BoxFuture<()> + Send + Sync>;

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
    /// `retrying`: the socket connects again by itself (a failed reconnection attempt).
    ConnectError {
        error: ConnectError,
        retrying: bool,
    },
    Disconnect(DisconnectReason),
    Event(Packet),
    /// An emit went out (the core's `Event::Sent`): for the `on_any_outgoing` listeners.
    Sent(Packet),
}

/// Identifies one registered listener of a socket, to remove it later
/// ([`Socket::off_listener`], [`Socket::off_any_listener`],
/// [`Socket::off_any_outgoing_listener`]). Every registration returns a new one (the same
/// closure registered twice gets two ids).
///
/// `socket.io-client` removes a listener by passing the function again (`off(ev, fn)`); Rust
/// cannot compare closures, so the registration hands out this id instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerId(u64);

/// A list of listeners with their ids, in call order.
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

    /// Removes every listener of `event` (the `connect`, `connect_error` and `disconnect`
    /// names include the handlers added with [`Socket::on_connect`] and its siblings).
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
    pub(crate) state: watch::Sender<State>,
    handlers: Mutex<Handlers>,
    /// The socket has `on_any_outgoing` listeners: the core reports its emits as they go out.
    pub(crate) report_sent: AtomicBool,
}

impl SocketShared {
    pub(crate) fn new(nsp: Str, options: SocketOptions, auth_fn: Option<AuthFn>) -> SocketShared {
        SocketShared {
            nsp,
            options,
            auth_fn,
            state: watch::Sender::new(State::default()),
            handlers: Mutex::new(Handlers::default()),
            report_sent: AtomicBool::new(false),
        }
    }

    fn with_handlers<R>(&self, f: impl FnOnce(&mut Handlers) -> R) -> R {
        let mut guard = match self.handlers.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }
}

/// Runs a socket's handlers, one at a time, in the order the driver handed the items over. No
/// lock is held while user code runs.
pub(crate) async fn dispatch(
    shared: Arc<SocketShared>,
    manager: Weak<ManagerShared>,
    mut items: mpsc::Receiver<Item>,
) {
    while let Some(item) = items.recv().await {
        let Some(inner) = manager.upgrade() else {
            continue;
        };
        let socket = Socket {
            shared: shared.clone(),
            manager: Manager { inner },
        };
        match item {
            Item::Sent(packet) => {
                let Some(name) = packet.event_name().map(Cow::into_owned) else {
                    continue;
                };
                for l in shared.with_handlers(|h| functions(&h.outgoing)) {
                    let call = std::panic::AssertUnwindSafe(|| l(&name, &packet));
                    if std::panic::catch_unwind(call).is_err() {
                        tracing::error!(event = %name, "an on_any_outgoing listener panicked");
                    }
                }
            }
            Item::Connect => {
                let hs = shared.with_handlers(|h| functions(&h.connect));
                for h in hs {
                    guarded("connect", || h(socket.clone())).await;
                }
            }
            Item::ConnectError { error: e, .. } => {
                let hs = shared.with_handlers(|h| functions(&h.connect_error));
                for h in hs {
                    guarded("connect_error", || h(socket.clone(), e.clone())).await;
                }
            }
            Item::Disconnect(reason) => {
                let hs = shared.with_handlers(|h| functions(&h.disconnect));
                for h in hs {
                    guarded("disconnect", || h(socket.clone(), reason)).await;
                }
            }
            Item::Event(packet) => {
                let Some(name) = packet.event_name().map(Cow::into_owned) else {
                    continue;
                };
                let ack = AckSender {
                    target: packet.id().map(|id| (socket.clone(), id.clone())),
                    sent: Arc::new(AtomicBool::new(false)),
                };
                let message = Message { packet, name, ack };
                let (any, handlers) = shared.with_handlers(|h| {
                    let handlers = h.events.get(&message.name).map(functions);
                    (functions(&h.any), handlers.unwrap_or_default())
                });
                for h in any {
                    let call = std::panic::AssertUnwindSafe(|| h(&socket, &message));
                    if std::panic::catch_unwind(call).is_err() {
                        tracing::error!(event = %message.name, "an on_any listener panicked");
                    }
                }
                if handlers.is_empty() {
                    tracing::trace!(event = %message.name, "no handler");
                    continue;
                }
                // Every handler gets the message; the ack it carries answers once (the first
                // `send` wins, as with the reference's single callback).
                let name = message.name.clone();
                let last = handlers.len() - 1;
                let mut message = Some(message);
                for (i, h) in handlers.into_iter().enumerate() {
                    let m = if i == last {
                        message.take()
                    } else {
                        message.clone()
                    };
                    if let Some(m) = m {
                        guarded(&name, || h(socket.clone(), m)).await;
                    }
                }
            }
        }
    }
}

/// Runs a handler; a panic is logged and the next events are still handled.
async fn guarded(event: &str, start: impl FnOnce() -> BoxFuture<()>) {
    use futures_util::FutureExt;
    let Ok(handler) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(start)) else {
        tracing::error!(event, "handler panicked");
        return;
    };
    if std::panic::AssertUnwindSafe(handler)
        .catch_unwind()
        .await
        .is_err()
    {
        tracing::error!(event, "handler panicked");
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
/// answer is sent; if the server asked for no acknowledgement, sending does nothing. (The
/// server's `AckSender` has the same shape.)
#[derive(Clone)]
pub struct AckSender {
    target: Option<(Socket, AckId)>,
    sent: Arc<AtomicBool>,
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
    /// becomes a binary attachment. Fails with [`EmitError::QueueFull`] as [`Socket::emit`] does.
    pub fn send<T: Serialize + ?Sized>(&self, args: &T) -> Result<(), EmitError> {
        let Some((socket, id)) = &self.target else {
            return Ok(());
        };
        if self.sent.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let packet = Packet::ack_with(socket.shared.nsp.clone(), id, args)?;
        socket.command(Command::Ack {
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

/// The outcome of an event handler: `()`, or a `Result` whose error is logged. (The server's
/// handlers have the same.)
pub trait HandlerOutput: Send {
    /// Reports a failure (through `tracing`).
    fn report(self, event: &str);
}

impl HandlerOutput for () {
    fn report(self, _event: &str) {}
}

impl<E: fmt::Display + Send> HandlerOutput for Result<(), E> {
    fn report(self, event: &str) {
        if let Err(e) = self {
            tracing::warn!(event, "handler failed: {e}");
        }
    }
}

/// An event handler for [`Socket::on`], shaped as the server's. Implemented for
///
/// - `Fn(Socket, Message) -> impl Future`: the raw event ([`Message::args`], [`Message::ack`]);
/// - `Fn(Socket, T, AckSender) -> impl Future` with `T: DeserializeOwned` (a tuple): typed
///   arguments. An event whose arguments do not fit `T` is dropped (and logged).
///
/// The future's output is `()` or a `Result` (see [`HandlerOutput`]).
pub trait EventHandler<M>: Send + Sync + 'static {
    /// Runs the handler.
    fn call(&self, socket: Socket, message: Message) -> BoxFuture<()>;
}

impl<F, Fut> EventHandler<(Message,)> for F
where
    F: Fn(Socket, Message) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
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
    F: Fn(Socket, T, AckSender) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: HandlerOutput,
    T: DeserializeOwned + Send + 'static,
{
    fn call(&self, socket: Socket, message: Message) -> BoxFuture<()> {
        match message.args::<T>() {
            Ok(args) => {
                let event = message.name.clone();
                let fut = self(socket, args, message.ack);
                Box::pin(async move { fut.await.report(&event) })
            }
            Err(e) => {
                tracing::debug!(event = %message.name, "event dropped, arguments do not fit: {e}");
                Box::pin(async {})
            }
        }
    }
}

pub(crate) fn erase<H, M>(handler: H) -> ErasedHandler
where
    H: EventHandler<M>,
{
    let handler = Arc::new(handler);
    Arc::new(move |s, m| handler.call(s, m))
}

/// Adds a handler of `event` after the others; `make` gets the handler's id.
pub(crate) fn register(
    shared: &SocketShared,
    event: &str,
    make: impl FnOnce(ListenerId) -> ErasedHandler,
) -> ListenerId {
    shared.with_handlers(|h| {
        let id = h.id();
        let handler = make(id);
        h.events
            .entry(event.to_owned())
            .or_default()
            .push((id, handler));
        id
    })
}

/// One namespace of a [`Manager`] (`socket.io-client`'s `Socket`). Cheap to clone: every clone
/// is the same socket. The connection lives as long as a handle (a `Socket` or its
/// [`Manager`]) does.
///
/// Handlers run one at a time, in the order the events arrived, on a task of their own.
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use ferrio_client::{AckSender, Socket};
/// let socket = ferrio_client::io("http://localhost:3000/chat").connect().await?;
/// socket.on("question", |_socket: Socket, (q,): (String,), ack: AckSender| async move {
///     let _ = ack.send(&(format!("you asked {q}"),));
/// });
/// socket.emit("chat:message", &("hello",))?;
/// let reply = socket
///     .timeout(std::time::Duration::from_secs(5))
///     .emit_with_ack("save", &(1, 2))
///     .await?;
/// let (saved,): (bool,) = reply.args()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Socket {
    pub(crate) shared: Arc<SocketShared>,
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
    pub(crate) fn command(&self, command: Command) -> Result<(), EmitError> {
        self.manager.command(command)
    }

    /// The namespace.
    pub fn nsp(&self) -> &str {
        &self.shared.nsp
    }

    /// The socket id the server gave (`socket.id`), while connected.
    pub fn id(&self) -> Option<String> {
        self.shared.state.borrow().id.clone()
    }

    /// True while connected (`socket.connected`).
    pub fn connected(&self) -> bool {
        self.shared.state.borrow().connected
    }

    /// True while the socket is connected or will connect by itself (`socket.active`): from
    /// [`Socket::connect`] (or the builder's `connect`/`open`) until [`Socket::disconnect`],
    /// [`Manager::close`], a disconnection by the server or a refusal of its CONNECT (a
    /// `connect_error` from the server's middleware); after those only [`Socket::connect`]
    /// connects it again. A socket that lost its connection and waits for the manager's next
    /// reconnection attempt stays active. As in the reference, so does a socket whose manager
    /// gave up reconnecting ([`ManagerEvent::ReconnectFailed`](crate::ManagerEvent::ReconnectFailed)):
    /// it joins again when the connection opens ([`Manager::open`]).
    ///
    /// [`Socket::connect`] and [`Socket::disconnect`] change it at once; the other causes when
    /// the connection's task has seen them.
    pub fn active(&self) -> bool {
        self.shared.state.borrow().active
    }

    /// True if the last connection recovered the previous session (`socket.recovered`).
    pub fn recovered(&self) -> bool {
        self.shared.state.borrow().recovered
    }

    /// The manager this socket belongs to (`socket.io`).
    pub fn manager(&self) -> &Manager {
        &self.manager
    }

    /// Adds a handler of `event`, after those already there (`on`): every handler of the event
    /// runs, in the order they were added. See [`EventHandler`]. The returned id removes this
    /// handler alone ([`Socket::off_listener`]).
    ///
    /// An event the server asked an acknowledgement for hands the same [`AckSender`] to every
    /// handler: the first answer is sent, the others are ignored.
    ///
    /// ```no_run
    /// # fn f(socket: ferrio_client::Socket) {
    /// use ferrio_client::{AckSender, Message, Socket};
    /// let id = socket.on("chat:message", |_s: Socket, (from, text): (String, String), _ack: AckSender| async move {
    ///     println!("{from}: {text}");
    /// });
    /// socket.on("raw", |_s: Socket, msg: Message| async move {
    ///     println!("{} {:?}", msg.event(), msg.packet().data());
    /// });
    /// socket.off_listener("chat:message", id);
    /// # }
    /// ```
    pub fn on<H, M>(&self, event: &str, handler: H) -> ListenerId
    where
        H: EventHandler<M>,
    {
        let handler = erase(handler);
        register(&self.shared, event, |_| handler)
    }

    /// Adds a handler of `event` that runs for the next event only, then is removed (`once`).
    /// The returned id removes it before it ran ([`Socket::off_listener`]).
    pub fn once<H, M>(&self, event: &str, handler: H) -> ListenerId
    where
        H: EventHandler<M>,
    {
        let erased = erase(handler);
        let name = event.to_owned();
        let fired = Arc::new(AtomicBool::new(false));
        register(&self.shared, event, move |id| {
            Arc::new(move |socket: Socket, message: Message| {
                if fired.swap(true, Ordering::AcqRel) {
                    return Box::pin(async {});
                }
                socket.off_listener(&name, id);
                erased(socket, message)
            })
        })
    }

    /// Removes one handler of `event`, the one registration returned `id` (`off(event, fn)`:
    /// Rust cannot compare closures, so the id stands for the function). The names `connect`,
    /// `connect_error` and `disconnect` reach the handlers of [`Socket::on_connect`],
    /// [`Socket::on_connect_error`] and [`Socket::on_disconnect`]. False if no such handler was
    /// there (already removed, a `once` that ran, or the id of another event).
    pub fn off_listener(&self, event: &str, id: ListenerId) -> bool {
        self.shared.with_handlers(|h| h.remove(event, id))
    }

    /// Removes every handler of `event` (`off(event)`), the `connect`, `connect_error` and
    /// `disconnect` handlers included under those names.
    pub fn off(&self, event: &str) {
        self.shared.with_handlers(|h| h.clear(event));
    }

    /// Removes every event handler and every `connect`, `connect_error` and `disconnect`
    /// handler (`removeAllListeners()`, `off()`). As in the reference, the [`Socket::on_any`]
    /// and [`Socket::on_any_outgoing`] listeners stay: [`Socket::off_any`] and
    /// [`Socket::off_any_outgoing`] remove them.
    pub fn remove_all_listeners(&self) {
        self.shared.with_handlers(|h| {
            h.events.clear();
            h.connect.clear();
            h.connect_error.clear();
            h.disconnect.clear();
        });
    }

    /// How many handlers `event` has (`listeners(event).length`; the functions themselves
    /// cannot be handed out, they are type-erased). `connect`, `connect_error` and
    /// `disconnect` count the handlers of [`Socket::on_connect`] and its siblings.
    pub fn listeners(&self, event: &str) -> usize {
        self.shared.with_handlers(|h| h.count(event))
    }

    /// Adds a listener called with every incoming event before its handlers, after the other
    /// such listeners (`onAny`). The returned id removes it ([`Socket::off_any_listener`]).
    pub fn on_any(
        &self,
        listener: impl Fn(&Socket, &Message) + Send + Sync + 'static,
    ) -> ListenerId {
        self.shared.with_handlers(|h| {
            let id = h.id();
            h.any.push((id, Arc::new(listener)));
            id
        })
    }

    /// Adds a listener as [`Socket::on_any`] does, but before the other such listeners
    /// (`prependAny`).
    pub fn prepend_any(
        &self,
        listener: impl Fn(&Socket, &Message) + Send + Sync + 'static,
    ) -> ListenerId {
        self.shared.with_handlers(|h| {
            let id = h.id();
            h.any.insert(0, (id, Arc::new(listener)));
            id
        })
    }

    /// Removes every [`Socket::on_any`] listener (`offAny()`).
    pub fn off_any(&self) {
        self.shared.with_handlers(|h| h.any.clear());
    }

    /// Removes the [`Socket::on_any`] (or [`Socket::prepend_any`]) listener whose registration
    /// returned `id` (`offAny(fn)`; Rust cannot compare closures, so the id stands for the
    /// function). False if it was not there.
    pub fn off_any_listener(&self, id: ListenerId) -> bool {
        self.shared.with_handlers(|h| remove_id(&mut h.any, id))
    }

    /// How many [`Socket::on_any`] listeners there are (`listenersAny().length`).
    pub fn listeners_any(&self) -> usize {
        self.shared.with_handlers(|h| h.any.len())
    }

    /// Adds a listener called with every outgoing event, acks excluded (`onAnyOutgoing`), when
    /// it goes out: at once while connected, after the CONNECT accept (before the `connect`
    /// handlers) for an emit buffered while disconnected. It runs on the socket's handler task,
    /// in order with the other handlers, after the other such listeners. The returned id
    /// removes it ([`Socket::off_any_outgoing_listener`]).
    pub fn on_any_outgoing(
        &self,
        listener: impl Fn(&str, &Packet) + Send + Sync + 'static,
    ) -> ListenerId {
        self.add_outgoing(false, Arc::new(listener))
    }

    /// Adds a listener as [`Socket::on_any_outgoing`] does, but before the other such
    /// listeners (`prependAnyOutgoing`).
    pub fn prepend_any_outgoing(
        &self,
        listener: impl Fn(&str, &Packet) + Send + Sync + 'static,
    ) -> ListenerId {
        self.add_outgoing(true, Arc::new(listener))
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
        self.shared.report_sent.store(true, Ordering::Release);
        id
    }

    /// Removes every [`Socket::on_any_outgoing`] listener (`offAnyOutgoing()`).
    pub fn off_any_outgoing(&self) {
        self.shared.with_handlers(|h| {
            h.outgoing.clear();
            self.shared.report_sent.store(false, Ordering::Release);
        });
    }

    /// Removes the [`Socket::on_any_outgoing`] (or [`Socket::prepend_any_outgoing`]) listener
    /// whose registration returned `id` (`offAnyOutgoing(fn)`; Rust cannot compare closures, so
    /// the id stands for the function). False if it was not there.
    pub fn off_any_outgoing_listener(&self, id: ListenerId) -> bool {
        self.shared.with_handlers(|h| {
            let removed = remove_id(&mut h.outgoing, id);
            if h.outgoing.is_empty() {
                self.shared.report_sent.store(false, Ordering::Release);
            }
            removed
        })
    }

    /// How many [`Socket::on_any_outgoing`] listeners there are
    /// (`listenersAnyOutgoing().length`).
    pub fn listeners_any_outgoing(&self) -> usize {
        self.shared.with_handlers(|h| h.outgoing.len())
    }

    /// Adds a `connect` handler (called on every connection, reconnections included). The
    /// returned id removes it (`off_listener("connect", id)`).
    pub fn on_connect<F, Fut>(&self, handler: F) -> ListenerId
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.shared.with_handlers(|h| {
            let id = h.id();
            h.connect
                .push((id, Arc::new(move |s| Box::pin(handler(s)))));
            id
        })
    }

    /// Adds a `connect_error` handler: the server refused the socket (message and data of the
    /// middleware's error) or the connection failed. The returned id removes it
    /// (`off_listener("connect_error", id)`).
    pub fn on_connect_error<F, Fut>(&self, handler: F) -> ListenerId
    where
        F: Fn(Socket, ConnectError) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.shared.with_handlers(|h| {
            let id = h.id();
            h.connect_error
                .push((id, Arc::new(move |s, e| Box::pin(handler(s, e)))));
            id
        })
    }

    /// Adds a `disconnect` handler. The returned id removes it
    /// (`off_listener("disconnect", id)`).
    pub fn on_disconnect<F, Fut>(&self, handler: F) -> ListenerId
    where
        F: Fn(Socket, DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.shared.with_handlers(|h| {
            let id = h.id();
            h.disconnect
                .push((id, Arc::new(move |s, r| Box::pin(handler(s, r)))));
            id
        })
    }

    /// Emits `event` with `args`, a tuple (`()` for none); `bytes::Bytes` anywhere becomes a
    /// binary attachment. While disconnected the packet is buffered and sent on reconnection.
    ///
    /// The emit is queued for the connection's task; with [`COMMAND_QUEUE`](crate::COMMAND_QUEUE)
    /// commands already waiting (the application emits faster than the connection sends) it
    /// fails with [`EmitError::QueueFull`] and nothing is sent.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, args: &T) -> Result<(), EmitError> {
        self.emitter().emit(event, args)
    }

    /// Emits a `message` event (`send`).
    pub fn send<T: Serialize + ?Sized>(&self, args: &T) -> Result<(), EmitError> {
        self.emit("message", args)
    }

    /// Emits `event` and waits for the server's acknowledgement (`emitWithAck`), within the
    /// socket's `ack_timeout` if one was set. The emit is queued when this is called, not when
    /// the future is polled; a full queue fails the future with
    /// [`AckError::Emit`]`(`[`EmitError::QueueFull`]`)`, as for [`Socket::emit`], and so does
    /// the bound on pending acks, with [`EmitError::Client`]`(`[`ClientError::TooManyPendingAcks`](crate::ClientError::TooManyPendingAcks)`)`
    /// (see [`ClientBuilder::max_pending_acks`](crate::ClientBuilder::max_pending_acks)).
    pub fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> impl Future<Output = Result<AckReply, AckError>> + Send + 'static {
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

    /// An emitter with per-message compression allowed or not (`compress`).
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
        self.shared.state.send_modify(|s| {
            s.failure = None;
            s.last_error = None;
            s.active = true;
        });
        let _ = self.command(Command::Connect {
            shared: self.shared.clone(),
        });
    }

    /// Waits until the socket is connected, or the connection failed for good (refused by the
    /// server, or the connection could not be made and reconnection is off or gave up). While
    /// the manager retries, this keeps waiting.
    pub async fn wait_connected(&self) -> Result<(), ConnectError> {
        self.wait(false).await
    }

    /// Waits until connected or until the next `connect_error` (`first_error`), or a final one.
    pub(crate) async fn wait(&self, first_error: bool) -> Result<(), ConnectError> {
        let mut rx = self.shared.state.subscribe();
        loop {
            {
                let s = rx.borrow_and_update();
                if s.connected {
                    return Ok(());
                }
                if let Some(e) = &s.failure {
                    return Err(e.clone());
                }
                if let (true, Some(e)) = (first_error, &s.last_error) {
                    return Err(e.clone());
                }
            }
            if rx.changed().await.is_err() {
                return Err(ConnectError {
                    message: "client closed".to_owned(),
                    data: None,
                    cause: None,
                });
            }
        }
    }

    /// Disconnects (`socket.disconnect()`): the server is told, and the socket does not
    /// reconnect until [`Socket::connect`]. When no socket of the manager is left connected, the
    /// connection closes.
    pub fn disconnect(&self) {
        self.shared.state.send_modify(|s| s.active = false);
        let _ = self.command(Command::Disconnect {
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

    /// Builds the packet and queues it (the [`Socket::on_any_outgoing`] listeners see it when
    /// the core sends it).
    fn send(
        &self,
        event: &str,
        args: &(impl Serialize + ?Sized),
        ack: bool,
        reply: Option<oneshot::Sender<Result<Packet, AckError>>>,
    ) -> Result<(), EmitError> {
        let packet = Packet::outgoing_event(self.socket.shared.nsp.clone(), event, args)?;
        self.socket.command(Command::Emit {
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
    ) -> impl Future<Output = Result<AckReply, AckError>> + Send + 'static {
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
