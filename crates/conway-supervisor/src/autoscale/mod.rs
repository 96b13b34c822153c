//! The autoscaler: for each service with `autoscale` (and a `run` command), reads the
//! service's load from the control plane every [`SAMPLE_EVERY`]
//! (`GET /v1/services/{name}/load`, which the proxies report to), decides every
//! [`DECIDE_EVERY`] as Knative's KPA does ([`decide`]), and scales through the
//! supervisor. Each change is an [`Event::Autoscaled`] and a log line; the last decision
//! of each service is kept for metrics ([`Autoscaler::decisions`]).
//!
//! Compare the Kubernetes HPA: it decides every 15 s and, by default, waits 300 s before
//! scaling down.

pub mod decide;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use conway_client::Client;
use conway_core::Manifest;
use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::status::Event;
use crate::supervisor::Supervisor;
use decide::{Decider, Decision, Policy};

/// How often the load is read (the proxies report every second).
pub const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// How often the autoscaler decides.
pub const DECIDE_EVERY: Duration = Duration::from_secs(2);

/// The last decision about each service. Cheap to clone: clones share the decisions.
#[derive(Debug, Clone, Default)]
pub struct Decisions(Arc<Mutex<BTreeMap<String, Decision>>>);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabel {
    service: String,
}

impl Decisions {
    /// The last decision about `service`.
    pub fn get(&self, service: &str) -> Option<Decision> {
        self.0.lock().get(service).copied()
    }

    fn set(&self, service: &str, decision: Decision) {
        self.0.lock().insert(service.to_owned(), decision);
    }

    /// The decisions as Prometheus text (format 0.0.4): per service, the replicas
    /// wanted (`conway_autoscale_desired_replicas`), the load over each window and
    /// whether it panics.
    pub fn encode(&self) -> String {
        let desired = Family::<ServiceLabel, Gauge>::default();
        let stable = Family::<ServiceLabel, Gauge<f64, AtomicU64>>::default();
        let panic = Family::<ServiceLabel, Gauge<f64, AtomicU64>>::default();
        let panicking = Family::<ServiceLabel, Gauge>::default();
        for (service, decision) in self.0.lock().iter() {
            let label = ServiceLabel {
                service: service.clone(),
            };
            desired
                .get_or_create(&label)
                .set(i64::from(decision.desired));
            stable.get_or_create(&label).set(decision.stable);
            panic.get_or_create(&label).set(decision.panic);
            panicking
                .get_or_create(&label)
                .set(i64::from(decision.panicking));
        }
        let mut registry = Registry::with_prefix("conway_autoscale");
        registry.register(
            "desired_replicas",
            "Replicas the autoscaler wants, by service",
            desired,
        );
        registry.register(
            "stable_inflight",
            "In-flight requests averaged over the stable window, by service",
            stable,
        );
        registry.register(
            "panic_inflight",
            "In-flight requests averaged over the panic window, by service",
            panic,
        );
        registry.register(
            "panicking",
            "1 while the autoscaler is in panic mode, by service",
            panicking,
        );
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
        out
    }
}

/// The running autoscaler; dropping it stops it.
#[derive(Debug)]
pub struct Autoscaler {
    tasks: Vec<JoinHandle<()>>,
    decisions: Decisions,
}

impl Autoscaler {
    /// Starts deciding for every service of `manifest` that has `autoscale` and `run`,
    /// keeping each last decision in `decisions`.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn start(
        manifest: &Manifest,
        supervisor: &Supervisor,
        client: &Client,
        decisions: Decisions,
    ) -> Self {
        let tasks = manifest
            .services
            .iter()
            .filter(|(_, service)| !service.is_external())
            .filter_map(|(name, service)| {
                let policy = Policy::from(service.autoscale.as_ref()?);
                let scaling = Scaling {
                    service: name.clone(),
                    decider: Decider::new(policy),
                    supervisor: supervisor.clone(),
                    client: client.clone(),
                    decisions: decisions.clone(),
                };
                Some(tokio::spawn(scaling.run()))
            })
            .collect();
        Self { tasks, decisions }
    }

    /// Whether any service is autoscaled.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// The last decision about each autoscaled service.
    pub fn decisions(&self) -> &Decisions {
        &self.decisions
    }
}

impl Drop for Autoscaler {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// One service's loop.
struct Scaling {
    service: String,
    decider: Decider,
    supervisor: Supervisor,
    client: Client,
    decisions: Decisions,
}

impl Scaling {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let per_decision = (DECIDE_EVERY.as_millis() / SAMPLE_EVERY.as_millis()).max(1);
        let mut sampled = 0;
        loop {
            tick.tick().await;
            match self.client.service_load(&self.service).await {
                Ok(load) if load.proxies.is_empty() => {
                    // No proxy reports (none runs, or none reaches the control plane):
                    // no sample, rather than a zero that would scale the service down.
                    tracing::debug!(service = %self.service, "no proxy reports load");
                }
                Ok(load) => self.decider.record(Instant::now(), load.inflight),
                Err(error) => {
                    tracing::debug!(service = %self.service, %error, "no load sample");
                }
            }
            sampled += 1;
            if sampled % per_decision == 0 {
                self.decide();
            }
        }
    }

    fn decide(&mut self) {
        let status = self.supervisor.status();
        let Some(service) = status.services.get(&self.service).filter(|s| s.started) else {
            return;
        };
        let current = service.replicas;
        let ready = u32::try_from(service.healthy()).unwrap_or(u32::MAX);
        let Some(decision) = self.decider.decide(Instant::now(), current, ready) else {
            return;
        };
        self.decisions.set(&self.service, decision);
        if decision.desired == current {
            return;
        }
        tracing::info!(
            service = %self.service,
            from = current,
            to = decision.desired,
            ready,
            stable = decision.stable,
            panic = decision.panic,
            panicking = decision.panicking,
            "autoscaling"
        );
        match self.supervisor.scale(&self.service, decision.desired) {
            Ok(_) => self.supervisor.report(Event::Autoscaled {
                service: self.service.clone(),
                from: current,
                to: decision.desired,
                inflight: decision.stable,
                panic: decision.panic,
                panicking: decision.panicking,
            }),
            Err(crate::ScaleError::Stopping) => {}
            Err(error) => {
                tracing::warn!(service = %self.service, %error, "cannot autoscale");
            }
        }
    }
}
