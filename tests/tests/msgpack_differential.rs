//! Differential tests of the msgpack parser's codec against the npm package
//! `socket.io-msgpack-parser` 3.0.2 (notepack.io) under Node (`tests/node/msgpack-oracle.js`).
//!
//! Generated packets (every type, namespaces, ack ids up to 2^64 - 1, numbers of every msgpack
//! width, floats, strings with escapes and non-ASCII text, nested arrays and maps, binary values
//! of every length class) are encoded by Ferrio; the npm decoder must read each frame as the same
//! packet, and the npm encoder, given the object notepack.io decodes, must write the very same
//! bytes. Then each frame is mutated (truncated, a byte changed, a byte inserted) and both
//! decoders must agree: both refuse, or both accept the same packet. The few deliberate
//! differences (Ferrio is stricter: an EVENT needs a name, an ack id is not negative, a map
//! written as a placeholder must name a binary value) are recognised precisely and counted
//! apart; anything else fails the test.
//!
//! Run `npm ci` in `tests/node` first.

use base64::Engine as _;
use bytes::Bytes;
use ferrio_proto::socket::{Packet, PacketType, Parser, RawJson};
use serde_json::{json, Map, Value};

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn number(rng: &mut Rng) -> Value {
    match rng.below(8) {
        0 => json!(rng.below(128)),
        1 => json!(-(rng.below(32) as i64) - 1),
        2 => json!(rng.below(1 << 16)),
        3 => json!(rng.next()),
        4 => json!(-(rng.below(1 << 62) as i64)),
        5 => json!((rng.below(1 << 40) as f64) / 7.0 + 0.5),
        6 => json!(-((rng.below(1000) as f64) / 8.0 + 0.125)),
        _ => json!(rng.below(1 << 33)),
    }
}

fn string(rng: &mut Rng) -> String {
    const PARTS: [&str; 8] = ["a", "héllo", "\"", "\\", "\n", "\u{1}", "日本", "🎉"];
    let len = match rng.below(6) {
        0 => 40,
        1 => 0,
        _ => rng.below(6) as usize,
    };
    (0..len)
        .map(|_| PARTS[rng.below(PARTS.len() as u64) as usize])
        .collect()
}

/// A random JSON value whose binary values are placeholders into `attachments`.
fn value(rng: &mut Rng, depth: u32, attachments: &mut Vec<Bytes>) -> Value {
    let leaf = depth >= 4 || rng.below(3) == 0;
    match rng.below(if leaf { 5 } else { 7 }) {
        0 => Value::Null,
        1 => json!(rng.below(2) == 0),
        2 => number(rng),
        3 => json!(string(rng)),
        4 => {
            let len = match rng.below(5) {
                0 => 300,
                1 => 0,
                _ => rng.below(20) as usize,
            };
            attachments.push(Bytes::from(rng.bytes(len)));
            json!({ "_placeholder": true, "num": attachments.len() - 1 })
        }
        5 => Value::Array(
            (0..rng.below(5))
                .map(|_| value(rng, depth + 1, attachments))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.below(5))
                .map(|i| {
                    (
                        format!("k{i}{}", string(rng)),
                        value(rng, depth + 1, attachments),
                    )
                })
                .collect::<Map<_, _>>(),
        ),
    }
}

fn raw(v: &Value) -> RawJson {
    RawJson::parse(v.to_string()).expect("valid JSON")
}

