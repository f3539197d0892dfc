//! The scenarios of issue 8, each run against one server process.

use std::io;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Mutex, Notify, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout};
use tokio_tungstenite::tungstenite::Message;

use crate::client::{
    ack_id, err, next_msg, send_text, ws_connect, ws_hold, Offer, Poll, RawWs, Ws, IO_TIMEOUT,
};
use crate::measure::{rss_kib, Meter, Placement, Window};

/// The JSON argument of `echo` and the `broadcast` payload.
pub const PAYLOAD: &str = r#"{"text":"hello","from":"abc","n":42}"#;

/// The size of one `echo_bin` buffer.
pub const BIN_SIZE: usize = 64 * 1024;

/// Connections opened at the same time while connecting many clients.
const CONNECT_CONCURRENCY: usize = 64;

/// One scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// `n` idle WebSocket connections.
    IdleWs(usize),
    /// `n` idle long-polling connections.
    IdlePoll(usize),
    /// Acked `echo` round trips, one at a time per client, `n` WebSocket clients.
    EchoWs(usize),
    /// Acked `echo` round trips, `n` polling clients.
    EchoPoll(usize),
    /// 64 KiB `echo_bin` round trips, `n` WebSocket clients.
    BinWs(usize),
    /// `broadcast` from one client to `n` WebSocket receivers (sender included).
    Broadcast(usize),
    /// Server memory per WebSocket connection with `permessage-deflate` set up as `Deflate`
    /// says, `n` connections: idle, then after each received and answered one ~4 KiB message.
    /// The server is started with the environment of [`Scenario::server_env`].
    DeflateMem(Deflate, usize),
    /// As many idle WebSocket connections as the descriptor limits allow (or
    /// [`Settings::scale_target`]), then broadcasts to all of them (`crate::scale`). Long: not
    /// part of [`Scenario::all`].
    ScaleWs,
}

/// The compression of a [`Scenario::DeflateMem`] run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deflate {
    /// The server does not compress (the client's offer is declined).
    Off,
    /// Compression without context takeover in either direction.
    NoTakeover,
    /// Compression with context takeover in both directions.
    Takeover,
}

impl Scenario {
    /// Every scenario of the full run, in order.
    pub fn all() -> Vec<Scenario> {
        use Scenario::*;
        vec![
            IdleWs(1000),
            IdleWs(10_000),
            IdlePoll(1000),
            EchoWs(1),
            EchoWs(10),
            EchoWs(100),
            EchoPoll(10),
            EchoPoll(100),
            BinWs(10),
            Broadcast(100),
            Broadcast(1000),
        ]
    }

    /// The compression memory scenarios (`--deflate`): each starts its servers with
    /// [`Scenario::server_env`], so they are not part of [`Scenario::all`].
    pub fn deflate() -> Vec<Scenario> {
        use Deflate::*;
        vec![
            Scenario::DeflateMem(Off, 1000),
            Scenario::DeflateMem(NoTakeover, 1000),
            Scenario::DeflateMem(Takeover, 1000),
        ]
    }

