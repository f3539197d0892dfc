//! The processes the suite starts (servers, cluster nodes, a private Redis), each stopped by its
//! PID, and what it reads about them from `/proc`: resident memory and open sockets.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use crate::measure;

/// How long a started process may take to accept connections on its port.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> io::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// Where the suite writes the output of the processes it starts.
#[derive(Debug, Clone)]
pub struct Logs {
    dir: PathBuf,
}

impl Logs {
    /// Creates `dir` if needed.
    pub fn new(dir: PathBuf) -> io::Result<Logs> {
        std::fs::create_dir_all(&dir)?;
        Ok(Logs { dir })
    }

    /// The log file of the process called `name` (truncated).
    fn file(&self, name: &str) -> io::Result<File> {
        File::create(self.dir.join(format!("{name}.log")))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// A started process; killed (by its PID) and reaped when dropped.
pub struct Proc {
    name: String,
    child: Child,
    /// The port it listens on.
    pub port: u16,
}

impl Proc {
    /// Starts `program args...` (with `PORT=port` in its environment), output to the log file
    /// `name`, and waits until it accepts connections on 127.0.0.1:`port`.
    pub async fn start(
        name: &str,
        program: &Path,
        args: &[String],
        port: u16,
        logs: &Logs,
    ) -> io::Result<Proc> {
        let log = logs.file(name)?;
        let child = Command::new(program)
            .args(args)
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| {
                io::Error::new(e.kind(), format!("starting {}: {e}", program.display()))
            })?;
        let mut proc = Proc {
            name: name.to_owned(),
            child,
            port,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = proc.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "{name} exited at start ({status}); see {}",
                    logs.dir().join(format!("{name}.log")).display()
                )));
            }
            if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Ok(proc);
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "{name} did not listen on port {port} within {START_TIMEOUT:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `None` while it runs, or how it ended.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(None) => None,
            Ok(Some(status)) => Some(format!("{} exited ({status})", self.name)),
            Err(e) => Some(format!("{}: {e}", self.name)),
        }
    }

    /// Kills it (SIGKILL, by PID) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Its VmRSS in KiB (0 when it cannot be read, e.g. after it exited).
    pub fn rss_kib(&self) -> u64 {
        measure::rss_kib(self.pid()).unwrap_or(0)
    }

    /// How many sockets it holds open (listeners included).
    pub fn sockets(&self) -> usize {
        let Ok(dir) = std::fs::read_dir(format!("/proc/{}/fd", self.pid())) else {
            return 0;
        };
        dir.filter_map(Result::ok)
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .filter(|l| l.to_string_lossy().starts_with("socket:"))
            .count()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Samples a process's VmRSS every 20 ms on its own thread and keeps the largest value.
pub struct PeakRss {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PeakRss {
    /// Starts sampling process `pid`.
    pub fn start(pid: u32) -> PeakRss {
        let peak = Arc::new(AtomicU64::new(measure::rss_kib(pid).unwrap_or(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (peak, stop) = (peak.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(rss) = measure::rss_kib(pid) {
                        peak.fetch_max(rss, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        PeakRss {
            peak,
            stop,
            thread: Some(thread),
        }
    }

    /// The largest VmRSS seen so far, in KiB.
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for PeakRss {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// KiB as MiB with one decimal.
pub fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// A signed growth `to - from` in KiB, as MiB with a sign.
pub fn growth_mib(from: u64, to: u64) -> String {
    format!("{:+.1}", (to as f64 - from as f64) / 1024.0)
}

/// Lets a freshly started server settle, then reads its VmRSS (the baseline of a probe).
pub async fn baseline(server: &Proc) -> u64 {
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.rss_kib()
}
