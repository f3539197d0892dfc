//! A minimal HTTP and WebSocket client for the server tests, and the in-process e2e server.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single wait of a test may take.
pub const WAIT: Duration = Duration::from_secs(5);

/// The e2e test server, running in this process on a free port of 127.0.0.1. Stopped on drop.
pub struct Server {
    pub addr: SocketAddr,
    handle: JoinHandle<std::io::Result<()>>,
}

impl Server {
    pub async fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let handle = tokio::spawn(crate::e2e::run(listener));
        Server { addr, handle }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// A complete HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl HttpResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `code` of an Engine.IO error body.
    pub fn code(&self) -> Option<i64> {
        serde_json::from_slice::<Value>(&self.body)
            .ok()?
            .get("code")?
            .as_i64()
    }
}

/// One request on a fresh connection.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> HttpResponse {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(target)
        .header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(body.into())).expect("request");
    let res = timeout(WAIT, sender.send_request(req))
        .await
        .unwrap_or_else(|_| panic!("{method} {target}: no answer"))
        .expect("response");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = timeout(WAIT, res.into_body().collect())
        .await
        .expect("body in time")
        .expect("body")
        .to_bytes();
    HttpResponse {
        status,
        headers,
        body,
    }
}

pub async fn get(addr: SocketAddr, target: &str) -> HttpResponse {
    http(addr, "GET", target, &[], Bytes::new()).await
}

pub async fn post(addr: SocketAddr, target: &str, body: impl Into<Bytes>) -> HttpResponse {
    http(addr, "POST", target, &[], body).await
}

/// Opens a polling session on `prefix` and returns its sid (the open packet is checked).
pub async fn handshake(addr: SocketAddr, prefix: &str) -> String {
    let r = get(addr, &format!("{prefix}?EIO=4&transport=polling")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert!(text.starts_with('0'), "{text}");
    let open: Value = serde_json::from_str(&text[1..]).expect("open json");
    open["sid"].as_str().expect("sid").to_owned()
}

/// The polling URL of session `sid`.
pub fn polling(prefix: &str, sid: &str) -> String {
    format!("{prefix}?EIO=4&transport=polling&sid={sid}")
}

/// A WebSocket client.
pub struct Ws {
    inner: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

pub async fn ws(
    addr: SocketAddr,
    target: &str,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let (inner, _) = timeout(
        WAIT,
        tokio_tungstenite::connect_async(format!("ws://{addr}{target}")),
    )
    .await
    .expect("WebSocket handshake in time")?;
    Ok(Ws { inner })
}

impl Ws {
    pub async fn send_text(&mut self, text: &str) {
        self.inner
            .send(Message::Text(text.into()))
            .await
            .expect("send text");
    }

    /// Sends several text frames in one write, as a JavaScript client calling `send` twice in
    /// the same tick does.
    pub async fn send_texts(&mut self, texts: &[&str]) {
        for text in texts {
            self.inner
                .feed(Message::Text((*text).into()))
                .await
                .expect("feed text");
        }
        self.inner.flush().await.expect("flush");
    }

    pub async fn send_binary(&mut self, data: &[u8]) {
        self.inner
            .send(Message::Binary(Bytes::copy_from_slice(data)))
            .await
            .expect("send binary");
    }

    /// The next data message (text or binary); `None` once closed.
    pub async fn next(&mut self) -> Option<Message> {
        loop {
            let msg = timeout(WAIT, self.inner.next())
                .await
                .expect("a message in time");
            match msg {
                Some(Ok(Message::Text(_) | Message::Binary(_))) => return msg?.ok(),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
            }
        }
    }

    /// The next text message.
    pub async fn text(&mut self) -> String {
        match self.next().await {
            Some(Message::Text(t)) => t.to_string(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The next data message that is not an Engine.IO ping (pings are answered).
    pub async fn next_app(&mut self) -> Option<Message> {
        loop {
            match self.next().await? {
                Message::Text(t) if t.as_str() == "2" => self.send_text("3").await,
                other => return Some(other),
            }
        }
    }

    /// The next text message that is not a ping.
    pub async fn text_app(&mut self) -> String {
        match self.next_app().await {
            Some(Message::Text(t)) => t.to_string(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The next binary message that is not a ping.
    pub async fn binary_app(&mut self) -> Bytes {
        match self.next_app().await {
            Some(Message::Binary(b)) => b,
            other => panic!("expected a binary frame, got {other:?}"),
        }
    }

    /// True if the server closes the WebSocket within `within` (pings are answered meanwhile
    /// when `answer_pings`).
    pub async fn closed_within(&mut self, within: Duration, answer_pings: bool) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.inner.next()).await {
                Ok(m) => m,
                Err(_) => return false,
            };
            match msg {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return true,
                Some(Ok(Message::Text(t))) if answer_pings && t.as_str() == "2" => {
                    let _ = self.inner.send(Message::Text("3".into())).await;
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// The close frame's code, if the server closes with one.
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            match timeout(WAIT, self.inner.next()).await.ok()?? {
                Ok(Message::Close(frame)) => return frame.map(|f| f.code.into()),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }
}

/// A Socket.IO client over WebSocket on `prefix`, past the Engine.IO open packet.
pub async fn sio(addr: SocketAddr, prefix: &str) -> Ws {
    let mut ws = ws(addr, &format!("{prefix}?EIO=4&transport=websocket"))
        .await
        .expect("WebSocket");
    let open = ws.text().await;
    assert!(open.starts_with("0{"), "{open}");
    ws
}

/// Joins `nsp` with the CONNECT `connect` (e.g. `40` or `40/custom,`) and returns the socket id;
/// the `auth` event that follows is checked and consumed.
pub async fn sio_connect(ws: &mut Ws, connect: &str) -> String {
    ws.send_text(connect).await;
    let reply = ws.text_app().await;
    let prefix = connect
        .split_once(',')
        .map(|(nsp, _)| format!("{nsp},"))
        .unwrap_or_else(|| {
            if connect.len() > 2 {
                format!("{connect},")
            } else {
                connect.to_owned()
            }
        });
    assert!(reply.starts_with(&prefix), "{reply} for {connect}");
    let accept: Value = serde_json::from_str(&reply[prefix.len()..]).expect("accept json");
    let auth = ws.text_app().await;
    assert!(auth.contains("[\"auth\","), "{auth}");
    accept["sid"].as_str().expect("sid").to_owned()
}

/// Splits an Engine.IO polling payload into its records.
pub fn records(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body)
        .split('\u{1e}')
        .map(str::to_owned)
        .collect()
}
