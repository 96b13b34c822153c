//! Reading a manifest: TOML syntax, then types, then the semantic rules — reporting
//! every problem found at each stage, each at the position of the offending value.

use std::io::Read;
use std::ops::Range;
use std::path::{Path as FsPath, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_spanned::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::diagnostics::{Diagnostic, Diagnostics, Severity};
use crate::manifest::{
    Consumer, Gateway, JwtIssuer, Manifest, Mesh, Route, Service, System, Telemetry,
};
use crate::validate::validate;

/// The largest manifest read, so a wrong path to a huge file fails fast.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// A manifest that passed every check, with the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The declared state.
    pub manifest: Manifest,
    /// Findings that do not make the manifest invalid (dependency cycles, say).
    pub warnings: Diagnostics,
}

/// Why a file Conway checks (a manifest, a chaos experiment) could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file's path.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file was read and has problems.
    #[error("{}", diagnostics.render(&path.display().to_string()).trim_end())]
    Invalid {
        /// The file's path.
        path: PathBuf,
        /// Every problem found, with warnings.
        diagnostics: Diagnostics,
    },
}

/// Reads and checks the manifest at `path`.
pub fn load_file(path: &FsPath) -> Result<Loaded, LoadError> {
    load_text(path, MAX_MANIFEST_BYTES, parse)
}

/// Reads the text file at `path` and checks it with `check`. At most one byte past
/// `max` is read, so that `check` reports the file as too large and a wrong path to
/// something endless (`/dev/zero`) fails at once; text that is not UTF-8 is an error at
/// its first bad byte.
pub fn load_text<T>(
    path: &FsPath,
    max: usize,
    check: impl FnOnce(&str) -> Result<T, Diagnostics>,
) -> Result<T, LoadError> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(max as u64 + 1).read_to_end(&mut bytes))
        .map_err(|source| LoadError::Read {
            path: path.into(),
            source,
        })?;
    let invalid = |diagnostics| LoadError::Invalid {
        path: path.into(),
        diagnostics,
    };
    let source = match String::from_utf8(bytes) {
        Ok(source) => source,
        // Cut at the limit, perhaps inside a character: `check` says it is too large.
        Err(e) if e.as_bytes().len() > max => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        Err(e) => {
            let offset = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes());
            let mut diagnostics = Diagnostics::default();
            diagnostics.push(Diagnostic::at(
                Severity::Error,
                &text,
                offset..offset,
                "the file is not UTF-8 text",
            ));
            return Err(invalid(diagnostics));
        }
    };
    check(&source).map_err(invalid)
}

/// Checks a manifest's text: all syntax errors, else all type errors, else all
/// semantic errors, each with its position. Warnings come back either way.
pub fn parse(source: &str) -> Result<Loaded, Diagnostics> {
    if source.len() > MAX_MANIFEST_BYTES {
        return Err(too_large());
    }
    let mut diagnostics = Diagnostics::default();
    let (document, syntax_errors) = DeTable::parse_recoverable(source);
    for error in &syntax_errors {
        diagnostics.push(Diagnostic::at(
            Severity::Error,
            source,
            error.span().unwrap_or(0..0),
            error.message(),
        ));
    }
    if !syntax_errors.is_empty() {
        return Err(diagnostics.finish());
    }
    let manifest = match Manifest::deserialize(toml::de::Deserializer::from(document.clone())) {
        Ok(manifest) => manifest,
        Err(whole) => {
            let mut checker = TypeCheck {
                source,
                out: &mut diagnostics,
                tainted: Vec::new(),
            };
            let repaired = checker.document(&document);
            let tainted = checker.tainted;
            if diagnostics.is_empty() {
                diagnostics.push(Diagnostic::at(
                    Severity::Error,
                    source,
                    whole.span().unwrap_or(0..0),
                    whole.message(),
                ));
            } else {
                semantic_errors_outside(source, &repaired, &tainted, &mut diagnostics);
            }
            return Err(diagnostics.finish());
        }
    };
    validate(&manifest, source, &document, &mut diagnostics);
    let diagnostics = diagnostics.finish();
    if diagnostics.has_errors() {
        return Err(diagnostics);
    }
    Ok(Loaded {
        manifest,
        warnings: diagnostics,
    })
}

