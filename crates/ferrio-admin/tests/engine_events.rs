//! `server_stats`'s `aggregatedEvents` from the server's Engine.IO counters: `packetsIn`,
//! `packetsOut`, `bytesIn` and `bytesOut` after some traffic, and `rawConnection` and
//! `rawDisconnection` (with the close reason) for every Engine.IO session, one that never
//! connects to a namespace included.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use ferrio_admin::{instrument, AdminOptions, Auth};
use ferrio_client::Transport;
use ferrio_server::{AckSender, Ferrio, Socket};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 request on its own connection: the response's body.
async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let response = String::from_utf8(response).expect("utf-8");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let (_, body) = response.split_once("\r\n\r\n").expect("a head");
    body.to_owned()
}

/// The most the test waits for one thing.
const PATIENCE: Duration = Duration::from_secs(20);

async fn patiently<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(PATIENCE, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

#[derive(Default)]
struct Seen {
    connections: u64,
    closed: Vec<(String, u64)>,
    packets_in: u64,
    packets_out: u64,
    bytes_in: u64,
    bytes_out: u64,
}

impl Seen {
    fn add(&mut self, events: &[Value]) {
        for e in events {
            let timestamp = e["timestamp"].as_u64().expect("timestamp");
            assert_eq!(timestamp % 1000, 0, "{e}");
            let count = e["count"].as_u64().expect("count");
            assert!(count > 0, "{e}");
            match e["type"].as_str().expect("type") {
                "rawConnection" => self.connections += count,
                "rawDisconnection" => self
                    .closed
                    .push((e["subType"].as_str().expect("subType").to_owned(), count)),
                "packetsIn" => self.packets_in += count,
                "packetsOut" => self.packets_out += count,
                "bytesIn" => self.bytes_in += count,
                "bytesOut" => self.bytes_out += count,
                other => panic!("unexpected type {other}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_stats_count_packets_bytes_and_raw_sessions() {
    let io = Ferrio::builder().build();
    io.of("/").on_connection(|socket: Socket| async move {
        socket.on("ping", |_s: Socket, (): (), ack: AckSender| async move {
            ack.send(&("pong",))
        });
    });
    let admin = instrument(&io, AdminOptions::new(Auth::None)).expect("instrumented");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let url = format!("http://{addr}");
    tokio::spawn(io.clone().serve(listener));

    let (tx, mut stats) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let ui = ferrio_client::io(&format!("{url}/admin"))
        .transports(&[Transport::WebSocket])
        .with_socket(move |s| {
            s.on_any(move |_s, msg| {
                if msg.event() == "server_stats" {
                    let args: Vec<Value> = msg.args().unwrap_or_default();
                    if let Some(stats) = args.into_iter().next() {
                        let _ = tx.send(stats);
                    }
                }
            });
        })
        .connect()
        .await
        .expect("the UI connected");
    // What happened before the UI's first `server_stats` (its own session's opening among
    // it) may have been reported before the UI was there: count from then on.
    patiently("the first server_stats", stats.recv())
        .await
        .expect("server_stats");
    let client = ferrio_client::io(&format!("{url}/"))
        .transports(&[Transport::WebSocket])
        .connect()
        .await
        .expect("connected");
    for _ in 0..3 {
        let reply = client.emit_with_ack("ping", &()).await.expect("pong");
        assert_eq!(reply.args::<(String,)>().expect("args").0, "pong");
    }
    // An Engine.IO session that never connects to a namespace, closed by its client.
    let open = http(addr, "GET", "/socket.io/?EIO=4&transport=polling", "").await;
    let sid = open
        .split("\"sid\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a sid")
        .to_owned();
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    assert_eq!(http(addr, "POST", &path, "1").await, "ok");

    let engines: HashSet<String> = [ui.manager().engine_id(), client.manager().engine_id()]
        .into_iter()
        .map(|id| id.expect("engine id"))
        .collect();
    // The client's session (unless it shares the UI's) and the raw one.
    let expected_connections = engines.len() as u64;
    let mut seen = Seen::default();
    let done = tokio::time::timeout(PATIENCE, async {
        while let Some(stats) = stats.recv().await {
            seen.add(
                stats["aggregatedEvents"]
                    .as_array()
                    .expect("aggregatedEvents"),
            );
            if seen.connections >= expected_connections && !seen.closed.is_empty() {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(done, Ok(true), "server_stats in time");
    assert_eq!(seen.connections, expected_connections);
    assert_eq!(seen.closed, [("transport close".to_owned(), 1)]);
    // The client's CONNECT and 3 events in; its accept, 3 acks and a `server_stats` out.
    assert!(seen.packets_in >= 4, "{}", seen.packets_in);
    assert!(seen.packets_out >= 5, "{}", seen.packets_out);
    // `2["ping"]` alone is 8 bytes; an ack `30["pong"]` is 9.
    assert!(seen.bytes_in >= 3 * 8, "{}", seen.bytes_in);
    assert!(seen.bytes_out >= 3 * 9, "{}", seen.bytes_out);
    admin.close();
}
