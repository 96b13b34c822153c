//! Driving one step of the saga: its call through the mesh, repeated with the same
//! `Idempotency-Key` until the answer is definite, and what that answer leads to.
//!
//! - [`Sagas::call`] retries an unknown outcome (timeout, reset, `5xx`, `429`, `408`)
//!   with the same key, never reading it as a failure; only a forward step stops, after
//!   `give_up`.
//! - [`Forward::next`] turns a forward step's outcome into where the saga goes: on, or
//!   failed with its reason (and so compensated).
//! - [`compensated`] does the same for a compensation, which never gives up.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shop_kit::{DEADLINE_MS, IDEMPOTENCY_KEY};
use tokio::time::Instant;

use super::{Next, Sagas};
use crate::model::{self, Order, Step};

/// The result of a call, retried until it is definite.
#[derive(Debug)]
pub(super) enum Call {
    Answer(StatusCode, Value),
    GaveUp(String),
    LostLease,
}

/// A service a forward step calls, with the failures its refusals and its silence are
/// recorded as.
#[derive(Debug, Clone, Copy)]
struct Service {
    name: &'static str,
    /// An answer the step does not expect.
    refused: &'static str,
    /// No definite answer before `give_up`.
    unavailable: &'static str,
}

const INVENTORY: Service = Service {
    name: "inventory",
    refused: "inventory_refused",
    unavailable: "inventory_unavailable",
};

const PAYMENTS: Service = Service {
    name: "payments",
    refused: "payments_refused",
    unavailable: "payments_unavailable",
};

/// A business answer that fails the order as it is, without a retry.
#[derive(Debug, Clone, Copy)]
struct Refusal {
    status: StatusCode,
    /// The error code the answer must carry; any when `None`.
    code: Option<&'static str>,
    /// What the order's failure is recorded as.
    failure: &'static str,
}

/// A forward step: one call, and what its definite answers mean.
#[derive(Debug)]
pub(super) struct Forward {
    service: Service,
    path: String,
    key: String,
    body: Value,
    /// The answer that moves the saga on.
    done: StatusCode,
    /// Where that answer leads.
    then: Next,
    refusal: Refusal,
}

impl Forward {
    /// Reserve the order's stock; out of stock fails it.
    pub(super) fn reserve(order: &Order) -> Self {
        let items: Vec<Value> = order
            .lines
            .iter()
            .map(|line| json!({ "sku": line.sku, "quantity": line.quantity }))
            .collect();
        Self {
            service: INVENTORY,
            path: "/reservations".to_owned(),
            key: order.reservation_key(),
            body: json!({ "order_id": order.id, "items": items }),
            done: StatusCode::CREATED,
            then: Next::Step(Step::Charge),
            refusal: Refusal {
                status: StatusCode::CONFLICT,
                code: Some("out_of_stock"),
                failure: "out_of_stock",
            },
        }
    }

    /// Charge the order's total; a decline fails it.
    pub(super) fn charge(order: &Order) -> Self {
        Self {
            service: PAYMENTS,
            path: "/charges".to_owned(),
            key: order.charge_key(),
            body: json!({
                "order_id": order.id,
                "account": order.account,
                "amount_cents": order.total_cents,
            }),
            done: StatusCode::CREATED,
            then: Next::Step(Step::Confirm),
            refusal: Refusal {
                status: StatusCode::PAYMENT_REQUIRED,
                code: None,
                failure: "declined",
            },
        }
    }

    /// Commit the reservation; a reservation expired fails the order. Whether the commit
    /// went through when this gives up is unknown: the release that compensates tells
    /// (409 `committed` if it did).
    pub(super) fn confirm(order: &Order) -> Self {
        Self {
            service: INVENTORY,
            path: format!("/reservations/{}/commit", order.reservation_key()),
            key: order.reservation_key(),
            body: Value::Null,
            done: StatusCode::OK,
            then: Next::Finish("confirmed"),
            refusal: Refusal {
                status: StatusCode::CONFLICT,
                code: None,
                failure: "reservation_expired",
            },
        }
    }

    /// Where the saga goes after `call`: on at the expected answer, failed otherwise —
    /// with the business failure, a refusal, or, once it gave up, unavailability.
    pub(super) fn next(self, call: Call) -> Next {
        let Refusal {
            status: refused,
            code: wanted,
            failure,
        } = self.refusal;
        match call {
            Call::Answer(status, _) if status == self.done => self.then,
            Call::Answer(status, body)
                if status == refused && wanted.is_none_or(|wanted| code(&body) == wanted) =>
            {
                Next::Fail {
                    failure,
                    reason: message(&body),
                }
            }
            Call::Answer(status, body) => Next::Fail {
                failure: self.service.refused,
                reason: format!(
                    "{} answered {status}: {}",
                    self.service.name,
                    message(&body)
                ),
            },
            Call::GaveUp(last) => Next::Fail {
                failure: self.service.unavailable,
                reason: last,
            },
            Call::LostLease => Next::LostLease,
        }
    }
}

/// Where the saga goes after a compensation's `call`: to `then` once it has a definite
/// answer (an unexpected one logged, since there is nothing left to undo it with), or
/// nowhere when the lease is lost.
pub(super) fn compensated(order: &str, what: &'static str, call: Call, then: Next) -> Next {
    match call {
        Call::Answer(status, body) => {
            if status != StatusCode::OK {
                tracing::error!(order, %status, body = %body, "{what} refused");
            }
            then
        }
        Call::GaveUp(_) | Call::LostLease => Next::LostLease,
    }
}