    /// The environment the server is started with for this scenario: `DEFLATE=1` turns
    /// compression on, `DEFLATE_TAKEOVER=1` keeps the contexts between messages.
    pub fn server_env(&self) -> &'static [(&'static str, &'static str)] {
        match self {
            Scenario::DeflateMem(Deflate::NoTakeover, _) => &[("DEFLATE", "1")],
            Scenario::DeflateMem(Deflate::Takeover, _) => {
                &[("DEFLATE", "1"), ("DEFLATE_TAKEOVER", "1")]
            }
            _ => &[],
        }
    }

    /// The scale scenario (`--only scale_ws`): not part of [`Scenario::all`].
    pub fn scale() -> Vec<Scenario> {
        vec![Scenario::ScaleWs]
    }

    /// The longest one run of the scenario may take before it counts as failed.
    pub fn time_limit(&self) -> Duration {
        match self {
            Scenario::ScaleWs => crate::scale::TIME_LIMIT,
            _ => Duration::from_secs(120),
        }
    }

    /// The subset of the quick run.
    pub fn quick() -> Vec<Scenario> {
        use Scenario::*;
        vec![
            IdleWs(1000),
            EchoWs(10),
            EchoPoll(10),
            BinWs(10),
            Broadcast(100),
        ]
    }

    /// The scenario's name on the command line and in the table.
    pub fn name(&self) -> String {
        let k = |n: usize| {
            if n >= 1000 && n % 1000 == 0 {
                format!("{}k", n / 1000)
            } else {
                n.to_string()
            }
        };
        match self {
            Scenario::IdleWs(n) => format!("idle_ws_{}", k(*n)),
            Scenario::IdlePoll(n) => format!("idle_poll_{}", k(*n)),
            Scenario::EchoWs(n) => format!("echo_ws_{}", k(*n)),
            Scenario::EchoPoll(n) => format!("echo_poll_{}", k(*n)),
            Scenario::BinWs(n) => format!("bin64k_ws_{}", k(*n)),
            Scenario::Broadcast(n) => format!("broadcast_{}", k(*n)),
            Scenario::DeflateMem(Deflate::Off, n) => format!("deflate_off_ws_{}", k(*n)),
            Scenario::DeflateMem(Deflate::NoTakeover, n) => format!("deflate_ws_{}", k(*n)),
            Scenario::DeflateMem(Deflate::Takeover, n) => {
                format!("deflate_takeover_ws_{}", k(*n))
            }
            Scenario::ScaleWs => "scale_ws".to_owned(),
        }
    }

    /// The scenario called `name`.
    pub fn parse(name: &str) -> Option<Scenario> {
        Scenario::all()
            .into_iter()
            .chain(Scenario::deflate())
            .chain(Scenario::scale())
            .find(|s| s.name() == name)
    }
}

/// Timing of the measured phases.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Load before the measured window.
    pub warmup: Duration,
    /// The measured window.
    pub window: Duration,
    /// Clock ticks per second of `/proc` CPU times.
    pub tck: f64,
    /// Connections of `scale_ws` (`None`: as many as the descriptor limits allow).
    pub scale_target: Option<usize>,
    /// Measured broadcasts of `scale_ws`.
    pub scale_broadcasts: usize,
    /// Broadcasts in flight in `scale_ws` (`None`: about 20,000 deliveries, 2 to 50).
    pub scale_in_flight: Option<usize>,
}

/// A server under test.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Its process id (CPU and RSS are read from `/proc/<pid>`).
    pub pid: u32,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

/// Named measurements of one run.
pub type Metrics = Vec<(&'static str, f64)>;

/// Runs `scenario` once against `target`.
pub async fn run(scenario: Scenario, target: Target, set: Settings) -> io::Result<Metrics> {
    match scenario {
        Scenario::IdleWs(n) => idle(n, false, target, set).await,
        Scenario::IdlePoll(n) => idle(n, true, target, set).await,
        Scenario::EchoWs(n) => echo(n, Transport::Ws, target, set).await,
        Scenario::EchoPoll(n) => echo(n, Transport::Poll, target, set).await,
        Scenario::BinWs(n) => echo(n, Transport::Bin, target, set).await,
        Scenario::Broadcast(n) => broadcast(n, target, set).await,
        Scenario::DeflateMem(mode, n) => deflate_mem(mode, n, target).await,
        Scenario::ScaleWs => crate::scale::run(target, set).await,
    }
}

/// VmHWM (peak resident memory) of process `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| err("no VmHWM"))
}

/// The ~4 KiB compressible JSON argument of the message each client sends in
/// [`Scenario::DeflateMem`]: a list of similar records, as an application would send.
pub fn payload_4k() -> String {
    let mut s = String::from("{\"items\":[");
    let mut i = 0;
    while s.len() < 4000 {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            "{{\"id\":{i},\"name\":\"item-{i}\",\"tags\":[\"alpha\",\"beta\"],\"price\":{}.5,\"ok\":true}}",
            i % 50
        ));
        i += 1;
    }
    s.push_str("]}");
    s
}

