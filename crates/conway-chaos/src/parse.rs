//! Reading an experiment file: TOML syntax, then types (unknown keys refused), then the
//! rules serde cannot say — each problem as `FILE:LINE:COLUMN: message`, as
//! `conway validate` reports a manifest's.

use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use serde_spanned::Spanned;
use toml::de::DeTable;

use conway_core::diagnostics::did_you_mean;
use conway_core::units::Duration;
use conway_core::{Diagnostic, Diagnostics, Severity};

use crate::experiment::{Action, ActionKind, Experiment, Probe};

/// The largest experiment file read.
pub const MAX_EXPERIMENT_BYTES: usize = 1024 * 1024;

/// The shortest interval between checks, and between kills.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Why an experiment file could not be used: unreadable, or its problems.
pub type ParseError = conway_core::LoadError;

/// Reads and checks the experiment at `path`.
pub fn load_file(path: &Path) -> Result<Experiment, ParseError> {
    conway_core::load_text(path, MAX_EXPERIMENT_BYTES, parse)
}

/// Checks an experiment's text: every syntax error, else the first type error, else
/// every broken rule, each at its position.
pub fn parse(source: &str) -> Result<Experiment, Diagnostics> {
    let mut out = Findings::new(source);
    if source.len() > MAX_EXPERIMENT_BYTES {
        out.error(
            0..0,
            format!("the file is larger than {MAX_EXPERIMENT_BYTES} bytes, the most Conway reads"),
        );
        return Err(out.finish());
    }
    let (document, syntax_errors) = DeTable::parse_recoverable(source);
    for error in &syntax_errors {
        out.error(error.span().unwrap_or(0..0), error.message());
    }
    if !syntax_errors.is_empty() {
        return Err(out.finish());
    }
    let root_span = document.span();
    let experiment = match Experiment::deserialize(toml::de::Deserializer::from(document)) {
        Ok(experiment) => experiment,
        Err(error) => {
            out.error(
                error.span().unwrap_or(root_span),
                did_you_mean(error.message()),
            );
            return Err(out.finish());
        }
    };
    check(&experiment, &mut out);
    if out.is_empty() {
        Ok(experiment)
    } else {
        Err(out.finish())
    }
}

/// Findings collected in any order, sorted by position at the end.
struct Findings<'a> {
    source: &'a str,
    found: Vec<Diagnostic>,
}

impl<'a> Findings<'a> {
    fn new(source: &'a str) -> Self {
        Self {
            source,
            found: Vec::new(),
        }
    }

    fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.found
            .push(Diagnostic::at(Severity::Error, self.source, span, message));
    }

    fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    fn finish(mut self) -> Diagnostics {
        self.found.sort_by_key(|d| (d.line, d.column));
        self.found.dedup();
        let mut diagnostics = Diagnostics::default();
        for d in self.found {
            diagnostics.push(d);
        }
        diagnostics
    }
}

/// The rules beyond the types.
fn check(experiment: &Experiment, out: &mut Findings<'_>) {
    let steady = &experiment.steady_state;
    if *steady.interval.get_ref() < MIN_INTERVAL {
        out.error(
            steady.interval.span(),
            format!("interval must be at least {MIN_INTERVAL}"),
        );
    }
    if steady.probes.get_ref().is_empty() {
        out.error(
            steady.probes.span(),
            "the steady state needs at least one probe",
        );
    }
    let mut names: Vec<&str> = Vec::new();
    for probe in steady.probes.get_ref() {
        check_probe(probe, out);
        let name = probe.get_ref().name.as_str();
        if names.contains(&name) {
            out.error(
                probe.span(),
                format!("two probes are named {name:?}; the report tells them apart by name"),
            );
        }
        names.push(name);
    }
    if let Some(within) = &experiment.rollback.recover_within
        && *within.get_ref() > Duration::from_secs(3600)
    {
        out.error(within.span(), "recover_within must be at most 1h");
    }
    for action in &experiment.method {
        check_action(action, out);
    }
}

