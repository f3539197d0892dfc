//! The formats of `@socket.io/redis-streams-adapter` 0.3: stream entries (`uid`, `nsp`, `type`,
//! `data` fields, `data` being JSON or base64 msgpack), the replies of `XREAD`/`XRANGE`, the
//! sessions kept for connection state recovery, offsets, and the stream a namespace uses.
//!
//! Everything here is pure: what comes from Redis is checked and an error says why it was
//! skipped; nothing panics on any input.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use ferrio_proto::Str;
use rmpv::Value as Mp;
use serde_json::Value as Json;

use crate::cluster::{self, has_binary};
use crate::codec::{self, get, get_str, map};

/// Why an entry, a message or a session was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WireError(pub(crate) String);

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err(msg: impl Into<String>) -> WireError {
    WireError(msg.into())
}

/// A cluster message, from a stream entry or a pub/sub message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Message {
    /// The sending node.
    pub(crate) uid: String,
    /// The namespace.
    pub(crate) nsp: String,
    /// The `MessageType`.
    pub(crate) kind: u64,
    /// The message's `data` (absent for some types).
    pub(crate) data: Option<Mp>,
}

/// The field list of one stream entry, as Redis returns it.
pub(crate) type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// One stream entry: its id and fields.
pub(crate) type RawEntry = (String, Fields);

/// The reference's `hashCode`: Java's string hash over UTF-16 code units, on 32 bits.
pub(crate) fn hash_code(text: &str) -> i32 {
    text.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The stream the namespace `nsp` writes to and reads from: `name` with one stream, else
/// `name-<hashCode(nsp) % count>`, the remainder keeping the hash's sign as in JavaScript.
pub(crate) fn stream_name(name: &str, count: u32, nsp: &str) -> String {
    if count <= 1 {
        return name.to_owned();
    }
    let count = i64::from(count);
    let index = i64::from(hash_code(nsp)) % count;
    format!("{name}-{index}")
}

/// The `data` field of an entry: base64 msgpack for the types that may carry binary when they
/// do (unless `only_plaintext`), JSON otherwise.
pub(crate) fn encode_data(kind: u64, data: &Mp, only_plaintext: bool) -> String {
    if !has_binary(data) {
        codec::mp_to_json(data).to_string()
    } else if !only_plaintext && cluster::may_carry_binary(kind) {
        STANDARD.encode(codec::encode_msgpack(data))
    } else {
        codec::mp_to_json(&buffers_as_objects(data)).to_string()
    }
}

/// `data` with every binary as the object `JSON.stringify` makes of a Node `Buffer`:
/// `{"type": "Buffer", "data": [bytes]}`.
fn buffers_as_objects(data: &Mp) -> Mp {
    match data {
        Mp::Binary(bytes) | Mp::Ext(0, bytes) => map(vec![
            ("type", Mp::from("Buffer")),
            (
                "data",
                Mp::Array(bytes.iter().map(|b| Mp::from(*b)).collect()),
            ),
        ]),
        Mp::Array(items) => Mp::Array(items.iter().map(buffers_as_objects).collect()),
        Mp::Map(entries) => Mp::Map(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), buffers_as_objects(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The fields of an entry: `uid`, `nsp`, `type` (decimal text), `data`.
pub(crate) fn encode_entry(
    uid: &str,
    nsp: &str,
    kind: u64,
    data: &Mp,
    only_plaintext: bool,
) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("uid", uid.as_bytes().to_vec()),
        ("nsp", nsp.as_bytes().to_vec()),
        ("type", kind.to_string().into_bytes()),
        ("data", encode_data(kind, data, only_plaintext).into_bytes()),
    ]
}

/// Base64 as Node's `Buffer.from(text, "base64")` reads it: padding optional, whitespace
/// ignored, the URL-safe alphabet accepted too.
fn decode_base64(text: &str) -> Result<Vec<u8>, WireError> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let clean: String = text
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    LENIENT
        .decode(clean.as_bytes())
        .map_err(|e| err(format!("bad base64: {e}")))
}

/// An entry's `data`: JSON if it starts with `{`, else base64 msgpack (the reference's rule).
pub(crate) fn decode_data(text: &str) -> Result<Mp, WireError> {
    if text.starts_with('{') {
        let json: Json =
            serde_json::from_str(text).map_err(|e| err(format!("bad JSON data: {e}")))?;
        Ok(codec::json_to_mp(&json, &[]))
    } else {
        let bytes = decode_base64(text)?;
        codec::decode_msgpack(&bytes).map_err(|e| err(format!("bad msgpack data: {e}")))
    }
}

/// The field `name` of an entry as text.
fn field<'a>(fields: &'a [(Vec<u8>, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|(k, _)| k.as_slice() == name.as_bytes())
        .map(|(_, v)| v.as_slice())
}

fn text_field<'a>(fields: &'a [(Vec<u8>, Vec<u8>)], name: &str) -> Result<&'a str, WireError> {
    let raw = field(fields, name).ok_or_else(|| err(format!("no {name} field")))?;
    std::str::from_utf8(raw).map_err(|_| err(format!("{name} is not UTF-8")))
}

