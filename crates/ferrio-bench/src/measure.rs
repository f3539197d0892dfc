//! What the load generator reads from `/proc`: CPU time (utime + stime) of a process and of
//! itself, and a process's resident memory (VmRSS).

use std::io;
use std::time::Instant;

/// Clock ticks per second of the `/proc/<pid>/stat` times (`getconf CLK_TCK`, 100 if unknown).
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// utime + stime, in ticks, of process `pid` (all its threads), or of this process for `None`.
pub fn cpu_ticks(pid: Option<u32>) -> io::Result<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path)?;
    // The command name may hold spaces and parentheses: fields are counted after the last ')'.
    let after = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| io::Error::other("bad /proc stat"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Field 3 (state) is fields[0]; utime is field 14, stime field 15.
    let field = |i: usize| -> io::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| io::Error::other("bad /proc stat field"))
    };
    Ok(field(11)? + field(12)?)
}

/// VmRSS of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| io::Error::other("no VmRSS"))
}

/// A measured window: wall time, the server's CPU time and the load generator's own.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Wall-clock seconds.
    pub secs: f64,
    /// Server CPU seconds (utime + stime) over the window.
    pub server_cpu: f64,
    /// Load generator CPU seconds over the window.
    pub client_cpu: f64,
}

impl Window {
    /// The load generator's CPU use over the window, in percent of one core.
    pub fn client_pct(&self) -> f64 {
        100.0 * self.client_cpu / self.secs.max(1e-9)
    }
}

/// Starts a measured window on server `pid`.
pub struct Meter {
    pid: u32,
    tck: f64,
    start: Instant,
    server0: u64,
    client0: u64,
}

impl Meter {
    /// Reads the starting CPU times.
    pub fn start(pid: u32, tck: f64) -> io::Result<Meter> {
        Ok(Meter {
            pid,
            tck,
            start: Instant::now(),
            server0: cpu_ticks(Some(pid))?,
            client0: cpu_ticks(None)?,
        })
    }

    /// Ends the window.
    pub fn stop(&self) -> io::Result<Window> {
        let server = cpu_ticks(Some(self.pid))?;
        let client = cpu_ticks(None)?;
        Ok(Window {
            secs: self.start.elapsed().as_secs_f64(),
            server_cpu: server.saturating_sub(self.server0) as f64 / self.tck,
            client_cpu: client.saturating_sub(self.client0) as f64 / self.tck,
        })
    }
}
