//! Ferrio's own HTTP/1.1 server connection, for [`crate::Ferrio::serve`] and
//! [`crate::engine::Engine::serve`]: what hyper does for them, with a read buffer that exists
//! only while bytes are pending. A long poll that waits (most of a polling client's life) holds
//! the socket and its handler's future, and no buffer (hyper keeps 8 KiB to read and 8 KiB to
//! write per connection).
//!
//! One request at a time (pipelined requests wait in the buffer): the head is parsed with
//! `httparse` (at most `max_head` bytes and [`MAX_HEADERS`] lines, else 431; malformed, 400),
//! the body (`Content-Length` or chunked) is handed to the handler as it asks for it (with
//! `100 Continue` first if the client expects it), and the client closing the connection while
//! the handler waits (with no body left to read) drops the handler's future, as hyper does.
//! Keep-alive follows HTTP/1.0 and 1.1 (`Connection: close`, `keep-alive`); a body the
//! handler did not read to its end is skipped if it is already here, else the connection
//! closes. A `101 Switching Protocols` answer to a request asking for an upgrade hands the
//! stream, with the bytes read past the head, to the upgrade's receiver (see [`on_upgrade`]).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, BufMut as _, Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body::Frame;
use tokio::io::{AsyncWrite as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tracing::debug;

use crate::http::{has_token, Body};
use crate::transport::RemoteAddr;
use crate::websocket::WsIo;

/// The most header lines a request head may have (hyper's limit): more is answered 431.
pub(crate) const MAX_HEADERS: usize = 100;

/// The first read of a request head, and a read while a handler waits (the next pipelined
/// request, or the end of the stream), in bytes.
const HEAD_READ: usize = 2048;

/// A read of a request body through the stack, in bytes (see [`try_read`]).
const BODY_READ: usize = 8192;

/// The largest read of a request body, in bytes, while a body larger than [`BODY_READ`] arrives
/// (into the buffer, which is let go when the body has been handed over).
const LARGE_BODY_READ: usize = 64 * 1024;

/// The longest chunk-size line (with its extensions) of a chunked body.
const MAX_CHUNK_LINE: usize = 1024;

/// A body longer than this that the handler did not read is not skipped: the connection closes.
const MAX_SKIP: u64 = 64 * 1024;

/// How a connection is served.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The most bytes of a request head on the wire (431 beyond), trailers of a chunked body
    /// included.
    pub(crate) max_head: usize,
    /// Time a client has to send a request head, from the moment the server waits for it.
    pub(crate) header_read_timeout: Duration,
}

/// Serves `stream` until it closes, with `handler` for each request.
pub(crate) async fn serve_connection<F, Fut>(
    stream: TcpStream,
    addr: SocketAddr,
    handler: &F,
    limits: Limits,
) where
    F: Fn(Request<RequestBody>) -> Fut,
    Fut: Future<Output = Response<Body>>,
{
    let mut conn = Conn {
        stream,
        buf: BytesMut::new(),
    };
    match conn.serve(addr, handler, limits).await {
        Ok(Some(upgrade)) => {
            let Conn { stream, buf } = conn;
            // (A copy: the buffer is mostly room, which the WebSocket would keep.)
            let early = Bytes::copy_from_slice(&buf);
            let _ = upgrade.send(WsIo::Tcp { early, stream });
        }
        Ok(None) => {
            let _ = conn.stream.shutdown().await;
        }
        Err(e) => {
            debug!(%addr, "connection ended: {e}");
            let _ = conn.stream.shutdown().await;
        }
    }
}

/// Why reading a request head failed.
enum HeadError {
    /// Longer than the limit: 431.
    TooLarge,
    /// Not HTTP/1.x: 400.
    Malformed,
    /// The connection failed or closed in the middle of a head (nothing to answer).
    Io(io::Error),
}

struct Conn {
    stream: TcpStream,
    /// Bytes read and not used yet; no allocation while there are none.
    buf: BytesMut,
}

/// What the connection learnt from a head, besides the request.
struct Head {
    request: Request<()>,
    framing: Decoder,
    keep_alive: bool,
    expects_continue: bool,
    wants_upgrade: bool,
}

/// What follows an answer.
enum After {
    /// The next request.
    KeepAlive,
    /// The connection closes.
    Close,
    /// The connection was upgraded: the stream goes to the upgrade.
    Upgrade(oneshot::Sender<WsIo>),
}

