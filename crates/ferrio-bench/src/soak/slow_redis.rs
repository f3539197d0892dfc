//! Probe 11, slow Redis, for each adapter: two cluster nodes on a private Redis started with
//! `--enable-debug-command yes`, node B through a TCP proxy of the probe's own; two clients on
//! node A, one on node B. The first client on node A asks `fetch-sockets`, which needs node B's
//! answer through Redis, while
//!
//! 1. Redis stalls (`DEBUG SLEEP 7` from a connection of the probe's own: it answers nothing
//!    for 7 s), then
//! 2. Redis answers but what it sends to node B is held back (a congested link) until node A
//!    answered.
//!
//! Node A must answer (an error, or only what it could get) within the cluster requests timeout
//! (5 s, the example's default) plus a margin, while its other client's `message-with-ack` round
//! trips (every 100 ms) go on being answered. Once Redis (or the link) is fast again,
//! `fetch-sockets` must list the sockets of both nodes again.

use std::io;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::cluster::{both_serve, start_node, start_redis, Proxy, ADAPTERS};
use crate::harness::free_port;
use crate::wire::{short, Conn, In};
use crate::{Ctx, Outcome};

/// How long Redis stalls.
const SLEEP_SECS: u64 = 7;
/// The cluster example's requests timeout (the adapters' default).
const REQUESTS_TIMEOUT: Duration = Duration::from_secs(5);
/// What the answer may take beyond it.
const MARGIN: Duration = Duration::from_secs(2);
/// The slowest echo round trip allowed on node A meanwhile.
const ECHO_LIMIT: Duration = Duration::from_secs(1);
/// How long the cluster may take to list everything again after the stall.
const RECOVERY: Duration = Duration::from_secs(15);

/// Runs the probe.
pub async fn run(ctx: &Ctx) -> io::Result<Outcome> {
    let threshold = "every adapter, both faults: fetch-sockets answered within the 5 s requests \
                     timeout + 2 s, every echo on node A answered within 1 s meanwhile, \
                     fetch-sockets lists both nodes' sockets again after";
    let Some(cluster) = &ctx.cluster else {
        return Ok(Outcome {
            pass: false,
            numbers: "not run: --cluster PATH (examples/cluster of ferrio-redis) not given"
                .to_owned(),
            threshold,
        });
    };
    let mut pass = true;
    let mut lines = Vec::new();
    for adapter in ADAPTERS {
        let (ok, line) = match one(ctx, cluster, adapter).await {
            Ok(r) => r,
            Err(e) => (false, format!("error: {e}")),
        };
        pass &= ok;
        lines.push(format!(
            "\n      {adapter:<8} {} {line}",
            if ok { "ok  " } else { "FAIL" }
        ));
    }
    Ok(Outcome {
        pass,
        numbers: format!(
            "fetch-sockets from node A while Redis stalls {SLEEP_SECS} s (DEBUG SLEEP), then while \
             node B's link is held back:{}\n     ",
            lines.concat()
        ),
        threshold,
    })
}

/// Sends `fetch-sockets` with ack id `id` and waits up to `wait` for the answer: how long it
/// took and the answer (the ack's argument).
async fn fetch(conn: &mut Conn, id: u64, wait: Duration) -> Option<(Duration, String)> {
    let start = Instant::now();
    conn.send(format!("42{id}[\"fetch-sockets\",null]"));
    let prefix = format!("43{id}[");
    loop {
        let left = wait.saturating_sub(start.elapsed());
        match conn.next(left).await {
            Some(In::Text(t)) if t.starts_with(&prefix) => {
                let answer = t[prefix.len()..t.len().saturating_sub(1)].to_owned();
                return Some((start.elapsed(), answer));
            }
            Some(In::Closed(_)) | None => return None,
            Some(_) => {}
        }
    }
}

/// How many sockets a `fetch-sockets` answer lists (`None` for an error answer).
fn listed(answer: &str) -> Option<usize> {
    answer
        .starts_with('[')
        .then(|| answer.matches("\"id\":").count())
}

