//! Mistakes found before the semantic rules: TOML syntax, unknown keys, wrong types,
//! bad durations, rates, shares and sizes, missing fields — and reading files.

use std::io::Write;

use conway_core::{LoadError, MAX_MANIFEST_BYTES, Severity, load_file};

use super::{assert_error, assert_errors, assert_valid, errors, warnings};

#[test]
fn the_shop_example_is_valid_without_warnings() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/shop/conway.toml"
    );
    let loaded = load_file(path.as_ref()).unwrap_or_else(|e| panic!("{e}"));
    assert!(loaded.warnings.is_empty(), "{}", loaded.warnings);
    let manifest = loaded.manifest;
    assert_eq!(manifest.system.name, "shop");
    for name in [
        "catalog",
        "inventory",
        "orders",
        "payments",
        "recommendations",
    ] {
        assert!(manifest.services.contains_key(name), "{name}");
    }
    let paths: Vec<&str> = manifest
        .gateway
        .routes
        .iter()
        .map(|r| r.path.as_str())
        .collect();
    assert_eq!(
        paths,
        ["/api/catalog", "/api/orders", "/api/recommendations"]
    );
}

#[test]
fn an_empty_manifest_is_valid_and_takes_the_defaults() {
    let manifest = assert_valid("");
    assert_eq!(manifest.system.name, "conway");
    assert_eq!(manifest.gateway.listen.to_string(), "127.0.0.1:8080");
    assert!(manifest.services.is_empty());
}

#[test]
fn a_syntax_error_points_where_the_parser_stopped() {
    assert_valid("[services.web]\nrun = [\"web\"]\n");
    assert_error(
        "[services.web\nrun = [\"web\"]\n",
        1,
        14,
        &["unclosed table", "`]`"],
    );
}

#[test]
fn every_syntax_error_is_reported() {
    assert_errors(
        "[system]\nname = shop\ncolour = [\n",
        &[(2, 8, &["quoted"]), (3, 11, &["unclosed array"])],
    );
}

#[test]
fn a_key_given_twice_is_a_syntax_error_at_the_second() {
    assert_error(
        "[system]\nname = \"a\"\nname = \"b\"\n",
        3,
        1,
        &["duplicate key"],
    );
}

#[test]
fn an_unknown_key_suggests_the_nearest_known_one() {
    assert_valid("[services.web]\nrun = [\"web\"]\nreplicas = 2\n");
    assert_error(
        "[services.web]\nrun = [\"web\"]\nreplicass = 2\n",
        3,
        1,
        &["unknown field `replicass`", "did you mean `replicas`?"],
    );
}

#[test]
fn an_unknown_section_suggests_the_nearest_known_one() {
    assert_error(
        "[servics.web]\nrun = [\"web\"]\n",
        1,
        2,
        &["unknown field `servics`", "did you mean `services`?"],
    );
}

#[test]
fn an_unknown_key_far_from_any_lists_the_known_ones() {
    let found = errors("[system]\ncolour = \"blue\"\n");
    assert_eq!(found.len(), 1, "{found:?}");
    let (line, column, message) = &found[0];
    assert_eq!((*line, *column), (2, 1));
    assert!(message.contains("unknown field `colour`"), "{message}");
    assert!(message.contains("`name`"), "{message}");
    assert!(!message.contains("did you mean"), "{message}");
}

#[test]
fn an_unknown_key_in_an_inline_table_points_at_the_key() {
    assert_error(
        "[services.web]\nrun = [\"web\"]\nhealth = { http = \"/h\", intervall = \"2s\" }\n",
        3,
        25,
        &["unknown field `intervall`", "did you mean `interval`?"],
    );
}

#[test]
fn a_bad_duration_points_at_the_value() {
    assert_valid(
        "[services.web]\nrun = [\"web\"]\nhealth = { http = \"/h\", interval = \"2s\" }\n",
    );
    assert_error(
        "[services.web]\nrun = [\"web\"]\nhealth = { http = \"/h\", interval = \"2 seconds\" }\n",
        3,
        36,
        &["invalid duration \"2 seconds\"", "\"250ms\""],
    );
}

