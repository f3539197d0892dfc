//! `ferrio-soak`: the soak and abuse suite. Each probe repeats one attack found against the
//! end-to-end test server (`examples/e2e` of ferrio-server) or the cluster node (`examples/cluster`
//! of ferrio-redis; the Redis fault probes 8, 10 and 11 once with each of its adapters) with its
//! numbers, against a fresh server that the suite starts itself on a free 127.0.0.1 port and
//! stops by its PID. One line per probe: its numbers, PASS or FAIL against the stated threshold.
//! The exit status is non-zero when any probe failed. Every probe is bounded in time (a minute at
//! most; 90 s for the Redis fault probes). Run by `scripts/soak`, not by the test suite.
//!
//! ```text
//! ferrio-soak --e2e target/release/examples/e2e [--cluster target/release/examples/cluster] \
//!             [--redis-server redis-server] [--only 1,7] [--logs DIR]
//! ```

mod ack_flood;
mod bystander;
mod cluster;
mod connect_retries;
mod half_open;
mod harness;
mod huge_ack_id;
mod huge_headers;
#[allow(dead_code)]
#[path = "../measure.rs"]
mod measure;
mod pending_acks;
mod redis_outage;
mod slow_redis;
mod soak500;
mod stalled_post;
mod wire;

use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use harness::{free_port, Logs, Proc};

/// What a probe found.
pub struct Outcome {
    /// Whether the threshold was met.
    pub pass: bool,
    /// The numbers measured, for the report line.
    pub numbers: String,
    /// The threshold, in words.
    pub threshold: &'static str,
}

impl Outcome {
    /// Fails the outcome (and says so) if `server` is no longer running.
    pub fn check_alive(mut self, server: &mut Proc) -> Outcome {
        if let Some(exit) = server.exited() {
            self.pass = false;
            self.numbers = format!("{exit}! {}", self.numbers);
        }
        self
    }
}

/// Where the probes find what they start.
pub struct Ctx {
    e2e: PathBuf,
    cluster: Option<PathBuf>,
    redis_server: PathBuf,
    logs: Logs,
}

impl Ctx {
    /// Starts the end-to-end test server on a free port (log file `name`).
    pub async fn start_e2e(&self, name: &str) -> io::Result<Proc> {
        let port = free_port()?;
        // The port goes both ways the server may read it: `--port P` and `PORT=P`.
        let args = ["--port".to_owned(), port.to_string()];
        Proc::start(name, &self.e2e, &args, port, &self.logs).await
    }
}

/// The probes: number, name, time limit.
const PROBES: [(u8, &str, u64); 11] = [
    (1, "stalled-post", 60),
    (2, "huge-headers", 60),
    (3, "ack-flood", 60),
    (4, "join-flood", 60),
    (5, "pending-acks", 60),
    (6, "connect-retries", 45),
    (7, "huge-ack-id", 20),
    (8, "redis-outage", 90),
    (9, "soak-500", 60),
    (10, "redis-half-open", 90),
    (11, "redis-slow", 90),
];

async fn run_probe(n: u8, ctx: &Ctx) -> io::Result<Outcome> {
    match n {
        1 => stalled_post::run(ctx).await,
        2 => huge_headers::run(ctx).await,
        3 => ack_flood::run_ack_flood(ctx).await,
        4 => ack_flood::run_join_flood(ctx).await,
        5 => pending_acks::run(ctx).await,
        6 => connect_retries::run(ctx).await,
        7 => huge_ack_id::run(ctx).await,
        8 => redis_outage::run(ctx).await,
        9 => soak500::run(ctx).await,
        10 => half_open::run(ctx).await,
        11 => slow_redis::run(ctx).await,
        _ => Err(io::Error::other(format!("no probe {n}"))),
    }
}

const USAGE: &str = "usage: ferrio-soak --e2e PATH [--cluster PATH] [--redis-server PATH] \
[--only 1,7] [--logs DIR]";

struct Options {
    ctx: Ctx,
    only: Vec<u8>,
}

fn parse_args() -> Result<Options, String> {
    let mut e2e = None;
    let mut cluster = None;
    let mut redis_server = PathBuf::from("redis-server");
    let mut only = Vec::new();
    let mut logs = std::env::temp_dir().join(format!("ferrio-soak-{}", std::process::id()));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--e2e" => e2e = Some(PathBuf::from(value()?)),
            "--cluster" => cluster = Some(PathBuf::from(value()?)),
            "--redis-server" => redis_server = PathBuf::from(value()?),
            "--logs" => logs = PathBuf::from(value()?),
            "--only" => {
                for n in value()?.split(',').filter(|s| !s.trim().is_empty()) {
                    let n: u8 = n
                        .trim()
                        .parse()
                        .map_err(|_| format!("--only takes probe numbers 1-11, got {n}"))?;
                    if !PROBES.iter().any(|p| p.0 == n) {
                        return Err(format!("no probe {n}: probes are 1-11"));
                    }
                    only.push(n);
                }
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let e2e = e2e.ok_or_else(|| format!("--e2e is needed\n{USAGE}"))?;
    let logs = Logs::new(logs).map_err(|e| format!("log directory: {e}"))?;
    Ok(Options {
        ctx: Ctx {
            e2e,
            cluster,
            redis_server,
            logs,
        },
        only,
    })
}

async fn soak(opts: Options) -> bool {
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "ferrio-soak: {} ({cores} cores, load average {}); process logs in {}",
        opts.ctx.e2e.display(),
        loadavg.split(' ').take(3).collect::<Vec<_>>().join(" "),
        opts.ctx.logs.dir().display()
    );
    let (mut passed, mut failed) = (0, 0);
    for (n, name, limit) in PROBES {
        if !opts.only.is_empty() && !opts.only.contains(&n) {
            continue;
        }
        let start = Instant::now();
        let outcome =
            match tokio::time::timeout(Duration::from_secs(limit), run_probe(n, &opts.ctx)).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(e)) => Outcome {
                    pass: false,
                    numbers: format!("error: {e}"),
                    threshold: "the probe runs to its end",
                },
                Err(_) => Outcome {
                    pass: false,
                    numbers: format!("did not finish within its {limit} s limit"),
                    threshold: "the probe runs to its end",
                },
            };
        if outcome.pass {
            passed += 1;
        } else {
            failed += 1;
        }
        println!(
            "[{n}] {name:<15} {} {:>5.1}s  {}  [PASS if: {}]",
            if outcome.pass { "PASS" } else { "FAIL" },
            start.elapsed().as_secs_f64(),
            outcome.numbers,
            outcome.threshold
        );
        // Leave the kernel a moment to tear the probe's connections down.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!("ferrio-soak: {passed} passed, {failed} failed");
    failed == 0
}

fn main() {
    let opts = match parse_args() {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let ok = runtime.block_on(soak(opts));
    // Probe tasks still parked on a socket are dropped with the runtime.
    runtime.shutdown_timeout(Duration::from_secs(1));
    std::process::exit(if ok { 0 } else { 1 });
}
