//! Probe 1, stalled POST bodies: 100 polling sessions of `/socket.io/` each get a POST announcing
//! `Content-Length: 1000000` that sends 900,000 bytes and then stalls. The sessions die within a
//! second (300/200 ms heartbeat, nobody answers the pings); the server must then drop the stalled
//! bodies and close those connections, and give their memory back.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

use crate::harness::{baseline, growth_mib, mib, PeakRss};
use crate::wire::{polling_handshake, Stats};
use crate::{Ctx, Outcome};

const SESSIONS: usize = 100;
const ANNOUNCED: usize = 1_000_000;
const SENT: usize = 900_000;
/// How long after its stall a connection is watched for the server closing it.
const WATCH: Duration = Duration::from_secs(30);
/// How long after the last close (or the end of the watch) the server's memory is measured.
const SETTLE: Duration = Duration::from_secs(2);
/// RSS allowed above the baseline once the connections are gone. The bodies peak at about
/// +140 MiB; once they are freed the allocator keeps 2 to 18 MiB of that (measured), while a server
/// that keeps the stalled bodies holds them all (+75 MiB and more).
const RSS_SLACK_KIB: u64 = 32 * 1024;

/// What happened to one stalled connection.
struct Stalled {
    /// Whether all 900,000 bytes were written.
    sent_all: bool,
    /// When the server closed it, counted from the stall; `None`: still open after [`WATCH`].
    closed_after: Option<Duration>,
    /// Kept open until the measurements are taken.
    _tcp: Option<TcpStream>,
}

async fn stall(port: u16, sid: String) -> io::Result<Stalled> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let head = format!(
        "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {ANNOUNCED}\r\n\r\n"
    );
    let mut body = vec![b'a'; SENT];
    body[0] = b'4';
    let write = async {
        tcp.write_all(head.as_bytes()).await?;
        tcp.write_all(&body).await?;
        tcp.flush().await
    };
    let sent_all = match timeout(Duration::from_secs(15), write).await {
        Ok(Ok(())) => true,
        // The server closed the connection while the body was being sent.
        Ok(Err(_)) => {
            return Ok(Stalled {
                sent_all: false,
                closed_after: Some(Duration::ZERO),
                _tcp: None,
            })
        }
        // The server stopped reading: the connection stalls where it is.
        Err(_) => false,
    };
    let stalled_at = Instant::now();
    // Read until the server closes (EOF or reset); any response before that is skipped.
    let mut buf = vec![0u8; 16 * 1024];
    let closed = timeout(WATCH, async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok();
    Ok(Stalled {
        sent_all,
        closed_after: closed.then(|| stalled_at.elapsed()),
        _tcp: Some(tcp),
    })
}

/// Runs the probe.
pub async fn run(ctx: &Ctx) -> io::Result<Outcome> {
    let mut server = ctx.start_e2e("e2e-stalled-post").await?;
    let port = server.port;
    let base = baseline(&server).await;
    let base_sockets = server.sockets();
    let peak = PeakRss::start(server.pid());
    let mut sids = Vec::with_capacity(SESSIONS);
    for _ in 0..SESSIONS {
        sids.push(polling_handshake(port).await?);
    }
    let tasks: Vec<_> = sids
        .into_iter()
        .map(|sid| tokio::spawn(stall(port, sid)))
        .collect();
    let mut results = Vec::with_capacity(SESSIONS);
    for task in tasks {
        results.push(task.await.map_err(io::Error::other)??);
    }
    // Every connection has been closed, or watched for 30 s after its stall; the still-open
    // ones stay open while the server is measured, 2 s later.
    tokio::time::sleep(SETTLE).await;
    let rss_after = server.rss_kib();
    let server_sockets = server.sockets().saturating_sub(base_sockets);
    let peak = peak.peak();
    let open = results.iter().filter(|r| r.closed_after.is_none()).count();
    let sent_all = results.iter().filter(|r| r.sent_all).count();
    let mut closes: Vec<f64> = results
        .iter()
        .filter_map(|r| r.closed_after)
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    let closes = Stats::of(&mut closes);
    drop(results);
    let pass = open == 0 && rss_after <= base + RSS_SLACK_KIB;
    Ok(Outcome {
        pass,
        numbers: format!(
            "still open after 30 s: {open}/{SESSIONS} (server sockets beyond the listener: \
             {server_sockets}); bodies fully sent: {sent_all}/{SESSIONS}; close after the stall: \
             {}; RSS baseline {} MiB, peak {} ({} MiB), 2 s after the last close or the 30 s \
             watch {} ({} MiB)",
            if closes.n == 0 {
                "none closed".to_owned()
            } else {
                format!("p50 {:.0} ms, max {:.0} ms", closes.p50, closes.max)
            },
            mib(base),
            mib(peak),
            growth_mib(base, peak),
            mib(rss_after),
            growth_mib(base, rss_after),
        ),
        threshold: "every stalled connection closed by the server within 30 s, RSS then within \
                    32 MiB of the baseline",
    }
    .check_alive(&mut server))
}
