//! `conway chaos run EXPERIMENT.toml`: reads the experiment (`FILE:LINE:COLUMN` errors,
//! exit 2), runs it with `conway-chaos` against the control plane, prints progress on
//! stderr and the report on stdout (tables, or the whole report with `--output json`);
//! exit 0 when the hypothesis held throughout, 1 when it did not.

use std::io::Write;
use std::path::Path;

use comfy_table::{Table, presets};
use conway_chaos::{ParseError, Phase, Report, RunError, Step, Verdict};
use conway_client::Client;

use crate::cli::Output;
use crate::exit::Outcome;

pub(crate) async fn run(server: &str, output: Output, file: &Path) -> anyhow::Result<Outcome> {
    let shown = file.display().to_string();
    let experiment = match conway_chaos::load_file(file) {
        Ok(experiment) => experiment,
        Err(ParseError::Invalid { diagnostics, .. }) => {
            eprint!("{}", diagnostics.render(&shown));
            return Ok(Outcome::Usage(format!(
                "{shown} is not a valid experiment ({} error(s))",
                diagnostics.len()
            )));
        }
        Err(error @ ParseError::Read { .. }) => return Ok(Outcome::Usage(error.to_string())),
    };
    let client = Client::new(server)?;
    let progress = |line: &str| eprintln!("{line}");
    let report = match conway_chaos::run(
        &experiment,
        &client,
        crate::signals::shutdown_signal(),
        &progress,
    )
    .await
    {
        Ok(report) => report,
        // As an API client error, so that an unreachable control plane exits 3.
        Err(RunError::Client(error)) => return Err(error.into()),
        Err(error) => return Err(error.into()),
    };
    let text = match output {
        Output::Json => serde_json::to_string_pretty(&report)? + "\n",
        Output::Table => render(&report),
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => return Err(error.into()),
        _ => {}
    }
    Ok(if report.held() {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}

/// The report for people: a table per phase, the method's and the rollback's steps,
/// the verdict last.
fn render(report: &Report) -> String {
    let mut out = format!("experiment: {}\n", report.title);
    for phase in report.phases.iter().filter(|p| !p.checks.is_empty()) {
        let checks = phase.checks.len();
        out.push_str(&format!(
            "\n{} ({checks} check{})\n",
            match phase.phase {
                Phase::Before => "steady state before",
                Phase::During => "steady state during the method",
                Phase::After => "steady state after the rollback",
            },
            if checks == 1 { "" } else { "s" }
        ));
        let mut table = Table::new();
        table
            .load_style(presets::NOTHING)
            .set_header(["PROBE", "EXPECTED", "OBSERVED", "OK"]);
        for column in table.column_iter_mut() {
            column.set_padding((0, 2));
        }
        for row in phase.summary() {
            table.add_row([
                row.probe,
                row.expected,
                row.observed,
                if row.ok { "yes" } else { "NO" }.to_owned(),
            ]);
        }
        out.push_str(table.to_string().trim_end());
        out.push('\n');
    }
    for (title, steps) in [("method", &report.method), ("rollback", &report.rollback)] {
        if !steps.is_empty() {
            out.push_str(&format!("\n{title}\n{}", steps_text(steps)));
        }
    }
    out.push('\n');
    let elapsed = report.elapsed_ms as f64 / 1000.0;
    let verdict = match (report.verdict, &report.deviation) {
        (Verdict::Held, _) => format!("the hypothesis held throughout ({elapsed:.1}s)"),
        (Verdict::Deviated, Some(d)) => format!(
            "the hypothesis deviated {} at +{:.1}s: probe {:?} expected {}, observed {}",
            match d.phase {
                Phase::Before => "before the method (nothing was injected)",
                Phase::During => "during the method",
                Phase::After => "after the rollback",
            },
            d.at_ms as f64 / 1000.0,
            d.result.probe,
            d.result.expected,
            d.result.observed
        ),
        (Verdict::Deviated, None) => "the hypothesis deviated".to_owned(),
        (Verdict::Failed | Verdict::Interrupted, _) => format!(
            "the experiment did not finish: {}; rolled back",
            report.error.as_deref().unwrap_or("unknown error")
        ),
    };
    out.push_str(&verdict);
    out.push('\n');
    out
}

fn steps_text(steps: &[Step]) -> String {
    steps
        .iter()
        .map(|step| {
            let at = format!("+{:.1}s", step.at_ms as f64 / 1000.0);
            match &step.error {
                None => format!("  {at:>7}  {}\n", step.what),
                Some(error) => format!("  {at:>7}  {} FAILED: {error}\n", step.what),
            }
        })
        .collect()
}
