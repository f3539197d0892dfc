//! The Socket.IO decoder: the reference algorithm (`Decoder.decodeString`) with its leniencies,
//! and the reassembly of binary packets from their attachments.

use std::borrow::Cow;

use bytes::Bytes;

use super::error::DecodeError;
use super::json::RawJson;
use super::numbers::JsNumbers;
use super::packet::{AckId, Packet, PacketType, MAIN_NAMESPACE};
#[cfg(feature = "parsers")]
use super::parser::{PacketDecoder, Parser};
use super::validate::payload_is_valid;
use crate::js::{js_whitespace_len, trim_js_whitespace};
use crate::scan;
use crate::Str;

/// The default cap on attachments per packet (`maxAttachments` of the reference).
pub const DEFAULT_MAX_ATTACHMENTS: usize = 10;

/// Decodes the text of one Socket.IO packet (without the Engine.IO `4`). A binary packet comes
/// back with no attachments yet and the number it expects; [`Decoder`] does the reassembly.
pub(crate) fn decode_str(
    text: &Str,
    max_attachments: usize,
    numbers: &JsNumbers,
    deferred: bool,
) -> Result<(Packet, usize), DecodeError> {
    let s = text.as_str();
    // 1. Type: `Number(str.charAt(0))`; an empty string or white space reads as 0 (CONNECT).
    //    Read by bytes: a white-space character is 1 to 3 of them.
    let b = s.as_bytes();
    let (kind, mut pos) = match b.first() {
        None => (PacketType::Connect, 0),
        Some(d) if d.is_ascii_digit() => (
            PacketType::from_digit(u32::from(d - b'0')).ok_or(DecodeError::UnknownPacketType)?,
            1,
        ),
        Some(_) => match js_whitespace_len(b) {
            0 => return Err(DecodeError::UnknownPacketType),
            n => (PacketType::Connect, n),
        },
    };

    // 2. Attachments of binary packets: the text up to `-` must be a JS number, an integer ≥ 1.
    let mut expected = 0;
    if matches!(kind, PacketType::BinaryEvent | PacketType::BinaryAck) {
        let dash = scan::find_byte(&s[pos..], b'-').ok_or(DecodeError::IllegalAttachments)? + pos;
        let n = numbers
            .index(&s[pos..dash])
            .filter(|&n| n >= 1)
            .ok_or(DecodeError::IllegalAttachments)?;
        if n > max_attachments as u64 {
            return Err(DecodeError::TooManyAttachments {
                limit: max_attachments,
            });
        }
        expected = n as usize;
        pos = dash + 1;
    }

    // 3. Namespace: from `/` to the first `,` or the end.
    let nsp = if s[pos..].starts_with('/') {
        match scan::find_byte(&s[pos..], b',') {
            Some(comma) => {
                let nsp = text.slice(pos..pos + comma);
                pos += comma + 1;
                nsp
            }
            None => {
                let nsp = text.slice(pos..s.len());
                pos = s.len();
                nsp
            }
        }
    } else {
        MAIN_NAMESPACE
    };

    // 4. Ack id: the run of characters `c` with `Number(c) == c` (digits and JS white space), of
    //    any length: the packet's own length bounds it.
    //    By bytes, each step a whole character.
    let mut run = pos;
    let mut spaced = false;
    loop {
        let n = match b.get(run..).unwrap_or_default() {
            [d, ..] if d.is_ascii_digit() => 1,
            rest => {
                let n = js_whitespace_len(rest);
                spaced |= n > 0;
                n
            }
        };
        if n == 0 {
            break;
        }
        run += n;
    }
    let id = if run > pos {
        // Digits alone, as clients write ids, have nothing to trim.
        let id = if spaced {
            parse_ack_id(&s[pos..run])?
        } else {
            AckId::from_digits(&s[pos..run])
        };
        pos = run;
        Some(id)
    } else {
        None
    };

    // 5. Payload: the rest, which must parse and have the type's shape (a text event's JSON
    //    left to the application when the check is deferred: its shape only).
    let data = if pos < s.len() {
        let json = &s[pos..];
        // (The shape first: with it, the full check is not run.)
        if !(deferred && shape_is_checked(kind, json) || payload_is_valid(kind, json)) {
            return Err(DecodeError::InvalidPayload);
        }
        Some(RawJson::from_trusted(text.slice(pos..s.len())))
    } else {
        None
    };

    Ok((
        Packet {
            kind,
            nsp,
            id,
            data,
            attachments: Vec::new(),
        },
        expected,
    ))
}

