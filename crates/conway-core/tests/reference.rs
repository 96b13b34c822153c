//! The generated reference (`docs/manifest.md`) and JSON Schema: the file is up to date,
//! every key is documented, and the schema accepts what the parser accepts.

use conway_core::{json_schema, markdown_reference, parse};
use serde_json::{Value, json};

const SHOP: &str = include_str!("../../../examples/shop/conway.toml");

#[test]
fn docs_manifest_md_is_the_generated_reference() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/manifest.md");
    let written = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        written == markdown_reference(),
        "docs/manifest.md differs from the generated reference: run \
         `cargo run -p conway -- schema --format markdown > docs/manifest.md`"
    );
}

#[test]
fn the_reference_documents_every_key_of_every_table() {
    let reference = markdown_reference();
    let schema = json_schema();
    let mut tables = vec![&schema];
    let definitions = schema["$defs"].as_object().expect("definitions");
    tables.extend(definitions.values());
    // The table form of a value also written as a string (`rate_limit`).
    tables.extend(
        definitions
            .values()
            .filter_map(|d| d.get("anyOf")?.as_array())
            .flatten()
            .filter(|variant| {
                variant
                    .get("properties")
                    .is_some_and(|p| p.as_object().is_some_and(|p| p.len() > 1))
            }),
    );
    let mut documented = 0;
    for table in tables {
        for key in table
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(key, _)| key)
        {
            assert!(
                reference.contains(&format!("| `{key}` |")),
                "`{key}` is not in the reference"
            );
            documented += 1;
        }
    }
    assert!(documented > 80, "only {documented} keys");
}

#[test]
fn every_reference_section_has_rows_and_every_link_a_section() {
    let reference = markdown_reference();
    let sections: Vec<&str> = reference.split("\n## ").skip(1).collect();
    assert!(sections.len() > 15, "{} sections", sections.len());
    let mut anchors = Vec::new();
    for section in &sections {
        let title = section.lines().next().unwrap_or_default();
        assert!(
            section.lines().any(|line| line.starts_with("| `")),
            "section {title} has no keys"
        );
        anchors.push(
            title
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect::<String>(),
        );
    }
    for link in reference.split("](#").skip(1) {
        let anchor = link.split(')').next().unwrap_or_default();
        assert!(
            anchors.iter().any(|a| a == anchor),
            "dangling link #{anchor}"
        );
    }
    for key in [
        "[services.NAME.resilience.retries]",
        "[[gateway.routes]]",
        "[gateway.routes.rate_limit]",
        "[services.NAME.faults.abort]",
    ] {
        assert!(
            reference.contains(&format!("\n## {key}\n")),
            "no section {key}"
        );
    }
}

#[test]
fn the_reference_explains_choices_and_forms() {
    let reference = markdown_reference();
    for text in [
        // An enum's variants, with their meaning.
        "`\"enforce\"`: Undeclared calls are refused with 403.",
        // The balancer's table form.
        "`{ hash = \"header:x-user\" }`",
        // The rate limit's two forms.
        "string like `\"100/s\"` or table, see [`[gateway.routes.rate_limit]`]",
        // Units by name.
        "| `timeout` | duration like `\"250ms\"` | `\"15s\"` |",
    ] {
        assert!(reference.contains(text), "missing: {text}");
    }
}

fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&json_schema()).expect("the schema is a valid JSON Schema")
}

/// A manifest's TOML as the JSON an editor would check.
fn as_json(toml_text: &str) -> Value {
    toml::from_str(toml_text).expect("TOML")
}

#[test]
fn the_schema_is_draft_2020_12() {
    let schema = json_schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["additionalProperties"], false);
}

#[test]
fn the_schema_accepts_the_shop() {
    let shop = as_json(SHOP);
    let validator = validator();
    let problems: Vec<String> = validator
        .iter_errors(&shop)
        .map(|e| e.to_string())
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_schema_rejects_unknown_keys_at_every_level() {
    let validator = validator();
    for (pointer, key) in [
        ("", "colour"),
        ("/system", "nmae"),
        ("/services/orders", "replicass"),
        ("/services/orders/resilience/retries", "tries"),
        ("/gateway/routes/0", "paht"),
        ("/gateway/routes/0/rate_limit", "brust"),
    ] {
        let mut shop = as_json(SHOP);
        shop.pointer_mut(pointer)
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("{pointer} in the shop"))
            .insert(key.to_owned(), json!(1));
        assert!(!validator.is_valid(&shop), "{pointer}/{key} was accepted");
    }
}

#[test]
fn the_schema_takes_a_rate_limit_as_a_string_or_a_table() {
    let validator = validator();
    let route = |rate_limit: Value| {
        json!({
            "services": { "web": { "run": ["web"] } },
            "gateway": { "routes": [{ "service": "web", "rate_limit": rate_limit }] },
        })
    };
    for good in [
        json!("50/s"),
        json!({ "rate": "600/m" }),
        json!({ "rate": "50/s", "burst": 100 }),
    ] {
        assert!(validator.is_valid(&route(good.clone())), "{good} rejected");
    }
    for bad in [
        json!("fifty"),
        json!(50),
        json!({ "burst": 100 }),
        json!(["50/s"]),
    ] {
        assert!(!validator.is_valid(&route(bad.clone())), "{bad} accepted");
    }
}

#[test]
fn the_schema_and_the_parser_agree_on_forms_and_types() {
    let validator = validator();
    let service = "[services.web]\nrun = [\"web\"]\n";
    for (extra, valid) in [
        ("resilience.balancer = \"round-robin\"", true),
        ("resilience.balancer = { hash = \"cookie:session\" }", true),
        ("resilience.balancer = \"random\"", false),
        ("resilience.balancer = { hash = \"query:x\" }", false),
        ("resilience.timeout = \"2s\"", true),
        ("resilience.timeout = \"2 s\"", false),
        ("split = { a = \"50%\", b = \"50%\" }", true),
        ("split = { a = \"50\", b = \"50%\" }", false),
        ("health = { http = \"/h\" }", true),
        ("health = [\"/h\"]", false),
        ("replicas = \"two\"", false),
        ("protocol = \"http2\"", true),
        ("protocol = \"http3\"", false),
    ] {
        let source = format!("{service}{extra}\n");
        assert_eq!(parse(&source).is_ok(), valid, "parser on {extra}");
        assert_eq!(
            validator.is_valid(&as_json(&source)),
            valid,
            "schema on {extra}"
        );
    }
}
