//! An Engine.IO v3 text long-polling payload (`<utf-16 length>:<packet>` records).
//!
//! Decoding must never panic, and a payload that decodes must come back unchanged from
//! `encode_payload_v3` of its packets' frames (binary messages as `b4` + base64).

#![no_main]

use ferrio_proto::engine::{decode_payload_v3, encode_payload_v3, Frame, Packet};
use ferrio_proto::Str;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(packets) = decode_payload_v3(&Str::from(text)) else {
        return;
    };
    let frames: Vec<Frame> = packets.iter().map(Packet::encode).collect();
    let body = encode_payload_v3(&frames);
    let body = Str::from_utf8(body).expect("an encoded v3 text payload is UTF-8");
    let again = decode_payload_v3(&body)
        .unwrap_or_else(|e| panic!("re-encoded payload {body:?} does not decode: {e}"));
    assert_eq!(again, packets, "re-encoded as {body:?}");
});
