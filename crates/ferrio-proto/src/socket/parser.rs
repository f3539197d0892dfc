//! The parser interface: how Socket.IO packets become Engine.IO messages and back.
//!
//! As in Node, both ends must use the same parser; nothing negotiates it. Two implementations
//! ship with the core: [`JsonParser`], the default (`socket.io-parser`: a text frame plus one
//! binary frame per attachment), and [`MsgpackParser`] (`socket.io-msgpack-parser` 3.x: one binary
//! frame per packet, binary values inline). An application may plug in its own through
//! [`PacketParser`] and [`Parser::custom`], as Node's `parser` option allows.
//!
//! Whatever the parser, a [`Packet`] keeps one form inside Ferrio (JSON text with placeholders,
//! plus attachments), so the state machines, the typed arguments and the recovery store do not
//! depend on it. A [`Parser`] is cheap to clone; the two built-in ones are dispatched without
//! a virtual call.

use std::fmt;
#[cfg(feature = "parsers")]
use std::sync::Arc;

use bytes::Bytes;

use super::decode::Decoder;
use super::error::DecodeError;
use super::numbers::JsNumbers;
use super::packet::{AckId, EncodedPacket, Packet};
use crate::Str;

/// A Socket.IO parser: an encoder and a factory of per-connection decoders (Node's
/// `{Encoder, Decoder}`).
pub trait PacketParser: fmt::Debug + Send + Sync + 'static {
    /// Encodes one packet into its Engine.IO messages. The result is shared between the
    /// recipients of a broadcast, so it is computed once per packet.
    fn encode(&self, packet: &Packet) -> EncodedPacket;

    /// A decoder for one connection, accepting up to `max_attachments` binary attachments per
    /// packet where the format has attachments.
    fn decoder(&self, max_attachments: usize) -> Box<dyn PacketDecoder>;
}

/// The decoder of one connection: it receives the connection's Engine.IO messages in order and
/// hands out whole packets (Node's `Decoder.add`). An error closes the connection.
pub trait PacketDecoder: fmt::Debug + Send + 'static {
    /// Decodes a text message; `None` while a packet waits for more messages.
    fn decode_text(&mut self, text: Str) -> Result<Option<Packet>, DecodeError>;

    /// Decodes a binary message; `None` while a packet waits for more messages.
    fn decode_binary(&mut self, data: Bytes) -> Result<Option<Packet>, DecodeError>;

    /// True while a packet is partly received.
    fn is_reconstructing(&self) -> bool {
        false
    }

    /// Drops a partly received packet (Node's `destroy()`).
    fn reset(&mut self) {}
}

/// The default parser, `socket.io-parser`'s format (protocol 5): see [`Packet::encode`] and
/// [`Decoder`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JsonParser;

impl PacketParser for JsonParser {
    fn encode(&self, packet: &Packet) -> EncodedPacket {
        packet.encode()
    }

    fn decoder(&self, max_attachments: usize) -> Box<dyn PacketDecoder> {
        Box::new(Decoder::with_max_attachments(max_attachments))
    }
}

/// The msgpack parser (feature `msgpack`, on by default), wire-compatible with the npm package `socket.io-msgpack-parser` 3.x:
/// every packet is one binary message holding a msgpack map `{type, data, id, nsp}` with binary
/// values inline (over EIO 4 long-polling, one `b<base64>` record).
///
/// ```
/// use ferrio_proto::socket::{Packet, Parser};
/// let parser = Parser::msgpack();
/// let encoded = parser.encode(&Packet::disconnect("/chat"));
/// assert_eq!(&encoded.binary()[0][..], b"\x82\xa4type\x01\xa3nsp\xa5/chat");
/// let mut decoder = parser.decoder(10);
/// let back = decoder.decode_binary(encoded.binary()[0].clone()).unwrap().unwrap();
/// assert_eq!(back, Packet::disconnect("/chat"));
/// ```
#[cfg(feature = "msgpack")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MsgpackParser;

#[cfg(feature = "msgpack")]
impl PacketParser for MsgpackParser {
    fn encode(&self, packet: &Packet) -> EncodedPacket {
        EncodedPacket::from_binary(super::msgpack::encode(packet, &JsNumbers::default()))
    }

    fn decoder(&self, max_attachments: usize) -> Box<dyn PacketDecoder> {
        Box::new(MsgpackDecoder {
            max_attachments,
            numbers: JsNumbers::default(),
        })
    }
}

/// The msgpack parser's decoder: stateless, each binary message is one packet with at most
/// `max_attachments` binary values; a text message is refused.
#[cfg(feature = "msgpack")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct MsgpackDecoder {
    max_attachments: usize,
    numbers: JsNumbers,
}