/// With the JSON check deferred ([`Decoder::defer_json_check`]): whether the payload of an
/// EVENT has its type's shape by its ends alone, an array whose first item is a name without
/// escapes that is not reserved. The rest of its JSON is the application's to check. Anything
/// else (other types, binary packets, white space around the array, a name with escapes or a
/// number) is checked in full.
fn shape_is_checked(kind: PacketType, json: &str) -> bool {
    let b = json.as_bytes();
    kind == PacketType::Event
        && b.first() == Some(&b'[')
        && b.last() == Some(&b']')
        && scan::plain_first_string(json)
            .is_some_and(|name| !super::validate::is_reserved_event(name))
}

/// `Number(run)` for a run of digits and white space, kept exact (see [`AckId`]): white space
/// alone is 0, white space around digits is trimmed, white space between digits is `NaN`
/// (refused).
fn parse_ack_id(run: &str) -> Result<AckId, DecodeError> {
    let digits = trim_js_whitespace(run);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DecodeError::InvalidAckId);
    }
    Ok(AckId::from_digits(digits))
}

/// Checks every placeholder of a binary packet's data against the attachment count, walking the
/// value as the reference's `reconstructPacket` does (a placeholder object's other members are
/// not visited). One pass over the validated payload.
pub(crate) fn check_placeholders(
    json: &str,
    count: usize,
    numbers: &JsNumbers,
) -> Result<(), DecodeError> {
    let start = scan::skip_ws(json.as_bytes(), 0);
    walk_placeholders(json, start, count, numbers)
        .ok_or(DecodeError::InvalidPayload)?
        .1
}

/// Walks the value at `json[i..]`: the index past it, and whether its placeholders are valid.
/// `None` for text that is not valid JSON. The recursion is as deep as the payload's nesting,
/// which validation bounded; every byte is scanned once.
fn walk_placeholders(
    json: &str,
    i: usize,
    count: usize,
    numbers: &JsNumbers,
) -> Option<(usize, Result<(), DecodeError>)> {
    let b = json.as_bytes();
    let start = i;
    let open = *b.get(i)?;
    let close = match open {
        b'[' => b']',
        b'{' => b'}',
        _ => return Some((scan::value_end(b, i)?, Ok(()))),
    };
    // Failing members of an object, by member index: `JSON.parse` keeps the last of repeated
    // keys, so a failure counts only if no later member has its key.
    let mut failures: Vec<(usize, DecodeError)> = Vec::new();
    let mut placeholder = false;
    let mut num = None;
    let mut member = 0usize;
    let mut i = scan::skip_ws(b, i + 1);
    if b.get(i) == Some(&close) {
        return Some((i + 1, Ok(())));
    }
    loop {
        let mut key = None;
        if open == b'{' {
            let key_end = scan::string_end(b, i)?;
            key = Some(scan::string(json.get(i..key_end)?)?);
            i = scan::skip_ws(b, key_end);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i = scan::skip_ws(b, i + 1);
        }
        let (end, result) = walk_placeholders(json, i, count, numbers)?;
        match key.as_deref() {
            Some("_placeholder") => placeholder = json.get(i..end)? == "true",
            Some("num") => num = json.get(i..end),
            _ => {}
        }
        if let Err(e) = result {
            // An array keeps every item: only its first failure matters.
            if open == b'{' || failures.is_empty() {
                failures.push((member, e));
            }
        }
        member += 1;
        i = scan::skip_ws(b, end);
        match *b.get(i)? {
            b',' => i = scan::skip_ws(b, i + 1),
            c if c == close => break,
            _ => return None,
        }
    }
    let end = i + 1;
    if placeholder {
        // The walk read `num` as valid JSON.
        let valid = num
            .filter(|num| scan::is_number(num))
            .and_then(|num| numbers.index(num))
            .is_some_and(|n| n < count as u64);
        return Some((
            end,
            valid.then_some(()).ok_or(DecodeError::InvalidPlaceholder),
        ));
    }
    if open == b'[' || failures.is_empty() {
        return Some((end, failures.pop().map_or(Ok(()), |(_, e)| Err(e))));
    }
    // The rare case: a failure counts unless a later member repeats its key. Bounded: past 2^20
    // key comparisons the failure counts (only a payload built for it gets there).
    let mut keys: Vec<Cow<'_, str>> = Vec::new();
    for (key, _) in scan::object_members(json.get(start..end)?) {
        keys.push(scan::string(key)?);
    }
    let mut budget = 1usize << 20;
    for (index, e) in failures {
        let later = keys.get(index + 1..).unwrap_or_default();
        if later.len() > budget || !keys.get(index).is_some_and(|key| later.contains(key)) {
            return Some((end, Err(e)));
        }
        budget -= later.len();
    }
    Some((end, Ok(())))
}

