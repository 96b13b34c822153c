//! When an exited instance starts again: exponential backoff with jitter, and crash-loop
//! detection. Pure: the caller passes the time and the randomness.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// How exited instances are restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// The delay before the first restart; it doubles with each exit.
    pub initial_backoff: Duration,
    /// The longest delay; an instance in a crash loop is restarted at this interval.
    pub max_backoff: Duration,
    /// An instance that stayed healthy this long starts over with the initial delay and
    /// a clean crash history.
    pub reset_after: Duration,
    /// This many exits within `crash_loop_window` make a crash loop.
    pub crash_loop_exits: u32,
    /// See `crash_loop_exits`.
    pub crash_loop_window: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            reset_after: Duration::from_secs(30),
            crash_loop_exits: 5,
            crash_loop_window: Duration::from_secs(60),
        }
    }
}

/// Exponential backoff with "equal jitter": each delay is half the current step plus a
/// random share of the other half, so replicas that crash together do not restart in
/// lockstep, and no delay is shorter than half its step.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    step: Duration,
}

impl Backoff {
    /// A backoff at its initial step.
    pub fn new(policy: &RestartPolicy) -> Self {
        let initial = policy.initial_backoff.min(policy.max_backoff);
        Self {
            initial,
            max: policy.max_backoff,
            step: initial,
        }
    }

    /// The next delay, with `unit` in `[0, 1)` choosing the jitter; the step then doubles
    /// up to the maximum.
    pub fn next_with(&mut self, unit: f64) -> Duration {
        let half = self.step / 2;
        let delay = half + (self.step - half).mul_f64(unit.clamp(0.0, 1.0));
        self.step = self.step.saturating_mul(2).min(self.max);
        delay
    }

    /// The next delay, with random jitter.
    pub fn next_delay(&mut self) -> Duration {
        self.next_with(fastrand::f64())
    }

    /// Jumps to the longest delay (a crash loop).
    pub fn saturate(&mut self) {
        self.step = self.max;
    }

    /// Back to the initial step.
    pub fn reset(&mut self) {
        self.step = self.initial;
    }
}

/// Counts exits within a sliding window: `crash_loop_exits` of them within
/// `crash_loop_window` is a crash loop.
#[derive(Debug, Clone)]
pub struct CrashTracker {
    threshold: usize,
    window: Duration,
    exits: VecDeque<Instant>,
}

impl CrashTracker {
    /// No exits yet.
    pub fn new(policy: &RestartPolicy) -> Self {
        Self {
            threshold: policy.crash_loop_exits.max(1) as usize,
            window: policy.crash_loop_window,
            exits: VecDeque::new(),
        }
    }

    /// Records an exit at `now`; whether the instance is now in a crash loop.
    pub fn record(&mut self, now: Instant) -> bool {
        while self
            .exits
            .front()
            .is_some_and(|&at| now.saturating_duration_since(at) > self.window)
        {
            self.exits.pop_front();
        }
        self.exits.push_back(now);
        if self.exits.len() > self.threshold {
            self.exits.pop_front();
        }
        self.exits.len() >= self.threshold
    }

    /// Exits within the window, as of the last record.
    pub fn recent(&self) -> usize {
        self.exits.len()
    }

    /// Forgets every exit.
    pub fn clear(&mut self) {
        self.exits.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn doubles_from_the_initial_delay_up_to_the_maximum() {
        let policy = RestartPolicy {
            initial_backoff: ms(100),
            max_backoff: ms(1000),
            ..RestartPolicy::default()
        };
        let mut backoff = Backoff::new(&policy);
        // With the largest jitter each delay is its whole step.
        let steps: Vec<_> = (0..7).map(|_| backoff.next_with(1.0)).collect();
        assert_eq!(
            steps,
            [
                ms(100),
                ms(200),
                ms(400),
                ms(800),
                ms(1000),
                ms(1000),
                ms(1000)
            ]
        );
        backoff.reset();
        assert_eq!(backoff.next_with(1.0), ms(100));
        backoff.saturate();
        assert_eq!(backoff.next_with(1.0), ms(1000));
    }

    #[test]
    fn jitter_stays_within_half_to_whole_step() {
        let mut backoff = Backoff::new(&RestartPolicy::default());
        assert_eq!(backoff.next_with(0.0), ms(50));
        assert_eq!(backoff.next_with(0.5), ms(150));
        let mut backoff = Backoff::new(&RestartPolicy::default());
        for _ in 0..200 {
            let before = backoff.step;
            let delay = backoff.next_delay();
            assert!(
                delay >= before / 2 && delay <= before,
                "{delay:?} for {before:?}"
            );
        }
        assert_eq!(backoff.step, ms(30_000));
    }

    #[test]
    fn five_exits_within_the_window_are_a_crash_loop() {
        let policy = RestartPolicy::default();
        let mut tracker = CrashTracker::new(&policy);
        let start = Instant::now();
        for i in 0..4 {
            assert!(!tracker.record(start + ms(i * 1000)), "exit {i}");
        }
        assert!(tracker.record(start + ms(4000)));
        assert_eq!(tracker.recent(), 5);
        // Still in a loop while exits keep coming within the window.
        assert!(tracker.record(start + ms(30_000)));
    }

    #[test]
    fn exits_spread_beyond_the_window_are_not_a_crash_loop() {
        let mut tracker = CrashTracker::new(&RestartPolicy::default());
        let start = Instant::now();
        // One exit every 20 s: never five within 60 s.
        for i in 0..20 {
            assert!(!tracker.record(start + ms(i * 20_000)), "exit {i}");
            assert!(tracker.recent() <= 4);
        }
    }

    #[test]
    fn clearing_forgets_the_history() {
        let mut tracker = CrashTracker::new(&RestartPolicy::default());
        let start = Instant::now();
        for i in 0..5 {
            tracker.record(start + ms(i));
        }
        assert_eq!(tracker.recent(), 5);
        tracker.clear();
        assert!(!tracker.record(start + ms(10)));
        assert_eq!(tracker.recent(), 1);
    }
}
