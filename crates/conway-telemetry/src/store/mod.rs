//! The embedded telemetry store: SQLite in WAL mode, one file in its own folder
//! (`DATA_DIR/telemetry/telemetry.db`), apart from the registry's database.
//!
//! One writer connection takes batches, each in one transaction through cached
//! statements; readers have their own connections and read the last commit while the
//! writer goes on. Every call blocks: async callers go through [`crate::Telemetry`],
//! which runs them on tokio's blocking pool.
//!
//! A damaged file found at start-up is moved aside (`telemetry.db.damaged-UNIXTIME`,
//! with its `-wal`), the store starts fresh, and whatever rows SQLite can still read
//! from the damaged file are copied into it; [`OpenReport`] says what happened.

mod read;
mod retention;
mod schema;
mod write;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use rusqlite::Connection;

pub use read::{LogQuery, MAX_LIMIT, TraceQuery};
pub use retention::Deleted;

/// The database's file name inside the store's folder.
pub const DB_FILE: &str = "telemetry.db";
/// Reading connections kept open for reuse.
const MAX_IDLE_READERS: usize = 4;
/// How often the checkpointer copies the write-ahead log into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// Log frames (pages) past which the checkpointer restarts the log: 32 MiB.
const RESTART_FRAMES: i64 = 8_192;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused.
    #[error("telemetry store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file system refused.
    #[error("telemetry store: {0}")]
    Io(#[from] std::io::Error),
    /// The file is not a sound database.
    #[error("telemetry store is damaged: {0}")]
    Damaged(String),
    /// A newer Conway wrote the file.
    #[error("telemetry store has schema version {0}, unknown to this version of conway")]
    UnknownVersion(i64),
}

impl StoreError {
    /// Whether the error means the file itself is damaged.
    fn is_damage(&self) -> bool {
        match self {
            Self::Damaged(_) => true,
            Self::Sqlite(rusqlite::Error::SqliteFailure(error, _)) => matches!(
                error.code,
                rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
            ),
            _ => false,
        }
    }
}

/// What opening the store found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// A damaged file that was moved aside, if any.
    pub damaged: Option<Damaged>,
}

/// A damaged file moved aside at start-up, and what could be kept of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damaged {
    /// Where the damaged file is now.
    pub moved_to: PathBuf,
    /// What SQLite said was wrong.
    pub error: String,
    /// Spans copied from it into the fresh store.
    pub salvaged_spans: u64,
    /// Log records copied from it into the fresh store.
    pub salvaged_logs: u64,
}

/// The store's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreSize {
    /// Bytes of the pages in use (what `max_size` bounds).
    pub used: u64,
    /// Bytes of the database file, free pages included (the write-ahead log aside).
    pub file: u64,
}

/// The store.
#[derive(Debug)]
pub struct Store {
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    path: Option<PathBuf>,
    _checkpointer: Option<Checkpointer>,
}