#[test]
fn a_bad_rate_points_at_the_value_in_either_form() {
    let route = "[services.web]\nrun = [\"web\"]\n[[gateway.routes]]\nservice = \"web\"\n";
    assert_valid(&format!("{route}rate_limit = \"50/s\"\n"));
    assert_valid(&format!(
        "{route}rate_limit = {{ rate = \"50/s\", burst = 100 }}\n"
    ));
    assert_error(
        &format!("{route}rate_limit = \"50\"\n"),
        5,
        14,
        &["invalid rate \"50\"", "\"100/s\""],
    );
    assert_error(
        &format!("{route}rate_limit = {{ rate = \"50/d\" }}\n"),
        5,
        23,
        &["invalid rate \"50/d\""],
    );
}

#[test]
fn a_bad_share_points_at_the_value() {
    let service = "[services.web]\nrun = [\"web\"]\n";
    assert_valid(&format!("{service}resilience.retries.budget = \"12.5%\"\n"));
    assert_error(
        &format!("{service}resilience.retries.budget = \"20\"\n"),
        3,
        29,
        &["invalid share \"20\"", "\"10%\""],
    );
    assert_error(
        "[telemetry]\nsampling = { share = \"101%\" }\n",
        2,
        22,
        &["invalid share \"101%\""],
    );
}

#[test]
fn a_bad_size_points_at_the_value() {
    let route = "[services.web]\nrun = [\"web\"]\n[[gateway.routes]]\nservice = \"web\"\n";
    assert_valid(&format!("{route}max_body = \"64KiB\"\n"));
    assert_error(
        &format!("{route}max_body = \"1.5MB\"\n"),
        5,
        12,
        &["invalid size \"1.5MB\"", "\"1MiB\""],
    );
}

#[test]
fn a_wrong_type_says_what_was_expected() {
    assert_error(
        "[services.web]\nrun = [\"web\"]\nreplicas = \"two\"\n",
        3,
        12,
        &["invalid type: string \"two\"", "expected u32"],
    );
    assert_error(
        "[services.web]\nrun = \"web --port $PORT\"\n",
        2,
        7,
        &["invalid type: string", "expected an array"],
    );
    assert_error(
        "[[gateway.routes]]\nservice = \"web\"\nstrip_prefix = \"yes\"\n[services.web]\nrun = [\"web\"]\n",
        3,
        16,
        &["invalid type", "expected a boolean"],
    );
}

#[test]
fn an_array_is_not_a_table() {
    // serde's derived structs also take their fields as an array, in order; the manifest
    // does not (the JSON Schema says a table, and `system = ["x"]` is surely a mistake).
    assert_error(
        "system = [\"shop\"]\n",
        1,
        10,
        &["invalid type: array, expected a table"],
    );
    assert_error(
        "[services.web]\nrun = [\"web\"]\nhealth = [\"/health\"]\n",
        3,
        10,
        &["invalid type: array, expected a table"],
    );
}

#[test]
fn an_unknown_choice_lists_the_known_ones() {
    let route = "[services.web]\nrun = [\"web\"]\n[[gateway.routes]]\nservice = \"web\"\n";
    assert_error(
        &format!("{route}auth = \"oauth\"\n"),
        5,
        8,
        &["unknown variant `oauth`", "`api-key`", "`jwt`"],
    );
    // toml gives no position to an error inside an enum's table: it points at the table.
    assert_error(
        "[services.web]\nrun = [\"web\"]\nresilience.balancer = { hash = \"query:user\" }\n",
        3,
        23,
        &["invalid hash key \"query:user\"", "header:NAME"],
    );
    assert_valid(
        "[services.web]\nrun = [\"web\"]\nresilience.balancer = { hash = \"header:x-user\" }\n",
    );
    assert_error(
        "[mesh]\nauthorization = \"strict\"\n",
        2,
        17,
        &["unknown variant `strict`", "`enforce`"],
    );
}

