//! Socket.IO packets and their encoder.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::json::{
    ack_json, deserialize_args, deserialize_value, event_json, with_ack_json, RawJson,
};
use crate::engine::{self, Frame};
use crate::str::{decimal_len, push_decimal};
use crate::Str;

/// The Socket.IO packet types, numbered as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// `0`: join a namespace (client), or accept a join (server).
    Connect = 0,
    /// `1`: leave a namespace.
    Disconnect = 1,
    /// `2`: an event.
    Event = 2,
    /// `3`: the answer to an event that carried an ack id.
    Ack = 3,
    /// `4`: a refused join.
    ConnectError = 4,
    /// `5`: an event with binary attachments.
    BinaryEvent = 5,
    /// `6`: an ack with binary attachments.
    BinaryAck = 6,
}

impl PacketType {
    /// The type for a wire digit `0`–`6`.
    pub fn from_digit(d: u32) -> Option<PacketType> {
        Some(match d {
            0 => PacketType::Connect,
            1 => PacketType::Disconnect,
            2 => PacketType::Event,
            3 => PacketType::Ack,
            4 => PacketType::ConnectError,
            5 => PacketType::BinaryEvent,
            6 => PacketType::BinaryAck,
            _ => return None,
        })
    }

    /// True for `Event` and `BinaryEvent`.
    pub fn is_event(self) -> bool {
        matches!(self, PacketType::Event | PacketType::BinaryEvent)
    }

    /// True for `Ack` and `BinaryAck`.
    pub fn is_ack(self) -> bool {
        matches!(self, PacketType::Ack | PacketType::BinaryAck)
    }
}

/// An ack id as a packet carries it, kept exact.
///
/// The reference reads the id of a received packet with `Number(...)`, so it accepts any run of
/// digits; Ferrio keeps the value exact: a `u64` when it fits, otherwise the digits themselves
/// (without leading zeros, as `Number` drops them), so that an ACK answers with the very id the
/// peer sent. The ids a Ferrio server or client issues are `u64` counters; a longer one only
/// comes from a peer. Its length is bounded by the packet it came in, which the transport
/// bounds (the server's `max_http_buffer_size`, say): nothing else limits it.
///
/// Not to be confused with the client's [`client::AckId`](super::client::AckId), the handle of
/// an emit waiting for its answer.
///
/// ```
/// use ferrio_proto::socket::{AckId, Decoder};
/// let p = Decoder::new().decode_text(r#"2007["a"]"#.into()).unwrap().unwrap();
/// assert_eq!(p.id(), Some(&AckId::from(7)));
/// let big = r#"2123456789012345678901234567890["a"]"#;
/// let p = Decoder::new().decode_text(big.into()).unwrap().unwrap();
/// let id = p.id().unwrap();
/// assert_eq!((id.as_u64(), id.to_string().as_str()), (None, "123456789012345678901234567890"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AckId(AckIdRepr);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum AckIdRepr {
    Num(u64),
    /// More than 20 digits, or 20 above `u64::MAX`; the first is not `0`. Boxed: a packet
    /// carries an id in every event and ack, and this rare form would make every one larger.
    Digits(Box<str>),
}

impl AckId {
    /// The id as a number, when it fits in a `u64` (always for the ids Ferrio issues).
    pub fn as_u64(&self) -> Option<u64> {
        match self.0 {
            AckIdRepr::Num(n) => Some(n),
            AckIdRepr::Digits(_) => None,
        }
    }

    /// The id of a run of ASCII digits, as `Number(digits)` reads it but exact.
    pub(crate) fn from_digits(digits: &str) -> AckId {
        AckId(match crate::scan::unsigned(digits) {
            Some(n) => AckIdRepr::Num(n),
            None if digits.is_empty() => AckIdRepr::Num(0),
            None => {
                let zeros = digits.bytes().take_while(|&b| b == b'0').count();
                // A copy: an id kept by the application does not keep the packet's buffer
                // alive.
                AckIdRepr::Digits(Box::from(digits.get(zeros..).unwrap_or_default()))
            }
        })
    }

    /// Writes the id in decimal.
    fn push_to(&self, out: &mut String) {
        match &self.0 {
            AckIdRepr::Num(n) => push_decimal(out, *n),
            AckIdRepr::Digits(d) => out.push_str(d),
        }
    }

    /// The length of the id written in decimal.
    fn written_len(&self) -> usize {
        match &self.0 {
            AckIdRepr::Num(n) => decimal_len(*n),
            AckIdRepr::Digits(d) => d.len(),
        }
    }
}

