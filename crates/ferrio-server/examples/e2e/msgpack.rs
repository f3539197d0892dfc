//! `/msgpack/`: the compliance profile of `/socket.io/` (same engine options, namespaces `/`,
//! `/custom` and `/restricted`, the standard handler set) with the msgpack parser in place of the
//! JSON one, for clients using the npm package `socket.io-msgpack-parser` 3.x. Every Socket.IO
//! packet is one binary WebSocket message or one `b<base64>` polling record.

use ferrio_server::{Ferrio, Parser};

/// The path the profile is served at.
pub const PATH: &str = "/msgpack/";

/// Builds the `/msgpack/` endpoint.
pub fn build() -> Ferrio {
    super::compliance(Ferrio::builder().parser(Parser::msgpack()), PATH)
}
