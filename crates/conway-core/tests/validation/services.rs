//! The rules of `[services.NAME]`: names, dependencies, commands, external services,
//! addresses, replicas and autoscale, health checks, splits, resilience, faults, env.

use super::{assert_error, assert_errors, assert_valid};

#[test]
fn service_names_are_dns_labels() {
    assert_valid("[services.web-2]\nrun = [\"web\"]\n");
    assert_error(
        "[services.Web_App]\nrun = [\"web\"]\n",
        1,
        11,
        &["invalid service name \"Web_App\"", "lower-case"],
    );
    assert_error(
        "[services.web-]\nrun = [\"web\"]\n",
        1,
        11,
        &["invalid service name \"web-\""],
    );
    assert_error(
        "[services.\"2fa\"]\nrun = [\"web\"]\n",
        1,
        11,
        &["invalid service name \"2fa\"", "starting with a letter"],
    );
    let long = "a".repeat(64);
    assert_error(
        &format!("[services.{long}]\nrun = [\"web\"]\n"),
        1,
        11,
        &["invalid service name", "at most 63"],
    );
}

#[test]
fn a_service_depends_on_declared_services_only() {
    assert_valid(
        "[services.web]\nrun = [\"web\"]\ndepends_on = [\"db\"]\n[services.db]\naddress = \"127.0.0.1:5432\"\n",
    );
    assert_error(
        "[services.web]\nrun = [\"web\"]\ndepends_on = [\"db\", \"cache\"]\n[services.db]\naddress = \"127.0.0.1:5432\"\n",
        3,
        21,
        &["unknown service \"cache\"", "the services are db, web"],
    );
}

#[test]
fn a_service_cannot_depend_on_itself() {
    assert_error(
        "[services.web]\nrun = [\"web\"]\ndepends_on = [\"web\"]\n",
        3,
        15,
        &["service \"web\" cannot depend on itself"],
    );
}

#[test]
fn commands_need_a_program() {
    assert_valid("[services.web]\nbuild = [\"make\"]\nrun = [\"./web\", \"--port\", \"$PORT\"]\n");
    assert_error(
        "[services.web]\nrun = []\n",
        2,
        7,
        &["`run` needs a program"],
    );
    assert_error(
        "[services.web]\nbuild = [\"\", \"x\"]\nrun = [\"web\"]\n",
        2,
        9,
        &["`build` needs a program"],
    );
}

#[test]
fn an_external_service_takes_no_build_replicas_autoscale_env_or_workdir() {
    assert_valid("[services.billing]\naddress = \"127.0.0.1:9300\"\nowner = \"team-billing\"\n");
    let source = r#"[services.billing]
address = "127.0.0.1:9300"
build = ["make"]
replicas = 2
autoscale = { max = 3 }
env = { MODE = "x" }
workdir = "billing"
"#;
    assert_errors(
        source,
        &[
            (3, 1, &["`build` is for services Conway runs", "no `run`"]),
            (4, 1, &["`replicas` is for services Conway runs"]),
            (5, 1, &["`autoscale` is for services Conway runs"]),
            (6, 1, &["`env` is for services Conway runs"]),
            (7, 1, &["`workdir` is for services Conway runs"]),
        ],
    );
}

#[test]
fn a_service_conway_runs_takes_no_address() {
    assert_error(
        "[services.web]\nrun = [\"web\"]\naddress = \"127.0.0.1:9000\"\n",
        3,
        1,
        &["`address` is for external services", "has `run`"],
    );
    assert_error(
        "[services.web]\nrun = [\"web\"]\naddresses = [\"127.0.0.1:9000\"]\n",
        3,
        1,
        &["`addresses` is for external services"],
    );
}

#[test]
fn addresses_are_host_and_port() {
    assert_valid(
        "[services.db]\naddresses = [\"127.0.0.1:5432\", \"db-1.internal:5432\", \"[::1]:5432\"]\n",
    );
    assert_error(
        "[services.db]\naddress = \"db.internal\"\n",
        2,
        11,
        &["invalid address \"db.internal\"", "HOST:PORT"],
    );
    assert_errors(
        "[services.db]\naddresses = [\":5432\", \"db:0\", \"127.0.0.1:0\", \"db:99999\", \"d b:1\"]\n",
        &[
            (2, 14, &["invalid address \":5432\""]),
            (2, 23, &["invalid address \"db:0\""]),
            (2, 31, &["invalid address \"127.0.0.1:0\""]),
            (2, 46, &["invalid address \"db:99999\""]),
            (2, 58, &["invalid address \"d b:1\""]),
        ],
    );
}

