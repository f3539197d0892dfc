//! Engine.IO packets and their WebSocket frame form (protocol v4, and v3's binary frame).

use bytes::Bytes;

use super::error::DecodeError;
use crate::Str;

/// The Engine.IO protocol revision a session speaks (`EIO=` in the query string).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Engine.IO v3 (Socket.IO 2.x clients): length-prefixed polling payloads, typed binary frames.
    V3,
    /// Engine.IO v4 (Socket.IO 3.x and 4.x): records joined by 0x1e, raw binary frames.
    V4,
}

/// The seven Engine.IO packet types, numbered as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// `0`: handshake data from the server.
    Open = 0,
    /// `1`: close the session.
    Close = 1,
    /// `2`: heartbeat request (`2probe` during an upgrade).
    Ping = 2,
    /// `3`: heartbeat answer (`3probe` during an upgrade).
    Pong = 3,
    /// `4`: application data.
    Message = 4,
    /// `5`: switch to the probed transport.
    Upgrade = 5,
    /// `6`: does nothing; answers a pending poll during an upgrade.
    Noop = 6,
}

impl PacketType {
    /// The type for a wire digit `0`–`6`.
    pub fn from_digit(d: u8) -> Option<PacketType> {
        Some(match d {
            0 => PacketType::Open,
            1 => PacketType::Close,
            2 => PacketType::Ping,
            3 => PacketType::Pong,
            4 => PacketType::Message,
            5 => PacketType::Upgrade,
            6 => PacketType::Noop,
            _ => return None,
        })
    }

    /// The ASCII character written on the wire.
    pub fn as_char(self) -> char {
        (b'0' + self as u8) as char
    }
}

/// One Engine.IO packet, decoded.
///
/// Text data shares the decoded frame's memory. `Close`, `Upgrade` and `Noop` carry no data on the
/// wire in practice; trailing text after them is accepted and dropped, as the reference ignores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// `0` + handshake JSON (see [`super::OpenPacket`]).
    Open(Str),
    /// `1`.
    Close,
    /// `2` + optional data (`probe`).
    Ping(Str),
    /// `3` + optional data (`probe`).
    Pong(Str),
    /// `4` + text data.
    Message(Str),
    /// A binary message.
    Binary(Bytes),
    /// `5`.
    Upgrade,
    /// `6`.
    Noop,
}

/// A whole WebSocket message: the unit Engine.IO sends one packet in.
///
/// For text it is also exactly one record of a v4 polling payload; binary frames become `b` +
/// base64 records when batched into a polling response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Frame {
    /// A text frame, type character included (`4hello`).
    Text(Str),
    /// A binary frame (v4: the raw data of a binary message).
    Binary(#[cfg_attr(feature = "arbitrary", arbitrary(with = crate::fuzzing::bytes))] Bytes),
}

impl Frame {
    /// The length of this frame as a v4 polling record (before the separator).
    pub fn polling_len(&self) -> usize {
        match self {
            Frame::Text(s) => s.len(),
            Frame::Binary(b) => 1 + base64_len(b.len()),
        }
    }
}

pub(crate) fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Decodes base64 as Node's `Buffer.from(text, "base64")` does, which is what the reference
/// server and clients use: both alphabets (`+/` and `-_`), characters outside them skipped, the
/// first `=` ends the data, and a trailing group too short for a byte is dropped. It never fails.
pub(crate) fn decode_base64(text: &str) -> Bytes {
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for b in text.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Bytes::from(out)
}

/// Where base64 goes: a `Vec<u8>` (the server's bodies and frames) or a `String` (the client's
/// text, a [`Str`] without a UTF-8 check: the browser build has no UTF-8 validation at all).
pub(crate) trait Base64Out {
    /// Appends ASCII characters (`bytes` are all below 128).
    fn push_ascii(&mut self, bytes: &[u8]);
    /// Reserves room for `n` more bytes.
    fn reserve_bytes(&mut self, n: usize);
}

impl Base64Out for Vec<u8> {
    fn push_ascii(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
    fn reserve_bytes(&mut self, n: usize) {
        self.reserve(n);
    }
}

impl Base64Out for String {
    fn push_ascii(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.push(char::from(b));
        }
    }
    fn reserve_bytes(&mut self, n: usize) {
        self.reserve(n);
    }
}

/// Appends standard base64 with padding (`Buffer.toString("base64")`). Written out rather than
/// taken from a base64 crate: a few lines here against a large encoder in the browser build.
pub(crate) fn encode_base64_into(data: &[u8], out: &mut impl Base64Out) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    out.reserve_bytes(base64_len(data.len()));
    let mut chunks = data.chunks_exact(3);
    for c in &mut chunks {
        let n = u32::from(c[0]) << 16 | u32::from(c[1]) << 8 | u32::from(c[2]);
        out.push_ascii(&[
            ALPHABET[(n >> 18) as usize & 63],
            ALPHABET[(n >> 12) as usize & 63],
            ALPHABET[(n >> 6) as usize & 63],
            ALPHABET[n as usize & 63],
        ]);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let n = u32::from(rest[0]) << 16 | rest.get(1).map_or(0, |&b| u32::from(b) << 8);
        out.push_ascii(&[
            ALPHABET[(n >> 18) as usize & 63],
            ALPHABET[(n >> 12) as usize & 63],
            if rest.len() == 2 {
                ALPHABET[(n >> 6) as usize & 63]
            } else {
                b'='
            },
            b'=',
        ]);
    }
}

