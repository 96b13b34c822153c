//! What can go wrong in a registry operation.

use crate::store::StoreError;

/// A registry operation's failure; the control plane maps each kind to a status.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// What was named does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts what exists (409).
    #[error("{0}")]
    Conflict(String),
    /// The request is malformed (400).
    #[error("{0}")]
    Invalid(String),
    /// The store failed (500), or could not serve a watch from that revision.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored value could not be decoded (500): the store holds something this
    /// version of Conway did not write.
    #[error("corrupt value at {key}: {source}")]
    Corrupt {
        /// The key whose value is bad.
        key: String,
        /// Why it does not decode.
        source: serde_json::Error,
    },
}
