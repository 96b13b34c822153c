//! The order saga: reserve stock → charge payment → confirm.
//!
//! Each step is a call through the mesh with its own `Idempotency-Key` (derived from
//! the order id), so the mesh, and this runner, may repeat it safely:
//!
//! - A definite answer moves the saga on: `201` to the next step; `409` from inventory
//!   (out of stock) or `402` from payments (declined) are business answers that fail
//!   the order, compensating what was done.
//! - An unknown outcome (timeout, reset, `5xx`, `429`) is retried with the same key,
//!   never compensated blindly. Only after `give_up` does a forward step turn to
//!   compensation — safe even then, because a release or refund of a key tombstones it:
//!   the call still in flight is refused when it lands.
//! - Compensation runs in order — release the reservation, then refund the charge if one
//!   was tried — and each is retried until it gets a definite answer. A release that
//!   finds the reservation committed proves the confirm went through: the order is
//!   confirmed after all.
//!
//! The saga's step is persisted before each call, under a lease the running replica
//! renews while it runs; a replica that dies leaves its lease to run out, and any
//! replica's sweeper then claims the saga and resumes it from its step.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::context::FutureExt;
use opentelemetry::trace::SpanKind;
use opentelemetry::{Context, trace::TraceContextExt};
use parking_lot::Mutex;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shop_kit::sqlite::Db;
use shop_kit::{DEADLINE_MS, IDEMPOTENCY_KEY, Mesh, now_ms, telemetry};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::model::{self, Order, Step};

/// The saga's timings.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// How long a saga's lease lasts without renewal.
    pub(crate) lease: Duration,
    /// How long one call may take.
    pub(crate) call_timeout: Duration,
    /// How long a forward step retries an unknown outcome before compensating.
    pub(crate) give_up: Duration,
    /// How often the sweeper looks for abandoned sagas.
    pub(crate) sweep_every: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(3),
            call_timeout: Duration::from_secs(3),
            give_up: Duration::from_secs(20),
            sweep_every: Duration::from_millis(500),
        }
    }
}

/// What a step leads to.
enum Next {
    /// Persist this step and go on.
    Step(Step),
    /// Record the failure, then compensate.
    Fail {
        failure: &'static str,
        reason: String,
    },
    /// The order ends with this status.
    Finish(&'static str),
    /// Another replica holds the saga now.
    LostLease,
}

/// The result of a call, retried until it is definite.
enum Call {
    Answer(StatusCode, Value),
    GaveUp(String),
    LostLease,
}

/// Runs sagas: those this replica starts, and those it claims from dead replicas.
#[derive(Debug)]
pub(crate) struct Sagas {
    db: Arc<Db>,
    mesh: Mesh,
    /// This replica's name in leases (`CONWAY_INSTANCE`).
    owner: String,
    settings: Settings,
    /// Sagas running in this replica.
    running: Mutex<HashSet<String>>,
    /// Woken whenever a saga run here ends.
    pub(crate) changed: Notify,
}

impl Sagas {
    pub(crate) fn new(db: Arc<Db>, mesh: Mesh, owner: String, settings: Settings) -> Arc<Self> {
        Arc::new(Self {
            db,
            mesh,
            owner,
            settings,
            running: Mutex::default(),
            changed: Notify::new(),
        })
    }

    pub(crate) fn owner(&self) -> &str {
        &self.owner
    }

    pub(crate) fn lease_until(&self) -> i64 {
        (now_ms() + self.settings.lease.as_millis() as u64) as i64
    }

    /// Runs the saga of order `id` in the background, in trace context `cx`, unless it
    /// runs here already.
    pub(crate) fn start(self: &Arc<Self>, id: String, cx: Context) {
        if !self.running.lock().insert(id.clone()) {
            return;
        }
        let sagas = Arc::clone(self);
        tokio::spawn(
            async move {
                let span = telemetry::start("order saga", SpanKind::Internal);
                span.span()
                    .set_attribute(opentelemetry::KeyValue::new("order.id", id.clone()));
                sagas.run(&id).with_context(span.clone()).await;
                telemetry::end(&span, None, None);
                sagas.running.lock().remove(&id);
                sagas.changed.notify_waiters();
            }
            .with_context(cx),
        );
    }

