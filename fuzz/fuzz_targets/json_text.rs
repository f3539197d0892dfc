//! Ferrio's JSON validation against serde_json's, on any text: `RawJson::parse` (the scanner
//! every payload goes through) accepts exactly what serde_json's parser accepts, nested no deeper
//! than `MAX_JSON_DEPTH`; and an event name read from `[<text>]` is the string serde_json reads
//! from `<text>` (escapes and surrogate pairs included); arguments `ArgsText::reads_as_values`
//! says serde_json reads do read. Nothing may panic.

#![no_main]

use ferrio_proto::socket::{ArgsText, Packet, RawJson, MAX_JSON_DEPTH, RESERVED_EVENTS};
use libfuzzer_sys::fuzz_target;
use serde::de::IgnoredAny;

/// The deepest nesting of arrays and objects in valid JSON text (strings skipped).
fn depth(text: &str) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in text.bytes() {
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
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ours = RawJson::parse(text);
    let serde_ok = {
        // serde_json's ignoring parser has no depth limit of its own.
        let mut de = serde_json::Deserializer::from_str(text);
        serde::Deserialize::deserialize(&mut de)
            .map(|_: IgnoredAny| ())
            .and_then(|()| de.end())
            .is_ok()
    };
    let expected = serde_ok && depth(text) <= MAX_JSON_DEPTH;
    assert_eq!(ours.is_ok(), expected, "verdicts differ on {text:?}");
    let Ok(json) = ours else {
        return;
    };
    assert_eq!(json.as_str(), text.trim_matches([' ', '\t', '\n', '\r']));
    // A string as an event name reads as serde_json reads it (serde_json refuses lone
    // surrogates, which the scanner reads as U+FFFD).
    if let Ok(s) = serde_json::from_str::<String>(text) {
        if let Ok(array) = RawJson::parse(format!("[{}]", json.as_str())) {
            let packet = Packet::event("/", array, vec![]);
            let expected = (!RESERVED_EVENTS.contains(&s.as_str())).then_some(s.as_str());
            assert_eq!(packet.event_name().as_deref(), expected);
        }
    }
    // Arguments said to read as values (kept unread until asked for) do read.
    if let Ok(array) = RawJson::parse(format!("[{}]", json.as_str())) {
        if let Some(args) = ArgsText::new(&array, 0) {
            if args.reads_as_values() {
                assert!(args.to_values().is_ok(), "unreadable arguments {text:?}");
            }
        }
    }
});
