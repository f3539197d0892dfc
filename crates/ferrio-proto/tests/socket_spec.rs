//! Every Socket.IO example of the protocol notes (§1.3) and every parser edge case of §6.2:
//! input → packet, or input → the named error.

use bytes::Bytes;
use ferrio_proto::engine::{self, Protocol};
use ferrio_proto::socket::{AckId, DecodeError, Decoder, Packet, PacketType};
use ferrio_proto::Str;
use serde_json::{json, Value};

fn decode(s: &str) -> Result<Packet, DecodeError> {
    let mut d = Decoder::new();
    match d.decode_text(Str::from(s))? {
        Some(p) => Ok(p),
        None => panic!("{s:?} waits for attachments"),
    }
}

/// Decodes a WebSocket text frame through both layers, as a server would.
fn decode_frame(frame: &str) -> Packet {
    let engine::Packet::Message(text) =
        engine::Packet::decode_text(Str::from(frame), Protocol::V4).expect("engine frame")
    else {
        panic!("{frame:?} is not a message")
    };
    decode(&text).expect("socket packet")
}

fn data(p: &Packet) -> Option<Value> {
    p.data().map(|d| d.to_value().expect("json"))
}

#[track_caller]
fn check(p: &Packet, kind: PacketType, nsp: &str, id: Option<u64>, expected: Option<Value>) {
    assert_eq!(p.kind(), kind);
    assert_eq!(&**p.nsp(), nsp);
    assert_eq!(p.id(), id.map(AckId::from).as_ref());
    assert_eq!(data(p), expected);
}

