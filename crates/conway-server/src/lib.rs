//! Conway's control plane: the registry's HTTP API (`/v1/...`), the change watch,
//! health checks of external instances, and the control plane's own metrics.
//!
//! It serves the registry; it must not know the proxy, the supervisor or the CLI, which
//! all talk to it over this API.

mod checks;
mod error;
mod extract;
mod metrics;
mod routes;
mod state;
mod token;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use conway_registry::registry::Registry;
use tokio::net::TcpListener;

pub use error::ApiError;
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
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            keepalive: Duration::from_secs(10),
            admin_token: None,
        }
    }
}

/// The API as an axum router over a registry (for tests without sockets, or to serve).
pub fn router(registry: Registry, options: &ServerOptions) -> axum::Router {
    let state = state::AppState {
        registry,
        metrics: Arc::new(metrics::Metrics::new()),
        keepalive: options.keepalive,
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
