//! Every rule of the manifest's validation, and every kind of type-level mistake, each
//! with a manifest that passes and one that fails at an exact line and column.

mod graph;
mod routes;
mod security;
mod services;
mod types;

use conway_core::{Manifest, Severity, parse};

/// A finding as `(line, column, message)`.
type Finding = (usize, usize, String);

/// An expected finding: line, column and words its message must contain.
type Expected<'a> = (usize, usize, &'a [&'a str]);

fn findings(source: &str, severity: Severity) -> Vec<Finding> {
    let diagnostics = match parse(source) {
        Ok(loaded) => loaded.warnings,
        Err(diagnostics) => diagnostics,
    };
    diagnostics
        .iter()
        .filter(|d| d.severity == severity)
        .map(|d| (d.line, d.column, d.message.clone()))
        .collect()
}

/// The errors found in `source`, in source order.
fn errors(source: &str) -> Vec<Finding> {
    findings(source, Severity::Error)
}

/// The warnings found in `source`, in source order.
fn warnings(source: &str) -> Vec<Finding> {
    findings(source, Severity::Warning)
}

/// Asserts that `source` is valid (warnings allowed) and returns what it declares.
#[track_caller]
fn assert_valid(source: &str) -> Manifest {
    match parse(source) {
        Ok(loaded) => loaded.manifest,
        Err(diagnostics) => {
            panic!("expected a valid manifest, found:\n{diagnostics}\nin:\n{source}")
        }
    }
}

fn matches(found: &[Finding], expected: &[Expected<'_>]) -> bool {
    found.len() == expected.len()
        && found
            .iter()
            .zip(expected)
            .all(|((line, column, message), (l, c, words))| {
                line == l && column == c && words.iter().all(|w| message.contains(w))
            })
}

/// Asserts that `source` is invalid with exactly these errors, in this order.
#[track_caller]
fn assert_errors(source: &str, expected: &[Expected<'_>]) {
    assert!(
        parse(source).is_err(),
        "expected an invalid manifest:\n{source}"
    );
    let found = errors(source);
    assert!(
        matches(&found, expected),
        "expected errors {expected:?}\n   found {found:#?}\nin:\n{source}"
    );
}

/// Asserts that `source` is invalid with exactly one error, there.
#[track_caller]
fn assert_error(source: &str, line: usize, column: usize, words: &[&str]) {
    assert_errors(source, &[(line, column, words)]);
}

/// Asserts that `source` is valid with exactly these warnings, in this order.
#[track_caller]
fn assert_warnings(source: &str, expected: &[Expected<'_>]) {
    assert_valid(source);
    let found = warnings(source);
    assert!(
        matches(&found, expected),
        "expected warnings {expected:?}\n   found {found:#?}\nin:\n{source}"
    );
}
