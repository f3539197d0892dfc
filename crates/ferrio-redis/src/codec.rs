//! The message encodings of `@socket.io/redis-adapter`: msgpack (as notepack.io writes it) for
//! broadcasts, broadcast-with-ack requests and ack answers, JSON for the other requests and
//! responses; and the bridge between a Socket.IO packet (JSON text with attachment placeholders)
//! and the msgpack form (binary inline as `bin`).

use bytes::Bytes;
use ferrio_proto::rooms::BroadcastOptions;
use ferrio_proto::socket::{to_json_with_attachments, Packet};
use ferrio_proto::Str;
use rmpv::Value as Mp;
use serde::ser::{Error as _, SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value as Json;

/// Why a message from Redis was dropped.
#[derive(Debug)]
pub(crate) struct CodecError(pub(crate) String);

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err(msg: impl Into<String>) -> CodecError {
    CodecError(msg.into())
}

/// Decodes a request or response: JSON if it starts with `{`, msgpack otherwise (the
/// reference's rule), always as a msgpack value tree.
pub(crate) fn decode_message(bytes: &[u8]) -> Result<Mp, CodecError> {
    if bytes.first() == Some(&b'{') {
        let json: Json = serde_json::from_slice(bytes).map_err(|e| err(e.to_string()))?;
        Ok(json_to_mp(&json, &[]))
    } else {
        decode_msgpack(bytes)
    }
}

/// Decodes one msgpack value; trailing bytes are an error.
pub(crate) fn decode_msgpack(mut bytes: &[u8]) -> Result<Mp, CodecError> {
    let value =
        rmpv::decode::read_value_with_max_depth(&mut bytes, 128).map_err(|e| err(e.to_string()))?;
    if !bytes.is_empty() {
        return Err(err("trailing bytes after the msgpack value"));
    }
    Ok(value)
}

/// Encodes a msgpack value.
pub(crate) fn encode_msgpack(value: &Mp) -> Bytes {
    let mut out = Vec::with_capacity(64);
    // Writing to a Vec cannot fail.
    let _ = rmpv::encode::write_value(&mut out, value);
    Bytes::from(out)
}

/// A map with string keys, in the given order.
pub(crate) fn map(entries: Vec<(&str, Mp)>) -> Mp {
    Mp::Map(entries.into_iter().map(|(k, v)| (Mp::from(k), v)).collect())
}

/// The member `key` of a msgpack map.
pub(crate) fn get<'a>(value: &'a Mp, key: &str) -> Option<&'a Mp> {
    value
        .as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// The string member `key` of a msgpack map.
pub(crate) fn get_str<'a>(value: &'a Mp, key: &str) -> Option<&'a str> {
    get(value, key)?.as_str()
}

/// A JSON value as msgpack: integers (and floats without a fraction that JavaScript holds
/// exactly) as msgpack integers, other numbers as float64, as notepack.io does. A placeholder
/// object `{"_placeholder":true,"num":N}` becomes attachment `N` as `bin`.
pub(crate) fn json_to_mp(value: &Json, attachments: &[Bytes]) -> Mp {
    match value {
        Json::Null => Mp::Nil,
        Json::Bool(b) => Mp::Boolean(*b),
        Json::Number(n) => {
            if let Some(u) = n.as_u64() {
                Mp::from(u)
            } else if let Some(i) = n.as_i64() {
                Mp::from(i)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_991.0 {
                    Mp::from(f as i64)
                } else {
                    Mp::F64(f)
                }
            }
        }
        Json::String(s) => Mp::from(s.as_str()),
        Json::Array(items) => Mp::Array(items.iter().map(|v| json_to_mp(v, attachments)).collect()),
        Json::Object(members) => {
            if let Some(bytes) = placeholder(members, attachments) {
                return Mp::Binary(bytes.to_vec());
            }
            Mp::Map(
                members
                    .iter()
                    .map(|(k, v)| (Mp::from(k.as_str()), json_to_mp(v, attachments)))
                    .collect(),
            )
        }
    }
}

fn placeholder<'a>(
    members: &serde_json::Map<String, Json>,
    attachments: &'a [Bytes],
) -> Option<&'a Bytes> {
    if members.len() != 2 || members.get("_placeholder") != Some(&Json::Bool(true)) {
        return None;
    }
    let num = usize::try_from(members.get("num")?.as_u64()?).ok()?;
    attachments.get(num)
}