fn check_probe(spanned: &Spanned<Probe>, out: &mut Findings<'_>) {
    let probe = spanned.get_ref();
    let at = spanned.span();
    if probe.name.trim().is_empty() {
        out.error(at.clone(), "a probe needs a name");
    }
    match (&probe.http, &probe.service) {
        (Some(_), Some(_)) => out.error(
            at.clone(),
            format!(
                "probe {:?} has both `http` and `service`: give one per probe",
                probe.name
            ),
        ),
        (None, None) => out.error(
            at.clone(),
            format!(
                "probe {:?} needs `http = {{ url = ... }}` or `service = \"NAME\"`",
                probe.name
            ),
        ),
        _ => {}
    }
    if let Some(http) = &probe.http {
        let url = http.url.get_ref();
        match reqwest::Url::parse(url) {
            Ok(parsed) if parsed.scheme() == "http" && parsed.host().is_some() => {}
            Ok(_) => out.error(http.url.span(), "the URL must be http://HOST[:PORT]/PATH"),
            Err(error) => out.error(http.url.span(), format!("invalid URL: {error}")),
        }
        if !(100..=599).contains(http.status.get_ref()) {
            out.error(http.status.span(), "status must be from 100 to 599");
        }
        if http.timeout.is_zero() {
            out.error(
                at.clone(),
                format!("probe {:?}: timeout must be above 0", probe.name),
            );
        }
    }
    let has_limit = probe.max_error_rate.is_some() || probe.max_p99.is_some();
    if probe.service.is_some() && !has_limit {
        out.error(
            at.clone(),
            format!(
                "probe {:?} names a service but no `max_error_rate` or `max_p99`",
                probe.name
            ),
        );
    }
    if probe.service.is_none() && has_limit {
        out.error(
            at,
            format!(
                "probe {:?}: `max_error_rate` and `max_p99` need `service`",
                probe.name
            ),
        );
    }
}

fn check_action(spanned: &Spanned<Action>, out: &mut Findings<'_>) {
    let action = spanned.get_ref();
    let kind = action.action;
    let at = spanned.span();
    // Each key and where it was given; which keys this kind needs, and which it takes.
    let keys: [(&str, Option<Range<usize>>); 7] = [
        ("service", action.service.as_ref().map(Spanned::span)),
        ("percent", action.percent.as_ref().map(Spanned::span)),
        ("duration", action.duration.as_ref().map(Spanned::span)),
        ("status", action.status.as_ref().map(Spanned::span)),
        ("for", action.duration_for.as_ref().map(Spanned::span)),
        ("instance", action.instance.as_ref().map(Spanned::span)),
        ("every", action.every.as_ref().map(Spanned::span)),
    ];
    let (needed, allowed): (&[&str], &[&str]) = match kind {
        ActionKind::Delay => (
            &["service", "percent", "duration"],
            &["service", "percent", "duration", "for"],
        ),
        ActionKind::Abort => (
            &["service", "percent", "status"],
            &["service", "percent", "status", "for"],
        ),
        ActionKind::Kill => (&["service"], &["service", "instance", "every", "for"]),
        ActionKind::Wait => (&["for"], &["for"]),
    };
    for (key, span) in &keys {
        match span {
            Some(span) if !allowed.contains(key) => out.error(
                span.clone(),
                format!(
                    "`{key}` does not apply to {} action (it takes {})",
                    kind.a_name(),
                    list(allowed)
                ),
            ),
            None if needed.contains(key) => out.error(
                at.clone(),
                format!("{} action needs `{key}`", kind.a_name()),
            ),
            _ => {}
        }
    }
    if let Some(percent) = &action.percent {
        let p = *percent.get_ref();
        if !(p > 0.0 && p <= 100.0) {
            out.error(percent.span(), "percent must be above 0 and at most 100");
        }
    }
    if let Some(status) = &action.status
        && !(400..=599).contains(status.get_ref())
    {
        out.error(
            status.span(),
            "status must be an HTTP error status, 400 to 599",
        );
    }
    for (key, value) in [
        ("duration", &action.duration),
        ("for", &action.duration_for),
    ] {
        if let Some(value) = value
            && value.get_ref().is_zero()
        {
            out.error(value.span(), format!("`{key}` must be above 0"));
        }
    }
    if let Some(every) = &action.every
        && *every.get_ref() < MIN_INTERVAL
    {
        out.error(
            every.span(),
            format!("every must be at least {MIN_INTERVAL}"),
        );
    }
    if kind == ActionKind::Kill
        && action.every.is_none()
        && let Some(duration_for) = &action.duration_for
    {
        out.error(
            duration_for.span(),
            "a kill's `for` needs `every` (a single kill takes no time)",
        );
    }
    if let Some(service) = &action.service
        && service.get_ref().trim().is_empty()
    {
        out.error(service.span(), "service must name a service");
    }
}

