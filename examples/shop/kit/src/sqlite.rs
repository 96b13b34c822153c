//! A SQLite database that a service's replicas share in `DATA_DIR`.
//!
//! Several processes write the same file: WAL lets readers go on beside the one writer,
//! a busy timeout makes a writer wait for the lock instead of failing with
//! `SQLITE_BUSY`, and every transaction that writes starts with `BEGIN IMMEDIATE`
//! ([`write`]), since a read transaction that later wants to write cannot wait (SQLite
//! answers `SQLITE_BUSY` at once to avoid a deadlock). `synchronous = NORMAL` in WAL
//! mode loses nothing when a process dies, only possibly on power loss.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::ApiError;

/// How long a writer waits for another replica's transaction to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections kept open between calls.
const IDLE: usize = 8;

/// Opens (creating) the database at `path` for sharing between processes.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    let _mode: String =
        connection.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(connection)
}

/// A write transaction that holds the write lock from its start.
pub fn write(connection: &mut Connection) -> rusqlite::Result<Transaction<'_>> {
    connection.transaction_with_behavior(TransactionBehavior::Immediate)
}

/// A small pool of connections to one database, used from async handlers.
#[derive(Debug)]
pub struct Db {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Db {
    /// Opens the database at `path` and runs `schema` (idempotent DDL and seed data)
    /// in one write transaction, so replicas starting together do it once.
    pub fn open(path: impl Into<PathBuf>, schema: &str) -> rusqlite::Result<Arc<Self>> {
        let path = path.into();
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).map_err(|error| {
                rusqlite::Error::InvalidPath(PathBuf::from(format!(
                    "{}: {error}",
                    folder.display()
                )))
            })?;
        }
        let mut connection = open(&path)?;
        let transaction = write(&mut connection)?;
        transaction.execute_batch(schema)?;
        transaction.commit()?;
        Ok(Arc::new(Self {
            path,
            idle: Mutex::new(vec![connection]),
        }))
    }

    /// Runs `work` with a connection on a blocking thread.
    pub async fn call<T, F>(self: &Arc<Self>, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, ApiError> + Send + 'static,
    {
        let db = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let pooled = db.idle.lock().pop();
            let mut connection = match pooled {
                Some(connection) => connection,
                None => open(&db.path)?,
            };
            let result = work(&mut connection);
            let mut idle = db.idle.lock();
            if idle.len() < IDLE {
                idle.push(connection);
            }
            result
        })
        .await
        .map_err(ApiError::internal)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn two_pools_on_one_file_see_each_others_writes() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("shared.db");
        let schema = "CREATE TABLE IF NOT EXISTS t (n INTEGER NOT NULL);";
        let a = Db::open(&path, schema).unwrap();
        let b = Db::open(&path, schema).unwrap();
        let mut writers = Vec::new();
        for db in [a.clone(), b.clone()] {
            for _ in 0..4 {
                let db = db.clone();
                writers.push(tokio::spawn(async move {
                    for n in 0..25 {
                        db.call(move |c| {
                            let tx = write(c)?;
                            tx.execute("INSERT INTO t (n) VALUES (?1)", [n])?;
                            tx.commit()?;
                            Ok(())
                        })
                        .await
                        .unwrap();
                    }
                }));
            }
        }
        for writer in writers {
            writer.await.unwrap();
        }
        let count: i64 = b
            .call(|c| Ok(c.query_row("SELECT COUNT(*) FROM t", [], |row| row.get(0))?))
            .await
            .unwrap();
        assert_eq!(count, 200);
        let mode: String = a
            .call(|c| Ok(c.query_row("PRAGMA journal_mode", [], |row| row.get(0))?))
            .await
            .unwrap();
        assert_eq!(mode, "wal");
    }
}
