//! `Ferrio::serve_tls` (ferrio-server's `tls` feature): a Socket.IO server over HTTPS with a
//! self-signed certificate, reached by `ferrio-client` and by Node's socket.io-client, over
//! polling, WebSocket and the upgrade between them; and `Engine::serve_tls`, a bare Engine.IO
//! endpoint over HTTPS. Connections that do not speak TLS, or stop
//! in the middle of the handshake, are closed and the server goes on serving the others.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferrio_client::Transport;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LIMIT: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(10);

/// A self-signed certificate for 127.0.0.1.
fn certificate() -> rcgen::CertifiedKey {
    rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("cert")
}

/// Starts a server over TLS with `cert`: `whoami` acknowledges what the handshake says of
/// the connection, `echo` its arguments.
async fn server(cert: &rcgen::CertifiedKey) -> SocketAddr {
    let io = ferrio_server::Ferrio::builder().build();
    io.of("/")
        .on_connection(|socket: ferrio_server::Socket| async move {
            socket.on(
                "whoami",
                |s: ferrio_server::Socket, msg: ferrio_server::Message| async move {
                    let handshake = s.handshake();
                    let info = json!({
                        "secure": handshake.secure(),
                        "address": handshake.address().map(|a| a.ip().to_string()),
                    });
                    msg.ack(&(info,))?;
                    Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
                },
            );
            socket.on(
                "echo",
                |_s: ferrio_server::Socket, msg: ferrio_server::Message| async move {
                    msg.ack(&msg.raw_args()?)?;
                    Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
                },
            );
        });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(io.serve_tls(listener, server_config(cert)));
    addr
}

/// The server's TLS settings for `cert`.
fn server_config(cert: &rcgen::CertifiedKey) -> Arc<rustls::ServerConfig> {
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(cert.key_pair.serialize_der()).expect("key");
    Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .expect("server config"),
    )
}

/// A client configuration that trusts `cert`.
fn trusting(cert: &rcgen::CertifiedKey) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).expect("root");
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

/// ferrio-client connected to the server at `addr` over `transports`, trusting `cert`.
async fn connect(
    addr: SocketAddr,
    cert: &rcgen::CertifiedKey,
    transports: &[Transport],
) -> ferrio_client::Socket {
    ferrio_client::io(&format!("https://{addr}/"))
        .transports(transports)
        .reconnection(false)
        .tls_config(trusting(cert))
        .connect()
        .await
        .expect("connects over TLS")
}

/// What the server's handshake says of the connection (`whoami`).
async fn whoami(socket: &ferrio_client::Socket) -> Value {
    socket
        .timeout(WAIT)
        .emit_with_ack("whoami", &())
        .await
        .expect("whoami acked")
        .args::<(Value,)>()
        .expect("one object")
        .0
}

