//! [`Socket`]: one client in one namespace, its event handlers, emits and acks.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use ferrio_proto::engine::server::Transport;
use ferrio_proto::rooms::BroadcastOptions;
use ferrio_proto::socket::recovery::Position;
use ferrio_proto::socket::server::DisconnectReason;
use ferrio_proto::socket::{Packet, RawJson, RESERVED_EVENTS};
use ferrio_proto::Str;
use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::namespace::{BroadcastOperator, Namespace, NsInner};
use crate::server::{Command, EmitWithAck};
use crate::transport::{RequestInfo, SessionLink};
use crate::BoxFuture;

/// Why an emit failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum EmitError {
    /// The arguments do not serialise as a sequence of JSON values (pass a tuple: `(x,)`).
    Serialize(serde_json::Error),
    /// The event name is reserved (`connect`, `disconnect`, ...).
    ReservedEvent(String),
    /// The socket is disconnected.
    Disconnected,
    /// The cluster adapter could not reach the other servers.
    Cluster(crate::adapter::AdapterError),
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmitError::Serialize(e) => write!(f, "cannot serialise the arguments: {e}"),
            EmitError::ReservedEvent(name) => write!(f, "\"{name}\" is a reserved event name"),
            EmitError::Disconnected => f.write_str("the socket is disconnected"),
            EmitError::Cluster(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for EmitError {}

impl From<serde_json::Error> for EmitError {
    fn from(e: serde_json::Error) -> Self {
        EmitError::Serialize(e)
    }
}

/// Why an emit with acknowledgement got no answer.
#[derive(Debug)]
#[non_exhaustive]
pub enum AckError {
    /// No answer within the timeout (`operation has timed out`).
    Timeout,
    /// The socket disconnected before the answer came.
    Disconnected,
    /// The event could not be sent.
    Emit(EmitError),
}

impl fmt::Display for AckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AckError::Timeout => f.write_str("operation has timed out"),
            AckError::Disconnected => f.write_str("socket has been disconnected"),
            AckError::Emit(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for AckError {}

impl From<EmitError> for AckError {
    fn from(e: EmitError) -> Self {
        AckError::Emit(e)
    }
}

/// Refuses a connection from a namespace middleware: the client gets a CONNECT_ERROR with this
/// `message` (and `data`), e.g. `44/admin,{"message":"not authorized","data":{"reason":"x"}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectError {
    message: String,
    data: Option<Value>,
}

impl ConnectError {
    /// A refusal with a message.
    pub fn new(message: impl Into<String>) -> ConnectError {
        ConnectError {
            message: message.into(),
            data: None,
        }
    }

    /// Adds the `data` the client receives (`err.data` in socket.io-client).
    pub fn with_data<T: Serialize>(mut self, data: &T) -> ConnectError {
        self.data = serde_json::to_value(data).ok();
        self
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn data_json(&self) -> Option<RawJson> {
        self.data.as_ref().map(RawJson::from_value)
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConnectError {}

/// Event arguments as received, binary included: JSON values in which each attachment is still
/// a `{"_placeholder":true,"num":N}` object, and the attachments.
///
/// It serialises back into the same arguments (placeholders become bytes again), so a handler
/// can pass arguments on unchanged: `socket.emit("message-back", &msg.raw_args()?)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawArgs {
    values: Vec<Value>,
    attachments: Vec<Bytes>,
}

impl RawArgs {
    /// Arguments from JSON values and the attachments their placeholders refer to.
    pub fn new(values: Vec<Value>, attachments: Vec<Bytes>) -> RawArgs {
        RawArgs {
            values,
            attachments,
        }
    }

    pub(crate) fn from_event(packet: &Packet) -> Result<RawArgs, serde_json::Error> {
        RawArgs::from_packet(packet, 1)
    }

    fn from_packet(packet: &Packet, skip: usize) -> Result<RawArgs, serde_json::Error> {
        let values = match packet.data() {
            Some(data) => match data.to_value()? {
                Value::Array(items) => items.into_iter().skip(skip).collect(),
                _ => Vec::new(),
            },
            None => Vec::new(),
        };
        Ok(RawArgs {
            values,
            attachments: packet.attachments().to_vec(),
        })
    }

    /// The arguments (placeholders included).
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// The attachments.
    pub fn attachments(&self) -> &[Bytes] {
        &self.attachments
    }

    /// The number of arguments.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True if there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl Serialize for RawArgs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.values.iter().map(|v| WithAttachments {
            value: v,
            attachments: &self.attachments,
        }))
    }
}

