//! The store's tables, indexes and connection settings.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::StoreError;

/// The schema version this code writes, kept in `PRAGMA user_version`.
pub(super) const SCHEMA_VERSION: i64 = 1;

/// How long a connection waits for another's lock.
const BUSY_TIMEOUT_MS: i64 = 5_000;

/// Spans, one row each; `traces`, one summary row per trace, kept by the writer so a
/// search lists traces without grouping spans; logs, one row each. Times are
/// microseconds since the Unix epoch; ids are raw bytes.
const SCHEMA: &str = "
CREATE TABLE spans (
    id INTEGER PRIMARY KEY,
    trace_id BLOB NOT NULL,
    span_id BLOB NOT NULL,
    parent_id BLOB,
    service TEXT NOT NULL,
    operation TEXT NOT NULL,
    kind INTEGER NOT NULL,
    start_us INTEGER NOT NULL,
    duration_us INTEGER NOT NULL,
    status INTEGER NOT NULL,
    status_message TEXT,
    attributes TEXT NOT NULL
);
CREATE INDEX spans_by_trace ON spans (trace_id);
CREATE INDEX spans_by_service ON spans (service, start_us);
CREATE INDEX spans_by_start ON spans (start_us);

CREATE TABLE traces (
    trace_id BLOB PRIMARY KEY,
    start_us INTEGER NOT NULL,
    end_us INTEGER NOT NULL,
    duration_us INTEGER NOT NULL,
    spans INTEGER NOT NULL,
    error INTEGER NOT NULL,
    root_service TEXT NOT NULL,
    root_operation TEXT NOT NULL,
    root_found INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX traces_by_start ON traces (start_us);
CREATE INDEX traces_by_status ON traces (error, start_us);
CREATE INDEX traces_by_duration ON traces (duration_us);

CREATE TABLE logs (
    id INTEGER PRIMARY KEY,
    time_us INTEGER NOT NULL,
    service TEXT NOT NULL,
    instance TEXT,
    level INTEGER NOT NULL,
    body TEXT NOT NULL,
    trace_id BLOB,
    span_id BLOB,
    attributes TEXT NOT NULL
);
CREATE INDEX logs_by_time ON logs (time_us);
CREATE INDEX logs_by_service ON logs (service, time_us);
CREATE INDEX logs_by_trace ON logs (trace_id) WHERE trace_id IS NOT NULL;
";

/// Opens (creating if needed) the writer's connection to `path`, or to a private
/// in-memory database. A file database is in WAL mode with `synchronous = NORMAL`:
/// a crash of the process loses nothing committed; a power cut may lose the last
/// commits, which telemetry can afford.
pub(super) fn open_writer(path: Option<&Path>) -> Result<Connection, StoreError> {
    let conn = match path {
        Some(path) => {
            let conn = Connection::open(path)?;
            // Must precede the first table; ignored on an existing database.
            conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
            let mode: String =
                conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Damaged(format!(
                    "{} refused WAL mode (journal mode {mode})",
                    path.display()
                )));
            }
            // The store's checkpointer thread copies the log into the database (and
            // syncs it) off the writer's path; the writer checkpoints itself only as a
            // backstop, past 65,536 pages (256 MiB) of log.
            conn.pragma_update(None, "wal_autocheckpoint", 65_536)?;
            conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
            conn
        }
        None => {
            let conn = Connection::open_in_memory()?;
            conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
            conn
        }
    };
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "busy_timeout", BUSY_TIMEOUT_MS)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // 64 MiB of page cache: the trace-id index of a million spans stays in memory.
    conn.pragma_update(None, "cache_size", -65_536)?;
    migrate(&conn)?;
    Ok(conn)
}

/// A connection that only reads the file database at `path`; with WAL it reads the
/// last commit while the writer goes on.
pub(super) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.pragma_update(None, "busy_timeout", BUSY_TIMEOUT_MS)?;
    conn.pragma_update(None, "query_only", true)?;
    conn.pragma_update(None, "cache_size", -16_384)?;
    Ok(conn)
}

/// Creates the schema in a new database; refuses one written by an unknown version.
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let tx = conn.unchecked_transaction()?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    match version {
        0 => {
            tx.execute_batch(SCHEMA)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        SCHEMA_VERSION => {}
        other => {
            return Err(StoreError::UnknownVersion(other));
        }
    }
    tx.commit()?;
    Ok(())
}

/// SQLite's own consistency check of every page; `Damaged` with its first finding.
pub(super) fn check(conn: &Connection) -> Result<(), StoreError> {
    let finding: String = conn.query_row("PRAGMA quick_check(1)", [], |row| row.get(0))?;
    if finding.eq_ignore_ascii_case("ok") {
        Ok(())
    } else {
        Err(StoreError::Damaged(finding))
    }
}
