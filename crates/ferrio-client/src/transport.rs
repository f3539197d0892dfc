//! The I/O the driver performs for the Engine.IO session: HTTP long-polling requests (hyper, with
//! rustls for `https`) and WebSockets (tokio-tungstenite, rustls for `wss`). Each request or
//! socket runs in its own task and reports back over one bounded channel, naming its transport
//! (a task waits for room: the transports are not read faster than the driver takes what they
//! read).

use std::sync::Arc;

use crate::error::TransportError;
use bytes::Bytes;
use ferrio_proto::engine::client::{Query, TransportId};
use ferrio_proto::engine::Frame;
use ferrio_proto::ws_deflate;
use ferrio_proto::Str;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::Message;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_tungstenite::Connector;

/// What a transport task reports.
#[derive(Debug)]
pub(crate) enum Completion {
    /// A GET answered 200 with this body.
    Poll(Bytes),
    /// A POST answered 200.
    Posted,
    /// The WebSocket connected.
    WsOpen,
    /// A WebSocket message.
    WsFrame(Frame),
    /// The WebSocket closed.
    WsClosed,
    /// A request or the WebSocket failed.
    Error(TransportError),
}

/// A command for a WebSocket task.
#[derive(Debug)]
pub(crate) enum WsCommand {
    /// A frame, and whether it may be compressed.
    Send(Frame, bool),
    Close,
}

type HttpClient = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// Most cookies the jar keeps (a server cannot make it grow without bound).
const MAX_COOKIES: usize = 64;

/// HTTP-level options of `socket.io-client` that the session does not decide.
#[derive(Debug, Clone, Default)]
pub(crate) struct HttpOptions {
    /// Keep the cookies the server sets and send them back (`withCredentials`, which enables a
    /// cookie jar under Node): sticky sessions behind a load balancer.
    pub(crate) with_credentials: bool,
    /// A bound on each polling request (`requestTimeout`, none).
    pub(crate) request_timeout: Option<std::time::Duration>,
    /// WebSocket subprotocols (`protocols`).
    pub(crate) protocols: Vec<String>,
    /// Offer `permessage-deflate` in the WebSocket handshake (`perMessageDeflate`).
    pub(crate) per_message_deflate: bool,
    /// With `permessage-deflate` agreed, messages shorter than this are sent uncompressed
    /// (`None`: [`DEFLATE_THRESHOLD`]).
    pub(crate) deflate_threshold: Option<usize>,
}

/// Where and how to reach the server: everything about a request the session does not decide.
pub(crate) struct Endpoint {
    /// `http` or `https`.
    pub(crate) secure: bool,
    /// `host:port`.
    pub(crate) authority: String,
    /// The Engine.IO path, with its trailing slash.
    pub(crate) path: String,
    /// Extra headers for every request and the WebSocket handshake.
    pub(crate) headers: HeaderMap,
    /// TLS settings for `https` and `wss`.
    pub(crate) tls: Arc<rustls::ClientConfig>,
    http: HttpClient,
    options: HttpOptions,
    /// Cookies set by the server (name, value), with `with_credentials`.
    cookies: std::sync::Mutex<Vec<(String, String)>>,
}

/// The default TLS settings: the Mozilla root certificates, rustls with the `ring` provider.
pub(crate) fn default_tls() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

