//! Route matching: the gateway's `[[gateway.routes]]`, compiled once per configuration
//! change and tried in order.

use std::sync::Arc;
use std::time::Duration;

use conway_core::manifest::{Auth, Faults, RateLimit, Route};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{HeaderMap, Method};

use crate::metrics::{ProxyMetrics, RequestMetrics};

/// A route ready to match requests.
#[derive(Debug, Clone)]
pub struct CompiledRoute {
    /// For metrics and logs.
    pub name: Arc<str>,
    host: Option<String>,
    prefix: String,
    methods: Vec<Method>,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// The service that serves it.
    pub service: Arc<str>,
    /// Remove the prefix before forwarding.
    pub strip_prefix: bool,
    /// A pinned version.
    pub version: Option<String>,
    /// The route's own deadline.
    pub timeout: Option<Duration>,
    /// The largest body accepted.
    pub max_body: u64,
    /// How clients authenticate.
    pub auth: Auth,
    /// With JWT: claims the token must carry.
    pub claims: std::collections::BTreeMap<String, String>,
    /// With JWT: scopes the token must grant.
    pub scopes: Vec<String>,
    /// The route's rate limit.
    pub rate_limit: Option<RateLimit>,
    /// The route's own faults.
    pub faults: Option<Faults>,
    /// Its request metrics, resolved at the first request.
    metrics: std::sync::OnceLock<Arc<RequestMetrics>>,
}

impl CompiledRoute {
    /// Compiles a manifest route; header names or values that HTTP cannot carry are
    /// dropped from the match (the manifest's validation refuses them first).
    pub fn new(route: &Route) -> Self {
        Self {
            name: route.display_name().into(),
            host: route.host.as_deref().map(str::to_ascii_lowercase),
            prefix: route.path.trim_end_matches('/').to_owned(),
            methods: route
                .methods
                .iter()
                .filter_map(|m| Method::from_bytes(m.as_bytes()).ok())
                .collect(),
            headers: route
                .headers
                .iter()
                .filter_map(|(name, value)| {
                    Some((
                        HeaderName::from_bytes(name.as_bytes()).ok()?,
                        HeaderValue::from_str(value).ok()?,
                    ))
                })
                .collect(),
            service: route.service.as_str().into(),
            strip_prefix: route.strip_prefix,
            version: route.version.clone(),
            timeout: route.timeout.map(|t| t.get()),
            max_body: route.max_body.get(),
            auth: route.auth,
            claims: route.claims.clone(),
            scopes: route.scopes.clone(),
            rate_limit: route.rate_limit,
            faults: route.faults.clone(),
            metrics: std::sync::OnceLock::new(),
        }
    }

    /// The request metrics of this route and its service.
    pub fn metrics(&self, metrics: &ProxyMetrics) -> Arc<RequestMetrics> {
        self.metrics
            .get_or_init(|| metrics.requests_of(&self.name, &self.service))
            .clone()
    }

    fn matches(
        &self,
        host: Option<&str>,
        path: &str,
        method: &Method,
        headers: &HeaderMap,
    ) -> bool {
        self.host
            .as_deref()
            .is_none_or(|want| host.is_some_and(|h| h.eq_ignore_ascii_case(want)))
            && under_prefix(path, &self.prefix)
            && (self.methods.is_empty() || self.methods.contains(method))
            && self
                .headers
                .iter()
                .all(|(name, value)| headers.get(name) == Some(value))
    }

    /// The path sent upstream: without the prefix when `strip_prefix` is set.
    pub fn upstream_path<'a>(&self, path: &'a str) -> &'a str {
        if !self.strip_prefix {
            return path;
        }
        match path.get(self.prefix.len()..) {
            Some("") | None => "/",
            Some(rest) => rest,
        }
    }
}

fn under_prefix(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || prefix.is_empty(),
        None => false,
    }
}

/// The routes in order.
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<CompiledRoute>,
}

impl Router {
    /// Compiles the routes.
    pub fn new(routes: &[Route]) -> Self {
        Self {
            routes: routes.iter().map(CompiledRoute::new).collect(),
        }
    }

    /// The first route matching the request.
    pub fn find(
        &self,
        host: Option<&str>,
        path: &str,
        method: &Method,
        headers: &HeaderMap,
    ) -> Option<&CompiledRoute> {
        self.routes
            .iter()
            .find(|route| route.matches(host, path, method, headers))
    }

    /// Every route, in order.
    pub fn routes(&self) -> &[CompiledRoute] {
        &self.routes
    }
}

/// The request's host without its port: `:authority` (HTTP/2, absolute URIs) or `Host`.
pub fn request_host<'a>(uri: &'a hyper::Uri, headers: &'a HeaderMap) -> Option<&'a str> {
    let host = uri
        .host()
        .or_else(|| headers.get(hyper::header::HOST)?.to_str().ok())?;
    Some(strip_port(host))
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.rsplit_once(':').map_or(host, |(name, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            name
        } else {
            host
        }
    })
}

