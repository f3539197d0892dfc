//! A one-thread tokio runtime that polls for a few tens of µs before it sleeps, while that
//! pays: for the lowest latency of a lightly loaded server on a small multi-core machine.
//!
//! A `current_thread` runtime with nothing to do sleeps in the kernel (`epoll_wait`). When its
//! peer (a client, a load generator, a proxy) runs on another CPU, each message then wakes the
//! server's idle CPU: an inter-processor interrupt and, on a virtual machine, the wake-up of a
//! halted virtual CPU. On a two-CPU virtual machine that about doubled the round trip of one
//! client's acked events (`BENCHMARKS.md`, "The p50 at one client").
//! [`current_thread_spinning`] keeps the thread polling for I/O without sleeping, for at most a
//! window after its last work, when all of these hold:
//!
//! - the last idle gap between two pieces of work was shorter than the window (the next
//!   message is likely to come within it, as in a request/answer loop);
//! - the thread worked less than 60 % of its recent time (a moving average over its last work
//!   and idle periods): a loaded server's gaps are short anyway, and spinning through them
//!   cost CPU per message;
//! - its CPU is not shared with a busy thread: the first round after work yields the CPU
//!   (`sched_yield`: a thread that the work woke there, such as a client on this CPU, runs
//!   first), and a yield that came back after 10 µs, or a later round that took that long,
//!   means another thread ran there. Then the thread does not spin for a back-off (1 ms,
//!   doubling up to 64 ms while each new try finds the CPU shared, halving after a prompt
//!   yield).
//!
//! Otherwise it sleeps as the plain runtime does. So:
//!
//! - An idle server, however many connections it holds, never spins: its window opens only
//!   after work, and the next work (a heartbeat, a message) comes later than the window, so
//!   the gap rule keeps it asleep after that work too.
//! - A low-traffic server (a chat with messages milliseconds apart) does not spin: its gaps are
//!   longer than the window. A burst of messages closer together than the window is answered
//!   by a spinning thread; the spin ends at the window after the burst.
//! - A loaded server (many clients, broadcasts) does not spin: it works most of its time, or
//!   its clients share its CPU and its yields come back late.
//!
//! Each spin round is an `epoll_wait` with no timeout (and, the first after work, a
//! `sched_yield`). Polling takes CPU time that a sleeping thread leaves to other processes; on
//! the benchmarks' machine, at one client on the other CPU from it, it took no more CPU per
//! message than sleeping and being woken. On a CPU shared with other busy processes it holds
//! the CPU they wait for until one of them preempts it (then it backs off).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Task polls between two parks longer than this count as work (a spin round's own poll takes
/// well under a µs).
const WORK: Duration = Duration::from_micros(2);

/// A yield that took longer than this ran another thread on this CPU: the CPU is shared.
const SHARED: Duration = Duration::from_micros(10);

/// Above this share of its time working (recent work against work and idle gaps), the thread
/// does not spin: a loaded server's gaps are short anyway, and spinning through them cost CPU
/// per message.
const BUSY: f64 = 0.6;

/// The weight of the last work-and-gap cycle in the busy share.
const BUSY_WEIGHT: f64 = 0.125;

/// The first back-off after a yield found the CPU shared.
const BACKOFF_MIN: Duration = Duration::from_millis(1);

/// The longest back-off (the back-off doubles while each probe finds the CPU shared).
const BACKOFF_MAX: Duration = Duration::from_millis(64);

/// A `current_thread` runtime builder whose thread, after work, polls for I/O without sleeping
/// for up to `window` (tens of µs: 50 µs in the benchmarks) when the last idle gap between two
/// pieces of work was shorter than `window` and its CPU is not shared with a busy thread (see
/// the [module](self) docs). With a zero `window` it is `Builder::new_current_thread()`.
///
/// It takes the builder's `on_thread_park` and `on_thread_unpark` hooks (setting them again
/// removes the spin) and spawns one task of its own on the runtime. It needs tokio 1.52.4 or
/// later (the driver is polled when a park hook wakes a task). Enable the drivers as usual:
///
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// use std::time::Duration;
///
/// let runtime = ferrio_server::runtime::current_thread_spinning(Duration::from_micros(50))
///     .enable_all()
///     .build()?;
/// runtime.block_on(async {
///     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
///     ferrio_server::Ferrio::builder().build().serve(listener).await
/// })
/// # }
/// ```
pub fn current_thread_spinning(window: Duration) -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    if window.is_zero() {
        return builder;
    }
    let shared = Arc::new(Mutex::new(Shared {
        rule: Rule::new(window),
        waker: None,
        spawned: false,
    }));
    let on_unpark = Arc::clone(&shared);
    builder
        .on_thread_unpark(move || lock(&on_unpark).rule.unparked(Instant::now()))
        .on_thread_park(move || park(&shared));
    builder
}