fn list(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
title = "orders survive a slow inventory"
[steady_state]
interval = "1s"
[[steady_state.probes]]
name = "storefront answers"
http = { url = "http://127.0.0.1:8080/api/catalog/products", status = 200, timeout = "1s" }
[[steady_state.probes]]
name = "orders error rate"
service = "orders"
max_error_rate = "1%"
max_p99 = "500ms"
[[method]]
action = "delay"
service = "inventory"
percent = 50
duration = "300ms"
for = "10s"
[[method]]
action = "kill"
service = "payments"
[rollback]
"#;

    fn errors(source: &str) -> Vec<String> {
        match parse(source) {
            Ok(_) => Vec::new(),
            Err(d) => d.iter().map(|d| d.render("x.toml")).collect(),
        }
    }

    #[test]
    fn the_example_of_the_docs_parses() {
        let experiment = parse(GOOD).expect("valid");
        assert_eq!(experiment.steady_state.probes.get_ref().len(), 2);
        assert_eq!(experiment.method.len(), 2);
        let delay = experiment.method[0].get_ref();
        assert_eq!(delay.action, ActionKind::Delay);
        assert_eq!(
            delay.duration_for.as_ref().map(|d| *d.get_ref()),
            Some(Duration::from_secs(10))
        );
    }

    #[test]
    fn syntax_errors_have_positions() {
        let found = errors("title = \"x\"\n[steady_state\n");
        assert!(found[0].starts_with("x.toml:2:"), "{found:?}");
    }

    #[test]
    fn unknown_keys_are_refused_where_they_stand() {
        let source = GOOD.replace("max_p99 = \"500ms\"", "max_p95 = \"500ms\"");
        let found = errors(&source);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("x.toml:12:1: unknown field `max_p95`"),
            "{found:?}"
        );
    }

    #[test]
    fn near_misses_get_a_suggestion() {
        let found = errors(&GOOD.replace("action = \"delay\"", "action = \"dealy\""));
        assert!(
            found[0].starts_with("x.toml:14:10: unknown variant `dealy`; did you mean `delay`?"),
            "{found:?}"
        );
        let found = errors(&GOOD.replace("interval = ", "intervall = "));
        assert!(
            found[0].starts_with("x.toml:4:1: unknown field `intervall`; did you mean `interval`?"),
            "{found:?}"
        );
    }

    #[test]
    fn units_are_checked_where_they_stand() {
        let found = errors(&GOOD.replace("\"300ms\"", "\"300 parsecs\""));
        assert!(
            found[0].starts_with("x.toml:17:12: invalid duration"),
            "{found:?}"
        );
        let found = errors(&GOOD.replace("\"1%\"", "\"120%\""));
        assert!(
            found[0].starts_with("x.toml:11:18: invalid share"),
            "{found:?}"
        );
    }

    #[test]
    fn rules_beyond_types_are_all_reported() {
        let source = GOOD
            .replace("percent = 50", "percent = 150\nstatus = 503")
            .replace("interval = \"1s\"", "interval = \"10ms\"");
        let found = errors(&source);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(
            found[0].starts_with("x.toml:4:12: interval must be at least 100ms"),
            "{found:?}"
        );
        assert!(
            found[1].starts_with("x.toml:16:11: percent must be above 0"),
            "{found:?}"
        );
        assert!(
            found[2].starts_with("x.toml:17:10: `status` does not apply to a delay"),
            "{found:?}"
        );
    }

    #[test]
    fn missing_keys_and_empty_hypotheses_are_refused() {
        let found = errors(
            "title = \"t\"\n[steady_state]\nprobes = []\n[[method]]\naction = \"abort\"\nservice = \"a\"\npercent = 5\n",
        );
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("at least one probe"), "{found:?}");
        assert!(
            found[1].contains("an abort action needs `status`"),
            "{found:?}"
        );
        let found =
            errors("title = \"t\"\n[steady_state]\n[[steady_state.probes]]\nname = \"p\"\n");
        assert!(found[0].contains("needs `http"), "{found:?}");
        let found = errors("[steady_state]\nprobes = []\n");
        assert!(found[0].contains("missing field `title`"), "{found:?}");
    }

    #[test]
    fn kills_need_every_for_a_duration_and_urls_must_be_http() {
        let source = GOOD
            .replace(
                "service = \"payments\"",
                "service = \"payments\"\nfor = \"5s\"",
            )
            .replace("http://127.0.0.1:8080", "https://127.0.0.1:8080");
        let found = errors(&source);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("must be http://"), "{found:?}");
        assert!(found[1].contains("needs `every`"), "{found:?}");
    }
}
