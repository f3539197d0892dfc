//! `ferrio-bench`: the load generator of the server benchmarks (issue 8). It starts each server
//! under test itself on a free 127.0.0.1 port, runs one scenario against it, reads the server's
//! CPU time and memory from `/proc/<pid>`, stops it (by its PID), and goes on to the next
//! server, so that the servers are measured interleaved; then it prints the medians as a
//! markdown table with the ratios of the first server to the others.
//!
//! Server CPU is reported in total and split into user and kernel time (utime and stime of
//! `/proc/<pid>/stat`). A server named `floor` (`ferrio-floor`, `src/floor`: the least work
//! any server can do for the same frames) is the floor: every server CPU row of the table is
//! followed by a row "above floor", each other server's median minus the floor's. The echo
//! scenarios also report the server's context switches per ack, voluntary (a thread waited) and
//! involuntary (preempted), summed over its threads (`/proc/<pid>/task/*/status`), and the share
//! of 10 ms samples in which the server's threads ran on the load generator's CPU (the kernel
//! keeps a one-thread server and the load generator on one CPU or on two; on two, every message
//! wakes the other CPU, and the latency at one client is that of those wake-ups).
//!
//! ```text
//! ferrio-bench --server ferrio=target/release/examples/bench \
//!              --server node="node bench/node/server.js" \
//!              --server socketioxide=bench/socketioxide-server/target/release/socketioxide-bench-server \
//!              --server floor=target/release/ferrio-floor \
//!              [--runs 3] [--quick] [--only echo_ws_10,broadcast_100] [--raw FILE]
//! ferrio-bench --server ... --deflate    # WebSocket compression memory (sets DEFLATE=1 etc.)
//! ferrio-bench --server ... --only scale_ws --runs 1 [--scale-target N] [--scale-broadcasts N]
//!              [--scale-in-flight N]
//! ferrio-bench --server ... --only echo_ws_1 --pin split   # load generator on CPU 0, servers on CPU 1
//! ferrio-bench --attach PID:PORT --only echo_ws_10    # a server already running (profiling)
//! ferrio-bench --pool target/bench/raw-*.tsv [--only idle_ws_1k]  # runs of several invocations pooled
//! ```
//!
//! The load generator runs on one thread (a current-thread tokio runtime) and reports its own
//! CPU use in every scenario.

mod client;
mod measure;
mod scale;
mod scenario;

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use scenario::{Metrics, Scenario, Settings, Target};

/// A server to start: its name in the table and its command line.
#[derive(Debug, Clone)]
struct ServerSpec {
    name: String,
    argv: Vec<String>,
}

#[derive(Debug)]
struct Options {
    /// `--pool`: the `--raw` files whose runs are pooled into one table (nothing is run).
    pool: Vec<String>,
    servers: Vec<ServerSpec>,
    attach: Option<Target>,
    runs: usize,
    scenarios: Vec<Scenario>,
    settings: Settings,
    raw: Option<String>,
    /// `--pin`: the load generator's CPU, if it pins itself.
    pin_self: Option<u32>,
}

/// The CPUs `--pin MODE` puts the load generator and the servers on: `same` both on CPU 0,
/// `split` the load generator on CPU 0 and the server on CPU 1.
fn pin_cpus(mode: &str) -> Result<(u32, u32), String> {
    match mode {
        "same" => Ok((0, 0)),
        "split" => Ok((0, 1)),
        _ => Err(format!("--pin same or --pin split, got {mode}")),
    }
}

/// `argv` run on `cpu` only (through `taskset`, which runs the command in its own process: the
/// PID measured is the server's).
fn pinned(argv: Vec<String>, cpu: u32) -> Vec<String> {
    ["taskset".to_owned(), "-c".to_owned(), cpu.to_string()]
        .into_iter()
        .chain(argv)
        .collect()
}

