//! `ferrio-client` compressing what it sends over a WebSocket with `permessage-deflate` (RFC
//! 7692), against `ferrio-server` with compression on. A TCP proxy between them records the
//! client's WebSocket frames (first byte and payload length) on their way to the server, so
//! the tests see which messages went compressed (RSV1) while the echo checks that the server
//! inflated them right.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrio_client::{Socket, Transport};
use ferrio_server::PerMessageDeflate;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(10);

/// The WebSocket frames seen by the proxy: sent by the client (or the server), first byte and
/// payload length.
type Frames = Arc<Mutex<Vec<(bool, u8, u64)>>>;

/// Starts a Socket.IO server with `deflate` whose `echo` event acknowledges its arguments.
async fn server(deflate: PerMessageDeflate) -> std::net::SocketAddr {
    let io = ferrio_server::Ferrio::builder()
        .per_message_deflate(deflate)
        .build();
    io.of("/")
        .on_connection(|socket: ferrio_server::Socket| async move {
            socket.on(
                "echo",
                |_s: ferrio_server::Socket, msg: ferrio_server::Message| async move {
                    msg.ack(&msg.raw_args()?)?;
                    Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
                },
            );
        });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(io.serve(listener));
    addr
}

/// Starts a proxy to `target` that records the WebSocket frames both ways.
async fn proxy(target: std::net::SocketAddr) -> (std::net::SocketAddr, Frames) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let frames = Frames::default();
    let seen = frames.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(target).await else {
                return;
            };
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::spawn(watch(server_read, client_write, seen.clone(), false));
            tokio::spawn(watch(client_read, server_write, seen.clone(), true));
        }
    });
    (addr, frames)
}

/// Copies one direction of a proxied connection, recording its WebSocket frames once the HTTP
/// head that starts it (the request or the response) shows an upgrade to WebSocket.
async fn watch(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    seen: Frames,
    from_client: bool,
) {
    let mut buffer = Vec::new();
    let mut websocket = None;
    let mut chunk = vec![0u8; 65536];
    loop {
        let n = match from.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buffer.extend_from_slice(&chunk[..n]);
        // Recorded before the other end can see them.
        if websocket.is_none() {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buffer[..end]).to_lowercase();
                websocket = Some(head.contains("upgrade: websocket"));
                buffer.drain(..end + 4);
            }
        }
        if websocket == Some(true) {
            while let Some((first, masked, len, size)) = frame_header(&buffer) {
                if buffer.len() < size + len as usize {
                    break;
                }
                assert_eq!(masked, from_client, "only client frames are masked");
                seen.lock().unwrap().push((from_client, first, len));
                buffer.drain(..size + len as usize);
            }
        } else if websocket == Some(false) {
            buffer.clear();
        }
        if to.write_all(&chunk[..n]).await.is_err() {
            return;
        }
    }
}

/// A frame's header at the start of `b`: first byte, masked, payload length, header length.
fn frame_header(b: &[u8]) -> Option<(u8, bool, u64, usize)> {
    let (first, second) = (*b.first()?, *b.get(1)?);
    let masked = second & 0x80 != 0;
    let (len, size) = match second & 0x7f {
        126 => (u64::from(u16::from_be_bytes([*b.get(2)?, *b.get(3)?])), 4),
        127 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(b.get(2..10)?);
            (u64::from_be_bytes(n), 10)
        }
        n => (u64::from(n), 2),
    };
    Some((first, masked, len, size + if masked { 4 } else { 0 }))
}

/// The data frames (text or binary, not continuations) recorded from `from` on, sent by the
/// client (`from_client`) or the server: first byte and payload length.
fn sent_by(frames: &Frames, from: usize, from_client: bool) -> Vec<(u8, u64)> {
    frames.lock().unwrap()[from..]
        .iter()
        .filter(|(client, first, _)| *client == from_client && matches!(first & 0x0f, 1 | 2))
        .map(|(_, first, len)| (*first, *len))
        .collect()
}

/// The client's data frames recorded from `from` on.
fn data_frames(frames: &Frames, from: usize) -> Vec<(u8, u64)> {
    sent_by(frames, from, true)
}

async fn connect(addr: std::net::SocketAddr, deflate: bool) -> Socket {
    ferrio_client::io(&format!("http://{addr}/"))
        .transports(&[Transport::WebSocket])
        .per_message_deflate(deflate)
        .force_new(true)
        .reconnection(false)
        .connect()
        .await
        .expect("connects")
}

