//! Generated inputs: a deterministic pseudo-random generator with a fixed seed mixes the parts
//! each wire format is made of, the odd ones included.

use base64::Engine as _;

use super::{Case, Kind, Msg, B64};

/// SplitMix64: small, fast and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len())]
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
}

const SIO_TYPES_ODD: &[&str] = &[
    "7", "8", "9", "", " ", "\t", "\u{a0}", "a", "-", "/", "x", "+", "٣", "\u{3000}", "😀",
];

const ATTACHMENTS: &[&str] = &[
    "1-",
    "1-",
    "2-",
    "3-",
    "01-",
    "0x1-",
    " 1-",
    "1 -",
    "11-",
    "10-",
    "0-",
    "-",
    "1",
    "1.0-",
    "1e0-",
    "+1-",
    "\u{a0}2-",
    "Infinity-",
    "1.5-",
    "a-",
    "0b11-",
    "",
];

const NAMESPACES: &[&str] = &[
    "/",
    "/admin,",
    "/admin",
    "/a b,",
    "/ä,",
    "/😀,",
    "/,",
    "/a/b,",
    "//,",
    "/a,b,",
    "/1,",
    "/a?x=1,",
    "/a\u{a0},",
    "/\u{1e},",
    "/a\"b,",
];

const ACK_IDS: &[&str] = &[
    "0",
    "7",
    "007",
    "12",
    " 1",
    "1 ",
    " ",
    "\t3",
    "\u{a0}4",
    "\u{2028}5",
    "\u{3000}",
    "\u{feff}6",
    "4294967295",
    "9007199254740993",
    "18446744073709551615",
];

const PAYLOADS: &[&str] = &[
    r#"["a"]"#,
    r#"["a",1,{"b":[true,null]}]"#,
    r#"["é😀","\u00e9\ud83d\ude00"]"#,
    r#"[1]"#,
    r#"[1.5]"#,
    r#"[-0]"#,
    r#"[0.1,1e-7,123456789012345678901234567890]"#,
    r#"[]"#,
    r#"["connect"]"#,
    r#"["newListener"]"#,
    r#"["removeListener","x"]"#,
    r#"["disconnecting"]"#,
    r#"["connect_error"]"#,
    r#"["disconnect"]"#,
    r#"["__proto__"]"#,
    r#"[null]"#,
    r#"[true]"#,
    r#"[{}]"#,
    r#"[["a"]]"#,
    r#"{}"#,
    r#"{"a":1}"#,
    r#"{"token":"abc","n":[1,2]}"#,
    r#"{"__proto__":{"a":1}}"#,
    r#""str""#,
    r#""""#,
    "1",
    "null",
    "true",
    "[",
    "{",
    r#"["a"]x"#,
    r#"["a"] "#,
    "[\"a\"]\r\n",
    r#"["a"]]"#,
    r#"{"a":1}}"#,
    r#"["a",]"#,
    r#"['a']"#,
    r#"["a" "b"]"#,
    r#"["a",{"_placeholder":true,"num":0}]"#,
    r#"[{"_placeholder":true,"num":0}]"#,
    r#"["a",{"x":[{"_placeholder":true,"num":1}]},{"_placeholder":true,"num":0}]"#,
    r#"["a",{"_placeholder":true,"num":5}]"#,
    r#"["a",{"_placeholder":true,"num":-1}]"#,
    r#"["a",{"_placeholder":true,"num":"0"}]"#,
    r#"["a",{"_placeholder":true}]"#,
    r#"["a",{"_placeholder":false,"num":0}]"#,
    r#"["a",{"_placeholder":1,"num":0}]"#,
    r#"["a",{"_placeholder":true,"num":0,"y":{"_placeholder":true,"num":7}}]"#,
    r#"["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":0}]"#,
    r#"{"_placeholder":true,"num":0}"#,
    r#"[12,{"_placeholder":true,"num":0}]"#,
    r#"[{"k":{"_placeholder":true,"num":2}},{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]"#,
];

