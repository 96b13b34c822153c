//! `conway trace ID`: the span tree as a text waterfall — each span on a line, indented
//! under its parent, with its offset from the trace's start, its duration, and a bar
//! placed on a shared time axis (Jaeger's view, in a terminal).

use std::collections::{HashMap, HashSet};

use conway_core::api::{Span, Trace};

use crate::commands::format::{duration, timestamp};

/// The width of the time axis, in characters.
const AXIS: usize = 40;

/// The waterfall of `trace`.
pub(super) fn render(trace: &Trace) -> String {
    let spans = &trace.spans;
    if spans.is_empty() {
        return format!("trace {}: no spans\n", trace.trace_id);
    }
    let start = spans.iter().map(|s| s.start_us).min().unwrap_or_default();
    let end = spans
        .iter()
        .map(|s| s.start_us + s.duration_us)
        .max()
        .unwrap_or(start);
    let total = (end - start).max(1);
    let errors = spans.iter().filter(|s| s.status == "error").count();
    let services: HashSet<&str> = spans.iter().map(|s| s.service.as_str()).collect();
    let mut out = format!(
        "trace {} · {} span{} · {} service{} · {}{} · started {} UTC\n\n",
        trace.trace_id,
        spans.len(),
        plural(spans.len()),
        services.len(),
        plural(services.len()),
        duration(end - start),
        match errors {
            0 => String::new(),
            n => format!(" · {n} error{}", plural(n)),
        },
        timestamp(start),
    );
    let rows = tree(spans);
    let label_width = rows
        .iter()
        .map(|(prefix, span)| prefix.chars().count() + label(span).chars().count())
        .max()
        .unwrap_or(0);
    out.push_str(&format!(
        "{:<label_width$}  {:>9}  {:>9}  |{}|\n",
        "SPAN",
        "OFFSET",
        "DURATION",
        axis(total),
    ));
    for (prefix, span) in rows {
        let text = format!("{prefix}{}", label(span));
        let pad = label_width.saturating_sub(text.chars().count());
        out.push_str(&format!(
            "{text}{}  {:>9}  {:>9}  |{}|\n",
            " ".repeat(pad),
            duration(span.start_us - start),
            duration(span.duration_us),
            bar(
                span.start_us - start,
                span.duration_us,
                total,
                span.status == "error"
            ),
        ));
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn label(span: &Span) -> String {
    let mark = if span.status == "error" { " ✗" } else { "" };
    format!("{}: {}{mark}", span.service, span.operation)
}

/// The axis header: `0` at the left, the total at the right.
fn axis(total: i64) -> String {
    let right = duration(total);
    let fill = AXIS.saturating_sub(1 + right.chars().count());
    format!("0{}{right}", " ".repeat(fill))
}

/// A bar of at least one cell at the span's place on the axis.
fn bar(offset: i64, length: i64, total: i64, error: bool) -> String {
    let cell = |t: i64| ((t.max(0) as f64 / total as f64) * AXIS as f64) as usize;
    let from = cell(offset).min(AXIS - 1);
    let to = cell(offset + length).clamp(from + 1, AXIS);
    let fill = if error { '▓' } else { '█' };
    let mut line = String::with_capacity(AXIS * 3);
    line.extend(std::iter::repeat_n(' ', from));
    line.extend(std::iter::repeat_n(fill, to - from));
    line.extend(std::iter::repeat_n(' ', AXIS - to));
    line
}

/// The spans depth-first, children by start time, each with its tree prefix. Spans
/// whose parent is not stored (sampled out, or not arrived) are roots.
fn tree(spans: &[Span]) -> Vec<(String, &Span)> {
    let ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let mut children: HashMap<&str, Vec<&Span>> = HashMap::new();
    let mut roots = Vec::new();
    for span in spans {
        match span.parent_span_id.as_deref() {
            Some(parent) if ids.contains(parent) && parent != span.span_id => {
                children.entry(parent).or_default().push(span);
            }
            _ => roots.push(span),
        }
    }
    for list in children.values_mut() {
        list.sort_by_key(|s| (s.start_us, s.span_id.clone()));
    }
    roots.sort_by_key(|s| (s.start_us, s.span_id.clone()));
    let mut rows = Vec::with_capacity(spans.len());
    let mut visited = HashSet::new();
    for root in roots {
        walk(
            root,
            String::new(),
            None,
            &children,
            &mut visited,
            &mut rows,
        );
    }
    rows
}

fn walk<'a>(
    span: &'a Span,
    indent: String,
    last: Option<bool>,
    children: &HashMap<&str, Vec<&'a Span>>,
    visited: &mut HashSet<&'a str>,
    rows: &mut Vec<(String, &'a Span)>,
) {
    if !visited.insert(span.span_id.as_str()) {
        return; // A cycle in bad data: draw each span once.
    }
    let (prefix, child_indent) = match last {
        None => (String::new(), String::new()),
        Some(true) => (format!("{indent}└─ "), format!("{indent}   ")),
        Some(false) => (format!("{indent}├─ "), format!("{indent}│  ")),
    };
    rows.push((prefix, span));
    if let Some(list) = children.get(span.span_id.as_str()) {
        for (i, child) in list.iter().enumerate() {
            let is_last = i + 1 == list.len();
            walk(
                child,
                child_indent.clone(),
                Some(is_last),
                children,
                visited,
                rows,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: &str, parent: Option<&str>, service: &str, start: i64, length: i64) -> Span {
        Span {
            trace_id: "t".into(),
            span_id: id.into(),
            parent_span_id: parent.map(str::to_owned),
            service: service.into(),
            operation: format!("op-{id}"),
            kind: "server".into(),
            start_us: start,
            duration_us: length,
            status: if id == "c" { "error" } else { "unset" }.into(),
            status_message: None,
            attributes: Default::default(),
        }
    }

    #[test]
    fn the_tree_is_drawn_with_offsets_and_bars() {
        let trace = Trace {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            spans: vec![
                span("c", Some("b"), "payments", 30_000, 10_000),
                span("a", None, "gateway", 0, 100_000),
                span("b", Some("a"), "orders", 10_000, 50_000),
                span("d", Some("a"), "orders", 70_000, 20_000),
                span("e", Some("missing"), "audit", 95_000, 5_000),
            ],
        };
        let text = render(&trace);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].contains("5 spans · 4 services · 100.0ms · 1 error"),
            "{text}"
        );
        let rows: Vec<&str> = lines[3..].to_vec();
        assert!(rows[0].starts_with("gateway: op-a"), "{text}");
        assert!(rows[1].starts_with("├─ orders: op-b"), "{text}");
        assert!(rows[2].starts_with("│  └─ payments: op-c ✗"), "{text}");
        assert!(rows[3].starts_with("└─ orders: op-d"), "{text}");
        assert!(
            rows[4].starts_with("audit: op-e"),
            "an orphan is a root: {text}"
        );
        // The root's bar fills the axis; the child's starts a tenth in, half as long.
        let bar_of = |row: &str| row.split('|').nth(1).unwrap_or_default().to_owned();
        assert_eq!(bar_of(rows[0]), "█".repeat(AXIS));
        let child = bar_of(rows[1]);
        assert_eq!(
            child.chars().take_while(|&c| c == ' ').count(),
            4,
            "{child:?}"
        );
        assert_eq!(child.chars().filter(|&c| c == '█').count(), 20, "{child:?}");
        assert!(bar_of(rows[2]).contains('▓'), "errors are drawn apart");
        assert!(
            rows[1].contains("10.0ms") && rows[1].contains("50.0ms"),
            "{text}"
        );
        // Every bar has the axis' width, so the columns line up.
        assert!(rows.iter().all(|r| bar_of(r).chars().count() == AXIS));
    }
}
