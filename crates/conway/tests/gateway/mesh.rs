//! `conway mesh`: calls by service name through the proxy setting, as curl makes them,
//! with the caller known from its token and `[mesh] authorization = "enforce"`.

use std::process::Command;

use conway_test_support::Process;
use conway_test_support::upstream::{Reply, server};
use serde_json::{Value, json};

use crate::fixture::{PATIENCE, System, conway, external};

/// Registers a calling instance of `service` whose proxy token is `token` (the registry
/// keeps only its digest), as the supervisor does.
async fn register_caller(system: &System, service: &str, token: &str) {
    use sha2::Digest;
    let digest: String = sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let body = json!({
        "id": format!("{service}-1"), "address": "127.0.0.1", "port": 9, "checked_by": "registrant",
        "metadata": { "conway.token_sha256": digest },
    });
    let response = system
        .http
        .post(format!(
            "{}/v1/services/{service}/instances",
            system.plane.url
        ))
        .json(&body)
        .send()
        .await
        .expect("the control plane answers");
    assert_eq!(response.status(), 201);
}

/// `curl -x http://USER:TOKEN@MESH http://TARGET/path`: the status and the body.
fn curl_through(mesh: &str, credentials: Option<&str>, url: &str) -> (u16, String) {
    let proxy = match credentials {
        Some(credentials) => format!(
            "http://{credentials}@{}",
            mesh.trim_start_matches("http://")
        ),
        None => mesh.to_owned(),
    };
    let output = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "5",
            "-w",
            "\n%{http_code}",
            "-x",
            &proxy,
            url,
        ])
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.parse().unwrap_or(0), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_call_each_other_by_name_within_their_declared_dependencies() {
    let api = server().named("api").fallback(Reply::echo()).run();
    let manifest = format!(
        "[mesh]\nauthorization = \"enforce\"\n\n[services.web]\ndepends_on = [\"api\"]\n\n[services.batch]\n\n{}",
        external("api", &[&api], "")
    );
    let system = System::start(&manifest).await;
    register_caller(&system, "web", "web-token-0123456789").await;
    register_caller(&system, "batch", "batch-token-0123456789").await;
    let mesh_dir = conway_test_support::temp_dir();
    let mesh = Process::start(
        conway(),
        &[
            "mesh",
            "--server",
            &system.plane.url,
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            mesh_dir.path().to_str().expect("path"),
        ],
    );
    let mesh_url = mesh.url("mesh");

    // The declared call goes through, and the service learns who called.
    conway_test_support::wait_for("the mesh to know web's token", PATIENCE, || {
        curl_through(
            &mesh_url,
            Some("web:web-token-0123456789"),
            "http://api/orders",
        )
        .0 == 200
    });
    let (status, body) = curl_through(
        &mesh_url,
        Some("web:web-token-0123456789"),
        "http://api/orders?x=1",
    );
    assert_eq!(status, 200, "{body}");
    let echo: Value = serde_json::from_str(&body).expect("echo JSON");
    assert_eq!(echo["headers"]["x-conway-caller"], "web");
    assert!(
        echo["headers"].get("proxy-authorization").is_none(),
        "the token never reaches the service"
    );

    // An undeclared call is refused, naming caller and callee.
    let (status, body) = curl_through(
        &mesh_url,
        Some("batch:batch-token-0123456789"),
        "http://api/orders",
    );
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("undeclared_dependency") && body.contains("batch") && body.contains("api"),
        "{body}"
    );

    // A token of another service, or none, identifies nobody.
    let (status, _) = curl_through(
        &mesh_url,
        Some("web:batch-token-0123456789"),
        "http://api/orders",
    );
    assert_eq!(status, 407);
    let (status, _) = curl_through(&mesh_url, None, "http://api/orders");
    assert_eq!(status, 407);
    assert_eq!(
        api.hits("/orders"),
        2,
        "only the declared calls reached the service"
    );
}