#[cfg(feature = "msgpack")]
impl PacketDecoder for MsgpackDecoder {
    fn decode_text(&mut self, _text: Str) -> Result<Option<Packet>, DecodeError> {
        Err(DecodeError::InvalidMsgpack)
    }

    fn decode_binary(&mut self, data: Bytes) -> Result<Option<Packet>, DecodeError> {
        super::msgpack::decode(&data, self.max_attachments, &self.numbers).map(Some)
    }
}

impl PacketDecoder for Decoder {
    fn decode_text(&mut self, text: Str) -> Result<Option<Packet>, DecodeError> {
        Decoder::decode_text(self, text)
    }

    fn decode_binary(&mut self, data: Bytes) -> Result<Option<Packet>, DecodeError> {
        Decoder::decode_binary(self, data)
    }

    fn is_reconstructing(&self) -> bool {
        Decoder::is_reconstructing(self)
    }

    fn reset(&mut self) {
        Decoder::reset(self)
    }
}

/// The parser a server or client uses for every packet: [`Parser::json`] (the default),
/// `Parser::msgpack()` (feature `msgpack`), or an application's own ([`Parser::custom`]).
#[derive(Clone, Default)]
pub struct Parser(Kind);

#[derive(Clone)]
enum Kind {
    Json(JsNumbers),
    #[cfg(feature = "msgpack")]
    Msgpack(JsNumbers),
    #[cfg(feature = "parsers")]
    Custom(Arc<dyn PacketParser>),
}

impl Default for Kind {
    fn default() -> Kind {
        Kind::Json(JsNumbers::default())
    }
}

impl Parser {
    /// The default JSON parser (`socket.io-parser`).
    pub fn json() -> Parser {
        Parser::json_with(JsNumbers::default())
    }

    /// The JSON parser, reading attachment counts and placeholder indexes with the `Number()`
    /// that `numbers` gives instead of Rust's own (see [`JsNumbers`]). The browser client passes
    /// the page's, instead of carrying float parsing code and tables in its module.
    pub fn json_with(numbers: JsNumbers) -> Parser {
        Parser(Kind::Json(numbers))
    }

    /// The msgpack parser (`socket.io-msgpack-parser` 3.x; feature `msgpack`, on by default).
    #[cfg(feature = "msgpack")]
    pub fn msgpack() -> Parser {
        Parser::msgpack_with(JsNumbers::default())
    }

    /// The msgpack parser, with the conversions between doubles and JSON number text that
    /// `numbers` gives instead of Rust's own (see [`JsNumbers`]). The browser client passes
    /// JavaScript's `String` and `Number`, which its page has already, instead of carrying
    /// Rust's float formatting and parsing code and their tables in its module.
    #[cfg(feature = "msgpack")]
    pub fn msgpack_with(numbers: JsNumbers) -> Parser {
        Parser(Kind::Msgpack(numbers))
    }

    /// An application's parser (feature `parsers`, on by default).
    #[cfg(feature = "parsers")]
    pub fn custom(parser: impl PacketParser) -> Parser {
        Parser(Kind::Custom(Arc::new(parser)))
    }

    /// True for the default JSON parser.
    pub fn is_json(&self) -> bool {
        matches!(self.0, Kind::Json(_))
    }

    /// Encodes one packet with this parser.
    pub fn encode(&self, packet: &Packet) -> EncodedPacket {
        match &self.0 {
            Kind::Json(_) => packet.encode(),
            #[cfg(feature = "msgpack")]
            Kind::Msgpack(numbers) => {
                EncodedPacket::from_binary(super::msgpack::encode(packet, numbers))
            }
            #[cfg(feature = "parsers")]
            Kind::Custom(p) => p.encode(packet),
        }
    }

    /// An ACK answering `id` with typed arguments (a tuple, as for [`Packet::ack_with`]),
    /// encoded: what `self.encode(&Packet::ack_with(nsp, id, args)?)` gives. With the JSON
    /// parser the packet's text is written at once, without the packet in between.
    pub fn encode_ack_with<T: serde::Serialize + ?Sized>(
        &self,
        nsp: impl Into<Str>,
        id: &AckId,
        args: &T,
    ) -> Result<EncodedPacket, serde_json::Error> {
        match &self.0 {
            Kind::Json(_) => Packet::encode_ack_with(nsp.into(), id, args),
            #[cfg(any(feature = "msgpack", feature = "parsers"))]
            _ => Ok(self.encode(&Packet::ack_with(nsp, id, args)?)),
        }
    }

