//! The harness of the differential parser tests: cases, the Node.js oracle, Ferrio's side, and
//! the comparison.

mod cases;
mod generate;

pub use cases::*;
pub use generate::generated_cases;

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use bytes::Bytes;
use ferrio_proto::engine::{self, Protocol};
use ferrio_proto::socket::{self, Packet, PacketType, RawJson};
use ferrio_proto::Str;
use serde_json::{json, Map, Value};

/// Standard base64, as the oracle writes it.
pub const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// One Engine.IO message given to a decoder: text, or binary data.
#[derive(Clone, Debug)]
pub enum Msg {
    /// A text message.
    Text(String),
    /// A binary message.
    Bin(Vec<u8>),
}

impl Msg {
    fn to_json(&self) -> Value {
        match self {
            Msg::Text(s) => Value::String(s.clone()),
            Msg::Bin(b) => json!({ "bin": B64.encode(b) }),
        }
    }
}

impl fmt::Display for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Msg::Text(s) => write!(f, "{s:?}"),
            Msg::Bin(b) => write!(f, "<binary {}>", hex(b)),
        }
    }
}

/// Bytes as space-separated hex.
pub fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a case exercises.
#[derive(Clone, Debug)]
pub enum Kind {
    /// Socket.IO: messages fed in order to one fresh decoder.
    SioDecode(Vec<Msg>),
    /// Socket.IO: a packet (`{type, nsp, id?, data?}`, `{"$bin": …}` for buffers) encoded by both
    /// encoders; each side decodes the other's output.
    SioEncode(Value),
    /// Engine.IO v4: one WebSocket frame.
    Eio4Packet(Msg),
    /// Engine.IO v4: a polling payload.
    Eio4Payload(String),
    /// Engine.IO v3: one WebSocket frame.
    Eio3Packet(Msg),
    /// Engine.IO v3: a text polling payload.
    Eio3Payload(String),
    /// Engine.IO v3: a binary polling payload.
    Eio3BinaryPayload(Vec<u8>),
    /// Engine.IO: packets (`{type, data?}`) encoded as a v4 payload, a v3 text payload and a v3
    /// binary payload by both sides.
    EngineEncode(Vec<Value>),
}

/// One case: a label (unique) and what to run.
#[derive(Clone, Debug)]
pub struct Case {
    /// A unique name, printed with any difference.
    pub label: String,
    /// The inputs.
    pub kind: Kind,
}

impl Case {
    /// A case with the given label.
    pub fn new(label: impl Into<String>, kind: Kind) -> Case {
        Case {
            label: label.into(),
            kind,
        }
    }

    /// A Socket.IO decoder case from text messages only.
    pub fn sio(label: impl Into<String>, msgs: &[&str]) -> Case {
        Case::new(
            label,
            Kind::SioDecode(msgs.iter().map(|s| Msg::Text(s.to_string())).collect()),
        )
    }

    fn input(&self) -> String {
        match &self.kind {
            Kind::SioDecode(msgs) => msgs
                .iter()
                .map(Msg::to_string)
                .collect::<Vec<_>>()
                .join(" + "),
            Kind::SioEncode(p) => p.to_string(),
            Kind::Eio4Packet(m) | Kind::Eio3Packet(m) => m.to_string(),
            Kind::Eio4Payload(s) | Kind::Eio3Payload(s) => format!("{s:?}"),
            Kind::Eio3BinaryPayload(b) => format!("<{}>", hex(b)),
            Kind::EngineEncode(p) => Value::Array(p.clone()).to_string(),
        }
    }
}

/// A documented, deliberate difference: Ferrio refuses what the reference accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deviation {
    /// An ack id with white space between its digits (JavaScript reads `NaN`).
    AckIdWhiteSpace,
    /// A placeholder whose `num` is not an integer (JavaScript puts `undefined` in its place).
    PlaceholderNotInteger,
    /// JSON that `JSON.parse` accepts and serde_json refuses: lone surrogate escapes, numbers
    /// beyond the range of a double. Ferrio's decoder accepts it too, but its data cannot be read
    /// as a `serde_json::Value` (this test's view of a packet).
    JsonSerdeRefuses,
    /// JSON nested deeper than `ferrio_proto::socket::MAX_JSON_DEPTH` (Ferrio bounds recursion).
    JsonTooDeep,
    /// A v3 binary payload whose length digits are not bytes 0–9, or whose length goes past the
    /// end of the body (Node reads the digits' decimal text, and truncates).
    V3BinaryFraming,
}

