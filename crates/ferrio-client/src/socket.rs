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

#[derive(Default)]
struct Handlers {
    events: HashMap<String, ErasedHandler>,
    any: Vec<AnyHandler>,
    outgoing: Vec<OutgoingHandler>,
    connect: Vec<ConnectHandler>,
    connect_error: Vec<ConnectErrorHandler>,
    disconnect: Vec<DisconnectHandler>,
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
                for l in shared.with_handlers(|h| h.outgoing.clone()) {
                    let call = std::panic::AssertUnwindSafe(|| l(&name, &packet));
                    if std::panic::catch_unwind(call).is_err() {
                        tracing::error!(event = %name, "an on_any_outgoing listener panicked");
                    }
                }
            }
            Item::Connect => {
                let hs = shared.with_handlers(|h| h.connect.clone());
                for h in hs {
                    guarded("connect", || h(socket.clone())).await;
                }
            }
            Item::ConnectError { error: e, .. } => {
                let hs = shared.with_handlers(|h| h.connect_error.clone());
                for h in hs {
                    guarded("connect_error", || h(socket.clone(), e.clone())).await;
                }
            }
            Item::Disconnect(reason) => {
                let hs = shared.with_handlers(|h| h.disconnect.clone());
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
                let (any, handler) =
                    shared.with_handlers(|h| (h.any.clone(), h.events.get(&message.name).cloned()));
                for h in any {
                    let call = std::panic::AssertUnwindSafe(|| h(&socket, &message));
                    if std::panic::catch_unwind(call).is_err() {
                        tracing::error!(event = %message.name, "an on_any listener panicked");
                    }
                }
                match handler {
                    Some(h) => {
                        let name = message.name.clone();
                        guarded(&name, || h(socket, message)).await;
                    }
                    None => tracing::trace!(event = %message.name, "no handler"),
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
/// means to acknowledge it.
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

pub(crate) fn register(shared: &SocketShared, event: &str, handler: ErasedHandler) {
    shared.with_handlers(|h| h.events.insert(event.to_owned(), handler));
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

    /// True if the last connection recovered the previous session (`socket.recovered`).
    pub fn recovered(&self) -> bool {
        self.shared.state.borrow().recovered
    }

    /// The manager this socket belongs to (`socket.io`).
    pub fn manager(&self) -> &Manager {
        &self.manager
    }

    /// Registers the handler of `event`, replacing an earlier one. See [`EventHandler`].
    ///
    /// ```no_run
    /// # fn f(socket: ferrio_client::Socket) {
    /// use ferrio_client::{AckSender, Message, Socket};
    /// socket.on("chat:message", |_s: Socket, (from, text): (String, String), _ack: AckSender| async move {
    ///     println!("{from}: {text}");
    /// });
    /// socket.on("raw", |_s: Socket, msg: Message| async move {
    ///     println!("{} {:?}", msg.event(), msg.packet().data());
    /// });
    /// # }
    /// ```
    pub fn on<H, M>(&self, event: &str, handler: H)
    where
        H: EventHandler<M>,
    {
        register(&self.shared, event, erase(handler));
    }

    /// Removes the handler of `event`.
    pub fn off(&self, event: &str) {
        self.shared.with_handlers(|h| h.events.remove(event));
    }

    /// Registers a handler of `event` that runs once, then is removed (`once`).
    pub fn once<H, M>(&self, event: &str, handler: H)
    where
        H: EventHandler<M>,
    {
        let erased = erase(handler);
        let name = event.to_owned();
        let wrapper: ErasedHandler = Arc::new(move |socket: Socket, message: Message| {
            socket.off(&name);
            erased(socket, message)
        });
        register(&self.shared, event, wrapper);
    }

    /// Removes every [`Socket::on_any`] listener (`offAny`).
    pub fn off_any(&self) {
        self.shared.with_handlers(|h| h.any.clear());
    }

    /// Removes every [`Socket::on_any_outgoing`] listener (`offAnyOutgoing`).
    pub fn off_any_outgoing(&self) {
        self.shared.with_handlers(|h| h.outgoing.clear());
        self.shared.report_sent.store(false, Ordering::Release);
    }

    /// Adds a listener called with every incoming event before its handler (`onAny`).
    pub fn on_any(&self, listener: impl Fn(&Socket, &Message) + Send + Sync + 'static) {
        self.shared
            .with_handlers(|h| h.any.push(Arc::new(listener)));
    }

    /// Adds a listener called with every outgoing event, acks excluded (`onAnyOutgoing`), when
    /// it goes out: at once while connected, after the CONNECT accept (before the `connect`
    /// handlers) for an emit buffered while disconnected. It runs on the socket's handler task,
    /// in order with the other handlers.
    pub fn on_any_outgoing(&self, listener: impl Fn(&str, &Packet) + Send + Sync + 'static) {
        self.shared
            .with_handlers(|h| h.outgoing.push(Arc::new(listener)));
        self.shared.report_sent.store(true, Ordering::Release);
    }

    /// Adds a `connect` handler (called on every connection, reconnections included).
    pub fn on_connect<F, Fut>(&self, handler: F)
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.shared
            .with_handlers(|h| h.connect.push(Arc::new(move |s| Box::pin(handler(s)))));
    }

    /// Adds a `connect_error` handler: the server refused the socket (message and data of the
    /// middleware's error) or the connection failed.
    pub fn on_connect_error<F, Fut>(&self, handler: F)
    where
        F: Fn(Socket, ConnectError) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.shared.with_handlers(|h| {
            h.connect_error
                .push(Arc::new(move |s, e| Box::pin(handler(s, e))))
        });
    }

    /// Adds a `disconnect` handler.
    pub fn on_disconnect<F, Fut>(&self, handler: F)
    where
        F: Fn(Socket, DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.shared.with_handlers(|h| {
            h.disconnect
                .push(Arc::new(move |s, r| Box::pin(handler(s, r))))
        });
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
                });
            }
        }
    }

    /// Disconnects (`socket.disconnect()`): the server is told, and the socket does not
    /// reconnect until [`Socket::connect`]. When no socket of the manager is left connected, the
    /// connection closes.
    pub fn disconnect(&self) {
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