/// The raw `type` field of an entry (the reference compares it as text when restoring).
pub(crate) fn entry_type(fields: &[(Vec<u8>, Vec<u8>)]) -> Option<&[u8]> {
    field(fields, "type")
}

/// The raw `nsp` field of an entry.
pub(crate) fn entry_nsp(fields: &[(Vec<u8>, Vec<u8>)]) -> Option<&[u8]> {
    field(fields, "nsp")
}

/// Decodes one entry's fields. Entries without `nsp` (the reference skips them), with a type
/// that is not a number, or whose data does not decode are errors.
pub(crate) fn decode_entry(fields: &[(Vec<u8>, Vec<u8>)]) -> Result<Message, WireError> {
    let nsp = text_field(fields, "nsp")?;
    if nsp.is_empty() {
        return Err(err("empty nsp"));
    }
    let uid = text_field(fields, "uid").unwrap_or_default();
    let kind = text_field(fields, "type")?
        .trim()
        .parse::<u64>()
        .map_err(|_| err("type is not a number"))?;
    let data = match field(fields, "data") {
        None => None,
        Some([]) => None,
        Some(raw) => {
            let text = std::str::from_utf8(raw).map_err(|_| err("data is not UTF-8"))?;
            Some(decode_data(text)?)
        }
    };
    Ok(Message {
        uid: uid.to_owned(),
        nsp: nsp.to_owned(),
        kind,
        data,
    })
}

/// Decodes a pub/sub message: the msgpack map `{type, data, uid, nsp}`. Anything else (a
/// classic adapter's array on the same channel, JSON, garbage) is an error.
pub(crate) fn decode_published(payload: &[u8]) -> Result<Message, WireError> {
    let value = codec::decode_msgpack(payload).map_err(|e| err(format!("bad msgpack: {e}")))?;
    if value.as_map().is_none() {
        return Err(err("not a cluster message (not a map)"));
    }
    let kind = get(&value, "type")
        .and_then(Mp::as_u64)
        .ok_or_else(|| err("no numeric type"))?;
    let nsp = get_str(&value, "nsp").ok_or_else(|| err("no nsp"))?;
    let uid = get_str(&value, "uid").unwrap_or_default();
    Ok(Message {
        uid: uid.to_owned(),
        nsp: nsp.to_owned(),
        kind,
        data: get(&value, "data").cloned(),
    })
}

/// Encodes a pub/sub message: msgpack `{type, data, uid, nsp}`.
pub(crate) fn encode_published(uid: &str, nsp: &str, kind: u64, data: Mp) -> bytes::Bytes {
    codec::encode_msgpack(&cluster::envelope(kind, data, uid, nsp))
}

fn bulk(value: &redis::Value) -> Option<Vec<u8>> {
    match value {
        redis::Value::BulkString(b) => Some(b.clone()),
        redis::Value::SimpleString(s) => Some(s.clone().into_bytes()),
        redis::Value::VerbatimString { text, .. } => Some(text.clone().into_bytes()),
        redis::Value::Int(i) => Some(i.to_string().into_bytes()),
        _ => None,
    }
}

fn items(value: &redis::Value) -> Option<&[redis::Value]> {
    match value {
        redis::Value::Array(items) | redis::Value::Set(items) => Some(items),
        _ => None,
    }
}

