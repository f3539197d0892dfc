//! Engine.IO: packets, WebSocket frames and HTTP long-polling payloads (protocol v4 and v3).
//!
//! Engine.IO is the transport layer under Socket.IO. A packet is a type digit followed by data;
//! over WebSocket each packet is one frame, over HTTP long-polling several packets are batched in
//! one request or response body ([`encode_payload`], [`decode_payload`], and the v3 forms).

pub mod client;
mod error;
mod handshake;
mod packet;
mod payload;
mod payload_v3;
pub mod request;
pub mod server;
mod transport;

pub use error::DecodeError;
pub use handshake::{InvalidHandshake, OpenPacket};
pub use packet::{text_frame, Frame, Packet, PacketType, Protocol};
pub use payload::{
    decode_payload, decode_payload_bytes, encode_payload, PayloadDecoder, SEPARATOR,
};
pub use payload_v3::{
    decode_jsonp_post, decode_payload_v3, decode_payload_v3_binary, encode_jsonp,
    encode_payload_v3, encode_payload_v3_binary,
};
pub use transport::Transport;
