//! What can go wrong in a store call or a watch.

use std::error::Error;
use std::sync::Arc;

use super::{LeaseId, Revision};

/// The error of a [`Store`](super::Store) call or of a watch stream.
///
/// Cloneable, so that one failed commit can answer every caller whose write it held.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The watch needs events that history no longer keeps: read the current state with
    /// a range, then watch from its revision.
    #[error("revision {requested} is compacted: history keeps only revisions after {compacted}")]
    Compacted {
        /// The first revision the watch needed.
        requested: Revision,
        /// The last revision dropped from history.
        compacted: Revision,
    },
    /// The watch asked for a revision beyond the next one.
    #[error("revision {requested} is in the future: the store is at revision {current}")]
    FutureRevision {
        /// The revision asked for.
        requested: Revision,
        /// The store's revision at the time.
        current: Revision,
    },
    /// The lease does not exist: it expired, was revoked, or never was.
    #[error("lease {0} not found")]
    LeaseNotFound(LeaseId),
    /// A lease with this id already exists.
    #[error("lease {0} already exists")]
    LeaseExists(LeaseId),
    /// The watcher did not read its events fast enough, and was cut off so that it
    /// neither slows writers nor holds memory: read the state again and watch anew.
    #[error("watcher fell behind and was cut off")]
    WatcherLagged,
    /// An argument the store cannot take (an empty key, a zero TTL, lease id 0, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Another store (another process, most likely) has the data folder open.
    #[error("{0} is in use by another store")]
    FolderInUse(String),
    /// The store is shut down.
    #[error("store is closed")]
    Closed,
    /// The storage underneath failed (I/O, SQLite, the network to etcd).
    #[error("storage failed: {0}")]
    Backend(#[source] Arc<dyn Error + Send + Sync>),
    /// What the storage holds is not what this program wrote (unknown schema version,
    /// a counter at its limit).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Wraps a failure of the storage underneath.
    pub fn backend(error: impl Error + Send + Sync + 'static) -> Self {
        Self::Backend(Arc::new(error))
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        Self::backend(error)
    }
}

impl From<std::io::Error> for StoreError {
    fn from(error: std::io::Error) -> Self {
        Self::backend(error)
    }
}
