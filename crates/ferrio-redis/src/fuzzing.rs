//! Entry points for the fuzz targets (not a public API): everything a message read from Redis
//! goes through before it reaches a namespace.

use ferrio_proto::Str;
use rmpv::Value as Mp;

use crate::codec::{self, get, get_str};

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
