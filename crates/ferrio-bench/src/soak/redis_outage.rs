//! Probe 8, Redis outage under traffic, for each adapter (classic, sharded, streams): two
//! cluster nodes on a private Redis (started here on a free port, no persistence), node A
//! directly, node B through a TCP proxy of the probe's own. The client on node A sends a numbered
//! `broadcast` every 10 ms throughout; the client on node B counts what arrives.
//!
//! 1. Redis is killed (SIGKILL, by its PID), left down 2 s and started again on the same port:
//!    the time from Redis listening again to the first broadcast reaching node B, and how many
//!    broadcasts were lost (those sent while Redis was down cannot be written anywhere).
//! 2. Node B's link alone is cut 2 s (the proxy closes its connections and refuses new ones)
//!    while node A goes on writing: the streams adapter must deliver every broadcast written
//!    meanwhile once the link is back (the pub/sub adapters lose them, by design; reported).
//!
//! Then both nodes must still run and serve a new client, and every broadcast sent from half a
//! second after the recovery on must arrive.

use std::io;
use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;

use crate::cluster::{
    both_serve, lost_note, restart_redis, secs, start_node, start_redis, wait_for, warm_up, Proxy,
    Traffic, ADAPTERS,
};
use crate::harness::free_port;
use crate::wire::Conn;
use crate::{Ctx, Outcome};

/// How often node A's client broadcasts.
const EVERY: Duration = Duration::from_millis(10);
/// How long Redis stays down, and how long node B's link stays cut.
const OUTAGE: Duration = Duration::from_secs(2);
/// How long a recovery may take before the probe gives up on it.
const RECOVERY: Duration = Duration::from_secs(15);
/// Traffic after a recovery, all of which must arrive.
const STEADY: Duration = Duration::from_millis(1500);

/// Runs the probe.
pub async fn run(ctx: &Ctx) -> io::Result<Outcome> {
    let threshold = "every adapter: both nodes alive and serving, node B receives again within \
                     15 s of Redis (or its link) coming back, nothing sent after the recovery is \
                     lost; streams: nothing written while node B's link was cut is lost";
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
        numbers: format!("Redis killed for 2 s, then node B's link cut for 2 s, broadcasts every 10 ms:{}\n     ", lines.concat()),
        threshold,
    })
}

async fn one(ctx: &Ctx, cluster: &Path, adapter: &str) -> io::Result<(bool, String)> {
    let redis_port = free_port()?;
    let redis_name = format!("redis-outage-{adapter}");
    let mut redis = start_redis(ctx, redis_port, &redis_name, &[]).await?;
    let mut proxy = Proxy::start(redis_port).await?;
    let direct = format!("redis://127.0.0.1:{redis_port}");
    let a_name = format!("cluster-outage-{adapter}-a");
    let b_name = format!("cluster-outage-{adapter}-b");
    let mut node_a = start_node(ctx, cluster, &a_name, &direct, adapter).await?;
    let mut node_b = start_node(ctx, cluster, &b_name, &proxy.url(), adapter).await?;
    let client_a = Conn::socket_io(node_a.port).await?;
    let mut client_b = Conn::socket_io(node_b.port).await?;
    if let Err(e) = warm_up(&client_a, &mut client_b).await {
        return Ok((false, e));
    }
    let mut traffic = Traffic::start(&client_a, client_b, EVERY);
    tokio::time::sleep(Duration::from_secs(1)).await;

    // 1. Redis killed and started again.
    let killed_at = Instant::now();
    redis.kill();
    let first_down = traffic.first_sent_after(killed_at);
    tokio::time::sleep(OUTAGE).await;
    let _redis = restart_redis(ctx, redis_port, &format!("{redis_name}-restarted"), &[]).await?;
    let back_at = Instant::now();
    let first_back = traffic.first_sent_after(back_at);
    let Some(delivered_at) =
        wait_for(RECOVERY, || traffic.first_received(first_down..u64::MAX)).await
    else {
        return Ok((
            false,
            format!(
                "node B received nothing within {RECOVERY:?} of Redis coming back (stuck reconnect?)"
            ),
        ));
    };
    tokio::time::sleep(STEADY).await;
    let restart_after = traffic.first_sent_after(delivered_at + Duration::from_millis(500));

    // 2. Node B's link alone cut, Redis up.
    let cut_at = Instant::now();
    let first_cut = traffic.first_sent_after(cut_at);
    proxy.cut();
    tokio::time::sleep(OUTAGE).await;
    proxy.restore().await?;
    let restored_at = Instant::now();
    let first_restored = traffic.first_sent_after(restored_at);
    let relinked = wait_for(RECOVERY, || {
        traffic.first_received(first_restored..u64::MAX)
    })
    .await;
    let caught_up = traffic.all_received(first_cut..first_restored);
    tokio::time::sleep(STEADY).await;
    let cut_after = relinked.map(|t| traffic.first_sent_after(t + Duration::from_millis(500)));
    traffic.stop_sending();
    let end = traffic.sent();
    // Let the last ones arrive.
    tokio::time::sleep(Duration::from_millis(1000)).await;

    let settled = traffic.first_sent_after(killed_at - Duration::from_millis(500));
    let lost_before = traffic.lost(0..settled);
    let lost_down = traffic.lost(first_down..first_back);
    let lost_restart_after = traffic.lost(restart_after..first_cut);
    let lost_cut = traffic.lost(first_cut..first_restored);
    let lost_end = cut_after.map(|n| traffic.lost(n..end));
    let (alive, alive_text) = both_serve(&mut node_a, &mut node_b).await;

    let mut ok = lost_before == 0 && lost_restart_after == 0 && lost_end == Some(0);
    ok &= alive;
    let streams = adapter == "streams";
    if streams {
        ok &= lost_cut == 0;
    }
    let line = format!(
        "kill: first delivery {:.2} s after Redis was back, lost {lost_down}/{} sent while down, \
         {lost_restart_after} after; cut: {}, lost {lost_cut}/{} written meanwhile{}, {} after; \
         {} duplicates; {alive_text}{}",
        secs(back_at, delivered_at),
        first_back - first_down,
        match relinked {
            Some(t) => format!(
                "receiving again {:.2} s after the link was back",
                secs(restored_at, t)
            ),
            None => format!("NOTHING within {RECOVERY:?} after the link was back"),
        },
        first_restored - first_cut,
        match (streams, caught_up) {
            (true, Some(t)) => format!(" (all in {:.2} s)", secs(restored_at, t)),
            (false, _) => " (pub/sub: expected)".to_owned(),
            (true, None) => String::new(),
        },
        lost_end.map_or("?".to_owned(), |n| n.to_string()),
        traffic.duplicates(),
        lost_note(lost_before),
    );
    Ok((ok, line))
}
