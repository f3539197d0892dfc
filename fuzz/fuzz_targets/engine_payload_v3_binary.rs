//! An Engine.IO v3 binary long-polling payload (`<0|1><length digits>0xff<data>` records).
//!
//! Decoding must never panic, and a payload that decodes must come back unchanged from
//! `encode_payload_v3_binary` of its packets' frames.

#![no_main]

use bytes::Bytes;
use ferrio_proto::engine::{decode_payload_v3_binary, encode_payload_v3_binary, Frame, Packet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(packets) = decode_payload_v3_binary(Bytes::copy_from_slice(data)) else {
        return;
    };
    let frames: Vec<Frame> = packets.iter().map(Packet::encode).collect();
    let body = encode_payload_v3_binary(&frames);
    let again = decode_payload_v3_binary(body.clone())
        .unwrap_or_else(|e| panic!("re-encoded payload {body:?} does not decode: {e}"));
    assert_eq!(again, packets, "re-encoded as {body:?}");
});
