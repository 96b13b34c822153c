//! `conway graph --format text|dot|mermaid|json`: the dependency graph drawn for a
//! terminal, Graphviz or Mermaid. Observed-only edges (undeclared dependencies) are
//! drawn bold red, declared-only ones (unused) dashed.

use comfy_table::{Table, presets};
use conway_core::api::{Graph, GraphEdge};

use super::format::millis;

fn figures(edge: &GraphEdge) -> String {
    if !edge.observed {
        return "no calls".to_owned();
    }
    format!(
        "{:.1}/s, {:.1}% 5xx, p99 {}",
        edge.rate,
        edge.error_rate * 100.0,
        millis(edge.p99_ms)
    )
}

fn status(edge: &GraphEdge) -> &'static str {
    match (edge.observed, edge.declared) {
        (true, true) => "observed, declared",
        (true, false) => "observed only (undeclared)",
        (false, true) => "declared only (unused)",
        (false, false) => "-",
    }
}

/// A table of edges, then the services without any.
pub(super) fn text(graph: &Graph) -> String {
    let mut out = String::new();
    if graph.edges.is_empty() {
        out.push_str("no calls observed or declared\n");
    } else {
        let mut table = Table::new();
        table
            .load_style(presets::NOTHING)
            .set_header(["FROM", "TO", "RATE", "5XX", "P50", "P99", "EDGE"]);
        for column in table.column_iter_mut() {
            column.set_padding((0, 2));
        }
        for edge in &graph.edges {
            let observed = |text: String| if edge.observed { text } else { "-".to_owned() };
            table.add_row([
                edge.from.clone(),
                edge.to.clone(),
                observed(format!("{:.2}/s", edge.rate)),
                observed(format!("{:.1}%", edge.error_rate * 100.0)),
                millis(edge.p50_ms),
                millis(edge.p99_ms),
                status(edge).to_owned(),
            ]);
        }
        for line in table.lines() {
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    let alone: Vec<&str> = graph
        .nodes
        .iter()
        .filter(|n| {
            !graph
                .edges
                .iter()
                .any(|e| e.from == n.name || e.to == n.name)
        })
        .map(|n| n.name.as_str())
        .collect();
    if !alone.is_empty() {
        out.push_str(&format!("\nno calls: {}\n", alone.join(", ")));
    }
    out.push_str(&format!(
        "\nobserved over the last {}s\n",
        graph.window_seconds
    ));
    out
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Graphviz.
pub(super) fn dot(graph: &Graph) -> String {
    let mut out = String::from("digraph conway {\n  rankdir=LR;\n  node [shape=box];\n");
    for node in &graph.nodes {
        let style = if node.defined { "" } else { " style=dashed" };
        out.push_str(&format!(
            "  {} [label={}{style}];\n",
            quoted(&node.name),
            quoted(&node.name)
        ));
    }
    for edge in &graph.edges {
        let style = match (edge.observed, edge.declared) {
            (true, false) => " color=red penwidth=2",
            (false, true) => " style=dashed color=gray",
            _ => "",
        };
        out.push_str(&format!(
            "  {} -> {} [label={}{style}];\n",
            quoted(&edge.from),
            quoted(&edge.to),
            quoted(&figures(edge)),
        ));
    }
    out.push_str("}\n");
    out
}

/// Mermaid (`flowchart LR`); nodes get safe ids, names become labels.
pub(super) fn mermaid(graph: &Graph) -> String {
    let id = |name: &str| {
        graph
            .nodes
            .iter()
            .position(|n| n.name == name)
            .map_or_else(|| "unknown".to_owned(), |i| format!("n{i}"))
    };
    let label = |text: &str| text.replace('"', "#quot;").replace('|', "#124;");
    let mut out = String::from("flowchart LR\n");
    for (i, node) in graph.nodes.iter().enumerate() {
        out.push_str(&format!("  n{i}[\"{}\"]\n", label(&node.name)));
    }
    for edge in &graph.edges {
        let arrow = match (edge.observed, edge.declared) {
            (true, false) => "==>",
            (false, true) => "-.->",
            _ => "-->",
        };
        out.push_str(&format!(
            "  {} {arrow}|\"{}\"| {}\n",
            id(&edge.from),
            label(&figures(edge)),
            id(&edge.to)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use conway_core::api::GraphNode;

    use super::*;

    fn graph() -> Graph {
        let node = |name: &str, defined: bool| GraphNode {
            name: name.into(),
            defined,
            rate: 0.0,
            error_rate: 0.0,
        };
        let edge = |from: &str, to: &str, observed: bool, declared: bool| GraphEdge {
            from: from.into(),
            to: to.into(),
            observed,
            declared,
            requests: if observed { 300 } else { 0 },
            rate: if observed { 1.0 } else { 0.0 },
            error_rate: 0.0,
            p50_ms: observed.then_some(12.0),
            p99_ms: observed.then_some(80.0),
        };
        Graph {
            window_seconds: 300,
            nodes: vec![
                node("catalog", true),
                node("gateway", false),
                node("orders", true),
                node("payments", true),
            ],
            edges: vec![
                edge("gateway", "orders", true, true),
                edge("orders", "payments", false, true),
                edge("orders", "fraud\"x", true, false),
            ],
        }
    }

    #[test]
    fn text_marks_each_edge() {
        let text = text(&graph());
        assert!(text.contains("observed, declared"), "{text}");
        assert!(text.contains("declared only (unused)"), "{text}");
        assert!(text.contains("observed only (undeclared)"), "{text}");
        assert!(text.contains("no calls: catalog"), "{text}");
        assert!(text.contains("80.0ms"), "{text}");
    }

    #[test]
    fn dot_and_mermaid_style_the_edges() {
        let dot = dot(&graph());
        assert!(dot.starts_with("digraph conway {"), "{dot}");
        assert!(dot.contains("\"gateway\" -> \"orders\""), "{dot}");
        assert!(dot.contains("style=dashed color=gray"), "{dot}");
        assert!(dot.contains("\"fraud\\\"x\""), "quotes are escaped: {dot}");
        let mermaid = mermaid(&graph());
        assert!(mermaid.starts_with("flowchart LR\n"), "{mermaid}");
        assert!(mermaid.contains("n2 -.->|\"no calls\"| n3"), "{mermaid}");
        assert!(mermaid.contains("n1 -->|"), "{mermaid}");
        assert!(mermaid.contains("==>"), "{mermaid}");
    }
}