/// The state the hooks and the spinner task share.
struct Shared {
    rule: Rule,
    /// The spinner task's waker: waking it makes the runtime poll the driver without blocking
    /// instead of sleeping.
    waker: Option<Waker>,
    /// Whether the spinner task has been spawned.
    spawned: bool,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The park hook: spins one round (yield, then wake the spinner so that the runtime polls the
/// driver without sleeping) if the rule says so.
fn park(shared: &Arc<Mutex<Shared>>) {
    let mut state = lock(shared);
    if !state.spawned {
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            state.spawned = true;
            handle.spawn(Spinner {
                shared: Arc::clone(shared),
            });
        }
    }
    let round = state.rule.park(Instant::now());
    if round == Round::Sleep {
        return;
    }
    if round == Round::YieldAndPoll {
        drop(state);
        let start = Instant::now();
        // A thread that this work woke on this CPU (a local peer) runs first.
        std::thread::yield_now();
        let end = Instant::now();
        state = lock(shared);
        if !state
            .rule
            .yielded(end.saturating_duration_since(start), end)
        {
            return;
        }
    }
    if let Some(waker) = &state.waker {
        waker.wake_by_ref();
    }
}

/// The spinner task: it never finishes, and only keeps its waker where the park hook finds it.
struct Spinner {
    shared: Arc<Mutex<Shared>>,
}

impl Future for Spinner {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = lock(&self.shared);
        match &state.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// When to spin: a pure function of the park and unpark times and of the yields' durations.
#[derive(Debug)]
struct Rule {
    /// The longest spin after the last work, and the longest idle gap that makes the next one
    /// worth waiting for awake.
    window: Duration,
    /// When the thread last came back from the driver.
    unparked: Option<Instant>,
    /// When the last work ended.
    work_end: Option<Instant>,
    /// The last idle gap between two pieces of work (from the end of one to the unpark before
    /// the next).
    gap: Option<Duration>,
    /// The share of its recent time the thread worked (a moving average over work-and-gap
    /// cycles).
    busy: f64,
    /// When the thread last had nothing to run, and whether it spun then.
    last_park: Option<(Instant, bool)>,
    /// No spin before this (a yield found the CPU shared).
    quiet_until: Option<Instant>,
    /// The next back-off.
    backoff: Duration,
}

impl Rule {
    fn new(window: Duration) -> Rule {
        Rule {
            window,
            unparked: None,
            work_end: None,
            gap: None,
            busy: 0.0,
            last_park: None,
            quiet_until: None,
            backoff: BACKOFF_MIN,
        }
    }

    /// The thread came back from the driver at `now`.
    fn unparked(&mut self, now: Instant) {
        self.unparked = Some(now);
    }

    /// The thread has nothing to run at `now`: whether to sleep or to spin one round.
    fn park(&mut self, now: Instant) -> Round {
        let mut worked = false;
        if let Some(unparked) = self.unparked {
            if now.saturating_duration_since(unparked) > WORK {
                worked = true;
                if let Some(end) = self.work_end {
                    let gap = unparked.saturating_duration_since(end);
                    let work = now.saturating_duration_since(unparked);
                    let share = work.as_secs_f64() / (work + gap).as_secs_f64();
                    self.busy += (share - self.busy) * BUSY_WEIGHT;
                    self.gap = Some(gap);
                }
                self.work_end = Some(now);
            }
        }
        if let Some((last, true)) = self.last_park {
            if !worked && now.saturating_duration_since(last) > SHARED {
                // An empty spin round took long: another thread ran on this CPU.
                self.back_off(now);
            }
        }
        let spin = self.work_end.is_some_and(|end| {
            now.saturating_duration_since(end) < self.window
                && self.gap.is_some_and(|gap| gap < self.window)
                && self.busy < BUSY
                && self.quiet_until.is_none_or(|t| now >= t)
        });
        self.last_park = Some((now, spin));
        match (spin, worked) {
            (false, _) => Round::Sleep,
            (true, true) => Round::YieldAndPoll,
            (true, false) => Round::Poll,
        }
    }

    /// The yield of the spin round after work took `took`, ending at `now`: whether to go on
    /// with the round (poll the driver without sleeping). A long yield ran another thread here;
    /// then the thread sleeps, and spins again only after a back-off.
    fn yielded(&mut self, took: Duration, now: Instant) -> bool {
        if took > SHARED {
            self.back_off(now);
            self.last_park = Some((now, false));
            false
        } else {
            self.backoff = (self.backoff / 2).max(BACKOFF_MIN);
            true
        }
    }