/// Pins this process (its one thread, before the runtime starts; threads made later inherit
/// it) to `cpu`.
fn pin_self(cpu: u32) -> io::Result<()> {
    let status = Command::new("taskset")
        .args([
            "-p",
            "-c",
            &cpu.to_string(),
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::null())
        .status()
        .map_err(|e| io::Error::other(format!("taskset: {e}")))?;
    if !status.success() {
        return Err(io::Error::other(format!("taskset -p -c {cpu}: {status}")));
    }
    Ok(())
}

const USAGE: &str = "usage: ferrio-bench (--server NAME=COMMAND)... | --attach PID:PORT \
[--runs N] [--quick] [--deflate] [--only S1,S2] [--window SECS] [--raw FILE]
       [--pin same|split] [--scale-target N] [--scale-broadcasts N] [--scale-in-flight N]
       ferrio-bench --pool RAW_FILE... [--only S1,S2]
A server named floor (--server floor=target/release/ferrio-floor) is the floor: the table
reports every other server's CPU above it.
--only scale_ws: as many idle WebSocket connections as the descriptor limits allow (or
--scale-target N), then --scale-broadcasts N (default 50) broadcasts to all of them,
--scale-in-flight N at a time (default: about 20,000 deliveries in flight, 2 to 50).
--pin same: the load generator and every server on CPU 0; --pin split: the load generator on
CPU 0, the servers on CPU 1 (with taskset). Left free, the kernel puts a one-thread server
on the load generator's CPU or on the other one, and the p50 at one client follows.";

fn parse_args() -> Result<Options, String> {
    let mut servers = Vec::new();
    let mut attach = None;
    let mut runs = None;
    let mut quick = false;
    let mut deflate = false;
    let mut only: Option<String> = None;
    let mut window = None;
    let mut raw = None;
    let mut pool = Vec::new();
    let mut pooling = false;
    let mut scale_target = None;
    let mut scale_broadcasts = 50;
    let mut scale_in_flight = None;
    let mut pin = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if pooling && !arg.starts_with("--") {
            pool.push(arg);
            continue;
        }
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--server" => {
                let v = value()?;
                let (name, cmd) = v
                    .split_once('=')
                    .ok_or_else(|| format!("--server NAME=COMMAND, got {v}"))?;
                let argv: Vec<String> = cmd.split_whitespace().map(str::to_owned).collect();
                if argv.is_empty() {
                    return Err(format!("empty command for {name}"));
                }
                servers.push(ServerSpec {
                    name: name.to_owned(),
                    argv,
                });
            }
            "--attach" => {
                let v = value()?;
                let (pid, port) = v
                    .split_once(':')
                    .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                    .ok_or_else(|| format!("--attach PID:PORT, got {v}"))?;
                attach = Some(Target { pid, port });
            }
            "--runs" => runs = Some(value()?.parse().map_err(|_| "--runs N".to_owned())?),
            "--quick" => quick = true,
            "--deflate" => deflate = true,
            "--only" => only = Some(value()?),
            "--window" => {
                window = Some(
                    value()?
                        .parse::<f64>()
                        .map_err(|_| "--window SECS".to_owned())?,
                )
            }
            "--raw" => raw = Some(value()?),
            "--scale-target" => {
                scale_target = Some(
                    value()?
                        .parse::<usize>()
                        .map_err(|_| "--scale-target N".to_owned())?,
                )
            }
            "--scale-in-flight" => {
                scale_in_flight = Some(
                    value()?
                        .parse::<usize>()
                        .map_err(|_| "--scale-in-flight N".to_owned())?,
                )
            }
            "--scale-broadcasts" => {
                scale_broadcasts = value()?
                    .parse::<usize>()
                    .map_err(|_| "--scale-broadcasts N".to_owned())?
            }
            "--pool" => pooling = true,
            "--pin" => pin = Some(pin_cpus(&value()?)?),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if servers.is_empty() && attach.is_none() && pool.is_empty() {
        return Err(USAGE.to_owned());
    }
    let scenarios = match only {
        Some(list) => list
            .split(',')
            .map(|s| Scenario::parse(s.trim()).ok_or_else(|| format!("unknown scenario {s}")))
            .collect::<Result<Vec<_>, _>>()?,
        None if deflate => Scenario::deflate(),
        None if quick => Scenario::quick(),
        None => Scenario::all(),
    };
    let window = window.unwrap_or(if quick { 1.0 } else { 3.0 });
    if let Some((_, cpu)) = pin {
        for spec in &mut servers {
            spec.argv = pinned(std::mem::take(&mut spec.argv), cpu);
        }
    }
    Ok(Options {
        pool,
        servers,
        attach,
        runs: runs.unwrap_or(if quick { 1 } else { 3 }).max(1),
        scenarios,
        settings: Settings {
            warmup: Duration::from_secs_f64(if quick { 0.5 } else { 1.0 }),
            window: Duration::from_secs_f64(window),
            tck: measure::clock_ticks(),
            scale_target,
            scale_broadcasts,
            scale_in_flight,
        },
        raw,
        pin_self: pin.map(|(cpu, _)| cpu),
    })
}

