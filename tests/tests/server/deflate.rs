//! WebSocket compression (`permessage-deflate`, RFC 7692) on the server, with raw frames over
//! TCP: the negotiation, compressed messages both ways, the threshold, context takeover, and
//! the limits on what a compressed message inflates to.

use std::net::SocketAddr;

use ferrio_server::engine::{Engine, EngineBuilder};
use ferrio_server::PerMessageDeflate;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::client::WAIT;

/// Starts a bare Engine.IO echo server made by `builder`.
async fn echo_server(builder: EngineBuilder) -> SocketAddr {
    let engine: Engine = builder
        .on_connection(|mut socket| async move {
            while let Some(message) = socket.recv().await {
                socket.send(message);
            }
        })
        .build();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(engine.serve(listener));
    addr
}

/// Opens a raw WebSocket with `extensions` offered: the socket and the answer's
/// `Sec-WebSocket-Extensions` (lower case), after an uncompressed `open` frame.
async fn open(addr: SocketAddr, extensions: &str) -> (TcpStream, Option<String>) {
    let (raw, answer, open) = open_with(addr, extensions).await;
    assert_eq!((open.0, open.1[0]), (0x81, b'0'));
    (raw, answer)
}

/// [`open`], returning the `open` frame (first byte and payload) instead of checking it.
async fn open_with(
    addr: SocketAddr,
    extensions: &str,
) -> (TcpStream, Option<String>, (u8, Vec<u8>)) {
    open_at(addr, "/engine.io/", extensions, "").await
}

