//! [`Socket`]: one client in one namespace, its event handlers, emits and acks.
//!
//! The socket itself is here; its parts live in submodules: `handlers` (the application's
//! callbacks), `message` (events, arguments and acks), `handshake`, `emit` (volatile and
//! timed emits), `disconnect` (why a socket left) and `error`.
//!
//! # Leaving
//!
//! When a socket disconnects, its `disconnecting` handlers run first, in their own task, while
//! the socket is still in its rooms and listed by its namespace (broadcasts to its rooms reach
//! the other members; the socket itself no longer receives anything). Then it leaves its rooms,
//! its session is kept for connection state recovery (its rooms and data as they are then),
//! and, once its queued events were handled, its `disconnect` handlers run.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ferrio_proto::engine::server::Transport;
use ferrio_proto::rooms::BroadcastOptions;
use ferrio_proto::socket::recovery::Position;
use ferrio_proto::socket::Packet;
use ferrio_proto::Str;
use serde::Serialize;
use tokio::sync::{oneshot, watch};

use crate::command::{Command, EmitWithAck};
use crate::namespace::{BroadcastOperator, IntoRooms, Namespace, NsInner};
use crate::transport::SessionLink;

mod disconnect;
mod emit;
mod error;
mod handlers;
mod handshake;
mod message;

pub use self::disconnect::Disconnection;
pub use self::emit::{AckEmitter, CompressEmitter, VolatileEmitter};
pub use self::error::{AckError, ConnectError, EmitError, HandlerError};
use self::handlers::{AnyHandler, ErasedHandler, HandlerErrorHandler, OutgoingHandler};

/// FNV-1a, the hash of the handler map's event names: every event received is looked up there,
/// and a short name hashes in a few instructions where SipHash takes a hundred or more. The
/// map's keys are the application's own names: a peer choosing the names it sends can make its
/// lookups collide with those few keys at most, not fill the map.
struct NameHasher(u64);

