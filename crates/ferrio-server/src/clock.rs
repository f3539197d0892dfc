//! The one clock of a server: [`ferrio_proto::Instant`]s counted in milliseconds since the Unix
//! epoch (so that connection state recovery offsets look like the reference's), advanced by
//! tokio's monotonic clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferrio_proto::Instant;

/// The longest a session task sleeps in one go (timers further away are re-armed on waking).
const MAX_SLEEP: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    origin: tokio::time::Instant,
    origin_ms: u64,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        let origin_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 2))
            .unwrap_or(0);
        Clock {
            origin: tokio::time::Instant::now(),
            origin_ms,
        }
    }

    /// Now, as the state machines count time.
    pub(crate) fn now(&self) -> Instant {
        let elapsed = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX / 2);
        Instant::from_millis(self.origin_ms.saturating_add(elapsed))
    }

    /// The tokio instant at which `t` is reached (capped a day ahead).
    pub(crate) fn deadline(&self, t: Instant) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        let from_origin = Duration::from_millis(t.as_millis().saturating_sub(self.origin_ms));
        let at = self
            .origin
            .checked_add(from_origin)
            .unwrap_or(now + MAX_SLEEP);
        at.min(now + MAX_SLEEP)
    }
}
