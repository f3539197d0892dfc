//! A stream of WebSocket frames from a client that agreed on `permessage-deflate` (RFC 7692):
//! compressed or not, fragmented or not, with control frames between fragments, valid or not,
//! through the server's inflater (the core's `ws_deflate::Inflater`) with a small size limit,
//! then each message through the Engine.IO and Socket.IO decoders, as a WebSocket transport
//! does.
//!
//! The first input byte chooses how the rest reaches the inflater (the size of the pieces
//! pushed, and of the buffer pulled into), and whether the client keeps its compression
//! context between messages. Nothing may panic, and no message may come out larger than the
//! limit unless it came in as it is (a frame the inflater does not transform, which the
//! WebSocket library then bounds itself).

#![no_main]

use bytes::Bytes;
use ferrio_proto::engine::{self, Protocol};
use ferrio_proto::socket::Decoder;
use ferrio_proto::ws_deflate::{Inflater, Role};
use ferrio_proto::Str;
use libfuzzer_sys::fuzz_target;

/// The largest message inflated.
const LIMIT: usize = 2048;

/// Decodes one message as an Engine.IO packet, then its data as Socket.IO.
fn decode(decoder: &mut Decoder, text: bool, data: Vec<u8>) {
    let frame = if text {
        match Str::from_utf8(Bytes::from(data)) {
            Ok(s) => engine::Frame::Text(s),
            Err(_) => return,
        }
    } else {
        engine::Frame::Binary(Bytes::from(data))
    };
    let result = match engine::Packet::decode(frame, Protocol::V4) {
        Ok(engine::Packet::Message(text)) => decoder.decode_text(text),
        Ok(engine::Packet::Binary(data)) => decoder.decode_binary(data),
        _ => return,
    };
    if let Ok(Some(packet)) = result {
        let _ = packet.event_name();
        let _ = packet.args::<serde_json::Value>();
    }
}

/// Reassembles the messages of the frames the inflater put out and decodes them; stops at the
/// first frame the WebSocket library would refuse.
fn messages(mut out: &[u8], bound: usize) {
    let mut decoder = Decoder::new();
    let mut message: Option<(bool, Vec<u8>)> = None;
    while let [first, second, ..] = *out {
        if first & 0x70 != 0 || second & 0x80 == 0 {
            return;
        }
        let (len, mut size) = match second & 0x7f {
            126 if out.len() >= 4 => (u64::from(u16::from_be_bytes([out[2], out[3]])), 4),
            127 if out.len() >= 10 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&out[2..10]);
                (u64::from_be_bytes(n), 10)
            }
            126 | 127 => return,
            n => (u64::from(n), 2),
        };
        let Some(mask) = out.get(size..size + 4) else {
            return;
        };
        let mask = [mask[0], mask[1], mask[2], mask[3]];
        size += 4;
        let Some(payload) = usize::try_from(len)
            .ok()
            .and_then(|len| out.get(size..size.checked_add(len)?))
        else {
            return;
        };
        out = &out[size + payload.len()..];
        let payload: Vec<u8> = payload
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i & 3])
            .collect();
        let (fin, opcode) = (first & 0x80 != 0, first & 0x0f);
        match (opcode, message.as_mut()) {
            (1 | 2, None) => message = Some((opcode == 1, payload)),
            (0, Some((_, data))) => data.extend_from_slice(&payload),
            (8..=10, _) => continue,
            _ => return,
        }
        if let Some((_, data)) = &message {
            assert!(
                data.len() <= bound,
                "a message of {} bytes past the limit",
                data.len()
            );
        }
        if fin {
            if let Some((text, data)) = message.take() {
                decode(&mut decoder, text, data);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else {
        return;
    };
    let piece = usize::from(mode & 0x3f) + 1;
    let pull = if mode & 0x40 != 0 { 7 } else { 4096 };
    let mut inflater = Inflater::new(Role::Server, mode & 0x80 == 0);
    let mut out = Vec::new();
    let mut buf = vec![0u8; pull];
    let mut pieces = input.chunks(piece);
    loop {
        match inflater.pull(&mut buf, LIMIT) {
            Ok(0) => match pieces.next() {
                Some(p) => inflater.push(p),
                None => {
                    inflater.end();
                    loop {
                        match inflater.pull(&mut buf, LIMIT) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => out.extend_from_slice(&buf[..n]),
                        }
                    }
                    break;
                }
            },
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => {
                // A failure is final.
                assert_eq!(inflater.pull(&mut buf, LIMIT), Err(e));
                break;
            }
        }
        // Frames never grow past what came in plus the inflated messages (each at most the
        // limit, with its header).
        assert!(out.len() <= input.len() + (input.len() / 2 + 1) * (LIMIT + 14));
    }
    // What was inflated of a message is at most the limit; the rest of it came as it is.
    messages(&out, LIMIT + input.len());
});