impl Default for NameHasher {
    fn default() -> NameHasher {
        NameHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// One event's handlers, in the order they were added.
pub(crate) type Listeners = Arc<[(ListenerId, ErasedHandler)]>;
pub(crate) use self::handlers::{DisconnectHandler, ErrorHandler, EventMiddleware};
pub use self::handlers::{EventHandler, HandlerOutput, ListenerId};
pub use self::handshake::Handshake;
pub use self::message::{AckReply, AckSender, Message, RawArgs};

pub(crate) struct SocketInner {
    pub(crate) id: Str,
    pub(crate) ns: Arc<NsInner>,
    pub(crate) link: SessionLink<Command>,
    handshake: Handshake,
    /// Each event's handlers, in order; a list is replaced, not changed, when a handler is
    /// added or removed, so that an event takes its handlers without copying them.
    handlers: Mutex<HashMap<String, Listeners, BuildHasherDefault<NameHasher>>>,
    any: Mutex<Vec<(ListenerId, AnyHandler)>>,
    middlewares: Mutex<Vec<EventMiddleware>>,
    on_error: Mutex<Vec<ErrorHandler>>,
    on_handler_error: Mutex<Vec<HandlerErrorHandler>>,
    outgoing: Mutex<Vec<(ListenerId, OutgoingHandler)>>,
    has_outgoing: AtomicBool,
    on_disconnect: Mutex<Vec<DisconnectHandler>>,
    on_disconnecting: Mutex<Vec<DisconnectHandler>>,
    data: Mutex<http::Extensions>,
    shared_data: Mutex<serde_json::Value>,
    connected: AtomicBool,
    reason: OnceLock<Disconnection>,
    /// Set once the socket left its rooms and its namespace (see the module docs).
    left: watch::Sender<bool>,
    recovered: bool,
    pub(crate) pid: Option<Str>,
    pub(crate) since: OnceLock<Position>,
    /// Work handed to the socket's handler task and not finished yet: queued events, an
    /// event's handlers that went on waiting there, and its connection handlers while they
    /// run. While it is zero the session may handle an event in its own task (see
    /// `session.rs`): nothing of this socket runs anywhere else.
    pub(crate) unfinished: AtomicUsize,
}

/// One client connected to one namespace (the reference's server-side `Socket`). Cheap to
/// clone: every clone is the same socket.
///
/// Its event handlers run one at a time, in the order the events arrived. An event that finds
/// none of the socket's handlers running or waiting starts in the task that read it (its
/// session's): a handler that finishes without waiting (an ack, an emit) costs no task
/// switch; one that waits for something goes on in the socket's own task, and the events
/// after it wait there for their turn. So a handler should not block its thread for long
/// (as in any async code): the connection that read the event waits meanwhile.
///
/// Unlike Node, where an `async` handler's `await` lets the socket's next events start, a
/// handler that waits here (for a database, or for `emit_with_ack`'s answer) holds up this
/// socket's later events, though not the acks it waits for, nor other sockets. For long work
/// that later events need not wait for, `tokio::spawn` it from the handler.
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
                handlers: Mutex::new(HashMap::default()),
                any: Mutex::new(Vec::new()),
                middlewares: Mutex::new(Vec::new()),
                on_error: Mutex::new(Vec::new()),
                on_handler_error: Mutex::new(Vec::new()),
                outgoing: Mutex::new(Vec::new()),
                has_outgoing: AtomicBool::new(false),
                on_disconnect: Mutex::new(Vec::new()),
                on_disconnecting: Mutex::new(Vec::new()),
                data: Mutex::new(http::Extensions::new()),
                shared_data: Mutex::new(serde_json::Value::Object(Default::default())),
                connected: AtomicBool::new(false),
                reason: OnceLock::new(),
                left: watch::Sender::new(false),
                recovered,
                pid,
                since: OnceLock::new(),
                unfinished: AtomicUsize::new(0),
            }),
        }
    }

    /// The socket id (not the Engine.IO session id).
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The server's application state of type `T` ([`crate::FerrioBuilder::state`]), if any:
    /// shared by every handler, without globals.
    pub fn state<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.inner.ns.app_state()
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

    /// Waits until the client's Engine.IO session upgrades from long-polling to WebSocket
    /// (Node's `socket.conn.on("upgrade", transport => ...)`) and returns the new transport, at
    /// once if it already has; `None` if the session closes without upgrading (a client that
    /// connected over WebSocket never upgrades).
    pub async fn upgraded(&self) -> Option<Transport> {
        self.inner.link.shared.upgraded().await
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
    /// for the accepted signatures. Returns the handler's [`ListenerId`], to remove it alone
    /// with [`Socket::off_listener`].
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
    pub fn on<H, M>(&self, event: &str, handler: H) -> ListenerId
    where
        H: EventHandler<M>,
    {
        let id = ListenerId::next();
        let handler = Arc::new(handler);
        self.add_handler(event, id, Arc::new(move |s, m| handler.call(s, m)));
        id
    }

    /// Adds a handler of event `event` that runs for its next occurrence only
    /// (`socket.once`): it is removed as that event is handled, before it runs. Returns its
    /// [`ListenerId`], to remove it before it ran with [`Socket::off_listener`].
    ///
    /// ```
    /// # fn f(socket: ferrio_server::Socket) {
    /// use ferrio_server::{AckSender, Socket};
    /// socket.once("ready", |socket: Socket, (): (), _ack: AckSender| async move {
    ///     let _ = socket.emit("welcome", &());
    /// });
    /// assert_eq!(socket.listeners("ready"), 1);
    /// # }
    /// ```
    pub fn once<H, M>(&self, event: &str, handler: H) -> ListenerId
    where
        H: EventHandler<M>,
    {
        let id = ListenerId::next();
        let handler = Arc::new(handler);
        let fired = AtomicBool::new(false);
        let name = event.to_owned();
        self.add_handler(
            event,
            id,
            Arc::new(move |s: Socket, m| {
                if fired.swap(true, Ordering::AcqRel) {
                    return Box::pin(async {});
                }
                s.off_listener(&name, id);
                handler.call(s, m)
            }),
        );
        id
    }

    fn add_handler(&self, event: &str, id: ListenerId, handler: ErasedHandler) {
        if let Ok(mut h) = self.inner.handlers.lock() {
            let mut list = h.get(event).map(|l| l.to_vec()).unwrap_or_default();
            list.push((id, handler));
            h.insert(event.to_owned(), list.into());
        }
    }

    /// Removes the handler `id` of `event` ([`Socket::on`], [`Socket::once`]), the reference's
    /// `socket.off(event, listener)`: Rust closures cannot be compared, so the handler is named
    /// by the id its registration returned. True if it was there.
    ///
    /// ```
    /// # fn f(socket: ferrio_server::Socket) {
    /// use ferrio_server::{Message, Socket};
    /// let log = socket.on("chat", |_socket: Socket, _msg: Message| async {});
    /// socket.on("chat", |_socket: Socket, _msg: Message| async {});
    /// assert!(socket.off_listener("chat", log));
    /// assert_eq!(socket.listeners("chat"), 1);
    /// # }
    /// ```
    pub fn off_listener(&self, event: &str, id: ListenerId) -> bool {
        let Ok(mut h) = self.inner.handlers.lock() else {
            return false;
        };
        let Some(list) = h.get(event) else {
            return false;
        };
        if !list.iter().any(|(i, _)| *i == id) {
            return false;
        }
        let rest: Vec<_> = list.iter().filter(|(i, _)| *i != id).cloned().collect();
        if rest.is_empty() {
            h.remove(event);
        } else {
            h.insert(event.to_owned(), rest.into());
        }
        true
    }

    /// Removes listeners (`socket.removeAllListeners`). With `Some(event)`, the handlers of
    /// `event` ([`Socket::off`]); the names `disconnect`, `disconnecting` and `error` also clear
    /// the [`Socket::on_disconnect`], [`Socket::on_disconnecting`] and [`Socket::on_error`]
    /// handlers. With `None`, all of these. The catch-all and outgoing listeners stay, as in the
    /// reference ([`Socket::off_any`], [`Socket::off_any_outgoing`]).
    pub fn remove_all_listeners(&self, event: Option<&str>) {
        fn clear<T>(list: &Mutex<Vec<T>>) {
            if let Ok(mut l) = list.lock() {
                l.clear();
            }
        }
        match event {
            Some(event) => {
                self.off(event);
                match event {
                    "disconnect" => clear(&self.inner.on_disconnect),
                    "disconnecting" => clear(&self.inner.on_disconnecting),
                    "error" => clear(&self.inner.on_error),
                    _ => {}
                }
            }
            None => {
                if let Ok(mut h) = self.inner.handlers.lock() {
                    h.clear();
                }
                clear(&self.inner.on_disconnect);
                clear(&self.inner.on_disconnecting);
                clear(&self.inner.on_error);
            }
        }
    }

    /// How many handlers `event` has (`socket.listenerCount(event)`; the reference's
    /// `socket.listeners(event)` returns the functions, which Rust cannot usefully hand back).
    pub fn listeners(&self, event: &str) -> usize {
        self.inner
            .handlers
            .lock()
            .map(|h| h.get(event).map_or(0, |l| l.len()))
            .unwrap_or(0)
    }

    /// The events that have handlers (`socket.eventNames()`), in no particular order.
    pub fn event_names(&self) -> Vec<String> {
        self.inner
            .handlers
            .lock()
            .map(|h| h.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Adds a catch-all listener (`socket.onAny`), run for every event before its own
    /// handlers, with the event name and the arguments as received; several run in order.
    /// Returns its [`ListenerId`], for [`Socket::off_any_listener`].
    pub fn on_any<F, Fut>(&self, handler: F) -> ListenerId
    where
        F: Fn(Socket, String, RawArgs) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.add_any(handler, false)
    }

    /// Adds a catch-all listener run before the others (`socket.prependAny`); otherwise as
    /// [`Socket::on_any`].
    pub fn prepend_any<F, Fut>(&self, handler: F) -> ListenerId
    where
        F: Fn(Socket, String, RawArgs) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.add_any(handler, true)
    }

    fn add_any<F, Fut>(&self, handler: F, first: bool) -> ListenerId
    where
        F: Fn(Socket, String, RawArgs) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let id = ListenerId::next();
        let erased: AnyHandler = Arc::new(move |s, e, a| Box::pin(handler(s, e, a)));
        if let Ok(mut any) = self.inner.any.lock() {
            if first {
                any.insert(0, (id, erased));
            } else {
                any.push((id, erased));
            }
        }
        id
    }

    /// Removes every catch-all listener (`socket.offAny()`).
    pub fn off_any(&self) {
        if let Ok(mut any) = self.inner.any.lock() {
            any.clear();
        }
    }

    /// Removes the catch-all listener `id` (`socket.offAny(listener)`, by the id
    /// [`Socket::on_any`] or [`Socket::prepend_any`] returned: closures cannot be compared).
    /// True if it was there.
    pub fn off_any_listener(&self, id: ListenerId) -> bool {
        remove_listener(&self.inner.any, id)
    }

    /// How many catch-all listeners the socket has (`socket.listenersAny().length`).
    pub fn listeners_any(&self) -> usize {
        self.inner.any.lock().map(|a| a.len()).unwrap_or(0)
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

    /// Adds a handler for the failures of this socket's event handlers ([`Socket::on`]): an
    /// event whose arguments do not fit a typed handler's types (the event is dropped; see
    /// [`HandlerError::arguments_error`]), or a handler that returned an `Err`. It runs in the
    /// socket's handler task, after the failed handler, with the event's name
    /// ([`HandlerError::event`]). Failures are also logged (`tracing`), with or without it.
    /// To hear them on every socket, add it in the server's or namespace's `on_connection`.
    ///
    /// ```
    /// # fn f(socket: ferrio_server::Socket) {
    /// socket.on("move", |_socket, (x, y): (i32, i32), _ack| async move {
    ///     # let _ = (x, y);
    /// });
    /// socket.on_handler_error(|socket, error| async move {
    ///     if error.is_arguments() {
    ///         let _ = socket.emit("bad_request", &(error.event(), error.to_string()));
    ///     }
    /// });
    /// # }
    /// ```
    pub fn on_handler_error<F, Fut>(&self, handler: F)
    where
        F: Fn(Socket, Arc<HandlerError>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if let Ok(mut h) = self.inner.on_handler_error.lock() {
            h.push(Arc::new(move |s, e| Box::pin(handler(s, e))));
        }
    }

    /// Runs the [`Socket::on_handler_error`] handlers, in the order added.
    pub(crate) async fn handler_failed(self, error: HandlerError) {
        let handlers: Vec<HandlerErrorHandler> = self
            .inner
            .on_handler_error
            .lock()
            .map(|h| h.clone())
            .unwrap_or_default();
        let error = Arc::new(error);
        for handler in handlers {
            handler(self.clone(), error.clone()).await;
        }
    }

    /// Adds a listener called for every event sent to this socket, by its own emits and by
    /// broadcasts that reach it (`socket.onAnyOutgoing`), with the event name and arguments.
    /// It runs where the emit happens, synchronously, with no lock held; keep it short.
    /// Returns its [`ListenerId`], for [`Socket::off_any_outgoing_listener`].
    pub fn on_any_outgoing<F>(&self, listener: F) -> ListenerId
    where
        F: Fn(&Socket, &str, &RawArgs) + Send + Sync + 'static,
    {
        self.add_outgoing(Arc::new(listener), false)
    }

    /// Adds an outgoing listener run before the others (`socket.prependAnyOutgoing`);
    /// otherwise as [`Socket::on_any_outgoing`].
    pub fn prepend_any_outgoing<F>(&self, listener: F) -> ListenerId
    where
        F: Fn(&Socket, &str, &RawArgs) + Send + Sync + 'static,
    {
        self.add_outgoing(Arc::new(listener), true)
    }

    fn add_outgoing(&self, listener: OutgoingHandler, first: bool) -> ListenerId {
        let id = ListenerId::next();
        if let Ok(mut o) = self.inner.outgoing.lock() {
            if first {
                o.insert(0, (id, listener));
            } else {
                o.push((id, listener));
            }
            self.inner.has_outgoing.store(true, Ordering::Release);
        }
        id
    }

    /// Removes the outgoing listeners (`socket.offAnyOutgoing()`).
    pub fn off_any_outgoing(&self) {
        if let Ok(mut o) = self.inner.outgoing.lock() {
            o.clear();
            self.inner.has_outgoing.store(false, Ordering::Release);
        }
    }

    /// Removes the outgoing listener `id` (`socket.offAnyOutgoing(listener)`, by the id
    /// [`Socket::on_any_outgoing`] or [`Socket::prepend_any_outgoing`] returned: closures
    /// cannot be compared). True if it was there.
    pub fn off_any_outgoing_listener(&self, id: ListenerId) -> bool {
        let Ok(mut o) = self.inner.outgoing.lock() else {
            return false;
        };
        let before = o.len();
        o.retain(|(i, _)| *i != id);
        self.inner
            .has_outgoing
            .store(!o.is_empty(), Ordering::Release);
        o.len() != before
    }

    /// How many outgoing listeners the socket has (`socket.listenersAnyOutgoing().length`).
    pub fn listeners_any_outgoing(&self) -> usize {
        self.inner.outgoing.lock().map(|o| o.len()).unwrap_or(0)
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
            .map(|o| o.iter().map(|(_, l)| l.clone()).collect::<Vec<_>>())
            .unwrap_or_default();
        let (Some(event), Ok(args)) = (packet.event_name(), RawArgs::from_event(packet)) else {
            return;
        };
        for listener in listeners {
            listener(self, &event, &args);
        }
    }

    /// True if an event goes to its handlers alone: the socket has no event middleware and no
    /// catch-all listener.
    pub(crate) fn handlers_only(&self) -> bool {
        self.inner.middlewares.lock().is_ok_and(|m| m.is_empty())
            && self.inner.any.lock().is_ok_and(|a| a.is_empty())
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
    /// replacing an earlier one of the same type. With connection state recovery on, the
    /// values are kept with the session (in this server's memory) and a recovered socket has
    /// them back. They stay on this server: what `fetch_sockets` shows of a socket, here and on
    /// other servers, is its JSON [`Socket::set_shared_data`].
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
    /// `fetch_sockets` (the reference's `socket.data`, `{}` until set). With connection state
    /// recovery on, it is saved in the session and a recovered socket has it back.
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

    /// Registers a handler run once the socket disconnected and left its rooms, with the
    /// reason (`client namespace disconnect`, `ping timeout`, ...) and its description
    /// ([`Disconnection`]). It runs after the socket's queued events were handled.
    pub fn on_disconnect<F, Fut>(&self, handler: F)
    where
        F: Fn(Socket, Disconnection) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let erased: DisconnectHandler = Arc::new(move |s, r| Box::pin(handler(s, r)));
        if let Ok(mut h) = self.inner.on_disconnect.lock() {
            h.push(erased);
        }
    }

    /// Registers a handler run when the socket is about to leave (the reference's
    /// `disconnecting` event): the connection is gone, but the socket is still in its rooms
    /// ([`Socket::rooms`]), so a broadcast to them ([`Socket::to`]) reaches their other members.
    /// Several run one after the other, in the order added, in a task of their own (not behind
    /// the socket's queued events); the socket leaves its rooms, and its session is kept for
    /// connection state recovery, once they are done, so keep them short. The
    /// [`Socket::on_disconnect`] handlers run after.
    ///
    /// ```
    /// # fn f(socket: ferrio_server::Socket) {
    /// socket.on_disconnecting(|socket, _disconnection| async move {
    ///     for room in socket.rooms() {
    ///         let _ = socket.to(room).emit("user-left", &(socket.id(),));
    ///     }
    /// });
    /// # }
    /// ```
    pub fn on_disconnecting<F, Fut>(&self, handler: F)
    where
        F: Fn(Socket, Disconnection) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let erased: DisconnectHandler = Arc::new(move |s, r| Box::pin(handler(s, r)));
        if let Ok(mut h) = self.inner.on_disconnecting.lock() {
            h.push(erased);
        }
    }

    /// Emits `event` with `args` (a tuple: `(x,)` for one argument, `()` for none) to this
    /// client. `Bytes` anywhere in the arguments are sent as binary attachments.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, args: &T) -> Result<(), EmitError> {
        self.emit_inner(event, args, true)
    }

    /// Emits a `message` event to this client (`socket.send(...args)`): what the client's
    /// `message` listeners get.
    pub fn send<T: Serialize + ?Sized>(&self, args: &T) -> Result<(), EmitError> {
        self.emit("message", args)
    }

    fn emit_inner<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
        compress: bool,
    ) -> Result<(), EmitError> {
        let packet = Packet::outgoing_event(self.inner.ns.name.clone(), event, args)?;
        let mut opts = BroadcastOptions::new().to(self.inner.id.clone());
        if let Some(log) = self.inner.ns.shared_recovery() {
            if self.connected() && ferrio_proto::socket::recovery::is_kept(&packet, &opts) {
                // Recovery is kept by the cluster: the emit goes through its log (as a
                // broadcast to this socket's room) and comes back here with its offset.
                if !compress {
                    opts.flags.compress = Some(false);
                }
                log.broadcast(packet, opts);
                return Ok(());
            }
        }
        let packet = self.inner.ns.record(&packet, &opts).unwrap_or(packet);
        self.notify_outgoing(&packet);
        self.send_command(|s| Command::Send {
            socket: s.clone(),
            packet: Arc::new(s.inner.ns.parser.encode(&packet)),
            volatile: false,
            compress,
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
        self.emit_with_ack_inner(event, args, None, true)
    }

    /// An emit that may be dropped if the client's transport cannot take it right now
    /// (`socket.volatile.emit`); volatile events are not kept for connection state recovery.
    pub fn volatile(&self) -> VolatileEmitter<'_> {
        VolatileEmitter {
            socket: self,
            compress: true,
        }
    }

    /// Sets the `compress` flag of the next emit (`socket.compress(false).emit(...)`); emits
    /// are compressed by default. With `false` the packet goes uncompressed over WebSocket
    /// (`per_message_deflate`) whatever its size, and a polling response holding only such
    /// packets is not compressed (`http_compression`).
    ///
    /// ```
    /// # fn f(socket: ferrio_server::Socket) {
    /// let _ = socket.compress(false).emit("already-compressed", &(vec![0u8; 4],));
    /// # }
    /// ```
    pub fn compress(&self, compress: bool) -> CompressEmitter<'_> {
        CompressEmitter {
            socket: self,
            compress,
        }
    }

    /// Sets a timeout for the next [`AckEmitter::emit_with_ack`]
    /// (`socket.timeout(ms).emitWithAck(...)`).
    pub fn timeout(&self, timeout: Duration) -> AckEmitter<'_> {
        AckEmitter {
            socket: self,
            timeout,
            compress: true,
        }
    }

    fn emit_with_ack_inner<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
        timeout: Option<Duration>,
        compress: bool,
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
                        packet: s.inner.ns.parser.encode(&packet),
                        ack_id: id,
                        timeout: timeout.unwrap_or(Duration::MAX),
                        compress,
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

    /// Joins `rooms`: one room (`"lobby"`) or several (`["a", "b"]`, a `Vec`); see
    /// [`IntoRooms`].
    ///
    /// ```
    /// # fn f(socket: ferrio_server::Socket) {
    /// socket.join("lobby");
    /// socket.join(["room-1", "room-2"]);
    /// socket.join(vec![String::from("room-3")]);
    /// # }
    /// ```
    pub fn join(&self, rooms: impl IntoRooms) {
        self.inner.ns.join(&self.inner.id, rooms.into_rooms());
    }

    /// Leaves `room` (`socket.leave`, which takes one room in the reference too; for several
    /// at once, [`Socket::leave_rooms`]).
    pub fn leave(&self, room: &str) {
        self.inner.ns.leave(&self.inner.id, &[Str::from(room)]);
    }

    /// Leaves `rooms`: one room or several, as [`Socket::join`] takes them.
    ///
    /// ```
    /// # fn f(socket: ferrio_server::Socket) {
    /// socket.join(["a", "b", "c"]);
    /// socket.leave_rooms(["a", "b"]);
    /// # }
    /// ```
    pub fn leave_rooms(&self, rooms: impl IntoRooms) {
        self.inner.ns.leave(&self.inner.id, &rooms.into_rooms());
    }

    /// The rooms the socket is in, its own id room included (empty once it left them: see
    /// [`Socket::on_disconnecting`]).
    pub fn rooms(&self) -> Vec<String> {
        self.inner.ns.rooms_of(&self.inner.id)
    }

    /// A broadcast to the members of `rooms` (one room or several, see [`IntoRooms`]), this
    /// socket excepted.
    pub fn to(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.broadcast().to(rooms)
    }

    /// The same as [`Socket::to`] (`socket.in`).
    pub fn in_(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.to(rooms)
    }

    /// A broadcast to every socket of the namespace but this one and the members of `rooms`.
    pub fn except(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.broadcast().except(rooms)
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

    pub(crate) fn mark_disconnected(&self, reason: Disconnection) {
        self.inner.connected.store(false, Ordering::Release);
        let _ = self.inner.reason.set(reason);
    }

    /// Records that the socket left its rooms and its namespace.
    pub(crate) fn mark_left(&self) {
        self.inner.left.send_replace(true);
    }

    /// Resolves once the socket left its rooms and its namespace ([`Socket::mark_left`]).
    pub(crate) fn left(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut left = self.inner.left.subscribe();
        async move {
            let _ = left.wait_for(|left| *left).await;
        }
    }

    /// A copy of the typed data ([`Socket::insert_data`]), to keep for recovery.
    pub(crate) fn typed_data(&self) -> http::Extensions {
        self.inner
            .data
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default()
    }

    /// Gives a recovered socket the data its previous incarnation had.
    pub(crate) fn restore_data(
        &self,
        typed: Option<http::Extensions>,
        shared: Option<serde_json::Value>,
    ) {
        if let (Some(typed), Ok(mut data)) = (typed, self.inner.data.lock()) {
            *data = typed;
        }
        if let (Some(shared), Ok(mut data)) = (shared, self.inner.shared_data.lock()) {
            *data = shared;
        }
    }

    pub(crate) fn any_handlers(&self) -> Vec<AnyHandler> {
        self.inner
            .any
            .lock()
            .map(|a| a.iter().map(|(_, h)| h.clone()).collect())
            .unwrap_or_default()
    }

    /// The handlers of `event`, in order (`None` if it has none).
    pub(crate) fn handlers(&self, event: &str) -> Option<Listeners> {
        self.inner.handlers.lock().ok()?.get(event).cloned()
    }

    pub(crate) fn disconnect_handlers(&self) -> Vec<DisconnectHandler> {
        self.inner
            .on_disconnect
            .lock()
            .map(|h| h.clone())
            .unwrap_or_default()
    }

    pub(crate) fn disconnecting_handlers(&self) -> Vec<DisconnectHandler> {
        self.inner
            .on_disconnecting
            .lock()
            .map(|h| h.clone())
            .unwrap_or_default()
    }

    pub(crate) fn reason(&self) -> Disconnection {
        self.inner.reason.get().cloned().unwrap_or_else(|| {
            Disconnection::from(ferrio_proto::socket::server::DisconnectReason::TransportClose)
        })
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

/// Removes listener `id` from `list`; true if it was there.
fn remove_listener<T>(list: &Mutex<Vec<(ListenerId, T)>>, id: ListenerId) -> bool {
    let Ok(mut l) = list.lock() else {
        return false;
    };
    let before = l.len();
    l.retain(|(i, _)| *i != id);
    l.len() != before
}
