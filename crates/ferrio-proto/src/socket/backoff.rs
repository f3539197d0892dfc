//! The reconnection delays of `socket.io-client` (`lib/contrib/backo2.ts`), computed exactly as
//! the JavaScript does (floating point, `Math.floor`, `| 0`), and the small deterministic random
//! source the [`Manager`](super::client::Manager) feeds it with.
//!
//! ```
//! use std::time::Duration;
//! use ferrio_proto::socket::backoff::Backoff;
//!
//! let mut b = Backoff::new(Duration::from_millis(1000), Duration::from_millis(5000), 0.5);
//! // rand = 0.25: deviation = floor(0.25 * 0.5 * 1000) = 125; floor(2.5) = 2 is even: 1000 - 125
//! assert_eq!(b.duration(0.25), Duration::from_millis(875));
//! // rand = 0.35: deviation = floor(0.35 * 0.5 * 2000) = 350; floor(3.5) = 3 is odd: 2000 + 350
//! assert_eq!(b.duration(0.35), Duration::from_millis(2350));
//! assert_eq!(b.attempts(), 2);
//! ```

use std::time::Duration;

/// Exponential backoff with jitter: `min * 2^attempts`, moved by up to `jitter` of itself in a
/// direction picked by the same random number, capped at `max`.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    min_ms: f64,
    max_ms: f64,
    jitter: f64,
    attempts: u32,
}

impl Backoff {
    /// A backoff from `min` to `max`. A `randomization_factor` outside `(0, 1]` means no jitter,
    /// as in the reference.
    pub fn new(min: Duration, max: Duration, randomization_factor: f64) -> Backoff {
        let jitter = if randomization_factor > 0.0 && randomization_factor <= 1.0 {
            randomization_factor
        } else {
            0.0
        };
        Backoff {
            min_ms: millis_f64(min),
            max_ms: millis_f64(max),
            jitter,
            attempts: 0,
        }
    }

    /// The next delay (`duration()`), counting one more attempt. `rand` is a uniform random
    /// number in `[0, 1)` (the reference's `Math.random()`); it is not used without jitter.
    ///
    /// ```text
    /// ms = min * 2^attempts ; attempts++
    /// if jitter: deviation = floor(rand * jitter * ms)
    ///            ms = floor(rand * 10) is even ? ms - deviation : ms + deviation
    /// delay = min(ms, max) | 0
    /// ```
    pub fn duration(&mut self, rand: f64) -> Duration {
        let mut ms = self.min_ms * pow2(self.attempts);
        self.attempts = self.attempts.saturating_add(1);
        if self.jitter != 0.0 {
            let deviation = (rand * self.jitter * ms).floor();
            let even = to_int32((rand * 10.0).floor()) & 1 == 0;
            ms = if even { ms - deviation } else { ms + deviation };
        }
        let capped = js_min(ms, self.max_ms);
        // `| 0`, then the timer clamps a negative delay to zero.
        Duration::from_millis(u64::try_from(to_int32(capped)).unwrap_or(0))
    }

    /// Attempts counted since the last reset (`attempts`).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Starts counting again from the first attempt (`reset()`).
    pub fn reset(&mut self) {
        self.attempts = 0;
    }
}

/// JavaScript's `Math.min` for two numbers: `NaN` if either is.
fn js_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// A duration in whole milliseconds as a number (saturating past `u64::MAX` ms).
fn millis_f64(d: Duration) -> f64 {
    d.as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(d.subsec_millis())) as f64
}

/// `Math.pow(2, n)`: exact, as the double with that exponent; `Infinity` past the largest.
/// (Written out so that the browser build carries no general `pow` and its tables.)
fn pow2(n: u32) -> f64 {
    if n <= 1023 {
        f64::from_bits(u64::from(1023 + n) << 52)
    } else {
        f64::INFINITY
    }
}

/// JavaScript's `ToInt32` (what `x | 0` does): `NaN` and infinities give 0, others wrap modulo 2³².
fn to_int32(v: f64) -> i32 {
    if !v.is_finite() {
        return 0;
    }
    if v.abs() < 9_223_372_036_854_775_808.0 {
        // Below 2⁶³ the integer part fits an i64 exactly; its low 32 bits are the answer.
        return v as i64 as i32;
    }
    // |v| = mantissa · 2^shift with shift ≥ 11 here: the low 32 bits of that product.
    let bits = v.to_bits();
    let mantissa = (bits & ((1 << 52) - 1)) | (1 << 52);
    let shift = ((bits >> 52) & 0x7ff) as u32 - 1075;
    let low = if shift >= 32 {
        0
    } else {
        (mantissa << shift) as u32
    };
    if v < 0.0 {
        low.wrapping_neg() as i32
    } else {
        low as i32
    }
}