impl From<u64> for AckId {
    fn from(n: u64) -> AckId {
        AckId(AckIdRepr::Num(n))
    }
}

/// An id written in decimal, of any length (as a packet carries it, without the white space
/// the decoder trims): `"123456789012345678901234567890".parse::<AckId>()`.
impl std::str::FromStr for AckId {
    type Err = super::DecodeError;

    fn from_str(digits: &str) -> Result<AckId, super::DecodeError> {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(super::DecodeError::InvalidAckId);
        }
        Ok(AckId::from_digits(digits))
    }
}

/// The id of a received event, to answer it: `Packet::ack_with(nsp, event.id()?, args)`.
impl From<&AckId> for AckId {
    fn from(id: &AckId) -> AckId {
        id.clone()
    }
}

impl fmt::Display for AckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            AckIdRepr::Num(n) => fmt::Display::fmt(n, f),
            AckIdRepr::Digits(d) => f.write_str(d),
        }
    }
}

/// The namespace every client joins by default.
pub const MAIN_NAMESPACE: Str = Str::from_static("/");

/// One Socket.IO packet: type, namespace, optional ack id, optional JSON data, and the binary
/// attachments its data refers to through placeholders.
///
/// Packets are built with the constructors below, which keep the type and the attachments
/// consistent (an event with attachments is a `BinaryEvent`), so encoding cannot fail.
/// Decoded packets share memory with the frame they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub(crate) kind: PacketType,
    pub(crate) nsp: Str,
    pub(crate) id: Option<AckId>,
    pub(crate) data: Option<RawJson>,
    pub(crate) attachments: Vec<Bytes>,
}

/// The namespace as the protocol writes it: with its leading `/`.
pub(crate) fn normalize_nsp(nsp: Str) -> Str {
    if nsp.starts_with('/') {
        nsp
    } else {
        let mut s = String::with_capacity(nsp.len() + 1);
        s.push('/');
        s.push_str(&nsp);
        Str::from(s)
    }
}

impl Packet {
    /// A CONNECT: the client joins `nsp` (with optional auth), or the server accepts it.
    pub fn connect(nsp: impl Into<Str>, data: Option<RawJson>) -> Packet {
        Packet {
            kind: PacketType::Connect,
            nsp: normalize_nsp(nsp.into()),
            id: None,
            data,
            attachments: Vec::new(),
        }
    }

    /// A DISCONNECT for `nsp`.
    pub fn disconnect(nsp: impl Into<Str>) -> Packet {
        Packet {
            kind: PacketType::Disconnect,
            nsp: normalize_nsp(nsp.into()),
            id: None,
            data: None,
            attachments: Vec::new(),
        }
    }

    /// An EVENT whose data is the JSON array `[name, ...args]`; with attachments it is a
    /// BINARY_EVENT and `data` refers to them through placeholders.
    pub fn event(nsp: impl Into<Str>, data: RawJson, attachments: Vec<Bytes>) -> Packet {
        let kind = if attachments.is_empty() {
            PacketType::Event
        } else {
            PacketType::BinaryEvent
        };
        Packet {
            kind,
            nsp: normalize_nsp(nsp.into()),
            id: None,
            data: Some(data),
            attachments,
        }
    }

    /// An ACK answering `id` (the id of the event, as received); with attachments it is a
    /// BINARY_ACK.
    pub fn ack(
        nsp: impl Into<Str>,
        id: impl Into<AckId>,
        data: RawJson,
        attachments: Vec<Bytes>,
    ) -> Packet {
        let kind = if attachments.is_empty() {
            PacketType::Ack
        } else {
            PacketType::BinaryAck
        };
        Packet {
            kind,
            nsp: normalize_nsp(nsp.into()),
            id: Some(id.into()),
            data: Some(data),
            attachments,
        }
    }

    /// A CONNECT_ERROR carrying `data` (v5: `{"message":…,"data"?:…}`; v4 protocol: a string).
    pub fn connect_error(nsp: impl Into<Str>, data: RawJson) -> Packet {
        Packet {
            kind: PacketType::ConnectError,
            nsp: normalize_nsp(nsp.into()),
            id: None,
            data: Some(data),
            attachments: Vec::new(),
        }
    }