/// [`open_with`] on the server's `path`, with `headers` (lines ending with CRLF) added.
async fn open_at(
    addr: SocketAddr,
    path: &str,
    extensions: &str,
    headers: &str,
) -> (TcpStream, Option<String>, (u8, Vec<u8>)) {
    let mut raw = TcpStream::connect(addr).await.unwrap();
    raw.write_all(
        format!(
            "GET {path}?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Extensions: {extensions}\r\n{headers}\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut response = Vec::new();
    while !response.ends_with(b"\r\n\r\n") {
        response.push(raw.read_u8().await.unwrap());
    }
    let response = String::from_utf8(response).unwrap().to_ascii_lowercase();
    assert!(response.starts_with("http/1.1 101"), "{response}");
    let answer = response
        .lines()
        .find_map(|l| l.strip_prefix("sec-websocket-extensions: "))
        .map(str::to_owned);
    let open = next_frame(&mut raw).await.unwrap();
    (raw, answer, open)
}

/// The next frame from the server (its first byte and payload), `None` at the end.
async fn next_frame(raw: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    tokio::time::timeout(WAIT, async {
        let mut head = [0u8; 2];
        raw.read_exact(&mut head).await.ok()?;
        let len = match head[1] & 0x7f {
            126 => raw.read_u16().await.ok()? as usize,
            127 => raw.read_u64().await.ok()? as usize,
            n => n as usize,
        };
        let mut payload = vec![0u8; len];
        raw.read_exact(&mut payload).await.ok()?;
        Some((head[0], payload))
    })
    .await
    .expect("a frame or the end in time")
}

/// The code of the server's close frame, skipping other frames.
async fn close_code(raw: &mut TcpStream) -> Option<u16> {
    while let Some((first, payload)) = next_frame(raw).await {
        if first == 0x88 {
            return (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
        }
    }
    None
}

/// A masked client frame (zero key).
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![first];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n < 65536 => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

/// Compresses one message with `c` as RFC 7692 says (a sync flush, its 4-byte tail removed).
fn deflate(c: &mut Compress, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
    assert!(out.len() < out.capacity());
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

/// Inflates one message with `d`.
fn inflate(d: &mut Decompress, data: &[u8]) -> Vec<u8> {
    let mut input = data.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(10_000_000);
    d.decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .unwrap();
    out
}

fn compressor() -> Compress {
    Compress::new(Compression::default(), false)
}

#[tokio::test]
async fn compressed_messages_both_ways_from_the_threshold_on() {
    let addr = echo_server(Engine::builder().per_message_deflate(PerMessageDeflate::new())).await;
    let (mut raw, answer) = open(addr, "permessage-deflate; client_max_window_bits").await;
    assert_eq!(
        answer.as_deref(),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
    );
    let big = format!("4{}", "hello world ".repeat(1000));

    // A compressed message from the client is read; the echo, over the threshold, is
    // compressed (RSV1 set).
    let compressed = deflate(&mut compressor(), big.as_bytes());
    assert!(compressed.len() < 200);
    raw.write_all(&frame(0xc1, &compressed)).await.unwrap();
    let (first, payload) = next_frame(&mut raw).await.unwrap();
    assert_eq!(first, 0xc1);
    assert!(payload.len() < 200);
    assert_eq!(
        inflate(&mut Decompress::new(false), &payload),
        big.as_bytes()
    );

    // The same, sent uncompressed: the echo is compressed all the same.
    raw.write_all(&frame(0x81, big.as_bytes())).await.unwrap();
    let (first, payload) = next_frame(&mut raw).await.unwrap();
    assert_eq!(first, 0xc1);
    assert_eq!(
        inflate(&mut Decompress::new(false), &payload),
        big.as_bytes()
    );

    // Below the threshold (1024 bytes), the echo goes uncompressed.
    let small = format!("4{}", "x".repeat(1022));
    raw.write_all(&frame(0xc1, &deflate(&mut compressor(), small.as_bytes())))
        .await
        .unwrap();
    assert_eq!(
        next_frame(&mut raw).await.unwrap(),
        (0x81, small.into_bytes())
    );
    let at = format!("4{}", "x".repeat(1023));
    raw.write_all(&frame(0x81, at.as_bytes())).await.unwrap();
    let (first, payload) = next_frame(&mut raw).await.unwrap();
    assert_eq!(first, 0xc1);
    assert_eq!(
        inflate(&mut Decompress::new(false), &payload),
        at.as_bytes()
    );

    // Binary, in two fragments (RSV1 on the first only).
    let data: Vec<u8> = (0..50_000u32).map(|i| (i % 7) as u8).collect();
    let compressed = deflate(&mut compressor(), &data);
    let (a, b) = compressed.split_at(compressed.len() / 2);
    raw.write_all(&[frame(0x42, a), frame(0x80, b)].concat())
        .await
        .unwrap();
    let (first, payload) = next_frame(&mut raw).await.unwrap();
    assert_eq!(first, 0xc2);
    assert_eq!(inflate(&mut Decompress::new(false), &payload), data);
}

#[tokio::test]
async fn the_settings_choose_the_threshold_and_context_takeover() {
    let settings = PerMessageDeflate::new()
        .threshold(10)
        .server_no_context_takeover(false)
        .client_no_context_takeover(false)
        .server_max_window_bits(12);
    let addr = echo_server(Engine::builder().per_message_deflate(settings)).await;
    let (mut raw, answer, (first, open_frame)) = open_with(addr, "permessage-deflate").await;
    assert_eq!(
        answer.as_deref(),
        Some("permessage-deflate; server_max_window_bits=12")
    );
    // Over the threshold of 10 bytes, the `open` packet comes compressed.
    assert_eq!(first, 0xc1);
    let mut server = Decompress::new(false);
    assert!(inflate(&mut server, &open_frame).starts_with(b"0{\"sid\""));
    // Both keep their context: each message refers to the ones before.
    let mut client = compressor();
    let message = "4the same words again and again";
    for _ in 0..3 {
        raw.write_all(&frame(0xc1, &deflate(&mut client, message.as_bytes())))
            .await
            .unwrap();
        let (first, payload) = next_frame(&mut raw).await.unwrap();
        assert_eq!(first, 0xc1);
        assert_eq!(inflate(&mut server, &payload), message.as_bytes());
    }
    // A client asking for a window of 8 is declined (zlib's raw DEFLATE has 9 to 15), and the
    // connection goes on uncompressed.
    let (mut raw, answer) = open(addr, "permessage-deflate; server_max_window_bits=8").await;
    assert_eq!(answer, None);
    raw.write_all(&frame(0x81, message.as_bytes()))
        .await
        .unwrap();
    assert_eq!(
        next_frame(&mut raw).await.unwrap(),
        (0x81, message.as_bytes().to_vec())
    );
}

#[tokio::test]
async fn off_by_default() {
    let addr = echo_server(Engine::builder()).await;
    let (mut raw, answer) = open(addr, "permessage-deflate; client_max_window_bits").await;
    assert_eq!(answer, None);
    let compressed = deflate(&mut compressor(), b"4hello hello hello");
    raw.write_all(&frame(0xc1, &compressed)).await.unwrap();
    assert_eq!(close_code(&mut raw).await, Some(1002));
}

#[tokio::test]
async fn a_small_frame_inflating_past_the_limit_closes_with_1009() {
    let addr = echo_server(
        Engine::builder()
            .max_http_buffer_size(100_000)
            .per_message_deflate(PerMessageDeflate::new()),
    )
    .await;
    // 1 MB of zeros compresses to about 1 KB.
    let bomb = deflate(&mut compressor(), &vec![0u8; 1_000_000]);
    assert!(bomb.len() < 2_000);
    let (mut raw, _) = open(addr, "permessage-deflate").await;
    raw.write_all(&frame(0xc2, &bomb)).await.unwrap();
    assert_eq!(close_code(&mut raw).await, Some(1009));
    // Split in fragments, each small: the message's inflated size counts.
    let (mut raw, _) = open(addr, "permessage-deflate").await;
    let mut frames = Vec::new();
    for (i, chunk) in bomb.chunks(100).enumerate() {
        let first = if i == 0 { 0x42 } else { 0x00 };
        frames.extend(frame(first, chunk));
    }
    raw.write_all(&frames).await.unwrap();
    assert_eq!(close_code(&mut raw).await, Some(1009));
    // Just under the limit is fine.
    let (mut raw, _) = open(addr, "permessage-deflate").await;
    let data = vec![b'4'; 100_000];
    raw.write_all(&frame(0xc1, &deflate(&mut compressor(), &data)))
        .await
        .unwrap();
    let (first, payload) = next_frame(&mut raw).await.unwrap();
    assert_eq!(first, 0xc1);
    assert_eq!(inflate(&mut Decompress::new(false), &payload), data);
}

#[tokio::test]
async fn bad_compressed_data_closes_with_1007_and_bad_bits_with_1002() {
    let addr = echo_server(Engine::builder().per_message_deflate(PerMessageDeflate::new())).await;
    // Not DEFLATE (a block of the reserved type 3).
    let (mut raw, _) = open(addr, "permessage-deflate").await;
    raw.write_all(&frame(0xc1, &[0xff; 16])).await.unwrap();
    assert_eq!(close_code(&mut raw).await, Some(1007));
    // RSV1 on a continuation frame, on a control frame, RSV2 set.
    for frames in [
        [frame(0x01, b"4a"), frame(0xc0, b"b")].concat(),
        frame(0xc9, b""),
        frame(0xa1, b"4a"),
    ] {
        let (mut raw, _) = open(addr, "permessage-deflate").await;
        raw.write_all(&frames).await.unwrap();
        assert_eq!(close_code(&mut raw).await, Some(1002), "{frames:x?}");
    }
}

/// The real `socket.io-client` under Node (its `ws` offers `permessage-deflate`) against a
/// Ferrio server with compression on: see `tests/node/client-deflate.js`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_client_with_compression() {
    node_client(&["websocket"]).await;
}

/// The same after an upgrade from polling: the probe's WebSocket is the compressed one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_client_with_compression_after_an_upgrade() {
    node_client(&["polling", "websocket"]).await;
}

async fn node_client(transports: &[&str]) {
    let io = ferrio_server::Ferrio::builder()
        .per_message_deflate(PerMessageDeflate::new())
        .build();
    crate::e2e::standard_handlers(&io.of("/"));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(io.serve(listener));
    let input = serde_json::json!({ "url": url, "transports": transports }).to_string();
    let out = tokio::task::spawn_blocking(move || {
        ferrio_tests::run_node_script("client-deflate.js", input.as_bytes())
    })
    .await
    .expect("node ran");
    server.abort();
    let out = String::from_utf8_lossy(&out);
    for step in [
        "ok negotiated",
        "ok text compressed both ways",
        "ok binary",
        "ok small uncompressed",
        "ALL OK",
    ] {
        assert!(out.lines().any(|l| l == step), "{step} missing in:\n{out}");
    }
}

/// Ferrio's tokio client with `per_message_deflate` against the npm `socket.io` server with
/// `perMessageDeflate` (`tests/node/server-deflate.js`): the offer is accepted and the server's
/// compressed messages are inflated, with the server's context dropped between messages or
/// kept (`--takeover`: the client's first offer declined, the second accepted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tokio_client_reads_a_node_servers_compressed_messages() {
    tokio_client_against_node(&[]).await;
    tokio_client_against_node(&["--takeover"]).await;
}

async fn tokio_client_against_node(args: &[&str]) {
    use std::time::Duration;
    use tokio::io::AsyncBufReadExt;

    let dir = ferrio_tests::node_dir();
    assert!(
        dir.join("node_modules").is_dir(),
        "run npm ci in tests/node"
    );
    let mut node = tokio::process::Command::new("node")
        .arg(dir.join("server-deflate.js"))
        .args(args)
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let mut lines = tokio::io::BufReader::new(node.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("the port in time")
        .unwrap()
        .unwrap();
    let port: u16 = line.strip_prefix("listening ").unwrap().parse().unwrap();

    for deflate in [true, false] {
        let socket = ferrio_client::io(&format!("http://127.0.0.1:{port}"))
            .transports(&[ferrio_client::Transport::WebSocket])
            .force_new(true)
            .reconnection(false)
            .per_message_deflate(deflate)
            .connect()
            .await
            .expect("connected");
        let big = "a compressible sentence, again and again. ".repeat(5000);
        // Twice: with context takeover the second refers to the first.
        for _ in 0..2 {
            let reply = socket
                .timeout(Duration::from_secs(5))
                .emit_with_ack("echo", &(&big,))
                .await
                .expect("acked");
            assert_eq!(reply.args::<(String,)>().unwrap().0, big);
        }
        let small = "x".repeat(100);
        let reply = socket
            .timeout(Duration::from_secs(5))
            .emit_with_ack("echo", &(&small,))
            .await
            .expect("acked");
        assert_eq!(reply.args::<(String,)>().unwrap().0, small);
        let stats = socket
            .timeout(Duration::from_secs(5))
            .emit_with_ack("stats", &())
            .await
            .expect("acked");
        let (stats,): (serde_json::Value,) = stats.args().unwrap();
        let written = stats["written"].as_u64().unwrap() as usize;
        if deflate {
            assert_eq!(stats["extensions"], "permessage-deflate");
            assert!(written < big.len() / 10, "{stats}");
        } else {
            assert_eq!(stats["extensions"], "");
            assert!(written > 2 * big.len(), "{stats}");
        }
        socket.disconnect();
    }
    let _ = node.kill().await;
}

/// Ferrio's tokio client with `per_message_deflate` against a Ferrio server with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tokio_client_against_a_ferrio_server_with_compression() {
    let io = ferrio_server::Ferrio::builder()
        .per_message_deflate(PerMessageDeflate::new().threshold(0))
        .build();
    crate::e2e::standard_handlers(&io.of("/"));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(io.serve(listener));
    let socket = ferrio_client::io(&url)
        .transports(&[ferrio_client::Transport::WebSocket])
        .force_new(true)
        .reconnection(false)
        .per_message_deflate(true)
        .connect()
        .await
        .expect("connected");
    for text in ["small".to_owned(), "big ".repeat(100_000)] {
        let reply = socket
            .timeout(WAIT)
            .emit_with_ack("message-with-ack", &(&text,))
            .await
            .expect("acked");
        assert_eq!(reply.args::<(String,)>().unwrap().0, text);
    }
    socket.disconnect();
    server.abort();
}

/// The e2e server's `/app/` profile negotiates compression (test-server spec 8.3): large
/// messages come compressed, small ones plain, compressed client messages are read; the other
/// profiles never negotiate it.
#[tokio::test]
async fn the_app_profile_compresses_from_1024_bytes_and_the_others_never() {
    let server = super::client::Server::start().await;
    for path in ["/socket.io/", "/recovery/", "/msgpack/"] {
        let (_, answer, _) = open_at(server.addr, path, "permessage-deflate", "").await;
        assert_eq!(answer, None, "{path} negotiated compression");
    }
    let (mut raw, answer, open) = open_at(
        server.addr,
        "/app/",
        "permessage-deflate; client_max_window_bits; server_no_context_takeover",
        "Cookie: user=ann\r\n",
    )
    .await;
    let answer = answer.expect("an extension answer");
    assert!(answer.starts_with("permessage-deflate"), "{answer}");
    assert!(answer.contains("server_no_context_takeover"), "{answer}");
    assert_eq!(
        (open.0, open.1[0]),
        (0x81, b'0'),
        "the small open packet is plain"
    );
    // CONNECT, compressed by the client.
    let mut c = compressor();
    raw.write_all(&frame(0xc1, &deflate(&mut c, b"40")))
        .await
        .unwrap();
    let (first, accept) = next_frame(&mut raw).await.unwrap();
    assert_eq!(first, 0x81);
    assert!(
        accept.starts_with(b"40{"),
        "{}",
        String::from_utf8_lossy(&accept)
    );
    // The handlers' `auth` event (small, plain), then a 2000-character echo: compressed.
    let (first, auth) = next_frame(&mut raw).await.unwrap();
    assert_eq!((first, &auth[..5]), (0x81, &b"42[\"a"[..]));
    let text = "x".repeat(2000);
    raw.write_all(&frame(
        0x81,
        format!(r#"42["message","{text}"]"#).as_bytes(),
    ))
    .await
    .unwrap();
    let (first, payload) = next_frame(&mut raw).await.unwrap();
    assert_eq!(first, 0xc1, "RSV1: a compressed text message");
    assert!(payload.len() < 200, "{} bytes", payload.len());
    let mut d = Decompress::new(false);
    assert_eq!(
        String::from_utf8(inflate(&mut d, &payload)).unwrap(),
        format!(r#"42["message-back","{text}"]"#)
    );
}
