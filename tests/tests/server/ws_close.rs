//! WebSocket close codes (RFC 6455, section 7.4.1): a connection failed for a bad frame is
//! closed with the code that names the failure, read here from raw frames over TCP.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::client::*;

/// Opens a raw WebSocket to the echo endpoint and reads the server's `open` frame.
async fn raw_ws(s: &Server) -> TcpStream {
    let mut raw = TcpStream::connect(s.addr).await.unwrap();
    raw.write_all(
        b"GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let mut response = Vec::new();
    while !response.ends_with(b"\r\n\r\n") {
        response.push(raw.read_u8().await.unwrap());
    }
    assert!(response.starts_with(b"HTTP/1.1 101"));
    let (first, open) = next_frame(&mut raw).await.unwrap();
    assert_eq!((first, open[0]), (0x81, b'0'));
    raw
}

/// The next frame from the server (its first byte and payload), `None` at the end of the stream.
async fn next_frame(raw: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
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
}

/// The code of the close frame the server sends next (`Some(None)` for a close frame without a
/// code), skipping other frames; `None` if the connection ends without one.
async fn close_code(raw: &mut TcpStream) -> Option<Option<u16>> {
    tokio::time::timeout(WAIT, async {
        while let Some((first, payload)) = next_frame(raw).await {
            if first == 0x88 {
                return Some(
                    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]])),
                );
            }
        }
        None
    })
    .await
    .expect("the server closes the connection")
}

/// A masked client frame (zero key) with the first byte `first`.
fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut f = vec![first, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    f.extend_from_slice(payload);
    f
}

#[tokio::test]
async fn invalid_utf8_in_a_text_message_closes_with_1007() {
    let s = Server::start().await;
    let mut raw = raw_ws(&s).await;
    raw.write_all(&masked(0x81, &[b'4', 0xff, 0xfe]))
        .await
        .unwrap();
    assert_eq!(close_code(&mut raw).await, Some(Some(1007)));
}

#[tokio::test]
async fn invalid_utf8_across_fragments_closes_with_1007() {
    let s = Server::start().await;
    let mut raw = raw_ws(&s).await;
    // "4é" with the two bytes of `é` in two fragments is valid; a lone continuation byte is not.
    raw.write_all(&masked(0x01, &[b'4', 0xc3])).await.unwrap();
    raw.write_all(&masked(0x80, &[0xa9])).await.unwrap();
    assert_eq!(next_frame(&mut raw).await, Some((0x81, "4é".into())));
    raw.write_all(&masked(0x01, b"4a")).await.unwrap();
    raw.write_all(&masked(0x80, &[0xa9])).await.unwrap();
    assert_eq!(close_code(&mut raw).await, Some(Some(1007)));
}

#[tokio::test]
async fn reserved_bits_without_an_extension_close_with_1002() {
    let s = Server::start().await;
    for first in [0xc1, 0xa1, 0x91] {
        let mut raw = raw_ws(&s).await;
        raw.write_all(&masked(first, b"4x")).await.unwrap();
        assert_eq!(close_code(&mut raw).await, Some(Some(1002)), "{first:#x}");
    }
}

#[tokio::test]
async fn an_unmasked_client_frame_closes_with_1002() {
    let s = Server::start().await;
    let mut raw = raw_ws(&s).await;
    raw.write_all(&[0x81, 0x06, b'4', b'h', b'e', b'l', b'l', b'o'])
        .await
        .unwrap();
    assert_eq!(close_code(&mut raw).await, Some(Some(1002)));
}

#[tokio::test]
async fn other_protocol_violations_close_with_1002() {
    let s = Server::start().await;
    for frames in [
        // A continuation without a message to continue.
        masked(0x80, b"x"),
        // A reserved data opcode.
        masked(0x83, b"x"),
        // A fragmented ping.
        masked(0x09, b"x"),
        // A new message while another is in fragments.
        [masked(0x01, b"4a"), masked(0x81, b"4b")].concat(),
    ] {
        let mut raw = raw_ws(&s).await;
        raw.write_all(&frames).await.unwrap();
        assert_eq!(close_code(&mut raw).await, Some(Some(1002)), "{frames:x?}");
    }
}

#[tokio::test]
async fn a_message_over_the_limit_closes_with_1009() {
    let s = Server::start().await;
    let mut raw = raw_ws(&s).await;
    // The e2e server's limit is 1 000 000 bytes.
    let len = 1_000_001u64;
    let mut frame = vec![0x82, 0x80 | 127];
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0, 0]);
    raw.write_all(&frame).await.unwrap();
    assert_eq!(close_code(&mut raw).await, Some(Some(1009)));
}