    /// Claims and resumes abandoned sagas, every `sweep_every`, for as long as the
    /// process runs.
    pub(crate) fn sweep(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let sagas = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(sagas.settings.sweep_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                sagas.sweep_once().await;
            }
        })
    }

    /// One sweep: claims what is abandoned and starts it; returns the ids claimed.
    pub(crate) async fn sweep_once(self: &Arc<Self>) -> Vec<String> {
        let owner = self.owner.clone();
        let lease_until = self.lease_until();
        let claimed = self
            .db
            .call(move |c| Ok(model::claim(c, &owner, now_ms() as i64, lease_until, 32)?))
            .await;
        match claimed {
            Ok(ids) => {
                for id in &ids {
                    tracing::info!(order = %id, "resuming an abandoned saga");
                    self.start(id.clone(), Context::new());
                }
                ids
            }
            Err(error) => {
                tracing::warn!(%error, "saga sweep failed");
                Vec::new()
            }
        }
    }

    async fn run(self: &Arc<Self>, id: &str) {
        let wanted = id.to_owned();
        let mut order = match self.db.call(move |c| Ok(model::load(c, &wanted)?)).await {
            Ok(Some(order)) => order,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(order = %id, %error, "cannot load the saga; the sweeper will retry");
                return;
            }
        };
        // Renews the lease while the saga runs; stops with it.
        let keepalive = self.keepalive(id.to_owned());
        while order.is_pending() {
            let next = match order.step {
                Step::Reserve => self.reserve(&order).await,
                Step::Charge => self.charge(&order).await,
                Step::Confirm => self.confirm(&order).await,
                Step::Release => self.release(&order).await,
                Step::Refund => self.refund(&order).await,
                Step::Done => Next::Finish("failed"),
            };
            match self.record(&mut order, next).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(order = %id, "saga taken over by another replica");
                    break;
                }
                Err(error) => {
                    // The store is unreachable: leave the saga to the sweeper, which
                    // resumes it from the last persisted step once the lease runs out.
                    tracing::warn!(order = %id, %error, "cannot persist the saga");
                    break;
                }
            }
        }
        keepalive.abort();
    }

    fn keepalive(&self, id: String) -> tokio::task::JoinHandle<()> {
        let db = Arc::clone(&self.db);
        let owner = self.owner.clone();
        let lease = self.settings.lease;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                let (id, owner) = (id.clone(), owner.clone());
                let until = (now_ms() + lease.as_millis() as u64) as i64;
                match db
                    .call(move |c| Ok(model::renew(c, &id, &owner, until)?))
                    .await
                {
                    Ok(true) | Err(_) => {}
                    Ok(false) => return,
                }
            }
        })
    }

    /// Persists what a step led to; false when the lease is lost.
    async fn record(&self, order: &mut Order, next: Next) -> Result<bool, shop_kit::ApiError> {
        let (id, owner) = (order.id.clone(), self.owner.clone());
        let now = now_ms() as i64;
        let lease_until = self.lease_until();
        match next {
            Next::LostLease => Ok(false),
            Next::Step(step) => {
                let charge_attempted = order.charge_attempted || step == Step::Charge;
                let moved = self
                    .db
                    .call(move |c| {
                        Ok(model::advance(
                            c,
                            &id,
                            &owner,
                            step,
                            charge_attempted,
                            now,
                            lease_until,
                        )?)
                    })
                    .await?;
                order.step = step;
                order.charge_attempted = charge_attempted;
                Ok(moved)
            }
            Next::Fail { failure, reason } => {
                tracing::info!(order = %order.id, failure, reason = %reason, "order failing; compensating");
                let charge_attempted = order.charge_attempted;
                let noted = self
                    .db
                    .call(move |c| {
                        Ok(model::note_failure(c, &id, &owner, failure, &reason)?
                            && model::advance(
                                c,
                                &id,
                                &owner,
                                Step::Release,
                                charge_attempted,
                                now,
                                lease_until,
                            )?)
                    })
                    .await?;
                order.step = Step::Release;
                Ok(noted)
            }
            Next::Finish(status) => {
                let finished = self
                    .db
                    .call(move |c| Ok(model::finish(c, &id, &owner, status, now)?))
                    .await?;
                order.status = status.to_owned();
                order.step = Step::Done;
                if finished {
                    tracing::info!(order = %order.id, status, "order saga ended");
                }
                Ok(finished)
            }
        }
    }

    /// Calls `service` until the answer is definite; a forward step (`give_up`) stops
    /// retrying after `settings.give_up`.
    async fn call(&self, service: &str, path: &str, key: &str, body: Value, give_up: bool) -> Call {
        let started = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            let request = self
                .mesh
                .request(Method::POST, service, path)
                .header(IDEMPOTENCY_KEY, key)
                .header(
                    DEADLINE_MS,
                    self.settings.call_timeout.as_millis().to_string(),
                )
                .timeout(self.settings.call_timeout)
                .json(&body);
            let last = match self.mesh.send(service, request).await {
                Ok(response) if !retryable(response.status()) => {
                    let status = response.status();
                    let body = response.json().await.unwrap_or(Value::Null);
                    return Call::Answer(status, body);
                }
                Ok(response) => format!("{service} answered {}", response.status()),
                Err(error) => error.to_string(),
            };
            attempt += 1;
            tracing::info!(service, path, key, attempt, last = %last, "outcome unknown; retrying with the same key");
            if give_up && started.elapsed() >= self.settings.give_up {
                return Call::GaveUp(last);
            }
            tokio::time::sleep(backoff(attempt)).await;
            if self.lost(key).await {
                return Call::LostLease;
            }
        }
    }

    /// Whether this replica lost the lease of the saga a key belongs to.
    async fn lost(&self, key: &str) -> bool {
        let id = key.split(':').next().unwrap_or_default().to_owned();
        let owner = self.owner.clone();
        let until = self.lease_until();
        matches!(
            self.db
                .call(move |c| Ok(model::renew(c, &id, &owner, until)?))
                .await,
            Ok(false)
        )
    }

    async fn reserve(&self, order: &Order) -> Next {
        let items: Vec<Value> = order
            .lines
            .iter()
            .map(|line| json!({ "sku": line.sku, "quantity": line.quantity }))
            .collect();
        let body = json!({ "order_id": order.id, "items": items });
        match self
            .call(
                "inventory",
                "/reservations",
                &order.reservation_key(),
                body,
                true,
            )
            .await
        {
            Call::Answer(StatusCode::CREATED, _) => Next::Step(Step::Charge),
            Call::Answer(StatusCode::CONFLICT, body) if code(&body) == "out_of_stock" => {
                Next::Fail {
                    failure: "out_of_stock",
                    reason: message(&body),
                }
            }
            Call::Answer(status, body) => Next::Fail {
                failure: "inventory_refused",
                reason: format!("inventory answered {status}: {}", message(&body)),
            },
            Call::GaveUp(last) => Next::Fail {
                failure: "inventory_unavailable",
                reason: last,
            },
            Call::LostLease => Next::LostLease,
        }
    }

    async fn charge(&self, order: &Order) -> Next {
        let body = json!({
            "order_id": order.id,
            "account": order.account,
            "amount_cents": order.total_cents,
        });
        match self
            .call("payments", "/charges", &order.charge_key(), body, true)
            .await
        {
            Call::Answer(StatusCode::CREATED, _) => Next::Step(Step::Confirm),
            Call::Answer(StatusCode::PAYMENT_REQUIRED, body) => Next::Fail {
                failure: "declined",
                reason: message(&body),
            },
            Call::Answer(status, body) => Next::Fail {
                failure: "payments_refused",
                reason: format!("payments answered {status}: {}", message(&body)),
            },
            Call::GaveUp(last) => Next::Fail {
                failure: "payments_unavailable",
                reason: last,
            },
            Call::LostLease => Next::LostLease,
        }
    }

    async fn confirm(&self, order: &Order) -> Next {
        let path = format!("/reservations/{}/commit", order.reservation_key());
        match self
            .call(
                "inventory",
                &path,
                &order.reservation_key(),
                json!(null),
                true,
            )
            .await
        {
            Call::Answer(StatusCode::OK, _) => Next::Finish("confirmed"),
            Call::Answer(StatusCode::CONFLICT, body) => Next::Fail {
                failure: "reservation_expired",
                reason: message(&body),
            },
            Call::Answer(status, body) => Next::Fail {
                failure: "inventory_refused",
                reason: format!("inventory answered {status}: {}", message(&body)),
            },
            // Whether the commit went through is unknown: the release that compensates
            // tells (409 `committed` if it did).
            Call::GaveUp(last) => Next::Fail {
                failure: "inventory_unavailable",
                reason: last,
            },
            Call::LostLease => Next::LostLease,
        }
    }

    async fn release(&self, order: &Order) -> Next {
        let path = format!("/reservations/{}/release", order.reservation_key());
        let body = json!({ "order_id": order.id });
        match self
            .call("inventory", &path, &order.reservation_key(), body, false)
            .await
        {
            Call::Answer(StatusCode::CONFLICT, body) if code(&body) == "committed" => {
                // The confirm had gone through: the stock is taken and the charge stands.
                Next::Finish("confirmed")
            }
            Call::Answer(status, body) => {
                if status != StatusCode::OK {
                    tracing::error!(order = %order.id, %status, body = %body, "release refused");
                }
                if order.charge_attempted {
                    Next::Step(Step::Refund)
                } else {
                    Next::Finish("failed")
                }
            }
            Call::GaveUp(_) | Call::LostLease => Next::LostLease,
        }
    }

    async fn refund(&self, order: &Order) -> Next {
        let path = format!("/charges/{}/refund", order.charge_key());
        let body = json!({ "order_id": order.id });
        match self
            .call("payments", &path, &order.charge_key(), body, false)
            .await
        {
            Call::Answer(status, body) => {
                if status != StatusCode::OK {
                    tracing::error!(order = %order.id, %status, body = %body, "refund refused");
                }
                Next::Finish("failed")
            }
            Call::GaveUp(_) | Call::LostLease => Next::LostLease,
        }
    }
}

/// Answers that say nothing about the outcome: the step is retried with its key.
fn retryable(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

/// 50 ms, doubling to 1 s, with jitter.
fn backoff(attempt: u32) -> Duration {
    let base = 50u64.saturating_mul(1 << attempt.min(5)).min(1_000);
    Duration::from_millis(base / 2 + fastrand::u64(0..=base / 2))
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

fn message(body: &Value) -> String {
    body["error"]["message"]
        .as_str()
        .map_or_else(|| body.to_string(), str::to_owned)
}
