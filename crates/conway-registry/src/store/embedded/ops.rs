//! The writes, as steps of one SQLite transaction.
//!
//! A [`Tx`] is a batch's transaction: each write runs in a savepoint, so one that fails
//! (a missing lease, a value SQLite refuses) is undone alone and the batch goes on.

use std::time::Duration;

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};

use super::schema::{self, Meta};
use crate::store::{
    CasOutcome, Event, EventKind, KeyValue, Lease, LeaseId, MAX_LEASE_TTL, Revision, StoreError,
};

/// `events.kind` of a put.
const PUT: i64 = 0;
/// `events.kind` of a delete.
const DELETE: i64 = 1;

/// A lease change to mirror in memory once the transaction commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LeaseChange {
    /// A lease was granted.
    Granted(Lease),
    /// A lease was revoked.
    Revoked(LeaseId),
}

/// The open transaction of one batch, and what it changed so far.
pub(super) struct Tx<'c> {
    conn: &'c Connection,
    /// The counters as the transaction has them.
    pub(super) meta: Meta,
    /// The events of the writes so far, in revision order.
    pub(super) events: Vec<Event>,
    /// The lease grants and revocations so far.
    pub(super) lease_changes: Vec<LeaseChange>,
    /// A failure that dooms the whole transaction.
    pub(super) fatal: Option<StoreError>,
}

