//! Probe 9, a 500-client soak: 500 WebSocket clients of `/socket.io/` (300/200 ms heartbeat, which
//! each answers) each send one `message-with-ack` per second for 30 s and wait for its ack.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Barrier;
use tokio::time::{Instant, MissedTickBehavior};

use crate::harness::{baseline, growth_mib, mib};
use crate::wire::{ack_id, Conn, In, Stats};
use crate::{Ctx, Outcome};

const CLIENTS: usize = 500;
const SOAK: Duration = Duration::from_secs(30);
/// An ack later than this counts as an error.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// What one client saw.
#[derive(Default)]
struct Client {
    latencies: Vec<f64>,
    errors: Vec<String>,
    disconnected: bool,
}

async fn client(index: usize, mut conn: Conn, start: Arc<Barrier>) -> Client {
    let mut seen = Client::default();
    start.wait().await;
    // Spread the clients over the second.
    tokio::time::sleep(Duration::from_millis((index * 1000 / CLIENTS) as u64)).await;
    let end = Instant::now() + SOAK;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut id = 0u64;
    while Instant::now() < end {
        tick.tick().await;
        let sent = Instant::now();
        conn.send(format!("42{id}[\"message-with-ack\",{index}]"));
        let want = id.to_string();
        id += 1;
        loop {
            let left = ACK_TIMEOUT.saturating_sub(sent.elapsed());
            match conn.next(left).await {
                Some(In::Text(t)) if ack_id(&t) == Some(want.as_str()) => {
                    seen.latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                    break;
                }
                Some(In::Text(t)) if t == "1" || t.starts_with("41") => {
                    seen.errors.push(format!("server sent {t}"));
                    seen.disconnected = true;
                    return seen;
                }
                Some(In::Closed(why)) => {
                    seen.errors.push(format!("closed: {why}"));
                    seen.disconnected = true;
                    return seen;
                }
                Some(_) => {}
                None => {
                    seen.errors.push(format!("no ack within {ACK_TIMEOUT:?}"));
                    break;
                }
            }
        }
    }
    seen
}

/// Runs the probe.
pub async fn run(ctx: &Ctx) -> io::Result<Outcome> {
    let mut server = ctx.start_e2e("e2e-soak-500").await?;
    let port = server.port;
    let base = baseline(&server).await;
    let mut conns = Vec::with_capacity(CLIENTS);
    let mut connect_errors = Vec::new();
    // Connected 50 at a time.
    for batch in 0..CLIENTS.div_ceil(50) {
        let tasks: Vec<_> = (batch * 50..CLIENTS.min(batch * 50 + 50))
            .map(|_| tokio::spawn(Conn::socket_io(port)))
            .collect();
        for task in tasks {
            match task.await.map_err(io::Error::other)? {
                Ok(conn) => conns.push(conn),
                Err(e) => connect_errors.push(e.to_string()),
            }
        }
    }
    let start = Arc::new(Barrier::new(conns.len() + 1));
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, conn)| tokio::spawn(client(i, conn, start.clone())))
        .collect();
    start.wait().await;
    tokio::time::sleep(SOAK / 2).await;
    let rss_mid = server.rss_kib();
    let sockets_mid = server.sockets();
    let mut latencies = Vec::new();
    let mut errors = connect_errors.clone();
    let mut disconnects = 0;
    for task in tasks {
        let seen = task.await.map_err(io::Error::other)?;
        latencies.extend(seen.latencies);
        errors.extend(seen.errors);
        disconnects += usize::from(seen.disconnected);
    }
    let acks = Stats::of(&mut latencies);
    let per_client = (rss_mid.saturating_sub(base)) as f64 / CLIENTS as f64;
    let pass = errors.is_empty() && disconnects == 0;
    Ok(Outcome {
        pass,
        numbers: format!(
            "{} clients connected ({} failed); acks {acks}; errors {}{}; disconnects \
             {disconnects}; RSS baseline {} MiB, at 15 s {} ({} MiB, {per_client:.1} KiB per \
             client); server sockets at 15 s: {sockets_mid}",
            CLIENTS - connect_errors.len(),
            connect_errors.len(),
            errors.len(),
            errors
                .first()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default(),
            mib(base),
            mib(rss_mid),
            growth_mib(base, rss_mid),
        ),
        threshold: "no errors (every ack within 5 s), no disconnects",
    }
    .check_alive(&mut server))
}
