//! Checking the probes: HTTP requests, and a service's answers as the control plane's
//! counters saw them (every request, from every caller, not sampled).

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use conway_client::Client;
use conway_core::api::ServiceSeries;
use tokio::time::Instant;

use crate::experiment::{HttpProbe, Probe};
use crate::report::ProbeResult;

/// The probes, with what each service probe saw at its last check.
#[derive(Debug)]
pub(crate) struct Prober {
    client: Client,
    http: reqwest::Client,
    probes: Vec<Probe>,
    /// Per probe: requests and 5xx answers per 10-second step at the last check.
    seen: Vec<Option<BTreeMap<i64, (u64, u64)>>>,
    /// How far back the series is read: the interval and a step or two more.
    window: StdDuration,
}

impl Prober {
    pub(crate) fn new(client: Client, probes: Vec<Probe>, interval: StdDuration) -> Self {
        let step = 10;
        let wanted = interval.as_secs() + 2 * step;
        let window = StdDuration::from_secs((wanted.div_ceil(step) * step).clamp(20, 3600));
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            client,
            http,
            seen: vec![None; probes.len()],
            probes,
            window,
        }
    }

    /// Checks every probe once, in order.
    pub(crate) async fn check(&mut self) -> Vec<ProbeResult> {
        let mut results = Vec::with_capacity(self.probes.len());
        for i in 0..self.probes.len() {
            let probe = &self.probes[i];
            let result = match (&probe.http, &probe.service) {
                (Some(http), _) => check_http(&self.http, &probe.name, http).await,
                (None, Some(service)) => {
                    let series = self.client.series(service, Some(self.window)).await;
                    let probe = &self.probes[i];
                    check_service(probe, series, &mut self.seen[i])
                }
                (None, None) => ProbeResult {
                    probe: probe.name.clone(),
                    expected: String::new(),
                    observed: "nothing to check".into(),
                    ok: false,
                },
            };
            results.push(result);
        }
        results
    }
}

async fn check_http(client: &reqwest::Client, name: &str, probe: &HttpProbe) -> ProbeResult {
    let status = *probe.status.get_ref();
    let timeout = probe.timeout;
    let expected = format!("{status} within {timeout}");
    let started = Instant::now();
    let answer = client
        .get(probe.url.get_ref())
        .timeout(timeout.get())
        .send()
        .await;
    // The whole answer counts: a body that never ends is not an answer.
    let answer = match answer {
        Ok(response) => {
            let got = response.status().as_u16();
            response.bytes().await.map(|_| got)
        }
        Err(error) => Err(error),
    };
    let took = started.elapsed();
    let (observed, ok) = match answer {
        Ok(got) => (format!("{got} in {}", millis(took)), got == status),
        Err(error) if error.is_timeout() => (format!("no answer within {timeout}"), false),
        Err(error) if error.is_connect() => ("connection refused".into(), false),
        Err(error) => (format!("failed: {error}"), false),
    };
    ProbeResult {
        probe: name.to_owned(),
        expected,
        observed,
        ok,
    }
}