/// The stateful Socket.IO decoder of one connection: text packets, and binary packets reassembled
/// from the attachments that follow them.
///
/// Memory is bounded: at most `max_attachments` buffers are held, each one Engine.IO message.
///
/// ```
/// use bytes::Bytes;
/// use ferrio_proto::socket::{Decoder, PacketType};
/// let mut decoder = Decoder::new();
/// assert!(decoder.decode_text(r#"51-["baz",{"_placeholder":true,"num":0}]"#.into()).unwrap().is_none());
/// let packet = decoder.decode_binary(Bytes::from_static(&[1, 2, 3, 4])).unwrap().unwrap();
/// assert_eq!(packet.kind(), PacketType::BinaryEvent);
/// let (data,): (Bytes,) = packet.args().unwrap();
/// assert_eq!(&data[..], &[1, 2, 3, 4]);
/// ```
///
/// A decoder made by [`Parser::decoder`](super::Parser::decoder) for another parser decodes that
/// parser's messages instead. A clone of such a decoder starts without a partly received packet
/// (the msgpack parser's never has one).
#[derive(Debug)]
pub struct Decoder {
    max_attachments: usize,
    /// `Number()`, for attachment counts and placeholder indexes.
    numbers: JsNumbers,
    /// The JSON of events left to the application ([`Decoder::defer_json_check`]).
    deferred: bool,
    pending: Option<(Packet, usize)>,
    /// Another parser's decoder, and the parser that makes it; `None` for the JSON format.
    #[cfg(feature = "parsers")]
    other: Option<(Parser, Box<dyn PacketDecoder>)>,
}

