//! `conway routes`: the gateway's routes as the proxies see them in `GET /v1/config`, in
//! the order they are tried, each with what is in force on it: the effective deadline
//! (the route's, else its service's), and the version split (a run-time split set by a
//! canary deploy, else the service's declared one, unless the route pins a version).

use std::collections::BTreeMap;

use conway_core::api::ConfigSnapshot;
use conway_core::manifest::{Auth, Route};
use conway_core::units::{Duration, Share};
use serde::Serialize;

/// One route and the policies in force on it.
#[derive(Debug, Serialize)]
pub(super) struct RouteView {
    /// The route's name for metrics and logs.
    pub(super) name: String,
    /// The route as declared.
    #[serde(flatten)]
    pub(super) route: Route,
    /// The deadline in force: the route's, else its service's.
    pub(super) effective_timeout: Duration,
    /// The versions the route's requests go to, with their shares; empty when any
    /// version will do.
    pub(super) effective_split: BTreeMap<String, Share>,
    /// Where the split comes from: `route` (a pinned version), `runtime` (a canary
    /// deploy), `declared` (the manifest), or `none`.
    pub(super) split_source: &'static str,
}

/// The routes of `config`, in the order the gateway tries them.
pub(super) fn views(config: ConfigSnapshot) -> Vec<RouteView> {
    config
        .routes
        .into_iter()
        .map(|route| {
            let service = config.services.get(&route.service);
            let effective_timeout = route
                .timeout
                .or_else(|| service.map(|s| s.resilience.timeout))
                .unwrap_or_default();
            let (effective_split, split_source) =
                match (&route.version, config.splits.get(&route.service)) {
                    (Some(version), _) => ([(version.clone(), Share::FULL)].into(), "route"),
                    (None, Some(split)) if !split.is_empty() => (split.clone(), "runtime"),
                    (None, _) => match service.filter(|s| !s.split.is_empty()) {
                        Some(service) => (service.split.clone(), "declared"),
                        None => (BTreeMap::new(), "none"),
                    },
                };
            RouteView {
                name: route.display_name(),
                route,
                effective_timeout,
                effective_split,
                split_source,
            }
        })
        .collect()
}

/// The match of a route in one cell: `[HOST] PATH [METHODS] [header=value ...]`.
pub(super) fn matcher(route: &Route) -> String {
    let mut parts = Vec::new();
    if let Some(host) = &route.host {
        parts.push(host.clone());
    }
    parts.push(route.path.clone());
    if !route.methods.is_empty() {
        parts.push(route.methods.join(","));
    }
    parts.extend(route.headers.iter().map(|(k, v)| format!("{k}={v}")));
    parts.join(" ")
}

/// The auth column: `none`, `api-key`, or `jwt` with its scopes.
pub(super) fn auth(route: &Route) -> String {
    match route.auth {
        Auth::None => "none".to_owned(),
        Auth::ApiKey => "api-key".to_owned(),
        Auth::Jwt if route.scopes.is_empty() => "jwt".to_owned(),
        Auth::Jwt => format!("jwt ({})", route.scopes.join(" ")),
    }
}

/// The split column: `1.4.0=90% 1.5.0=10%`, or `-`.
pub(super) fn split(view: &RouteView) -> String {
    if view.effective_split.is_empty() {
        return "-".to_owned();
    }
    let shares: Vec<String> = view
        .effective_split
        .iter()
        .map(|(version, share)| format!("{version}={share}"))
        .collect();
    match view.split_source {
        "runtime" => format!("{} (canary)", shares.join(" ")),
        _ => shares.join(" "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> ConfigSnapshot {
        let manifest = conway_core::parse(toml).expect("a valid manifest").manifest;
        ConfigSnapshot {
            routes: manifest.gateway.routes,
            services: manifest.services,
            ..ConfigSnapshot::default()
        }
    }

    const SYSTEM: &str = r#"
[[gateway.routes]]
path = "/api/orders"
service = "orders"
methods = ["GET", "POST"]
auth = "api-key"

[[gateway.routes]]
path = "/api/orders/beta"
service = "orders"
version = "1.5.0"
timeout = "500ms"

[services.orders]
address = "127.0.0.1:9000"
split = { "1.4.0" = "90%", "1.5.0" = "10%" }
resilience = { timeout = "2s" }
"#;

    #[test]
    fn the_route_pins_else_runtime_else_declared() {
        let mut config = config(SYSTEM);
        let declared = views(config.clone());
        assert_eq!(declared[0].split_source, "declared");
        assert_eq!(split(&declared[0]), "1.4.0=90% 1.5.0=10%");
        assert_eq!(declared[0].effective_timeout.to_string(), "2s");
        assert_eq!(declared[1].split_source, "route");
        assert_eq!(split(&declared[1]), "1.5.0=100%");
        assert_eq!(declared[1].effective_timeout.to_string(), "500ms");

        let canary = [("1.5.0".to_owned(), "25%".parse().expect("a share"))].into();
        config.splits.insert("orders".to_owned(), canary);
        let canaried = views(config);
        assert_eq!(canaried[0].split_source, "runtime");
        assert_eq!(split(&canaried[0]), "1.5.0=25% (canary)");
    }

    #[test]
    fn the_match_and_auth_cells_say_it_all() {
        let listed = views(config(SYSTEM));
        assert_eq!(matcher(&listed[0].route), "/api/orders GET,POST");
        assert_eq!(auth(&listed[0].route), "api-key");
        assert_eq!(auth(&listed[1].route), "none");
    }
}