impl<'c> Tx<'c> {
    /// Begins the transaction of a batch.
    pub(super) fn begin(conn: &'c Connection, meta: Meta) -> Self {
        let fatal = conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut stmt| stmt.execute([]))
            .err()
            .map(StoreError::from);
        Self {
            conn,
            meta,
            events: Vec::new(),
            lease_changes: Vec::new(),
            fatal,
        }
    }

    /// Drops history older than the last `keep` revisions, saves the counters, and
    /// commits.
    pub(super) fn commit(&mut self, keep: Revision, before: Meta) -> Result<(), StoreError> {
        if let Some(error) = self.fatal.take() {
            return Err(error);
        }
        let floor = self.meta.revision.saturating_sub(keep);
        if floor > self.meta.compacted {
            self.exec("DELETE FROM events WHERE revision <= ?1", params![floor])?;
            self.meta.compacted = floor;
        }
        if self.meta != before {
            self.exec(
                "UPDATE meta SET revision = ?1, compacted = ?2, lease_seq = ?3 WHERE id = 0",
                params![self.meta.revision, self.meta.compacted, self.meta.lease_seq],
            )?;
        }
        self.exec("COMMIT", [])?;
        Ok(())
    }

    /// Undoes the whole transaction.
    pub(super) fn rollback(&mut self) {
        if let Err(error) = self.exec("ROLLBACK", []) {
            tracing::debug!(%error, "rollback after a failed batch");
        }
    }

    /// Runs one write in a savepoint: all of it, or nothing of it.
    pub(super) fn atomically<T>(
        &mut self,
        write: impl FnOnce(&mut Self) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if let Some(error) = &self.fatal {
            return Err(error.clone());
        }
        let (meta, events, changes) = (self.meta, self.events.len(), self.lease_changes.len());
        if let Err(error) = self.exec("SAVEPOINT write", []) {
            self.fatal = Some(error.clone());
            return Err(error);
        }
        let result = write(self);
        let end = if result.is_ok() {
            self.exec("RELEASE write", [])
        } else {
            self.meta = meta;
            self.events.truncate(events);
            self.lease_changes.truncate(changes);
            self.exec("ROLLBACK TO write", [])
                .and_then(|_| self.exec("RELEASE write", []))
        };
        if let Err(error) = end {
            self.fatal = Some(error.clone());
            return Err(error);
        }
        result
    }

    /// Sets `key`; see [`Store::put`](crate::store::Store::put).
    pub(super) fn put(
        &mut self,
        key: &str,
        value: &Bytes,
        lease: Option<LeaseId>,
    ) -> Result<Revision, StoreError> {
        if let Some(lease) = lease {
            self.require_lease(lease)?;
        }
        let revision = self.next_revision()?;
        let previous: Option<(Revision, i64)> = self
            .conn
            .prepare_cached("SELECT create_revision, version FROM kv WHERE key = ?1")?
            .query_row([key.as_bytes()], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        let (create_revision, version) = match previous {
            Some((created, version)) => (created, version.saturating_add(1)),
            None => (revision, 1),
        };
        let lease_column = lease.map(|lease| lease.0);
        self.exec(
            "INSERT INTO kv (key, value, create_revision, mod_revision, version, lease) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
             mod_revision = excluded.mod_revision, version = excluded.version, \
             lease = excluded.lease",
            params![
                key.as_bytes(),
                &value[..],
                create_revision,
                revision,
                version,
                lease_column
            ],
        )?;
        self.exec(
            "INSERT INTO events (revision, seq, kind, key, value, create_revision, version, lease) \
             VALUES (?1, 0, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                revision,
                PUT,
                key.as_bytes(),
                &value[..],
                create_revision,
                version,
                lease_column
            ],
        )?;
        self.meta.revision = revision;
        self.events.push(Event {
            revision,
            kind: EventKind::Put(KeyValue {
                key: key.to_owned(),
                value: value.clone(),
                create_revision,
                mod_revision: revision,
                version,
                lease,
            }),
        });
        Ok(revision)
    }

    /// Sets `key` if its modification revision is `expected` (0: if it does not exist).
    pub(super) fn compare_and_set(
        &mut self,
        key: &str,
        expected: Revision,
        value: &Bytes,
        lease: Option<LeaseId>,
    ) -> Result<CasOutcome, StoreError> {
        let current = schema::get(self.conn, key)?;
        let actual = current.as_ref().map_or(0, |kv| kv.mod_revision);
        if actual != expected {
            return Ok(CasOutcome::Conflict { current });
        }
        self.put(key, value, lease).map(CasOutcome::Written)
    }

    /// Deletes `key`; `None` if it did not exist.
    pub(super) fn delete(&mut self, key: &str) -> Result<Option<Revision>, StoreError> {
        let revision = self.next_revision()?;
        if self.exec("DELETE FROM kv WHERE key = ?1", [key.as_bytes()])? == 0 {
            return Ok(None);
        }
        self.record_deletes(revision, [key.to_owned()])?;
        Ok(Some(revision))
    }

    /// Grants a lease with `id`, or the next id the store has not used.
    pub(super) fn grant(
        &mut self,
        ttl: Duration,
        id: Option<LeaseId>,
    ) -> Result<Lease, StoreError> {
        if ttl.is_zero() || ttl > MAX_LEASE_TTL {
            return Err(StoreError::InvalidArgument(format!(
                "lease TTL {ttl:?} is not within (0, {MAX_LEASE_TTL:?}]"
            )));
        }
        let ttl_ms = i64::try_from(ttl.as_nanos().div_ceil(1_000_000))
            .map_err(|_| StoreError::InvalidArgument(format!("lease TTL {ttl:?} is too long")))?;
        let id = match id {
            Some(LeaseId(0)) => {
                return Err(StoreError::InvalidArgument(
                    "lease id 0 means no lease".into(),
                ));
            }
            Some(id) if self.lease_exists(id)? => return Err(StoreError::LeaseExists(id)),
            Some(id) => id,
            None => self.next_lease_id()?,
        };
        self.exec(
            "INSERT INTO leases (id, ttl_ms) VALUES (?1, ?2)",
            params![id.0, ttl_ms],
        )?;
        let lease = Lease {
            id,
            ttl: Duration::from_millis(ttl_ms.unsigned_abs()),
        };
        self.lease_changes.push(LeaseChange::Granted(lease));
        Ok(lease)
    }

    /// Revokes a lease and deletes its keys, all at one revision (none if it had no key).
    pub(super) fn revoke(&mut self, id: LeaseId) -> Result<Revision, StoreError> {
        self.require_lease(id)?;
        let keys: Vec<String> = self
            .conn
            .prepare_cached("SELECT key FROM kv WHERE lease = ?1 ORDER BY key")?
            .query_map([id.0], |row| schema::key_text(row, 0))?
            .collect::<Result<_, _>>()?;
        if !keys.is_empty() {
            let revision = self.next_revision()?;
            self.exec("DELETE FROM kv WHERE lease = ?1", [id.0])?;
            self.record_deletes(revision, keys)?;
        }
        self.exec("DELETE FROM leases WHERE id = ?1", [id.0])?;
        self.lease_changes.push(LeaseChange::Revoked(id));
        Ok(self.meta.revision)
    }

    /// Records the deletion of `keys` at `revision` in history.
    fn record_deletes(
        &mut self,
        revision: Revision,
        keys: impl IntoIterator<Item = String>,
    ) -> Result<(), StoreError> {
        for (seq, key) in (0_i64..).zip(keys) {
            self.exec(
                "INSERT INTO events (revision, seq, kind, key) VALUES (?1, ?2, ?3, ?4)",
                params![revision, seq, DELETE, key.as_bytes()],
            )?;
            self.events.push(Event {
                revision,
                kind: EventKind::Delete { key },
            });
        }
        self.meta.revision = revision;
        Ok(())
    }

    fn next_revision(&self) -> Result<Revision, StoreError> {
        self.meta
            .revision
            .checked_add(1)
            .ok_or_else(|| StoreError::Corrupt("the revision counter is at its limit".into()))
    }

    fn next_lease_id(&mut self) -> Result<LeaseId, StoreError> {
        loop {
            let seq = self.meta.lease_seq.checked_add(1).ok_or_else(|| {
                StoreError::Corrupt("the lease id counter is at its limit".into())
            })?;
            self.meta.lease_seq = seq;
            if !self.lease_exists(LeaseId(seq))? {
                return Ok(LeaseId(seq));
            }
        }
    }

    fn require_lease(&self, id: LeaseId) -> Result<(), StoreError> {
        if self.lease_exists(id)? {
            Ok(())
        } else {
            Err(StoreError::LeaseNotFound(id))
        }
    }

    fn lease_exists(&self, id: LeaseId) -> Result<bool, StoreError> {
        let found = self
            .conn
            .prepare_cached("SELECT 1 FROM leases WHERE id = ?1")?
            .query_row([id.0], |_| Ok(()))
            .optional()?;
        Ok(found.is_some())
    }

    /// Runs one cached statement; the number of rows it changed.
    fn exec(&self, sql: &str, params: impl rusqlite::Params) -> Result<usize, StoreError> {
        Ok(self.conn.prepare_cached(sql)?.execute(params)?)
    }
}
