//! Payload checks of the reference decoder (`isPayloadValid`), done by scanning the JSON text:
//! nothing is built, so a valid payload can be kept as text.

use std::borrow::Cow;

use super::packet::PacketType;
use crate::scan::{self, Kind};

/// Event names the reference refuses in incoming packets.
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// True for the event names no one may send or receive ([`RESERVED_EVENTS`]): the core refuses
/// them in incoming packets, in the client's emits and in [`super::Packet::outgoing_event`].
pub fn is_reserved_event(name: &str) -> bool {
    RESERVED_EVENTS.contains(&name)
}

/// The deepest nesting of arrays and objects accepted in a payload: serde_json's own limit, so
/// that every payload that passes can also be read into a `Value` or a user type. (The reference
/// has no such limit; Ferrio refuses deeper payloads to bound recursion.)
pub const MAX_JSON_DEPTH: usize = scan::MAX_DEPTH;

/// True if `json` is a valid payload for a packet of type `kind` (`isPayloadValid`), nested no
/// deeper than [`MAX_JSON_DEPTH`].
pub(crate) fn payload_is_valid(kind: PacketType, json: &str) -> bool {
    let Some(found) = scan::validate(json) else {
        return false;
    };
    match kind {
        PacketType::Connect => found == Kind::Object,
        PacketType::Disconnect => false,
        PacketType::Event | PacketType::BinaryEvent => found == Kind::Array && has_event_name(json),
        PacketType::Ack | PacketType::BinaryAck => found == Kind::Array,
        PacketType::ConnectError => matches!(found, Kind::String | Kind::Object),
    }
}

/// True if the first item of the valid JSON array `json` is a number or a string that is not a
/// reserved event name.
pub(crate) fn has_event_name(json: &str) -> bool {
    if let Some(name) = scan::plain_first_string(json) {
        return !is_reserved_event(name);
    }
    match scan::array_items(json).next() {
        Some(first) if first.starts_with('"') => {
            scan::string(first).is_some_and(|name| !is_reserved_event(&name))
        }
        Some(first) => scan::is_number(first),
        None => false,
    }
}

/// The name of a validated event payload: its first item, a string or a number written as
/// JavaScript's `String(n)` would.
pub(crate) fn event_name(json: &str) -> Option<Cow<'_, str>> {
    if let Some(name) = scan::plain_first_string(json) {
        return (!is_reserved_event(name)).then_some(Cow::Borrowed(name));
    }
    let first = scan::array_items(json).next()?;
    if first.starts_with('"') {
        let name = scan::string(first)?;
        return (!RESERVED_EVENTS.contains(&&*name)).then_some(name);
    }
    scan::is_number(first).then(|| number_name(first))
}

/// `String(n)` for the JSON number `token`. Integers written plainly keep their text.
fn number_name(token: &str) -> Cow<'_, str> {
    let digits = token.strip_prefix('-').unwrap_or(token);
    if token != "-0" && digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Cow::Borrowed(token);
    }
    let v: f64 = token.parse().unwrap_or(f64::NAN);
    Cow::Owned(if v == 0.0 {
        "0".to_owned()
    } else if v.is_infinite() {
        (if v > 0.0 { "Infinity" } else { "-Infinity" }).to_owned()
    } else if (1e-6..1e21).contains(&v.abs()) {
        // Both write the shortest digits that read back the same double.
        v.to_string()
    } else {
        let exp = format!("{v:e}");
        if exp.contains("e-") {
            exp
        } else {
            exp.replacen('e', "e+", 1)
        }
    })
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
        assert_eq!(event_name("[-0]").as_deref(), Some("0"));
        assert_eq!(event_name("[1e2]").as_deref(), Some("100"));
        assert_eq!(event_name("[-1e400]").as_deref(), Some("-Infinity"));
        // as JavaScript's String(n)
        assert_eq!(
            event_name("[12345678901234567890]").as_deref(),
            Some("12345678901234567000")
        );
        assert_eq!(event_name("[1e21]").as_deref(), Some("1e+21"));
        assert_eq!(event_name("[-1.5e-7]").as_deref(), Some("-1.5e-7"));
        assert_eq!(event_name("[0.000001]").as_deref(), Some("0.000001"));
        assert_eq!(event_name(r#"["connect"]"#), None);
        assert_eq!(event_name(r#"[{"a":1}]"#), None);
        assert_eq!(event_name("[]"), None);
    }
}
