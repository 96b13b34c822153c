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
use reqwest::StatusCode;
use serde_json::json;
use shop_kit::sqlite::Db;
use shop_kit::{Mesh, now_ms, telemetry};
use tokio::sync::Notify;

use crate::model::{self, Order, Step};

mod step;

use step::{Call, Forward, code, compensated};

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
#[derive(Debug, PartialEq, Eq)]
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
                Step::Reserve => self.forward(Forward::reserve(&order)).await,
                Step::Charge => self.forward(Forward::charge(&order)).await,
                Step::Confirm => self.forward(Forward::confirm(&order)).await,
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

    async fn release(&self, order: &Order) -> Next {
        let key = order.reservation_key();
        let path = format!("/reservations/{key}/release");
        let body = json!({ "order_id": order.id });
        let call = self.call("inventory", &path, &key, &body, false).await;
        if let Call::Answer(StatusCode::CONFLICT, body) = &call
            && code(body) == "committed"
        {
            // The confirm had gone through: the stock is taken and the charge stands.
            return Next::Finish("confirmed");
        }
        let then = if order.charge_attempted {
            Next::Step(Step::Refund)
        } else {
            Next::Finish("failed")
        };
        compensated(&order.id, "release", call, then)
    }

    async fn refund(&self, order: &Order) -> Next {
        let key = order.charge_key();
        let path = format!("/charges/{key}/refund");
        let body = json!({ "order_id": order.id });
        let call = self.call("payments", &path, &key, &body, false).await;
        compensated(&order.id, "refund", call, Next::Finish("failed"))
    }
}
