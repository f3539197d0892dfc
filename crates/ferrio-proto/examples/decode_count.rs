//! A fixed amount of decoding work, for counting instructions where timings are too noisy:
//! 200,000 WebSocket text frames (`event`: the codec bench's typical event) or binary events with
//! one 1 KiB attachment (`binary`: text frame + attachment, placeholders checked), each through
//! the Engine.IO frame decoder and a new Socket.IO `Decoder`.
//!
//! ```sh
//! cargo build --release -p ferrio-proto --example decode_count
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/decode_count event
//! ```
//! (divide callgrind's "Collected" count by 200,000 for instructions per packet).

use bytes::Bytes;
use ferrio_proto::engine::{self, Protocol};
use ferrio_proto::socket::Decoder;

const PACKETS: usize = 200_000;

fn main() {
    let binary = std::env::args().nth(1).as_deref() == Some("binary");
    let text = if binary {
        r#"451-["file",{"_placeholder":true,"num":0}]"#
    } else {
        r#"42["message",{"text":"hello","from":"abc","n":42}]"#
    };
    let attachment = Bytes::from(vec![7u8; 1024]);
    let mut decoded = 0usize;
    for _ in 0..PACKETS {
        let Ok(engine::Packet::Message(message)) =
            engine::Packet::decode_text(text.into(), Protocol::V4)
        else {
            continue;
        };
        let mut decoder = Decoder::new();
        let packet = match decoder.decode_text(message) {
            Ok(Some(packet)) => Some(packet),
            Ok(None) => decoder.decode_binary(attachment.clone()).ok().flatten(),
            Err(_) => None,
        };
        decoded += usize::from(packet.is_some());
    }
    println!("{decoded} packets decoded");
}
