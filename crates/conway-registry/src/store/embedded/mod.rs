//! The embedded store: SQLite in the control plane's data folder.
//!
//! - One writer task commits every queued write in one transaction (group commit); with
//!   WAL and `synchronous = FULL`, a write is on disk before it is acknowledged.
//! - Reads of a file database run on a reading connection of their own (WAL lets it
//!   read the last commit while the writer syncs); see [`reads`].
//! - Every change is also appended to a history table that watches replay; history
//!   keeps the last [`EmbeddedOptions::history_revisions`] revisions. Live events reach
//!   watchers through bounded buffers; see [`watch`].
//! - Leases are durable, their deadlines are not: see [`lease`].

mod lease;
mod ops;
mod reads;
mod schema;
mod watch;
mod writer;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use self::lease::Leases;
use self::reads::Reads;
use self::watch::{Hub, Watch};
use self::writer::{Request, WriteOp, Writer, submit};
use super::{
    CasOutcome, KeyValue, Lease, LeaseId, Revision, Snapshot, Store, StoreError, WatchStream,
};

/// Tuning of an [`EmbeddedStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedOptions {
    /// How many revisions of history watches can replay; a watch from an older revision
    /// fails with [`StoreError::Compacted`]. Default 10,000; at least 1.
    pub history_revisions: u64,
    /// How many events a watcher may have unread before it is cut off with
    /// [`StoreError::WatcherLagged`]. Default 1,024; at least 1.
    pub watch_buffer: usize,
    /// The most writes one transaction commits, and how many may wait for the writer.
    /// Default 1,024; at least 1.
    pub max_batch: usize,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            history_revisions: 10_000,
            watch_buffer: 1_024,
            max_batch: 1_024,
        }
    }
}

/// A [`Store`] in a SQLite database: durable in a data folder, or in memory.
///
/// Open it inside a Tokio runtime: it runs a writer (and, on disk, a reader) on blocking
/// threads and a lease expiry task. Dropping it stops them once the writes already
/// queued are done; drop it before its runtime, whose shutdown waits for them.
pub struct EmbeddedStore {
    location: String,
    requests: mpsc::Sender<Request>,
    reads: Reads,
    hub: Arc<Hub>,
    leases: Arc<Leases>,
    expiry: AbortHandle,
}

impl EmbeddedStore {
    /// Opens (or creates) the store in the folder `dir` (created if missing), with the
    /// default options.
    pub async fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(dir, EmbeddedOptions::default()).await
    }

    /// Opens (or creates) the store in the folder `dir` (created if missing).
    pub async fn open_with(
        dir: impl AsRef<Path>,
        options: EmbeddedOptions,
    ) -> Result<Self, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        let location = dir.join(schema::DB_FILE).display().to_string();
        let opened = tokio::task::spawn_blocking(move || schema::open_folder(&dir))
            .await
            .map_err(StoreError::backend)??;
        Self::start(opened, location, options)
    }

    /// A store in memory only, with the default options: the same code as on disk,
    /// without durability.
    pub async fn in_memory() -> Result<Self, StoreError> {
        Self::in_memory_with(EmbeddedOptions::default()).await
    }

    /// A store in memory only.
    pub async fn in_memory_with(options: EmbeddedOptions) -> Result<Self, StoreError> {
        let opened = schema::Opened {
            writer: schema::open_writer(None)?,
            reader: None,
            lock: None,
        };
        Self::start(opened, ":memory:".into(), options)
    }

    /// Starts the writer, and the reader if the database has one.
    fn start(
        opened: schema::Opened,
        location: String,
        options: EmbeddedOptions,
    ) -> Result<Self, StoreError> {
        let schema::Opened {
            writer: conn,
            reader,
            lock,
        } = opened;
        let meta = schema::load_meta(&conn)?;
        let leases = Arc::new(Leases::new(schema::load_leases(&conn)?, Instant::now()));
        let hub = Arc::new(Hub::new(options.watch_buffer));
        let max_batch = options.max_batch.max(1);
        let keep = i64::try_from(options.history_revisions.max(1)).unwrap_or(i64::MAX);
        let (requests, queue) = mpsc::channel(max_batch);
        let writer = Writer::new(conn, lock, meta, keep, hub.clone(), leases.clone());
        // A blocking task rather than a thread: it sees the runtime's clock, and a test
        // that pauses time does not see it jump while the writer works.
        tokio::task::spawn_blocking(move || writer.run(queue, max_batch));
        let expiry = tokio::spawn(lease::expire(leases.clone(), requests.downgrade()));
        let reads = match reader {
            Some(reader) => Reads::spawn_reader(reader, max_batch),
            None => Reads::Writer(requests.downgrade()),
        };
        Ok(Self {
            location,
            requests,
            reads,
            hub,
            leases,
            expiry: expiry.abort_handle(),
        })
    }

    async fn write<T>(
        &self,
        op: impl FnOnce(writer::Reply<T>) -> WriteOp,
    ) -> Result<T, StoreError> {
        submit(&self.requests, op).await
    }
}

impl fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        self.expiry.abort();
    }
}

/// Keys are never empty (etcd refuses them too).
fn check_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() {
        return Err(StoreError::InvalidArgument("the key is empty".into()));
    }
    Ok(())
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn put(
        &self,
        key: &str,
        value: Bytes,
        lease: Option<LeaseId>,
    ) -> Result<Revision, StoreError> {
        check_key(key)?;
        let key = key.to_owned();
        self.write(|reply| WriteOp::Put {
            key,
            value,
            lease,
            reply,
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        check_key(key)?;
        let key = key.to_owned();
        self.reads.run(move |conn| schema::get(conn, &key)).await
    }

    async fn range(&self, prefix: &str) -> Result<Snapshot, StoreError> {
        let prefix = prefix.to_owned();
        self.reads
            .run(move |conn| schema::range(conn, &prefix))
            .await
    }

    async fn delete(&self, key: &str) -> Result<Option<Revision>, StoreError> {
        check_key(key)?;
        let key = key.to_owned();
        self.write(|reply| WriteOp::Delete { key, reply }).await
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expected: Revision,
        value: Bytes,
        lease: Option<LeaseId>,
    ) -> Result<CasOutcome, StoreError> {
        check_key(key)?;
        let key = key.to_owned();
        self.write(|reply| WriteOp::CompareAndSet {
            key,
            expected,
            value,
            lease,
            reply,
        })
        .await
    }

    async fn grant_lease(&self, ttl: Duration, id: Option<LeaseId>) -> Result<Lease, StoreError> {
        self.write(|reply| WriteOp::Grant { ttl, id, reply }).await
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<Duration, StoreError> {
        self.leases.keep_alive(lease, Instant::now())
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<Revision, StoreError> {
        self.write(|reply| WriteOp::Revoke { id: lease, reply })
            .await
    }

    async fn watch(
        &self,
        prefix: &str,
        since: Option<Revision>,
    ) -> Result<WatchStream, StoreError> {
        let live = self.hub.subscribe(prefix);
        let meta = self.reads.run(schema::load_meta).await?;
        let first = match since {
            None => meta.revision.saturating_add(1),
            Some(since) => {
                let since = since.max(1);
                if since <= meta.compacted {
                    return Err(StoreError::Compacted {
                        requested: since,
                        compacted: meta.compacted,
                    });
                }
                if since > meta.revision.saturating_add(1) {
                    return Err(StoreError::FutureRevision {
                        requested: since,
                        current: meta.revision,
                    });
                }
                since
            }
        };
        let watch = Watch::new(prefix, self.reads.clone(), first, meta.revision, live);
        Ok(watch.into_stream())
    }
}
