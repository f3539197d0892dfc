//! `scale_ws`: as many idle WebSocket Socket.IO connections as the descriptor limits of this
//! machine allow, then `broadcast` to all of them.
//!
//! The load generator and the server each need one descriptor per connection, and the load
//! generator one ephemeral port per connection towards the one server port. The default target
//! is the smaller of the two processes' soft descriptor limits (`/proc/<pid>/limits`) less a
//! margin; when it exceeds the ephemeral port range, the clients bind their sockets to several
//! loopback source addresses (127.0.0.2, 127.0.0.3, ...), each with its own range.
//!
//! Phases: connect (128 at a time; the server's CPU and the connect rate over the phase),
//! memory (server RSS 1 s after the last connect), then one warm-up broadcast and
//! `Settings::scale_broadcasts` measured ones (deliveries per second, server CPU per million
//! deliveries), after five single broadcasts timed one at a time. The depth matters: with
//! about 20,000 deliveries in flight (the rule of `broadcast_1k`, 2 broadcasts at 20,000
//! receivers) a socket's write carries about one frame; `Settings::scale_in_flight` (20, as
//! `broadcast_1k` has) lets the writes and reads of several broadcasts coalesce. Each phase has
//! a deadline, so the scenario stops by itself; a server that stops
//! accepting (descriptors, memory) is reported with the count it reached, not as a failure.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout, Instant};
use tokio_tungstenite::tungstenite::Message;

use crate::client::{err, ws_connect_over, Ws, IO_TIMEOUT};
use crate::measure::{rss_kib, Meter};
use crate::scenario::{Metrics, Settings, Target, PAYLOAD};

/// Connections opened at the same time.
pub const CONNECT_CONCURRENCY: usize = 128;

/// The connect phase ends at this deadline, whatever count it reached.
const CONNECT_DEADLINE: Duration = Duration::from_secs(100);

/// Connecting stops after this many failed connections (the server has stopped accepting).
const MAX_FAILURES: usize = 128;

/// The broadcast phase ends at this deadline.
const BROADCAST_DEADLINE: Duration = Duration::from_secs(50);

/// The broadcast phase gives up when no delivery arrives for this long.
const STALL: Duration = Duration::from_secs(5);

/// Ephemeral ports of the range left to other connections of the machine (and to sockets in
/// TIME_WAIT) when choosing how many source addresses to spread the clients over.
const PORT_MARGIN: usize = 1000;

/// Broadcasts sent one at a time (each waits for all its deliveries) to time one broadcast.
const SINGLE_BROADCASTS: usize = 5;

/// The longest a `scale_ws` run may take (its phases' deadlines and the waits between them).
pub const TIME_LIMIT: Duration = Duration::from_secs(180);

/// The soft limit "Max open files" of the text of a `/proc/<pid>/limits` (`u64::MAX` when
/// unlimited).
pub fn parse_nofile(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .strip_prefix("Max open files")?
        .split_whitespace()
        .next()?;
    if soft == "unlimited" {
        Some(u64::MAX)
    } else {
        soft.parse().ok()
    }
}

/// The soft descriptor limit of process `pid` (this process for `None`).
pub fn nofile(pid: Option<u32>) -> io::Result<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/limits"),
        None => "/proc/self/limits".to_owned(),
    };
    parse_nofile(&std::fs::read_to_string(&path)?)
        .ok_or_else(|| err(format!("no \"Max open files\" in {path}")))
}

/// The number of ports of an `ip_local_port_range` text (`"32768\t60999"`).
pub fn parse_port_range(text: &str) -> Option<usize> {
    let mut it = text.split_whitespace().map(|v| v.parse::<usize>().ok());
    let (lo, hi) = (it.next()??, it.next()??);
    (hi >= lo).then(|| hi - lo + 1)
}

/// The ephemeral ports of one source address (28,232 when unknown, Linux's default range).
pub fn port_range() -> usize {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| parse_port_range(&t))
        .unwrap_or(28_232)
}

