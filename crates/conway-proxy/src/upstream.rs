//! Connections to instances: pooled HTTP/1.1 keep-alive connections, and HTTP/2 (h2c)
//! for gRPC and services that ask for it.

use std::time::Duration;

use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::body::ProxyBody;

/// How long an idle pooled connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The proxy's upstream clients.
#[derive(Debug, Clone)]
pub struct Upstreams {
    /// HTTP/1.1, pooled.
    pub http1: Client<HttpConnector, ProxyBody>,
    /// HTTP/2 over cleartext (prior knowledge), multiplexed.
    pub http2: Client<HttpConnector, ProxyBody>,
}

impl Upstreams {
    /// Clients with the proxy's pool settings.
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let http1 = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .pool_max_idle_per_host(256)
            .build(connector.clone());
        let http2 = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .http2_only(true)
            .timer(TokioTimer::new())
            .build(connector);
        Self { http1, http2 }
    }
}

impl Default for Upstreams {
    fn default() -> Self {
        Self::new()
    }
}