/// Emits `echo` with `text` (through `socket.compress(compress)`) and checks the echo.
async fn echo(socket: &Socket, text: &str, compress: bool) {
    let reply = socket
        .compress(compress)
        .timeout(WAIT)
        .emit_with_ack("echo", &(text,))
        .await
        .expect("echo acked");
    let (back,): (Value,) = reply.args().expect("one argument");
    assert_eq!(back.as_str(), Some(text));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_compresses_from_the_threshold_on_when_allowed() {
    let (addr, frames) = proxy(server(PerMessageDeflate::new()).await).await;
    let socket = connect(addr, true).await;
    let big = "hello world, ".repeat(8_000);

    // A large message goes compressed, and the server inflates it right.
    let from = frames.lock().unwrap().len();
    echo(&socket, &big, true).await;
    let sent = data_frames(&frames, from);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].0, 0xc1, "final, RSV1, text: {sent:?}");
    assert!(sent[0].1 < 10_000, "{sent:?}");

    // Below the threshold: sent as it is.
    let from = frames.lock().unwrap().len();
    echo(&socket, &"x".repeat(500), true).await;
    let sent = data_frames(&frames, from);
    assert!(
        matches!(sent[..], [(0x81, len)] if len > 500 && len < 1024),
        "{sent:?}"
    );

    // `compress(false)`: sent as it is whatever its size.
    let from = frames.lock().unwrap().len();
    echo(&socket, &big, false).await;
    let sent = data_frames(&frames, from);
    assert!(
        matches!(sent[..], [(0x81, len)] if len > big.len() as u64),
        "{sent:?}"
    );

    // Without context takeover each message is compressed on its own: the same size twice.
    let from = frames.lock().unwrap().len();
    echo(&socket, &big, true).await;
    echo(&socket, &big, true).await;
    let sent = data_frames(&frames, from);
    assert_eq!(sent.len(), 2);
    assert_eq!((sent[0].0, sent[1].0), (0xc1, 0xc1));
    assert_eq!(sent[0].1, sent[1].1);
    socket.disconnect();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_keeps_its_context_when_the_server_allows() {
    let settings = PerMessageDeflate::new().client_no_context_takeover(false);
    let (addr, frames) = proxy(server(settings).await).await;
    let socket = connect(addr, true).await;
    // Not repetitive within itself, so only the context makes the second one small.
    let mut x = 0x2545_f491_u32;
    let big: String = (0..20_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect();
    let from = frames.lock().unwrap().len();
    echo(&socket, &big, true).await;
    echo(&socket, &big, true).await;
    let sent = data_frames(&frames, from);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!((sent[0].0, sent[1].0), (0xc1, 0xc1));
    assert!(sent[1].1 * 4 < sent[0].1, "{sent:?}");
    socket.disconnect();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_without_the_option_sends_uncompressed() {
    let (addr, frames) = proxy(server(PerMessageDeflate::new()).await).await;
    let socket = connect(addr, false).await;
    let big = "hello world, ".repeat(8_000);
    let from = frames.lock().unwrap().len();
    echo(&socket, &big, true).await;
    let sent = data_frames(&frames, from);
    assert!(
        matches!(sent[..], [(0x81, len)] if len > big.len() as u64),
        "{sent:?}"
    );
    socket.disconnect();
}

/// Headless Chromium's own WebSocket against a Ferrio Engine.IO echo server with compression
/// on (`tests/node/deflate-browser.js`, with playwright-core from `bindings/wasm`): the
/// extension is agreed, 100 KB messages both ways come back unchanged, and the proxy saw them
/// compressed in both directions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_and_the_server_compress_both_ways() {
    let engine: ferrio_server::engine::Engine = ferrio_server::engine::Engine::builder()
        .per_message_deflate(PerMessageDeflate::new())
        .on_connection(|mut socket| async move {
            while let Some(message) = socket.recv().await {
                socket.send(message);
            }
        })
        .build();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap();
    let server = tokio::spawn(engine.serve(listener));
    let (addr, frames) = proxy(target).await;
    let url = format!("ws://{addr}/engine.io/?EIO=4&transport=websocket");
    let input = serde_json::json!({ "url": url }).to_string();
    let out = tokio::task::spawn_blocking(move || {
        ferrio_tests::run_node_script("deflate-browser.js", input.as_bytes())
    })
    .await
    .expect("node ran");
    server.abort();
    let out = String::from_utf8_lossy(&out);
    for step in ["ok negotiated", "ok text", "ok binary", "ALL OK"] {
        assert!(out.lines().any(|l| l == step), "{step} missing in:\n{out}");
    }
    // The browser's messages and the echoes: compressed (RSV1), text then binary, each well
    // under its 100 KB.
    for from_client in [true, false] {
        let big: Vec<(u8, u64)> = sent_by(&frames, 0, from_client)
            .into_iter()
            .filter(|(first, _)| first & 0x40 != 0)
            .collect();
        assert_eq!(big.len(), 2, "{from_client}: {big:?}");
        assert_eq!((big[0].0 & 0x0f, big[1].0 & 0x0f), (1, 2), "{big:?}");
        assert!(big.iter().all(|(_, len)| *len < 90_000), "{big:?}");
    }
}
