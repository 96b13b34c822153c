//! Rules for each `[services.NAME]`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::{Report, is_service_name, root};
use crate::locate::Path;
use crate::manifest::{Faults, Manifest, Resilience, Service};
use crate::units::Share;

pub(super) fn check(manifest: &Manifest, report: &mut Report<'_, '_>) {
    for (name, service) in &manifest.services {
        let path = root().key("services").key(name);
        if !is_service_name(name) {
            report.error_at_key(
                &path,
                format!("invalid service name {name:?}: use lower-case letters, digits and '-', starting with a letter (at most 63)"),
            );
        }
        check_dependencies(manifest, name, service, &path, report);
        check_command(service, &path, report);
        check_replicas(service, &path, report);
        check_health(service, &path, report);
        check_split(&service.split, &path, report);
        check_resilience(&service.resilience, &path.key("resilience"), report);
        if let Some(faults) = &service.faults {
            check_faults(faults, &path.key("faults"), report);
        }
        for variable in service.env.keys() {
            if variable.is_empty() || variable.contains(['=', '\0']) {
                report.error_at_key(
                    &path.key("env").key(variable),
                    format!("invalid environment variable name {variable:?}"),
                );
            }
        }
    }
}

fn check_dependencies(
    manifest: &Manifest,
    name: &str,
    service: &Service,
    path: &Path,
    report: &mut Report<'_, '_>,
) {
    for (i, dependency) in service.depends_on.iter().enumerate() {
        let at = path.key("depends_on").index(i);
        if dependency == name {
            report.error(&at, format!("service {name:?} cannot depend on itself"));
        } else if manifest.service(dependency).is_none() {
            report.error(&at, unknown_service(manifest, dependency));
        }
    }
}

/// "unknown service "x"; the services are a, b"
pub(super) fn unknown_service(manifest: &Manifest, name: &str) -> String {
    let known: Vec<&str> = manifest.services.keys().map(String::as_str).collect();
    if known.is_empty() {
        format!("unknown service {name:?}: no services are declared")
    } else {
        format!(
            "unknown service {name:?}; the services are {}",
            known.join(", ")
        )
    }
}

fn check_command(service: &Service, path: &Path, report: &mut Report<'_, '_>) {
    for (key, command) in [("build", &service.build), ("run", &service.run)] {
        if command
            .as_ref()
            .is_some_and(|argv| argv.first().is_none_or(|program| program.is_empty()))
        {
            report.error(
                &path.key(key),
                format!("`{key}` needs a program to run: an argv such as [\"cargo\", \"build\"]"),
            );
        }
    }
    if service.is_external() {
        let present = [
            ("build", service.build.is_some()),
            ("replicas", service.replicas.is_some()),
            ("autoscale", service.autoscale.is_some()),
            ("workdir", service.workdir.is_some()),
            ("env", !service.env.is_empty()),
        ];
        for (key, _) in present.iter().filter(|(_, present)| *present) {
            report.error_at_key(
                &path.key(key),
                format!("`{key}` is for services Conway runs; this service has no `run`, so it is external"),
            );
        }
    } else if service.address.is_some() || !service.addresses.is_empty() {
        let key = if service.address.is_some() {
            "address"
        } else {
            "addresses"
        };
        report.error_at_key(&path.key(key), format!("`{key}` is for external services; this one has `run`, so Conway starts its instances"));
    }
    if let Some(address) = &service.address {
        check_address(address, &path.key("address"), report);
    }
    for (i, address) in service.addresses.iter().enumerate() {
        check_address(address, &path.key("addresses").index(i), report);
    }
}

fn check_address(address: &str, path: &Path, report: &mut Report<'_, '_>) {
    let valid = address.parse::<SocketAddr>().is_ok_and(|a| a.port() > 0)
        || address.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
    if !valid {
        report.error(
            path,
            format!("invalid address {address:?}: expected HOST:PORT, like \"127.0.0.1:9300\""),
        );
    }
}

fn check_replicas(service: &Service, path: &Path, report: &mut Report<'_, '_>) {
    let Some(autoscale) = &service.autoscale else {
        return;
    };
    let at = path.key("autoscale");
    if autoscale.max == 0 {
        report.error(&at.key("max"), "max must be at least 1");
    } else if autoscale.min == 0 {
        report.error(
            &at.key("min"),
            "min must be at least 1: scaling to zero is not supported (nothing would start a replica when requests come)",
        );
    } else if autoscale.min > autoscale.max {
        report.error(
            &at,
            format!(
                "autoscale bounds are empty: min {} > max {}",
                autoscale.min, autoscale.max
            ),
        );
    } else if let Some(replicas) = service
        .replicas
        .filter(|r| !(autoscale.min..=autoscale.max).contains(r))
    {
        report.error(
            &path.key("replicas"),
            format!(
                "replicas = {replicas} is outside the autoscale bounds {}..={}",
                autoscale.min, autoscale.max
            ),
        );
    }
    if autoscale.target_inflight == 0 {
        report.error(
            &at.key("target_inflight"),
            "target_inflight must be at least 1",
        );
    }
    if autoscale.panic_window.get() < std::time::Duration::from_secs(1) {
        report.error(
            &at.key("panic_window"),
            "panic_window must be at least 1s: the proxies report load once a second",
        );
    } else if autoscale.panic_window > autoscale.stable_window {
        report.error(
            &at.key("panic_window"),
            "panic_window must not be longer than stable_window",
        );
    }
}

