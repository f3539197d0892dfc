//! The forms of Socket.IO protocol v4 that Engine.IO v3 clients (Socket.IO 2.x) use, and the
//! CONNECT answers that differ between v4 and v5.

use super::json::RawJson;
use super::packet::Packet;
use crate::engine::Protocol;
use crate::{scan, Str};

/// Splits a v4-protocol CONNECT namespace such as `/ok?token=abc` into the namespace and the auth
/// object the query string stands for (`{"token":"abc"}`), as the reference's
/// `url.parse(nsp, true)` does: `+` and percent escapes decoded, a repeated key becomes an array.
///
/// ```
/// use ferrio_proto::socket::split_v4_namespace;
/// let (nsp, auth) = split_v4_namespace("/ok?token=abc&a=1&a=2");
/// assert_eq!(nsp, "/ok");
/// assert_eq!(auth.as_str(), r#"{"token":"abc","a":["1","2"]}"#);
/// ```
pub fn split_v4_namespace(nsp: &str) -> (&str, RawJson) {
    let (path, query) = match nsp.split_once('?') {
        Some((path, query)) => (path, query),
        None => (nsp, ""),
    };
    let mut entries: Vec<(String, Vec<String>)> = Vec::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match entries.iter_mut().find(|(key, _)| *key == k) {
            Some((_, values)) => values.push(v.into_owned()),
            None => entries.push((k.into_owned(), vec![v.into_owned()])),
        }
    }
    let mut json = String::from("{");
    for (i, (k, values)) in entries.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        scan::push_string(&mut json, k);
        json.push(':');
        match values.as_slice() {
            [one] => scan::push_string(&mut json, one),
            many => {
                json.push('[');
                for (j, v) in many.iter().enumerate() {
                    if j > 0 {
                        json.push(',');
                    }
                    scan::push_string(&mut json, v);
                }
                json.push(']');
            }
        }
    }
    json.push('}');
    (path, RawJson::from_trusted(Str::from(json)))
}

/// The id of a socket of an EIO 3 client (`socket.io-client` 2.x), which the client derives
/// from the Engine.IO session id rather than reading it from the CONNECT accept: the session id
/// for `/`, `<nsp>#<sid>` for other namespaces. The reference server uses the same.
///
/// ```
/// use ferrio_proto::socket::v3_socket_id;
/// assert_eq!(&*v3_socket_id("/", "abc"), "abc");
/// assert_eq!(&*v3_socket_id("/chat", "abc"), "/chat#abc");
/// ```
pub fn v3_socket_id(nsp: &str, sid: &str) -> Str {
    if nsp == "/" {
        Str::from(sid)
    } else {
        Str::from(format!("{nsp}#{sid}"))
    }
}

/// The server's CONNECT accept for `protocol`: v5 (EIO 4) carries `{"sid"}` (and `"pid"` with
/// connection state recovery); v4 (EIO 3) carries nothing.
///
/// ```
/// use ferrio_proto::{engine::Protocol, socket::connect_accept};
/// assert_eq!(&**connect_accept(Protocol::V4, "/", "abc", None).encode().message(), r#"40{"sid":"abc"}"#);
/// assert_eq!(&**connect_accept(Protocol::V3, "/ok", "abc", None).encode().message(), "40/ok,");
/// ```
pub fn connect_accept(protocol: Protocol, nsp: &str, sid: &str, pid: Option<&str>) -> Packet {
    match protocol {
        Protocol::V3 => Packet::connect(Str::from(nsp), None),
        Protocol::V4 => {
            // Written by hand to keep the reference's key order: `sid`, then `pid`.
            let sid = scan::quote(sid);
            let text = match pid {
                Some(pid) => format!(r#"{{"sid":{sid},"pid":{}}}"#, scan::quote(pid)),
                None => format!(r#"{{"sid":{sid}}}"#),
            };
            Packet::connect(Str::from(nsp), Some(RawJson::from_trusted(Str::from(text))))
        }
    }
}

/// The server's CONNECT_ERROR for `protocol`: v5 sends `{"message","data"?}`; v4 sends a bare
/// JSON value, `data` if given, else the message string.
///
/// ```
/// use ferrio_proto::{engine::Protocol, socket::{connect_error, RawJson}};
/// let data = RawJson::parse(r#"{"reason":"bad token"}"#).unwrap();
/// assert_eq!(
///     &**connect_error(Protocol::V4, "/auth", "not authorized", Some(&data)).encode().message(),
///     r#"44/auth,{"message":"not authorized","data":{"reason":"bad token"}}"#
/// );
/// assert_eq!(&**connect_error(Protocol::V3, "/admin", "denied", None).encode().message(), r#"44/admin,"denied""#);
/// ```
pub fn connect_error(
    protocol: Protocol,
    nsp: &str,
    message: &str,
    data: Option<&RawJson>,
) -> Packet {
    let body = match protocol {
        Protocol::V3 => data.cloned().unwrap_or_else(|| RawJson::string(message)),
        Protocol::V4 => {
            let message = scan::quote(message);
            let text = match data {
                Some(d) => format!(r#"{{"message":{message},"data":{d}}}"#),
                None => format!(r#"{{"message":{message}}}"#),
            };
            RawJson::from_trusted(Str::from(text))
        }
    };
    Packet::connect_error(Str::from(nsp), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_namespace_query() {
        assert_eq!(split_v4_namespace("/").0, "/");
        assert_eq!(split_v4_namespace("/").1.as_str(), "{}");
        let (nsp, auth) = split_v4_namespace("/a?x=%20y+z&flag");
        assert_eq!(nsp, "/a");
        assert_eq!(auth.as_str(), r#"{"x":" y z","flag":""}"#);
    }
}
