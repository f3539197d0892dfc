//! The handshake: the JSON data of the `open` packet.

use std::fmt;

use super::packet::{text_frame, PacketType};
use crate::str::push_decimal;
use crate::{scan, Str};

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
#[derive(Debug, Clone, PartialEq, Eq)]
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
    pub max_payload: Option<u64>,
}

impl OpenPacket {
    /// The packet as a text frame: `0` + JSON.
    pub fn to_frame(&self) -> Str {
        let mut json = String::with_capacity(96);
        json.push_str("{\"sid\":");
        scan::push_string(&mut json, &self.sid);
        json.push_str(",\"upgrades\":[");
        for (i, upgrade) in self.upgrades.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            scan::push_string(&mut json, upgrade);
        }
        json.push_str("],\"pingInterval\":");
        push_decimal(&mut json, self.ping_interval);
        json.push_str(",\"pingTimeout\":");
        push_decimal(&mut json, self.ping_timeout);
        if let Some(max) = self.max_payload {
            json.push_str(",\"maxPayload\":");
            push_decimal(&mut json, max);
        }
        json.push('}');
        text_frame(PacketType::Open, &json)
    }

    /// Parses the data of an `open` packet (the text after `0`): a JSON object with a string
    /// `sid`, an array of strings `upgrades`, non-negative integers `pingInterval` and
    /// `pingTimeout`, and optionally `maxPayload`; other members are ignored.
    pub fn parse(data: &str) -> Result<OpenPacket, InvalidHandshake> {
        if scan::validate(data) != Some(scan::Kind::Object) {
            return Err(InvalidHandshake("not a JSON object"));
        }
        let field = |name: &'static str| scan::member(data, name).ok_or(InvalidHandshake(name));
        let number = |name: &'static str| {
            field(name).and_then(|v| scan::unsigned(v).ok_or(InvalidHandshake(name)))
        };
        let sid = scan::string(field("sid")?)
            .ok_or(InvalidHandshake("sid"))?
            .into_owned();
        let upgrades_json = field("upgrades")?;
        if !upgrades_json.starts_with('[') {
            return Err(InvalidHandshake("upgrades"));
        }
        let mut upgrades = Vec::new();
        for item in scan::array_items(upgrades_json) {
            let name = scan::string(item).ok_or(InvalidHandshake("upgrades"))?;
            upgrades.push(name.into_owned());
        }
        Ok(OpenPacket {
            sid,
            upgrades,
            ping_interval: number("pingInterval")?,
            ping_timeout: number("pingTimeout")?,
            max_payload: match scan::member(data, "maxPayload") {
                None | Some("null") => None,
                Some(v) => Some(scan::unsigned(v).ok_or(InvalidHandshake("maxPayload"))?),
            },
        })
    }
}

/// The error of [`OpenPacket::parse`]: the data is not a JSON object, or names the member that is
/// missing or of the wrong type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidHandshake(&'static str);

impl InvalidHandshake {
    /// What is wrong: `not a JSON object`, or the member that is missing or of the wrong type.
    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

impl fmt::Display for InvalidHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid handshake: ")?;
        f.write_str(self.0)
    }
}

impl std::error::Error for InvalidHandshake {}

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
        assert_eq!(OpenPacket::parse(&v3.to_frame()[1..]), Ok(v3));
        for bad in [
            "[]",
            r#"{"sid":1,"upgrades":[],"pingInterval":1,"pingTimeout":2}"#,
            r#"{"sid":"a","upgrades":[1],"pingInterval":1,"pingTimeout":2}"#,
            r#"{"sid":"a","upgrades":[],"pingInterval":1.5,"pingTimeout":2}"#,
            r#"{"sid":"a","upgrades":[],"pingInterval":1}"#,
            r#"{"sid":"a","upgrades":"websocket","pingInterval":1,"pingTimeout":2}"#,
        ] {
            assert!(OpenPacket::parse(bad).is_err(), "{bad}");
        }
        let escaped = OpenPacket {
            sid: "a\"b".into(),
            upgrades: vec!["websocket".into()],
            ping_interval: 1,
            ping_timeout: 2,
            max_payload: None,
        };
        assert_eq!(OpenPacket::parse(&escaped.to_frame()[1..]), Ok(escaped));
    }
}
