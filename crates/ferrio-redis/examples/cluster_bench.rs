//! Cross-node broadcast through Redis, Ferrio against Node: two cluster nodes (node A, node B)
//! behind one Redis, `--clients` WebSocket clients on node B and one sender on node A. The
//! sender emits `broadcast` events carrying their send time; node A broadcasts each to every
//! other socket of the cluster (the e2e test server's `broadcast` handler), so each one reaches
//! every client of node B through Redis.
//!
//! - latency: `--latency-messages` events 5 ms apart; p50 and p99 of send → receive;
//! - throughput: `--burst` events back to back (default 1000); deliveries per second until the
//!   last arrives, and both nodes' CPU time per thousand deliveries (from `/proc`).
//!
//! Each of the three adapters is measured (`--adapters classic,sharded,streams`, the default):
//! the classic and sharded protocols of `@socket.io/redis-adapter` 8.3 and the streams protocol of
//! `@socket.io/redis-streams-adapter` 0.3. Ferrio's nodes are this crate's `cluster` example
//! (release build, `--adapter <mode>`); Node's are `tests/node/redis-node.js` (npm socket.io
//! 4.8.4 with the same adapter). Runs alternate between the two, adapter by adapter; the medians
//! are printed as one markdown table.
//!
//! ```text
//! (cd tests/node && npm ci)
//! cargo build --release -p ferrio-redis --example cluster --example cluster_bench
//! target/release/examples/cluster_bench --redis redis://127.0.0.1:6379/ --runs 3
//! ```

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferrio_client::{AckSender, Socket, Transport};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now_micros() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as f64)
        .unwrap_or(0.0)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Server {
    Ferrio,
    Node,
}

