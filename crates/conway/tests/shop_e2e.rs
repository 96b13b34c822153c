//! The reference shop end to end, as the README runs it: `conway up` builds and starts
//! `examples/shop` (five services, two replicas each, in Rust and Python); `shop-load`
//! places orders through the gateway while one instance of every service is killed;
//! then `shop-audit` cross-checks orders, inventory and payments through the control
//! plane. At least 99% of requests must get a correct answer, and the audit be clean.
//!
//! The first run builds the shop in release mode (several minutes on two cores).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use conway_test_support::temp_dir;
use conway_test_support::up::{Running, Up};
use serde_json::Value;

/// The shop's services; each runs as `NAME-1` and `NAME-2`.
const SERVICES: [&str; 5] = [
    "catalog",
    "inventory",
    "payments",
    "orders",
    "recommendations",
];

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository's folder")
}

/// A running `conway up` of the shop; everything it started dies with it.
struct Shop {
    running: Running,
    /// The manifest's copy, beside the original so that its relative folders hold.
    manifest: PathBuf,
}

impl Shop {
    /// Builds (the first time, for minutes) and starts the shop; returns at its ready
    /// line.
    fn start() -> Self {
        let shop = repository().join("examples/shop");
        let text = std::fs::read_to_string(shop.join("conway.toml")).expect("the shop's manifest");
        // The same system, with its gateway on a port the OS picks.
        let fixed = r#"listen = "127.0.0.1:8080""#;
        assert!(text.contains(fixed), "the manifest's gateway address moved");
        let manifest = shop.join(format!(".conway.e2e-{}.toml", std::process::id()));
        std::fs::write(&manifest, text.replace(fixed, r#"listen = "127.0.0.1:0""#))
            .expect("write the manifest's copy");
        let up = Up::launch_manifest(&manifest, temp_dir(), &[], &[]);
        Self {
            running: up.ready_within(Duration::from_secs(40 * 60)),
            manifest,
        }
    }

    /// What `up` said and what the registry holds, for a failure's message.
    fn explain(&self, control_plane: &str) -> String {
        let mut text = String::from("instances:\n");
        for service in SERVICES {
            let (_, body) = get(&format!("{control_plane}/v1/services/{service}/instances"));
            text.push_str(&format!("  {service}: {body}\n"));
        }
        text.push_str("conway up's stderr:\n");
        text.push_str(&self.running.stderr());
        text
    }
}

impl Drop for Shop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.manifest);
    }
}

fn get(url: &str) -> (u16, String) {
    curl(&[], url)
}

/// Runs curl on `url` with `args` before it, direct (no proxy): the status and body.
fn curl(args: &[&str], url: &str) -> (u16, String) {
    let output = Command::new("curl")
        .args([
            "-sS",
            "--noproxy",
            "*",
            "-m",
            "10",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
        ])
        .args(args)
        .arg(url)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (status.trim().parse().unwrap_or(0), body.to_owned())
}

/// How many orders the shop holds, from an `orders` instance's audit endpoint.
fn orders_placed(control_plane: &str) -> usize {
    let (_, body) = get(&format!(
        "{control_plane}/v1/services/orders/instances?healthy=true"
    ));
    let Ok(instances) = serde_json::from_str::<Value>(&body) else {
        return 0;
    };
    let Some(instance) = instances.get(0) else {
        return 0;
    };
    let (address, port) = (
        instance["address"].as_str().unwrap_or("127.0.0.1"),
        &instance["port"],
    );
    let (_, audit) = get(&format!("http://{address}:{port}/internal/audit"));
    serde_json::from_str::<Value>(&audit)
        .ok()
        .and_then(|audit| audit["orders"].as_array().map(Vec::len))
        .unwrap_or(0)
}

