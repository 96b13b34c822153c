//! The built `conway` binary as a user runs it: exit codes, diagnostics, JSON output,
//! the schema, help and version.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A manifest with three independent mistakes, one per line 2, 7 and 11.
const THREE_MISTAKES: &str = r#"[system]
nam = "shop"

[[gateway.routes]]
path = "/api"
service = "web"
timeout = "5 s"

[services.web]
run = ["web"]
health = { http = "/health", tcp = "yes" }
"#;

const VALID: &str = r#"[system]
name = "tiny"

[[gateway.routes]]
path = "/"
service = "web"

[services.web]
run = ["web", "--port", "$PORT"]
"#;

fn conway(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_conway"))
        .args(args)
        .current_dir(dir)
        .env_remove("CONWAY_URL")
        .env_remove("CONWAY_LOG")
        .output()
        .expect("conway runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

/// A temporary folder holding `conway.toml` with `contents`.
fn manifest(contents: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("conway.toml");
    std::fs::write(&path, contents).expect("written");
    (dir, path)
}

#[test]
fn a_valid_manifest_exits_0() {
    let (dir, path) = manifest(VALID);
    let out = conway(
        &["validate", "-f", path.to_str().expect("path")],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("valid"), "{stdout}");
    assert!(stdout.contains("\"tiny\""), "{stdout}");
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn validate_reads_conway_toml_in_the_current_folder_by_default() {
    let (dir, _) = manifest(VALID);
    assert_eq!(conway(&["validate"], dir.path()).status.code(), Some(0));
    let empty = tempfile::tempdir().expect("a temporary folder");
    let out = conway(&["validate"], empty.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot read conway.toml"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn three_mistakes_print_three_positioned_lines_and_exit_1() {
    let (dir, _) = manifest(THREE_MISTAKES);
    let out = conway(&["validate", "-f", "conway.toml"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{stderr}");
    assert_eq!(
        lines[0],
        "conway.toml:2:1: unknown field `nam`; did you mean `name`?"
    );
    assert!(
        lines[1].starts_with("conway.toml:7:11: invalid duration \"5 s\""),
        "{stderr}"
    );
    assert!(
        lines[2].starts_with("conway.toml:11:36: invalid type: string \"yes\""),
        "{stderr}"
    );
    assert_eq!(lines[3], "conway.toml: 3 error(s)");
    assert_eq!(text(&out.stdout), "");
}

#[test]
fn the_file_is_named_as_given() {
    let (dir, path) = manifest(THREE_MISTAKES);
    let shown = path.to_str().expect("path");
    let out = conway(&["validate", "--file", shown], dir.path());
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with(&format!("{shown}:2:1: ")), "{stderr}");
}

#[test]
fn warnings_are_printed_and_do_not_fail() {
    let (dir, _) = manifest(
        "[services.a]\nrun = [\"a\"]\ndepends_on = [\"b\"]\n[services.b]\nrun = [\"b\"]\ndepends_on = [\"a\"]\n",
    );
    let out = conway(&["validate"], dir.path());
    assert_eq!(out.status.code(), Some(0));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("conway.toml:3:15: warning: dependency cycle: a → b → a"),
        "{stderr}"
    );
}

#[test]
fn json_output_lists_every_finding() {
    let (dir, _) = manifest(THREE_MISTAKES);
    let out = conway(&["validate", "--output", "json"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(report["file"], "conway.toml");
    assert_eq!(report["valid"], false);
    let diagnostics = report["diagnostics"].as_array().expect("a list");
    let positions: Vec<(u64, u64)> = diagnostics
        .iter()
        .map(|d| {
            assert_eq!(d["severity"], "error");
            assert!(d["message"].as_str().is_some_and(|m| !m.is_empty()), "{d}");
            (
                d["line"].as_u64().expect("line"),
                d["column"].as_u64().expect("column"),
            )
        })
        .collect();
    assert_eq!(positions, [(2, 1), (7, 11), (11, 36)]);

    let (dir, _) = manifest(VALID);
    let out = conway(&["validate", "--output", "json"], dir.path());
    assert_eq!(out.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(report["valid"], true);
    assert_eq!(report["diagnostics"], serde_json::json!([]));
}

#[test]
fn schema_prints_a_json_schema() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let out = conway(&["schema"], dir.path());
    assert_eq!(out.status.code(), Some(0));
    let schema: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert!(schema["properties"]["services"].is_object(), "{schema}");
    assert_eq!(schema, conway_core::json_schema());

    let out = conway(&["schema", "--format", "markdown"], dir.path());
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), conway_core::markdown_reference());
}

#[test]
fn a_verb_not_built_yet_says_so_in_one_line_and_exits_2() {
    let (dir, _) = manifest(VALID);
    let out = conway(&["agent"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("conway agent: not yet"), "{stderr}");
    assert_eq!(text(&out.stdout), "");
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    for args in [
        &["frobnicate"][..],
        &["validate", "--output", "yaml"],
        &["validate", "--no-such-flag"],
        &["scale", "web", "many"],
        &[],
    ] {
        let out = conway(args, dir.path());
        assert_eq!(out.status.code(), Some(2), "conway {args:?}");
        assert!(!out.stderr.is_empty(), "conway {args:?} said nothing");
    }
}

#[test]
fn help_lists_every_verb_with_a_description() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let out = conway(&["--help"], dir.path());
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    for verb in [
        "up",
        "validate",
        "schema",
        "server",
        "gateway",
        "mesh",
        "agent",
        "apply",
        "services",
        "instances",
        "routes",
        "register",
        "deregister",
        "scale",
        "deploy",
        "graph",
        "traces",
        "trace",
        "logs",
        "chaos",
        "lint",
    ] {
        let listed = help.lines().any(|line| {
            let mut words = line.split_whitespace();
            line.starts_with("  ") && words.next() == Some(verb) && words.next().is_some()
        });
        assert!(listed, "`{verb}` is not listed with a description:\n{help}");
    }
}

#[test]
fn version_prints_the_package_version() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let out = conway(&["--version"], dir.path());
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout).trim(),
        format!("conway {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn deploy_apply_and_chaos_teach_with_examples() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    for (args, example) in [
        (
            &["deploy", "--help"][..],
            "conway deploy orders --version 1.5.0 --canary 10",
        ),
        (&["apply", "--help"], "conway apply -f conway.toml"),
        (
            &["chaos", "kill", "--help"],
            "conway chaos kill orders --every 10s --for 2m",
        ),
    ] {
        let out = conway(args, dir.path());
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let help = text(&out.stdout);
        assert!(help.contains(example), "{args:?}: {help}");
    }
    // `--version` of deploy is the new version, not conway's own.
    let out = conway(
        &[
            "deploy",
            "web",
            "--version",
            "2.0",
            "--server",
            "http://127.0.0.1:1",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let out = conway(&["chaos", "kill", "web", "--for", "2m"], dir.path());
    assert_eq!(out.status.code(), Some(2), "--for needs --every");
}