impl Conn {
    /// Serves requests until the connection is to close (`None`) or was upgraded (the upgrade
    /// waiting for the stream).
    ///
    /// (Each step is an `async fn` of its own, whose locals live in it: the connection's task
    /// is as large as its largest step, which a waiting long poll pays for.)
    async fn serve<F, Fut>(
        &mut self,
        addr: SocketAddr,
        handler: &F,
        limits: Limits,
    ) -> io::Result<Option<oneshot::Sender<WsIo>>>
    where
        F: Fn(Request<RequestBody>) -> Fut,
        Fut: Future<Output = Response<Body>>,
    {
        loop {
            let exchange = match self.next_head(limits).await? {
                Some(head) => self.exchange(head, addr, handler, limits),
                None => return Ok(None),
            };
            match exchange.await? {
                After::KeepAlive => {}
                After::Close => return Ok(None),
                After::Upgrade(tx) => return Ok(Some(tx)),
            }
            if self.buf.is_empty() {
                // No pipelined request: let the buffer go while the next one is awaited.
                self.buf = BytesMut::new();
            }
        }
    }

    /// The next request head, within the time limit; `None` if the connection is to close
    /// (the client closed it, or its head was refused).
    async fn next_head(&mut self, limits: Limits) -> io::Result<Option<Head>> {
        let read =
            tokio::time::timeout(limits.header_read_timeout, self.read_head(limits.max_head));
        let status = match read.await {
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "head timeout")),
            Ok(Ok(head)) => return Ok(head),
            Ok(Err(HeadError::Io(e))) => return Err(e),
            Ok(Err(HeadError::TooLarge)) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Ok(Err(HeadError::Malformed)) => StatusCode::BAD_REQUEST,
        };
        self.refuse(status).await?;
        Ok(None)
    }

    /// Serves the request of `head`: runs the handler, and writes its answer.
    ///
    /// (Not an `async fn`: its future would keep room for `head` and for the request made of
    /// it, moved into the handler's future long before it ends.)
    fn exchange<'a, F, Fut>(
        &'a mut self,
        head: Head,
        addr: SocketAddr,
        handler: &F,
        limits: Limits,
    ) -> impl Future<Output = io::Result<After>> + 'a
    where
        F: Fn(Request<RequestBody>) -> Fut,
        Fut: Future<Output = Response<Body>> + 'a,
    {
        let Head {
            request,
            framing,
            keep_alive,
            expects_continue,
            wants_upgrade,
        } = head;
        let version = request.version();
        let is_head = request.method() == Method::HEAD;
        let (mut parts, ()) = request.into_parts();
        parts.extensions.insert(RemoteAddr(addr));
        let upgrade = wants_upgrade.then(|| {
            let (tx, rx) = oneshot::channel();
            parts
                .extensions
                .insert(UpgradeSlot(Arc::new(Mutex::new(Some(rx)))));
            tx
        });
        let (body, shared) = RequestBody::new(&framing);
        let mut exchange = Exchange {
            decoder: framing,
            shared,
            continue_pending: expects_continue,
            continue_written: 0,
            max_trailers: limits.max_head,
        };
        exchange.take_whole_body(&mut self.buf);
        let future = handler(Request::from_parts(parts, body));
        async move {
            let (out, rest, keep_alive, upgrading) = {
                let mut future = std::pin::pin!(future);
                let response = std::future::poll_fn(|cx| loop {
                    if let Poll::Ready(response) = future.as_mut().poll(cx) {
                        return Poll::Ready(Ok(response));
                    }
                    match exchange.poll_io(self, cx) {
                        // The handler's body has something for it: polled again at once.
                        Poll::Ready(Ok(())) => {}
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Pending => return Poll::Pending,
                    }
                })
                .await?;
                // The handler's body is gone with its future: skip what is left of it if it
                // is here.
                exchange.shared = None;
                let body_done = exchange.skip_rest(self) && !exchange.decoder.failed();
                let upgrading = upgrade.is_some()
                    && response.status() == StatusCode::SWITCHING_PROTOCOLS
                    && body_done;
                let keep_alive = keep_alive && body_done;
                let (out, rest, keep_alive) =
                    encode_response(response, version, is_head, keep_alive);
                (out, rest, keep_alive, upgrading)
            };
            self.stream.write_all(&out).await?;
            if let Some(rest) = rest {
                self.stream.write_all(&rest).await?;
            }
            Ok(match upgrade {
                Some(tx) if upgrading => After::Upgrade(tx),
                _ if keep_alive => After::KeepAlive,
                _ => After::Close,
            })
        }
    }

    /// Answers `status` (a request that could not be read) and closes.
    async fn refuse(&mut self, status: StatusCode) -> io::Result<()> {
        let mut parts = Response::new(()).into_parts().0;
        parts.status = status;
        let out = response_head(&parts, Version::HTTP_11, 0, false, true);
        self.stream.write_all(&out).await
    }

    /// Reads at most `want` bytes into the buffer; 0 at the end of the stream.
    async fn read_more(&mut self, want: usize) -> io::Result<usize> {
        loop {
            self.stream.readable().await?;
            match try_read(&self.stream, &mut self.buf, want) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return r,
            }
        }
    }

    /// The next request head: `None` if the client closed the connection between requests.
    async fn read_head(&mut self, max_head: usize) -> Result<Option<Head>, HeadError> {
        loop {
            if !self.buf.is_empty() {
                match parse_head(&self.buf) {
                    Ok(Some((len, head))) => {
                        self.buf.advance(len);
                        if self.buf.is_empty() {
                            // Nothing past the head (the rule): the handler may wait long, a
                            // long poll does, and the connection holds no buffer meanwhile.
                            self.buf = BytesMut::new();
                        }
                        return Ok(Some(head));
                    }
                    Ok(None) if self.buf.len() > max_head => return Err(HeadError::TooLarge),
                    Ok(None) => {}
                    Err(e) => return Err(e),
                }
            }
            // A short read first (most heads are a few hundred bytes), then up to a byte past
            // the limit.
            let want = if self.buf.is_empty() {
                HEAD_READ
            } else {
                max_head.saturating_add(1).saturating_sub(self.buf.len())
            };
            match self.read_more(want).await {
                Ok(0) if self.buf.is_empty() => return Ok(None),
                Ok(0) => {
                    return Err(HeadError::Io(io::ErrorKind::UnexpectedEof.into()));
                }
                Ok(_) => {}
                Err(e) => return Err(HeadError::Io(e)),
            }
        }
    }
}

