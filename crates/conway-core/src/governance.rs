//! Governance findings, as `conway lint` reports them: what a valid manifest still leaves
//! unsaid (a service nobody owns, a route open to anyone with no rate limit) and, given
//! the observed dependency graph, where live traffic and the declared dependencies
//! disagree (a call no `depends_on` declares; a declared dependency never called by a
//! service that is busy). Each finding names its rule first, and sits at the position
//! in the manifest where it would be fixed.

use serde_spanned::Spanned;
use toml::de::DeTable;

use crate::api::Graph;
use crate::diagnostics::{Diagnostic, Diagnostics, Severity};
use crate::locate::{Path, Target, locate};
use crate::manifest::{Auth, Manifest};

/// The gateway's name in the graph: its calls are north-south, not dependencies.
const GATEWAY: &str = "gateway";

/// Every finding about `manifest` (parsed from `source`), and, with `graph`, about
/// how the system's observed calls match its declared dependencies.
pub fn lint(source: &str, manifest: &Manifest, graph: Option<&Graph>) -> Diagnostics {
    let root = DeTable::parse(source).unwrap_or_else(|_| Spanned::new(0..0, DeTable::default()));
    let mut findings = Findings {
        source,
        root: &root,
        found: Diagnostics::default(),
    };
    owners(&mut findings, manifest);
    open_routes(&mut findings, manifest);
    if let Some(graph) = graph {
        undeclared_calls(&mut findings, graph);
        unused_dependencies(&mut findings, manifest, graph);
    }
    findings.found.finish()
}

struct Findings<'a> {
    source: &'a str,
    root: &'a Spanned<DeTable<'a>>,
    found: Diagnostics,
}

impl Findings<'_> {
    fn push(&mut self, severity: Severity, path: &Path, target: Target, message: String) {
        let span = locate(self.root, path, target);
        self.found
            .push(Diagnostic::at(severity, self.source, span, message));
    }
}

fn service_path(name: &str) -> Path {
    Path::default().key("services").key(name)
}

/// `no-owner`: a service without `owner` has nobody to page or ask.
fn owners(findings: &mut Findings<'_>, manifest: &Manifest) {
    for (name, service) in &manifest.services {
        if service.owner.is_none() {
            findings.push(
                Severity::Warning,
                &service_path(name),
                Target::Key,
                format!(
                    "no-owner: service \"{name}\" has no owner; add owner = \"team-...\" so people know whom to ask"
                ),
            );
        }
    }
}

/// `open-route`: a route anyone may call, with nothing to slow a flood down.
fn open_routes(findings: &mut Findings<'_>, manifest: &Manifest) {
    for (index, route) in manifest.gateway.routes.iter().enumerate() {
        if route.auth == Auth::None && route.rate_limit.is_none() {
            let path = Path::default().key("gateway").key("routes").index(index);
            findings.push(
                Severity::Warning,
                &path,
                Target::Value,
                format!(
                    "open-route: route \"{}\" is open to anyone and has no rate limit; add rate_limit = \"50/s\" (per client address), or auth = \"api-key\" or \"jwt\"",
                    route.display_name()
                ),
            );
        }
    }
}

/// `undeclared-call`: a service called another that its `depends_on` does not list.
fn undeclared_calls(findings: &mut Findings<'_>, graph: &Graph) {
    for edge in &graph.edges {
        if edge.observed && !edge.declared && edge.from != GATEWAY {
            let path = service_path(&edge.from).key("depends_on");
            findings.push(
                Severity::Error,
                &path,
                Target::Key,
                format!(
                    "undeclared-call: \"{}\" called \"{}\" {} time(s) in the last {} s, but its depends_on does not list \"{}\"; declare it, or stop the call",
                    edge.from, edge.to, edge.requests, graph.window_seconds, edge.to
                ),
            );
        }
    }
}

