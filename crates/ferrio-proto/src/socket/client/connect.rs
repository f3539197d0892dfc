//! A socket's connection over the manager's: the CONNECT (its auth, asked for again on every
//! connection, and the recovery pid and offset), the accept (held events, then the send buffer,
//! then the delivery queue, then `connect`), the refusal, and the socket's close. Events handed
//! to the application record the offset a recovery resumes from.

use std::borrow::Cow;

use super::{Auth, DisconnectReason, Event, Manager, SocketId};
use crate::socket::json::RawJson;
use crate::socket::packet::Packet;
use crate::{scan, Instant, Str};

const V2_SERVER: &str = "It seems you are trying to reach a Socket.IO server in v2.x with a v3.x client, but they are not compatible (more information here: https://socket.io/docs/v3/migrating-from-2-x-to-3-0/)";

impl Manager {
    /// Socket `onopen`: send the CONNECT, or ask for its auth first.
    pub(super) fn socket_on_open(&mut self, _now: Instant, socket: SocketId) {
        let s = &mut self.sockets[socket.index()];
        match &s.options.auth {
            Auth::Static(auth) => {
                let auth = auth.clone();
                self.send_connect(socket, auth);
            }
            Auth::Callback => {
                if !s.awaiting_auth {
                    s.awaiting_auth = true;
                    self.event(Event::AuthNeeded { socket });
                }
            }
        }
    }

    /// `_sendConnectPacket`: with a pid, `{"pid","offset",...auth}` (auth keys override).
    pub(super) fn send_connect(&mut self, socket: SocketId, auth: Option<RawJson>) {
        let s = &self.sockets[socket.index()];
        let data = match &s.pid {
            Some(pid) => Some(recovery_payload(
                pid,
                s.last_offset.as_deref(),
                auth.as_ref(),
            )),
            None => auth,
        };
        let encoded = self
            .config
            .parser
            .encode(&Packet::connect(s.nsp.clone(), data));
        let _ = self.engine.enqueue(encoded.frame_list(), true, false);
        self.sockets[socket.index()].connect_pending = true;
    }

    /// Socket `onclose`.
    pub(super) fn on_socket_close(
        &mut self,
        now: Instant,
        socket: SocketId,
        reason: DisconnectReason,
        description: Option<String>,
    ) {
        let s = &mut self.sockets[socket.index()];
        s.connected = false;
        s.sid = None;
        s.awaiting_auth = false;
        // Events held for an accept that will not come on this connection are dropped, so they
        // are neither delivered on a later session nor twice after a recovery replays them.
        s.receive_buffer.clear();
        self.event(Event::Disconnect {
            socket,
            reason,
            description,
        });
        self.clear_acks(now, socket);
    }

    /// CONNECT from the server: the accept, with the socket's sid (and pid).
    pub(super) fn on_connect_packet(&mut self, now: Instant, socket: SocketId, packet: &Packet) {
        let field = |name: &str| {
            packet
                .data()
                .and_then(|d| scan::member(d.as_str(), name))
                .and_then(scan::string)
                .filter(|s| !s.is_empty())
                .map(|s| Str::from(s.into_owned()))
        };
        match field("sid") {
            Some(sid) => {
                let pid = field("pid");
                self.on_connect(now, socket, sid, pid);
            }
            None => self.event(Event::ConnectError {
                socket,
                message: V2_SERVER.to_owned(),
                data: None,
                retrying: self.sockets[socket.index()].active,
            }),
        }
    }

    /// CONNECT_ERROR: the server refused the socket, which becomes inactive.
    pub(super) fn on_connect_error(&mut self, now: Instant, socket: SocketId, packet: &Packet) {
        self.destroy(now, socket);
        let (message, data) = connect_error_parts(packet);
        self.event(Event::ConnectError {
            socket,
            message,
            data,
            retrying: false,
        });
    }

    /// Socket `onconnect`: received events first, then the send buffer, then the delivery
    /// queue's head, then `connect`.
    fn on_connect(&mut self, now: Instant, socket: SocketId, sid: Str, pid: Option<Str>) {
        let s = &mut self.sockets[socket.index()];
        s.sid = Some(sid.clone());
        let recovered = pid.is_some() && s.pid == pid;
        s.recovered = recovered;
        s.pid = pid;
        s.connected = true;
        s.awaiting_auth = false;
        let received = std::mem::take(&mut s.receive_buffer);
        let to_send = std::mem::take(&mut s.send_buffer);
        for packet in received {
            self.deliver(socket, packet);
        }
        for b in to_send {
            let _ = self
                .engine
                .enqueue(b.encoded.frame_list(), b.compress, false);
            if let Some(packet) = b.sent {
                self.event(Event::Sent { socket, packet });
            }
        }
        self.drain_queue(now, socket, true);
        self.event(Event::Connect {
            socket,
            sid,
            recovered,
        });
    }