/// The head at the start of `buf` with its length, `None` if it is not complete.
fn parse_head(buf: &[u8]) -> Result<Option<(usize, Head)>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Malformed),
    };
    let version = match req.version {
        Some(0) => Version::HTTP_10,
        Some(1) => Version::HTTP_11,
        _ => return Err(HeadError::Malformed),
    };
    let method = Method::from_bytes(req.method.unwrap_or("").as_bytes())
        .map_err(|_| HeadError::Malformed)?;
    let uri = http::Uri::try_from(req.path.unwrap_or("")).map_err(|_| HeadError::Malformed)?;
    let mut map = http::HeaderMap::with_capacity(req.headers.len());
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut transfer_encoding = false;
    let (mut close, mut keep_alive, mut upgrade, mut expects_continue) =
        (false, false, false, false);
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| HeadError::Malformed)?;
        let value = HeaderValue::from_bytes(h.value).map_err(|_| HeadError::Malformed)?;
        if name == header::CONTENT_LENGTH {
            let n = parse_length(h.value).ok_or(HeadError::Malformed)?;
            if length.is_some_and(|l| l != n) {
                return Err(HeadError::Malformed);
            }
            length = Some(n);
        } else if name == header::TRANSFER_ENCODING {
            transfer_encoding = true;
            // Chunked must be the last coding.
            chunked = h
                .value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name == header::CONNECTION {
            close |= has_token(h.value, b"close");
            keep_alive |= has_token(h.value, b"keep-alive");
            upgrade |= has_token(h.value, b"upgrade");
        } else if name == header::EXPECT {
            expects_continue |= h.value.eq_ignore_ascii_case(b"100-continue");
        }
        map.append(name, value);
    }
    let framing = if transfer_encoding {
        // (With a Content-Length too, the request may be smuggling one: refused.)
        if !chunked || length.is_some() || version == Version::HTTP_10 {
            return Err(HeadError::Malformed);
        }
        Decoder::Chunked(Chunked::Size)
    } else {
        Decoder::Length(length.unwrap_or(0))
    };
    let keep_alive = match version {
        Version::HTTP_11 => !close,
        _ => keep_alive && !close,
    };
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = map;
    let expects_continue =
        expects_continue && version == Version::HTTP_11 && !matches!(framing, Decoder::Length(0));
    Ok(Some((
        len,
        Head {
            request,
            framing,
            keep_alive,
            expects_continue,
            wants_upgrade: upgrade,
        },
    )))
}

