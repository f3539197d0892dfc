//! An Engine.IO v4 long-polling payload (records joined by 0x1e).
//!
//! Decoding must never panic. The packets decoded before the first invalid record must come back
//! unchanged when encoded as a payload again (text records verbatim, binary as `b` + base64).

#![no_main]

use bytes::Bytes;
use ferrio_proto::engine::{decode_payload, decode_payload_bytes, encode_payload, Frame, Packet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(decoder) = decode_payload_bytes(Bytes::copy_from_slice(data)) else {
        return;
    };
    let mut packets = Vec::new();
    let mut failed = false;
    for result in decoder {
        // Like the reference, decoding stops at the first invalid record.
        assert!(!failed, "a record decoded after an invalid one");
        match result {
            Ok(packet) => packets.push(packet),
            Err(_) => failed = true,
        }
    }
    if packets.is_empty() {
        return;
    }
    let frames: Vec<Frame> = packets.iter().map(Packet::encode).collect();
    let body = encode_payload(&frames);
    let body = ferrio_proto::Str::from_utf8(body).expect("an encoded payload is UTF-8");
    let again: Vec<Packet> = decode_payload(body.clone())
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("re-encoded payload {body:?} does not decode: {e}"));
    assert_eq!(again, packets, "re-encoded as {body:?}");

    // Messages and binary messages alone, the packets a server batches into a response.
    let data_frames: Vec<Frame> = packets
        .iter()
        .filter(|p| matches!(p, Packet::Message(_) | Packet::Binary(_)))
        .map(Packet::encode)
        .collect();
    if !data_frames.is_empty() {
        let body = encode_payload(&data_frames);
        let again: Vec<Packet> = decode_payload_bytes(body)
            .expect("an encoded payload is UTF-8")
            .collect::<Result<_, _>>()
            .expect("re-encoded messages decode");
        let expected: Vec<&Packet> = packets
            .iter()
            .filter(|p| matches!(p, Packet::Message(_) | Packet::Binary(_)))
            .collect();
        assert_eq!(again.iter().collect::<Vec<_>>(), expected);
    }
});
