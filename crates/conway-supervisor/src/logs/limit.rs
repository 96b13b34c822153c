//! A token bucket: lines pass at a sustained rate with bursts up to a size. Pure: the
//! caller passes the time.

use tokio::time::Instant;

/// `rate` tokens a second, holding at most `burst`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(rate: u32, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate: f64::from(rate),
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes a token if there is one at `now`.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(100, 10, start);
        let passed = (0..50).filter(|_| bucket.try_take(start)).count();
        assert_eq!(passed, 10, "the burst, no more");
        // 100 a second: 5 tokens in 50 ms.
        let later = start + Duration::from_millis(50);
        let passed = (0..50).filter(|_| bucket.try_take(later)).count();
        assert_eq!(passed, 5);
    }

    #[test]
    fn refills_no_further_than_the_burst() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(1000, 20, start);
        while bucket.try_take(start) {}
        let much_later = start + Duration::from_secs(3600);
        let passed = (0..1000).filter(|_| bucket.try_take(much_later)).count();
        assert_eq!(passed, 20);
    }

    #[test]
    fn sustained_rate_over_a_second() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(200, 1, start);
        let mut passed = 0;
        // Offer a line every millisecond for a second: about 200 pass, plus the burst.
        for ms in 0..1000 {
            if bucket.try_take(start + Duration::from_millis(ms)) {
                passed += 1;
            }
        }
        assert!((199..=201).contains(&passed), "{passed}");
    }
}
