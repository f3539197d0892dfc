//! WebSocket per-message compression (`permessage-deflate`, RFC 7692), sans-IO: the frame logic
//! that both ends of a connection share, for WebSocket libraries that have no extension support
//! of their own (DEFLATE itself is flate2's).
//!
//! - [`Inflater`] sits between the socket and the WebSocket library: bytes received go in
//!   ([`Inflater::push`]), frames come out ([`Inflater::pull`]), the compressed messages (the
//!   RSV1 bit set on their first frame) inflated and the bit cleared, so that the library still
//!   checks everything else (masking, opcodes, fragmentation, UTF-8, sizes). A frame it does not
//!   transform (RSV2 or RSV3 set, RSV1 on a control or continuation frame, a frame masked the
//!   wrong way for its [`Role`]) and everything after it comes out as it came, for the library
//!   to fail the connection on. A message is never inflated past the size limit.
//! - [`Deflater`] compresses a message into the payload of a frame to send with the RSV1 bit.
//! - [`Response`] reads the server's answer to an offer, on the client's side.

use std::io::{self, Read};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The four bytes a sender removes from the end of each compressed message (RFC 7692,
/// section 7.2.1) and the receiver appends again.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Output is produced in steps of this many bytes, so a message is never inflated far past the
/// size limit.
const STEP: usize = 16 * 1024;

/// The largest buffer capacity an [`Inflater`] keeps once its bytes are gone.
const KEEP_CAPACITY: usize = 64 * 1024;

/// Which end of the connection reads the frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The server: it reads masked frames, and hands them on masked (with a zero key).
    Server,
    /// The client: it reads unmasked frames.
    Client,
}

/// Why a compressed message failed the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InflateError {
    /// The message inflates past the size limit (close code 1009).
    TooLarge,
    /// The data is not valid DEFLATE (close code 1007).
    Invalid,
}

impl InflateError {
    /// The WebSocket close code of the failure: 1009 or 1007, as Node's `ws` closes.
    pub fn close_code(self) -> u16 {
        match self {
            InflateError::TooLarge => 1009,
            InflateError::Invalid => 1007,
        }
    }
}

impl std::fmt::Display for InflateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InflateError::TooLarge => "permessage-deflate: message too large",
            InflateError::Invalid => "permessage-deflate: invalid compressed data",
        })
    }
}

impl std::error::Error for InflateError {}

/// A frame header, as far as it matters here.
struct Header {
    fin: bool,
    rsv1: bool,
    rsv2: bool,
    rsv3: bool,
    opcode: u8,
    mask: Option<[u8; 4]>,
    len: u64,
    /// The header's own length.
    size: usize,
}

