//! The HTTP long-polling payloads of Engine.IO v3: the length-prefixed text form
//! (`<len>:<packet>`, lengths in UTF-16 code units) and the binary form
//! (`<0|1><length digits as bytes>0xFF<data>`).

use bytes::{BufMut, Bytes, BytesMut};

use super::error::DecodeError;
use super::packet::{base64_len, encode_base64_into, Frame, Packet, PacketType, Protocol};
use crate::js::{string_to_number, utf16_len};
use crate::Str;

/// The most length digits the reference accepts in one binary-payload record (it checks for more
/// than 310 before adding a digit, so 311 pass).
const MAX_LENGTH_DIGITS: usize = 311;

/// Encodes frames as a v3 text payload. Binary frames (v4 form: raw message data) become
/// `b4` + base64. An empty list encodes as `0:`.
///
/// ```
/// use ferrio_proto::engine::{encode_payload_v3, Packet};
/// use bytes::Bytes;
/// let frames = [Packet::Message("hello".into()).encode(), Packet::Binary(Bytes::from_static(&[1, 2, 3, 4])).encode()];
/// assert_eq!(&encode_payload_v3(&frames)[..], b"6:4hello10:b4AQIDBA==");
/// ```
pub fn encode_payload_v3<'a>(frames: impl IntoIterator<Item = &'a Frame>) -> Bytes {
    let mut out = Vec::new();
    let mut any = false;
    for frame in frames {
        any = true;
        match frame {
            Frame::Text(s) => {
                out.extend_from_slice(utf16_len(s).to_string().as_bytes());
                out.push(b':');
                out.extend_from_slice(s.as_bytes());
            }
            Frame::Binary(b) => {
                out.extend_from_slice((2 + base64_len(b.len())).to_string().as_bytes());
                out.extend_from_slice(b":b4");
                encode_base64_into(b, &mut out);
            }
        }
    }
    if !any {
        out.extend_from_slice(b"0:");
    }
    Bytes::from(out)
}

/// Encodes frames as a v3 binary payload (sent to clients that support binary when the batch
/// holds binary data). Text records carry their UTF-8 length; binary records carry the type byte.
pub fn encode_payload_v3_binary<'a>(frames: impl IntoIterator<Item = &'a Frame>) -> Bytes {
    let mut out = BytesMut::new();
    for frame in frames {
        let (marker, len) = match frame {
            Frame::Text(s) => (0u8, s.len()),
            Frame::Binary(b) => (1u8, b.len() + 1),
        };
        out.put_u8(marker);
        for digit in len.to_string().bytes() {
            out.put_u8(digit - b'0');
        }
        out.put_u8(0xff);
        match frame {
            Frame::Text(s) => out.extend_from_slice(s.as_bytes()),
            Frame::Binary(b) => {
                out.put_u8(PacketType::Message as u8);
                out.extend_from_slice(b);
            }
        }
    }
    out.freeze()
}

/// Decodes a v3 text payload. Any error rejects the whole payload (the reference hands over the
/// records before a bad one first; either way the session then closes with `parse error`).
///
/// ```
/// use ferrio_proto::engine::{decode_payload_v3, Packet};
/// assert_eq!(decode_payload_v3(&"2:4€".into()).unwrap(), [Packet::Message("€".into())]);
/// ```
pub fn decode_payload_v3(body: &Str) -> Result<Vec<Packet>, DecodeError> {
    if body.is_empty() {
        return Err(DecodeError::Empty);
    }
    let mut packets = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let rest = &body[pos..];
        let colon = rest.find(':').ok_or(DecodeError::InvalidLength)?;
        let len_text = &rest[..colon];
        let n = string_to_number(len_text);
        if len_text.is_empty() || !(n.is_finite() && n >= 0.0 && n.fract() == 0.0) {
            return Err(DecodeError::InvalidLength);
        }
        let start = pos + colon + 1;
        let end = advance_utf16(body, start, n)?;
        if end > start {
            packets.push(Packet::decode_text(body.slice(start..end), Protocol::V3)?);
        }
        pos = end;
    }
    Ok(packets)
}

/// The byte offset `units` UTF-16 code units after `start`, or an error if the body ends first or
/// the count would split a surrogate pair.
fn advance_utf16(body: &str, start: usize, units: f64) -> Result<usize, DecodeError> {
    let mut left = units;
    let mut end = start;
    let mut chars = body[start..].chars();
    while left > 0.0 {
        let c = chars.next().ok_or(DecodeError::InvalidLength)?;
        let w = c.len_utf16() as f64;
        if w > left {
            return Err(DecodeError::InvalidLength);
        }
        left -= w;
        end += c.len_utf8();
    }
    Ok(end)
}