/// A free port on 127.0.0.1 (bound, then released for the server to take).
fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A started server; killed (by its PID) and reaped when dropped.
struct Running {
    child: Child,
    port: u16,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `spec` with `PORT` and the scenario's environment `env` set, and waits until it
/// accepts connections (10 s at most).
async fn start(spec: &ServerSpec, env: &[(&str, &str)]) -> io::Result<Running> {
    let port = free_port()?;
    let child = Command::new(&spec.argv[0])
        .args(&spec.argv[1..])
        .env_remove("DEFLATE")
        .env_remove("DEFLATE_TAKEOVER")
        .envs(env.iter().copied())
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| io::Error::other(format!("starting {}: {e}", spec.argv[0])))?;
    let mut running = Running { child, port };
    for _ in 0..200 {
        if let Some(status) = running.child.try_wait()? {
            return Err(io::Error::other(format!("{} exited: {status}", spec.name)));
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            // Let the start-up work (JIT, allocator warm-up) finish before measuring.
            tokio::time::sleep(Duration::from_millis(300)).await;
            return Ok(running);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.child.kill()?;
    Err(io::Error::other(format!(
        "{} did not listen on {port}",
        spec.name
    )))
}

/// Results: scenario → server → metric name → one value per run.
type Results = BTreeMap<(usize, String), BTreeMap<String, Vec<(usize, &'static str, f64)>>>;

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{:.0}", v)
    } else if a >= 10.0 {
        format!("{:.1}", v)
    } else if a >= 1.0 {
        format!("{:.2}", v)
    } else {
        format!("{:.3}", v)
    }
}

/// The name of the floor server (`--server floor=...`, `ferrio-floor`): every other server's
/// CPU is also reported above it.
const FLOOR: &str = "floor";

/// Whether `metric` is one of the server CPU figures (total, user or kernel), which are also
/// reported as overhead above the floor.
fn is_server_cpu(metric: &str) -> bool {
    metric.starts_with("server ") && metric.contains(" CPU ")
}

/// Each server's median minus the floor's (the server at index `floor`); `None` for the floor
/// itself and where a median is missing.
fn above_floor(meds: &[Option<f64>], floor: usize) -> Vec<Option<f64>> {
    meds.iter()
        .enumerate()
        .map(
            |(i, m)| match (i == floor, m, meds.get(floor).copied().flatten()) {
                (false, Some(m), Some(f)) => Some(m - f),
                _ => None,
            },
        )
        .collect()
}

/// The ratio of `a` to `b` as the tables print it (`-` when either is missing or `b` is not
/// positive).
fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "-".into(),
    }
}

/// One table row: the values (`missing` where there is none) and the ratios of the first to
/// the others.
fn row(out: &mut String, scenario: &str, metric: &str, values: &[Option<f64>], missing: &str) {
    out.push_str(&format!("| {scenario} | {metric} |"));
    for v in values {
        out.push_str(&format!(
            " {} |",
            v.map(fmt_num).unwrap_or_else(|| missing.into())
        ));
    }
    for v in values.iter().skip(1) {
        out.push_str(&format!(" {} |", ratio(values[0], *v)));
    }
    out.push('\n');
}

/// The markdown table of medians, with the ratio of the first server to each other one. With
/// a server named [`FLOOR`], every server CPU row is followed by its row "above floor": each
/// other server's median minus the floor's (the ratios then compare overheads).
fn table(results: &Results, scenarios: &[Scenario], names: &[String], runs: usize) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Medians of {runs} run(s).\n\n| Scenario | Metric |"
    ));
    for n in names {
        out.push_str(&format!(" {n} |"));
    }
    for n in names.iter().skip(1) {
        out.push_str(&format!(" {}/{} |", names[0], n));
    }
    out.push_str("\n|---|---|");
    for _ in 0..(names.len() * 2).saturating_sub(1) {
        out.push_str("---:|");
    }
    out.push('\n');
    let floor = names.iter().position(|n| n == FLOOR);
    for (i, sc) in scenarios.iter().enumerate() {
        // Metric names in the order the scenario reports them.
        let mut metrics: Vec<&'static str> = Vec::new();
        for name in names {
            if let Some(per) = results.get(&(i, sc.name())).and_then(|m| m.get(name)) {
                for (_, metric, _) in per {
                    if !metrics.contains(metric) {
                        metrics.push(metric);
                    }
                }
            }
        }
        for metric in metrics {
            let meds: Vec<Option<f64>> = names
                .iter()
                .map(|name| {
                    let mut v: Vec<f64> = results
                        .get(&(i, sc.name()))
                        .and_then(|m| m.get(name))
                        .map(|per| {
                            per.iter()
                                .filter(|(_, m, _)| *m == metric)
                                .map(|(_, _, v)| *v)
                                .collect()
                        })
                        .unwrap_or_default();
                    (!v.is_empty()).then(|| median(&mut v))
                })
                .collect();
            row(&mut out, &sc.name(), metric, &meds, "failed");
            if let Some(f) = floor.filter(|_| is_server_cpu(metric)) {
                let over = above_floor(&meds, f);
                row(
                    &mut out,
                    &sc.name(),
                    &format!("{metric} above floor"),
                    &over,
                    "-",
                );
            }
        }
    }
    out
}

