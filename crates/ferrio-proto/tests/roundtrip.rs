//! Property tests: decode(encode(p)) == p for every packet kind, and decoding arbitrary input
//! returns `Ok` or `Err` (never panics, never hangs).

use std::collections::BTreeMap;

use bytes::Bytes;
use ferrio_proto::engine::{self, Frame, Protocol};
use ferrio_proto::socket::{self, Decoder, RawJson, RESERVED_EVENTS};
use ferrio_proto::Str;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

fn bytes() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from)
}

fn text() -> impl Strategy<Value = String> {
    // any Unicode, including multi-byte and astral characters
    any::<String>()
}

fn engine_packet(with_separator: bool) -> impl Strategy<Value = engine::Packet> {
    let t = text()
        .prop_map(move |s| {
            if with_separator {
                s
            } else {
                s.replace('\u{1e}', "")
            }
        })
        .boxed();
    prop_oneof![
        t.clone().prop_map(|s| engine::Packet::Open(s.into())),
        Just(engine::Packet::Close),
        t.clone().prop_map(|s| engine::Packet::Ping(s.into())),
        t.clone().prop_map(|s| engine::Packet::Pong(s.into())),
        t.prop_map(|s| engine::Packet::Message(s.into())),
        bytes().prop_map(engine::Packet::Binary),
        Just(engine::Packet::Upgrade),
        Just(engine::Packet::Noop),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e15f64..1e15).prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map(text(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn object() -> impl Strategy<Value = RawJson> {
    proptest::collection::btree_map(text(), json_value(), 0..5)
        .prop_map(|m| RawJson::from_value(&Value::Object(m.into_iter().collect())))
}

fn namespace() -> impl Strategy<Value = String> {
    text().prop_map(|s| format!("/{}", s.replace(',', "")))
}

/// An argument that may hold binary data anywhere.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
enum Arg {
    Json(Value),
    Bin(Bytes),
    List(Vec<Arg>),
    Map(BTreeMap<String, Arg>),
}

fn arg() -> impl Strategy<Value = Arg> {
    let leaf = prop_oneof![json_value().prop_map(Arg::Json), bytes().prop_map(Arg::Bin)];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Arg::List),
            proptest::collection::btree_map(text(), inner, 0..4).prop_map(Arg::Map),
        ]
    })
}

fn event_name() -> impl Strategy<Value = String> {
    text().prop_filter("not reserved", |s| !RESERVED_EVENTS.contains(&s.as_str()))
}

fn socket_packet() -> impl Strategy<Value = socket::Packet> {
    let id = proptest::option::of(any::<u64>());
    prop_oneof![
        (namespace(), proptest::option::of(object()))
            .prop_map(|(n, auth)| socket::Packet::connect(n, auth)),
        namespace().prop_map(socket::Packet::disconnect),
        (namespace(), event_name(), proptest::collection::vec(arg(), 0..4), id.clone()).prop_map(
            |(n, name, args, id)| {
                let p = socket::Packet::event_with(n, &name, &args).expect("serialisable");
                match id {
                    Some(id) => p.with_id(id),
                    None => p,
                }
            }
        ),
        (namespace(), any::<u64>(), proptest::collection::vec(arg(), 0..4))
            .prop_map(|(n, id, args)| socket::Packet::ack_with(n, id, &args).expect("serialisable")),
        (namespace(), prop_oneof![text().prop_map(|s| RawJson::string(&s)), object()])
            .prop_map(|(n, data)| socket::Packet::connect_error(n, data)),
    ]
}

