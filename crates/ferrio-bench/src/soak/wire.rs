//! The raw clients of the probes: a Socket.IO-over-WebSocket connection that answers the
//! server's pings by itself, hand-written HTTP/1.1 requests over plain TCP, and the small
//! statistics the probes print.

use std::io;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

type Ws = WebSocketStream<TcpStream>;

/// An `io::Error` with a message.
pub fn err(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

/// What a [`Conn`] receives.
#[derive(Debug)]
pub enum In {
    /// A text frame other than a ping `2` (pings are answered by the connection itself).
    Text(String),
    /// A binary frame.
    Binary,
    /// The connection ended: a close frame, an error or the end of the stream.
    Closed(String),
}

/// A WebSocket Engine.IO connection whose pings (`2`) are answered (`3`) by a reader task as
/// soon as they arrive, ahead of anything queued on [`Conn::tx`]. Dropping it aborts its tasks,
/// which closes the TCP connection.
pub struct Conn {
    /// Text frames to send, in order (sent in batches as fast as the socket takes them).
    pub tx: mpsc::UnboundedSender<String>,
    /// Everything received except pings.
    pub rx: mpsc::UnboundedReceiver<In>,
    tasks: [JoinHandle<()>; 2],
}

impl Drop for Conn {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Conn {
    /// Opens `ws://127.0.0.1:port<path>?EIO=4&transport=websocket` and reads the open packet.
    pub async fn open(port: u16, path: &str) -> io::Result<Conn> {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
        tcp.set_nodelay(true)?;
        let url = format!("ws://127.0.0.1:{port}{path}?EIO=4&transport=websocket");
        let config = WebSocketConfig::default()
            .read_buffer_size(16 * 1024)
            .max_message_size(Some(64 << 20))
            .max_frame_size(Some(64 << 20));
        let (ws, _) = timeout(
            Duration::from_secs(10),
            tokio_tungstenite::client_async_with_config(url, tcp, Some(config)),
        )
        .await
        .map_err(|_| err("websocket handshake timed out"))?
        .map_err(|e| err(format!("websocket handshake: {e}")))?;
        let (sink, stream) = ws.split();
        let (tx, out_rx) = mpsc::unbounded_channel();
        let (in_tx, rx) = mpsc::unbounded_channel();
        let (pong_tx, pong_rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_loop(stream, in_tx, pong_tx));
        let writer = tokio::spawn(write_loop(sink, out_rx, pong_rx));
        let mut conn = Conn {
            tx,
            rx,
            tasks: [reader, writer],
        };
        match conn.next(Duration::from_secs(10)).await {
            Some(In::Text(open)) if open.starts_with('0') => Ok(conn),
            other => Err(err(format!("expected the open packet, got {other:?}"))),
        }
    }

    /// Opens a connection to `/socket.io/` and joins the namespace `/`.
    pub async fn socket_io(port: u16) -> io::Result<Conn> {
        let mut conn = Conn::open(port, "/socket.io/").await?;
        conn.send("40");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match conn.next(left).await {
                Some(In::Text(t)) if t.starts_with("40") => return Ok(conn),
                Some(In::Text(t)) if t.starts_with("44") => {
                    return Err(err(format!("connect refused: {t}")))
                }
                Some(In::Closed(why)) => {
                    return Err(err(format!("closed while connecting: {why}")))
                }
                Some(_) => {}
                None => return Err(err("no CONNECT reply within 10 s")),
            }
        }
    }

    /// Queues one text frame.
    pub fn send(&self, text: impl Into<String>) {
        let _ = self.tx.send(text.into());
    }

    /// The next thing received within `wait`, or `None` on timeout.
    pub async fn next(&mut self, wait: Duration) -> Option<In> {
        match timeout(wait, self.rx.recv()).await {
            Ok(Some(msg)) => Some(msg),
            Ok(None) => Some(In::Closed("connection tasks ended".to_owned())),
            Err(_) => None,
        }
    }

    /// Waits up to `wait` for a text frame equal to `want`, skipping others; `Err` with what
    /// happened instead.
    pub async fn expect(&mut self, want: &str, wait: Duration) -> Result<(), String> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                Some(In::Text(t)) if t == want => return Ok(()),
                Some(In::Closed(why)) => return Err(format!("connection closed ({why})")),
                Some(_) => {}
                None => return Err(format!("no {} within {wait:?}", short(want))),
            }
        }
    }
}