/// Descriptors of a process kept for other uses than connections (its listener, standard
/// streams, epoll, files of `/proc`, a runtime's own): 100, plus 1 % of the limit.
pub fn fd_margin(limit: u64) -> u64 {
    100 + limit / 100
}

/// The default number of connections: the smaller soft descriptor limit of the two processes,
/// less the margin.
pub fn default_target(client_fds: u64, server_fds: u64) -> usize {
    let limit = client_fds.min(server_fds);
    let n = limit.saturating_sub(fd_margin(limit));
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// How many loopback source addresses `target` connections need, with `ports` ephemeral ports
/// per address (less [`PORT_MARGIN`]).
pub fn sources_needed(target: usize, ports: usize) -> usize {
    let per = ports.saturating_sub(PORT_MARGIN).max(1);
    target.div_ceil(per).max(1)
}

/// The source address of connection `i` spread over `sources` addresses: `None` (the kernel
/// chooses, 127.0.0.1) when one is enough, else 127.0.0.2, 127.0.0.3, ... in turn.
pub fn source_addr(i: usize, sources: usize) -> Option<Ipv4Addr> {
    if sources <= 1 {
        return None;
    }
    let k = (i % sources) as u32;
    Some(Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 0, 2)) + k))
}

/// Broadcasts in flight while measuring: about 20,000 deliveries, between 2 and 50 broadcasts.
pub fn in_flight(receivers: usize) -> u64 {
    (20_000 / receivers.max(1) as u64).clamp(2, 50)
}

/// The deliveries to wait for before sending broadcast number `sent + 1` (counted from 0)
/// with `window` broadcasts in flight to `receivers` each, over `base` counted before.
pub fn deliveries_before_send(base: u64, sent: u64, window: u64, receivers: u64) -> u64 {
    base + (sent + 1).saturating_sub(window) * receivers
}

/// Deliveries counted by the clients, and the broadcaster's wake-up.
struct Fan {
    delivered: AtomicU64,
    closed: AtomicU64,
    wake_at: AtomicU64,
    wake: Notify,
}

impl Fan {
    /// Waits until `need` deliveries have been counted: false at `deadline` or after
    /// [`STALL`] without any delivery.
    async fn wait_for(&self, need: u64, deadline: Instant) -> bool {
        loop {
            let before = self.delivered.load(Ordering::SeqCst);
            if before >= need {
                return true;
            }
            self.wake_at.store(need, Ordering::SeqCst);
            if self.delivered.load(Ordering::SeqCst) >= need {
                return true;
            }
            let until = deadline.min(Instant::now() + STALL);
            if tokio::time::timeout_at(until, self.wake.notified())
                .await
                .is_err()
            {
                let now = self.delivered.load(Ordering::SeqCst);
                if now >= need {
                    return true;
                }
                if now == before || Instant::now() >= deadline {
                    return false;
                }
            }
        }
    }
}

/// Opens a TCP connection to 127.0.0.1:`port`, from `source` if given.
async fn tcp_connect(port: u16, source: Option<Ipv4Addr>) -> io::Result<TcpStream> {
    let to = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    match source {
        None => TcpStream::connect(to).await,
        Some(ip) => {
            let socket = TcpSocket::new_v4()?;
            socket.bind(SocketAddr::from((ip, 0)))?;
            socket.connect(to).await
        }
    }
}