/// A JSON value whose placeholders serialise as the bytes they stand for.
struct WithAttachments<'a> {
    value: &'a Value,
    attachments: &'a [Bytes],
}

impl Serialize for WithAttachments<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let a = self.attachments;
        match self.value {
            Value::Array(items) => s.collect_seq(items.iter().map(|v| WithAttachments {
                value: v,
                attachments: a,
            })),
            Value::Object(map) => {
                if map.get("_placeholder") == Some(&Value::Bool(true)) {
                    let buf = map
                        .get("num")
                        .and_then(Value::as_u64)
                        .and_then(|n| usize::try_from(n).ok())
                        .and_then(|n| a.get(n));
                    if let Some(buf) = buf {
                        return s.serialize_bytes(buf);
                    }
                }
                s.collect_map(map.iter().map(|(k, v)| {
                    (
                        k,
                        WithAttachments {
                            value: v,
                            attachments: a,
                        },
                    )
                }))
            }
            other => other.serialize(s),
        }
    }
}

/// An event received from the client.
#[derive(Debug)]
pub struct Message {
    packet: Packet,
    ack: AckSender,
}

impl Message {
    /// The event name.
    pub fn event(&self) -> Cow<'_, str> {
        self.packet.event_name().unwrap_or_default()
    }

    /// The arguments after the event name, as `T` (a tuple, `(A,)` for one; extra arguments
    /// are ignored). `Bytes` fields receive the binary attachments.
    pub fn args<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        self.packet.args()
    }

    /// The arguments as received, binary included (see [`RawArgs`]).
    pub fn raw_args(&self) -> Result<RawArgs, serde_json::Error> {
        RawArgs::from_packet(&self.packet, 1)
    }

    /// The decoded packet.
    pub fn packet(&self) -> &Packet {
        &self.packet
    }

    /// The acknowledgement responder (which does nothing if the client asked for none).
    pub fn ack_sender(&self) -> AckSender {
        self.ack.clone()
    }

    /// True if the client asked for an acknowledgement.
    pub fn ack_requested(&self) -> bool {
        self.ack.requested()
    }

    /// Acknowledges the event with `args` (a tuple); see [`AckSender::send`].
    pub fn ack<T: Serialize + ?Sized>(&self, args: &T) -> Result<(), EmitError> {
        self.ack.send(args)
    }
}

/// Answers an event the client sent with an ack id. Only the first answer is sent; without an
/// ack id, sending does nothing.
#[derive(Clone)]
pub struct AckSender {
    target: Option<(Socket, u64)>,
    sent: Arc<AtomicBool>,
}

impl fmt::Debug for AckSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckSender")
            .field("id", &self.target.as_ref().map(|(_, id)| *id))
            .finish()
    }
}

impl AckSender {
    fn new(socket: &Socket, id: Option<u64>) -> AckSender {
        AckSender {
            target: id.map(|id| (socket.clone(), id)),
            sent: Arc::new(AtomicBool::new(false)),
        }
    }

    /// True if the client asked for an acknowledgement.
    pub fn requested(&self) -> bool {
        self.target.is_some()
    }

    /// Sends the acknowledgement with `args`, a tuple (`()` for none, `(x,)` for one); `Bytes`
    /// anywhere in them make it a BINARY_ACK.
    pub fn send<T: Serialize + ?Sized>(&self, args: &T) -> Result<(), EmitError> {
        let Some((socket, id)) = &self.target else {
            return Ok(());
        };
        if self.sent.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let packet = Packet::ack_with(socket.inner.ns.name.clone(), *id, args)?;
        socket.send_command(|socket| Command::Send {
            socket: socket.clone(),
            packet: Arc::new(packet.encode()),
            volatile: false,
        })
    }
}

