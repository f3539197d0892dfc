//! Payload checks of the reference decoder (`isPayloadValid`), done while streaming over the JSON
//! text: nothing is built, so a valid payload can be kept as text.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::packet::PacketType;

/// Event names the reference refuses in incoming packets.
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// The shapes a payload may have.
#[derive(Clone, Copy)]
enum Shape {
    /// CONNECT: a plain object.
    Object,
    /// EVENT: a non-empty array whose first element is a number or a non-reserved string.
    Event,
    /// ACK: any array.
    Array,
    /// CONNECT_ERROR: a string or an object.
    StringOrObject,
}

struct ShapeVisitor(Shape);

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a payload of the packet's shape")
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        match self.0 {
            Shape::StringOrObject => Ok(()),
            _ => Err(E::custom("unexpected string")),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        match self.0 {
            Shape::Object | Shape::StringOrObject => {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(())
            }
            _ => Err(de::Error::custom("unexpected object")),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        match self.0 {
            Shape::Array => {}
            Shape::Event => {
                seq.next_element::<EventName>()?
                    .ok_or_else(|| de::Error::custom("empty event"))?;
            }
            _ => return Err(de::Error::custom("unexpected array")),
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
}

/// An event name: a number, or a string that is not reserved.
struct EventName;

impl<'de> Deserialize<'de> for EventName {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(EventNameVisitor).map(|_| EventName)
    }
}

struct EventNameVisitor;

impl<'de> Visitor<'de> for EventNameVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event name")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        check_reserved(v)?;
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        check_reserved(v)?;
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Cow::Owned(js_number_to_string(v)))
    }
}

fn check_reserved<E: de::Error>(name: &str) -> Result<(), E> {
    if RESERVED_EVENTS.contains(&name) {
        Err(E::custom("reserved event name"))
    } else {
        Ok(())
    }
}

/// JavaScript's `String(n)` for the common cases (integers print without a fraction).
fn js_number_to_string(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e21 {
        format!("{v:.0}")
    } else {
        v.to_string()
    }
}

/// The deepest nesting of arrays and objects accepted in a payload: serde_json's own limit, so
/// that every payload that passes can also be read into a `Value` or a user type. (The reference
/// has no such limit; Ferrio refuses deeper payloads to bound recursion.)
pub const MAX_JSON_DEPTH: usize = 127;

/// True if no array or object in `json` is nested deeper than `max` (a linear scan that skips
/// strings; `json` is validated separately).
fn depth_within(json: &str, max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for b in json.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// True if `json` is a valid payload for a packet of type `kind` (`isPayloadValid`), nested no
/// deeper than [`MAX_JSON_DEPTH`].
pub(crate) fn payload_is_valid(kind: PacketType, json: &str) -> bool {
    if !depth_within(json, MAX_JSON_DEPTH) {
        return false;
    }
    let shape = match kind {
        PacketType::Connect => Shape::Object,
        PacketType::Disconnect => return false,
        PacketType::Event | PacketType::BinaryEvent => Shape::Event,
        PacketType::Ack | PacketType::BinaryAck => Shape::Array,
        PacketType::ConnectError => Shape::StringOrObject,
    };
    let mut de = serde_json::Deserializer::from_str(json);
    de.deserialize_any(ShapeVisitor(shape)).is_ok() && de.end().is_ok()
}

/// The name of a validated event payload.
pub(crate) fn event_name(json: &str) -> Option<Cow<'_, str>> {
    struct First;
    impl<'de> Visitor<'de> for First {
        type Value = Cow<'de, str>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an event array")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let name = seq
                .next_element_seed(NameSeed)?
                .ok_or_else(|| de::Error::custom("empty"))?;
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(name)
        }
    }
    struct NameSeed;
    impl<'de> de::DeserializeSeed<'de> for NameSeed {
        type Value = Cow<'de, str>;
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(EventNameVisitor)
        }
    }
    let mut de = serde_json::Deserializer::from_str(json);
    de.deserialize_seq(First).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert!(payload_is_valid(PacketType::Connect, "{}"));
        assert!(!payload_is_valid(PacketType::Connect, "[]"));
        assert!(payload_is_valid(PacketType::Event, r#"["a",1,{"b":[]}]"#));
        assert!(payload_is_valid(PacketType::Event, "[1.5]"));
        assert!(!payload_is_valid(PacketType::Event, r#"["disconnecting"]"#));
        assert!(!payload_is_valid(PacketType::Event, r#"["conn\u0065ct"]"#));
        assert!(payload_is_valid(PacketType::Ack, "[]"));
        assert!(payload_is_valid(PacketType::ConnectError, r#""x""#));
        assert!(!payload_is_valid(PacketType::ConnectError, "1"));
    }

    #[test]
    fn depth_limit_matches_serde_json() {
        let nest = |n: usize| format!("[\"a\",{}1{}]", "[".repeat(n), "]".repeat(n));
        // the event array itself is one level
        let ok = nest(MAX_JSON_DEPTH - 1);
        assert!(payload_is_valid(PacketType::Event, &ok));
        assert!(serde_json::from_str::<serde_json::Value>(&ok).is_ok());
        let deep = nest(MAX_JSON_DEPTH);
        assert!(!payload_is_valid(PacketType::Event, &deep));
        assert!(serde_json::from_str::<serde_json::Value>(&deep).is_err());
        // brackets inside strings do not count
        let quoted = format!("[\"{}\\\"\"]", "[".repeat(500));
        assert!(payload_is_valid(PacketType::Event, &quoted));
    }

    #[test]
    fn event_names() {
        assert_eq!(event_name(r#"["chat",1]"#).as_deref(), Some("chat"));
        assert_eq!(event_name(r#"["a\"b"]"#).as_deref(), Some("a\"b"));
        assert_eq!(event_name("[12]").as_deref(), Some("12"));
        assert_eq!(event_name("[1.0]").as_deref(), Some("1"));
        assert_eq!(event_name("[-2]").as_deref(), Some("-2"));
        assert_eq!(event_name("[2.5]").as_deref(), Some("2.5"));
    }
}
