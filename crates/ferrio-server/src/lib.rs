//! # ferrio-server
//!
//! The Socket.IO server of Ferrio: HTTP long-polling and WebSocket over tokio (its own HTTP/1.1
//! connections, or any `tower` stack such as hyper's and axum's), wire-compatible with `socket.io-client` 4.x. The protocol itself (Engine.IO sessions,
//! Socket.IO connections, rooms, connection state recovery) lives in the sans-IO
//! [`ferrio_proto`] crate; this crate owns the sockets, the timers and the tasks.
//!
//! - [`Ferrio`]: the server (`io`), built with [`Ferrio::builder`]; [`Namespace`]s with
//!   connect middlewares and connection handlers; [`Socket`]s with typed event handlers, emits,
//!   acks, rooms and broadcasts.
//! - [`engine::Engine`]: a bare Engine.IO server (messages without namespaces or events).
//! - [`serve`](fn@serve): a standalone HTTP/1.1 server around any request handler (Ferrio's own
//!   connections: an idle one holds no buffer; the body is a [`RequestBody`]).
//! - [`FerrioLayer`]: mounts the server in a `tower` stack (axum, hyper) next to other routes.
//! - [`Parser`]: the packet format, chosen once per server with [`FerrioBuilder::parser`]: the
//!   default JSON parser, the msgpack one of `socket.io-msgpack-parser` 3.x
//!   ([`Parser::msgpack`]), or an application's own ([`PacketParser`]).
//!
//! ```no_run
//! use ferrio_server::{AckSender, ConnectError, Ferrio, Message, Socket};
//!
//! # async fn run() -> std::io::Result<()> {
//! let io = Ferrio::builder().build();
//! io.of("/chat")
//!     .use_connect(|socket: Socket| async move {
//!         let token: Option<String> = socket.handshake().auth_raw().to_value().ok()
//!             .and_then(|v| v.get("token")?.as_str().map(str::to_owned));
//!         match token.as_deref() {
//!             Some("secret") => Ok(()),
//!             _ => Err(ConnectError::new("not authorized")),
//!         }
//!     })
//!     .on_connection(|socket: Socket| async move {
//!         socket.on("message", |socket: Socket, (room, text): (String, String), ack: AckSender| async move {
//!             socket.to(room).emit("message", &(text,))?;
//!             ack.send(&("delivered",))
//!         });
//!         socket.on("echo", |socket: Socket, msg: Message| async move {
//!             // Arguments as received, binary attachments included.
//!             socket.emit("echo", &msg.raw_args()?)?;
//!             Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//!         });
//!         socket.on_disconnect(|socket, reason| async move {
//!             tracing::info!(id = socket.id(), %reason, "gone");
//!         });
//!     });
//! io.serve(tokio::net::TcpListener::bind("127.0.0.1:3000").await?).await
//! # }
//! ```
//!
//! # In a tower application: the request's context
//!
//! Mounted with [`FerrioLayer`] (or as an axum fallback service), the server is one service of
//! the application's stack: the tower layers added around it run on Socket.IO's own HTTP
//! requests too (the handshake, the long-polling GETs and POSTs, the WebSocket upgrade; Node's
//! `io.engine.use`). What they put into the extensions of the request that opened a session is
//! kept and handed to the connect middlewares, the handlers and the sockets:
//! [`Handshake::extensions`] (Node's `socket.request`). CORS belongs to the application's
//! CORS layer then: leave the server's own [`Cors`] unset and it writes no `Access-Control-*`
//! header. The client's address: axum's `serve` gives it only with
//! `into_make_service_with_connect_info`, and [`FerrioBuilder::remote_address`] tells the
//! server where to read it; [`serve`](fn@serve) and [`Ferrio::serve`] put a [`RemoteAddr`] in every
//! request themselves.
//!
//! ```no_run
//! use std::net::SocketAddr;
//!
//! use axum::extract::{ConnectInfo, Request};
//! use axum::middleware::{self, Next};
//! use axum::response::Response;
//! use ferrio_server::{ConnectError, Ferrio, FerrioLayer, Socket};
//!
//! /// What the application's authentication layer found.
//! #[derive(Clone)]
//! struct User(String);
//!
//! /// A stand-in for a session or authentication layer (tower-sessions, an auth layer).
//! async fn authenticate(mut req: Request, next: Next) -> Response {
//!     let user = req.headers().get("x-user").and_then(|v| v.to_str().ok()).map(str::to_owned);
//!     if let Some(name) = user {
//!         req.extensions_mut().insert(User(name));
//!     }
//!     next.run(req).await
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let io = Ferrio::builder()
//!     .remote_address(|ext| ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0))
//!     .build();
//! io.of("/")
//!     .use_connect(|socket: Socket| async move {
//!         match socket.handshake().extensions().get::<User>() {
//!             Some(_) => Ok(()),
//!             None => Err(ConnectError::new("unauthorized")),
//!         }
//!     })
//!     .on_connection(|socket: Socket| async move {
//!         let user = socket.handshake().extensions().get::<User>().map(|u| u.0.clone());
//!         let address = socket.handshake().address();
//!         let _ = socket.emit("hello", &(user, address.map(|a| a.ip().to_string())));
//!     });
//! let app = axum::Router::new()
//!     .route("/", axum::routing::get(|| async { "home" }))
//!     .layer(FerrioLayer::new(io))
//!     // Added after the Socket.IO layer: runs on its requests too.
//!     .layer(middleware::from_fn(authenticate));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await
//! # }
//! ```
//!
//! # Dynamic namespaces and shutting down
//!
//! [`Ferrio::of_dynamic`] creates the namespaces whose names a predicate accepts;
//! [`Ferrio::of_dynamic_with`] decides with the CONNECT's auth and the [`Handshake`] too, in a
//! future that holds up only that CONNECT (Node's `io.of((name, auth, next) => ...)`). With
//! [`FerrioBuilder::cleanup_empty_child_namespaces`] such a child is removed once its last
//! socket left, and created again by the next CONNECT to it. [`Ferrio::on_new_namespace`] runs
//! for every namespace created (Node's `new_namespace` event). [`Ferrio::close`] refuses new
//! sessions (503), disconnects every socket with `server shutting down` and returns once every
//! session has ended: call it from `axum::serve(...).with_graceful_shutdown(...)`, or use
//! [`Ferrio::serve_with_shutdown`].
//!
//! # Which tokio runtime
//!
//! Ferrio builds no runtime: it runs on the one it is served from. One task per session reads
//! its WebSocket, runs an event's handlers there when its socket has nothing else running, and
//! writes the answer, so an acked event over WebSocket is one task poll and no hand-off between
//! tasks on either runtime. What the runtime adds is threads:
//!
//! - The multi-threaded runtime (`#[tokio::main]`, a worker per core) spreads the sessions over
//!   the cores; its idle workers are woken to look for work and park again, and tasks move
//!   between them. The choice when the server has cores to itself and more load than one core
//!   takes.
//! - A `current_thread` runtime (`#[tokio::main(flavor = "current_thread")]`) runs everything
//!   on one thread, as Node does, and takes one core, not all of them, from the processes
//!   beside it. On a machine of one or two cores shared with another busy process (the
//!   benchmarks' two cores and their load generator) it took 10–20 % less CPU per broadcast
//!   delivery and per MiB of binary echo than a worker per core, and no more per ack, over
//!   WebSocket or polling (`BENCHMARKS.md`, "Which runtime on two cores"). Measure both under
//!   your own load.
//!
//! Latency at one busy client on a small machine: the server's thread and the client's take
//! turns, and the kernel decides whether they share a CPU. On two CPUs every message wakes the
//! other CPU (an inter-processor interrupt; on a virtual machine, the wake-up of an idle virtual
//! CPU): on the benchmarks' two-CPU virtual machine that doubled the round trip and the server's
//! CPU per message, whatever the server (`BENCHMARKS.md`, "The p50 at one client: on one CPU or
//! on two"). A multi-threaded runtime does not help there: a message is read and answered in one
//! task poll, so no second thread wakes.
//!
//! [`runtime::current_thread_spinning`] builds a `current_thread` runtime for that case: after
//! work, its thread polls for I/O for up to a window (50 µs in the benchmarks) before it
//! sleeps, but only while the traffic looks like a client's request/answer loop: the last idle
//! gap shorter than the window, the thread idle most of its time, and no busy thread on its
//! CPU (the first round yields the CPU; a yield or a round that comes back late stops the spin
//! for a while). An idle server, however many connections it holds, a low-traffic one (messages
//! milliseconds apart) and a loaded one sleep as the plain runtime does. Use it when a few
//! clients' round trips matter, the server has a CPU to itself or to share with its peers, and
//! the CPU it may spend polling is not needed elsewhere (each spin round is an `epoll_wait`
//! with no timeout). Keep the plain runtime on one CPU (the spin never pays there), beside
//! other busy processes at the same priority, or where CPU time is billed. The `bench`
//! example runs on it by default (`SPIN_US=0` turns it off). The other remedy is to pin the
//! server and its busiest peer to one CPU.
//!
//! # Per-session limits
//!
//! One tokio task per Engine.IO session owns its state machine; HTTP requests and WebSocket
//! messages reach it over channels. Every queue is bounded:
//!
//! | Queue | Bound | At the bound |
//! |---|---|---|
//! | inputs (HTTP requests, WebSocket messages) | 32 | the sender waits (TCP back-pressure) |
//! | commands from the application (emits, acks, broadcasts) | 1024 | the session is closed (`buffer full`): a broadcast never waits for one slow client |
//! | events received per socket, not yet handled | 256 in the socket's queue, then up to 10 × `max_http_buffer_size` bytes waiting in the session | the connection is closed (`buffer full`) |
//! | acks the server waits for, per socket | [`FerrioBuilder::max_pending_acks`] (4096) | a new [`Socket::emit_with_ack`] fails at once with [`EmitError::TooManyPendingAcks`]; nothing is sent, the connection stays |
//! | bytes queued on a WebSocket | above `max_http_buffer_size` volatile packets are dropped; above 10 × `max_http_buffer_size` | the session is closed (`buffer full`) |
//! | bytes buffered for a polling client | 10 × `max_http_buffer_size` | the session is closed (`buffer full`) |
//! | a request head (target and headers) | `max_http_header_size` (16 KiB, as Node) | 431 with `Connection: close`; the server's own `serve` stops reading the head there |
//! | a POST body | `max_http_buffer_size` | 413, reading stops past the limit |
//! | a chunked request body's framing, under [`Ferrio::serve`] | a chunk-size line of 1 KiB; trailers as long as a request head | the handler's body fails, the connection closes after the answer |
//! | a TLS handshake, under `Ferrio::serve_tls` (the `tls` feature) | 10 s | the connection is closed; the others are served meanwhile |
//! | a POST body that stalls | `body_read_timeout` (30 s without a byte), or the end of its session | 408 (400 once the session is gone) with `Connection: close`; the body read so far is freed |
//! | a WebSocket message | `max_http_buffer_size` | close code 1009, the session closes |

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod adapter;
#[cfg(feature = "serve-client")]
mod client_files;
mod clock;
mod command;
mod config;
mod conn;
mod deflate;
pub mod engine;
mod http;
mod id;
mod namespace;
mod queue;
pub mod runtime;
mod serve;
mod server;
mod session;
mod socket;
mod stats;
#[cfg(feature = "tls")]
mod tls;
mod transport;
mod websocket;

