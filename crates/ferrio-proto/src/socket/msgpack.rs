//! The codec of the msgpack parser, wire-compatible with the npm package
//! `socket.io-msgpack-parser` 3.x (notepack.io underneath).
//!
//! A packet is one binary Engine.IO message holding a msgpack map `{type, data?, id?, nsp}`;
//! binary values sit inline, so there are no attachments on the wire and packet types are
//! `0`–`4` only. Inside Ferrio a packet keeps its usual form, JSON text with placeholders plus
//! attachments: the encoder turns each placeholder into a msgpack `bin`, the decoder each binary
//! value (a `bin`, or an ext of type 0, which is how notepack.io writes an `ArrayBuffer`) into a
//! placeholder and an attachment sharing the received buffer.
//!
//! Numbers follow JavaScript's: an integral value is written as the smallest msgpack integer,
//! anything else as a `float 64`. Received values are read as notepack.io 2.2 (the version the
//! parser pins) reads them: `undefined` (fixext 1 of type 0) is an absent member (or `null` in an
//! array), a date (fixext 8 of type 0) becomes its ISO string as `JSON.stringify` writes it,
//! another ext (the msgpack timestamp of type -1 too, which that version does not know) becomes
//! `[type, <binary>]`. Unknown keys of the packet map (`options`, say) are ignored.

use std::borrow::Cow;

use bytes::Bytes;
use rmp::encode;

use super::decode::check_placeholders;
use super::error::DecodeError;
use super::json::RawJson;
use super::numbers::JsNumbers;
use super::packet::{AckId, Packet, PacketType};
use super::validate::{payload_is_valid, MAX_JSON_DEPTH};
use crate::scan;
use crate::Str;

// ---- encoder -----------------------------------------------------------------------------------

/// Encodes `packet` as the msgpack parser does: one msgpack map, binary inline.
pub(crate) fn encode(packet: &Packet, numbers: &JsNumbers) -> Bytes {
    let data = packet.data.as_ref();
    let binary: usize = packet.attachments.iter().map(Bytes::len).sum();
    let mut out =
        Vec::with_capacity(24 + packet.nsp.len() + data.map_or(0, |d| d.as_str().len()) + binary);
    let is_ack = packet.kind.is_ack();
    let wire_type = match packet.kind {
        PacketType::BinaryEvent => PacketType::Event,
        PacketType::BinaryAck => PacketType::Ack,
        other => other,
    } as u64;
    let len = 2 + u32::from(data.is_some()) + u32::from(packet.id.is_some());
    // Writing into a `Vec` cannot fail: the results carry nothing.
    let _ = encode::write_map_len(&mut out, len);
    // The reference's key order: an ack is built as `{id, type, data}`, the rest as
    // `{type, data}` with the id added after; the namespace comes last.
    if is_ack {
        write_id(&mut out, packet.id.as_ref(), numbers);
    }
    let _ = encode::write_str(&mut out, "type");
    let _ = encode::write_uint(&mut out, wire_type);
    if let Some(data) = data {
        let _ = encode::write_str(&mut out, "data");
        let json = data.as_str();
        let start = scan::skip_ws(json.as_bytes(), 0);
        write_json(&mut out, json, start, &packet.attachments, 0, numbers);
    }
    if !is_ack {
        write_id(&mut out, packet.id.as_ref(), numbers);
    }
    let _ = encode::write_str(&mut out, "nsp");
    let _ = encode::write_str(&mut out, &packet.nsp);
    Bytes::from(out)
}

fn write_id(out: &mut Vec<u8>, id: Option<&AckId>, numbers: &JsNumbers) {
    let Some(id) = id else { return };
    let _ = encode::write_str(out, "id");
    match id.as_u64() {
        Some(n) => {
            let _ = encode::write_uint(out, n);
        }
        // `Number(digits)` past 2^64: a float, as notepack.io writes it.
        None => write_number(out, &id.to_string(), numbers),
    }
}

