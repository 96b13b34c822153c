//! The sliding window a circuit breaker takes its failure ratio over.

use std::time::Duration;

/// How many buckets the window is cut into: a 10 s window moves in 1 s steps.
pub(super) const BUCKETS: usize = 10;

/// Requests and failures over the last `window`, in [`BUCKETS`] buckets, with running
/// totals so recording and reading are O(1).
#[derive(Debug)]
pub(super) struct Window {
    buckets: [Bucket; BUCKETS],
    width_nanos: u64,
    /// The tick (bucket number since the breaker's origin) of the newest bucket.
    head: u64,
    requests: u64,
    failures: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    requests: u32,
    failures: u32,
}

impl Window {
    pub(super) fn new(window: Duration) -> Self {
        let width = (window / BUCKETS as u32).max(Duration::from_millis(1));
        Self {
            buckets: [Bucket::default(); BUCKETS],
            width_nanos: u64::try_from(width.as_nanos()).unwrap_or(u64::MAX),
            head: 0,
            requests: 0,
            failures: 0,
        }
    }

    /// The tick `elapsed` after the origin falls in.
    pub(super) fn tick(&self, elapsed: Duration) -> u64 {
        u64::try_from(elapsed.as_nanos() / u128::from(self.width_nanos)).unwrap_or(u64::MAX)
    }

    /// Counts a request at `tick`, failed or not.
    pub(super) fn record(&mut self, tick: u64, failed: bool) {
        self.advance(tick);
        let bucket = &mut self.buckets[(self.head % BUCKETS as u64) as usize];
        bucket.requests = bucket.requests.saturating_add(1);
        self.requests += 1;
        if failed {
            bucket.failures = bucket.failures.saturating_add(1);
            self.failures += 1;
        }
    }

    /// Requests and failures in the window as of the last record.
    pub(super) const fn totals(&self) -> (u64, u64) {
        (self.requests, self.failures)
    }

    /// Forgets everything.
    pub(super) fn reset(&mut self) {
        self.buckets = [Bucket::default(); BUCKETS];
        self.requests = 0;
        self.failures = 0;
    }

    /// Moves the window forward to `tick`, dropping the buckets that fell out. A tick
    /// behind the head (a racing clock read) counts in the head bucket.
    fn advance(&mut self, tick: u64) {
        if tick <= self.head {
            return;
        }
        let steps = (tick - self.head).min(BUCKETS as u64);
        for step in 1..=steps {
            let index = ((self.head + step) % BUCKETS as u64) as usize;
            let expired = std::mem::take(&mut self.buckets[index]);
            self.requests -= u64::from(expired.requests);
            self.failures -= u64::from(expired.failures);
        }
        self.head = tick;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_buckets_slide_out() {
        let mut window = Window::new(Duration::from_secs(10));
        assert_eq!(window.tick(Duration::from_millis(2999)), 2);
        window.record(0, true);
        window.record(0, false);
        window.record(5, true);
        assert_eq!(window.totals(), (3, 2));
        window.record(9, false);
        assert_eq!(window.totals(), (4, 2));
        window.record(10, false); // tick 0 falls out
        assert_eq!(window.totals(), (3, 1));
        window.record(15, false); // tick 5 falls out
        assert_eq!(window.totals(), (3, 0));
        window.record(100, true); // everything falls out
        assert_eq!(window.totals(), (1, 1));
        window.record(99, false); // late: counts in the head bucket
        assert_eq!(window.totals(), (2, 1));
        window.reset();
        assert_eq!(window.totals(), (0, 0));
    }
}
