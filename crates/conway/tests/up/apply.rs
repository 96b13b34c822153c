//! `conway apply`: a running system brought to a changed manifest — a service added,
//! one removed, one redeployed, policies changed without a restart — and a manifest
//! with mistakes refused whole.

use conway_test_support::wait_for;
use serde_json::Value;

use crate::deploy::cli;
use crate::support::{PATIENCE, Up, header, http, in_dir, read, service, wait_gone};

fn manifest(web_env: &str, route_extra: &str, services: &str) -> String {
    format!(
        "{}[[gateway.routes]]\npath = \"/api\"\nservice = \"web\"\n{route_extra}\n\n{}{services}",
        header(),
        service(
            "web",
            &[],
            &format!("version = \"1.0\"\nreplicas = 2\nenv = {{ COLOR = \"{web_env}\" }}")
        ),
    )
}

#[test]
fn apply_starts_new_services_drains_removed_ones_redeploys_changed_ones_and_updates_policies() {
    let before = manifest(
        "blue",
        "",
        &format!(
            "{}{}{}",
            service("steady", &[], ""),
            service("legacy", &[], ""),
            service("tool", &[], r#"build = ["sh", "-c", "echo 1 > tool.txt"]"#),
        ),
    );
    let mut up = Up::start(&before, &[]);
    let control_plane = up.url("control_plane");
    let gateway = up.url("gateway");
    let steady = up.instance_pid("steady-1").expect("steady runs");
    let legacy = up.instance_pid("legacy-1").expect("legacy runs");
    let color = || {
        let (status, body) = http("GET", &format!("{gateway}/api/env"), None);
        assert_eq!(status, 200, "{body}");
        let env: Value = serde_json::from_str(&body).expect("env");
        env["COLOR"].as_str().unwrap_or_default().to_owned()
    };
    assert_eq!(color(), "blue");

    let after = manifest(
        "green",
        "rate_limit = { rate = \"1/m\", burst = 3 }",
        &format!(
            "{}[services.steady.resilience]\ntimeout = \"3s\"\n\n{}{}",
            service("steady", &[], ""),
            service("fresh", &[], "version = \"0.1\""),
            service("tool", &[], r#"build = ["sh", "-c", "echo 2 > tool.txt"]"#),
        ),
    );
    let path = in_dir(&up, "changed.toml");
    std::fs::write(&path, &after).expect("write");
    let (code, stdout, stderr) = cli(
        &up,
        &["apply", "-f", path.to_str().unwrap(), "--output", "json"],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let applied: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(
        applied["started"],
        serde_json::json!(["fresh"]),
        "{applied}"
    );
    assert_eq!(
        applied["removed"],
        serde_json::json!(["legacy"]),
        "{applied}"
    );
    assert_eq!(
        applied["redeployed"],
        serde_json::json!(["tool", "web"]),
        "{applied}"
    );
    // A changed build ran before anything changed, and its service was redeployed.
    assert_eq!(read(&in_dir(&up, "tool.txt")), "2\n");
    wait_for("tool redeployed", PATIENCE, || {
        up.healthy("tool") == ["tool-2"]
    });
    assert_eq!(
        applied["updated"],
        serde_json::json!(["steady", "routes"]),
        "{applied}"
    );

    // New: started and healthy.
    up.wait_healthy("fresh", &["fresh-1"]);
    assert_eq!(up.instances("fresh")[0]["version"], "0.1");
    // Removed: its process stopped, its definition gone.
    wait_gone(&[legacy], PATIENCE);
    let (status, _) = http("GET", &format!("{control_plane}/v1/services/legacy"), None);
    assert_eq!(status, 404);
    // Changed: rolled to the new environment, one replica at a time.
    wait_for("web redeployed", PATIENCE, || {
        let (_, body) = http(
            "GET",
            &format!("{control_plane}/v1/services/web/deploy"),
            None,
        );
        serde_json::from_str::<Value>(&body).is_ok_and(|d| d["state"] == "done")
    });
    assert_eq!(up.healthy("web").len(), 2);
    assert_eq!(color(), "green");
    // Policies only: in force, with no restart.
    assert_eq!(
        up.instance_pid("steady-1"),
        Some(steady),
        "steady was not restarted"
    );
    let (_, body) = http("GET", &format!("{control_plane}/v1/config"), None);
    let config: Value = serde_json::from_str(&body).expect("config");
    assert_eq!(config["services"]["steady"]["resilience"]["timeout"], "3s");
    // The route's new rate limit: a burst of 3, then 429.
    wait_for("the rate limit in force", PATIENCE, || {
        http("GET", &format!("{gateway}/api/env"), None).0 == 429
    });

    // A manifest with mistakes changes nothing and says where they are.
    let bad = in_dir(&up, "bad.toml");
    std::fs::write(&bad, after.replace("replicas = 2", "replicas = \"two\"")).expect("write");
    let (code, _, stderr) = cli(&up, &["apply", "-f", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    let line = after
        .lines()
        .position(|l| l == "replicas = 2")
        .expect("line")
        + 1;
    assert!(
        stderr.contains(&format!("bad.toml:{line}:12: ")),
        "{stderr}"
    );
    // Sent anyway (a client that skips the check), the API answers the same.
    let body =
        serde_json::json!({"manifest": std::fs::read_to_string(&bad).unwrap(), "path": "bad.toml"});
    let (status, answer) = http(
        "POST",
        &format!("{control_plane}/v1/apply"),
        Some(&body.to_string()),
    );
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.contains("invalid_manifest") && answer.contains(&format!("bad.toml:{line}:12: ")),
        "{answer}"
    );
    assert_eq!(up.healthy("web").len(), 2);
    let (code, stdout, _) = cli(&up, &["apply", "-f", path.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(stdout, "nothing changed\n");
    // Replicas alone: scaled, nothing else.
    let more = in_dir(&up, "more.toml");
    std::fs::write(
        &more,
        after.replace("version = \"0.1\"", "version = \"0.1\"\nreplicas = 2"),
    )
    .expect("write");
    let (code, stdout, stderr) = cli(&up, &["apply", "-f", more.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "scaled      fresh\n");
    up.wait_healthy("fresh", &["fresh-1", "fresh-2"]);
}
