//! Problems found in a manifest, each with the position of the offending value.

use std::fmt;
use std::ops::Range;

use serde::Serialize;

/// How serious a finding is: errors make the manifest invalid, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The manifest cannot be used.
    Error,
    /// Legal, but probably not what was meant.
    Warning,
}

/// One finding, at a 1-based line and column (in characters) of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The line of the offending value, from 1.
    pub line: usize,
    /// The column of the offending value, from 1, counted in characters.
    pub column: usize,
    /// What is wrong, and where it helps, how to fix it.
    pub message: String,
}

impl Diagnostic {
    /// A finding at byte offset `span.start` of `source`.
    pub fn at(
        severity: Severity,
        source: &str,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> Self {
        let (line, column) = line_column(source, span.start);
        Self {
            severity,
            line,
            column,
            message: message.into(),
        }
    }

    /// The finding as `FILE:LINE:COLUMN: message` (warnings say so after the position).
    pub fn render(&self, file: &str) -> String {
        let kind = match self.severity {
            Severity::Error => "",
            Severity::Warning => "warning: ",
        };
        format!(
            "{file}:{}:{}: {kind}{}",
            self.line, self.column, self.message
        )
    }
}

/// The 1-based line and character column of byte `offset` in `source`.
pub fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// All findings of one manifest, in source order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    /// Adds a finding.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    /// Sorts by position and drops exact repeats.
    pub(crate) fn finish(mut self) -> Self {
        self.0.sort_by_key(|a| (a.line, a.column, a.severity));
        self.0.dedup();
        self
    }

    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }

    /// The findings.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }

    /// How many findings there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every finding as `FILE:LINE:COLUMN: message`, one a line.
    pub fn render(&self, file: &str) -> String {
        self.0.iter().map(|d| d.render(file) + "\n").collect()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.render("conway.toml").trim_end())
    }
}

/// Adds "did you mean" to serde's "unknown field `x`, expected one of `a`, `b`" (and
/// "unknown variant") when a known name is one or two edits away; other messages are
/// returned as they are.
pub fn did_you_mean(message: &str) -> String {
    let Some((kind, rest)) = ["unknown field `", "unknown variant `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix).map(|rest| (*prefix, rest)))
    else {
        return message.to_owned();
    };
    let Some((unknown, expected)) = rest.split_once('`') else {
        return message.to_owned();
    };
    let closest = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|known| (edit_distance(unknown, known), known))
        .filter(|(distance, _)| *distance <= 2)
        .min();
    match closest {
        Some((_, known)) => format!("{kind}{unknown}`; did you mean `{known}`?"),
        None => message.to_owned(),
    }
}

/// The Levenshtein distance between two short strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters() {
        let source = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_column(source, 0), (1, 1));
        assert_eq!(line_column(source, 6), (2, 1));
        // 'é' is two bytes but one column.
        assert_eq!(
            line_column(source, source.find('=').map_or(0, |_| 11)),
            (2, 5)
        );
        assert_eq!(line_column(source, 10_000), (3, 1));
    }

    #[test]
    fn findings_render_with_file_and_position() {
        let d = Diagnostic::at(Severity::Warning, "x = 1\ny = 2", 6..7, "odd");
        assert_eq!(d.render("conway.toml"), "conway.toml:2:1: warning: odd");
    }
}
