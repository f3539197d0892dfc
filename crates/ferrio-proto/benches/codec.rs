//! Micro-benchmarks of the codecs: a typical event, a binary event with a 1 KiB attachment, and a
//! 100-record v4 polling payload, each encoded and decoded the way a server does it.
//!
//! Run with `cargo bench -p ferrio-proto --bench codec` (add `-- --quick` for a short run).

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferrio_proto::engine::{self, decode_payload, encode_payload, Frame, Protocol};
use ferrio_proto::socket::{Decoder, Packet, RawJson};
use ferrio_proto::Str;
use serde::{Deserialize, Serialize};

/// The WebSocket text frame of a typical chat event.
const EVENT_FRAME: &str = r#"42["message",{"text":"hello","from":"abc","n":42}]"#;
/// Its Socket.IO data.
const EVENT_DATA: &str = r#"["message",{"text":"hello","from":"abc","n":42}]"#;
/// The text frame of a binary event with one attachment.
const BINARY_FRAME: &str = r#"451-["file",{"_placeholder":true,"num":0}]"#;
/// Its Socket.IO data.
const BINARY_DATA: &str = r#"["file",{"_placeholder":true,"num":0}]"#;
/// Records in the polling payload.
const RECORDS: usize = 100;

/// The argument of the typical event, as an application would declare it.
#[derive(Serialize, Deserialize)]
struct Message<T> {
    text: T,
    from: T,
    n: u32,
}

/// One incoming WebSocket frame through the Engine.IO and Socket.IO decoders.
fn decode_frame(decoder: &mut Decoder, frame: Frame) -> Option<Packet> {
    match engine::Packet::decode(frame, Protocol::V4).expect("valid frame") {
        engine::Packet::Message(text) => decoder.decode_text(text).expect("valid packet"),
        engine::Packet::Binary(data) => decoder.decode_binary(data).expect("valid attachment"),
        other => panic!("unexpected {other:?}"),
    }
}

fn event(c: &mut Criterion) {
    let frame = Frame::Text(Str::from(EVENT_FRAME));
    let data = RawJson::parse(EVENT_DATA).expect("json");
    // Sanity: both encoders write the frame the decoder reads.
    let typed = Message {
        text: "hello",
        from: "abc",
        n: 42,
    };
    let typed = Packet::event_with("/", "message", &(typed,)).expect("serialisable");
    assert_eq!(&**typed.encode().message(), EVENT_FRAME);
    let raw = Packet::event("/", data.clone(), Vec::new());
    assert_eq!(&**raw.encode().message(), EVENT_FRAME);

    let mut g = c.benchmark_group("event");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decode", |b| {
        b.iter(|| {
            let mut decoder = Decoder::new();
            decode_frame(&mut decoder, black_box(frame.clone())).expect("complete")
        })
    });
    g.bench_function("decode_typed_args", |b| {
        b.iter(|| {
            let mut decoder = Decoder::new();
            let packet = decode_frame(&mut decoder, black_box(frame.clone())).expect("complete");
            let (msg,): (Message<String>,) = packet.args().expect("args");
            msg
        })
    });
    g.bench_function("encode_raw_json", |b| {
        b.iter(|| Packet::event("/", black_box(data.clone()), Vec::new()).encode())
    });
    g.bench_function("encode_typed", |b| {
        b.iter(|| {
            let msg = Message {
                text: "hello",
                from: "abc",
                n: 42,
            };
            Packet::event_with("/", "message", black_box(&(msg,)))
                .expect("serialisable")
                .encode()
        })
    });
    g.finish();
}

fn binary_event(c: &mut Criterion) {
    let attachment = Bytes::from((0..1024).map(|i| i as u8).collect::<Vec<u8>>());
    let frames = [
        Frame::Text(Str::from(BINARY_FRAME)),
        Frame::Binary(attachment.clone()),
    ];
    let data = RawJson::parse(BINARY_DATA).expect("json");
    let encoded = Packet::event_with("/", "file", &(attachment.clone(),))
        .expect("serialisable")
        .encode();
    assert_eq!(&**encoded.message(), BINARY_FRAME);
    assert_eq!(encoded.attachments(), std::slice::from_ref(&attachment));

    let mut g = c.benchmark_group("binary_event_1k");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decode", |b| {
        b.iter(|| {
            let mut decoder = Decoder::new();
            let [text, binary] = black_box(frames.clone());
            assert!(decode_frame(&mut decoder, text).is_none());
            decode_frame(&mut decoder, binary).expect("complete")
        })
    });
    g.bench_function("encode_raw_json", |b| {
        b.iter(|| Packet::event("/", black_box(data.clone()), vec![attachment.clone()]).encode())
    });
    g.bench_function("encode_typed", |b| {
        b.iter(|| {
            Packet::event_with("/", "file", black_box(&(attachment.clone(),)))
                .expect("serialisable")
                .encode()
        })
    });
    g.finish();
}

fn polling_payload(c: &mut Criterion) {
    let frames: Vec<Frame> = (0..RECORDS)
        .map(|n| {
            let msg = Message {
                text: "hello",
                from: "abc",
                n: n as u32,
            };
            let packet = Packet::event_with("/", "message", &(msg,)).expect("serialisable");
            Frame::Text(packet.encode().message().clone())
        })
        .collect();
    let body = Str::from_utf8(encode_payload(&frames)).expect("UTF-8");

    let mut g = c.benchmark_group("payload_v4_100");
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.bench_function("encode", |b| b.iter(|| encode_payload(black_box(&frames))));
    g.bench_function("decode", |b| {
        b.iter(|| {
            let mut decoder = Decoder::new();
            let mut packets = Vec::with_capacity(RECORDS);
            for record in decode_payload(black_box(body.clone())) {
                match record.expect("valid record") {
                    engine::Packet::Message(text) => packets.push(
                        decoder
                            .decode_text(text)
                            .expect("valid packet")
                            .expect("complete"),
                    ),
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert_eq!(packets.len(), RECORDS);
            packets
        })
    });
    g.finish();
}

criterion_group!(benches, event, binary_event, polling_payload);
criterion_main!(benches);
