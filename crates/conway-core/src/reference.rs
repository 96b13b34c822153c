//! The manifest's JSON Schema and its Markdown reference (`docs/manifest.md`), both
//! generated from the manifest's types so they cannot drift from what is parsed.

use std::collections::{BTreeMap, VecDeque};

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

/// The reference of every manifest key, as Markdown: one section per table, each
/// followed by the tables nested in it, one row per key with its type, default and
/// description.
pub fn markdown_reference() -> String {
    let schema = json_schema();
    let empty = Map::new();
    let definitions = schema
        .get("$defs")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut reference = Reference {
        definitions,
        children: BTreeMap::new(),
        titles: BTreeMap::new(),
    };
    reference.collect(&schema);
    let mut out = String::from(
        "# `conway.toml` reference\n\n\
         Generated from the manifest's types by `conway schema --format markdown`; a test keeps\n\
         this file equal to that output. Durations are written `\"250ms\"`, `\"5s\"`, `\"2m\"`; rates\n\
         `\"100/s\"`; shares `\"10%\"`; sizes `\"1MiB\"`. Unknown keys are errors.\n",
    );
    reference.render_all(&mut out, TOP, &schema);
    out
}

const TOP: &str = "Top level";

/// The tables to document and where each named definition is documented.
struct Reference<'a> {
    definitions: &'a Map<String, Value>,
    /// Section title → the sections of the tables nested in it, in key order.
    children: BTreeMap<String, Vec<(String, Value)>>,
    /// Definition name → the title of the section that documents it: its use nearest
    /// the top (`[services.NAME.faults]` rather than `[gateway.routes.faults]`).
    titles: BTreeMap<String, String>,
}

impl Reference<'_> {
    /// Gives every table a section, breadth first.
    fn collect(&mut self, top: &Value) {
        let mut queue = VecDeque::from([(TOP.to_owned(), top.clone())]);
        while let Some((title, table)) = queue.pop_front() {
            let prefix = match title.as_str() {
                TOP => String::new(),
                _ => format!("{}.", title.trim_matches(['[', ']'])),
            };
            for (key, property) in properties(&table) {
                let (schema, form) = value_schema(property);
                let Some(name) = reference_name(schema) else {
                    continue;
                };
                if self.titles.contains_key(&name) {
                    continue;
                }
                let Some(child) = self.table_of(&name).cloned() else {
                    continue;
                };
                let child_title = match form {
                    Form::Single => format!("[{prefix}{key}]"),
                    Form::List => format!("[[{prefix}{key}]]"),
                    Form::ByName => format!("[{prefix}{key}.NAME]"),
                };
                self.titles.insert(name, child_title.clone());
                self.children
                    .entry(title.clone())
                    .or_default()
                    .push((child_title.clone(), child.clone()));
                queue.push_back((child_title, child));
            }
        }
    }

    /// Writes a table's section, then (depth first) those of the tables nested in it.
    fn render_all(&self, out: &mut String, title: &str, table: &Value) {
        self.render(out, title, table);
        for (child_title, child) in self.children.get(title).into_iter().flatten() {
            self.render_all(out, child_title, child);
        }
    }

    /// The table a named definition describes: the definition itself, or the table form
    /// of a value that is also written as a string (`rate_limit`).
    fn table_of(&self, name: &str) -> Option<&Value> {
        let definition = self.definitions.get(name)?;
        if definition.get("properties").is_some() {
            return Some(definition);
        }
        variants(definition)
            .iter()
            .find(|v| v.get("properties").is_some() && !is_tagged_variant(v))
    }

    fn render(&self, out: &mut String, title: &str, table: &Value) {
        out.push_str(&format!("\n## {title}\n\n"));
        if let Some(description) = table.get("description").and_then(Value::as_str) {
            out.push_str(&format!("{}\n\n", one_line(description)));
        }
        out.push_str("| key | type | default | description |\n|---|---|---|---|\n");
        let required: Vec<&str> = table
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (key, property) in properties(table) {
            let default = match property.get("default") {
                Some(value) => format!("`{}`", value_as_toml(value)),
                None if required.contains(&key.as_str()) => "required".to_owned(),
                None => "—".to_owned(),
            };
            let mut description = one_line(
                property
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or(""),
            );
            for (value, meaning) in self.choices(property) {
                description.push_str(&format!("<br>`{value}`: {}", one_line(&meaning)));
            }
            out.push_str(&format!(
                "| `{key}` | {} | {default} | {} |\n",
                self.type_name(property),
                description.replace('|', "\\|")
            ));
        }
    }

    /// A short type description: `string`, `duration like "250ms"`, `list of string`,
    /// `"off", "audit" or "enforce"`, a link to the table's section…
    fn type_name(&self, schema: &Value) -> String {
        let schema = without_null(schema);
        if let Some(name) = reference_name(schema) {
            let Some(definition) = self.definitions.get(&name) else {
                return name;
            };
            if let Some(title) = self.titles.get(&name) {
                if definition.get("properties").is_some() {
                    return format!("table, see {}", link(title));
                }
                // A value also written as a string: its forms, the table linked.
                let forms: Vec<String> = variants(definition)
                    .iter()
                    .map(|variant| {
                        if variant.get("properties").is_some() && !is_tagged_variant(variant) {
                            format!("table, see {}", link(title))
                        } else {
                            self.variant_name(variant)
                        }
                    })
                    .collect();
                return alternatives(&forms);
            }
            if definition.get("pattern").is_some() {
                return format!("{} like `{}`", words(&name), example(definition));
            }
            return self.type_name(definition);
        }
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            let values: Vec<String> = values
                .iter()
                .map(|v| format!("`{}`", value_as_toml(v)))
                .collect();
            return alternatives(&values);
        }
        if let Some(constant) = schema.get("const") {
            return format!("`{}`", value_as_toml(constant));
        }
        let variants = variants(schema);
        if !variants.is_empty() {
            let names: Vec<String> = variants
                .iter()
                .map(|variant| self.variant_name(variant))
                .collect();
            return alternatives(&names);
        }
        if schema.get("pattern").is_some() {
            return format!("string like `{}`", example(schema));
        }
        let kind = match schema.get("type") {
            Some(Value::String(kind)) => kind.as_str(),
            Some(Value::Array(kinds)) => kinds
                .iter()
                .filter_map(Value::as_str)
                .find(|kind| *kind != "null")
                .unwrap_or("any"),
            _ => "any",
        };
        match kind {
            "array" => {
                let items = schema.get("items").map_or("any".to_owned(), |items| {
                    let (items, _) = value_schema(items);
                    match reference_name(items).and_then(|name| self.titles.get(&name)) {
                        Some(title) => format!("tables, see {}", link(title)),
                        None => self.type_name(items),
                    }
                });
                format!("list of {items}")
            }
            "object" => match schema.get("additionalProperties") {
                Some(values) if values.is_object() => {
                    match reference_name(values).and_then(|name| self.titles.get(&name)) {
                        Some(title) => format!("tables by name, see {}", link(title)),
                        None => format!("table of {}", self.type_name(values)),
                    }
                }
                _ => "table".to_owned(),
            },
            kind => kind.to_owned(),
        }
    }

    /// One alternative of a value that takes several forms.
    fn variant_name(&self, variant: &Value) -> String {
        if is_tagged_variant(variant) {
            let (key, value) = properties(variant)[0];
            let (value, _) = value_schema(value);
            let shown = reference_name(value)
                .and_then(|name| self.definitions.get(&name))
                .filter(|definition| definition.get("pattern").is_some())
                .map_or_else(|| self.type_name(value), example);
            return format!("`{{ {key} = {shown} }}`");
        }
        if variant.get("properties").is_some() {
            return "table".to_owned();
        }
        self.type_name(variant)
    }

    /// The documented choices of a property's value, `(value, meaning)`: the variants of
    /// an enum whose variants have doc comments.
    fn choices(&self, property: &Value) -> Vec<(String, String)> {
        let (mut schema, _) = value_schema(property);
        if let Some(definition) = reference_name(schema).and_then(|n| self.definitions.get(&n)) {
            schema = definition;
        }
        let variants = variants(schema);
        let documented = (!variants.is_empty()
            && variants
                .iter()
                .all(|v| v.get("description").is_some() && v.get("const").is_some()))
            || variants.iter().any(is_tagged_variant);
        if !documented {
            return Vec::new();
        }
        variants
            .iter()
            .filter_map(|variant| {
                let meaning = variant.get("description")?.as_str()?.to_owned();
                let value = match variant.get("const") {
                    Some(constant) => value_as_toml(constant),
                    None => format!("{{ {} = … }}", properties(variant).first()?.0),
                };
                Some((value, meaning))
            })
            .collect()
    }
}