/// Parses the frame header at the start of `b`: `Ok(None)` when it is not all there, `Err` for
/// a length the protocol forbids.
fn parse_header(b: &[u8]) -> Result<Option<Header>, ()> {
    let [first, second, ..] = *b else {
        return Ok(None);
    };
    let (len, mut size) = match second & 0x7f {
        126 => match b.get(2..4) {
            Some(l) => (u64::from(u16::from_be_bytes([l[0], l[1]])), 4),
            None => return Ok(None),
        },
        127 => match b.get(2..10) {
            Some(l) => {
                let mut n = [0u8; 8];
                n.copy_from_slice(l);
                let n = u64::from_be_bytes(n);
                if n >> 63 != 0 {
                    return Err(());
                }
                (n, 10)
            }
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    let mask = if second & 0x80 != 0 {
        let Some(k) = b.get(size..size + 4) else {
            return Ok(None);
        };
        size += 4;
        Some([k[0], k[1], k[2], k[3]])
    } else {
        None
    };
    Ok(Some(Header {
        fin: first & 0x80 != 0,
        rsv1: first & 0x40 != 0,
        rsv2: first & 0x20 != 0,
        rsv3: first & 0x10 != 0,
        opcode: first & 0x0f,
        mask,
        len,
        size,
    }))
}

/// Writes a frame header without RSV bits; `masked` with a zero key.
fn put_header(out: &mut Vec<u8>, fin: bool, opcode: u8, masked: bool, len: usize) {
    out.push(if fin { 0x80 } else { 0 } | opcode);
    let mask_bit = if masked { 0x80 } else { 0 };
    match len {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n < 65536 => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        out.extend_from_slice(&[0; 4]);
    }
}

const CONTINUATION: u8 = 0;
const TEXT: u8 = 1;
const BINARY: u8 = 2;

/// The kind of message the frames being read belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Message {
    /// Between messages.
    None,
    /// A message sent uncompressed, continued by more frames.
    Plain,
    /// A compressed message, continued by more frames; its inflated size so far.
    Compressed(usize),
}

/// The read side of a compressed connection: frames received in, the frames for the WebSocket
/// library out (see the module's documentation).
pub struct Inflater {
    role: Role,
    /// The peer compresses each message on its own: no context is kept between messages.
    peer_no_context_takeover: bool,
    /// Bytes received and not yet framed.
    raw: Vec<u8>,
    /// Frames for the library, from `out_pos` on.
    out: Vec<u8>,
    out_pos: usize,
    message: Message,
    /// The inflate context; `None` between messages when the peer compresses each message on
    /// its own.
    inflate: Option<Box<Decompress>>,
    /// After a frame not transformed, everything goes through as it comes.
    verbatim: bool,
    /// The input ended.
    ended: bool,
    failure: Option<InflateError>,
}

impl Inflater {
    /// An inflater for the `role` end of a connection; `peer_no_context_takeover` when the
    /// other end agreed to compress each message on its own.
    pub fn new(role: Role, peer_no_context_takeover: bool) -> Inflater {
        Inflater {
            role,
            peer_no_context_takeover,
            raw: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            message: Message::None,
            inflate: None,
            verbatim: false,
            ended: false,
            failure: None,
        }
    }

    /// Bytes received from the peer.
    pub fn push(&mut self, bytes: &[u8]) {
        self.raw.extend_from_slice(bytes);
    }

    /// The input ended: what is left of it comes out as it is.
    pub fn end(&mut self) {
        self.ended = true;
    }

    /// True when it holds nothing but, with context takeover, its inflate context: no byte
    /// waiting, not inside a message.
    pub fn is_idle(&self) -> bool {
        self.raw.is_empty()
            && self.out_pos == self.out.len()
            && self.message == Message::None
            && !self.verbatim
            && self.failure.is_none()
    }

    /// True when it is idle and holds no inflate context: dropping it loses nothing.
    pub fn is_empty(&self) -> bool {
        self.is_idle() && self.inflate.is_none()
    }

    /// Why the connection failed, once it did.
    pub fn failure(&self) -> Option<InflateError> {
        self.failure
    }

    /// Copies frames for the library into `buf`: 0 when it needs more input first (or, once
    /// [`Inflater::end`] was called, when all is out). `max` bounds an inflated message; past
    /// it, and on invalid data, the connection has failed (and every later call fails too).
    pub fn pull(&mut self, buf: &mut [u8], max: usize) -> Result<usize, InflateError> {
        if let Some(e) = self.failure {
            return Err(e);
        }
        while self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
            if self.verbatim || self.ended {
                if self.raw.is_empty() {
                    return Ok(0);
                }
                std::mem::swap(&mut self.out, &mut self.raw);
            } else if !self.next_frame(max)? {
                return Ok(0);
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

    /// [`Inflater::pull`] reading `src` as needed: a blocking or non-blocking `Read` (its
    /// `WouldBlock` comes through). A failure is an `InvalidData` error holding the
    /// [`InflateError`].
    pub fn read(&mut self, src: &mut impl Read, buf: &mut [u8], max: usize) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let n = self
                .pull(buf, max)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if n > 0 || self.ended {
                return Ok(n);
            }
            let mut chunk = [0u8; 8192];
            match src.read(&mut chunk)? {
                0 => self.end(),
                n => self.push(&chunk[..n]),
            }
        }
    }

    /// Moves the first whole frame of `raw` to `out`, transformed when it is part of a
    /// compressed message: false if `raw` holds no whole frame yet.
    fn next_frame(&mut self, max: usize) -> Result<bool, InflateError> {
        let header = match parse_header(&self.raw) {
            Ok(Some(h)) => h,
            Ok(None) => return Ok(false),
            Err(()) => return Ok(self.go_verbatim()),
        };
        let data = matches!(header.opcode, TEXT | BINARY);
        let continuation = header.opcode == CONTINUATION;
        let compressed = match self.message {
            // RSV1 belongs on a message's first frame only (RFC 7692 section 6.1): a
            // continuation with it goes through as it is, and tungstenite fails it with 1002.
            Message::Compressed(_) => continuation && !header.rsv1,
            Message::Plain => false,
            Message::None => header.rsv1 && data,
        };
        let untransformed_is_fine = !header.rsv1
            && match self.message {
                Message::None => !continuation,
                Message::Plain => continuation || !data,
                Message::Compressed(_) => !data && !continuation,
            };
        let mask_ok = header.mask.is_some() == (self.role == Role::Server);
        if !mask_ok
            || header.rsv2
            || header.rsv3
            || header.len > max as u64
            || !(compressed || untransformed_is_fine)
        {
            return Ok(self.go_verbatim());
        }
        let end = header.size + header.len as usize;
        if self.raw.len() < end {
            return Ok(false);
        }
        if !compressed {
            if data || continuation {
                self.message = match (header.fin, self.message) {
                    (true, _) => Message::None,
                    (false, Message::None) => Message::Plain,
                    (false, m) => m,
                };
            }
            self.out.extend_from_slice(&self.raw[..end]);
            self.raw.drain(..end);
            return Ok(true);
        }
        let mut payload = self.raw[header.size..end].to_vec();
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
        let room = max.saturating_sub(before);
        let result = inflate_into(inflate, &payload, &mut inflated, room).and_then(|()| {
            if header.fin {
                inflate_into(inflate, &TAIL, &mut inflated, room)
            } else {
                Ok(())
            }
        });
        if let Err(e) = result {
            self.failure = Some(e);
            self.inflate = None;
            return Err(e);
        }
        self.message = if header.fin {
            if self.peer_no_context_takeover {
                self.inflate = None;
            }
            Message::None
        } else {
            Message::Compressed(before + inflated.len())
        };
        put_header(
            &mut self.out,
            header.fin,
            header.opcode,
            self.role == Role::Server,
            inflated.len(),
        );
        self.out.extend_from_slice(&inflated);
        Ok(true)
    }

    /// From now on every byte goes through as it comes; true (`out` holds bytes).
    fn go_verbatim(&mut self) -> bool {
        self.verbatim = true;
        std::mem::swap(&mut self.out, &mut self.raw);
        self.out_pos = 0;
        true
    }
}

/// Inflates all of `input` onto `out`, failing once `out` would pass `room` bytes and on data
/// that is not DEFLATE.
fn inflate_into(
    inflate: &mut Decompress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    room: usize,
) -> Result<(), InflateError> {
    loop {
        if out.len() > room {
            return Err(InflateError::TooLarge);
        }
        // Exactly: the output never passes the limit by more than a byte.
        out.reserve_exact(STEP.min((room - out.len()).saturating_add(1)));
        let (in_before, out_len) = (inflate.total_in(), out.len());
        let status = inflate
            .decompress_vec(input, out, FlushDecompress::Sync)
            .map_err(|_| InflateError::Invalid)?;
        let used = (inflate.total_in() - in_before) as usize;
        input = &input[used..];
        let produced = out.len() - out_len;
        if out.len() > room {
            return Err(InflateError::TooLarge);
        }
        match status {
            // The end of a DEFLATE stream: a final block inside a message, which nothing may
            // follow; the next message starts a stream of its own.
            Status::StreamEnd => {
                inflate.reset(false);
                return if input.is_empty() {
                    Ok(())
                } else {
                    Err(InflateError::Invalid)
                };
            }
            _ if input.is_empty() && out.len() < out.capacity() => return Ok(()),
            // No progress possible: done if all the input is in, else the data is cut short.
            Status::BufError if used == 0 && produced == 0 => {
                return if input.is_empty() {
                    Ok(())
                } else {
                    Err(InflateError::Invalid)
                };
            }
            _ => {}
        }
    }
}

/// The write side of a compressed connection: a compression context.
pub struct Deflater {
    compress: Compress,
    no_context_takeover: bool,
}

impl Deflater {
    /// A context compressing at `level` (0 to 9) with a window of `window_bits` (9 to 15; other
    /// values are brought into that range); `no_context_takeover` compresses each message on
    /// its own.
    pub fn new(level: u32, window_bits: u8, no_context_takeover: bool) -> Deflater {
        Deflater {
            compress: Compress::new_with_window_bits(
                Compression::new(level.min(9)),
                false,
                window_bits.clamp(9, 15),
            ),
            no_context_takeover,
        }
    }

    /// The payload of the frame (sent with RSV1) of a message compressed: `None` when it is
    /// not worth it (only known, and only allowed, without context takeover) or compression
    /// failed, and the message is sent as it is.
    pub fn compress(&mut self, data: &[u8]) -> Option<Vec<u8>> {
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
        if self.no_context_takeover {
            self.compress.reset();
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if self.no_context_takeover && out.len() >= data.len() {
            return None;
        }
        Some(out)
    }
}

/// A server's answer to a client's `permessage-deflate` offer (its
/// `Sec-WebSocket-Extensions`), as far as the client must follow it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// The server compresses each message on its own.
    pub server_no_context_takeover: bool,
    /// The client must compress each message on its own.
    pub client_no_context_takeover: bool,
    /// The largest window the client may compress with (`client_max_window_bits`), if bounded.
    pub client_max_window_bits: Option<u8>,
}

impl Response {
    /// Reads the answer: `None` when it does not accept `permessage-deflate` (the first
    /// extension named), or has a parameter that is unknown, repeated or out of range (RFC
    /// 7692 then has the client fail the connection; a client may just send uncompressed).
    pub fn parse(value: &str) -> Option<Response> {
        let first = value.split(',').next()?;
        let mut params = first.split(';').map(str::trim);
        if !params.next()?.eq_ignore_ascii_case("permessage-deflate") {
            return None;
        }
        let mut r = Response::default();
        let mut seen = [false; 4];
        for param in params.filter(|p| !p.is_empty()) {
            let (name, value) = match param.split_once('=') {
                Some((n, v)) => {
                    let v = v.trim();
                    let v = v
                        .strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .unwrap_or(v);
                    (n.trim(), Some(v))
                }
                None => (param, None),
            };
            let bits = value
                .filter(|v| (1..=2).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u8>().ok())
                .filter(|b| (8..=15).contains(b));
            let index = match (name, value) {
                ("server_no_context_takeover", None) => {
                    r.server_no_context_takeover = true;
                    0
                }
                ("client_no_context_takeover", None) => {
                    r.client_no_context_takeover = true;
                    1
                }
                ("server_max_window_bits", Some(_)) => {
                    bits?;
                    2
                }
                ("client_max_window_bits", Some(_)) => {
                    r.client_max_window_bits = Some(bits?);
                    3
                }
                _ => return None,
            };
            if std::mem::replace(&mut seen[index], true) {
                return None;
            }
        }
        Some(r)
    }

    /// A [`Deflater`] for the client's messages at `level`: `None` when the server bounds the
    /// window to 8 bits, which zlib's raw DEFLATE cannot honour (the client then sends its
    /// messages uncompressed).
    pub fn client_deflater(&self, level: u32) -> Option<Deflater> {
        let bits = self.client_max_window_bits.unwrap_or(15);
        (bits >= 9).then(|| Deflater::new(level, bits, self.client_no_context_takeover))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(first: u8, masked: bool, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_header(
            &mut out,
            first & 0x80 != 0,
            first & 0x0f,
            masked,
            payload.len(),
        );
        out[0] |= first & 0x70;
        out.extend_from_slice(payload);
        out
    }

    fn deflate(data: &[u8]) -> Vec<u8> {
        Deflater::new(6, 15, true).compress(data).unwrap()
    }

    /// Everything `inflater` makes of `input`, given in pieces of `piece` bytes.
    fn read_all(
        inflater: &mut Inflater,
        input: &[u8],
        piece: usize,
        max: usize,
    ) -> Result<Vec<u8>, InflateError> {
        let mut out = Vec::new();
        let mut buf = [0u8; 100];
        for chunk in input.chunks(piece) {
            inflater.push(chunk);
            loop {
                match inflater.pull(&mut buf, max)? {
                    0 => break,
                    n => out.extend_from_slice(&buf[..n]),
                }
            }
        }
        inflater.end();
        loop {
            match inflater.pull(&mut buf, max)? {
                0 => return Ok(out),
                n => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// The frames in `out`: first byte and payload (any mask is zero).
    fn frames(mut out: &[u8], masked: bool) -> Vec<(u8, Vec<u8>)> {
        let mut frames = Vec::new();
        while !out.is_empty() {
            let h = parse_header(out).unwrap().unwrap();
            assert_eq!(h.mask, masked.then_some([0; 4]));
            let end = h.size + h.len as usize;
            frames.push((out[0], out[h.size..end].to_vec()));
            out = &out[end..];
        }
        frames
    }

    #[test]
    fn inflating_frames_on_both_ends() {
        let text = "hello ".repeat(500);
        let compressed = deflate(text.as_bytes());
        assert!(compressed.len() < 100);
        for (role, masked) in [(Role::Server, true), (Role::Client, false)] {
            // Compressed in two fragments, a ping between them, then a plain message, then
            // the compressed message again in one frame.
            let (a, b) = compressed.split_at(10);
            let mut input = frame(0x41, masked, a);
            input.extend(frame(0x89, masked, b"p"));
            input.extend(frame(0x80, masked, b));
            input.extend(frame(0x82, masked, b"plain"));
            input.extend(frame(0xc1, masked, &compressed));
            for piece in [1, 7, 4096] {
                let mut inflater = Inflater::new(role, true);
                let out = read_all(&mut inflater, &input, piece, 1_000_000).unwrap();
                let f = frames(&out, masked);
                assert_eq!(f.len(), 5);
                let firsts: Vec<u8> = f.iter().map(|f| f.0).collect();
                assert_eq!(firsts, [0x01, 0x89, 0x80, 0x82, 0x81]);
                assert_eq!([&f[0].1[..], &f[2].1[..]].concat(), text.as_bytes());
                assert_eq!(f[1].1, b"p");
                assert_eq!(f[3].1, b"plain");
                assert_eq!(f[4].1, text.as_bytes());
                // No context is kept between messages.
                assert!(inflater.is_empty());
            }
            // RSV1 on a continuation goes through as it came, and all after it.
            let mut inflater = Inflater::new(role, true);
            let input = [frame(0x01, masked, b"4a"), frame(0xc0, masked, b"b")].concat();
            assert_eq!(
                read_all(&mut inflater, &input, 4096, 1_000_000).unwrap(),
                input
            );
            // RSV1 on the continuation of a compressed message too: that frame and all after
            // it go through as they came (tungstenite then closes with 1002).
            let (a, b) = compressed.split_at(10);
            let tail = frame(0xc0, masked, b);
            let input = [frame(0x41, masked, a), tail.clone()].concat();
            let mut inflater = Inflater::new(role, true);
            let out = read_all(&mut inflater, &input, 4096, 1_000_000).unwrap();
            assert!(out.ends_with(&tail), "{out:?}");
            assert_eq!(out[0], 0x01);
            // No limit at all (`usize::MAX`) inflates as any other.
            let mut inflater = Inflater::new(role, true);
            let out = read_all(
                &mut inflater,
                &frame(0xc1, masked, &compressed),
                4096,
                usize::MAX,
            )
            .unwrap();
            assert_eq!(frames(&out, masked)[0].1, text.as_bytes());
            // A frame masked the wrong way too.
            let mut inflater = Inflater::new(role, true);
            let input = frame(0xc1, !masked, &compressed);
            assert_eq!(
                read_all(&mut inflater, &input, 4096, 1_000_000).unwrap(),
                input
            );
        }
    }

    #[test]
    fn context_takeover_keeps_the_context() {
        let mut d = Deflater::new(6, 15, false);
        let text = "hello hello hello hello".repeat(10);
        let first = d.compress(text.as_bytes()).unwrap();
        let second = d.compress(text.as_bytes()).unwrap();
        assert!(second.len() < first.len());
        let input = [frame(0xc1, false, &first), frame(0xc1, false, &second)].concat();
        let mut inflater = Inflater::new(Role::Client, false);
        let out = read_all(&mut inflater, &input, 4096, 1_000_000).unwrap();
        let f = frames(&out, false);
        assert_eq!(f[0].1, text.as_bytes());
        assert_eq!(f[1].1, text.as_bytes());
        assert!(!inflater.is_empty());
    }

    #[test]
    fn inflating_stops_at_the_limit_and_on_bad_data() {
        let bomb = deflate(&vec![b'a'; 2_000_000]);
        assert!(bomb.len() < 10_000);
        let mut inflater = Inflater::new(Role::Server, true);
        let e = read_all(&mut inflater, &frame(0xc1, true, &bomb), 4096, 1_000_000);
        assert_eq!(e, Err(InflateError::TooLarge));
        assert_eq!(inflater.failure(), Some(InflateError::TooLarge));
        let mut inflater = Inflater::new(Role::Server, true);
        let e = read_all(
            &mut inflater,
            &frame(0xc1, true, &[0xff; 20]),
            4096,
            1_000_000,
        );
        assert_eq!(e, Err(InflateError::Invalid));
        assert_eq!(InflateError::Invalid.close_code(), 1007);
        // Through `read`, an `InvalidData` error.
        let mut inflater = Inflater::new(Role::Server, true);
        let input = frame(0xc1, true, &bomb);
        let e = inflater
            .read(&mut &input[..], &mut [0u8; 64], 50_000)
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn small_messages_are_not_worth_it() {
        assert_eq!(Deflater::new(6, 15, true).compress(b"ab"), None);
        assert!(Deflater::new(6, 15, false).compress(b"ab").is_some());
    }

    #[test]
    fn responses() {
        let r = Response::parse(
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=10",
        )
        .unwrap();
        assert!(r.server_no_context_takeover && !r.client_no_context_takeover);
        assert_eq!(r.client_max_window_bits, Some(10));
        assert!(r.client_deflater(6).is_some());
        let r = Response::parse("permessage-deflate;client_no_context_takeover").unwrap();
        assert!(r.client_no_context_takeover);
        let r = Response::parse("permessage-deflate; client_max_window_bits=\"8\"").unwrap();
        assert!(r.client_deflater(6).is_none());
        assert_eq!(Response::parse("x-webkit-deflate-frame"), None);
        assert_eq!(Response::parse("permessage-deflate; foo"), None);
        assert_eq!(
            Response::parse("permessage-deflate; client_max_window_bits=16"),
            None
        );
        assert_eq!(
            Response::parse(
                "permessage-deflate; client_no_context_takeover; client_no_context_takeover"
            ),
            None
        );
    }
}
