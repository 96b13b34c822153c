//! HTTPS at the gateway, driven by curl as a user would: certificates from
//! `[gateway.tls]`, HTTP/2 and HTTP/1.1 by ALPN, and the redirect from plain HTTP.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use conway_test_support::{ControlPlane, Process, temp_dir, wait_for};

fn conway() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_conway"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

fn curl(args: &[&str]) -> (String, String) {
    let output = Command::new("curl")
        .args(["-s", "--max-time", "5"])
        .args(args)
        .output()
        .expect("curl runs");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A static file server the gateway routes to.
struct Upstream(std::process::Child);

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn https_serves_both_http_versions_and_plain_http_redirects() {
    let dir = temp_dir();
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=shop.example",
        ])
        .args([
            "-addext",
            "subjectAltName=DNS:shop.example",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
        ])
        .current_dir(dir.path())
        .output()
        .expect("openssl runs");
    assert!(
        status.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    std::fs::write(dir.path().join("index.html"), "hello over tls\n").expect("page");
    let port = free_port();
    let _upstream = Upstream(
        Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 http.server"),
    );
    let manifest = dir.path().join("conway.toml");
    std::fs::write(
        &manifest,
        format!(
            "[gateway.tls]\nredirect_http = true\ncertificates = [{{ cert_file = \"cert.pem\", key_file = \"key.pem\" }}]\n\n\
             [[gateway.routes]]\npath = \"/\"\nservice = \"web\"\n\n\
             [services.web]\naddress = \"127.0.0.1:{port}\"\nhealth = {{ http = \"/\", interval = \"100ms\" }}\n"
        ),
    )
    .expect("manifest");
    let server = ControlPlane::start(
        conway(),
        &dir.path().join("server"),
        &["-f", manifest.to_str().expect("path")],
    );
    let gateway_dir = dir.path().join("gateway");
    let gateway = Process::start(
        conway(),
        &[
            "gateway",
            "--server",
            &server.url,
            "--listen",
            "127.0.0.1:0",
            "--tls-listen",
            "127.0.0.1:0",
            "--data-dir",
            gateway_dir.to_str().expect("path"),
        ],
    );
    let https = gateway.url("gateway_tls");
    let tls_port = https.rsplit(':').next().expect("port").to_owned();
    let resolve = format!("shop.example:{tls_port}:127.0.0.1");
    let cert = dir.path().join("cert.pem");
    let url = format!("https://shop.example:{tls_port}/");
    let fetch = |version: &str| {
        curl(&[
            version,
            "--cacert",
            cert.to_str().expect("path"),
            "--resolve",
            &resolve,
            "-w",
            "\n%{http_version}",
            &url,
        ])
    };
    wait_for(
        "the upstream to be healthy behind HTTPS",
        Duration::from_secs(20),
        || fetch("--http2").0.starts_with("hello over tls"),
    );
    assert_eq!(fetch("--http2").0, "hello over tls\n\n2", "HTTP/2 by ALPN");
    assert_eq!(
        fetch("--http1.1").0,
        "hello over tls\n\n1.1",
        "HTTP/1.1 by ALPN"
    );

    let (headers, _) = curl(&["-i", &format!("{}/orders?x=1", gateway.url("gateway"))]);
    assert!(headers.starts_with("HTTP/1.1 308"), "{headers}");
    assert!(
        headers.to_ascii_lowercase().contains(&format!(
            "location: https://127.0.0.1:{tls_port}/orders?x=1"
        )),
        "{headers}"
    );

    // An unknown certificate authority is refused by the client: the gateway serves the
    // configured certificate, not something else.
    let (body, _) = curl(&["--resolve", &resolve, &url]);
    assert!(
        body.is_empty(),
        "without the CA the handshake fails: {body}"
    );
}