/// A msgpack value seen as JSON (serde), the way JavaScript would see what notepack.io
/// decodes: `bin` and the legacy ext type 0 as bytes (placeholders once serialised by
/// [`to_json_with_attachments`]), timestamps as the ISO string `JSON.stringify` writes for a
/// `Date`, the legacy `d4 00 00` (undefined) as null, map keys as strings.
pub(crate) struct AsJson<'a>(pub(crate) &'a Mp);

impl Serialize for AsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Mp::Nil => s.serialize_unit(),
            Mp::Boolean(b) => s.serialize_bool(*b),
            Mp::Integer(i) => {
                if let Some(u) = i.as_u64() {
                    s.serialize_u64(u)
                } else if let Some(v) = i.as_i64() {
                    s.serialize_i64(v)
                } else {
                    s.serialize_unit()
                }
            }
            Mp::F32(f) => s.serialize_f64(f64::from(*f)),
            Mp::F64(f) => s.serialize_f64(*f),
            Mp::String(text) => match text.as_str() {
                Some(t) => s.serialize_str(t),
                None => s.serialize_str(&String::from_utf8_lossy(text.as_bytes())),
            },
            Mp::Binary(b) => s.serialize_bytes(b),
            Mp::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&AsJson(item))?;
                }
                seq.end()
            }
            Mp::Map(entries) => {
                let mut m = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    let key = match k {
                        Mp::String(t) => t.as_str().map(str::to_owned),
                        Mp::Integer(i) => Some(i.to_string()),
                        Mp::Boolean(b) => Some(b.to_string()),
                        _ => None,
                    }
                    .ok_or_else(|| S::Error::custom("map key is not a string"))?;
                    m.serialize_entry(&key, &AsJson(v))?;
                }
                m.end()
            }
            Mp::Ext(0, data) if data.as_slice() == [0] => s.serialize_unit(),
            Mp::Ext(0, data) => s.serialize_bytes(data),
            Mp::Ext(-1, data) => match timestamp_millis(data) {
                Some(ms) => s.serialize_str(&ferrio_proto::date::iso_string(ms)),
                None => s.serialize_unit(),
            },
            Mp::Ext(_, _) => s.serialize_unit(),
        }
    }
}

/// A msgpack value as a JSON value (binary as a placeholder-free byte array is not wanted
/// here: used for requests, which carry no binary).
pub(crate) fn mp_to_json(value: &Mp) -> Json {
    serde_json::to_value(AsJson(value)).unwrap_or(Json::Null)
}

/// Milliseconds of a msgpack timestamp (ext −1: 32, 64 or 96 bits).
fn timestamp_millis(data: &[u8]) -> Option<i64> {
    match data.len() {
        4 => Some(i64::from(u32::from_be_bytes(data.try_into().ok()?)) * 1000),
        8 => {
            let v = u64::from_be_bytes(data.try_into().ok()?);
            let nanos = (v >> 34) as i64;
            let secs = (v & 0x3_ffff_ffff) as i64;
            Some(secs * 1000 + nanos / 1_000_000)
        }
        12 => {
            let nanos = i64::from(u32::from_be_bytes(data[..4].try_into().ok()?));
            let secs = i64::from_be_bytes(data[4..].try_into().ok()?);
            Some(secs.checked_mul(1000)? + nanos / 1_000_000)
        }
        _ => None,
    }
}

/// The msgpack form of a packet's data (JSON text with placeholders) with its attachments
/// inline.
pub(crate) fn packet_data_to_mp(packet: &Packet) -> Result<Mp, CodecError> {
    let data = packet.data().ok_or_else(|| err("packet without data"))?;
    let json = data.to_value().map_err(|e| err(e.to_string()))?;
    Ok(json_to_mp(&json, packet.attachments()))
}

/// The packet object of a classic broadcast: `{type: 2, data, nsp}`.
pub(crate) fn broadcast_packet(packet: &Packet) -> Result<Mp, CodecError> {
    Ok(map(vec![
        ("type", Mp::from(2)),
        ("data", packet_data_to_mp(packet)?),
        ("nsp", Mp::from(packet.nsp().as_ref())),
    ]))
}

