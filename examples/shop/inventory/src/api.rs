//! Inventory's HTTP API (east-west only: the gateway does not expose it).
//!
//! - `POST /reservations` with `Idempotency-Key`: `{"order_id", "items": [{"sku",
//!   "quantity"}], "ttl_ms"?}` → `201` with the held reservation, or `409` (`out_of_stock`,
//!   `released`, `expired`). The same key answers the same reservation.
//! - `GET /reservations/{key}`.
//! - `POST /reservations/{key}/commit` → `200`; `409` once expired or released; `404`.
//! - `POST /reservations/{key}/release` → `200` (a tombstone for an unknown key); `409`
//!   once committed.
//! - `GET /stock`, `POST /stock/{sku}/restock` `{"units"}`.
//! - `GET /internal/audit`: stock, every reservation, and whether each SKU balances
//!   (units added = available + held + committed).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use redb::Database;
use serde::Deserialize;
use serde_json::json;
use shop_kit::{ApiError, IDEMPOTENCY_KEY, now_ms};

use crate::store::{self, Change, Item, Reservation, State as Held, StoreError};

/// The inventory's state.
#[derive(Debug, Clone)]
pub(crate) struct Inventory {
    db: Arc<Database>,
    /// How long a reservation holds its units unless the request says otherwise.
    ttl_ms: u64,
}

impl Inventory {
    pub(crate) fn new(db: Database, ttl_ms: u64) -> Self {
        Self {
            db: Arc::new(db),
            ttl_ms,
        }
    }

    /// Runs a store operation on a blocking thread (redb is synchronous).
    async fn run<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)
    }

    /// Expires due reservations every `every`, for as long as the process runs. Every
    /// replica sweeps; the store serializes them.
    pub(crate) fn sweep(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let inventory = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match inventory.run(|db| store::expire_due(db, now_ms())).await {
                    Ok(0) => {}
                    Ok(expired) => tracing::info!(expired, "reservations expired"),
                    Err(error) => tracing::warn!(%error, "expiry sweep failed"),
                }
            }
        })
    }
}

/// The inventory's routes.
pub(crate) fn router(inventory: Inventory) -> Router {
    Router::new()
        .route("/reservations", post(reserve))
        .route("/reservations/{key}", get(reservation))
        .route("/reservations/{key}/commit", post(commit))
        .route("/reservations/{key}/release", post(release))
        .route("/stock", get(stock))
        .route("/stock/{sku}/restock", post(restock))
        .route("/internal/audit", get(audit))
        .with_state(inventory)
}

/// A business refusal: `409` with a code, and the reservation as it stands.
fn refused(code: &'static str, reservation: &Reservation) -> Response {
    let message = reservation
        .reason
        .clone()
        .unwrap_or_else(|| format!("reservation {} is {:?}", reservation.key, reservation.state));
    let body = json!({
        "error": { "code": code, "message": message },
        "reservation": reservation,
    });
    (StatusCode::CONFLICT, Json(body)).into_response()
}

fn refusal_code(state: Held) -> &'static str {
    match state {
        Held::Rejected => "out_of_stock",
        Held::Released => "released",
        Held::Expired => "expired",
        Held::Committed => "committed",
        Held::Held => "held",
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReserveBody {
    order_id: String,
    items: Vec<Item>,
    ttl_ms: Option<u64>,
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    headers
        .get(IDEMPOTENCY_KEY)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 200)
        .map(str::to_owned)
        .ok_or_else(|| ApiError::bad_request("an Idempotency-Key header is required"))
}

async fn reserve(
    State(inventory): State<Inventory>,
    headers: HeaderMap,
    Json(body): Json<ReserveBody>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    if body.items.is_empty() {
        return Err(ApiError::bad_request("a reservation needs items"));
    }
    let ttl_ms = body.ttl_ms.unwrap_or(inventory.ttl_ms).clamp(1, 3_600_000);
    let reservation = inventory
        .run(move |db| store::reserve(db, &key, &body.order_id, &body.items, ttl_ms, now_ms()))
        .await?;
    Ok(match reservation.state {
        Held::Held | Held::Committed => (StatusCode::CREATED, Json(reservation)).into_response(),
        state => refused(refusal_code(state), &reservation),
    })
}

async fn reservation(
    State(inventory): State<Inventory>,
    Path(key): Path<String>,
) -> Result<Json<Reservation>, ApiError> {
    let wanted = key.clone();
    inventory
        .run(move |db| store::get(db, &wanted))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no reservation {key:?}")))
}

fn answer(change: Change, key: &str) -> Result<Response, ApiError> {
    match change {
        Change::Done(reservation) => Ok(Json(reservation).into_response()),
        Change::Refused(reservation) => Ok(refused(refusal_code(reservation.state), &reservation)),
        Change::Unknown => Err(ApiError::not_found(format!("no reservation {key:?}"))),
    }
}