impl Endpoint {
    pub(crate) fn new(
        secure: bool,
        authority: String,
        path: String,
        headers: HeaderMap,
        tls: Arc<rustls::ClientConfig>,
        options: HttpOptions,
    ) -> Endpoint {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .build();
        let http = Client::builder(TokioExecutor::new()).build(connector);
        Endpoint {
            secure,
            authority,
            path,
            headers,
            tls,
            http,
            options,
            cookies: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The `Cookie` header value: the user's own (`extra_header("cookie", ..)`) followed by
    /// the jar's, in one header; `None` if there is neither.
    fn cookie_header(&self) -> Option<String> {
        let mut parts: Vec<String> = self
            .headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        if self.options.with_credentials {
            if let Ok(jar) = self.cookies.lock() {
                parts.extend(jar.iter().map(|(k, v)| format!("{k}={v}")));
            }
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// Keeps the cookies of a response's `Set-Cookie` headers (name and value; attributes
    /// are not interpreted).
    fn store_cookies(&self, headers: &HeaderMap) {
        if !self.options.with_credentials {
            return;
        }
        let Ok(mut jar) = self.cookies.lock() else {
            return;
        };
        for value in headers.get_all(http::header::SET_COOKIE) {
            let Ok(value) = value.to_str() else {
                continue;
            };
            let mut attributes = value.split(';');
            let Some((name, value)) = attributes.next().and_then(|pair| pair.split_once('='))
            else {
                continue;
            };
            let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
            // `Max-Age=0` (or negative) deletes the cookie; `Expires` is not read (a server
            // clearing a cookie sends `Max-Age=0` as well, as Node's `cookie` package does).
            let expired = attributes.any(|a| {
                a.trim().split_once('=').is_some_and(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("max-age")
                        && v.trim().parse::<i64>().is_ok_and(|n| n <= 0)
                })
            });
            if expired {
                jar.retain(|(n, _)| *n != name);
                continue;
            }
            let full = jar.len() >= MAX_COOKIES;
            match jar.iter_mut().find(|(n, _)| *n == name) {
                Some(entry) => entry.1 = value,
                None if !full => jar.push((name, value)),
                None => {}
            }
        }
    }

    /// The URL of a request: scheme, authority, path and the percent-encoded query.
    fn url(&self, websocket: bool, query: &Query) -> String {
        let scheme = match (websocket, self.secure) {
            (false, false) => "http",
            (false, true) => "https",
            (true, false) => "ws",
            (true, true) => "wss",
        };
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in query {
            q.append_pair(k, v);
        }
        format!("{scheme}://{}{}?{}", self.authority, self.path, q.finish())
    }

    /// Runs a long-polling GET (`body: None`) or POST.
    pub(crate) async fn request(&self, query: &Query, body: Option<Bytes>) -> Completion {
        match self.options.request_timeout {
            Some(limit) => {
                let post = body.is_some();
                tokio::time::timeout(limit, self.request_inner(query, body))
                    .await
                    .unwrap_or_else(|_| Completion::Error(poll_error(post, 0, "timeout", None)))
            }
            None => self.request_inner(query, body).await,
        }
    }

    async fn request_inner(&self, query: &Query, body: Option<Bytes>) -> Completion {
        let url = self.url(false, query);
        let post = body.is_some();
        let mut builder = Request::builder()
            .method(if post { Method::POST } else { Method::GET })
            .uri(&url);
        for (name, value) in &self.headers {
            if name != http::header::COOKIE {
                builder = builder.header(name, value);
            }
        }
        if post {
            builder = builder.header(http::header::CONTENT_TYPE, "text/plain;charset=UTF-8");
        }
        if let Some(cookie) = self.cookie_header() {
            builder = builder.header(http::header::COOKIE, cookie);
        }
        let request = match builder.body(Full::new(body.unwrap_or_default())) {
            Ok(r) => r,
            Err(e) => {
                let description = format!("bad request: {e}");
                return Completion::Error(poll_error(post, 0, &description, None));
            }
        };
        tracing::trace!(%url, post, "polling request");
        let response = match self.http.request(request).await {
            Ok(r) => r,
            Err(e) => return Completion::Error(poll_error(post, 0, &e.to_string(), None)),
        };
        let status = response.status();
        self.store_cookies(response.headers());
        let body = response.into_body().collect().await;
        if status != StatusCode::OK {
            // The status whether or not the body (the server's explanation) could be read.
            let code = status.as_u16();
            let context = body
                .ok()
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned());
            return Completion::Error(poll_error(post, code, &format!("HTTP {code}"), context));
        }
        let body = match body {
            Ok(b) => b.to_bytes(),
            Err(e) => return Completion::Error(poll_error(post, 0, &e.to_string(), None)),
        };
        if post {
            Completion::Posted
        } else {
            Completion::Poll(body)
        }
    }

    /// Runs a WebSocket until it closes: reports its messages and writes the frames it is given.
    ///
    /// Reading and writing run side by side: the reader waits for room in `report` (the
    /// driver's bounded queue: a server sending faster than the driver takes its messages is
    /// not read further), the writer waits for the network only. The driver never waits on this
    /// task, and the task ends when the driver lets the transport go (a `Close`, or the sender
    /// dropped), even if its reader is waiting for room meanwhile.
    pub(crate) async fn websocket(
        self: Arc<Self>,
        id: TransportId,
        query: Query,
        mut commands: mpsc::Receiver<WsCommand>,
        report: mpsc::Sender<(TransportId, Completion)>,
    ) {
        let connected = tokio::select! {
            ws = self.connect_websocket(&query) => ws,
            () = released(&mut commands) => return,
        };
        let ws = match connected {
            Ok(ws) => ws,
            Err(e) => {
                report_error(id, &report, &mut commands, e).await;
                return;
            }
        };
        match ws {
            Connected::Plain(ws) => run(id, ws, None, &mut commands, &report).await,
            Connected::Deflate(ws) => {
                // The server's answer says how the client may compress.
                let deflate = ws
                    .get_ref()
                    .state
                    .response
                    .and_then(|r| r.client_deflater(DEFLATE_LEVEL))
                    .map(|d| Compressor {
                        deflater: d,
                        threshold: self.options.deflate_threshold.unwrap_or(DEFLATE_THRESHOLD),
                    });
                run(id, ws, deflate, &mut commands, &report).await
            }
        }
    }

    async fn connect_websocket(&self, query: &Query) -> Result<Connected, TransportError> {
        let url = self.url(true, query);
        tracing::trace!(%url, "websocket connecting");
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| ws_error(&e))?;
        for (name, value) in &self.headers {
            request.headers_mut().insert(name, value.clone());
        }
        if let Some(cookie) = self.cookie_header().and_then(|c| c.parse().ok()) {
            request.headers_mut().insert(http::header::COOKIE, cookie);
        }
        if !self.options.protocols.is_empty() {
            if let Ok(v) = self.options.protocols.join(", ").parse() {
                request
                    .headers_mut()
                    .insert(http::header::SEC_WEBSOCKET_PROTOCOL, v);
            }
        }
        if self.options.per_message_deflate {
            request.headers_mut().insert(
                http::header::SEC_WEBSOCKET_EXTENSIONS,
                http::HeaderValue::from_static(DEFLATE_OFFER),
            );
            let stream = Inflating::new(self.connect_stream().await?);
            let (ws, response) = tokio_tungstenite::client_async_with_config(request, stream, None)
                .await
                .map_err(|e| ws_error(&e))?;
            self.store_cookies(response.headers());
            return Ok(Connected::Deflate(ws));
        }
        let connector = if self.secure {
            Connector::Rustls(self.tls.clone())
        } else {
            Connector::Plain
        };
        let (ws, response) =
            tokio_tungstenite::connect_async_tls_with_config(request, None, true, Some(connector))
                .await
                .map_err(|e| ws_error(&e))?;
        self.store_cookies(response.headers());
        Ok(Connected::Plain(ws))
    }

    /// A TCP connection to the server, with TLS for `wss`: what tokio-tungstenite's `connect`
    /// makes, made here so that [`Inflating`] can sit between it and the WebSocket.
    async fn connect_stream(&self) -> Result<MaybeTls, TransportError> {
        let error = |e: &dyn std::fmt::Display| TransportError {
            message: "websocket error".to_owned(),
            status: None,
            description: e.to_string(),
            context: None,
        };
        let tcp = tokio::net::TcpStream::connect(self.authority.as_str())
            .await
            .map_err(|e| error(&e))?;
        tcp.set_nodelay(true).map_err(|e| error(&e))?;
        if !self.secure {
            return Ok(MaybeTls::Plain(tcp));
        }
        let host = match self.authority.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => self.authority.as_str(),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name =
            rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|e| error(&e))?;
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| error(&e))?;
        Ok(MaybeTls::Rustls(tls))
    }
}