/// The table of the medians of every run in `files` (what `--raw` wrote, from one or several
/// invocations), for the scenarios in `only`: runs of several invocations pooled. Servers and
/// scenarios keep the order they first appear in.
fn pool(files: &[String], only: &[Scenario]) -> Result<String, String> {
    let mut results = Results::new();
    let mut names: Vec<String> = Vec::new();
    let mut scenarios: Vec<Scenario> = Vec::new();
    let mut metrics: Vec<&'static str> = Vec::new();
    let mut runs = std::collections::BTreeSet::new();
    for (f, path) in files.iter().enumerate() {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        for line in text.lines().filter(|l| !l.is_empty()) {
            let bad = || format!("{path}: not a line of --raw: {line}");
            let [run, sc, server, metric, value] = line.split('\t').collect::<Vec<_>>()[..] else {
                return Err(bad());
            };
            let scenario = Scenario::parse(sc).ok_or_else(bad)?;
            let run: usize = run.parse().map_err(|_| bad())?;
            let value: f64 = value.parse().map_err(|_| bad())?;
            if !only.contains(&scenario) {
                continue;
            }
            runs.insert((f, run));
            let i = match scenarios.iter().position(|s| *s == scenario) {
                Some(i) => i,
                None => {
                    scenarios.push(scenario);
                    scenarios.len() - 1
                }
            };
            if !names.iter().any(|n| n == server) {
                names.push(server.to_owned());
            }
            // The table keys metrics by name; a few distinct names, kept for the process.
            let metric = match metrics.iter().find(|m| **m == metric) {
                Some(m) => *m,
                None => {
                    let m: &'static str = Box::leak(metric.to_owned().into_boxed_str());
                    metrics.push(m);
                    m
                }
            };
            results
                .entry((i, scenario.name()))
                .or_default()
                .entry(server.to_owned())
                .or_default()
                .push((run, metric, value));
        }
    }
    if names.is_empty() {
        return Err("no runs in the files given".to_owned());
    }
    // The floor last, as `scripts/bench` orders it, whatever file named it first.
    names.sort_by_key(|n| n == FLOOR);
    Ok(table(&results, &scenarios, &names, runs.len()))
}

fn record(
    results: &mut Results,
    raw: &mut Option<std::fs::File>,
    key: (usize, String),
    server: &str,
    run: usize,
    metrics: &Metrics,
) {
    let per = results
        .entry(key.clone())
        .or_default()
        .entry(server.to_owned())
        .or_default();
    for (name, value) in metrics {
        per.push((run, name, *value));
        if let Some(f) = raw {
            let _ = writeln!(f, "{run}\t{}\t{server}\t{name}\t{value}", key.1);
        }
    }
}

/// One run of `sc` against server `s` (started for it and stopped after it), or the attached
/// server.
async fn once(opts: &Options, s: usize, sc: Scenario) -> io::Result<Metrics> {
    let server = match opts.attach {
        Some(target) => return scenario::run(sc, target, opts.settings).await,
        None => start(&opts.servers[s], sc.server_env()).await?,
    };
    let target = Target {
        pid: server.child.id(),
        port: server.port,
    };
    let result = tokio::time::timeout(sc.time_limit(), scenario::run(sc, target, opts.settings))
        .await
        .unwrap_or_else(|_| Err(io::Error::other("scenario timed out")));
    drop(server);
    result
}

