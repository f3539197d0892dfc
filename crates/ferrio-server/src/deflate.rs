//! WebSocket per-message compression (`permessage-deflate`, RFC 7692) over tungstenite, which
//! has no extension support of its own: DEFLATE itself is flate2's.
//!
//! - [`negotiate`] reads the client's offers from the upgrade request and makes the answer.
//! - [`Inflater`] sits between the socket and tungstenite: it reads the client's frames, inflates
//!   the compressed messages (the RSV1 bit set on their first frame) and hands tungstenite the
//!   same frames without the bit and with the inflated payload, so tungstenite still checks
//!   everything else (masking, opcodes, fragmentation, UTF-8, sizes). A frame it does not
//!   transform (RSV2 or RSV3 set, RSV1 on a control or continuation frame, an unmasked frame)
//!   reaches tungstenite as it came, which fails the connection with 1002. A message is never
//!   inflated past the size limit: past it the connection fails with 1009, and with 1007 when
//!   the data is not valid DEFLATE, as Node's `ws` does.
//! - [`Deflater`] compresses the messages the server sends, from the threshold on, into frames
//!   with the RSV1 bit that tungstenite writes as they are.
//!
//! With `*_no_context_takeover` agreed, nothing of a compression context outlives its message:
//! the connection drops both contexts while idle.

use std::io::{self, Cursor, Read};

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use http::{HeaderMap, HeaderValue};
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::{Frame, FrameHeader};

/// The settings of `permessage-deflate` (WebSocket compression, RFC 7692), given to the
/// builders' `per_message_deflate`. Without them (the default, as Node's engine.io) the server
/// declines every offer of compression.
///
/// The defaults: messages of at least 1024 bytes compressed (the threshold of Node's `ws`),
/// compression level 6, a 32 KiB window (`server_max_window_bits` 15), and no context takeover
/// in either direction: each message is compressed on its own, so that a connection between
/// messages holds no compression state (a DEFLATE context takes about 260 KB while compressing
/// and 40 KB while inflating). Allowing context takeover compresses a stream of similar
/// messages better, at the cost of keeping those contexts for the whole life of each
/// connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerMessageDeflate {
    threshold: usize,
    level: u32,
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: u8,
}

impl Default for PerMessageDeflate {
    fn default() -> Self {
        PerMessageDeflate {
            threshold: 1024,
            level: 6,
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 15,
        }
    }
}

impl PerMessageDeflate {
    /// The default settings (see the type's documentation).
    pub fn new() -> Self {
        Self::default()
    }

    /// Messages shorter than this many bytes are sent uncompressed (default 1024).
    pub fn threshold(mut self, bytes: usize) -> Self {
        self.threshold = bytes;
        self
    }

    /// The DEFLATE compression level, 0 (none) to 9 (best); default 6. Larger values are 9.
    pub fn level(mut self, level: u32) -> Self {
        self.level = level.min(9);
        self
    }

    /// Compress each message sent on its own (`server_no_context_takeover`, default true). With
    /// false, the server keeps its compression context between messages when the client allows
    /// it.
    pub fn server_no_context_takeover(mut self, yes: bool) -> Self {
        self.server_no_context_takeover = yes;
        self
    }

    /// Ask the client to compress each message on its own (`client_no_context_takeover`,
    /// default true), so that the server need not keep an inflate context between messages.
    pub fn client_no_context_takeover(mut self, yes: bool) -> Self {
        self.client_no_context_takeover = yes;
        self
    }

    /// The largest window the server compresses with, as a power of two (9 to 15, default 15;
    /// other values are brought into that range). A client's `server_max_window_bits` lowers it.
    pub fn server_max_window_bits(mut self, bits: u8) -> Self {
        self.server_max_window_bits = bits.clamp(9, 15);
        self
    }
}

/// What a connection agreed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Agreed {
    /// Messages shorter than this are sent uncompressed.
    pub(crate) threshold: usize,
    level: u32,
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_window_bits: u8,
}

