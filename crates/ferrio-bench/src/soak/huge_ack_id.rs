//! Probe 7, huge ack ids: an ack id of 30 digits (beyond 64 bits) is echoed exactly, and the
//! connection stays open (another request on it is still answered).

use std::io;
use std::time::Duration;

use crate::wire::Conn;
use crate::{Ctx, Outcome};

const ID: &str = "123456789012345678901234567890";

/// Runs the probe.
pub async fn run(ctx: &Ctx) -> io::Result<Outcome> {
    let mut server = ctx.start_e2e("e2e-huge-ack-id").await?;
    let mut conn = Conn::socket_io(server.port).await?;
    conn.send(format!("42{ID}[\"message-with-ack\",\"x\"]"));
    let huge = conn
        .expect(&format!("43{ID}[\"x\"]"), Duration::from_secs(3))
        .await;
    // The connection is still usable afterwards.
    conn.send("427[\"message-with-ack\",\"y\"]");
    let after = conn.expect("437[\"y\"]", Duration::from_secs(3)).await;
    drop(conn);
    Ok(Outcome {
        pass: huge.is_ok() && after.is_ok(),
        numbers: format!(
            "ack for id {ID}: {}; a request after it: {}",
            match &huge {
                Ok(()) => "echoed exactly".to_owned(),
                Err(e) => e.clone(),
            },
            match &after {
                Ok(()) => "acked (connection open)".to_owned(),
                Err(e) => e.clone(),
            }
        ),
        threshold: "43<same 30-digit id>[\"x\"] back and the connection stays open",
    }
    .check_alive(&mut server))
}