async fn bench(opts: Options) -> io::Result<()> {
    let mut results = Results::new();
    let mut raw = match &opts.raw {
        Some(path) => Some(std::fs::File::create(path)?),
        None => None,
    };
    let names: Vec<String> = match opts.attach {
        Some(_) => vec!["attached".to_owned()],
        None => opts.servers.iter().map(|s| s.name.clone()).collect(),
    };
    for run in 0..opts.runs {
        for (i, &sc) in opts.scenarios.iter().enumerate() {
            for (s, name) in names.iter().enumerate() {
                eprint!("run {}/{} {} {name}: ", run + 1, opts.runs, sc.name());
                let mut outcome = once(&opts, s, sc).await;
                if let Err(e) = &outcome {
                    // One retry on a fresh server; the failure stays in the log.
                    eprint!("FAILED ({e}), retrying: ");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    outcome = once(&opts, s, sc).await;
                }
                match outcome {
                    Ok(metrics) => {
                        let line: Vec<String> = metrics
                            .iter()
                            .map(|(k, v)| format!("{k} {}", fmt_num(*v)))
                            .collect();
                        eprintln!("{}", line.join(", "));
                        record(&mut results, &mut raw, (i, sc.name()), name, run, &metrics);
                    }
                    Err(e) => eprintln!("FAILED: {e}"),
                }
                // Sockets of the stopped server leave the kernel before the next one starts.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    println!("{}", table(&results, &opts.scenarios, &names, opts.runs));
    Ok(())
}

fn main() {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("{msg}");
            std::process::exit(2);
        }
    };
    if !opts.pool.is_empty() {
        match pool(&opts.pool, &opts.scenarios) {
            Ok(table) => println!("{table}"),
            Err(msg) => {
                eprintln!("ferrio-bench: {msg}");
                std::process::exit(1);
            }
        }
        return;
    }
    if let Some(cpu) = opts.pin_self {
        if let Err(e) = pin_self(cpu) {
            eprintln!("ferrio-bench --pin: {e}");
            std::process::exit(1);
        }
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(bench(opts)) {
        eprintln!("ferrio-bench: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--pin split` runs the servers on CPU 1 through taskset, the command itself unchanged.
    #[test]
    fn pin_runs_the_server_through_taskset() {
        assert_eq!(pin_cpus("same"), Ok((0, 0)));
        assert_eq!(pin_cpus("split"), Ok((0, 1)));
        assert!(pin_cpus("other").is_err());
        let argv = vec!["env".to_owned(), "RUNTIME=x".to_owned(), "bench".to_owned()];
        assert_eq!(
            pinned(argv, 1),
            ["taskset", "-c", "1", "env", "RUNTIME=x", "bench"]
        );
    }

    /// Runs written by two invocations are pooled: the medians are over all of them, and the
    /// ratio is of the first server to the others.
    #[test]
    fn pool_takes_the_median_of_every_file() {
        let dir = std::env::temp_dir().join(format!("ferrio-bench-pool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = dir.join("a.tsv");
        let b = dir.join("b.tsv");
        std::fs::write(
            &a,
            "0\techo_ws_10\tferrio\tserver CPU µs per ack\t10\n\
             0\techo_ws_10\tother\tserver CPU µs per ack\t20\n",
        )
        .unwrap();
        std::fs::write(
            &b,
            "0\techo_ws_10\tferrio\tserver CPU µs per ack\t12\n\
             0\techo_ws_10\tother\tserver CPU µs per ack\t30\n\
             1\techo_ws_10\tferrio\tserver CPU µs per ack\t40\n\
             1\techo_ws_10\tother\tserver CPU µs per ack\t10\n\
             0\tidle_ws_1k\tferrio\tconnected\t1000\n",
        )
        .unwrap();
        let files = [a.display().to_string(), b.display().to_string()];
        let all = pool(&files, &Scenario::all()).unwrap();
        assert!(all.starts_with("Medians of 3 run(s)."), "{all}");
        // ferrio: 10, 12, 40 -> 12; other: 20, 30, 10 -> 20; 12 / 20 = 0.60.
        assert!(
            all.contains("| echo_ws_10 | server CPU µs per ack | 12.0 | 20.0 | 0.60 |"),
            "{all}"
        );
        assert!(all.contains("| idle_ws_1k | connected |"), "{all}");
        let only = pool(&files, &[Scenario::parse("echo_ws_10").unwrap()]).unwrap();
        assert!(!only.contains("idle_ws_1k"), "{only}");
        assert!(
            !all.contains("above floor"),
            "no floor, no overhead rows: {all}"
        );
        std::fs::write(&a, "not a raw line\n").unwrap();
        assert!(pool(&files, &Scenario::all()).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Each server's CPU above the floor is its median minus the floor's median; the floor
    /// has none of its own, and a missing median gives none.
    #[test]
    fn above_floor_subtracts_the_floor_median() {
        let meds = [Some(10.0), Some(20.0), None, Some(4.0)];
        assert_eq!(above_floor(&meds, 3), [Some(6.0), Some(16.0), None, None]);
        assert_eq!(above_floor(&[Some(1.0), None], 1), [None, None]);
        assert_eq!(ratio(Some(6.0), Some(16.0)), "0.38");
        assert_eq!(ratio(Some(6.0), Some(0.0)), "-");
        assert_eq!(ratio(None, Some(1.0)), "-");
        assert!(is_server_cpu("server CPU µs per ack"));
        assert!(is_server_cpu("server kernel CPU s per million deliveries"));
        assert!(!is_server_cpu("load generator CPU %"));
        assert!(!is_server_cpu("RSS KiB per connection"));
    }

    /// Pooled runs with a floor: the user and kernel rows are kept, and every server CPU row
    /// is followed by the overhead above the floor's median, whose ratio compares overheads.
    /// A file written before the split (total CPU only, no floor) pools with the new ones, and
    /// the floor's column comes last.
    #[test]
    fn pool_reports_overhead_above_the_floor() {
        let dir = std::env::temp_dir().join(format!("ferrio-bench-floor-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let old = dir.join("old.tsv");
        let new = dir.join("new.tsv");
        std::fs::write(
            &old,
            "0\techo_ws_10\tferrio\tserver CPU µs per ack\t10\n\
             0\techo_ws_10\tother\tserver CPU µs per ack\t20\n",
        )
        .unwrap();
        let mut lines = String::new();
        for (run, ferrio, other, floor) in [(0, 12.0, 30.0, 4.0), (1, 40.0, 10.0, 6.0)] {
            for (server, total) in [("floor", floor), ("ferrio", ferrio), ("other", other)] {
                let user = total * 0.25;
                lines.push_str(&format!(
                    "{run}\techo_ws_10\t{server}\tserver CPU µs per ack\t{total}\n\
                     {run}\techo_ws_10\t{server}\tserver user CPU µs per ack\t{user}\n\
                     {run}\techo_ws_10\t{server}\tserver kernel CPU µs per ack\t{}\n\
                     {run}\techo_ws_10\t{server}\tacks/s\t1000\n",
                    total - user
                ));
            }
        }
        std::fs::write(&new, lines).unwrap();
        // The floor comes first in the first file: its column still comes last.
        let files = [new.display().to_string(), old.display().to_string()];
        let t = pool(&files, &Scenario::all()).unwrap();
        assert!(
            t.contains(
                "| Scenario | Metric | ferrio | other | floor | ferrio/other | ferrio/floor |"
            ),
            "{t}"
        );
        // ferrio 10, 12, 40 -> 12; other 20, 30, 10 -> 20; floor 4, 6 -> 5.
        assert!(
            t.contains("| echo_ws_10 | server CPU µs per ack | 12.0 | 20.0 | 5.00 | 0.60 | 2.40 |"),
            "{t}"
        );
        // 12 - 5 = 7, 20 - 5 = 15: 7 / 15 = 0.47.
        assert!(
            t.contains(
                "| echo_ws_10 | server CPU µs per ack above floor | 7.00 | 15.0 | - | 0.47 | - |"
            ),
            "{t}"
        );
        // user: ferrio 3, 10 -> 6.5; other 7.5, 2.5 -> 5; floor 1, 1.5 -> 1.25.
        assert!(
            t.contains(
                "| echo_ws_10 | server user CPU µs per ack | 6.50 | 5.00 | 1.25 | 1.30 | 5.20 |"
            ),
            "{t}"
        );
        assert!(
            t.contains("| echo_ws_10 | server user CPU µs per ack above floor | 5.25 | 3.75 | - | 1.40 | - |"),
            "{t}"
        );
        assert!(
            t.contains("| echo_ws_10 | server kernel CPU µs per ack above floor |"),
            "{t}"
        );
        assert!(!t.contains("acks/s above floor"), "{t}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