    /// A decoder for one connection (see [`PacketParser::decoder`]).
    pub fn decoder(&self, max_attachments: usize) -> Decoder {
        match &self.0 {
            Kind::Json(numbers) => Decoder::with_numbers(max_attachments, *numbers),
            #[cfg(feature = "msgpack")]
            Kind::Msgpack(numbers) => Decoder::with_custom(
                self.clone(),
                max_attachments,
                Box::new(MsgpackDecoder {
                    max_attachments,
                    numbers: *numbers,
                }),
            ),
            #[cfg(feature = "parsers")]
            Kind::Custom(p) => {
                Decoder::with_custom(self.clone(), max_attachments, p.decoder(max_attachments))
            }
        }
    }
}

impl fmt::Debug for Parser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Json(_) => f.write_str("Parser::json()"),
            #[cfg(feature = "msgpack")]
            Kind::Msgpack(_) => f.write_str("Parser::msgpack()"),
            #[cfg(feature = "parsers")]
            Kind::Custom(p) => f.debug_tuple("Parser::custom").field(p).finish(),
        }
    }
}

/// Two parsers are equal when they are the same built-in one (whatever their [`JsNumbers`]), or
/// clones of the same custom one.
impl PartialEq for Parser {
    fn eq(&self, other: &Parser) -> bool {
        match (&self.0, &other.0) {
            (Kind::Json(_), Kind::Json(_)) => true,
            #[cfg(feature = "msgpack")]
            (Kind::Msgpack(_), Kind::Msgpack(_)) => true,
            #[cfg(feature = "parsers")]
            (Kind::Custom(a), Kind::Custom(b)) => Arc::ptr_eq(a, b),
            #[cfg(feature = "parsers")]
            _ => false,
        }
    }
}

impl Eq for Parser {}

#[cfg(all(test, feature = "msgpack"))]
mod tests {
    use super::*;
    use crate::socket::RawJson;

    /// A parser of the application's: JSON text frames with a prefix, to show the plug-in path.
    #[derive(Debug)]
    struct Prefixed;

    #[derive(Debug)]
    struct PrefixedDecoder(Decoder);

    impl PacketParser for Prefixed {
        fn encode(&self, packet: &Packet) -> EncodedPacket {
            let json = packet.encode();
            EncodedPacket::from_text(&format!("~{}", json.socket_text()), json.binary().to_vec())
        }
        fn decoder(&self, max: usize) -> Box<dyn PacketDecoder> {
            Box::new(PrefixedDecoder(Decoder::with_max_attachments(max)))
        }
    }

    impl PacketDecoder for PrefixedDecoder {
        fn decode_text(&mut self, text: Str) -> Result<Option<Packet>, DecodeError> {
            let rest = text
                .strip_prefix('~')
                .ok_or(DecodeError::UnknownPacketType)?;
            self.0.decode_text(Str::from(rest))
        }
        fn decode_binary(&mut self, data: Bytes) -> Result<Option<Packet>, DecodeError> {
            self.0.decode_binary(data)
        }
    }

    #[test]
    fn each_parser_decodes_what_it_encodes() {
        let event = Packet::event(
            "/chat",
            RawJson::parse(r#"["e",{"_placeholder":true,"num":0},1.5]"#).unwrap(),
            vec![Bytes::from_static(b"\x01\x02")],
        )
        .with_id(7);
        for parser in [Parser::json(), Parser::msgpack(), Parser::custom(Prefixed)] {
            let encoded = parser.encode(&event);
            let mut decoder = parser.decoder(10);
            let mut out = None;
            for message in encoded.packets() {
                out = match message {
                    crate::engine::Packet::Message(t) => decoder.decode_text(t),
                    crate::engine::Packet::Binary(b) => decoder.decode_binary(b),
                    other => panic!("{other:?}"),
                }
                .unwrap_or_else(|e| panic!("{parser:?}: {e:?}"));
            }
            assert_eq!(out.as_ref(), Some(&event), "{parser:?}");
        }
        assert_eq!(Parser::msgpack().encode(&event).message(), "");
        assert!(Parser::custom(Prefixed)
            .encode(&event)
            .message()
            .starts_with("4~"));
    }

    #[test]
    fn msgpack_refuses_text_and_json_refuses_msgpack() {
        let mut d = Parser::msgpack().decoder(10);
        assert!(d.decode_text(Str::from("2[\"a\"]")).is_err());
        let frame = Parser::msgpack().encode(&Packet::disconnect("/")).binary()[0].clone();
        assert!(Parser::json().decoder(10).decode_binary(frame).is_err());
    }
}
