//! Probes 3 and 4, fairness: one client floods the server (`message-with-ack` events, or `join`s
//! of distinct rooms) as fast as it can while a [`Bystander`] on another connection measures its
//! ack latency. On the 300/200 ms heartbeat of `/socket.io/`, a server that lets the flood hold it
//! up drops the bystander.

use std::io;
use std::time::Duration;

use tokio::time::Instant;

use crate::bystander::Bystander;
use crate::wire::{ack_id, Conn, In};
use crate::{Ctx, Outcome};

const ACK_FLOOD: u64 = 100_000;
const JOIN_FLOOD: u64 = 20_000;
const JOINS_WITH_ACK: u64 = 5;
/// Packets per batch of a flood.
const BATCH: usize = 1_000;
/// Batches of a flood sent ahead of the server.
const IN_FLIGHT: usize = 2;
/// The first ack id of the markers (above the flood's own ids).
const MARKER: u64 = 1_000_000_000;
/// How long a flood may take before the probe stops waiting for its acks.
const FLOOD_LIMIT: Duration = Duration::from_secs(30);

/// What the flooding client saw.
struct Flood {
    /// Packets the server has handled (their batch's marker came back).
    handled: usize,
    /// Acks of the flood's own packets.
    acked: u64,
    secs: f64,
    disconnected: Option<String>,
}

impl Flood {
    fn describe(&self, packets: usize, what: &str) -> String {
        format!(
            "flooder: {}/{packets} packets handled, {} {what} in {:.1} s{}",
            self.handled,
            self.acked,
            self.secs,
            match &self.disconnected {
                Some(why) => format!(", flooder disconnected ({why})"),
                None => String::new(),
            }
        )
    }
}

/// Sends `packets` as fast as the server takes them: in batches of [`BATCH`], each followed by a
/// `message-with-ack` marker whose ack tells that the server has handled the batch, with
/// [`IN_FLIGHT`] batches in flight, so that the server always has the flood to work on while
/// the flooder's own pongs never wait behind more than a few thousand packets (a client that
/// wrote everything at once would be dropped by the heartbeat within a second, which ends the
/// flood early). Counts the acks until every marker came back, the connection closed, or
/// [`FLOOD_LIMIT`] passed.
async fn flood(conn: &mut Conn, packets: Vec<String>) -> Flood {
    let start = Instant::now();
    let batches: Vec<&[String]> = packets.chunks(BATCH).collect();
    let (mut sent, mut done) = (0, 0);
    let mut acked = 0;
    let mut disconnected = None;
    while done < batches.len() {
        while sent < batches.len() && sent < done + IN_FLIGHT {
            for packet in batches[sent] {
                conn.send(packet.clone());
            }
            conn.send(format!("42{}[\"message-with-ack\"]", MARKER + sent as u64));
            sent += 1;
        }
        let left = FLOOD_LIMIT.saturating_sub(start.elapsed());
        match conn.next(left).await {
            Some(In::Text(t)) => match ack_id(&t).and_then(|id| id.parse::<u64>().ok()) {
                Some(id) if id >= MARKER => done += 1,
                Some(_) => acked += 1,
                None => {}
            },
            Some(In::Closed(why)) => {
                disconnected = Some(why);
                break;
            }
            Some(_) => {}
            None => break,
        }
    }
    Flood {
        handled: batches[..done].iter().map(|b| b.len()).sum(),
        acked,
        secs: start.elapsed().as_secs_f64(),
        disconnected,
    }
}

/// Probe 3: 100,000 `message-with-ack` as fast as possible.
pub async fn run_ack_flood(ctx: &Ctx) -> io::Result<Outcome> {
    let mut server = ctx.start_e2e("e2e-ack-flood").await?;
    let mut flooder = Conn::socket_io(server.port).await?;
    let bystander = Bystander::start(server.port)?;
    // A moment of normal traffic before the flood.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let packets = (0..ACK_FLOOD)
        .map(|i| format!("42{i}[\"message-with-ack\",\"x\"]"))
        .collect();
    let flood = flood(&mut flooder, packets).await;
    let report = bystander.finish().await?;
    drop(flooder);
    let pass = report.disconnected.is_none() && report.unanswered == 0 && report.max_ms < 1000.0;
    Ok(Outcome {
        pass,
        numbers: format!(
            "{}; {}",
            report.describe(),
            flood.describe(ACK_FLOOD as usize, "acks")
        ),
        threshold: "the bystander never disconnected, every one of its requests acked, longest \
                    wait < 1 s",
    }
    .check_alive(&mut server))
}

/// Probe 4: 20,000 `join`s of distinct rooms without ack ids, then a few with.
pub async fn run_join_flood(ctx: &Ctx) -> io::Result<Outcome> {
    let mut server = ctx.start_e2e("e2e-join-flood").await?;
    let mut flooder = Conn::socket_io(server.port).await?;
    let bystander = Bystander::start(server.port)?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let packets = (0..JOIN_FLOOD)
        .map(|i| format!("42[\"join\",\"room-{i}\"]"))
        .chain((0..JOINS_WITH_ACK).map(|i| format!("42{i}[\"join\",\"acked-room-{i}\"]")))
        .collect();
    let flood = flood(&mut flooder, packets).await;
    let report = bystander.finish().await?;
    drop(flooder);
    // A stall of the whole server shows as a long wait even when it also stalls the heartbeat
    // (and so drops nobody): the longest wait is judged too.
    let pass = report.disconnected.is_none() && report.unanswered == 0 && report.max_ms < 1000.0;
    Ok(Outcome {
        pass,
        numbers: format!(
            "{}; {}",
            report.describe(),
            flood.describe(
                (JOIN_FLOOD + JOINS_WITH_ACK) as usize,
                "join acks (of the last 5)"
            )
        ),
        threshold: "the bystander never disconnected, every one of its requests acked, longest \
                    wait < 1 s",
    }
    .check_alive(&mut server))
}
