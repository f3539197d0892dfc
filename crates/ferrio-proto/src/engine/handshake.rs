//! The handshake: the JSON data of the `open` packet.

use serde::{Deserialize, Serialize};

use super::packet::{text_frame, PacketType};
use crate::Str;

/// The data of the Engine.IO `open` packet, serialised with the reference's exact key order:
/// `sid`, `upgrades`, `pingInterval`, `pingTimeout`, `maxPayload`.
///
/// ```
/// use ferrio_proto::engine::OpenPacket;
/// let open = OpenPacket {
///     sid: "lv_VI97HAXpY6yYWAAAC".into(),
///     upgrades: vec!["websocket".into()],
///     ping_interval: 25000,
///     ping_timeout: 20000,
///     max_payload: Some(1000000),
/// };
/// assert_eq!(
///     &*open.to_frame(),
///     r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenPacket {
    /// The session id.
    pub sid: String,
    /// Transports the client may upgrade to (`["websocket"]` on polling, `[]` on WebSocket).
    pub upgrades: Vec<String>,
    /// Milliseconds between heartbeats.
    pub ping_interval: u64,
    /// Milliseconds to wait for a heartbeat answer.
    pub ping_timeout: u64,
    /// The largest payload the server accepts, in bytes (`maxHttpBufferSize`). Old servers omit it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_payload: Option<u64>,
}

impl OpenPacket {
    /// The packet as a text frame: `0` + JSON.
    pub fn to_frame(&self) -> Str {
        // Serialising plain strings and integers into a String cannot fail.
        let json = serde_json::to_string(self).unwrap_or_default();
        text_frame(PacketType::Open, &json)
    }

    /// Parses the data of an `open` packet (the text after `0`).
    pub fn parse(data: &str) -> Result<OpenPacket, serde_json::Error> {
        serde_json::from_str(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_reference_open_packet() {
        let open = OpenPacket::parse(
            r#"{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
        )
        .expect("valid");
        assert_eq!(open.sid, "lv_VI97HAXpY6yYWAAAC");
        assert_eq!(open.max_payload, Some(1_000_000));
        let v3 = OpenPacket::parse(r#"{"sid":"a","upgrades":[],"pingInterval":1,"pingTimeout":2}"#)
            .expect("valid");
        assert_eq!(v3.max_payload, None);
    }
}