/// `n` WebSocket connections offering `permessage-deflate`, the server set up as `mode` says:
/// server RSS per connection while they are idle; then each client emits one ~4 KiB `echo`
/// (compressed when agreed, so that the server inflates it) and waits for its ~4 KiB ack
/// (which the server compresses): RSS per connection right after the last ack, its peak, and
/// 3 s later.
async fn deflate_mem(mode: Deflate, n: usize, target: Target) -> io::Result<Metrics> {
    let offer = match mode {
        Deflate::NoTakeover => Offer::DeflateNoTakeover,
        Deflate::Off | Deflate::Takeover => Offer::Deflate,
    };
    let want = mode != Deflate::Off;
    let rss0 = rss_kib(target.pid)?;
    let sem = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let (go_tx, go_rx) = tokio::sync::watch::channel(false);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<io::Result<()>>();
    let message = Arc::new(format!("421[\"echo\",{}]", payload_4k()));
    let mut holders = JoinSet::new();
    for i in 0..n {
        let sem = sem.clone();
        let tx = tx.clone();
        let mut go = go_rx.clone();
        let message = message.clone();
        let port = target.port;
        holders.spawn(async move {
            let permit = sem.acquire_owned().await;
            let ws = timeout(
                IO_TIMEOUT,
                RawWs::connect(port, offer, i as u32 * 2654435761),
            )
            .await
            .map_err(|_| err("connect timed out"))
            .and_then(|r| r);
            drop(permit);
            let mut ws = match ws {
                Ok(ws) if ws.deflate == want => ws,
                Ok(ws) => {
                    let _ = tx.send(Err(err(format!(
                        "permessage-deflate agreed: {}, expected {want}",
                        ws.deflate
                    ))));
                    return;
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let _ = tx.send(Ok(()));
            // Idle (answering pings) until the message is due.
            let idle = async {
                loop {
                    ws.next_data(true).await?;
                }
            };
            let woke = tokio::select! {
                r = go.wait_for(|g| *g) => r.is_ok(),
                r = idle => { let _: io::Result<()> = r; false }
            };
            if !woke {
                let _ = tx.send(Err(err("closed while idle")));
                return;
            }
            let answered = async {
                ws.send(message.as_bytes(), ws.deflate).await?;
                loop {
                    let f = ws.next_data(true).await?;
                    if !f.fin {
                        continue;
                    }
                    if ws.deflate {
                        if !f.compressed {
                            return Err(err("the 4 KiB ack came uncompressed"));
                        }
                        return Ok(());
                    }
                    if f.payload.starts_with(b"431[") {
                        return Ok(());
                    }
                }
            };
            let r = timeout(IO_TIMEOUT, answered)
                .await
                .map_err(|_| err("no ack"))
                .and_then(|r| r);
            let failed = r.is_err();
            let _ = tx.send(r);
            if !failed {
                ws.hold().await;
            }
        });
    }
    drop(tx);
    let mut ok = 0usize;
    let mut first_err = None;
    for _ in 0..n {
        match rx.recv().await {
            Some(Ok(())) => ok += 1,
            Some(Err(e)) => {
                first_err.get_or_insert(e);
            }
            None => break,
        }
    }
    if let Some(e) = first_err {
        holders.abort_all();
        return Err(e);
    }
    // Let the server settle (allocators return memory) before reading RSS, as `idle` does.
    sleep(Duration::from_secs(1)).await;
    let idle = rss_kib(target.pid)?;
    let _ = go_tx.send(true);
    let mut acked = 0usize;
    for _ in 0..ok {
        match rx.recv().await {
            Some(Ok(())) => acked += 1,
            Some(Err(e)) => {
                first_err.get_or_insert(e);
            }
            None => break,
        }
    }
    let active = rss_kib(target.pid)?;
    let peak = peak_rss_kib(target.pid)?;
    sleep(Duration::from_secs(3)).await;
    let later = rss_kib(target.pid)?;
    holders.abort_all();
    if let Some(e) = first_err {
        return Err(e);
    }
    if acked != ok || ok == 0 {
        return Err(err(format!("{acked} of {ok} connections acked")));
    }
    let per = |kib: u64| kib.saturating_sub(rss0) as f64 / ok as f64;
    Ok(vec![
        ("connected", ok as f64),
        ("idle RSS KiB per connection", per(idle)),
        ("RSS KiB per connection after 1 message", per(active)),
        ("peak RSS KiB per connection", per(peak)),
        ("RSS KiB per connection 3 s later", per(later)),
    ])
}

/// Opens `n` idle connections: server RSS per connection and CPU per connect.
async fn idle(n: usize, polling: bool, target: Target, set: Settings) -> io::Result<Metrics> {
    let rss0 = rss_kib(target.pid)?;
    let meter = Meter::start(target.pid, set.tck)?;
    let sem = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<bool>();
    let mut holders = JoinSet::new();
    for _ in 0..n {
        let sem = sem.clone();
        let tx = tx.clone();
        let port = target.port;
        holders.spawn(async move {
            let permit = sem.acquire_owned().await;
            if polling {
                let poll = timeout(IO_TIMEOUT, Poll::connect(port)).await;
                drop(permit);
                match poll {
                    Ok(Ok(poll)) => {
                        let _ = tx.send(true);
                        poll.hold().await;
                    }
                    _ => {
                        let _ = tx.send(false);
                    }
                }
            } else {
                let ws = timeout(IO_TIMEOUT, ws_connect(port)).await;
                drop(permit);
                match ws {
                    Ok(Ok(ws)) => {
                        let _ = tx.send(true);
                        ws_hold(ws).await;
                    }
                    _ => {
                        let _ = tx.send(false);
                    }
                }
            }
        });
    }
    drop(tx);
    let mut ok = 0usize;
    for _ in 0..n {
        match rx.recv().await {
            Some(true) => ok += 1,
            Some(false) => {}
            None => break,
        }
    }
    let w = meter.stop()?;
    // Let the server settle (pending polls reach it, allocators return memory) before reading RSS.
    sleep(Duration::from_secs(1)).await;
    let rss1 = rss_kib(target.pid)?;
    holders.abort_all();
    if ok == 0 {
        return Err(err("no connection succeeded"));
    }
    let okf = ok as f64;
    Ok(vec![
        ("connected", okf),
        (
            "RSS KiB per connection",
            rss1.saturating_sub(rss0) as f64 / okf,
        ),
    ]
    .into_iter()
    .chain(w.cpu_rows(
        [
            "server CPU µs per connect",
            "server user CPU µs per connect",
            "server kernel CPU µs per connect",
        ],
        1e6 / okf,
    ))
    .chain([
        ("connects/s", okf / w.secs),
        ("load generator CPU %", w.client_pct()),
    ])
    .collect())
}

/// A connected client.
enum Conn {
    Ws(Ws),
    Poll(Poll),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Ws,
    Poll,
    Bin,
}

/// The phases shared by the clients of one run.
const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// One client's results: acks received during the window and their latencies (µs).
type ClientResult = io::Result<(u64, Vec<u32>)>;

/// Closed-loop acked echoes (one in flight per client).
async fn echo(
    n: usize,
    transport: Transport,
    target: Target,
    set: Settings,
) -> io::Result<Metrics> {
    // All clients connect first (a bounded number at a time), then all start together.
    let sem = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let mut connecting = JoinSet::new();
    for _ in 0..n {
        let sem = sem.clone();
        let port = target.port;
        connecting.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let conn = async move {
                Ok::<Conn, io::Error>(match transport {
                    Transport::Poll => Conn::Poll(Poll::connect(port).await?),
                    Transport::Ws | Transport::Bin => Conn::Ws(ws_connect(port).await?),
                })
            };
            timeout(IO_TIMEOUT, conn)
                .await
                .map_err(|_| err("connect timed out"))?
        });
    }
    let mut conns = Vec::with_capacity(n);
    while let Some(conn) = connecting.join_next().await {
        conns.push(conn.map_err(|e| err(format!("connect task: {e}")))??);
    }
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let mut clients = JoinSet::new();
    let bin = Bytes::from(vec![0xa5u8; BIN_SIZE]);
    for conn in conns {
        let phase = phase.clone();
        let bin = bin.clone();
        let run = async move {
            match conn {
                Conn::Ws(ws) if transport == Transport::Bin => echo_bin(ws, bin, phase).await,
                Conn::Ws(ws) => echo_ws(ws, phase).await,
                Conn::Poll(poll) => echo_poll(poll, phase).await,
            }
        };
        clients.spawn(async move {
            let limit = set.warmup + set.window + IO_TIMEOUT;
            timeout(limit, run)
                .await
                .map_err(|_| err("client timed out"))?
        });
    }
    sleep(set.warmup).await;
    let meter = Meter::start(target.pid, set.tck)?;
    phase.store(MEASURE, Ordering::SeqCst);
    let placement = tokio::spawn(sample_placement(target.pid, phase.clone()));
    sleep(set.window).await;
    phase.store(STOP, Ordering::SeqCst);
    let w = meter.stop()?;
    let placement = placement
        .await
        .map_err(|e| err(format!("placement task: {e}")))?;
    let mut acks = 0u64;
    let mut lat = Vec::new();
    while let Some(done) = clients.join_next().await {
        let (count, l) = done.map_err(|e| err(format!("client task: {e}")))??;
        acks += count;
        lat.extend(l);
    }
    if acks == 0 {
        return Err(err("no ack during the window"));
    }
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64;
    let a = acks as f64;
    let mut m: Metrics = vec![
        ("acks/s", a / w.secs),
        ("p50 µs", pct(0.5)),
        ("p99 µs", pct(0.99)),
    ];
    if transport == Transport::Bin {
        let mib = a * BIN_SIZE as f64 / (1024.0 * 1024.0);
        m.push(("MiB/s echoed", mib / w.secs));
        m.extend(w.cpu_rows(
            [
                "server CPU ms per MiB",
                "server user CPU ms per MiB",
                "server kernel CPU ms per MiB",
            ],
            1e3 / mib,
        ));
    } else {
        m.extend(w.cpu_rows(
            [
                "server CPU µs per ack",
                "server user CPU µs per ack",
                "server kernel CPU µs per ack",
            ],
            1e6 / a,
        ));
    }
    m.extend(w.switch_rows(
        [
            "server voluntary context switches per ack",
            "server involuntary context switches per ack",
        ],
        1.0 / a,
    ));
    m.push(("load generator CPU %", w.client_pct()));
    if let Some(share) = placement.same_share() {
        m.push((
            "server ran on the load generator's CPU, share of samples",
            share,
        ));
    }
    Ok(m)
}

