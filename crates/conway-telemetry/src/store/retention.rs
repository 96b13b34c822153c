//! Retention: records older than the retention period go; while the store is over its
//! size, the oldest records go. Deletes run in small transactions so ingest goes on
//! between them, and free pages are handed back to the file system afterwards.

use super::{Store, StoreError};

/// Rows deleted per transaction.
const CHUNK: usize = 5_000;
/// Size passes before giving up (each deletes the oldest share of what is stored).
const MAX_SIZE_PASSES: usize = 20;

/// What a retention pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    /// Spans.
    pub spans: u64,
    /// Log records.
    pub logs: u64,
}

impl Deleted {
    fn add(&mut self, other: Deleted) {
        self.spans += other.spans;
        self.logs += other.logs;
    }
}

impl Store {
    /// Deletes spans that started, and log records written, before `cutoff_us`
    /// (microseconds since the Unix epoch), with their trace summaries.
    pub fn delete_before(&self, cutoff_us: i64) -> Result<Deleted, StoreError> {
        let spans = self.delete_chunked(
            "DELETE FROM spans WHERE id IN (SELECT id FROM spans WHERE start_us < ?1 LIMIT ?2)",
            cutoff_us,
        )?;
        self.delete_chunked(
            "DELETE FROM traces WHERE trace_id IN \
             (SELECT trace_id FROM traces WHERE end_us < ?1 LIMIT ?2)",
            cutoff_us,
        )?;
        let logs = self.delete_chunked(
            "DELETE FROM logs WHERE id IN (SELECT id FROM logs WHERE time_us < ?1 LIMIT ?2)",
            cutoff_us,
        )?;
        if spans + logs > 0 {
            self.reclaim()?;
        }
        Ok(Deleted { spans, logs })
    }

    fn delete_chunked(&self, sql: &str, cutoff_us: i64) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let deleted = {
                let conn = self.writer.lock();
                let mut statement = conn.prepare_cached(sql)?;
                statement.execute(rusqlite::params![cutoff_us, CHUNK as i64])?
            };
            total += deleted as u64;
            if deleted < CHUNK {
                return Ok(total);
            }
        }
    }

    /// Hands free pages back to the file system.
    fn reclaim(&self) -> Result<(), StoreError> {
        let conn = self.writer.lock();
        conn.execute_batch("PRAGMA incremental_vacuum")?;
        Ok(())
    }

    /// While the pages in use exceed `max_bytes`, deletes the oldest records: each pass
    /// removes the oldest share of the stored time range (by the share the store is
    /// over 90% of the limit), spans and logs alike.
    pub fn enforce_size(&self, max_bytes: u64) -> Result<Deleted, StoreError> {
        let mut total = Deleted::default();
        for _ in 0..MAX_SIZE_PASSES {
            let used = self.size()?.used;
            if used <= max_bytes {
                break;
            }
            let Some((oldest, newest)) = self.time_range()? else {
                break;
            };
            let target = max_bytes as f64 * 0.9;
            let share = ((used as f64 - target) / used as f64).clamp(0.01, 1.0);
            let span = (newest - oldest).max(0) as f64;
            let cutoff = oldest + (span * share) as i64 + 1;
            let deleted = self.delete_before(cutoff)?;
            total.add(deleted);
            if deleted == Deleted::default() {
                break;
            }
        }
        Ok(total)
    }

    /// The oldest and newest times stored, spans and logs together.
    fn time_range(&self) -> Result<Option<(i64, i64)>, StoreError> {
        let conn = self.writer.lock();
        // One aggregate per query: SQLite answers a lone min() or max() from the index.
        let one = |sql: &str| -> Result<Option<i64>, StoreError> {
            Ok(conn.query_row(sql, [], |r| r.get(0))?)
        };
        let span_min = one("SELECT min(start_us) FROM spans")?;
        let span_max = one("SELECT max(start_us) FROM spans")?;
        let log_min = one("SELECT min(time_us) FROM logs")?;
        let log_max = one("SELECT max(time_us) FROM logs")?;
        let oldest = [span_min, log_min].into_iter().flatten().min();
        let newest = [span_max, log_max].into_iter().flatten().max();
        Ok(oldest.zip(newest))
    }
}
