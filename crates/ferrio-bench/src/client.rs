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
    ws_connect_over(tcp, port).await
}

/// Connects a WebSocket to `/socket.io/` and the namespace `/` over `tcp`, already connected
/// to 127.0.0.1:`port`.
pub async fn ws_connect_over(tcp: TcpStream, port: u16) -> io::Result<Ws> {
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

/// What a [`RawWs`] offers in its upgrade request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// `permessage-deflate; client_max_window_bits`: context takeover allowed both ways.
    Deflate,
    /// The same with `server_no_context_takeover; client_no_context_takeover`.
    DeflateNoTakeover,
}

/// A raw WebSocket client over a `TcpStream` that negotiates `permessage-deflate` (which
/// tokio-tungstenite cannot) but never inflates: it reads frames, answers Engine.IO pings,
/// and writes its compressed messages as DEFLATE stored blocks, which need no compressor and
/// make the server inflate all the same.
pub struct RawWs {
    io: BufReader<TcpStream>,
    /// Whether the server's `101` accepted `permessage-deflate`.
    pub deflate: bool,
    mask_seed: u32,
}

/// One frame read: its opcode, whether RSV1 (compressed) was set, and its payload.
pub struct Frame {
    /// The opcode (1 text, 2 binary, 0 continuation, 8 close, 9 ping, 10 pong).
    pub opcode: u8,
    /// FIN.
    pub fin: bool,
    /// RSV1: the message is compressed.
    pub compressed: bool,
    /// The payload (unmasked; servers do not mask).
    pub payload: Vec<u8>,
}

/// The largest frame payload a [`RawWs`] accepts (the bench messages are a few KiB).
const MAX_FRAME: u64 = 16 * 1024 * 1024;

impl RawWs {
    /// Opens a WebSocket to `/socket.io/` on 127.0.0.1:`port` offering `offer`, and connects the
    /// namespace `/`.
    pub async fn connect(port: u16, offer: Offer, seed: u32) -> io::Result<RawWs> {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
        tcp.set_nodelay(true)?;
        let ext = match offer {
            Offer::Deflate => "permessage-deflate; client_max_window_bits",
            Offer::DeflateNoTakeover => {
                "permessage-deflate; client_max_window_bits; server_no_context_takeover; \
                 client_no_context_takeover"
            }
        };
        let head = format!(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
             Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Extensions: {ext}\r\n\r\n"
        );
        let mut ws = RawWs {
            io: BufReader::with_capacity(8 * 1024, tcp),
            deflate: false,
            mask_seed: seed | 1,
        };
        ws.io.get_mut().write_all(head.as_bytes()).await?;
        let mut line = String::new();
        let mut status = true;
        loop {
            line.clear();
            if ws.io.read_line(&mut line).await? == 0 {
                return Err(err("connection closed during the upgrade"));
            }
            let l = line.trim_end_matches(['\r', '\n']);
            if status {
                if l.split(' ').nth(1) != Some("101") {
                    return Err(err(format!("upgrade refused: {l}")));
                }
                status = false;
                continue;
            }
            if l.is_empty() {
                break;
            }
            let lower = l.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("sec-websocket-extensions:") {
                ws.deflate |= v.contains("permessage-deflate");
            }
        }
        // Node's `ws` compresses every message, the small ones too, when context takeover is
        // agreed: a compressed first message is taken for the open packet, and the first
        // compressed one after CONNECT for its answer (the bench server refuses nobody).
        let open = ws.next_data(false).await?;
        if !open.compressed && !open.payload.starts_with(b"0") {
            return Err(err("expected an open packet"));
        }
        ws.send(b"40", false).await?;
        loop {
            let f = ws.next_data(false).await?;
            if f.compressed || f.payload.starts_with(b"40") {
                return Ok(ws);
            }
            if f.payload.starts_with(b"44") {
                return Err(err("connect refused"));
            }
        }
    }

