//! Calls by service name through the proxy setting the supervisor gives an instance
//! (`http_proxy=http://SERVICE:TOKEN@127.0.0.1:PORT`), made by clients that read it
//! themselves: Python's `requests` and `urllib.request`, and curl. The called service
//! learns the caller from the mesh (`x-conway-caller`), never sees the token, and a
//! call outside `depends_on` is counted against the caller.

use std::path::PathBuf;
use std::process::Command;

use conway_test_support::upstream::{Reply, server};
use serde_json::Value;

use crate::system::{Up, client, external};

/// A Python program that GETs `sys.argv[2]` with `sys.argv[1]` (`requests` or
/// `urllib`), each reading the proxy from the environment as it does by default, and
/// prints `{"status": …, "body": …}`.
const PYTHON_GET: &str = r#"
import json, sys
client, url = sys.argv[1], sys.argv[2]
if client == "requests":
    import requests
    r = requests.get(url, timeout=10)
    status, body = r.status_code, r.text
else:
    import urllib.error, urllib.request
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            status, body = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read().decode()
print(json.dumps({"status": status, "body": body}))
"#;

/// A Python that can `import requests`: the system's, or else a virtual environment
/// kept under the target folder, made once with `pip install requests`.
fn python_with_requests() -> PathBuf {
    let imports = |python: &PathBuf| {
        Command::new(python)
            .args(["-c", "import requests"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let system = PathBuf::from("python3");
    if imports(&system) {
        return system;
    }
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("python-requests");
    let python = venv.join("bin/python");
    if !imports(&python) {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 runs");
        assert!(made.success(), "python3 -m venv {}", venv.display());
        let installed = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "requests",
            ])
            .status()
            .expect("pip runs");
        assert!(installed.success(), "pip install requests");
    }
    assert!(imports(&python), "requests in {}", venv.display());
    python
}

/// Runs `program` with `http_proxy` (and nothing else of the proxy settings of this
/// test's own environment); its stdout.
fn with_proxy(mut program: Command, http_proxy: &str) -> String {
    for name in [
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "no_proxy",
        "NO_PROXY",
    ] {
        program.env_remove(name);
    }
    let output = program
        .env("http_proxy", http_proxy)
        .output()
        .expect("the client runs");
    assert!(
        output.status.success(),
        "{program:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// `GET url` by `client` (`requests`, `urllib` or `curl`) through `http_proxy`: the
/// status and the body.
fn get(python: &PathBuf, client: &str, http_proxy: &str, url: &str) -> (u16, String) {
    if client == "curl" {
        let mut curl = Command::new("curl");
        curl.args(["-s", "--max-time", "10", "-w", "\n%{http_code}", url]);
        let out = with_proxy(curl, http_proxy);
        let (body, code) = out.rsplit_once('\n').expect("a status line");
        return (code.parse().expect("a status"), body.to_owned());
    }
    let mut python = Command::new(python);
    python.args(["-c", PYTHON_GET, client, url]);
    let out: Value =
        serde_json::from_str(&with_proxy(python, http_proxy)).expect("the client's JSON");
    let status = out["status"].as_u64().expect("a status");
    (
        u16::try_from(status).expect("a status"),
        out["body"].as_str().expect("a body").to_owned(),
    )
}

/// The echo of a request that reached `api` or `other`.
fn echo(status: u16, body: &str) -> Value {
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not an echo ({e}): {body}"))
}

#[test]
fn python_and_curl_call_services_by_name_as_the_calling_service() {
    let python = python_with_requests();
    let api = server().named("api").fallback(Reply::echo()).run();
    let other = server().named("other").fallback(Reply::echo()).run();
    let up = Up::start(&format!(
        "{}{}{}",
        client(&["api"]),
        external("api", &api.address().to_string(), ""),
        external("other", &other.address().to_string(), "")
    ));
    up.wait_healthy("api", 1);
    up.wait_healthy("other", 1);
    let http_proxy = up.environment("client")["http_proxy"]
        .as_str()
        .expect("client's http_proxy")
        .to_owned();
    let mesh = up.url("mesh");
    let token = http_proxy
        .strip_prefix("http://client:")
        .and_then(|rest| rest.strip_suffix(&format!("@{}", mesh.trim_start_matches("http://"))))
        .unwrap_or_else(|| panic!("{http_proxy} is not http://client:TOKEN@MESH ({mesh})"));

    // The proxy may not have seen api healthy yet when the ready line came.
    conway_test_support::wait_for("api through the mesh", crate::system::PATIENCE, || {
        get(&python, "curl", &http_proxy, "http://api/ready").0 == 200
    });
    for client in ["requests", "urllib", "curl"] {
        let (status, body) = get(&python, client, &http_proxy, "http://api/orders/7?x=1");
        let echo = echo(status, &body);
        assert_eq!(echo["instance"], "api", "{client}: {echo}");
        assert_eq!(echo["path"], "/orders/7", "{client}: {echo}");
        assert_eq!(echo["query"], "x=1", "{client}: {echo}");
        let headers = &echo["headers"];
        assert_eq!(headers["x-conway-caller"], "client", "{client}: {echo}");
        assert!(
            headers.get("proxy-authorization").is_none() && !body.contains(token),
            "{client}: the token reached the service: {echo}"
        );
    }

    // The caller is whoever the token says: a forged one names nobody.
    let forged = http_proxy.replace(token, "0123456789abcdef0123456789abcdef");
    let (status, body) = get(&python, "requests", &forged, "http://api/orders");
    assert!(
        echo(status, &body)["headers"]
            .get("x-conway-caller")
            .is_none()
    );

    // A call outside depends_on goes through (audit) and is counted as client's.
    let (status, body) = get(&python, "requests", &http_proxy, "http://other/report");
    assert_eq!(echo(status, &body)["instance"], "other");
    let metrics = up.metrics();
    for counted in [
        "conway_proxy_undeclared_calls_total{caller=\"client\",callee=\"other\"} 1",
        "conway_proxy_undeclared_calls_total{caller=\"anonymous\",callee=\"api\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == counted),
            "no {counted:?} in:\n{metrics}"
        );
    }
}
