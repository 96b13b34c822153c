//! Lease deadlines, kept in memory as etcd keeps them.
//!
//! Grants and revocations are durable (the `leases` table); keep-alives only move a
//! deadline here. When the store opens, every lease gets its full TTL again, so an
//! outage never expires the whole registry at once. A background task revokes the
//! leases whose deadline passed. Deadlines use Tokio's clock, so tests can pause time.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::{Instant, sleep, sleep_until};

use super::ops::LeaseChange;
use super::writer::{Request, WriteOp};
use crate::store::{Lease, LeaseId, StoreError};

/// How long the expiry task waits before retrying a revocation that failed.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A deadline for leases whose TTL would overflow the clock: far enough to never come.
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The live leases, shared by the store, the writer and the expiry task.
#[derive(Debug)]
pub(super) struct Leases {
    table: Mutex<LeaseTable>,
    /// Wakes the expiry task when a lease was granted (its deadline may come first).
    granted: Notify,
}

impl Leases {
    /// The leases of a store that just opened, each with its full TTL from `now`.
    pub(super) fn new(leases: impl IntoIterator<Item = Lease>, now: Instant) -> Self {
        let mut table = LeaseTable::default();
        for lease in leases {
            table.insert(lease, now);
        }
        Self {
            table: Mutex::new(table),
            granted: Notify::new(),
        }
    }

    /// Renews a lease for its full TTL, unless its deadline already passed.
    pub(super) fn keep_alive(&self, id: LeaseId, now: Instant) -> Result<Duration, StoreError> {
        self.table
            .lock()
            .keep_alive(id, now)
            .ok_or(StoreError::LeaseNotFound(id))
    }

    /// Mirrors committed grants and revocations.
    pub(super) fn apply(&self, changes: &[LeaseChange], now: Instant) {
        if changes.is_empty() {
            return;
        }
        let mut table = self.table.lock();
        for change in changes {
            match *change {
                LeaseChange::Granted(lease) => table.insert(lease, now),
                LeaseChange::Revoked(id) => table.remove(id),
            }
        }
        drop(table);
        self.granted.notify_one();
    }
}

/// Lease deadlines, indexed by lease and by deadline.
#[derive(Debug, Default)]
pub(super) struct LeaseTable {
    leases: HashMap<LeaseId, (Duration, Instant)>,
    deadlines: BTreeSet<(Instant, LeaseId)>,
}

impl LeaseTable {
    /// Starts (or restarts) `lease` with its full TTL from `now`.
    pub(super) fn insert(&mut self, lease: Lease, now: Instant) {
        self.remove(lease.id);
        let deadline = deadline(now, lease.ttl);
        self.leases.insert(lease.id, (lease.ttl, deadline));
        self.deadlines.insert((deadline, lease.id));
    }

    /// Forgets a lease.
    pub(super) fn remove(&mut self, id: LeaseId) {
        if let Some((_, deadline)) = self.leases.remove(&id) {
            self.deadlines.remove(&(deadline, id));
        }
    }

    /// Moves a live lease's deadline to `now + ttl` and returns the TTL; `None` if the
    /// lease is unknown or its deadline passed (it is being revoked).
    pub(super) fn keep_alive(&mut self, id: LeaseId, now: Instant) -> Option<Duration> {
        let (ttl, old) = *self.leases.get(&id)?;
        if old <= now {
            return None;
        }
        let new = deadline(now, ttl);
        self.deadlines.remove(&(old, id));
        self.deadlines.insert((new, id));
        self.leases.insert(id, (ttl, new));
        Some(ttl)
    }

    /// The earliest deadline.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|&(deadline, _)| deadline)
    }

    /// The leases whose deadline is at or before `now`, earliest first.
    pub(super) fn expired(&self, now: Instant) -> Vec<LeaseId> {
        self.deadlines
            .iter()
            .take_while(|(deadline, _)| *deadline <= now)
            .map(|&(_, id)| id)
            .collect()
    }
}

fn deadline(now: Instant, ttl: Duration) -> Instant {
    now.checked_add(ttl).unwrap_or(now + FAR_FUTURE)
}

