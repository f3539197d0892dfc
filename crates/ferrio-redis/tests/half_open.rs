//! A subscriber connection whose peer vanished without closing it (a network cut) is noticed by
//! the health-check pings and replaced: broadcasts from the other servers reach this server's
//! clients again.
//!
//! Node `a` reaches Redis through a TCP proxy of the test's own; node `b` directly. The proxy
//! then turns every connection it carries into a black hole: nothing is forwarded any more in
//! either direction and nothing is closed, as when a network path dies. Connections made after
//! that are forwarded normally, so a node that reconnects works again.

use std::time::Duration;

use ferrio_client::Socket as ClientSocket;
use ferrio_redis::{
    RedisAdapter, RedisAdapterConfig, ShardedRedisAdapter, ShardedRedisAdapterConfig,
};
use ferrio_server::Ferrio;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

const REDIS: &str = "127.0.0.1:6379";

/// How long node `a` may take to notice the dead connection and reconnect: the health check
/// bound (10 s) plus reconnection, with room for a slow machine. Never asserted as a duration.
const RECOVERY: Duration = Duration::from_secs(40);

/// How long anything else may take.
const WAIT: Duration = Duration::from_secs(15);

/// A TCP proxy to Redis whose existing connections can be turned into black holes.
struct Proxy {
    port: u16,
    /// Connections opened before this generation are black holes.
    cut: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cut, watcher) = watch::channel(0u64);
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let Ok(server) = TcpStream::connect(REDIS).await else {
                    continue;
                };
                // This connection dies at the next cut.
                let born = *watcher.borrow();
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, watcher.clone(), born));
                tokio::spawn(pump(sr, cw, watcher.clone(), born));
            }
        });
        Proxy { port, cut, task }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Stops forwarding on every connection open now, in both directions, closing nothing.
    fn black_hole(&self) {
        self.cut.send_modify(|g| *g += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` to `to` until the connection closes or is cut; once cut, holds both halves
/// open forever without reading or writing.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut cut: watch::Receiver<u64>,
    born: u64,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if *cut.borrow() != born {
                        break;
                    }
                    if to.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            },
            changed = cut.changed() => {
                if changed.is_err() || *cut.borrow() != born {
                    break;
                }
            }
        }
    }
    // A black hole: the halves stay open, nothing moves.
    std::future::pending::<()>().await;
    drop((from, to));
}

#[derive(Clone, Copy, Debug)]
enum Flavor {
    Classic,
    Sharded,
}

/// A Ferrio server with the adapter, serving on a free port, and one client connected to it.
struct Node {
    io: Ferrio,
    close: Box<dyn Fn() + Send + Sync>,
    client_events: mpsc::UnboundedReceiver<(String, Value)>,
    _client: ClientSocket,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        (self.close)();
        self.task.abort();
    }
}

impl Node {
    async fn start(flavor: Flavor, url: &str, key: &str) -> Node {
        let (io, close): (Ferrio, Box<dyn Fn() + Send + Sync>) = match flavor {
            Flavor::Classic => {
                let adapter = RedisAdapter::with_config(
                    url,
                    RedisAdapterConfig {
                        key: key.to_owned(),
                        ..RedisAdapterConfig::default()
                    },
                )
                .await
                .expect("redis reachable");
                (
                    Ferrio::builder().adapter(adapter.clone()).build(),
                    Box::new(move || adapter.close()),
                )
            }
            Flavor::Sharded => {
                let adapter = ShardedRedisAdapter::with_config(
                    url,
                    ShardedRedisAdapterConfig {
                        channel_prefix: key.to_owned(),
                        ..ShardedRedisAdapterConfig::default()
                    },
                )
                .await
                .expect("redis reachable");
                (
                    Ferrio::builder().adapter(adapter.clone()).build(),
                    Box::new(move || adapter.close()),
                )
            }
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server_url = format!("http://{}/", listener.local_addr().unwrap());
        let task = tokio::spawn(io.clone().serve(listener));
        let (tx, client_events) = mpsc::unbounded_channel();
        let client = ferrio_client::io(&server_url)
            .with_socket(move |socket| {
                socket.on_any(move |_socket, message| {
                    let first = message
                        .args::<Vec<Value>>()
                        .ok()
                        .and_then(|a| a.into_iter().next());
                    let _ = tx.send((message.event().to_owned(), first.unwrap_or(Value::Null)));
                });
            })
            .connect()
            .await
            .expect("client connects");
        Node {
            io,
            close,
            client_events,
            _client: client,
            task,
        }
    }
}

/// Has `from` emit `event` (with a counter) every 300 ms until `to`'s client receives one;
/// panics past `within`.
async fn broadcast_until_received(from: &Node, to: &mut Node, event: &str, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    let mut tick = tokio::time::interval(Duration::from_millis(300));
    let mut n = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "node a's client never received {event:?} again"
                );
                n += 1;
                from.io.emit(event, &(n,)).unwrap();
            }
            got = to.client_events.recv() => {
                let (ev, _) = got.expect("client alive");
                if ev == event {
                    return;
                }
            }
        }
    }
}

async fn subscriber_reconnects_after_a_network_cut(flavor: Flavor) {
    let key = format!("ferrio-half-open-{flavor:?}-{}", std::process::id());
    let proxy = Proxy::start().await;
    let mut a = Node::start(flavor, &proxy.url(), &key).await;
    let mut b = Node::start(flavor, &format!("redis://{REDIS}/"), &key).await;
    broadcast_until_received(&b, &mut a, "before", WAIT).await;

    proxy.black_hole();
    // Whatever was in flight is gone; from now on only a new connection delivers.
    while a.client_events.try_recv().is_ok() {}
    broadcast_until_received(&b, &mut a, "after", RECOVERY).await;

    // And node a's own broadcasts (its command connection) go out again too.
    broadcast_until_received(&a, &mut b, "from-a", RECOVERY).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_subscriber_reconnects_after_a_network_cut() {
    subscriber_reconnects_after_a_network_cut(Flavor::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_subscriber_reconnects_after_a_network_cut() {
    subscriber_reconnects_after_a_network_cut(Flavor::Sharded).await;
}
