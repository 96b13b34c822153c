//! The cross-check itself, on what the three services' audit endpoints return.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

/// An order line, as orders lists it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Line {
    pub(crate) sku: String,
    pub(crate) quantity: u64,
}

/// An order, as orders' `/internal/audit` lists it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Order {
    pub(crate) id: String,
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) step: String,
    pub(crate) lines: Vec<Line>,
    pub(crate) total_cents: i64,
    pub(crate) reservation_key: String,
    pub(crate) charge_key: String,
}

/// A reservation, as inventory's `/internal/audit` lists it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Reservation {
    pub(crate) key: String,
    pub(crate) order_id: String,
    pub(crate) items: Vec<Line>,
    pub(crate) state: String,
}

/// A charge, as payments' `/internal/audit` lists it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Charge {
    pub(crate) key: String,
    pub(crate) order_id: String,
    pub(crate) amount_cents: i64,
    pub(crate) status: String,
}

/// What the audit found.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) orders: usize,
    pub(crate) confirmed: usize,
    pub(crate) failed: usize,
    pub(crate) pending: usize,
    pub(crate) discrepancies: Vec<String>,
}

fn units(lines: &[Line]) -> BTreeMap<&str, u64> {
    let mut units = BTreeMap::new();
    for line in lines {
        *units.entry(line.sku.as_str()).or_default() += line.quantity;
    }
    units
}

