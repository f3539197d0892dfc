//! What a handler receives and answers: [`Message`] (an event from the client), [`RawArgs`]
//! (arguments as received, binary included), [`AckSender`] (answers the client's ack) and
//! [`AckReply`] (the client's answer to an emit with ack).

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use ferrio_proto::socket::{share_attachments, AckId, ArgsText, Packet};
use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::{EmitError, Socket};
use crate::command::Command;

/// Event arguments as received, binary included: JSON values in which each attachment is still
/// a `{"_placeholder":true,"num":N}` object, and the attachments.
///
/// It serialises back into the same arguments (placeholders become bytes again), so a handler
/// can pass arguments on unchanged: `socket.emit("message-back", &msg.raw_args()?)`. Arguments
/// without attachments are passed on as the text they came in, without being parsed: their
/// values are read the first time [`RawArgs::values`] asks for them.
#[derive(Clone, Default)]
pub struct RawArgs {
    /// The values, read from `text` on first use when there is one.
    values: OnceLock<Vec<Value>>,
    /// The arguments as received, when they have no attachments.
    text: Option<ArgsText>,
    attachments: Vec<Bytes>,
}

impl RawArgs {
    /// Arguments from JSON values and the attachments their placeholders refer to.
    pub fn new(values: Vec<Value>, attachments: Vec<Bytes>) -> RawArgs {
        RawArgs {
            values: OnceLock::from(values),
            text: None,
            attachments,
        }
    }

    pub(crate) fn from_event(packet: &Packet) -> Result<RawArgs, serde_json::Error> {
        RawArgs::from_packet(packet, 1)
    }

    fn from_packet(packet: &Packet, skip: usize) -> Result<RawArgs, serde_json::Error> {
        // Without attachments, the arguments are kept as their text, the event name skipped
        // unread (the packet's own `args` skips it for events, as `skip` does). Text that
        // serde_json might refuse is read now, so that the error comes here.
        let skipped = usize::from(packet.kind().is_event());
        if packet.attachments().is_empty() && skip == skipped {
            if let Some(text) = packet.data().and_then(|d| ArgsText::new(d, skip)) {
                let values = if text.reads_as_values() {
                    Some(OnceLock::new())
                } else {
                    text.to_values().ok().map(OnceLock::from)
                };
                if let Some(values) = values {
                    return Ok(RawArgs {
                        values,
                        text: Some(text),
                        attachments: Vec::new(),
                    });
                }
            }
        }
        let values = match packet.data() {
            Some(data) => match data.to_value()? {
                Value::Array(items) => items.into_iter().skip(skip).collect(),
                _ => Vec::new(),
            },
            None => Vec::new(),
        };
        Ok(RawArgs::new(values, packet.attachments().to_vec()))
    }

    /// The arguments (placeholders included).
    pub fn values(&self) -> &[Value] {
        self.values.get_or_init(|| {
            // `from_packet` kept the text unread only when it reads.
            let values = self.text.as_ref().map(ArgsText::to_values);
            debug_assert!(values.as_ref().is_none_or(Result::is_ok));
            values.and_then(Result::ok).unwrap_or_default()
        })
    }

    /// The attachments.
    pub fn attachments(&self) -> &[Bytes] {
        &self.attachments
    }

    /// The number of arguments.
    pub fn len(&self) -> usize {
        match (self.values.get(), &self.text) {
            (None, Some(text)) => text.len(),
            _ => self.values().len(),
        }
    }

    /// True if there are no arguments.
    pub fn is_empty(&self) -> bool {
        match (self.values.get(), &self.text) {
            (None, Some(text)) => text.is_empty(),
            _ => self.values().is_empty(),
        }
    }
}

impl PartialEq for RawArgs {
    fn eq(&self, other: &RawArgs) -> bool {
        self.values() == other.values() && self.attachments == other.attachments
    }
}

impl fmt::Debug for RawArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawArgs")
            .field("values", &self.values())
            .field("attachments", &self.attachments)
            .finish()
    }
}

impl Serialize for RawArgs {
    /// Arguments kept as their text are written as that text when they make an event or an
    /// ack; the attachments are passed on, not copied (see [`share_attachments`]).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let s = match &self.text {
            Some(text) if self.attachments.is_empty() => match text.serialize_as_text(s) {
                Ok(done) => return done,
                Err(s) => s,
            },
            _ => s,
        };
        share_attachments(&self.attachments, || {
            s.collect_seq(self.values().iter().map(|v| WithAttachments {
                value: v,
                attachments: &self.attachments,
            }))
        })
    }
}