/// How a key holds its table.
enum Form {
    /// One table.
    Single,
    /// A list of tables (`[[gateway.routes]]`).
    List,
    /// Tables by name (`[services.NAME]`).
    ByName,
}

/// The schema a property's value is made of, past `Option` (`anyOf` with null), lists
/// and tables by name; and which of those it is.
fn value_schema(property: &Value) -> (&Value, Form) {
    let property = without_null(property);
    if let Some(items) = property.get("items") {
        return (without_null(items), Form::List);
    }
    match property.get("additionalProperties") {
        Some(values) if values.is_object() => (without_null(values), Form::ByName),
        _ => (property, Form::Single),
    }
}

fn properties(table: &Value) -> Vec<(&String, &Value)> {
    table
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.iter().collect())
        .unwrap_or_default()
}

fn variants(schema: &Value) -> &[Value] {
    ["oneOf", "anyOf"]
        .iter()
        .find_map(|key| schema.get(*key).and_then(Value::as_array))
        .map_or(&[], Vec::as_slice)
}

/// `Option<T>`'s schema (`anyOf: [T, null]`) as `T`'s.
fn without_null(schema: &Value) -> &Value {
    let variants = variants(schema);
    match variants {
        [one, null] | [null, one] if null.get("type").and_then(Value::as_str) == Some("null") => {
            one
        }
        _ => schema,
    }
}

/// An externally tagged enum variant with a value: `{ hash = "header:x-user" }`.
fn is_tagged_variant(variant: &Value) -> bool {
    let required: Vec<&str> = variant
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let properties = properties(variant);
    properties.len() == 1 && required == [properties[0].0.as_str()]
}

fn reference_name(schema: &Value) -> Option<String> {
    schema
        .get("$ref")?
        .as_str()?
        .rsplit('/')
        .next()
        .map(str::to_owned)
}

/// The first example of a string type, quoted: `"250ms"`.
fn example(schema: &Value) -> String {
    schema
        .pointer("/examples/0")
        .map(value_as_toml)
        .unwrap_or_default()
}

/// `ByteSize` → `byte size`.
fn words(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// `a`, `a or b`, `a, b or c`.
fn alternatives(names: &[String]) -> String {
    match names {
        [] => "any".to_owned(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// A Markdown link to a section, by GitHub's heading anchors.
fn link(title: &str) -> String {
    let anchor: String = title
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect();
    format!("[`{title}`](#{anchor})")
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
