//! Socket.IO (protocol v5, and the v4 forms of EIO 3 clients): packets, the encoder, the decoder
//! with binary reassembly, and the serde bridges for typed event arguments.
//!
//! A packet travels as one Engine.IO `message`:
//! `<type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]`, followed, for the binary
//! types, by one Engine.IO binary message per attachment. That is the default parser's format;
//! [`Parser`] selects another one (the msgpack parser, or an application's own).

pub mod backoff;
pub mod client;
mod compat;
mod decode;
mod error;
mod json;
#[cfg(feature = "msgpack")]
mod msgpack;
mod numbers;
mod packet;
mod parser;
pub mod recovery;
pub mod server;
mod validate;

pub use compat::{connect_accept, connect_error, split_v4_namespace, v3_socket_id};
pub use decode::{Decoder, DEFAULT_MAX_ATTACHMENTS};
pub use error::{AckError, DecodeError, EventError};
pub use json::{
    ack_json, event_json, share_attachments, to_json_with_attachments, ArgsText, InvalidJson,
    RawJson,
};
pub use numbers::JsNumbers;
pub use packet::{AckId, EncodedPacket, Packet, PacketType, MAIN_NAMESPACE};
#[cfg(feature = "msgpack")]
pub use parser::MsgpackParser;
pub use parser::{JsonParser, PacketDecoder, PacketParser, Parser};
pub use recovery::{PersistedSession, Position, RecoveryConfig, RecoveryStore, Restored};
pub use validate::{is_reserved_event, MAX_JSON_DEPTH, RESERVED_EVENTS};

/// The default bound on the acknowledgements one socket waits for at once, on both sides
/// (`max_pending_acks` of [`server::Config`] and [`client::ManagerConfig`]): 4096. The reference
/// has no bound; an application waits for this many answers only if a peer stopped answering
/// while it kept asking without a timeout, and each pending ack costs memory (about 1 KB with the
/// server's bookkeeping). At the bound a new emit asking for an ack is refused at once, and
/// nothing is sent; those already pending are unaffected.
pub const DEFAULT_MAX_PENDING_ACKS: usize = 4096;
