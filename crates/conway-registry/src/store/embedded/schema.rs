//! The SQLite schema, connections, and the queries that only read.
//!
//! Keys are stored as BLOBs of their UTF-8 bytes, so that SQLite orders them as etcd
//! does (byte order) and a prefix is a range `[prefix, prefix_end(prefix))`.

use std::fs::{File, TryLockError};
use std::path::Path;
use std::time::Duration;

use rusqlite::types::Type;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};

use crate::store::{Event, EventKind, KeyValue, Lease, LeaseId, Revision, Snapshot, StoreError};

/// The database's file name inside the data folder.
pub(super) const DB_FILE: &str = "registry.sqlite3";

/// The lock file that keeps a second store (another process) out of the data folder.
const LOCK_FILE: &str = "registry.lock";

/// How long opening waits for the folder's lock: a store just dropped may still be
/// finishing its last commit.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// How often opening tries the folder's lock while it waits.
const LOCK_POLL: Duration = Duration::from_millis(10);

/// The schema version this code writes, kept in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;

/// How long a connection waits for a lock (a checkpoint, a second process) before failing.
const BUSY_TIMEOUT_MS: i64 = 5_000;

const SCHEMA: &str = "
CREATE TABLE meta (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    revision INTEGER NOT NULL,   -- the store revision
    compacted INTEGER NOT NULL,  -- history holds the revisions after this one
    lease_seq INTEGER NOT NULL   -- the last lease id the store chose
);
INSERT INTO meta (id, revision, compacted, lease_seq) VALUES (0, 0, 0, 0);
CREATE TABLE kv (
    key BLOB PRIMARY KEY,
    value BLOB NOT NULL,
    create_revision INTEGER NOT NULL,
    mod_revision INTEGER NOT NULL,
    version INTEGER NOT NULL,
    lease INTEGER
);
CREATE INDEX kv_by_lease ON kv (lease);
CREATE TABLE leases (
    id INTEGER PRIMARY KEY,
    ttl_ms INTEGER NOT NULL
);
-- The history that watches replay: one row per changed key, `kind` 0 put, 1 delete.
CREATE TABLE events (
    revision INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    key BLOB NOT NULL,
    value BLOB,
    create_revision INTEGER,
    version INTEGER,
    lease INTEGER,
    PRIMARY KEY (revision, seq)
);
";

const KV_COLUMNS: &str = "key, value, create_revision, mod_revision, version, lease";
const EVENT_COLUMNS: &str = "revision, kind, key, value, create_revision, version, lease";

/// The counters kept in the `meta` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Meta {
    /// The store revision.
    pub(super) revision: Revision,
    /// History holds the events of the revisions after this one.
    pub(super) compacted: Revision,
    /// The last lease id the store chose.
    pub(super) lease_seq: i64,
}

/// The connections of an opened database.
pub(super) struct Opened {
    /// The writer's connection.
    pub(super) writer: Connection,
    /// A reading connection, for a file database.
    pub(super) reader: Option<Connection>,
    /// The data folder's lock, for a file database.
    pub(super) lock: Option<File>,
}

/// Opens (or creates) the database in the folder `dir` (created if missing), once no
/// other store holds the folder.
pub(super) fn open_folder(dir: &Path) -> Result<Opened, StoreError> {
    std::fs::create_dir_all(dir)?;
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))?;
    let mut waited = Duration::ZERO;
    loop {
        match lock.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) if waited < LOCK_WAIT => {
                std::thread::sleep(LOCK_POLL);
                waited += LOCK_POLL;
            }
            Err(TryLockError::WouldBlock) => {
                return Err(StoreError::FolderInUse(dir.display().to_string()));
            }
            Err(TryLockError::Error(error)) => return Err(error.into()),
        }
    }
    let path = dir.join(DB_FILE);
    let writer = open_writer(Some(&path))?;
    Ok(Opened {
        reader: Some(open_reader(&path)?),
        writer,
        lock: Some(lock),
    })
}