#[test]
fn replicas_lie_within_the_autoscale_bounds() {
    assert_valid(
        "[services.web]\nrun = [\"web\"]\nreplicas = 3\nautoscale = { min = 2, max = 4 }\n",
    );
    assert_valid(
        "[services.web]\nrun = [\"web\"]\nreplicas = 4\nautoscale = { min = 2, max = 4 }\n",
    );
    assert_error(
        "[services.web]\nrun = [\"web\"]\nreplicas = 5\nautoscale = { min = 2, max = 4 }\n",
        3,
        12,
        &["replicas = 5 is outside the autoscale bounds 2..=4"],
    );
    assert_error(
        "[services.web]\nrun = [\"web\"]\nreplicas = 1\nautoscale = { min = 2, max = 4 }\n",
        3,
        12,
        &["replicas = 1 is outside"],
    );
}

#[test]
fn autoscale_bounds_are_not_empty() {
    assert_error(
        "[services.web]\nrun = [\"web\"]\nautoscale = { min = 5, max = 4 }\n",
        3,
        13,
        &["autoscale bounds are empty", "min 5 > max 4"],
    );
    assert_error(
        "[services.web]\nrun = [\"web\"]\nautoscale = { min = 0, max = 0 }\n",
        3,
        30,
        &["max must be at least 1"],
    );
    assert_error(
        "[services.web]\nrun = [\"web\"]\nautoscale = { min = 0, max = 2 }\n",
        3,
        21,
        &["min must be at least 1", "scaling to zero is not supported"],
    );
}

#[test]
fn autoscale_targets_and_windows_make_sense() {
    assert_valid(
        "[services.web]\nrun = [\"web\"]\nautoscale = { max = 4, target_inflight = 1, stable_window = \"30s\", panic_window = \"30s\" }\n",
    );
    assert_errors(
        "[services.web]\nrun = [\"web\"]\nautoscale = { max = 4, target_inflight = 0, stable_window = \"10s\", panic_window = \"1m\" }\n",
        &[
            (3, 42, &["target_inflight must be at least 1"]),
            (
                3,
                83,
                &["panic_window must not be longer than stable_window"],
            ),
        ],
    );
    assert_error(
        "[services.web]\nrun = [\"web\"]\nautoscale = { max = 4, stable_window = \"10s\", panic_window = \"500ms\" }\n",
        3,
        62,
        &["panic_window must be at least 1s", "once a second"],
    );
}

#[test]
fn a_health_check_is_http_or_tcp() {
    assert_valid("[services.web]\nrun = [\"web\"]\nhealth = { http = \"/health\" }\n");
    assert_valid("[services.web]\nrun = [\"web\"]\nhealth = { tcp = true }\n");
    assert_error(
        "[services.web]\nrun = [\"web\"]\nhealth = { http = \"/health\", tcp = true }\n",
        3,
        10,
        &["choose one check", "not both"],
    );
    assert_error(
        "[services.web]\nrun = [\"web\"]\nhealth = { interval = \"2s\" }\n",
        3,
        10,
        &["no check given"],
    );
    assert_error(
        "[services.web]\nrun = [\"web\"]\n[services.web.health]\ntcp = false\n",
        3,
        1,
        &["no check given"],
    );
    assert_error(
        "[services.web]\nrun = [\"web\"]\nhealth = { http = \"health\" }\n",
        3,
        19,
        &["the health path \"health\" must start with '/'"],
    );
}

#[test]
fn a_health_check_ends_before_the_next_begins() {
    // Without a timeout, the default (500ms) shrinks to a shorter interval.
    let manifest = assert_valid(
        "[services.web]\nrun = [\"web\"]\nhealth = { tcp = true, interval = \"200ms\" }\n",
    );
    let health = manifest.services["web"].health();
    assert_eq!(
        health.timeout().get(),
        std::time::Duration::from_millis(200)
    );
    assert_valid(
        "[services.web]\nrun = [\"web\"]\nhealth = { tcp = true, interval = \"2s\", timeout = \"2s\" }\n",
    );
    assert_error(
        "[services.web]\nrun = [\"web\"]\nhealth = { tcp = true, interval = \"1s\", timeout = \"2s\" }\n",
        3,
        51,
        &["timeout must be longer than zero and no longer than interval"],
    );
    assert_error(
        "[services.web]\nrun = [\"web\"]\nhealth = { tcp = true, timeout = \"0s\" }\n",
        3,
        34,
        &["timeout must be longer than zero"],
    );
    assert_errors(
        "[services.web]\nrun = [\"web\"]\nhealth = { tcp = true, interval = \"0ms\", healthy_threshold = 0, unhealthy_threshold = 0 }\n",
        &[
            (3, 35, &["interval must be longer than zero"]),
            (3, 62, &["healthy_threshold must be at least 1"]),
            (3, 87, &["unhealthy_threshold must be at least 1"]),
        ],
    );
}