type MaybeTls = tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>;

/// A connected WebSocket: as tokio-tungstenite connects it, or over [`Inflating`] when
/// `permessage-deflate` was offered.
enum Connected {
    Plain(tokio_tungstenite::WebSocketStream<MaybeTls>),
    Deflate(tokio_tungstenite::WebSocketStream<Inflating<MaybeTls>>),
}

/// Reports that the WebSocket is open, then reads and writes it until it closes.
async fn run<S>(
    id: TransportId,
    ws: tokio_tungstenite::WebSocketStream<S>,
    deflate: Option<Compressor>,
    commands: &mut mpsc::Receiver<WsCommand>,
    report: &mpsc::Sender<(TransportId, Completion)>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    tokio::select! {
        sent = report.send((id, Completion::WsOpen)) => if sent.is_err() {
            return;
        },
        () = released(commands) => return,
    }
    let (sink, stream) = ws.split();
    tokio::select! {
        () = read(id, stream, report) => {}
        () = write(id, sink, deflate, commands, report) => {}
    }
}

/// Waits until the driver lets the transport go. Frames given meanwhile are dropped: this runs
/// before the session knows the WebSocket is open (it sends nothing then), or after it failed.
async fn released(commands: &mut mpsc::Receiver<WsCommand>) {
    while let Some(WsCommand::Send(..)) = commands.recv().await {}
}