/// Writes the JSON value starting exactly at `json[i..]` (valid JSON) as msgpack.
fn write_json(
    out: &mut Vec<u8>,
    json: &str,
    i: usize,
    attachments: &[Bytes],
    depth: usize,
    numbers: &JsNumbers,
) {
    let b = json.as_bytes();
    let end = scan::value_end(b, i).unwrap_or(b.len());
    let token = json.get(i..end).unwrap_or_default();
    match b.get(i) {
        Some(b'"') => {
            let s = scan::string(token).unwrap_or_default();
            let _ = encode::write_str(out, &s);
        }
        Some(b't') => {
            let _ = encode::write_bool(out, true);
        }
        Some(b'f') => {
            let _ = encode::write_bool(out, false);
        }
        Some(b'[') if depth < MAX_JSON_DEPTH => {
            let items: Vec<&str> = scan::array_items(token).collect();
            let _ = encode::write_array_len(out, items.len() as u32);
            for item in items {
                write_json(out, item, 0, attachments, depth + 1, numbers);
            }
        }
        Some(b'{') if depth < MAX_JSON_DEPTH => {
            if let Some(bin) = placeholder(token, attachments) {
                let _ = encode::write_bin(out, bin);
                return;
            }
            let members: Vec<(&str, &str)> = scan::object_members(token).collect();
            let _ = encode::write_map_len(out, members.len() as u32);
            for (key, value) in members {
                let key = scan::string(key).unwrap_or_default();
                let _ = encode::write_str(out, &key);
                write_json(out, value, 0, attachments, depth + 1, numbers);
            }
        }
        Some(b'-' | b'0'..=b'9') => write_number(out, token, numbers),
        // `null`, and what cannot be read (nesting past the limit, which no valid payload has).
        _ => {
            let _ = encode::write_nil(out);
        }
    }
}

/// The attachment a `{"_placeholder":true,"num":N}` object stands for.
fn placeholder<'a>(object: &str, attachments: &'a [Bytes]) -> Option<&'a [u8]> {
    if attachments.is_empty() || scan::member(object, "_placeholder")? != "true" {
        return None;
    }
    let num = scan::unsigned(scan::member(object, "num")?)?;
    attachments.get(usize::try_from(num).ok()?).map(|b| &b[..])
}

/// Writes a JSON number as notepack.io writes a JavaScript number: an integral value as the
/// smallest integer form (when it fits in 64 bits), anything else as a `float 64`.
fn write_number(out: &mut Vec<u8>, token: &str, numbers: &JsNumbers) {
    // Integers written with digits only are kept exact, even past 2^53.
    if let Ok(n) = token.parse::<u64>() {
        let _ = encode::write_uint(out, n);
        return;
    }
    if let Ok(n) = token.parse::<i64>() {
        let _ = encode::write_sint(out, n);
        return;
    }
    let v = (numbers.to_number)(token);
    const TWO_64: f64 = 18_446_744_073_709_551_616.0;
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if v.is_finite() && v.fract() == 0.0 {
        if (0.0..TWO_64).contains(&v) {
            let _ = encode::write_uint(out, v as u64);
            return;
        }
        if (-TWO_63..0.0).contains(&v) {
            let _ = encode::write_sint(out, v as i64);
            return;
        }
    }
    let _ = encode::write_f64(out, v);
}

// ---- decoder -----------------------------------------------------------------------------------

/// Decodes one msgpack packet (a whole binary message), checked as the msgpack parser's
/// `checkPacket` does and, like every packet Ferrio accepts, with a payload of the type's shape.
/// At most `max_attachments` binary values are accepted in it (`TooManyAttachments` past
/// that), as the JSON parser's attachments are: each costs far more in memory than its two
/// bytes on the wire.
pub(crate) fn decode(
    frame: &Bytes,
    max_attachments: usize,
    numbers: &JsNumbers,
) -> Result<Packet, DecodeError> {
    let mut r = Reader {
        frame,
        pos: 0,
        attachments: Vec::new(),
        max_attachments,
        numbers,
    };
    let len = match r.byte()? {
        m @ 0x80..=0x8f => usize::from(m & 0x0f),
        0xde => usize::from(r.u16()?),
        0xdf => r.u32()? as usize,
        _ => return Err(DecodeError::InvalidMsgpack),
    };
    let mut kind: Option<Scalar> = None;
    let mut nsp: Option<Str> = None;
    let mut id: Option<Scalar> = None;
    let mut data: Option<String> = None;
    for _ in 0..len {
        let key = r.key()?;
        match &*key {
            "type" => kind = r.scalar()?,
            "id" => id = r.scalar()?,
            "nsp" => nsp = r.nsp()?,
            "data" => {
                // Only the data's binary values are kept: a repeated key replaces them.
                r.attachments.clear();
                let mut json = String::new();
                data = match r.value(&mut json, 1)? {
                    Value::Written => Some(json),
                    Value::Undefined => None,
                };
            }
            _ => {
                let kept = r.attachments.len();
                r.value(&mut String::new(), 1)?;
                r.attachments.truncate(kept);
            }
        }
    }
    if r.pos != frame.len() {
        return Err(DecodeError::InvalidMsgpack);
    }
    let kind = match kind {
        Some(Scalar::Int(n)) if n <= 4 => PacketType::from_digit(n as u32),
        Some(Scalar::Float(f)) if f.fract() == 0.0 && (0.0..=4.0).contains(&f) => {
            PacketType::from_digit(f as u32)
        }
        _ => None,
    }
    .ok_or(DecodeError::UnknownPacketType)?;
    let nsp = nsp.ok_or(DecodeError::InvalidPayload)?;
    let id = match id {
        None | Some(Scalar::Undefined) => None,
        Some(Scalar::Int(n)) => Some(AckId::from(n)),
        Some(Scalar::Float(f))
            if f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&f) =>
        {
            Some(AckId::from(f as u64))
        }
        Some(_) => return Err(DecodeError::InvalidAckId),
    };
    let attachments = std::mem::take(&mut r.attachments);
    let kind = match (kind, attachments.is_empty()) {
        (PacketType::Event, false) => PacketType::BinaryEvent,
        (PacketType::Ack, false) => PacketType::BinaryAck,
        (kind, _) => kind,
    };
    let data = match (kind, data) {
        (PacketType::Connect, None) => None,
        (PacketType::Disconnect, None) => None,
        (PacketType::Disconnect, Some(_)) | (_, None) => return Err(DecodeError::InvalidPayload),
        (kind, Some(json)) => {
            if !payload_is_valid(kind, &json) {
                return Err(DecodeError::InvalidPayload);
            }
            // A map written as a placeholder (`{"_placeholder":true,"num":N}`) is read as one,
            // as for the JSON parser: it must name a binary value of the packet.
            check_placeholders(&json, attachments.len(), numbers)?;
            Some(RawJson::from_trusted(Str::from(json)))
        }
    };
    Ok(Packet {
        kind,
        nsp,
        id,
        data,
        attachments,
    })
}

