//! `conway lint`: governance findings about a manifest — services without an owner,
//! open routes without a rate limit — and, when the control plane answers, about live
//! traffic against the declared dependencies: calls no `depends_on` declares (errors)
//! and declared dependencies a busy service never calls. Exit 1 when any finding is an
//! error; warnings alone exit 0.

use std::path::Path;

use conway_client::Client;
use conway_core::api::Graph;
use conway_core::{LoadError, Severity, governance, load_file};
use serde_json::json;

use crate::cli::Output;
use crate::exit::Outcome;

pub(crate) async fn run(file: &Path, server: &str, output: Output) -> anyhow::Result<Outcome> {
    let shown = file.display().to_string();
    let manifest = match load_file(file) {
        Ok(loaded) => loaded.manifest,
        Err(LoadError::Invalid { diagnostics, .. }) => {
            eprint!("{}", diagnostics.render(&shown));
            eprintln!("{shown}: invalid; `conway validate` says more");
            return Ok(Outcome::Failed);
        }
        Err(error @ LoadError::Read { .. }) => return Err(error.into()),
    };
    let source = std::fs::read_to_string(file)?;
    let (graph, live) = live_graph(server).await;
    let findings = governance::lint(&source, &manifest, graph.as_ref());
    let errors = findings
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    match output {
        Output::Json => {
            let report = json!({
                "file": shown,
                "live_checked": graph.is_some(),
                "live_skipped_because": live,
                "findings": findings,
            });
            println!("{report:#}");
        }
        Output::Table => {
            print!("{}", findings.render(&shown));
            if let Some(reason) = &live {
                eprintln!("live checks skipped: {reason}");
            }
            let warnings = findings.len() - errors;
            let checked = match &graph {
                Some(graph) => format!(
                    "against traffic seen by {server} in the last {} s",
                    graph.window_seconds
                ),
                None => "against the manifest alone".to_owned(),
            };
            eprintln!("{shown}: {errors} error(s), {warnings} warning(s), checked {checked}");
        }
    }
    Ok(if errors > 0 {
        Outcome::Failed
    } else {
        Outcome::Success
    })
}

/// The observed graph, or why the live checks are skipped.
async fn live_graph(server: &str) -> (Option<Graph>, Option<String>) {
    let client = match Client::new(server) {
        Ok(client) => client,
        Err(error) => return (None, Some(error.to_string())),
    };
    match client.graph().await {
        Ok(graph) => (Some(graph), None),
        Err(error) => (
            None,
            Some(format!(
                "{error} (start the system, or point --server or CONWAY_URL at it)"
            )),
        ),
    }
}
