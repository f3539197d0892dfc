//! A WebSocket as its session task holds it: the task reads frames from it and writes the
//! session's frames to it itself, without a reader or writer task of its own.
//!
//! Writes are queued here and handed to tungstenite when the socket can take them; the queue
//! counts its bytes, so the session can drop volatile packets and close an overloaded session
//! (see the limits in [`crate::transport`]).
//!
//! With `permessage-deflate` agreed, the client's frames reach tungstenite through
//! [`Inflater`] and messages from the threshold on are compressed before tungstenite writes them
//! (see [`crate::deflate`]). A connection that fails is closed with the close code of its
//! failure (1002, 1007, 1009).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use bytes::Bytes;
use ferrio_proto::engine::Frame;
use ferrio_proto::Str;
use futures_util::task::AtomicWaker;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tracing::debug;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig, WebSocketContext};
use tungstenite::Message;

use crate::deflate::{Agreed, Deflater, Inflater};

/// The WebSocket read buffer of each connection, in bytes, while it has one (see
/// [`WsConn::release_idle`]): the most tungstenite reads at once (from the socket, or after a
/// large message from what was read ahead, see [`ReadAhead`]). tungstenite zero-fills it before
/// every read; larger messages grow it as they come.
const READ_BUFFER: usize = 4 * 1024;

/// After a message larger than [`READ_BUFFER`], tungstenite's state (whose buffers grew for it)
/// is kept through this many small messages: the next message may be as large, and made again
/// for each, the grown buffers would be allocated and faulted in every time. A binary event is a
/// small text frame and its attachments, so one small message between two large ones is the
/// rule; an idle connection lets the state go after two heartbeats.
const KEEP_AFTER_LARGE: u8 = 4;

/// Messages (read or written) since the session's last timer round past which a connection
/// counts as busy: it keeps tungstenite's state between messages instead of making it again
/// for each (its buffers allocated, its write buffer grown), until a timer round finds it quiet
/// (see [`WsConn::tick`]; the heartbeat runs one every ping interval). A connection that only
/// opened (the handshake is three messages) or talks now and then stays below it and keeps
/// nothing while idle.
const BUSY: u32 = 16;

/// The most read from the socket at once while a connection reads large messages (see
/// [`ReadAhead`]).
const READ_AHEAD: usize = 64 * 1024;

/// What [`WsConn::keep`] becomes after a message of `len` bytes.
fn keep_after(keep: u8, len: usize) -> u8 {
    if len > READ_BUFFER {
        KEEP_AFTER_LARGE
    } else {
        keep.saturating_sub(1)
    }
}

/// How long a closing WebSocket may take to write what is queued and its close frame before it
/// is dropped (a peer that stopped reading must not keep it forever).
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// What a WebSocket has for its session.
#[derive(Debug)]
pub(crate) enum WsEvent {
    /// A message from the peer.
    Frame(Frame),
    /// The WebSocket is done: closed by the peer (`error` `None`) or failed (`error` says
    /// how, as the description of the `transport error` disconnection that follows). The
    /// session must drop it (with [`WsConn::close`]).
    Closed { error: Option<Str> },
}

/// Remembers that the socket may have something to read, and wakes the session task.
///
/// The task polls its WebSocket in every round of its loop, most of them for other reasons (a
/// command, a timer); asking tungstenite for a message each time would cost a zero-filled read
/// buffer and a look at the socket per round. The read side is polled with this waker instead,
/// and only after it fired.
#[derive(Default)]
struct ReadSignal {
    ready: AtomicBool,
    task: AtomicWaker,
}

impl Wake for ReadSignal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.ready.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// The connection under a WebSocket: hyper's upgraded connection (a server mounted in another
/// stack), or the TCP stream of Ferrio's own HTTP/1.1 server with the bytes it read past the
/// upgrade request's head.
pub(crate) enum WsIo {
    /// An upgrade through hyper.
    Hyper(TokioIo<Upgraded>),
    /// An upgrade from [`crate::conn`]: the stream, and what the client sent after the
    /// request's head (read first; empty as a rule).
    Tcp { early: Bytes, stream: TcpStream },
}