/// A scalar read for `type` or `id`.
#[derive(Debug, Clone, Copy)]
enum Scalar {
    Int(u64),
    Float(f64),
    Undefined,
    Other,
}

/// Whether a value produced JSON text, or was `undefined`.
enum Value {
    Written,
    Undefined,
}

/// A cursor over one msgpack message.
struct Reader<'a> {
    frame: &'a Bytes,
    pos: usize,
    /// The binary values met so far, in placeholder order.
    attachments: Vec<Bytes>,
    /// The most binary values a packet may hold.
    max_attachments: usize,
    /// How floats become JSON text.
    numbers: &'a JsNumbers,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::InvalidMsgpack)?;
        let frame: &'a Bytes = self.frame;
        let s = frame
            .get(self.pos..end)
            .ok_or(DecodeError::InvalidMsgpack)?;
        self.pos = end;
        Ok(s)
    }

    fn take_bytes(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        let start = self.pos;
        self.take(n)?;
        Ok(self.frame.slice(start..self.pos))
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn str(&mut self, len: usize) -> Result<Cow<'a, str>, DecodeError> {
        // Node's `Buffer.toString('utf8')` replaces invalid sequences; so does this.
        Ok(String::from_utf8_lossy(self.take(len)?))
    }

    /// The length of a `str`, when `marker` is one.
    fn str_len(&mut self, marker: u8) -> Result<Option<usize>, DecodeError> {
        Ok(Some(match marker {
            0xa0..=0xbf => usize::from(marker & 0x1f),
            0xd9 => usize::from(self.byte()?),
            0xda => usize::from(self.u16()?),
            0xdb => self.u32()? as usize,
            _ => return Ok(None),
        }))
    }

    /// The namespace: a string (anything else is refused, as `checkPacket` does).
    fn nsp(&mut self) -> Result<Option<Str>, DecodeError> {
        let marker = self.byte()?;
        let len = self.str_len(marker)?.ok_or(DecodeError::InvalidPayload)?;
        let start = self.pos;
        let raw = self.take(len)?;
        // Shares the frame, as the JSON decoder's namespaces do.
        Ok(Some(
            match Str::from_utf8(self.frame.slice(start..start + len)) {
                Ok(s) => s,
                Err(_) => Str::from(String::from_utf8_lossy(raw).into_owned()),
            },
        ))
    }

    /// A map key, as JavaScript turns it into a property name.
    ///
    /// Only strings, numbers, booleans, `nil` and `undefined` are accepted: a container, binary
    /// value or ext as a key is refused before it is read, so keys never nest (JavaScript would
    /// name the property `[object Object]` or the like, which no application means).
    fn key(&mut self) -> Result<Cow<'static, str>, DecodeError> {
        let marker = self.byte()?;
        if let Some(len) = self.str_len(marker)? {
            return Ok(Cow::Owned(self.str(len)?.into_owned()));
        }
        let scalar = matches!(marker, 0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 | 0xca..=0xd3)
            || (marker == 0xd4 && self.frame.get(self.pos) == Some(&0));
        if !scalar {
            return Err(DecodeError::InvalidMsgpack);
        }
        self.pos -= 1;
        let mut text = String::new();
        Ok(match self.value(&mut text, MAX_JSON_DEPTH)? {
            Value::Undefined => Cow::Borrowed("undefined"),
            Value::Written => Cow::Owned(text),
        })
    }

    /// A scalar for `type` or `id`; containers are read (and checked) but only reported.
    fn scalar(&mut self) -> Result<Option<Scalar>, DecodeError> {
        let marker = self.byte()?;
        let s = match marker {
            0x00..=0x7f => Scalar::Int(u64::from(marker)),
            0xcc => Scalar::Int(u64::from(self.byte()?)),
            0xcd => Scalar::Int(u64::from(self.u16()?)),
            0xce => Scalar::Int(u64::from(self.u32()?)),
            0xcf => Scalar::Int(self.u64()?),
            0xca => Scalar::Float(f64::from(f32::from_bits(self.u32()?))),
            0xcb => Scalar::Float(f64::from_bits(self.u64()?)),
            0xd4 if self.frame.get(self.pos) == Some(&0) => {
                self.take(2)?;
                Scalar::Undefined
            }
            _ => {
                self.pos -= 1;
                self.value(&mut String::new(), 1)?;
                Scalar::Other
            }
        };
        Ok(Some(s))
    }

    /// Reads one value and appends it to `out` as JSON (binary values as placeholders).
    /// `depth` is the nesting of the value: containers deeper than the payload limit are refused.
    fn value(&mut self, out: &mut String, depth: usize) -> Result<Value, DecodeError> {
        let marker = self.byte()?;
        match marker {
            0x00..=0x7f => push_int(out, i128::from(marker)),
            0xe0..=0xff => push_int(out, i128::from(marker as i8)),
            0x80..=0x8f => return self.map(out, usize::from(marker & 0x0f), depth),
            0x90..=0x9f => return self.list(out, usize::from(marker & 0x0f), depth),
            0xa0..=0xbf | 0xd9..=0xdb => {
                let len = self.str_len(marker)?.unwrap_or_default();
                let s = self.str(len)?.into_owned();
                scan::push_string(out, &s);
            }
            0xc0 => out.push_str("null"),
            0xc2 => out.push_str("false"),
            0xc3 => out.push_str("true"),
            0xc4 => {
                let len = usize::from(self.byte()?);
                self.binary(out, len)?;
            }
            0xc5 => {
                let len = usize::from(self.u16()?);
                self.binary(out, len)?;
            }
            0xc6 => {
                let len = self.u32()? as usize;
                self.binary(out, len)?;
            }
            0xc7..=0xc9 => {
                let len = match marker {
                    0xc7 => usize::from(self.byte()?),
                    0xc8 => usize::from(self.u16()?),
                    _ => self.u32()? as usize,
                };
                let ty = self.byte()? as i8;
                if ty == 0 {
                    // notepack.io's `ArrayBuffer`.
                    self.binary(out, len)?;
                } else {
                    self.ext(out, ty, len)?;
                }
            }
            0xca => push_float(out, f64::from(f32::from_bits(self.u32()?)), self.numbers),
            0xcb => push_float(out, f64::from_bits(self.u64()?), self.numbers),
            0xcc => push_int(out, i128::from(self.byte()?)),
            0xcd => push_int(out, i128::from(self.u16()?)),
            0xce => push_int(out, i128::from(self.u32()?)),
            0xcf => push_int(out, i128::from(self.u64()?)),
            0xd0 => push_int(out, i128::from(self.byte()? as i8)),
            0xd1 => push_int(out, i128::from(self.u16()? as i16)),
            0xd2 => push_int(out, i128::from(self.u32()? as i32)),
            0xd3 => push_int(out, i128::from(self.u64()? as i64)),
            0xd4 => {
                let ty = self.byte()? as i8;
                if ty == 0 {
                    self.take(1)?;
                    return Ok(Value::Undefined);
                }
                self.ext(out, ty, 1)?;
            }
            0xd5 => {
                let ty = self.byte()? as i8;
                self.ext(out, ty, 2)?;
            }
            0xd6 => {
                let ty = self.byte()? as i8;
                self.ext(out, ty, 4)?;
            }
            0xd7 => {
                let ty = self.byte()? as i8;
                if ty == 0 {
                    // notepack.io's date: milliseconds, high 32 bits signed.
                    let hi = self.u32()? as i32;
                    let lo = self.u32()?;
                    push_date(out, f64::from(hi) * 4_294_967_296.0 + f64::from(lo));
                } else {
                    self.ext(out, ty, 8)?;
                }
            }
            0xd8 => {
                let ty = self.byte()? as i8;
                self.ext(out, ty, 16)?;
            }
            0xdc => {
                let len = usize::from(self.u16()?);
                return self.list(out, len, depth);
            }
            0xdd => {
                let len = self.u32()? as usize;
                return self.list(out, len, depth);
            }
            0xde => {
                let len = usize::from(self.u16()?);
                return self.map(out, len, depth);
            }
            0xdf => {
                let len = self.u32()? as usize;
                return self.map(out, len, depth);
            }
            // 0xc1 is never used.
            _ => return Err(DecodeError::InvalidMsgpack),
        }
        Ok(Value::Written)
    }

    /// A binary value: an attachment sharing the frame, and its placeholder.
    fn binary(&mut self, out: &mut String, len: usize) -> Result<(), DecodeError> {
        if self.attachments.len() >= self.max_attachments {
            return Err(DecodeError::TooManyAttachments {
                limit: self.max_attachments,
            });
        }
        let bytes = self.take_bytes(len)?;
        out.push_str(r#"{"_placeholder":true,"num":"#);
        crate::str::push_decimal(out, self.attachments.len() as u64);
        out.push('}');
        self.attachments.push(bytes);
        Ok(())
    }

    /// Another ext: `[type, <binary>]`, as notepack.io gives it.
    fn ext(&mut self, out: &mut String, ty: i8, len: usize) -> Result<(), DecodeError> {
        out.push('[');
        push_int(out, i128::from(ty));
        out.push(',');
        self.binary(out, len)?;
        out.push(']');
        Ok(())
    }

    fn list(&mut self, out: &mut String, len: usize, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_JSON_DEPTH {
            return Err(DecodeError::InvalidPayload);
        }
        out.push('[');
        // No reservation from the announced length: every item takes at least one byte, so the
        // loop ends with the frame.
        for i in 0..len {
            if i > 0 {
                out.push(',');
            }
            if let Value::Undefined = self.value(out, depth + 1)? {
                out.push_str("null");
            }
        }
        out.push(']');
        Ok(Value::Written)
    }

    fn map(&mut self, out: &mut String, len: usize, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_JSON_DEPTH {
            return Err(DecodeError::InvalidPayload);
        }
        out.push('{');
        let mut first = true;
        for _ in 0..len {
            let key = self.key()?;
            let mark = out.len();
            if !first {
                out.push(',');
            }
            scan::push_string(out, &key);
            out.push(':');
            match self.value(out, depth + 1)? {
                Value::Written => first = false,
                // `JSON.stringify` leaves out an undefined member.
                Value::Undefined => out.truncate(mark),
            }
        }
        out.push('}');
        Ok(Value::Written)
    }
}