/// Reports a failure, unless the driver lets the transport go first.
async fn report_error(
    id: TransportId,
    report: &mpsc::Sender<(TransportId, Completion)>,
    commands: &mut mpsc::Receiver<WsCommand>,
    error: TransportError,
) {
    tokio::select! {
        _ = report.send((id, Completion::Error(error))) => {}
        () = released(commands) => {}
    }
}

/// Reports the WebSocket's messages, waiting for room in `report` before reading the next.
async fn read<S>(
    id: TransportId,
    mut stream: SplitStream<tokio_tungstenite::WebSocketStream<S>>,
    report: &mpsc::Sender<(TransportId, Completion)>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let completion = match stream.next().await {
            Some(Ok(Message::Text(text))) => match Str::from_utf8(Bytes::from(text)) {
                Ok(s) => Completion::WsFrame(Frame::Text(s)),
                Err(_) => continue,
            },
            Some(Ok(Message::Binary(data))) => Completion::WsFrame(Frame::Binary(data)),
            Some(Ok(Message::Close(_))) | None => {
                let _ = report.send((id, Completion::WsClosed)).await;
                return;
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                let _ = report.send((id, Completion::Error(ws_error(&e)))).await;
                return;
            }
        };
        if report.send((id, completion)).await.is_err() {
            return;
        }
    }
}

/// Writes the frames the driver gives, those already queued with one flush, until `Close` or
/// the driver drops the sender; then closes the WebSocket.
async fn write<S>(
    id: TransportId,
    mut sink: SplitSink<tokio_tungstenite::WebSocketStream<S>, Message>,
    mut deflate: Option<Compressor>,
    commands: &mut mpsc::Receiver<WsCommand>,
    report: &mpsc::Sender<(TransportId, Completion)>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    while let Some(mut command) = commands.recv().await {
        let result = loop {
            let WsCommand::Send(frame, compress) = command else {
                let _ = sink.close().await;
                return;
            };
            let message = match deflate.as_mut() {
                Some(d) if compress => d.message(frame),
                _ => ws_message(frame),
            };
            if let Some(message) = message {
                if let Err(e) = sink.feed(message).await {
                    break Err(e);
                }
            }
            match commands.try_recv() {
                Ok(next) => command = next,
                Err(_) => break sink.flush().await,
            }
        };
        if let Err(e) = result {
            report_error(id, report, commands, ws_error(&e)).await;
            return;
        }
    }
    let _ = sink.close().await;
}

