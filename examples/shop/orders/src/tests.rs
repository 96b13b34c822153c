//! The saga against stand-ins for catalog, inventory and payments: one small server on
//! a loopback port, scripted per test, recording every call with its idempotency key.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::{Value, json};
use shop_kit::sqlite::Db;
use shop_kit::testing::{call, spawn};
use shop_kit::{Mesh, MeshConfig, now_ms};

use crate::api::{Orders, router};
use crate::model::{self, Line, Order, Step};
use crate::saga::{Sagas, Settings};

/// What the stand-ins answer, step by step (then the success answer), and what they saw.
#[derive(Debug, Default)]
struct Script {
    answers: BTreeMap<&'static str, VecDeque<(u16, &'static str)>>,
    charge_delay: Duration,
    /// (step, idempotency key or the key in the path)
    calls: Vec<(&'static str, String)>,
}

type World = Arc<Mutex<Script>>;

impl Script {
    fn answer(&mut self, step: &'static str, key: String, success: u16) -> Response {
        self.calls.push((step, key));
        let (status, code) = self
            .answers
            .get_mut(step)
            .and_then(VecDeque::pop_front)
            .unwrap_or((success, ""));
        let status = StatusCode::from_u16(status).unwrap();
        let body = if status.is_success() {
            json!({ "ok": true })
        } else {
            json!({ "error": { "code": code, "message": format!("scripted {code}") } })
        };
        (status, Json(body)).into_response()
    }
}

fn key_of(headers: &HeaderMap) -> String {
    headers["idempotency-key"].to_str().unwrap().to_owned()
}

fn stand_ins(world: World) -> Router {
    Router::new()
        .route(
            "/api/catalog/products/{sku}",
            get(|Path(sku): Path<String>| async move {
                if sku == "sku-missing" {
                    return StatusCode::NOT_FOUND.into_response();
                }
                Json(json!({ "id": sku, "price_cents": 1_000, "currency": "EUR" })).into_response()
            }),
        )
        .route(
            "/reservations",
            post(|State(w): State<World>, h: HeaderMap| async move {
                w.lock().answer("reserve", key_of(&h), 201)
            }),
        )
        .route(
            "/reservations/{key}/commit",
            post(|State(w): State<World>, Path(k): Path<String>| async move {
                w.lock().answer("commit", k, 200)
            }),
        )
        .route(
            "/reservations/{key}/release",
            post(|State(w): State<World>, Path(k): Path<String>| async move {
                w.lock().answer("release", k, 200)
            }),
        )
        .route(
            "/charges",
            post(|State(w): State<World>, h: HeaderMap| async move {
                let delay = w.lock().charge_delay;
                tokio::time::sleep(delay).await;
                w.lock().answer("charge", key_of(&h), 201)
            }),
        )
        .route(
            "/charges/{key}/refund",
            post(|State(w): State<World>, Path(k): Path<String>| async move {
                w.lock().answer("refund", k, 200)
            }),
        )
        .with_state(world)
}

fn fast() -> Settings {
    Settings {
        lease: Duration::from_millis(300),
        call_timeout: Duration::from_millis(500),
        give_up: Duration::from_millis(400),
        sweep_every: Duration::from_millis(50),
    }
}

struct Shop {
    app: Router,
    world: World,
    db: Arc<Db>,
    sagas: Arc<Sagas>,
    _folder: tempfile::TempDir,
}

async fn shop(script: Script) -> Shop {
    let world: World = Arc::new(Mutex::new(script));
    let base = spawn(stand_ins(world.clone())).await;
    let upstreams = ["catalog", "inventory", "payments"]
        .into_iter()
        .map(|s| (s.to_owned(), base.clone()))
        .collect();
    let mesh = Mesh::new(MeshConfig {
        upstreams,
        ..MeshConfig::default()
    })
    .unwrap();
    let folder = tempfile::tempdir().unwrap();
    let db = Db::open(folder.path().join("orders.db"), model::SCHEMA).unwrap();
    let sagas = Sagas::new(db.clone(), mesh.clone(), "orders-test".into(), fast());
    let app = router(Orders::new(
        db.clone(),
        mesh,
        sagas.clone(),
        Duration::from_secs(5),
    ));
    Shop {
        app,
        world,
        db,
        sagas,
        _folder: folder,
    }
}

