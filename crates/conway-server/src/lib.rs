//! Conway's control plane: the registry's HTTP API (`/v1/...`), the change watch,
//! health checks of external instances, the control plane's own metrics, the telemetry
//! queries (traces, logs, graph, charts) and the OTLP/HTTP receiver's listener
//! ([`otlp_router`]).
//!
//! It serves the registry; it must not know the proxy, the supervisor or the CLI, which
//! all talk to it over this API.

mod checks;
mod error;
mod extract;
mod load;
mod metrics;
mod otlp;
mod routes;
mod state;
mod token;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use conway_registry::registry::Registry;
use tokio::net::TcpListener;

pub use error::ApiError;
pub use otlp::otlp_router;
pub use routes::PATHS;

/// The largest request body the API reads.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Options of the control plane.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// How long a quiet watch waits before a keep-alive line.
    pub keepalive: Duration,
    /// When set, changes need `authorization: Bearer` with this token.
    pub admin_token: Option<String>,
    /// The telemetry the API serves (traces, logs, graph); `None` keeps an in-memory
    /// one, for tests.
    pub telemetry: Option<conway_telemetry::Telemetry>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            keepalive: Duration::from_secs(10),
            admin_token: None,
            telemetry: None,
        }
    }
}

/// The API as an axum router over a registry (for tests without sockets, or to serve).
pub fn router(registry: Registry, options: &ServerOptions) -> axum::Router {
    let telemetry = options.telemetry.clone().unwrap_or_else(|| {
        conway_telemetry::Telemetry::in_memory(conway_telemetry::TelemetryConfig::default())
            .expect("an in-memory SQLite database opens")
    });
    let state = state::AppState {
        registry,
        metrics: Arc::new(metrics::Metrics::new(telemetry.metrics())),
        keepalive: options.keepalive,
        telemetry,
        load: Arc::default(),
    };
    let router = routes::router(state);
    match &options.admin_token {
        Some(token) => router.layer(axum::middleware::from_fn_with_state(
            Arc::<str>::from(token.as_str()),
            token::require_token,
        )),
        None => router,
    }
}

/// Checks the instances nobody else checks (external ones) until the returned task is
/// aborted, recording their health in the registry.
pub fn spawn_health_checks(registry: Registry) -> tokio::task::JoinHandle<()> {
    tokio::spawn(checks::run(registry))
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
