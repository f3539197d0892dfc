//! What a handler receives and answers: [`Message`] (an event from the client), [`RawArgs`]
//! (arguments as received, binary included), [`AckSender`] (answers the client's ack) and
//! [`AckReply`] (the client's answer to an emit with ack).

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use ferrio_proto::socket::{share_attachments, AckId, Packet};
use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::{EmitError, Socket};
use crate::command::Command;

/// Event arguments as received, binary included: JSON values in which each attachment is still
/// a `{"_placeholder":true,"num":N}` object, and the attachments.
///
/// It serialises back into the same arguments (placeholders become bytes again), so a handler
/// can pass arguments on unchanged: `socket.emit("message-back", &msg.raw_args()?)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawArgs {
    values: Vec<Value>,
    attachments: Vec<Bytes>,
}

impl RawArgs {
    /// Arguments from JSON values and the attachments their placeholders refer to.
    pub fn new(values: Vec<Value>, attachments: Vec<Bytes>) -> RawArgs {
        RawArgs {
            values,
            attachments,
        }
    }

    pub(crate) fn from_event(packet: &Packet) -> Result<RawArgs, serde_json::Error> {
        RawArgs::from_packet(packet, 1)
    }

    fn from_packet(packet: &Packet, skip: usize) -> Result<RawArgs, serde_json::Error> {
        // Without attachments, the arguments are read straight from the text, the event name
        // skipped unread (the packet's own `args` skips it for events, as `skip` does).
        let skipped = usize::from(packet.kind().is_event());
        if packet.attachments().is_empty() && skip == skipped {
            if let Ok(values) = packet.args::<Vec<Value>>() {
                return Ok(RawArgs {
                    values,
                    attachments: Vec::new(),
                });
            }
        }
        let values = match packet.data() {
            Some(data) => match data.to_value()? {
                Value::Array(items) => items.into_iter().skip(skip).collect(),
                _ => Vec::new(),
            },
            None => Vec::new(),
        };
        Ok(RawArgs {
            values,
            attachments: packet.attachments().to_vec(),
        })
    }

    /// The arguments (placeholders included).
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// The attachments.
    pub fn attachments(&self) -> &[Bytes] {
        &self.attachments
    }

    /// The number of arguments.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True if there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl Serialize for RawArgs {
    /// The attachments are passed on, not copied (see [`share_attachments`]).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        share_attachments(&self.attachments, || {
            s.collect_seq(self.values.iter().map(|v| WithAttachments {
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
        let packet = Packet::ack_with(socket.inner.ns.name.clone(), id, args)?;
        socket.send_command(|socket| Command::Send {
            socket: socket.clone(),
            packet: Arc::new(socket.inner.ns.parser.encode(&packet)),
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