/// Samples every 10 ms, until the window ends, on which CPU the server's threads ran beside
/// the load generator's (see [`Placement`]). A failed read ends the sampling.
async fn sample_placement(pid: u32, phase: Arc<AtomicU8>) -> Placement {
    let mut placement = Placement::default();
    while phase.load(Ordering::Relaxed) == MEASURE && placement.sample(pid).is_ok() {
        sleep(Duration::from_millis(10)).await;
    }
    placement
}

fn window_record(phase: &AtomicU8, t0: Instant, acks: &mut u64, lat: &mut Vec<u32>) {
    if phase.load(Ordering::Relaxed) == MEASURE {
        *acks += 1;
        lat.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
    }
}

async fn echo_ws(mut ws: Ws, phase: Arc<AtomicU8>) -> ClientResult {
    let (mut acks, mut lat) = (0u64, Vec::new());
    let mut id = 0u64;
    while phase.load(Ordering::Relaxed) != STOP {
        id += 1;
        let t0 = Instant::now();
        send_text(&mut ws, format!("42{id}[\"echo\",{PAYLOAD}]")).await?;
        loop {
            if let Message::Text(t) = next_msg(&mut ws).await? {
                let t = t.as_str();
                if t == "2" {
                    send_text(&mut ws, "3".to_owned()).await?;
                } else if t.strip_prefix("43").and_then(ack_id) == Some(id) {
                    break;
                }
            }
        }
        window_record(&phase, t0, &mut acks, &mut lat);
    }
    Ok((acks, lat))
}