/// One offer's parameters, as far as they matter here.
#[derive(Default)]
struct Offer {
    server_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
}

/// Reads one offer (the parameters after `permessage-deflate`): `None` for one with an unknown,
/// repeated or invalid parameter, which must be declined (RFC 7692, section 7.1).
fn offer<'a>(params: impl Iterator<Item = &'a str>) -> Option<Offer> {
    let mut offer = Offer::default();
    let mut seen = [false; 4];
    for param in params {
        let (name, value) = match param.split_once('=') {
            Some((name, value)) => {
                let value = value.trim();
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value);
                (name.trim(), Some(value))
            }
            None => (param.trim(), None),
        };
        let bits = |v: Option<&str>| {
            v.filter(|v| (1..=2).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u8>().ok())
                .filter(|b| (8..=15).contains(b))
        };
        let index = match name {
            "server_no_context_takeover" if value.is_none() => {
                offer.server_no_context_takeover = true;
                0
            }
            "client_no_context_takeover" if value.is_none() => 1,
            "server_max_window_bits" => {
                offer.server_max_window_bits = Some(bits(value)?);
                2
            }
            "client_max_window_bits" => {
                if value.is_some() {
                    bits(value)?;
                }
                3
            }
            _ => return None,
        };
        if std::mem::replace(&mut seen[index], true) {
            return None;
        }
    }
    Some(offer)
}

/// Accepts the first acceptable `permessage-deflate` offer of a WebSocket upgrade request's
/// `Sec-WebSocket-Extensions`: what was agreed, and the header value to answer with. `None`
/// when there is no offer the server can accept (the connection goes on uncompressed).
///
/// The server inflates any window the client uses (so it never restricts
/// `client_max_window_bits`), asks for `client_no_context_takeover` when its settings say so
/// (which RFC 7692 allows whether or not the client offered it), and declines an offer whose
/// `server_max_window_bits` is 8 (zlib's raw DEFLATE starts at 9).
pub(crate) fn negotiate(
    headers: &HeaderMap,
    settings: &PerMessageDeflate,
) -> Option<(Agreed, HeaderValue)> {
    let offers = headers
        .get_all(http::header::SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','));
    for o in offers {
        let mut parts = o.split(';');
        let name = parts.next().unwrap_or("").trim();
        if !name.eq_ignore_ascii_case("permessage-deflate") {
            continue;
        }
        let Some(offer) = offer(parts.filter(|p| !p.trim().is_empty())) else {
            continue;
        };
        let bits = offer
            .server_max_window_bits
            .unwrap_or(15)
            .min(settings.server_max_window_bits);
        if bits < 9 {
            continue;
        }
        let agreed = Agreed {
            threshold: settings.threshold,
            level: settings.level,
            server_no_context_takeover: offer.server_no_context_takeover
                || settings.server_no_context_takeover,
            client_no_context_takeover: settings.client_no_context_takeover,
            server_window_bits: bits,
        };
        let mut answer = String::from("permessage-deflate");
        if agreed.server_no_context_takeover {
            answer.push_str("; server_no_context_takeover");
        }
        if agreed.client_no_context_takeover {
            answer.push_str("; client_no_context_takeover");
        }
        if offer.server_max_window_bits.is_some() || bits < 15 {
            answer.push_str(&format!("; server_max_window_bits={bits}"));
        }
        let value = HeaderValue::from_str(&answer).ok()?;
        return Some((agreed, value));
    }
    None
}

/// The four bytes a sender removes from the end of each compressed message (RFC 7692,
/// section 7.2.1) and the receiver appends again.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Output is produced in steps of this many bytes, so a message is never inflated far past the
/// size limit.
const STEP: usize = 16 * 1024;

/// The largest buffer capacity an [`Inflater`] keeps once its bytes are gone.
const KEEP_CAPACITY: usize = 64 * 1024;

