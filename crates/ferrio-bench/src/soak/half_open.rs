//! Probe 10, half-open Redis link, for each adapter: two cluster nodes on a private Redis, node
//! B through a TCP proxy of the probe's own. Under traffic (node A's client broadcasts every
//! 10 ms), the proxy turns every connection of node B into a black hole: they stay open, nothing
//! moves on them, nothing is closed (a network path that died). Connections node B makes after
//! that are forwarded normally. Measured: the time from the cut to the first broadcast reaching
//! node B's client again, i.e. until node B noticed the dead connection and replaced it.
//!
//! What should notice it: for the classic and sharded adapters the subscriber's health-check
//! `PING` (every 5 s, 5 s to answer: within about 10 s); for the streams adapter the stream
//! reader's `XREAD ... BLOCK 5000`, whose answer may take the block time plus the 5 s response
//! timeout (about 10 s too). What was sent meanwhile is lost with pub/sub; the streams reader goes
//! on from the last entry it read, so it must lose nothing.

use std::io;
use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;

use crate::cluster::{
    both_serve, lost_note, secs, start_node, start_redis, wait_for, warm_up, Proxy, Traffic,
    ADAPTERS,
};
use crate::harness::free_port;
use crate::wire::Conn;
use crate::{Ctx, Outcome};

const EVERY: Duration = Duration::from_millis(10);
/// The bound the probe holds the adapters to: the 10 s of the health check (or of the stream
/// reader's block time and response timeout) plus 5 s to connect again on a loaded machine.
const BOUND: Duration = Duration::from_secs(15);
/// How long the probe waits before it calls the link never replaced.
const GIVE_UP: Duration = Duration::from_secs(25);
const STEADY: Duration = Duration::from_millis(1500);

/// Runs the probe.
pub async fn run(ctx: &Ctx) -> io::Result<Outcome> {
    let threshold = "every adapter: node B receives again within 15 s of its link going silent \
                     (10 s detection + reconnect), both nodes serving, nothing lost after; \
                     streams: nothing lost at all";
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
            "node B's Redis connections black-holed, broadcasts every 10 ms:{}\n     ",
            lines.concat()
        ),
        threshold,
    })
}

async fn one(ctx: &Ctx, cluster: &Path, adapter: &str) -> io::Result<(bool, String)> {
    let redis_port = free_port()?;
    let _redis = start_redis(ctx, redis_port, &format!("redis-half-open-{adapter}"), &[]).await?;
    let proxy = Proxy::start(redis_port).await?;
    let direct = format!("redis://127.0.0.1:{redis_port}");
    let a_name = format!("cluster-half-open-{adapter}-a");
    let b_name = format!("cluster-half-open-{adapter}-b");
    let mut node_a = start_node(ctx, cluster, &a_name, &direct, adapter).await?;
    let mut node_b = start_node(ctx, cluster, &b_name, &proxy.url(), adapter).await?;
    let client_a = Conn::socket_io(node_a.port).await?;
    let mut client_b = Conn::socket_io(node_b.port).await?;
    if let Err(e) = warm_up(&client_a, &mut client_b).await {
        return Ok((false, e));
    }
    let mut traffic = Traffic::start(&client_a, client_b, EVERY);
    tokio::time::sleep(Duration::from_secs(1)).await;

    let cut_at = Instant::now();
    proxy.black_hole();
    let first_cut = traffic.first_sent_after(cut_at);
    let back = wait_for(GIVE_UP, || {
        // The first broadcast sent after the cut that arrives.
        traffic.first_received(first_cut..u64::MAX)
    })
    .await;
    let Some(back) = back else {
        return Ok((
            false,
            format!(
                "node B received NOTHING within {GIVE_UP:?} of the cut (dead link never replaced)"
            ),
        ));
    };
    let first_back = traffic.first_sent_after(back);
    tokio::time::sleep(STEADY).await;
    traffic.stop_sending();
    let end = traffic.sent();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // Sent from half a second after the recovery on: must all arrive.
    let after = traffic.first_sent_after(back + Duration::from_millis(500));
    // In flight at the cut, pub/sub loses what it was carrying: counted from half a second before.
    let settled = traffic.first_sent_after(cut_at - Duration::from_millis(500));
    let lost_before = traffic.lost(0..settled);
    let lost_hole = traffic.lost(first_cut..first_back);
    let lost_after = traffic.lost(after..end);
    let gap = secs(cut_at, back);
    let (alive, alive_text) = both_serve(&mut node_a, &mut node_b).await;
    let streams = adapter == "streams";
    let mut ok = gap <= BOUND.as_secs_f64() && lost_after == 0 && lost_before == 0;
    ok &= alive;
    if streams {
        ok &= lost_hole == 0;
    }
    Ok((
        ok,
        format!(
            "receiving again {gap:.2} s after the cut; lost {lost_hole}/{} sent meanwhile{}, \
             {lost_after} after; {alive_text}{}",
            first_back - first_cut,
            if streams { "" } else { " (pub/sub: expected)" },
            lost_note(lost_before),
        ),
    ))
}