impl Packet {
    /// The packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Open(_) => PacketType::Open,
            Packet::Close => PacketType::Close,
            Packet::Ping(_) => PacketType::Ping,
            Packet::Pong(_) => PacketType::Pong,
            Packet::Message(_) | Packet::Binary(_) => PacketType::Message,
            Packet::Upgrade => PacketType::Upgrade,
            Packet::Noop => PacketType::Noop,
        }
    }

    fn text_data(&self) -> &str {
        match self {
            Packet::Open(s) | Packet::Ping(s) | Packet::Pong(s) | Packet::Message(s) => s,
            _ => "",
        }
    }

    /// Encodes the packet as a v4 WebSocket frame (also a v4 polling record when text).
    ///
    /// ```
    /// use ferrio_proto::engine::{Frame, Packet};
    /// assert_eq!(Packet::Message("hello".into()).encode(), Frame::Text("4hello".into()));
    /// ```
    pub fn encode(&self) -> Frame {
        match self {
            Packet::Binary(b) => Frame::Binary(b.clone()),
            other => Frame::Text(text_frame(other.packet_type(), other.text_data())),
        }
    }

    /// Encodes the packet as a v3 WebSocket frame: binary frames start with the type byte.
    pub fn encode_v3(&self) -> Frame {
        match self {
            Packet::Binary(b) => {
                let mut out = Vec::with_capacity(b.len() + 1);
                out.push(PacketType::Message as u8);
                out.extend_from_slice(b);
                Frame::Binary(Bytes::from(out))
            }
            other => other.encode(),
        }
    }

    /// Decodes a WebSocket text frame (`4hello`; a leading `b` means base64 binary data).
    pub fn decode_text(text: Str, protocol: Protocol) -> Result<Packet, DecodeError> {
        let mut chars = text.chars();
        let first = chars.next().ok_or(DecodeError::Empty)?;
        if first == 'b' {
            return match protocol {
                Protocol::V4 => Ok(Packet::Binary(decode_base64(&text[1..]))),
                Protocol::V3 => {
                    let kind = chars.next().ok_or(DecodeError::Empty)?;
                    match kind
                        .to_digit(10)
                        .and_then(|d| PacketType::from_digit(d as u8))
                    {
                        Some(PacketType::Message) => Ok(Packet::Binary(decode_base64(&text[2..]))),
                        Some(_) => Err(DecodeError::BinaryNotMessage),
                        None => Err(DecodeError::UnknownType(kind)),
                    }
                }
            };
        }
        let kind = first
            .to_digit(10)
            .and_then(|d| PacketType::from_digit(d as u8))
            .ok_or(DecodeError::UnknownType(first))?;
        let data = text.slice(1..text.len());
        Ok(match kind {
            PacketType::Open => Packet::Open(data),
            PacketType::Close => Packet::Close,
            PacketType::Ping => Packet::Ping(data),
            PacketType::Pong => Packet::Pong(data),
            PacketType::Message => Packet::Message(data),
            PacketType::Upgrade => Packet::Upgrade,
            PacketType::Noop => Packet::Noop,
        })
    }

    /// Decodes a WebSocket binary frame: v4 frames are raw message data; v3 frames start with the
    /// packet type byte, which must be `message`.
    pub fn decode_binary(data: Bytes, protocol: Protocol) -> Result<Packet, DecodeError> {
        match protocol {
            Protocol::V4 => Ok(Packet::Binary(data)),
            Protocol::V3 => match data.first() {
                None => Err(DecodeError::Empty),
                Some(4) => Ok(Packet::Binary(data.slice(1..))),
                Some(t) if *t <= 6 => Err(DecodeError::BinaryNotMessage),
                Some(t) => Err(DecodeError::UnknownType(char::from(*t))),
            },
        }
    }

    /// Decodes a WebSocket frame of either kind.
    pub fn decode(frame: Frame, protocol: Protocol) -> Result<Packet, DecodeError> {
        match frame {
            Frame::Text(t) => Packet::decode_text(t, protocol),
            Frame::Binary(b) => Packet::decode_binary(b, protocol),
        }
    }
}

