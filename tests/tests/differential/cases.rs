//! The hand-written cases: the parser edge cases of the protocol notes (§6.2), their examples
//! (§1.1–§1.3), further edge cases, the documented differences, and the encoder cases.

use serde_json::{json, Value};

use super::{engine_bin_packet, engine_text_packet, Case, Kind, Msg};

const PLACEHOLDER_0: &str = r#"{"_placeholder":true,"num":0}"#;
const PLACEHOLDER_1: &str = r#"{"_placeholder":true,"num":1}"#;

fn bin(b: &[u8]) -> Msg {
    Msg::Bin(b.to_vec())
}

fn text(s: &str) -> Msg {
    Msg::Text(s.to_string())
}

/// Every row of the parser edge-case table (§6.2), at the Socket.IO layer (no Engine.IO `4`).
pub fn section_6_2_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let single = [
        // valid events and ids
        r#"2["a"]"#,
        r#"2 ["a"]"#,
        r#"2012["a"]"#,
        // invalid payloads
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
        r#"42["some","data""#,
        r#"2["some","data""#,
        // namespaces
        "0/custom",
        "0/custom,",
        r#"0/custom,{"a":1}"#,
        r#"0/custom{"a":1}"#,
        r#"2/a b,["x"]"#,
        // valid without data
        "2",
        "212",
        "31",
        "1",
        "1/a,",
        // CONNECT_ERROR
        r#"4"x""#,
        r#"4{"message":"m"}"#,
        // illegal attachments
        "5",
        "51",
        "5a-",
        "51.23-",
        r#"5-["a"]"#,
        "6",
        r#"50-["bin"]"#,
        r#"450-["bin"]"#,
        // too many attachments
        r#"511-["a"]"#,
        r#"5011-["a"]"#,
        // unknown type
        "999",
    ];
    for s in single {
        cases.push(Case::sio(format!("6.2 {s}"), &[s]));
    }
    cases.push(Case::new(
        "6.2 binary with nothing pending",
        Kind::SioDecode(vec![bin(&[1, 2, 3])]),
    ));
    cases.push(Case::new(
        "6.2 text while attachments are pending",
        Kind::SioDecode(vec![
            text(&format!(r#"51-["a",{PLACEHOLDER_0}]"#)),
            text(r#"2["b"]"#),
        ]),
    ));
    cases
}

/// The examples of §1.1 (Engine.IO v4), §1.2 (Engine.IO v3) and §1.3 (Socket.IO).
pub fn section_1_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    // §1.3, the Engine.IO `4` stripped.
    let frames = [
        "40",
        r#"40{"token":"123"}"#,
        "40/admin,",
        "40/admin",
        r#"40/admin,{"token":"abc"}"#,
        r#"40{"sid":"wZX3oN0bSVIhsaknAAAI"}"#,
        r#"40{"sid":"DuUZbCp07FcW_-bkAAAD","pid":"fqVaKqIkZ8VUhJMAAAAE"}"#,
        r#"44/random,{"message":"Invalid namespace"}"#,
        r#"44/auth,{"message":"not authorized","data":{"reason":"bad token"}}"#,
        r#"42["foo"]"#,
        r#"42/admin,["bar"]"#,
        r#"4212["foo"]"#,
        r#"4312["bar"]"#,
        r#"43/admin,13["bar"]"#,
        "4312[]",
        "41",
        "41/admin,",
    ];
    for f in frames {
        cases.push(Case::sio(format!("1.3 {f}"), &[&f[1..]]));
    }
    cases.push(Case::new(
        "1.3 451-",
        Kind::SioDecode(vec![
            text(&format!(r#"51-["baz",{PLACEHOLDER_0}]"#)),
            bin(&[1, 2, 3, 4]),
        ]),
    ));
    cases.push(Case::new(
        "1.3 452-/admin",
        Kind::SioDecode(vec![
            text(&format!(
                r#"52-/admin,["baz",{PLACEHOLDER_0},{PLACEHOLDER_1}]"#
            )),
            bin(&[1, 2, 3, 4]),
            bin(&[5, 6]),
        ]),
    ));
    cases.push(Case::new(
        "1.3 461-15",
        Kind::SioDecode(vec![
            text(&format!(r#"61-15["bar",{PLACEHOLDER_0}]"#)),
            bin(&[1, 2, 3, 4]),
        ]),
    ));

    // §1.1
    cases.push(Case::new("1.1 ws 4hello", Kind::Eio4Packet(text("4hello"))));
    cases.push(Case::new(
        "1.1 ws text bAQIDBA==",
        Kind::Eio4Packet(text("bAQIDBA==")),
    ));
    cases.push(Case::new(
        "1.1 ws binary",
        Kind::Eio4Packet(bin(&[1, 2, 3])),
    ));
    cases.push(Case::new(
        "1.1 polling hello + binary",
        Kind::Eio4Payload("4hello\u{1e}bAQIDBA==".into()),
    ));
    cases.push(Case::new(
        "1.1 polling test1-3",
        Kind::Eio4Payload("4test1\u{1e}4test2\u{1e}4test3".into()),
    ));

    // §1.2
    cases.push(Case::new(
        "1.2 v3 payload hello + binary",
        Kind::Eio3Payload("6:4hello10:b4AQIDBA==".into()),
    ));
    cases.push(Case::new(
        "1.2 v3 payload euro",
        Kind::Eio3Payload("2:4€".into()),
    ));
    cases.push(Case::new(
        "1.2 v3 payload emoji",
        Kind::Eio3Payload("3:4😀".into()),
    ));
    cases.push(Case::new(
        "1.2 v3 empty payload",
        Kind::Eio3Payload("0:".into()),
    ));
    cases.push(Case::new(
        "1.2 v3 ws binary",
        Kind::Eio3Packet(bin(&[4, 1, 2, 3])),
    ));
    cases.push(Case::new(
        "1.2 v3 binary payload",
        Kind::Eio3BinaryPayload(vec![
            0x00, 0x04, 0xff, 0x34, 0xe2, 0x82, 0xac, 0x01, 0x04, 0xff, 0x04, 0x01, 0x02, 0x03,
        ]),
    ));
    cases
}

/// Further edge cases of each decoder, all of which must agree.
pub fn extra_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let sio = [
        "",
        " ",
        "\t2",
        "\u{a0}",
        r#" ["a"]"#,
        "0/",
        "0/,",
        "2/,[1]",
        r#"2/a,b,["x"]"#,
        r#"2/😀,["é"]"#,
        r#"2/admin,007["a"]"#,
        // Ack ids beyond `u64`: Ferrio keeps them exact, compared as the double JavaScript reads.
        r#"218446744073709551616["a"]"#,
        r#"2/admin,00018446744073709551616["a"]"#,
        "31000000000000000000000000000000[]",
        r#"2 12 ["a"]"#,
        r#"2	7["a"]"#,
        r#"2 7["a"]"#,
        r#"2 7 ["a"]"#,
        "2\u{3000}9[\"a\"]",
        "2\u{2028}9[\"a\"]",
        r#"2[12]"#,
        r#"2[0]"#,
        r#"2[-1.5]"#,
        r#"2[1e2,"x"]"#,
        r#"2["__proto__"]"#,
        r#"2["constructor"]"#,
        r#"2["disconnecting"]"#,
        r#"2["removeListener"]"#,
        r#"2["connect_error"]"#,
        r#"2["disconnect"]"#,
        r#"2["conn\u0065ct"]"#,
        r#"2["a",{"__proto__":{"x":1}}]"#,
        r#"2["a\u0000b"]"#,
        r#"2["a"] "#,
        "2[\"a\"]\n",
        r#"2["a"]]"#,
        r#"0{"a":1}}"#,
        r#"4"x"y"#,
        "4[]",
        "41",
        r#"4{}"#,
        r#"3[]"#,
        r#"3{}"#,
        r#"312"#,
        r#"318446744073709551615[]"#,
        r#"39007199254740993[]"#,
        r#"0{"a":1,"a":2}"#,
        r#"5 1-["a"]"#,
        r#"501-["a"]"#,
        r#"50x1-["a"]"#,
        r#"51e0-["a"]"#,
        r#"5+1-["a"]"#,
        r#"51 -["a"]"#,
        r#"5Infinity-["a"]"#,
        r#"510-["a"]"#,
        r#"50.5-["a"]"#,
        r#"5-1-["a"]"#,
        "7",
        "8[]",
        "a",
        "-",
        "/",
    ];
    for s in sio {
        cases.push(Case::sio(format!("extra sio {s:?}"), &[s]));
    }
    let with_bins: &[(&str, &str, usize)] = &[
        ("binary without data", "51-", 1),
        ("binary with namespace only", "51-/a,", 1),
        (
            "binary nested placeholders",
            r#"52-["a",{"x":[{"_placeholder":true,"num":1}]},{"_placeholder":true,"num":0}]"#,
            2,
        ),
        (
            "binary placeholder out of range",
            r#"51-["a",{"_placeholder":true,"num":1}]"#,
            1,
        ),
        (
            "binary placeholder negative",
            r#"51-["a",{"_placeholder":true,"num":-1}]"#,
            1,
        ),
        (
            "binary placeholder num as string",
            r#"51-["a",{"_placeholder":true,"num":"0"}]"#,
            1,
        ),
        (
            "binary placeholder without num",
            r#"51-["a",{"_placeholder":true}]"#,
            1,
        ),
        (
            "binary placeholder false",
            r#"51-["a",{"_placeholder":false,"num":0}]"#,
            1,
        ),
        (
            "binary placeholder 1.0",
            r#"51-["a",{"_placeholder":true,"num":1.0e0}]"#,
            2,
        ),
        (
            "binary placeholder members not visited",
            r#"51-["a",{"_placeholder":true,"num":0,"x":{"_placeholder":true,"num":9}}]"#,
            1,
        ),
        (
            "binary placeholder as event name",
            r#"51-[{"_placeholder":true,"num":0}]"#,
            1,
        ),
        (
            "binary bad placeholder under a key repeated later",
            r#"51-["a",{"k":{"_placeholder":true,"num":9},"k":1}]"#,
            1,
        ),
        (
            "binary bad placeholder under the last of a repeated key",
            r#"51-["a",{"k":1,"k":{"_placeholder":true,"num":9}}]"#,
            1,
        ),
        (
            "binary placeholder key repeated, the last one true",
            r#"51-["a",{"_placeholder":false,"num":0,"_placeholder":true}]"#,
            1,
        ),
        (
            "binary placeholder num above the largest double",
            r#"51-["a",{"_placeholder":true,"num":1e400}]"#,
            1,
        ),
        (
            "binary attachments count above the largest double",
            r#"51e400-["a"]"#,
            1,
        ),
        ("binary ack", r#"61-7[{"_placeholder":true,"num":0}]"#, 1),
        (
            "binary ack without id",
            r#"61-[{"_placeholder":true,"num":0}]"#,
            1,
        ),
        ("binary unused attachment", r#"52-["a"]"#, 2),
        ("binary too few attachments", r#"53-["a"]"#, 2),
    ];
    for (label, s, n) in with_bins {
        let mut msgs = vec![text(s)];
        msgs.extend((0..*n).map(|i| bin(&vec![i as u8; i + 1])));
        cases.push(Case::new(format!("extra {label}"), Kind::SioDecode(msgs)));
    }
    cases.push(Case::new(
        "extra two packets in a row",
        Kind::SioDecode(vec![
            text(&format!(r#"51-["a",{PLACEHOLDER_0}]"#)),
            bin(&[9]),
            text(r#"2["b"]"#),
            bin(&[9]),
        ]),
    ));
    cases.push(Case::new(
        "extra empty attachment",
        Kind::SioDecode(vec![
            text(&format!(r#"51-["a",{PLACEHOLDER_0}]"#)),
            bin(&[]),
        ]),
    ));

    for f in [
        "", "0", "0{}", "1", "1x", "2", "2probe", "3probe", "4", "4😀", "5", "6", "6x", "7", "x",
        " 4", "b", "bAQID", "bAQIDBA", "bAQ=",
    ] {
        cases.push(Case::new(
            format!("extra eio4 ws {f:?}"),
            Kind::Eio4Packet(text(f)),
        ));
    }
    cases.push(Case::new(
        "extra eio4 ws empty binary",
        Kind::Eio4Packet(bin(&[])),
    ));
    for p in [
        "",
        "\u{1e}",
        "4a\u{1e}",
        "4a\u{1e}\u{1e}4b",
        "4a\u{1e}x\u{1e}4b",
        "2probe\u{1e}3\u{1e}6\u{1e}1",
        "4é😀\u{1e}b\u{1e}4",
    ] {
        cases.push(Case::new(
            format!("extra eio4 payload {p:?}"),
            Kind::Eio4Payload(p.into()),
        ));
    }
    for f in [
        "", "0{}", "1", "2probe", "4", "4😀", "6", "7", "x", "b4", "b4AQID",
    ] {
        cases.push(Case::new(
            format!("extra eio3 ws {f:?}"),
            Kind::Eio3Packet(text(f)),
        ));
    }
    cases.push(Case::new(
        "extra eio3 ws binary message only",
        Kind::Eio3Packet(bin(&[4])),
    ));
    for p in [
        "",
        ":",
        "0:0:",
        "1:4",
        "2:4a",
        "02:4a",
        " 2:4a",
        "2 :4a",
        "+2:4a",
        "2.0:4a",
        "2e0:4a",
        "0x2:4a",
        "1.5:4a",
        "-1:4",
        "Infinity:4",
        "x:4",
        "2:4a2",
        "2:4a:",
        "3:4a",
        "1:4a",
        "5:4hello",
        "6:4hello1:2",
        "3:4é😀",
        "4:4é😀",
        "2:4😀",
        "1:72:4a",
        "1:x",
        "5:b4AQI",
        "9:b4AQIDBA",
    ] {
        cases.push(Case::new(
            format!("extra eio3 payload {p:?}"),
            Kind::Eio3Payload(p.into()),
        ));
    }
    let v3_binary: &[(&str, &[u8])] = &[
        ("empty", &[]),
        ("text a", &[0x00, 0x02, 0xff, 0x34, 0x61]),
        (
            "text then binary",
            &[0x00, 0x01, 0xff, 0x32, 0x01, 0x02, 0xff, 0x04, 0x07],
        ),
        (
            "two digits",
            &[
                0x00, 0x01, 0x01, 0xff, 0x34, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38,
                0x39,
            ],
        ),
        ("leading zero digit", &[0x00, 0x00, 0x02, 0xff, 0x34, 0x61]),
        ("no 0xff", &[0x00, 0x02]),
        ("no digits", &[0x00, 0xff, 0x34]),
        ("invalid UTF-8", &[0x00, 0x03, 0xff, 0x34, 0xc3, 0x28]),
        ("emoji", &[0x00, 0x05, 0xff, 0x34, 0xf0, 0x9f, 0x98, 0x80]),
        ("marker 2 is binary", &[0x02, 0x02, 0xff, 0x04, 0x09]),
        ("empty text record", &[0x00, 0x00, 0xff]),
        ("unknown text type", &[0x00, 0x01, 0xff, 0x37]),
    ];
    for (label, b) in v3_binary {
        cases.push(Case::new(
            format!("extra eio3 binary payload {label}"),
            Kind::Eio3BinaryPayload(b.to_vec()),
        ));
    }
    // base64 is decoded as Node decodes it: both alphabets, other characters skipped, the first
    // `=` ends the data, a trailing group too short for a byte dropped
    for (label, frame) in [
        ("length 1 mod 4", "bAQIDB"),
        ("data after padding", "bAQ==AQ=="),
        ("junk after padding", "bAQ=x"),
        ("one character", "bA"),
        ("only padding", "b==="),
        ("url-safe alphabet", "b-_8"),
        ("a star", "bAQ*ID"),
    ] {
        cases.push(Case::new(
            format!("extra base64 {label}"),
            Kind::Eio4Packet(text(frame)),
        ));
    }
    cases.push(Case::new(
        "extra base64 with a space in a payload",
        Kind::Eio4Payload("4a\u{1e}bAQ ID".into()),
    ));
    for (label, frame) in [
        ("length 1 mod 4", "b4AQIDB"),
        ("url-safe", "b4-_8"),
        ("newline", "b4AQ\nID"),
    ] {
        cases.push(Case::new(
            format!("extra eio3 base64 {label}"),
            Kind::Eio3Packet(text(frame)),
        ));
    }
    // 311 length digits: the reference checks for more than 310 before adding one
    let mut b311 = vec![0x00];
    b311.extend(std::iter::repeat_n(0x00, 310));
    b311.extend_from_slice(&[0x01, 0xff, 0x36]);
    cases.push(Case::new(
        "extra eio3 binary payload 311 length digits",
        Kind::Eio3BinaryPayload(b311),
    ));
    cases.extend(json_edge_cases());
    cases
}

/// JSON and number edge cases of the Socket.IO decoder, more v3 framing edge cases.
fn json_edge_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let nested = format!(r#"2["a",{}{}]"#, "[".repeat(126), "]".repeat(126));
    let sio = [
        ("nested 127 levels", nested.as_str()),
        ("raw tab in a string", "2[\"a\tb\"]"),
        ("no-break space after the JSON", "2[\"a\"]\u{a0}"),
        ("BOM as type", "\u{feff}"),
        ("BOM as type, then data", "\u{feff}{}"),
        ("U+180E as type", "\u{180e}"),
        ("fullwidth digit as type", "２[\"a\"]"),
        ("space id then data", "0 {}"),
    ];
    for (label, s) in sio {
        cases.push(Case::sio(format!("json {label}"), &[s]));
    }
    let placeholders = [
        (
            "duplicate _placeholder key",
            r#"51-["a",{"_placeholder":false,"_placeholder":true,"num":0}]"#,
        ),
        ("num -0", r#"51-["a",{"_placeholder":true,"num":-0}]"#),
        (
            "num 1e-400",
            r#"51-["a",{"_placeholder":true,"num":1e-400}]"#,
        ),
    ];
    for (label, s) in placeholders {
        cases.push(Case::new(
            format!("json placeholder {label}"),
            Kind::SioDecode(vec![text(s), bin(&[1])]),
        ));
    }
    cases.push(Case::new(
        "eio4 ws padded 7 chars",
        Kind::Eio4Packet(text("bAQIDBA=")),
    ));
    for p in ["2:4a1:x", "2:4a3:4a", "2:4a2:4😀"] {
        cases.push(Case::new(
            format!("eio3 payload {p:?}"),
            Kind::Eio3Payload(p.into()),
        ));
    }
    // 310 length digits, the most the reference reads (it refuses from 312 on).
    let mut digits = vec![0x00];
    digits.extend(std::iter::repeat_n(0u8, 309));
    digits.extend([0x01, 0xff, 0x36]);
    cases.push(Case::new(
        "eio3 binary payload 310 length digits",
        Kind::Eio3BinaryPayload(digits),
    ));
    cases
}

/// The documented deviations: each case must come out as a known difference.
pub fn known_differences() -> Vec<Case> {
    let mut cases = vec![
        Case::sio("known ack id 1 2", &[r#"21 2["a"]"#]),
        Case::sio("known ack id 1\\t2", &["21\t2[\"a\"]"]),
        Case::sio("known ack id 1\\u00a02 in ack", &["31\u{a0}2[]"]),
        Case::sio("known lone surrogate", &[r#"2["a","\ud800"]"#]),
        Case::sio("known lone low surrogate in name", &[r#"2["\udc00"]"#]),
        Case::sio("known number overflow as name", &["2[1e400]"]),
        Case::sio("known number overflow in data", &[r#"2["a",1e400]"#]),
        Case::sio("known number overflow in auth", &[r#"0{"a":-1e999}"#]),
    ];
    cases.push(Case::new(
        "known placeholder num 0.5",
        Kind::SioDecode(vec![
            text(r#"51-["a",{"_placeholder":true,"num":0.5}]"#),
            bin(&[1]),
        ]),
    ));
    let deep = |n: usize| format!("2[\"a\",{}1{}]", "[".repeat(n), "]".repeat(n));
    cases.push(Case::sio("known JSON 128 levels deep", &[&deep(127)]));
    cases.push(Case::sio("known JSON 200 levels deep", &[&deep(200)]));
    cases.push(Case::new(
        "known binary JSON 200 levels deep",
        Kind::SioDecode(vec![
            text(&format!(
                "51-[\"a\",{}{{\"_placeholder\":true,\"num\":0}}{}]",
                "[".repeat(200),
                "]".repeat(200)
            )),
            bin(&[1]),
        ]),
    ));
    // Node reads the byte 10 as the digits "1" "0", and then also skips one byte too many.
    let mut ten = vec![0x00, 0x0a, 0xff, 0x00];
    ten.extend_from_slice(b"4abcdefghi");
    cases.push(Case::new(
        "known v3 binary length digit 10",
        Kind::Eio3BinaryPayload(ten),
    ));
    cases.push(Case::new(
        "known v3 binary length past the end",
        Kind::Eio3BinaryPayload(vec![0x00, 0x09, 0xff, 0x34, 0x61]),
    ));
    cases
}

/// Packets for the encoders: each side encodes, the other decodes.
pub fn encode_cases() -> Vec<Case> {
    let b = |s: &str| json!({ "$bin": s });
    let sio: Vec<(&str, Value)> = vec![
        ("connect", json!({"type": 0, "nsp": "/"})),
        (
            "connect auth",
            json!({"type": 0, "nsp": "/", "data": {"token": "123"}}),
        ),
        ("connect admin", json!({"type": 0, "nsp": "/admin"})),
        (
            "connect admin auth",
            json!({"type": 0, "nsp": "/admin", "data": {"token": "abc"}}),
        ),
        ("disconnect", json!({"type": 1, "nsp": "/"})),
        ("disconnect admin", json!({"type": 1, "nsp": "/admin"})),
        ("event", json!({"type": 2, "nsp": "/", "data": ["foo"]})),
        (
            "event admin",
            json!({"type": 2, "nsp": "/admin", "data": ["bar"]}),
        ),
        (
            "event id",
            json!({"type": 2, "nsp": "/", "id": 12, "data": ["foo"]}),
        ),
        (
            "event id 0",
            json!({"type": 2, "nsp": "/", "id": 0, "data": ["foo"]}),
        ),
        (
            "event id 2^53-1",
            json!({"type": 2, "nsp": "/x", "id": 9007199254740991_u64, "data": ["foo"]}),
        ),
        (
            "event values",
            json!({"type": 2, "nsp": "/", "data": ["a", 1, -2, 0.5, -2.75, true, false, null, {"b": [true, null, "é😀"]}, []]}),
        ),
        (
            "event escapes",
            json!({"type": 2, "nsp": "/", "data": ["x", "\u{0}\u{1f}\u{7f}\u{2028}\"\\/\n\t"]}),
        ),
        (
            "event numeric name",
            json!({"type": 2, "nsp": "/", "data": [12, "numeric name"]}),
        ),
        (
            "event odd namespace",
            json!({"type": 2, "nsp": "/a b/ä😀", "data": ["x"]}),
        ),
        (
            "ack",
            json!({"type": 3, "nsp": "/", "id": 12, "data": ["bar"]}),
        ),
        (
            "ack admin",
            json!({"type": 3, "nsp": "/admin", "id": 13, "data": ["bar"]}),
        ),
        (
            "ack empty",
            json!({"type": 3, "nsp": "/", "id": 12, "data": []}),
        ),
        (
            "connect_error",
            json!({"type": 4, "nsp": "/random", "data": {"message": "Invalid namespace"}}),
        ),
        (
            "connect_error string",
            json!({"type": 4, "nsp": "/admin", "data": "denied"}),
        ),
        (
            "binary event",
            json!({"type": 2, "nsp": "/", "data": ["baz", b("AQIDBA==")]}),
        ),
        (
            "binary event two",
            json!({"type": 2, "nsp": "/admin", "data": ["baz", b("AQIDBA=="), b("BQY=")]}),
        ),
        (
            "binary event id",
            json!({"type": 2, "nsp": "/", "id": 4, "data": ["baz", b("AQ==")]}),
        ),
        (
            "binary ack",
            json!({"type": 3, "nsp": "/", "id": 15, "data": ["bar", b("AQIDBA==")]}),
        ),
        (
            "binary nested",
            json!({"type": 2, "nsp": "/", "data": ["n", {"a": [b("AQ=="), {"b": b("Ag==")}], "c": b("Aw=="), "d": 1}]}),
        ),
        (
            "binary empty buffer",
            json!({"type": 2, "nsp": "/", "data": ["e", b("")]}),
        ),
        (
            "binary ack only buffers",
            json!({"type": 3, "nsp": "/q", "id": 1, "data": [b("/w=="), b("AAA=")]}),
        ),
    ];
    let mut cases: Vec<Case> = sio
        .into_iter()
        .map(|(label, p)| Case::new(format!("encode sio {label}"), Kind::SioEncode(p)))
        .collect();

    let t = engine_text_packet;
    let eng: Vec<(&str, Vec<Value>)> = vec![
        ("empty", vec![]),
        (
            "hello + binary",
            vec![
                t("message", Some("hello")),
                engine_bin_packet("message", &[1, 2, 3, 4]),
            ],
        ),
        (
            "test1-3",
            vec![
                t("message", Some("test1")),
                t("message", Some("test2")),
                t("message", Some("test3")),
            ],
        ),
        ("euro", vec![t("message", Some("€"))]),
        ("emoji", vec![t("message", Some("😀 é"))]),
        (
            "euro + binary",
            vec![
                t("message", Some("€")),
                engine_bin_packet("message", &[1, 2, 3]),
            ],
        ),
        (
            "binary 01 02 03",
            vec![engine_bin_packet("message", &[1, 2, 3])],
        ),
        ("empty binary", vec![engine_bin_packet("message", &[])]),
        ("empty message", vec![t("message", Some(""))]),
        (
            "control packets",
            vec![
                t("ping", Some("probe")),
                t("pong", Some("probe")),
                t("ping", None),
                t("noop", None),
                t("upgrade", None),
                t("close", None),
            ],
        ),
        (
            "open",
            vec![t(
                "open",
                Some(
                    r#"{"sid":"a","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000}"#,
                ),
            )],
        ),
        (
            "long",
            vec![
                t("message", Some(&"x".repeat(1234))),
                engine_bin_packet("message", &[7; 300]),
            ],
        ),
    ];
    cases.extend(
        eng.into_iter()
            .map(|(label, p)| Case::new(format!("encode engine {label}"), Kind::EngineEncode(p))),
    );
    cases
}