/// A `Content-Length` value: digits only.
fn parse_length(value: &[u8]) -> Option<u64> {
    let value = value.trim_ascii();
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// The bytes of a response body.
fn full_bytes(body: Body) -> Bytes {
    use http_body::Body as _;
    let mut body = std::pin::pin!(body);
    let mut cx = Context::from_waker(Waker::noop());
    match body.as_mut().poll_frame(&mut cx) {
        Poll::Ready(Some(Ok(frame))) => frame.into_data().unwrap_or_default(),
        _ => Bytes::new(),
    }
}

/// `response` on the wire: its head with as much of its body as fits in one write, the rest of
/// the body, and whether the connection stays open after it (`keep_alive`, unless the response
/// says `Connection: close`; a 101 that upgrades nothing closes it too: the client took it as
/// the end of HTTP).
fn encode_response(
    response: Response<Body>,
    version: Version,
    is_head: bool,
    keep_alive: bool,
) -> (Vec<u8>, Option<Bytes>, bool) {
    let (parts, body) = response.into_parts();
    let body = full_bytes(body);
    let upgrade = parts.status == StatusCode::SWITCHING_PROTOCOLS;
    let closes = parts
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .any(|v| has_token(v.as_bytes(), b"close"));
    let keep_alive = keep_alive && !closes && !upgrade;
    let mut out = response_head(&parts, version, body.len(), keep_alive || upgrade, !upgrade);
    let bare = matches!(parts.status.as_u16(), 100..=199 | 204 | 304);
    if is_head || bare || body.is_empty() {
        return (out, None, keep_alive);
    }
    if body.len() <= BODY_READ {
        out.extend_from_slice(&body);
        return (out, None, keep_alive);
    }
    (out, Some(body), keep_alive)
}

/// A response's status line and headers, with `Content-Length`, `Date` and the connection's
/// fate added as needed.
fn response_head(
    parts: &http::response::Parts,
    version: Version,
    body_len: usize,
    keep_alive: bool,
    with_length: bool,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + body_len.min(BODY_READ));
    out.extend_from_slice(if version == Version::HTTP_10 {
        b"HTTP/1.0 "
    } else {
        b"HTTP/1.1 "
    });
    out.extend_from_slice(parts.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let h = &parts.headers;
    for (name, value) in h {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let status = parts.status.as_u16();
    if with_length
        && !matches!(status, 100..=199 | 204 | 304)
        && !h.contains_key(header::CONTENT_LENGTH)
    {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(itoa::Buffer::new().format(body_len).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if status != 101 && !h.contains_key(header::CONNECTION) {
        if !keep_alive && version == Version::HTTP_11 {
            out.extend_from_slice(b"connection: close\r\n");
        } else if keep_alive && version == Version::HTTP_10 {
            out.extend_from_slice(b"connection: keep-alive\r\n");
        }
    }
    if !h.contains_key(header::DATE) {
        out.extend_from_slice(b"date: ");
        date(&mut out);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Appends the current date in the HTTP format (made once a second per thread).
fn date(out: &mut Vec<u8>) {
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};
    thread_local! {
        static CACHE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHE.with_borrow_mut(|(at, text)| {
        if *at != second {
            *at = second;
            *text = httpdate::fmt_http_date(now);
        }
        out.extend_from_slice(text.as_bytes());
    });
}

/// How the rest of a request body is framed.
#[derive(Debug, Clone, Copy)]
enum Decoder {
    /// This many bytes are left.
    Length(u64),
    /// A chunked body, at this point.
    Chunked(Chunked),
    /// The body ended (chunked, after its trailers).
    Done,
    /// The body was malformed: the connection closes after the answer.
    Failed,
}

#[derive(Debug, Clone, Copy)]
enum Chunked {
    /// At a chunk-size line.
    Size,
    /// In a chunk: this many bytes left.
    Data(u64),
    /// At the line end after a chunk.
    DataEnd,
    /// In the trailers: this many bytes of them read.
    Trailers(usize),
}

/// What the decoder made of the buffer.
enum Decoded {
    Data(Bytes),
    NeedMore,
    End,
}

impl Decoder {
    fn done(&self) -> bool {
        matches!(self, Decoder::Length(0) | Decoder::Done)
    }

    /// How much to read at once for the rest of the body: what is left of a known length, up
    /// to [`LARGE_BODY_READ`].
    fn read_size(&self) -> usize {
        match self {
            Decoder::Length(left) => usize::try_from(*left)
                .unwrap_or(usize::MAX)
                .clamp(1, LARGE_BODY_READ),
            Decoder::Chunked(Chunked::Data(left)) => usize::try_from(*left)
                .unwrap_or(usize::MAX)
                .clamp(BODY_READ, LARGE_BODY_READ),
            _ => BODY_READ,
        }
    }

    fn failed(&self) -> bool {
        matches!(self, Decoder::Failed)
    }

    /// Takes the next piece of body out of `buf`; an error for a malformed chunked body
    /// (after which the decoder has failed).
    fn decode(&mut self, buf: &mut BytesMut, max_trailers: usize) -> Result<Decoded, &'static str> {
        let r = self.decode_inner(buf, max_trailers);
        if r.is_err() {
            *self = Decoder::Failed;
        }
        r
    }

    fn decode_inner(
        &mut self,
        buf: &mut BytesMut,
        max_trailers: usize,
    ) -> Result<Decoded, &'static str> {
        loop {
            match self {
                Decoder::Done | Decoder::Length(0) => return Ok(Decoded::End),
                Decoder::Failed => return Err("malformed body"),
                Decoder::Length(left) => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let n = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                    *left -= n as u64;
                    return Ok(Decoded::Data(buf.split_to(n).freeze()));
                }
                Decoder::Chunked(Chunked::Size) => match httparse::parse_chunk_size(buf) {
                    Ok(httparse::Status::Complete((len, size))) => {
                        buf.advance(len);
                        *self = Decoder::Chunked(if size == 0 {
                            Chunked::Trailers(0)
                        } else {
                            Chunked::Data(size)
                        });
                    }
                    Ok(httparse::Status::Partial) if buf.len() > MAX_CHUNK_LINE => {
                        return Err("chunk size line too long")
                    }
                    Ok(httparse::Status::Partial) => return Ok(Decoded::NeedMore),
                    Err(_) => return Err("invalid chunk size"),
                },
                Decoder::Chunked(Chunked::Data(left)) => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let n = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                    *left -= n as u64;
                    if *left == 0 {
                        *self = Decoder::Chunked(Chunked::DataEnd);
                    }
                    return Ok(Decoded::Data(buf.split_to(n).freeze()));
                }
                Decoder::Chunked(Chunked::DataEnd) => {
                    if buf.len() < 2 {
                        return Ok(Decoded::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err("chunk without its line end");
                    }
                    buf.advance(2);
                    *self = Decoder::Chunked(Chunked::Size);
                }
                Decoder::Chunked(Chunked::Trailers(seen)) => {
                    let Some(end) = buf.iter().position(|&b| b == b'\n') else {
                        if seen.saturating_add(buf.len()) > max_trailers {
                            return Err("trailers too long");
                        }
                        return Ok(Decoded::NeedMore);
                    };
                    let line = buf.split_to(end + 1);
                    *seen = seen.saturating_add(line.len());
                    if *seen > max_trailers {
                        return Err("trailers too long");
                    }
                    if line.as_ref() == b"\r\n" || line.as_ref() == b"\n" {
                        *self = Decoder::Done;
                    }
                }
            }
        }
    }
}

/// One request in progress: its body as the connection delivers it.
struct Exchange {
    decoder: Decoder,
    /// What the connection shares with the handler's body (`None` once the handler is done,
    /// or for a request without a body).
    shared: Option<Arc<Mutex<BodyState>>>,
    /// `100 Continue` is to be written before the body is read.
    continue_pending: bool,
    /// Bytes of `100 Continue` written.
    continue_written: usize,
    max_trailers: usize,
}

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

impl Exchange {
    /// The connection's side while the handler waits: reads the body it asks for, and watches
    /// for the client closing the connection. `Ready(Ok)` when the body, read in this task,
    /// has something new for the handler (which is to be polled again); `Ready(Err)` ends the
    /// connection (the handler's future is dropped).
    fn poll_io(&mut self, conn: &mut Conn, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let wanted = match &self.shared {
                Some(shared) => {
                    let mut state = lock(shared);
                    if !state.conn.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        state.conn = Some(cx.waker().clone());
                    }
                    state.wanted && state.chunk.is_none() && !state.ended
                }
                None => false,
            };
            if wanted {
                if self.continue_pending {
                    while self.continue_written < CONTINUE.len() {
                        let n = match Pin::new(&mut conn.stream)
                            .poll_write(cx, &CONTINUE[self.continue_written..])
                        {
                            Poll::Ready(r) => r?,
                            Poll::Pending => return Poll::Pending,
                        };
                        self.continue_written += n;
                    }
                    self.continue_pending = false;
                }
                let result = self.decoder.decode(&mut conn.buf, self.max_trailers);
                if conn.buf.is_empty() && conn.buf.capacity() > 0 {
                    // (The chunk handed over keeps its part of the allocation.)
                    conn.buf = BytesMut::new();
                }
                let delivered = match result {
                    Ok(Decoded::Data(data)) => Some(Ok(Some(data))),
                    Ok(Decoded::End) => Some(Ok(None)),
                    Ok(Decoded::NeedMore) => None,
                    Err(e) => Some(Err(e)),
                };
                if let Some(delivered) = delivered {
                    if self.deliver(delivered, cx) {
                        return Poll::Ready(Ok(()));
                    }
                    continue;
                }
                match poll_read(conn, cx, self.decoder.read_size()) {
                    Poll::Ready(Ok(0)) => {
                        self.decoder = Decoder::Failed;
                        let e = "the connection closed before the end of the body";
                        if self.deliver(Err(e), cx) {
                            return Poll::Ready(Ok(()));
                        }
                    }
                    Poll::Ready(Ok(_)) => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            } else if self.decoder.done() && conn.buf.is_empty() {
                // Nothing left to read for this request: a read can only be the next
                // request, or the end of the connection.
                return match poll_read(conn, cx, HEAD_READ) {
                    Poll::Ready(Ok(0)) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "client closed the connection while its request was handled",
                    ))),
                    Poll::Ready(Ok(_)) => Poll::Pending,
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                };
            } else {
                return Poll::Pending;
            }
        }
    }

    /// A body of known length that arrived whole with its head (the usual small POST) is
    /// handed over at once, ended: the handler reads it without waiting for this task.
    fn take_whole_body(&mut self, buf: &mut BytesMut) {
        let (Some(shared), Decoder::Length(left)) = (&self.shared, &self.decoder) else {
            return;
        };
        if self.continue_pending || (buf.len() as u64) < *left {
            return;
        }
        let Ok(Decoded::Data(data)) = self.decoder.decode(buf, self.max_trailers) else {
            return;
        };
        if buf.is_empty() {
            *buf = BytesMut::new();
        }
        let mut state = lock(shared);
        state.chunk = Some(data);
        state.ended = true;
    }

    /// Hands the handler's body its next piece: data, its end (`None`) or an error. True if
    /// the body is read in this task (woken by `cx`), which is to poll the handler again.
    fn deliver(&mut self, piece: Result<Option<Bytes>, &'static str>, cx: &Context<'_>) -> bool {
        let Some(shared) = &self.shared else {
            return false;
        };
        let mut state = lock(shared);
        match piece {
            Ok(Some(data)) => state.chunk = Some(data),
            Ok(None) => state.ended = true,
            Err(e) => {
                state.error = Some(e);
                state.ended = true;
            }
        }
        state.wanted = false;
        match state.reader.take() {
            Some(w) if w.will_wake(cx.waker()) => true,
            Some(w) => {
                w.wake();
                false
            }
            None => false,
        }
    }

    /// Skips the rest of the body the handler left, if it is in the buffer already (or a
    /// short read away); true if the body was read to its end.
    fn skip_rest(&mut self, conn: &mut Conn) -> bool {
        let mut skipped = 0u64;
        loop {
            match self.decoder.decode(&mut conn.buf, self.max_trailers) {
                Ok(Decoded::End) => return true,
                Ok(Decoded::Data(data)) => {
                    skipped += data.len() as u64;
                    if skipped > MAX_SKIP {
                        return false;
                    }
                }
                Ok(Decoded::NeedMore) => match try_read(&conn.stream, &mut conn.buf, BODY_READ) {
                    Ok(n) if n > 0 => {}
                    _ => return false,
                },
                Err(_) => return false,
            }
        }
    }
}