/// The finding for a manifest over [`MAX_MANIFEST_BYTES`], at its start.
fn too_large() -> Diagnostics {
    let mut diagnostics = Diagnostics::default();
    diagnostics.push(Diagnostic::at(
        Severity::Error,
        "",
        0..0,
        format!("the manifest is larger than {MAX_MANIFEST_BYTES} bytes, the most Conway reads"),
    ));
    diagnostics
}

/// The rules about values, run on the parts of a document that did not deserialize
/// as a whole: each finding is reported, and the document is repaired around it.
struct TypeCheck<'a> {
    source: &'a str,
    out: &'a mut Diagnostics,
    /// The spans of the items (sections, services, routes…) that had a type error.
    tainted: Vec<Range<usize>>,
}

impl TypeCheck<'_> {
    /// Deserializes each section, service, route, consumer and issuer on its own, so
    /// that one mistake does not hide the next. Returns the document without what did
    /// not deserialize: the semantic rules can still run over the rest.
    fn document<'i>(&mut self, root: &Spanned<DeTable<'i>>) -> Spanned<DeTable<'i>> {
        let mut repaired = DeTable::new();
        for (key, value) in root.get_ref().iter() {
            let kept = match key.get_ref().as_ref() {
                "system" => self.check::<System>(value),
                "mesh" => self.check::<Mesh>(value),
                "telemetry" => self.check::<Telemetry>(value),
                "gateway" => self.gateway(value),
                "services" => self.each::<Service>(value),
                "consumers" => self.each::<Consumer>(value),
                "jwt" => self.each::<JwtIssuer>(value),
                _ => {
                    let mut single = DeTable::new();
                    single.insert(key.clone(), value.clone());
                    let whole = Spanned::new(key.span(), single);
                    if let Err(e) = Manifest::deserialize(toml::de::Deserializer::from(whole)) {
                        self.report(key.span(), e.message());
                    }
                    None
                }
            };
            if let Some(kept) = kept {
                repaired.insert(key.clone(), kept);
            }
        }
        Spanned::new(root.span(), repaired)
    }

    fn report(&mut self, span: Range<usize>, message: &str) {
        self.out.push(Diagnostic::at(
            Severity::Error,
            self.source,
            span,
            suggest(message),
        ));
    }

    /// Deserializes one value as `T`. After each error, the innermost entry holding it
    /// (at any depth) is set aside and the rest tried again, so several mistakes in one
    /// table, or in one of its nested tables, are all reported. Returns what
    /// deserialized in the end, if anything.
    fn check<'i, T: DeserializeOwned>(
        &mut self,
        value: &Spanned<DeValue<'i>>,
    ) -> Option<Spanned<DeValue<'i>>> {
        let mut value = value.clone();
        let mut removed: Vec<Vec<String>> = Vec::new();
        while let Err(e) = T::deserialize(ValueDeserializer::from(value.clone())) {
            if removed.is_empty() {
                self.tainted.push(extent(&value));
            }
            let span = e.span().unwrap_or(value.span());
            let DeValue::Table(table) = value.get_mut() else {
                self.report(span, e.message());
                return None;
            };
            let entry = entry_at(table, span.start);
            // A required field set aside after its own error is missing now: already said.
            let consequence = e
                .message()
                .strip_prefix("missing field `")
                .and_then(|rest| rest.strip_suffix('`'))
                .is_some_and(|field| {
                    removed
                        .iter()
                        .any(|path| path.split_last() == Some((&field.to_owned(), &entry[..])))
                });
            if !consequence {
                self.report(span, e.message());
            }
            if entry.is_empty() || !remove_entry(table, &entry) {
                return None;
            }
            removed.push(entry);
        }
        Some(value)
    }

    /// Checks each item of a table of named items (services, consumers, issuers). An
    /// item that does not deserialize at all stays as an empty table, so references to
    /// its name still resolve.
    fn each<'i, T: DeserializeOwned>(
        &mut self,
        value: &Spanned<DeValue<'i>>,
    ) -> Option<Spanned<DeValue<'i>>> {
        let DeValue::Table(table) = value.get_ref() else {
            return self.check::<std::collections::BTreeMap<String, T>>(value);
        };
        let mut kept = DeTable::new();
        for (name, item) in table.iter() {
            let item = self
                .check::<T>(item)
                .unwrap_or_else(|| Spanned::new(item.span(), DeValue::Table(DeTable::new())));
            kept.insert(name.clone(), item);
        }
        Some(Spanned::new(value.span(), DeValue::Table(kept)))
    }

    /// Checks `[gateway]` without its routes, then each route.
    fn gateway<'i>(&mut self, value: &Spanned<DeValue<'i>>) -> Option<Spanned<DeValue<'i>>> {
        let DeValue::Table(table) = value.get_ref() else {
            return self.check::<Gateway>(value);
        };
        let mut rest = table.clone();
        let routes = rest.remove("routes");
        let checked = self.check::<Gateway>(&Spanned::new(value.span(), DeValue::Table(rest)))?;
        let DeValue::Table(mut gateway) = checked.into_inner() else {
            return None;
        };
        let routes = match routes {
            Some(routes) => match routes.get_ref() {
                DeValue::Array(array) => {
                    let kept = array
                        .iter()
                        .filter_map(|route| self.check::<Route>(route))
                        .collect();
                    Some(Spanned::new(routes.span(), DeValue::Array(kept)))
                }
                _ => self.check::<Vec<Route>>(&routes),
            },
            None => None,
        };
        if let Some(routes) = routes {
            gateway.insert(Spanned::new(0..0, "routes".into()), routes);
        }
        Some(Spanned::new(value.span(), DeValue::Table(gateway)))
    }
}