async fn one(ctx: &Ctx, cluster: &Path, adapter: &str) -> io::Result<(bool, String)> {
    let redis_port = free_port()?;
    let name = format!("redis-slow-{adapter}");
    let _redis = start_redis(ctx, redis_port, &name, &["--enable-debug-command", "yes"]).await?;
    let proxy = Proxy::start(redis_port).await?;
    let url = format!("redis://127.0.0.1:{redis_port}");
    let a_name = format!("cluster-slow-{adapter}-a");
    let b_name = format!("cluster-slow-{adapter}-b");
    let mut node_a = start_node(ctx, cluster, &a_name, &url, adapter).await?;
    let mut node_b = start_node(ctx, cluster, &b_name, &proxy.url(), adapter).await?;
    let mut asker = Conn::socket_io(node_a.port).await?;
    let mut echo = Conn::socket_io(node_a.port).await?;
    let _client_b = Conn::socket_io(node_b.port).await?;
    let mut id = 0;

    // The cluster answers before the faults: three sockets (a few tries while it subscribes).
    if listed_again(&mut asker, &mut id, RECOVERY).await.is_none() {
        return Ok((
            false,
            "fetch-sockets never listed 3 sockets before the faults".to_owned(),
        ));
    }

    // 1. Redis stalls.
    let mut stall = TcpStream::connect(("127.0.0.1", redis_port)).await?;
    let cmd = format!(
        "*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n${}\r\n{SLEEP_SECS}\r\n",
        SLEEP_SECS.to_string().len()
    );
    stall.write_all(cmd.as_bytes()).await?;
    // Let Redis read it before the request goes out.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stalled = ask_during(&mut asker, &mut echo, &mut id).await;
    // Redis answers the DEBUG SLEEP once awake.
    let mut buf = [0u8; 64];
    let _ = tokio::time::timeout(Duration::from_secs(SLEEP_SECS + 5), stall.read(&mut buf)).await;
    let stall_again = listed_again(&mut asker, &mut id, RECOVERY).await;

    // 2. Node B's link held back.
    proxy.hold();
    let held = ask_during(&mut asker, &mut echo, &mut id).await;
    proxy.release();
    let hold_again = listed_again(&mut asker, &mut id, RECOVERY).await;

    let (alive, alive_text) = both_serve(&mut node_a, &mut node_b).await;
    let ok = stalled.ok() && held.ok() && stall_again.is_some() && hold_again.is_some() && alive;
    let again = |t: Option<Duration>| match t {
        Some(t) => format!("both nodes listed again {:.2} s after", t.as_secs_f64()),
        None => format!("NOT listed again within {RECOVERY:?}"),
    };
    Ok((
        ok,
        format!(
            "stall: {}, {}; held link: {}, {}; {alive_text}",
            stalled,
            again(stall_again),
            held,
            again(hold_again),
        ),
    ))
}

/// What node A did while Redis was slow: how long its answer to `fetch-sockets` took and what
/// it was, how its echo round trips went meanwhile.
struct Asked {
    answer: Option<(Duration, String)>,
    echoes: usize,
    echoes_due: usize,
    echoed: usize,
    echo_max: Duration,
}

impl Asked {
    fn ok(&self) -> bool {
        self.answer
            .as_ref()
            .is_some_and(|(t, _)| *t <= REQUESTS_TIMEOUT + MARGIN)
            && self.echoed >= self.echoes_due
            && self.echo_max <= ECHO_LIMIT
    }
}

impl std::fmt::Display for Asked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.answer {
            Some((t, a)) => write!(
                f,
                "answered in {:.2} s: {}",
                t.as_secs_f64(),
                match listed(a) {
                    Some(n) => format!("{n} sockets listed"),
                    None => short(a),
                }
            )?,
            None => write!(f, "NOT answered")?,
        }
        write!(
            f,
            ", echo meanwhile {}/{} answered (slowest {:.0} ms)",
            self.echoed,
            self.echoes,
            self.echo_max.as_secs_f64() * 1000.0
        )
    }
}

/// Asks `fetch-sockets` on `asker` and, until it is answered (or a deadline well past the
/// requests timeout), sends a `message-with-ack` on `echo` every 100 ms.
async fn ask_during(asker: &mut Conn, echo: &mut Conn, id: &mut u64) -> Asked {
    *id += 1;
    let asked = Instant::now();
    asker.send(format!("42{id}[\"fetch-sockets\",null]"));
    let prefix = format!("43{id}[");
    let deadline = asked + REQUESTS_TIMEOUT + MARGIN + Duration::from_secs(5);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut echoes_sent: Vec<Instant> = Vec::new();
    let mut echo_rtt: Vec<Duration> = Vec::new();
    let mut answer = None;
    let echo_base = 1000 + *id * 1000;
    while answer.is_none() && Instant::now() < deadline {
        tokio::select! {
            _ = tick.tick() => {
                let n = echoes_sent.len() as u64;
                echoes_sent.push(Instant::now());
                echo.send(format!("42{}[\"message-with-ack\",{n}]", echo_base + n));
            }
            got = asker.rx.recv() => match got {
                Some(In::Text(t)) if t.starts_with(&prefix) => {
                    let text = t[prefix.len()..t.len().saturating_sub(1)].to_owned();
                    answer = Some((asked.elapsed(), text));
                }
                Some(In::Closed(_)) | None => break,
                Some(_) => {}
            },
            got = echo.rx.recv() => match got {
                Some(In::Text(t)) => {
                    let n = t
                        .strip_prefix("43")
                        .and_then(|r| r.split('[').next())
                        .and_then(|n| n.parse::<u64>().ok())
                        .and_then(|n| n.checked_sub(echo_base));
                    if let Some(sent) = n.and_then(|i| echoes_sent.get(i as usize)) {
                        echo_rtt.push(sent.elapsed());
                    }
                }
                Some(In::Closed(_)) | None => break,
                _ => {}
            },
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
    Asked {
        answer,
        echoes: echoes_sent.len(),
        // Those sent more than the allowed round trip ago must have been answered.
        echoes_due: echoes_sent
            .iter()
            .filter(|t| t.elapsed() > ECHO_LIMIT)
            .count(),
        echoed: echo_rtt.len(),
        echo_max: echo_rtt.iter().max().copied().unwrap_or_default(),
    }
}

/// Asks `fetch-sockets` until it lists 3 sockets (both nodes'), for at most `within`: how long
/// that took.
async fn listed_again(asker: &mut Conn, id: &mut u64, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < within {
        *id += 1;
        if let Some((_, a)) = fetch(asker, *id, Duration::from_secs(7)).await {
            if listed(&a) == Some(3) {
                return Some(start.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}