/// The entries of an `XRANGE` reply (`[[id, [field, value, ...]], ...]`); malformed entries are
/// left out, an odd trailing field is dropped.
pub(crate) fn parse_entries(value: &redis::Value) -> Vec<RawEntry> {
    let Some(list) = items(value) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|entry| {
            let [id, fields] = items(entry)? else {
                return None;
            };
            let id = String::from_utf8(bulk(id)?).ok()?;
            let fields = match fields {
                redis::Value::Map(pairs) => pairs
                    .iter()
                    .filter_map(|(k, v)| Some((bulk(k)?, bulk(v)?)))
                    .collect(),
                other => items(other)?
                    .chunks_exact(2)
                    .filter_map(|kv| Some((bulk(&kv[0])?, bulk(&kv[1])?)))
                    .collect(),
            };
            Some((id, fields))
        })
        .collect()
}

/// The entries of an `XREAD` reply for one stream (`[[stream, entries]]`, or a map in RESP3;
/// nil when the block time passed).
pub(crate) fn parse_xread(value: &redis::Value) -> Vec<RawEntry> {
    match value {
        redis::Value::Map(pairs) => pairs
            .iter()
            .flat_map(|(_, entries)| parse_entries(entries))
            .collect(),
        other => items(other)
            .unwrap_or_default()
            .iter()
            .filter_map(|stream| match items(stream)? {
                [_, entries] => Some(parse_entries(entries)),
                _ => None,
            })
            .flatten()
            .collect(),
    }
}

/// True if `offset` is a stream entry id (`^[0-9]+-[0-9]+$`), the only offsets a restore
/// accepts.
pub(crate) fn is_offset(offset: &str) -> bool {
    let Some((ms, seq)) = offset.split_once('-') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(ms) && digits(seq)
}

/// A session kept for recovery: the socket's id, private id, rooms and data.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Session {
    pub(crate) sid: Str,
    pub(crate) pid: Str,
    pub(crate) rooms: Vec<Str>,
    pub(crate) data: Json,
}

/// A session as the reference stores it: base64 of the msgpack map `{sid, pid, rooms, data}`.
pub(crate) fn encode_session(session: &Session) -> String {
    let value = map(vec![
        ("sid", Mp::from(session.sid.as_ref())),
        ("pid", Mp::from(session.pid.as_ref())),
        (
            "rooms",
            Mp::Array(session.rooms.iter().map(|r| Mp::from(r.as_ref())).collect()),
        ),
        ("data", codec::json_to_mp(&session.data, &[])),
    ]);
    STANDARD.encode(codec::encode_msgpack(&value))
}

