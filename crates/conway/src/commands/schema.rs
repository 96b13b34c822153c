//! `conway schema`: the manifest's JSON Schema, or its Markdown reference.

use conway_core::{json_schema, markdown_reference};

use crate::cli::SchemaFormat;
use crate::exit::Outcome;

pub(crate) fn run(format: SchemaFormat) -> anyhow::Result<Outcome> {
    match format {
        SchemaFormat::Json => println!("{:#}", json_schema()),
        SchemaFormat::Markdown => print!("{}", markdown_reference()),
    }
    Ok(Outcome::Success)
}