async fn read_loop(
    mut stream: SplitStream<Ws>,
    in_tx: mpsc::UnboundedSender<In>,
    pong_tx: mpsc::UnboundedSender<String>,
) {
    let why = loop {
        match stream.next().await {
            Some(Ok(Message::Text(t))) => {
                if t.as_str() == "2" {
                    let _ = pong_tx.send("3".to_owned());
                } else if in_tx.send(In::Text(t.as_str().to_owned())).is_err() {
                    return;
                }
            }
            Some(Ok(Message::Binary(_))) => {
                if in_tx.send(In::Binary).is_err() {
                    return;
                }
            }
            Some(Ok(Message::Close(frame))) => {
                break match frame {
                    Some(f) => format!("close frame {} {}", u16::from(f.code), f.reason),
                    None => "close frame".to_owned(),
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => break format!("read error: {e}"),
            None => break "end of stream".to_owned(),
        }
    };
    let _ = in_tx.send(In::Closed(why));
}

async fn write_loop(
    mut sink: SplitSink<Ws, Message>,
    mut out_rx: mpsc::UnboundedReceiver<String>,
    mut pong_rx: mpsc::UnboundedReceiver<String>,
) {
    loop {
        let first = tokio::select! {
            biased;
            Some(pong) = pong_rx.recv() => pong,
            out = out_rx.recv() => match out {
                Some(out) => out,
                None => return,
            },
        };
        if sink.feed(Message::text(first)).await.is_err() {
            return;
        }
        for _ in 0..256 {
            let next = match pong_rx.try_recv() {
                Ok(pong) => pong,
                Err(_) => match out_rx.try_recv() {
                    Ok(out) => out,
                    Err(_) => break,
                },
            };
            if sink.feed(Message::text(next)).await.is_err() {
                return;
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

/// The ack id of an ACK packet for the namespace `/` (`43<id>[...]`), as text.
pub fn ack_id(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("43")?;
    let end = rest.find('[')?;
    let id = &rest[..end];
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then_some(id)
}

/// `text` cut to 80 characters for a report line.
pub fn short(text: &str) -> String {
    if text.chars().count() <= 80 {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(80).collect::<String>())
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body (read by `Content-Length`, chunked, or to the end of the connection).
    pub body: Vec<u8>,
}

/// Reads one HTTP/1.1 response from `io`.
pub async fn read_response(io: &mut (impl AsyncRead + Unpin)) -> io::Result<Response> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 64 * 1024 {
            return Err(err("response head over 64 KiB"));
        }
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before a response",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut rest = buf[head_end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| err(format!("bad status line in {}", short(&head))))?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse::<usize>().ok();
        } else if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    if status == 101 || status == 204 || status == 304 {
        return Ok(Response {
            status,
            body: Vec::new(),
        });
    }
    let body = if chunked {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                read_more(io, &mut rest).await?;
            };
            let size_text = String::from_utf8_lossy(&rest[..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| err("bad chunk size"))?;
            rest.drain(..line_end + 2);
            while rest.len() < size + 2 {
                read_more(io, &mut rest).await?;
            }
            body.extend_from_slice(&rest[..size]);
            rest.drain(..size + 2);
            if size == 0 {
                break body;
            }
        }
    } else if let Some(length) = length {
        while rest.len() < length {
            read_more(io, &mut rest).await?;
        }
        rest.truncate(length);
        rest
    } else {
        let _ = io.read_to_end(&mut rest).await;
        rest
    };
    Ok(Response { status, body })
}

async fn read_more(io: &mut (impl AsyncRead + Unpin), buf: &mut Vec<u8>) -> io::Result<()> {
    let mut chunk = [0u8; 8192];
    let n = io.read(&mut chunk).await?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed inside a response",
        ));
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

/// Opens a polling session on `/socket.io/` (its own TCP connection, closed after): the sid.
pub async fn polling_handshake(port: u16) -> io::Result<String> {
    use tokio::io::AsyncWriteExt;
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let req = format!(
        "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Connection: close\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await?;
    let res = timeout(Duration::from_secs(10), read_response(&mut tcp))
        .await
        .map_err(|_| err("handshake timed out"))??;
    let body = String::from_utf8_lossy(&res.body);
    if res.status != 200 {
        return Err(err(format!(
            "handshake: HTTP {} {}",
            res.status,
            short(&body)
        )));
    }
    body.strip_prefix('0')
        .and_then(|o| o.split("\"sid\":\"").nth(1))
        .and_then(|s| s.split('"').next())
        .map(str::to_owned)
        .ok_or_else(|| err(format!("bad open packet {}", short(&body))))
}

/// Latency statistics in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    /// How many samples.
    pub n: usize,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Stats {
    /// The statistics of `samples` (milliseconds).
    pub fn of(samples: &mut [f64]) -> Stats {
        if samples.is_empty() {
            return Stats::default();
        }
        samples.sort_by(f64::total_cmp);
        let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
        Stats {
            n: samples.len(),
            p50: at(0.5),
            p99: at(0.99),
            max: samples[samples.len() - 1],
        }
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (n={})",
            self.p50, self.p99, self.max, self.n
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_ids_are_read_from_ack_packets_of_the_main_namespace() {
        assert_eq!(ack_id("437[\"x\"]"), Some("7"));
        assert_eq!(
            ack_id("43123456789012345678901234567890[\"x\"]"),
            Some("123456789012345678901234567890")
        );
        assert_eq!(ack_id("43[\"x\"]"), None);
        assert_eq!(ack_id("42[\"x\"]"), None);
        assert_eq!(ack_id("43/custom,7[\"x\"]"), None);
    }

    #[test]
    fn percentiles_of_sorted_samples() {
        let mut samples: Vec<f64> = (1..=100).map(f64::from).collect();
        samples.reverse();
        let s = Stats::of(&mut samples);
        assert_eq!((s.n, s.p50, s.p99, s.max), (100, 51.0, 99.0, 100.0));
        assert_eq!(Stats::of(&mut []).n, 0);
    }

    #[tokio::test]
    async fn responses_by_length_chunked_and_to_the_end() {
        let mut r: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcEXTRA";
        let res = read_response(&mut r).await.unwrap();
        assert_eq!((res.status, res.body.as_slice()), (200, &b"abc"[..]));
        let mut r: &[u8] =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let res = read_response(&mut r).await.unwrap();
        assert_eq!(res.body, b"abcde");
        let mut r: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\n\r\nbig";
        let res = read_response(&mut r).await.unwrap();
        assert_eq!((res.status, res.body.as_slice()), (431, &b"big"[..]));
        let mut r: &[u8] = b"HTTP/1.1 200";
        assert!(read_response(&mut r).await.is_err());
    }
}
