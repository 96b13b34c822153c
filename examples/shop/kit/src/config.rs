//! The environment an instance gets from Conway's supervisor (ARCHITECTURE.md,
//! "Environment a supervised instance gets"), with defaults for running by hand.

use std::path::PathBuf;

/// One instance's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `PORT`: where to listen (on loopback); 0 picks a free port.
    pub port: u16,
    /// `DATA_DIR`: the service's data folder, shared by its replicas.
    pub data_dir: PathBuf,
    /// `CONWAY_SERVICE`: the service's name.
    pub service: String,
    /// `CONWAY_INSTANCE`: this instance's id (`orders-2`).
    pub instance: String,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: where spans go, when set.
    pub otlp_endpoint: Option<String>,
}

impl Config {
    /// Reads the environment; `service` names the service when `CONWAY_SERVICE` is unset.
    pub fn from_env(service: &str) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        let service = var("CONWAY_SERVICE").unwrap_or_else(|| service.to_owned());
        Self {
            port: var("PORT").and_then(|port| port.parse().ok()).unwrap_or(0),
            data_dir: var("DATA_DIR").map_or_else(
                || PathBuf::from(format!(".shop-data/{service}")),
                PathBuf::from,
            ),
            instance: var("CONWAY_INSTANCE")
                .unwrap_or_else(|| format!("{service}-{}", std::process::id())),
            otlp_endpoint: var("OTEL_EXPORTER_OTLP_ENDPOINT"),
            service,
        }
    }

    /// A configuration for tests: a data folder, no exporter.
    pub fn for_test(service: &str, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            port: 0,
            data_dir: data_dir.into(),
            service: service.to_owned(),
            instance: format!("{service}-test"),
            otlp_endpoint: None,
        }
    }

    /// A number from the environment (`DECLINE_RATE=0.05`), or `default`.
    pub fn env_f64(name: &str, default: f64) -> f64 {
        std::env::var(name)
            .ok()
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(default)
    }
}
