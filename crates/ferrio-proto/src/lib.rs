//! # ferrio-proto
//!
//! The sans-IO core of Ferrio, Socket.IO for Rust: every packet Ferrio reads or writes, and (in
//! later layers) every protocol state machine. No runtime, no sockets, no clock, no randomness:
//! bytes and time come in as arguments, so the same code runs in the tokio server, the tokio
//! client and the browser (wasm32).
//!
//! - [`engine`]: Engine.IO packets, WebSocket frames and long-polling payloads (v4 and v3).
//! - [`socket`]: Socket.IO packets, binary attachments, ack ids and typed arguments.
//!
//! ```
//! use ferrio_proto::{engine, socket};
//!
//! // A server receives the WebSocket text frame `42["chat","hi"]`...
//! let frame = engine::Packet::decode_text("42[\"chat\",\"hi\"]".into(), engine::Protocol::V4).unwrap();
//! let engine::Packet::Message(text) = frame else { unreachable!() };
//! let packet = socket::Decoder::new().decode_text(text).unwrap().unwrap();
//! assert_eq!(packet.event_name().as_deref(), Some("chat"));
//! let (msg,): (String,) = packet.args().unwrap();
//!
//! // ...and broadcasts it: encoded once, the same bytes for every recipient.
//! let out = socket::Packet::event_with("/", "chat", &(msg,)).unwrap().encode();
//! assert_eq!(&**out.message(), r#"42["chat","hi"]"#);
//! ```

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod date;
pub mod engine;
#[cfg(feature = "arbitrary")]
mod fuzzing;
mod js;
mod outputs;
pub mod rooms;
mod scan;
pub mod socket;
mod str;
mod time;

pub use crate::str::Str;
pub use crate::time::Instant;