#[test]
fn a_missing_required_field_points_at_its_table() {
    assert_error(
        "[services.web]\nrun = [\"web\"]\n[[gateway.routes]]\npath = \"/\"\n",
        3,
        1,
        &["missing field `service`"],
    );
    assert_error(
        "[services.web]\nrun = [\"web\"]\nautoscale = { min = 1 }\n",
        3,
        13,
        &["missing field `max`"],
    );
    assert_error(
        "[jwt.sso]\naudience = \"shop\"\nsecret_file = \"k\"\n",
        1,
        1,
        &["missing field `issuer`"],
    );
}

#[test]
fn several_mistakes_in_one_service_are_all_reported() {
    let source = r#"[services.web]
run = "web"
replicas = -1
health = { http = "/h", interval = "soon" }
[services.web.resilience]
timeout = "forever"
retries = { attempts = "2", on = ["teapot"] }
max_concurrency = 1.5
"#;
    assert_errors(
        source,
        &[
            (2, 7, &["expected an array"]),
            (3, 12, &["invalid value: integer `-1`"]),
            (4, 36, &["invalid duration \"soon\""]),
            (6, 11, &["invalid duration \"forever\""]),
            (7, 24, &["invalid type: string \"2\""]),
            (7, 35, &["unknown variant `teapot`"]),
            (8, 19, &["invalid type: floating point `1.5`"]),
        ],
    );
}

#[test]
fn a_required_field_of_the_wrong_type_is_reported_once() {
    // Set aside after its own error, `max` is then missing: that is not a second mistake.
    assert_error(
        "[services.web]\nrun = [\"web\"]\nautoscale = { max = \"six\" }\n",
        3,
        21,
        &["invalid type: string \"six\""],
    );
}

#[test]
fn three_independent_mistakes_are_reported_in_source_order() {
    let source = r#"[system]
nam = "shop"

[[gateway.routes]]
path = "/api"
service = "web"
timeout = "5 s"

[services.web]
run = ["web"]
health = { http = "/health", tcp = "yes" }
"#;
    assert_errors(
        source,
        &[
            (2, 1, &["unknown field `nam`", "did you mean `name`?"]),
            (7, 11, &["invalid duration \"5 s\""]),
            (11, 36, &["invalid type", "expected a boolean"]),
        ],
    );
}

#[test]
fn three_independent_semantic_mistakes_are_reported_in_source_order() {
    let source = r#"[[gateway.routes]]
path = "/api"
service = "shop"

[services.web]
run = ["web"]
depends_on = ["cache"]

[services.db]
address = "db.internal"
"#;
    assert_errors(
        source,
        &[
            (3, 11, &["unknown service \"shop\"", "db, web"]),
            (7, 15, &["unknown service \"cache\""]),
            (10, 11, &["invalid address \"db.internal\"", "HOST:PORT"]),
        ],
    );
}

#[test]
fn type_and_semantic_mistakes_are_reported_in_one_pass() {
    let source = r#"[services.orders]
run = ["orders"]
replicass = 2

[services.stock]
run = ["stock"]
depends_on = ["orderz"]

[[gateway.routes]]
path = "/api"
service = "ghost"
"#;
    assert_errors(
        source,
        &[
            (
                3,
                1,
                &["unknown field `replicass`", "did you mean `replicas`"],
            ),
            (7, 15, &["unknown service \"orderz\""]),
            (11, 11, &["unknown service \"ghost\""]),
        ],
    );
}