impl Sagas {
    /// Runs a forward step: its call, retried until definite or given up on.
    pub(super) async fn forward(&self, step: Forward) -> Next {
        let call = self
            .call(step.service.name, &step.path, &step.key, &step.body, true)
            .await;
        step.next(call)
    }

    /// Calls `service` until the answer is definite; a forward step (`give_up`) stops
    /// retrying after `settings.give_up`.
    pub(super) async fn call(
        &self,
        service: &str,
        path: &str,
        key: &str,
        body: &Value,
        give_up: bool,
    ) -> Call {
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
                .json(body);
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

/// The error code of an answer's body (`{"error": {"code", "message"}}`).
pub(super) fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

fn message(body: &Value) -> String {
    body["error"]["message"]
        .as_str()
        .map_or_else(|| body.to_string(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Line;

    fn order() -> Order {
        let line = Line {
            sku: "sku-mug".into(),
            quantity: 2,
            unit_price_cents: 1_400,
        };
        Order::new(
            "ord_1".into(),
            "k-1".into(),
            "acct-001".into(),
            vec![line],
            0,
        )
    }

    fn reserve() -> Forward {
        Forward::reserve(&order())
    }

    fn charge() -> Forward {
        Forward::charge(&order())
    }

    fn confirm() -> Forward {
        Forward::confirm(&order())
    }

    #[test]
    fn each_step_calls_with_its_own_key() {
        let steps = [reserve(), charge(), confirm()];
        let calls: Vec<_> = steps
            .iter()
            .map(|step| (step.service.name, step.path.as_str(), step.key.as_str()))
            .collect();
        assert_eq!(
            calls,
            [
                ("inventory", "/reservations", "ord_1:reserve"),
                ("payments", "/charges", "ord_1:charge"),
                (
                    "inventory",
                    "/reservations/ord_1:reserve/commit",
                    "ord_1:reserve"
                ),
            ]
        );
        assert_eq!(steps[1].body["amount_cents"], 2_800);
        assert_eq!(
            steps[0].body["items"],
            json!([{ "sku": "sku-mug", "quantity": 2 }])
        );
    }

    fn answer(status: u16, code: &str) -> Call {
        let body = json!({ "error": { "code": code, "message": format!("said {code}") } });
        Call::Answer(StatusCode::from_u16(status).unwrap(), body)
    }

    fn fail(failure: &'static str, reason: &str) -> Next {
        Next::Fail {
            failure,
            reason: reason.to_owned(),
        }
    }

    #[test]
    fn unknown_outcomes_are_retried_and_business_answers_are_not() {
        for status in [500, 502, 503, 504, 429, 408] {
            assert!(retryable(StatusCode::from_u16(status).unwrap()), "{status}");
        }
        for status in [200, 201, 400, 402, 404, 409] {
            assert!(
                !retryable(StatusCode::from_u16(status).unwrap()),
                "{status}"
            );
        }
    }

    #[test]
    fn the_expected_answer_moves_the_saga_on() {
        assert_eq!(charge().next(answer(201, "")), Next::Step(Step::Confirm));
        assert_eq!(reserve().next(answer(201, "")), Next::Step(Step::Charge));
        assert_eq!(confirm().next(answer(200, "")), Next::Finish("confirmed"));
    }

    #[test]
    fn a_business_answer_fails_the_order_with_its_reason() {
        assert_eq!(
            charge().next(answer(402, "insufficient_funds")),
            fail("declined", "said insufficient_funds")
        );
        assert_eq!(
            reserve().next(answer(409, "out_of_stock")),
            fail("out_of_stock", "said out_of_stock")
        );
        assert_eq!(
            confirm().next(answer(409, "expired")),
            fail("reservation_expired", "said expired")
        );
    }

    #[test]
    fn any_other_answer_is_a_refusal_naming_the_service() {
        assert_eq!(
            reserve().next(answer(409, "duplicate")),
            fail(
                "inventory_refused",
                "inventory answered 409 Conflict: said duplicate"
            )
        );
        assert_eq!(
            charge().next(answer(400, "bad_request")),
            fail(
                "payments_refused",
                "payments answered 400 Bad Request: said bad_request"
            )
        );
    }

    #[test]
    fn giving_up_fails_the_order_as_unavailable_and_a_lost_lease_stops() {
        assert_eq!(
            charge().next(Call::GaveUp("timed out".into())),
            fail("payments_unavailable", "timed out")
        );
        assert_eq!(
            reserve().next(Call::GaveUp("reset".into())),
            fail("inventory_unavailable", "reset")
        );
        assert_eq!(charge().next(Call::LostLease), Next::LostLease);
    }

    #[test]
    fn a_compensation_goes_on_after_any_definite_answer_and_never_gives_up() {
        let refund = || Next::Finish("failed");
        assert_eq!(
            compensated("ord_1", "refund", answer(200, ""), refund()),
            Next::Finish("failed")
        );
        assert_eq!(
            compensated("ord_1", "refund", answer(404, "unknown"), refund()),
            Next::Finish("failed")
        );
        // Never failed on silence: the compensation is left to whoever holds the lease.
        assert_eq!(
            compensated("ord_1", "refund", Call::GaveUp("reset".into()), refund()),
            Next::LostLease
        );
        assert_eq!(
            compensated("ord_1", "refund", Call::LostLease, refund()),
            Next::LostLease
        );
    }
}
