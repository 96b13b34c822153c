//! Dependency cycles: legal, reported as warnings at the edge that closes them.

use super::{assert_errors, assert_valid, assert_warnings};

#[test]
fn a_dependency_graph_without_cycles_draws_no_warning() {
    // A diamond: two paths to one service are not a cycle.
    assert_warnings(
        r#"[services.web]
run = ["web"]
depends_on = ["orders", "catalog"]
[services.orders]
run = ["orders"]
depends_on = ["db"]
[services.catalog]
run = ["catalog"]
depends_on = ["db"]
[services.db]
address = "127.0.0.1:5432"
"#,
        &[],
    );
}

#[test]
fn a_dependency_cycle_is_a_warning_not_an_error() {
    let source = r#"[services.orders]
run = ["orders"]
depends_on = ["payments"]
[services.payments]
run = ["payments"]
depends_on = ["ledger"]
[services.ledger]
run = ["ledger"]
depends_on = ["orders"]
"#;
    assert_valid(source);
    // Named from the smallest name, at that service's edge into the cycle.
    assert_warnings(
        source,
        &[(
            9,
            15,
            &[
                "dependency cycle: ledger → orders → payments → ledger",
                "start together",
            ],
        )],
    );
}

#[test]
fn each_cycle_is_reported_once() {
    let source = r#"[services.a]
run = ["a"]
depends_on = ["x", "b"]
[services.b]
run = ["b"]
depends_on = ["a"]
[services.c]
run = ["c"]
depends_on = ["d"]
[services.d]
run = ["d"]
depends_on = ["c"]
[services.x]
address = "127.0.0.1:1"
"#;
    assert_warnings(
        source,
        &[
            (3, 20, &["dependency cycle: a → b → a"]),
            (9, 15, &["dependency cycle: c → d → c"]),
        ],
    );
}

#[test]
fn a_cycle_does_not_hide_errors_and_errors_do_not_hide_it() {
    let source = r#"[services.a]
run = ["a"]
depends_on = ["b", "nope"]
[services.b]
run = ["b"]
depends_on = ["a"]
"#;
    assert_errors(source, &[(3, 20, &["unknown service \"nope\""])]);
    let found = super::warnings(source);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].0, found[0].1), (3, 15));
}
