//! Orders' HTTP API.
//!
//! - `POST /api/orders` `{"account", "customer_id"?, "items": [{"sku", "quantity"}]}`,
//!   with an optional `Idempotency-Key` (the same key places one order): prices the
//!   items from `catalog`, stores the order and starts its saga, then answers once the
//!   saga has ended — `201` confirmed, `402` declined, `409` out of stock, `503` failed
//!   for another reason (compensated) — or `202` with the order still pending when the
//!   deadline (`x-conway-deadline-ms`, at most `ORDER_WAIT_MS`) comes first.
//! - `GET /api/orders/{id}`.
//! - `GET /internal/audit`: every order, with the keys of its reservation and charge.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use opentelemetry::Context;
use parking_lot::Mutex;
use reqwest::Method;
use rusqlite::OptionalExtension;
use serde::Deserialize;
use serde_json::{Value, json};
use shop_kit::sqlite::Db;
use shop_kit::{ApiError, DEADLINE_MS, IDEMPOTENCY_KEY, Mesh, new_id, now_ms};

use crate::model::{self, Line, Order};
use crate::saga::Sagas;

/// How long a price read from the catalog is used.
const PRICE_TTL: Duration = Duration::from_secs(30);

/// Orders' state.
#[derive(Debug, Clone)]
pub(crate) struct Orders {
    pub(crate) db: Arc<Db>,
    pub(crate) mesh: Mesh,
    pub(crate) sagas: Arc<Sagas>,
    /// The longest a request waits for its saga.
    pub(crate) wait: Duration,
    prices: Arc<Mutex<Prices>>,
}

/// Prices read from the catalog, by SKU, with when they were read.
type Prices = HashMap<String, (Instant, i64)>;

impl Orders {
    pub(crate) fn new(db: Arc<Db>, mesh: Mesh, sagas: Arc<Sagas>, wait: Duration) -> Self {
        Self {
            db,
            mesh,
            sagas,
            wait,
            prices: Arc::default(),
        }
    }
}

