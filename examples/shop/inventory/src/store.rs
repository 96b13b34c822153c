//! Inventory's store: redb, an embedded key-value store, in `DATA_DIR/inventory.redb`.
//!
//! Both replicas open the same file in redb's `MultiWriter` mode (redb 4.5 and later):
//! any number of processes read and write it, one write transaction at a time, the
//! writer lock being a byte-range lock on the file that the kernel releases when its
//! process dies. Every operation below is one transaction, so a replica killed at any
//! point leaves either all of an operation or none of it.
//!
//! Tables:
//! - `stock`: SKU → units available (on hand, not held by a reservation);
//! - `added`: SKU → units ever put in (seed and restocks), for the audit's balance;
//! - `reservations`: idempotency key → the reservation (JSON);
//! - `expiry`: (expiry time, key) → (), the held reservations in the order they expire.

use std::collections::BTreeMap;
use std::path::Path;

use redb::{ConcurrencyMode, Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

const STOCK: TableDefinition<'_, &str, u64> = TableDefinition::new("stock");
const ADDED: TableDefinition<'_, &str, u64> = TableDefinition::new("added");
const RESERVATIONS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("reservations");
const EXPIRY: TableDefinition<'_, (u64, &str), ()> = TableDefinition::new("expiry");

/// What a fresh inventory holds: plenty of most things, and a limited roast that runs out.
pub(crate) const SEED: &[(&str, u64)] = &[
    ("sku-espresso", 1_000_000),
    ("sku-decaf", 1_000_000),
    ("sku-limited", 40),
    ("sku-sencha", 1_000_000),
    ("sku-grinder", 1_000_000),
    ("sku-kettle", 1_000_000),
    ("sku-dripper", 1_000_000),
    ("sku-scale", 1_000_000),
    ("sku-filters", 1_000_000),
    ("sku-mug", 1_000_000),
];

/// A failure of the store itself (not a business answer).
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("store: {0}")]
    Redb(#[from] redb::Error),
    #[error("a stored reservation is unreadable: {0}")]
    Json(#[from] serde_json::Error),
}

macro_rules! redb_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(error: $t) -> Self {
                Self::Redb(error.into())
            }
        }
    )*};
}
redb_errors!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Units of one SKU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Item {
    pub(crate) sku: String,
    pub(crate) quantity: u64,
}

/// Where a reservation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum State {
    /// Its units are set aside until it expires, is committed or released.
    Held,
    /// Its units are taken for good (the order is confirmed).
    Committed,
    /// Released before commit; its units went back. Also the tombstone of a key
    /// released before any reservation came with it, so a late one is refused.
    Released,
    /// Not committed in time; its units went back.
    Expired,
    /// Refused: not enough stock. Holds nothing.
    Rejected,
}

/// A reservation, by its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Reservation {
    pub(crate) key: String,
    pub(crate) order_id: String,
    pub(crate) items: Vec<Item>,
    pub(crate) state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    pub(crate) expires_at_ms: u64,
    pub(crate) created_at_ms: u64,
    pub(crate) updated_at_ms: u64,
}

/// A SKU's numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Stock {
    pub(crate) sku: String,
    pub(crate) available: u64,
    pub(crate) added: u64,
}

/// Opens (creating and seeding) the store for sharing with the other replicas.
pub(crate) fn open(path: &Path) -> Result<Database, StoreError> {
    let db = Database::builder()
        .set_concurrency_mode(ConcurrencyMode::MultiWriter)
        .create(path)?;
    let tx = db.begin_write()?;
    {
        let mut stock = tx.open_table(STOCK)?;
        let mut added = tx.open_table(ADDED)?;
        tx.open_table(RESERVATIONS)?;
        tx.open_table(EXPIRY)?;
        for (sku, units) in SEED {
            if added.get(*sku)?.is_none() {
                added.insert(*sku, *units)?;
                stock.insert(*sku, *units)?;
            }
        }
    }
    tx.commit()?;
    Ok(db)
}

fn decode(bytes: &[u8]) -> Result<Reservation, StoreError> {
    Ok(serde_json::from_slice(bytes)?)
}

/// The reservation under `key`.
pub(crate) fn get(db: &Database, key: &str) -> Result<Option<Reservation>, StoreError> {
    let tx = db.begin_read()?;
    let table = tx.open_table(RESERVATIONS)?;
    table.get(key)?.map(|v| decode(v.value())).transpose()
}

