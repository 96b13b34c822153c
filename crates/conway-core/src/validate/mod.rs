//! The semantic rules a manifest must follow beyond its types: references between
//! services, routes that can be reached, policies that make sense. Every finding points
//! at the offending value.

mod graph;
mod routes;
mod security;
mod services;

use serde_spanned::Spanned;
use toml::de::DeTable;

use crate::diagnostics::{Diagnostic, Diagnostics, Severity};
use crate::locate::{Path, Target, locate};
use crate::manifest::Manifest;
pub(crate) use crate::manifest::is_service_name;

/// Collects findings, placing each at its path in the document.
pub(crate) struct Report<'a, 'doc> {
    source: &'a str,
    document: &'a Spanned<DeTable<'doc>>,
    out: &'a mut Diagnostics,
}

impl Report<'_, '_> {
    /// An error at the value at `path`.
    pub(crate) fn error(&mut self, path: &Path, message: impl Into<String>) {
        self.push(Severity::Error, path, Target::Value, message.into());
    }

    /// An error at the key that names the value at `path`.
    pub(crate) fn error_at_key(&mut self, path: &Path, message: impl Into<String>) {
        self.push(Severity::Error, path, Target::Key, message.into());
    }

    /// A warning at the value at `path`.
    pub(crate) fn warning(&mut self, path: &Path, message: impl Into<String>) {
        self.push(Severity::Warning, path, Target::Value, message.into());
    }

    fn push(&mut self, severity: Severity, path: &Path, target: Target, message: String) {
        let span = locate(self.document, path, target);
        self.out
            .push(Diagnostic::at(severity, self.source, span, message));
    }
}

/// Runs every rule over a manifest that deserialized.
pub(crate) fn validate(
    manifest: &Manifest,
    source: &str,
    document: &Spanned<DeTable<'_>>,
    out: &mut Diagnostics,
) {
    let mut report = Report {
        source,
        document,
        out,
    };
    services::check(manifest, &mut report);
    graph::check(manifest, &mut report);
    routes::check(manifest, &mut report);
    security::check(manifest, &mut report);
}

/// The root path.
fn root() -> Path {
    Path::default()
}
