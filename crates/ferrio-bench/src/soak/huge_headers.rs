//! Probe 2, huge handshake headers: 300 concurrent polling handshakes of `/socket.io/` each
//! carrying one 300 KiB header, then one WebSocket upgrade with such a header. Each must be refused
//! with 431 (Node's 16 KiB cap on the request head) without the server holding the headers.

use std::io;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::harness::{baseline, growth_mib, mib, PeakRss};
use crate::wire::read_response;
use crate::{Ctx, Outcome};

const HANDSHAKES: usize = 300;
const HEADER_BYTES: usize = 300 * 1024;
const RSS_LIMIT_KIB: u64 = 10 * 1024;

/// The answer to one request: its status, or why there was none.
type Answer = Result<u16, String>;

/// Sends `head` (a request head ending with the big header) and reads the answer, writing and
/// reading at the same time: a server that answers early and closes is heard.
async fn ask(port: u16, head: String) -> Answer {
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut read, mut write) = tcp.into_split();
    let writer = tokio::spawn(async move {
        let big = "a".repeat(HEADER_BYTES);
        let _ = write.write_all(head.as_bytes()).await;
        let _ = write.write_all(b"X-Big: ").await;
        let _ = write.write_all(big.as_bytes()).await;
        let _ = write.write_all(b"\r\n\r\n").await;
        // Kept open until the answer has been read.
        write
    });
    let answer = match timeout(Duration::from_secs(15), read_response(&mut read)).await {
        Ok(Ok(res)) => Ok(res.status),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 15 s".to_owned()),
    };
    writer.abort();
    answer
}

fn tally(answers: &[Answer]) -> String {
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for a in answers {
        let key = match a {
            Ok(status) => status.to_string(),
            Err(e) => format!("no answer ({e})"),
        };
        *counts.entry(key).or_default() += 1;
    }
    counts
        .iter()
        .map(|(k, n)| format!("{n}× {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs the probe.
pub async fn run(ctx: &Ctx) -> io::Result<Outcome> {
    let mut server = ctx.start_e2e("e2e-huge-headers").await?;
    let port = server.port;
    let base = baseline(&server).await;
    let peak = PeakRss::start(server.pid());
    let polling =
        format!("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    let tasks: Vec<_> = (0..HANDSHAKES)
        .map(|_| tokio::spawn(ask(port, polling.clone())))
        .collect();
    let mut answers = Vec::with_capacity(HANDSHAKES);
    for task in tasks {
        answers.push(task.await.map_err(io::Error::other)?);
    }
    let rss_answered = server.rss_kib();
    let refused = answers.iter().filter(|a| **a == Ok(431)).count();
    let upgrade = format!(
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    );
    let ws = ask(port, upgrade).await;
    let peak = peak.peak();
    let ws_refused = !matches!(ws, Ok(101));
    let pass = refused == HANDSHAKES && peak <= base + RSS_LIMIT_KIB && ws_refused;
    Ok(Outcome {
        pass,
        numbers: format!(
            "polling handshakes with a 300 KiB header: {refused}/{HANDSHAKES} refused with 431 \
             [{}]; WebSocket upgrade with one: {}; RSS baseline {} MiB, peak {} ({} MiB), \
             after the answers {} ({} MiB)",
            tally(&answers),
            match &ws {
                Ok(101) => "accepted (101)".to_owned(),
                Ok(status) => format!("refused ({status})"),
                Err(e) => format!("refused (no answer: {e})"),
            },
            mib(base),
            mib(peak),
            growth_mib(base, peak),
            mib(rss_answered),
            growth_mib(base, rss_answered),
        ),
        threshold: "every polling handshake answered 431, the upgrade refused, RSS peak < \
                    baseline + 10 MiB",
    }
    .check_alive(&mut server))
}