fn scripted(answers: &[(&'static str, &[(u16, &'static str)])]) -> Script {
    Script {
        answers: answers
            .iter()
            .map(|(step, list)| (*step, list.iter().copied().collect()))
            .collect(),
        ..Script::default()
    }
}

async fn place(shop: &Shop, headers: &[(&str, &str)]) -> (StatusCode, Value) {
    call(
        &shop.app,
        Method::POST,
        "/api/orders",
        headers,
        Some(json!({
            "account": "acct-001",
            "items": [{ "sku": "sku-mug", "quantity": 2 }, { "sku": "sku-kettle", "quantity": 1 }],
        })),
    )
    .await
}

fn steps(shop: &Shop) -> Vec<&'static str> {
    shop.world
        .lock()
        .calls
        .iter()
        .map(|(step, _)| *step)
        .collect()
}

fn keys_of(shop: &Shop, step: &str) -> Vec<String> {
    shop.world
        .lock()
        .calls
        .iter()
        .filter(|(s, _)| *s == step)
        .map(|(_, key)| key.clone())
        .collect()
}

async fn eventually(shop: &Shop, id: &str, status: &str) -> Value {
    for _ in 0..200 {
        let (_, order) = call(
            &shop.app,
            Method::GET,
            &format!("/api/orders/{id}"),
            &[],
            None,
        )
        .await;
        if order["status"] == status {
            return order;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("order {id} never became {status}");
}

#[tokio::test]
async fn a_saga_reserves_charges_and_confirms_with_one_key_per_step() {
    let shop = shop(Script::default()).await;
    let (status, order) = place(&shop, &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["status"], "confirmed");
    assert_eq!(order["total_cents"], 3_000);
    let id = order["id"].as_str().unwrap();
    assert_eq!(steps(&shop), ["reserve", "charge", "commit"]);
    assert_eq!(keys_of(&shop, "reserve"), [format!("{id}:reserve")]);
    assert_eq!(keys_of(&shop, "charge"), [format!("{id}:charge")]);
}

#[tokio::test]
async fn a_declined_payment_is_a_402_and_releases_the_stock() {
    let shop = shop(scripted(&[("charge", &[(402, "declined")])])).await;
    let (status, order) = place(&shop, &[]).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{order}");
    assert_eq!(
        (order["status"].as_str(), order["failure"].as_str()),
        (Some("failed"), Some("declined"))
    );
    let id = order["id"].as_str().unwrap();
    assert_eq!(steps(&shop), ["reserve", "charge", "release", "refund"]);
    assert_eq!(keys_of(&shop, "release"), [format!("{id}:reserve")]);
    assert_eq!(keys_of(&shop, "refund"), [format!("{id}:charge")]);
}

#[tokio::test]
async fn out_of_stock_is_a_409_and_charges_nothing() {
    let shop = shop(scripted(&[("reserve", &[(409, "out_of_stock")])])).await;
    let (status, order) = place(&shop, &[]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{order}");
    assert_eq!(order["failure"], "out_of_stock");
    assert_eq!(steps(&shop), ["reserve", "release"]);
}

#[tokio::test]
async fn unknown_outcomes_are_retried_with_the_same_key_never_compensated() {
    let shop = shop(scripted(&[
        ("charge", &[(503, ""), (502, "")]),
        ("reserve", &[(504, "")]),
    ]))
    .await;
    let (status, order) = place(&shop, &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(
        steps(&shop),
        ["reserve", "reserve", "charge", "charge", "charge", "commit"]
    );
    let charges = keys_of(&shop, "charge");
    assert!(charges.iter().all(|key| *key == charges[0]), "{charges:?}");
}

#[tokio::test]
async fn a_reservation_expired_before_confirm_refunds_the_charge() {
    let shop = shop(scripted(&[("commit", &[(409, "expired")])])).await;
    let (status, order) = place(&shop, &[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{order}");
    assert_eq!(order["failure"], "reservation_expired");
    assert_eq!(
        steps(&shop),
        ["reserve", "charge", "commit", "release", "refund"]
    );
}

#[tokio::test]
async fn a_step_that_never_gets_an_answer_compensates_after_giving_up() {
    let shop = shop(scripted(&[("charge", &[(503, ""); 1_000])])).await;
    let (status, order) = place(&shop, &[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{order}");
    assert_eq!(
        (order["status"].as_str(), order["failure"].as_str()),
        (Some("failed"), Some("payments_unavailable"))
    );
    // The refund tombstones the charge's key, so a charge still in flight is refused.
    let id = order["id"].as_str().unwrap();
    assert_eq!(keys_of(&shop, "refund"), [format!("{id}:charge")]);
    assert_eq!(keys_of(&shop, "release").len(), 1);
}

#[tokio::test]
async fn a_release_that_finds_the_reservation_committed_confirms_the_order() {
    let shop = shop(scripted(&[
        ("commit", &[(503, ""); 1_000]),
        ("release", &[(409, "committed")]),
    ]))
    .await;
    let (status, order) = place(&shop, &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["status"], "confirmed");
    assert!(order.get("failure").is_none(), "{order}");
    assert!(keys_of(&shop, "refund").is_empty());
}

#[tokio::test]
async fn a_deadline_before_the_end_answers_202_and_the_saga_goes_on() {
    let shop = shop(Script {
        charge_delay: Duration::from_millis(400),
        ..Script::default()
    })
    .await;
    let (status, order) = place(&shop, &[("x-conway-deadline-ms", "300")]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{order}");
    assert_eq!(order["status"], "pending");
    eventually(&shop, order["id"].as_str().unwrap(), "confirmed").await;
}

#[tokio::test]
async fn the_same_idempotency_key_places_one_order() {
    let shop = shop(Script::default()).await;
    let (_, first) = place(&shop, &[("idempotency-key", "client-1")]).await;
    let (status, again) = place(&shop, &[("idempotency-key", "client-1")]).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(first["id"], again["id"]);
    assert_eq!(steps(&shop), ["reserve", "charge", "commit"]);
}

#[tokio::test]
async fn an_unknown_product_is_refused_before_any_saga() {
    let shop = shop(Script::default()).await;
    let (status, body) = call(
        &shop.app,
        Method::POST,
        "/api/orders",
        &[],
        Some(json!({ "account": "acct-001", "items": [{ "sku": "sku-missing", "quantity": 1 }] })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(steps(&shop).is_empty());
}

#[tokio::test]
async fn a_saga_abandoned_by_a_dead_replica_is_resumed_from_its_step() {
    let shop = shop(Script::default()).await;
    let now = now_ms() as i64;
    let line = Line {
        sku: "sku-mug".into(),
        quantity: 1,
        unit_price_cents: 1_400,
    };
    let order = Order {
        customer_id: "c".into(),
        ..Order::new(
            "ord_abandoned".into(),
            "k-abandoned".into(),
            "acct-001".into(),
            vec![line],
            now,
        )
    };
    // Placed by `orders-dead`, which reserved, moved on to the charge, and died; its
    // lease has run out.
    shop.db
        .call(move |c| {
            model::insert(c, &order, "orders-dead", now - 1)?.expect("a new order");
            model::advance(
                c,
                "ord_abandoned",
                "orders-dead",
                Step::Charge,
                true,
                now,
                now - 1,
            )?;
            Ok(())
        })
        .await
        .unwrap();
    // A live lease is not taken.
    let live = now + 60_000;
    shop.db
        .call(move |c| {
            let mut other = model::load(c, "ord_abandoned")?.unwrap();
            other.id = "ord_alive".into();
            other.client_key = "k-alive".into();
            model::insert(c, &other, "orders-alive", live)?.expect("a new order");
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(shop.sagas.sweep_once().await, ["ord_abandoned"]);
    let order = eventually(&shop, "ord_abandoned", "confirmed").await;
    assert_eq!(order["step"], "done");
    assert_eq!(
        steps(&shop),
        ["charge", "commit"],
        "resumed at its step, not from the start"
    );
    let (_, alive) = call(&shop.app, Method::GET, "/api/orders/ord_alive", &[], None).await;
    assert_eq!(alive["status"], "pending");
}

#[tokio::test]
async fn the_audit_lists_every_order_with_its_keys() {
    let shop = shop(Script::default()).await;
    let (_, order) = place(&shop, &[]).await;
    let (status, audit) = call(&shop.app, Method::GET, "/internal/audit", &[], None).await;
    assert_eq!(status, StatusCode::OK);
    let listed = &audit["orders"][0];
    assert_eq!(listed["id"], order["id"]);
    assert_eq!(
        listed["charge_key"],
        format!("{}:charge", order["id"].as_str().unwrap())
    );
}
