//! `ferrio-bench`: the load generator of the server benchmarks (issue 8). It starts each server
//! under test itself on a free 127.0.0.1 port, runs one scenario against it, reads the server's
//! CPU time and memory from `/proc/<pid>`, stops it (by its PID), and goes on to the next
//! server, so that the servers are measured interleaved; then it prints the medians as a
//! markdown table with the ratios of the first server to the others.
//!
//! ```text
//! ferrio-bench --server ferrio=target/release/examples/bench \
//!              --server node="node bench/node/server.js" \
//!              --server socketioxide=bench/socketioxide-server/target/release/socketioxide-bench-server \
//!              [--runs 3] [--quick] [--only echo_ws_10,broadcast_100] [--raw FILE]
//! ferrio-bench --attach PID:PORT --only echo_ws_10    # a server already running (profiling)
//! ```
//!
//! The load generator runs on one thread (a current-thread tokio runtime) and reports its own
//! CPU use in every scenario.

mod client;
mod measure;
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
    servers: Vec<ServerSpec>,
    attach: Option<Target>,
    runs: usize,
    scenarios: Vec<Scenario>,
    settings: Settings,
    raw: Option<String>,
}

const USAGE: &str = "usage: ferrio-bench (--server NAME=COMMAND)... | --attach PID:PORT \
[--runs N] [--quick] [--only S1,S2] [--window SECS] [--raw FILE]";

fn parse_args() -> Result<Options, String> {
    let mut servers = Vec::new();
    let mut attach = None;
    let mut runs = None;
    let mut quick = false;
    let mut only: Option<String> = None;
    let mut window = None;
    let mut raw = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
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
            "--only" => only = Some(value()?),
            "--window" => {
                window = Some(
                    value()?
                        .parse::<f64>()
                        .map_err(|_| "--window SECS".to_owned())?,
                )
            }
            "--raw" => raw = Some(value()?),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if servers.is_empty() && attach.is_none() {
        return Err(USAGE.to_owned());
    }
    let scenarios = match only {
        Some(list) => list
            .split(',')
            .map(|s| Scenario::parse(s.trim()).ok_or_else(|| format!("unknown scenario {s}")))
            .collect::<Result<Vec<_>, _>>()?,
        None if quick => Scenario::quick(),
        None => Scenario::all(),
    };
    let window = window.unwrap_or(if quick { 1.0 } else { 3.0 });
    Ok(Options {
        servers,
        attach,
        runs: runs.unwrap_or(if quick { 1 } else { 3 }).max(1),
        scenarios,
        settings: Settings {
            warmup: Duration::from_secs_f64(if quick { 0.5 } else { 1.0 }),
            window: Duration::from_secs_f64(window),
            tck: measure::clock_ticks(),
        },
        raw,
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

/// Starts `spec` with `PORT` set and waits until it accepts connections (10 s at most).
async fn start(spec: &ServerSpec) -> io::Result<Running> {
    let port = free_port()?;
    let child = Command::new(&spec.argv[0])
        .args(&spec.argv[1..])
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

/// The markdown table of medians, with the ratio of the first server to each other one.
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
            out.push_str(&format!("| {} | {metric} |", sc.name()));
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
            for m in &meds {
                out.push_str(&format!(
                    " {} |",
                    m.map(fmt_num).unwrap_or_else(|| "failed".into())
                ));
            }
            for m in meds.iter().skip(1) {
                let ratio = match (meds[0], m) {
                    (Some(a), Some(b)) if *b != 0.0 => format!("{:.2}", a / b),
                    _ => "-".into(),
                };
                out.push_str(&format!(" {ratio} |"));
            }
            out.push('\n');
        }
    }
    out
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
        None => start(&opts.servers[s]).await?,
    };
    let target = Target {
        pid: server.child.id(),
        port: server.port,
    };
    let result = tokio::time::timeout(
        Duration::from_secs(120),
        scenario::run(sc, target, opts.settings),
    )
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