    /// An event built from typed arguments: `args` serialises as a sequence (a tuple; `(x,)` for
    /// one argument, `()` for none), and every `Bytes` in it becomes an attachment.
    ///
    /// ```
    /// use ferrio_proto::socket::Packet;
    /// let p = Packet::event_with("/chat", "message", &("hello", 1)).unwrap().with_id(3);
    /// assert_eq!(&*p.encode().message(), r#"42/chat,3["message","hello",1]"#);
    /// ```
    pub fn event_with<T: Serialize + ?Sized>(
        nsp: impl Into<Str>,
        name: &str,
        args: &T,
    ) -> Result<Packet, serde_json::Error> {
        let (data, attachments) = event_json(name, args)?;
        Ok(Packet::event(nsp, data, attachments))
    }

    /// An event for the application to send: refused for a reserved name (see
    /// [`super::is_reserved_event`]), as the reference's `emit` refuses it, otherwise built as
    /// [`Packet::event_with`] does. Servers and clients build their emits with it, so the rule
    /// is applied in one place.
    ///
    /// ```
    /// use ferrio_proto::socket::{EventError, Packet};
    /// assert!(Packet::outgoing_event("/", "chat", &("hi",)).is_ok());
    /// assert!(matches!(Packet::outgoing_event("/", "disconnect", &()), Err(EventError::Reserved(_))));
    /// ```
    pub fn outgoing_event<T: Serialize + ?Sized>(
        nsp: impl Into<Str>,
        name: &str,
        args: &T,
    ) -> Result<Packet, super::EventError> {
        if super::is_reserved_event(name) {
            return Err(super::EventError::Reserved(name.to_owned()));
        }
        Packet::event_with(nsp, name, args).map_err(super::EventError::Serialize)
    }

    /// An ack built from typed arguments (a tuple, as for [`Packet::event_with`]).
    pub fn ack_with<T: Serialize + ?Sized>(
        nsp: impl Into<Str>,
        id: impl Into<AckId>,
        args: &T,
    ) -> Result<Packet, serde_json::Error> {
        let (data, attachments) = ack_json(args)?;
        Ok(Packet::ack(nsp, id, data, attachments))
    }

    /// The same packet with an ack id (the sender expects an ACK).
    pub fn with_id(mut self, id: impl Into<AckId>) -> Packet {
        self.id = Some(id.into());
        self
    }

    /// The same packet in another namespace (a broadcast re-targeted, say).
    pub fn with_nsp(mut self, nsp: impl Into<Str>) -> Packet {
        self.nsp = normalize_nsp(nsp.into());
        self
    }

    /// The packet type as on the wire.
    pub fn kind(&self) -> PacketType {
        self.kind
    }

    /// The namespace (`/` when none was written).
    pub fn nsp(&self) -> &Str {
        &self.nsp
    }

    /// The ack id, if any.
    pub fn id(&self) -> Option<&AckId> {
        self.id.as_ref()
    }

    /// The JSON data, kept as text (placeholders included for binary packets). Valid JSON,
    /// except a text event's from a decoder whose check is deferred
    /// ([`Decoder::defer_json_check`](super::Decoder::defer_json_check)): checked for its shape
    /// only.
    pub fn data(&self) -> Option<&RawJson> {
        self.data.as_ref()
    }

    /// The binary attachments, in placeholder order.
    pub fn attachments(&self) -> &[Bytes] {
        &self.attachments
    }