/// SplitMix64: a tiny, fast, deterministic generator. The core has no randomness of its own; the
/// manager draws its backoff jitter from one of these, seeded by the driver
/// ([`ManagerConfig::seed`](super::client::ManagerConfig::seed)), so a run is reproducible from
/// its seed. Not for secrets.
///
/// ```
/// use ferrio_proto::socket::backoff::SplitMix64;
/// let mut a = SplitMix64::new(7);
/// let mut b = SplitMix64::new(7);
/// assert_eq!(a.next_f64(), b.next_f64());
/// assert!((0.0..1.0).contains(&a.next_f64()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform number in `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn without_jitter_doubles_up_to_max() {
        let mut b = Backoff::new(ms(1000), ms(5000), 0.0);
        let delays: Vec<_> = (0..5).map(|_| b.duration(0.9)).collect();
        assert_eq!(delays, [ms(1000), ms(2000), ms(4000), ms(5000), ms(5000)]);
        assert_eq!(b.attempts(), 5);
        b.reset();
        assert_eq!(b.duration(0.9), ms(1000));
    }

    #[test]
    fn jitter_follows_the_formula_for_fixed_randoms() {
        // Each expected value is worked out by hand from the formula, defaults 1000/5000/0.5.
        let mut b = Backoff::new(ms(1000), ms(5000), 0.5);
        // 1000: rand 0.0 → deviation 0, floor(0) = 0 even → 1000
        assert_eq!(b.duration(0.0), ms(1000));
        // 2000: rand 0.15 → deviation floor(150) = 150, floor(1.5) = 1 odd → 2150
        assert_eq!(b.duration(0.15), ms(2150));
        // 4000: rand 0.99 → deviation floor(1980) = 1980, floor(9.9) = 9 odd → 5980 → max 5000
        assert_eq!(b.duration(0.99), ms(5000));
        // 8000: rand 0.8 → deviation 3200, floor(8) = 8 even → 4800
        assert_eq!(b.duration(0.8), ms(4800));
        // 16000: rand 0.7 → deviation 5600, floor(7) = 7 odd → 21600 → 5000
        assert_eq!(b.duration(0.7), ms(5000));
    }

    #[test]
    fn out_of_range_factor_means_no_jitter() {
        let mut b = Backoff::new(ms(100), ms(10_000), 1.5);
        assert_eq!(b.duration(0.99), ms(100));
        let mut b = Backoff::new(ms(100), ms(10_000), -1.0);
        assert_eq!(b.duration(0.99), ms(100));
        // 1 is allowed: deviation up to the whole delay
        let mut b = Backoff::new(ms(100), ms(10_000), 1.0);
        assert_eq!(b.duration(0.25), ms(75));
    }

    #[test]
    fn javascript_number_edges() {
        // after 1024 attempts 2^attempts is Infinity: the delay is the max...
        let mut b = Backoff::new(ms(1000), ms(5000), 0.0);
        b.attempts = 1100;
        assert_eq!(b.duration(0.5), ms(5000));
        // ...unless rand is 0 with jitter: 0 * Infinity is NaN, and NaN | 0 is 0
        let mut b = Backoff::new(ms(1000), ms(5000), 0.5);
        b.attempts = 1100;
        assert_eq!(b.duration(0.0), ms(0));
        // a max past 2^31 ms wraps as `| 0` does, and a negative delay fires at once
        let mut b = Backoff::new(ms(3_000_000_000), ms(3_000_000_000), 0.0);
        assert_eq!(b.duration(0.5), ms(0));
        assert_eq!(to_int32(4_294_967_297.0), 1);
        assert_eq!(to_int32(-1.5), -1);
        assert_eq!(to_int32(2_147_483_648.0), -2_147_483_648);
        // past 2^63 only the low 32 bits of the integer count: 2^64 + 20480 and -(2^70 + 3·2^18)
        assert_eq!(to_int32(18_446_744_073_709_572_096.0), 20_480);
        assert_eq!(to_int32(-1_180_591_620_717_412_089_856.0), -786_432);
        assert_eq!(to_int32(2f64.powi(84)), 0);
        assert_eq!(to_int32(f64::MAX), 0);
    }

    #[test]
    fn powers_of_two_are_exact() {
        for n in 0..=1023 {
            assert_eq!(pow2(n), 2f64.powi(n as i32), "2^{n}");
        }
        assert_eq!(pow2(1024), f64::INFINITY);
        assert_eq!(pow2(u32::MAX), f64::INFINITY);
        assert_eq!(millis_f64(Duration::from_micros(2_500)), 2.0);
        assert_eq!(millis_f64(Duration::MAX), u64::MAX as f64);
    }

    #[test]
    fn splitmix_reference_values() {
        // First outputs of SplitMix64 seeded with 0 (the published test vector).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        let f = SplitMix64::new(1).next_f64();
        assert!((0.0..1.0).contains(&f));
    }
}
