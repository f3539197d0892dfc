//! [`Socket`]: one client in one namespace, its event handlers, emits and acks.
//!
//! The socket itself is here; its parts live in submodules: `handlers` (the application's
//! callbacks), `message` (events, arguments and acks), `handshake`, `emit` (volatile and
//! timed emits) and `error`.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ferrio_proto::engine::server::Transport;
use ferrio_proto::rooms::BroadcastOptions;
use ferrio_proto::socket::recovery::Position;
use ferrio_proto::socket::server::DisconnectReason;
use ferrio_proto::socket::Packet;
use ferrio_proto::Str;
use serde::Serialize;
use tokio::sync::oneshot;

use crate::command::{Command, EmitWithAck};
use crate::namespace::{BroadcastOperator, Namespace, NsInner};
use crate::transport::SessionLink;

mod emit;
mod error;
mod handlers;
mod handshake;
mod message;

pub use self::emit::{AckEmitter, VolatileEmitter};
pub use self::error::{AckError, ConnectError, EmitError};
use self::handlers::{AnyHandler, DisconnectHandler, ErasedHandler, OutgoingHandler};
pub(crate) use self::handlers::{ErrorHandler, EventMiddleware};
pub use self::handlers::{EventHandler, HandlerOutput};
pub use self::handshake::Handshake;
pub use self::message::{AckReply, AckSender, Message, RawArgs};

pub(crate) struct SocketInner {
    pub(crate) id: Str,
    pub(crate) ns: Arc<NsInner>,
    pub(crate) link: SessionLink<Command>,
    handshake: Handshake,
    handlers: Mutex<HashMap<String, Vec<ErasedHandler>>>,
    any: Mutex<Vec<AnyHandler>>,
    middlewares: Mutex<Vec<EventMiddleware>>,
    on_error: Mutex<Vec<ErrorHandler>>,
    outgoing: Mutex<Vec<OutgoingHandler>>,
    has_outgoing: AtomicBool,
    on_disconnect: Mutex<Vec<DisconnectHandler>>,
    data: Mutex<http::Extensions>,
    shared_data: Mutex<serde_json::Value>,
    connected: AtomicBool,
    reason: OnceLock<DisconnectReason>,
    recovered: bool,
    pub(crate) pid: Option<Str>,
    pub(crate) since: OnceLock<Position>,
}

/// One client connected to one namespace (the reference's server-side `Socket`). Cheap to
/// clone: every clone is the same socket.
///
/// Its event handlers run one at a time, in the order the events arrived.
#[derive(Clone)]
pub struct Socket {
    pub(crate) inner: Arc<SocketInner>,
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.inner.id)
            .field("nsp", &self.inner.ns.name)
            .finish()
    }
}

impl Socket {
    pub(crate) fn new(
        id: Str,
        ns: Arc<NsInner>,
        link: SessionLink<Command>,
        handshake: Handshake,
        recovered: bool,
        pid: Option<Str>,
    ) -> Socket {
        Socket {
            inner: Arc::new(SocketInner {
                id,
                ns,
                link,
                handshake,
                handlers: Mutex::new(HashMap::new()),
                any: Mutex::new(Vec::new()),
                middlewares: Mutex::new(Vec::new()),
                on_error: Mutex::new(Vec::new()),
                outgoing: Mutex::new(Vec::new()),
                has_outgoing: AtomicBool::new(false),
                on_disconnect: Mutex::new(Vec::new()),
                data: Mutex::new(http::Extensions::new()),
                shared_data: Mutex::new(serde_json::Value::Object(Default::default())),
                connected: AtomicBool::new(false),
                reason: OnceLock::new(),
                recovered,
                pid,
                since: OnceLock::new(),
            }),
        }
    }

    /// The socket id (not the Engine.IO session id).
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The namespace name.
    pub fn nsp(&self) -> &str {
        &self.inner.ns.name
    }

    /// The namespace.
    pub fn namespace(&self) -> Namespace {
        Namespace {
            inner: self.inner.ns.clone(),
        }
    }

    /// The Engine.IO session id of the client (shared by its sockets in other namespaces).
    pub fn engine_id(&self) -> &str {
        &self.inner.link.shared.sid
    }

    /// The client's current transport.
    pub fn transport(&self) -> Transport {
        self.inner.link.shared.transport()
    }

    /// What the client's first request and CONNECT said.
    pub fn handshake(&self) -> &Handshake {
        &self.inner.handshake
    }

    /// True if this socket was restored by connection state recovery.
    pub fn recovered(&self) -> bool {
        self.inner.recovered
    }

    /// True until the socket disconnects.
    pub fn connected(&self) -> bool {
        self.inner.connected.load(Ordering::Acquire)
    }