    /// Sends one masked text frame; with `compress`, the payload as a DEFLATE stored block with
    /// RSV1 set (the trailing empty block `00 00 ff ff` left off, as RFC 7692 says).
    pub async fn send(&mut self, text: &[u8], compress: bool) -> io::Result<()> {
        let body: Vec<u8> = if compress {
            if text.len() > 0xffff {
                return Err(err("a stored block holds 65535 bytes at most"));
            }
            let len = text.len() as u16;
            let mut b = Vec::with_capacity(text.len() + 5);
            b.push(0x00); // BFINAL 0, BTYPE 00 (stored), aligned to the byte
            b.extend_from_slice(&len.to_le_bytes());
            b.extend_from_slice(&(!len).to_le_bytes());
            b.extend_from_slice(text);
            b
        } else {
            text.to_vec()
        };
        let mut frame = Vec::with_capacity(body.len() + 14);
        frame.push(if compress { 0xc1 } else { 0x81 });
        match body.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        // xorshift: masks need not be secret here, only present.
        self.mask_seed ^= self.mask_seed << 13;
        self.mask_seed ^= self.mask_seed >> 17;
        self.mask_seed ^= self.mask_seed << 5;
        let key = self.mask_seed.to_be_bytes();
        frame.extend_from_slice(&key);
        frame.extend(body.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        self.io.get_mut().write_all(&frame).await
    }

    /// The next frame, whatever it is.
    async fn frame(&mut self) -> io::Result<Frame> {
        let mut h = [0u8; 2];
        self.io.read_exact(&mut h).await?;
        let mut len = u64::from(h[1] & 0x7f);
        if len == 126 {
            let mut b = [0u8; 2];
            self.io.read_exact(&mut b).await?;
            len = u64::from(u16::from_be_bytes(b));
        } else if len == 127 {
            let mut b = [0u8; 8];
            self.io.read_exact(&mut b).await?;
            len = u64::from_be_bytes(b);
        }
        if h[1] & 0x80 != 0 {
            return Err(err("masked server frame"));
        }
        if len > MAX_FRAME {
            return Err(err(format!("frame of {len} bytes")));
        }
        let mut payload = vec![0u8; len as usize];
        self.io.read_exact(&mut payload).await?;
        Ok(Frame {
            opcode: h[0] & 0x0f,
            fin: h[0] & 0x80 != 0,
            compressed: h[0] & 0x40 != 0,
            payload,
        })
    }

    /// The next data frame (text, binary or continuation) other than an Engine.IO ping, which
    /// it answers; WebSocket pings are answered too. With `small_compressed_pings`, a
    /// compressed frame of less than 64 bytes is taken for a ping too (it cannot be read
    /// without inflating; the bench server's only small messages after the handshake are
    /// pings, and an extra pong does no harm).
    pub async fn next_data(&mut self, small_compressed_pings: bool) -> io::Result<Frame> {
        loop {
            let f = self.frame().await?;
            let small = f.compressed && f.payload.len() < 64;
            match f.opcode {
                0..=2 if !f.compressed && f.payload == b"2" => self.send(b"3", false).await?,
                0..=2 if small_compressed_pings && small => self.send(b"3", false).await?,
                0..=2 => return Ok(f),
                8 => return Err(err("websocket closed")),
                9 => {
                    // A pong with the ping's payload (control frames: at most 125 bytes).
                    let mut frame = vec![0x8a, 0x80 | f.payload.len().min(125) as u8, 0, 0, 0, 0];
                    frame.extend(f.payload.iter().take(125));
                    self.io.get_mut().write_all(&frame).await?;
                }
                _ => {}
            }
        }
    }

    /// Holds the connection open, answering pings, until it closes or fails.
    pub async fn hold(mut self) {
        while self.next_data(true).await.is_ok() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A compressed message goes out as one masked text frame with RSV1, holding a DEFLATE
    /// stored block (not final) of the text, without the trailing empty block.
    #[tokio::test]
    async fn compressed_send_writes_a_masked_stored_block_with_rsv1() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (client, server) = tokio::join!(TcpStream::connect(("127.0.0.1", port)), async {
            listener.accept().await.unwrap().0
        });
        let mut ws = RawWs {
            io: BufReader::new(client.unwrap()),
            deflate: true,
            mask_seed: 7,
        };
        let text = vec![b'x'; 300];
        ws.send(&text, true).await.unwrap();
        ws.send(b"3", false).await.unwrap();
        drop(ws);
        let mut server = server;
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got[0], 0xc1, "FIN, RSV1, text");
        assert_eq!(got[1], 0x80 | 126, "masked, 16-bit length");
        let len = u16::from_be_bytes([got[2], got[3]]) as usize;
        assert_eq!(len, 305);
        let key = [got[4], got[5], got[6], got[7]];
        let body: Vec<u8> = got[8..8 + len]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4])
            .collect();
        assert_eq!(&body[..5], &[0x00, 0x2c, 0x01, 0xd3, 0xfe]);
        assert_eq!(&body[5..], &text[..]);
        let rest = &got[8 + len..];
        assert_eq!(&rest[..2], &[0x81, 0x81], "uncompressed, masked, 1 byte");
        assert_eq!(rest[6] ^ rest[2], b'3');
        assert_eq!(rest.len(), 7);
    }
}
