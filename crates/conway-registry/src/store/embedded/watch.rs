//! Watches: a replay from history, then live events, without a gap or a duplicate.
//!
//! The writer hands each commit's events to the [`Hub`], which offers them to every
//! watcher of a matching prefix through its own bounded buffer. A watcher whose buffer
//! is full is dropped on the spot (it later reads [`StoreError::WatcherLagged`]): a
//! reader that stalls never slows the writer nor grows memory.
//!
//! A watch subscribes first, then reads the store revision `upto`; every event after
//! `upto` comes live (it was published after the subscription), every event up to
//! `upto` is in history, and live events at or below `upto` are skipped.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use tokio::sync::mpsc::{self, error::TrySendError};

use super::reads::Reads;
use super::schema;
use crate::store::{Event, Revision, StoreError, WatchStream};

/// How many revisions of history a replay reads at a time.
const REPLAY_PAGE: Revision = 256;

/// The live watchers, each with its prefix and bounded buffer.
#[derive(Debug)]
pub(super) struct Hub {
    capacity: usize,
    watchers: Mutex<Vec<Slot>>,
}

#[derive(Debug)]
struct Slot {
    prefix: String,
    events: mpsc::Sender<Event>,
    lagged: Arc<AtomicBool>,
}

/// A watcher's end of its buffer.
#[derive(Debug)]
pub(super) struct Subscription {
    events: mpsc::Receiver<Event>,
    lagged: Arc<AtomicBool>,
}

impl Hub {
    /// A hub whose watchers may each fall `capacity` events behind (at least one).
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            watchers: Mutex::new(Vec::new()),
        }
    }

    /// Starts receiving every event published from now on under `prefix`.
    pub(super) fn subscribe(&self, prefix: &str) -> Subscription {
        let (events, receiver) = mpsc::channel(self.capacity);
        let lagged = Arc::new(AtomicBool::new(false));
        self.watchers.lock().push(Slot {
            prefix: prefix.to_owned(),
            events,
            lagged: lagged.clone(),
        });
        Subscription {
            events: receiver,
            lagged,
        }
    }

    /// Offers the events of one commit to every watcher; drops those that are gone or
    /// full.
    pub(super) fn publish(&self, events: &[Event]) {
        if events.is_empty() {
            return;
        }
        self.watchers.lock().retain(|slot| slot.offer(events));
    }

    /// How many watchers are subscribed.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.watchers.lock().len()
    }
}

impl Slot {
    /// Buffers the events under this watcher's prefix; `false` if the watcher is gone
    /// or just fell behind.
    fn offer(&self, events: &[Event]) -> bool {
        for event in events.iter().filter(|e| e.key().starts_with(&self.prefix)) {
            match self.events.try_send(event.clone()) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    self.lagged.store(true, Ordering::Release);
                    return false;
                }
                Err(TrySendError::Closed(_)) => return false,
            }
        }
        !self.events.is_closed()
    }
}

impl Subscription {
    /// The next live event; after the last buffered one, why the stream ends.
    async fn recv(&mut self) -> Result<Event, StoreError> {
        match self.events.recv().await {
            Some(event) => Ok(event),
            None if self.lagged.load(Ordering::Acquire) => Err(StoreError::WatcherLagged),
            None => Err(StoreError::Closed),
        }
    }
}

/// One watch: replaying revisions `next..=upto` from history, then following `live`.
#[derive(Debug)]
pub(super) struct Watch {
    prefix: String,
    reads: Reads,
    /// The next revision to replay.
    next: Revision,
    /// The store revision when the watch subscribed: the last one to replay.
    upto: Revision,
    replayed: VecDeque<Event>,
    live: Subscription,
    done: bool,
}

impl Watch {
    /// A watch of `prefix` from revision `since`, subscribed as `live` before the store
    /// was at revision `upto`.
    pub(super) fn new(
        prefix: &str,
        reads: Reads,
        since: Revision,
        upto: Revision,
        live: Subscription,
    ) -> Self {
        Self {
            prefix: prefix.to_owned(),
            reads,
            next: since,
            upto,
            replayed: VecDeque::new(),
            live,
            done: false,
        }
    }

