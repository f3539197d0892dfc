//! The HTTP long-polling payload of Engine.IO v4: records joined by the byte 0x1e.

use bytes::Bytes;

use super::error::DecodeError;
use super::packet::{encode_base64_into, Frame, Packet, Protocol};
use crate::Str;

/// The record separator between packets of a v4 polling payload.
pub const SEPARATOR: u8 = 0x1e;

/// Joins frames into one v4 polling payload: text frames as they are, binary frames as `b` +
/// base64. Text frames are copied once into the response body; nothing is re-encoded.
///
/// ```
/// use bytes::Bytes;
/// use ferrio_proto::engine::{encode_payload, Packet};
/// let frames = [Packet::Message("hello".into()).encode(), Packet::Binary(Bytes::from_static(&[1, 2, 3, 4])).encode()];
/// assert_eq!(&encode_payload(&frames)[..], b"4hello\x1ebAQIDBA==");
/// ```
pub fn encode_payload<'a>(frames: impl IntoIterator<Item = &'a Frame> + Clone) -> Bytes {
    let len: usize = frames
        .clone()
        .into_iter()
        .map(|f| f.polling_len() + 1)
        .sum();
    // A `Vec` of the exact length: `Bytes` takes it over without a copy.
    let mut out = Vec::with_capacity(len);
    for (i, frame) in frames.into_iter().enumerate() {
        if i > 0 {
            out.push(SEPARATOR);
        }
        match frame {
            Frame::Text(s) => out.extend_from_slice(s.as_bytes()),
            Frame::Binary(b) => {
                out.push(b'b');
                encode_base64_into(b, &mut out);
            }
        }
    }
    Bytes::from(out)
}

/// Decodes a v4 polling payload, one packet per record, sharing the body's memory.
///
/// Like the reference, decoding stops at the first invalid record: the iterator yields the packets
/// before it, then the error, then nothing. An empty body is one invalid (empty) record.
///
/// ```
/// use ferrio_proto::engine::{decode_payload, Packet};
/// let packets: Vec<_> = decode_payload("4test1\x1e4test2".into()).collect::<Result<_, _>>().unwrap();
/// assert_eq!(packets, [Packet::Message("test1".into()), Packet::Message("test2".into())]);
/// ```
pub fn decode_payload(body: Str) -> PayloadDecoder {
    PayloadDecoder {
        body,
        pos: 0,
        done: false,
    }
}

/// Like [`decode_payload`] for a body not yet checked to be UTF-8.
pub fn decode_payload_bytes(body: Bytes) -> Result<PayloadDecoder, DecodeError> {
    Str::from_utf8(body)
        .map(decode_payload)
        .map_err(|_| DecodeError::InvalidUtf8)
}

/// Iterator over the packets of a v4 polling payload; see [`decode_payload`].
#[derive(Debug, Clone)]
pub struct PayloadDecoder {
    body: Str,
    pos: usize,
    done: bool,
}

impl Iterator for PayloadDecoder {
    type Item = Result<Packet, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = &self.body.as_bytes()[self.pos..];
        let end = match rest.iter().position(|&b| b == SEPARATOR) {
            Some(i) => self.pos + i,
            None => {
                self.done = true;
                self.body.len()
            }
        };
        // 0x1e is ASCII, so both cut points are char boundaries.
        let record = self.body.slice(self.pos..end);
        self.pos = end + 1;
        let result = Packet::decode_text(record, Protocol::V4);
        if result.is_err() {
            self.done = true;
        }
        Some(result)
    }
}

impl std::iter::FusedIterator for PayloadDecoder {}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(s: &str) -> Vec<Result<Packet, DecodeError>> {
        decode_payload(Str::from(s)).collect()
    }

    #[test]
    fn byte_examples() {
        // §1.1: Polling 4hello␞bAQIDBA== = 34 68 65 6c 6c 6f 1e 62 41 51 49 44 42 41 3d 3d
        let frames = [
            Packet::Message("hello".into()).encode(),
            Packet::Binary(Bytes::from_static(&[1, 2, 3, 4])).encode(),
        ];
        let body = encode_payload(&frames);
        assert_eq!(
            body.as_ref(),
            &[
                0x34, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x1e, 0x62, 0x41, 0x51, 0x49, 0x44, 0x42, 0x41,
                0x3d, 0x3d
            ]
        );
        assert_eq!(
            decode_all("4hello\u{1e}bAQIDBA=="),
            vec![
                Ok(Packet::Message("hello".into())),
                Ok(Packet::Binary(Bytes::from_static(&[1, 2, 3, 4])))
            ]
        );
        // §1.1: Polling 4test1␞4test2␞4test3 (three message packets)
        assert_eq!(
            decode_all("4test1\u{1e}4test2\u{1e}4test3"),
            ["test1", "test2", "test3"]
                .map(|t| Ok(Packet::Message(t.into())))
                .to_vec()
        );
    }

    #[test]
    fn stops_at_first_bad_record() {
        assert_eq!(
            decode_all("4a\u{1e}x\u{1e}4b"),
            vec![
                Ok(Packet::Message("a".into())),
                Err(DecodeError::UnknownType('x'))
            ]
        );
        assert_eq!(decode_all(""), vec![Err(DecodeError::Empty)]);
        assert_eq!(
            decode_all("4a\u{1e}"),
            vec![Ok(Packet::Message("a".into())), Err(DecodeError::Empty)]
        );
    }

    #[test]
    fn empty_binary_round_trips() {
        let body = encode_payload(&[Packet::Binary(Bytes::new()).encode()]);
        assert_eq!(&body[..], b"b");
        assert_eq!(decode_all("b"), vec![Ok(Packet::Binary(Bytes::new()))]);
    }

    #[test]
    fn invalid_utf8_body_is_an_error() {
        assert_eq!(
            decode_payload_bytes(Bytes::from_static(&[0x34, 0xff])).err(),
            Some(DecodeError::InvalidUtf8)
        );
    }

    #[test]
    fn polling_len_matches_encoding() {
        for n in 0..10 {
            let f = Packet::Binary(Bytes::from(vec![7u8; n])).encode();
            assert_eq!(encode_payload([&f]).len(), f.polling_len());
        }
    }
}