#[test]
fn a_split_adds_up_to_100_percent() {
    assert_valid(
        "[services.web]\nrun = [\"web\"]\nsplit = { \"1.4.0\" = \"90%\", \"1.5.0\" = \"10%\" }\n",
    );
    assert_valid(
        "[services.web]\nrun = [\"web\"]\nsplit = { a = \"33.33%\", b = \"33.33%\", c = \"33.34%\" }\n",
    );
    assert_error(
        "[services.web]\nrun = [\"web\"]\nsplit = { \"1.4.0\" = \"90%\", \"1.5.0\" = \"5%\" }\n",
        3,
        9,
        &["the split adds up to 95.00%, not 100%"],
    );
    assert_error(
        "[services.web]\nrun = [\"web\"]\n[services.web.split]\na = \"33.33%\"\nb = \"33.33%\"\nc = \"33.33%\"\n",
        3,
        1,
        &["the split adds up to 99.99%"],
    );
    assert_error(
        "[services.web]\nrun = [\"web\"]\nsplit = { a = \"100%\", b = \"0.01%\" }\n",
        3,
        9,
        &["100.01%"],
    );
}

#[test]
fn the_whole_deadline_is_longer_than_zero() {
    assert_error(
        "[services.web]\nrun = [\"web\"]\nresilience.timeout = \"0s\"\n",
        3,
        22,
        &["timeout must be longer than zero"],
    );
}

#[test]
fn a_try_fits_in_the_whole_deadline() {
    assert_valid(
        "[services.web]\nrun = [\"web\"]\nresilience = { timeout = \"2s\", retries = { per_try_timeout = \"2s\" } }\n",
    );
    assert_error(
        "[services.web]\nrun = [\"web\"]\nresilience = { timeout = \"1s\", retries = { per_try_timeout = \"1500ms\" } }\n",
        3,
        62,
        &["per_try_timeout must be", "no longer than the timeout (1s)"],
    );
    assert_error(
        "[services.web]\nrun = [\"web\"]\n[services.web.resilience.retries]\nper_try_timeout = \"20s\"\n",
        4,
        19,
        &["no longer than the timeout (15s)"],
    );
    assert_error(
        "[services.web]\nrun = [\"web\"]\nresilience.retries.per_try_timeout = \"0ms\"\n",
        3,
        38,
        &["per_try_timeout must be longer than zero"],
    );
}

#[test]
fn circuit_breaker_settings_make_sense() {
    assert_valid(
        "[services.web]\nrun = [\"web\"]\nresilience.circuit_breaker = { failure_ratio = 1.0, min_requests = 1 }\n",
    );
    let source = r#"[services.web]
run = ["web"]
[services.web.resilience.circuit_breaker]
failure_ratio = 0.0
min_requests = 0
window = "0s"
open_for = "0s"
half_open_probes = 0
"#;
    assert_errors(
        source,
        &[
            (4, 17, &["failure_ratio must be above 0.0 and at most 1.0"]),
            (5, 16, &["min_requests must be at least 1"]),
            (6, 10, &["window must be longer than zero"]),
            (7, 12, &["open_for must be longer than zero"]),
            (8, 20, &["half_open_probes must be at least 1"]),
        ],
    );
    assert_error(
        "[services.web]\nrun = [\"web\"]\nresilience.circuit_breaker = { failure_ratio = 1.5 }\n",
        3,
        48,
        &["failure_ratio must be above 0.0 and at most 1.0"],
    );
    assert_error(
        "[services.web]\nrun = [\"web\"]\nresilience.circuit_breaker = { failure_ratio = nan }\n",
        3,
        48,
        &["failure_ratio"],
    );
}

#[test]
fn outliers_and_concurrency_count_from_one() {
    assert_valid(
        "[services.web]\nrun = [\"web\"]\nresilience = { outlier = { consecutive_errors = 1 }, max_concurrency = 1 }\n",
    );
    assert_errors(
        "[services.web]\nrun = [\"web\"]\nresilience = { outlier = { consecutive_errors = 0 }, max_concurrency = 0 }\n",
        &[
            (3, 49, &["consecutive_errors must be at least 1"]),
            (3, 72, &["max_concurrency must be at least 1"]),
        ],
    );
}

#[test]
fn faults_take_a_percentage_and_an_error_status() {
    assert_valid(
        "[services.web]\nrun = [\"web\"]\nfaults = { delay = { percent = 100, duration = \"1s\" }, abort = { percent = 0, status = 503 } }\n",
    );
    let source = r#"[services.web]
run = ["web"]
[services.web.faults]
delay = { percent = 100.5, duration = "1s" }
abort = { percent = -1, status = 302 }
"#;
    assert_errors(
        source,
        &[
            (4, 21, &["percent must be from 0 to 100"]),
            (5, 21, &["percent must be from 0 to 100"]),
            (5, 34, &["status must be an HTTP error status, 400 to 599"]),
        ],
    );
}

#[test]
fn environment_variable_names_hold_no_equals_sign() {
    assert_valid("[services.web]\nrun = [\"web\"]\nenv = { RUST_LOG = \"debug\" }\n");
    assert_error(
        "[services.web]\nrun = [\"web\"]\nenv = { \"A=B\" = \"x\" }\n",
        3,
        9,
        &["invalid environment variable name \"A=B\""],
    );
}