    /// The event name of an EVENT or BINARY_EVENT (a numeric name is given as JavaScript's
    /// `String(n)` would write it). `None` for other packets or an event without data.
    pub fn event_name(&self) -> Option<Cow<'_, str>> {
        if !self.kind.is_event() {
            return None;
        }
        let data = self.data.as_ref()?;
        super::validate::event_name(data.as_str())
    }

    /// True for an EVENT or BINARY_EVENT whose first element is a number or a string that is not
    /// reserved (what [`Packet::event_name`] checks, without writing the name).
    pub(crate) fn has_event_name(&self) -> bool {
        self.kind.is_event()
            && self
                .data
                .as_ref()
                .is_some_and(|d| super::validate::has_event_name(d.as_str()))
    }

    /// Deserialises the arguments into `T`: after the event name for events, all elements for
    /// acks. `T` reads them as a sequence: a tuple (`(A,)` for one), or a struct. Placeholders
    /// become `Bytes` (or any type that deserialises from bytes). Missing data reads as `[]`.
    ///
    /// ```
    /// use ferrio_proto::socket::{Decoder, Packet};
    /// let mut d = Decoder::new();
    /// let p = d.decode_text(r#"2["move",{"x":1},"fast"]"#.into()).unwrap().unwrap();
    /// let (pos, speed): (serde_json::Value, String) = p.args().unwrap();
    /// assert_eq!((pos["x"].as_i64(), speed.as_str()), (Some(1), "fast"));
    /// ```
    pub fn args<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        let skip = usize::from(self.kind.is_event());
        match &self.data {
            Some(data) => deserialize_args(data, skip, &self.attachments),
            None => deserialize_args(&RawJson::from_trusted(Str::from_static("[]")), 0, &[]),
        }
    }

    /// Deserialises the whole data (a CONNECT's auth, a CONNECT_ERROR's body) into `T`.
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<Option<T>, serde_json::Error> {
        self.data
            .as_ref()
            .map(|d| deserialize_value(d, &self.attachments))
            .transpose()
    }

    /// Encodes the packet once: the Engine.IO message text frame (`4` + Socket.IO text) and the
    /// attachments, ready for a WebSocket or a polling payload and shareable between recipients.
    ///
    /// ```
    /// use ferrio_proto::socket::{Packet, RawJson};
    /// let p = Packet::event("/admin", RawJson::parse(r#"["bar"]"#).unwrap(), vec![]);
    /// assert_eq!(&*p.encode().message(), r#"42/admin,["bar"]"#);
    /// ```
    pub fn encode(&self) -> EncodedPacket {
        let data = self.data.as_ref().map_or("", RawJson::as_str);
        EncodedPacket {
            message: encode_text(
                self.kind,
                &self.nsp,
                self.id.as_ref(),
                self.attachments.len(),
                data,
            ),
            attachments: self.attachments.clone(),
        }
    }

    /// An ACK answering `id` with typed arguments, encoded with the default parser: what
    /// `Packet::ack_with(nsp, id, args)?.encode()` gives, the arguments serialised into a
    /// reused buffer and the packet's text written once.
    pub(crate) fn encode_ack_with<T: Serialize + ?Sized>(
        nsp: Str,
        id: &AckId,
        args: &T,
    ) -> Result<EncodedPacket, serde_json::Error> {
        let nsp = normalize_nsp(nsp);
        with_ack_json(args, |data, attachments| {
            let kind = if attachments.is_empty() {
                PacketType::Ack
            } else {
                PacketType::BinaryAck
            };
            EncodedPacket {
                message: encode_text(kind, &nsp, Some(id), attachments.len(), data),
                attachments,
            }
        })
    }
}

/// `4` and the Socket.IO text of a packet of type `kind` in namespace `nsp` (`/` not written),
/// with ack id `id`, `attachments` attachments (for the binary types) and `data` (JSON).
#[inline]
fn encode_text(
    kind: PacketType,
    nsp: &str,
    id: Option<&AckId>,
    attachments: usize,
    data: &str,
) -> Str {
    let binary = matches!(kind, PacketType::BinaryEvent | PacketType::BinaryAck);
    let named = nsp != "/" && !nsp.is_empty();
    // The exact length: a `Str` made of a `String` without room to spare takes its buffer
    // as it is, where one with room would allocate a second block to share it.
    let count = if binary {
        decimal_len(attachments as u64) + 1
    } else {
        0
    };
    let prefix = if named { nsp.len() + 1 } else { 0 };
    let id_len = id.map_or(0, AckId::written_len);
    let len = 2 + count + prefix + id_len + data.len();
    let mut s = String::with_capacity(len);
    s.push('4');
    s.push((b'0' + kind as u8) as char);
    if binary {
        push_decimal(&mut s, attachments as u64);
        s.push('-');
    }
    if named {
        s.push_str(nsp);
        s.push(',');
    }
    if let Some(id) = id {
        id.push_to(&mut s);
    }
    s.push_str(data);
    debug_assert_eq!(s.len(), s.capacity());
    Str::from(s)
}

/// A packet encoded once: the Engine.IO messages of one packet, shareable between recipients.
///
/// With the default parser: a text frame and the binary attachments that follow it. With a
/// parser whose packets are binary only (the msgpack parser), no text frame and one binary
/// frame. Cloning shares the bytes, which is how a broadcast reaches every recipient without
/// copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedPacket {
    /// `4` + the Socket.IO text; empty when the packet has no text frame.
    message: Str,
    attachments: Vec<Bytes>,
}