/// A long-polling request's failure, as engine.io-client names it (`xhr post error` for a
/// POST, `xhr poll error` for a GET): `status` 0 when no answer came.
fn poll_error(
    post: bool,
    status: u16,
    description: &str,
    context: Option<String>,
) -> TransportError {
    TransportError {
        message: if post {
            "xhr post error"
        } else {
            "xhr poll error"
        }
        .to_owned(),
        status: Some(status),
        description: description.to_owned(),
        context: context.filter(|c| !c.is_empty()),
    }
}

/// A WebSocket's failure (`websocket error`); the HTTP status when the server answered the
/// upgrade with something else than 101.
fn ws_error(e: &tokio_tungstenite::tungstenite::Error) -> TransportError {
    let (status, context) = match e {
        tokio_tungstenite::tungstenite::Error::Http(response) => (
            Some(response.status().as_u16()),
            response
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .filter(|b| !b.is_empty()),
        ),
        _ => (None, None),
    };
    TransportError {
        message: "websocket error".to_owned(),
        status,
        description: e.to_string(),
        context,
    }
}

fn ws_message(frame: Frame) -> Option<Message> {
    match frame {
        Frame::Text(text) => Utf8Bytes::try_from(text.into_bytes())
            .ok()
            .map(Message::Text),
        Frame::Binary(data) => Some(Message::Binary(data)),
    }
}

/// What a WebSocket that agreed on `permessage-deflate` compresses its messages with.
struct Compressor {
    deflater: ws_deflate::Deflater,
    /// Messages shorter than this are sent uncompressed.
    threshold: usize,
}

impl Compressor {
    /// The message for `frame`: compressed (a frame with RSV1, which tungstenite masks and
    /// writes as it is) from the threshold on, when that makes it smaller.
    fn message(&mut self, frame: Frame) -> Option<Message> {
        use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
        let (data, opcode) = match &frame {
            Frame::Text(text) => (&text.as_bytes()[..], Data::Text),
            Frame::Binary(data) => (&data[..], Data::Binary),
        };
        if data.len() < self.threshold {
            return ws_message(frame);
        }
        let Some(payload) = self.deflater.compress(data) else {
            return ws_message(frame);
        };
        let mut frame = tokio_tungstenite::tungstenite::protocol::frame::Frame::message(
            Bytes::from(payload),
            OpCode::Data(opcode),
            true,
        );
        frame.header_mut().rsv1 = true;
        Some(Message::Frame(frame))
    }
}

/// The `permessage-deflate` offer (RFC 7692): without context takeover on the server's side
/// first (nothing to keep between messages), or as the server likes; either way the server
/// may bound the client's window.
const DEFLATE_OFFER: &str = "permessage-deflate; server_no_context_takeover; \
                             client_max_window_bits, permessage-deflate; client_max_window_bits";

/// The compression level of the client's messages (zlib's default).
const DEFLATE_LEVEL: u32 = 6;

/// The default threshold of compression: messages shorter than this many bytes are sent
/// uncompressed (as Node's `ws`).
pub(crate) const DEFLATE_THRESHOLD: usize = 1024;

/// The longest handshake response head looked through for the server's answer.
const MAX_HEAD: usize = 64 * 1024;

/// The largest message inflated: tungstenite's own bound on a message (64 MiB).
const MAX_INFLATED: usize = 64 << 20;

/// The connection under a WebSocket that offered `permessage-deflate`: it hands the handshake's
/// response head to tungstenite as it came, reads from it whether the server accepted the
/// offer, and from then on hands tungstenite the server's frames with the compressed messages
/// inflated (the RSV1 bit cleared), so tungstenite checks all the rest. Writes go through.
struct Inflating<S> {
    inner: S,
    state: InflateState,
}

impl<S> Inflating<S> {
    fn new(inner: S) -> Self {
        Inflating {
            inner,
            state: InflateState::default(),
        }
    }
}

