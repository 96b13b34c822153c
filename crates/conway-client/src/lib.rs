//! The typed client for Conway's control plane API, used by the CLI, the proxy and the
//! supervisor — nobody else hand-writes the API's URLs.
//!
//! [`Client`] has one async method per endpoint (`services`, `register`, `watch`…),
//! each returning the API's own types from [`conway_core::api`] or a typed
//! [`ClientError`]: [`ClientError::Unreachable`] when nothing answers,
//! [`ClientError::Api`] with the API's code and message when it refuses,
//! [`ClientError::Compacted`] when a watch must list again.
//!
//! [`Mirror`] is static stability: a live copy of the registry that lists, watches, and
//! keeps serving its last known state while the control plane is away, resuming the
//! watch where it stopped once it returns.
//!
//! ```no_run
//! # async fn example() -> Result<(), conway_client::ClientError> {
//! let client = conway_client::Client::new("http://127.0.0.1:7700")?;
//! for service in client.services().await? {
//!     println!("{}: {} of {} healthy", service.name, service.healthy, service.instances);
//! }
//! let mirror = conway_client::Mirror::start(client);
//! let routable = mirror.snapshot().routable("orders").count();
//! # let _ = routable;
//! # Ok(())
//! # }
//! ```

mod backoff;
mod client;
mod endpoints;
mod error;
mod load;
mod mirror;
mod ndjson;
mod operations;
mod telemetry;
mod watch;

pub use client::{Client, ClientBuilder, TOKEN_ENV};
pub use error::ClientError;
pub use mirror::{Mirror, MirrorOptions, MirrorSnapshot};
pub use telemetry::{LogFilter, LogStream, TraceFilter};
pub use watch::WatchStream;

/// A registry revision: every change moves it forward by one or more.
pub type Revision = i64;
