//! One message of the msgpack parser (`socket.io-msgpack-parser`): a binary Engine.IO message.
//!
//! Decoding must never panic (malformed msgpack, maps of the wrong shape, wrong types, deep
//! nesting, huge announced lengths), nor must the accessors of a decoded packet. A decoded packet
//! must encode into one binary message that decodes again; from there on the form is stable:
//! decoding and encoding once more gives the same packet and the same bytes. (The first round may
//! normalise, as JavaScript does: `-0` is written as `0`, a float with an integral value as an
//! integer, a date as its ISO string; and a map written as a placeholder becomes the binary value
//! it names, as the JSON parser reads it.)

#![no_main]

use bytes::Bytes;
use ferrio_proto::socket::{Packet, Parser};
use libfuzzer_sys::fuzz_target;

fn decode(frame: Bytes) -> Option<Packet> {
    Parser::msgpack()
        .decoder(10)
        .decode_binary(frame)
        .unwrap_or_else(|e| panic!("a frame the encoder wrote does not decode: {e}"))
}

fuzz_target!(|data: &[u8]| {
    let parser = Parser::msgpack();
    let Ok(Some(packet)) = parser
        .decoder(10)
        .decode_binary(Bytes::copy_from_slice(data))
    else {
        return;
    };
    let _ = packet.event_name();
    let _ = packet.args::<serde_json::Value>();
    let _ = packet.args::<(serde_json::Value, bytes::Bytes)>();
    let _ = packet.data_as::<serde_json::Value>();

    let encoded = parser.encode(&packet);
    assert!(encoded.message().is_empty(), "{encoded:?}");
    assert_eq!(encoded.binary().len(), 1, "{encoded:?}");
    let once = decode(encoded.binary()[0].clone()).expect("one frame is one packet");
    assert_eq!(once.kind(), packet.kind());
    assert_eq!(once.nsp(), packet.nsp());
    assert_eq!(once.id(), packet.id());
    let again = parser.encode(&once);
    let twice = decode(again.binary()[0].clone()).expect("one frame is one packet");
    assert_eq!(twice, once, "re-encoded as {again:?}");
    assert_eq!(parser.encode(&twice), again);
});