/// An EVENT of namespace `nsp` from the msgpack `data` array `[event, ...args]`.
pub(crate) fn event_from_mp(nsp: Str, data: &Mp) -> Result<Packet, CodecError> {
    let items = data
        .as_array()
        .ok_or_else(|| err("event data is not an array"))?;
    if !items.first().is_some_and(Mp::is_str) {
        return Err(err("event data does not start with a name"));
    }
    let (json, attachments) =
        to_json_with_attachments(&AsJson(data)).map_err(|e| err(e.to_string()))?;
    Ok(Packet::event(nsp, json, attachments))
}

/// An ACK packet (id 0) whose single argument is `arg`, as a broadcast ack answer carries it.
pub(crate) fn ack_from_mp(nsp: Str, arg: &Mp) -> Result<Packet, CodecError> {
    let args = Mp::Array(vec![arg.clone()]);
    let (json, attachments) =
        to_json_with_attachments(&AsJson(&args)).map_err(|e| err(e.to_string()))?;
    Ok(Packet::ack(nsp, 0, json, attachments))
}

/// The first argument of an ACK packet as msgpack (`undefined`, written nil, if none).
pub(crate) fn first_ack_arg(packet: &Packet) -> Mp {
    match packet_data_to_mp(packet) {
        Ok(Mp::Array(mut items)) if !items.is_empty() => items.swap_remove(0),
        _ => Mp::Nil,
    }
}

/// The reference's `{rooms, except, flags}`; `with_flags` false leaves `flags` out (requests
/// 2–5 carry only `rooms` and `except`).
pub(crate) fn opts_to_mp(opts: &BroadcastOptions, with_flags: bool) -> Mp {
    let rooms = Mp::Array(opts.rooms.iter().map(|r| Mp::from(r.as_ref())).collect());
    let except = Mp::Array(opts.except.iter().map(|r| Mp::from(r.as_ref())).collect());
    let mut entries = vec![("rooms", rooms), ("except", except)];
    if with_flags {
        let flags = serde_json::to_value(opts.flags).unwrap_or(Json::Null);
        entries.push(("flags", json_to_mp(&flags, &[])));
    }
    map(entries)
}

/// `{rooms, except, flags}` read leniently: missing members are empty, numeric room names are
/// read as their decimal text.
pub(crate) fn opts_from_mp(value: Option<&Mp>) -> BroadcastOptions {
    let mut opts = BroadcastOptions::new();
    let Some(value) = value else {
        return opts;
    };
    opts.rooms = room_list(get(value, "rooms")).into_iter().collect();
    opts.except = room_list(get(value, "except")).into_iter().collect();
    if let Some(flags) = get(value, "flags") {
        if let Ok(flags) = serde_json::from_value(mp_to_json(flags)) {
            opts.flags = flags;
        }
    }
    opts
}

