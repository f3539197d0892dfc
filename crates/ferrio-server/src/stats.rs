//! Server-wide Engine.IO counters, opt-in ([`crate::Ferrio::engine_stats`],
//! [`crate::engine::Engine::engine_stats`]): the sessions opened and closed (by close reason),
//! and the packets with data received and sent with their bytes, as the core's
//! [`ferrio_proto::engine::server::Stats`] counts them.
//!
//! Each session task adds what its machine counted since the last time, once per round of its
//! loop (a batch of inputs and commands), and only when the counters were enabled when the
//! session opened (as the reference's listeners see only the sessions opened after them). With
//! the counters off a session pays one `Option` check per round.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ferrio_proto::engine::server::{CloseReason, Stats};

/// The close reasons, in the order of [`Counters::closed`].
const REASONS: [CloseReason; 6] = [
    CloseReason::TransportError,
    CloseReason::TransportClose,
    CloseReason::ForcedClose,
    CloseReason::PingTimeout,
    CloseReason::ParseError,
    CloseReason::BufferFull,
];

fn reason_index(reason: CloseReason) -> usize {
    match reason {
        CloseReason::TransportError => 0,
        CloseReason::TransportClose => 1,
        CloseReason::ForcedClose => 2,
        CloseReason::PingTimeout => 3,
        CloseReason::ParseError => 4,
        CloseReason::BufferFull => 5,
    }
}

#[derive(Debug, Default)]
struct Counters {
    opened: AtomicU64,
    closed: [AtomicU64; 6],
    packets_in: AtomicU64,
    bytes_in: AtomicU64,
    packets_out: AtomicU64,
    bytes_out: AtomicU64,
}

/// A handle on a server's Engine.IO counters (cheap to clone). Every session opened since the
/// counters were enabled is counted: read them with [`EngineStats::snapshot`].
#[derive(Debug, Clone, Default)]
pub struct EngineStats {
    counters: Arc<Counters>,
}

/// The counters at one moment, totals since they were enabled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStatsSnapshot {
    /// Engine.IO sessions opened (the reference's raw `connection`).
    pub opened: u64,
    /// Packets with data received from clients.
    pub packets_in: u64,
    /// Their data's bytes.
    pub bytes_in: u64,
    /// Packets with data sent to clients.
    pub packets_out: u64,
    /// Their data's bytes.
    pub bytes_out: u64,
    closed: [u64; 6],
}

impl EngineStatsSnapshot {
    /// Sessions closed for `reason`.
    pub fn closed(&self, reason: CloseReason) -> u64 {
        self.closed[reason_index(reason)]
    }

    /// Sessions closed, by reason (every reason, zero or not).
    pub fn closed_by_reason(&self) -> impl Iterator<Item = (CloseReason, u64)> + '_ {
        REASONS.iter().map(|r| (*r, self.closed(*r)))
    }

    /// Sessions closed, whatever the reason.
    pub fn closed_total(&self) -> u64 {
        self.closed.iter().sum()
    }

    /// What was counted between `earlier` and `self` (saturating).
    #[must_use]
    pub fn since(&self, earlier: &EngineStatsSnapshot) -> EngineStatsSnapshot {
        let mut closed = [0; 6];
        for (i, c) in closed.iter_mut().enumerate() {
            *c = self.closed[i].saturating_sub(earlier.closed[i]);
        }
        EngineStatsSnapshot {
            opened: self.opened.saturating_sub(earlier.opened),
            packets_in: self.packets_in.saturating_sub(earlier.packets_in),
            bytes_in: self.bytes_in.saturating_sub(earlier.bytes_in),
            packets_out: self.packets_out.saturating_sub(earlier.packets_out),
            bytes_out: self.bytes_out.saturating_sub(earlier.bytes_out),
            closed,
        }
    }
}

impl EngineStats {
    /// The counters now.
    pub fn snapshot(&self) -> EngineStatsSnapshot {
        let c = &self.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        EngineStatsSnapshot {
            opened: load(&c.opened),
            packets_in: load(&c.packets_in),
            bytes_in: load(&c.bytes_in),
            packets_out: load(&c.packets_out),
            bytes_out: load(&c.bytes_out),
            closed: std::array::from_fn(|i| load(&c.closed[i])),
        }
    }

    pub(crate) fn opened(&self) {
        self.counters.opened.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn closed(&self, reason: CloseReason) {
        self.counters.closed[reason_index(reason)].fetch_add(1, Ordering::Relaxed);
    }

    /// Adds what one session counted since `last`, and makes `last` its current counts.
    pub(crate) fn add(&self, now: Stats, last: &mut Stats) {
        if now == *last {
            return;
        }
        let d = now.since(last);
        *last = now;
        let c = &self.counters;
        for (counter, n) in [
            (&c.packets_in, d.packets_in),
            (&c.bytes_in, d.bytes_in),
            (&c.packets_out, d.packets_out),
            (&c.bytes_out, d.bytes_out),
        ] {
            if n > 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_are_added_once_and_closes_by_reason() {
        let stats = EngineStats::default();
        let mut last = Stats::default();
        stats.opened();
        let one = Stats {
            packets_in: 2,
            bytes_in: 10,
            packets_out: 1,
            bytes_out: 4,
        };
        stats.add(one, &mut last);
        stats.add(one, &mut last);
        let two = Stats {
            packets_in: 3,
            ..one
        };
        stats.add(two, &mut last);
        stats.closed(CloseReason::PingTimeout);
        let s = stats.snapshot();
        assert_eq!((s.opened, s.packets_in, s.bytes_in), (1, 3, 10));
        assert_eq!((s.packets_out, s.bytes_out), (1, 4));
        assert_eq!(s.closed(CloseReason::PingTimeout), 1);
        assert_eq!(s.closed_total(), 1);
        let d = s.since(&EngineStatsSnapshot {
            packets_in: 1,
            ..EngineStatsSnapshot::default()
        });
        assert_eq!(d.packets_in, 2);
        assert_eq!(d.closed(CloseReason::PingTimeout), 1);
    }
}
