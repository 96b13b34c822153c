//! `conway apply -f conway.toml`: checks the manifest here (the same `FILE:LINE:COLUMN`
//! errors as `conway validate`, exit 1), then sends it to `conway up`, which brings the
//! running system to it, and prints what changed.

use std::path::Path;

use conway_client::Client;
use conway_core::api::ApplyRequest;
use conway_core::{LoadError, load_file};

use super::{print_json, print_out};
use crate::cli::Output;
use crate::exit::Outcome;

/// `conway apply`.
pub(crate) async fn apply(server: &str, output: Output, file: &Path) -> anyhow::Result<Outcome> {
    let shown = file.display().to_string();
    match load_file(file) {
        Ok(loaded) => eprint!("{}", loaded.warnings.render(&shown)),
        Err(LoadError::Invalid { diagnostics, .. }) => {
            eprint!("{}", diagnostics.render(&shown));
            return Ok(Outcome::Failed);
        }
        Err(error) => return Err(error.into()),
    }
    let manifest = std::fs::read_to_string(file)?;
    let applied = Client::builder(server)
        // Builds of new and changed services run before the answer.
        .timeout(std::time::Duration::from_secs(600))
        .build()?
        .apply(&ApplyRequest {
            manifest,
            path: Some(shown),
        })
        .await?;
    if output == Output::Json {
        print_json(&applied)?;
        return Ok(Outcome::Success);
    }
    let mut text = String::new();
    for (what, names) in [
        ("started", &applied.started),
        ("removed", &applied.removed),
        ("redeployed", &applied.redeployed),
        ("scaled", &applied.scaled),
        ("updated", &applied.updated),
    ] {
        for name in names {
            text.push_str(&format!("{what:<11} {name}\n"));
        }
    }
    if text.is_empty() {
        text.push_str("nothing changed\n");
    }
    print_out(&text)?;
    for note in &applied.notes {
        eprintln!("note: {note}");
    }
    if !applied.redeployed.is_empty() {
        eprintln!(
            "redeploys roll one replica at a time; follow one with `conway deploy SERVICE --status`"
        );
    }
    Ok(Outcome::Success)
}
