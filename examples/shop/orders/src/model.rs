//! Orders and their sagas in SQLite (`DATA_DIR/orders.db`, shared by the replicas).
//!
//! One row per order holds both the order and its saga: the step it is at, and the
//! lease of the replica running it (`owner`, `lease_until_ms`). Every change a saga
//! makes is fenced by its lease (`WHERE owner = ?`): a replica that lost the lease to
//! another (because it stalled past it) changes nothing more.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use shop_kit::ApiError;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY,
    client_key TEXT NOT NULL UNIQUE,
    consumer TEXT,
    customer_id TEXT NOT NULL,
    account TEXT NOT NULL,
    lines TEXT NOT NULL,
    total_cents INTEGER NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'failed')),
    failure TEXT,
    reason TEXT,
    step TEXT NOT NULL,
    charge_attempted INTEGER NOT NULL DEFAULT 0,
    owner TEXT NOT NULL,
    lease_until_ms INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_pending ON orders (lease_until_ms) WHERE status = 'pending';
";

/// One line of an order, priced when the order was placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Line {
    pub(crate) sku: String,
    pub(crate) quantity: u64,
    pub(crate) unit_price_cents: i64,
}

/// Where a saga stands. Forward steps first, then the compensations, in the order they
/// run: a failure releases the reservation, then refunds the charge if one was tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Step {
    Reserve,
    Charge,
    Confirm,
    Release,
    Refund,
    Done,
}

impl Step {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Reserve => "reserve",
            Self::Charge => "charge",
            Self::Confirm => "confirm",
            Self::Release => "release",
            Self::Refund => "refund",
            Self::Done => "done",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "reserve" => Self::Reserve,
            "charge" => Self::Charge,
            "confirm" => Self::Confirm,
            "release" => Self::Release,
            "refund" => Self::Refund,
            _ => Self::Done,
        }
    }
}

/// An order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Order {
    pub(crate) id: String,
    #[serde(skip)]
    pub(crate) client_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) consumer: Option<String>,
    pub(crate) customer_id: String,
    pub(crate) account: String,
    pub(crate) lines: Vec<Line>,
    pub(crate) total_cents: i64,
    pub(crate) currency: String,
    /// `pending`, `confirmed` or `failed`.
    pub(crate) status: String,
    /// Why it failed, as a code: `out_of_stock`, `declined`, `reservation_expired`,
    /// `inventory_unavailable`, `payments_unavailable`, `inventory_refused`,
    /// `payments_refused`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) failure: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    pub(crate) step: Step,
    #[serde(skip)]
    pub(crate) charge_attempted: bool,
    pub(crate) created_at_ms: i64,
    pub(crate) updated_at_ms: i64,
}

impl Order {
    const COLUMNS: &str = "id, client_key, consumer, customer_id, account, lines, total_cents, \
        currency, status, failure, reason, step, charge_attempted, created_at_ms, updated_at_ms";

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        let lines: String = row.get(5)?;
        let step: String = row.get(11)?;
        Ok(Self {
            id: row.get(0)?,
            client_key: row.get(1)?,
            consumer: row.get(2)?,
            customer_id: row.get(3)?,
            account: row.get(4)?,
            lines: serde_json::from_str(&lines).map_err(|error| {
                rusqlite::Error::FromSqlConversionFailure(
                    5,
                    rusqlite::types::Type::Text,
                    error.into(),
                )
            })?,
            total_cents: row.get(6)?,
            currency: row.get(7)?,
            status: row.get(8)?,
            failure: row.get(9)?,
            reason: row.get(10)?,
            step: Step::parse(&step),
            charge_attempted: row.get(12)?,
            created_at_ms: row.get(13)?,
            updated_at_ms: row.get(14)?,
        })
    }

    /// A new order, pending at its first step, for `lines` at their total in EUR; its
    /// customer is the paying account until said otherwise.
    pub(crate) fn new(
        id: String,
        client_key: String,
        account: String,
        lines: Vec<Line>,
        now_ms: i64,
    ) -> Self {
        Self {
            id,
            client_key,
            consumer: None,
            customer_id: account.clone(),
            account,
            total_cents: lines
                .iter()
                .map(|line| line.unit_price_cents * line.quantity as i64)
                .sum(),
            currency: "EUR".to_owned(),
            lines,
            status: "pending".to_owned(),
            failure: None,
            reason: None,
            step: Step::Reserve,
            charge_attempted: false,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
        }
    }

    /// The idempotency key of the order's reservation.
    pub(crate) fn reservation_key(&self) -> String {
        format!("{}:reserve", self.id)
    }

    /// The idempotency key of the order's charge.
    pub(crate) fn charge_key(&self) -> String {
        format!("{}:charge", self.id)
    }

    pub(crate) fn is_pending(&self) -> bool {
        self.status == "pending"
    }
}

/// The order with this id.
pub(crate) fn load(c: &Connection, id: &str) -> rusqlite::Result<Option<Order>> {
    c.prepare_cached(&format!(
        "SELECT {} FROM orders WHERE id = ?1",
        Order::COLUMNS
    ))?
    .query_row([id], Order::from_row)
    .optional()
}