use std::future::Future;
use std::pin::Pin;

pub use crate::adapter::{
    Adapter, AdapterError, ClusterRecovery, ClusterRestored, ClusterSession, LocalNamespace,
    NamespaceAdapter, RemoteSocket, ServerAck, ServerSideEmitError, SocketInfo,
};
pub use crate::config::{Cookie, Cors, Transport};
pub use crate::conn::{BodyError, RequestBody};
pub use crate::deflate::PerMessageDeflate;
pub use crate::http::Body;
pub use crate::namespace::{BroadcastOperator, IntoRooms, Namespace};
pub use crate::serve::{serve, serve_with_shutdown, FerrioLayer, FerrioService};
pub use crate::server::{Ferrio, FerrioBuilder, EVENT_QUEUE};
pub use crate::socket::{
    AckEmitter, AckError, AckReply, AckSender, CompressEmitter, ConnectError, Disconnection,
    EmitError, EventHandler, HandlerError, HandlerOutput, Handshake, ListenerId, Message, RawArgs,
    Socket, VolatileEmitter,
};
pub use crate::stats::{EngineStats, EngineStatsSnapshot};
pub use crate::transport::{Encrypted, RemoteAddr, COMMAND_QUEUE};
pub use ferrio_proto::engine::server::CloseReason;
pub use ferrio_proto::rooms::RoomEvent;
pub use ferrio_proto::socket::recovery::RecoveryConfig;
pub use ferrio_proto::socket::server::DisconnectReason;
pub use ferrio_proto::socket::{PacketDecoder, PacketParser, Parser};

/// A boxed, sendable future (the handlers' erased form).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
