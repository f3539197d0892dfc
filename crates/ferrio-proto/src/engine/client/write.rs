//! The write buffer: frames queued for the server (bounded by
//! [`Config::max_buffered_bytes`](super::Config::max_buffered_bytes)), handed to the transport as
//! a POST cut to `maxPayload` or as WebSocket frames, and dropped from the front once a POST
//! succeeded.

use super::{Io, Kind, Output, PollState, SendError, Session, State, Transport};
use crate::engine::packet::Frame;
use crate::engine::payload::SEPARATOR;
use crate::Str;

/// A binary message as `b` + base64 text (the v4 form for a peer that cannot take binary).
fn base64_frame(data: &[u8]) -> Frame {
    let mut text = "b".to_owned();
    crate::engine::packet::encode_base64_into(data, &mut text);
    Frame::Text(Str::from(text))
}

/// A POST body: the v4 polling payload of `frames` ([`encode_payload`](crate::engine::encode_payload)'s
/// bytes), built as a `String` so that it is a [`Str`] without a UTF-8 check (text frames are
/// UTF-8, the rest ASCII).
fn post_body<'a>(frames: impl Iterator<Item = &'a Frame> + Clone) -> Str {
    let len: usize = frames.clone().map(|f| f.polling_len() + 1).sum();
    let mut out = String::with_capacity(len);
    for (i, frame) in frames.enumerate() {
        if i > 0 {
            out.push(char::from(SEPARATOR));
        }
        match frame {
            Frame::Text(s) => out.push_str(s),
            Frame::Binary(b) => {
                out.push('b');
                crate::engine::packet::encode_base64_into(b, &mut out);
            }
        }
    }
    Str::from(out)
}

/// A frame in the write buffer.
#[derive(Debug, Clone)]
pub(super) struct Queued {
    pub(super) frame: Frame,
    pub(super) compress: bool,
}

fn frame_len(frame: &Frame) -> usize {
    match frame {
        Frame::Text(s) => s.len(),
        Frame::Binary(b) => b.len(),
    }
}

/// `byteLength(packet.data)` of `engine.io-client`: UTF-8 bytes of text data (the type character
/// excluded), `ceil(len * 1.33)` for binary.
fn data_byte_length(frame: &Frame) -> u64 {
    match frame {
        Frame::Text(s) => s.len().saturating_sub(1) as u64,
        Frame::Binary(b) => (b.len() as f64 * 1.33).ceil() as u64,
    }
}

impl Session {
    /// Queues message frames; `bounded` applies [`Config::max_buffered_bytes`](super::Config::max_buffered_bytes).
    /// Takes a `Vec` rather than an iterator: one copy of this code for every caller.
    pub(crate) fn enqueue(
        &mut self,
        frames: Vec<Frame>,
        compress: bool,
        bounded: bool,
    ) -> Result<(), SendError> {
        if !matches!(self.state, State::Opening | State::Open) {
            return Err(SendError::Closed);
        }
        let mut total = 0;
        for f in &frames {
            if matches!(f, Frame::Text(t) if !t.starts_with('4')) {
                return Err(SendError::NotAMessage);
            }
            total += frame_len(f);
        }
        if bounded
            && !self.write_buffer.is_empty()
            && self.buffered_bytes.saturating_add(total) > self.config.max_buffered_bytes
        {
            return Err(SendError::BufferFull);
        }
        self.buffered_bytes += total;
        for frame in frames {
            self.write_buffer.push(Queued { frame, compress });
        }
        self.flush();
        Ok(())
    }

    pub(super) fn clear_write_buffer(&mut self) {
        self.write_buffer.clear();
        self.buffered_bytes = 0;
        self.in_flight = 0;
    }

    /// `flush`: hands the writable part of the write buffer to the transport.
    pub(super) fn flush(&mut self) {
        if self.state == State::Closed || self.upgrading || self.write_buffer.is_empty() {
            return;
        }
        let count = self.writable_count();
        let Some(active) = self.active.as_mut() else {
            return;
        };
        let id = active.id;
        match &mut active.kind {
            Kind::Polling {
                state,
                post_in_flight,
                ..
            } => {
                if *state == PollState::Opening || *post_in_flight {
                    return;
                }
                *post_in_flight = true;
                self.in_flight = count;
                let body = post_body(self.write_buffer[..count].iter().map(|q| &q.frame));
                #[cfg(feature = "engine-events")]
                if self.report_packets {
                    for i in 0..count {
                        let frame = self.write_buffer[i].frame.clone();
                        self.report_created(&frame);
                    }
                }
                let query = self.query(Transport::Polling);
                self.io(Io::Post {
                    transport: id,
                    query,
                    body,
                });
            }
            Kind::WebSocket { open } => {
                if !*open {
                    return;
                }
                for q in std::mem::take(&mut self.write_buffer) {
                    #[cfg(feature = "engine-events")]
                    self.report_created(&q.frame);
                    let frame = match q.frame {
                        Frame::Binary(data) if self.config.force_base64 => base64_frame(&data),
                        frame => frame,
                    };
                    self.outputs.push(Output::Io(Io::WsSend {
                        transport: id,
                        frame,
                        compress: q.compress,
                    }));
                }
                self.buffered_bytes = 0;
                self.in_flight = 0;
                self.maybe_finish_close();
            }
        }
    }

    /// `_getWritablePackets`: over polling, the write buffer is cut so that
    /// `1 + Σ(byteLength(data) + 2) <= maxPayload` (the first packet always goes).
    fn writable_count(&self) -> usize {
        let len = self.write_buffer.len();
        let max = self
            .handshake
            .as_ref()
            .and_then(|h| h.max_payload)
            .unwrap_or(0);
        let polling = matches!(
            self.active.as_ref().map(|a| &a.kind),
            Some(Kind::Polling { .. })
        );
        if max == 0 || !polling || len <= 1 {
            return len;
        }
        let mut size: u64 = 1;
        for (i, q) in self.write_buffer.iter().enumerate() {
            size = size.saturating_add(data_byte_length(&q.frame));
            if i > 0 && size > max {
                return i;
            }
            size = size.saturating_add(2);
        }
        len
    }

    /// `_onDrain`: the POST in flight completed.
    pub(super) fn on_drain(&mut self) {
        let sent = self.in_flight.min(self.write_buffer.len());
        let rest = self.write_buffer.split_off(sent);
        for q in std::mem::replace(&mut self.write_buffer, rest) {
            self.buffered_bytes = self.buffered_bytes.saturating_sub(frame_len(&q.frame));
        }
        self.in_flight = 0;
        if self.write_buffer.is_empty() {
            self.maybe_finish_close();
        } else {
            self.flush();
        }
    }
}