/// Revokes leases as their deadlines pass, until the writer is gone.
pub(super) async fn expire(leases: Arc<Leases>, requests: mpsc::WeakSender<Request>) {
    loop {
        let next = leases.table.lock().next_deadline();
        match next {
            Some(deadline) => tokio::select! {
                () = sleep_until(deadline) => {}
                () = leases.granted.notified() => continue,
            },
            None => {
                leases.granted.notified().await;
                continue;
            }
        }
        let expired = leases.table.lock().expired(Instant::now());
        if expired.is_empty() {
            continue;
        }
        let Some(sender) = requests.upgrade() else {
            return;
        };
        match revoke_all(&leases, &sender, expired).await {
            Ok(true) => {}
            Ok(false) => sleep(RETRY_AFTER).await,
            Err(_) => return,
        }
    }
}

/// Revokes `ids` in one batch. `Ok(false)` when some revocation failed and should be
/// retried; an error when the writer is gone.
async fn revoke_all(
    leases: &Leases,
    sender: &mpsc::Sender<Request>,
    ids: Vec<LeaseId>,
) -> Result<bool, StoreError> {
    let mut answers = Vec::with_capacity(ids.len());
    for id in ids {
        let (reply, answer) = oneshot::channel();
        sender
            .send(Request::Write(WriteOp::Revoke { id, reply }))
            .await
            .map_err(|_| StoreError::Closed)?;
        answers.push((id, answer));
    }
    let mut all_done = true;
    for (id, answer) in answers {
        match answer.await.map_err(|_| StoreError::Closed)? {
            Ok(revision) => tracing::debug!(lease = %id, revision, "lease expired"),
            // Revoked meanwhile by its owner: nothing left to do.
            Err(StoreError::LeaseNotFound(_)) => leases.table.lock().remove(id),
            Err(error) => {
                tracing::warn!(lease = %id, %error, "revoking an expired lease failed");
                all_done = false;
            }
        }
    }
    Ok(all_done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(id: i64, secs: u64) -> Lease {
        Lease {
            id: LeaseId(id),
            ttl: Duration::from_secs(secs),
        }
    }

    #[test]
    fn leases_expire_in_deadline_order() {
        let start = Instant::now();
        let mut table = LeaseTable::default();
        table.insert(lease(1, 30), start);
        table.insert(lease(2, 10), start);
        table.insert(lease(3, 20), start);
        assert_eq!(table.next_deadline(), Some(start + Duration::from_secs(10)));
        assert_eq!(table.expired(start + Duration::from_secs(9)), []);
        assert_eq!(
            table.expired(start + Duration::from_secs(20)),
            [LeaseId(2), LeaseId(3)]
        );
    }

    #[test]
    fn keep_alive_moves_the_deadline_by_the_full_ttl() {
        let start = Instant::now();
        let mut table = LeaseTable::default();
        table.insert(lease(1, 10), start);
        let later = start + Duration::from_secs(8);
        assert_eq!(
            table.keep_alive(LeaseId(1), later),
            Some(Duration::from_secs(10))
        );
        assert_eq!(table.next_deadline(), Some(later + Duration::from_secs(10)));
        assert_eq!(table.expired(start + Duration::from_secs(17)), []);
        assert_eq!(table.expired(start + Duration::from_secs(18)), [LeaseId(1)]);
    }

    #[test]
    fn an_expired_or_unknown_lease_cannot_be_kept_alive() {
        let start = Instant::now();
        let mut table = LeaseTable::default();
        table.insert(lease(1, 10), start);
        assert_eq!(
            table.keep_alive(LeaseId(1), start + Duration::from_secs(10)),
            None
        );
        assert_eq!(table.keep_alive(LeaseId(2), start), None);
        table.remove(LeaseId(1));
        assert_eq!(table.next_deadline(), None);
        assert_eq!(table.keep_alive(LeaseId(1), start), None);
    }

    #[test]
    fn a_ttl_beyond_the_clock_does_not_panic() {
        let start = Instant::now();
        let mut table = LeaseTable::default();
        table.insert(
            Lease {
                id: LeaseId(1),
                ttl: Duration::MAX,
            },
            start,
        );
        assert_eq!(table.expired(start + Duration::from_secs(3600)), []);
        assert_eq!(table.keep_alive(LeaseId(1), start), Some(Duration::MAX));
    }

    #[test]
    fn a_restart_gives_every_lease_its_full_ttl() {
        let start = Instant::now();
        let leases = Leases::new([lease(1, 10), lease(2, 30)], start);
        let table = leases.table.lock();
        assert_eq!(table.next_deadline(), Some(start + Duration::from_secs(10)));
        assert_eq!(
            table.expired(start + Duration::from_secs(30)),
            [LeaseId(1), LeaseId(2)]
        );
    }
}
