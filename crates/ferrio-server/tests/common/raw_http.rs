//! A blocking raw HTTP/1.1 client for the tests of the HTTP layer: a server on a runtime of its
//! own, requests written byte for byte on `std` sockets, responses read back as the wire has
//! them.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};

use ferrio_server::Ferrio;

use super::PATIENCE;

/// A server on 127.0.0.1, served by its own runtime until dropped.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    _rt: tokio::runtime::Runtime,
}

/// The multi-threaded runtime the servers run on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

impl Server {
    /// A server listening on a free port whose accept loop `serve` returns, on `rt`.
    pub fn on<F, Fut>(rt: tokio::runtime::Runtime, serve: F) -> Server
    where
        F: FnOnce(tokio::net::TcpListener) -> Fut,
        Fut: std::future::Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        rt.spawn(serve(listener));
        Server { addr, _rt: rt }
    }
}

/// `io` served by its own `serve`.
pub fn serve(io: Ferrio) -> Server {
    Server::on(runtime(), move |listener| io.serve(listener))
}

/// A connection to `addr` whose reads and writes give up after [`PATIENCE`].
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// A response: its status, its head and its body.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The status line and the headers, with their line ends.
    pub head: String,
    /// The body (as many bytes as `Content-Length` says).
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether the server says it closes the connection.
    pub fn closes(&self) -> bool {
        self.head
            .to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n")
    }
}

/// Reads one response from `stream`: its head, then as many body bytes as `Content-Length`
/// says (none for a 101).
pub fn read_reply(stream: &mut TcpStream) -> Reply {
    let mut data = Vec::new();
    let mut byte = [0u8; 1];
    while !data.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("a response");
        assert!(n == 1, "connection closed after {data:?}");
        data.push(byte[0]);
    }
    let head = String::from_utf8(data).unwrap();
    let status = head[9..12].parse().unwrap();
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body).unwrap();
    Reply { status, head, body }
}

/// Sends `request` on a new connection and reads the response.
pub fn exchange(addr: SocketAddr, request: &[u8]) -> Reply {
    let mut stream = connect(addr);
    stream.write_all(request).unwrap();
    read_reply(&mut stream)
}

/// Reads `stream` until the server closes it; what it sent. Panics if it is still open after
/// [`PATIENCE`].
pub fn wait_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return data,
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                ) =>
            {
                return data
            }
            Err(e) => panic!(
                "the server kept the connection open ({e}); it sent {:?}",
                String::from_utf8_lossy(&data)
            ),
        }
    }
}

/// The polling handshake request.
pub const HANDSHAKE: &[u8] =
    b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

/// A long-polling GET of session `sid`.
pub fn get(sid: &str) -> Vec<u8> {
    format!("GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .into_bytes()
}

/// A POST of `body` to session `sid`.
pub fn post(sid: &str, body: &str) -> Vec<u8> {
    format!(
        "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The session id in the answer to a handshake.
pub fn sid_of(reply: &Reply) -> String {
    assert_eq!(reply.status, 200, "{}", reply.text());
    let open: serde_json::Value = serde_json::from_str(&reply.text()[1..]).unwrap();
    open["sid"].as_str().unwrap().to_owned()
}

/// Opens a polling session on a connection of its own: its id.
pub fn open_session(addr: SocketAddr) -> String {
    sid_of(&exchange(addr, HANDSHAKE))
}
