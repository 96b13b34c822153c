//! Payments' HTTP API and store (SQLite in `DATA_DIR/payments.db`, shared by replicas).
//!
//! - `POST /charges` with `Idempotency-Key`: `{"order_id", "account", "amount_cents"}` →
//!   `201` captured, `402` declined (a business answer, stored: the same key declines
//!   again), `409` if the key was refunded before (a late charge is refused), `422` if
//!   the key was used for another charge.
//! - `POST /charges/{key}/refund` → `200`: a captured charge is refunded; an unknown key
//!   is tombstoned (`voided`), so a charge arriving late with it is refused.
//! - `GET /charges/{key}`, `GET /accounts/{id}`, `GET /internal/audit` (every charge).
//!
//! For demonstrations, `DECLINE_RATE` declines that share of new charges, and
//! `FAILURE_RATE` answers that share of charge requests with `503`: half of them before
//! doing anything, half after the charge is stored (the answer is lost, as when a
//! connection drops) — a retry with the same key then gets the stored outcome.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shop_kit::sqlite::{self, Db};
use shop_kit::{ApiError, Config, IDEMPOTENCY_KEY, now_ms};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY,
    balance_cents INTEGER NOT NULL CHECK (balance_cents >= 0)
);
CREATE TABLE IF NOT EXISTS charges (
    key TEXT PRIMARY KEY,
    order_id TEXT NOT NULL,
    account TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('captured', 'declined', 'refunded', 'voided')),
    reason TEXT,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS charges_by_order ON charges (order_id);
INSERT OR IGNORE INTO accounts (id, balance_cents)
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
    SELECT printf('acct-%03d', i), 100000000000 FROM n;
INSERT OR IGNORE INTO accounts (id, balance_cents) VALUES ('acct-empty', 0);
";

/// A charge, by its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Charge {
    pub(crate) key: String,
    pub(crate) order_id: String,
    pub(crate) account: String,
    pub(crate) amount_cents: i64,
    /// `captured`, `declined`, `refunded` or `voided` (a refund that came first).
    pub(crate) status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    pub(crate) created_at_ms: i64,
    pub(crate) updated_at_ms: i64,
}

impl Charge {
    const COLUMNS: &str =
        "key, order_id, account, amount_cents, status, reason, created_at_ms, updated_at_ms";

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            key: row.get(0)?,
            order_id: row.get(1)?,
            account: row.get(2)?,
            amount_cents: row.get(3)?,
            status: row.get(4)?,
            reason: row.get(5)?,
            created_at_ms: row.get(6)?,
            updated_at_ms: row.get(7)?,
        })
    }
}

fn find(c: &Connection, key: &str) -> rusqlite::Result<Option<Charge>> {
    c.prepare_cached(&format!(
        "SELECT {} FROM charges WHERE key = ?1",
        Charge::COLUMNS
    ))?
    .query_row([key], Charge::from_row)
    .optional()
}

/// Payments' state.
#[derive(Debug, Clone)]
pub(crate) struct Payments {
    db: Arc<Db>,
    /// The share of new charges declined, from 0 to 1.
    decline_rate: f64,
    /// The share of charge requests answered with 503, from 0 to 1.
    failure_rate: f64,
}

impl Payments {
    pub(crate) fn open(
        config: &Config,
        decline_rate: f64,
        failure_rate: f64,
    ) -> rusqlite::Result<Self> {
        Ok(Self {
            db: Db::open(config.data_dir.join("payments.db"), SCHEMA)?,
            decline_rate: decline_rate.clamp(0.0, 1.0),
            failure_rate: failure_rate.clamp(0.0, 1.0),
        })
    }
}