/// The answer to an emit with acknowledgement.
#[derive(Debug, Clone)]
pub struct AckReply {
    packet: Packet,
}

impl AckReply {
    pub(crate) fn new(packet: Packet) -> AckReply {
        AckReply { packet }
    }

    /// The answer's arguments as `T` (a tuple).
    pub fn args<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        self.packet.args()
    }

    /// The answer's arguments as received, binary included.
    pub fn raw_args(&self) -> Result<RawArgs, serde_json::Error> {
        RawArgs::from_packet(&self.packet, 0)
    }

    /// The decoded ACK packet.
    pub fn packet(&self) -> &Packet {
        &self.packet
    }
}

/// What the client's first request and its CONNECT said.
#[derive(Debug, Clone)]
pub struct Handshake {
    request: Arc<RequestInfo>,
    auth: RawJson,
}

impl Handshake {
    pub(crate) fn new(request: Arc<RequestInfo>, auth: RawJson) -> Handshake {
        Handshake { request, auth }
    }

    /// The headers of the first HTTP request.
    pub fn headers(&self) -> &http::HeaderMap {
        self.request.headers()
    }

    /// The query parameters of the first HTTP request (`EIO`, `transport`, `t` included).
    pub fn query(&self) -> &[(String, String)] {
        self.request.query()
    }

    /// The first value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.request
            .query()
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The URL of the first HTTP request (path and query).
    pub fn url(&self) -> &str {
        &self.request.url
    }

    /// When the session opened, in milliseconds since the Unix epoch.
    pub fn issued(&self) -> u64 {
        self.request.issued
    }

    /// When the session opened, as the reference's `handshake.time` (JavaScript's
    /// `Date.toString()` in UTC, e.g. `Sun Nov 22 2026 14:28:18 GMT+0000 (Coordinated Universal
    /// Time)`).
    pub fn time(&self) -> String {
        ferrio_proto::date::js_date_string(self.request.issued)
    }

    /// The client's address, when served by [`crate::serve`].
    pub fn address(&self) -> Option<std::net::SocketAddr> {
        self.request.address
    }

    /// The CONNECT payload (`{}` when there was none).
    pub fn auth_raw(&self) -> &RawJson {
        &self.auth
    }

    /// The CONNECT payload as `T`.
    pub fn auth<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        self.auth.deserialize()
    }

    /// The handshake in the reference's JSON shape, as cluster adapters carry it: `headers`
    /// (lower-case names; repeated headers joined with `, `), `time` (as JavaScript's
    /// `Date.toString()` writes it, in UTC), `address`, `xdomain` (an `Origin` header was sent),
    /// `secure` (false: TLS ends before this server), `issued`, `url`, `query` (the last value
    /// of each name), `auth`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::{Map, Value};
        let mut headers = Map::new();
        for name in self.request.headers().keys() {
            let values: Vec<&str> = self
                .request
                .headers()
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            headers.insert(name.as_str().to_owned(), Value::String(values.join(", ")));
        }
        let query: Map<String, Value> = self
            .request
            .query()
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        serde_json::json!({
            "headers": headers,
            "time": ferrio_proto::date::js_date_string(self.request.issued),
            "address": self.request.address.map(|a| a.ip().to_string()).unwrap_or_default(),
            "xdomain": self.request.headers().contains_key(http::header::ORIGIN),
            "secure": false,
            "issued": self.request.issued,
            "url": self.request.url,
            "query": query,
            "auth": self.auth.to_value().unwrap_or_default(),
        })
    }
}

/// The outcome of an event handler: `()`, or a `Result` whose error is logged.
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

/// An event handler for [`Socket::on`]. Implemented for
///
/// - `Fn(Socket, Message) -> impl Future`: the raw event ([`Message::args`],
///   [`Message::raw_args`], [`Message::ack`]);
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
        let event = message.event().into_owned();
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
        let event = message.event().into_owned();
        match message.args::<T>() {
            Ok(args) => {
                let fut = self(socket, args, message.ack);
                Box::pin(async move { fut.await.report(&event) })
            }
            Err(e) => {
                tracing::debug!(event, "event dropped, arguments do not fit: {e}");
                Box::pin(async {})
            }
        }
    }
}

