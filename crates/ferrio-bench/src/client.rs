//! Raw Engine.IO v4 / Socket.IO v5 clients, as lean as the measurements allow: WebSocket over
//! tokio-tungstenite, and long-polling over a minimal HTTP/1.1 keep-alive client (one
//! connection, requests one after the other).

use std::io;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// A client WebSocket.
pub type Ws = WebSocketStream<TcpStream>;

/// How long one read or one request may take before the client gives up.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// An `io::Error` with a message.
pub fn err(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

/// The ack id at the start of `rest` (the text after the packet type), if any.
pub fn ack_id(rest: &str) -> Option<u64> {
    let end = rest
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(rest.len());
    rest.get(..end).and_then(|d| d.parse().ok())
}

/// Connects a WebSocket to `/socket.io/` on 127.0.0.1:`port` and the namespace `/`.
pub async fn ws_connect(port: u16) -> io::Result<Ws> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    tcp.set_nodelay(true)?;
    let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
    let config = WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, tcp, Some(config))
        .await
        .map_err(|e| err(format!("websocket handshake: {e}")))?;
    let open = next_text(&mut ws).await?;
    if !open.starts_with('0') {
        return Err(err(format!("expected open, got {open}")));
    }
    send_text(&mut ws, "40".to_owned()).await?;
    loop {
        let text = next_text(&mut ws).await?;
        if text.starts_with("40") {
            return Ok(ws);
        }
        if text == "2" {
            send_text(&mut ws, "3".to_owned()).await?;
        } else if text.starts_with("44") {
            return Err(err(format!("connect refused: {text}")));
        }
    }
}

/// Sends one text frame.
pub async fn send_text(ws: &mut Ws, text: String) -> io::Result<()> {
    ws.send(Message::text(text))
        .await
        .map_err(|e| err(format!("websocket send: {e}")))
}

/// The next data frame (text or binary), within [`IO_TIMEOUT`].
pub async fn next_msg(ws: &mut Ws) -> io::Result<Message> {
    loop {
        let msg = timeout(IO_TIMEOUT, ws.next())
            .await
            .map_err(|_| err("websocket read timed out"))?;
        match msg {
            Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => return Ok(m),
            Some(Ok(Message::Close(_))) | None => return Err(err("websocket closed")),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(err(format!("websocket read: {e}"))),
        }
    }
}

/// The next text frame, within [`IO_TIMEOUT`].
pub async fn next_text(ws: &mut Ws) -> io::Result<String> {
    match next_msg(ws).await? {
        Message::Text(t) => Ok(t.as_str().to_owned()),
        _ => Err(err("expected a text frame")),
    }
}

/// Holds an idle WebSocket open, answering pings, until it closes.
pub async fn ws_hold(mut ws: Ws) {
    while let Some(Ok(msg)) = ws.next().await {
        if let Message::Text(t) = msg {
            if t.as_str() == "2" && send_text(&mut ws, "3".to_owned()).await.is_err() {
                return;
            }
        }
    }
}

/// A long-polling client: one keep-alive HTTP/1.1 connection.
pub struct Poll {
    io: BufReader<TcpStream>,
    port: u16,
    sid: String,
    line: String,
}

impl Poll {
    /// Opens an Engine.IO polling session and connects the namespace `/`.
    pub async fn connect(port: u16) -> io::Result<Poll> {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
        tcp.set_nodelay(true)?;
        let mut poll = Poll {
            io: BufReader::with_capacity(16 * 1024, tcp),
            port,
            sid: String::new(),
            line: String::new(),
        };
        let open = poll.request(None).await?;
        let open = String::from_utf8_lossy(&open);
        let sid = open
            .strip_prefix('0')
            .and_then(|o| o.split("\"sid\":\"").nth(1))
            .and_then(|s| s.split('"').next())
            .ok_or_else(|| err(format!("bad open packet {open}")))?;
        poll.sid = sid.to_owned();
        poll.post(b"40").await?;
        loop {
            let body = poll.get().await?;
            for record in body.split(|b| *b == 0x1e) {
                if record.starts_with(b"40") {
                    return Ok(poll);
                }
                if record.starts_with(b"44") {
                    return Err(err("connect refused"));
                }
                if record == b"2" {
                    poll.post(b"3").await?;
                }
            }
        }
    }

    /// A GET (long poll): the payload's body.
    pub async fn get(&mut self) -> io::Result<Vec<u8>> {
        self.request(None).await
    }

    /// A POST of `body`.
    pub async fn post(&mut self, body: &[u8]) -> io::Result<()> {
        self.request(Some(body)).await.map(|_| ())
    }

    async fn request(&mut self, body: Option<&[u8]>) -> io::Result<Vec<u8>> {
        let method = if body.is_some() { "POST" } else { "GET" };
        let sid = if self.sid.is_empty() {
            String::new()
        } else {
            format!("&sid={}", self.sid)
        };
        let mut head = format!(
            "{method} /socket.io/?EIO=4&transport=polling{sid} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n",
            self.port
        );
        if let Some(body) = body {
            head.push_str(&format!(
                "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        let stream = self.io.get_mut();
        stream.write_all(head.as_bytes()).await?;
        if let Some(body) = body {
            stream.write_all(body).await?;
        }
        let status = {
            let line = self.read_line().await?;
            line.split(' ')
                .nth(1)
                .and_then(|s| s.parse::<u16>().ok())
                .ok_or_else(|| err(format!("bad status line {line}")))?
        };
        let mut length = None;
        let mut chunked = false;
        loop {
            let line = self.read_line().await?;
            if line.is_empty() {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse::<usize>().ok();
            } else if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            }
        }
        let mut data = Vec::new();
        if chunked {
            loop {
                let size = {
                    let line = self.read_line().await?;
                    usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                        .map_err(|_| err("bad chunk size"))?
                };
                let start = data.len();
                data.resize(start + size, 0);
                self.io.read_exact(&mut data[start..]).await?;
                self.read_line().await?;
                if size == 0 {
                    break;
                }
            }
        } else if let Some(length) = length {
            data.resize(length, 0);
            self.io.read_exact(&mut data).await?;
        } else {
            return Err(err("response without length"));
        }
        if status != 200 {
            return Err(err(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&data)
            )));
        }
        Ok(data)
    }

    /// One header line without its CRLF.
    async fn read_line(&mut self) -> io::Result<String> {
        self.line.clear();
        if self.io.read_line(&mut self.line).await? == 0 {
            return Err(err("connection closed"));
        }
        Ok(self.line.trim_end_matches(['\r', '\n']).to_owned())
    }

    /// Holds an idle polling session open (long polls, answering pings) until it fails.
    pub async fn hold(mut self) {
        while let Ok(body) = self.get().await {
            if body.split(|b| *b == 0x1e).any(|r| r == b"2") && self.post(b"3").await.is_err() {
                return;
            }
        }
    }
}
