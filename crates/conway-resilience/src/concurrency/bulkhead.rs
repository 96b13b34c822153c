//! The bulkhead's counter.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use super::error::Shed;

/// At most `max` requests in flight to one service; the rest are shed at once. Share it
/// in an `Arc`: acquiring and releasing are one atomic operation each.
#[derive(Debug)]
pub struct Bulkhead {
    max: u32,
    retry_after: Duration,
    in_flight: AtomicU32,
    shed: AtomicU64,
}

impl Bulkhead {
    /// What a shed caller is told to wait by default: one second.
    pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

    /// A bulkhead of `max` requests in flight (0 sheds everything).
    pub const fn new(max: u32) -> Self {
        Self::with_retry_after(max, Self::DEFAULT_RETRY_AFTER)
    }

    /// A bulkhead that tells shed callers to wait `retry_after`.
    pub const fn with_retry_after(max: u32, retry_after: Duration) -> Self {
        Self {
            max,
            retry_after,
            in_flight: AtomicU32::new(0),
            shed: AtomicU64::new(0),
        }
    }

    /// A place for one request, or [`Shed`] if all `max` are taken. The place is
    /// held until the permit is dropped: hold it until the response body is done.
    pub fn try_acquire(self: &Arc<Self>) -> Result<BulkheadPermit, Shed> {
        let taken = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            });
        match taken {
            Ok(_) => Ok(BulkheadPermit {
                bulkhead: Arc::clone(self),
            }),
            Err(_) => {
                self.shed.fetch_add(1, Ordering::Relaxed);
                Err(Shed::new(self.retry_after))
            }
        }
    }

    /// Requests in flight now, for a gauge.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// The limit.
    pub const fn max(&self) -> u32 {
        self.max
    }

    /// Requests shed so far, for a counter.
    pub fn shed(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }
}

/// One place in a [`Bulkhead`], given back on drop.
#[derive(Debug)]
#[must_use = "the place is given back as soon as the permit is dropped"]
pub struct BulkheadPermit {
    bulkhead: Arc<Bulkhead>,
}

impl Drop for BulkheadPermit {
    fn drop(&mut self) {
        self.bulkhead.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}