/// Waits (up to a minute) for `condition`.
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_shop_keeps_its_books_straight_while_instances_die() {
    let mut shop = Shop::start();
    let ready = shop.running.ready.clone();
    let gateway = ready["gateway"].as_str().expect("a gateway URL").to_owned();
    let control_plane = ready["control_plane"]
        .as_str()
        .expect("a control plane URL")
        .to_owned();
    let release = repository().join("target/release");

    let (status, body) = get(&format!("{gateway}/api/catalog/products"));
    assert_eq!(status, 200, "{body}\n{}", shop.explain(&control_plane));
    let (status, body) = get(&format!("{gateway}/api/recommendations?product=sku-mug"));
    assert_eq!(status, 200, "{body}\n{}", shop.explain(&control_plane));
    one_trace_spans_the_saga(&gateway, &control_plane);

    let mut load = Command::new(release.join("shop-load"))
        .args(["--gateway", &gateway, "--rate", "20", "--duration", "20s"])
        .args(["--api-key", "storefront-demo-key"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start shop-load (built by the manifest's build step)");

    // Mid-run (once a hundred orders are in), one instance of every service dies
    // without warning.
    eventually("a hundred orders placed", || {
        orders_placed(&control_plane) >= 100
    });
    for service in SERVICES {
        let id = format!("{service}-1");
        let pid = shop
            .running
            .instance_pid(&id)
            .unwrap_or_else(|| panic!("no process for {id}"));
        let killed = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(killed.success(), "kill {id}");
    }

    let mut report = String::new();
    load.stdout
        .take()
        .expect("shop-load's stdout")
        .read_to_string(&mut report)
        .expect("shop-load's report");
    eprintln!("{report}");
    assert!(load.wait().expect("shop-load ends").success(), "{report}");
    let last = report.lines().last().unwrap_or_default();
    let success: f64 = last
        .split_whitespace()
        .find_map(|field| field.strip_prefix("success="))
        .and_then(|rate| rate.trim_end_matches('%').parse().ok())
        .unwrap_or_else(|| panic!("no success rate in {last:?}:\n{report}"));
    assert!(success >= 99.0, "only {success}% succeeded:\n{report}");

    let audit = Command::new(release.join("shop-audit"))
        .args(["--server", &control_plane])
        .output()
        .expect("run shop-audit");
    eprint!("{}", String::from_utf8_lossy(&audit.stdout));
    assert!(
        audit.status.success(),
        "the audit found discrepancies:\n{}{}",
        String::from_utf8_lossy(&audit.stdout),
        String::from_utf8_lossy(&audit.stderr)
    );

    // The killed instances were replaced.
    for service in SERVICES {
        eventually(&format!("two healthy {service} instances"), || {
            let (_, body) = get(&format!(
                "{control_plane}/v1/services/{service}/instances?healthy=true"
            ));
            serde_json::from_str::<Value>(&body)
                .is_ok_and(|list| list.as_array().is_some_and(|l| l.len() == 2))
        });
    }
}

/// One order placed under a trace id of the test's own makes one trace: the gateway's
/// span, `orders`' server span beneath it, and beneath that, through the mesh, the
/// server spans of `inventory` and `payments` — each reached from the one before by
/// parent links, whoever exported it (the proxy, or a service's OpenTelemetry SDK).
fn one_trace_spans_the_saga(gateway: &str, control_plane: &str) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_nanos();
    let trace_id = format!("{:016x}{:016x}", nanos as u64, std::process::id() | 1);
    let idempotency = format!("idempotency-key: trace-{trace_id}");
    let traceparent = format!("traceparent: 00-{trace_id}-00f067aa0ba902b7-01");
    let (status, body) = curl(
        &[
            "-H",
            "x-api-key: storefront-demo-key",
            "-H",
            "content-type: application/json",
            "-H",
            &idempotency,
            "-H",
            &traceparent,
            "-d",
            r#"{"account": "acct-042", "items": [{"sku": "sku-mug", "quantity": 1}]}"#,
        ],
        &format!("{gateway}/api/orders"),
    );
    // Confirmed, or declined by payments (a share is, by design): both ran the saga.
    assert!(
        matches!(status, 201 | 402),
        "the traced order: {status} {body}"
    );

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = get(&format!("{control_plane}/v1/traces/{trace_id}"));
        if let Ok(trace) = serde_json::from_str::<Value>(&body)
            && saga_spans_linked(&trace)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no single trace gateway → orders → inventory → payments; the trace:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether `trace` holds the gateway's span, `orders`' server span under it, and
/// `inventory`'s and `payments`' server spans under that.
fn saga_spans_linked(trace: &Value) -> bool {
    let Some(spans) = trace["spans"].as_array() else {
        return false;
    };
    let field = |span: &Value, name: &str| span[name].as_str().unwrap_or_default().to_owned();
    let parents: std::collections::HashMap<String, String> = spans
        .iter()
        .map(|span| (field(span, "span_id"), field(span, "parent_span_id")))
        .collect();
    let under = |span: &Value, ancestor: &Value| {
        let wanted = field(ancestor, "span_id");
        let mut at = field(span, "parent_span_id");
        for _ in 0..spans.len() {
            if at == wanted {
                return true;
            }
            match parents.get(&at) {
                Some(parent) => at = parent.clone(),
                None => return false,
            }
        }
        false
    };
    let servers = |service: &str| -> Vec<&Value> {
        spans
            .iter()
            .filter(|s| field(s, "service") == service && field(s, "kind") == "server")
            .collect()
    };
    let gateways: Vec<&Value> = spans
        .iter()
        .filter(|s| field(s, "service") == "gateway")
        .collect();
    servers("orders").into_iter().any(|orders| {
        gateways.iter().any(|gateway| under(orders, gateway))
            && servers("inventory").iter().any(|s| under(s, orders))
            && servers("payments").iter().any(|s| under(s, orders))
    })
}
