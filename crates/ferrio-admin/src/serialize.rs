//! The `SerializedSocket` the Admin UI lists: a socket of this server or one fetched from the
//! cluster, in the reference's shape.

use ferrio_server::{RemoteSocket, Socket};
use serde::Serialize;
use serde_json::{Map, Value};

/// The key of the admin's part of a socket's shared data (`socket.data._admin`).
pub(crate) const ADMIN_KEY: &str = "_admin";

/// A socket as the UI lists it (the reference's `SerializedSocket`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SerializedSocket {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transport: Option<String>,
    nsp: String,
    data: Value,
    handshake: Value,
    rooms: Vec<String>,
}

/// The first 12 characters of an Engine.IO session id (the reference's `clientId`).
pub(crate) fn client_id(engine_id: &str) -> String {
    engine_id.chars().take(12).collect()
}

/// `{clientId, transport}`, the admin's part of a socket's shared data.
pub(crate) fn admin_data(socket: &Socket, transport: &str) -> Value {
    serde_json::json!({
        "clientId": client_id(socket.engine_id()),
        "transport": transport,
    })
}

/// A socket of this server.
pub(crate) fn local(socket: &Socket) -> SerializedSocket {
    SerializedSocket {
        id: socket.id().to_owned(),
        client_id: Some(client_id(socket.engine_id())),
        transport: Some(socket.transport().name().to_owned()),
        nsp: socket.nsp().to_owned(),
        data: without_admin(&socket.shared_data()),
        handshake: handshake(&socket.handshake().to_json()),
        rooms: socket.rooms(),
    }
}

/// A fetched socket of namespace `nsp`: the live one when it is on this server, else what the
/// cluster said of it (`data._admin` for the client id and the transport).
pub(crate) fn fetched(socket: &RemoteSocket, nsp: &str, live: Option<&Socket>) -> SerializedSocket {
    let admin = socket.data().get(ADMIN_KEY);
    let field = |name: &str| {
        admin
            .and_then(|a| a.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    SerializedSocket {
        id: socket.id().to_owned(),
        client_id: live
            .map(|s| client_id(s.engine_id()))
            .or_else(|| field("clientId")),
        transport: live
            .map(|s| s.transport().name().to_owned())
            .or_else(|| field("transport")),
        nsp: nsp.to_owned(),
        data: without_admin(socket.data()),
        handshake: handshake(socket.handshake()),
        rooms: socket.rooms().to_vec(),
    }
}

/// The shared data without the admin's part.
pub(crate) fn without_admin(data: &Value) -> Value {
    match data {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| k.as_str() != ADMIN_KEY)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The handshake as the UI shows it: `address` (the `cf-connecting-ip` or `x-forwarded-for`
/// header when there is one), `headers`, `query`, `issued`, `secure`, `time`, `url`,
/// `xdomain`; never `auth`.
fn handshake(full: &Value) -> Value {
    let header = |name: &str| {
        full.get("headers")
            .and_then(|h| h.get(name))
            .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
            .cloned()
    };
    let address = header("cf-connecting-ip")
        .or_else(|| header("x-forwarded-for"))
        .or_else(|| full.get("address").cloned())
        .unwrap_or(Value::Null);
    let mut out = Map::new();
    out.insert("address".into(), address);
    for key in [
        "headers", "query", "issued", "secure", "time", "url", "xdomain",
    ] {
        out.insert(key.into(), full.get(key).cloned().unwrap_or(Value::Null));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handshake_keeps_the_reference_keys_and_prefers_proxy_headers() {
        let full = serde_json::json!({
            "headers": {"x-forwarded-for": "10.0.0.1", "host": "h"},
            "time": "t", "address": "127.0.0.1", "xdomain": false, "secure": false,
            "issued": 1, "url": "/socket.io/?EIO=4", "query": {"EIO": "4"},
            "auth": {"password": "secret"},
        });
        let h = handshake(&full);
        let mut keys: Vec<&str> = h
            .as_object()
            .expect("object")
            .keys()
            .map(|k| k.as_str())
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["address", "headers", "issued", "query", "secure", "time", "url", "xdomain"]
        );
        assert_eq!(h["address"], "10.0.0.1");
        let mut plain = full.clone();
        plain["headers"] = serde_json::json!({});
        assert_eq!(handshake(&plain)["address"], "127.0.0.1");
    }

    #[test]
    fn the_admin_part_is_not_shown() {
        let data = serde_json::json!({"_admin": {"clientId": "x"}, "user": "ann"});
        assert_eq!(without_admin(&data), serde_json::json!({"user": "ann"}));
        assert_eq!(client_id("abcdefghijklmnop"), "abcdefghijkl");
        assert_eq!(client_id("short"), "short");
    }
}
