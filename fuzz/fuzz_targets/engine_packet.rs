//! One Engine.IO WebSocket frame, text and binary, in both protocol revisions.
//!
//! Decoding must never panic, and every packet that decodes must come back unchanged from its own
//! encoding (`encode` for v4, `encode_v3` for v3). Packets are compared, not bytes: the decoder
//! accepts non-canonical input (unpadded base64, text after `close`/`upgrade`/`noop`) that the
//! encoder never writes.

#![no_main]

use bytes::Bytes;
use ferrio_proto::engine::{Packet, Protocol};
use ferrio_proto::Str;
use libfuzzer_sys::fuzz_target;

fn check_round_trip(packet: &Packet, protocol: Protocol) {
    let frame = match protocol {
        Protocol::V4 => packet.encode(),
        Protocol::V3 => packet.encode_v3(),
    };
    let again = Packet::decode(frame.clone(), protocol)
        .unwrap_or_else(|e| panic!("{protocol:?}: {frame:?} from {packet:?} does not decode: {e}"));
    assert_eq!(&again, packet, "{protocol:?}: re-encoded as {frame:?}");
}

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    for protocol in [Protocol::V4, Protocol::V3] {
        if let Ok(text) = Str::from_utf8(bytes.clone()) {
            if let Ok(packet) = Packet::decode_text(text, protocol) {
                check_round_trip(&packet, protocol);
            }
        }
        if let Ok(packet) = Packet::decode_binary(bytes.clone(), protocol) {
            check_round_trip(&packet, protocol);
        }
    }
});