/// Reads what the socket has into the buffer (with room for `want` more bytes).
fn poll_read(conn: &mut Conn, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<usize>> {
    loop {
        match conn.stream.poll_read_ready(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
        match try_read(&conn.stream, &mut conn.buf, want) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            r => return Poll::Ready(r),
        }
    }
}

/// Reads at most `want` bytes from `stream` into `buf`. Up to 8 KiB, through the stack: a read
/// that finds nothing (readiness is often stale) allocates nothing, and the buffer grows by what
/// arrived only. Larger reads (of a large body, while it arrives) go to the buffer itself.
fn try_read(stream: &TcpStream, buf: &mut BytesMut, want: usize) -> io::Result<usize> {
    if want > BODY_READ {
        buf.reserve(want);
        let mut room = (&mut *buf).limit(want);
        return stream.try_read_buf(&mut room);
    }
    if want <= HEAD_READ {
        // (The array is zeroed first: no larger than needed.)
        let mut chunk = [0u8; HEAD_READ];
        let n = stream.try_read(&mut chunk[..want.max(1)])?;
        buf.extend_from_slice(&chunk[..n]);
        return Ok(n);
    }
    let mut chunk = [0u8; BODY_READ];
    let n = stream.try_read(&mut chunk[..want.min(BODY_READ)])?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

fn lock(shared: &Mutex<BodyState>) -> std::sync::MutexGuard<'_, BodyState> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a request's body and its connection share.
#[derive(Default)]
struct BodyState {
    /// The next piece of the body, read and not taken yet.
    chunk: Option<Bytes>,
    /// No more data will come (an error may still be there to take).
    ended: bool,
    error: Option<&'static str>,
    /// The body asked for data.
    wanted: bool,
    /// The body's reader, waiting for data.
    reader: Option<Waker>,
    /// The connection, waiting for the body to ask.
    conn: Option<Waker>,
}

/// The body of a request served by [`crate::serve`](fn@crate::serve) or [`crate::Ferrio::serve`]: the bytes come
/// from the connection as they are asked for (`Content-Length` or chunked; a `100 Continue`
/// goes out when the body is first asked for, if the client expects one). An
/// [`http_body::Body`], so [`crate::Ferrio::handle`] and the like take it as it is.
#[derive(Debug)]
pub struct RequestBody {
    shared: Option<Arc<Mutex<BodyState>>>,
}

impl std::fmt::Debug for BodyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyState")
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl RequestBody {
    fn new(decoder: &Decoder) -> (RequestBody, Option<Arc<Mutex<BodyState>>>) {
        if decoder.done() {
            return (RequestBody { shared: None }, None);
        }
        let shared = Arc::new(Mutex::new(BodyState::default()));
        (
            RequestBody {
                shared: Some(shared.clone()),
            },
            Some(shared),
        )
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            if let Some(w) = lock(&shared).conn.take() {
                w.wake();
            }
        }
    }
}

/// Why a [`RequestBody`] could not be read to its end (the connection closed, or its framing
/// was malformed).
#[derive(Debug)]
pub struct BodyError(&'static str);

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for BodyError {}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let Some(shared) = &self.shared else {
            return Poll::Ready(None);
        };
        let mut state = lock(shared);
        if let Some(data) = state.chunk.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if let Some(e) = state.error.take() {
            return Poll::Ready(Some(Err(BodyError(e))));
        }
        if state.ended {
            return Poll::Ready(None);
        }
        state.wanted = true;
        if !state
            .reader
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            state.reader = Some(cx.waker().clone());
        }
        // The connection polls its handler, and the body with it, in its own task: it sees
        // the request when the handler returns Pending. A body read elsewhere wakes it.
        if let Some(w) = &state.conn {
            if !w.will_wake(cx.waker()) {
                w.wake_by_ref();
            }
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.shared.as_ref().is_none_or(|shared| {
            let state = lock(shared);
            state.ended && state.chunk.is_none() && state.error.is_none()
        })
    }
}

