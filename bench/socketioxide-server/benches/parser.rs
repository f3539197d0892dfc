//! socketioxide 0.18's default parser (`socketioxide-parser-common`, the JSON "common" format) on
//! the payloads of Ferrio's `crates/ferrio-proto/benches/codec.rs`, with the same benchmark names:
//! a typical event and a binary event with a 1 KiB attachment, encoded and decoded.
//!
//! Each iteration goes through the Engine.IO packet functions of `engineioxide-core` as well (the
//! `4` message prefix), because Ferrio's benchmarks start from / end at the WebSocket frame.
//!
//! Run from `bench/socketioxide-server` with
//! `cargo bench --bench parser -- --warm-up-time 1 --measurement-time 3`.

use std::collections::VecDeque;
use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use engineioxide_core::{Packet as EioPacket, ProtocolVersion};
use serde::{Deserialize, Serialize};
use socketioxide_core::packet::{Packet, PacketData};
use socketioxide_core::parser::{Parse, ParseConfig, ParseError, ParserState};
use socketioxide_core::{Str, Value};
use socketioxide_parser_common::CommonParser;

/// The WebSocket text frame of a typical chat event.
const EVENT_FRAME: &str = r#"42["message",{"text":"hello","from":"abc","n":42}]"#;
/// Its Socket.IO data.
const EVENT_DATA: &str = r#"["message",{"text":"hello","from":"abc","n":42}]"#;
/// The text frame of a binary event with one attachment.
const BINARY_FRAME: &str = r#"451-["file",{"_placeholder":true,"num":0}]"#;
/// Its Socket.IO data.
const BINARY_DATA: &str = r#"["file",{"_placeholder":true,"num":0}]"#;

/// The argument of the typical event, as an application would declare it.
#[derive(Serialize, Deserialize)]
struct Message<T> {
    text: T,
    from: T,
    n: u32,
}

/// One incoming WebSocket text frame through the Engine.IO packet parser and the Socket.IO parser.
fn decode_text(
    config: &ParseConfig,
    state: &ParserState,
    frame: Str,
) -> Result<Packet, ParseError> {
    match EioPacket::parse(ProtocolVersion::V4, frame).expect("valid frame") {
        EioPacket::Message(text) => CommonParser.decode_str(config, state, text),
        other => panic!("unexpected {other:?}"),
    }
}

/// A Socket.IO packet through the parser's encoder, then into an Engine.IO message frame.
fn encode(packet: Packet) -> (String, Option<VecDeque<Bytes>>) {
    match CommonParser.encode(packet) {
        Value::Str(text, bins) => (String::from(EioPacket::Message(text)), bins),
        Value::Bytes(_) => unreachable!("the common parser encodes to text"),
    }
}

fn event(c: &mut Criterion) {
    let config = ParseConfig::default();
    let frame = Str::from(EVENT_FRAME.to_string());
    let data = Value::Str(Str::from(EVENT_DATA.to_string()), None);
    // Sanity: both encoders write the frame the decoder reads, and it decodes to the message.
    let msg = Message {
        text: "hello",
        from: "abc",
        n: 42,
    };
    let typed = CommonParser
        .encode_value(&(msg,), Some("message"))
        .expect("serialisable");
    assert_eq!(encode(Packet::event("/", typed)).0, EVENT_FRAME);
    assert_eq!(encode(Packet::event("/", data.clone())).0, EVENT_FRAME);
    let mut packet =
        decode_text(&config, &ParserState::default(), frame.clone()).expect("complete");
    let PacketData::Event(ref mut value, None) = packet.inner else {
        panic!("not an event")
    };
    assert_eq!(CommonParser.read_event(value).expect("event"), "message");
    let (msg,): (Message<String>,) = CommonParser.decode_value(value, true).expect("args");
    assert_eq!(
        (msg.text.as_str(), msg.from.as_str(), msg.n),
        ("hello", "abc", 42)
    );

    let mut g = c.benchmark_group("event");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decode", |b| {
        b.iter(|| {
            let state = ParserState::default();
            decode_text(&config, &state, black_box(frame.clone())).expect("complete")
        })
    });
    g.bench_function("decode_typed_args", |b| {
        b.iter(|| {
            let state = ParserState::default();
            let mut packet =
                decode_text(&config, &state, black_box(frame.clone())).expect("complete");
            let PacketData::Event(ref mut value, _) = packet.inner else {
                unreachable!()
            };
            let (msg,): (Message<String>,) = CommonParser.decode_value(value, true).expect("args");
            msg
        })
    });
    g.bench_function("encode_raw_json", |b| {
        b.iter(|| encode(Packet::event("/", black_box(data.clone()))))
    });
    g.bench_function("encode_typed", |b| {
        b.iter(|| {
            let msg = Message {
                text: "hello",
                from: "abc",
                n: 42,
            };
            let value = CommonParser
                .encode_value(black_box(&(msg,)), Some("message"))
                .expect("serialisable");
            encode(Packet::event("/", value))
        })
    });
    g.finish();
}

fn binary_event(c: &mut Criterion) {
    let config = ParseConfig::default();
    let attachment = Bytes::from((0..1024).map(|i| i as u8).collect::<Vec<u8>>());
    let text = Str::from(BINARY_FRAME.to_string());
    let data = Str::from(BINARY_DATA.to_string());
    // Sanity: the typed encoder extracts the attachment into the same frames.
    let value = CommonParser
        .encode_value(&(attachment.clone(),), Some("file"))
        .expect("serialisable");
    let (frame, bins) = encode(Packet::event("/", value));
    assert_eq!(frame, BINARY_FRAME);
    assert_eq!(bins, Some(VecDeque::from([attachment.clone()])));
    let raw = Value::Str(data.clone(), Some(VecDeque::from([attachment.clone()])));
    assert_eq!(encode(Packet::event("/", raw)).0, BINARY_FRAME);
    let state = ParserState::default();
    assert!(matches!(
        decode_text(&config, &state, text.clone()),
        Err(ParseError::NeedsMoreBinaryData)
    ));
    let mut packet = CommonParser
        .decode_bin(&config, &state, attachment.clone())
        .expect("complete");
    let PacketData::BinaryEvent(ref mut value, None) = packet.inner else {
        panic!("not a binary event")
    };
    let (got,): (Bytes,) = CommonParser.decode_value(value, true).expect("args");
    assert_eq!(got, attachment);

    let mut g = c.benchmark_group("binary_event_1k");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decode", |b| {
        b.iter(|| {
            let state = ParserState::default();
            let (text, binary) = black_box((text.clone(), attachment.clone()));
            assert!(matches!(
                decode_text(&config, &state, text),
                Err(ParseError::NeedsMoreBinaryData)
            ));
            // A WebSocket binary frame is an attachment as it is: no Engine.IO parsing.
            CommonParser
                .decode_bin(&config, &state, binary)
                .expect("complete")
        })
    });
    g.bench_function("encode_raw_json", |b| {
        b.iter(|| {
            let value = Value::Str(
                black_box(data.clone()),
                Some(VecDeque::from([attachment.clone()])),
            );
            encode(Packet::event("/", value))
        })
    });
    g.bench_function("encode_typed", |b| {
        b.iter(|| {
            let value = CommonParser
                .encode_value(black_box(&(attachment.clone(),)), Some("file"))
                .expect("serialisable");
            encode(Packet::event("/", value))
        })
    });
    g.finish();
}

criterion_group!(benches, event, binary_event);
criterion_main!(benches);
