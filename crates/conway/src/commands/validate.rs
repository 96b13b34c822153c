//! `conway validate`: check a manifest and say where every problem is.

use std::path::Path;

use conway_core::{Diagnostics, LoadError, load_file};
use serde_json::json;

use crate::cli::Output;
use crate::exit::Outcome;

pub(crate) fn run(file: &Path, output: Output) -> anyhow::Result<Outcome> {
    let shown = file.display().to_string();
    let (valid, diagnostics, summary) = match load_file(file) {
        Ok(loaded) => {
            let summary = format!(
                "{shown}: valid — system {:?}, {} services, {} routes",
                loaded.manifest.system.name,
                loaded.manifest.services.len(),
                loaded.manifest.gateway.routes.len()
            );
            (true, loaded.warnings, summary)
        }
        Err(LoadError::Invalid { diagnostics, .. }) => {
            let count = diagnostics
                .iter()
                .filter(|d| d.severity == conway_core::Severity::Error)
                .count();
            (false, diagnostics, format!("{shown}: {count} error(s)"))
        }
        Err(error @ LoadError::Read { .. }) => return Err(error.into()),
    };
    match output {
        Output::Json => {
            let report = json!({ "file": shown, "valid": valid, "diagnostics": diagnostics });
            println!("{report:#}");
        }
        Output::Table => print_human(&shown, valid, &diagnostics, &summary),
    }
    Ok(if valid {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}

fn print_human(file: &str, valid: bool, diagnostics: &Diagnostics, summary: &str) {
    eprint!("{}", diagnostics.render(file));
    if valid {
        println!("{summary}");
    } else {
        eprintln!("{summary}");
    }
}