/// Opens (creating if needed) the writer's connection: to `path`, or to a private
/// in-memory database. A file database is in WAL mode with `synchronous = FULL`, so a
/// commit is on disk before it returns.
pub(super) fn open_writer(path: Option<&Path>) -> Result<Connection, StoreError> {
    let conn = match path {
        Some(path) => {
            let conn = Connection::open(path)?;
            let mode: String =
                conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Corrupt(format!(
                    "{} refused WAL mode (journal mode {mode})",
                    path.display()
                )));
            }
            conn
        }
        None => Connection::open_in_memory()?,
    };
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "busy_timeout", BUSY_TIMEOUT_MS)?;
    migrate(&conn)?;
    Ok(conn)
}

/// Opens a connection that only reads the file database at `path`; with WAL it reads
/// the last commit while the writer goes on.
pub(super) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.pragma_update(None, "busy_timeout", BUSY_TIMEOUT_MS)?;
    conn.pragma_update(None, "query_only", true)?;
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
            return Err(StoreError::Corrupt(format!(
                "unknown schema version {other} (this program knows {SCHEMA_VERSION})"
            )));
        }
    }
    tx.commit()?;
    Ok(())
}

/// The counters of the `meta` row.
pub(super) fn load_meta(conn: &Connection) -> Result<Meta, StoreError> {
    let meta = conn
        .prepare_cached("SELECT revision, compacted, lease_seq FROM meta WHERE id = 0")?
        .query_row([], |row| {
            Ok(Meta {
                revision: row.get(0)?,
                compacted: row.get(1)?,
                lease_seq: row.get(2)?,
            })
        })?;
    Ok(meta)
}

/// Every granted lease, with its full TTL.
pub(super) fn load_leases(conn: &Connection) -> Result<Vec<Lease>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT id, ttl_ms FROM leases")?;
    let leases = stmt
        .query_map([], |row| {
            let ttl_ms: i64 = row.get(1)?;
            Ok(Lease {
                id: LeaseId(row.get(0)?),
                ttl: Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0)),
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(leases)
}

/// The key `key`, if it exists.
pub(super) fn get(conn: &Connection, key: &str) -> Result<Option<KeyValue>, StoreError> {
    let kv = conn
        .prepare_cached(&format!("SELECT {KV_COLUMNS} FROM kv WHERE key = ?1"))?
        .query_row([key.as_bytes()], key_value)
        .optional()?;
    Ok(kv)
}

/// Every key under `prefix`, and the revision the read was consistent at.
pub(super) fn range(conn: &Connection, prefix: &str) -> Result<Snapshot, StoreError> {
    let tx = conn.unchecked_transaction()?;
    let revision = load_meta(&tx)?.revision;
    let kvs = match prefix_end(prefix.as_bytes()) {
        Some(end) => tx
            .prepare_cached(&format!(
                "SELECT {KV_COLUMNS} FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key"
            ))?
            .query_map(params![prefix.as_bytes(), end], key_value)?
            .collect::<Result<_, _>>()?,
        None => tx
            .prepare_cached(&format!("SELECT {KV_COLUMNS} FROM kv ORDER BY key"))?
            .query_map([], key_value)?
            .collect::<Result<_, _>>()?,
    };
    Ok(Snapshot { kvs, revision })
}

/// The events of revisions `first..=last` under `prefix`, in order; fails with
/// [`StoreError::Compacted`] if history no longer reaches `first`.
pub(super) fn history(
    conn: &Connection,
    prefix: &str,
    first: Revision,
    last: Revision,
) -> Result<Vec<Event>, StoreError> {
    let tx = conn.unchecked_transaction()?;
    let compacted = load_meta(&tx)?.compacted;
    if first <= compacted {
        return Err(StoreError::Compacted {
            requested: first,
            compacted,
        });
    }
    let events = match prefix_end(prefix.as_bytes()) {
        Some(end) => tx
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE revision BETWEEN ?1 AND ?2 \
                 AND key >= ?3 AND key < ?4 ORDER BY revision, seq"
            ))?
            .query_map(params![first, last, prefix.as_bytes(), end], event)?
            .collect::<Result<_, _>>()?,
        None => tx
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE revision BETWEEN ?1 AND ?2 \
                 ORDER BY revision, seq"
            ))?
            .query_map(params![first, last], event)?
            .collect::<Result<_, _>>()?,
    };
    Ok(events)
}