impl EncodedPacket {
    /// A packet of a parser's own: one text frame holding `socket_text` (the Engine.IO `4` is
    /// added), then the `binary` frames.
    pub fn from_text(socket_text: &str, binary: Vec<Bytes>) -> EncodedPacket {
        let mut message = String::with_capacity(1 + socket_text.len());
        message.push('4');
        message.push_str(socket_text);
        EncodedPacket {
            message: Str::from(message),
            attachments: binary,
        }
    }

    /// A packet of a parser's own that is one binary frame (as the msgpack parser's are).
    pub fn from_binary(frame: Bytes) -> EncodedPacket {
        EncodedPacket {
            message: Str::from_static(""),
            attachments: vec![frame],
        }
    }

    /// The Engine.IO `message` text frame: `4` + the Socket.IO packet text. It is also exactly the
    /// packet's record in a v4 polling payload. Empty when the packet has no text frame (the
    /// msgpack parser's).
    pub fn message(&self) -> &Str {
        &self.message
    }

    /// The Socket.IO packet text alone, without the Engine.IO `4` (empty without a text frame).
    pub fn socket_text(&self) -> &str {
        self.message.get(1..).unwrap_or_default()
    }

    /// The attachments, each sent as one Engine.IO binary message after the text frame (the
    /// same as [`EncodedPacket::binary`]).
    pub fn attachments(&self) -> &[Bytes] {
        &self.attachments
    }

    /// The binary frames, in order: a JSON packet's attachments, or a msgpack packet's one frame.
    pub fn binary(&self) -> &[Bytes] {
        &self.attachments
    }