/// Starts one cluster node and returns it with its base URL.
async fn start_node(
    server: Server,
    adapter: &str,
    redis: &str,
    key: &str,
) -> Result<(Child, String), BoxError> {
    match server {
        Server::Ferrio => {
            let exe = std::env::current_exe()?;
            let binary = exe.with_file_name("cluster");
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let child = Command::new(binary)
                .args(["--port", &port.to_string(), "--redis", redis, "--key", key])
                .args(["--adapter", adapter])
                .stdout(Stdio::null())
                .kill_on_drop(true)
                .spawn()?;
            let url = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(10);
            while tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
            {
                if Instant::now() > deadline {
                    return Err("the cluster example did not start".into());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok((child, url))
        }
        Server::Node => {
            let script =
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/node/redis-node.js");
            let mut child = Command::new("node")
                .arg(script)
                .args([redis, key, adapter])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()?;
            let stdout = child.stdout.take().ok_or("no stdout")?;
            let mut lines = BufReader::new(stdout).lines();
            let ready: serde_json::Value = match lines.next_line().await? {
                Some(line) => serde_json::from_str(&line)?,
                None => return Err("node exited".into()),
            };
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            Ok((child, format!("http://127.0.0.1:{}", ready["port"])))
        }
    }
}

struct Measured {
    p50_us: f64,
    p99_us: f64,
    deliveries_per_s: f64,
    /// Both nodes' CPU time (user + system) per thousand deliveries of the burst.
    cpu_ms_per_1k: f64,
}

/// CPU time (user + system) of process `pid` so far, in seconds, from `/proc`.
fn cpu_seconds(pid: Option<u32>) -> f64 {
    let Some(pid) = pid else { return f64::NAN };
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    // utime and stime are fields 14 and 15 of the line: 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

async fn run_once(
    server: Server,
    adapter: &str,
    redis: &str,
    clients: usize,
    latency_n: usize,
    burst: usize,
) -> Result<Measured, BoxError> {
    let key = format!(
        "ferrio-bench-{}-{}",
        std::process::id(),
        now_micros() as u64
    );
    let (node_a, url_a) = start_node(server, adapter, redis, &key).await?;
    let (node_b, url_b) = start_node(server, adapter, redis, &key).await?;
    let cpu = || cpu_seconds(node_a.id()) + cpu_seconds(node_b.id());
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(
        clients * latency_n.max(burst),
    )));
    let received = Arc::new(AtomicUsize::new(0));
    let mut receivers = Vec::new();
    for _ in 0..clients {
        let (lat, count) = (latencies.clone(), received.clone());
        let socket = ferrio_client::io(&format!("{url_b}/"))
            .transports(&[Transport::WebSocket])
            .force_new(true)
            .reconnection(false)
            .on(
                "broadcast",
                move |_s: Socket, (sent,): (f64,), _ack: AckSender| {
                    let (lat, count) = (lat.clone(), count.clone());
                    async move {
                        if let Ok(mut l) = lat.lock() {
                            l.push(now_micros() - sent);
                        }
                        count.fetch_add(1, Ordering::Release);
                    }
                },
            )
            .connect()
            .await?;
        receivers.push(socket);
    }
    let sender = ferrio_client::io(&format!("{url_a}/"))
        .transports(&[Transport::WebSocket])
        .force_new(true)
        .reconnection(false)
        .connect()
        .await?;
    sender.on_disconnect(move |_s, reason| async move {
        eprintln!("{server:?}: the sender was disconnected: {reason:?}");
    });
    // Wait until the nodes see each other (a probe broadcast reaches node B).
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.load(Ordering::Acquire) == 0 {
        if Instant::now() > deadline {
            return Err("the nodes did not form a cluster".into());
        }
        sender.emit("broadcast", &(now_micros(),))?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let wait_for = |target: usize| {
        let received = received.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while received.load(Ordering::Acquire) < target && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    };

    // Latency: spaced sends.
    received.store(0, Ordering::Release);
    latencies.lock().map_err(|_| "poisoned")?.clear();
    for _ in 0..latency_n {
        sender.emit("broadcast", &(now_micros(),))?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    wait_for(latency_n * clients).await;
    let mut lat = std::mem::take(&mut *latencies.lock().map_err(|_| "poisoned")?);
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    let (p50_us, p99_us) = (pct(0.50), pct(0.99));

    // Throughput: a burst.
    received.store(0, Ordering::Release);
    let cpu_before = cpu();
    let started = Instant::now();
    for _ in 0..burst {
        sender.emit("broadcast", &(now_micros(),))?;
    }
    wait_for(burst * clients).await;
    let elapsed = started.elapsed().as_secs_f64();
    let delivered = received.load(Ordering::Acquire) as f64;
    if delivered < (burst * clients) as f64 {
        eprintln!(
            "{server:?}: only {delivered} of {} deliveries arrived",
            burst * clients
        );
    }
    let deliveries_per_s = delivered / elapsed;
    let cpu_ms_per_1k = (cpu() - cpu_before) * 1000.0 / (delivered / 1000.0);
    for s in receivers {
        s.disconnect();
    }
    sender.disconnect();
    Ok(Measured {
        p50_us,
        p99_us,
        deliveries_per_s,
        cpu_ms_per_1k,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let redis: String = arg(&args, "--redis", "redis://127.0.0.1:6379/".to_owned());
    let clients: usize = arg(&args, "--clients", 50);
    let latency_n: usize = arg(&args, "--latency-messages", 200);
    let burst: usize = arg(&args, "--burst", 1000);
    let runs: usize = arg(&args, "--runs", 3);
    let adapters: String = arg(&args, "--adapters", "classic,sharded,streams".to_owned());
    let adapters: Vec<&str> = adapters.split(',').filter(|a| !a.is_empty()).collect();
    // (adapter, server) -> the runs' measures; the runs alternate between the servers, adapter
    // by adapter, so that a slower moment of the machine hits both.
    let mut results: Vec<(&str, Server, Vec<Measured>)> = Vec::new();
    for adapter in &adapters {
        for server in [Server::Ferrio, Server::Node] {
            results.push((adapter, server, Vec::new()));
        }
    }
    for run in 0..runs {
        for (adapter, server, measured) in results.iter_mut() {
            let m = run_once(*server, adapter, &redis, clients, latency_n, burst).await?;
            eprintln!(
                "run {run} {adapter} {server:?}: p50 {:.0} µs, p99 {:.0} µs, {:.0} deliveries/s, {:.2} ms CPU per 1k deliveries",
                m.p50_us, m.p99_us, m.deliveries_per_s, m.cpu_ms_per_1k
            );
            measured.push(m);
        }
    }
    let summary = |adapter: &str, server: Server| -> [f64; 4] {
        let Some((_, _, m)) = results
            .iter()
            .find(|(a, s, _)| *a == adapter && *s == server)
        else {
            return [f64::NAN; 4];
        };
        [
            median(m.iter().map(|x| x.p50_us).collect()),
            median(m.iter().map(|x| x.p99_us).collect()),
            median(m.iter().map(|x| x.deliveries_per_s).collect()),
            median(m.iter().map(|x| x.cpu_ms_per_1k).collect()),
        ]
    };
    println!("{clients} clients on node B, sender on node A; medians of {runs} runs\n");
    println!("| adapter | metric | Ferrio | Node | Ferrio / Node |");
    println!("|---|---|---:|---:|---:|");
    let names = [
        "latency p50 (µs)",
        "latency p99 (µs)",
        "burst deliveries/s",
        "nodes' CPU ms per 1k deliveries (burst)",
    ];
    for adapter in &adapters {
        let (f, n) = (
            summary(adapter, Server::Ferrio),
            summary(adapter, Server::Node),
        );
        for (i, name) in names.iter().enumerate() {
            println!(
                "| {adapter} | {name} | {:.1} | {:.1} | {:.2} |",
                f[i],
                n[i],
                f[i] / n[i]
            );
        }
    }
    Ok(())
}
