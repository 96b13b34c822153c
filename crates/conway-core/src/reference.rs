//! The manifest's JSON Schema and its Markdown reference (`docs/manifest.md`), both
//! generated from the manifest's types so they cannot drift from what is parsed.

use std::collections::{BTreeSet, VecDeque};

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

use crate::manifest::Manifest;

/// The JSON Schema (draft 2020-12) of `conway.toml`, for editors and other tools.
pub fn json_schema() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator();
    generator.into_root_schema_for::<Manifest>().to_value()
}

/// The reference of every manifest key, as Markdown: one section per table, one row
/// per key with its type, default and description.
pub fn markdown_reference() -> String {
    let schema = json_schema();
    let empty = Map::new();
    let definitions = schema
        .get("$defs")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut out = String::from(
        "# `conway.toml` reference\n\n\
         Generated from the manifest's types by `conway schema --format markdown`; a test keeps\n\
         this file equal to that output. Durations are written `\"250ms\"`, `\"5s\"`, `\"2m\"`; rates\n\
         `\"100/s\"`; shares `\"10%\"`; sizes `\"1MiB\"`. Unknown keys are errors.\n",
    );
    let mut queue = VecDeque::from([("Top level".to_owned(), schema.clone())]);
    let mut seen = BTreeSet::new();
    while let Some((title, table)) = queue.pop_front() {
        out.push_str(&format!("\n## {title}\n\n"));
        if let Some(description) = table.get("description").and_then(Value::as_str) {
            out.push_str(&format!("{}\n\n", one_line(description)));
        }
        out.push_str("| key | type | default | description |\n|---|---|---|---|\n");
        let properties = table
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let required: BTreeSet<&str> = table
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (key, property) in properties {
            let default = match property.get("default") {
                Some(value) => format!("`{}`", value_as_toml(value)),
                None if required.contains(key.as_str()) => "required".to_owned(),
                None => "—".to_owned(),
            };
            let description = property
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("");
            out.push_str(&format!(
                "| `{key}` | {} | {default} | {} |\n",
                type_name(property, definitions),
                one_line(description).replace('|', "\\|")
            ));
            for (child, child_title) in nested_tables(&title, key, property) {
                if seen.insert(child.clone()) {
                    if let Some(definition) = definitions.get(&child) {
                        queue.push_back((child_title, definition.clone()));
                    }
                }
            }
        }
    }
    out
}

/// The tables a property leads to: `(definition name, section title)`.
fn nested_tables(parent: &str, key: &str, property: &Value) -> Vec<(String, String)> {
    let prefix = if parent == "Top level" {
        String::new()
    } else {
        format!("{}.", parent.trim_matches(['[', ']']))
    };
    let mut found = Vec::new();
    let mut visit = |schema: &Value, title: String| {
        if let Some(name) = reference_name(schema) {
            found.push((name, title));
        }
    };
    visit(property, format!("[{prefix}{key}]"));
    if let Some(items) = property.get("items") {
        visit(items, format!("[[{prefix}{key}]]"));
    }
    if let Some(values) = property.get("additionalProperties") {
        visit(values, format!("[{prefix}{key}.NAME]"));
    }
    for variant in property
        .get("anyOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        visit(variant, format!("[{prefix}{key}]"));
    }
    found
}

fn reference_name(schema: &Value) -> Option<String> {
    schema
        .get("$ref")?
        .as_str()?
        .rsplit('/')
        .next()
        .map(str::to_owned)
}

/// A short type description: `string`, `Duration`, `list of string`, `table of Service`…
fn type_name(schema: &Value, definitions: &Map<String, Value>) -> String {
    if let Some(name) = reference_name(schema) {
        return match definitions.get(&name) {
            Some(definition) if definition.get("properties").is_none() => {
                type_name(definition, definitions)
            }
            _ => format!("table ({name})"),
        };
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .map(|v| format!("`{}`", value_as_toml(v)))
            .collect::<Vec<_>>()
            .join(" \\| ");
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(variants) = schema.get(key).and_then(Value::as_array) {
            let names: Vec<String> = variants
                .iter()
                .map(|v| type_name(v, definitions))
                .filter(|n| n != "null")
                .collect();
            return names.join(" or ");
        }
    }
    if let Some(constant) = schema.get("const") {
        return format!("`{}`", value_as_toml(constant));
    }
    if schema.get("pattern").is_some() {
        let example = schema
            .pointer("/examples/0")
            .map(value_as_toml)
            .unwrap_or_default();
        return format!("string like `{example}`");
    }
    match schema.get("type") {
        Some(Value::String(t)) if t == "array" => {
            format!(
                "list of {}",
                schema
                    .get("items")
                    .map_or("any".to_owned(), |i| type_name(i, definitions))
            )
        }
        Some(Value::String(t)) if t == "object" => match schema.get("additionalProperties") {
            Some(values) if values.is_object() => {
                format!("table of {}", type_name(values, definitions))
            }
            _ => "table".to_owned(),
        },
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "any".to_owned(),
    }
}

/// A JSON value written as TOML would write it (close enough for a reference).
fn value_as_toml(value: &Value) -> String {
    match value {
        Value::Object(map) if map.is_empty() => "{}".to_owned(),
        Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k} = {}", value_as_toml(v)))
                .collect();
            format!("{{ {} }}", fields.join(", "))
        }
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(value_as_toml)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