async fn echo_bin(mut ws: Ws, bin: Bytes, phase: Arc<AtomicU8>) -> ClientResult {
    let (mut acks, mut lat) = (0u64, Vec::new());
    let mut id = 0u64;
    while phase.load(Ordering::Relaxed) != STOP {
        id += 1;
        let t0 = Instant::now();
        send_text(
            &mut ws,
            format!("451-{id}[\"echo_bin\",{{\"_placeholder\":true,\"num\":0}}]"),
        )
        .await?;
        ws.send(Message::Binary(bin.clone()))
            .await
            .map_err(|e| err(format!("websocket send: {e}")))?;
        let mut header = false;
        loop {
            match next_msg(&mut ws).await? {
                Message::Text(t) => {
                    let t = t.as_str();
                    if t == "2" {
                        send_text(&mut ws, "3".to_owned()).await?;
                    } else if t.strip_prefix("461-").and_then(ack_id) == Some(id) {
                        header = true;
                    }
                }
                Message::Binary(b) if header => {
                    if b.len() != BIN_SIZE {
                        return Err(err(format!("echoed {} bytes", b.len())));
                    }
                    break;
                }
                _ => {}
            }
        }
        window_record(&phase, t0, &mut acks, &mut lat);
    }
    Ok((acks, lat))
}

