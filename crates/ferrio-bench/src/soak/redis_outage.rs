//! Probe 8, Redis outage: two cluster nodes on a private Redis (started here on a free port, no
//! persistence), one client on each in the namespace `/`. Redis is killed by its PID and started
//! again on the same port; after a fixed 5 s (no retrying, which would hide a lost subscription)
//! the client on node A sends one `broadcast`, which the client on node B must receive.

use std::io;
use std::time::Duration;

use crate::harness::{free_port, Proc};
use crate::wire::Conn;
use crate::{Ctx, Outcome};

/// How long the nodes get to resubscribe after Redis is back.
const RESUBSCRIBE: Duration = Duration::from_secs(5);
const DELIVERY: Duration = Duration::from_secs(5);

async fn start_redis(ctx: &Ctx, port: u16, name: &str) -> io::Result<Proc> {
    let args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        &ctx.logs.dir().display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    Proc::start(name, &ctx.redis_server, &args, port, &ctx.logs).await
}

/// One broadcast from `from`; whether `to` received it within `wait`.
async fn broadcast(from: &Conn, to: &mut Conn, tag: &str, wait: Duration) -> Result<(), String> {
    from.send(format!("42[\"broadcast\",\"{tag}\"]"));
    to.expect(&format!("42[\"broadcast\",\"{tag}\"]"), wait)
        .await
}

/// Runs the probe.
pub async fn run(ctx: &Ctx) -> io::Result<Outcome> {
    let threshold = "node B's client receives the first broadcast sent 5 s after Redis restarted";
    let Some(cluster) = &ctx.cluster else {
        return Ok(Outcome {
            pass: false,
            numbers: "not run: --cluster PATH (examples/cluster of ferrio-redis) not given"
                .to_owned(),
            threshold,
        });
    };
    let redis_port = free_port()?;
    let mut redis = match start_redis(ctx, redis_port, "redis").await {
        Ok(redis) => redis,
        Err(e) => {
            return Ok(Outcome {
                pass: false,
                numbers: format!("not run: cannot start redis-server ({e})"),
                threshold,
            })
        }
    };
    let url = format!("redis://127.0.0.1:{redis_port}");
    let node = |name: &'static str| {
        let url = url.clone();
        async move {
            let port = free_port()?;
            let args = [
                "--port".to_owned(),
                port.to_string(),
                "--redis".to_owned(),
                url,
            ];
            Proc::start(name, cluster, &args, port, &ctx.logs).await
        }
    };
    let mut node_a = node("cluster-a").await?;
    let mut node_b = node("cluster-b").await?;
    let client_a = Conn::socket_io(node_a.port).await?;
    let mut client_b = Conn::socket_io(node_b.port).await?;

    // The cluster works before the outage (a few tries: the nodes subscribe as they start).
    let mut before = Err(String::new());
    for attempt in 0..5 {
        before = broadcast(
            &client_a,
            &mut client_b,
            &format!("before-{attempt}"),
            Duration::from_secs(2),
        )
        .await;
        if before.is_ok() {
            break;
        }
    }
    if let Err(e) = before {
        return Ok(Outcome {
            pass: false,
            numbers: format!("the cluster did not broadcast before the outage: {e}"),
            threshold,
        });
    }

    redis.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut restarted = Err(io::Error::other("not started"));
    for _ in 0..3 {
        restarted = start_redis(ctx, redis_port, "redis-restarted").await;
        if restarted.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _redis = restarted?;
    tokio::time::sleep(RESUBSCRIBE).await;

    let first = broadcast(&client_a, &mut client_b, "after-restart", DELIVERY).await;
    // Only to tell a slow recovery from none; the verdict is on the first broadcast.
    let second = match first {
        Ok(()) => None,
        Err(_) => Some(broadcast(&client_a, &mut client_b, "after-restart-2", DELIVERY).await),
    };
    drop((client_a, client_b));
    let mut outcome = Outcome {
        pass: first.is_ok(),
        numbers: format!(
            "broadcast before the outage: received; first broadcast 5 s after Redis restarted: {}{}",
            match &first {
                Ok(()) => "received by node B's client".to_owned(),
                Err(e) => format!("LOST ({e})"),
            },
            match second {
                None => String::new(),
                Some(Ok(())) => "; a second one 5 s later: received".to_owned(),
                Some(Err(e)) => format!("; a second one 5 s later: lost too ({e})"),
            }
        ),
        threshold,
    };
    outcome = outcome.check_alive(&mut node_a);
    Ok(outcome.check_alive(&mut node_b))
}
