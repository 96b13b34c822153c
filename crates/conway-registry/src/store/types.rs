//! The values a [`Store`](super::Store) takes and returns.

use std::fmt;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;

use super::StoreError;

/// A store-wide revision: bumped by every change, as etcd's. `0` is the revision of an
/// empty store, before any write.
pub type Revision = i64;

/// The longest TTL a lease can have: etcd's limit (`MaxLeaseTTL`, 9,000,000,000 s).
pub const MAX_LEASE_TTL: Duration = Duration::from_secs(9_000_000_000);

/// The identity of a lease. Never 0 (etcd reads 0 as "no lease").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeaseId(pub i64);

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A granted lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// Its identity, to attach keys and keep it alive.
    pub id: LeaseId,
    /// How long it lives after a keep-alive.
    pub ttl: Duration,
}

/// A key, its value and its history in revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value, as written.
    pub value: Bytes,
    /// The revision that created the key (since it last did not exist).
    pub create_revision: Revision,
    /// The revision of the key's last write.
    pub mod_revision: Revision,
    /// How many times the key was written since it was created: 1 after the first put.
    pub version: i64,
    /// The lease the key is attached to, if any.
    pub lease: Option<LeaseId>,
}

/// The keys under a prefix, read consistently at one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The keys, in byte order.
    pub kvs: Vec<KeyValue>,
    /// The store revision the read saw: a watch from `revision + 1` follows it.
    pub revision: Revision,
}

/// What a compare-and-set did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum CasOutcome {
    /// The value was written at this revision.
    Written(Revision),
    /// The key's modification revision was not the expected one; nothing was written.
    Conflict {
        /// The key as it is now (`None`: it does not exist).
        current: Option<KeyValue>,
    },
}

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The revision of the change (several deletions of one lease revocation share it).
    pub revision: Revision,
    /// What changed.
    pub kind: EventKind,
}

impl Event {
    /// The key that changed.
    pub fn key(&self) -> &str {
        match &self.kind {
            EventKind::Put(kv) => &kv.key,
            EventKind::Delete { key } => key,
        }
    }
}

/// The kind of a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// The key was written; this is its new state.
    Put(KeyValue),
    /// The key was deleted (directly, or with its lease).
    Delete {
        /// The deleted key.
        key: String,
    },
}

/// The events of a watch, in revision order; it ends after an error.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<Event, StoreError>> + Send>>;