/// Whether a path holds a `.` or `..` segment (plain or percent-encoded), which could
/// step out of a route's prefix on the way upstream; such requests are refused.
pub fn has_dot_segments(path: &str) -> bool {
    path.split('/')
        .any(|segment| is_dot_segment(segment.as_bytes()))
}

/// Whether a segment is `.` or `..`, each dot plain or `%2e`/`%2E` (no allocation: this
/// runs on every request).
fn is_dot_segment(mut segment: &[u8]) -> bool {
    let mut dots = 0;
    while !segment.is_empty() {
        if let Some(rest) = segment.strip_prefix(b".") {
            segment = rest;
        } else if segment.len() >= 3 && segment[..3].eq_ignore_ascii_case(b"%2e") {
            segment = &segment[3..];
        } else {
            return false;
        }
        dots += 1;
        if dots > 2 {
            return false;
        }
    }
    dots > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_plain_or_encoded_and_nothing_else() {
        // The definition: a segment that decodes (%2e, %2E) to "." or "..".
        let by_definition = |path: &str| {
            path.split('/').any(|segment| {
                let decoded = segment.replace("%2e", ".").replace("%2E", ".");
                decoded == "." || decoded == ".."
            })
        };
        let pieces = [
            "", ".", "..", "...", "%2e", "%2E", "%2", "%", "a", ".a", "a.", "%2f", "%2e%2E",
        ];
        for a in pieces {
            for b in pieces {
                for path in [
                    format!("/{a}{b}"),
                    format!("/x/{a}/{b}/y"),
                    format!("{a}{b}"),
                ] {
                    assert_eq!(has_dot_segments(&path), by_definition(&path), "{path:?}");
                }
            }
        }
        assert!(has_dot_segments("/api/%2E%2e/admin"));
        assert!(!has_dot_segments("/api/v1.2/x"));
    }

    fn route(toml: &str) -> Route {
        let manifest = conway_core::parse(&format!(
            "[services.a]\nrun = [\"a\"]\n[services.b]\nrun = [\"b\"]\n{toml}"
        ))
        .expect("valid manifest")
        .manifest;
        manifest.gateway.routes[0].clone()
    }

    #[test]
    fn routes_match_host_prefix_method_and_headers_in_order() {
        let router = Router::new(&[
            route(
                "[[gateway.routes]]\npath = \"/api\"\nservice = \"a\"\nhost = \"Shop.example\"\nmethods = [\"GET\"]\nheaders = { x-canary = \"1\" }",
            ),
            route("[[gateway.routes]]\npath = \"/api/orders\"\nservice = \"b\""),
        ]);
        let mut canary = HeaderMap::new();
        canary.insert("x-canary", HeaderValue::from_static("1"));
        let found = |host, path, method: &Method, headers: &HeaderMap| {
            router
                .find(host, path, method, headers)
                .map(|r| &*r.service)
        };
        assert_eq!(
            found(Some("shop.example"), "/api/orders/1", &Method::GET, &canary),
            Some("a")
        );
        assert_eq!(
            found(
                Some("shop.example"),
                "/api/orders/1",
                &Method::POST,
                &canary
            ),
            Some("b")
        );
        assert_eq!(
            found(Some("other"), "/api/orders", &Method::GET, &canary),
            Some("b")
        );
        assert_eq!(
            found(
                Some("shop.example"),
                "/api/ordersx",
                &Method::GET,
                &HeaderMap::new()
            ),
            None
        );
        assert_eq!(
            found(None, "/elsewhere", &Method::GET, &HeaderMap::new()),
            None
        );
    }

    #[test]
    fn strip_prefix_keeps_a_leading_slash() {
        let r = CompiledRoute::new(&route(
            "[[gateway.routes]]\npath = \"/api/orders/\"\nservice = \"a\"\nstrip_prefix = true",
        ));
        assert_eq!(r.upstream_path("/api/orders"), "/");
        assert_eq!(r.upstream_path("/api/orders/7?x=1"), "/7?x=1");
    }

    #[test]
    fn hosts_lose_their_port() {
        assert_eq!(strip_port("shop.example:8080"), "shop.example");
        assert_eq!(strip_port("[::1]:8080"), "[::1]");
        assert_eq!(strip_port("shop.example"), "shop.example");
    }

    #[test]
    fn dot_segments_are_spotted_even_encoded() {
        assert!(has_dot_segments("/api/../admin"));
        assert!(has_dot_segments("/api/%2e%2E/admin"));
        assert!(has_dot_segments("/./x"));
        assert!(!has_dot_segments("/api/v1.2/file..txt"));
    }
}
