//! Instants as plain nanosecond counts, so they fit in atomics.
//!
//! Times come from tokio's clock, so tests can pause and advance it. They are stored as
//! nanoseconds since a process-wide epoch taken a year before the first use: every
//! instant the program sees, paused test clocks included (they start at the real time
//! their runtime was built), lies after it.

use std::sync::LazyLock;
use std::time::Duration;

use tokio::time::Instant;

/// The origin of every stored instant. It is the only read of the real clock in the
/// balancer, and it only anchors the counts; it never measures anything.
static EPOCH: LazyLock<std::time::Instant> = LazyLock::new(|| {
    let now = std::time::Instant::now();
    now.checked_sub(Duration::from_secs(365 * 24 * 3600))
        .unwrap_or(now)
});

/// `instant` as nanoseconds since the epoch; never 0, which the stats keep for "unset".
pub(super) fn nanos(instant: Instant) -> u64 {
    let since = instant.into_std().saturating_duration_since(*EPOCH);
    u64::try_from(since.as_nanos()).unwrap_or(u64::MAX).max(1)
}

/// The instant `nanos` nanoseconds after the epoch.
pub(super) fn instant(nanos: u64) -> Instant {
    Instant::from_std(*EPOCH + Duration::from_nanos(nanos))
}

/// A duration in nanoseconds, as a float for the EWMA arithmetic.
pub(super) fn float_nanos(duration: Duration) -> f64 {
    duration.as_nanos() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn instants_round_trip_through_nanos_under_a_paused_clock() {
        let start = Instant::now();
        tokio::time::advance(Duration::from_secs(3600)).await;
        let later = Instant::now();
        assert_eq!(nanos(later) - nanos(start), 3_600_000_000_000);
        assert_eq!(instant(nanos(later)), later);
    }
}