/// A JSON value whose placeholders serialise as the bytes they stand for.
struct WithAttachments<'a> {
    value: &'a Value,
    attachments: &'a [Bytes],
}

impl Serialize for WithAttachments<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let a = self.attachments;
        match self.value {
            Value::Array(items) => s.collect_seq(items.iter().map(|v| WithAttachments {
                value: v,
                attachments: a,
            })),
            Value::Object(map) => {
                if map.get("_placeholder") == Some(&Value::Bool(true)) {
                    let buf = map
                        .get("num")
                        .and_then(Value::as_u64)
                        .and_then(|n| usize::try_from(n).ok())
                        .and_then(|n| a.get(n));
                    if let Some(buf) = buf {
                        return s.serialize_bytes(buf);
                    }
                }
                s.collect_map(map.iter().map(|(k, v)| {
                    (
                        k,
                        WithAttachments {
                            value: v,
                            attachments: a,
                        },
                    )
                }))
            }
            other => other.serialize(s),
        }
    }
}

/// An event received from the client.
#[derive(Debug)]
pub struct Message {
    pub(super) packet: Packet,
    pub(super) ack: AckSender,
}

impl Message {
    /// The event name.
    pub fn event(&self) -> Cow<'_, str> {
        self.packet.event_name().unwrap_or_default()
    }

    /// The arguments after the event name, as `T` (a tuple, `(A,)` for one; extra arguments
    /// are ignored). `Bytes` fields receive the binary attachments.
    pub fn args<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        self.packet.args()
    }

    /// The arguments as received, binary included (see [`RawArgs`]).
    pub fn raw_args(&self) -> Result<RawArgs, serde_json::Error> {
        RawArgs::from_packet(&self.packet, 1)
    }

    /// The decoded packet.
    pub fn packet(&self) -> &Packet {
        &self.packet
    }

    /// The acknowledgement responder (which does nothing if the client asked for none).
    pub fn ack_sender(&self) -> AckSender {
        self.ack.clone()
    }

    /// True if the client asked for an acknowledgement.
    pub fn ack_requested(&self) -> bool {
        self.ack.requested()
    }

    /// Acknowledges the event with `args` (a tuple); see [`AckSender::send`].
    pub fn ack<T: Serialize + ?Sized>(&self, args: &T) -> Result<(), EmitError> {
        self.ack.send(args)
    }
}

/// Answers an event the client sent with an ack id. Only the first answer is sent; without an
/// ack id, sending does nothing.
#[derive(Clone)]
pub struct AckSender {
    target: Option<(Socket, AckId)>,
    sent: Arc<AtomicBool>,
}

impl fmt::Debug for AckSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckSender")
            .field("id", &self.target.as_ref().map(|(_, id)| id))
            .finish()
    }
}

impl AckSender {
    pub(super) fn new(socket: &Socket, id: Option<AckId>) -> AckSender {
        AckSender {
            target: id.map(|id| (socket.clone(), id)),
            sent: Arc::new(AtomicBool::new(false)),
        }
    }

    /// True if the client asked for an acknowledgement.
    pub fn requested(&self) -> bool {
        self.target.is_some()
    }

    /// Sends the acknowledgement with `args`, a tuple (`()` for none, `(x,)` for one); `Bytes`
    /// anywhere in them make it a BINARY_ACK.
    pub fn send<T: Serialize + ?Sized>(&self, args: &T) -> Result<(), EmitError> {
        let Some((socket, id)) = &self.target else {
            return Ok(());
        };
        if self.sent.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let ns = &socket.inner.ns;
        let packet = ns.parser.encode_ack_with(ns.name.clone(), id, args)?;
        socket.send_command(|socket| Command::Send {
            socket: socket.clone(),
            packet: Arc::new(packet),
            volatile: false,
            compress: true,
        })
    }
}

/// The answer to an emit with acknowledgement.
#[derive(Debug, Clone)]
pub struct AckReply {
    packet: Packet,
}

impl AckReply {
    pub(crate) fn new(packet: Packet) -> AckReply {
        AckReply { packet }
    }