impl Clone for Decoder {
    fn clone(&self) -> Decoder {
        #[cfg(feature = "parsers")]
        if let Some((parser, _)) = &self.other {
            return parser.decoder(self.max_attachments);
        }
        Decoder {
            max_attachments: self.max_attachments,
            numbers: self.numbers,
            deferred: self.deferred,
            pending: self.pending.clone(),
            #[cfg(feature = "parsers")]
            other: None,
        }
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder accepting up to [`DEFAULT_MAX_ATTACHMENTS`] attachments per packet.
    pub fn new() -> Decoder {
        Decoder::with_max_attachments(DEFAULT_MAX_ATTACHMENTS)
    }

    /// A decoder accepting up to `max` attachments per packet.
    pub fn with_max_attachments(max: usize) -> Decoder {
        Decoder::with_numbers(max, JsNumbers::default())
    }

    /// A decoder accepting up to `max` attachments per packet, reading attachment counts and
    /// placeholder indexes with the `Number()` of `numbers` (see [`JsNumbers`]).
    pub fn with_numbers(max: usize, numbers: JsNumbers) -> Decoder {
        Decoder {
            max_attachments: max,
            numbers,
            deferred: false,
            pending: None,
            #[cfg(feature = "parsers")]
            other: None,
        }
    }

    /// A decoder handing every message to another parser's decoder.
    #[cfg(feature = "parsers")]
    pub(crate) fn with_custom(
        parser: Parser,
        max_attachments: usize,
        other: Box<dyn PacketDecoder>,
    ) -> Decoder {
        Decoder {
            max_attachments,
            numbers: JsNumbers::UNUSED,
            deferred: false,
            pending: None,
            other: Some((parser, other)),
        }
    }

    /// Leaves the JSON of text EVENT payloads to the application (`on`), for a driver that
    /// parses every one of them anyway (the browser client, with `JSON.parse`): such a payload is
    /// checked for its shape by its ends (an array whose first item is an event name without
    /// escapes that is not reserved; anything else is checked in full), and the application must
    /// treat one that does not parse as the decoder treats an invalid payload (the client:
    /// [`Manager::payload_invalid`](super::client::Manager::payload_invalid)). Binary packets and
    /// the other types are always checked in full. Off by default.
    pub fn defer_json_check(&mut self, on: bool) {
        self.deferred = on;
    }

    /// Decodes a text message. Returns the packet, or `None` when it is a binary packet that now
    /// waits for its attachments.
    pub fn decode_text(&mut self, text: Str) -> Result<Option<Packet>, DecodeError> {
        #[cfg(feature = "parsers")]
        if let Some((_, other)) = &mut self.other {
            return other.decode_text(text);
        }
        if self.pending.is_some() {
            return Err(DecodeError::UnexpectedText);
        }
        let (packet, expected) =
            decode_str(&text, self.max_attachments, &self.numbers, self.deferred)?;
        if expected == 0 {
            return Ok(Some(packet));
        }
        self.pending = Some((packet, expected));
        Ok(None)
    }

    /// Decodes a binary message: the next attachment of the pending binary packet. Returns the
    /// packet once its last attachment has arrived and its placeholders check out.
    pub fn decode_binary(&mut self, data: Bytes) -> Result<Option<Packet>, DecodeError> {
        #[cfg(feature = "parsers")]
        if let Some((_, other)) = &mut self.other {
            return other.decode_binary(data);
        }
        let Some((packet, expected)) = self.pending.as_mut() else {
            return Err(DecodeError::UnexpectedBinary);
        };
        if packet.attachments.is_empty() {
            packet.attachments.reserve_exact(*expected);
        }
        packet.attachments.push(data);
        if packet.attachments.len() < *expected {
            return Ok(None);
        }
        let Some((packet, _)) = self.pending.take() else {
            return Err(DecodeError::UnexpectedBinary);
        };
        if let Some(data) = &packet.data {
            check_placeholders(data.as_str(), packet.attachments.len(), &self.numbers)?;
        }
        Ok(Some(packet))
    }

    /// True while a binary packet waits for attachments.
    pub fn is_reconstructing(&self) -> bool {
        #[cfg(feature = "parsers")]
        if let Some((_, other)) = &self.other {
            return other.is_reconstructing();
        }
        self.pending.is_some()
    }

    /// Drops a partially received binary packet (the reference's `destroy()`); decoding then
    /// resumes cleanly.
    pub fn reset(&mut self) {
        #[cfg(feature = "parsers")]
        if let Some((_, other)) = &mut self.other {
            other.reset();
        }
        self.pending = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary(text: &str) -> Result<Option<Packet>, DecodeError> {
        let mut decoder = Decoder::new();
        assert!(decoder.decode_text(Str::from(text))?.is_none());
        decoder.decode_binary(Bytes::from_static(&[1]))
    }

    #[test]
    fn a_deferred_check_looks_at_the_shape_of_text_events_only() {
        let mut deferred = Decoder::new();
        deferred.defer_json_check(true);
        let mut decode = |text: &str| deferred.decode_text(Str::from(text));
        // Handed over unchecked: the page's `JSON.parse` checks the rest.
        // (The Socket.IO packet's text, without the Engine.IO `4`.)
        assert!(decode(r#"2["ev",{bad]"#).is_ok_and(|p| p.is_some()));
        // Checked in full: another type, a binary event, no closing bracket, a reserved name,
        // white space after the array.
        for text in [
            r#"3["ack",{bad]"#,
            r#"51-["ev",{bad]"#,
            r#"2["ev",{bad"#,
            r#"2["disconnect",1]"#,
            r#"2["ev",{bad] "#,
        ] {
            assert_eq!(decode(text), Err(DecodeError::InvalidPayload), "{text}");
        }
        // Off by default.
        assert_eq!(
            Decoder::new().decode_text(Str::from(r#"2["ev",{bad]"#)),
            Err(DecodeError::InvalidPayload)
        );
    }

    #[test]
    fn counts_and_indexes_are_read_with_the_number_given() {
        // A `Number()` that doubles what it reads: the count of `51-` is then 2, and the
        // placeholder's index 0 still 0.
        let numbers = JsNumbers {
            to_string: |_, _| {},
            to_number: |text| text.parse::<f64>().map_or(f64::NAN, |n| n * 2.0),
        };
        let text = r#"51-["a",{"_placeholder":true,"num":0}]"#;
        let mut doubled = super::super::Parser::json_with(numbers).decoder(10);
        assert_eq!(doubled.decode_text(Str::from(text)), Ok(None));
        assert_eq!(doubled.decode_binary(Bytes::from_static(&[1])), Ok(None));
        let packet = doubled.decode_binary(Bytes::from_static(&[2]));
        assert_eq!(
            packet.map(|p| p.map(|p| p.attachments().len())),
            Ok(Some(2))
        );
        // Rust's own `Number()` by default: one attachment.
        assert!(binary(text).is_ok_and(|p| p.is_some()));
        // Its hexadecimal and white space, as JavaScript reads them.
        assert!(binary(r#"5 0x1 -["a",{"_placeholder":true,"num":0}]"#).is_ok_and(|p| p.is_some()));
    }

    #[test]
    fn repeated_keys_keep_the_last_value() {
        let overridden = r#"51-["a",{"k":{"_placeholder":true,"num":9},"k":1}]"#;
        assert!(binary(overridden).is_ok_and(|p| p.is_some()));
        let last = r#"51-["a",{"k":1,"k":{"_placeholder":true,"num":9}}]"#;
        assert!(matches!(binary(last), Err(DecodeError::InvalidPlaceholder)));
    }

    #[test]
    fn overridden_failures_are_checked_within_a_bound() {
        // 1,000 bad members all overridden by the last: accepted, as JSON.parse keeps the last.
        let bad = r#""k":{"_placeholder":true,"num":9},"#;
        let few = format!(r#"51-["a",{{{}"k":1}}]"#, bad.repeat(1_000));
        assert!(binary(&few).is_ok_and(|p| p.is_some()));
        // Past the comparison budget the first failure counts: refused, not a quadratic scan.
        let many = format!(r#"51-["a",{{{}"k":1}}]"#, bad.repeat(20_000));
        assert!(matches!(
            binary(&many),
            Err(DecodeError::InvalidPlaceholder)
        ));
    }
}