async fn commit(
    State(inventory): State<Inventory>,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let wanted = key.clone();
    let change = inventory
        .run(move |db| store::commit(db, &wanted, now_ms()))
        .await?;
    answer(change, &key)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseBody {
    #[serde(default)]
    order_id: String,
}

async fn release(
    State(inventory): State<Inventory>,
    Path(key): Path<String>,
    body: Option<Json<ReleaseBody>>,
) -> Result<Response, ApiError> {
    let order_id = body.map(|Json(body)| body.order_id).unwrap_or_default();
    let wanted = key.clone();
    let change = inventory
        .run(move |db| store::release(db, &wanted, &order_id, now_ms()))
        .await?;
    answer(change, &key)
}

async fn stock(State(inventory): State<Inventory>) -> Result<Response, ApiError> {
    let stock = inventory.run(store::stock).await?;
    Ok(Json(stock).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RestockBody {
    units: u64,
}

async fn restock(
    State(inventory): State<Inventory>,
    Path(sku): Path<String>,
    Json(body): Json<RestockBody>,
) -> Result<Response, ApiError> {
    let stock = inventory
        .run(move |db| store::restock(db, &sku, body.units))
        .await?;
    Ok(Json(stock).into_response())
}

async fn audit(State(inventory): State<Inventory>) -> Result<Response, ApiError> {
    let (stock, reservations) = inventory.run(store::snapshot).await?;
    let mut held: BTreeMap<&str, u64> = BTreeMap::new();
    let mut committed: BTreeMap<&str, u64> = BTreeMap::new();
    for reservation in &reservations {
        let bucket = match reservation.state {
            Held::Held => &mut held,
            Held::Committed => &mut committed,
            _ => continue,
        };
        for item in &reservation.items {
            *bucket.entry(item.sku.as_str()).or_default() += item.quantity;
        }
    }
    let unbalanced: Vec<_> = stock
        .iter()
        .filter_map(|s| {
            let held = held.get(s.sku.as_str()).copied().unwrap_or(0);
            let committed = committed.get(s.sku.as_str()).copied().unwrap_or(0);
            (s.available + held + committed != s.added).then(|| {
                format!(
                    "{}: {} added but {} available + {held} held + {committed} committed",
                    s.sku, s.added, s.available
                )
            })
        })
        .collect();
    Ok(Json(json!({
        "stock": stock,
        "reservations": reservations,
        "unbalanced": unbalanced,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use axum::http::Method;
    use serde_json::Value;
    use shop_kit::testing::call;

    use super::*;

    fn inventory(folder: &std::path::Path) -> Inventory {
        Inventory::new(store::open(&folder.join("inventory.redb")).unwrap(), 30_000)
    }

    async fn reserve_as(
        app: &Router,
        key: &str,
        sku: &str,
        quantity: u64,
        ttl_ms: u64,
    ) -> (StatusCode, Value) {
        call(
            app,
            Method::POST,
            "/reservations",
            &[("idempotency-key", key)],
            Some(json!({
                "order_id": format!("order-of-{key}"),
                "items": [{ "sku": sku, "quantity": quantity }],
                "ttl_ms": ttl_ms,
            })),
        )
        .await
    }

    async fn available(app: &Router, sku: &str) -> u64 {
        let (_, stock) = call(app, Method::GET, "/stock", &[], None).await;
        stock
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["sku"] == sku)
            .unwrap()["available"]
            .as_u64()
            .unwrap()
    }

    async fn balanced(app: &Router) {
        let (_, audit) = call(app, Method::GET, "/internal/audit", &[], None).await;
        assert_eq!(audit["unbalanced"], json!([]), "{audit}");
    }

    #[tokio::test]
    async fn the_same_key_reserves_once() {
        let folder = tempfile::tempdir().unwrap();
        let app = router(inventory(folder.path()));
        let before = available(&app, "sku-mug").await;
        let (status, first) = reserve_as(&app, "k1", "sku-mug", 3, 30_000).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(first["state"], "held");
        let (status, again) = reserve_as(&app, "k1", "sku-mug", 3, 30_000).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(again, first);
        assert_eq!(available(&app, "sku-mug").await, before - 3);
        balanced(&app).await;
    }

    #[tokio::test]
    async fn too_little_stock_is_a_409_that_holds_nothing_and_stays_refused() {
        let folder = tempfile::tempdir().unwrap();
        let app = router(inventory(folder.path()));
        let (status, refusal) = reserve_as(&app, "big", "sku-limited", 1_000, 30_000).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(refusal["error"]["code"], "out_of_stock");
        assert_eq!(available(&app, "sku-limited").await, 40);
        // Restocked meanwhile, the same key still answers what it answered.
        call(
            &app,
            Method::POST,
            "/stock/sku-limited/restock",
            &[],
            Some(json!({"units": 5_000})),
        )
        .await;
        let (status, _) = reserve_as(&app, "big", "sku-limited", 1_000, 30_000).await;
        assert_eq!(status, StatusCode::CONFLICT);
        balanced(&app).await;
    }

    #[tokio::test]
    async fn commit_takes_the_units_and_release_gives_them_back() {
        let folder = tempfile::tempdir().unwrap();
        let app = router(inventory(folder.path()));
        reserve_as(&app, "a", "sku-limited", 10, 30_000).await;
        reserve_as(&app, "b", "sku-limited", 10, 30_000).await;
        assert_eq!(available(&app, "sku-limited").await, 20);
        let (status, a) = call(&app, Method::POST, "/reservations/a/commit", &[], None).await;
        assert_eq!(
            (status, a["state"].as_str()),
            (StatusCode::OK, Some("committed"))
        );
        let (status, b) = call(&app, Method::POST, "/reservations/b/release", &[], None).await;
        assert_eq!(
            (status, b["state"].as_str()),
            (StatusCode::OK, Some("released"))
        );
        assert_eq!(available(&app, "sku-limited").await, 30);
        // Both again: idempotent. A committed reservation cannot be released.
        let (status, _) = call(&app, Method::POST, "/reservations/a/commit", &[], None).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = call(&app, Method::POST, "/reservations/b/release", &[], None).await;
        assert_eq!(status, StatusCode::OK);
        let (status, refusal) =
            call(&app, Method::POST, "/reservations/a/release", &[], None).await;
        assert_eq!(
            (status, refusal["error"]["code"].as_str()),
            (StatusCode::CONFLICT, Some("committed"))
        );
        let (status, refusal) = call(&app, Method::POST, "/reservations/b/commit", &[], None).await;
        assert_eq!(
            (status, refusal["error"]["code"].as_str()),
            (StatusCode::CONFLICT, Some("released"))
        );
        assert_eq!(available(&app, "sku-limited").await, 30);
        balanced(&app).await;
    }

    #[tokio::test]
    async fn a_release_before_the_reservation_tombstones_the_key() {
        let folder = tempfile::tempdir().unwrap();
        let app = router(inventory(folder.path()));
        let (status, _) = call(&app, Method::POST, "/reservations/late/release", &[], None).await;
        assert_eq!(status, StatusCode::OK);
        let (status, refusal) = reserve_as(&app, "late", "sku-limited", 1, 30_000).await;
        assert_eq!(
            (status, refusal["error"]["code"].as_str()),
            (StatusCode::CONFLICT, Some("released"))
        );
        assert_eq!(available(&app, "sku-limited").await, 40);
    }

    #[tokio::test]
    async fn expired_reservations_release_their_stock() {
        let folder = tempfile::tempdir().unwrap();
        let inventory = inventory(folder.path());
        let app = router(inventory.clone());
        reserve_as(&app, "short", "sku-limited", 15, 1).await;
        reserve_as(&app, "long", "sku-limited", 5, 60_000).await;
        assert_eq!(available(&app, "sku-limited").await, 20);
        tokio::time::sleep(Duration::from_millis(5)).await;
        let expired = inventory
            .run(|db| store::expire_due(db, now_ms()))
            .await
            .unwrap();
        assert_eq!(expired, 1);
        assert_eq!(available(&app, "sku-limited").await, 35);
        let (_, short) = call(&app, Method::GET, "/reservations/short", &[], None).await;
        assert_eq!(short["state"], "expired");
        let (status, refusal) =
            call(&app, Method::POST, "/reservations/short/commit", &[], None).await;
        assert_eq!(
            (status, refusal["error"]["code"].as_str()),
            (StatusCode::CONFLICT, Some("expired"))
        );
        balanced(&app).await;
    }

    #[tokio::test]
    async fn a_commit_after_the_expiry_time_expires_instead_even_before_a_sweep() {
        let folder = tempfile::tempdir().unwrap();
        let app = router(inventory(folder.path()));
        reserve_as(&app, "slow", "sku-limited", 7, 1).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (status, _) = call(&app, Method::POST, "/reservations/slow/commit", &[], None).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(available(&app, "sku-limited").await, 40);
        balanced(&app).await;
    }

    #[tokio::test]
    async fn two_replicas_share_one_store() {
        let folder = tempfile::tempdir().unwrap();
        let one = router(inventory(folder.path()));
        let two = router(inventory(folder.path()));
        reserve_as(&one, "shared", "sku-limited", 4, 30_000).await;
        let (status, committed) =
            call(&two, Method::POST, "/reservations/shared/commit", &[], None).await;
        assert_eq!(
            (status, committed["state"].as_str()),
            (StatusCode::OK, Some("committed"))
        );
        assert_eq!(available(&one, "sku-limited").await, 36);
        balanced(&two).await;
    }

    #[tokio::test]
    async fn a_reservation_needs_a_key() {
        let folder = tempfile::tempdir().unwrap();
        let app = router(inventory(folder.path()));
        let (status, _) = call(
            &app,
            Method::POST,
            "/reservations",
            &[],
            Some(json!({"order_id": "o", "items": [{"sku": "sku-mug", "quantity": 1}]})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}