fn push_int(out: &mut String, n: i128) {
    if n < 0 {
        out.push('-');
    }
    // Every integer read is a 64-bit one, signed or not: its magnitude fits in a `u64`.
    crate::str::push_decimal(out, u64::try_from(n.unsigned_abs()).unwrap_or(u64::MAX));
}

/// A float as `JSON.stringify` keeps it: non-finite values are `null`, zero is `0` (or `-0`,
/// which `JSON.parse` reads back as negative zero), the rest as `numbers` writes it.
fn push_float(out: &mut String, f: f64, numbers: &JsNumbers) {
    if !f.is_finite() {
        out.push_str("null");
    } else if f == 0.0 {
        out.push_str(if f.is_sign_negative() { "-0" } else { "0" });
    } else {
        (numbers.to_string)(f, out);
    }
}

/// A date as `JSON.stringify` writes it: its ISO string, or `null` when out of range.
fn push_date(out: &mut String, ms: f64) {
    const MAX_MS: f64 = 8.64e15;
    if ms.is_finite() && ms.abs() <= MAX_MS {
        scan::push_string(out, &crate::date::iso_string(ms.trunc() as i64));
    } else {
        out.push_str("null");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hex of the captured frames, spaces and quoted ASCII allowed.
    fn hex(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = s;
        while let Some(c) = rest.chars().next() {
            if c == ' ' || c == '\n' {
                rest = &rest[1..];
            } else if c == '"' {
                let end = rest[1..].find('"').map_or(rest.len(), |e| e + 1);
                out.extend_from_slice(&rest.as_bytes()[1..end]);
                rest = rest.get(end + 1..).unwrap_or_default();
            } else {
                let (h, t) = rest.split_at(2);
                // ASCII key names written as words in the capture.
                match u8::from_str_radix(h, 16) {
                    Ok(b) if t.is_empty() || t.starts_with([' ', '\n']) => {
                        out.push(b);
                        rest = t;
                    }
                    _ => {
                        let end = rest.find([' ', '\n']).unwrap_or(rest.len());
                        out.extend_from_slice(&rest.as_bytes()[..end]);
                        rest = &rest[end..];
                    }
                }
            }
        }
        out
    }

    fn decoded(bytes: &[u8]) -> Packet {
        decode(&Bytes::copy_from_slice(bytes), 10, &JsNumbers::default()).expect("decodes")
    }

    fn raw(s: &str) -> RawJson {
        RawJson::parse(s).expect("json")
    }

    #[test]
    fn captured_connect_error() {
        let wire = hex(
            r#"83 a4 type 04 a4 data 82 a7 message ac "unauthorized" a4 data d4 00 00 a3 nsp a5 "/chat""#,
        );
        let p = decoded(&wire);
        assert_eq!(p.kind(), PacketType::ConnectError);
        assert_eq!(&**p.nsp(), "/chat");
        assert_eq!(
            p.data().map(RawJson::as_str),
            Some(r#"{"message":"unauthorized"}"#)
        );
        // Without the undefined member, as Ferrio writes it.
        let ours =
            hex(r#"83 a4 type 04 a4 data 81 a7 message ac "unauthorized" a3 nsp a5 "/chat""#);
        assert_eq!(&encode(&p, &JsNumbers::default())[..], &ours[..]);
        assert_eq!(decoded(&ours), p);
    }

    #[test]
    fn captured_connect_ok() {
        let wire = hex(
            r#"83 a4 type 00 a4 data 82 a3 sid b4 "eF2PJMmJNdR4SJA3AAAB" a3 pid d4 00 00 a3 nsp a5 "/chat""#,
        );
        let p = decoded(&wire);
        assert_eq!(p.kind(), PacketType::Connect);
        assert_eq!(
            p.data().map(RawJson::as_str),
            Some(r#"{"sid":"eF2PJMmJNdR4SJA3AAAB"}"#)
        );
    }

    #[test]
    fn captured_event_with_binary_round_trips() {
        let wire = hex(
            r#"83 a4 type 02 a4 data 93 a3 "bin" c4 02 de ad 85 a1 n ff a3 big cf 00 00 00 01 00 00 00 00
               a1 f cb 3f d0 00 00 00 00 00 00 a3 nil c0 a1 t c3 a3 nsp a5 "/chat""#,
        );
        let p = decoded(&wire);
        assert_eq!(p.kind(), PacketType::BinaryEvent);
        assert_eq!(
            p.data().map(RawJson::as_str),
            Some(
                r#"["bin",{"_placeholder":true,"num":0},{"n":-1,"big":4294967296,"f":0.25,"nil":null,"t":true}]"#
            )
        );
        assert_eq!(p.attachments(), &[Bytes::from_static(&[0xde, 0xad])]);
        assert_eq!(p.event_name().as_deref(), Some("bin"));
        assert_eq!(&encode(&p, &JsNumbers::default())[..], &wire[..]);
        // Built the JSON way, it encodes to the same bytes.
        let built = Packet::event(
            "/chat",
            raw(
                r#"["bin",{"_placeholder":true,"num":0},{"n":-1,"big":4294967296,"f":0.25,"nil":null,"t":true}]"#,
            ),
            vec![Bytes::from_static(&[0xde, 0xad])],
        );
        assert_eq!(&encode(&built, &JsNumbers::default())[..], &wire[..]);
    }

    #[test]
    fn binary_values_are_capped_per_packet() {
        // ["e", <bin>, <bin>, <bin>]: three binary values, one more than a limit of 2.
        let mut wire = hex(r#"83 a4 type 02 a4 data 94 a1 "e""#);
        for _ in 0..3 {
            wire.extend_from_slice(&[0xc4, 0x00]);
        }
        wire.extend_from_slice(&hex(r#"a3 nsp a1 "/""#));
        let frame = Bytes::from(wire);
        assert_eq!(
            decode(&frame, 3, &JsNumbers::default())
                .expect("three allowed")
                .attachments()
                .len(),
            3
        );
        assert_eq!(
            decode(&frame, 2, &JsNumbers::default()).err(),
            Some(DecodeError::TooManyAttachments { limit: 2 })
        );
    }

    #[test]
    fn floats_become_plain_json_numbers() {
        // Float64s: JSON text that JSON.parse reads back as the same values, in exponent form
        // where JavaScript uses one, never in a form that depends on `Debug` formatting.
        let mut wire = hex(r#"83 a4 type 02 a4 data 97 a1 "f""#);
        for f in [2.0f64, 1e21, 1e-7, -0.5, 123.25, f64::from_bits(1)] {
            wire.push(0xcb);
            wire.extend_from_slice(&f.to_be_bytes());
        }
        wire.extend_from_slice(&hex(r#"a3 nsp a1 "/""#));
        let p = decoded(&wire);
        assert_eq!(
            p.data().map(RawJson::as_str),
            Some(r#"["f",2,1e21,1e-7,-0.5,123.25,5e-324]"#)
        );
    }

    #[test]
    fn captured_client_event_with_ack_and_options() {
        let wire = hex(
            r#"85 a4 type 02 a4 data 93 a3 "msg" a6 68 c3 a9 6c 6c 6f c7 03 00 01 02 03
               a7 options 81 a8 compress c3 a2 id 00 a3 nsp a5 "/chat""#,
        );
        let p = decoded(&wire);
        assert_eq!(p.kind(), PacketType::BinaryEvent);
        assert_eq!(p.id(), Some(&AckId::from(0)));
        assert_eq!(
            p.data().map(RawJson::as_str),
            Some(r#"["msg","héllo",{"_placeholder":true,"num":0}]"#)
        );
        assert_eq!(p.attachments(), &[Bytes::from_static(&[1, 2, 3])]);
        let (text, bin): (String, Bytes) = p.args().expect("args");
        assert_eq!((text.as_str(), &bin[..]), ("héllo", &[1u8, 2, 3][..]));
    }

    #[test]
    fn captured_ack_and_disconnect_round_trip() {
        let ack = hex(
            r#"84 a2 id 00 a4 type 03 a4 data 92 a4 "ack!" cb 3f f8 00 00 00 00 00 00 a3 nsp a5 "/chat""#,
        );
        let p = decoded(&ack);
        assert_eq!(p.kind(), PacketType::Ack);
        assert_eq!(p.data().map(RawJson::as_str), Some(r#"["ack!",1.5]"#));
        assert_eq!(&encode(&p, &JsNumbers::default())[..], &ack[..]);
        assert_eq!(
            &encode(
                &Packet::ack("/chat", 0, raw(r#"["ack!",1.5]"#), vec![]),
                &JsNumbers::default()
            )[..],
            &ack[..]
        );

        let disconnect = hex(r#"82 a4 type 01 a3 nsp a5 "/chat""#);
        assert_eq!(decoded(&disconnect), Packet::disconnect("/chat"));
        assert_eq!(
            &encode(&Packet::disconnect("/chat"), &JsNumbers::default())[..],
            &disconnect[..]
        );
    }

    #[test]
    fn captured_client_connects() {
        let plain = hex("82 a4 74 79 70 65 00 a3 6e 73 70 a1 2f");
        assert_eq!(decoded(&plain), Packet::connect("/", None));
        assert_eq!(
            &encode(&Packet::connect("/", None), &JsNumbers::default())[..],
            &plain[..]
        );
        let auth = hex("83 a4 74 79 70 65 00 a3 6e 73 70 a5 2f 63 68 61 74 a4 64 61 74 61 81 a5 74 6f 6b 65 6e a2 6f 6b");
        let p = decoded(&auth);
        assert_eq!(p, Packet::connect("/chat", Some(raw(r#"{"token":"ok"}"#))));
    }

    #[test]
    fn dates_and_numbers_as_javascript_reads_them() {
        // Date(0) as notepack.io 2.x writes it, inside an event.
        let wire =
            hex(r#"83 a4 type 02 a4 data 92 a1 "d" d7 00 00 00 00 00 00 00 00 00 a3 nsp a1 "/""#);
        assert_eq!(
            decoded(&wire).data().map(RawJson::as_str),
            Some(r#"["d","1970-01-01T00:00:00.000Z"]"#)
        );
        // Integral floats are integers, others float 64; big integers stay exact.
        let p = Packet::event(
            "/",
            raw(r#"["n",1.0,-200,1e3,0.5,18446744073709551615]"#),
            vec![],
        );
        let bytes = encode(&p, &JsNumbers::default());
        assert_eq!(
            decoded(&bytes).data().map(RawJson::as_str),
            Some(r#"["n",1,-200,1000,0.5,18446744073709551615]"#)
        );
    }

    #[test]
    fn numbers_go_through_the_conversions_given() {
        use crate::socket::Parser;
        // Conversions that mark their work: every float read is written as 2.5, every number
        // text that is not a 64-bit integer is read as 0.75.
        let numbers = JsNumbers {
            to_string: |_, out| out.push_str("2.5"),
            to_number: |_| 0.75,
        };
        let parser = Parser::msgpack_with(numbers);
        let p = Packet::event("/", raw(r#"["n",0.1,7,-0.0,1e400]"#), vec![]);
        let frame = parser.encode(&p).binary()[0].clone();
        // Out: the texts that are not 64-bit integers (0.1, -0.0, 1e400) read by `to_number`, as the
        // float 64 0.75; the integer 7 as it is.
        let floats = frame
            .windows(9)
            .filter(|w| w == &hex("cb 3f e8 00 00 00 00 00 00"))
            .count();
        assert_eq!(floats, 3);
        assert!(frame.windows(2).any(|w| w == [0xa1, b'n']) && frame.contains(&7));
        // In: each non-zero finite float written by `to_string`; zeros and non-finite values never
        // reach it.
        let wire = hex(
            r#"83 a4 type 02 a4 data 95 a1 "n" cb 3f b9 99 99 99 99 99 9a cb 80 00 00 00 00 00 00 00 cb 7f f0 00 00 00 00 00 00 ca 3e 80 00 00 a3 nsp a1 "/""#,
        );
        let back = parser.decoder(10).decode_binary(Bytes::from(wire));
        let back = back.expect("decodes").expect("a packet");
        assert_eq!(
            back.data().map(RawJson::as_str),
            Some(r#"["n",2.5,-0,null,2.5]"#)
        );
        // Rust's own conversions by default.
        let back = decoded(&parser_frame(&Parser::msgpack(), &p));
        assert_eq!(
            back.data().map(RawJson::as_str),
            Some(r#"["n",0.1,7,0,null]"#)
        );
    }

    fn parser_frame(parser: &crate::socket::Parser, p: &Packet) -> Vec<u8> {
        parser.encode(p).binary()[0].to_vec()
    }

    #[test]
    fn bad_input_is_refused() {
        let bad: &[&[u8]] = &[
            b"",
            &[0xc1],
            &[0x92, 0x01, 0x02],                               // not a map
            &hex(r#"82 a4 type 07 a3 nsp a1 "/""#),            // type out of range
            &hex(r#"82 a4 type 05 a3 nsp a1 "/""#),            // binary types are not msgpack's
            &hex(r#"82 a4 type a1 "0" a3 nsp a1 "/""#),        // type as a string
            &hex(r#"81 a4 type 00"#),                          // no namespace
            &hex(r#"82 a4 type 00 a3 nsp 01"#),                // namespace not a string
            &hex(r#"83 a4 type 00 a3 nsp a1 "/" a4 data 90"#), // CONNECT data an array
            &hex(r#"83 a4 type 01 a3 nsp a1 "/" a4 data 80"#), // DISCONNECT with data
            &hex(r#"82 a4 type 02 a3 nsp a1 "/""#),            // EVENT without data
            &hex(r#"83 a4 type 02 a3 nsp a1 "/" a4 data 81 a1 "a" 01"#), // EVENT data a map
            &hex(r#"83 a4 type 02 a3 nsp a1 "/" a4 data 90"#), // EVENT without a name
            &hex(r#"84 a4 type 02 a3 nsp a1 "/" a4 data 91 a1 "a" a2 id a1 "1""#), // string id
            &hex(r#"84 a4 type 02 a3 nsp a1 "/" a4 data 91 a1 "a" a2 id ff"#), // negative id
            &hex(r#"82 a4 type 01 a3 nsp a1 "/" 00"#),         // trailing bytes
            &hex(r#"82 a4 type 01 a3 nsp a5 "/"#),             // truncated
            &[0xdf, 0xff, 0xff, 0xff, 0xff],                   // a huge claimed map
            &[
                0x81, 0xa4, b'd', b'a', b't', b'a', 0xdd, 0xff, 0xff, 0xff, 0xff,
            ],
        ];
        for (i, b) in bad.iter().enumerate() {
            assert!(
                decode(&Bytes::copy_from_slice(b), 10, &JsNumbers::default()).is_err(),
                "case {i}"
            );
        }
        // Nesting past the payload limit.
        let mut deep = hex(r#"83 a4 type 02 a3 nsp a1 "/" a4 data 92 a1 "a""#);
        deep.extend(std::iter::repeat_n(0x91, MAX_JSON_DEPTH + 5));
        deep.push(0xc0);
        assert!(decode(&Bytes::from(deep), 10, &JsNumbers::default()).is_err());
    }

    #[test]
    fn keys_do_not_nest() {
        // A map whose key is a map whose key is a map...: refused at the first, without
        // recursion (a frame of 0x81 bytes would otherwise recurse once per byte).
        let mut frame = vec![0x81];
        frame.extend(std::iter::repeat_n(0x81, 100_000));
        assert!(decode(&Bytes::from(frame), 10, &JsNumbers::default()).is_err());
        let mut frame = hex(r#"83 a4 type 02 a3 nsp a1 "/" a4 data 92 a1 "a""#);
        frame.extend(std::iter::repeat_n(0x81, 100_000));
        assert!(decode(&Bytes::from(frame), 10, &JsNumbers::default()).is_err());
        // Scalar keys name properties as JavaScript writes them.
        let wire = hex(
            r#"83 a4 type 02 a3 nsp a1 "/" a4 data 92 a1 "a" 84 01 a1 "x" c0 c3 c3 c3 d4 00 00 c2"#,
        );
        assert_eq!(
            decoded(&wire).data().map(RawJson::as_str),
            Some(r#"["a",{"1":"x","null":true,"true":true,"undefined":false}]"#)
        );
    }

    #[test]
    fn undefined_members_and_unknown_ext() {
        let wire = hex(
            r#"83 a4 type 02 a3 nsp a1 "/" a4 data 93 a1 "e" d4 00 00 82 a1 u d4 00 00 a1 x d5 05 aa bb"#,
        );
        let p = decoded(&wire);
        assert_eq!(
            p.data().map(RawJson::as_str),
            Some(r#"["e",null,{"x":[5,{"_placeholder":true,"num":0}]}]"#)
        );
        assert_eq!(p.attachments(), &[Bytes::from_static(&[0xaa, 0xbb])]);
    }
}