impl WsIo {
    /// An upgrade through hyper.
    pub(crate) fn hyper(upgraded: Upgraded) -> WsIo {
        WsIo::Hyper(TokioIo::new(upgraded))
    }
}

impl AsyncRead for WsIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WsIo::Hyper(io) => Pin::new(io).poll_read(cx, buf),
            WsIo::Tcp { early, stream } => {
                if early.is_empty() {
                    return Pin::new(stream).poll_read(cx, buf);
                }
                let n = early.len().min(buf.remaining());
                buf.put_slice(&early.split_to(n));
                Poll::Ready(Ok(()))
            }
        }
    }
}

impl AsyncWrite for WsIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WsIo::Hyper(io) => Pin::new(io).poll_write(cx, buf),
            WsIo::Tcp { stream, .. } => Pin::new(stream).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WsIo::Hyper(io) => Pin::new(io).poll_flush(cx),
            WsIo::Tcp { stream, .. } => Pin::new(stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WsIo::Hyper(io) => Pin::new(io).poll_shutdown(cx),
            WsIo::Tcp { stream, .. } => Pin::new(stream).poll_shutdown(cx),
        }
    }
}

/// A message waiting to be handed to tungstenite: the message, its payload size, and whether it
/// may be compressed.
type Queued = (Message, usize, bool);

/// The messages not yet handed to tungstenite, in order. The first one waiting is held inline:
/// the usual round (one message written, then the queue empty) allocates nothing, and an idle
/// connection keeps no room for a burst.
#[derive(Default)]
struct WriteQueue {
    /// The oldest message waiting, if any: always older than `rest`'s.
    first: Option<Queued>,
    rest: VecDeque<Queued>,
}

impl WriteQueue {
    fn push_back(&mut self, queued: Queued) {
        if self.first.is_none() && self.rest.is_empty() {
            self.first = Some(queued);
        } else {
            self.rest.push_back(queued);
        }
    }

    fn pop_front(&mut self) -> Option<Queued> {
        // Looked at before anything is moved (`take` on an empty slot still copies it out).
        if self.first.is_some() {
            return self.first.take();
        }
        if self.rest.is_empty() {
            return None;
        }
        self.rest.pop_front()
    }

    fn is_empty(&self) -> bool {
        self.first.is_none() && self.rest.is_empty()
    }

    /// Gives back the room a burst made, once empty.
    fn release(&mut self) {
        if self.is_empty() {
            self.rest = VecDeque::new();
        }
    }
}

/// An open WebSocket owned by a session task.
///
/// tungstenite's state for it (its [`WebSocketContext`]: the read buffer, the frame being
/// written, the closing handshake) exists only while there is something to read or write: an
/// idle connection keeps the socket and nothing else (see [`WsConn::release_idle`]).
pub(crate) struct WsConn {
    conn: WsIo,
    /// tungstenite's state; `None` while idle.
    ws: Option<Box<WebSocketContext>>,
    /// The largest message and frame accepted (`max_http_buffer_size`).
    max: usize,
    /// Bytes tungstenite read: from the socket, or on a compressed connection as the
    /// [`Inflater`] made them.
    read: u64,
    /// Bytes of the frames of the messages tungstenite returned, as if each message was one
    /// frame with the shortest header: never more than the bytes it took from its buffer.
    taken: u64,
    /// How many more small messages keep tungstenite's state after a message larger than
    /// [`READ_BUFFER`] (see [`KEEP_AFTER_LARGE`]).
    keep: u8,
    /// How many more small messages read keep the socket read ahead after a message larger
    /// than [`READ_BUFFER`] was read (as [`WsConn::keep`] counts, for reads only).
    large_reads: u8,
    /// The bytes read ahead of tungstenite while `large_reads` is not zero (see [`ReadAhead`]);
    /// `None` otherwise, on a compressed connection, and while idle.
    ahead: Option<Box<ReadAhead>>,
    /// Messages read or written since the last [`WsConn::tick`] (up to [`BUSY`]).
    recent: u32,
    read_signal: Arc<ReadSignal>,
    /// `read_signal` as a waker, given to the read side.
    read_waker: Waker,
    /// Messages not yet handed to tungstenite, with their payload sizes and whether they may
    /// be compressed.
    out: WriteQueue,
    /// Payload bytes in `out` and handed to tungstenite since its last completed flush.
    queued: usize,
    /// Bytes handed to tungstenite and not flushed yet (part of `queued`).
    unflushed: usize,
    /// Something was handed to tungstenite since its last completed flush.
    dirty: bool,
    /// The close frame to send when it closes (set when a message was too large).
    close_frame: Option<CloseFrame>,
    /// Yield the thread after each flush that empties the queue (see
    /// `EngineOptions::yield_after_flush`).
    yield_after_flush: bool,
    /// The `permessage-deflate` parameters, when the connection agreed on compression.
    deflate: Option<Agreed>,
    /// The compressed connection's read side; like tungstenite's state, `None` while idle
    /// unless it keeps an inflate context (context takeover).
    inflater: Option<Box<Inflater>>,
    /// The compressed connection's compression context, made for the first message compressed
    /// and dropped while idle unless context takeover was agreed.
    deflater: Option<Box<Deflater>>,
}