#[test]
fn a_table_with_a_type_error_raises_no_semantic_findings_of_its_own() {
    // Without its badly typed `run`, billing would look external and its `build` an
    // error; that would be a consequence of the first mistake, not a second one.
    assert_error(
        "[services.billing]\nrun = 5\nbuild = [\"make\"]\ndepends_on = [\"nowhere\"]\n",
        2,
        7,
        &["invalid type: integer `5`", "expected an array"],
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    // "é" takes two bytes and one column.
    assert_error(
        "[services.web]\nrun = [\"web\"]\nhealth = { http = \"/café\", interval = \"x\" }\n",
        3,
        39,
        &["invalid duration \"x\""],
    );
}

#[test]
fn a_manifest_over_the_limit_is_refused_at_its_start() {
    let big = format!("# {}\n", "x".repeat(MAX_MANIFEST_BYTES));
    assert_error(
        &big,
        1,
        1,
        &["larger than", &MAX_MANIFEST_BYTES.to_string()],
    );
    let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
    file.write_all(big.as_bytes()).expect("written");
    match load_file(file.path()) {
        Err(LoadError::Invalid { diagnostics, .. }) => {
            let found: Vec<_> = diagnostics
                .iter()
                .map(|d| (d.line, d.column, d.message.contains("larger than")))
                .collect();
            assert_eq!(found, [(1, 1, true)]);
        }
        other => panic!("expected an invalid manifest, got {other:?}"),
    }
    // Cut at the limit inside a two-byte character, it is still "too large", not
    // "not UTF-8".
    let accented = format!("# {}\n", "é".repeat(MAX_MANIFEST_BYTES / 2 + 1));
    let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
    file.write_all(accented.as_bytes()).expect("written");
    match load_file(file.path()) {
        Err(LoadError::Invalid { diagnostics, .. }) => {
            let messages: Vec<&str> = diagnostics.iter().map(|d| d.message.as_str()).collect();
            assert!(
                messages.len() == 1 && messages[0].contains("larger than"),
                "{messages:?}"
            );
        }
        other => panic!("expected an invalid manifest, got {other:?}"),
    }
    // Just under the limit is read.
    let comment = format!("# {}\n", "x".repeat(MAX_MANIFEST_BYTES - 3));
    assert_eq!(comment.len(), MAX_MANIFEST_BYTES);
    assert_valid(&comment);
}

#[test]
fn a_file_that_is_not_utf8_is_refused_where_the_bad_byte_is() {
    let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
    file.write_all(b"[system]\nname = \"caf\xe9\"\n")
        .expect("written");
    let error = load_file(file.path()).expect_err("not UTF-8");
    let shown = error.to_string();
    let LoadError::Invalid { diagnostics, .. } = error else {
        panic!("expected an invalid manifest, got {error:?}");
    };
    let found: Vec<_> = diagnostics
        .iter()
        .map(|d| (d.line, d.column, d.severity))
        .collect();
    // `name = "caf` is 11 characters: the bad byte is the 12th.
    assert_eq!(found, [(2, 12, Severity::Error)]);
    assert!(
        shown.ends_with(":2:12: the file is not UTF-8 text"),
        "{shown}"
    );
}

#[test]
fn a_file_that_cannot_be_read_is_a_read_error() {
    let missing = std::env::temp_dir().join("conway-no-such-dir/conway.toml");
    match load_file(&missing) {
        Err(error @ LoadError::Read { .. }) => {
            assert!(error.to_string().contains("cannot read"), "{error}");
        }
        other => panic!("expected a read error, got {other:?}"),
    }
}

#[test]
fn a_valid_file_loads_with_its_warnings() {
    let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
    file.write_all(
            b"[services.a]\nrun = [\"a\"]\ndepends_on = [\"b\"]\n[services.b]\nrun = [\"b\"]\ndepends_on = [\"a\"]\n",
        )
        .expect("written");
    let loaded = load_file(file.path()).expect("valid");
    assert_eq!(loaded.manifest.services.len(), 2);
    assert_eq!(loaded.warnings.len(), 1);
    assert!(!loaded.warnings.has_errors());
    assert_eq!(
        warnings(&std::fs::read_to_string(file.path()).expect("read back")).len(),
        1
    );
}