fn packet(rng: &mut Rng) -> Packet {
    let nsp = ["/", "/chat", "/ü"][rng.below(3) as usize];
    let mut attachments = Vec::new();
    let id = match rng.below(3) {
        0 => u64::MAX - rng.below(3),
        _ => rng.below(1000),
    };
    let args = |rng: &mut Rng, attachments: &mut Vec<Bytes>| {
        (0..rng.below(4))
            .map(|_| value(rng, 1, attachments))
            .collect::<Vec<_>>()
    };
    match rng.below(6) {
        0 => Packet::connect(nsp, None),
        1 => {
            let auth = json!({ "token": string(rng), "n": number(rng) });
            Packet::connect(nsp, Some(raw(&auth)))
        }
        2 => Packet::disconnect(nsp),
        3 => {
            let mut data = vec![json!(format!("ev{}", string(rng)))];
            data.extend(args(rng, &mut attachments));
            let p = Packet::event(nsp, raw(&Value::Array(data)), attachments);
            if rng.below(2) == 0 {
                p.with_id(id)
            } else {
                p
            }
        }
        4 => {
            let data = Value::Array(args(rng, &mut attachments));
            Packet::ack(nsp, id, raw(&data), attachments)
        }
        _ => {
            let data = if rng.below(2) == 0 {
                json!(string(rng))
            } else {
                json!({ "message": string(rng), "data": { "code": number(rng) } })
            };
            Packet::connect_error(nsp, raw(&data))
        }
    }
}

/// Placeholders replaced by `{"$bin": <base64>}`, as the oracle renders binary values.
fn with_binary(v: Value, attachments: &[Bytes]) -> Value {
    match v {
        Value::Object(map) if map.get("_placeholder") == Some(&json!(true)) && map.len() == 2 => {
            let num = map.get("num").and_then(Value::as_u64).unwrap_or(u64::MAX);
            let bin = attachments
                .get(num as usize)
                .map(|b| base64::engine::general_purpose::STANDARD.encode(b))
                .unwrap_or_default();
            json!({ "$bin": bin })
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, with_binary(v, attachments)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| with_binary(v, attachments))
                .collect(),
        ),
        other => other,
    }
}

/// A packet as the oracle renders one.
fn render(p: &Packet) -> Value {
    let kind = match p.kind() {
        PacketType::BinaryEvent => 2,
        PacketType::BinaryAck => 3,
        k => k as u8,
    };
    let mut out = json!({ "type": kind, "nsp": p.nsp().as_str() });
    if let Some(id) = p.id() {
        out["id"] = json!(id.as_u64().expect("a u64 id"));
    }
    if let Some(data) = p.data() {
        let v: Value = serde_json::from_str(data.as_str()).expect("valid JSON");
        out["data"] = with_binary(v, p.attachments());
    }
    out
}