/// A service probe: over the requests since its last check (at the first check, the
/// whole window read), the share answered 5xx, and the slowest 99th percentile of the
/// 10-second steps those requests fell in.
fn check_service(
    probe: &Probe,
    series: Result<ServiceSeries, conway_client::ClientError>,
    seen: &mut Option<BTreeMap<i64, (u64, u64)>>,
) -> ProbeResult {
    let mut expected = Vec::new();
    if let Some(rate) = probe.max_error_rate {
        expected.push(format!("errors ≤ {rate}"));
    }
    if let Some(p99) = probe.max_p99 {
        expected.push(format!("p99 ≤ {p99}"));
    }
    let result = |observed: String, ok: bool| ProbeResult {
        probe: probe.name.clone(),
        expected: expected.join(", "),
        observed,
        ok,
    };
    let series = match series {
        Ok(series) => series,
        Err(error) => return result(format!("no figures: {error}"), false),
    };
    let step = series.step_seconds.max(1) as f64;
    let now: BTreeMap<i64, (u64, u64)> = series
        .points
        .iter()
        .map(|p| {
            let count = |per_second: f64| (per_second * step).round().max(0.0) as u64;
            (p.time_s, (count(p.rate), count(p.errors)))
        })
        .collect();
    let (mut requests, mut errors, mut p99_ms) = (0u64, 0u64, None::<f64>);
    for point in &series.points {
        let (total, failed) = now.get(&point.time_s).copied().unwrap_or_default();
        let (before, failed_before) = seen
            .as_ref()
            .and_then(|s| s.get(&point.time_s).copied())
            .unwrap_or_default();
        let new = total.saturating_sub(before);
        if new > 0 {
            requests += new;
            errors += failed.saturating_sub(failed_before);
            if let Some(p99) = point.p99_ms {
                p99_ms = Some(p99_ms.map_or(p99, |worst: f64| worst.max(p99)));
            }
        }
    }
    *seen = Some(now);
    if requests == 0 {
        return result("no new requests".into(), true);
    }
    let rate = errors as f64 / requests as f64;
    let mut ok = true;
    if let Some(max) = probe.max_error_rate
        && rate > max.fraction()
    {
        ok = false;
    }
    if let (Some(max), Some(p99)) = (probe.max_p99, p99_ms)
        && p99 > max.get().as_secs_f64() * 1000.0
    {
        ok = false;
    }
    let mut observed = format!("{} errors of {requests} requests", percent(rate));
    if let Some(p99) = p99_ms {
        observed.push_str(&format!(", p99 {p99:.0}ms"));
    }
    result(observed, ok)
}

fn millis(d: StdDuration) -> String {
    format!("{}ms", d.as_millis())
}

fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    if p == 0.0 || p >= 10.0 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

#[cfg(test)]
mod tests {
    use conway_core::api::SeriesPoint;

    use super::*;

    fn probe() -> Probe {
        Probe {
            name: "orders".into(),
            http: None,
            service: Some("orders".into()),
            max_error_rate: Some("1%".parse().expect("share")),
            max_p99: Some("500ms".parse().expect("duration")),
        }
    }

    fn series(points: &[(i64, f64, f64, Option<f64>)]) -> ServiceSeries {
        ServiceSeries {
            service: "orders".into(),
            step_seconds: 10,
            points: points
                .iter()
                .map(|&(time_s, rate, errors, p99_ms)| SeriesPoint {
                    time_s,
                    rate,
                    errors,
                    p99_ms,
                })
                .collect(),
        }
    }

    #[test]
    fn a_service_probe_counts_only_requests_since_its_last_check() {
        let mut seen = None;
        // First check: the whole window, 100 requests and no error.
        let first = check_service(
            &probe(),
            Ok(series(&[(0, 10.0, 0.0, Some(40.0))])),
            &mut seen,
        );
        assert!(first.ok, "{first:?}");
        assert_eq!(first.observed, "0% errors of 100 requests, p99 40ms");
        // Then 50 more in the same step, 10 of them failed: 20%, though the step holds 6.7%.
        let second = check_service(
            &probe(),
            Ok(series(&[(0, 15.0, 1.0, Some(45.0))])),
            &mut seen,
        );
        assert!(!second.ok, "{second:?}");
        assert_eq!(second.observed, "20% errors of 50 requests, p99 45ms");
        // A new step that is slow, and nothing new in the old one.
        let third = check_service(
            &probe(),
            Ok(series(&[
                (0, 15.0, 1.0, Some(45.0)),
                (10, 1.0, 0.0, Some(900.0)),
            ])),
            &mut seen,
        );
        assert!(!third.ok, "{third:?}");
        assert_eq!(third.observed, "0% errors of 10 requests, p99 900ms");
        // Nothing at all since: nothing to hold against it.
        let idle = check_service(
            &probe(),
            Ok(series(&[
                (0, 15.0, 1.0, Some(45.0)),
                (10, 1.0, 0.0, Some(900.0)),
            ])),
            &mut seen,
        );
        assert!(idle.ok && idle.observed == "no new requests", "{idle:?}");
    }
}
