//! What every Rust service of the reference shop shares — the few things a team would put
//! in its own service template, built only on public crates and the environment Conway
//! gives an instance (never on Conway's own crates: a service runs the same without it).
//!
//! - [`Config`]: `PORT`, `DATA_DIR`, `CONWAY_SERVICE`, `CONWAY_INSTANCE` and the rest.
//! - [`telemetry`]: JSON log lines on stdout, OpenTelemetry spans exported over OTLP/HTTP,
//!   W3C `traceparent` taken from each request and carried onto each call.
//! - [`Mesh`]: calls to other services by name (`http://inventory/...`) through the mesh,
//!   with the caller's trace context and idempotency key.
//! - [`sqlite`]: a SQLite database shared by a service's replicas (WAL, busy timeout).
//! - [`serve`]: a service's `main`, the HTTP server, `GET /health`, graceful shutdown.
//! - [`ApiError`]: errors as `{"error": {"code", "message"}}`.

mod config;
mod error;
mod mesh;
pub mod serve;
pub mod sqlite;
pub mod telemetry;
pub mod testing;

pub use config::Config;
pub use error::ApiError;
pub use mesh::{Mesh, MeshConfig, MeshError};

/// The request header that makes a step safe to retry: the same key, the same outcome.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The remaining deadline a caller (or the proxy in front) allows, in milliseconds.
pub const DEADLINE_MS: &str = "x-conway-deadline-ms";

/// Milliseconds since the Unix epoch, the time every service stores.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// A new identifier: `PREFIX_` then the time and 48 random bits in hex, so identifiers
/// sort by creation and two replicas never pick the same one.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{:011x}{:012x}", now_ms(), fastrand::u64(..) >> 16)
}