/// Reads a stored session; `sid` and `pid` must be strings, `rooms` a list (missing: none),
/// `data` anything (missing: null).
pub(crate) fn decode_session(stored: &[u8]) -> Result<Session, WireError> {
    let text = std::str::from_utf8(stored).map_err(|_| err("session is not UTF-8"))?;
    let bytes = decode_base64(text)?;
    let value =
        codec::decode_msgpack(&bytes).map_err(|e| err(format!("bad session msgpack: {e}")))?;
    let sid = get_str(&value, "sid").ok_or_else(|| err("session without sid"))?;
    let pid = get_str(&value, "pid").ok_or_else(|| err("session without pid"))?;
    Ok(Session {
        sid: Str::from(sid),
        pid: Str::from(pid),
        rooms: codec::room_list(get(&value, "rooms")),
        data: get(&value, "data")
            .map(codec::mp_to_json)
            .unwrap_or(Json::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn hash_code_and_stream_names_match_the_reference() {
        // Values computed with the reference's `hashCode` under Node.
        assert_eq!(hash_code(""), 0);
        assert_eq!(hash_code("/"), 47);
        assert_eq!(hash_code("/chat"), 46_457_863);
        assert_eq!(hash_code("/dashboard"), -1_694_060_731);
        assert_eq!(hash_code("/\u{e9}\u{20ac}\u{1f600}"), 60_157_493);
        assert_eq!(stream_name("socket.io", 1, "/chat"), "socket.io");
        assert_eq!(stream_name("socket.io", 3, "/"), "socket.io-2");
        assert_eq!(stream_name("socket.io", 3, "/chat"), "socket.io-1");
        // JavaScript's `%` keeps the sign: negative indices.
        assert_eq!(stream_name("socket.io", 3, "/dashboard"), "socket.io--1");
        assert_eq!(
            stream_name("socket.io", 3, "/notifications"),
            "socket.io--2"
        );
    }

    #[test]
    fn the_captured_binary_entry_decodes() {
        let entry = fields(&[
            ("uid", "c224e3a7927a9366"),
            ("nsp", "/"),
            ("type", "3"),
            ("data", "gqZwYWNrZXSCpHR5cGUCpGRhdGGSo2JpbsQDAQIDpG9wdHODpXJvb21zkaVyb29tMaZleGNlcHSQpWZsYWdzgA=="),
        ]);
        let msg = decode_entry(&entry).unwrap();
        assert_eq!(
            (msg.uid.as_str(), msg.nsp.as_str(), msg.kind),
            ("c224e3a7927a9366", "/", 3)
        );
        let data = msg.data.unwrap();
        let packet = get(&data, "packet").unwrap();
        let event = codec::event_from_mp(Str::from("/"), get(packet, "data").unwrap()).unwrap();
        assert_eq!(
            event.data().unwrap().as_str(),
            r#"["bin",{"_placeholder":true,"num":0}]"#
        );
        let opts = codec::opts_from_mp(get(&data, "opts"));
        assert_eq!(
            opts.rooms.iter().map(|r| r.as_ref()).collect::<Vec<&str>>(),
            ["room1"]
        );
        // Written back: the same base64 text.
        let written = encode_entry("c224e3a7927a9366", "/", 3, &data, false);
        assert_eq!(
            written[3].1,
            field(&entry, "data").unwrap().to_vec(),
            "{}",
            String::from_utf8_lossy(&written[3].1)
        );
        // With only_plaintext the binary goes as JSON, as `JSON.stringify` writes a Buffer.
        let plain: Json = serde_json::from_str(&encode_data(3, &data, true)).unwrap();
        assert_eq!(
            plain["packet"]["data"],
            serde_json::json!(["bin", {"type": "Buffer", "data": [1, 2, 3]}])
        );
        // Types that never carry binary are always JSON.
        assert!(encode_data(4, &data, false).starts_with('{'));
    }

    #[test]
    fn a_plain_entry_is_json() {
        let data = codec::json_to_mp(
            &serde_json::json!({"packet": {"type": 2, "data": ["hello", "world"]}, "opts": {"rooms": [], "except": [], "flags": {}}}),
            &[],
        );
        let written = encode_entry("u", "/", 3, &data, false);
        let names: Vec<&str> = written.iter().map(|(k, _)| *k).collect();
        assert_eq!(names, ["uid", "nsp", "type", "data"]);
        assert_eq!(written[2].1, b"3");
        let text = String::from_utf8(written[3].1.clone()).unwrap();
        let back: Json = serde_json::from_str(&text).unwrap();
        assert_eq!(
            back["packet"]["data"],
            serde_json::json!(["hello", "world"])
        );
        let fields: Fields = written
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect();
        assert_eq!(decode_entry(&fields).unwrap().data.unwrap(), data);
    }

    #[test]
    fn malformed_entries_are_errors() {
        let good = [("uid", "a"), ("nsp", "/"), ("type", "4"), ("data", "{}")];
        assert!(decode_entry(&fields(&good)).is_ok());
        // Missing or empty nsp, missing or non-numeric type.
        assert!(decode_entry(&fields(&[("uid", "a"), ("type", "3"), ("data", "{}")])).is_err());
        assert!(decode_entry(&fields(&[("nsp", ""), ("type", "3")])).is_err());
        assert!(decode_entry(&fields(&[("nsp", "/"), ("data", "{}")])).is_err());
        assert!(decode_entry(&fields(&[("nsp", "/"), ("type", "three")])).is_err());
        assert!(decode_entry(&fields(&[("nsp", "/"), ("type", "-3")])).is_err());
        // Bad JSON, bad base64, base64 of bad msgpack, non-UTF-8.
        assert!(decode_entry(&fields(&[("nsp", "/"), ("type", "3"), ("data", "{oops")])).is_err());
        assert!(decode_entry(&fields(&[("nsp", "/"), ("type", "3"), ("data", "!!!")])).is_err());
        assert!(decode_entry(&fields(&[("nsp", "/"), ("type", "3"), ("data", "kQ==")])).is_err());
        let mut binary = fields(&good);
        binary[1].1 = vec![0xff, 0xfe];
        assert!(decode_entry(&binary).is_err());
        // No data is fine (the reference leaves it out when empty).
        let msg = decode_entry(&fields(&[("nsp", "/"), ("type", "13")])).unwrap();
        assert_eq!((msg.kind, msg.data), (13, None));
    }

    #[test]
    fn published_messages_must_be_cluster_maps() {
        let bytes = encode_published("u1", "/", 7, map(vec![("requestId", Mp::from("r"))]));
        let msg = decode_published(&bytes).unwrap();
        assert_eq!(
            (msg.uid.as_str(), msg.nsp.as_str(), msg.kind),
            ("u1", "/", 7)
        );
        // A classic adapter's broadcast array, JSON text, garbage, a map without type.
        let classic = codec::encode_msgpack(&Mp::Array(vec![Mp::from("uid"), Mp::Nil]));
        assert!(decode_published(&classic).is_err());
        assert!(decode_published(br#"{"type":3}"#).is_err());
        assert!(decode_published(b"\xc1").is_err());
        let no_type = codec::encode_msgpack(&map(vec![("nsp", Mp::from("/"))]));
        assert!(decode_published(&no_type).is_err());
    }

    #[test]
    fn xread_and_xrange_replies() {
        use redis::Value as V;
        let b = |s: &str| V::BulkString(s.as_bytes().to_vec());
        let entry = V::Array(vec![b("1-0"), V::Array(vec![b("nsp"), b("/"), b("type")])]);
        let reply = V::Array(vec![V::Array(vec![
            b("s"),
            V::Array(vec![entry, b("junk")]),
        ])]);
        let entries = parse_xread(&reply);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].0, "1-0");
        assert_eq!(entries[0].1, vec![(b"nsp".to_vec(), b"/".to_vec())]);
        assert!(parse_xread(&V::Nil).is_empty());
        assert!(parse_xread(&V::Int(3)).is_empty());
        assert!(parse_entries(&V::Array(vec![V::Nil])).is_empty());
    }

    #[test]
    fn offsets() {
        assert!(is_offset("1795357745917-0"));
        assert!(is_offset("0-12"));
        for bad in [
            "",
            "-",
            "1-",
            "-1",
            "1-2-3",
            "a-1",
            "1795357745917",
            "MzEo9-6",
            " 1-2",
        ] {
            assert!(!is_offset(bad), "{bad}");
        }
    }

    #[test]
    fn the_captured_session_decodes_and_encodes_back() {
        let stored = "hKNzaWS0c1V6WERrWXhtVEQwRWt2ZEFBQUGjcGlktEU0NjdwbDlzVlBZRDhXS1VBQUFCpXJvb21zkrRzVXpYRGtZeG1URDBFa3ZkQUFBQaVyb29tMaRkYXRhgaR1c2VypWFsaWNl";
        let session = decode_session(stored.as_bytes()).unwrap();
        assert_eq!(session.sid, "sUzXDkYxmTD0EkvdAAAA");
        assert_eq!(session.pid, "E467pl9sVPYD8WKUAAAB");
        assert_eq!(
            session.rooms,
            [Str::from("sUzXDkYxmTD0EkvdAAAA"), Str::from("room1")]
        );
        assert_eq!(session.data, serde_json::json!({"user": "alice"}));
        assert_eq!(encode_session(&session), stored);
    }

    #[test]
    fn bad_sessions_are_errors() {
        assert!(decode_session(b"\xff").is_err());
        assert!(decode_session(b"!!!!").is_err());
        // msgpack 3, a map without pid.
        assert!(decode_session(b"Aw==").is_err());
        let no_pid = STANDARD.encode(codec::encode_msgpack(&map(vec![("sid", Mp::from("a"))])));
        assert!(decode_session(no_pid.as_bytes()).is_err());
        // Missing rooms and data are none.
        let minimal = STANDARD.encode(codec::encode_msgpack(&map(vec![
            ("sid", Mp::from("a")),
            ("pid", Mp::from("b")),
        ])));
        let session = decode_session(minimal.as_bytes()).unwrap();
        assert!(session.rooms.is_empty() && session.data.is_null());
    }
}