    /// All Engine.IO frames of the packet, in order: the text frame (if any), then the binary
    /// frames.
    pub fn frames(&self) -> impl Iterator<Item = Frame> + '_ {
        let text = (!self.message.is_empty()).then(|| Frame::Text(self.message.clone()));
        text.into_iter()
            .chain(self.attachments.iter().cloned().map(Frame::Binary))
    }

    /// [`frames`](Self::frames) as a `Vec`, built by a plain loop (the client's queues take
    /// them so, without an iterator adapter's code for each caller).
    pub(crate) fn frame_list(&self) -> Vec<Frame> {
        let mut list = Vec::with_capacity(1 + self.attachments.len());
        if !self.message.is_empty() {
            list.push(Frame::Text(self.message.clone()));
        }
        for b in &self.attachments {
            list.push(Frame::Binary(b.clone()));
        }
        list
    }

    /// The frames as Engine.IO packets.
    pub fn packets(&self) -> impl Iterator<Item = engine::Packet> + '_ {
        let text = (!self.message.is_empty())
            .then(|| engine::Packet::Message(self.message.slice(1..self.message.len())));
        text.into_iter()
            .chain(self.attachments.iter().cloned().map(engine::Packet::Binary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> RawJson {
        RawJson::parse(s).expect("json")
    }

    #[test]
    fn acks_encoded_at_once_are_the_acks_encoded() {
        use super::super::Parser;
        let big: AckId = "123456789012345678901234567890".parse().expect("id");
        let bin = Bytes::from_static(b"\x01\x02");
        #[allow(unused_mut)]
        let mut parsers = vec![Parser::json()];
        #[cfg(feature = "msgpack")]
        parsers.push(Parser::msgpack());
        for parser in parsers {
            for (nsp, id) in [
                ("/", AckId::from(7)),
                ("/chat", big.clone()),
                ("admin", 0.into()),
            ] {
                let check = |direct: EncodedPacket, packet: Packet| {
                    assert_eq!(direct, parser.encode(&packet), "{parser:?} {packet:?}");
                };
                check(
                    parser.encode_ack_with(nsp, &id, &()).expect("()"),
                    Packet::ack_with(nsp, &id, &()).expect("()"),
                );
                let args = ("a\"b", 1.5, [true], serde_json::json!({"z": null}));
                check(
                    parser.encode_ack_with(nsp, &id, &args).expect("json"),
                    Packet::ack_with(nsp, &id, &args).expect("json"),
                );
                let args = (1, &bin, ("x", &bin));
                check(
                    parser.encode_ack_with(nsp, &id, &args).expect("binary"),
                    Packet::ack_with(nsp, &id, &args).expect("binary"),
                );
                assert!(parser.encode_ack_with(nsp, &id, &5).is_err());
            }
        }
        let ack = Parser::json()
            .encode_ack_with("/", &AckId::from(12), &(1, "x"))
            .expect("ack");
        assert_eq!(ack.message(), r#"4312[1,"x"]"#);
    }

    #[test]
    fn encoder_examples() {
        // Protocol notes §1.3 examples (WS text frames, Engine.IO `4` included)
        let cases: Vec<(Packet, &str)> = vec![
            (Packet::connect("/", None), "40"),
            (
                Packet::connect("/", Some(raw(r#"{"token":"123"}"#))),
                r#"40{"token":"123"}"#,
            ),
            (Packet::connect("/admin", None), "40/admin,"),
            (
                Packet::connect("/admin", Some(raw(r#"{"token":"abc"}"#))),
                r#"40/admin,{"token":"abc"}"#,
            ),
            (
                Packet::connect("/", Some(raw(r#"{"sid":"wZX3oN0bSVIhsaknAAAI"}"#))),
                r#"40{"sid":"wZX3oN0bSVIhsaknAAAI"}"#,
            ),
            (
                Packet::connect_error("/random", raw(r#"{"message":"Invalid namespace"}"#)),
                r#"44/random,{"message":"Invalid namespace"}"#,
            ),
            (
                Packet::event("/", raw(r#"["foo"]"#), vec![]),
                r#"42["foo"]"#,
            ),
            (
                Packet::event("/admin", raw(r#"["bar"]"#), vec![]),
                r#"42/admin,["bar"]"#,
            ),
            (
                Packet::event("/", raw(r#"["foo"]"#), vec![]).with_id(12),
                r#"4212["foo"]"#,
            ),
            (
                Packet::ack("/", 12, raw(r#"["bar"]"#), vec![]),
                r#"4312["bar"]"#,
            ),
            (
                Packet::ack("/admin", 13, raw(r#"["bar"]"#), vec![]),
                r#"43/admin,13["bar"]"#,
            ),
            (Packet::ack("/", 12, raw("[]"), vec![]), "4312[]"),
            (Packet::disconnect("/"), "41"),
            (Packet::disconnect("/admin"), "41/admin,"),
        ];
        for (packet, wire) in cases {
            assert_eq!(&**packet.encode().message(), wire);
        }
    }

    #[test]
    fn binary_encoder_examples() {
        let one = Bytes::from_static(&[1, 2, 3, 4]);
        let p = Packet::event(
            "/",
            raw(r#"["baz",{"_placeholder":true,"num":0}]"#),
            vec![one.clone()],
        );
        let e = p.encode();
        assert_eq!(
            &**e.message(),
            r#"451-["baz",{"_placeholder":true,"num":0}]"#
        );
        assert_eq!(
            e.frames().collect::<Vec<_>>(),
            vec![Frame::Text(e.message().clone()), Frame::Binary(one.clone())]
        );
        let two = Packet::event(
            "/admin",
            raw(r#"["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#),
            vec![one.clone(), one.clone()],
        );
        assert_eq!(
            &**two.encode().message(),
            r#"452-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
        );
        let ack = Packet::ack(
            "/",
            15,
            raw(r#"["bar",{"_placeholder":true,"num":0}]"#),
            vec![one],
        );
        assert_eq!(
            &**ack.encode().message(),
            r#"461-15["bar",{"_placeholder":true,"num":0}]"#
        );
    }

    #[test]
    fn typed_binary_event() {
        let p = Packet::event_with("/", "baz", &(Bytes::from_static(&[1, 2, 3, 4]),)).expect("ok");
        assert_eq!(p.kind(), PacketType::BinaryEvent);
        assert_eq!(
            &**p.encode().message(),
            r#"451-["baz",{"_placeholder":true,"num":0}]"#
        );
        let (b,): (Bytes,) = p.args().expect("args");
        assert_eq!(&b[..], &[1, 2, 3, 4]);
    }

    #[test]
    fn namespace_is_normalised() {
        assert_eq!(&**Packet::disconnect("admin").nsp(), "/admin");
        assert_eq!(&**Packet::disconnect("").nsp(), "/");
    }

    #[test]
    fn encoded_packets_share_bytes() {
        let e = Packet::event("/", raw(r#"["x"]"#), vec![Bytes::from(vec![1u8; 64])]).encode();
        let copy = e.clone();
        assert_eq!(
            e.message().as_bytes().as_ptr(),
            copy.message().as_bytes().as_ptr()
        );
        assert_eq!(e.attachments()[0].as_ptr(), copy.attachments()[0].as_ptr());
        assert_eq!(e.socket_text(), r#"51-["x"]"#);
    }
}