/// Orders' routes.
pub(crate) fn router(orders: Orders) -> Router {
    Router::new()
        .route("/api/orders", post(place))
        .route("/api/orders/{id}", get(one))
        .route("/internal/audit", get(audit))
        .with_state(orders)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Item {
    sku: String,
    quantity: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaceBody {
    account: String,
    customer_id: Option<String>,
    items: Vec<Item>,
}

async fn place(
    State(orders): State<Orders>,
    headers: HeaderMap,
    Json(body): Json<PlaceBody>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let wait = deadline(&headers).map_or(orders.wait, |d| d.min(orders.wait));
    if body.items.is_empty() || body.items.len() > 20 {
        return Err(ApiError::bad_request("an order has 1 to 20 items"));
    }
    if body
        .items
        .iter()
        .any(|item| item.quantity == 0 || item.quantity > 100)
    {
        return Err(ApiError::bad_request("each quantity is 1 to 100"));
    }
    if body.account.is_empty() {
        return Err(ApiError::bad_request("an order needs a payment account"));
    }
    let client_key = headers
        .get(IDEMPOTENCY_KEY)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 200)
        .map_or_else(|| new_id("key"), str::to_owned);

    // A retry of an order already placed waits for it, without pricing it again.
    let key = client_key.clone();
    let existing = orders
        .db
        .call(move |c| {
            Ok(c.query_row(
                "SELECT id FROM orders WHERE client_key = ?1",
                [key],
                |row| row.get::<_, String>(0),
            )
            .optional()?)
        })
        .await?;
    let id = match existing {
        Some(id) => id,
        None => {
            let lines = price(&orders, &body.items).await?;
            let now = now_ms() as i64;
            let mut order = Order::new(new_id("ord"), client_key, body.account, lines, now);
            order.consumer = headers
                .get("x-conway-consumer")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if let Some(customer_id) = body.customer_id {
                order.customer_id = customer_id;
            }
            let (owner, lease_until) =
                (orders.sagas.owner().to_owned(), orders.sagas.lease_until());
            let to_insert = order.clone();
            let inserted = orders
                .db
                .call(move |c| model::insert(c, &to_insert, &owner, lease_until))
                .await?;
            match inserted {
                Ok(()) => {
                    tracing::info!(order = %order.id, total_cents = order.total_cents, "order placed");
                    orders.sagas.start(order.id.clone(), Context::current());
                    order.id
                }
                // Placed meanwhile by a retry on another replica.
                Err(existing) => existing.id,
            }
        }
    };
    let order = wait_for(&orders, &id, wait.saturating_sub(started.elapsed())).await?;
    Ok(answer(order))
}

/// The caller's remaining deadline, less a margin for the answer's way back.
fn deadline(headers: &HeaderMap) -> Option<Duration> {
    let ms: u64 = headers.get(DEADLINE_MS)?.to_str().ok()?.parse().ok()?;
    Some(Duration::from_millis(ms.saturating_sub(ms / 10 + 100)))
}

/// Prices each item from the catalog (through the mesh), with a short cache.
async fn price(orders: &Orders, items: &[Item]) -> Result<Vec<Line>, ApiError> {
    let mut lines = Vec::with_capacity(items.len());
    for item in items {
        let cached = orders
            .prices
            .lock()
            .get(&item.sku)
            .filter(|(at, _)| at.elapsed() < PRICE_TTL)
            .map(|(_, price)| *price);
        let unit_price_cents = match cached {
            Some(price) => price,
            None => {
                let path = format!("/api/catalog/products/{}", item.sku);
                let request = orders
                    .mesh
                    .request(Method::GET, "catalog", &path)
                    .timeout(Duration::from_secs(2));
                let response = orders
                    .mesh
                    .send("catalog", request)
                    .await
                    .map_err(|error| ApiError::unavailable(error.to_string()))?;
                match response.status() {
                    StatusCode::OK => {}
                    StatusCode::NOT_FOUND => {
                        return Err(ApiError::new(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "unknown_product",
                            format!("no product {:?}", item.sku),
                        ));
                    }
                    status => {
                        return Err(ApiError::unavailable(format!("catalog answered {status}")));
                    }
                }
                let product: Value = response
                    .json()
                    .await
                    .map_err(|error| ApiError::unavailable(format!("catalog: {error}")))?;
                let price = product["price_cents"]
                    .as_i64()
                    .ok_or_else(|| ApiError::unavailable("catalog sent no price"))?;
                orders
                    .prices
                    .lock()
                    .insert(item.sku.clone(), (Instant::now(), price));
                price
            }
        };
        lines.push(Line {
            sku: item.sku.clone(),
            quantity: item.quantity,
            unit_price_cents,
        });
    }
    Ok(lines)
}

/// The order once its saga has ended, or as it stands when `wait` is over.
async fn wait_for(orders: &Orders, id: &str, wait: Duration) -> Result<Order, ApiError> {
    let until = tokio::time::Instant::now() + wait;
    loop {
        // Subscribed before reading, so an end between the two is not missed.
        let changed = orders.sagas.changed.notified();
        let wanted = id.to_owned();
        let order = orders
            .db
            .call(move |c| Ok(model::load(c, &wanted)?))
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no order {id:?}")))?;
        if !order.is_pending() || tokio::time::Instant::now() >= until {
            return Ok(order);
        }
        // Sagas that end in another replica wake nobody here: look again now and then.
        let poll = tokio::time::sleep(Duration::from_millis(100));
        tokio::select! {
            () = changed => {}
            () = poll => {}
            () = tokio::time::sleep_until(until) => {}
        }
    }
}

/// The HTTP answer for an order as it stands.
fn answer(order: Order) -> Response {
    let status = match (order.status.as_str(), order.failure.as_deref()) {
        ("pending", _) => StatusCode::ACCEPTED,
        ("confirmed", _) => StatusCode::CREATED,
        (_, Some("declined")) => StatusCode::PAYMENT_REQUIRED,
        (_, Some("out_of_stock")) => StatusCode::CONFLICT,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, Json(order)).into_response()
}

async fn one(
    State(orders): State<Orders>,
    Path(id): Path<String>,
) -> Result<Json<Order>, ApiError> {
    let wanted = id.clone();
    orders
        .db
        .call(move |c| Ok(model::load(c, &wanted)?))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no order {id:?}")))
}

async fn audit(State(orders): State<Orders>) -> Result<Json<Value>, ApiError> {
    let all = orders.db.call(|c| Ok(model::all(c)?)).await?;
    let orders: Vec<Value> = all
        .into_iter()
        .map(|order| {
            let mut value = serde_json::to_value(&order).unwrap_or_default();
            value["reservation_key"] = json!(order.reservation_key());
            value["charge_key"] = json!(order.charge_key());
            value
        })
        .collect();
    Ok(Json(json!({ "orders": orders })))
}