/// The socket alone as a blocking `Read` for one poll: `WouldBlock` when it is not ready.
struct PollRead<'a, 'b, S> {
    inner: &'a mut S,
    cx: &'a mut std::task::Context<'b>,
}

impl<S: tokio::io::AsyncRead + Unpin> std::io::Read for PollRead<'_, '_, S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut buf = tokio::io::ReadBuf::new(buf);
        match std::pin::Pin::new(&mut *self.inner).poll_read(self.cx, &mut buf) {
            std::task::Poll::Ready(Ok(())) => Ok(buf.filled().len()),
            std::task::Poll::Ready(Err(e)) => Err(e),
            std::task::Poll::Pending => Err(std::io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Inflating<S> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let mut src = PollRead {
            inner: &mut this.inner,
            cx,
        };
        match this.state.read(&mut src, buf.initialize_unfilled()) {
            Ok(n) => {
                buf.advance(n);
                std::task::Poll::Ready(Ok(()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::task::Poll::Pending,
            Err(e) => std::task::Poll::Ready(Err(e)),
        }
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Inflating<S> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// What [`Inflating`] knows of the connection.
#[derive(Default)]
struct InflateState {
    /// The response head was handed over.
    head_done: bool,
    /// The response head read so far.
    head: Vec<u8>,
    /// How much of `head` was searched for its end already (each read searches only what is
    /// new, so a head that arrives a byte at a time costs linear time).
    scanned: usize,
    /// Bytes for tungstenite (the head), from `out_pos` on.
    out: Vec<u8>,
    out_pos: usize,
    /// The server's answer, when it accepted the offer.
    response: Option<ws_deflate::Response>,
    /// The server's frames go through it once the server accepted the offer; else bytes go
    /// through as they come.
    inflater: Option<ws_deflate::Inflater>,
}

impl InflateState {
    fn read(&mut self, src: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
        while !self.head_done {
            let from = self.scanned.saturating_sub(3);
            let found = self.head[from..]
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|i| from + i);
            self.scanned = self.head.len();
            if let Some(end) = found {
                let rest = self.head.split_off(end + 4);
                self.response = answer(&self.head);
                self.out = std::mem::take(&mut self.head);
                match self.response {
                    Some(r) => {
                        let mut inflater = ws_deflate::Inflater::new(
                            ws_deflate::Role::Client,
                            r.server_no_context_takeover,
                        );
                        inflater.push(&rest);
                        self.inflater = Some(inflater);
                    }
                    None => self.out.extend_from_slice(&rest),
                }
                self.head_done = true;
                break;
            }
            let mut chunk = [0u8; 4096];
            let n = if self.head.len() > MAX_HEAD {
                // Not a response tungstenite would take: let it see so.
                0
            } else {
                src.read(&mut chunk)?
            };
            if n == 0 {
                self.out = std::mem::take(&mut self.head);
                self.head_done = true;
                break;
            }
            self.head.extend_from_slice(&chunk[..n]);
        }
        if self.out_pos < self.out.len() {
            let n = buf.len().min(self.out.len() - self.out_pos);
            buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
            self.out_pos += n;
            if self.out_pos == self.out.len() {
                self.out = Vec::new();
                self.out_pos = 0;
            }
            return Ok(n);
        }
        match &mut self.inflater {
            Some(inflater) => inflater.read(src, buf, MAX_INFLATED),
            None => src.read(buf),
        }
    }
}

/// The server's answer to the offer in a response head: `None` if it declined.
fn answer(head: &[u8]) -> Option<ws_deflate::Response> {
    let head = String::from_utf8_lossy(head);
    head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("sec-websocket-extensions")
            .then(|| ws_deflate::Response::parse(value.trim()))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(secure: bool) -> Endpoint {
        Endpoint::new(
            secure,
            "h:1".to_owned(),
            "/socket.io/".to_owned(),
            HeaderMap::new(),
            default_tls().unwrap(),
            HttpOptions::default(),
        )
    }

    #[test]
    fn urls() {
        let query = vec![
            ("EIO".to_owned(), "4".to_owned()),
            ("a b".to_owned(), "c&d".to_owned()),
        ];
        // The query comes from the core, cache buster included: written as it is.
        let e = endpoint(false);
        assert_eq!(e.url(true, &query), "ws://h:1/socket.io/?EIO=4&a+b=c%26d");
        assert_eq!(
            e.url(false, &query),
            "http://h:1/socket.io/?EIO=4&a+b=c%26d"
        );
        let e = endpoint(true);
        assert!(e.url(false, &query).starts_with("https://"));
        assert!(e.url(true, &query).starts_with("wss://"));
    }

    #[test]
    fn cookies() {
        let mut e = endpoint(false);

        let mut headers = HeaderMap::new();
        headers.append(
            http::header::SET_COOKIE,
            "io=abc; Path=/; HttpOnly".parse().unwrap(),
        );
        headers.append(http::header::SET_COOKIE, "lb=node-1".parse().unwrap());
        e.store_cookies(&headers);
        assert_eq!(e.cookie_header(), None, "no jar without with_credentials");
        e.options.with_credentials = true;
        e.store_cookies(&headers);
        let mut again = HeaderMap::new();
        again.append(http::header::SET_COOKIE, "io=def".parse().unwrap());
        e.store_cookies(&again);
        assert_eq!(e.cookie_header().as_deref(), Some("io=def; lb=node-1"));
        // Max-Age=0 deletes.
        let mut cleared = HeaderMap::new();
        cleared.append(
            http::header::SET_COOKIE,
            "lb=; Max-Age=0; Path=/".parse().unwrap(),
        );
        e.store_cookies(&cleared);
        assert_eq!(e.cookie_header().as_deref(), Some("io=def"));
        // The user's own Cookie header comes first, in the same header.
        e.headers
            .insert(http::header::COOKIE, "auth=x".parse().unwrap());
        assert_eq!(e.cookie_header().as_deref(), Some("auth=x; io=def"));
    }

    /// Reads everything `state` makes of `input`, handed to it in pieces of `piece` bytes.
    fn inflate_all(state: &mut InflateState, input: &[u8], piece: usize) -> Vec<u8> {
        struct Pieces<'a>(&'a [u8], usize);
        impl std::io::Read for Pieces<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.1.min(buf.len()).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut src = Pieces(input, piece);
        let mut out = Vec::new();
        let mut buf = [0u8; 7];
        loop {
            match state.read(&mut src, &mut buf).unwrap() {
                0 => return out,
                n => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    #[test]
    fn inflating_the_servers_frames() {
        let text = "4".to_owned() + &"hello ".repeat(300);
        let compressed = ws_deflate::Deflater::new(6, 15, true)
            .compress(text.as_bytes())
            .unwrap();
        let head = "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Extensions: \
                    permessage-deflate; server_no_context_takeover\r\n\r\n";
        // The head, a compressed message, a plain one; in pieces of every size.
        let mut input = head.as_bytes().to_vec();
        input.extend([0xc1, compressed.len() as u8]);
        input.extend(&compressed);
        input.extend([0x81, 2, b'4', b'x']);
        let mut expected = head.as_bytes().to_vec();
        expected.extend([0x81, 126]);
        expected.extend((text.len() as u16).to_be_bytes());
        expected.extend(text.as_bytes());
        expected.extend([0x81, 2, b'4', b'x']);
        for piece in [1, 3, 100, 4096] {
            let mut state = InflateState::default();
            assert_eq!(inflate_all(&mut state, &input, piece), expected, "{piece}");
            assert!(state.inflater.as_ref().is_some_and(|i| i.is_empty()));
        }
        // Declined: everything goes through as it came.
        let declined = "HTTP/1.1 101 Switching Protocols\r\n\r\n";
        let mut input = declined.as_bytes().to_vec();
        input.extend([0xc1, 1, 0]);
        let mut state = InflateState::default();
        assert_eq!(inflate_all(&mut state, &input, 4096), input);
    }
}
