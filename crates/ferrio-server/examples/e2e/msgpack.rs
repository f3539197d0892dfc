//! `/msgpack/`: the compliance profile of `/socket.io/` (same engine options, namespaces `/`,
//! `/custom` and `/restricted`, the standard handler set) with the msgpack parser in place of the
//! JSON one, for clients using the npm package `socket.io-msgpack-parser` 3.x. Every Socket.IO
//! packet is one binary WebSocket message or one `b<base64>` polling record.

use std::time::Duration;

use ferrio_server::{ConnectError, Cors, Ferrio, Parser, Socket};
use serde_json::{json, Value};

/// The path the profile is served at.
pub const PATH: &str = "/msgpack/";

/// Builds the `/msgpack/` endpoint.
pub fn build() -> Ferrio {
    let io = Ferrio::builder()
        .path(PATH)
        .parser(Parser::msgpack())
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(200))
        .max_http_buffer_size(1_000_000)
        .connect_timeout(Duration::from_millis(1000))
        .cors(Cors::any())
        .yield_after_flush(true)
        .build();
    super::standard_handlers(&io.of("/"));
    super::standard_handlers(&io.of("/custom"));
    let restricted = io.of("/restricted");
    restricted.use_connect(|socket: Socket| async move {
        let token = socket
            .handshake()
            .auth_raw()
            .to_value()
            .ok()
            .and_then(|auth| auth.get("token").cloned());
        if token == Some(Value::from("let-me-in")) {
            Ok(())
        } else {
            Err(ConnectError::new("not authorized").with_data(&json!({"reason": "invalid token"})))
        }
    });
    super::standard_handlers(&restricted);
    io
}