/// Decodes a v3 binary payload (`Content-Type: application/octet-stream`). Any framing error
/// rejects the whole payload.
///
/// ```
/// use bytes::Bytes;
/// use ferrio_proto::engine::{decode_payload_v3_binary, Packet};
/// let body = Bytes::from_static(&[0x00, 0x04, 0xff, 0x34, 0xe2, 0x82, 0xac, 0x01, 0x04, 0xff, 0x04, 0x01, 0x02, 0x03]);
/// assert_eq!(
///     decode_payload_v3_binary(body).unwrap(),
///     [Packet::Message("€".into()), Packet::Binary(Bytes::from_static(&[1, 2, 3]))]
/// );
/// ```
pub fn decode_payload_v3_binary(body: Bytes) -> Result<Vec<Packet>, DecodeError> {
    let mut packets = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let is_text = body[pos] == 0;
        let mut len: usize = 0;
        let mut digits = 0;
        let mut i = pos + 1;
        loop {
            match body.get(i) {
                Some(0xff) => break,
                Some(&d) if d <= 9 && digits < MAX_LENGTH_DIGITS => {
                    len = len
                        .checked_mul(10)
                        .and_then(|l| l.checked_add(d as usize))
                        .ok_or(DecodeError::InvalidLength)?;
                    digits += 1;
                    i += 1;
                }
                _ => return Err(DecodeError::InvalidLength),
            }
        }
        if digits == 0 {
            return Err(DecodeError::InvalidLength);
        }
        let start = i + 1;
        let end = start.checked_add(len).ok_or(DecodeError::InvalidLength)?;
        if end > body.len() {
            return Err(DecodeError::InvalidLength);
        }
        let record = body.slice(start..end);
        packets.push(if is_text {
            let text = Str::from_utf8(record).map_err(|_| DecodeError::InvalidUtf8)?;
            Packet::decode_text(text, Protocol::V3)?
        } else {
            Packet::decode_binary(record, Protocol::V3)?
        });
        pos = end;
    }
    Ok(packets)
}

/// Wraps a v3 text payload for a JSONP poll (the `j` query parameter of old browser clients):
/// `___eio[<j>]("<payload as a JSON string>");`, with only the digits of `j` kept and U+2028 /
/// U+2029 escaped, as the reference writes it.
///
/// ```
/// use ferrio_proto::engine::encode_jsonp;
/// assert_eq!(encode_jsonp("3", "6:4hello"), r#"___eio[3]("6:4hello");"#);
/// ```
pub fn encode_jsonp(j: &str, payload: &str) -> String {
    let digits: String = j.chars().filter(char::is_ascii_digit).collect();
    // Serialising a &str cannot fail.
    let js = serde_json::to_string(payload)
        .unwrap_or_default()
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029");
    format!("___eio[{digits}]({js});")
}