/// How a case came out.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Both sides agree.
    Agree,
    /// A documented deviation.
    Deviation(Deviation),
    /// Any other difference (the text explains it).
    Mismatch(String),
}

/// The outcomes of a run.
pub struct Report {
    outcomes: Vec<(String, String, Outcome)>,
    by_label: HashMap<String, usize>,
    /// One line per mismatch: label, input, Node's result, Ferrio's.
    pub mismatches: Vec<String>,
}

impl Report {
    /// The outcome of the case with this label.
    pub fn outcome(&self, label: &str) -> Option<&Outcome> {
        self.by_label.get(label).map(|&i| &self.outcomes[i].2)
    }

    /// Prints the counts, every deviation and every mismatch.
    pub fn print(&self) {
        let agree = self
            .outcomes
            .iter()
            .filter(|o| matches!(o.2, Outcome::Agree))
            .count();
        for (label, input, outcome) in &self.outcomes {
            if let Outcome::Deviation(d) = outcome {
                println!("known difference {d:?}: {label}: {input}");
            }
        }
        for m in &self.mismatches {
            println!("MISMATCH {m}");
        }
        let deviations = self
            .outcomes
            .iter()
            .filter(|o| matches!(o.2, Outcome::Deviation(_)))
            .count();
        println!(
            "{} cases: {agree} agree, {deviations} known differences, {} mismatches",
            self.outcomes.len(),
            self.mismatches.len()
        );
    }
}

/// Runs every case through the oracle and through Ferrio, and compares.
pub fn run_cases(cases: &[Case]) -> Report {
    let mut labels = HashMap::new();
    for (i, c) in cases.iter().enumerate() {
        if let Some(prev) = labels.insert(c.label.clone(), i) {
            panic!("duplicate case label {:?} (cases {prev} and {i})", c.label);
        }
    }
    let mut ops = Vec::new();
    let mut spans = Vec::new();
    for c in cases {
        let start = ops.len();
        ops.extend(node_ops(&c.kind));
        spans.push(start..ops.len());
    }
    let results = run_oracle(&ops);
    let mut report = Report {
        outcomes: Vec::new(),
        by_label: labels,
        mismatches: Vec::new(),
    };
    for (c, span) in cases.iter().zip(spans) {
        let js = &results[span];
        let outcome = compare(&c.kind, js);
        if let Outcome::Mismatch(why) = &outcome {
            report
                .mismatches
                .push(format!("{}: input {}\n    {why}", c.label, c.input()));
        }
        report.outcomes.push((c.label.clone(), c.input(), outcome));
    }
    report
}

/// Sends the operations to `parser-oracle.js` and returns its results, one per operation.
pub fn run_oracle(ops: &[Value]) -> Vec<Value> {
    let input = serde_json::to_vec(ops).expect("serialises");
    let out = ferrio_tests::run_node_script("parser-oracle.js", &input);
    let results: Vec<Value> = serde_json::from_slice(&out).unwrap_or_else(|e| {
        panic!(
            "parser-oracle.js wrote invalid JSON ({e}): {}",
            String::from_utf8_lossy(&out)
        )
    });
    assert_eq!(results.len(), ops.len(), "one oracle result per operation");
    results
}

fn node_ops(kind: &Kind) -> Vec<Value> {
    let msgs = |m: &[Msg]| Value::Array(m.iter().map(Msg::to_json).collect());
    match kind {
        Kind::SioDecode(m) => vec![json!({"op": "sio-decode", "msgs": msgs(m)})],
        Kind::SioEncode(p) => {
            // Node encodes the packet; Node decodes Ferrio's encoding.
            let ours = ours_sio_encode(p);
            vec![
                json!({"op": "sio-encode", "packet": p}),
                json!({"op": "sio-decode", "msgs": msgs(&ours)}),
            ]
        }
        Kind::Eio4Packet(m) => vec![json!({"op": "eio4-decodePacket", "input": m.to_json()})],
        Kind::Eio4Payload(s) => vec![json!({"op": "eio4-decodePayload", "input": s})],
        Kind::Eio3Packet(m) => vec![json!({"op": "eio3-decodePacket", "input": m.to_json()})],
        Kind::Eio3Payload(s) => vec![json!({"op": "eio3-decodePayload", "input": s})],
        Kind::Eio3BinaryPayload(b) => vec![json!({
            "op": "eio3-decodePayloadAsBinary",
            "input": {"bin": B64.encode(b)},
        })],
        Kind::EngineEncode(p) => vec![
            json!({"op": "eio4-encodePayload", "packets": p}),
            json!({"op": "eio3-encodePayload", "packets": p}),
            json!({"op": "eio3-encodePayloadAsBinary", "packets": p}),
        ],
    }
}