/// One Socket.IO decoder case: a packet text assembled from parts, then attachments.
fn sio_case(rng: &mut Rng) -> Vec<Msg> {
    let ty = if rng.chance(85) {
        ["0", "1", "2", "3", "4", "5", "6"][rng.below(7)]
    } else {
        rng.pick(SIO_TYPES_ODD)
    };
    let binary = ty == "5" || ty == "6";
    let mut s = String::from(ty);
    if (binary && rng.chance(90)) || rng.chance(5) {
        s.push_str(rng.pick(ATTACHMENTS));
    }
    if rng.chance(45) {
        s.push_str(rng.pick(NAMESPACES));
    }
    if rng.chance(35) {
        s.push_str(rng.pick(ACK_IDS));
    }
    if rng.chance(85) {
        s.push_str(rng.pick(PAYLOADS));
    }
    let mut msgs = Vec::new();
    if rng.chance(3) {
        msgs.push(Msg::Bin(rng.bytes(4)));
    }
    msgs.push(Msg::Text(s));
    if binary {
        // Usually as many attachments as announced (most counts are 1–3), sometimes not.
        let n = if rng.chance(70) {
            1 + rng.below(3)
        } else {
            rng.below(5)
        };
        for _ in 0..n {
            msgs.push(Msg::Bin(rng.bytes(6)));
        }
    }
    if rng.chance(8) {
        msgs.push(Msg::Text(r#"2["after"]"#.into()));
    }
    if rng.chance(4) {
        msgs.push(Msg::Bin(rng.bytes(3)));
    }
    msgs
}

const TEXT_DATA: &[&str] = &[
    "",
    "hello",
    "probe",
    "é",
    "€uro",
    "😀",
    "a😀b",
    "日本語",
    "{\"sid\":\"x\"}",
    "4",
    "b",
    ":",
    "1:",
    " ",
    "\u{2028}",
];

/// Base64 text that Node and Ferrio both decode, or that only Node decodes (documented).
fn base64_text(rng: &mut Rng) -> String {
    let data = rng.bytes(7);
    let mut text = B64.encode(&data);
    if rng.chance(15) {
        // Unpadded: both accept it.
        text = text.trim_end_matches('=').to_string();
    }
    if rng.chance(10) {
        // A character outside the alphabet, which Node skips: a documented difference.
        let at = rng.below(text.len() + 1);
        text.insert(at, *rng.pick(&[&' ', &'\n', &'*', &'.']));
    }
    text
}

/// One v4 polling record (also a v4 WebSocket text frame).
fn eio4_record(rng: &mut Rng) -> String {
    match rng.below(10) {
        0..=5 => {
            let ty = ["0", "1", "2", "3", "4", "4", "4", "5", "6"][rng.below(9)];
            format!("{ty}{}", rng.pick(TEXT_DATA))
        }
        6 | 7 => format!("b{}", base64_text(rng)),
        _ => {
            let odd = rng.pick(&["", "7", "9x", "x", " 4", "B", "-1", "😀"]);
            odd.to_string()
        }
    }
}

fn eio4_payload(rng: &mut Rng) -> String {
    let n = 1 + rng.below(4);
    (0..n)
        .map(|_| eio4_record(rng))
        .collect::<Vec<_>>()
        .join("\u{1e}")
}

/// A v3 packet as text: mostly valid, with multibyte characters and emoji.
fn eio3_packet_text(rng: &mut Rng) -> String {
    match rng.below(10) {
        0..=6 => {
            let ty = ["0", "1", "2", "3", "4", "4", "4", "5", "6"][rng.below(9)];
            format!("{ty}{}", rng.pick(TEXT_DATA))
        }
        7 | 8 => format!("b4{}", B64.encode(rng.bytes(6))),
        _ => rng.pick(&["7", "x", "9a", " 4"]).to_string(),
    }
}

fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

fn eio3_payload(rng: &mut Rng) -> String {
    let n = rng.below(4);
    let mut out = String::new();
    for _ in 0..n {
        let p = eio3_packet_text(rng);
        let len = utf16_len(&p);
        let len_text = match rng.below(20) {
            0 => format!("{}", len + 1),
            1 => format!("{}", len.saturating_sub(1)),
            2 => format!("0{len}"),
            3 => format!(" {len}"),
            4 => format!("+{len}"),
            5 => format!("{len}.0"),
            6 => format!("0x{len:x}"),
            7 => String::new(),
            _ => len.to_string(),
        };
        out.push_str(&len_text);
        out.push(':');
        out.push_str(&p);
    }
    if n == 0 || rng.chance(5) {
        out.push_str(rng.pick(&["0:", "", "1", ":", "x"]));
    }
    out
}

fn eio3_binary_payload(rng: &mut Rng) -> Vec<u8> {
    let n = rng.below(4);
    let mut out = Vec::new();
    for _ in 0..n {
        let (marker, data) = if rng.chance(60) {
            (0u8, eio3_packet_text(rng).into_bytes())
        } else {
            let mut d = vec![4u8];
            d.extend(rng.bytes(6));
            (1u8, d)
        };
        let mut len = data.len();
        let mut ff = true;
        match rng.below(25) {
            0 => len += 1,
            1 => ff = false,
            _ => {}
        }
        out.push(marker);
        let digits = len.to_string();
        if rng.chance(5) {
            out.push(0);
        }
        out.extend(digits.bytes().map(|d| d - b'0'));
        if ff {
            out.push(0xff);
        }
        out.extend(data);
    }
    out
}

/// `sio` Socket.IO decoder cases, `eio4` v4 payloads (plus as many single frames), `eio3` v3 text
/// payloads and `eio3_bin` v3 binary payloads, from `seed`.
pub fn generated_cases(
    seed: u64,
    sio: usize,
    eio4: usize,
    eio3: usize,
    eio3_bin: usize,
) -> Vec<Case> {
    let mut rng = Rng(seed);
    let mut cases = Vec::new();
    for i in 0..sio {
        cases.push(Case::new(
            format!("gen sio #{i}"),
            Kind::SioDecode(sio_case(&mut rng)),
        ));
    }
    for i in 0..eio4 {
        cases.push(Case::new(
            format!("gen eio4 payload #{i}"),
            Kind::Eio4Payload(eio4_payload(&mut rng)),
        ));
        cases.push(Case::new(
            format!("gen eio4 ws #{i}"),
            Kind::Eio4Packet(Msg::Text(eio4_record(&mut rng))),
        ));
    }
    for i in 0..eio3 {
        cases.push(Case::new(
            format!("gen eio3 payload #{i}"),
            Kind::Eio3Payload(eio3_payload(&mut rng)),
        ));
    }
    for i in 0..eio3_bin {
        cases.push(Case::new(
            format!("gen eio3 binary payload #{i}"),
            Kind::Eio3BinaryPayload(eio3_binary_payload(&mut rng)),
        ));
    }
    cases
}