/// The v3 text payload of a JSONP POST body (`application/x-www-form-urlencoded`, field `d`),
/// with the reference's unescaping of `\n` (a literal backslash-n in the form data is a newline;
/// a doubled backslash before `n` is kept as backslash-n). `None` without a `d` field.
///
/// ```
/// use ferrio_proto::engine::decode_jsonp_post;
/// assert_eq!(decode_jsonp_post(b"d=6%3A4hello").as_deref(), Some("6:4hello"));
/// assert_eq!(decode_jsonp_post(br"d=3:4a\nb").as_deref(), Some("3:4a\nb"));
/// ```
pub fn decode_jsonp_post(body: &[u8]) -> Option<String> {
    let d = form_urlencoded::parse(body)
        .find(|(k, _)| k == "d")
        .map(|(_, v)| v.into_owned())?;
    // The reference's two regular expressions, in order: `(\\)?\\n` becomes a newline unless
    // the optional backslash matched (then it stays), and then `\\\\n` becomes `\\n`.
    let b = d.as_bytes();
    let mut first = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(br"\\n") {
            first.extend_from_slice(br"\\n");
            i += 3;
        } else if b[i..].starts_with(br"\n") {
            first.push(b'\n');
            i += 2;
        } else {
            first.push(b[i]);
            i += 1;
        }
    }
    // Only ASCII bytes were replaced, so the text is still UTF-8.
    let out = String::from_utf8(first)
        .unwrap_or_default()
        .replace(r"\\n", r"\n");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_payload_counts_utf16_units() {
        // §1.2: `len` = JS string length (UTF-16 code units, `€` counts 1); e.g. 6:4hello10:b4AQIDBA==
        let frames = [
            Packet::Message("hello".into()).encode(),
            Packet::Binary(Bytes::from_static(&[1, 2, 3, 4])).encode(),
        ];
        assert_eq!(&encode_payload_v3(&frames)[..], b"6:4hello10:b4AQIDBA==");
        assert_eq!(
            decode_payload_v3(&"6:4hello10:b4AQIDBA==".into()),
            Ok(vec![
                Packet::Message("hello".into()),
                Packet::Binary(Bytes::from_static(&[1, 2, 3, 4]))
            ])
        );
        let euro = [Packet::Message("€".into()).encode()];
        assert_eq!(&encode_payload_v3(&euro)[..], "2:4€".as_bytes());
        let emoji = [Packet::Message("😀".into()).encode()];
        assert_eq!(&encode_payload_v3(&emoji)[..], "3:4😀".as_bytes());
        assert_eq!(
            decode_payload_v3(&"3:4😀".into()),
            Ok(vec![Packet::Message("😀".into())])
        );
    }

    #[test]
    fn empty_payload_forms() {
        // §1.2: empty payload `0:`
        assert_eq!(&encode_payload_v3([])[..], b"0:");
        assert_eq!(decode_payload_v3(&"0:".into()), Ok(vec![]));
        assert_eq!(decode_payload_v3(&"".into()), Err(DecodeError::Empty));
    }

    #[test]
    fn framing_errors_reject_everything() {
        for bad in [
            "6:4hello1",
            "5:4hello",
            "7:4hello",
            "x:4",
            ":4",
            "2:4😀",
            "1.5:4",
            "-1:4",
            "2:7a",
        ] {
            assert!(decode_payload_v3(&bad.into()).is_err(), "{bad}");
        }
    }

    #[test]
    fn jsonp_forms() {
        // §1.2: JSONP: `j` query, response `___eio[j]("payload");`, POST form `d=`
        assert_eq!(encode_jsonp("0", "1:6"), r#"___eio[0]("1:6");"#);
        assert_eq!(
            encode_jsonp("1x2", "3:4\"\u{2028}"),
            "___eio[12](\"3:4\\\"\\u2028\");"
        );
        assert_eq!(
            decode_jsonp_post(b"d=6%3A4hello").as_deref(),
            Some("6:4hello")
        );
        assert_eq!(decode_jsonp_post(b"x=1").as_deref(), None);
        // a backslash-n in the form data is a newline, a doubled backslash keeps it literal
        assert_eq!(decode_jsonp_post(br"d=4:4a\nb").as_deref(), Some("4:4a\nb"));
        assert_eq!(
            decode_jsonp_post(br"d=5:4a\\nb").as_deref(),
            Some("5:4a\\nb")
        );
        assert_eq!(
            decode_jsonp_post(br"d=6:4a\\\nb").as_deref(),
            Some("6:4a\\\\nb")
        );
    }

    #[test]
    fn binary_payload_example() {
        // §1.2: [{"€"},{<binary>}] → 00 04 ff 34 e2 82 ac 01 <len> ff 04 <data>
        let frames = [
            Packet::Message("€".into()).encode(),
            Packet::Binary(Bytes::from_static(&[1, 2, 3])).encode(),
        ];
        let body = encode_payload_v3_binary(&frames);
        assert_eq!(
            body.as_ref(),
            &[0x00, 0x04, 0xff, 0x34, 0xe2, 0x82, 0xac, 0x01, 0x04, 0xff, 0x04, 0x01, 0x02, 0x03]
        );
        assert_eq!(
            decode_payload_v3_binary(body),
            Ok(vec![
                Packet::Message("€".into()),
                Packet::Binary(Bytes::from_static(&[1, 2, 3]))
            ])
        );
    }

    #[test]
    fn binary_payload_errors() {
        for bad in [
            &[0x00, 0x04][..],               // no 0xff
            &[0x00, 0xff, 0x34],             // no digits
            &[0x00, 0x09, 0xff, 0x34],       // length past the end
            &[0x00, 0x0a, 0xff, 0x34],       // not a digit
            &[0x00, 0x02, 0xff, 0xc3, 0x28], // not UTF-8
            &[0x01, 0x02, 0xff, 0x02, 0x01], // binary ping
        ] {
            assert!(
                decode_payload_v3_binary(Bytes::copy_from_slice(bad)).is_err(),
                "{bad:?}"
            );
        }
        let mut long = vec![0x00];
        long.extend(std::iter::repeat_n(0, 400));
        assert_eq!(
            decode_payload_v3_binary(Bytes::from(long)),
            Err(DecodeError::InvalidLength)
        );
    }
}