/// The kind of message the frames being read belong to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Message {
    /// Between messages.
    None,
    /// A message sent uncompressed, continued by more frames.
    Plain,
    /// A compressed message, continued by more frames; its inflated size so far.
    Compressed(usize),
}

/// The read side of a compressed connection: client frames in, the frames tungstenite reads
/// out (see the module's documentation).
pub(crate) struct Inflater {
    /// Bytes read from the socket and not yet framed.
    raw: Vec<u8>,
    /// Frames for tungstenite, from `out_pos` on.
    out: Vec<u8>,
    out_pos: usize,
    message: Message,
    /// The inflate context; `None` between messages when the client compresses each message on
    /// its own.
    inflate: Option<Box<Decompress>>,
    /// After a frame not transformed, everything goes through as it comes (tungstenite fails
    /// the connection on it).
    verbatim: bool,
    /// The close code of the failure the last read error reported.
    failure: Option<CloseCode>,
    client_no_context_takeover: bool,
}

impl Inflater {
    /// A reader for a connection that agreed on `agreed`.
    pub(crate) fn new(agreed: &Agreed) -> Inflater {
        Inflater {
            raw: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            message: Message::None,
            inflate: None,
            verbatim: false,
            failure: None,
            client_no_context_takeover: agreed.client_no_context_takeover,
        }
    }

    /// True when it holds nothing but, with context takeover, its inflate context: no byte
    /// waiting, not inside a message. A new `Inflater` may then replace it if it holds no
    /// context either (see [`Inflater::is_empty`]).
    pub(crate) fn is_idle(&self) -> bool {
        self.raw.is_empty()
            && self.out_pos == self.out.len()
            && self.message == Message::None
            && !self.verbatim
            && self.failure.is_none()
    }