fn compare(kind: &Kind, js: &[Value]) -> Outcome {
    for r in js {
        if let Some(e) = r.get("exception") {
            return Outcome::Mismatch(format!("the oracle threw: {e}"));
        }
    }
    match kind {
        Kind::SioDecode(msgs) => compare_sio_decode(msgs, &js[0]),
        Kind::SioEncode(p) => compare_sio_encode(p, &js[0], &js[1]),
        Kind::Eio4Packet(m) => {
            let ours = vec![ours_engine_frame(m, Protocol::V4)];
            compare_engine_list(&ours, &[js[0]["packet"].clone()], None)
        }
        Kind::Eio4Payload(s) => {
            let ours: Vec<_> = engine::decode_payload(Str::from(s.as_str())).collect();
            let js = as_array(&js[0]["packets"]);
            compare_engine_list(&ours, &js, None)
        }
        Kind::Eio3Packet(m) => {
            let ours = vec![ours_engine_frame(m, Protocol::V3)];
            compare_engine_list(&ours, &[js[0]["packet"].clone()], None)
        }
        Kind::Eio3Payload(s) => {
            let ours = engine::decode_payload_v3(&Str::from(s.as_str()));
            compare_engine_all_or_nothing(ours, &as_array(&js[0]["packets"]), None)
        }
        Kind::Eio3BinaryPayload(b) => {
            let ours = engine::decode_payload_v3_binary(Bytes::from(b.clone()));
            let framing = matches!(ours, Err(engine::DecodeError::InvalidLength))
                && v3_binary_framing_is_lenient_only(b);
            compare_engine_all_or_nothing(
                ours,
                &as_array(&js[0]["packets"]),
                framing.then_some(Deviation::V3BinaryFraming),
            )
        }
        Kind::EngineEncode(p) => compare_engine_encode(p, &js[0], &js[1], &js[2]),
    }
}

fn as_array(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

// --- value comparison ------------------------------------------------------------------------

/// JSON equality with numbers compared as doubles (JavaScript has no other number) and object
/// members compared regardless of order.
pub fn same(a: &Value, b: &Value) -> bool {
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

// --- Socket.IO -------------------------------------------------------------------------------

/// What a decoder produced for one message.
#[derive(Debug)]
enum SioEvent {
    Packet(Result<Value, String>),
    Error(socket::DecodeError),
}

/// The reference's message for each of Ferrio's decode errors that it has a counterpart for.
fn js_message(e: &socket::DecodeError) -> Option<&'static str> {
    use socket::DecodeError::*;
    Some(match e {
        UnknownPacketType => "unknown packet type",
        IllegalAttachments => "Illegal attachments",
        TooManyAttachments { .. } => "too many attachments",
        InvalidPayload => "invalid payload",
        UnexpectedText => "got plaintext data when reconstructing a packet",
        UnexpectedBinary => "got binary data when not reconstructing a packet",
        InvalidPlaceholder => "illegal attachments",
        _ => return None,
    })
}

/// Ferrio's decoder over the messages, stopping at the first error like the oracle.
fn ours_sio_decode(msgs: &[Msg]) -> (Vec<SioEvent>, bool) {
    let mut d = socket::Decoder::new();
    let mut events = Vec::new();
    for m in msgs {
        let r = match m {
            Msg::Text(s) => d.decode_text(Str::from(s.as_str())),
            Msg::Bin(b) => d.decode_binary(Bytes::from(b.clone())),
        };
        match r {
            Ok(Some(p)) => events.push(SioEvent::Packet(ours_sio_view(&p))),
            Ok(None) => {}
            Err(e) => {
                events.push(SioEvent::Error(e));
                break;
            }
        }
    }
    (events, d.is_reconstructing())
}

/// A decoded packet as the oracle renders the reference's: the type after reconstruction
/// (BINARY_EVENT reads as EVENT, BINARY_ACK as ACK), placeholders replaced by `{"$bin": …}`.
fn ours_sio_view(p: &Packet) -> Result<Value, String> {
    let binary = matches!(p.kind(), PacketType::BinaryEvent | PacketType::BinaryAck);
    let kind = match p.kind() {
        PacketType::BinaryEvent => PacketType::Event,
        PacketType::BinaryAck => PacketType::Ack,
        k => k,
    };
    let mut o = Map::new();
    o.insert("type".into(), (kind as u8).into());
    o.insert("nsp".into(), p.nsp().as_str().into());
    if let Some(id) = p.id() {
        // Beyond `u64` Ferrio keeps the digits; JavaScript reads the nearest double.
        let id = match id.as_u64() {
            Some(n) => Value::from(n),
            None => Value::from(id.to_string().parse::<f64>().unwrap_or(f64::NAN)),
        };
        o.insert("id".into(), id);
    }
    if let Some(d) = p.data() {
        let v = d
            .to_value()
            .map_err(|e| format!("data {d} does not parse with serde_json: {e}"))?;
        let v = if binary {
            reconstruct(v, p.attachments())
        } else {
            v
        };
        o.insert("data".into(), truncate(v, 0));
    }
    Ok(Value::Object(o))
}

/// The reference's `reconstructPacket`: placeholder objects become the attachment they name.
fn reconstruct(v: Value, atts: &[Bytes]) -> Value {
    match v {
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|x| reconstruct(x, atts)).collect())
        }
        Value::Object(map) => {
            if map.get("_placeholder") == Some(&Value::Bool(true)) {
                let att = map
                    .get("num")
                    .and_then(Value::as_f64)
                    .filter(|n| n.fract() == 0.0 && *n >= 0.0)
                    .and_then(|n| atts.get(n as usize));
                match att {
                    Some(b) => json!({ "$bin": B64.encode(b) }),
                    None => json!({ "$invalid placeholder": Value::Object(map) }),
                }
            } else {
                Value::Object(
                    map.into_iter()
                        .map(|(k, x)| (k, reconstruct(x, atts)))
                        .collect(),
                )
            }
        }
        other => other,
    }
}

