//! # ferrio-client
//!
//! The Socket.IO client of Ferrio, for tokio: HTTP long-polling, WebSocket, or polling upgraded
//! to WebSocket (the default), wire-compatible with the Node.js `socket.io` 4.x server.
//!
//! The protocol lives in `ferrio-proto`'s client machines (the `Manager`: namespaces, auth on
//! every connection, acks and their timeouts, the offline buffer, reconnection with backoff,
//! connection state recovery). This crate is a thin driver: one task per connection performs the
//! machine's I/O (hyper for polling, tokio-tungstenite for WebSocket, rustls for TLS), feeds it
//! what came back and the time, and hands its events to the handlers, which run on one task per
//! socket, in order.
//!
//! ```no_run
//! use ferrio_client::{AckSender, Socket};
//!
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! let socket = ferrio_client::io("http://localhost:3000/chat")
//!     .auth(serde_json::json!({ "token": "abc" }))
//!     .on("chat:message", |_s: Socket, (from, text): (String, String), _ack: AckSender| async move {
//!         println!("{from}: {text}");
//!     })
//!     .connect()
//!     .await?;
//! socket.emit("chat:message", &("hello",))?;
//! let reply = socket
//!     .timeout(std::time::Duration::from_secs(5))
//!     .emit_with_ack("join", &("lobby",))
//!     .await?;
//! let (members,): (Vec<String>,) = reply.args()?;
//! socket.disconnect();
//! # Ok(()) }
//! ```
//!
//! ## How it maps to `socket.io-client`
//!
//! | `socket.io-client` | here |
//! |---|---|
//! | `io(url, opts)` | [`io`]`(url)` then the [`ClientBuilder`] options, then [`ClientBuilder::connect`] (waits) or [`ClientBuilder::open`] (does not) |
//! | `socket.on(ev, (...args, cb) => ...)` | [`Socket::on`] with an async handler taking typed arguments (a tuple) and an [`AckSender`]; several per event, run in order |
//! | `socket.emit` / `emitWithAck` / `timeout(ms)` / `volatile` / `compress` | [`Socket::emit`], [`Socket::emit_with_ack`] (an [`AckReply`]), [`Socket::timeout`], [`Socket::volatile`], [`Socket::compress`] |
//! | `once` / `send` | [`Socket::once`] / [`Socket::send`] |
//! | `off(ev, fn)` / `off(ev)` / `removeAllListeners()` / `listeners(ev)` | [`Socket::off_listener`]`(ev, id)` with the [`ListenerId`] the registration returned (Rust cannot compare closures) / [`Socket::off`] / [`Socket::remove_all_listeners`] / [`Socket::listeners`] (a count) |
//! | `onAny` / `prependAny` / `offAny(fn)` / `offAny()` / `listenersAny()` | [`Socket::on_any`] / [`Socket::prepend_any`] / [`Socket::off_any_listener`] / [`Socket::off_any`] / [`Socket::listeners_any`] (a count) |
//! | `onAnyOutgoing` / `prependAnyOutgoing` / `offAnyOutgoing(fn)` / `offAnyOutgoing()` / `listenersAnyOutgoing()` | [`Socket::on_any_outgoing`] / [`Socket::prepend_any_outgoing`] / [`Socket::off_any_outgoing_listener`] / [`Socket::off_any_outgoing`] / [`Socket::listeners_any_outgoing`] |
//! | `socket.active` | [`Socket::active`] |
//! | `connect` / `connect_error` / `disconnect` events | [`Socket::on_connect`], [`Socket::on_connect_error`], [`Socket::on_disconnect`] |
//! | `socket.io` (the Manager), `manager.socket(nsp)`, Manager events | [`Socket::manager`], [`Manager::socket`], [`Manager::on_event`] |
//! | `socket.io.engine.id`, `socket.io.engine.transport.name` | [`Manager::engine_id`], [`Manager::transport`] |
//! | `manager.open()` / `connect()` | [`Manager::open`] (does not wait: see [`Manager::on_event`]) |
//! | `manager.reconnection(v)`, `reconnectionAttempts(v)`, `reconnectionDelay(v)`, `reconnectionDelayMax(v)`, `randomizationFactor(v)`, `timeout(v)` | [`Manager::set_reconnection`], [`Manager::set_reconnection_attempts`], [`Manager::set_reconnection_delay`], [`Manager::set_reconnection_delay_max`], [`Manager::set_randomization_factor`], [`Manager::set_timeout`] (setters only) |
//! | `auth: (cb) => ...` | [`ClientBuilder::auth_fn`]: an async function called before every connection |
//! | `parser` (e.g. `socket.io-msgpack-parser`) | [`ClientBuilder::parser`] with [`Parser::msgpack`] (or an application's own, [`Parser::custom`]) |
//! | `rememberUpgrade`, `tryAllTransports`, `forceBase64` | [`ClientBuilder::remember_upgrade`], [`ClientBuilder::try_all_transports`], [`ClientBuilder::force_base64`] (decided by the core's Engine.IO session) |
//! | `withCredentials` (a cookie jar under Node), `requestTimeout`, `timestampRequests`, `timestampParam`, `protocols` | [`ClientBuilder::with_credentials`], [`ClientBuilder::request_timeout`], [`ClientBuilder::timestamp_requests`], [`ClientBuilder::timestamp_param`], [`ClientBuilder::protocols`] |
//!
//! Where it differs:
//! - [`ClientBuilder::connect`] fails at the first `connect_error` (the server's refusal, or a
//!   connection that could not be made), and stops that socket; to wait through the
//!   reconnection attempts, [`ClientBuilder::open`] then [`Socket::wait_connected`];
//! - handlers are async and run one at a time per socket, on a task of their own; a handler
//!   that panics is logged and the next events still run;
//! - the connection lives as long as a handle ([`Socket`] or [`Manager`]) does: dropping them
//!   all stops its task;
//! - the `compress` flag matters over a WebSocket with `permessage-deflate`
//!   ([`ClientBuilder::per_message_deflate`]) only: polling requests are sent uncompressed (the
//!   server still compresses its polling responses).
//!
//! ## Queues and their bounds
//!
//! One task per connection owns the core's manager. The handles send it commands, the
//! transport tasks (an HTTP request, a WebSocket) report to it, and it hands events to one
//! dispatcher task per socket, which runs the handlers. Every queue between them is bounded. The
//! connection's task never waits on a task that may wait on it: where the consumer is user code
//! that may wait for the connection (a handler awaiting an acknowledgement), the task keeps what
//! does not fit and stops taking the input that makes more, serving everything else meanwhile.
//!
//! | Queue | Bound | At the bound |
//! |---|---|---|
//! | commands from the handles (emits, acks, connect, disconnect, close) | [`COMMAND_QUEUE`] (1024) | [`Socket::emit`], [`Socket::emit_with_ack`] and [`AckSender::send`] fail with [`EmitError::QueueFull`], nothing is queued (the API is synchronous: it cannot wait). [`Socket::connect`], [`Socket::disconnect`], [`Manager::close`] and opening a socket are never refused: past the bound each replaces the connect or disconnect of the same socket still waiting (the last call wins), so at most one per socket is added |
//! | frames for a WebSocket's writer | 64 frames in its queue, then what the last command produced waits in the connection's task | the task takes no command until the writer has room (the network drains it): the command queue fills and emits fail as above; reading, timers and auth go on. When the transport is let go the frames handed over are still written, then it closes |
//! | the core's polling write buffer | half of its 16 MiB bound (the core refuses past the whole) | the task takes no command until a POST drains it, as above |
//! | transport reports (HTTP responses, WebSocket messages) | 32 | the HTTP or WebSocket task waits for room: the WebSocket is not read further (TCP slows the server down) |
//! | events for a socket's handlers | [`EVENT_QUEUE`] (256) per socket, then what the last transport message carried (a polling response may carry many packets) waits in the connection's task, in order; a failed reconnection's `connect_error` replaces the one still waiting | the task reads no transport until the handlers take an event: nothing is lost or reordered, and the server is slowed down by TCP. Commands, auth and timers go on, but the whole connection waits (every namespace, acknowledgements included): a handler waiting for an acknowledgement while its queue is full waits until the acknowledgement times out, or the heartbeat does (`ping timeout`: the connection closes and reconnects) |
//! | events for the [`Manager::on_event`] listeners | [`MANAGER_EVENT_QUEUE`] (64) | the connection's task waits: the listeners are synchronous and never wait on it |
//! | answers of an [`auth_fn`](ClientBuilder::auth_fn) | 8 | the auth task waits |
//!
//! The core bounds its own buffers (the offline send buffer, the events received before a
//! CONNECT accept, ...): see `ferrio_proto::socket::client`.

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod builder;
mod command;
mod error;
mod manager;
mod socket;
mod transport;

pub use builder::{io, ClientBuilder, SocketBuilder};
pub use command::COMMAND_QUEUE;
pub use error::{
    AckError, ClientError, ConnectError, ConnectionError, EmitError, Error, TransportError,
};
pub use ferrio_proto::engine::client::Transport;
pub use ferrio_proto::socket::{Packet, PacketDecoder, PacketParser, Parser};
pub use manager::{DisconnectReason, Manager, ManagerEvent, EVENT_QUEUE, MANAGER_EVENT_QUEUE};
pub use socket::{
    AckReply, AckSender, BoxFuture, Emitter, EventHandler, HandlerOutput, ListenerId, Message,
    Socket,
};
