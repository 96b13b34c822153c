//! Revisioned key-value storage with leases and watches, modelled on etcd.
//!
//! A [`Store`] holds UTF-8 keys and byte values. Every change bumps one store-wide
//! [`Revision`]; every key remembers the revision that created it, the one that last
//! changed it, and how many times it was written since it was created. Keys may be
//! attached to a lease, and disappear with it. A watch replays the changes under a prefix
//! from a past revision, then follows live ones, without a gap or a duplicate.
//!
//! The trait offers only what etcd offers, so that the embedded store (one machine) and
//! an etcd store (a cluster) are interchangeable behind `Arc<dyn Store>`.

mod embedded;
mod error;
mod types;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

pub use embedded::{EmbeddedOptions, EmbeddedStore};
pub use error::StoreError;
pub use types::{
    CasOutcome, Event, EventKind, KeyValue, Lease, LeaseId, MAX_LEASE_TTL, Revision, Snapshot,
    WatchStream,
};

/// Revisioned key-value storage with leases and watches; the registry's only way to
/// keep state.
///
/// Writes are durable once they return (for a durable implementation). Keys must not
/// be empty. A key is attached to a lease by writing it with that lease ([`Store::put`],
/// [`Store::compare_and_set`]), as in etcd. Several events may share a revision: revoking a lease deletes all its keys
/// at one revision, as etcd does.
#[async_trait]
pub trait Store: fmt::Debug + Send + Sync {
    /// Sets `key` to `value`, attached to `lease` (or to no lease: a put without a lease
    /// detaches the key from the one it had). Returns the revision of the write.
    ///
    /// Fails with [`StoreError::LeaseNotFound`] if the lease does not exist.
    async fn put(
        &self,
        key: &str,
        value: Bytes,
        lease: Option<LeaseId>,
    ) -> Result<Revision, StoreError>;

    /// The current value of `key`, if it exists.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;

    /// Every key starting with `prefix` (all keys for an empty prefix), in byte order of
    /// the keys, with the store revision at which the read was consistent: watch from the
    /// next revision to follow the changes after it.
    async fn range(&self, prefix: &str) -> Result<Snapshot, StoreError>;

    /// Deletes `key`. Returns the revision of the deletion, or `None` if the key did not
    /// exist (and nothing changed).
    async fn delete(&self, key: &str) -> Result<Option<Revision>, StoreError>;

    /// Sets `key` only if its current modification revision is `expected`; `0` means the
    /// key must not exist. A conflict is an outcome, not an error: it carries the current
    /// value so the caller can retry.
    async fn compare_and_set(
        &self,
        key: &str,
        expected: Revision,
        value: Bytes,
        lease: Option<LeaseId>,
    ) -> Result<CasOutcome, StoreError>;

    /// Grants a lease that expires `ttl` after its last keep-alive, with the given id or
    /// one the store chooses. The granted TTL may be rounded up (etcd counts seconds).
    ///
    /// Fails with [`StoreError::LeaseExists`] if `id` is taken, and
    /// [`StoreError::InvalidArgument`] for a zero TTL, one above [`MAX_LEASE_TTL`], or
    /// the id 0.
    async fn grant_lease(&self, ttl: Duration, id: Option<LeaseId>) -> Result<Lease, StoreError>;

    /// Renews a lease for its full TTL, which it returns.
    ///
    /// Fails with [`StoreError::LeaseNotFound`] if the lease expired or was revoked.
    async fn keep_alive(&self, lease: LeaseId) -> Result<Duration, StoreError>;

    /// Revokes a lease and deletes every key attached to it (one delete event per key,
    /// all at one revision). Returns the store revision after the revocation.
    async fn revoke_lease(&self, lease: LeaseId) -> Result<Revision, StoreError>;

    /// Follows the changes to keys starting with `prefix`: from revision `since`
    /// (inclusive; replayed from history, then live), or from now when `since` is `None`.
    ///
    /// Fails with [`StoreError::Compacted`] when history no longer reaches back to
    /// `since`, and [`StoreError::FutureRevision`] when `since` is beyond the next
    /// revision. The stream ends after yielding an error: [`StoreError::WatcherLagged`]
    /// when its reader fell too far behind, [`StoreError::Compacted`] when history was
    /// compacted before the replay reached it, [`StoreError::Closed`] when the store
    /// shut down.
    async fn watch(&self, prefix: &str, since: Option<Revision>)
    -> Result<WatchStream, StoreError>;
}
