//! The README's quick start (`crates/ferrio-server/examples/axum_chat.rs`) used from a front-end
//! served from another origin (a Vite dev server): the browser's long-polling requests and their
//! preflight get the CORS headers a browser needs.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[allow(dead_code)]
#[path = "../../crates/ferrio-server/examples/axum_chat.rs"]
mod axum_chat;

const VITE: &str = "http://localhost:5173";

/// Sends one HTTP/1.1 request (`Connection: close`) and returns the whole answer, lowercased.
async fn request(addr: std::net::SocketAddr, head: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let req = format!("{head}Host: {addr}\r\nOrigin: {VITE}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&answer).to_lowercase()
}

#[tokio::test]
async fn the_quick_start_answers_a_front_end_from_another_origin() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, axum_chat::app()).await });

    // The handshake over long-polling, as socket.io-client sends it first.
    let open = request(addr, "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n").await;
    assert!(open.starts_with("http/1.1 200"), "{open}");
    assert!(open.contains("access-control-allow-origin: *"), "{open}");
    assert!(open.contains("\"sid\""), "{open}");

    // The preflight a browser sends before a cross-origin POST of packets.
    let preflight = request(
        addr,
        "OPTIONS /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n\
         Access-Control-Request-Method: POST\r\n\
         Access-Control-Request-Headers: content-type\r\n",
    )
    .await;
    assert!(preflight.starts_with("http/1.1 20"), "{preflight}");
    assert!(
        preflight.contains("access-control-allow-origin: *"),
        "{preflight}"
    );
    assert!(
        preflight.contains("access-control-allow-methods:"),
        "{preflight}"
    );
    server.abort();
}
