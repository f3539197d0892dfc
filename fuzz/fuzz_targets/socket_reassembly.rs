//! A sequence of Engine.IO messages fed to one Socket.IO decoder: binary packets reassembled from
//! their attachments, interleaved with text, stray binary data and errors.
//!
//! The input is cut into messages: one byte chooses the kind (even: text, odd: binary; a byte
//! with bit 1 set also resets the decoder first), two bytes give the length (little endian), then
//! the data; the last message takes what is left. Nothing may panic, and every packet that comes
//! out must come out again, unchanged, from a fresh decoder fed its encoded frames.

#![no_main]

use bytes::Bytes;
use ferrio_proto::engine::{self, Protocol};
use ferrio_proto::socket::{Decoder, Packet};
use ferrio_proto::Str;
use libfuzzer_sys::fuzz_target;

fn check_round_trip(packet: &Packet) {
    let _ = packet.event_name();
    let _ = packet.args::<serde_json::Value>();
    let _ = packet.args::<Vec<Bytes>>();
    let _ = packet.data_as::<serde_json::Value>();

    let encoded = packet.encode();
    assert_eq!(encoded.attachments(), packet.attachments());
    let mut decoder = Decoder::new();
    let mut out = None;
    let frames: Vec<engine::Frame> = encoded.frames().collect();
    for (i, frame) in frames.iter().enumerate() {
        // Through the Engine.IO frame decoder, as a WebSocket transport would.
        let result = match engine::Packet::decode(frame.clone(), Protocol::V4) {
            Ok(engine::Packet::Message(text)) => decoder.decode_text(text),
            Ok(engine::Packet::Binary(data)) => decoder.decode_binary(data),
            other => panic!("frame {frame:?} decodes as {other:?}"),
        };
        let result =
            result.unwrap_or_else(|e| panic!("frame {i} of {frames:?} from {packet:?}: {e}"));
        if i + 1 < frames.len() {
            assert!(
                result.is_none(),
                "packet complete before frame {i} of {frames:?}"
            );
        } else {
            out = result;
        }
    }
    assert_eq!(out.as_ref(), Some(packet), "re-encoded as {frames:?}");
    assert!(!decoder.is_reconstructing());
}

fuzz_target!(|data: &[u8]| {
    let mut decoder = Decoder::new();
    let mut rest = data;
    while let Some((&kind, tail)) = rest.split_first() {
        let (len, tail) = match tail {
            [lo, hi, tail @ ..] => (usize::from(u16::from_le_bytes([*lo, *hi])), tail),
            _ => (tail.len(), &[][..]),
        };
        let (message, tail) = tail.split_at(len.min(tail.len()));
        rest = tail;

        if kind & 2 != 0 {
            decoder.reset();
            assert!(!decoder.is_reconstructing());
        }
        let result = if kind & 1 == 0 {
            match std::str::from_utf8(message) {
                Ok(text) => decoder.decode_text(Str::from(text)),
                Err(_) => continue,
            }
        } else {
            decoder.decode_binary(Bytes::copy_from_slice(message))
        };
        if let Ok(Some(packet)) = result {
            check_round_trip(&packet);
        }
    }
});