    /// Another thread ran on this CPU while this one spun: no spin for the back-off, which
    /// doubles.
    fn back_off(&mut self, now: Instant) {
        self.quiet_until = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }
}

/// What the thread does when it has nothing to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    /// Sleep in the driver until an event or a timer.
    Sleep,
    /// Yield the CPU, then poll the driver without sleeping (the first round after work: a
    /// thread the work woke on this CPU runs first).
    YieldAndPoll,
    /// Poll the driver without sleeping.
    Poll,
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_micros(50);

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    /// A wake-up at `t + start` (µs) and the park at `t + end`: the round the rule picks.
    fn round(rule: &mut Rule, t: Instant, start: u64, end: u64) -> Round {
        rule.unparked(t + us(start));
        rule.park(t + us(end))
    }

    /// As [`round`]: whether the thread spins rather than sleeps.
    fn work(rule: &mut Rule, t: Instant, start: u64, end: u64) -> bool {
        round(rule, t, start, end) != Round::Sleep
    }

    #[test]
    fn spins_after_a_short_gap_and_stops_at_the_window() {
        let mut rule = Rule::new(W);
        let t = Instant::now();
        // The first message, after a long sleep: no gap known, no spin.
        assert!(!work(&mut rule, t, 0, 10));
        // The next one 20 µs later: the gap is short; yield, then poll.
        assert_eq!(round(&mut rule, t, 30, 40), Round::YieldAndPoll);
        assert!(rule.yielded(us(1), t + us(41)));
        // Empty rounds (no work) poll without yielding within the window...
        for at in (45..=85).step_by(5) {
            assert_eq!(round(&mut rule, t, at - 1, at), Round::Poll, "at {at} µs");
        }
        // ...and stop once it has passed.
        assert!(!work(&mut rule, t, 90, 91));
    }

    #[test]
    fn a_gap_longer_than_the_window_stops_the_spin() {
        let mut rule = Rule::new(W);
        let t = Instant::now();
        work(&mut rule, t, 0, 10);
        assert!(work(&mut rule, t, 30, 40));
        // A message 1 ms later (a low-traffic chat): no spin after it.
        assert!(!work(&mut rule, t, 1040, 1050));
        // An idle server: nothing worked, nothing spins.
        assert!(!work(&mut rule, t, 25_000_000, 25_000_000));
    }

    #[test]
    fn a_loaded_thread_stops_spinning_and_one_client_keeps_it() {
        // Loaded: 40 µs of work, then 4 µs idle, again and again (90 % busy).
        let mut rule = Rule::new(W);
        let t = Instant::now();
        let mut spins = Vec::new();
        for i in 0..30 {
            let start = i * 44;
            spins.push(work(&mut rule, t, start, start + 40));
        }
        assert!(spins[1], "not yet known to be busy");
        assert!(spins[20..].iter().all(|spin| !spin), "{spins:?}");
        // One client: 8 µs of work, 15 µs idle (35 % busy): it spins after every message.
        let mut rule = Rule::new(W);
        let spins: Vec<bool> = (0..30)
            .map(|i| work(&mut rule, t, i * 23, i * 23 + 8))
            .collect();
        assert!(spins[1..].iter().all(|spin| *spin), "{spins:?}");
    }

    #[test]
    fn a_late_yield_backs_off_and_the_back_off_doubles() {
        let mut rule = Rule::new(W);
        let t = Instant::now();
        work(&mut rule, t, 0, 10);
        assert!(work(&mut rule, t, 20, 30));
        // The peer shares the CPU: the yield came back 30 µs later.
        assert!(!rule.yielded(us(30), t + us(60)));
        // Within the 1 ms back-off: no spin, however short the gaps.
        assert!(!work(&mut rule, t, 70, 80));
        assert!(!work(&mut rule, t, 1050, 1059));
        // After it: a try; late again, then 2 ms of back-off.
        assert!(work(&mut rule, t, 1070, 1080));
        assert!(!rule.yielded(us(30), t + us(1110)));
        assert!(!work(&mut rule, t, 3100, 3109));
        assert!(work(&mut rule, t, 3120, 3130));
        // A prompt yield halves the next back-off (4 ms after two late ones).
        assert!(rule.yielded(us(1), t + us(3131)));
        assert_eq!(rule.backoff, Duration::from_millis(2));
    }

    #[test]
    fn a_long_empty_round_backs_off() {
        let mut rule = Rule::new(W);
        let t = Instant::now();
        work(&mut rule, t, 0, 10);
        assert!(work(&mut rule, t, 20, 30));
        assert!(rule.yielded(us(1), t + us(31)));
        assert_eq!(round(&mut rule, t, 32, 33), Round::Poll);
        // The next empty round ended 15 µs later: another thread ran on this CPU.
        assert!(!work(&mut rule, t, 47, 48));
        assert!(!work(&mut rule, t, 60, 70));
        // The 1 ms back-off over, short gaps spin again.
        assert!(!work(&mut rule, t, 1040, 1045));
        assert!(work(&mut rule, t, 1060, 1070));
    }
}
