//! The single writer: group commit.
//!
//! One blocking task owns the writing connection and takes requests from a bounded
//! channel. Everything queued when it wakes (up to `max_batch`) becomes one transaction:
//! one fsync for the whole batch, each caller answered only after the commit. Reads
//! queued with the batch (those of an in-memory store) run first, on the last commit.

use std::fs::File;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::lease::Leases;
use super::ops::Tx;
use super::schema::Meta;
use super::watch::Hub;
use crate::store::{CasOutcome, Lease, LeaseId, Revision, StoreError};

/// Where the writer sends a caller's answer.
pub(super) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// A read to run on the writer's connection.
pub(super) type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

/// What the writer is asked to do.
pub(super) enum Request {
    /// A write, answered after its batch commits.
    Write(WriteOp),
    /// A read, run before the writes of its batch.
    Read(ReadJob),
}

/// A write and where to answer it.
pub(super) enum WriteOp {
    Put {
        key: String,
        value: Bytes,
        lease: Option<LeaseId>,
        reply: Reply<Revision>,
    },
    CompareAndSet {
        key: String,
        expected: Revision,
        value: Bytes,
        lease: Option<LeaseId>,
        reply: Reply<CasOutcome>,
    },
    Delete {
        key: String,
        reply: Reply<Option<Revision>>,
    },
    Grant {
        ttl: Duration,
        id: Option<LeaseId>,
        reply: Reply<Lease>,
    },
    Revoke {
        id: LeaseId,
        reply: Reply<Revision>,
    },
}

/// Sends a write to the writer and waits for its answer.
pub(super) async fn submit<T>(
    requests: &mpsc::Sender<Request>,
    op: impl FnOnce(Reply<T>) -> WriteOp,
) -> Result<T, StoreError> {
    let (reply, answer) = oneshot::channel();
    requests
        .send(Request::Write(op(reply)))
        .await
        .map_err(|_| StoreError::Closed)?;
    answer.await.map_err(|_| StoreError::Closed)?
}

/// Answers a caller once its batch's fate is known: given the commit's error, if any.
type Ack = Box<dyn FnOnce(Option<&StoreError>) + Send>;

fn ack<T: Send + 'static>(reply: Reply<T>, result: Result<T, StoreError>) -> Ack {
    Box::new(move |commit_error| {
        // A caller that stopped waiting does not care; the write stands.
        let _ = reply.send(match commit_error {
            Some(error) => Err(error.clone()),
            None => result,
        });
    })
}

/// The writer's state: its connection and the counters as last committed.
pub(super) struct Writer {
    conn: Connection,
    /// The data folder's lock, held until the writer is done.
    _lock: Option<File>,
    meta: Meta,
    /// How many revisions of history to keep.
    keep: Revision,
    hub: Arc<Hub>,
    leases: Arc<Leases>,
}

impl Writer {
    pub(super) fn new(
        conn: Connection,
        lock: Option<File>,
        meta: Meta,
        keep: Revision,
        hub: Arc<Hub>,
        leases: Arc<Leases>,
    ) -> Self {
        Self {
            conn,
            _lock: lock,
            meta,
            keep,
            hub,
            leases,
        }
    }

    /// Serves requests until every sender is gone. Blocks: run it on a blocking thread.
    pub(super) fn run(mut self, mut requests: mpsc::Receiver<Request>, max_batch: usize) {
        let mut batch = Vec::with_capacity(max_batch);
        while requests.blocking_recv_many(&mut batch, max_batch) > 0 {
            let mut writes = Vec::with_capacity(batch.len());
            for request in batch.drain(..) {
                match request {
                    Request::Read(job) => job(&self.conn),
                    Request::Write(op) => writes.push(op),
                }
            }
            if !writes.is_empty() {
                self.commit(writes);
            }
        }
    }

    /// Applies `ops` in one transaction, commits, then publishes and answers.
    fn commit(&mut self, ops: Vec<WriteOp>) {
        let mut tx = Tx::begin(&self.conn, self.meta);
        let acks: Vec<Ack> = ops.into_iter().map(|op| apply(&mut tx, op)).collect();
        match tx.commit(self.keep, self.meta) {
            Ok(()) => {
                self.meta = tx.meta;
                self.leases.apply(&tx.lease_changes, Instant::now());
                self.hub.publish(&tx.events);
                acks.into_iter().for_each(|ack| ack(None));
            }
            Err(error) => {
                tracing::warn!(%error, writes = acks.len(), "store batch failed");
                tx.rollback();
                acks.into_iter().for_each(|ack| ack(Some(&error)));
            }
        }
    }
}

/// Runs one write in the batch's transaction; its answer waits for the commit.
fn apply(tx: &mut Tx<'_>, op: WriteOp) -> Ack {
    match op {
        WriteOp::Put {
            key,
            value,
            lease,
            reply,
        } => ack(reply, tx.atomically(|tx| tx.put(&key, &value, lease))),
        WriteOp::CompareAndSet {
            key,
            expected,
            value,
            lease,
            reply,
        } => ack(
            reply,
            tx.atomically(|tx| tx.compare_and_set(&key, expected, &value, lease)),
        ),
        WriteOp::Delete { key, reply } => ack(reply, tx.atomically(|tx| tx.delete(&key))),
        WriteOp::Grant { ttl, id, reply } => ack(reply, tx.atomically(|tx| tx.grant(ttl, id))),
        WriteOp::Revoke { id, reply } => ack(reply, tx.atomically(|tx| tx.revoke(id))),
    }
}