    /// Adds a handler of event `event`; several handlers of one event run one after the other,
    /// in the order added, and share one ack (the first answer is sent). See [`EventHandler`]
    /// for the accepted signatures.
    ///
    /// ```
    /// # fn f(socket: ferrio_server::Socket) {
    /// use ferrio_server::{AckSender, Message, Socket};
    /// socket.on("chat", |socket: Socket, (text,): (String,), ack: AckSender| async move {
    ///     socket.broadcast().emit("chat", &(text,))?;
    ///     ack.send(&("saved",))
    /// });
    /// socket.on("raw", |socket: Socket, msg: Message| async move {
    ///     socket.emit("raw-back", &msg.raw_args()?)?;
    ///     Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// });
    /// # }
    /// ```
    pub fn on<H, M>(&self, event: &str, handler: H)
    where
        H: EventHandler<M>,
    {
        let handler = Arc::new(handler);
        let erased: ErasedHandler = Arc::new(move |s, m| handler.call(s, m));
        if let Ok(mut h) = self.inner.handlers.lock() {
            h.entry(event.to_owned()).or_default().push(erased);
        }
    }

    /// Adds a catch-all listener (`socket.onAny`), run for every event before its own
    /// handlers, with the event name and the arguments as received; several run in order.
    pub fn on_any<F, Fut>(&self, handler: F)
    where
        F: Fn(Socket, String, RawArgs) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let erased: AnyHandler = Arc::new(move |s, e, a| Box::pin(handler(s, e, a)));
        if let Ok(mut any) = self.inner.any.lock() {
            any.push(erased);
        }
    }

    /// Removes the catch-all listeners.
    pub fn off_any(&self) {
        if let Ok(mut any) = self.inner.any.lock() {
            any.clear();
        }
    }

    /// Adds an event middleware (`socket.use`): it runs for every incoming event, in the order
    /// added, before the catch-all and the event's handler, with the event name and its
    /// arguments. An `Err` stops the event (no handler runs) and is handed to the
    /// [`Socket::on_error`] handlers, as the reference emits `error` on the socket.
    ///
    /// ```
    /// # fn f(socket: ferrio_server::Socket) {
    /// socket.use_event(|socket, event, _args| async move {
    ///     if event.starts_with("admin:") && socket.data::<bool>() != Some(true) {
    ///         return Err("unauthorized event");
    ///     }
    ///     Ok(())
    /// });
    /// socket.on_error(|socket, message| async move {
    ///     if message == "unauthorized event" {
    ///         socket.disconnect(false);
    ///     }
    /// });
    /// # }
    /// ```
    pub fn use_event<F, Fut, E>(&self, middleware: F)
    where
        F: Fn(Socket, String, RawArgs) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        let erased: EventMiddleware = Arc::new(move |s, e, a| {
            let fut = middleware(s, e, a);
            Box::pin(async move { fut.await.map_err(|e| e.to_string()) })
        });
        if let Ok(mut m) = self.inner.middlewares.lock() {
            m.push(erased);
        }
    }

    /// Adds a handler for the errors of [`Socket::use_event`] middlewares (`socket.on("error")`).
    pub fn on_error<F, Fut>(&self, handler: F)
    where
        F: Fn(Socket, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if let Ok(mut h) = self.inner.on_error.lock() {
            h.push(Arc::new(move |s, m| Box::pin(handler(s, m))));
        }
    }

    /// Adds a listener called for every event sent to this socket, by its own emits and by
    /// broadcasts that reach it (`socket.onAnyOutgoing`), with the event name and arguments.
    /// It runs where the emit happens, synchronously, with no lock held; keep it short.
    pub fn on_any_outgoing<F>(&self, listener: F)
    where
        F: Fn(&Socket, &str, &RawArgs) + Send + Sync + 'static,
    {
        if let Ok(mut o) = self.inner.outgoing.lock() {
            o.push(Arc::new(listener));
            self.inner.has_outgoing.store(true, Ordering::Release);
        }
    }

    /// Removes the outgoing listeners (`socket.offAnyOutgoing()`).
    pub fn off_any_outgoing(&self) {
        if let Ok(mut o) = self.inner.outgoing.lock() {
            o.clear();
            self.inner.has_outgoing.store(false, Ordering::Release);
        }
    }

    /// True if outgoing listeners are set (checked under the namespace lock, called after it).
    pub(crate) fn has_outgoing_listeners(&self) -> bool {
        self.inner.has_outgoing.load(Ordering::Acquire)
    }

    /// Calls the outgoing listeners for `packet`, an event.
    pub(crate) fn notify_outgoing(&self, packet: &Packet) {
        if !self.has_outgoing_listeners() {
            return;
        }
        let listeners = self
            .inner
            .outgoing
            .lock()
            .map(|o| o.clone())
            .unwrap_or_default();
        let (Some(event), Ok(args)) = (packet.event_name(), RawArgs::from_event(packet)) else {
            return;
        };
        for listener in listeners {
            listener(self, &event, &args);
        }
    }

    pub(crate) fn event_middlewares(&self) -> Vec<EventMiddleware> {
        self.inner
            .middlewares
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    pub(crate) fn error_handlers(&self) -> Vec<ErrorHandler> {
        self.inner
            .on_error
            .lock()
            .map(|h| h.clone())
            .unwrap_or_default()
    }

    /// Stores a value of type `T` with the socket (the reference's `socket.data`, typed),
    /// replacing an earlier one of the same type.
    ///
    /// ```
    /// # fn f(socket: ferrio_server::Socket) {
    /// #[derive(Clone)]
    /// struct User { name: String }
    /// socket.insert_data(User { name: "ann".into() });
    /// assert_eq!(socket.data::<User>().map(|u| u.name).as_deref(), Some("ann"));
    /// # }
    /// ```
    pub fn insert_data<T: Clone + Send + Sync + 'static>(&self, value: T) {
        if let Ok(mut data) = self.inner.data.lock() {
            data.insert(value);
        }
    }

    /// A copy of the value of type `T` stored with [`Socket::insert_data`].
    pub fn data<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.inner.data.lock().ok()?.get::<T>().cloned()
    }

    /// Sets the socket's shared data: the JSON value every server of a cluster sees in
    /// `fetch_sockets` (the reference's `socket.data`, `{}` until set).
    pub fn set_shared_data<T: Serialize + ?Sized>(
        &self,
        value: &T,
    ) -> Result<(), serde_json::Error> {
        let value = serde_json::to_value(value)?;
        if let Ok(mut data) = self.inner.shared_data.lock() {
            *data = value;
        }
        Ok(())
    }

    /// The socket's shared data ([`Socket::set_shared_data`]).
    pub fn shared_data(&self) -> serde_json::Value {
        self.inner
            .shared_data
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default()
    }

    /// Removes the handlers of `event`.
    pub fn off(&self, event: &str) {
        if let Ok(mut h) = self.inner.handlers.lock() {
            h.remove(event);
        }
    }

    /// Registers a handler run once the socket disconnected, with the reason
    /// (`client namespace disconnect`, `ping timeout`, ...).
    pub fn on_disconnect<F, Fut>(&self, handler: F)
    where
        F: Fn(Socket, DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let erased: DisconnectHandler = Arc::new(move |s, r| Box::pin(handler(s, r)));
        if let Ok(mut h) = self.inner.on_disconnect.lock() {
            h.push(erased);
        }
    }

    /// Emits `event` with `args` (a tuple: `(x,)` for one argument, `()` for none) to this
    /// client. `Bytes` anywhere in the arguments are sent as binary attachments.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, args: &T) -> Result<(), EmitError> {
        let packet = Packet::outgoing_event(self.inner.ns.name.clone(), event, args)?;
        let opts = BroadcastOptions::new().to(self.inner.id.clone());
        let packet = self.inner.ns.record(&packet, &opts).unwrap_or(packet);
        self.notify_outgoing(&packet);
        self.send_command(|s| Command::Send {
            socket: s.clone(),
            packet: Arc::new(packet.encode()),
            volatile: false,
        })
    }

    /// Emits `event` asking for an acknowledgement, without timeout: resolves with the
    /// client's answer, or fails if the socket disconnects first. When the socket already waits
    /// for [`FerrioBuilder::max_pending_acks`](crate::FerrioBuilder::max_pending_acks) answers,
    /// it fails at once with [`AckError::Emit`]`(`[`EmitError::TooManyPendingAcks`]`)` and
    /// nothing is sent.
    pub fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> impl Future<Output = Result<AckReply, AckError>> + Send + 'static {
        self.emit_with_ack_inner(event, args, None)
    }

    /// An emit that may be dropped if the client's transport cannot take it right now
    /// (`socket.volatile.emit`); volatile events are not kept for connection state recovery.
    pub fn volatile(&self) -> VolatileEmitter<'_> {
        VolatileEmitter { socket: self }
    }

    /// Sets a timeout for the next [`AckEmitter::emit_with_ack`]
    /// (`socket.timeout(ms).emitWithAck(...)`).
    pub fn timeout(&self, timeout: Duration) -> AckEmitter<'_> {
        AckEmitter {
            socket: self,
            timeout,
        }
    }

    fn emit_with_ack_inner<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<AckReply, AckError>> + Send + 'static {
        let (reply, rx) = oneshot::channel();
        let sent = Packet::outgoing_event(self.inner.ns.name.clone(), event, args)
            .map_err(EmitError::from)
            .and_then(|packet| {
                let id = self.inner.ns.next_ack_id();
                let packet = packet.with_id(id);
                self.notify_outgoing(&packet);
                self.send_command(|s| {
                    Command::EmitWithAck(Box::new(EmitWithAck {
                        socket: s.clone(),
                        packet: packet.encode(),
                        ack_id: id,
                        timeout: timeout.unwrap_or(Duration::MAX),
                        reply,
                    }))
                })
            });
        async move {
            sent?;
            match rx.await {
                Ok(Ok(packet)) => Ok(AckReply::new(packet)),
                Ok(Err(e)) => Err(e.into()),
                Err(_) => Err(AckError::Disconnected),
            }
        }
    }

    /// Joins `room`.
    pub fn join(&self, room: impl Into<Str>) {
        self.inner.ns.join(&self.inner.id, room.into());
    }

    /// Leaves `room`.
    pub fn leave(&self, room: &str) {
        self.inner.ns.leave(&self.inner.id, room);
    }

    /// The rooms the socket is in, its own id room included (empty once disconnected).
    pub fn rooms(&self) -> Vec<String> {
        self.inner.ns.rooms_of(&self.inner.id)
    }

    /// A broadcast to the members of `room`, this socket excepted.
    pub fn to(&self, room: impl Into<Str>) -> BroadcastOperator {
        self.broadcast().to(room)
    }

    /// A broadcast to every socket of the namespace but this one and the members of `room`.
    pub fn except(&self, room: impl Into<Str>) -> BroadcastOperator {
        self.broadcast().except(room)
    }

    /// A broadcast to every socket of the namespace but this one (`socket.broadcast`).
    pub fn broadcast(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.inner.ns.clone())
            .except(self.inner.id.clone())
            .flag_broadcast()
    }

    /// Disconnects this socket: DISCONNECT is sent for its namespace. With `close`, the whole
    /// Engine.IO connection is closed too (the client's other namespaces included).
    pub fn disconnect(&self, close: bool) {
        let _ = self.send_command(|s| {
            if close {
                Command::Close(s.clone())
            } else {
                Command::Disconnect(s.clone())
            }
        });
    }

    /// Closes the client's whole Engine.IO connection without a DISCONNECT (the reference's
    /// `socket.conn.close()`): its sockets leave with `forced close`, a reason connection state
    /// recovery keeps sessions for, and the client reconnects.
    pub fn close_transport(&self) {
        let _ = self.send_command(|s| Command::CloseTransport(s.clone()));
    }

    fn send_command(&self, command: impl FnOnce(&Socket) -> Command) -> Result<(), EmitError> {
        if !self.connected() {
            return Err(EmitError::Disconnected);
        }
        if self.inner.link.send(command(self)) {
            Ok(())
        } else {
            Err(EmitError::Disconnected)
        }
    }

    pub(crate) fn mark_connected(&self) {
        self.inner.connected.store(true, Ordering::Release);
    }

    pub(crate) fn mark_disconnected(&self, reason: DisconnectReason) {
        self.inner.connected.store(false, Ordering::Release);
        let _ = self.inner.reason.set(reason);
    }

    pub(crate) fn any_handlers(&self) -> Vec<AnyHandler> {
        self.inner.any.lock().map(|a| a.clone()).unwrap_or_default()
    }

    pub(crate) fn handlers(&self, event: &str) -> Vec<ErasedHandler> {
        self.inner
            .handlers
            .lock()
            .ok()
            .and_then(|h| h.get(event).cloned())
            .unwrap_or_default()
    }

    pub(crate) fn disconnect_handlers(&self) -> Vec<DisconnectHandler> {
        self.inner
            .on_disconnect
            .lock()
            .map(|h| h.clone())
            .unwrap_or_default()
    }

    pub(crate) fn reason(&self) -> DisconnectReason {
        self.inner
            .reason
            .get()
            .copied()
            .unwrap_or(DisconnectReason::TransportClose)
    }

    pub(crate) fn message(&self, packet: Packet) -> Message {
        let ack = AckSender::new(self, packet.id().cloned());
        Message { packet, ack }
    }

    /// The same event for another handler: the packet and one shared ack.
    pub(crate) fn message_again(message: &Message) -> Message {
        Message {
            packet: message.packet.clone(),
            ack: message.ack.clone(),
        }
    }
}