/// A list of room names (strings, or numbers as JavaScript allows).
pub(crate) fn room_list(value: Option<&Mp>) -> Vec<Str> {
    value
        .and_then(Mp::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|r| match r {
                    Mp::String(s) => s.as_str().map(Str::from),
                    Mp::Integer(i) => Some(Str::from(i.to_string())),
                    Mp::F64(f) => Some(Str::from(f.to_string())),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    /// `io.emit("hello","world",1,{a:true})` as a Node server publishes it.
    const NODE_BROADCAST: &str = "93 a6 71 4a 43 4a 65 6a 83 a4 74 79 70 65 02 a4 64 61 74 61 94 a5 68 65 6c 6c 6f a5 77 6f 72 6c 64 01 \
        81 a1 61 c3 a3 6e 73 70 a1 2f 83 a5 72 6f 6f 6d 73 90 a6 65 78 63 65 70 74 90 a5 66 6c 61 67 73 80";

    #[test]
    fn a_node_broadcast_is_read_and_written_back_byte_for_byte() {
        let bytes = hex(NODE_BROADCAST);
        let msg = decode_msgpack(&bytes).unwrap();
        let parts = msg.as_array().unwrap();
        assert_eq!(parts[0].as_str(), Some("qJCJej"));
        let packet = event_from_mp(Str::from("/"), get(&parts[1], "data").unwrap()).unwrap();
        assert_eq!(
            packet.data().unwrap().as_str(),
            r#"["hello","world",1,{"a":true}]"#
        );
        let opts = opts_from_mp(Some(&parts[2]));
        assert!(opts.rooms.is_empty() && opts.except.is_empty());
        let again = Mp::Array(vec![
            Mp::from("qJCJej"),
            broadcast_packet(&packet).unwrap(),
            opts_to_mp(&opts, true),
        ]);
        assert_eq!(encode_msgpack(&again).as_ref(), bytes.as_slice());
    }

    #[test]
    fn binary_goes_inline_and_comes_back_as_an_attachment() {
        // io.to("room1").except("room2").emit("bin", Buffer[1,2,3]) from Node.
        let bytes = hex("93 a6 71 4a 43 4a 65 6a 83 a4 74 79 70 65 02 a4 64 61 74 61 92 a3 62 69 6e c4 03 01 02 03 a3 6e 73 70 \
            a1 2f 83 a5 72 6f 6f 6d 73 91 a5 72 6f 6f 6d 31 a6 65 78 63 65 70 74 91 a5 72 6f 6f 6d 32 a5 66 6c 61 67 73 80");
        let msg = decode_msgpack(&bytes).unwrap();
        let parts = msg.as_array().unwrap();
        let packet = event_from_mp(Str::from("/"), get(&parts[1], "data").unwrap()).unwrap();
        assert_eq!(
            packet.data().unwrap().as_str(),
            r#"["bin",{"_placeholder":true,"num":0}]"#
        );
        assert_eq!(packet.attachments(), [Bytes::from_static(&[1, 2, 3])]);
        let opts = opts_from_mp(Some(&parts[2]));
        let again = Mp::Array(vec![
            Mp::from("qJCJej"),
            broadcast_packet(&packet).unwrap(),
            opts_to_mp(&opts, true),
        ]);
        assert_eq!(encode_msgpack(&again).as_ref(), bytes.as_slice());
    }

    #[test]
    fn node_ack_request_and_answer_decode() {
        let request = hex("85 a3 75 69 64 a6 71 4a 43 4a 65 6a a9 72 65 71 75 65 73 74 49 64 a6 72 6f 33 58 43 4a a4 74 79 70 65 07 \
            a6 70 61 63 6b 65 74 83 a4 74 79 70 65 02 a4 64 61 74 61 92 a3 61 73 6b 2a a3 6e 73 70 a1 2f a4 6f 70 74 \
            73 83 a5 72 6f 6f 6d 73 90 a6 65 78 63 65 70 74 90 a5 66 6c 61 67 73 81 a7 74 69 6d 65 6f 75 74 cd 03 e8");
        let req = decode_message(&request).unwrap();
        assert_eq!(get(&req, "type").and_then(Mp::as_u64), Some(7));
        let opts = opts_from_mp(get(&req, "opts"));
        assert_eq!(
            opts.flags.timeout,
            Some(std::time::Duration::from_millis(1000))
        );
        let answer = hex("83 a4 74 79 70 65 09 a9 72 65 71 75 65 73 74 49 64 a6 72 6f 33 58 43 4a a6 70 61 63 6b 65 74 81 a2 6f 6b 01");
        let ans = decode_message(&answer).unwrap();
        let ack = ack_from_mp(Str::from("/"), get(&ans, "packet").unwrap()).unwrap();
        assert_eq!(ack.data().unwrap().as_str(), r#"[{"ok":1}]"#);
        let written = map(vec![
            ("type", Mp::from(9)),
            ("requestId", Mp::from("ro3XCJ")),
            ("packet", first_ack_arg(&ack)),
        ]);
        assert_eq!(encode_msgpack(&written).as_ref(), answer.as_slice());
    }

    #[test]
    fn json_messages_and_legacy_msgpack_forms() {
        let v =
            decode_message(br#"{"uid":"a","type":5,"opts":{"rooms":["r"],"except":[]}}"#).unwrap();
        assert_eq!(get(&v, "type").and_then(Mp::as_u64), Some(5));
        // ext 0 (an ArrayBuffer from notepack 2) reads as bytes; d4 00 00 as null; a timestamp
        // as the ISO date JSON.stringify writes.
        let data = Mp::Array(vec![
            Mp::from("e"),
            Mp::Ext(0, vec![9, 8]),
            Mp::Ext(0, vec![0]),
            Mp::Ext(-1, 1_700_000_000u32.to_be_bytes().to_vec()),
            Mp::F64(1.5),
        ]);
        let packet = event_from_mp(Str::from("/"), &data).unwrap();
        assert_eq!(
            packet.data().unwrap().as_str(),
            r#"["e",{"_placeholder":true,"num":0},null,"2023-11-14T22:13:20.000Z",1.5]"#
        );
        assert!(decode_message(b"\x92\x01").is_err());
        assert!(decode_message(b"\x01\x02").is_err());
        assert!(decode_message(b"{oops").is_err());
        assert!(event_from_mp(Str::from("/"), &Mp::from(3)).is_err());
    }

    #[test]
    fn numbers_are_written_as_notepack_writes_them() {
        let json: Json = serde_json::from_str("[1, -2, 3.0, 2.5, 1e300]").unwrap();
        let mp = json_to_mp(&json, &[]);
        assert_eq!(
            encode_msgpack(&mp).as_ref(),
            hex("95 01 fe 03 cb 40 04 00 00 00 00 00 00 cb 7e 37 e4 3c 88 00 75 9c").as_slice()
        );
    }

    mod arbitrary_input {
        use super::*;
        use proptest::prelude::*;

        /// Any msgpack value, binary and ext types included.
        fn mp() -> impl Strategy<Value = Mp> {
            let leaf = prop_oneof![
                Just(Mp::Nil),
                any::<bool>().prop_map(Mp::Boolean),
                any::<i64>().prop_map(Mp::from),
                any::<u64>().prop_map(Mp::from),
                any::<f64>().prop_map(Mp::F64),
                ".{0,8}".prop_map(|s: String| Mp::from(s.as_str())),
                proptest::collection::vec(any::<u8>(), 0..8).prop_map(Mp::Binary),
                (any::<i8>(), proptest::collection::vec(any::<u8>(), 0..13))
                    .prop_map(|(t, d)| Mp::Ext(t, d)),
            ];
            leaf.prop_recursive(4, 64, 6, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..6).prop_map(Mp::Array),
                    proptest::collection::vec((inner.clone(), inner), 0..6).prop_map(Mp::Map),
                ]
            })
        }

        /// Everything a received message goes through.
        fn read_all(msg: &Mp) {
            let _ = get_str(msg, "uid");
            let _ = opts_from_mp(get(msg, "opts"));
            let _ = room_list(get(msg, "rooms"));
            if let Some(data) = get(msg, "data") {
                if let Ok(packet) = event_from_mp(Str::from("/"), data) {
                    let _ = broadcast_packet(&packet);
                }
                let _ = mp_to_json(data);
            }
            if let Some(arg) = get(msg, "packet") {
                if let Ok(ack) = ack_from_mp(Str::from("/"), arg) {
                    let _ = first_ack_arg(&ack);
                }
            }
            if let Some(items) = msg.as_array() {
                for item in items {
                    let _ = event_from_mp(Str::from("/"), item);
                    let _ = opts_from_mp(Some(item));
                }
            }
        }

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
                if let Ok(msg) = decode_message(&bytes) {
                    read_all(&msg);
                }
            }

            #[test]
            fn arbitrary_messages_never_panic_and_events_round_trip(value in mp()) {
                let bytes = encode_msgpack(&value);
                let back = decode_message(&bytes);
                prop_assert!(back.is_ok());
                read_all(&value);
                let msg = map(vec![("uid", Mp::from("x")), ("data", value.clone()), ("packet", value.clone())]);
                read_all(&msg);
                // An event's data survives msgpack -> packet -> msgpack when it is plain
                // (strings, integers, booleans, nil, binary, arrays and string-keyed maps).
                let event = Mp::Array(vec![Mp::from("e"), value.clone()]);
                if plain(&value) {
                    let packet = event_from_mp(Str::from("/"), &event).unwrap();
                    prop_assert_eq!(packet_data_to_mp(&packet).unwrap(), event);
                }
            }
        }

        fn plain(v: &Mp) -> bool {
            match v {
                Mp::Nil | Mp::Boolean(_) | Mp::String(_) | Mp::Binary(_) => true,
                Mp::Integer(i) => {
                    i.as_i64().is_some_and(|n| n.unsigned_abs() < (1 << 53))
                        || i.as_u64().is_some_and(|n| n < (1 << 53))
                }
                Mp::Array(items) => items.iter().all(plain),
                Mp::Map(entries) => {
                    let mut keys = std::collections::HashSet::new();
                    entries.iter().all(|(k, v)| {
                        k.as_str()
                            .is_some_and(|k| keys.insert(k.to_owned()) && k != "_placeholder")
                            && plain(v)
                    })
                }
                _ => false,
            }
        }
    }
}
