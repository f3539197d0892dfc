//! Engine.IO options that show in HTTP headers: `httpCompression` of long-polling responses and
//! the session `cookie`.

use std::io::Read as _;
use std::time::Duration;

use bytes::Bytes;
use ferrio_server::{Cookie, Ferrio, Socket};
use serde_json::Value;
use tokio::net::TcpListener;

use super::client::*;

async fn start(io: &Ferrio) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(io.clone().serve(listener));
    addr
}

/// A server whose `/` namespace sends `size` bytes of text to every socket on connection.
fn talkative(builder: ferrio_server::FerrioBuilder, size: usize) -> Ferrio {
    let io = builder.build();
    io.of("/").on_connection(move |socket: Socket| async move {
        let _ = socket.emit("big", &("a".repeat(size),));
    });
    io
}

/// Opens a polling session, joins `/` and returns the GET response carrying the `big` event.
async fn big_poll(addr: std::net::SocketAddr, accept: Option<&str>) -> HttpResponse {
    let sid = handshake(addr, "/socket.io/").await;
    let url = polling("/socket.io/", &sid);
    assert_eq!(post(addr, &url, "40").await.status, 200);
    let headers: Vec<(&str, &str)> = accept.map(|a| ("accept-encoding", a)).into_iter().collect();
    // The CONNECT reply and the event come together or in two polls.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = http(addr, "GET", &url, &headers, Bytes::new()).await;
        assert_eq!(r.status, 200);
        let text = decoded(&r);
        if text.contains("big") {
            return r;
        }
        assert!(tokio::time::Instant::now() < deadline, "{text}");
    }
}

/// The body as text, decompressed per `Content-Encoding`.
fn decoded(r: &HttpResponse) -> String {
    let mut out = String::new();
    match r.header("content-encoding") {
        Some("gzip") => {
            flate2::read::GzDecoder::new(&r.body[..])
                .read_to_string(&mut out)
                .expect("gzip");
        }
        Some("deflate") => {
            flate2::read::DeflateDecoder::new(&r.body[..])
                .read_to_string(&mut out)
                .expect("deflate");
        }
        None => out = r.text(),
        Some(other) => panic!("unexpected encoding {other}"),
    }
    out
}

#[tokio::test]
async fn polling_responses_are_compressed_as_accepted_above_the_threshold() {
    let io = talkative(Ferrio::builder(), 5000);
    let addr = start(&io).await;

    let r = big_poll(addr, Some("gzip, deflate, br")).await;
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert!(r.body.len() < 1000, "compressed to {} bytes", r.body.len());
    assert!(decoded(&r).contains(&"a".repeat(5000)));

    let r = big_poll(addr, Some("deflate")).await;
    assert_eq!(r.header("content-encoding"), Some("deflate"));
    assert!(decoded(&r).contains(&"a".repeat(5000)));

    let r = big_poll(addr, Some("gzip;q=0, deflate;q=0.5")).await;
    assert_eq!(r.header("content-encoding"), Some("deflate"));

    // Not accepted: plain.
    let r = big_poll(addr, None).await;
    assert_eq!(r.header("content-encoding"), None);
    let r = big_poll(addr, Some("br")).await;
    assert_eq!(r.header("content-encoding"), None);
    assert!(r.text().contains(&"a".repeat(5000)));
}

#[tokio::test]
async fn small_responses_and_a_disabled_option_stay_plain() {
    let io = talkative(Ferrio::builder(), 100);
    let addr = start(&io).await;
    let r = big_poll(addr, Some("gzip")).await;
    assert_eq!(r.header("content-encoding"), None);

    let io = talkative(Ferrio::builder().http_compression(None), 5000);
    let addr = start(&io).await;
    let r = big_poll(addr, Some("gzip")).await;
    assert_eq!(r.header("content-encoding"), None);

    let io = talkative(Ferrio::builder().http_compression(Some(10_000)), 5000);
    let addr = start(&io).await;
    let r = big_poll(addr, Some("gzip")).await;
    assert_eq!(r.header("content-encoding"), None);
}

#[tokio::test]
async fn the_session_cookie_is_written_on_the_handshake_only_when_asked() {
    let io = Ferrio::builder().build();
    let addr = start(&io).await;
    let r = get(addr, "/socket.io/?EIO=4&transport=polling").await;
    assert_eq!(r.header("set-cookie"), None);

    let io = Ferrio::builder()
        .ping_interval(Duration::from_secs(25))
        .cookie(Cookie::default())
        .build();
    let addr = start(&io).await;
    let r = get(addr, "/socket.io/?EIO=4&transport=polling").await;
    let open: Value = serde_json::from_str(&r.text()[1..]).unwrap();
    let sid = open["sid"].as_str().unwrap();
    assert_eq!(
        r.header("set-cookie"),
        Some(format!("io={sid}; Path=/; HttpOnly; SameSite=Lax").as_str())
    );
    // Later requests of the session do not set it again.
    let later = post(addr, &polling("/socket.io/", sid), "40").await;
    assert_eq!(later.status, 200);
    assert_eq!(later.header("set-cookie"), None);

    // A custom cookie, on a WebSocket handshake.
    let io = Ferrio::builder()
        .cookie(Cookie {
            name: "sticky".into(),
            path: None,
            http_only: true,
            same_site: None,
            ..Cookie::default()
        })
        .build();
    let addr = start(&io).await;
    let (_, response) = tokio_tungstenite::connect_async(format!(
        "ws://{addr}/socket.io/?EIO=4&transport=websocket"
    ))
    .await
    .unwrap();
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("sticky="), "{cookie}");
    assert_eq!(cookie.len(), "sticky=".len() + 20, "{cookie}");
}

#[tokio::test]
async fn serve_with_shutdown_closes_the_listener_and_the_sessions() {
    let io = Ferrio::builder().build();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(io.clone().serve_with_shutdown(listener, async {
        let _ = stopped.await;
    }));
    let mut ws = sio(addr, "/socket.io/").await;
    ws.send_text("40").await;
    assert!(ws.text_app().await.starts_with("40{"));
    assert_eq!(io.session_count(), 1);

    stop.send(()).unwrap();
    tokio::time::timeout(WAIT, server)
        .await
        .expect("serve returns")
        .unwrap()
        .unwrap();
    assert!(ws.closed_within(WAIT, false).await, "the session is closed");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "new connections are refused"
    );
}

#[tokio::test]
async fn large_polling_responses_are_compressed_too() {
    // Above 64 KiB the compression runs on a blocking thread.
    let io = talkative(Ferrio::builder(), 200_000);
    let addr = start(&io).await;
    let r = big_poll(addr, Some("gzip")).await;
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert!(
        r.body.len() < 10_000,
        "compressed to {} bytes",
        r.body.len()
    );
    assert!(decoded(&r).contains(&"a".repeat(200_000)));
}