/// The upgrade of a request served by [`serve_connection`]: the stream once the 101 is written.
/// (A clone shares it: request extensions must be cloneable.)
#[derive(Clone)]
struct UpgradeSlot(Arc<Mutex<Option<oneshot::Receiver<WsIo>>>>);

/// Takes the connection's upgrade out of `req`: its stream once the answer (a 101) is written,
/// from this server or hyper's.
pub(crate) fn on_upgrade<B>(
    req: &mut Request<B>,
) -> impl Future<Output = Result<WsIo, String>> + Send + 'static {
    let own = req
        .extensions_mut()
        .remove::<UpgradeSlot>()
        .and_then(|slot| slot.0.lock().ok()?.take());
    let hyper = match own {
        Some(_) => None,
        None => Some(hyper::upgrade::on(req)),
    };
    async move {
        if let Some(rx) = own {
            return rx
                .await
                .map_err(|_| "the connection was not upgraded".to_owned());
        }
        match hyper {
            Some(on) => on.await.map(WsIo::hyper).map_err(|e| e.to_string()),
            None => Err("no upgrade".to_owned()),
        }
    }
}

/// Removes the upgrade handles from a request's extensions (kept by a session).
pub(crate) fn remove_upgrade(extensions: &mut http::Extensions) {
    extensions.remove::<UpgradeSlot>();
    extensions.remove::<hyper::upgrade::OnUpgrade>();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wire` to a decoder `step` bytes at a time: the body, or the decoder's error.
    fn decode_all(mut decoder: Decoder, wire: &[u8], step: usize) -> Result<Vec<u8>, &'static str> {
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut fed = 0;
        loop {
            match decoder.decode(&mut buf, 1024)? {
                Decoded::Data(data) => body.extend_from_slice(&data),
                Decoded::End => return Ok(body),
                Decoded::NeedMore if fed < wire.len() => {
                    let end = (fed + step).min(wire.len());
                    buf.extend_from_slice(&wire[fed..end]);
                    fed = end;
                }
                Decoded::NeedMore => return Err("incomplete"),
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_however_they_are_split() {
        let wire = b"3;name=value\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nx-t: 1\r\n\r\n";
        for step in 1..wire.len() {
            let body = decode_all(Decoder::Chunked(Chunked::Size), wire, step);
            assert_eq!(
                body.as_deref(),
                Ok(&b"abc0123456789abcdef"[..]),
                "step {step}"
            );
        }
        let body = decode_all(Decoder::Length(5), b"hello", 2);
        assert_eq!(body.as_deref(), Ok(&b"hello"[..]));
    }

    #[test]
    fn malformed_chunked_bodies_fail() {
        for wire in [
            &b"zz\r\n"[..],
            b"3\r\nabcX\r\n",
            b"ffffffffffffffffff\r\n",
            &[b'1'; 2000],
        ] {
            assert!(
                decode_all(Decoder::Chunked(Chunked::Size), wire, 7).is_err(),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
        // Trailers past the limit.
        let mut wire = b"0\r\n".to_vec();
        wire.extend(std::iter::repeat_n(b"x-t: 1\r\n".iter().copied(), 200).flatten());
        assert!(decode_all(Decoder::Chunked(Chunked::Size), &wire, 64).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A fixed xorshift sequence: the same inputs on every run.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let seeds: [&[u8]; 3] = [
            b"POST /socket.io/?EIO=4 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            b"GET / HTTP/1.0\r\nContent-Length: 3\r\nConnection: keep-alive, upgrade\r\n\r\nabc",
            b"PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
        ];
        for i in 0..20_000 {
            let mut input = seeds[i % seeds.len()].to_vec();
            for _ in 0..(next() % 4) {
                let at = (next() as usize) % input.len();
                match next() % 3 {
                    0 => input[at] = next() as u8,
                    1 => {
                        input.remove(at);
                    }
                    _ => input.insert(at, b"\r\n:;0 f"[(next() % 7) as usize]),
                }
            }
            if let Ok(Some((len, head))) = parse_head(&input) {
                let _ = decode_all(head.framing, &input[len..], 1 + (next() as usize) % 8);
            }
            let _ = decode_all(Decoder::Chunked(Chunked::Size), &input, 3);
        }
    }
}