    /// True when it is idle and holds no inflate context: dropping it loses nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.is_idle() && self.inflate.is_none()
    }

    /// Why the connection failed, when the last read reported an error of its own.
    pub(crate) fn failure(&self) -> Option<CloseCode> {
        self.failure
    }

    /// Reads frames for tungstenite into `buf`, reading the socket `src` as needed; `max`
    /// bounds an inflated message. `WouldBlock` from `src` comes through.
    pub(crate) fn read(
        &mut self,
        src: &mut impl Read,
        buf: &mut [u8],
        max: usize,
    ) -> io::Result<usize> {
        if let Some(code) = self.failure {
            return Err(failed(code));
        }
        while self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
            if self.verbatim || !self.next_frame(max)? {
                let mut chunk = [0u8; 4096];
                let n = src.read(&mut chunk)?;
                if n == 0 {
                    // The end of the stream: what is left goes to tungstenite as it is.
                    std::mem::swap(&mut self.out, &mut self.raw);
                    if self.out.is_empty() {
                        return Ok(0);
                    }
                    break;
                }
                if self.verbatim {
                    self.out.extend_from_slice(&chunk[..n]);
                } else {
                    self.raw.extend_from_slice(&chunk[..n]);
                }
            }
        }
        let n = buf.len().min(self.out.len() - self.out_pos);
        buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
            // A context kept between messages must not keep a large message's buffers too.
            if self.out.capacity() > KEEP_CAPACITY {
                self.out = Vec::new();
            }
            if self.raw.is_empty() && self.raw.capacity() > KEEP_CAPACITY {
                self.raw = Vec::new();
            }
        }
        Ok(n)
    }

    /// Moves the first whole frame of `raw` to `out`, transformed when it is part of a
    /// compressed message: false if `raw` holds no whole frame yet.
    fn next_frame(&mut self, max: usize) -> io::Result<bool> {
        let mut cursor = Cursor::new(&self.raw[..]);
        let (header, len) = match FrameHeader::parse(&mut cursor) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => return Ok(false),
            Err(_) => return Ok(self.go_verbatim()),
        };
        let start = cursor.position() as usize;
        let data = matches!(header.opcode, OpCode::Data(Data::Text | Data::Binary));
        let continuation = header.opcode == OpCode::Data(Data::Continue);
        let compressed = match self.message {
            Message::Compressed(_) => continuation,
            _ => header.rsv1 && data && self.message == Message::None,
        };
        let untransformed_is_fine = !header.rsv1
            && match self.message {
                Message::None => !continuation,
                Message::Plain => continuation || !data,
                Message::Compressed(_) => !data && !continuation,
            };
        if header.mask.is_none()
            || header.rsv2
            || header.rsv3
            || len > max as u64
            || !(compressed || untransformed_is_fine)
        {
            return Ok(self.go_verbatim());
        }
        let end = start + len as usize;
        if self.raw.len() < end {
            return Ok(false);
        }
        if !compressed {
            if data || continuation {
                self.message = match (header.is_final, self.message) {
                    (true, _) => Message::None,
                    (false, Message::None) => Message::Plain,
                    (false, m) => m,
                };
            }
            self.out.extend_from_slice(&self.raw[..end]);
            self.raw.drain(..end);
            return Ok(true);
        }
        let mut payload = self.raw[start..end].to_vec();
        self.raw.drain(..end);
        if let Some(mask) = header.mask {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= mask[i & 3];
            }
        }
        let before = match self.message {
            Message::Compressed(n) => n,
            _ => 0,
        };
        let mut inflated = Vec::new();
        let inflate = self
            .inflate
            .get_or_insert_with(|| Box::new(Decompress::new(false)));
        let result = inflate_into(inflate, &payload, &mut inflated, max - before).and_then(|()| {
            if header.is_final {
                inflate_into(inflate, &TAIL, &mut inflated, max - before)
            } else {
                Ok(())
            }
        });
        if let Err(code) = result {
            self.failure = Some(code);
            self.inflate = None;
            return Err(failed(code));
        }
        self.message = if header.is_final {
            if self.client_no_context_takeover {
                self.inflate = None;
            }
            Message::None
        } else {
            Message::Compressed(before + inflated.len())
        };
        let out_header = FrameHeader {
            is_final: header.is_final,
            rsv1: false,
            rsv2: false,
            rsv3: false,
            opcode: header.opcode,
            // A zero mask: the payload goes as it is.
            mask: Some([0; 4]),
        };
        out_header
            .format(inflated.len() as u64, &mut self.out)
            .map_err(io::Error::other)?;
        self.out.extend_from_slice(&inflated);
        Ok(true)
    }

    /// From now on every byte goes to tungstenite as it comes; true (`out` holds bytes).
    fn go_verbatim(&mut self) -> bool {
        self.verbatim = true;
        std::mem::swap(&mut self.out, &mut self.raw);
        self.out_pos = 0;
        true
    }
}

/// The error a read reports for a failure with `code`.
fn failed(code: CloseCode) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("permessage-deflate: {code}"),
    )
}

/// Inflates all of `input` onto `out`, failing with 1009 once `out` would pass `room` bytes
/// and with 1007 on data that is not DEFLATE.
fn inflate_into(
    inflate: &mut Decompress,
    input: &[u8],
    out: &mut Vec<u8>,
    room: usize,
) -> Result<(), CloseCode> {
    let mut input = input;
    loop {
        if out.len() > room {
            return Err(CloseCode::Size);
        }
        // Exactly: the output never passes the limit by more than a byte.
        out.reserve_exact(STEP.min(room + 1 - out.len()));
        let (in_before, out_len) = (inflate.total_in(), out.len());
        let status = inflate
            .decompress_vec(input, out, FlushDecompress::Sync)
            .map_err(|_| CloseCode::Invalid)?;
        let used = (inflate.total_in() - in_before) as usize;
        input = &input[used..];
        let produced = out.len() - out_len;
        if out.len() > room {
            return Err(CloseCode::Size);
        }
        match status {
            // The end of a DEFLATE stream: a final block inside a message, which nothing may
            // follow.
            Status::StreamEnd => {
                // A final block: the next message starts a stream of its own.
                inflate.reset(false);
                return if input.is_empty() {
                    Ok(())
                } else {
                    Err(CloseCode::Invalid)
                };
            }
            _ if input.is_empty() && out.len() < out.capacity() => return Ok(()),
            // No progress possible: done if all the input is in, else the data is cut short.
            Status::BufError if used == 0 && produced == 0 => {
                return if input.is_empty() {
                    Ok(())
                } else {
                    Err(CloseCode::Invalid)
                };
            }
            _ => {}
        }
    }
}

