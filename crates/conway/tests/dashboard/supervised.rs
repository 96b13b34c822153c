//! The dashboard of `conway up`, where a supervisor runs the services: a service's page
//! shows each instance's restarts and uptime, and scaling it from the page changes its
//! replicas; the overview shows the circuit breaker's live state from the proxy.

use conway_test_support::TEST_SERVICE;
use conway_test_support::up::{Running, Up};
use fantoccini::Locator;
use serde_json::{Value, json};

use crate::browser::{Browser, Driver, browser_installed};
use crate::system::api;

/// A service that answers every request 500: its circuit breaker opens.
const BROKEN: &str = r#"
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(500)
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

fn up() -> Running {
    let manifest = format!(
        "[system]\nname = \"dashboard-up\"\n\n[gateway]\nlisten = \"127.0.0.1:0\"\n\n\
         [[gateway.routes]]\npath = \"/web\"\nservice = \"web\"\n\n\
         [services.web]\nrun = [\"python3\", {TEST_SERVICE:?}]\nversion = \"1.0.0\"\n\
         health = {{ tcp = true, interval = \"200ms\" }}\n\n\
         [services.web.resilience]\ncircuit_breaker = {{ failure_ratio = 0.5 }}\n\n\
         [[gateway.routes]]\npath = \"/broken\"\nservice = \"broken\"\n\n\
         [services.broken]\nrun = [\"python3\", \"-c\", {BROKEN:?}]\n\
         health = {{ tcp = true, interval = \"200ms\" }}\n\n\
         [services.broken.resilience]\n\
         circuit_breaker = {{ failure_ratio = 0.5, min_requests = 5, open_for = \"60s\" }}\n"
    );
    Up::launch_with(&manifest, &[], &["--otlp-listen", "127.0.0.1:0"]).ready()
}

async fn instances(http: &reqwest::Client, url: &str) -> Vec<Value> {
    let found = api(
        http,
        reqwest::Method::GET,
        &format!("{url}/v1/services/web/instances"),
        Value::Null,
    )
    .await;
    found.as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_a_service_from_its_page_changes_its_replicas() {
    if !browser_installed() {
        return;
    }
    let system = tokio::task::spawn_blocking(up).await.expect("conway up");
    let url = system.url("control_plane");
    let http = reqwest::Client::new();
    assert_eq!(instances(&http, &url).await.len(), 1);

    // Failures through the gateway open broken's breaker.
    let gateway = system.url("gateway");
    for _ in 0..20 {
        let status = http
            .get(format!("{gateway}/broken/x"))
            .send()
            .await
            .expect("the gateway answers")
            .status();
        assert!(status.is_server_error(), "{status}");
    }

    let driver = Driver::start();
    for width in [1280, 375] {
        let page = Browser::open(&driver, &url, width).await;
        // The overview: the breaker's state as the proxy reports it.
        page.visit("", "Overview").await;
        page.until(
            "the breaker reported closed",
            "const b = document.querySelector('tr[data-service=web] [data-breaker]'); return b && b.dataset.breaker === 'closed'",
        )
        .await;
        page.until(
            "broken's breaker reported open",
            "const b = document.querySelector('tr[data-service=broken] [data-breaker]'); return b && b.dataset.breaker === 'open' && b.textContent === 'open'",
        )
        .await;
        page.shot("up-overview").await;

        page.visit("service/web", "web").await;
        page.until(
            "web's instances",
            "return document.querySelectorAll('tr[data-instance]').length >= 1",
        )
        .await;
        let cells = page
            .eval("const r = document.querySelector('tr[data-instance]'); return [r.querySelector('[data-label=Restarts]').textContent, r.querySelector('[data-label=Uptime]').textContent]")
            .await;
        assert_eq!(cells[0], "0", "restarts: {cells}");
        assert_ne!(cells[1], "—", "uptime: {cells}");
        // Both actions are served here: enabled.
        page.until(
            "scale and deploy enabled",
            "const f = [...document.querySelectorAll('form.action fieldset')]; return f.length === 2 && f.every(x => !x.disabled)",
        )
        .await;

        let wanted = if width == 1280 { 2 } else { 1 };
        let input = page
            .client
            .find(Locator::Css("form[data-action=scale] input[name=replicas]"))
            .await
            .expect("the replicas field");
        input.clear().await.expect("clear the field");
        input
            .send_keys(&wanted.to_string())
            .await
            .expect("type the replicas");
        page.click("form[data-action=scale] button[type=submit]")
            .await;
        let was = 3 - wanted;
        page.until(
            "the scale confirmed",
            &format!(
                "return document.querySelector('.action-status').textContent === 'Scaled web to {wanted} replica(s) (was {was}).'"
            ),
        )
        .await;
        page.until(
            "the new replica count on the page",
            &format!("return document.querySelectorAll('tr[data-instance]').length === {wanted}"),
        )
        .await;
        page.shot("up-service").await;
        let now = instances(&http, &url).await;
        assert_eq!(
            now.len(),
            wanted,
            "the registry after scaling to {wanted}: {now:?}"
        );

        if width == 1280 {
            // A rolling deploy from the page: every instance ends on the new version.
            page.until(
                "no deploy yet",
                "return document.querySelector('.deployment').textContent.startsWith('No deploy')",
            )
            .await;
            page.client
                .find(Locator::Css("form[data-action=deploy] input[name=version]"))
                .await
                .expect("the version field")
                .send_keys("1.1.0")
                .await
                .expect("type the version");
            page.click("form[data-action=deploy] button[type=submit]")
                .await;
            page.until(
                "the deploy done",
                "const d = document.querySelector('.deployment'); return d.dataset.deployState === 'done' && d.textContent.includes('1.0.0 → 1.1.0')",
            )
            .await;
            page.until(
                "every instance on 1.1.0",
                "const v = [...document.querySelectorAll('tr[data-instance] [data-label=Version]')].map(c => c.textContent); return v.length === 2 && v.every(x => x === '1.1.0')",
            )
            .await;
            page.shot("up-deployed").await;
            let versions: Vec<Value> = instances(&http, &url)
                .await
                .iter()
                .map(|i| i["version"].clone())
                .collect();
            assert_eq!(versions, [json!("1.1.0"), json!("1.1.0")]);
        }
        if width == 375 {
            // A kill from the Chaos page: the supervisor restarts the instance, and its
            // page counts the restart.
            page.visit("chaos", "Chaos").await;
            page.until(
                "the kill form, enabled, offering web",
                "const f = document.querySelector('form.kill'); return f && !f.querySelector('fieldset').disabled && [...f.querySelectorAll('option')].some(o => o.value === 'web')",
            )
            .await;
            page.client
                .find(Locator::Css("form.kill select[name=service]"))
                .await
                .expect("the service menu")
                .select_by_value("web")
                .await
                .expect("choose web");
            page.click("form.kill button[type=submit]").await;
            page.until(
                "the kill job, finished after one kill",
                "const r = document.querySelector('tr[data-job]'); return r && r.dataset.state === 'finished' && r.querySelector('[data-label=Kills]').textContent === '1'",
            )
            .await;
            page.shot("up-chaos").await;
            page.visit("service/web", "web").await;
            page.until(
                "the restart counted",
                "const r = document.querySelector('tr[data-instance]'); return r && r.querySelector('[data-label=Restarts]').textContent === '1'",
            )
            .await;
        }
        page.client.close().await.expect("close the session");
    }
}