/// `unused-dependency`: a busy service never called a dependency it declares. An idle
/// one says nothing either way, so it is not reported.
fn unused_dependencies(findings: &mut Findings<'_>, manifest: &Manifest, graph: &Graph) {
    for (name, service) in &manifest.services {
        let busy = graph.nodes.iter().any(|n| &n.name == name && n.rate > 0.0);
        if !busy {
            continue;
        }
        for (index, dependency) in service.depends_on.iter().enumerate() {
            let called = graph
                .edges
                .iter()
                .any(|e| &e.from == name && &e.to == dependency && e.observed);
            if !called {
                let path = service_path(name).key("depends_on").index(index);
                findings.push(
                    Severity::Warning,
                    &path,
                    Target::Value,
                    format!(
                        "unused-dependency: \"{name}\" served requests in the last {} s but never called \"{dependency}\"; remove it from depends_on if the call is gone",
                        graph.window_seconds
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{GraphEdge, GraphNode};

    const SYSTEM: &str = r#"[system]
name = "shop"

[[gateway.routes]]
path = "/api/catalog"
service = "catalog"

[[gateway.routes]]
path = "/api/orders"
service = "orders"
rate_limit = "50/s"

[services.catalog]
address = "127.0.0.1:9001"
owner = "team-catalog"

[services.orders]
address = "127.0.0.1:9002"
owner = "team-checkout"
depends_on = ["catalog", "payments"]

[services.payments]
address = "127.0.0.1:9003"
"#;

    fn manifest() -> Manifest {
        crate::parse(SYSTEM).expect("a valid manifest").manifest
    }

    fn edge(from: &str, to: &str, observed: bool, declared: bool) -> GraphEdge {
        GraphEdge {
            from: from.to_owned(),
            to: to.to_owned(),
            observed,
            declared,
            requests: u64::from(observed) * 12,
            rate: 0.0,
            error_rate: 0.0,
            p50_ms: None,
            p99_ms: None,
        }
    }

    fn node(name: &str, rate: f64) -> GraphNode {
        GraphNode {
            name: name.to_owned(),
            defined: true,
            rate,
            error_rate: 0.0,
        }
    }

    fn rendered(found: &Diagnostics) -> Vec<String> {
        found.iter().map(|d| d.render("conway.toml")).collect()
    }

    #[test]
    fn the_manifest_alone_names_unowned_services_and_open_routes() {
        let found = rendered(&lint(SYSTEM, &manifest(), None));
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(
            found[0].starts_with(
                "conway.toml:4:1: warning: open-route: route \"catalog:/api/catalog\""
            ),
            "{found:#?}"
        );
        assert!(
            found[1].starts_with("conway.toml:22:11: warning: no-owner: service \"payments\""),
            "{found:#?}"
        );
    }

    #[test]
    fn live_traffic_shows_undeclared_calls_and_unused_dependencies() {
        let graph = Graph {
            window_seconds: 300,
            nodes: vec![
                node("orders", 2.0),
                node("catalog", 5.0),
                node("payments", 0.0),
            ],
            edges: vec![
                edge("gateway", "orders", true, false),
                edge("orders", "catalog", true, true),
                edge("orders", "payments", false, true),
                edge("catalog", "payments", true, false),
            ],
        };
        let found = rendered(&lint(SYSTEM, &manifest(), Some(&graph)));
        let undeclared: Vec<&String> = found
            .iter()
            .filter(|f| f.contains("undeclared-call"))
            .collect();
        assert_eq!(undeclared.len(), 1, "{found:#?}");
        // No depends_on in catalog: the finding sits at its table.
        assert!(
            undeclared[0].starts_with(
                "conway.toml:13:1: undeclared-call: \"catalog\" called \"payments\" 12 time(s)"
            ),
            "{found:#?}"
        );
        let unused: Vec<&String> = found
            .iter()
            .filter(|f| f.contains("unused-dependency"))
            .collect();
        assert_eq!(unused.len(), 1, "{found:#?}");
        assert!(
            unused[0].starts_with("conway.toml:20:26: warning: unused-dependency: \"orders\""),
            "{found:#?}"
        );
        // The gateway's calls are not dependencies.
        assert!(
            !found.iter().any(|f| f.contains("\"gateway\"")),
            "{found:#?}"
        );
    }

    #[test]
    fn an_idle_service_is_not_blamed_for_unused_dependencies() {
        let graph = Graph {
            window_seconds: 300,
            nodes: vec![node("orders", 0.0)],
            edges: vec![edge("orders", "catalog", false, true)],
        };
        let found = rendered(&lint(SYSTEM, &manifest(), Some(&graph)));
        assert!(
            !found.iter().any(|f| f.contains("unused-dependency")),
            "{found:#?}"
        );
    }
}