/// The write side of a compressed connection: the compression context, made when a message
/// is compressed and kept only while the connection keeps its other write state.
pub(crate) struct Deflater {
    compress: Compress,
}

impl Deflater {
    /// A context for what `agreed` allows.
    pub(crate) fn new(agreed: &Agreed) -> Deflater {
        Deflater {
            compress: Compress::new_with_window_bits(
                Compression::new(agreed.level),
                false,
                agreed.server_window_bits,
            ),
        }
    }

    /// The frame of a message (`text` or binary) compressed: `None` when it is not worth it
    /// (only known, and only allowed, without context takeover) or compression failed, and the
    /// message is sent as it is.
    pub(crate) fn compress(&mut self, agreed: &Agreed, text: bool, data: &[u8]) -> Option<Frame> {
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        let mut input = data;
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(64));
            }
            let before = self.compress.total_in();
            let status = self
                .compress
                .compress_vec(input, &mut out, FlushCompress::Sync);
            if status.is_err() {
                self.compress.reset();
                return None;
            }
            input = &input[(self.compress.total_in() - before) as usize..];
            // Done once everything is in and the flush's output fit.
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        if agreed.server_no_context_takeover {
            self.compress.reset();
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if agreed.server_no_context_takeover && out.len() >= data.len() {
            return None;
        }
        let opcode = OpCode::Data(if text { Data::Text } else { Data::Binary });
        let mut frame = Frame::message(Bytes::from(out), opcode, true);
        frame.header_mut().rsv1 = true;
        Some(frame)
    }

    /// True when the context may be dropped between messages.
    pub(crate) fn droppable(agreed: &Agreed) -> bool {
        agreed.server_no_context_takeover
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(offer: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::SEC_WEBSOCKET_EXTENSIONS,
            HeaderValue::from_str(offer).unwrap(),
        );
        h
    }

    fn answer(offer: &str, settings: &PerMessageDeflate) -> Option<String> {
        negotiate(&headers(offer), settings).map(|(_, v)| v.to_str().unwrap().to_owned())
    }

    #[test]
    fn negotiation() {
        let d = PerMessageDeflate::default();
        assert_eq!(
            answer("permessage-deflate; client_max_window_bits", &d).as_deref(),
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
        );
        assert_eq!(
            answer(
                "permessage-deflate; server_max_window_bits=10, permessage-deflate",
                &d
            )
            .as_deref(),
            Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=10"
            )
        );
        // Declined: window 8, unknown or repeated parameters; the next offer is taken.
        assert_eq!(
            answer("permessage-deflate; server_max_window_bits=8", &d),
            None
        );
        assert_eq!(answer("permessage-deflate; foo", &d), None);
        assert_eq!(
            answer("permessage-deflate; client_max_window_bits=16", &d),
            None
        );
        assert_eq!(
            answer(
                "permessage-deflate; server_no_context_takeover; server_no_context_takeover, \
                 permessage-deflate; server_max_window_bits=\"12\"",
                &d
            )
            .as_deref(),
            Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=12"
            )
        );
        assert_eq!(answer("x-webkit-deflate-frame", &d), None);
        let takeover = PerMessageDeflate::new()
            .server_no_context_takeover(false)
            .client_no_context_takeover(false)
            .server_max_window_bits(11);
        assert_eq!(
            answer("permessage-deflate", &takeover).as_deref(),
            Some("permessage-deflate; server_max_window_bits=11")
        );
    }

    /// A masked client frame (zero key).
    fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let header = FrameHeader {
            is_final: first & 0x80 != 0,
            rsv1: first & 0x40 != 0,
            rsv2: false,
            rsv3: false,
            opcode: OpCode::from(first & 0x0f),
            mask: Some([0; 4]),
        };
        header.format(payload.len() as u64, &mut out).unwrap();
        out.extend_from_slice(payload);
        out
    }

    fn deflate(data: &[u8]) -> Vec<u8> {
        let agreed = negotiate(&headers("permessage-deflate"), &PerMessageDeflate::new())
            .unwrap()
            .0;
        let f = Deflater::new(&agreed)
            .compress(&agreed, true, data)
            .unwrap();
        f.payload().to_vec()
    }

    fn read_all(inflater: &mut Inflater, input: &[u8], max: usize) -> io::Result<Vec<u8>> {
        let mut src = input;
        let mut out = Vec::new();
        let mut buf = [0u8; 100];
        loop {
            match inflater.read(&mut src, &mut buf, max)? {
                0 => return Ok(out),
                n => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// The frames in `out`: first byte and payload (the mask is zero).
    fn frames(mut out: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut frames = Vec::new();
        while !out.is_empty() {
            let mut cursor = Cursor::new(out);
            let (h, len) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
            assert_eq!(h.mask, Some([0; 4]));
            let start = cursor.position() as usize;
            let end = start + len as usize;
            frames.push((out[0], out[start..end].to_vec()));
            out = &out[end..];
        }
        frames
    }

    #[test]
    fn inflating_frames() {
        let agreed = negotiate(&headers("permessage-deflate"), &PerMessageDeflate::new())
            .unwrap()
            .0;
        let text = "hello ".repeat(500);
        let compressed = deflate(text.as_bytes());
        assert!(compressed.len() < 100);
        // Compressed in two fragments, a ping between them, then a plain message, then the
        // compressed message again in one frame.
        let (a, b) = compressed.split_at(10);
        let mut input = frame(0x41, a);
        input.extend(frame(0x89, b"p"));
        input.extend(frame(0x80, b));
        input.extend(frame(0x82, b"plain"));
        input.extend(frame(0xc1, &compressed));
        let mut inflater = Inflater::new(&agreed);
        let out = read_all(&mut inflater, &input, 1_000_000).unwrap();
        let f = frames(&out);
        assert_eq!(f.len(), 5);
        assert_eq!(
            (f[0].0, f[1].0, f[2].0, f[3].0, f[4].0),
            (0x01, 0x89, 0x80, 0x82, 0x81)
        );
        assert_eq!([&f[0].1[..], &f[2].1[..]].concat(), text.as_bytes());
        assert_eq!(f[1].1, b"p");
        assert_eq!(f[3].1, b"plain");
        assert_eq!(f[4].1, text.as_bytes());
        // No context is kept between messages.
        assert!(inflater.is_empty());
        // RSV1 on a continuation goes through as it came.
        let mut inflater = Inflater::new(&agreed);
        let input = [frame(0x01, b"4a"), frame(0xc0, b"b")].concat();
        assert_eq!(read_all(&mut inflater, &input, 1_000_000).unwrap(), input);
    }

    #[test]
    fn inflating_stops_at_the_limit_and_on_bad_data() {
        let agreed = negotiate(&headers("permessage-deflate"), &PerMessageDeflate::new())
            .unwrap()
            .0;
        let bomb = deflate(&vec![b'a'; 2_000_000]);
        assert!(bomb.len() < 10_000);
        let mut inflater = Inflater::new(&agreed);
        let e = read_all(&mut inflater, &frame(0xc1, &bomb), 1_000_000).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(inflater.failure(), Some(CloseCode::Size));
        let mut inflater = Inflater::new(&agreed);
        read_all(&mut inflater, &frame(0xc1, &[0xff; 20]), 1_000_000).unwrap_err();
        assert_eq!(inflater.failure(), Some(CloseCode::Invalid));
    }
}
