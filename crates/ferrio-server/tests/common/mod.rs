//! Raw clients for the server's tests: a WebSocket client that writes exactly the frames it is
//! given (a burst in one write if asked) and reads the server's frames one by one, and a
//! one-request-per-connection HTTP client for long-polling. Built on tokio's `TcpStream`
//! readiness API only.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use ferrio_server::Ferrio;
use tokio::net::{TcpListener, TcpSocket, TcpStream};

pub mod raw_http;

/// The most any test waits for one thing before it fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Serves `io` on a free port of 127.0.0.1, on the current runtime.
pub async fn serve(io: Ferrio) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(io.serve(listener));
    addr
}

/// Waits for `fut`, at most [`PATIENCE`].
pub async fn patiently<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(PATIENCE, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

async fn connect(addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    // Room for a whole burst in the kernel, so that it is written in one go.
    socket.set_send_buffer_size(4 << 20).expect("send buffer");
    socket.connect(addr).await.expect("connect")
}

async fn write_all(stream: &TcpStream, mut buf: &[u8]) {
    while !buf.is_empty() {
        stream.writable().await.expect("writable");
        match stream.try_write(buf) {
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("write: {e}"),
        }
    }
}

/// Reads more bytes into `buf`; false at the end of the stream.
async fn read_more(stream: &TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        stream.readable().await.expect("readable");
        match stream.try_read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return true;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// A WebSocket client speaking Engine.IO 4 text frames.
pub struct RawWs {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RawWs {
    /// Opens a WebSocket session on `/socket.io/` and reads its open packet.
    pub async fn open(addr: SocketAddr) -> RawWs {
        let stream = connect(addr).await;
        let request = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n\
             Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        write_all(&stream, request.as_bytes()).await;
        let mut ws = RawWs {
            stream,
            buf: Vec::new(),
        };
        let end = loop {
            if let Some(i) = ws.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            assert!(
                read_more(&ws.stream, &mut ws.buf).await,
                "closed in handshake"
            );
        };
        let head = String::from_utf8_lossy(&ws.buf[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        ws.buf.drain(..end);
        let open = ws.recv().await;
        assert!(open.starts_with("0{"), "open packet: {open}");
        ws
    }

    /// One masked text frame (with a zero mask key, which leaves the payload as it is).
    fn frame(text: &str) -> Vec<u8> {
        let len = text.len();
        let mut f = vec![0x81];
        if len < 126 {
            f.push(0x80 | len as u8);
        } else if len <= 0xffff {
            f.push(0x80 | 126);
            f.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            f.push(0x80 | 127);
            f.extend_from_slice(&(len as u64).to_be_bytes());
        }
        f.extend_from_slice(&[0; 4]);
        f.extend_from_slice(text.as_bytes());
        f
    }

    /// Sends one text message.
    pub async fn send(&self, text: &str) {
        write_all(&self.stream, &Self::frame(text)).await;
    }

    /// Writes `bytes` as they are (a frame the test made itself).
    pub async fn send_raw(&self, bytes: &[u8]) {
        write_all(&self.stream, bytes).await;
    }

    /// Sends these text messages in one write.
    pub async fn send_burst<S: AsRef<str>>(&self, texts: &[S]) {
        let bytes: Vec<u8> = texts.iter().flat_map(|t| Self::frame(t.as_ref())).collect();
        write_all(&self.stream, &bytes).await;
    }

    /// The next text message from the server (Engine.IO pings are answered and skipped).
    pub async fn recv(&mut self) -> String {
        loop {
            let text = patiently("a WebSocket message", self.next_message()).await;
            if text == "2" {
                self.send("3").await;
                continue;
            }
            return text;
        }
    }

    async fn next_message(&mut self) -> String {
        loop {
            if let Some((opcode, payload, used)) = parse_frame(&self.buf) {
                self.buf.drain(..used);
                match opcode {
                    1 => return String::from_utf8(payload).expect("utf-8"),
                    8 => panic!("the server closed the WebSocket"),
                    _ => continue,
                }
            }
            assert!(
                read_more(&self.stream, &mut self.buf).await,
                "the connection closed"
            );
        }
    }
}

/// A whole unmasked frame at the start of `buf`: opcode, payload, bytes used.
fn parse_frame(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let b0 = *buf.first()?;
    let b1 = *buf.get(1)?;
    let (len, start) = match b1 & 0x7f {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let payload = buf.get(start..start + len)?.to_vec();
    Some((b0 & 0x0f, payload, start + len))
}

/// One HTTP/1.1 request on a connection of its own; the response's status and body.
pub async fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let stream = connect(addr).await;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    write_all(&stream, &request).await;
    let mut buf = Vec::new();
    while read_more(&stream, &mut buf).await {}
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let body = buf[end..].to_vec();
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    (status, body)
}

/// A long-polling Engine.IO 4 session.
pub struct Polling {
    addr: SocketAddr,
    sid: String,
}

impl Polling {
    /// Opens a session with a handshake GET.
    pub async fn open(addr: SocketAddr) -> Polling {
        let (status, body) = http(addr, "GET", "/socket.io/?EIO=4&transport=polling", b"").await;
        assert_eq!(status, 200);
        let body = String::from_utf8(body).expect("utf-8");
        let sid = body
            .split("\"sid\":\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("a sid")
            .to_owned();
        Polling { addr, sid }
    }

    fn path(&self) -> String {
        format!("/socket.io/?EIO=4&transport=polling&sid={}", self.sid)
    }

    /// POSTs these packets in one payload.
    pub async fn post<S: AsRef<str>>(&self, packets: &[S]) {
        let payload: Vec<&str> = packets.iter().map(AsRef::as_ref).collect();
        let (status, body) = http(
            self.addr,
            "POST",
            &self.path(),
            payload.join("\u{1e}").as_bytes(),
        )
        .await;
        assert_eq!((status, body.as_slice()), (200, b"ok".as_slice()));
    }

    /// One GET: the packets it brings.
    pub async fn get(&self) -> Vec<String> {
        let (status, body) =
            patiently("a GET's answer", http(self.addr, "GET", &self.path(), b"")).await;
        assert_eq!(status, 200);
        String::from_utf8(body)
            .expect("utf-8")
            .split('\u{1e}')
            .map(str::to_owned)
            .collect()
    }
}
