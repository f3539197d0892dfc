//! Time as the state machines see it: an [`Instant`] handed in by the driver.
//!
//! The core never reads a clock (`std::time::Instant::now` panics on `wasm32-unknown-unknown`).
//! Drivers pass the current time to every `handle_*` call and sleep until `poll_timeout()`.

use std::ops::{Add, Sub};
use std::time::Duration;

/// A point in time, in milliseconds since an origin the driver chooses (its start, say).
///
/// ```
/// use std::time::Duration;
/// use ferrio_proto::Instant;
/// let t = Instant::from_millis(1_000);
/// assert_eq!(t + Duration::from_millis(500), Instant::from_millis(1_500));
/// assert_eq!(Instant::from_millis(1_500) - t, Duration::from_millis(500));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    /// The instant `ms` milliseconds after the origin.
    pub const fn from_millis(ms: u64) -> Instant {
        Instant(ms)
    }

    /// Milliseconds since the origin.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// The time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(
            self.0
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_since(earlier)
    }
}