/// Cross-checks: every confirmed order has its stock taken (its reservation committed,
/// for exactly its items) and its payment charged exactly once (for its total); every
/// failed order holds no stock and no net charge; nothing is held or charged for an
/// order that does not exist; inventory's stock balances.
pub(crate) fn check(
    orders: &[Order],
    reservations: &[Reservation],
    charges: &[Charge],
    unbalanced: &[String],
) -> Report {
    let mut report = Report {
        orders: orders.len(),
        ..Report::default()
    };
    let mut reservations_of: HashMap<&str, Vec<&Reservation>> = HashMap::new();
    for reservation in reservations {
        reservations_of
            .entry(&reservation.order_id)
            .or_default()
            .push(reservation);
    }
    let mut charges_of: HashMap<&str, Vec<&Charge>> = HashMap::new();
    for charge in charges {
        charges_of.entry(&charge.order_id).or_default().push(charge);
    }
    let mut problem =
        |order: &str, text: String| report.discrepancies.push(format!("order {order}: {text}"));
    for order in orders {
        let holding: Vec<&&Reservation> = reservations_of
            .get(order.id.as_str())
            .into_iter()
            .flatten()
            .filter(|r| r.state == "held" || r.state == "committed")
            .collect();
        let captured: Vec<&&Charge> = charges_of
            .get(order.id.as_str())
            .into_iter()
            .flatten()
            .filter(|c| c.status == "captured")
            .collect();
        match order.status.as_str() {
            "confirmed" => {
                match holding.as_slice() {
                    [only] if only.key == order.reservation_key && only.state == "committed" => {
                        if units(&only.items) != units(&order.lines) {
                            problem(
                                &order.id,
                                format!(
                                    "reservation {} holds other items than the order",
                                    only.key
                                ),
                            );
                        }
                    }
                    [] => problem(&order.id, "confirmed, but no stock was taken".into()),
                    found => problem(
                        &order.id,
                        format!(
                            "confirmed, but its stock is {}",
                            found
                                .iter()
                                .map(|r| format!("{} {}", r.key, r.state))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ),
                }
                match captured.as_slice() {
                    [only] if only.key == order.charge_key => {
                        if only.amount_cents != order.total_cents {
                            problem(
                                &order.id,
                                format!(
                                    "charged {} cents for a total of {}",
                                    only.amount_cents, order.total_cents
                                ),
                            );
                        }
                    }
                    [] => problem(&order.id, "confirmed, but never charged".into()),
                    found => problem(&order.id, format!("charged {} times", found.len())),
                }
                report.confirmed += 1;
            }
            "failed" => {
                for reservation in &holding {
                    problem(
                        &order.id,
                        format!(
                            "failed, but reservation {} is still {}",
                            reservation.key, reservation.state
                        ),
                    );
                }
                for charge in &captured {
                    problem(
                        &order.id,
                        format!(
                            "failed, but charge {} of {} cents was never refunded",
                            charge.key, charge.amount_cents
                        ),
                    );
                }
                report.failed += 1;
            }
            status => {
                problem(
                    &order.id,
                    format!("still {status} at step {:?}", order.step),
                );
                report.pending += 1;
            }
        }
    }
    let known: std::collections::HashSet<&str> = orders.iter().map(|o| o.id.as_str()).collect();
    for reservation in reservations {
        if !known.contains(reservation.order_id.as_str())
            && (reservation.state == "held" || reservation.state == "committed")
        {
            report.discrepancies.push(format!(
                "reservation {} is {} for an unknown order {:?}",
                reservation.key, reservation.state, reservation.order_id
            ));
        }
    }
    for charge in charges {
        if !known.contains(charge.order_id.as_str()) && charge.status == "captured" {
            report.discrepancies.push(format!(
                "charge {} of {} cents is captured for an unknown order {:?}",
                charge.key, charge.amount_cents, charge.order_id
            ));
        }
    }
    for line in unbalanced {
        report
            .discrepancies
            .push(format!("inventory does not balance: {line}"));
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(id: &str, status: &str) -> Order {
        Order {
            id: id.into(),
            status: status.into(),
            step: "done".into(),
            lines: vec![Line {
                sku: "sku-mug".into(),
                quantity: 2,
            }],
            total_cents: 2_800,
            reservation_key: format!("{id}:reserve"),
            charge_key: format!("{id}:charge"),
        }
    }

    fn reservation(id: &str, state: &str, quantity: u64) -> Reservation {
        Reservation {
            key: format!("{id}:reserve"),
            order_id: id.into(),
            items: vec![Line {
                sku: "sku-mug".into(),
                quantity,
            }],
            state: state.into(),
        }
    }

    fn charge(id: &str, key: &str, status: &str, amount: i64) -> Charge {
        Charge {
            key: key.into(),
            order_id: id.into(),
            amount_cents: amount,
            status: status.into(),
        }
    }

    #[test]
    fn a_consistent_shop_is_clean() {
        let orders = [
            order("a", "confirmed"),
            order("b", "failed"),
            order("c", "failed"),
        ];
        let reservations = [
            reservation("a", "committed", 2),
            reservation("b", "released", 2),
            reservation("c", "rejected", 2),
        ];
        let charges = [
            charge("a", "a:charge", "captured", 2_800),
            charge("b", "b:charge", "refunded", 2_800),
            charge("c", "c:charge", "declined", 2_800),
        ];
        let report = check(&orders, &reservations, &charges, &[]);
        assert!(
            report.discrepancies.is_empty(),
            "{:?}",
            report.discrepancies
        );
        assert_eq!((report.confirmed, report.failed, report.pending), (1, 2, 0));
    }

    #[test]
    fn each_kind_of_inconsistency_is_reported() {
        let orders = [
            order("double", "confirmed"),
            order("unpaid", "confirmed"),
            order("short", "confirmed"),
            order("holding", "failed"),
            order("stuck", "pending"),
        ];
        let reservations = [
            reservation("double", "committed", 2),
            reservation("unpaid", "committed", 2),
            reservation("short", "committed", 1),
            reservation("holding", "held", 2),
            reservation("ghost", "held", 1),
        ];
        let charges = [
            charge("double", "double:charge", "captured", 2_800),
            charge("double", "double:other", "captured", 2_800),
            charge("short", "short:charge", "captured", 2_800),
            charge("holding", "holding:charge", "captured", 2_800),
        ];
        let report = check(
            &orders,
            &reservations,
            &charges,
            &["sku-mug: off by one".into()],
        );
        let all = report.discrepancies.join("\n");
        for expected in [
            "order double: charged 2 times",
            "order unpaid: confirmed, but never charged",
            "order short: reservation short:reserve holds other items",
            "order holding: failed, but reservation holding:reserve is still held",
            "order holding: failed, but charge holding:charge of 2800 cents was never refunded",
            "order stuck: still pending",
            "reservation ghost:reserve is held for an unknown order",
            "inventory does not balance: sku-mug: off by one",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
        assert_eq!(report.discrepancies.len(), 8, "{all}");
    }
}
