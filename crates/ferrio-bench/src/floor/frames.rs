//! The floor server's packet handling: string scanning only, no JSON parse. It finds the
//! packet type, the ack id, the event name and the arguments' text by scanning, and builds
//! the answers by concatenation.

/// A Socket.IO packet as the floor sees it (the text after the Engine.IO `4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    /// CONNECT to the namespace `nsp` (`/` when none is named).
    Connect {
        /// The namespace.
        nsp: &'a str,
    },
    /// DISCONNECT from the default namespace.
    Disconnect,
    /// EVENT (`attachments` 0) or BINARY_EVENT on the default namespace.
    Event {
        /// The number of binary attachments that follow (BINARY_EVENT).
        attachments: usize,
        /// The ack id's digits, if the sender asked for an ack.
        id: Option<&'a str>,
        /// The event name (its JSON string's content).
        name: &'a str,
        /// The arguments after the name, as their JSON text (`` when there are none).
        args: &'a str,
    },
    /// Anything else (other namespaces, acks from the client, malformed text).
    Other,
}

/// The leading ASCII digits of `s` and the rest.
fn digits(s: &str) -> (&str, &str) {
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    s.split_at(end)
}

/// The end (exclusive) of the JSON string starting at `s[0] == '"'`.
fn string_end(s: &[u8]) -> Option<usize> {
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// The end (exclusive) of the one JSON value at the start of `s`: a string, an object or an
/// array (brackets counted outside strings), or a scalar up to the next `,`, `]` or `}`.
pub fn value_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    match b.first()? {
        b'"' => string_end(b),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = 0;
            while i < b.len() {
                match b[i] {
                    b'"' => {
                        i += string_end(&b[i..])?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        _ => Some(
            b.iter()
                .position(|c| matches!(c, b',' | b']' | b'}'))
                .unwrap_or(b.len()),
        ),
    }
}

/// Scans a Socket.IO packet (without the Engine.IO `4`).
pub fn parse(sio: &str) -> Packet<'_> {
    let Some(kind) = sio.bytes().next() else {
        return Packet::Other;
    };
    let rest = &sio[1..];
    match kind {
        b'0' => {
            let nsp = if rest.starts_with('/') {
                rest.split(',').next().unwrap_or("/")
            } else {
                "/"
            };
            Packet::Connect { nsp }
        }
        b'1' if rest.is_empty() || rest.starts_with(',') || rest == "/," => Packet::Disconnect,
        b'2' | b'5' => {
            let (attachments, rest) = if kind == b'5' {
                let (n, rest) = digits(rest);
                match (n.parse::<usize>(), rest.strip_prefix('-')) {
                    (Ok(n), Some(rest)) => (n, rest),
                    _ => return Packet::Other,
                }
            } else {
                (0, rest)
            };
            if rest.starts_with('/') {
                return Packet::Other;
            }
            let (id, data) = digits(rest);
            let id = (!id.is_empty()).then_some(id);
            let Some(inner) = data.strip_prefix('[').and_then(|d| d.strip_suffix(']')) else {
                return Packet::Other;
            };
            if !inner.starts_with('"') {
                return Packet::Other;
            }
            let Some(end) = string_end(inner.as_bytes()) else {
                return Packet::Other;
            };
            let name = &inner[1..end - 1];
            let args = match inner[end..].strip_prefix(',') {
                Some(args) => args,
                None if inner.len() == end => "",
                None => return Packet::Other,
            };
            Packet::Event {
                attachments,
                id,
                name,
                args,
            }
        }
        _ => Packet::Other,
    }
}

/// The first argument's JSON text and the text of the others (`` when there are none).
pub fn split_first(args: &str) -> Option<(&str, &str)> {
    let end = value_end(args)?;
    let rest = &args[end..];
    Some((&args[..end], rest.strip_prefix(',').unwrap_or(rest)))
}

/// A room name as the servers write it: a string's content, or any other value's text.
pub fn room_name(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

/// The Engine.IO open packet for session `sid`.
pub fn open_packet(sid: &str, polling: bool) -> String {
    let upgrades = if polling { r#"["websocket"]"# } else { "[]" };
    format!(
        r#"0{{"sid":"{sid}","upgrades":{upgrades},"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}}"#
    )
}

/// The answer to a CONNECT to `/`.
pub fn connect_reply(sid: &str) -> String {
    format!(r#"40{{"sid":"{sid}"}}"#)
}

/// The answer to a CONNECT to another namespace.
pub fn connect_error(nsp: &str) -> String {
    format!(r#"44{nsp},{{"message":"Invalid namespace"}}"#)
}

/// The ack `id` with the arguments `args` (their JSON text).
pub fn ack(id: &str, args: &str) -> String {
    let mut s = String::with_capacity(args.len() + id.len() + 4);
    s.push_str("43");
    s.push_str(id);
    s.push('[');
    s.push_str(args);
    s.push(']');
    s
}

/// The BINARY_ACK `id` with `attachments` attachments and the arguments `args`.
pub fn binary_ack(attachments: usize, id: &str, args: &str) -> String {
    format!("46{attachments}-{id}[{args}]")
}

/// The `msg` event with the arguments `args`, as every receiver of a broadcast gets it.
pub fn msg_event(args: &str) -> String {
    let mut s = String::with_capacity(args.len() + 10);
    s.push_str("42[\"msg\"");
    if !args.is_empty() {
        s.push(',');
        s.push_str(args);
    }
    s.push(']');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOAD: &str = r#"{"text":"hello","from":"abc","n":42}"#;

    /// The bench's acked echo: the ack id and the argument are found, and the ack carries the
    /// argument's text unchanged.
    #[test]
    fn echo_event_gives_its_id_and_argument() {
        let text = format!("2123[\"echo\",{PAYLOAD}]");
        let p = parse(&text);
        assert_eq!(
            p,
            Packet::Event {
                attachments: 0,
                id: Some("123"),
                name: "echo",
                args: PAYLOAD
            }
        );
        assert_eq!(ack("123", PAYLOAD), format!("43123[{PAYLOAD}]"));
    }

    /// Without an id there is no ack; without arguments the args are empty; names with
    /// escaped quotes and brackets inside strings do not confuse the scan.
    #[test]
    fn events_without_id_or_arguments_and_tricky_strings() {
        assert_eq!(
            parse(r#"2["broadcast",[1,"]"],2]"#),
            Packet::Event {
                attachments: 0,
                id: None,
                name: "broadcast",
                args: r#"[1,"]"],2"#
            }
        );
        assert_eq!(
            parse(r#"27["ping"]"#),
            Packet::Event {
                attachments: 0,
                id: Some("7"),
                name: "ping",
                args: ""
            }
        );
        assert_eq!(
            parse(r#"2["a\"b",1]"#),
            Packet::Event {
                attachments: 0,
                id: None,
                name: r#"a\"b"#,
                args: "1"
            }
        );
        assert_eq!(parse(r#"2/admin,["echo",1]"#), Packet::Other);
        assert_eq!(parse("2[1]"), Packet::Other);
        assert_eq!(parse(r#"2["echo""#), Packet::Other);
        assert_eq!(parse(""), Packet::Other);
        assert_eq!(msg_event(PAYLOAD), format!("42[\"msg\",{PAYLOAD}]"));
        assert_eq!(msg_event(""), "42[\"msg\"]");
    }

    /// The bench's binary echo: the attachment count and id are read, and the BINARY_ACK
    /// keeps the placeholder.
    #[test]
    fn binary_event_gives_a_binary_ack() {
        let p = parse(r#"51-9["echo_bin",{"_placeholder":true,"num":0}]"#);
        let Packet::Event {
            attachments,
            id: Some(id),
            name,
            args,
        } = p
        else {
            panic!("{p:?}");
        };
        assert_eq!((attachments, id, name), (1, "9", "echo_bin"));
        assert_eq!(
            binary_ack(attachments, id, args),
            r#"461-9[{"_placeholder":true,"num":0}]"#
        );
        assert_eq!(parse(r#"51["echo_bin",1]"#), Packet::Other);
    }

    /// `to_room`: the room (a string or another value) and the payload are split apart.
    #[test]
    fn first_argument_and_room_names() {
        let args = format!("\"r,1\",{PAYLOAD}");
        let (room, rest) = split_first(&args).unwrap();
        assert_eq!((room_name(room), rest), ("r,1", PAYLOAD));
        assert_eq!(split_first("42,true"), Some(("42", "true")));
        assert_eq!(room_name("42"), "42");
        assert_eq!(
            split_first(r#"{"a":[1,{"b":"}"}]},2"#),
            Some((r#"{"a":[1,{"b":"}"}]}"#, "2"))
        );
        assert_eq!(split_first("\"only\""), Some(("\"only\"", "")));
        assert_eq!(split_first("[1,2"), None);
    }

    /// The handshake frames the real servers send.
    #[test]
    fn handshake_frames() {
        assert_eq!(parse("0"), Packet::Connect { nsp: "/" });
        assert_eq!(parse(r#"0{"token":"x"}"#), Packet::Connect { nsp: "/" });
        assert_eq!(parse("0/admin,"), Packet::Connect { nsp: "/admin" });
        assert_eq!(parse("1"), Packet::Disconnect);
        assert_eq!(connect_reply("s1"), r#"40{"sid":"s1"}"#);
        assert_eq!(
            connect_error("/admin"),
            r#"44/admin,{"message":"Invalid namespace"}"#
        );
        let open = open_packet("abc", true);
        assert!(
            open.starts_with(r#"0{"sid":"abc","upgrades":["websocket"],"#),
            "{open}"
        );
        assert!(open_packet("abc", false).contains(r#""upgrades":[]"#));
    }
}
