//! Health checking: one checker, run by whoever is closest to an instance — the
//! supervisor for the instances it runs, the control plane for external ones.
//!
//! A check is an HTTP GET that must answer 2xx ([`HttpProbe`]) or a TCP connect
//! ([`TcpProbe`]), each bounded by a timeout; any other check implements [`Probe`].
//! Outcomes count against thresholds as Consul and Envoy count them ([`HealthTracker`]):
//! a new instance is [`HealthState::Starting`], becomes healthy after
//! `healthy_threshold` consecutive passes and unhealthy after `unhealthy_threshold`
//! consecutive failures. The [`Checker`] runs the checks of many targets in the
//! background, every `interval`, and reports each change of state as a [`HealthEvent`].
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use conway_core::manifest::Health;
//! use conway_registry::health::Checker;
//!
//! let (checker, mut events) = Checker::new();
//! let health = Health { http: Some("/health".into()), tcp: false, ..Health::default() };
//! checker.add("orders-1".to_owned(), "127.0.0.1:9000".parse()?, &health)?;
//! while let Some(event) = events.recv().await {
//!     println!("{:?} is {} ({})", event.id, event.to, event.reason);
//! }
//! # Ok(())
//! # }
//! ```

mod checker;
mod http;
mod probe;
mod tracker;

pub use checker::{Checker, HealthEvent};
pub use http::{HttpProbe, MAX_BODY_BYTES, USER_AGENT_VALUE};
pub use probe::{Probe, ProbeConfigError, ProbeError, TcpProbe, probe_for};
pub use tracker::{HealthTracker, Transition};

/// Where a target stands, as its checks tell: the registry's instance states.
pub use conway_core::api::InstanceState as HealthState;

#[cfg(test)]
mod tests {
    use super::HealthState;

    #[test]
    fn states_serialize_in_lower_case_both_ways() {
        for (state, name) in [
            (HealthState::Starting, "starting"),
            (HealthState::Healthy, "healthy"),
            (HealthState::Unhealthy, "unhealthy"),
        ] {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<HealthState>(&json).unwrap(), state);
            assert_eq!(state.to_string(), name);
        }
        assert!(serde_json::from_str::<HealthState>("\"Healthy\"").is_err());
    }

    #[test]
    fn only_healthy_is_healthy() {
        assert!(HealthState::Healthy.is_healthy());
        assert!(!HealthState::Starting.is_healthy());
        assert!(!HealthState::Unhealthy.is_healthy());
    }
}