#[test]
fn section_1_3_text_examples() {
    use PacketType::*;
    check(&decode_frame("40"), Connect, "/", None, None);
    check(
        &decode_frame(r#"40{"token":"123"}"#),
        Connect,
        "/",
        None,
        Some(json!({"token":"123"})),
    );
    check(&decode_frame("40/admin,"), Connect, "/admin", None, None);
    check(&decode_frame("40/admin"), Connect, "/admin", None, None);
    check(
        &decode_frame(r#"40/admin,{"token":"abc"}"#),
        Connect,
        "/admin",
        None,
        Some(json!({"token":"abc"})),
    );
    check(
        &decode_frame(r#"40{"sid":"DuUZbCp07FcW_-bkAAAD","pid":"fqVaKqIkZ8VUhJMAAAAE"}"#),
        Connect,
        "/",
        None,
        Some(json!({"sid":"DuUZbCp07FcW_-bkAAAD","pid":"fqVaKqIkZ8VUhJMAAAAE"})),
    );
    check(
        &decode_frame(r#"44/random,{"message":"Invalid namespace"}"#),
        ConnectError,
        "/random",
        None,
        Some(json!({"message":"Invalid namespace"})),
    );
    check(
        &decode_frame(r#"44/auth,{"message":"not authorized","data":{"reason":"bad token"}}"#),
        ConnectError,
        "/auth",
        None,
        Some(json!({"message":"not authorized","data":{"reason":"bad token"}})),
    );
    check(
        &decode_frame(r#"42["foo"]"#),
        Event,
        "/",
        None,
        Some(json!(["foo"])),
    );
    check(
        &decode_frame(r#"42/admin,["bar"]"#),
        Event,
        "/admin",
        None,
        Some(json!(["bar"])),
    );
    check(
        &decode_frame(r#"4212["foo"]"#),
        Event,
        "/",
        Some(12),
        Some(json!(["foo"])),
    );
    check(
        &decode_frame(r#"4312["bar"]"#),
        Ack,
        "/",
        Some(12),
        Some(json!(["bar"])),
    );
    check(
        &decode_frame(r#"43/admin,13["bar"]"#),
        Ack,
        "/admin",
        Some(13),
        Some(json!(["bar"])),
    );
    check(&decode_frame("4312[]"), Ack, "/", Some(12), Some(json!([])));
    check(&decode_frame("41"), Disconnect, "/", None, None);
    check(&decode_frame("41/admin,"), Disconnect, "/admin", None, None);
}

#[test]
fn section_1_3_examples_encode_back_exactly() {
    for wire in [
        "40",
        r#"40{"token":"123"}"#,
        "40/admin,",
        r#"40/admin,{"token":"abc"}"#,
        r#"40{"sid":"wZX3oN0bSVIhsaknAAAI"}"#,
        r#"44/random,{"message":"Invalid namespace"}"#,
        r#"42["foo"]"#,
        r#"42/admin,["bar"]"#,
        r#"4212["foo"]"#,
        r#"4312["bar"]"#,
        r#"43/admin,13["bar"]"#,
        "4312[]",
        "41",
        "41/admin,",
    ] {
        assert_eq!(&**decode_frame(wire).encode().message(), wire);
    }
}

#[test]
fn section_1_3_binary_examples() {
    let bin = Bytes::from_static(&[1, 2, 3, 4]);
    let mut d = Decoder::new();
    assert!(d
        .decode_text(r#"51-["baz",{"_placeholder":true,"num":0}]"#.into())
        .expect("header")
        .is_none());
    let p = d
        .decode_binary(bin.clone())
        .expect("attachment")
        .expect("complete");
    check(
        &p,
        PacketType::BinaryEvent,
        "/",
        None,
        Some(json!(["baz", {"_placeholder": true, "num": 0}])),
    );
    assert_eq!(p.attachments(), std::slice::from_ref(&bin));
    assert_eq!(
        &**p.encode().message(),
        r#"451-["baz",{"_placeholder":true,"num":0}]"#
    );

    let two = r#"52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;
    assert!(d.decode_text(two.into()).expect("header").is_none());
    assert!(d
        .decode_binary(Bytes::from_static(b"a"))
        .expect("first")
        .is_none());
    let p = d
        .decode_binary(Bytes::from_static(b"b"))
        .expect("second")
        .expect("complete");
    assert_eq!(&**p.nsp(), "/admin");
    let (a, b): (Bytes, Bytes) = p.args().expect("typed");
    assert_eq!((&a[..], &b[..]), (&b"a"[..], &b"b"[..]));
    assert_eq!(p.encode().socket_text(), two);

    assert!(d
        .decode_text(r#"61-15["bar",{"_placeholder":true,"num":0}]"#.into())
        .expect("header")
        .is_none());
    let p = d.decode_binary(bin.clone()).expect("ok").expect("complete");
    check(
        &p,
        PacketType::BinaryAck,
        "/",
        Some(15),
        Some(json!(["bar", {"_placeholder": true, "num": 0}])),
    );
}

#[test]
fn section_1_3_binary_over_polling() {
    // 461-1[{"_placeholder":true,"num":0}]␞bAQID␞452-["b",{…0},{"x":{…1}}]␞bAQID␞bBA== [observed]
    let body = "461-1[{\"_placeholder\":true,\"num\":0}]\u{1e}bAQID\u{1e}452-[\"b\",{\"_placeholder\":true,\"num\":0},{\"x\":{\"_placeholder\":true,\"num\":1}}]\u{1e}bAQID\u{1e}bBA==";
    let mut d = Decoder::new();
    let mut out = Vec::new();
    for packet in engine::decode_payload(Str::from(body)) {
        let done = match packet.expect("engine record") {
            engine::Packet::Message(t) => d.decode_text(t),
            engine::Packet::Binary(b) => d.decode_binary(b),
            other => panic!("unexpected {other:?}"),
        };
        out.extend(done.expect("socket packet"));
    }
    assert_eq!(out.len(), 2);
    check(
        &out[0],
        PacketType::BinaryAck,
        "/",
        Some(1),
        Some(json!([{"_placeholder":true,"num":0}])),
    );
    assert_eq!(out[0].attachments(), [Bytes::from_static(&[1, 2, 3])]);
    let (name, first, second): (String, Bytes, Value) = {
        let (first, second): (Bytes, Value) = out[1].args().expect("typed");
        (
            out[1].event_name().expect("name").into_owned(),
            first,
            second,
        )
    };
    assert_eq!(name, "b");
    assert_eq!(&first[..], &[1, 2, 3]);
    // a nested placeholder read as a Value stays a JSON object; read as bytes it is the attachment
    assert!(second["x"].is_object());
    #[derive(serde::Deserialize)]
    struct X {
        x: Bytes,
    }
    let (_, x): (Bytes, X) = out[1].args().expect("typed");
    assert_eq!(&x.x[..], &[4]);
    // and the same two packets encode back to the same polling body
    let frames: Vec<engine::Frame> = out
        .iter()
        .flat_map(|p| p.encode().frames().collect::<Vec<_>>())
        .collect();
    assert_eq!(engine::encode_payload(&frames), body.as_bytes());
}

#[test]
fn section_6_2_valid_inputs() {
    use PacketType::*;
    check(
        &decode(r#"2["a"]"#).expect("ok"),
        Event,
        "/",
        None,
        Some(json!(["a"])),
    );
    check(
        &decode(r#"2 ["a"]"#).expect("ok"),
        Event,
        "/",
        Some(0),
        Some(json!(["a"])),
    );
    check(
        &decode(r#"2012["a"]"#).expect("ok"),
        Event,
        "/",
        Some(12),
        Some(json!(["a"])),
    );
    check(
        &decode("0/custom").expect("ok"),
        Connect,
        "/custom",
        None,
        None,
    );
    check(
        &decode("0/custom,").expect("ok"),
        Connect,
        "/custom",
        None,
        None,
    );
    check(
        &decode(r#"0/custom,{"a":1}"#).expect("ok"),
        Connect,
        "/custom",
        None,
        Some(json!({"a":1})),
    );
    check(
        &decode(r#"0/custom{"a":1}"#).expect("ok"),
        Connect,
        r#"/custom{"a":1}"#,
        None,
        None,
    );
    check(
        &decode(r#"2/a b,["x"]"#).expect("ok"),
        Event,
        "/a b",
        None,
        Some(json!(["x"])),
    );
    check(&decode("2").expect("ok"), Event, "/", None, None);
    check(&decode("212").expect("ok"), Event, "/", Some(12), None);
    check(&decode("31").expect("ok"), Ack, "/", Some(1), None);
    check(&decode("1").expect("ok"), Disconnect, "/", None, None);
    check(&decode("1/a,").expect("ok"), Disconnect, "/a", None, None);
    check(
        &decode(r#"4"x""#).expect("ok"),
        ConnectError,
        "/",
        None,
        Some(json!("x")),
    );
    check(
        &decode(r#"4{"message":"m"}"#).expect("ok"),
        ConnectError,
        "/",
        None,
        Some(json!({"message":"m"})),
    );
}

#[test]
fn section_6_2_invalid_payloads() {
    for input in [
        r#"21e3["a"]"#,
        r#"2-1["a"]"#,
        r#"2["a"]garbage"#,
        "2null",
        "0null",
        "2[]",
        r#"2["newListener"]"#,
        "0[]",
        "1/admin,{}",
        "2/admin,{}",
        r#"2[true,"foo"]"#,
        r#"2[null,"bar"]"#,
        r#"2["connect"]"#,
        r#"442["some","data""#,
    ] {
        assert_eq!(
            decode(input).err(),
            Some(DecodeError::InvalidPayload),
            "{input}"
        );
    }
}

#[test]
fn section_6_2_attachment_headers() {
    for input in [
        "5",
        "51",
        "5a-",
        "51.23-",
        r#"5-["a"]"#,
        "6",
        r#"50-["bin"]"#,
    ] {
        assert_eq!(
            Decoder::new().decode_text(input.into()).err(),
            Some(DecodeError::IllegalAttachments),
            "{input}"
        );
    }
    for input in [r#"511-["a"]"#, r#"5011-["a"]"#] {
        assert_eq!(
            Decoder::new().decode_text(input.into()).err(),
            Some(DecodeError::TooManyAttachments { limit: 10 }),
            "{input}"
        );
    }
    // the limit is configurable
    let mut d = Decoder::with_max_attachments(11);
    assert!(d.decode_text(r#"511-["a"]"#.into()).expect("ok").is_none());
    // JavaScript's Number() leniencies in the count: white space and hex
    assert!(Decoder::new()
        .decode_text(r#"5 1-["a"]"#.into())
        .expect("ok")
        .is_none());
    assert!(Decoder::new()
        .decode_text(r#"50x2-["a"]"#.into())
        .expect("ok")
        .is_none());
}

#[test]
fn section_6_2_unknown_type() {
    assert_eq!(decode("999").err(), Some(DecodeError::UnknownPacketType));
    assert_eq!(decode("x").err(), Some(DecodeError::UnknownPacketType));
    // Number("") and Number(" ") are 0 in JavaScript: CONNECT
    check(
        &decode("").expect("ok"),
        PacketType::Connect,
        "/",
        None,
        None,
    );
}

#[test]
fn section_6_2_reassembly_errors() {
    let mut d = Decoder::new();
    assert_eq!(
        d.decode_binary(Bytes::from_static(&[1])).err(),
        Some(DecodeError::UnexpectedBinary)
    );
    assert!(d
        .decode_text(r#"51-["a",{"_placeholder":true,"num":0}]"#.into())
        .expect("ok")
        .is_none());
    assert_eq!(
        d.decode_text(r#"2["b"]"#.into()).err(),
        Some(DecodeError::UnexpectedText)
    );
    // reset() drops the partial packet and decoding resumes cleanly
    d.reset();
    assert!(!d.is_reconstructing());
    assert!(d.decode_text(r#"2["b"]"#.into()).expect("ok").is_some());
}

#[test]
fn placeholder_indexes_are_validated() {
    for header in [
        r#"51-["a",{"_placeholder":true,"num":1}]"#,
        r#"51-["a",{"_placeholder":true,"num":-1}]"#,
        r#"51-["a",{"_placeholder":true,"num":"splice"}]"#,
        r#"51-["a",{"_placeholder":true,"num":0.5}]"#,
        r#"51-["a",{"_placeholder":true}]"#,
        r#"51-["a",[{"deep":{"_placeholder":true,"num":3}}]]"#,
    ] {
        let mut d = Decoder::new();
        assert!(d.decode_text(header.into()).expect("header").is_none());
        assert_eq!(
            d.decode_binary(Bytes::from_static(b"x")).err(),
            Some(DecodeError::InvalidPlaceholder),
            "{header}"
        );
        assert!(!d.is_reconstructing());
    }
    // `_placeholder` other than `true` is ordinary data
    let mut d = Decoder::new();
    assert!(d
        .decode_text(r#"51-["a",{"_placeholder":1,"num":9}]"#.into())
        .expect("ok")
        .is_none());
    assert!(d
        .decode_binary(Bytes::from_static(b"x"))
        .expect("ok")
        .is_some());
}

/// The id of a decoded packet: as a number when it fits, and as the digits written back.
fn id_of(text: &str) -> (Option<u64>, String) {
    let p = decode(text).expect("ok");
    let id = p.id().expect("an id");
    (id.as_u64(), id.to_string())
}

#[test]
fn ack_ids_of_any_length_stay_exact() {
    let max = u64::MAX.to_string();
    assert_eq!(id_of(&format!("3{max}[]")), (Some(u64::MAX), max));
    // One past `u64::MAX`, and 30 digits: kept as their digits (the reference accepts any run).
    for digits in ["18446744073709551616", "123456789012345678901234567890"] {
        assert_eq!(id_of(&format!("3{digits}[]")), (None, digits.to_owned()));
        assert_eq!(
            id_of(&format!("2/custom,{digits}[\"a\"]")),
            (None, digits.to_owned())
        );
    }
    // Leading zeros go, as `Number` drops them, whether the rest fits or not.
    assert_eq!(
        id_of("3000000000000000000000000001[]"),
        (Some(1), "1".to_owned())
    );
    assert_eq!(
        id_of("3000000000000000000000018446744073709551616[]"),
        (None, "18446744073709551616".to_owned())
    );
    // White space around the digits is trimmed; alone it reads as 0 (`Number` again), also
    // around a long run.
    assert_eq!(id_of("3\t7 []"), (Some(7), "7".to_owned()));
    assert_eq!(id_of("3\u{a0}[]"), (Some(0), "0".to_owned()));
    assert_eq!(
        id_of("3 123456789012345678901234567890\u{a0}[]"),
        (None, "123456789012345678901234567890".to_owned())
    );
    // Inside the digits it is `NaN`: refused, long or short.
    assert_eq!(decode("31 2[]").err(), Some(DecodeError::InvalidAckId));
    assert_eq!(
        decode("3123456789012345678901 234567890[]").err(),
        Some(DecodeError::InvalidAckId)
    );
}

#[test]
fn long_ack_ids_are_answered_with_the_same_digits() {
    let digits = "123456789012345678901234567890";
    let event = decode(&format!(r#"2/custom,{digits}["message-with-ack","x"]"#)).expect("ok");
    let id = event.id().expect("an id");
    let ack = Packet::ack_with("/custom", id, &("x",)).expect("ack");
    assert_eq!(
        &**ack.encode().message(),
        format!(r#"43/custom,{digits}["x"]"#)
    );
    assert_eq!(
        decode(ack.encode().socket_text()).expect("ok").id(),
        Some(id)
    );
    // Issued ids are numbers; they encode as before.
    let big = Packet::ack(
        "/",
        u64::MAX,
        ferrio_proto::socket::RawJson::parse("[]").expect("json"),
        vec![],
    );
    assert_eq!(
        decode(big.encode().socket_text()).expect("ok").id(),
        Some(&AckId::from(u64::MAX))
    );
}

#[test]
fn decoded_payload_shares_the_input() {
    let text = Str::from(r#"2/chat,5["msg",{"a":1}]"#);
    let p = Decoder::new()
        .decode_text(text.clone())
        .expect("ok")
        .expect("packet");
    let data = p.data().expect("data").as_shared();
    assert_eq!(data.as_bytes().as_ptr(), text.as_bytes()[8..].as_ptr());
    assert_eq!(p.nsp().as_bytes().as_ptr(), text.as_bytes()[1..].as_ptr());
}

#[test]
fn numeric_event_names() {
    let p = decode("2[42,1]").expect("ok");
    assert_eq!(p.event_name().as_deref(), Some("42"));
    let (one,): (u8,) = p.args().expect("args");
    assert_eq!(one, 1);
}
