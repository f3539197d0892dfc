//! WebSocket per-message compression (`permessage-deflate`, RFC 7692) over tungstenite, which
//! has no extension support of its own: the frame logic is the core's (`ws_deflate`), DEFLATE
//! itself flate2's.
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

use std::io::{self, Read};

use bytes::Bytes;
use ferrio_proto::ws_deflate::{self, InflateError, Role};
use http::{HeaderMap, HeaderValue};
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::Frame;

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

/// The read side of a compressed connection: client frames in, the frames tungstenite reads
/// out (see the module's documentation); the core's inflater, read from the socket.
pub(crate) struct Inflater(ws_deflate::Inflater);

impl Inflater {
    /// A reader for a connection that agreed on `agreed`.
    pub(crate) fn new(agreed: &Agreed) -> Inflater {
        Inflater(ws_deflate::Inflater::new(
            Role::Server,
            agreed.client_no_context_takeover,
        ))
    }

    /// True when it holds nothing but, with context takeover, its inflate context: no byte
    /// waiting, not inside a message. A new `Inflater` may then replace it if it holds no
    /// context either (see [`Inflater::is_empty`]).
    pub(crate) fn is_idle(&self) -> bool {
        self.0.is_idle()
    }

    /// True when it is idle and holds no inflate context: dropping it loses nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Why the connection failed, when the last read reported an error of its own.
    pub(crate) fn failure(&self) -> Option<CloseCode> {
        self.0.failure().map(|e| match e {
            InflateError::TooLarge => CloseCode::Size,
            InflateError::Invalid => CloseCode::Invalid,
        })
    }

    /// Reads frames for tungstenite into `buf`, reading the socket `src` as needed; `max`
    /// bounds an inflated message. `WouldBlock` from `src` comes through.
    pub(crate) fn read(
        &mut self,
        src: &mut impl Read,
        buf: &mut [u8],
        max: usize,
    ) -> io::Result<usize> {
        self.0.read(src, buf, max)
    }
}

/// The write side of a compressed connection: the compression context, made when a message
/// is compressed and kept only while the connection keeps its other write state.
pub(crate) struct Deflater(ws_deflate::Deflater);

impl Deflater {
    /// A context for what `agreed` allows.
    pub(crate) fn new(agreed: &Agreed) -> Deflater {
        Deflater(ws_deflate::Deflater::new(
            agreed.level,
            agreed.server_window_bits,
            agreed.server_no_context_takeover,
        ))
    }

    /// The frame of a message (`text` or binary) compressed: `None` when it is not worth it
    /// (only known, and only allowed, without context takeover) or compression failed, and the
    /// message is sent as it is.
    pub(crate) fn compress(&mut self, text: bool, data: &[u8]) -> Option<Frame> {
        let out = self.0.compress(data)?;
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

    #[test]
    fn failures_are_close_codes() {
        let agreed = negotiate(&headers("permessage-deflate"), &PerMessageDeflate::new())
            .unwrap()
            .0;
        let bomb = Deflater::new(&agreed)
            .compress(true, &vec![b'a'; 2_000_000])
            .unwrap();
        assert!(bomb.header().rsv1);
        let payload = bomb.payload();
        let mut input = vec![0xc1, 0xfe];
        input.extend((payload.len() as u16).to_be_bytes());
        input.extend([0; 4]);
        input.extend(payload);
        let mut inflater = Inflater::new(&agreed);
        let e = inflater
            .read(&mut &input[..], &mut [0u8; 100], 1_000_000)
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(inflater.failure(), Some(CloseCode::Size));
        let mut inflater = Inflater::new(&agreed);
        let input = [0xc1, 0x82, 0, 0, 0, 0, 0xff, 0xff];
        inflater
            .read(&mut &input[..], &mut [0u8; 100], 1_000_000)
            .unwrap_err();
        assert_eq!(inflater.failure(), Some(CloseCode::Invalid));
    }
}