/// Feeds the frames of an encoded packet to a fresh decoder, as a peer would receive them.
fn receive(frames: impl IntoIterator<Item = Frame>) -> Vec<socket::Packet> {
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    for frame in frames {
        let packet = engine::Packet::decode(frame, Protocol::V4).expect("engine frame");
        let done = match packet {
            engine::Packet::Message(t) => decoder.decode_text(t),
            engine::Packet::Binary(b) => decoder.decode_binary(b),
            other => panic!("unexpected {other:?}"),
        };
        out.extend(done.expect("socket packet"));
    }
    assert!(!decoder.is_reconstructing());
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn engine_ws_frames_round_trip(p in engine_packet(true)) {
        prop_assert_eq!(engine::Packet::decode(p.encode(), Protocol::V4), Ok(p.clone()));
        prop_assert_eq!(engine::Packet::decode(p.encode_v3(), Protocol::V3), Ok(p));
    }

    #[test]
    fn engine_v4_payload_round_trips(ps in proptest::collection::vec(engine_packet(false), 1..12)) {
        let frames: Vec<Frame> = ps.iter().map(engine::Packet::encode).collect();
        let body = engine::encode_payload(&frames);
        prop_assert_eq!(body.len(), frames.iter().map(|f| f.polling_len() + 1).sum::<usize>() - 1);
        let back: Result<Vec<_>, _> = engine::decode_payload_bytes(body).expect("utf8").collect();
        prop_assert_eq!(back, Ok(ps));
    }

    #[test]
    fn engine_v3_payloads_round_trip(ps in proptest::collection::vec(engine_packet(true), 0..12)) {
        let frames: Vec<Frame> = ps.iter().map(engine::Packet::encode).collect();
        let text = engine::encode_payload_v3(&frames);
        let text = Str::from_utf8(text).expect("utf8");
        prop_assert_eq!(engine::decode_payload_v3(&text), Ok(ps.clone()));
        let binary = engine::encode_payload_v3_binary(&frames);
        prop_assert_eq!(engine::decode_payload_v3_binary(binary), Ok(ps));
    }

    #[test]
    fn socket_packets_round_trip(p in socket_packet()) {
        let encoded = p.encode();
        prop_assert_eq!(receive(encoded.frames()), vec![p.clone()]);
        // and inside a polling payload, several at once
        let frames: Vec<Frame> = encoded.frames().chain(encoded.frames()).collect();
        let body = engine::encode_payload(&frames);
        let mut decoder = Decoder::new();
        let mut got = Vec::new();
        for packet in engine::decode_payload_bytes(body).expect("utf8") {
            let done = match packet.expect("record") {
                engine::Packet::Message(t) => decoder.decode_text(t),
                engine::Packet::Binary(b) => decoder.decode_binary(b),
                other => panic!("unexpected {other:?}"),
            };
            got.extend(done.expect("socket packet"));
        }
        prop_assert_eq!(got, vec![p.clone(), p]);
    }

    #[test]
    fn typed_arguments_round_trip(doc in typed_doc(), n in namespace(), name in event_name(), id in any::<u64>()) {
        let p = socket::Packet::event_with(n, &name, &(&doc, id)).expect("serialisable").with_id(id);
        let got = receive(p.encode().frames());
        prop_assert_eq!(got.len(), 1);
        let got_name = got[0].event_name().map(|n| n.into_owned());
        prop_assert_eq!(got_name.as_deref(), Some(name.as_str()));
        let (back, back_id): (Doc, u64) = got[0].args().expect("typed");
        prop_assert_eq!(back, doc);
        prop_assert_eq!(back_id, id);
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..256)) {
        let b = Bytes::from(input);
        let _ = engine::Packet::decode_binary(b.clone(), Protocol::V3);
        let _ = engine::decode_payload_v3_binary(b.clone());
        if let Ok(s) = Str::from_utf8(b) {
            for protocol in [Protocol::V3, Protocol::V4] {
                let _ = engine::Packet::decode_text(s.clone(), protocol);
            }
            let _ = engine::decode_payload(s.clone()).count();
            let _ = engine::decode_payload_v3(&s);
            if let Ok(Some(p)) = Decoder::new().decode_text(s) {
                let _ = p.event_name();
                let _ = p.args::<Value>();
            }
        }
    }

    #[test]
    fn arbitrary_message_sequences_never_panic(
        msgs in proptest::collection::vec(prop_oneof![
            "[0-6 ]{0,2}[0-9-]{0,3}(/[a-z,]{0,4})?[0-9]{0,3}(\\[.{0,8}\\]|\\{.{0,8}\\})?".prop_map(|s| Frame::Text(s.into())),
            r#"5[1-3]-\["a"(,\{"_placeholder":true,"num":[0-3]\}){0,3}\]"#.prop_map(|s| Frame::Text(s.into())),
            bytes().prop_map(Frame::Binary),
        ], 0..16)
    ) {
        let mut decoder = Decoder::with_max_attachments(3);
        for m in msgs {
            let r = match m {
                Frame::Text(t) => decoder.decode_text(t),
                Frame::Binary(b) => decoder.decode_binary(b),
            };
            if let Ok(Some(p)) = r {
                // whatever decodes, encodes and decodes back to itself
                prop_assert_eq!(receive(p.encode().frames()), vec![p]);
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Doc {
    title: String,
    blob: Bytes,
    parts: Vec<Bytes>,
    meta: BTreeMap<String, i64>,
    note: Option<String>,
}

fn typed_doc() -> impl Strategy<Value = Doc> {
    (
        text(),
        bytes(),
        proptest::collection::vec(bytes(), 0..3),
        proptest::collection::btree_map(text(), any::<i64>(), 0..4),
        proptest::option::of(text()),
    )
        .prop_map(|(title, blob, parts, meta, note)| Doc {
            title,
            blob,
            parts,
            meta,
            note,
        })
}
