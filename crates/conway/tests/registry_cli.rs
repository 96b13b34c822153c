//! `conway services`, `instances`, `register` and `deregister` against a real
//! `conway server` on a loopback port.

use std::path::Path;
use std::process::Command;

use conway_core::api::{Instance, InstanceState, ServiceView};
use conway_test_support::{ControlPlane, temp_dir};

/// The binary under test.
const CONWAY: &str = env!("CARGO_BIN_EXE_conway");

/// A loopback URL where nothing listens (a port bound, then released).
fn nowhere() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    format!("http://{}", listener.local_addr().expect("bound"))
}

/// How a `conway` run ended.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `conway --server SERVER ARGS...`.
fn conway(server: &str, args: &[&str]) -> Run {
    let output = Command::new(CONWAY)
        .arg("--server")
        .arg(server)
        .args(args)
        .env_remove("CONWAY_URL")
        .output()
        .expect("run conway");
    Run {
        code: output.status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `conway` and expects exit 0.
fn ok(server: &str, args: &[&str]) -> String {
    let run = conway(server, args);
    assert_eq!(run.code, 0, "conway {args:?} failed: {}", run.stderr);
    run.stdout
}

/// A control plane whose manifest defines the service `orders`.
fn start(dir: &Path) -> ControlPlane {
    let manifest = dir.join("conway.toml");
    let declared = "[system]\nname = \"test\"\n\n[services.orders]\nversion = \"1.4.0\"\nowner = \"team-checkout\"\n";
    std::fs::write(&manifest, declared).expect("write the manifest");
    let manifest = manifest.to_str().expect("a UTF-8 path");
    ControlPlane::start(Path::new(CONWAY), &dir.join("data"), &["-f", manifest])
}

#[test]
fn register_lists_in_tables_and_json_then_deregister_removes() {
    let dir = temp_dir();
    let plane = start(dir.path());
    let url = plane.url.as_str();

    let id = ok(
        url,
        &["register", "orders", "127.0.0.1:9000", "--ttl", "1m"],
    );
    assert_eq!(
        id.lines().count(),
        1,
        "register prints the id alone: {id:?}"
    );
    let id = id.trim().to_owned();
    assert!(!id.is_empty());

    // The table: a header, then one aligned row per instance.
    let table = ok(url, &["instances"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(lines[0].starts_with("ID "), "{table}");
    let row = lines[1];
    for expected in [id.as_str(), "orders", "127.0.0.1:9000", "starting", "1m"] {
        assert!(row.contains(expected), "{expected:?} missing from {row:?}");
    }
    let column = |line: &str, text: &str| {
        line.find(text)
            .unwrap_or_else(|| panic!("{text:?} in {line:?}"))
    };
    assert_eq!(
        column(lines[0], "ENDPOINT"),
        column(row, "127.0.0.1:9000"),
        "columns align:\n{table}"
    );
    assert_eq!(
        column(lines[0], "STATE"),
        column(row, "starting"),
        "columns align:\n{table}"
    );
    assert_eq!(
        ok(url, &["instances", "orders"]),
        table,
        "one service's listing is the same here"
    );

    // JSON: the API's own types.
    let registered: Instance = serde_json::from_str(&ok(
        url,
        &["--output", "json", "register", "orders", "[::1]:8080"],
    ))
    .expect("register --output json prints the instance");
    assert_eq!(
        (registered.address.as_str(), registered.port),
        ("::1", 8080)
    );
    assert_eq!(registered.state, InstanceState::Starting);
    let listed: Vec<Instance> =
        serde_json::from_str(&ok(url, &["instances", "orders", "--output", "json"]))
            .expect("a JSON list");
    let mut ids: Vec<&str> = listed.iter().map(|i| i.id.as_str()).collect();
    ids.sort_unstable();
    let mut expected = vec![id.as_str(), registered.id.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    let first = listed.iter().find(|i| i.id == id).expect("listed");
    assert_eq!(
        (
            first.address.as_str(),
            first.port,
            first.ttl.to_string().as_str()
        ),
        ("127.0.0.1", 9000, "1m")
    );

    let services: Vec<ServiceView> =
        serde_json::from_str(&ok(url, &["services", "--output", "json"])).expect("JSON");
    assert_eq!(services.len(), 1);
    assert_eq!(
        (services[0].name.as_str(), services[0].instances),
        ("orders", 2)
    );
    let table = ok(url, &["services"]);
    assert!(table.starts_with("NAME "), "{table}");
    let row = table.lines().nth(1).expect("a row");
    assert!(
        row.starts_with("orders ") && row.contains("1.4.0") && row.contains("team-checkout"),
        "{table}"
    );
    assert!(row.ends_with(" 2"), "two instances: {row:?}");

    // Deregister: gone from both listings.
    assert_eq!(
        ok(url, &["deregister", &id]).trim(),
        format!("deregistered {id}")
    );
    let table = ok(url, &["instances"]);
    assert!(!table.contains(&id), "{table}");
    assert!(table.contains(&registered.id), "{table}");
    let listed: Vec<Instance> =
        serde_json::from_str(&ok(url, &["--output", "json", "instances"])).expect("JSON");
    assert_eq!(listed.len(), 1);

    let again = conway(url, &["deregister", &id]);
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert!(
        again.stderr.contains(&id) && again.stderr.contains("not_found"),
        "{}",
        again.stderr
    );
    ok(url, &["deregister", &registered.id]);
    assert_eq!(
        ok(url, &["instances", "orders"]).trim(),
        "no instances of orders"
    );
}

#[test]
fn registering_to_an_unknown_service_exits_1_with_the_apis_message() {
    let dir = temp_dir();
    let plane = start(dir.path());
    let run = conway(&plane.url, &["register", "payments", "127.0.0.1:9000"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr.contains("no service named \"payments\""),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    let missing = conway(&plane.url, &["instances", "payments"]);
    assert_eq!(missing.code, 1, "{}", missing.stderr);
    assert!(missing.stderr.contains("payments"), "{}", missing.stderr);
}

#[test]
fn a_bad_address_or_ttl_is_a_usage_error() {
    // Usage errors exit 2 before any request: a server that is down would exit 3.
    let url = nowhere();
    for (args, says) in [
        (&["register", "orders", "127.0.0.1"][..], "no port"),
        (&["register", "orders", "::1:80"][..], "brackets"),
        (
            &["register", "orders", "127.0.0.1:70000"][..],
            "invalid port",
        ),
        (
            &["register", "orders", "127.0.0.1:80", "--ttl", "5"][..],
            "invalid duration",
        ),
    ] {
        let run = conway(&url, args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
    let run = conway("localhost:7700", &["services"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("http://HOST:PORT"), "{}", run.stderr);
}

#[test]
fn a_server_that_is_down_exits_3_with_one_line_naming_its_url() {
    let url = nowhere();
    for args in [
        &["services"][..],
        &["instances"],
        &["instances", "orders"],
        &["register", "orders", "127.0.0.1:9000"],
        &["deregister", "x"],
    ] {
        let run = conway(&url, args);
        assert_eq!(run.code, 3, "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains(&url) && run.stderr.contains("conway server"),
            "{args:?}: {}",
            run.stderr
        );
    }

    // CONWAY_URL names the server when --server is not given; a killed server is down.
    let dir = temp_dir();
    let mut plane = start(dir.path());
    let up = Command::new(CONWAY)
        .arg("services")
        .env("CONWAY_URL", &plane.url)
        .output()
        .expect("run conway");
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    plane.process.kill();
    let down = Command::new(CONWAY)
        .arg("services")
        .env("CONWAY_URL", &plane.url)
        .output()
        .expect("run conway");
    assert_eq!(down.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&down.stderr).contains(&plane.url));
}

#[test]
fn routes_lists_what_is_in_force_in_order() {
    let dir = temp_dir();
    let manifest = dir.path().join("conway.toml");
    let declared = r#"
[[gateway.routes]]
path = "/api/orders"
service = "orders"
methods = ["POST"]
auth = "api-key"
rate_limit = "50/s"

[[gateway.routes]]
name = "orders-beta"
host = "beta.example.com"
path = "/api/orders"
service = "orders"
version = "1.5.0"
strip_prefix = true

[services.orders]
address = "127.0.0.1:9000"
split = { "1.4.0" = "90%", "1.5.0" = "10%" }
resilience = { timeout = "2s" }

[consumers.app]
api_keys = ["sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]
"#;
    std::fs::write(&manifest, declared).expect("write the manifest");
    let manifest = manifest.to_str().expect("a UTF-8 path");
    let plane = ControlPlane::start(
        Path::new(CONWAY),
        &dir.path().join("data"),
        &["-f", manifest],
    );

    let table = ok(&plane.url, &["routes"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("NAME "), "{table}");
    for cell in [
        "orders:/api/orders",
        "/api/orders POST",
        "api-key",
        "50/s",
        "2s",
        "1.4.0=90% 1.5.0=10%",
    ] {
        assert!(lines[1].contains(cell), "{cell:?} missing from {table}");
    }
    for cell in [
        "orders-beta",
        "beta.example.com /api/orders",
        "(prefix stripped)",
        "1.5.0=100%",
    ] {
        assert!(lines[2].contains(cell), "{cell:?} missing from {table}");
    }

    let json: serde_json::Value =
        serde_json::from_str(&ok(&plane.url, &["routes", "--output", "json"])).expect("JSON");
    let routes = json.as_array().expect("a list of routes");
    assert_eq!(routes.len(), 2, "{json}");
    assert_eq!(routes[0]["name"], "orders:/api/orders");
    assert_eq!(routes[0]["effective_timeout"], "2s");
    assert_eq!(routes[0]["split_source"], "declared");
    assert_eq!(routes[1]["split_source"], "route");
    assert_eq!(routes[1]["effective_split"]["1.5.0"], "100%");
}
