//! Where reads run.
//!
//! A file database has a reading connection of its own, on a blocking task beside the
//! writer: with WAL it sees the last commit and never waits for the writer's fsync. An
//! in-memory database has only the writer's connection, so its reads queue there, and
//! run ahead of the writes of their batch. Either way a read sees every write that was
//! acknowledged before it started.

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::writer::{ReadJob, Request};
use crate::store::StoreError;

/// Where reads run.
#[derive(Debug, Clone)]
pub(super) enum Reads {
    /// On the reader task's connection.
    Reader(mpsc::Sender<ReadJob>),
    /// On the writer's connection (weak: a watch does not keep the writer alive).
    Writer(mpsc::WeakSender<Request>),
}

impl Reads {
    /// Starts the reader task of a file database on `conn`; it ends when the last
    /// [`Reads`] is dropped.
    pub(super) fn spawn_reader(conn: Connection, max_batch: usize) -> Self {
        let (jobs, mut queue) = mpsc::channel::<ReadJob>(max_batch);
        tokio::task::spawn_blocking(move || {
            let mut batch = Vec::with_capacity(max_batch);
            while queue.blocking_recv_many(&mut batch, max_batch) > 0 {
                batch.drain(..).for_each(|job| job(&conn));
            }
        });
        Self::Reader(jobs)
    }

    /// Runs `read` on a connection that sees the last commit.
    pub(super) async fn run<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: ReadJob = Box::new(move |conn| {
            // A reader that stopped waiting does not need the answer.
            let _ = reply.send(read(conn));
        });
        let sent = match self {
            Self::Reader(reader) => reader.send(job).await.is_ok(),
            Self::Writer(writer) => match writer.upgrade() {
                Some(writer) => writer.send(Request::Read(job)).await.is_ok(),
                None => false,
            },
        };
        if !sent {
            return Err(StoreError::Closed);
        }
        answer.await.map_err(|_| StoreError::Closed)?
    }
}