/// Sends `request` over a TLS connection to `addr` (trusting `cert`) and reads the answer to
/// its end.
async fn https_request(addr: SocketAddr, cert: &rcgen::CertifiedKey, request: &str) -> String {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let mut tls = tokio_rustls::TlsConnector::from(trusting(cert))
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    tls.write_all(request.as_bytes()).await.expect("request");
    let mut answer = Vec::new();
    // (A peer that closes without TLS's close_notify is an error after the bytes.)
    let _ = tls.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

async fn bounded(f: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("test finished in time");
}

/// ferrio-client over `transports`: the handshake says the connection is secure, text and
/// binary cross both ways, and a client that does not trust the certificate is refused.
async fn rust_client(transports: &[Transport]) {
    let cert = certificate();
    let addr = server(&cert).await;
    let socket = connect(addr, &cert, transports).await;
    assert_eq!(
        whoami(&socket).await,
        json!({ "secure": true, "address": "127.0.0.1" })
    );
    if transports.contains(&Transport::WebSocket) {
        let mut transport = socket.manager().transport();
        for _ in 0..50 {
            if transport == Some(Transport::WebSocket) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            transport = socket.manager().transport();
        }
        assert_eq!(transport, Some(Transport::WebSocket));
    }
    let (text, data) = socket
        .timeout(WAIT)
        .emit_with_ack("echo", &("héllo 🦀", Bytes::from_static(&[1, 2, 3, 250])))
        .await
        .expect("echo acked")
        .args::<(String, Bytes)>()
        .expect("text and binary");
    assert_eq!(text, "héllo 🦀");
    assert_eq!(&data[..], &[1, 2, 3, 250]);
    socket.disconnect();

    // Without the certificate among its roots the client refuses the server.
    let refused = ferrio_client::io(&format!("https://{addr}/"))
        .transports(transports)
        .reconnection(false)
        .connect()
        .await;
    assert!(
        refused.is_err(),
        "connected without trusting the certificate"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferrio_client_over_polling() {
    bounded(rust_client(&[Transport::Polling])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferrio_client_over_websocket() {
    bounded(rust_client(&[Transport::WebSocket])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferrio_client_with_upgrade() {
    bounded(rust_client(&[Transport::Polling, Transport::WebSocket])).await;
}

/// Node's socket.io-client with the certificate as its `ca`: see `node/client-tls.js`.
async fn node_client(transports: &[&str]) {
    let cert = certificate();
    let addr = server(&cert).await;
    let input = json!({
        "url": format!("https://{addr}"),
        "ca": cert.cert.pem(),
        "transports": transports,
    });
    let output = tokio::task::spawn_blocking(move || {
        ferrio_tests::run_node_script("client-tls.js", input.to_string().as_bytes())
    })
    .await
    .expect("node ran");
    let output = String::from_utf8_lossy(&output);
    assert!(output.contains("ok untrusted refused"), "{output}");
    assert!(output.contains("ok handshake secure"), "{output}");
    assert!(output.contains("ok echo"), "{output}");
    assert!(output.trim_end().ends_with("ALL OK"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_client_over_websocket() {
    bounded(node_client(&["websocket"])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_client_with_upgrade() {
    bounded(node_client(&["polling", "websocket"])).await;
}

/// Plain HTTP, bytes that are not TLS, and a handshake left half-way, each on its own
/// connection: the server closes the first two, and a client that trusts the certificate
/// connects while the half-way one is still open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_connections_do_not_stop_the_server() {
    bounded(async {
        let cert = certificate();
        let addr = server(&cert).await;

        for garbage in [
            &b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            &[0x16, 0x03, 0x01, 0xff, 0xff, 0x01, 0, 0, 0][..],
        ] {
            let mut tcp = TcpStream::connect(addr).await.expect("connect");
            tcp.write_all(garbage).await.expect("write");
            let mut rest = Vec::new();
            // Closed by the server (an alert at most, never an HTTP answer).
            let read = tokio::time::timeout(WAIT, tcp.read_to_end(&mut rest)).await;
            let read = read.expect("closed in time");
            assert!(
                read.is_err() || !rest.starts_with(b"HTTP/"),
                "answered: {rest:?}"
            );
        }

        // The first bytes of a TLS ClientHello, then nothing.
        let mut stalled = TcpStream::connect(addr).await.expect("connect");
        stalled
            .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
            .await
            .expect("write");

        let socket = connect(addr, &cert, &[Transport::Polling, Transport::WebSocket]).await;
        assert_eq!(whoami(&socket).await["secure"], json!(true));
        socket.disconnect();
        drop(stalled);
    })
    .await;
}

/// A bare Engine.IO endpoint over HTTPS: the polling handshake answered through TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_over_https() {
    bounded(async {
        let cert = certificate();
        let engine = ferrio_server::engine::Engine::builder().build();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(engine.serve_tls(listener, server_config(&cert)));

        let answer = https_request(
            addr,
            &cert,
            "GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        let body = &answer[answer.find("\r\n\r\n").expect("a body") + 4..];
        assert!(body.starts_with("0{\"sid\":"), "{body}");
    })
    .await;
}

/// Request heads are bounded as under the plain `serve`: `max_http_header_size` (16 KiB by
/// default) with its separators passes, a larger head is answered 431.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_heads_are_bounded_over_tls() {
    bounded(async {
        let cert = certificate();
        let addr = server(&cert).await;
        let head = |size: usize| {
            format!(
                "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: {}\r\nConnection: close\r\n\r\n",
                "a".repeat(size)
            )
        };
        let fits = https_request(addr, &cert, &head(15 * 1024)).await;
        assert!(fits.starts_with("HTTP/1.1 200"), "{}", &fits[..fits.len().min(200)]);
        let too_long = https_request(addr, &cert, &head(20 * 1024)).await;
        assert!(too_long.starts_with("HTTP/1.1 431"), "{}", &too_long[..too_long.len().min(200)]);
    })
    .await;
}
