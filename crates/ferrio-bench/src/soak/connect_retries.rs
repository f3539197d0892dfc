//! Probe 6, CONNECT retries: on one Engine.IO session (which first joins `/`, so that the 1000 ms
//! connect timeout does not apply), one CONNECT to `/restricted` with a wrong token, then 10,000
//! more with new (also wrong) auth, sent without waiting. A refused CONNECT leaves the session
//! open and may be retried, so every one must be answered (CONNECT or CONNECT_ERROR).

use std::io;
use std::time::Duration;

use tokio::time::Instant;

use crate::wire::{short, Conn, In};
use crate::{Ctx, Outcome};

const RETRIES: u64 = 10_000;
const LIMIT: Duration = Duration::from_secs(20);

/// Runs the probe.
pub async fn run(ctx: &Ctx) -> io::Result<Outcome> {
    let mut server = ctx.start_e2e("e2e-connect-retries").await?;
    let mut conn = Conn::socket_io(server.port).await?;
    let start = Instant::now();
    conn.send("40/restricted,{\"token\":\"wrong\"}");
    for i in 0..RETRIES {
        conn.send(format!("40/restricted,{{\"token\":\"wrong-{i}\"}}"));
    }
    let want = RETRIES + 1;
    let (mut refused, mut accepted) = (0u64, 0u64);
    let mut first_refusal = None;
    let mut disconnected = None;
    while refused + accepted < want {
        let left = LIMIT.saturating_sub(start.elapsed());
        match conn.next(left).await {
            Some(In::Text(t)) if t.starts_with("44/restricted,") => {
                refused += 1;
                first_refusal.get_or_insert(t);
            }
            Some(In::Text(t)) if t.starts_with("40/restricted,") => accepted += 1,
            Some(In::Closed(why)) => {
                disconnected = Some(format!(
                    "{why}, after {:.1} s",
                    start.elapsed().as_secs_f64()
                ));
                break;
            }
            Some(_) => {}
            None => break,
        }
    }
    let secs = start.elapsed().as_secs_f64();
    drop(conn);
    let answers = refused + accepted;
    Ok(Outcome {
        pass: answers == want,
        numbers: format!(
            "{answers}/{want} CONNECTs answered in {secs:.1} s ({refused} CONNECT_ERROR, \
             {accepted} CONNECT{}){}",
            first_refusal
                .map(|t| format!(", first: {}", short(&t)))
                .unwrap_or_default(),
            match disconnected {
                Some(why) => format!("; connection closed ({why})"),
                None => String::new(),
            }
        ),
        threshold: "10,001 answers within 20 s",
    }
    .check_alive(&mut server))
}