/// Inserts a new order owned by `owner` until `lease_until_ms`, or returns the order
/// already placed with the same client key.
pub(crate) fn insert(
    c: &mut Connection,
    order: &Order,
    owner: &str,
    lease_until_ms: i64,
) -> Result<Result<(), Order>, ApiError> {
    let tx = shop_kit::sqlite::write(c)?;
    let existing = tx
        .prepare_cached(&format!(
            "SELECT {} FROM orders WHERE client_key = ?1",
            Order::COLUMNS
        ))?
        .query_row([&order.client_key], Order::from_row)
        .optional()?;
    if let Some(existing) = existing {
        return Ok(Err(existing));
    }
    let lines = serde_json::to_string(&order.lines).map_err(ApiError::internal)?;
    tx.execute(
        "INSERT INTO orders (id, client_key, consumer, customer_id, account, lines, total_cents, \
         currency, status, step, owner, lease_until_ms, created_at_ms, updated_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9, ?10, ?11, ?12, ?12)",
        params![
            order.id,
            order.client_key,
            order.consumer,
            order.customer_id,
            order.account,
            lines,
            order.total_cents,
            order.currency,
            order.step.as_str(),
            owner,
            lease_until_ms,
            order.created_at_ms
        ],
    )?;
    tx.commit()?;
    Ok(Ok(()))
}

/// Moves a saga to `step`, renewing its lease; false if `owner` no longer holds it.
pub(crate) fn advance(
    c: &Connection,
    id: &str,
    owner: &str,
    step: Step,
    charge_attempted: bool,
    now: i64,
    lease_until_ms: i64,
) -> rusqlite::Result<bool> {
    let changed = c.execute(
        "UPDATE orders SET step = ?3, charge_attempted = ?4, lease_until_ms = ?6, updated_at_ms = ?5 \
         WHERE id = ?1 AND owner = ?2 AND status = 'pending'",
        params![id, owner, step.as_str(), charge_attempted, now, lease_until_ms],
    )?;
    Ok(changed == 1)
}

/// Records a failure's code and reason while compensation runs (the order stays
/// pending until it is done).
pub(crate) fn note_failure(
    c: &Connection,
    id: &str,
    owner: &str,
    failure: &str,
    reason: &str,
) -> rusqlite::Result<bool> {
    let changed = c.execute(
        "UPDATE orders SET failure = ?3, reason = ?4 WHERE id = ?1 AND owner = ?2 AND status = 'pending'",
        params![id, owner, failure, reason],
    )?;
    Ok(changed == 1)
}

/// Ends a saga: the order is `confirmed` or `failed`.
pub(crate) fn finish(
    c: &Connection,
    id: &str,
    owner: &str,
    status: &str,
    now: i64,
) -> rusqlite::Result<bool> {
    let changed = c.execute(
        "UPDATE orders SET status = ?3, step = 'done', updated_at_ms = ?4, \
         failure = CASE WHEN ?3 = 'confirmed' THEN NULL ELSE failure END, \
         reason = CASE WHEN ?3 = 'confirmed' THEN NULL ELSE reason END \
         WHERE id = ?1 AND owner = ?2 AND status = 'pending'",
        params![id, owner, status, now],
    )?;
    Ok(changed == 1)
}

/// Extends `owner`'s lease; false if it no longer holds it.
pub(crate) fn renew(
    c: &Connection,
    id: &str,
    owner: &str,
    lease_until_ms: i64,
) -> rusqlite::Result<bool> {
    let changed = c.execute(
        "UPDATE orders SET lease_until_ms = ?3 WHERE id = ?1 AND owner = ?2 AND status = 'pending'",
        params![id, owner, lease_until_ms],
    )?;
    Ok(changed == 1)
}

/// Takes over up to `limit` pending sagas whose lease ran out (their owner died or
/// stalled); returns their ids.
pub(crate) fn claim(
    c: &mut Connection,
    owner: &str,
    now: i64,
    lease_until_ms: i64,
    limit: u32,
) -> rusqlite::Result<Vec<String>> {
    let tx = shop_kit::sqlite::write(c)?;
    let ids = {
        let mut statement = tx.prepare_cached(
            "UPDATE orders SET owner = ?1, lease_until_ms = ?3 WHERE id IN \
             (SELECT id FROM orders WHERE status = 'pending' AND lease_until_ms < ?2 LIMIT ?4) \
             RETURNING id",
        )?;
        let rows =
            statement.query_map(params![owner, now, lease_until_ms, limit], |row| row.get(0))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()?
    };
    tx.commit()?;
    Ok(ids)
}

/// Every order, oldest first.
pub(crate) fn all(c: &Connection) -> rusqlite::Result<Vec<Order>> {
    let mut statement = c.prepare(&format!(
        "SELECT {} FROM orders ORDER BY created_at_ms",
        Order::COLUMNS
    ))?;
    let rows = statement.query_map([], Order::from_row)?;
    rows.collect()
}
