//! # ferrio-client-web
//!
//! The Socket.IO client of Ferrio for Rust front-ends in the browser (`wasm32-unknown-unknown`:
//! Leptos, Dioxus, Yew or plain `web-sys` pages), wire-compatible with the Node.js `socket.io`
//! 4.x server and with `ferrio-server`.
//!
//! It is the browser twin of the tokio client `ferrio-client`: the same API names and
//! signatures ([`io`], [`ClientBuilder`], [`Socket`], [`Message`], [`AckSender`], [`AckReply`],
//! [`Manager`], [`ManagerEvent`], the same error types, with the browser's additions below),
//! and the same protocol machine underneath (`ferrio-proto`'s client `Manager`: namespaces, auth on every connection, acks
//! and their timeouts, the offline buffer, reconnection with backoff, connection state
//! recovery). Only the driver differs: the browser's `WebSocket`, `fetch` for HTTP
//! long-polling, `setTimeout` for the machine's timers, and futures run by
//! `wasm-bindgen-futures` on the page's event loop. Nothing here needs JavaScript glue beyond
//! what `wasm-bindgen` generates.
//!
//! ```no_run
//! # #[cfg(target_arch = "wasm32")]
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use ferrio_client_web::{AckSender, Socket};
//!
//! let socket = ferrio_client_web::io("http://localhost:3000/chat")
//!     .auth(serde_json::json!({ "token": "abc" }))
//!     .on("chat:message", |_s: Socket, (from, text): (String, String), _ack: AckSender| async move {
//!         web_sys::console::log_1(&format!("{from}: {text}").into());
//!     })
//!     .connect()
//!     .await?;
//! socket.emit("chat:message", &("hello",))?;
//! let reply = socket
//!     .timeout(std::time::Duration::from_secs(5))
//!     .emit_with_ack("join", &("lobby",))
//!     .await?;
//! let (members,): (Vec<String>,) = reply.args()?;
//! # Ok(()) }
//! ```
//!
//! ## Where it differs from `ferrio-client`
//!
//! - Handlers, their futures and the auth function need not be `Send` (a page has one thread,
//!   and its values, such as a framework's signals or DOM nodes, are not `Send`). The handler
//!   traits and [`BoxFuture`] have the same names as the tokio client's, without the bound.
//! - The URL may be relative to the page (`io("/chat")`).
//! - Options the browser decides are not offered: TLS settings, cookies (the browser sends
//!   the page's own), `permessage-deflate` (the browser negotiates it). Extra headers
//!   ([`ClientBuilder::extra_header`], [`TransportOptions::extra_header`]) go on the
//!   long-polling requests only: a browser's WebSocket cannot send headers (as with
//!   socket.io-client in a browser); a name or value that is not valid HTTP is refused with
//!   [`Error::InvalidHeader`], and the browser drops those it forbids (`Cookie`, `Host`, ...).
//! - Browser-only options: [`ClientBuilder::close_on_beforeunload`] and
//!   [`ClientBuilder::transport_options`] (engine.io-client's `transportOptions`).
//! - [`ManagerEvent::Error`], [`ManagerEvent::ReconnectError`] and [`ConnectError::cause`]
//!   carry a [`ConnectionError`]: the transport's [`TransportError`] (socket.io-client's
//!   `TransportError`: `xhr poll error`, `xhr post error` or `websocket error`, with the HTTP
//!   status, a description and the answer's body), or the timeout.
//! - The manager's `packet` event is [`Manager::on_packet`], and `io.engine` is
//!   [`Manager::engine`]: the session id, the transport, and the [`EngineEvent`]s (`open`,
//!   `handshake`, `packet`, `heartbeat`, `ping`, `data`/`message`, `packetCreate`, `drain`,
//!   `upgrade`, `upgradeError`, `error`, `close`; not `upgrading`, `flush` and `pong`). The
//!   driver decodes the frames it carries with `ferrio-proto`'s Engine.IO decoders, only while
//!   the engine has listeners; `upgrade` and `upgradeError` are read from the probe WebSocket
//!   it runs (the `upgrade` packet sent on it, or its closing before that while the session
//!   stays open).
//! - Every [`io`] builds its own connection (`forceNew`): to share one between namespaces, use
//!   [`Manager::socket`].
//! - The browser's WebSocket has no back-pressure, so a socket's events wait for its handlers
//!   in an unbounded queue; the core still bounds what it buffers itself (the offline send
//!   buffer, the pending acknowledgements, the events received before a CONNECT accept).
//! - [`Socket::on_error`] (an addition): an event whose arguments do not fit a typed handler is
//!   reported there, and to the browser console, instead of only being logged.
//!
//! Whatever the server sends, malformed frames included, ends as a `connect_error`, a
//! `disconnect` (then a reconnection), an [`on_error`](Socket::on_error) report or a
//! [`ManagerEvent`]: the driver has no `unwrap` and no panic path on input.
//!
//! On targets other than `wasm32` the crate is empty: build its documentation with
//! `--target wasm32-unknown-unknown`.

#![forbid(unsafe_code)]
// Off `wasm32` the items these docs link to are not built.
#![cfg_attr(not(target_arch = "wasm32"), allow(rustdoc::broken_intra_doc_links))]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

#[cfg(target_arch = "wasm32")]
mod builder;
#[cfg(target_arch = "wasm32")]
mod driver;
#[cfg(target_arch = "wasm32")]
mod error;
#[cfg(target_arch = "wasm32")]
mod socket;

#[cfg(target_arch = "wasm32")]
pub use builder::{io, ClientBuilder, SocketBuilder, TransportOptions};
#[cfg(target_arch = "wasm32")]
pub use driver::{DisconnectReason, Engine, EngineEvent, Manager, ManagerEvent};
#[cfg(target_arch = "wasm32")]
pub use error::{
    AckError, ClientError, ConnectError, ConnectionError, EmitError, Error, TransportError,
};
#[cfg(target_arch = "wasm32")]
pub use ferrio_proto::engine::client::Transport;
#[cfg(target_arch = "wasm32")]
pub use ferrio_proto::engine::{OpenPacket, Packet as EnginePacket};
#[cfg(target_arch = "wasm32")]
pub use ferrio_proto::socket::{Packet, PacketType};
#[cfg(target_arch = "wasm32")]
pub use socket::{
    AckReply, AckSender, BoxFuture, Emitter, EventHandler, HandlerOutput, ListenerId, Message,
    Socket,
};
