//! What was done to the running system — deploys, chaos kills, applies — kept in
//! memory (the last [`History::CAPACITY`] events) for `GET /v1/events`.

use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

use conway_core::api::SystemEvent;
use parking_lot::Mutex;

/// The event log. Cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct History {
    events: Mutex<VecDeque<SystemEvent>>,
}

impl History {
    /// How many events are kept; older ones are dropped.
    pub const CAPACITY: usize = 10_000;

    /// Records an event that happens now.
    pub fn record(
        &self,
        kind: &str,
        service: Option<&str>,
        instance: Option<&str>,
        message: impl Into<String>,
    ) {
        let event = SystemEvent {
            time_us: now_us(),
            kind: kind.to_owned(),
            service: service.map(str::to_owned),
            instance: instance.map(str::to_owned),
            message: message.into(),
        };
        tracing::info!(kind, service, instance, message = %event.message, "event");
        let mut events = self.events.lock();
        if events.len() == Self::CAPACITY {
            events.pop_front();
        }
        events.push_back(event);
    }

    /// Every kept event, oldest first.
    pub fn events(&self) -> Vec<SystemEvent> {
        self.events.lock().iter().cloned().collect()
    }
}

/// Microseconds since the Unix epoch.
pub(crate) fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_events_in_order() {
        let history = History::default();
        for i in 0..History::CAPACITY + 2 {
            history.record(
                "chaos.kill",
                Some("orders"),
                Some("orders-1"),
                i.to_string(),
            );
        }
        let events = history.events();
        assert_eq!(events.len(), History::CAPACITY);
        assert_eq!(events[0].message, "2");
        assert_eq!(
            events.last().unwrap().message,
            (History::CAPACITY + 1).to_string()
        );
        assert!(events[0].time_us > 0);
    }
}