    /// The events as a stream that ends after its first error.
    pub(super) fn into_stream(self) -> WatchStream {
        Box::pin(futures_util::stream::unfold(self, |mut watch| async move {
            let item = watch.next_event().await?;
            Some((item, watch))
        }))
    }

    async fn next_event(&mut self) -> Option<Result<Event, StoreError>> {
        if self.done {
            return None;
        }
        let result = loop {
            if let Some(event) = self.replayed.pop_front() {
                break Ok(event);
            }
            if self.next <= self.upto {
                if let Err(error) = self.replay_page().await {
                    break Err(error);
                }
                continue;
            }
            match self.live.recv().await {
                Ok(event) if event.revision <= self.upto => continue,
                other => break other,
            }
        };
        self.done = result.is_err();
        Some(result)
    }

    /// Reads the next page of history into `replayed`.
    async fn replay_page(&mut self) -> Result<(), StoreError> {
        let (first, last) = (
            self.next,
            self.upto.min(self.next.saturating_add(REPLAY_PAGE - 1)),
        );
        let prefix = self.prefix.clone();
        let events = self
            .reads
            .run(move |conn| schema::history(conn, &prefix, first, last))
            .await?;
        self.replayed.extend(events);
        self.next = last.saturating_add(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{EventKind, KeyValue};

    fn put(revision: Revision, key: &str) -> Event {
        Event {
            revision,
            kind: EventKind::Put(KeyValue {
                key: key.to_owned(),
                value: bytes::Bytes::new(),
                create_revision: revision,
                mod_revision: revision,
                version: 1,
                lease: None,
            }),
        }
    }

    #[tokio::test]
    async fn a_watcher_gets_only_its_prefix() {
        let hub = Hub::new(8);
        let mut apps = hub.subscribe("apps/");
        hub.publish(&[put(1, "apps/a"), put(2, "other/b"), put(3, "apps/c")]);
        assert_eq!(apps.recv().await.map(|e| e.revision).ok(), Some(1));
        assert_eq!(apps.recv().await.map(|e| e.revision).ok(), Some(3));
        assert!(apps.events.try_recv().is_err());
    }

    #[tokio::test]
    async fn a_full_buffer_cuts_the_watcher_off_after_what_it_holds() {
        let hub = Hub::new(2);
        let mut slow = hub.subscribe("");
        let mut other = hub.subscribe("x");
        hub.publish(&[put(1, "a"), put(2, "b"), put(3, "c")]);
        assert_eq!(hub.len(), 1, "the slow watcher is dropped, the other stays");
        assert_eq!(slow.recv().await.map(|e| e.revision).ok(), Some(1));
        assert_eq!(slow.recv().await.map(|e| e.revision).ok(), Some(2));
        assert!(matches!(slow.recv().await, Err(StoreError::WatcherLagged)));
        drop(hub);
        assert!(matches!(other.recv().await, Err(StoreError::Closed)));
    }

    #[tokio::test]
    async fn live_events_already_replayed_are_skipped() -> Result<(), StoreError> {
        use futures_util::StreamExt;
        // Revision 2 committed before the watch read the store revision (2) but was
        // published after it subscribed: history has it, so live must skip it.
        let hub = Hub::new(8);
        let live = hub.subscribe("");
        hub.publish(&[put(2, "a"), put(3, "b")]);
        let (unused, _) = mpsc::channel(1);
        let mut watch = Watch::new("", Reads::Writer(unused.downgrade()), 3, 2, live).into_stream();
        assert_eq!(watch.next().await.transpose()?.map(|e| e.revision), Some(3));
        drop(hub);
        assert!(matches!(watch.next().await, Some(Err(StoreError::Closed))));
        assert!(
            watch.next().await.is_none(),
            "the stream ends after its error"
        );
        Ok(())
    }

    #[test]
    fn a_dropped_watcher_is_forgotten_at_the_next_publish() {
        let hub = Hub::new(2);
        let gone = hub.subscribe("a");
        let _kept = hub.subscribe("a");
        drop(gone);
        hub.publish(&[put(1, "b")]);
        assert_eq!(hub.len(), 1);
    }
}
