//! One Socket.IO packet text (the Engine.IO message data, without the `4`).
//!
//! Decoding must never panic, nor must the accessors of a decoded packet. A complete packet must
//! decode back to itself from its own encoding. Packets are compared, not bytes: the decoder
//! accepts forms the encoder never writes (white space in ack ids and attachment counts, a white
//! space type character read as CONNECT, `/,` for the main namespace, a namespace without its
//! comma), which must still mean the same packet once re-encoded.

#![no_main]

use ferrio_proto::socket::Decoder;
use ferrio_proto::Str;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(Some(packet)) = Decoder::new().decode_text(Str::from(text)) else {
        return;
    };
    let _ = packet.event_name();
    let _ = packet.args::<serde_json::Value>();
    let _ = packet.args::<(serde_json::Value, serde_json::Value)>();
    let _ = packet.data_as::<serde_json::Value>();

    let encoded = packet.encode();
    assert_eq!(
        &encoded.message()[..1],
        "4",
        "not an Engine.IO message: {encoded:?}"
    );
    assert!(encoded.attachments().is_empty(), "{encoded:?}");
    let again = Decoder::new()
        .decode_text(Str::from(encoded.socket_text()))
        .unwrap_or_else(|e| panic!("{encoded:?} from {packet:?} does not decode: {e}"));
    assert_eq!(again.as_ref(), Some(&packet), "re-encoded as {encoded:?}");
});
