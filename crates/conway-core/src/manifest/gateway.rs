//! `[gateway]` and `[[gateway.routes]]`: the north-south entry.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::service::Faults;
use crate::string_or_table::{or_short_string, string_or_table, table_only};
use crate::units::{ByteSize, Duration, Rate};

/// The gateway: where outside clients connect, and the routes they may take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Gateway {
    /// The address the gateway listens on. Anything beyond loopback is reachable by
    /// other machines.
    #[serde(default = "Gateway::default_listen")]
    pub listen: SocketAddr,
    /// The routes, tried in order: the first that matches a request serves it.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// HTTPS: a second listener terminating TLS (HTTP/2 by ALPN) before the same routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<GatewayTls>,
}

/// TLS at the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct GatewayTls {
    /// The address of the HTTPS listener.
    #[serde(default = "GatewayTls::default_listen")]
    pub listen: SocketAddr,
    /// Answer every plain-HTTP request with a redirect to HTTPS (308).
    #[serde(default)]
    pub redirect_http: bool,
    /// The certificates, chosen by SNI: the first whose `hosts` holds the requested
    /// name, else the first without `hosts`.
    pub certificates: Vec<Certificate>,
}

impl GatewayTls {
    fn default_listen() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 8443))
    }
}

/// A certificate chain and its private key, as PEM files relative to the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Certificate {
    /// The host names it serves (SNI); empty: the default certificate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// The certificate chain (PEM), leaf first.
    pub cert_file: String,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: String,
}

impl Gateway {
    fn default_listen() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 8080))
    }
}

impl Default for Gateway {
    fn default() -> Self {
        Self {
            listen: Self::default_listen(),
            routes: Vec::new(),
            tls: None,
        }
    }
}

/// One route: which requests it matches, the service that serves them, and the
/// policies applied on the way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Route {
    /// A name for metrics and logs; default: the service's name and the path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Match only requests for this host (the `Host` header or `:authority`, without
    /// port); default: any host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// A path prefix, matched segment by segment: `/api/orders` matches `/api/orders`
    /// and `/api/orders/7`, not `/api/ordersx`.
    #[serde(default = "Route::default_path")]
    pub path: String,
    /// Match only these methods (upper case); default: any method.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Match only requests carrying these headers with exactly these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The service that serves the route.
    pub service: String,
    /// Remove the matched prefix from the path before it goes upstream.
    #[serde(default)]
    pub strip_prefix: bool,
    /// Send every request of this route to this version of the service, ignoring splits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// How clients prove who they are.
    #[serde(default)]
    pub auth: Auth,
    /// With `auth = "jwt"`: claims the token must carry, with these exact values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, String>,
    /// With `auth = "jwt"`: scopes the token's `scope` claim must include.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Requests allowed per consumer (per client address on open routes): `"50/s"`, or
    /// `{ rate = "50/s", burst = 100 }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// The whole deadline of a request on this route, retries included; overrides the
    /// service's `resilience.timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// The largest request body accepted; larger ones are answered with 413.
    #[serde(default = "Route::default_max_body")]
    pub max_body: ByteSize,
    /// Faults injected into this route's requests, on top of the service's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<Faults>,
}

impl Route {
    fn default_path() -> String {
        "/".to_owned()
    }

    fn default_max_body() -> ByteSize {
        ByteSize::mib(10)
    }

    /// The route's name for metrics and logs: `name`, else `SERVICE:PATH`.
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}:{}", self.service, self.path))
    }

    /// Whether `path` falls under this route's prefix, segment by segment.
    pub fn matches_path(&self, path: &str) -> bool {
        path_has_prefix(path, &self.path)
    }
}

/// Whether `path` is `prefix` or lies below it (`/a/b` is below `/a`, `/ab` is not).
pub(crate) fn path_has_prefix(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || prefix.is_empty(),
        None => false,
    }
}

/// How a route authenticates its clients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Auth {
    /// Open to anyone.
    #[default]
    None,
    /// `x-api-key: KEY` matching one of a consumer's `api_keys`.
    ApiKey,
    /// `authorization: Bearer TOKEN`, a JWT from one of the `[jwt.*]` issuers.
    Jwt,
}

/// A rate limit, with an optional burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
#[schemars(transform = or_short_string::<Rate>)]
pub struct RateLimit {
    /// The sustained rate.
    pub rate: Rate,
    /// How many requests may come at once after a quiet spell; default: one period's
    /// worth of the rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

string_or_table!(RateLimit, Rate, |rate| RateLimit { rate, burst: None });

table_only!(Gateway, GatewayTls, Certificate, Route);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_by_segment() {
        assert!(path_has_prefix("/api/orders", "/api/orders"));
        assert!(path_has_prefix("/api/orders/7", "/api/orders"));
        assert!(path_has_prefix("/api/orders/7", "/api/orders/"));
        assert!(!path_has_prefix("/api/ordersx", "/api/orders"));
        assert!(path_has_prefix("/anything", "/"));
        assert!(!path_has_prefix("/api", "/api/orders"));
    }
}