/// Replaces what is nested deeper than the oracle renders with `{"$deep": true}`, as it does.
fn truncate(v: Value, depth: usize) -> Value {
    const MAX_DEPTH: usize = 100;
    if depth > MAX_DEPTH {
        return json!({"$deep": true});
    }
    match v {
        Value::Array(a) => Value::Array(a.into_iter().map(|x| truncate(x, depth + 1)).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, x)| (k, truncate(x, depth + 1)))
                .collect(),
        ),
        other => other,
    }
}

/// The oracle's packet with what carries no information dropped (`data: undefined`).
fn js_sio_view(p: &Value) -> Value {
    let mut p = p.clone();
    if let Some(o) = p.as_object_mut() {
        if o.get("data") == Some(&json!({"$undefined": true})) {
            o.remove("data");
        }
    }
    p
}

fn describe_ours(events: &[SioEvent]) -> String {
    let parts: Vec<String> = events
        .iter()
        .map(|e| match e {
            SioEvent::Packet(Ok(v)) => v.to_string(),
            SioEvent::Packet(Err(e)) => format!("packet whose {e}"),
            SioEvent::Error(e) => format!("error {e:?} ({e})"),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

fn compare_sio_decode(msgs: &[Msg], js: &Value) -> Outcome {
    let (ours, our_pending) = ours_sio_decode(msgs);
    let js_events = as_array(&js["events"]);
    let js_pending = js["pending"].as_bool().unwrap_or(false);
    let fail = |why: &str| {
        Outcome::Mismatch(format!(
            "{why}\n    node:   {} pending={js_pending}\n    ferrio: {} pending={our_pending}",
            Value::Array(js_events.clone()),
            describe_ours(&ours)
        ))
    };
    for i in 0..ours.len().max(js_events.len()) {
        let (o, j) = match (ours.get(i), js_events.get(i)) {
            (Some(o), Some(j)) => (o, j),
            _ => return fail(&format!("different number of results (at result {i})")),
        };
        match (o, j.get("packet"), j.get("error")) {
            (SioEvent::Packet(Ok(v)), Some(p), _) => {
                if !same(v, &js_sio_view(p)) {
                    if let Some(d) = sio_deviation(msgs, o, j) {
                        return Outcome::Deviation(d);
                    }
                    return fail(&format!("packets differ at result {i}"));
                }
            }
            (SioEvent::Error(e), _, Some(m)) => {
                let m = m.as_str().unwrap_or_default();
                match js_message(e) {
                    Some(expected) if m.starts_with(expected) => {}
                    _ => return fail(&format!("error kinds differ at result {i}")),
                }
            }
            _ => {
                if let Some(d) = sio_deviation(msgs, o, j) {
                    return Outcome::Deviation(d);
                }
                return fail(&format!(
                    "one side fails, the other succeeds (at result {i})"
                ));
            }
        }
    }
    if ours.iter().all(|e| matches!(e, SioEvent::Packet(_))) && our_pending != js_pending {
        return fail("one side still waits for attachments");
    }
    Outcome::Agree
}

/// Recognises the documented deviations at the first differing result.
fn sio_deviation(msgs: &[Msg], ours: &SioEvent, js: &Value) -> Option<Deviation> {
    let js_packet = js.get("packet")?;
    let text: String = msgs
        .iter()
        .filter_map(|m| match m {
            Msg::Text(s) => Some(s.as_str()),
            Msg::Bin(_) => None,
        })
        .collect();
    match ours {
        SioEvent::Error(socket::DecodeError::InvalidAckId) => (js_packet.get("id")
            == Some(&json!({"$num": "NaN"})))
        .then_some(Deviation::AckIdWhiteSpace),
        SioEvent::Error(socket::DecodeError::InvalidPlaceholder) => {
            contains(&js_packet["data"], &json!({"$undefined": true}))
                .then_some(Deviation::PlaceholderNotInteger)
        }
        SioEvent::Error(socket::DecodeError::InvalidPayload) | SioEvent::Packet(Err(_)) => {
            if json_serde_refuses(&text) {
                Some(Deviation::JsonSerdeRefuses)
            } else {
                (json_depth(&text) > socket::MAX_JSON_DEPTH).then_some(Deviation::JsonTooDeep)
            }
        }
        _ => None,
    }
}

/// The deepest nesting of arrays and objects in `text`, strings skipped.
fn json_depth(text: &str) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    max = max.max(depth);
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    max
}

fn contains(v: &Value, needle: &Value) -> bool {
    v == needle
        || match v {
            Value::Array(a) => a.iter().any(|x| contains(x, needle)),
            Value::Object(o) => o.values().any(|x| contains(x, needle)),
            _ => false,
        }
}

/// True if `text` has a JSON string escape of a lone surrogate or a number literal beyond the
/// range of a double: what `JSON.parse` accepts and serde_json refuses.
pub fn json_serde_refuses(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    let mut in_string = false;
    let hex4 = |i: usize| -> Option<u32> {
        text.get(i..i + 4)
            .and_then(|h| u32::from_str_radix(h, 16).ok())
    };
    while i < b.len() {
        if in_string {
            match b[i] {
                b'"' => in_string = false,
                b'\\' if b.get(i + 1) == Some(&b'u') => {
                    if let Some(u) = hex4(i + 2) {
                        if (0xD800..0xDC00).contains(&u) {
                            let low = (text.get(i + 6..i + 8) == Some("\\u"))
                                .then(|| hex4(i + 8))
                                .flatten();
                            if low.is_some_and(|l| (0xDC00..0xE000).contains(&l)) {
                                i += 12;
                                continue;
                            }
                            return true;
                        }
                        if (0xDC00..0xE000).contains(&u) {
                            return true;
                        }
                    }
                    i += 6;
                    continue;
                }
                b'\\' => i += 1,
                _ => {}
            }
            i += 1;
        } else if b[i] == b'"' {
            in_string = true;
            i += 1;
        } else if b[i] == b'-' || b[i].is_ascii_digit() {
            let start = i;
            i += 1;
            while i < b.len() && matches!(b[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') {
                i += 1;
            }
            if text[start..i].parse::<f64>().is_ok_and(f64::is_infinite) {
                return true;
            }
        } else {
            i += 1;
        }
    }
    false
}

/// Ferrio's encoding of a packet given as `{type, nsp, id?, data?}`: `{"$bin": …}` values become
/// attachments with placeholders, numbered depth-first in the value's order.
fn ours_sio_packet(p: &Value) -> Packet {
    let nsp = p["nsp"].as_str().expect("nsp").to_string();
    let id = p.get("id").map(|v| v.as_u64().expect("integer id"));
    let (data, atts) = match p.get("data") {
        Some(d) => {
            let mut atts = Vec::new();
            let d = deconstruct(d, &mut atts);
            (Some(RawJson::from_value(&d)), atts)
        }
        None => (None, Vec::new()),
    };
    let packet = match p["type"].as_u64().expect("type") {
        0 => Packet::connect(nsp, data),
        1 => Packet::disconnect(nsp),
        2 => Packet::event(nsp, data.expect("event data"), atts),
        3 => Packet::ack(nsp, id.expect("ack id"), data.expect("ack data"), atts),
        4 => Packet::connect_error(nsp, data.expect("connect_error data")),
        t => panic!("no constructor for type {t}"),
    };
    match (p["type"].as_u64(), id) {
        (Some(2), Some(id)) => packet.with_id(id),
        _ => packet,
    }
}

fn deconstruct(v: &Value, atts: &mut Vec<Bytes>) -> Value {
    match v {
        Value::Object(o) if o.len() == 1 && o.contains_key("$bin") => {
            let b = B64
                .decode(o["$bin"].as_str().expect("base64"))
                .expect("base64");
            atts.push(Bytes::from(b));
            json!({"_placeholder": true, "num": atts.len() - 1})
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| deconstruct(x, atts)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), deconstruct(x, atts)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Ferrio's encoding as Engine.IO messages (the Socket.IO text without the Engine.IO `4`).
fn ours_sio_encode(p: &Value) -> Vec<Msg> {
    let e = ours_sio_packet(p).encode();
    let mut out = vec![Msg::Text(e.socket_text().to_string())];
    out.extend(e.attachments().iter().map(|b| Msg::Bin(b.to_vec())));
    out
}

/// The view of the packet a decoder should give back for an encoded `{type, nsp, id?, data?}`.
fn expected_sio_view(p: &Value) -> Value {
    let mut o = p.as_object().cloned().unwrap_or_default();
    if o.get("nsp").and_then(Value::as_str) == Some("") {
        o.insert("nsp".into(), "/".into());
    }
    Value::Object(o)
}

fn compare_sio_encode(p: &Value, js_enc: &Value, js_dec: &Value) -> Outcome {
    let ours = ours_sio_encode(p);
    let js_msgs: Vec<Msg> = as_array(&js_enc["out"])
        .iter()
        .map(|m| match m {
            Value::String(s) => Msg::Text(s.clone()),
            m => Msg::Bin(
                B64.decode(m["bin"].as_str().unwrap_or_default())
                    .unwrap_or_default(),
            ),
        })
        .collect();
    let show = |m: &[Msg]| m.iter().map(Msg::to_string).collect::<Vec<_>>().join(" + ");
    if show(&ours) != show(&js_msgs) {
        return Outcome::Mismatch(format!(
            "encodings differ\n    node:   {}\n    ferrio: {}",
            show(&js_msgs),
            show(&ours)
        ));
    }
    let expected = expected_sio_view(p);
    // Ferrio decodes Node's encoding.
    let (events, pending) = ours_sio_decode(&js_msgs);
    match events.as_slice() {
        [SioEvent::Packet(Ok(v))] if !pending && same(v, &expected) => {}
        _ => {
            return Outcome::Mismatch(format!(
                "Ferrio decodes Node's encoding as {} (pending={pending}), expected {expected}",
                describe_ours(&events)
            ))
        }
    }
    // Node decodes Ferrio's encoding.
    let js_events = as_array(&js_dec["events"]);
    match js_events.as_slice() {
        [e] if e
            .get("packet")
            .is_some_and(|p| same(&js_sio_view(p), &expected))
            && js_dec["pending"] == json!(false) => {}
        _ => {
            return Outcome::Mismatch(format!(
                "Node decodes Ferrio's encoding as {js_dec}, expected {expected}"
            ))
        }
    }
    Outcome::Agree
}

// --- Engine.IO -------------------------------------------------------------------------------

const ENGINE_ERROR: &str = "parser error";

fn engine_error_view() -> Value {
    json!({"type": "error", "data": ENGINE_ERROR})
}

/// A decoded Engine.IO packet as the oracle renders the reference's. `close`, `upgrade` and
/// `noop` carry no data in Ferrio (the reference keeps trailing text, which nothing reads).
fn ours_engine_view(r: &Result<engine::Packet, engine::DecodeError>) -> Value {
    use engine::Packet as P;
    let text = |t: &'static str, s: &Str| {
        if s.is_empty() {
            json!({ "type": t })
        } else {
            json!({"type": t, "data": s.as_str()})
        }
    };
    match r {
        Err(e) if e.to_string().starts_with(ENGINE_ERROR) => engine_error_view(),
        Err(e) => json!({ "error without the reference's message": e.to_string() }),
        Ok(P::Open(s)) => text("open", s),
        Ok(P::Close) => json!({"type": "close"}),
        Ok(P::Ping(s)) => text("ping", s),
        Ok(P::Pong(s)) => text("pong", s),
        Ok(P::Message(s)) => text("message", s),
        Ok(P::Binary(b)) => json!({"type": "message", "data": {"$bin": B64.encode(b)}}),
        Ok(P::Upgrade) => json!({"type": "upgrade"}),
        Ok(P::Noop) => json!({"type": "noop"}),
    }
}

fn js_engine_view(p: &Value) -> Value {
    let mut p = p.clone();
    if let Some(o) = p.as_object_mut() {
        if matches!(
            o.get("type").and_then(Value::as_str),
            Some("close" | "upgrade" | "noop")
        ) {
            o.remove("data");
        }
    }
    p
}

fn is_engine_error(v: &Value) -> bool {
    v.get("type").and_then(Value::as_str) == Some("error")
}

fn ours_engine_frame(m: &Msg, protocol: Protocol) -> Result<engine::Packet, engine::DecodeError> {
    match m {
        Msg::Text(s) => engine::Packet::decode_text(Str::from(s.as_str()), protocol),
        Msg::Bin(b) => engine::Packet::decode_binary(Bytes::from(b.clone()), protocol),
    }
}

fn compare_engine_list(
    ours: &[Result<engine::Packet, engine::DecodeError>],
    js: &[Value],
    deviation: Option<Deviation>,
) -> Outcome {
    let ours_v: Vec<Value> = ours.iter().map(ours_engine_view).collect();
    let js_v: Vec<Value> = js.iter().map(js_engine_view).collect();
    let agree = ours_v.len() == js_v.len() && ours_v.iter().zip(&js_v).all(|(a, b)| same(a, b));
    if agree {
        return Outcome::Agree;
    }
    if let Some(d) = deviation {
        return Outcome::Deviation(d);
    }
    Outcome::Mismatch(format!(
        "packets differ\n    node:   {}\n    ferrio: {}",
        Value::Array(js_v),
        Value::Array(ours_v)
    ))
}

/// Compares an all-or-nothing v3 payload decode with the reference's callbacks: the reference
/// reports packets one by one and then, possibly, an error; any error counts as the payload
/// failing (the session closes), whatever was reported before it.
fn compare_engine_all_or_nothing(
    ours: Result<Vec<engine::Packet>, engine::DecodeError>,
    js: &[Value],
    deviation: Option<Deviation>,
) -> Outcome {
    let js_failed = js.iter().any(is_engine_error);
    match ours {
        Err(e) if js_failed => {
            if e.to_string().starts_with(ENGINE_ERROR) {
                Outcome::Agree
            } else {
                Outcome::Mismatch(format!("error without the reference's message: {e}"))
            }
        }
        Err(e) => deviation.map(Outcome::Deviation).unwrap_or_else(|| {
            Outcome::Mismatch(format!(
                "Node succeeds, Ferrio fails\n    node:   {}\n    ferrio: {e:?} ({e})",
                Value::Array(js.to_vec())
            ))
        }),
        Ok(packets) => {
            let oks: Vec<_> = packets.into_iter().map(Ok).collect();
            match compare_engine_list(&oks, js, None) {
                Outcome::Mismatch(m) if js_failed => {
                    Outcome::Mismatch(format!("Node fails, Ferrio succeeds: {m}"))
                }
                o => o,
            }
        }
    }
}

/// True if the v3 binary payload only fails Ferrio's framing for the documented reasons: some
/// length digit is not a byte 0–9, or some length goes past the end of the body.
pub fn v3_binary_framing_is_lenient_only(b: &[u8]) -> bool {
    let mut pos = 0;
    let mut lenient = false;
    while pos < b.len() {
        let mut i = pos + 1;
        let mut len: usize = 0;
        let mut digits = 0;
        while i < b.len() && b[i] != 0xff {
            if b[i] > 9 {
                lenient = true;
            }
            len = len.saturating_mul(10).saturating_add(usize::from(b[i]));
            digits += 1;
            i += 1;
        }
        if i >= b.len() || digits == 0 {
            return false;
        }
        let end = (i + 1).saturating_add(len);
        if end > b.len() {
            return true;
        }
        pos = end;
        if lenient {
            return true;
        }
    }
    lenient
}

/// An engine packet `{type, data}` with binary data.
pub fn engine_bin_packet(kind: &str, data: &[u8]) -> Value {
    json!({"type": kind, "data": {"$bin": B64.encode(data)}})
}

/// An engine packet `{type, data?}` with text data (`None`: no data).
pub fn engine_text_packet(kind: &str, data: Option<&str>) -> Value {
    match data {
        Some(d) => json!({"type": kind, "data": d}),
        None => json!({ "type": kind }),
    }
}

fn ours_engine_packet(p: &Value) -> engine::Packet {
    use engine::Packet as P;
    let data = p.get("data");
    if let Some(b) = data.and_then(|d| d.get("$bin")) {
        assert_eq!(p["type"], "message", "only messages carry binary data");
        return P::Binary(Bytes::from(
            B64.decode(b.as_str().expect("base64")).expect("base64"),
        ));
    }
    let text = Str::from(data.and_then(Value::as_str).unwrap_or_default());
    match p["type"].as_str().expect("type") {
        "open" => P::Open(text),
        "close" => P::Close,
        "ping" => P::Ping(text),
        "pong" => P::Pong(text),
        "message" => P::Message(text),
        "upgrade" => P::Upgrade,
        "noop" => P::Noop,
        t => panic!("unknown engine packet type {t}"),
    }
}

fn ours_engine_frames(packets: &[Value]) -> Vec<engine::Frame> {
    packets
        .iter()
        .map(|p| ours_engine_packet(p).encode())
        .collect()
}

/// Ferrio's v3 binary payload for the packets.
pub fn ours_encode_v3_binary(packets: &[Value]) -> Vec<u8> {
    engine::encode_payload_v3_binary(&ours_engine_frames(packets)).to_vec()
}

/// Node's v3 binary payload for the packets.
pub fn node_encode_v3_binary(packets: &[Value]) -> Vec<u8> {
    let r = run_oracle(&[json!({"op": "eio3-encodePayloadAsBinary", "packets": packets})]);
    B64.decode(r[0]["out"]["bin"].as_str().expect("binary output"))
        .expect("base64")
}

fn js_out_bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Object(o) => o
            .get("bin")
            .and_then(Value::as_str)
            .and_then(|b| B64.decode(b).ok()),
        _ => None,
    }
}

fn compare_engine_encode(packets: &[Value], v4: &Value, v3: &Value, v3b: &Value) -> Outcome {
    let frames = ours_engine_frames(packets);
    let expected: Vec<Value> = packets
        .iter()
        .map(|p| {
            let mut p = p.clone();
            if p.get("data") == Some(&json!("")) {
                p.as_object_mut().map(|o| o.remove("data"));
            }
            p
        })
        .collect();
    let decoded_as_expected = |r: Result<Vec<engine::Packet>, engine::DecodeError>| -> bool {
        r.is_ok_and(|ps| {
            ps.len() == expected.len()
                && ps
                    .iter()
                    .zip(&expected)
                    .all(|(a, b)| same(&ours_engine_view(&Ok(a.clone())), b))
        })
    };
    let mut problems = Vec::new();
    // v4 payload (the reference never calls back for an empty list).
    if !packets.is_empty() {
        let ours = engine::encode_payload(&frames).to_vec();
        let js = js_out_bytes(&v4["out"]);
        if js.as_deref() != Some(&ours[..]) {
            problems.push(format!(
                "v4 payload: node {:?}, ferrio {:?}",
                js.map(|b| String::from_utf8_lossy(&b).into_owned()),
                String::from_utf8_lossy(&ours)
            ));
        } else {
            let back = engine::decode_payload(Str::from(String::from_utf8(ours).expect("utf8")))
                .collect::<Result<Vec<_>, _>>();
            if !decoded_as_expected(back.clone()) {
                problems.push(format!("v4 payload decodes back as {back:?}"));
            }
        }
    }
    // v3 text payload.
    let ours = engine::encode_payload_v3(&frames).to_vec();
    let js = js_out_bytes(&v3["out"]);
    if js.as_deref() != Some(&ours[..]) {
        problems.push(format!(
            "v3 text payload: node {:?}, ferrio {:?}",
            js.map(|b| String::from_utf8_lossy(&b).into_owned()),
            String::from_utf8_lossy(&ours)
        ));
    } else {
        let back = engine::decode_payload_v3(&Str::from(String::from_utf8(ours).expect("utf8")));
        if !decoded_as_expected(back.clone()) {
            problems.push(format!("v3 text payload decodes back as {back:?}"));
        }
    }
    // v3 binary payload.
    let ours = engine::encode_payload_v3_binary(&frames).to_vec();
    let js = js_out_bytes(&v3b["out"]);
    if js.as_deref() != Some(&ours[..]) {
        problems.push(format!(
            "v3 binary payload: node <{}>, ferrio <{}>",
            js.map(|b| hex(&b)).unwrap_or_default(),
            hex(&ours)
        ));
    } else {
        let back = engine::decode_payload_v3_binary(Bytes::from(ours));
        if !decoded_as_expected(back.clone()) {
            problems.push(format!("v3 binary payload decodes back as {back:?}"));
        }
    }
    if problems.is_empty() {
        Outcome::Agree
    } else {
        Outcome::Mismatch(problems.join("\n    "))
    }
}