fn check_health(service: &Service, path: &Path, report: &mut Report<'_, '_>) {
    let Some(health) = &service.health else {
        return;
    };
    let at = path.key("health");
    match (&health.http, health.tcp) {
        (Some(_), true) => report.error(
            &at,
            "choose one check: `http = \"/path\"` or `tcp = true`, not both",
        ),
        (None, false) => report.error(
            &at,
            "no check given: add `http = \"/health\"` or `tcp = true`",
        ),
        (Some(http), false) if !http.starts_with('/') => {
            report.error(
                &at.key("http"),
                format!("the health path {http:?} must start with '/'"),
            );
        }
        _ => {}
    }
    if health.interval.is_zero() {
        report.error(&at.key("interval"), "interval must be longer than zero");
    }
    if health
        .timeout
        .is_some_and(|t| t.is_zero() || t > health.interval)
    {
        report.error(
            &at.key("timeout"),
            "timeout must be longer than zero and no longer than interval",
        );
    }
    for (key, value) in [
        ("healthy_threshold", health.healthy_threshold),
        ("unhealthy_threshold", health.unhealthy_threshold),
    ] {
        if value == 0 {
            report.error(&at.key(key), format!("{key} must be at least 1"));
        }
    }
}

fn check_split(split: &BTreeMap<String, Share>, path: &Path, report: &mut Report<'_, '_>) {
    let total: u32 = split.values().map(|share| share.basis_points()).sum();
    if !split.is_empty() && total != Share::FULL.basis_points() {
        report.error(
            &path.key("split"),
            format!(
                "the split adds up to {}.{:02}%, not 100%",
                total / 100,
                total % 100
            ),
        );
    }
}

fn check_resilience(resilience: &Resilience, path: &Path, report: &mut Report<'_, '_>) {
    if resilience.timeout.is_zero() {
        report.error(&path.key("timeout"), "timeout must be longer than zero");
    }
    if let Some(per_try) = resilience.retries.per_try_timeout
        && (per_try.is_zero() || per_try > resilience.timeout)
    {
        report.error(
            &path.key("retries").key("per_try_timeout"),
            format!(
                "per_try_timeout must be longer than zero and no longer than the timeout ({})",
                resilience.timeout
            ),
        );
    }
    if let Some(breaker) = &resilience.circuit_breaker {
        let at = path.key("circuit_breaker");
        if !(breaker.failure_ratio > 0.0 && breaker.failure_ratio <= 1.0) {
            report.error(
                &at.key("failure_ratio"),
                "failure_ratio must be above 0.0 and at most 1.0",
            );
        }
        for (key, value) in [
            ("min_requests", breaker.min_requests),
            ("half_open_probes", breaker.half_open_probes),
        ] {
            if value == 0 {
                report.error(&at.key(key), format!("{key} must be at least 1"));
            }
        }
        for (key, value) in [("window", breaker.window), ("open_for", breaker.open_for)] {
            if value.is_zero() {
                report.error(&at.key(key), format!("{key} must be longer than zero"));
            }
        }
    }
    if let Some(outlier) = &resilience.outlier
        && outlier.consecutive_errors == 0
    {
        report.error(
            &path.key("outlier").key("consecutive_errors"),
            "consecutive_errors must be at least 1",
        );
    }
    if resilience.max_concurrency == Some(0) {
        report.error(
            &path.key("max_concurrency"),
            "max_concurrency must be at least 1",
        );
    }
}

/// Checks a `faults` table (a service's or a route's).
pub(super) fn check_faults(faults: &Faults, path: &Path, report: &mut Report<'_, '_>) {
    let percent_ok = |p: f64| (0.0..=100.0).contains(&p);
    if let Some(delay) = &faults.delay
        && !percent_ok(delay.percent)
    {
        report.error(
            &path.key("delay").key("percent"),
            "percent must be from 0 to 100",
        );
    }
    if let Some(abort) = &faults.abort {
        if !percent_ok(abort.percent) {
            report.error(
                &path.key("abort").key("percent"),
                "percent must be from 0 to 100",
            );
        }
        if !(400..=599).contains(&abort.status) {
            report.error(
                &path.key("abort").key("status"),
                "status must be an HTTP error status, 400 to 599",
            );
        }
    }
}
