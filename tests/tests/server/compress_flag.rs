//! The per-packet `compress` flag (`socket.compress(false).emit(..)`, `io.compress(false)`,
//! `to(room).compress(false)`): with `false` a message goes uncompressed over a WebSocket with
//! `permessage-deflate` whatever its size, and a polling response holding only such packets is
//! not compressed by `http_compression`; by default both compress from their threshold on.

use std::io::Read as _;
use std::net::SocketAddr;

use bytes::Bytes;
use ferrio_server::{Ferrio, Message, PerMessageDeflate, Socket};
use flate2::{Decompress, FlushDecompress};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::client::{handshake, http, polling, post, HttpResponse, WAIT};

/// The size of the `big` event's argument: over both thresholds (1024 bytes).
const BIG: usize = 2000;

/// A server whose sockets join `room` and, on `go` with a mode, send `big` (`BIG` bytes of
/// text) as the mode says: to the socket (`default`, `plain`: `compress(false)`,
/// `volatile-plain`, and asking for an ack: `ack-plain`, `timeout-ack-plain`), or as a
/// broadcast (`broadcast`, `broadcast-plain`, `room-plain`, and with an ack:
/// `broadcast-ack-plain`).
async fn start(io: Ferrio) -> SocketAddr {
    let server = io.clone();
    io.of("/").on_connection(move |socket: Socket| {
        let io = server.clone();
        async move {
            socket.join("room");
            socket.on("go", move |socket: Socket, msg: Message| {
                let io = io.clone();
                async move {
                    let (mode,): (String,) = msg.args().expect("a mode");
                    let big = ("a".repeat(BIG),);
                    let sent = match mode.as_str() {
                        "default" => socket.emit("big", &big),
                        "plain" => socket.compress(false).emit("big", &big),
                        "volatile-plain" => socket.volatile().compress(false).emit("big", &big),
                        "broadcast" => io.emit("big", &big),
                        "broadcast-plain" => io.compress(false).emit("big", &big),
                        "room-plain" => io.to("room").compress(false).emit("big", &big),
                        // The emits with ack send at once; their answers are not waited for.
                        "ack-plain" => {
                            drop(socket.compress(false).emit_with_ack("big", &big));
                            Ok(())
                        }
                        "timeout-ack-plain" => {
                            let ack = socket.timeout(WAIT).compress(false);
                            drop(ack.emit_with_ack("big", &big));
                            Ok(())
                        }
                        "broadcast-ack-plain" => {
                            let ack = io.compress(false).timeout(WAIT);
                            drop(ack.emit_with_ack("big", &big));
                            Ok(())
                        }
                        other => panic!("unknown mode {other}"),
                    };
                    sent.expect("emit");
                }
            });
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(io.serve(listener));
    addr
}

/// The `go` event asking for `mode`.
fn go(mode: &str) -> String {
    format!(r#"42["go","{mode}"]"#)
}

/// The `big` event as the client reads it.
fn big_event() -> String {
    format!(r#"42["big","{}"]"#, "a".repeat(BIG))
}

/// Checks that `text` is the `big` event, with an ack id or not.
fn check_big(text: &str, mode: &str) {
    let id = text
        .strip_prefix("42")
        .and_then(|rest| rest.split_once('['))
        .map(|(id, _)| id)
        .unwrap_or_else(|| panic!("{mode}: not an event"));
    assert!(id.chars().all(|c| c.is_ascii_digit()), "{mode}: {id}");
    assert_eq!(
        text.replacen(&format!("42{id}"), "42", 1),
        big_event(),
        "{mode}"
    );
}

// ---- WebSocket ----------------------------------------------------------------------------

/// Opens a raw Socket.IO WebSocket offering `permessage-deflate` and joins `/`; checks that
/// compression was agreed.
async fn open_ws(addr: SocketAddr) -> TcpStream {
    let mut raw = TcpStream::connect(addr).await.unwrap();
    raw.write_all(
        b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
    )
    .await
    .unwrap();
    let mut response = Vec::new();
    while !response.ends_with(b"\r\n\r\n") {
        response.push(raw.read_u8().await.unwrap());
    }
    let response = String::from_utf8(response).unwrap().to_ascii_lowercase();
    assert!(response.starts_with("http/1.1 101"), "{response}");
    assert!(
        response.contains("sec-websocket-extensions: permessage-deflate"),
        "{response}"
    );
    let (first, open) = next_frame(&mut raw).await;
    assert_eq!((first, open[0]), (0x81, b'0'));
    raw.write_all(&frame(b"40")).await.unwrap();
    let (first, accept) = next_frame(&mut raw).await;
    assert_eq!(first, 0x81);
    assert!(
        accept.starts_with(b"40{"),
        "{}",
        String::from_utf8_lossy(&accept)
    );
    raw
}

/// The next frame from the server: its first byte and payload.
async fn next_frame(raw: &mut TcpStream) -> (u8, Vec<u8>) {
    tokio::time::timeout(WAIT, async {
        let mut head = [0u8; 2];
        raw.read_exact(&mut head).await.unwrap();
        let len = match head[1] & 0x7f {
            126 => raw.read_u16().await.unwrap() as usize,
            127 => raw.read_u64().await.unwrap() as usize,
            n => n as usize,
        };
        let mut payload = vec![0u8; len];
        raw.read_exact(&mut payload).await.unwrap();
        (head[0], payload)
    })
    .await
    .expect("a frame in time")
}

/// A masked, uncompressed client text frame (zero key).
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x81];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

/// Inflates one message (each compressed on its own: no context takeover by default).
fn inflate(data: &[u8]) -> Vec<u8> {
    let mut input = data.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(BIG * 2);
    Decompress::new(false)
        .decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .unwrap();
    out
}

/// Sends `go` with `mode` and reads `big`: true if it came compressed (RSV1).
async fn big_over_ws(raw: &mut TcpStream, mode: &str) -> bool {
    raw.write_all(&frame(go(mode).as_bytes())).await.unwrap();
    let (first, payload) = next_frame(raw).await;
    let (compressed, text) = match first {
        0xc1 => (true, inflate(&payload)),
        0x81 => (false, payload),
        other => panic!("{mode}: unexpected frame {other:#x}"),
    };
    check_big(&String::from_utf8(text).unwrap(), mode);
    compressed
}

#[tokio::test]
async fn compress_false_sends_a_large_websocket_message_uncompressed() {
    let io = Ferrio::builder()
        .per_message_deflate(PerMessageDeflate::new())
        .build();
    let addr = start(io).await;
    let mut raw = open_ws(addr).await;
    assert!(
        big_over_ws(&mut raw, "default").await,
        "compressed by default"
    );
    assert!(!big_over_ws(&mut raw, "plain").await, "compress(false)");
    // The flag applies to that emit only.
    assert!(big_over_ws(&mut raw, "default").await, "the next emit");
    assert!(!big_over_ws(&mut raw, "volatile-plain").await, "volatile");
    assert!(!big_over_ws(&mut raw, "ack-plain").await, "with ack");
    assert!(
        !big_over_ws(&mut raw, "timeout-ack-plain").await,
        "with ack and timeout"
    );
}

#[tokio::test]
async fn compress_false_on_a_broadcast_sends_it_uncompressed() {
    let io = Ferrio::builder()
        .per_message_deflate(PerMessageDeflate::new())
        .build();
    let addr = start(io).await;
    let mut raw = open_ws(addr).await;
    assert!(big_over_ws(&mut raw, "broadcast").await, "io.emit");
    assert!(
        !big_over_ws(&mut raw, "broadcast-plain").await,
        "io.compress(false)"
    );
    assert!(
        !big_over_ws(&mut raw, "room-plain").await,
        "to(room).compress(false)"
    );
    assert!(
        !big_over_ws(&mut raw, "broadcast-ack-plain").await,
        "with ack"
    );
}

// ---- polling ------------------------------------------------------------------------------

/// GETs until a response holds something, with `Accept-Encoding: gzip`.
async fn poll_gzip(addr: SocketAddr, url: &str) -> HttpResponse {
    let r = http(
        addr,
        "GET",
        url,
        &[("accept-encoding", "gzip")],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r
}

/// The body as text, gunzipped if it says so.
fn decoded(r: &HttpResponse) -> String {
    match r.header("content-encoding") {
        Some("gzip") => {
            let mut out = String::new();
            flate2::read::GzDecoder::new(&r.body[..])
                .read_to_string(&mut out)
                .expect("gzip");
            out
        }
        None => r.text(),
        Some(other) => panic!("unexpected encoding {other}"),
    }
}

/// Opens a polling session joined to `/`, its CONNECT reply read: the session's URL.
async fn polling_session(addr: SocketAddr) -> String {
    let sid = handshake(addr, "/socket.io/").await;
    let url = polling("/socket.io/", &sid);
    assert_eq!(post(addr, &url, "40").await.status, 200);
    let accept = decoded(&poll_gzip(addr, &url).await);
    assert!(accept.starts_with("40{"), "{accept}");
    url
}

/// Sends `go` with `mode` and polls the `big` event alone in its response.
async fn big_over_polling(addr: SocketAddr, url: &str, mode: &str) -> HttpResponse {
    assert_eq!(post(addr, url, go(mode)).await.status, 200);
    let r = poll_gzip(addr, url).await;
    assert_eq!(decoded(&r), big_event(), "{mode}");
    r
}

#[tokio::test]
async fn compress_false_leaves_a_large_polling_response_uncompressed() {
    let io = Ferrio::builder().build();
    let addr = start(io).await;
    let url = polling_session(addr).await;
    let r = big_over_polling(addr, &url, "default").await;
    assert_eq!(r.header("content-encoding"), Some("gzip"), "by default");
    let r = big_over_polling(addr, &url, "plain").await;
    assert_eq!(r.header("content-encoding"), None, "compress(false)");
    let r = big_over_polling(addr, &url, "broadcast-plain").await;
    assert_eq!(r.header("content-encoding"), None, "io.compress(false)");
    let r = big_over_polling(addr, &url, "broadcast").await;
    assert_eq!(r.header("content-encoding"), Some("gzip"), "io.emit");
}
