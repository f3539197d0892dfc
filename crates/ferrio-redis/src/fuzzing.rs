//! Entry points for the fuzz targets (not a public API): everything a message read from Redis
//! goes through before it reaches a namespace.

use ferrio_proto::socket::recovery;
use ferrio_proto::Str;
use rmpv::Value as Mp;

use crate::codec::{self, get, get_str};
use crate::streams::wire;

/// Decodes `bytes` as a request, response or broadcast and reads every part of it the adapters
/// read. Must never panic.
pub fn message(bytes: &[u8]) {
    let Ok(msg) = codec::decode_message(bytes) else {
        return;
    };
    read(&msg);
    if let Some(items) = msg.as_array() {
        for item in items {
            read(item);
        }
    }
}

fn read(msg: &Mp) {
    let _ = get_str(msg, "uid");
    let _ = codec::opts_from_mp(get(msg, "opts"));
    let _ = codec::room_list(get(msg, "rooms"));
    for key in ["data", "packet"] {
        let Some(part) = get(msg, key) else { continue };
        let _ = codec::mp_to_json(part);
        if let Ok(event) = codec::event_from_mp(Str::from("/"), part) {
            let _ = codec::broadcast_packet(&event);
        }
        if let Ok(ack) = codec::ack_from_mp(Str::from("/"), part) {
            let _ = codec::first_ack_arg(&ack);
        }
        if let Some(inner) = get(part, "data") {
            let _ = codec::event_from_mp(Str::from("/"), inner);
        }
    }
}

/// A stream entry's fields as the fuzz input: NUL-separated, names and values alternating
/// (`uid\0abc\0nsp\0/\0type\03\0data\0{...}`). The whole input is also read as a RESP
/// `XREAD`/`XRANGE` reply and as a pub/sub message of the streams adapter. Decoding them and
/// reading every part the streams adapter reads never panics.
pub fn stream_entry(bytes: &[u8]) {
    let parts: Vec<&[u8]> = bytes.split(|b| *b == 0).collect();
    let fields: Vec<(Vec<u8>, Vec<u8>)> = parts
        .chunks_exact(2)
        .map(|kv| (kv[0].to_vec(), kv[1].to_vec()))
        .collect();
    read_entry("1-0", &fields);
    if let Ok(reply) = redis::parse_redis_value(bytes) {
        for (id, fields) in wire::parse_xread(&reply)
            .into_iter()
            .chain(wire::parse_entries(&reply))
        {
            read_entry(&id, &fields);
        }
    }
    if let Ok(msg) = wire::decode_published(bytes) {
        read_stream_message(&msg, "1-0");
    }
}

fn read_entry(id: &str, fields: &[(Vec<u8>, Vec<u8>)]) {
    let _ = wire::is_offset(id);
    let _ = (wire::entry_nsp(fields), wire::entry_type(fields));
    if let Ok(msg) = wire::decode_entry(fields) {
        read_stream_message(&msg, id);
        // Writing the same data back (as a node would) and reading it again never panics.
        if let Some(data) = &msg.data {
            let written = wire::encode_entry(&msg.uid, &msg.nsp, msg.kind, data, false);
            let fields: Vec<(Vec<u8>, Vec<u8>)> = written
                .into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v))
                .collect();
            let _ = wire::decode_entry(&fields);
        }
    }
}

fn read_stream_message(msg: &wire::Message, id: &str) {
    let Some(data) = &msg.data else { return };
    read(data);
    let opts = codec::opts_from_mp(get(data, "opts"));
    let rooms: Vec<Str> = opts.rooms.iter().cloned().collect();
    let except: Vec<Str> = opts.except.iter().cloned().collect();
    let _ = recovery::concerns(&rooms, &rooms, &except);
    if let Some(packet_data) = get(data, "packet").and_then(|p| get(p, "data")) {
        if let Ok(packet) = codec::event_from_mp(Str::from(msg.nsp.as_str()), packet_data) {
            if recovery::is_kept(&packet, &opts) {
                let _ = recovery::with_offset(&packet, id);
            }
        }
    }
}

/// The fuzz input's first line is a recovery offset, the rest a stored session: parsing
/// both never panics, and a session that decodes is written back to the same session.
pub fn session(bytes: &[u8]) {
    let (offset, stored) = match bytes.iter().position(|b| *b == b'\n') {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (&bytes[..0], bytes),
    };
    let _ = wire::is_offset(&String::from_utf8_lossy(offset));
    if let Ok(session) = wire::decode_session(stored) {
        let again = wire::decode_session(wire::encode_session(&session).as_bytes());
        assert!(again.is_ok(), "a decoded session must encode back");
        if let Ok(again) = again {
            assert_eq!(
                (&again.sid, &again.pid, &again.rooms),
                (&session.sid, &session.pid, &session.rooms)
            );
        }
    }
}