    /// The answer's arguments as `T` (a tuple).
    pub fn args<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        self.packet.args()
    }

    /// The answer's arguments as received, binary included.
    pub fn raw_args(&self) -> Result<RawArgs, serde_json::Error> {
        RawArgs::from_packet(&self.packet, 0)
    }

    /// The decoded ACK packet.
    pub fn packet(&self) -> &Packet {
        &self.packet
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrio_proto::socket::RawJson;

    #[test]
    fn raw_args_of_text_packets_are_the_elements_after_the_name() {
        let text = r#"["m",{"b":[1,2.5,"x"],"a":null},"s",18446744073709551615,-1.5e300,true]"#;
        let all: Vec<Value> = serde_json::from_str(text).unwrap();
        let json = RawJson::parse(text).unwrap();
        // An event: after its name; the placeholders-free path reads the text directly.
        let event = Packet::event("/", json.clone(), Vec::new());
        let args = RawArgs::from_event(&event).unwrap();
        assert_eq!(args.values(), &all[1..]);
        assert!(args.attachments().is_empty());
        // An ack: every element.
        let ack = Packet::ack("/", 1, json, Vec::new());
        assert_eq!(AckReply::new(ack).raw_args().unwrap().values(), &all[..]);
        // No data: no arguments.
        let bare = Packet::ack("/", 2, RawJson::parse("[]").unwrap(), Vec::new());
        assert!(AckReply::new(bare).raw_args().unwrap().is_empty());
    }

    #[test]
    fn raw_args_without_attachments_pass_on_as_they_came() {
        let mut d = ferrio_proto::socket::Decoder::new();
        let text = r#"27["m",{"zeta":1,"alpha":[2.50,"é"]},"x"]"#;
        let p = d.decode_text(text.into()).unwrap().unwrap();
        let args = RawArgs::from_event(&p).unwrap();
        assert_eq!(args.len(), 2);
        // Acked and emitted as the client wrote them (keys in their order), not re-serialised.
        let ack = Packet::ack_with("/", p.id().unwrap(), &args).unwrap();
        assert_eq!(
            &**ack.encode().message(),
            r#"437[{"zeta":1,"alpha":[2.50,"é"]},"x"]"#
        );
        let event = Packet::event_with("/", "back", &args).unwrap();
        assert_eq!(
            &**event.encode().message(),
            r#"42["back",{"zeta":1,"alpha":[2.50,"é"]},"x"]"#
        );
        // The values are read when asked for.
        assert!(args.values.get().is_none());
        let value: Value = serde_json::json!({"alpha": [2.5, "é"], "zeta": 1});
        assert_eq!(args.values(), &[value, Value::from("x")]);
        assert_eq!(args, RawArgs::new(args.values().to_vec(), Vec::new()));
        // Another serialiser writes the values.
        assert_eq!(
            serde_json::to_string(&args).unwrap(),
            r#"[{"alpha":[2.5,"é"],"zeta":1},"x"]"#
        );
        // Text serde_json might refuse is read at once; passed on as it came all the same.
        let p = d
            .decode_text(r#"2["m","\u00e9",1E2]"#.into())
            .unwrap()
            .unwrap();
        let args = RawArgs::from_event(&p).unwrap();
        assert_eq!(args.values.get().map(Vec::len), Some(2));
        let ack = Packet::ack_with("/", 1, &args).unwrap();
        assert_eq!(&**ack.encode().message(), r#"431["\u00e9",1E2]"#);
        // Text serde_json refuses fails where the arguments are taken, as before.
        for bad in [r#"2["m",1e400]"#, r#"2["m","\ud800"]"#] {
            let p = d.decode_text(bad.into()).unwrap().unwrap();
            assert!(RawArgs::from_event(&p).is_err(), "{bad}");
        }
    }

    #[test]
    fn raw_args_serialise_back_with_their_attachments() {
        let mut d = ferrio_proto::socket::Decoder::new();
        let p = d
            .decode_text(
                r#"52-["m",{"a":{"_placeholder":true,"num":1}},{"_placeholder":true,"num":0},3]"#
                    .into(),
            )
            .unwrap();
        assert!(p.is_none());
        d.decode_binary(Bytes::from_static(b"\x01")).unwrap();
        let p = d
            .decode_binary(Bytes::from_static(b"\x02"))
            .unwrap()
            .unwrap();
        let args = RawArgs::from_packet(&p, 1).unwrap();
        assert_eq!(args.len(), 3);
        let out = Packet::event_with("/", "back", &args).unwrap();
        assert_eq!(
            &**out.encode().message(),
            r#"452-["back",{"a":{"_placeholder":true,"num":0}},{"_placeholder":true,"num":1},3]"#
        );
        assert_eq!(
            out.attachments(),
            &[Bytes::from_static(b"\x02"), Bytes::from_static(b"\x01")]
        );
        // Sent on as they came, not copied.
        assert_eq!(out.attachments()[0].as_ptr(), p.attachments()[1].as_ptr());
        assert_eq!(out.attachments()[1].as_ptr(), p.attachments()[0].as_ptr());
    }
}