/// A thread that checkpoints the write-ahead log (`PASSIVE`: it waits for no reader or
/// writer) every [`CHECKPOINT_EVERY`], so the sync to disk is off the writer's path.
/// Stopped and joined when the store is dropped.
#[derive(Debug)]
struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path) -> Result<Self, StoreError> {
        let conn = schema::open_reader(path)?;
        conn.pragma_update(None, "query_only", false)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("telemetry-checkpoint".to_owned())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    std::thread::park_timeout(CHECKPOINT_EVERY);
                    // PASSIVE copies what it can without waiting; a busy writer keeps
                    // the log from restarting, so once it is long, RESTART (which
                    // waits for the writer's current transaction, then makes the next
                    // one start the log over) keeps it bounded.
                    let frames = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                        row.get::<_, i64>(1)
                    });
                    let restart = match frames {
                        Ok(frames) => frames > RESTART_FRAMES,
                        Err(error) => {
                            tracing::debug!(%error, "telemetry checkpoint failed");
                            false
                        }
                    };
                    if restart
                        && let Err(error) =
                            conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
                    {
                        tracing::debug!(%error, "telemetry checkpoint failed");
                    }
                }
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl Store {
    /// Opens (or creates) the store in the folder `dir`, moving a damaged file aside.
    pub fn open(dir: &Path) -> Result<(Self, OpenReport), StoreError> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(DB_FILE);
        match Self::open_file(&path) {
            Ok(store) => Ok((store, OpenReport::default())),
            Err(error) if error.is_damage() => {
                let moved_to = move_aside(&path)?;
                tracing::error!(
                    %error,
                    moved_to = %moved_to.display(),
                    "the telemetry store is damaged: moved it aside and started a fresh one"
                );
                let store = Self::open_file(&path)?;
                let (salvaged_spans, salvaged_logs) = store.salvage(&moved_to);
                Ok((
                    store,
                    OpenReport {
                        damaged: Some(Damaged {
                            moved_to,
                            error: error.to_string(),
                            salvaged_spans,
                            salvaged_logs,
                        }),
                    },
                ))
            }
            Err(error) => Err(error),
        }
    }

    fn open_file(path: &Path) -> Result<Self, StoreError> {
        let writer = schema::open_writer(Some(path))?;
        schema::check(&writer)?;
        Ok(Self {
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            path: Some(path.to_owned()),
            _checkpointer: Some(Checkpointer::start(path)?),
        })
    }

    /// A store in memory only (tests, benchmarks, `conway server --in-memory`).
    pub fn in_memory() -> Result<Self, StoreError> {
        Ok(Self {
            writer: Mutex::new(schema::open_writer(None)?),
            readers: Mutex::new(Vec::new()),
            path: None,
            _checkpointer: None,
        })
    }

    /// The database file, for a store on disk.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Runs `f` on a reading connection (the writer's, for a store in memory).
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let Some(path) = &self.path else {
            return f(&self.writer.lock());
        };
        let idle = self.readers.lock().pop();
        let conn = match idle {
            Some(conn) => conn,
            None => schema::open_reader(path)?,
        };
        let result = f(&conn);
        let mut readers = self.readers.lock();
        if readers.len() < MAX_IDLE_READERS {
            readers.push(conn);
        }
        result
    }

    /// The store's size now.
    pub fn size(&self) -> Result<StoreSize, StoreError> {
        self.read(|conn| {
            let page_size: u64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            let pages: u64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            let free: u64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
            Ok(StoreSize {
                used: (pages - free.min(pages)) * page_size,
                file: pages * page_size,
            })
        })
    }

    /// Copies what SQLite can still read of the damaged database at `damaged` into this
    /// one, table by table; a table that cannot be read whole is skipped. Returns the
    /// spans and log records copied.
    fn salvage(&self, damaged: &Path) -> (u64, u64) {
        let conn = self.writer.lock();
        let attached = conn.execute(
            "ATTACH DATABASE ?1 AS damaged",
            [damaged.display().to_string()],
        );
        if let Err(error) = attached {
            tracing::warn!(%error, "nothing could be salvaged from the damaged telemetry store");
            return (0, 0);
        }
        let copy = |table: &str, columns: &str| -> u64 {
            let sql = format!(
                "INSERT INTO main.{table} ({columns}) SELECT {columns} FROM damaged.{table}"
            );
            match conn.execute(&sql, []) {
                Ok(rows) => rows as u64,
                Err(error) => {
                    tracing::warn!(%error, table, "could not salvage this table");
                    0
                }
            }
        };
        let spans = copy(
            "spans",
            "trace_id, span_id, parent_id, service, operation, kind, start_us, duration_us, status, status_message, attributes",
        );
        let logs = copy(
            "logs",
            "time_us, service, instance, level, body, trace_id, span_id, attributes",
        );
        if spans > 0
            && let Err(error) = write::rebuild_traces(&conn)
        {
            tracing::warn!(%error, "could not rebuild trace summaries of the salvaged spans");
        }
        let _ = conn.execute("DETACH DATABASE damaged", []);
        tracing::info!(spans, logs, "salvaged from the damaged telemetry store");
        (spans, logs)
    }
}

/// Renames the database (and its write-ahead log and shared-memory file) to
/// `telemetry.db.damaged-UNIXTIME`; returns the new path.
fn move_aside(path: &Path) -> Result<PathBuf, StoreError> {
    let stamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut moved_to = path.with_file_name(format!("{DB_FILE}.damaged-{stamp}"));
    let mut n = 1;
    while moved_to.exists() {
        moved_to = path.with_file_name(format!("{DB_FILE}.damaged-{stamp}-{n}"));
        n += 1;
    }
    std::fs::rename(path, &moved_to)?;
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", path.display()));
        if side.exists() {
            let target = PathBuf::from(format!("{}{suffix}", moved_to.display()));
            std::fs::rename(&side, &target)?;
        }
    }
    Ok(moved_to)
}
