//! Probe 5, pending acks: one client sends `emit-with-ack` 200,000 times; each makes the server emit
//! `emit-with-ack` back asking for an ack with no timeout, and the client never answers. The
//! server's memory for those pending acks must stay bounded.

use std::io;
use std::time::Duration;

use tokio::time::Instant;

use crate::harness::{baseline, growth_mib, mib, PeakRss};
use crate::wire::{ack_id, Conn, In};
use crate::{Ctx, Outcome};

const REQUESTS: u64 = 200_000;
const BATCH: u64 = 1_000;
const RSS_LIMIT_KIB: u64 = 40 * 1024;
/// How long the probe waits for the server's requests.
const LIMIT: Duration = Duration::from_secs(40);
/// The server is taken to be done after this long without a message.
const QUIET: Duration = Duration::from_secs(2);

/// Runs the probe.
pub async fn run(ctx: &Ctx) -> io::Result<Outcome> {
    let mut server = ctx.start_e2e("e2e-pending-acks").await?;
    let base = baseline(&server).await;
    let peak = PeakRss::start(server.pid());
    let mut conn = Conn::socket_io(server.port).await?;
    let start = Instant::now();
    // Sent in batches of 1,000, each followed by a `message-with-ack` marker whose ack says the
    // server has handled the batch; at most two batches in flight. A client that wrote all
    // 200,000 at once would have its pongs queued behind them and be dropped by the 300/200 ms
    // heartbeat long before the server had registered the pending acks.
    let batches = REQUESTS / BATCH;
    let mut sent_batches = 0u64;
    let mut done_batches = 0u64;
    let mut asked = 0u64;
    let mut disconnected = None;
    while done_batches < batches && start.elapsed() < LIMIT {
        while sent_batches < batches && sent_batches < done_batches + 2 {
            for _ in 0..BATCH {
                conn.send("42[\"emit-with-ack\",\"x\"]");
            }
            conn.send(format!("42{sent_batches}[\"message-with-ack\"]"));
            sent_batches += 1;
        }
        match conn.next(QUIET).await {
            Some(In::Text(t)) if t.starts_with("42") && t.contains("[\"emit-with-ack\"") => {
                asked += 1
            }
            Some(In::Text(t)) if ack_id(&t).is_some() => done_batches += 1,
            Some(In::Closed(why)) => {
                disconnected = Some(why);
                break;
            }
            Some(_) => {}
            None => break,
        }
    }
    // The server's last requests, if any are still on the way.
    while asked < REQUESTS && disconnected.is_none() {
        match conn.next(Duration::from_millis(300)).await {
            Some(In::Text(t)) if t.starts_with("42") && t.contains("[\"emit-with-ack\"") => {
                asked += 1
            }
            Some(In::Closed(why)) => disconnected = Some(why),
            Some(_) => {}
            None => break,
        }
    }
    let secs = start.elapsed().as_secs_f64();
    // Measured while the client is still connected and the acks still pending.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss = server.rss_kib();
    let peak = peak.peak();
    drop(conn);
    // A client dropped early (e.g. by the heartbeat) would pass on memory without testing it.
    let handled = done_batches * BATCH;
    let pass = handled == REQUESTS && peak <= base + RSS_LIMIT_KIB;
    Ok(Outcome {
        pass,
        numbers: format!(
            "{handled}/{REQUESTS} requests handled by the server (client-side markers acked), {asked} acks asked by the server in {secs:.1} s, none answered{}; RSS \
             baseline {} MiB, peak {} ({} MiB), at the end {} ({} MiB)",
            match &disconnected {
                Some(why) => format!(", client disconnected ({why})"),
                None => String::new(),
            },
            mib(base),
            mib(peak),
            growth_mib(base, peak),
            mib(rss),
            growth_mib(base, rss),
        ),
        threshold: "all 200,000 handled with the client connected, RSS peak < baseline + 40 MiB",
    }
    .check_alive(&mut server))
}