/// Merges repeated SKUs and drops empty lines.
fn merge(items: &[Item]) -> Vec<Item> {
    let mut merged: BTreeMap<&str, u64> = BTreeMap::new();
    for item in items.iter().filter(|item| item.quantity > 0) {
        *merged.entry(&item.sku).or_default() += item.quantity;
    }
    merged
        .into_iter()
        .map(|(sku, quantity)| Item {
            sku: sku.to_owned(),
            quantity,
        })
        .collect()
}

/// Holds `items` for `order_id` until `now + ttl_ms`, all or nothing. The same key
/// answers with what it got the first time (in its current state), whatever the stock
/// is now; a key already released is refused (`Released`).
pub(crate) fn reserve(
    db: &Database,
    key: &str,
    order_id: &str,
    items: &[Item],
    ttl_ms: u64,
    now: u64,
) -> Result<Reservation, StoreError> {
    let tx = db.begin_write()?;
    let reservation = {
        let mut reservations = tx.open_table(RESERVATIONS)?;
        if let Some(existing) = reservations.get(key)? {
            return decode(existing.value());
        }
        let mut stock = tx.open_table(STOCK)?;
        let items = merge(items);
        let mut short = None;
        for item in &items {
            let available = stock.get(item.sku.as_str())?.map_or(0, |v| v.value());
            if available < item.quantity {
                short = Some(format!(
                    "{}: {} wanted, {available} available",
                    item.sku, item.quantity
                ));
                break;
            }
        }
        let mut reservation = Reservation {
            key: key.to_owned(),
            order_id: order_id.to_owned(),
            items,
            state: State::Held,
            reason: None,
            expires_at_ms: now.saturating_add(ttl_ms),
            created_at_ms: now,
            updated_at_ms: now,
        };
        match short {
            Some(reason) => {
                reservation.state = State::Rejected;
                reservation.reason = Some(format!("out of stock: {reason}"));
            }
            None => {
                for item in &reservation.items {
                    let available = stock.get(item.sku.as_str())?.map_or(0, |v| v.value());
                    stock.insert(item.sku.as_str(), available - item.quantity)?;
                }
                tx.open_table(EXPIRY)?
                    .insert((reservation.expires_at_ms, key), ())?;
            }
        }
        reservations.insert(key, serde_json::to_vec(&reservation)?.as_slice())?;
        reservation
    };
    tx.commit()?;
    Ok(reservation)
}

/// Gives a held reservation's units back and moves it to `state`.
fn give_back(
    tx: &redb::WriteTransaction,
    reservation: &mut Reservation,
    state: State,
    now: u64,
) -> Result<(), StoreError> {
    let mut stock = tx.open_table(STOCK)?;
    for item in &reservation.items {
        let available = stock.get(item.sku.as_str())?.map_or(0, |v| v.value());
        stock.insert(item.sku.as_str(), available + item.quantity)?;
    }
    tx.open_table(EXPIRY)?
        .remove((reservation.expires_at_ms, reservation.key.as_str()))?;
    reservation.state = state;
    reservation.updated_at_ms = now;
    Ok(())
}

/// What a commit or a release found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// Done now, or already done before: the reservation as it stands.
    Done(Reservation),
    /// Not possible from the state it is in (shown).
    Refused(Reservation),
    /// No reservation under the key.
    Unknown,
}

/// Takes a held reservation's units for good. One past its expiry expires instead.
pub(crate) fn commit(db: &Database, key: &str, now: u64) -> Result<Change, StoreError> {
    let tx = db.begin_write()?;
    let change = {
        let mut reservations = tx.open_table(RESERVATIONS)?;
        let Some(mut reservation) = reservations
            .get(key)?
            .map(|v| decode(v.value()))
            .transpose()?
        else {
            return Ok(Change::Unknown);
        };
        match reservation.state {
            State::Committed => return Ok(Change::Done(reservation)),
            State::Held if reservation.expires_at_ms > now => {
                tx.open_table(EXPIRY)?
                    .remove((reservation.expires_at_ms, key))?;
                reservation.state = State::Committed;
                reservation.updated_at_ms = now;
                reservations.insert(key, serde_json::to_vec(&reservation)?.as_slice())?;
                Change::Done(reservation)
            }
            State::Held => {
                give_back(&tx, &mut reservation, State::Expired, now)?;
                reservations.insert(key, serde_json::to_vec(&reservation)?.as_slice())?;
                Change::Refused(reservation)
            }
            State::Released | State::Expired | State::Rejected => {
                return Ok(Change::Refused(reservation));
            }
        }
    };
    tx.commit()?;
    Ok(change)
}