type ErasedHandler = Arc<dyn Fn(Socket, Message) -> BoxFuture<()> + Send + Sync>;
type DisconnectHandler = Arc<dyn Fn(Socket, DisconnectReason) -> BoxFuture<()> + Send + Sync>;
type AnyHandler = Arc<dyn Fn(Socket, String, RawArgs) -> BoxFuture<()> + Send + Sync>;
pub(crate) type EventMiddleware =
    Arc<dyn Fn(Socket, String, RawArgs) -> BoxFuture<Result<(), String>> + Send + Sync>;
pub(crate) type ErrorHandler = Arc<dyn Fn(Socket, String) -> BoxFuture<()> + Send + Sync>;
type OutgoingHandler = Arc<dyn Fn(&Socket, &str, &RawArgs) + Send + Sync>;

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
        check_event(event)?;
        let packet = Packet::event_with(self.inner.ns.name.clone(), event, args)?;
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
    /// client's answer, or fails if the socket disconnects first.
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
        let sent = check_event(event)
            .and_then(|()| Ok(Packet::event_with(self.inner.ns.name.clone(), event, args)?))
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
                Ok(Err(ferrio_proto::socket::server::AckError::Timeout)) => Err(AckError::Timeout),
                Ok(Err(_)) | Err(_) => Err(AckError::Disconnected),
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
        let ack = AckSender::new(self, packet.id());
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

/// A volatile emit; see [`Socket::volatile`].
#[derive(Debug)]
pub struct VolatileEmitter<'a> {
    socket: &'a Socket,
}

impl VolatileEmitter<'_> {
    /// Emits `event` with `args` (a tuple), dropped if the transport is not writable.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, args: &T) -> Result<(), EmitError> {
        check_event(event)?;
        let packet = Packet::event_with(self.socket.inner.ns.name.clone(), event, args)?;
        self.socket.notify_outgoing(&packet);
        self.socket.send_command(|s| Command::Send {
            socket: s.clone(),
            packet: Arc::new(packet.encode()),
            volatile: true,
        })
    }
}

/// An emit with acknowledgement and a timeout; see [`Socket::timeout`].
#[derive(Debug)]
pub struct AckEmitter<'a> {
    socket: &'a Socket,
    timeout: Duration,
}

impl AckEmitter<'_> {
    /// Emits `event` asking for an acknowledgement: resolves with the answer, or
    /// [`AckError::Timeout`] after the timeout.
    pub fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> impl Future<Output = Result<AckReply, AckError>> + Send + 'static {
        self.socket
            .emit_with_ack_inner(event, args, Some(self.timeout))
    }
}

pub(crate) fn check_event(event: &str) -> Result<(), EmitError> {
    if RESERVED_EVENTS.contains(&event) {
        return Err(EmitError::ReservedEvent(event.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_args_serialise_back_with_their_attachments() {
        let mut d = ferrio_proto::socket::Decoder::new();
        let p = d
            .decode_text(
                r#"52-["m",{"a":{"_placeholder":true,"num":1}},{"_placeholder":true,"num":0},3]"#
                    .into(),
            )
            .unwrap();
        assert!(p.is_none());
        d.decode_binary(Bytes::from_static(b"\x01")).unwrap();
        let p = d
            .decode_binary(Bytes::from_static(b"\x02"))
            .unwrap()
            .unwrap();
        let args = RawArgs::from_packet(&p, 1).unwrap();
        assert_eq!(args.len(), 3);
        let out = Packet::event_with("/", "back", &args).unwrap();
        assert_eq!(
            &**out.encode().message(),
            r#"452-["back",{"a":{"_placeholder":true,"num":0}},{"_placeholder":true,"num":1},3]"#
        );
        assert_eq!(
            out.attachments(),
            &[Bytes::from_static(b"\x02"), Bytes::from_static(b"\x01")]
        );
    }
}