/// Payments' routes.
pub(crate) fn router(payments: Payments) -> Router {
    Router::new()
        .route("/charges", post(charge))
        .route("/charges/{key}", get(one))
        .route("/charges/{key}/refund", post(refund))
        .route("/accounts/{id}", get(account))
        .route("/internal/audit", get(audit))
        .with_state(payments)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChargeBody {
    order_id: String,
    account: String,
    amount_cents: i64,
}

fn injected_failure(when: &str) -> Response {
    ApiError::unavailable(format!("injected failure ({when}; FAILURE_RATE)")).into_response()
}

async fn charge(
    State(payments): State<Payments>,
    headers: HeaderMap,
    Json(body): Json<ChargeBody>,
) -> Result<Response, ApiError> {
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 200)
        .map(str::to_owned)
        .ok_or_else(|| ApiError::bad_request("an Idempotency-Key header is required"))?;
    if body.amount_cents <= 0 {
        return Err(ApiError::bad_request("amount_cents must be positive"));
    }
    // Half the injected failures come before anything happens, half after the charge is
    // stored (the answer lost on its way back).
    let fail = fastrand::f64() < payments.failure_rate;
    let fail_after = fastrand::bool();
    if fail && !fail_after {
        return Ok(injected_failure("before charging"));
    }
    let decline = fastrand::f64() < payments.decline_rate;
    let charge = payments
        .db
        .call(move |c| {
            let tx = sqlite::write(c)?;
            let charge = match find(&tx, &key)? {
                Some(existing) => existing,
                None => {
                    let now = now_ms() as i64;
                    let balance: Option<i64> = tx
                        .query_row(
                            "SELECT balance_cents FROM accounts WHERE id = ?1",
                            [&body.account],
                            |row| row.get(0),
                        )
                        .optional()?;
                    let reason = match balance {
                        None => Some("no such account"),
                        Some(balance) if balance < body.amount_cents => Some("insufficient funds"),
                        Some(_) if decline => Some("card declined"),
                        Some(_) => None,
                    };
                    if reason.is_none() {
                        tx.execute(
                            "UPDATE accounts SET balance_cents = balance_cents - ?1 WHERE id = ?2",
                            params![body.amount_cents, body.account],
                        )?;
                    }
                    let charge = Charge {
                        key: key.clone(),
                        order_id: body.order_id.clone(),
                        account: body.account.clone(),
                        amount_cents: body.amount_cents,
                        status: if reason.is_some() {
                            "declined"
                        } else {
                            "captured"
                        }
                        .to_owned(),
                        reason: reason.map(str::to_owned),
                        created_at_ms: now,
                        updated_at_ms: now,
                    };
                    tx.execute(
                        &format!(
                            "INSERT INTO charges ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                            Charge::COLUMNS
                        ),
                        params![
                            charge.key,
                            charge.order_id,
                            charge.account,
                            charge.amount_cents,
                            charge.status,
                            charge.reason,
                            charge.created_at_ms,
                            charge.updated_at_ms
                        ],
                    )?;
                    charge
                }
            };
            tx.commit()?;
            // The same key for another charge is a client's mistake, not a replay.
            if charge.status != "voided"
                && (charge.order_id != body.order_id
                    || charge.account != body.account
                    || charge.amount_cents != body.amount_cents)
            {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "key_reused",
                    format!("idempotency key {key:?} was used for another charge"),
                ));
            }
            Ok(charge)
        })
        .await?;
    if fail && fail_after {
        return Ok(injected_failure("after charging"));
    }
    Ok(answer(charge))
}