async fn echo_poll(mut poll: Poll, phase: Arc<AtomicU8>) -> ClientResult {
    let (mut acks, mut lat) = (0u64, Vec::new());
    let mut id = 0u64;
    while phase.load(Ordering::Relaxed) != STOP {
        id += 1;
        let t0 = Instant::now();
        poll.post(format!("42{id}[\"echo\",{PAYLOAD}]").as_bytes())
            .await?;
        let mut done = false;
        while !done {
            let body = poll.get().await?;
            let mut ping = false;
            for record in body.split(|b| *b == 0x1e) {
                if record == b"2" {
                    ping = true;
                } else if let Some(rest) = record.strip_prefix(b"43") {
                    if ack_id(&String::from_utf8_lossy(rest)) == Some(id) {
                        done = true;
                    }
                }
            }
            if ping {
                poll.post(b"3").await?;
            }
        }
        window_record(&phase, t0, &mut acks, &mut lat);
    }
    Ok((acks, lat))
}

type Sink = Arc<Mutex<SplitSink<Ws, Message>>>;

/// Deliveries counted by the receivers, and the sender's wake-up.
struct Fanout {
    all: AtomicU64,
    window: AtomicU64,
    wake_at: AtomicU64,
    wake: Notify,
    phase: AtomicU8,
}

