//! What the load generator reads from `/proc`: CPU time of a process and of itself (user and
//! kernel apart: utime and stime), the context switches of a process's threads, a process's
//! resident memory (VmRSS), and on which CPU the server's threads ran beside the load generator.

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

/// CPU time in ticks of process `pid` (all its threads), or of this process for `None`.
pub fn cpu_ticks(pid: Option<u32>) -> io::Result<Ticks> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    parse_stat(&std::fs::read_to_string(path)?)
}

/// utime and stime from the text of a `/proc/<pid>/stat`.
fn parse_stat(stat: &str) -> io::Result<Ticks> {
    let fields = stat_fields(stat).ok_or_else(|| io::Error::other("bad /proc stat"))?;
    // Field 3 (state) is fields[0]; utime is field 14, stime field 15.
    let field = |i: usize| -> io::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| io::Error::other("bad /proc stat field"))
    };
    Ok(Ticks {
        user: field(11)?,
        kernel: field(12)?,
    })
}

/// CPU time of a process in clock ticks: user (utime) and kernel (stime).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticks {
    /// utime: time in user mode.
    pub user: u64,
    /// stime: time in the kernel on the process's behalf (system calls, its sockets).
    pub kernel: u64,
}

impl Ticks {
    /// user + kernel.
    pub fn total(&self) -> u64 {
        self.user + self.kernel
    }
}

/// Context switches of all the threads of process `pid` so far: the sums of
/// `voluntary_ctxt_switches` and `nonvoluntary_ctxt_switches` of every `/proc/<pid>/task/*/status`
/// (a process's own `status` counts its main thread only). A thread that ended is no longer
/// counted; the servers measured keep their threads.
pub fn switches(pid: u32) -> io::Result<Switches> {
    let mut sum = Switches::default();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        // A thread may end between the listing and the read.
        if let Ok(status) = std::fs::read_to_string(task?.path().join("status")) {
            let s = parse_switches(&status);
            sum.voluntary += s.voluntary;
            sum.involuntary += s.involuntary;
        }
    }
    Ok(sum)
}

/// The context switch counts of one `status` file (0 where a line is missing).
fn parse_switches(status: &str) -> Switches {
    let count = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    Switches {
        voluntary: count("voluntary_ctxt_switches:"),
        involuntary: count("nonvoluntary_ctxt_switches:"),
    }
}

/// Context switches of a process's threads: voluntary (a thread waited: parked, blocked in a
/// system call) and involuntary (preempted by the scheduler).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Switches {
    /// `voluntary_ctxt_switches`.
    pub voluntary: u64,
    /// `nonvoluntary_ctxt_switches`.
    pub involuntary: u64,
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
    /// The user part (utime) of `server_cpu`.
    pub server_user: f64,
    /// The kernel part (stime) of `server_cpu`.
    pub server_kernel: f64,
    /// Load generator CPU seconds over the window.
    pub client_cpu: f64,
    /// The server's context switches over the window (all its threads).
    pub server_switches: Switches,
}

impl Window {
    /// The server's CPU rows of a scenario: total, user and kernel time (named by `names`, in
    /// that order), each multiplied by `scale` (CPU seconds to the unit of the names).
    pub fn cpu_rows(&self, names: [&'static str; 3], scale: f64) -> [(&'static str, f64); 3] {
        [
            (names[0], self.server_cpu * scale),
            (names[1], self.server_user * scale),
            (names[2], self.server_kernel * scale),
        ]
    }

    /// The server's context switches over the window per unit of work (`scale` divides the
    /// counts: 1 / acks for "per ack"): voluntary and involuntary, named by `names`.
    pub fn switch_rows(&self, names: [&'static str; 2], scale: f64) -> [(&'static str, f64); 2] {
        [
            (names[0], self.server_switches.voluntary as f64 * scale),
            (names[1], self.server_switches.involuntary as f64 * scale),
        ]
    }

    /// The load generator's CPU use over the window, in percent of one core.
    pub fn client_pct(&self) -> f64 {
        100.0 * self.client_cpu / self.secs.max(1e-9)
    }
}

/// The fields of a `/proc/.../stat` text after the command name (the first is field 3, the
/// state).
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    // The command name may hold spaces and parentheses: fields are counted after the last ')'.
    stat.rfind(')')
        .map(|i| stat[i + 1..].split_whitespace().collect())
}

/// The CPU a thread last ran on (field 39, `processor`) from the text of its `stat`.
fn last_cpu(stat: &str) -> Option<u32> {
    stat_fields(stat)?.get(36)?.parse().ok()
}

/// Where the server's threads run beside the load generator's one thread, sampled: on the same
/// CPU, one wakes the other on the CPU it is on; on the other CPU, every message crosses CPUs
/// (an inter-processor interrupt, and on a virtual machine the wake-up of an idle virtual CPU).
/// The kernel picks either, and keeps to it while the rest of the machine is as it was.
#[derive(Debug, Default)]
pub struct Placement {
    /// Each server thread's time on a CPU (ns, the first field of its `schedstat`) at the
    /// last sample.
    ran: std::collections::HashMap<String, u64>,
    /// Samples in which a server thread that ran since the one before last ran on the load
    /// generator's CPU.
    pub same: u64,
    /// Samples in which server threads ran since the one before, none on the load generator's
    /// CPU.
    pub other: u64,
}