/// Builds a text frame from a type and its data with one allocation.
pub fn text_frame(kind: PacketType, data: &str) -> Str {
    let mut s = String::with_capacity(1 + data.len());
    s.push(kind.as_char());
    s.push_str(data);
    Str::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn base64_matches_the_base64_crate(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut out = "x".to_owned();
            encode_base64_into(&data, &mut out);
            let mut bytes = b"x".to_vec();
            encode_base64_into(&data, &mut bytes);
            prop_assert_eq!(out.as_bytes(), &bytes[..]);
            let expected = base64::engine::general_purpose::STANDARD.encode(&data);
            prop_assert_eq!(&out[1..], expected.as_str());
            prop_assert_eq!(out.len() - 1, base64_len(data.len()));
            prop_assert_eq!(&decode_base64(&expected)[..], &data[..]);
        }
    }

    fn text(s: &str) -> Packet {
        Packet::decode_text(Str::from(s), Protocol::V4).expect("valid")
    }

    #[test]
    fn ws_text_frame_bytes() {
        // Protocol notes §1.1: WS text "4hello" = 34 68 65 6c 6c 6f
        let frame = Packet::Message("hello".into()).encode();
        let Frame::Text(s) = &frame else {
            panic!("text")
        };
        assert_eq!(s.as_bytes().as_ref(), &[0x34, 0x68, 0x65, 0x6c, 0x6c, 0x6f]);
        assert_eq!(text("4hello"), Packet::Message("hello".into()));
    }

    #[test]
    fn ws_binary_frame_v4_and_v3() {
        // §1.1: WS binary Buffer<01 02 03> = 01 02 03 (v3 would be 04 01 02 03)
        let p = Packet::Binary(Bytes::from_static(&[1, 2, 3]));
        assert_eq!(p.encode(), Frame::Binary(Bytes::from_static(&[1, 2, 3])));
        assert_eq!(
            p.encode_v3(),
            Frame::Binary(Bytes::from_static(&[4, 1, 2, 3]))
        );
        assert_eq!(
            Packet::decode_binary(Bytes::from_static(&[4, 1, 2, 3]), Protocol::V3),
            Ok(p.clone())
        );
        assert_eq!(
            Packet::decode_binary(Bytes::from_static(&[1, 2, 3]), Protocol::V4),
            Ok(p)
        );
        assert_eq!(
            Packet::decode_binary(Bytes::from_static(&[2, 1]), Protocol::V3),
            Err(DecodeError::BinaryNotMessage)
        );
        assert_eq!(
            Packet::decode_binary(Bytes::new(), Protocol::V3),
            Err(DecodeError::Empty)
        );
    }

    #[test]
    fn every_type_decodes() {
        assert_eq!(text("0{}"), Packet::Open("{}".into()));
        assert_eq!(text("1"), Packet::Close);
        assert_eq!(text("2"), Packet::Ping("".into()));
        assert_eq!(text("2probe"), Packet::Ping("probe".into()));
        assert_eq!(text("3probe"), Packet::Pong("probe".into()));
        assert_eq!(text("4"), Packet::Message("".into()));
        assert_eq!(text("5"), Packet::Upgrade);
        assert_eq!(text("6"), Packet::Noop);
        assert_eq!(text("6ignored"), Packet::Noop);
    }

    #[test]
    fn text_frame_starting_with_b_is_base64_binary() {
        // §1.1 decoder leniency [observed]
        assert_eq!(
            text("bAQID"),
            Packet::Binary(Bytes::from_static(&[1, 2, 3]))
        );
        assert_eq!(text("b"), Packet::Binary(Bytes::new()));
        assert_eq!(
            Packet::decode_text("b4AQID".into(), Protocol::V3),
            Ok(Packet::Binary(Bytes::from_static(&[1, 2, 3])))
        );
    }

    #[test]
    fn rejects_unknown_and_empty() {
        assert_eq!(
            Packet::decode_text("".into(), Protocol::V4),
            Err(DecodeError::Empty)
        );
        assert_eq!(
            Packet::decode_text("7".into(), Protocol::V4),
            Err(DecodeError::UnknownType('7'))
        );
        assert_eq!(
            Packet::decode_text("x".into(), Protocol::V4),
            Err(DecodeError::UnknownType('x'))
        );
        // base64 is decoded as Node decodes it: never an error
        for (text, bytes) in [
            ("bAQIDB", &[1u8, 2, 3][..]),
            ("bAQ==AQ==", &[1]),
            ("bAQ=x", &[1]),
            ("bA", &[]),
            ("b===", &[]),
            ("b-_8", &[0xfb, 0xff]),
            ("bAQ ID\n", &[1, 2, 3]),
            ("b!!", &[]),
        ] {
            assert_eq!(
                Packet::decode_text(text.into(), Protocol::V4),
                Ok(Packet::Binary(Bytes::copy_from_slice(bytes))),
                "{text}"
            );
        }
    }

    #[test]
    fn decoded_text_shares_the_frame() {
        let frame = Str::from("4hello");
        let Packet::Message(m) = Packet::decode_text(frame.clone(), Protocol::V4).expect("ok")
        else {
            panic!("message")
        };
        assert_eq!(m.as_bytes().as_ptr(), frame.as_bytes()[1..].as_ptr());
    }
}
