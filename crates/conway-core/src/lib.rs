//! Conway's core: the manifest (`conway.toml`) — its types, parsing, semantic
//! validation with `FILE:LINE:COLUMN` diagnostics, and JSON Schema — and the value
//! syntaxes it uses (durations, rates, shares, sizes) — and the governance findings
//! `conway lint` reports.
//!
//! This crate knows no other Conway crate, no network and no runtime: everything else
//! builds on it.

pub mod api;
pub mod calendar;
pub mod diagnostics;
pub mod governance;
mod load;
mod locate;
pub mod manifest;
pub mod reference;
mod string_or_table;
pub mod units;
mod validate;

pub use diagnostics::{Diagnostic, Diagnostics, Severity};
pub use load::{LoadError, Loaded, MAX_MANIFEST_BYTES, load_file, load_text, parse};
pub use manifest::Manifest;
pub use reference::{json_schema, markdown_reference};
