//! The bystander of the fairness probes: a well-behaved client on its own connection (and its own
//! thread, so that the flooding client cannot delay it on the client side) that sends one
//! `message-with-ack` every 10 ms and measures how long each ack takes.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};

use crate::wire::{ack_id, Conn, In, Stats};

/// What the bystander saw.
pub struct Report {
    /// Ack latencies, in ms.
    pub latency: Stats,
    /// Requests sent.
    pub sent: u64,
    /// Requests never acked (the longest wait among them counts in `max_ms`).
    pub unanswered: u64,
    /// The longest time a request waited, acked or not, in ms.
    pub max_ms: f64,
    /// `Some(why)` when the server dropped the bystander.
    pub disconnected: Option<String>,
}

impl Report {
    /// The report's numbers in words.
    pub fn describe(&self) -> String {
        format!(
            "bystander: {} sent, {} unanswered, ack {}, longest wait {:.1} ms, {}",
            self.sent,
            self.unanswered,
            self.latency,
            self.max_ms,
            match &self.disconnected {
                Some(why) => format!("DISCONNECTED ({why})"),
                None => "never disconnected".to_owned(),
            }
        )
    }
}

/// A running bystander.
pub struct Bystander {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<io::Result<Report>>,
}

impl Bystander {
    /// Connects a bystander to `/socket.io/` (namespace `/`) on `port`; returns once it is
    /// connected and sending.
    pub fn start(port: u16) -> io::Result<Bystander> {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(run(port, stop, ready_tx))
            })
        };
        match ready_rx.recv_timeout(Duration::from_secs(15)) {
            Ok(()) => Ok(Bystander { stop, thread }),
            Err(_) => {
                stop.store(true, Ordering::Relaxed);
                match thread.join() {
                    Ok(Err(e)) => Err(e),
                    _ => Err(io::Error::other("the bystander did not connect")),
                }
            }
        }
    }

    /// Stops sending, waits up to 1 s for the last acks, and reports.
    pub async fn finish(self) -> io::Result<Report> {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread;
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(io::Error::other)?
            .map_err(|_| io::Error::other("the bystander panicked"))?
    }
}

async fn run(
    port: u16,
    stop: Arc<AtomicBool>,
    ready: std::sync::mpsc::Sender<()>,
) -> io::Result<Report> {
    let mut conn = Conn::socket_io(port).await?;
    let _ = ready.send(());
    let mut pending: HashMap<u64, Instant> = HashMap::new();
    let mut latencies = Vec::new();
    let mut disconnected = None;
    let mut next_id = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut stopped_at: Option<Instant> = None;
    loop {
        if stopped_at.is_none() && stop.load(Ordering::Relaxed) {
            stopped_at = Some(Instant::now());
        }
        if let Some(at) = stopped_at {
            if pending.is_empty() || at.elapsed() > Duration::from_secs(1) {
                break;
            }
        }
        tokio::select! {
            _ = tick.tick(), if stopped_at.is_none() => {
                pending.insert(next_id, Instant::now());
                conn.send(format!("42{next_id}[\"message-with-ack\",\"bystander\"]"));
                next_id += 1;
            }
            msg = conn.rx.recv() => match msg {
                Some(In::Text(t)) => {
                    if t == "1" || t.starts_with("41") {
                        disconnected = Some(format!("server sent {t}"));
                        break;
                    }
                    if let Some(sent) = ack_id(&t).and_then(|id| id.parse().ok()).and_then(|id| pending.remove(&id)) {
                        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                    }
                }
                Some(In::Binary) => {}
                Some(In::Closed(why)) => {
                    disconnected = Some(why);
                    break;
                }
                None => {
                    disconnected = Some("connection tasks ended".to_owned());
                    break;
                }
            },
            // Wakes up to look at the stop flag.
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
    let max_pending = pending
        .values()
        .map(|t| t.elapsed().as_secs_f64() * 1000.0)
        .fold(0.0, f64::max);
    let latency = Stats::of(&mut latencies);
    Ok(Report {
        latency,
        sent: next_id,
        unanswered: pending.len() as u64,
        max_ms: latency.max.max(max_pending),
        disconnected,
    })
}
