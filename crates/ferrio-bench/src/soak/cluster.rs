//! What the Redis fault probes (8, 10, 11) share: a private `redis-server`, cluster nodes of the
//! three adapters, a TCP proxy between a node and Redis whose link can be cut or turned into a
//! black hole, and numbered broadcasts sent from one node's client and counted at another's.

use std::io;
use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::harness::Proc;
use crate::wire::{Conn, In};
use crate::Ctx;

/// The cluster adapters of `examples/cluster` (`--adapter`).
pub const ADAPTERS: [&str; 3] = ["classic", "sharded", "streams"];

/// Starts a private `redis-server` on `port` (no persistence), with `extra` arguments.
pub async fn start_redis(ctx: &Ctx, port: u16, name: &str, extra: &[&str]) -> io::Result<Proc> {
    let dir = ctx.logs.dir().display().to_string();
    let port_text = port.to_string();
    let mut args = vec![
        "--port",
        &port_text,
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        &dir,
    ];
    args.extend_from_slice(extra);
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    Proc::start(name, &ctx.redis_server, &args, port, &ctx.logs).await
}

/// Starts Redis again on the same port after a kill (a few tries: the port may be busy a moment).
pub async fn restart_redis(ctx: &Ctx, port: u16, name: &str, extra: &[&str]) -> io::Result<Proc> {
    let mut last = Err(io::Error::other("not started"));
    for _ in 0..5 {
        last = start_redis(ctx, port, name, extra).await;
        if last.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    last
}

/// Starts a cluster node (`examples/cluster`) with `adapter` on Redis `url`, on a free port.
pub async fn start_node(
    ctx: &Ctx,
    cluster: &Path,
    name: &str,
    url: &str,
    adapter: &str,
) -> io::Result<Proc> {
    let port = crate::harness::free_port()?;
    let args = [
        "--port".to_owned(),
        port.to_string(),
        "--redis".to_owned(),
        url.to_owned(),
        "--adapter".to_owned(),
        adapter.to_owned(),
    ];
    Proc::start(name, cluster, &args, port, &ctx.logs).await
}

/// Whether a node still serves: a new client connects and its `message-with-ack` is answered.
pub async fn serves(port: u16) -> Result<(), String> {
    let mut conn = Conn::socket_io(port)
        .await
        .map_err(|e| format!("no new connection: {e}"))?;
    conn.send("429[\"message-with-ack\",\"still-there\"]");
    conn.expect("439[\"still-there\"]", Duration::from_secs(3))
        .await
}

/// Whether both nodes still run and serve a new client, and the same in words.
pub async fn both_serve(a: &mut Proc, b: &mut Proc) -> (bool, String) {
    let mut problems = Vec::new();
    for (label, node) in [("A", a), ("B", b)] {
        if let Some(exit) = node.exited() {
            problems.push(format!("node {label}: {exit}"));
        } else if let Err(e) = serves(node.port).await {
            problems.push(format!("node {label} does not serve: {e}"));
        }
    }
    if problems.is_empty() {
        (true, "both nodes alive and serving".to_owned())
    } else {
        (false, format!("NODES: {}", problems.join(", ")))
    }
}

/// Sends `broadcast` (numbered) from `from` until `to` receives one, a few times.
pub async fn warm_up(from: &Conn, to: &mut Conn) -> Result<(), String> {
    let mut last = Err(String::new());
    for attempt in 0..10 {
        from.send(format!("42[\"broadcast\",\"warm-up-{attempt}\"]"));
        last = to
            .expect(
                &format!("42[\"broadcast\",\"warm-up-{attempt}\"]"),
                Duration::from_secs(1),
            )
            .await;
        if last.is_ok() {
            break;
        }
    }
    last.map_err(|e| format!("the cluster did not broadcast before the fault: {e}"))
}

/// Numbered broadcasts: the client on one node sends `broadcast` (n) every period, a task reads
/// what the client on another node receives. Both tasks end when it is dropped.
pub struct Traffic {
    sent: Arc<Mutex<Vec<Instant>>>,
    received: Arc<Mutex<Vec<(u64, Instant)>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Traffic {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Traffic {
    /// Starts sending from `from` every `every`; `to` is read until the end.
    pub fn start(from: &Conn, mut to: Conn, every: Duration) -> Traffic {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let received = Arc::new(Mutex::new(Vec::new()));
        let sender = {
            let (tx, sent) = (from.tx.clone(), sent.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let n = {
                        let mut sent = lock(&sent);
                        sent.push(Instant::now());
                        sent.len() - 1
                    };
                    if tx.send(format!("42[\"broadcast\",{n}]")).is_err() {
                        return;
                    }
                }
            })
        };
        let reader = {
            let received = received.clone();
            tokio::spawn(async move {
                loop {
                    match to.next(Duration::from_secs(3600)).await {
                        Some(In::Text(t)) => {
                            let n = t
                                .strip_prefix("42[\"broadcast\",")
                                .and_then(|r| r.strip_suffix(']'))
                                .and_then(|n| n.parse::<u64>().ok());
                            if let Some(n) = n {
                                lock(&received).push((n, Instant::now()));
                            }
                        }
                        Some(In::Closed(_)) => return,
                        _ => {}
                    }
                }
            })
        };
        Traffic {
            sent,
            received,
            tasks: vec![sender, reader],
        }
    }

    /// Stops sending (the reader goes on).
    pub fn stop_sending(&mut self) {
        if let Some(sender) = self.tasks.first() {
            sender.abort();
        }
    }

    /// How many were sent so far: the next number.
    pub fn sent(&self) -> u64 {
        lock(&self.sent).len() as u64
    }

    /// The first number sent at or after `t` (the next one when none was yet).
    pub fn first_sent_after(&self, t: Instant) -> u64 {
        let sent = lock(&self.sent);
        sent.iter().position(|s| *s >= t).unwrap_or(sent.len()) as u64
    }

    /// When the first broadcast numbered in `numbers` was received, if one was.
    pub fn first_received(&self, numbers: Range<u64>) -> Option<Instant> {
        lock(&self.received)
            .iter()
            .filter(|(n, _)| numbers.contains(n))
            .map(|(_, t)| *t)
            .min()
    }

    /// When the last broadcast numbered in `numbers` was received, if all were.
    pub fn all_received(&self, numbers: Range<u64>) -> Option<Instant> {
        (self.lost(numbers.clone()) == 0)
            .then(|| {
                lock(&self.received)
                    .iter()
                    .filter(|(n, _)| numbers.contains(n))
                    .map(|(_, t)| *t)
                    .max()
            })
            .flatten()
    }

    /// How many of `numbers` were not received.
    pub fn lost(&self, numbers: Range<u64>) -> u64 {
        let received = lock(&self.received);
        let mut seen: Vec<u64> = received
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| numbers.contains(n))
            .collect();
        seen.sort_unstable();
        seen.dedup();
        (numbers.end.saturating_sub(numbers.start)).saturating_sub(seen.len() as u64)
    }

    /// How many were received more than once.
    pub fn duplicates(&self) -> u64 {
        let mut seen: Vec<u64> = lock(&self.received).iter().map(|(n, _)| *n).collect();
        let all = seen.len();
        seen.sort_unstable();
        seen.dedup();
        (all - seen.len()) as u64
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Polls `done` every 20 ms until it gives a value or `within` passed.
pub async fn wait_for<T>(within: Duration, mut done: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = done() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A report's note on broadcasts lost before the fault (none expected).
pub fn lost_note(lost: u64) -> String {
    if lost == 0 {
        String::new()
    } else {
        format!("; LOST {lost} before the fault")
    }
}

/// Seconds between two instants, for a report (negative when `to` is before `from`).
pub fn secs(from: Instant, to: Instant) -> f64 {
    if to >= from {
        (to - from).as_secs_f64()
    } else {
        -(from - to).as_secs_f64()
    }
}

/// A TCP proxy between one node and Redis. Its link can be cut (every connection closed, new
/// ones refused until restored), turned into a black hole (the connections open at that
/// moment stay open but nothing moves on them any more, in either direction, as when a network
/// path dies; connections made after it are forwarded normally), or held (what Redis sends to
/// the node waits until released, as on a congested link; nothing is lost).
pub struct Proxy {
    /// The port it listens on.
    pub port: u16,
    upstream: u16,
    generation: watch::Sender<u64>,
    held: watch::Sender<bool>,
    accept: Option<JoinHandle<()>>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}

impl Proxy {
    /// Listens on a free port, forwarding to 127.0.0.1:`upstream`.
    pub async fn start(upstream: u16) -> io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (generation, _) = watch::channel(0);
        let (held, _) = watch::channel(false);
        let mut proxy = Proxy {
            port,
            upstream,
            generation,
            held,
            accept: None,
            links: Arc::default(),
        };
        proxy.serve(listener);
        Ok(proxy)
    }

    /// The Redis URL through the proxy.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn serve(&mut self, listener: TcpListener) {
        let (links, upstream) = (self.links.clone(), self.upstream);
        let (generation, held) = (self.generation.clone(), self.held.clone());
        self.accept = Some(tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let watcher = generation.subscribe();
                let gate = held.subscribe();
                let link = tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                        return;
                    };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    let born = *watcher.borrow();
                    let (ir, iw) = inbound.into_split();
                    let (or, ow) = outbound.into_split();
                    tokio::join!(
                        pump(ir, ow, watcher.clone(), born, None),
                        pump(or, iw, watcher, born, Some(gate))
                    );
                });
                let mut links = lock(&links);
                links.retain(|l| !l.is_finished());
                links.push(link);
            }
        }));
    }

    /// Closes every connection it carries and refuses new ones.
    pub fn cut(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
        for link in lock(&self.links).drain(..) {
            link.abort();
        }
    }

    /// Listens again on the same port after [`Proxy::cut`].
    pub async fn restore(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(listener) => break listener,
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        self.serve(listener);
        Ok(())
    }

    /// Holds back what Redis sends to the node from now on, until [`Proxy::release`].
    pub fn hold(&self) {
        self.held.send_replace(true);
    }

    /// Delivers what was held back, and what follows.
    pub fn release(&self) {
        self.held.send_replace(false);
    }

    /// Turns every connection open now into a black hole.
    pub fn black_hole(&self) {
        self.generation.send_modify(|g| *g += 1);
    }
}

/// Copies `from` to `to` until either closes; once the generation changed, holds both open
/// without moving anything. With a `gate`, what was read waits while the gate says held.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut generation: watch::Receiver<u64>,
    born: u64,
    mut gate: Option<watch::Receiver<bool>>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown().await;
                    return;
                }
                Ok(n) => {
                    if let Some(gate) = gate.as_mut() {
                        if gate.wait_for(|held| !*held).await.is_err() {
                            return;
                        }
                    }
                    if *generation.borrow() != born {
                        break;
                    }
                    if to.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            },
            changed = generation.changed() => {
                if changed.is_err() || *generation.borrow() != born {
                    break;
                }
            }
        }
    }
    std::future::pending::<()>().await;
    drop((from, to));
}
