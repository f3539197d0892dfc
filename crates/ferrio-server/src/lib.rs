//! # ferrio-server
//!
//! The Socket.IO server of Ferrio: HTTP long-polling and WebSocket over tokio and hyper 1.x,
//! wire-compatible with `socket.io-client` 4.x. The protocol itself (Engine.IO sessions,
//! Socket.IO connections, rooms, connection state recovery) lives in the sans-IO
//! [`ferrio_proto`] crate; this crate owns the sockets, the timers and the tasks.
//!
//! - [`Ferrio`]: the server (`io`), built with [`Ferrio::builder`]; [`Namespace`]s with
//!   connect middlewares and connection handlers; [`Socket`]s with typed event handlers, emits,
//!   acks, rooms and broadcasts.
//! - [`engine::Engine`]: a bare Engine.IO server (messages without namespaces or events).
//! - [`serve`]: a standalone HTTP/1.1 server around any request handler.
//! - [`FerrioLayer`]: mounts the server in a `tower` stack (axum, hyper) next to other routes.
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
//! | a POST body that stalls | `body_read_timeout` (30 s without a byte), or the end of its session | 408 (400 once the session is gone) with `Connection: close`; the body read so far is freed |
//! | a WebSocket message | `max_http_buffer_size` | close code 1009, the session closes |

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod adapter;
mod clock;
mod command;
mod config;
pub mod engine;
mod http;
mod id;
mod namespace;
mod queue;
mod serve;
mod server;
mod session;
mod socket;
mod transport;
mod websocket;

use std::future::Future;
use std::pin::Pin;

pub use crate::adapter::{
    Adapter, AdapterError, LocalNamespace, NamespaceAdapter, RemoteSocket, ServerAck,
    ServerSideEmitError, SocketInfo,
};
pub use crate::config::{Cookie, Cors, Transport};
pub use crate::http::Body;
pub use crate::namespace::{BroadcastOperator, Namespace};
pub use crate::serve::{serve, serve_with_shutdown, FerrioLayer, FerrioService};
pub use crate::server::{Ferrio, FerrioBuilder, EVENT_QUEUE};
pub use crate::socket::{
    AckEmitter, AckError, AckReply, AckSender, ConnectError, EmitError, EventHandler,
    HandlerOutput, Handshake, Message, RawArgs, Socket, VolatileEmitter,
};
pub use crate::transport::{RemoteAddr, COMMAND_QUEUE};
pub use ferrio_proto::rooms::RoomEvent;
pub use ferrio_proto::socket::recovery::RecoveryConfig;
pub use ferrio_proto::socket::server::DisconnectReason;

/// A boxed, sendable future (the handlers' erased form).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
