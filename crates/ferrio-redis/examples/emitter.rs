//! An emitter on the command line: one cluster operation, written to Redis by a process that
//! runs no Socket.IO server (as a worker or a cron job would), then exit.
//!
//! ```text
//! cargo run -p ferrio-redis --example emitter -- <redis-url> <operation> <namespace> <room> <event> <json-args> [<except-room>]
//! cargo run -p ferrio-redis --example emitter -- redis://127.0.0.1:6379/ emit / "" hello '["world", 1]'
//! CLUSTER_ADAPTER=sharded cargo run -p ferrio-redis --example emitter -- redis://127.0.0.1:6379/ sockets-join /chat room1 "" '["room2"]'
//! ```
//!
//! | Argument | Meaning |
//! |---|---|
//! | `operation` | `emit`, `sockets-join`, `sockets-leave`, `disconnect-sockets` or `server-side-emit` |
//! | `namespace` | e.g. `/` or `/custom` |
//! | `room` | the target room; `""` targets every socket of the namespace (not used by `server-side-emit`) |
//! | `event` | the event of `emit` and `server-side-emit`; `""` otherwise |
//! | `json-args` | a JSON array: the event's arguments for `emit` and `server-side-emit`, where an object that is exactly `{"$binary": "<base64>"}` stands for binary data; the room names for `sockets-join` and `sockets-leave`; `[close]` for `disconnect-sockets` (`true` also closes the connections) |
//! | `except-room` | optional: leave out the sockets in this room |
//!
//! The environment variable `CLUSTER_ADAPTER` (`classic`, the default, `sharded` or `streams`)
//! picks the format, with the default prefix, key and stream name `socket.io`. Exits with 0 once
//! the message is in Redis, with 1 and a message on error.

use std::process::ExitCode;

use bytes::Bytes;
use ferrio_redis::emitter::{Emitter, Format};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value;

const USAGE: &str = "usage: emitter <redis-url> <operation> <namespace> <room> <event> <json-args> [<except-room>]\n\
    operations: emit, sockets-join, sockets-leave, disconnect-sockets, server-side-emit\n\
    CLUSTER_ADAPTER=classic|sharded|streams picks the format (default classic)";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("emitter: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Vec<String>) -> Result<(), String> {
    let [url, operation, nsp, room, event, json_args, rest @ ..] = args.as_slice() else {
        return Err(USAGE.to_owned());
    };
    let except = match rest {
        [] => None,
        [except] => Some(except.as_str()),
        _ => return Err(USAGE.to_owned()),
    };
    let format = match std::env::var("CLUSTER_ADAPTER").as_deref() {
        Err(_) | Ok("") | Ok("classic") => Format::classic(),
        Ok("sharded") => Format::sharded(),
        Ok("streams") => Format::streams(),
        Ok(other) => return Err(format!("unknown CLUSTER_ADAPTER {other:?}\n{USAGE}")),
    };
    let items = match serde_json::from_str::<Value>(json_args) {
        Ok(Value::Array(items)) => items,
        Ok(_) => return Err("json-args must be a JSON array".to_owned()),
        Err(e) => return Err(format!("json-args is not JSON: {e}")),
    };
    let args = items
        .iter()
        .map(Arg::from_json)
        .collect::<Result<Vec<_>, _>>()?;

    let emitter = Emitter::connect(url, format)
        .await
        .map_err(|e| e.to_string())?
        .of(nsp);
    let mut target = emitter.except(except.map(|room| vec![room]).unwrap_or_default());
    if !room.is_empty() {
        target = target.to(room.as_str());
    }
    let result = match operation.as_str() {
        "emit" => target.emit(event, &args).await,
        "server-side-emit" => emitter.server_side_emit(event, &args).await,
        "sockets-join" => target.sockets_join(room_names(&items)?).await,
        "sockets-leave" => target.sockets_leave(room_names(&items)?).await,
        "disconnect-sockets" => {
            let close = match items.as_slice() {
                [] => false,
                [Value::Bool(close)] => *close,
                _ => return Err("disconnect-sockets takes [close], close a boolean".to_owned()),
            };
            target.disconnect_sockets(close).await
        }
        other => return Err(format!("unknown operation {other:?}\n{USAGE}")),
    };
    result.map_err(|e| e.to_string())
}

fn room_names(items: &[Value]) -> Result<Vec<String>, String> {
    items
        .iter()
        .map(|item| match item {
            Value::String(room) => Ok(room.clone()),
            other => Err(format!("a room name must be a string, not {other}")),
        })
        .collect()
}

/// A JSON argument whose `{"$binary": "<base64>"}` objects are binary data.
enum Arg {
    Binary(Bytes),
    Array(Vec<Arg>),
    Object(Vec<(String, Arg)>),
    Plain(Value),
}

impl Arg {
    fn from_json(value: &Value) -> Result<Arg, String> {
        Ok(match value {
            Value::Object(members) => {
                if let (1, Some(Value::String(text))) = (members.len(), members.get("$binary")) {
                    return decode_base64(text).map(|bytes| Arg::Binary(Bytes::from(bytes)));
                }
                Arg::Object(
                    members
                        .iter()
                        .map(|(k, v)| Ok((k.clone(), Arg::from_json(v)?)))
                        .collect::<Result<_, String>>()?,
                )
            }
            Value::Array(items) => {
                Arg::Array(items.iter().map(Arg::from_json).collect::<Result<_, _>>()?)
            }
            plain => Arg::Plain(plain.clone()),
        })
    }
}

impl Serialize for Arg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Arg::Binary(bytes) => s.serialize_bytes(bytes),
            Arg::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Arg::Object(members) => {
                let mut map = s.serialize_map(Some(members.len()))?;
                for (k, v) in members {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Arg::Plain(value) => value.serialize(s),
        }
    }
}

/// Standard base64 (padding optional; the URL-safe letters are accepted too).
fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return Err(format!("invalid base64 in $binary: {text:?}")),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}