/// The socket as the blocking `Read + Write` tungstenite works with, for one call: a poll that
/// is not ready is `WouldBlock`, and `cx` is woken when the socket is ready.
struct Io<'a, 'b> {
    conn: &'a mut WsIo,
    cx: &'a mut Context<'b>,
    /// Counts the bytes tungstenite reads.
    read: &'a mut u64,
    /// On a compressed connection, what reads the socket for tungstenite (reads only).
    inflater: Option<(&'a mut Inflater, usize)>,
    /// On an uncompressed connection reading large messages, the bytes read ahead (reads
    /// only).
    ahead: Option<&'a mut ReadAhead>,
}

/// The socket alone as a blocking `Read`.
struct Socket<'a, 'b> {
    conn: &'a mut WsIo,
    cx: &'a mut Context<'b>,
}

#[cfg(test)]
thread_local! {
    /// Reads from a socket on this thread (the tests count them).
    static SOCKET_READS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl Read for Socket<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        #[cfg(test)]
        SOCKET_READS.with(|n| n.set(n.get() + 1));
        let mut buf = ReadBuf::new(buf);
        match Pin::new(&mut *self.conn).poll_read(self.cx, &mut buf) {
            Poll::Ready(Ok(())) => Ok(buf.filled().len()),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

/// What the socket gave beyond the read tungstenite asked for, while the connection reads large
/// messages.
///
/// tungstenite reads at most [`READ_BUFFER`] bytes at a time, so a 64 KiB message would take
/// sixteen reads from the socket, each a system call with its TCP bookkeeping. After a message
/// larger than [`READ_BUFFER`] (until [`KEEP_AFTER_LARGE`] small ones followed), the socket is
/// read [`READ_AHEAD`] bytes at a time into this buffer instead, and tungstenite's reads are
/// served from it.
struct ReadAhead {
    buf: Box<[u8]>,
    /// The bytes read and not yet handed to tungstenite: `buf[start..end]`.
    start: usize,
    end: usize,
}

impl ReadAhead {
    fn new() -> ReadAhead {
        ReadAhead {
            buf: vec![0; READ_AHEAD].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Fills `out` from what was read ahead, reading the socket first if nothing is left.
    fn read(&mut self, socket: &mut Socket<'_, '_>, out: &mut [u8]) -> io::Result<usize> {
        if self.is_empty() {
            if out.len() >= self.buf.len() {
                return socket.read(out);
            }
            let n = socket.read(&mut self.buf)?;
            self.start = 0;
            self.end = n;
        }
        let n = out.len().min(self.end - self.start);
        out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        self.start += n;
        Ok(n)
    }
}

impl Read for Io<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut socket = Socket {
            conn: self.conn,
            cx: self.cx,
        };
        let n = match (&mut self.inflater, &mut self.ahead) {
            (Some((inflater, max)), _) => inflater.read(&mut socket, buf, *max)?,
            (None, Some(ahead)) => ahead.read(&mut socket, buf)?,
            (None, None) => socket.read(buf)?,
        };
        *self.read += n as u64;
        Ok(n)
    }
}

impl Write for Io<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match Pin::new(&mut *self.conn).poll_write(self.cx, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match Pin::new(&mut *self.conn).poll_flush(self.cx) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

/// `Poll::Pending` for tungstenite's `WouldBlock`.
fn ready<T>(r: tungstenite::Result<T>) -> Poll<tungstenite::Result<T>> {
    match r {
        Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
        r => Poll::Ready(r),
    }
}

/// A close frame with `code` and no reason.
/// The description of a WebSocket that failed with `error` (`websocket error: ...`).
fn failure(error: &dyn std::fmt::Display) -> Str {
    Str::from(format!("websocket error: {error}"))
}

fn close_frame(code: CloseCode) -> CloseFrame {
    CloseFrame {
        code,
        reason: "".into(),
    }
}

/// The close code a read error fails the connection with (RFC 6455, section 7.4.1): 1009 for a
/// message or frame over the limit, 1007 for a text message that is not UTF-8, 1002 for a
/// protocol violation (reserved bits set without an extension that defines them, an unmasked
/// client frame, a bad opcode or fragmentation). `None` when the peer is gone and a close frame
/// would reach no one.
fn error_close_code(e: &tungstenite::Error) -> Option<CloseCode> {
    use tungstenite::error::ProtocolError;
    match e {
        tungstenite::Error::Capacity(_) => Some(CloseCode::Size),
        tungstenite::Error::Utf8(_) => Some(CloseCode::Invalid),
        tungstenite::Error::Protocol(
            ProtocolError::ResetWithoutClosingHandshake
            | ProtocolError::SendAfterClosing
            | ProtocolError::ReceivedAfterClosing,
        ) => None,
        tungstenite::Error::Protocol(_) => Some(CloseCode::Protocol),
        _ => None,
    }
}

/// A whole (final, uncompressed) data frame of `payload`: text or binary.
fn data_frame(payload: Bytes, text: bool) -> tungstenite::protocol::frame::Frame {
    use tungstenite::protocol::frame::coding::{Data, OpCode};
    let opcode = OpCode::Data(if text { Data::Text } else { Data::Binary });
    tungstenite::protocol::frame::Frame::message(payload, opcode, true)
}

/// The size of a message's frame from a client (masked) with the shortest header.
fn frame_size(payload: usize) -> u64 {
    let extended = match payload {
        0..=125 => 0,
        126..=65535 => 2,
        _ => 8,
    };
    (2 + extended + 4 + payload) as u64
}

impl WsConn {
    /// Wraps an upgraded connection; `max` bounds a message and a frame (`max_http_buffer_size`,
    /// inflated size for a compressed message); `deflate` is what the connection agreed on
    /// for `permessage-deflate`, if anything.
    pub(crate) fn new(
        upgraded: WsIo,
        max: usize,
        yield_after_flush: bool,
        deflate: Option<Agreed>,
    ) -> WsConn {
        let read_signal = Arc::new(ReadSignal::default());
        // Nothing was read yet: the first poll reads.
        read_signal.ready.store(true, Ordering::Relaxed);
        WsConn {
            conn: upgraded,
            ws: None,
            max,
            read: 0,
            taken: 0,
            keep: 0,
            large_reads: 0,
            ahead: None,
            recent: 0,
            read_waker: Waker::from(read_signal.clone()),
            read_signal,
            out: WriteQueue::default(),
            queued: 0,
            unflushed: 0,
            dirty: false,
            close_frame: None,
            yield_after_flush,
            deflate,
            inflater: None,
            deflater: None,
        }
    }

    /// tungstenite's state for the connection, created if it was released.
    fn context(ws: &mut Option<Box<WebSocketContext>>, max: usize) -> &mut WebSocketContext {
        ws.get_or_insert_with(|| {
            let config = WebSocketConfig::default()
                .read_buffer_size(READ_BUFFER)
                .max_message_size(Some(max))
                .max_frame_size(Some(max));
            Box::new(WebSocketContext::new(Role::Server, Some(config)))
        })
    }

    /// Queues a frame; [`WsConn::poll_event`] (or [`WsConn::flush_now`]) writes it. On a
    /// compressed connection it is compressed from the threshold on if `compress` allows it
    /// (the packet's `compress` flag); with `compress` false it goes as it is, whatever its
    /// size.
    pub(crate) fn send(&mut self, frame: Frame, compress: bool) {
        // A text frame goes as tungstenite's frame of its bytes, as `Message::Text` would be
        // written: a `Str` is UTF-8 already, and each recipient of a broadcast would check it
        // again.
        let (msg, len) = match frame {
            Frame::Text(s) => {
                let len = s.len();
                (Message::Frame(data_frame(s.into_bytes(), true)), len)
            }
            Frame::Binary(b) => {
                let len = b.len();
                (Message::Binary(b), len)
            }
        };
        self.queued += len;
        self.out.push_back((msg, len, compress));
    }

    /// Payload bytes queued and not yet written to the socket.
    pub(crate) fn queued(&self) -> usize {
        self.queued
    }

    /// Writes what the socket takes now, without waiting; the task is woken when it can take
    /// more. An error means the connection failed (the next [`WsConn::poll_event`] reports it).
    pub(crate) fn flush_now(&mut self, cx: &mut Context<'_>) {
        let _ = self.poll_write(cx);
    }

    /// Hands queued messages to tungstenite and flushes them: ready once everything is written.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<tungstenite::Result<()>> {
        if self.out.is_empty() && !self.dirty {
            return Poll::Ready(Ok(()));
        }
        let ws = Self::context(&mut self.ws, self.max);
        let mut io = Io {
            conn: &mut self.conn,
            cx,
            read: &mut self.read,
            inflater: None,
            ahead: None,
        };
        while let Some((mut msg, len, compress)) = self.out.pop_front() {
            if let Some(agreed) = self
                .deflate
                .as_ref()
                .filter(|a| compress && len >= a.threshold)
            {
                let deflater = self
                    .deflater
                    .get_or_insert_with(|| Box::new(Deflater::new(agreed)));
                let frame = match &msg {
                    Message::Frame(text) => deflater.compress(true, text.payload()),
                    Message::Binary(data) => deflater.compress(false, data),
                    _ => None,
                };
                if let Some(frame) = frame {
                    msg = Message::Frame(frame);
                }
            }
            self.unflushed += len;
            self.keep = keep_after(self.keep, len);
            self.recent = (self.recent + 1).min(BUSY);
            self.dirty = true;
            // A write that would block leaves the frame in tungstenite's buffer: flush it
            // before handing over more.
            if ready(ws.write(&mut io, msg))?.is_pending() {
                break;
            }
        }
        ready(ws.flush(&mut io))?.map(|()| {
            self.dirty = false;
            self.queued -= self.unflushed;
            self.unflushed = 0;
            if self.yield_after_flush {
                // Let a local peer woken by this write read it before the next one.
                std::thread::yield_now();
            }
            Ok(())
        })
    }

    /// Writes what is queued, then waits for the next message from the peer (pings, pongs and
    /// raw frames are handled by tungstenite and skipped). Each message spends a unit of the
    /// task's cooperative budget: a burst of messages already read makes the task yield to the
    /// runtime now and then (the socket reads alone spend too little: one read takes hundreds
    /// of small messages).
    pub(crate) fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<WsEvent> {
        if let Poll::Ready(Err(e)) = self.poll_write(cx) {
            debug!("WebSocket write failed: {e}");
            return Poll::Ready(WsEvent::Closed {
                error: Some(failure(&e)),
            });
        }
        // Out of budget: the task is woken again once the runtime has run the others.
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        self.read_signal.task.register(cx.waker());
        loop {
            if !self.read_signal.ready.swap(false, Ordering::AcqRel) {
                self.release_idle(cx);
                return Poll::Pending;
            }
            let ws = Self::context(&mut self.ws, self.max);
            let mut read_cx = Context::from_waker(&self.read_waker);
            let inflater = self.deflate.as_ref().map(|agreed| {
                let inflater = self
                    .inflater
                    .get_or_insert_with(|| Box::new(Inflater::new(agreed)));
                (&mut **inflater, self.max)
            });
            if self.large_reads == 0 {
                // Back to small messages: the socket is read as tungstenite asks, once what
                // was read ahead is taken.
                if self.ahead.as_ref().is_some_and(|a| a.is_empty()) {
                    self.ahead = None;
                }
            } else if inflater.is_none() && self.ahead.is_none() {
                self.ahead = Some(Box::new(ReadAhead::new()));
            }
            let mut io = Io {
                conn: &mut self.conn,
                cx: &mut read_cx,
                read: &mut self.read,
                inflater,
                ahead: self.ahead.as_deref_mut(),
            };
            let next = match ready(ws.read(&mut io)) {
                Poll::Ready(next) => next,
                // The socket wakes `read_signal` when it has more.
                Poll::Pending => {
                    self.release_idle(cx);
                    return Poll::Pending;
                }
            };
            // More may be buffered already: read again next time.
            self.read_signal.ready.store(true, Ordering::Release);
            coop.made_progress();
            let event = match next {
                Ok(msg) => {
                    self.taken += frame_size(msg.len());
                    self.keep = keep_after(self.keep, msg.len());
                    self.large_reads = keep_after(self.large_reads, msg.len());
                    self.recent = (self.recent + 1).min(BUSY);
                    match msg {
                        Message::Text(text) => match Str::from_utf8(Bytes::from(text)) {
                            Ok(s) => WsEvent::Frame(Frame::Text(s)),
                            Err(_) => {
                                self.close_frame = Some(close_frame(CloseCode::Invalid));
                                WsEvent::Closed {
                                    error: Some(failure(&"invalid UTF-8 in a text message")),
                                }
                            }
                        },
                        Message::Binary(data) => WsEvent::Frame(Frame::Binary(data)),
                        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                        Message::Close(_) => WsEvent::Closed { error: None },
                    }
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    WsEvent::Closed { error: None }
                }
                Err(e) => {
                    debug!("WebSocket error: {e}");
                    let code = match self.inflater.as_ref().and_then(|i| i.failure()) {
                        Some(code) => Some(code),
                        None => error_close_code(&e),
                    };
                    self.close_frame = code.map(close_frame);
                    WsEvent::Closed {
                        error: Some(failure(&e)),
                    }
                }
            };
            return Poll::Ready(event);
        }
    }

    /// A timer round of the session (a heartbeat at least every ping interval): the messages
    /// counted for [`BUSY`] start again from none, so that a connection that went quiet lets
    /// its state go at its next idle moment.
    pub(crate) fn tick(&mut self) {
        self.recent = 0;
    }

    /// Drops tungstenite's state (its read buffer, write buffer and configuration) and the write
    /// queue's room when the connection is idle: everything written, nothing of a frame read and
    /// not taken, the connection open, no message larger than the read buffer among the last
    /// few (see [`KEEP_AFTER_LARGE`]), and not busy (fewer than [`BUSY`] messages since the
    /// last timer round). The next read or write creates them again.
    ///
    /// Whether tungstenite's read buffer still holds part of a frame is known from the byte
    /// counts: every byte read was taken as part of a message's frame. A message's frame is
    /// counted with the shortest header its length allows, so a peer that fragments a message
    /// or pads a header makes the count fall short and its connection keeps its buffer.
    ///
    /// On a compressed connection, its read side must hold no byte and be between messages;
    /// it goes too, and so does the compression context, unless context takeover keeps them.
    fn release_idle(&mut self, cx: &mut Context<'_>) {
        let idle = self.read == self.taken
            && self.ahead.as_ref().is_none_or(|a| a.is_empty())
            && self.out.is_empty()
            && !self.dirty
            && self.keep == 0
            && self.recent < BUSY
            && self.inflater.as_ref().is_none_or(|i| i.is_idle());
        let Some(ws) = self.ws.as_mut().filter(|ws| idle && ws.can_write()) else {
            return;
        };
        // A pong tungstenite queued while reading may still wait to be written.
        let mut io = Io {
            conn: &mut self.conn,
            cx,
            read: &mut self.read,
            inflater: None,
            ahead: None,
        };
        if let Poll::Ready(Ok(())) = ready(ws.flush(&mut io)) {
            self.ws = None;
            // The next message starts small, as the state made again for it.
            self.ahead = None;
            self.large_reads = 0;
            // The room a burst made in the write queue goes too.
            self.out.release();
            if self.inflater.as_ref().is_some_and(|i| i.is_empty()) {
                self.inflater = None;
            }
            if self.deflate.as_ref().is_some_and(Deflater::droppable) {
                self.deflater = None;
            }
        }
    }

    /// Closes the WebSocket in a task of its own: what is queued is written first, then the
    /// close frame, within [`CLOSE_GRACE`].
    pub(crate) fn close(mut self) {
        tokio::spawn(async move {
            let closing = async {
                std::future::poll_fn(|cx| self.poll_write(cx)).await?;
                let mut frame = Some(self.close_frame.take());
                std::future::poll_fn(|cx| {
                    let ws = Self::context(&mut self.ws, self.max);
                    let mut io = Io {
                        conn: &mut self.conn,
                        cx,
                        read: &mut self.read,
                        inflater: None,
                        ahead: None,
                    };
                    match frame.take() {
                        Some(frame) => ready(ws.close(&mut io, frame)),
                        None => ready(ws.flush(&mut io)),
                    }
                })
                .await
            };
            match tokio::time::timeout(CLOSE_GRACE, closing).await {
                Ok(Ok(()) | Err(tungstenite::Error::ConnectionClosed)) => {}
                Ok(Err(e)) => debug!("WebSocket close failed: {e}"),
                Err(e) => debug!("WebSocket close timed out: {e}"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &'static str) -> Queued {
        (Message::Text(s.into()), s.len(), true)
    }

    fn popped(q: &mut WriteQueue) -> Vec<String> {
        std::iter::from_fn(|| q.pop_front())
            .map(|(m, _, _)| m.into_text().expect("text").to_string())
            .collect()
    }

    /// A client's (masked) text frame of `text`.
    fn masked_text(text: &str) -> Vec<u8> {
        masked(0x1, text.as_bytes())
    }

    /// A client's (masked) final frame with `opcode` and `payload`.
    fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut frame = vec![0x80 | opcode];
        match payload.len() {
            n @ 0..=125 => frame.push(0x80 | n as u8),
            n @ 126..=65535 => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        frame
    }

    /// `len` bytes that differ from one `seed` to another.
    fn bytes(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
    }

    /// A connected pair: the client's stream and the server's WebSocket.
    async fn pair() -> std::io::Result<(TcpStream, WsConn)> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let client = TcpStream::connect(listener.local_addr()?).await?;
        let (server, _) = listener.accept().await?;
        let io = WsIo::Tcp {
            early: Bytes::new(),
            stream: server,
        };
        Ok((client, WsConn::new(io, 1 << 20, false, None)))
    }

    async fn next_frame(ws: &mut WsConn) -> Frame {
        match std::future::poll_fn(|cx| ws.poll_event(cx)).await {
            WsEvent::Frame(frame) => frame,
            other => panic!("{other:?}"),
        }
    }

    fn binary(frame: Frame) -> Bytes {
        match frame {
            Frame::Binary(b) => b,
            other => panic!("{other:?}"),
        }
    }

    /// After a large message, the next large one is read from the socket in one read, not one
    /// per 4 KiB of tungstenite's read buffer.
    #[tokio::test]
    async fn a_large_message_after_a_large_one_takes_few_socket_reads() -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt as _;
        let (mut client, mut ws) = pair().await?;
        // 40 KiB: the whole frame fits in the socket's receive window, so it is all there
        // when the server reads.
        let first = bytes(40 * 1024, 1);
        client.write_all(&masked(0x2, &first)).await?;
        assert_eq!(binary(next_frame(&mut ws).await), first);
        let second = bytes(40 * 1024, 2);
        client.write_all(&masked(0x2, &second)).await?;
        let before = SOCKET_READS.with(|n| n.get());
        assert_eq!(binary(next_frame(&mut ws).await), second);
        let reads = SOCKET_READS.with(|n| n.get()) - before;
        assert!(reads <= 2, "{reads} socket reads for a 40 KiB message");
        Ok(())
    }

    /// Messages read ahead are handed over whole and in order: several in one read, one
    /// larger than a read, and the small ones after, until the connection reads as tungstenite
    /// asks again.
    #[tokio::test]
    async fn messages_read_ahead_come_whole_and_in_order() -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt as _;
        let (mut client, mut ws) = pair().await?;
        let large = bytes(10 * 1024, 3);
        let huge = bytes(3 * READ_AHEAD + 17, 4);
        let mut all = masked(0x2, &large);
        all.extend(masked_text("a"));
        all.extend(masked(0x2, &large));
        all.extend(masked_text("b"));
        all.extend(masked(0x2, &huge));
        for i in 0..KEEP_AFTER_LARGE + 1 {
            all.extend(masked_text(&format!("s{i}")));
        }
        // Written by another task: more than the socket takes before the server reads.
        let writer = tokio::spawn(async move {
            client.write_all(&all).await?;
            Ok::<_, std::io::Error>(client)
        });
        assert_eq!(binary(next_frame(&mut ws).await), large);
        for (text, payload) in [("a", &large), ("b", &huge)] {
            assert_eq!(next_frame(&mut ws).await, Frame::Text(text.into()));
            assert!(ws.ahead.is_some(), "reading ahead after a large message");
            assert_eq!(binary(next_frame(&mut ws).await), payload.as_slice());
        }
        for i in 0..KEEP_AFTER_LARGE + 1 {
            let text = format!("s{i}");
            assert_eq!(next_frame(&mut ws).await, Frame::Text(text.as_str().into()));
        }
        let mut client = writer.await??;
        // Small messages since: the next read lets the read-ahead buffer go.
        one_message(&mut ws, &mut client, "after").await?;
        assert!(
            ws.ahead.is_none(),
            "small messages read as tungstenite asks"
        );
        Ok(())
    }

    /// Sends `text` from the client, reads it on `ws`, then polls `ws` once more with nothing
    /// to read (where an idle connection lets its state go).
    async fn one_message(
        ws: &mut WsConn,
        client: &mut TcpStream,
        text: &str,
    ) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt as _;
        client.write_all(&masked_text(text)).await?;
        match std::future::poll_fn(|cx| ws.poll_event(cx)).await {
            WsEvent::Frame(Frame::Text(t)) => assert_eq!(&*t, text),
            other => panic!("{other:?}"),
        }
        let idle = std::future::poll_fn(|cx| Poll::Ready(ws.poll_event(cx).is_pending())).await;
        assert!(idle, "nothing more to read");
        Ok(())
    }

    #[tokio::test]
    async fn a_busy_connection_keeps_its_state_until_a_quiet_timer_round() -> std::io::Result<()> {
        let (mut client, mut ws) = pair().await?;
        // A few messages: the state goes whenever the connection is idle.
        for i in 0..3 {
            one_message(&mut ws, &mut client, &format!("m{i}")).await?;
            assert!(ws.ws.is_none(), "quiet after message {i}");
        }
        // Busy: kept between messages.
        for i in 3..BUSY + 2 {
            one_message(&mut ws, &mut client, &format!("m{i}")).await?;
        }
        assert!(ws.ws.is_some(), "a busy connection keeps its state");
        // A timer round, then nothing: the state goes at the next idle poll.
        ws.tick();
        let idle = std::future::poll_fn(|cx| Poll::Ready(ws.poll_event(cx).is_pending())).await;
        assert!(idle && ws.ws.is_none(), "quiet since the timer round");
        // And the connection still reads.
        one_message(&mut ws, &mut client, "after").await
    }

    #[test]
    fn the_write_queue_keeps_its_order_and_gives_back_a_burst_room() {
        let mut q = WriteQueue::default();
        q.push_back(text("a"));
        assert_eq!(
            q.rest.capacity(),
            0,
            "one message waiting allocates nothing"
        );
        q.push_back(text("b"));
        assert_eq!(q.pop_front().map(|(_, len, _)| len), Some(1));
        // The first slot is free, but an older message waits: a new one goes behind it.
        q.push_back(text("c"));
        assert_eq!(popped(&mut q), ["b", "c"]);
        assert!(q.is_empty());
        assert!(q.rest.capacity() > 0);
        q.release();
        assert_eq!(q.rest.capacity(), 0);
    }
}