    /// `emitEvent`: hands the event over and records its offset for recovery (the last element
    /// of the data array when it is a string, the pid being set, and no ack id attached: the
    /// reference appends its ack callback to the arguments first).
    pub(super) fn deliver(&mut self, socket: SocketId, packet: Packet) {
        // (A payload whose JSON check was deferred gives an offset only once it reads as JSON.)
        if self.sockets[socket.index()].pid.is_some()
            && packet.id().is_none()
            && self.reads_as_json(&packet)
        {
            if let Some(offset) = packet.data().and_then(|d| last_string(d.as_str())) {
                self.sockets[socket.index()].last_offset = Some(offset);
            }
        }
        self.event(Event::Event { socket, packet });
    }
}

/// The message and data of a CONNECT_ERROR: `{"message","data"?}` (v5), or a bare string.
fn connect_error_parts(packet: &Packet) -> (String, Option<RawJson>) {
    let Some(data) = packet.data() else {
        return (String::new(), None);
    };
    let text = data.as_str();
    let read = |token: &str| scan::string(token).map_or_else(|| token.to_owned(), Cow::into_owned);
    match scan::validate(text) {
        Some(scan::Kind::Object) => {
            let message = scan::member(text, "message").map(read).unwrap_or_default();
            let data = scan::member(text, "data")
                .and_then(|d| data.as_shared().slice_ref(d))
                .map(RawJson::from_trusted);
            (message, data)
        }
        _ => (read(text), None),
    }
}

/// `Object.assign({ pid, offset }, auth)` as JSON text: `pid` then `offset` (left out when
/// there is none), then the auth members; an auth key equal to an earlier one replaces its value
/// in place. The auth members keep their text and order.
fn recovery_payload(pid: &str, offset: Option<&str>, auth: Option<&RawJson>) -> RawJson {
    let pid = scan::quote(pid);
    let offset = offset.map(scan::quote);
    let mut members: Vec<(Cow<'_, str>, Option<&str>)> = vec![
        (Cow::Borrowed("pid"), Some(&pid)),
        (Cow::Borrowed("offset"), offset.as_deref()),
    ];
    for (key, value) in scan::object_members(auth.map_or("", |a| a.as_str())) {
        let Some(key) = scan::string(key) else {
            continue;
        };
        match members.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = Some(value),
            None => members.push((key, Some(value))),
        }
    }
    let mut text = String::from("{");
    for (key, value) in members {
        let Some(value) = value else {
            continue;
        };
        if text.len() > 1 {
            text.push(',');
        }
        scan::push_string(&mut text, &key);
        text.push(':');
        text.push_str(value);
    }
    text.push('}');
    RawJson::from_trusted(Str::from(text))
}

/// The last element of a JSON array if it is a string.
fn last_string(json: &str) -> Option<String> {
    scan::string(scan::array_items(json).last()?).map(Cow::into_owned)
}

// Unit tests of the two private helpers above; the manager's behaviour is tested through the
// public API in `tests/socket_client.rs`.
#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> RawJson {
        RawJson::parse(s).expect("json")
    }

    #[test]
    fn recovery_payload_merges_auth_like_object_assign() {
        assert_eq!(recovery_payload("p", None, None).as_str(), r#"{"pid":"p"}"#);
        assert_eq!(
            recovery_payload(
                "p",
                Some("o"),
                Some(&raw(r#"{ "a" : 1, "offset":"mine", "b":{"c":[1,"}"]} }"#))
            )
            .as_str(),
            r#"{"pid":"p","offset":"mine","a":1,"b":{"c":[1,"}"]}}"#
        );
        // an offset given only by auth keeps the second place, as in the JavaScript object
        assert_eq!(
            recovery_payload("p", None, Some(&raw(r#"{"x":"\"","offset":2}"#))).as_str(),
            r#"{"pid":"p","offset":2,"x":"\""}"#
        );
        assert_eq!(
            recovery_payload("p", Some("o"), Some(&raw("{}"))).as_str(),
            r#"{"pid":"p","offset":"o"}"#
        );
    }

    #[test]
    fn last_string_element() {
        assert_eq!(last_string(r#"["e",1,"o"]"#).as_deref(), Some("o"));
        assert_eq!(last_string(r#"["e",{"a":"b"}]"#), None);
        assert_eq!(last_string(r#"["a\"b"]"#).as_deref(), Some("a\"b"));
        assert_eq!(last_string(r#"["e",[1,"x"],null]"#), None);
        assert_eq!(last_string("[]"), None);
    }
}
