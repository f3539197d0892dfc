//! The I/O the driver performs for the Engine.IO session: HTTP long-polling requests (hyper, with
//! rustls for `https`) and WebSockets (tokio-tungstenite, rustls for `wss`). Each request or
//! socket runs in its own task and reports back over one bounded channel, naming its transport
//! (a task waits for room: the transports are not read faster than the driver takes what they
//! read).

use std::sync::Arc;

use bytes::Bytes;
use ferrio_proto::engine::client::{Query, TransportId};
use ferrio_proto::engine::Frame;
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
    Error(String),
}

/// A command for a WebSocket task.
#[derive(Debug)]
pub(crate) enum WsCommand {
    Send(Frame),
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
            Some(limit) => tokio::time::timeout(limit, self.request_inner(query, body))
                .await
                .unwrap_or_else(|_| Completion::Error("xhr poll error: timeout".to_owned())),
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
            Err(e) => return Completion::Error(format!("bad request: {e}")),
        };
        tracing::trace!(%url, post, "polling request");
        let response = match self.http.request(request).await {
            Ok(r) => r,
            Err(e) => return Completion::Error(format!("xhr poll error: {e}")),
        };
        let status = response.status();
        self.store_cookies(response.headers());
        let body = match response.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return Completion::Error(format!("xhr poll error: {e}")),
        };
        if status != StatusCode::OK {
            return Completion::Error(format!(
                "xhr poll error: HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
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
        tokio::select! {
            sent = report.send((id, Completion::WsOpen)) => if sent.is_err() {
                return;
            },
            () = released(&mut commands) => return,
        }
        let (sink, stream) = ws.split();
        tokio::select! {
            () = read(id, stream, &report) => {}
            () = write(id, sink, &mut commands, &report) => {}
        }
    }

    async fn connect_websocket(&self, query: &Query) -> Result<WebSocket, String> {
        let url = self.url(true, query);
        tracing::trace!(%url, "websocket connecting");
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| format!("websocket error: {e}"))?;
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
        let connector = if self.secure {
            Connector::Rustls(self.tls.clone())
        } else {
            Connector::Plain
        };
        let (ws, response) =
            tokio_tungstenite::connect_async_tls_with_config(request, None, true, Some(connector))
                .await
                .map_err(|e| format!("websocket error: {e}"))?;
        self.store_cookies(response.headers());
        Ok(ws)
    }
}

type WebSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Waits until the driver lets the transport go. Frames given meanwhile are dropped: this runs
/// before the session knows the WebSocket is open (it sends nothing then), or after it failed.
async fn released(commands: &mut mpsc::Receiver<WsCommand>) {
    while let Some(WsCommand::Send(_)) = commands.recv().await {}
}

/// Reports a failure, unless the driver lets the transport go first.
async fn report_error(
    id: TransportId,
    report: &mpsc::Sender<(TransportId, Completion)>,
    commands: &mut mpsc::Receiver<WsCommand>,
    description: String,
) {
    tokio::select! {
        _ = report.send((id, Completion::Error(description))) => {}
        () = released(commands) => {}
    }
}

/// Reports the WebSocket's messages, waiting for room in `report` before reading the next.
async fn read(
    id: TransportId,
    mut stream: SplitStream<WebSocket>,
    report: &mpsc::Sender<(TransportId, Completion)>,
) {
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
                let _ = report
                    .send((id, Completion::Error(format!("websocket error: {e}"))))
                    .await;
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
async fn write(
    id: TransportId,
    mut sink: SplitSink<WebSocket, Message>,
    commands: &mut mpsc::Receiver<WsCommand>,
    report: &mpsc::Sender<(TransportId, Completion)>,
) {
    while let Some(mut command) = commands.recv().await {
        let result = loop {
            let WsCommand::Send(frame) = command else {
                let _ = sink.close().await;
                return;
            };
            if let Some(message) = ws_message(frame) {
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
            report_error(id, report, commands, format!("websocket error: {e}")).await;
            return;
        }
    }
    let _ = sink.close().await;
}

fn ws_message(frame: Frame) -> Option<Message> {
    match frame {
        Frame::Text(text) => Utf8Bytes::try_from(text.into_bytes())
            .ok()
            .map(Message::Text),
        Frame::Binary(data) => Some(Message::Binary(data)),
    }
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
}