/// Gives a held reservation's units back. Releasing a key no reservation has used yet
/// leaves a tombstone, so a reservation arriving late with it is refused.
pub(crate) fn release(
    db: &Database,
    key: &str,
    order_id: &str,
    now: u64,
) -> Result<Change, StoreError> {
    let tx = db.begin_write()?;
    let change = {
        let mut reservations = tx.open_table(RESERVATIONS)?;
        let existing = reservations
            .get(key)?
            .map(|v| decode(v.value()))
            .transpose()?;
        match existing {
            None => {
                let tombstone = Reservation {
                    key: key.to_owned(),
                    order_id: order_id.to_owned(),
                    items: Vec::new(),
                    state: State::Released,
                    reason: Some("released before it was made".to_owned()),
                    expires_at_ms: now,
                    created_at_ms: now,
                    updated_at_ms: now,
                };
                reservations.insert(key, serde_json::to_vec(&tombstone)?.as_slice())?;
                Change::Done(tombstone)
            }
            Some(mut reservation) => match reservation.state {
                State::Held => {
                    give_back(&tx, &mut reservation, State::Released, now)?;
                    reservations.insert(key, serde_json::to_vec(&reservation)?.as_slice())?;
                    Change::Done(reservation)
                }
                State::Committed => return Ok(Change::Refused(reservation)),
                State::Released | State::Expired | State::Rejected => {
                    return Ok(Change::Done(reservation));
                }
            },
        }
    };
    tx.commit()?;
    Ok(change)
}

/// Expires the held reservations whose time has come; returns how many.
pub(crate) fn expire_due(db: &Database, now: u64) -> Result<usize, StoreError> {
    // A read first: most sweeps find nothing, and need not take the writer lock.
    {
        let tx = db.begin_read()?;
        let expiry = tx.open_table(EXPIRY)?;
        match expiry.first()? {
            Some((first, _)) if first.value().0 <= now => {}
            _ => return Ok(0),
        }
    }
    let tx = db.begin_write()?;
    let mut expired = 0;
    {
        let due: Vec<String> = {
            let expiry = tx.open_table(EXPIRY)?;
            let mut due = Vec::new();
            for entry in expiry.range(..(now.saturating_add(1), ""))? {
                let (key, _) = entry?;
                due.push(key.value().1.to_owned());
            }
            due
        };
        let mut reservations = tx.open_table(RESERVATIONS)?;
        for key in due {
            let found = reservations
                .get(key.as_str())?
                .map(|v| decode(v.value()))
                .transpose()?;
            if let Some(mut reservation) = found
                && reservation.state == State::Held
            {
                give_back(&tx, &mut reservation, State::Expired, now)?;
                reservations.insert(key.as_str(), serde_json::to_vec(&reservation)?.as_slice())?;
                expired += 1;
            }
        }
    }
    tx.commit()?;
    Ok(expired)
}

/// Adds `units` of `sku` to the stock.
pub(crate) fn restock(db: &Database, sku: &str, units: u64) -> Result<Stock, StoreError> {
    let tx = db.begin_write()?;
    let stock = {
        let mut stock = tx.open_table(STOCK)?;
        let mut added = tx.open_table(ADDED)?;
        let available = stock.get(sku)?.map_or(0, |v| v.value()) + units;
        let total = added.get(sku)?.map_or(0, |v| v.value()) + units;
        stock.insert(sku, available)?;
        added.insert(sku, total)?;
        Stock {
            sku: sku.to_owned(),
            available,
            added: total,
        }
    };
    tx.commit()?;
    Ok(stock)
}

/// Every SKU's numbers.
pub(crate) fn stock(db: &Database) -> Result<Vec<Stock>, StoreError> {
    stock_in(&db.begin_read()?)
}

fn stock_in(tx: &redb::ReadTransaction) -> Result<Vec<Stock>, StoreError> {
    let stock = tx.open_table(STOCK)?;
    let added = tx.open_table(ADDED)?;
    let mut all = Vec::new();
    for entry in added.iter()? {
        let (sku, total) = entry?;
        let sku = sku.value().to_owned();
        let available = stock.get(sku.as_str())?.map_or(0, |v| v.value());
        all.push(Stock {
            sku,
            available,
            added: total.value(),
        });
    }
    Ok(all)
}

/// Everything, read in one snapshot: stock and every reservation.
pub(crate) fn snapshot(db: &Database) -> Result<(Vec<Stock>, Vec<Reservation>), StoreError> {
    let tx = db.begin_read()?;
    let stock = stock_in(&tx)?;
    let table = tx.open_table(RESERVATIONS)?;
    let mut reservations = Vec::new();
    for entry in table.iter()? {
        reservations.push(decode(entry?.1.value())?);
    }
    Ok((stock, reservations))
}