/// A charge's HTTP answer by its status.
fn answer(charge: Charge) -> Response {
    let refusal = |status: StatusCode, code: &str, message: String| {
        let body = json!({ "error": { "code": code, "message": message }, "charge": charge });
        (status, Json(body)).into_response()
    };
    match charge.status.as_str() {
        "captured" => (StatusCode::CREATED, Json(charge)).into_response(),
        "declined" => refusal(
            StatusCode::PAYMENT_REQUIRED,
            "declined",
            charge
                .reason
                .clone()
                .unwrap_or_else(|| "declined".to_owned()),
        ),
        _ => refusal(
            StatusCode::CONFLICT,
            "refunded",
            format!(
                "charge {:?} was refunded; its key cannot charge again",
                charge.key
            ),
        ),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefundBody {
    #[serde(default)]
    order_id: String,
}

async fn refund(
    State(payments): State<Payments>,
    Path(key): Path<String>,
    body: Option<Json<RefundBody>>,
) -> Result<Json<Charge>, ApiError> {
    let order_id = body.map(|Json(body)| body.order_id).unwrap_or_default();
    let charge = payments
        .db
        .call(move |c| {
            let tx = sqlite::write(c)?;
            let now = now_ms() as i64;
            let charge = match find(&tx, &key)? {
                None => {
                    tx.execute(
                        &format!("INSERT INTO charges ({}) VALUES (?1, ?2, '', 0, 'voided', 'refunded before it was charged', ?3, ?3)", Charge::COLUMNS),
                        params![key, order_id, now],
                    )?;
                    find(&tx, &key)?
                }
                Some(charge) if charge.status == "captured" => {
                    tx.execute(
                        "UPDATE accounts SET balance_cents = balance_cents + ?1 WHERE id = ?2",
                        params![charge.amount_cents, charge.account],
                    )?;
                    tx.execute(
                        "UPDATE charges SET status = 'refunded', updated_at_ms = ?2 WHERE key = ?1",
                        params![key, now],
                    )?;
                    find(&tx, &key)?
                }
                // Declined, refunded or voided: nothing is held; the key stays spent.
                charge => charge,
            };
            tx.commit()?;
            charge.ok_or_else(|| ApiError::internal("a charge vanished inside its transaction"))
        })
        .await?;
    Ok(Json(charge))
}

async fn one(
    State(payments): State<Payments>,
    Path(key): Path<String>,
) -> Result<Json<Charge>, ApiError> {
    let wanted = key.clone();
    payments
        .db
        .call(move |c| Ok(find(c, &wanted)?))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no charge {key:?}")))
}

async fn account(
    State(payments): State<Payments>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let wanted = id.clone();
    let balance: Option<i64> = payments
        .db
        .call(move |c| {
            Ok(c.query_row(
                "SELECT balance_cents FROM accounts WHERE id = ?1",
                [wanted],
                |row| row.get(0),
            )
            .optional()?)
        })
        .await?;
    let balance = balance.ok_or_else(|| ApiError::not_found(format!("no account {id:?}")))?;
    Ok(Json(json!({ "id": id, "balance_cents": balance })))
}

async fn audit(State(payments): State<Payments>) -> Result<Json<serde_json::Value>, ApiError> {
    let charges = payments
        .db
        .call(|c| {
            let mut statement = c.prepare(&format!(
                "SELECT {} FROM charges ORDER BY created_at_ms",
                Charge::COLUMNS
            ))?;
            let rows = statement.query_map([], Charge::from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await?;
    Ok(Json(json!({ "charges": charges })))
}

#[cfg(test)]
mod tests {
    use axum::http::Method;
    use serde_json::Value;
    use shop_kit::testing::call;

    use super::*;

    fn payments(folder: &std::path::Path, decline: f64, failure: f64) -> Router {
        router(Payments::open(&Config::for_test("payments", folder), decline, failure).unwrap())
    }

    async fn charge_as(app: &Router, key: &str, account: &str, amount: i64) -> (StatusCode, Value) {
        call(
            app,
            Method::POST,
            "/charges",
            &[("idempotency-key", key)],
            Some(json!({ "order_id": format!("order-of-{key}"), "account": account, "amount_cents": amount })),
        )
        .await
    }

    async fn balance(app: &Router, account: &str) -> i64 {
        let (_, body) = call(app, Method::GET, &format!("/accounts/{account}"), &[], None).await;
        body["balance_cents"].as_i64().unwrap()
    }

    #[tokio::test]
    async fn the_same_key_charges_once() {
        let folder = tempfile::tempdir().unwrap();
        let app = payments(folder.path(), 0.0, 0.0);
        let before = balance(&app, "acct-001").await;
        let (status, first) = charge_as(&app, "c1", "acct-001", 2_490).await;
        assert_eq!(
            (status, first["status"].as_str()),
            (StatusCode::CREATED, Some("captured"))
        );
        let (status, again) = charge_as(&app, "c1", "acct-001", 2_490).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(again, first);
        assert_eq!(balance(&app, "acct-001").await, before - 2_490);
        // The same key for a different charge is refused, not replayed.
        let (status, _) = charge_as(&app, "c1", "acct-001", 9_999).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[tokio::test]
    async fn a_decline_is_a_402_and_stays_one() {
        let folder = tempfile::tempdir().unwrap();
        let app = payments(folder.path(), 1.0, 0.0);
        let before = balance(&app, "acct-002").await;
        let (status, body) = charge_as(&app, "d1", "acct-002", 100).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::PAYMENT_REQUIRED, Some("declined"))
        );
        let (status, _) = charge_as(&app, "d1", "acct-002", 100).await;
        assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
        assert_eq!(balance(&app, "acct-002").await, before);
        // Whatever the decline rate, an empty account declines.
        let app = payments(folder.path(), 0.0, 0.0);
        let (status, body) = charge_as(&app, "d2", "acct-empty", 100).await;
        assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
        assert_eq!(body["charge"]["reason"], "insufficient funds");
    }

    #[tokio::test]
    async fn a_refund_gives_the_money_back_and_tombstones_the_key() {
        let folder = tempfile::tempdir().unwrap();
        let app = payments(folder.path(), 0.0, 0.0);
        let before = balance(&app, "acct-003").await;
        charge_as(&app, "r1", "acct-003", 5_000).await;
        let (status, refunded) = call(&app, Method::POST, "/charges/r1/refund", &[], None).await;
        assert_eq!(
            (status, refunded["status"].as_str()),
            (StatusCode::OK, Some("refunded"))
        );
        let (status, _) = call(&app, Method::POST, "/charges/r1/refund", &[], None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(balance(&app, "acct-003").await, before, "refunded once");
        // A late retry of the charge is refused.
        let (status, body) = charge_as(&app, "r1", "acct-003", 5_000).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::CONFLICT, Some("refunded"))
        );
        assert_eq!(balance(&app, "acct-003").await, before);
    }

    #[tokio::test]
    async fn a_refund_that_comes_first_refuses_the_charge_that_comes_late() {
        let folder = tempfile::tempdir().unwrap();
        let app = payments(folder.path(), 0.0, 0.0);
        let before = balance(&app, "acct-004").await;
        let (status, voided) = call(
            &app,
            Method::POST,
            "/charges/early/refund",
            &[],
            Some(json!({ "order_id": "o-early" })),
        )
        .await;
        assert_eq!(
            (status, voided["status"].as_str()),
            (StatusCode::OK, Some("voided"))
        );
        let (status, _) = charge_as(&app, "early", "acct-004", 700).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(balance(&app, "acct-004").await, before);
    }

    #[tokio::test]
    async fn injected_failures_lose_answers_but_a_retry_charges_once() {
        let folder = tempfile::tempdir().unwrap();
        let flaky = payments(folder.path(), 0.0, 1.0);
        let steady = payments(folder.path(), 0.0, 0.0);
        let before = balance(&steady, "acct-005").await;
        for _ in 0..20 {
            let (status, _) = charge_as(&flaky, "f1", "acct-005", 300).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        }
        let (status, _) = charge_as(&steady, "f1", "acct-005", 300).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(balance(&steady, "acct-005").await, before - 300);
        let (_, audit) = call(&steady, Method::GET, "/internal/audit", &[], None).await;
        assert_eq!(audit["charges"].as_array().unwrap().len(), 1);
    }
}