/// Holds one connection: answers pings, counts `msg` deliveries, and (for the broadcaster)
/// sends what `out` gives it. Counts itself closed when the connection ends.
async fn hold(mut ws: Ws, fan: Arc<Fan>, mut out: Option<mpsc::UnboundedReceiver<Message>>) {
    loop {
        let outgoing = async {
            match out.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let t = t.as_str();
                    if t.starts_with("42[\"msg\"") {
                        let c = fan.delivered.fetch_add(1, Ordering::SeqCst) + 1;
                        if c >= fan.wake_at.load(Ordering::Relaxed) {
                            fan.wake_at.store(u64::MAX, Ordering::Relaxed);
                            fan.wake.notify_one();
                        }
                    } else if t == "2" && ws.send(Message::text("3")).await.is_err() {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
            Some(m) = outgoing => {
                if ws.send(m).await.is_err() {
                    break;
                }
            }
        }
    }
    fan.closed.fetch_add(1, Ordering::SeqCst);
}

/// Runs `scale_ws` once against `target`.
pub async fn run(target: Target, set: Settings) -> io::Result<Metrics> {
    let client_fds = nofile(None)?;
    let server_fds = nofile(Some(target.pid))?;
    let want = set
        .scale_target
        .unwrap_or_else(|| default_target(client_fds, server_fds));
    if want == 0 {
        return Err(err("no descriptors to spare for connections"));
    }
    let ports = port_range();
    let sources = sources_needed(want, ports);
    eprint!(
        "(descriptor limits: load generator {client_fds}, server {server_fds}; \
         {ports} ports; target {want} over {sources} source address(es)) "
    );
    let fan = Arc::new(Fan {
        delivered: AtomicU64::new(0),
        closed: AtomicU64::new(0),
        wake_at: AtomicU64::new(u64::MAX),
        wake: Notify::new(),
    });
    let rss0 = rss_kib(target.pid)?;
    let meter = Meter::start(target.pid, set.tck)?;
    let mut holders = JoinSet::new();
    // The broadcaster connects first, alone: a server that refuses it is broken, not full.
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel::<Message>();
    let first = timeout(IO_TIMEOUT, async {
        let tcp = tcp_connect(target.port, source_addr(0, sources)).await?;
        ws_connect_over(tcp, target.port).await
    })
    .await
    .map_err(|_| err("connect timed out"))??;
    holders.spawn(hold(first, fan.clone(), Some(cmd_rx)));

    let deadline = Instant::now() + CONNECT_DEADLINE;
    let sem = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    // Each connection reports when it connected, or why it failed.
    let (tx, mut rx) = mpsc::unbounded_channel::<Result<Instant, String>>();
    let start = Instant::now();
    let mut last_ok = start;
    let (mut ok, mut failed, mut spawned) = (1usize, 0usize, 1usize);
    let mut first_err: Option<String> = None;
    let mut tally = |r: Result<Instant, String>, ok: &mut usize, failed: &mut usize| match r {
        Ok(at) => {
            *ok += 1;
            last_ok = last_ok.max(at);
        }
        Err(e) => {
            *failed += 1;
            first_err.get_or_insert(e);
        }
    };
    while spawned < want {
        while let Ok(r) = rx.try_recv() {
            tally(r, &mut ok, &mut failed);
        }
        if failed >= MAX_FAILURES {
            break;
        }
        let permit = tokio::select! {
            p = sem.clone().acquire_owned() => p.map_err(|e| err(e.to_string()))?,
            _ = tokio::time::sleep_until(deadline) => break,
        };
        let (tx, fan, port, source) = (
            tx.clone(),
            fan.clone(),
            target.port,
            source_addr(spawned, sources),
        );
        holders.spawn(async move {
            let ws = timeout(IO_TIMEOUT, async {
                let tcp = tcp_connect(port, source).await?;
                ws_connect_over(tcp, port).await
            })
            .await
            .map_err(|_| err("connect timed out"))
            .and_then(|r| r);
            drop(permit);
            match ws {
                Ok(ws) => {
                    let _ = tx.send(Ok(Instant::now()));
                    hold(ws, fan, None).await;
                }
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                }
            }
        });
        spawned += 1;
    }
    drop(tx);
    // The connections under way finish (or time out) within IO_TIMEOUT.
    while ok + failed < spawned {
        match rx.recv().await {
            Some(r) => tally(r, &mut ok, &mut failed),
            None => break,
        }
    }
    let connect = meter.stop()?;
    // Connections that failed by timing out do not count in the connect time.
    let connect_secs = (last_ok - start).as_secs_f64().max(1e-3);
    if let Some(e) = &first_err {
        eprint!("({failed} connections failed, the first: {e}) ");
    }
    // Let the server settle (allocators return memory) before reading RSS.
    sleep(Duration::from_secs(1)).await;
    let rss1 = rss_kib(target.pid)?;
    let client_rss = rss_kib(std::process::id())?;
    let okf = ok as f64;
    let mut m: Metrics = vec![
        ("target connections", want as f64),
        ("connected", okf),
        ("failed connections", failed as f64),
        (
            "RSS KiB per connection",
            rss1.saturating_sub(rss0) as f64 / okf,
        ),
    ];
    m.extend(connect.cpu_rows(
        [
            "server CPU µs per connect",
            "server user CPU µs per connect",
            "server kernel CPU µs per connect",
        ],
        1e6 / okf,
    ));
    m.extend([
        ("connect time s", connect_secs),
        ("connects/s", okf / connect_secs),
        (
            "load generator CPU % while connecting",
            connect.client_pct(),
        ),
        ("load generator RSS MiB", client_rss as f64 / 1024.0),
    ]);

    // Broadcasts: one warm-up, then the measured ones with a bounded number in flight.
    let receivers = ok as u64 - fan.closed.load(Ordering::SeqCst);
    let bdeadline = Instant::now() + BROADCAST_DEADLINE;
    let msg = Message::text(format!("42[\"broadcast\",{PAYLOAD}]"));
    let send = |m: &Message| {
        cmd_tx
            .send(m.clone())
            .map_err(|_| err("the broadcasting connection closed"))
    };
    send(&msg)?;
    if !fan.wait_for(receivers, bdeadline).await {
        let got = fan.delivered.load(Ordering::SeqCst);
        eprint!("(warm-up broadcast reached {got} of {receivers}) ");
        m.push(("warm-up broadcast deliveries", got as f64));
        finish(holders).await;
        return Ok(m);
    }
    // Single broadcasts, one at a time: how long one takes to reach every receiver.
    let mut single = Vec::new();
    for _ in 0..SINGLE_BROADCASTS {
        let need = fan.delivered.load(Ordering::SeqCst) + receivers;
        let t0 = Instant::now();
        send(&msg)?;
        if !fan.wait_for(need, bdeadline).await {
            break;
        }
        single.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    if !single.is_empty() {
        m.push((
            "ms for one broadcast to reach all (median)",
            crate::median(&mut single),
        ));
    }
    let base = fan.delivered.load(Ordering::SeqCst);
    let window = set
        .scale_in_flight
        .map_or_else(|| in_flight(receivers as usize), |w| w.max(1) as u64);
    let n = set.scale_broadcasts as u64;
    let meter = Meter::start(target.pid, set.tck)?;
    let mut sent = 0u64;
    let mut complete = true;
    while sent < n {
        let need = deliveries_before_send(base, sent, window, receivers);
        if !fan.wait_for(need, bdeadline).await {
            complete = false;
            break;
        }
        send(&msg)?;
        sent += 1;
    }
    complete = complete && fan.wait_for(base + n * receivers, bdeadline).await;
    let w = meter.stop()?;
    let d = fan.delivered.load(Ordering::SeqCst) - base;
    let closed = fan.closed.load(Ordering::SeqCst);
    finish(holders).await;
    if !complete {
        eprint!(
            "(broadcast phase stopped: {d} of {} deliveries) ",
            n * receivers
        );
    }
    m.push(("receivers", receivers as f64));
    m.push(("broadcasts in flight", window as f64));
    m.push(("broadcasts sent", sent as f64));
    m.push((
        "deliveries missing",
        (sent * receivers).saturating_sub(d) as f64,
    ));
    if d > 0 {
        let df = d as f64;
        m.push(("deliveries/s", df / w.secs));
        m.extend(w.cpu_rows(
            [
                "server CPU s per million deliveries",
                "server user CPU s per million deliveries",
                "server kernel CPU s per million deliveries",
            ],
            1e6 / df,
        ));
    }
    m.extend([
        ("load generator CPU % while broadcasting", w.client_pct()),
        ("connections closed by the server", closed as f64),
    ]);
    Ok(m)
}

/// Closes every connection and waits until their tasks are gone (their sockets closed).
async fn finish(mut holders: JoinSet<()>) {
    holders.abort_all();
    while holders.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The soft limit is the first column of "Max open files"; "unlimited" is the largest.
    #[test]
    fn nofile_is_the_soft_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             95524                95524                processes \n\
                      Max open files            1024                 20000                files     \n\
                      Max locked memory         8388608              8388608              bytes     \n";
        assert_eq!(parse_nofile(limits), Some(1024));
        let unlimited = limits.replace("1024   ", "unlimited");
        assert_eq!(parse_nofile(&unlimited), Some(u64::MAX));
        assert_eq!(parse_nofile("Max processes 1 1 processes\n"), None);
        assert!(nofile(None).unwrap() > 0);
    }

    /// The port range counts both ends.
    #[test]
    fn port_range_counts_both_ends() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some(28_232));
        assert_eq!(parse_port_range("1024 1024"), Some(1));
        assert_eq!(parse_port_range("60999 32768"), None);
        assert_eq!(parse_port_range("32768"), None);
    }

    /// The default target is the smaller limit less 100 and 1 % of it; one source address
    /// while the ports suffice, then as many as the range (less 1000 ports) needs.
    #[test]
    fn target_and_source_addresses() {
        assert_eq!(fd_margin(20_000), 300);
        assert_eq!(default_target(20_000, 65_536), 19_700);
        assert_eq!(default_target(65_536, 20_000), 19_700);
        assert_eq!(default_target(50, 50), 0);
        assert!(default_target(u64::MAX, u64::MAX) > 0);
        assert_eq!(sources_needed(19_700, 28_232), 1);
        assert_eq!(sources_needed(27_232, 28_232), 1);
        assert_eq!(sources_needed(27_233, 28_232), 2);
        assert_eq!(sources_needed(100_000, 28_232), 4);
        assert_eq!(
            sources_needed(10, 500),
            10,
            "a range below the margin: 1 port each"
        );
        assert_eq!(source_addr(5, 1), None);
        assert_eq!(source_addr(0, 3), Some(Ipv4Addr::new(127, 0, 0, 2)));
        assert_eq!(source_addr(4, 3), Some(Ipv4Addr::new(127, 0, 0, 3)));
        assert_eq!(source_addr(254, 300), Some(Ipv4Addr::new(127, 0, 1, 0)));
    }

    /// A connection given a source address comes from it; without one, from 127.0.0.1.
    #[tokio::test]
    async fn connections_come_from_their_source_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        for (source, seen) in [
            (source_addr(1, 2), Ipv4Addr::new(127, 0, 0, 3)),
            (None, Ipv4Addr::LOCALHOST),
        ] {
            let (client, accepted) = tokio::join!(tcp_connect(port, source), listener.accept());
            let peer = accepted.unwrap().1;
            assert_eq!(peer.ip(), seen);
            assert_eq!(client.unwrap().local_addr().unwrap(), peer);
        }
    }

    /// With `window` broadcasts in flight, the first `window` go out at once and each later
    /// one waits for the deliveries of the one `window` before it.
    #[test]
    fn broadcasts_in_flight() {
        assert_eq!(in_flight(20_000), 2);
        assert_eq!(in_flight(1000), 20);
        assert_eq!(in_flight(10), 50);
        assert_eq!(in_flight(0), 50);
        assert_eq!(deliveries_before_send(7, 0, 2, 100), 7);
        assert_eq!(deliveries_before_send(7, 1, 2, 100), 7);
        assert_eq!(deliveries_before_send(7, 2, 2, 100), 107);
        assert_eq!(deliveries_before_send(7, 5, 2, 100), 407);
    }
}
