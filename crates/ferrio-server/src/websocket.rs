//! A WebSocket as its session task holds it: the task reads frames from it and writes the
//! session's frames to it itself, without a reader or writer task of its own.
//!
//! Writes are queued here and handed to tungstenite when the socket can take them; the queue
//! counts its bytes, so the session can drop volatile packets and close an overloaded session
//! (see the limits in [`crate::transport`]).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use bytes::Bytes;
use ferrio_proto::engine::Frame;
use ferrio_proto::Str;
use futures_util::task::AtomicWaker;
use futures_util::{Sink, Stream};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;
use tracing::debug;

/// The WebSocket read buffer of each connection, in bytes. tungstenite's default (128 KiB) is
/// allocated per connection and zero-filled before every read; larger messages grow it as
/// they come.
const READ_BUFFER: usize = 4 * 1024;

/// How long a closing WebSocket may take to write what is queued and its close frame before it
/// is dropped (a peer that stopped reading must not keep it forever).
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// What a WebSocket has for its session.
#[derive(Debug)]
pub(crate) enum WsEvent {
    /// A message from the peer.
    Frame(Frame),
    /// The WebSocket is done: closed by the peer (`error` false) or failed (`error` true).
    /// The session must drop it (with [`WsConn::close`]).
    Closed { error: bool },
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

/// An open WebSocket owned by a session task.
pub(crate) struct WsConn {
    stream: WebSocketStream<TokioIo<Upgraded>>,
    read_signal: Arc<ReadSignal>,
    /// `read_signal` as a waker, given to the read side.
    read_waker: Waker,
    /// Messages not yet handed to tungstenite, with their payload sizes.
    out: VecDeque<(Message, usize)>,
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
}

impl WsConn {
    /// Wraps an upgraded connection; `max` bounds a message and a frame (`max_http_buffer_size`).
    pub(crate) async fn new(upgraded: Upgraded, max: usize, yield_after_flush: bool) -> WsConn {
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .max_message_size(Some(max))
            .max_frame_size(Some(max));
        let stream =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        let read_signal = Arc::new(ReadSignal::default());
        // Nothing was read yet: the first poll reads.
        read_signal.ready.store(true, Ordering::Relaxed);
        WsConn {
            stream,
            read_waker: Waker::from(read_signal.clone()),
            read_signal,
            out: VecDeque::new(),
            queued: 0,
            unflushed: 0,
            dirty: false,
            close_frame: None,
            yield_after_flush,
        }
    }

    /// Queues a frame; [`WsConn::poll_event`] (or [`WsConn::flush_now`]) writes it.
    pub(crate) fn send(&mut self, frame: Frame) {
        let (msg, len) = match frame {
            Frame::Text(s) => {
                let len = s.len();
                match tungstenite::Utf8Bytes::try_from(s.into_bytes()) {
                    Ok(text) => (Message::Text(text), len),
                    Err(_) => return,
                }
            }
            Frame::Binary(b) => {
                let len = b.len();
                (Message::Binary(b), len)
            }
        };
        self.queued += len;
        self.out.push_back((msg, len));
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
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), tungstenite::Error>> {
        while let Some((_, len)) = self.out.front() {
            let len = *len;
            match Pin::new(&mut self.stream).poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
            let Some((msg, _)) = self.out.pop_front() else {
                break;
            };
            self.unflushed += len;
            self.dirty = true;
            Pin::new(&mut self.stream).start_send(msg)?;
        }
        if self.dirty {
            match Pin::new(&mut self.stream).poll_flush(cx) {
                Poll::Ready(Ok(())) => {
                    self.dirty = false;
                    self.queued -= self.unflushed;
                    self.unflushed = 0;
                    if self.yield_after_flush {
                        // Let a local peer woken by this write read it before the next one.
                        std::thread::yield_now();
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Writes what is queued, then waits for the next message from the peer (pings, pongs and
    /// raw frames are handled by tungstenite and skipped).
    pub(crate) fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<WsEvent> {
        if let Poll::Ready(Err(e)) = self.poll_write(cx) {
            debug!("WebSocket write failed: {e}");
            return Poll::Ready(WsEvent::Closed { error: true });
        }
        self.read_signal.task.register(cx.waker());
        loop {
            if !self.read_signal.ready.swap(false, Ordering::AcqRel) {
                return Poll::Pending;
            }
            let mut read_cx = Context::from_waker(&self.read_waker);
            let next = match Pin::new(&mut self.stream).poll_next(&mut read_cx) {
                Poll::Ready(next) => next,
                // The socket wakes `read_signal` when it has more.
                Poll::Pending => return Poll::Pending,
            };
            // More may be buffered already: read again next time.
            self.read_signal.ready.store(true, Ordering::Release);
            let event = match next {
                Some(Ok(Message::Text(text))) => match Str::from_utf8(Bytes::from(text)) {
                    Ok(s) => WsEvent::Frame(Frame::Text(s)),
                    Err(_) => WsEvent::Closed { error: true },
                },
                Some(Ok(Message::Binary(data))) => WsEvent::Frame(Frame::Binary(data)),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Close(_))) | None => WsEvent::Closed { error: false },
                Some(Err(e)) => {
                    debug!("WebSocket error: {e}");
                    if matches!(e, tungstenite::Error::Capacity(_)) {
                        self.close_frame = Some(CloseFrame {
                            code: CloseCode::Size,
                            reason: "".into(),
                        });
                    }
                    WsEvent::Closed { error: true }
                }
            };
            return Poll::Ready(event);
        }
    }

    /// Closes the WebSocket in a task of its own: what is queued is written first, then the
    /// close frame, within [`CLOSE_GRACE`].
    pub(crate) fn close(mut self) {
        tokio::spawn(async move {
            let closing = async {
                std::future::poll_fn(|cx| self.poll_write(cx)).await?;
                self.stream.close(self.close_frame.take()).await
            };
            if let Err(e) = tokio::time::timeout(CLOSE_GRACE, closing).await {
                debug!("WebSocket close timed out: {e}");
            }
        });
    }
}