impl Placement {
    /// One sample: the CPU the calling thread runs on now, and the CPU each thread of `pid` that
    /// ran since the last sample last ran on. The first sample of a thread only notes its time.
    pub fn sample(&mut self, pid: u32) -> io::Result<()> {
        let me = last_cpu(&std::fs::read_to_string("/proc/thread-self/stat")?)
            .ok_or_else(|| io::Error::other("bad /proc/thread-self/stat"))?;
        let (mut ran, mut here) = (false, false);
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
            let path = task?.path();
            // A thread may end between the listing and the reads.
            let (Ok(schedstat), Ok(stat)) = (
                std::fs::read_to_string(path.join("schedstat")),
                std::fs::read_to_string(path.join("stat")),
            ) else {
                continue;
            };
            let Some(ns) = schedstat
                .split_whitespace()
                .next()
                .and_then(|f| f.parse().ok())
            else {
                continue;
            };
            let key = path.to_string_lossy().into_owned();
            if let Some(before) = self.ran.insert(key, ns) {
                if ns > before {
                    ran = true;
                    here |= last_cpu(&stat) == Some(me);
                }
            }
        }
        match (ran, here) {
            (true, true) => self.same += 1,
            (true, false) => self.other += 1,
            (false, _) => {}
        }
        Ok(())
    }

    /// The share of the samples in which the server ran on the load generator's CPU.
    pub fn same_share(&self) -> Option<f64> {
        let n = self.same + self.other;
        (n > 0).then(|| self.same as f64 / n as f64)
    }
}

/// Starts a measured window on server `pid`.
pub struct Meter {
    pid: u32,
    tck: f64,
    start: Instant,
    server0: Ticks,
    client0: Ticks,
    switches0: Switches,
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
            switches0: switches(pid)?,
        })
    }

    /// Ends the window.
    pub fn stop(&self) -> io::Result<Window> {
        let server = cpu_ticks(Some(self.pid))?;
        let client = cpu_ticks(None)?;
        let sw = switches(self.pid)?;
        let user = server.user.saturating_sub(self.server0.user) as f64 / self.tck;
        let kernel = server.kernel.saturating_sub(self.server0.kernel) as f64 / self.tck;
        Ok(Window {
            secs: self.start.elapsed().as_secs_f64(),
            server_cpu: user + kernel,
            server_user: user,
            server_kernel: kernel,
            client_cpu: client.total().saturating_sub(self.client0.total()) as f64 / self.tck,
            server_switches: Switches {
                voluntary: sw.voluntary.saturating_sub(self.switches0.voluntary),
                involuntary: sw.involuntary.saturating_sub(self.switches0.involuntary),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// utime (field 14) and stime (field 15) are read apart, after a command name holding
    /// spaces and parentheses.
    #[test]
    fn stat_gives_user_and_kernel_ticks() {
        let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 731 205 0 0 20 0 3 0";
        let t = parse_stat(stat).unwrap();
        assert_eq!(
            t,
            Ticks {
                user: 731,
                kernel: 205
            }
        );
        assert_eq!(t.total(), 936);
        assert!(parse_stat("no parenthesis").is_err());
        assert!(parse_stat("1 (x) S 1 2").is_err());
    }

    /// The CPU a thread last ran on is field 39, counted after a command name holding spaces.
    #[test]
    fn stat_gives_the_last_cpu() {
        let mut stat = String::from("4242 (a (b) c) S");
        for i in 4..=52 {
            stat.push_str(&format!(" {}", if i == 39 { 1 } else { 1000 + i }));
        }
        assert_eq!(last_cpu(&stat), Some(1));
        assert_eq!(last_cpu("4242 (x) S 1 2"), None);
    }

    /// A sample of this process: its threads ran (this one, now) on the sampling thread's CPU.
    #[test]
    fn placement_counts_a_thread_that_ran_on_this_cpu() {
        let mut p = Placement::default();
        p.sample(std::process::id()).unwrap();
        assert_eq!(
            (p.same, p.other),
            (0, 0),
            "the first sample only notes the times"
        );
        let spin = Instant::now();
        while spin.elapsed() < std::time::Duration::from_millis(5) {}
        p.sample(std::process::id()).unwrap();
        assert_eq!(p.same, 1);
        assert_eq!(p.same_share(), Some(1.0));
    }

    /// The CPU rows of a window: total, user and kernel, in the unit asked for.
    #[test]
    fn cpu_rows_split_user_and_kernel() {
        let w = Window {
            secs: 2.0,
            server_cpu: 0.5,
            server_user: 0.3,
            server_kernel: 0.2,
            client_cpu: 1.0,
            server_switches: Switches {
                voluntary: 3000,
                involuntary: 500,
            },
        };
        let rows = w.cpu_rows(["t", "u", "k"], 1e6 / 1000.0);
        assert_eq!(rows, [("t", 500.0), ("u", 300.0), ("k", 200.0)]);
        assert_eq!(w.client_pct(), 50.0);
        assert_eq!(
            w.switch_rows(["v", "i"], 1.0 / 1000.0),
            [("v", 3.0), ("i", 0.5)]
        );
    }

    /// Both counts of a thread's `status` are read; a missing line counts 0.
    #[test]
    fn status_gives_voluntary_and_involuntary_switches() {
        let status = "Name:\tbench\nThreads:\t3\nvoluntary_ctxt_switches:\t1234\n\
                      nonvoluntary_ctxt_switches:\t56\n";
        assert_eq!(
            parse_switches(status),
            Switches {
                voluntary: 1234,
                involuntary: 56
            }
        );
        assert_eq!(parse_switches("Name:\tx\n"), Switches::default());
    }

    /// The threads of this process are found and their switches summed: a sleep is a
    /// voluntary switch.
    #[test]
    fn switches_of_a_running_process_are_summed_over_its_threads() {
        std::thread::sleep(std::time::Duration::from_millis(5));
        let s = switches(std::process::id()).unwrap();
        assert!(s.voluntary >= 1, "{s:?}");
    }
}
