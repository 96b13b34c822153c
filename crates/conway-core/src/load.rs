//! Reading a manifest: TOML syntax, then types, then the semantic rules — reporting
//! every problem found at each stage, each at the position of the offending value.

use std::io::Read;
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

/// Why a manifest file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The manifest's path.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file was read and has problems.
    #[error("{}", diagnostics.render(&path.display().to_string()).trim_end())]
    Invalid {
        /// The manifest's path.
        path: PathBuf,
        /// Every problem found, with warnings.
        diagnostics: Diagnostics,
    },
}

/// Reads and checks the manifest at `path`.
pub fn load_file(path: &FsPath) -> Result<Loaded, LoadError> {
    // Read one byte past the limit, no more: `parse` then reports the file as too large,
    // and a wrong path to something endless (`/dev/zero`) fails at once.
    let mut source = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| {
            file.take(MAX_MANIFEST_BYTES as u64 + 1)
                .read_to_end(&mut source)
        })
        .map_err(|source| LoadError::Read {
            path: path.into(),
            source,
        })?;
    let invalid = |diagnostics| LoadError::Invalid {
        path: path.into(),
        diagnostics,
    };
    if source.len() > MAX_MANIFEST_BYTES {
        return Err(invalid(too_large()));
    }
    let source = String::from_utf8(source).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(e.as_bytes());
        let mut diagnostics = Diagnostics::default();
        diagnostics.push(Diagnostic::at(
            Severity::Error,
            &text,
            offset..offset,
            "the file is not UTF-8 text",
        ));
        invalid(diagnostics)
    })?;
    parse(&source).map_err(invalid)
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
            type_errors(source, document.get_ref(), &mut diagnostics);
            if diagnostics.is_empty() {
                diagnostics.push(Diagnostic::at(
                    Severity::Error,
                    source,
                    whole.span().unwrap_or(0..0),
                    whole.message(),
                ));
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

/// Deserializes each section, service, route, consumer and issuer on its own, so that
/// one mistake does not hide the next.
fn type_errors(source: &str, root: &DeTable<'_>, out: &mut Diagnostics) {
    for (key, value) in root.iter() {
        match key.get_ref().as_ref() {
            "system" => check::<System>(source, value, out),
            "mesh" => check::<Mesh>(source, value, out),
            "telemetry" => check::<Telemetry>(source, value, out),
            "gateway" => check_gateway(source, value, out),
            "services" => check_each::<Service>(source, value, out),
            "consumers" => check_each::<Consumer>(source, value, out),
            "jwt" => check_each::<JwtIssuer>(source, value, out),
            _ => {
                let mut single = DeTable::new();
                single.insert(key.clone(), value.clone());
                let whole = Spanned::new(key.span(), single);
                if let Err(e) = Manifest::deserialize(toml::de::Deserializer::from(whole)) {
                    out.push(Diagnostic::at(
                        Severity::Error,
                        source,
                        key.span(),
                        suggest(e.message()),
                    ));
                }
            }
        }
    }
}

/// Deserializes one value as `T`. After each error, the innermost entry holding it (at
/// any depth) is set aside and the rest tried again, so several mistakes in one table,
/// or in one of its nested tables, are all reported.
fn check<T: DeserializeOwned>(source: &str, value: &Spanned<DeValue<'_>>, out: &mut Diagnostics) {
    let mut value = value.clone();
    let mut removed: Vec<Vec<String>> = Vec::new();
    while let Err(e) = T::deserialize(ValueDeserializer::from(value.clone())) {
        let span = e.span().unwrap_or(value.span());
        let DeValue::Table(table) = value.get_mut() else {
            out.push(Diagnostic::at(
                Severity::Error,
                source,
                span,
                suggest(e.message()),
            ));
            return;
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
            out.push(Diagnostic::at(
                Severity::Error,
                source,
                span,
                suggest(e.message()),
            ));
        }
        if entry.is_empty() || !remove_entry(table, &entry) {
            return;
        }
        removed.push(entry);
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

fn check_each<T: DeserializeOwned>(
    source: &str,
    value: &Spanned<DeValue<'_>>,
    out: &mut Diagnostics,
) {
    match value.get_ref() {
        DeValue::Table(table) => table
            .values()
            .for_each(|item| check::<T>(source, item, out)),
        _ => check::<std::collections::BTreeMap<String, T>>(source, value, out),
    }
}

fn check_gateway(source: &str, value: &Spanned<DeValue<'_>>, out: &mut Diagnostics) {
    let DeValue::Table(table) = value.get_ref() else {
        return check::<Gateway>(source, value, out);
    };
    let mut rest = table.clone();
    let routes = rest.remove("routes");
    check::<Gateway>(
        source,
        &Spanned::new(value.span(), DeValue::Table(rest)),
        out,
    );
    match routes.as_ref().map(|r| (r, r.get_ref())) {
        Some((_, DeValue::Array(array))) => array
            .iter()
            .for_each(|route| check::<Route>(source, route, out)),
        Some((routes, _)) => check::<Vec<Route>>(source, routes, out),
        None => {}
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
    let Some(rest) = message.strip_prefix("unknown field `") else {
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
        Some((_, known)) => format!("unknown field `{unknown}`; did you mean `{known}`?"),
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