/// JSON equality with numbers compared as IEEE doubles, as JavaScript holds them.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// True when every integer of `v` is one a JavaScript number holds exactly (|n| <= 2^53).
fn exact_in_javascript(v: &Value) -> bool {
    const MAX: u64 = 1 << 53;
    match v {
        Value::Number(n) => n
            .as_u64()
            .map(|n| n <= MAX)
            .or_else(|| n.as_i64().map(|n| n.unsigned_abs() <= MAX))
            .unwrap_or(true),
        Value::Array(a) => a.iter().all(exact_in_javascript),
        Value::Object(m) => m.values().all(exact_in_javascript),
        _ => true,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

fn oracle(ops: &[Value]) -> Vec<Value> {
    let input = serde_json::to_vec(ops).expect("JSON");
    let out = ferrio_tests::run_node_script("msgpack-oracle.js", &input);
    serde_json::from_slice(&out).expect("the oracle's JSON")
}

fn ferrio_decode(frame: &[u8]) -> Option<Packet> {
    Parser::msgpack()
        .decoder(10)
        .decode_binary(Bytes::copy_from_slice(frame))
        .ok()
        .flatten()
}

/// Why Ferrio may refuse a packet the reference accepts (Ferrio is stricter there).
fn deviation(node: &Value) -> Option<&'static str> {
    fn has_placeholder_key(v: &Value) -> bool {
        match v {
            Value::Object(m) => {
                m.contains_key("_placeholder") || m.values().any(has_placeholder_key)
            }
            Value::Array(a) => a.iter().any(has_placeholder_key),
            _ => false,
        }
    }
    let data = &node["data"];
    if node["type"] == json!(2) {
        let first = data.get(0);
        let named = match first {
            Some(Value::String(s)) => !ferrio_proto::socket::is_reserved_event(s),
            Some(Value::Number(_)) => true,
            _ => false,
        };
        if !named {
            return Some("an EVENT without a name");
        }
    }
    if node["id"].as_f64().is_some_and(|id| id < 0.0) {
        return Some("a negative ack id");
    }
    if has_placeholder_key(data) {
        return Some("a map written as a placeholder");
    }
    None
}

fn unhex(h: &str) -> Vec<u8> {
    let h: String = h.split_whitespace().collect();
    (0..h.len() / 2)
        .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// Frames written by hand: `{type: 2, nsp: "/", data: [...]}` around `items`, and whole frames.
fn directed() -> Vec<String> {
    // 83 a4 "type" 02 a3 "nsp" a1 "/" a4 "data" 9N
    let event = |n: usize, items: &str| {
        format!(
            "83a47479706502a36e7370a12fa464617461{:02x}{items}",
            0x90 + n
        )
    };
    let mut frames = vec![
        // The captured pairs of the ecosystem notes (namespace /chat).
        "83a474797065 04 a464617461 82 a76d657373616765 ac756e617574686f72697a6564 a464617461 d40000 a36e7370 a52f63686174".to_owned(),
        "83a474797065 00 a464617461 82 a3736964 b4654632504a4d6d4a4e645234534a413341414142 a3706964 d40000 a36e7370 a52f63686174".to_owned(),
        "83a474797065 02 a464617461 93 a362696e c402dead 85 a16e ff a3626967 cf0000000100000000 a166 cb3fd0000000000000 a36e696c c0 a174 c3 a36e7370 a52f63686174".to_owned(),
        "85a474797065 02 a464617461 93 a36d7367 a668c3a96c6c6f c703000102 03 a76f7074696f6e73 81 a8636f6d7072657373 c3 a26964 00 a36e7370 a52f63686174".to_owned(),
        "84a26964 00 a474797065 03 a464617461 92 a461636b21 cb3ff8000000000000 a36e7370 a52f63686174".to_owned(),
        "82a474797065 01 a36e7370 a52f63686174".to_owned(),
        // type as a float, id as a float, keys repeated (the last one counts), unknown keys.
        "83a474797065 cb4000000000000000 a36e7370 a12f a464617461 91 a161".to_owned(),
        "84a474797065 02 a36e7370 a12f a464617461 91 a161 a26964 cb4014000000000000".to_owned(),
        "84a474797065 01 a474797065 02 a36e7370 a12f a464617461 91 a161".to_owned(),
        "84a474797065 02 a36e7370 a12f a464617461 91 a161 a3787878 92 c0 c402 0102".to_owned(),
        // Refused by both: a string type, a missing namespace, DISCONNECT with data, trailing bytes.
        "83a474797065 a132 a36e7370 a12f a464617461 91 a161".to_owned(),
        "82a474797065 02 a464617461 91 a161".to_owned(),
        "83a474797065 01 a36e7370 a12f a464617461 80".to_owned(),
        "82a474797065 01 a36e7370 a12f 00".to_owned(),
        // Deliberate differences: no event name, a negative id, a map written as a placeholder.
        event(0, ""),
        event(1, "c3"),
        "84a474797065 02 a36e7370 a12f a464617461 91 a161 a26964 ff".to_owned(),
        event(2, "a161 82 ac5f706c616365686f6c646572 c3 a36e756d 00"),
    ];
    // Values: dates (notepack's own, timestamp 32 / 64 / 96), undefined, other exts, float 32,
    // str 8 / 16, bin 16, array 16, map 16, integer / nil / boolean keys, invalid UTF-8.
    for items in [
        "d700 0000000000000000",
        "d700 ffffffffffffffff",
        "d6ff 5f5e1000",
        "d7ff 0000000400000001",
        "c70cff 00000001 0000000000000002",
        "d40000",
        "d40501",
        "d5050102",
        "d8050102030405060708090a0b0c0d0e0f10",
        "c70105 aa",
        "c70300 010203",
        "c8000300 010203",
        "ca3fc00000",
        "ca7f800000",
        "cb7ff8000000000000",
        &format!("d9{:02x}{}", 40, "61".repeat(40)),
        &format!("da{:04x}{}", 300, "62".repeat(300)),
        &format!("c5{:04x}{}", 300, "07".repeat(300)),
        "dc0002 01 02",
        "de0001 a161 01",
        "83 01 a161 c0 a162 c3 a163",
        "a3 ff fe 61",
        "a4 e6 97 a5 e6",
    ] {
        frames.push(event(2, &format!("a161 {items}")));
    }
    frames
}

#[test]
fn ferrio_and_the_npm_msgpack_parser_agree() {
    let mut rng = Rng(0x5EED_3A9B_2026_0001);
    let packets: Vec<Packet> = (0..400).map(|_| packet(&mut rng)).collect();
    let frames: Vec<Bytes> = packets
        .iter()
        .map(|p| Parser::msgpack().encode(p).binary()[0].clone())
        .collect();

    // Ferrio's frames, read and written again by the reference.
    let mut ops = Vec::new();
    for f in &frames {
        ops.push(json!({ "op": "decode", "hex": hex(f) }));
        ops.push(json!({ "op": "encode", "hex": hex(f) }));
    }
    // Mutated frames, decoded by both.
    let mut mutated: Vec<Vec<u8>> = Vec::new();
    for f in &frames {
        for m in 0..3 {
            let mut b = f.to_vec();
            let at = rng.below(b.len() as u64) as usize;
            match m {
                0 => b.truncate(at),
                1 => b[at] = rng.next() as u8,
                _ => b.insert(at, rng.next() as u8),
            }
            mutated.push(b);
        }
    }
    // Directed frames: the captured ones, and the corners of the format.
    mutated.extend(directed().into_iter().map(|h| unhex(&h)));
    for b in &mutated {
        ops.push(json!({ "op": "decode", "hex": hex(b) }));
    }
    let results = oracle(&ops);
    assert_eq!(results.len(), ops.len());

    let mut problems = Vec::new();
    let mut written_alike = 0;
    for (i, (p, f)) in packets.iter().zip(&frames).enumerate() {
        let decoded = &results[2 * i];
        let expected = render(p);
        if !decoded.get("packet").is_some_and(|n| same(n, &expected)) {
            problems.push(format!(
                "encode {i}: {} read by Node as {decoded}, expected {expected}",
                hex(f)
            ));
        }
        // Written again from JavaScript numbers: only when every integer is one exactly.
        let again = &results[2 * i + 1];
        if exact_in_javascript(&expected) {
            if again["hex"] == json!(hex(f)) {
                written_alike += 1;
            } else {
                problems.push(format!(
                    "encode {i}: ours {} but Node writes {again}",
                    hex(f)
                ));
            }
        }
    }
    let (mut agreed, mut both_refused, mut deviations) = (0, 0, 0);
    for (b, node) in mutated.iter().zip(&results[2 * frames.len()..]) {
        let ours = ferrio_decode(b);
        match (ours, node.get("packet")) {
            (None, None) => both_refused += 1,
            (Some(p), Some(n)) if same(&render(&p), n) => agreed += 1,
            (None, Some(n)) if deviation(n).is_some() => deviations += 1,
            (ours, _) => problems.push(format!(
                "decode {}: Ferrio {:?}, Node {node}",
                hex(b),
                ours.as_ref().map(render)
            )),
        }
    }
    eprintln!(
        "{} frames read alike by Node, {written_alike} written alike; {} mutated or directed: \
         {agreed} read alike, {both_refused} refused by both, {deviations} deliberate differences",
        frames.len(),
        mutated.len()
    );
    assert!(
        written_alike > 200 && agreed > 100 && both_refused > 100 && deviations >= 3,
        "too few cases of each kind"
    );
    assert!(
        problems.is_empty(),
        "{} disagreement(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}