/// The bytes a value covers: for a table opened by a header, the header and every entry
/// below it, wherever they stand.
fn extent(value: &Spanned<DeValue<'_>>) -> Range<usize> {
    let mut range = value.span();
    let mut widen = |span: Range<usize>| {
        range.start = range.start.min(span.start);
        range.end = range.end.max(span.end);
    };
    match value.get_ref() {
        DeValue::Table(table) => table.iter().for_each(|(key, item)| {
            widen(key.span());
            widen(extent(item));
        }),
        DeValue::Array(array) => array.iter().for_each(|item| widen(extent(item))),
        _ => {}
    }
    range
}

/// The semantic rules over a repaired document, keeping only the findings outside the
/// items that had type errors (whose content is uncertain).
fn semantic_errors_outside(
    source: &str,
    repaired: &Spanned<DeTable<'_>>,
    tainted: &[Range<usize>],
    out: &mut Diagnostics,
) {
    let Ok(manifest) = Manifest::deserialize(toml::de::Deserializer::from(repaired.clone())) else {
        return;
    };
    let mut semantic = Diagnostics::default();
    validate(&manifest, source, repaired, &mut semantic);
    let position = |offset| crate::diagnostics::line_column(source, offset);
    let tainted: Vec<_> = tainted
        .iter()
        .map(|span| (position(span.start), position(span.end)))
        .collect();
    for finding in semantic.iter() {
        let at = (finding.line, finding.column);
        if !tainted.iter().any(|(start, end)| *start <= at && at < *end) {
            out.push(finding.clone());
        }
    }
}

/// The keys leading to the innermost entry of `table` that holds byte `offset` in its
/// key, its value or an entry below it; empty when no entry does.
fn entry_at(table: &DeTable<'_>, offset: usize) -> Vec<String> {
    for (key, item) in table.iter() {
        if let DeValue::Table(inner) = item.get_ref() {
            let below = entry_at(inner, offset);
            if !below.is_empty() {
                let mut path = vec![key.get_ref().to_string()];
                path.extend(below);
                return path;
            }
        }
        if key.span().contains(&offset) || item.span().contains(&offset) {
            return vec![key.get_ref().to_string()];
        }
    }
    Vec::new()
}

/// Removes the entry at `path`; whether it was there.
fn remove_entry(table: &mut DeTable<'_>, path: &[String]) -> bool {
    match path {
        [] => false,
        [key] => table.remove(key.as_str()).is_some(),
        [key, rest @ ..] => match table.get_mut(key.as_str()).map(Spanned::get_mut) {
            Some(DeValue::Table(inner)) => remove_entry(inner, rest),
            _ => false,
        },
    }
}

/// Says serde's "sequence" and "map" as TOML does ("array", "table"), and adds "did you
/// mean" to serde's "unknown field `x`, expected one of `a`, `b`" when a known field is
/// one or two edits away.
fn suggest(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        let rest = rest
            .replacen("sequence, expected", "array, expected", 1)
            .replacen("map, expected", "table, expected", 1);
        let rest = match rest.rsplit_once(", expected ") {
            Some((found, "a sequence")) => format!("{found}, expected an array"),
            Some((found, "a map")) => format!("{found}, expected a table"),
            _ => rest,
        };
        return format!("invalid type: {rest}");
    }
    crate::diagnostics::did_you_mean(message)
}
