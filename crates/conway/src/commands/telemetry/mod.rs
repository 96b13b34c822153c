//! The telemetry verbs: `conway traces`, `conway trace ID`, `conway logs` and
//! `conway graph`, each reading the control plane through `conway-client`.

mod graph;
mod waterfall;

use comfy_table::{Table, presets};
use conway_client::{Client, LogFilter, TraceFilter};
use conway_core::api::{LogLine, TraceSummary};
use futures_util::StreamExt;

use super::format;
use super::output::{print_json, print_out, write_out};
use crate::cli::{GraphFormat, Output};
use crate::exit::Outcome;

/// `conway traces [--service S] [--errors] [--min-duration D] [--limit N]`.
pub(crate) async fn traces(
    server: &str,
    output: Output,
    filter: TraceFilter,
) -> anyhow::Result<Outcome> {
    let traces = Client::new(server)?.traces(&filter).await?;
    match output {
        Output::Json => print_json(&traces)?,
        Output::Table if traces.is_empty() => print_out("no traces\n")?,
        Output::Table => print_out(&trace_table(&traces))?,
    }
    Ok(Outcome::Success)
}

fn trace_table(traces: &[TraceSummary]) -> String {
    let mut table = Table::new();
    table.load_style(presets::NOTHING).set_header([
        "TRACE ID",
        "ROOT",
        "START (UTC)",
        "DURATION",
        "SPANS",
        "ERROR",
    ]);
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    for trace in traces {
        table.add_row([
            trace.trace_id.clone(),
            format!("{}: {}", trace.root_service, trace.root_operation),
            format::timestamp(trace.start_us),
            format::duration(trace.duration_us),
            trace.spans.to_string(),
            if trace.error { "error" } else { "" }.to_owned(),
        ]);
    }
    table
        .lines()
        .map(|line| line.trim_end().to_owned() + "\n")
        .collect()
}

/// `conway trace ID`: the waterfall (the spans as JSON with `--output json`).
pub(crate) async fn trace(server: &str, output: Output, id: &str) -> anyhow::Result<Outcome> {
    let trace = Client::new(server)?.trace(id).await?;
    match output {
        Output::Json => print_json(&trace)?,
        Output::Table => print_out(&waterfall::render(&trace))?,
    }
    Ok(Outcome::Success)
}

/// `conway logs [--service S] [--trace ID] [--follow]`.
pub(crate) async fn logs(
    server: &str,
    output: Output,
    filter: LogFilter,
    follow: bool,
) -> anyhow::Result<Outcome> {
    let client = Client::builder(server)
        .watch_idle_timeout(std::time::Duration::from_secs(60))
        .build()?;
    if !follow {
        let lines = client.logs(&filter).await?;
        match output {
            Output::Json => print_json(&lines)?,
            Output::Table => {
                let text: String = lines.iter().map(log_line).collect();
                print_out(&text)?
            }
        }
        return Ok(Outcome::Success);
    }
    let mut stream = client.follow_logs(&filter).await?;
    while let Some(line) = stream.next().await {
        let line = line?;
        let text = match output {
            Output::Json => serde_json::to_string(&line)? + "\n",
            Output::Table => log_line(&line),
        };
        if !write_out(&text)? {
            break;
        }
    }
    Ok(Outcome::Success)
}

/// `2024-05-01 12:00:00.123 orders/i-1 ERROR payment declined`.
fn log_line(line: &LogLine) -> String {
    let source = match &line.instance {
        Some(instance) => format!("{}/{instance}", line.service),
        None => line.service.clone(),
    };
    let level = match line.level.as_str() {
        "unspecified" => String::new(),
        level => format!(" {}", level.to_uppercase()),
    };
    format!(
        "{} {source}{level} {}\n",
        format::timestamp(line.time_us),
        line.body.trim_end()
    )
}

/// `conway graph [--format text|dot|mermaid|json]`.
pub(crate) async fn graph(
    server: &str,
    output: Output,
    format: GraphFormat,
) -> anyhow::Result<Outcome> {
    let graph = Client::new(server)?.graph().await?;
    let text = match (output, format) {
        (Output::Json, _) | (_, GraphFormat::Json) => serde_json::to_string_pretty(&graph)? + "\n",
        (_, GraphFormat::Text) => graph::text(&graph),
        (_, GraphFormat::Dot) => graph::dot(&graph),
        (_, GraphFormat::Mermaid) => graph::mermaid(&graph),
    };
    print_out(&text)?;
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_name_their_source_and_level() {
        let line = LogLine {
            id: 1,
            time_us: 1_714_564_801_123_456,
            service: "orders".into(),
            instance: Some("orders-1".into()),
            level: "error".into(),
            body: "payment declined\n".into(),
            trace_id: None,
            span_id: None,
            attributes: Default::default(),
        };
        assert_eq!(
            log_line(&line),
            "2024-05-01 12:00:01.123 orders/orders-1 ERROR payment declined\n"
        );
    }

    #[test]
    fn the_trace_table_has_a_row_per_trace() {
        let summary = TraceSummary {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            root_service: "gateway".into(),
            root_operation: "GET /api/orders".into(),
            start_us: 1_714_564_801_123_456,
            duration_us: 12_345,
            spans: 7,
            error: true,
        };
        let text = trace_table(&[summary]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("TRACE ID"), "{text}");
        assert!(lines[1].contains("gateway: GET /api/orders"), "{text}");
        assert!(
            lines[1].contains("12.3ms") && lines[1].ends_with("error"),
            "{text}"
        );
    }
}