/// One client emits `broadcast` (no ack); `n` clients (itself included) receive `msg`. The
/// sender keeps a bounded number of broadcasts in flight: it waits until the receivers have
/// counted all but the last few.
async fn broadcast(n: usize, target: Target, set: Settings) -> io::Result<Metrics> {
    let sem = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let mut connecting = JoinSet::new();
    for _ in 0..n {
        let sem = sem.clone();
        let port = target.port;
        connecting.spawn(async move {
            let _permit = sem.acquire_owned().await;
            timeout(IO_TIMEOUT, ws_connect(port))
                .await
                .map_err(|_| err("connect timed out"))?
        });
    }
    let mut sockets = Vec::with_capacity(n);
    while let Some(ws) = connecting.join_next().await {
        sockets.push(ws.map_err(|e| err(format!("connect task: {e}")))??);
    }
    let fan = Arc::new(Fanout {
        all: AtomicU64::new(0),
        window: AtomicU64::new(0),
        wake_at: AtomicU64::new(u64::MAX),
        wake: Notify::new(),
        phase: AtomicU8::new(WARMUP),
    });
    let mut receivers = JoinSet::new();
    let mut sender_sink = None;
    for ws in sockets {
        let (sink, mut stream) = ws.split();
        let sink: Sink = Arc::new(Mutex::new(sink));
        if sender_sink.is_none() {
            sender_sink = Some(sink.clone());
        }
        let fan = fan.clone();
        receivers.spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                if let Message::Text(t) = msg {
                    let t = t.as_str();
                    if t.starts_with("42[\"msg\"") {
                        let c = fan.all.fetch_add(1, Ordering::Relaxed) + 1;
                        if fan.phase.load(Ordering::Relaxed) == MEASURE {
                            fan.window.fetch_add(1, Ordering::Relaxed);
                        }
                        if c >= fan.wake_at.load(Ordering::Relaxed) {
                            fan.wake_at.store(u64::MAX, Ordering::Relaxed);
                            fan.wake.notify_one();
                        }
                    } else if t == "2" {
                        let _ = sink.lock().await.send(Message::text("3")).await;
                    }
                }
            }
        });
    }
    let sink = sender_sink.ok_or_else(|| err("no client"))?;
    // Broadcasts in flight: about 20,000 deliveries, between 2 and 50 per receiver.
    let in_flight = (20_000 / n as u64).clamp(2, 50);
    let sender = {
        let fan = fan.clone();
        tokio::spawn(async move {
            let mut sent = 0u64;
            let mut stalls = 0u64;
            let msg = Message::text(format!("42[\"broadcast\",{PAYLOAD}]"));
            while fan.phase.load(Ordering::Relaxed) != STOP {
                let need = (sent + 1).saturating_sub(in_flight) * n as u64;
                if fan.all.load(Ordering::Relaxed) < need {
                    fan.wake_at.store(need, Ordering::Relaxed);
                    if fan.all.load(Ordering::Relaxed) < need
                        && timeout(Duration::from_secs(1), fan.wake.notified())
                            .await
                            .is_err()
                    {
                        stalls += 1;
                    }
                    continue;
                }
                if sink.lock().await.send(msg.clone()).await.is_err() {
                    break;
                }
                sent += 1;
            }
            stalls
        })
    };
    sleep(set.warmup).await;
    let meter = Meter::start(target.pid, set.tck)?;
    fan.phase.store(MEASURE, Ordering::SeqCst);
    sleep(set.window).await;
    fan.phase.store(STOP, Ordering::SeqCst);
    let w: Window = meter.stop()?;
    let stalls = sender.await.map_err(|e| err(format!("sender: {e}")))?;
    receivers.abort_all();
    let d = fan.window.load(Ordering::SeqCst) as f64;
    if d == 0.0 {
        return Err(err("no delivery during the window"));
    }
    let mut m: Metrics = vec![("deliveries/s", d / w.secs)];
    m.extend(w.cpu_rows(
        [
            "server CPU s per million deliveries",
            "server user CPU s per million deliveries",
            "server kernel CPU s per million deliveries",
        ],
        1e6 / d,
    ));
    m.extend([
        ("sender stalls (1 s without progress)", stalls as f64),
        ("load generator CPU %", w.client_pct()),
    ]);
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The compression scenarios are named on the command line, start their servers with the
    /// environment of their mode, and stay out of the full run.
    #[test]
    fn deflate_scenarios_parse_and_set_the_server_environment() {
        let names: Vec<String> = Scenario::deflate().iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            [
                "deflate_off_ws_1k",
                "deflate_ws_1k",
                "deflate_takeover_ws_1k"
            ]
        );
        for s in Scenario::deflate() {
            assert_eq!(Scenario::parse(&s.name()), Some(s));
            assert!(!Scenario::all().contains(&s));
        }
        let env = |n: &str| Scenario::parse(n).unwrap().server_env();
        assert!(env("deflate_off_ws_1k").is_empty());
        assert_eq!(env("deflate_ws_1k"), &[("DEFLATE", "1")]);
        assert_eq!(
            env("deflate_takeover_ws_1k"),
            &[("DEFLATE", "1"), ("DEFLATE_TAKEOVER", "1")]
        );
        assert!(env("idle_ws_1k").is_empty());
    }

    /// `scale_ws` is named on the command line, stays out of the full run, and has a longer
    /// time limit than the others.
    #[test]
    fn scale_scenario_parses_and_stays_out_of_the_full_run() {
        let s = Scenario::parse("scale_ws").unwrap();
        assert_eq!(s, Scenario::ScaleWs);
        assert!(!Scenario::all().contains(&s));
        assert!(!Scenario::quick().contains(&s));
        assert!(s.time_limit() > Scenario::IdleWs(10_000).time_limit());
        assert!(s.server_env().is_empty());
    }

    /// The message's argument is JSON of about 4 KiB, above the 1024-byte threshold.
    #[test]
    fn payload_4k_is_json_of_about_4_kib() {
        let p = payload_4k();
        assert!((4000..4200).contains(&p.len()), "{}", p.len());
        assert!(p.starts_with("{\"items\":[{\"id\":0,") && p.ends_with("}]}"));
        assert_eq!(p.matches('{').count(), p.matches('}').count());
    }
}