/// The smallest byte string greater than every string starting with `prefix`, or `None`
/// when there is none (an empty prefix, or one of only `0xFF` bytes): the range is then
/// open-ended.
pub(super) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let last = prefix.iter().rposition(|&byte| byte != u8::MAX)?;
    let mut end = prefix[..=last].to_vec();
    end[last] += 1;
    Some(end)
}

/// Decodes a key stored as a BLOB.
pub(super) fn key_text(row: &Row<'_>, index: usize) -> rusqlite::Result<String> {
    String::from_utf8(row.get(index)?)
        .map_err(|error| rusqlite::Error::FromSqlConversionFailure(index, Type::Blob, error.into()))
}

/// A row of [`KV_COLUMNS`].
fn key_value(row: &Row<'_>) -> rusqlite::Result<KeyValue> {
    Ok(KeyValue {
        key: key_text(row, 0)?,
        value: row.get::<_, Vec<u8>>(1)?.into(),
        create_revision: row.get(2)?,
        mod_revision: row.get(3)?,
        version: row.get(4)?,
        lease: row.get::<_, Option<i64>>(5)?.map(LeaseId),
    })
}

/// A row of [`EVENT_COLUMNS`].
fn event(row: &Row<'_>) -> rusqlite::Result<Event> {
    let revision = row.get(0)?;
    let key = key_text(row, 2)?;
    let kind = match row.get::<_, i64>(1)? {
        0 => EventKind::Put(KeyValue {
            key,
            value: row.get::<_, Vec<u8>>(3)?.into(),
            create_revision: row.get(4)?,
            mod_revision: revision,
            version: row.get(5)?,
            lease: row.get::<_, Option<i64>>(6)?.map(LeaseId),
        }),
        1 => EventKind::Delete { key },
        other => {
            return Err(rusqlite::Error::IntegralValueOutOfRange(1, other));
        }
    };
    Ok(Event { revision, kind })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte_below_0xff() {
        assert_eq!(prefix_end(b"a/"), Some(b"a0".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn a_new_database_starts_empty_at_revision_zero() -> Result<(), StoreError> {
        let conn = open_writer(None)?;
        let meta = load_meta(&conn)?;
        assert_eq!((meta.revision, meta.compacted, meta.lease_seq), (0, 0, 0));
        assert_eq!(range(&conn, "")?.kvs, []);
        Ok(())
    }

    #[test]
    fn reopening_keeps_the_schema_and_refuses_an_unknown_version() -> Result<(), StoreError> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(DB_FILE);
        drop(open_writer(Some(&path))?);
        let conn = open_writer(Some(&path))?;
        assert_eq!(load_meta(&conn)?.revision, 0);
        conn.pragma_update(None, "user_version", 99)?;
        drop(conn);
        match open_writer(Some(&path)) {
            Err(StoreError::Corrupt(message)) => assert!(message.contains("99"), "{message}"),
            other => panic!("expected Corrupt, got {other:?}"),
        }
        Ok(())
    }

    #[test]
    fn a_key_that_is_not_utf8_is_an_error_not_a_panic() -> Result<(), StoreError> {
        let conn = open_writer(None)?;
        conn.execute(
            "INSERT INTO kv VALUES (?1, x'00', 1, 1, 1, NULL)",
            [&b"\xff\xfe"[..]],
        )?;
        assert!(matches!(range(&conn, ""), Err(StoreError::Backend(_))));
        Ok(())
    }
}
