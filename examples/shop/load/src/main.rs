//! `shop-load`: places realistic orders through the gateway at a fixed rate (an open
//! loop: a slow answer does not slow the next order), with some catalog reads, and
//! counts a request as a success when the shop gave a correct business answer:
//!
//! - an order confirmed (`201`), or properly failed: declined (`402`) or out of stock
//!   (`409`), with the order's body saying `failed`;
//! - an order accepted as pending (`202`) that, polled afterwards, ended one of those ways;
//! - a catalog read answered `200`.
//!
//! Anything else fails: `5xx`, other statuses, timeouts, connection errors. The last
//! line is for scripts: `requests=N success=99.95% p50=12ms p99=85ms`.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};

/// Place orders on the shop through its gateway and report how many succeeded.
#[derive(Debug, Parser)]
#[command(name = "shop-load", version)]
struct Args {
    /// The gateway's URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    gateway: String,
    /// Orders per second.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// How long to place orders (`30s`, `500ms`, `2m`).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// The API key of the orders route (the manifest's demo consumer's by default).
    #[arg(long, env = "SHOP_API_KEY", default_value = "storefront-demo-key")]
    api_key: String,
    /// Catalog reads per order placed.
    #[arg(long, default_value_t = 0.5)]
    catalog_reads: f64,
    /// How long one request may take.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// How long to keep polling orders answered `202` for their outcome.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    settle: Duration,
    /// Exit 1 when the success rate (in percent) is below this.
    #[arg(long)]
    min_success: Option<f64>,
}

/// `30s`, `500ms`, `2m`, `1h`, or a number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("not a duration: {text:?}"))?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "" | "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(format!("unknown unit {unit:?} in {text:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|error| error.to_string())
}

/// How one request ended.
#[derive(Debug)]
struct Outcome {
    /// `confirmed`, `declined`, `out_of_stock`, `catalog`, or what went wrong.
    kind: String,
    success: bool,
    latency: Duration,
    /// An order answered `202`, to poll.
    pending: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.rate <= 0.0 {
        eprintln!("shop-load: --rate must be positive");
        return ExitCode::from(2);
    }
    let client = reqwest::Client::builder()
        // The gateway is local; never through a proxy.
        .no_proxy()
        .timeout(args.timeout)
        .build()
        .expect("an HTTP client");
    let gateway = args.gateway.trim_end_matches('/').to_owned();
    let products = match products(&client, &gateway).await {
        Ok(products) => products,
        Err(error) => {
            eprintln!("shop-load: cannot list products at {gateway}: {error}");
            return ExitCode::from(3);
        }
    };
    eprintln!(
        "shop-load: {} orders/s for {:?} through {gateway} ({} products)",
        args.rate,
        args.duration,
        products.len()
    );

    let (sender, mut receiver) = mpsc::unbounded_channel::<Outcome>();
    let limit = Arc::new(Semaphore::new(4_096));
    let products = Arc::new(products);
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let started = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut reads_owed = 0.0;
    while started.elapsed() < args.duration {
        tick.tick().await;
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            let _ = sender.send(Outcome {
                kind: "too many in flight".into(),
                success: false,
                latency: Duration::ZERO,
                pending: None,
            });
            continue;
        };
        let (c, g, k, p, s) = (
            client.clone(),
            gateway.clone(),
            args.api_key.clone(),
            products.clone(),
            sender.clone(),
        );
        tokio::spawn(async move {
            let _ = s.send(order(&c, &g, &k, &p).await);
            drop(permit);
        });
        reads_owed += args.catalog_reads;
        while reads_owed >= 1.0 {
            reads_owed -= 1.0;
            let (c, g, p, s) = (
                client.clone(),
                gateway.clone(),
                products.clone(),
                sender.clone(),
            );
            tokio::spawn(async move {
                let _ = s.send(read(&c, &g, &p).await);
            });
        }
    }
    drop(sender);

    let mut outcomes = Vec::new();
    while let Some(outcome) = receiver.recv().await {
        outcomes.push(outcome);
    }
    // Orders answered 202: their outcome, once their saga has ended.
    let deadline = Instant::now() + args.settle;
    for outcome in &mut outcomes {
        if let Some(id) = outcome.pending.take() {
            let (kind, success) = settle(&client, &gateway, &args.api_key, &id, deadline).await;
            outcome.kind = kind;
            outcome.success = success;
        }
    }
    report(&outcomes, args.min_success)
}

/// The catalog's product ids, waiting a little for a shop that is still starting.
async fn products(client: &reqwest::Client, gateway: &str) -> Result<Vec<String>, String> {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let result = async {
            let response = client
                .get(format!("{gateway}/api/catalog/products"))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if !response.status().is_success() {
                return Err(format!("HTTP {}", response.status()));
            }
            let products: Value = response.json().await.map_err(|e| e.to_string())?;
            let ids: Vec<String> = products
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["id"].as_str().map(str::to_owned))
                .collect();
            if ids.is_empty() {
                return Err("the catalog is empty".into());
            }
            Ok(ids)
        }
        .await;
        match result {
            Err(_) if Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(250)).await
            }
            result => return result,
        }
    }
}

/// A shopper's order: one to three products, one or two of each, from one of a hundred
/// accounts (and now and then an empty one, which payments declines).
fn basket(products: &[String]) -> Value {
    let mut items = Vec::new();
    let lines = fastrand::usize(1..=products.len().min(3));
    while items.len() < lines {
        let sku = &products[fastrand::usize(..products.len())];
        // The limited roast sells out early; only some shoppers try for it.
        if sku == "sku-limited" && fastrand::f64() > 0.3 {
            continue;
        }
        if !items.iter().any(|item: &Value| item["sku"] == sku.as_str()) {
            items.push(json!({ "sku": sku, "quantity": fastrand::u64(1..=2) }));
        }
    }
    let account = if fastrand::f64() < 0.02 {
        "acct-empty".to_owned()
    } else {
        format!("acct-{:03}", fastrand::u32(1..=100))
    };
    json!({ "account": account, "items": items })
}

fn failed(kind: String, latency: Duration) -> Outcome {
    Outcome {
        kind,
        success: false,
        latency,
        pending: None,
    }
}

fn transport(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timeout".into()
    } else if error.is_connect() {
        "connection error".into()
    } else {
        "connection reset or broken".into()
    }
}

/// Whether an order's body says it ended as the shop should: confirmed, declined or
/// out of stock.
fn classify(order: &Value) -> Option<&'static str> {
    match (order["status"].as_str(), order["failure"].as_str()) {
        (Some("confirmed"), _) => Some("confirmed"),
        (Some("failed"), Some("declined")) => Some("declined"),
        (Some("failed"), Some("out_of_stock")) => Some("out_of_stock"),
        _ => None,
    }
}

async fn order(client: &reqwest::Client, gateway: &str, key: &str, products: &[String]) -> Outcome {
    let started = Instant::now();
    let response = client
        .post(format!("{gateway}/api/orders"))
        .header("x-api-key", key)
        .header(
            "idempotency-key",
            format!("load-{:016x}", fastrand::u64(..)),
        )
        .json(&basket(products))
        .send()
        .await;
    let response = match response {
        Ok(response) => response,
        Err(error) => return failed(transport(&error), started.elapsed()),
    };
    let status = response.status();
    let body: Value = match response.json().await {
        Ok(body) => body,
        Err(error) => {
            return failed(
                format!("HTTP {status}, {}", transport(&error)),
                started.elapsed(),
            );
        }
    };
    let latency = started.elapsed();
    let expected = match status {
        StatusCode::CREATED => Some("confirmed"),
        StatusCode::PAYMENT_REQUIRED => Some("declined"),
        StatusCode::CONFLICT => Some("out_of_stock"),
        _ => None,
    };
    match (status, classify(&body)) {
        (StatusCode::ACCEPTED, _) => Outcome {
            kind: "pending".into(),
            success: false,
            latency,
            pending: body["id"].as_str().map(str::to_owned),
        },
        (_, Some(kind)) if expected == Some(kind) => Outcome {
            kind: kind.into(),
            success: true,
            latency,
            pending: None,
        },
        _ => {
            let failure = body["failure"]
                .as_str()
                .or_else(|| body["error"]["code"].as_str())
                .unwrap_or("");
            failed(
                format!("HTTP {} {failure}", status.as_u16())
                    .trim()
                    .to_owned(),
                latency,
            )
        }
    }
}

async fn read(client: &reqwest::Client, gateway: &str, products: &[String]) -> Outcome {
    let started = Instant::now();
    let url = if fastrand::bool() {
        format!("{gateway}/api/catalog/products")
    } else {
        let sku = &products[fastrand::usize(..products.len())];
        format!("{gateway}/api/catalog/products/{sku}")
    };
    match client.get(url).send().await {
        Ok(response) if response.status() == StatusCode::OK => match response.bytes().await {
            Ok(_) => Outcome {
                kind: "catalog".into(),
                success: true,
                latency: started.elapsed(),
                pending: None,
            },
            Err(error) => failed(format!("catalog: {}", transport(&error)), started.elapsed()),
        },
        Ok(response) => failed(
            format!("catalog: HTTP {}", response.status().as_u16()),
            started.elapsed(),
        ),
        Err(error) => failed(format!("catalog: {}", transport(&error)), started.elapsed()),
    }
}

/// Polls an order answered `202` until its saga ends or `deadline` passes.
async fn settle(
    client: &reqwest::Client,
    gateway: &str,
    key: &str,
    id: &str,
    deadline: Instant,
) -> (String, bool) {
    loop {
        let response = client
            .get(format!("{gateway}/api/orders/{id}"))
            .header("x-api-key", key)
            .send()
            .await;
        if let Ok(response) = response
            && response.status() == StatusCode::OK
            && let Ok(order) = response.json::<Value>().await
        {
            if let Some(kind) = classify(&order) {
                return (format!("{kind} (after 202)"), true);
            }
            if order["status"] == "failed" {
                let failure = order["failure"].as_str().unwrap_or("unknown");
                return (format!("failed: {failure} (after 202)"), false);
            }
        }
        if Instant::now() >= deadline {
            return ("still pending".into(), false);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn report(outcomes: &[Outcome], min_success: Option<f64>) -> ExitCode {
    let mut kinds: BTreeMap<(bool, &str), usize> = BTreeMap::new();
    for outcome in outcomes {
        *kinds
            .entry((!outcome.success, outcome.kind.as_str()))
            .or_default() += 1;
    }
    for ((failure, kind), count) in &kinds {
        let verdict = if *failure { "failure" } else { "success" };
        println!("{verdict:>7}  {count:>7}  {kind}");
    }
    let mut latencies: Vec<Duration> = outcomes.iter().map(|o| o.latency).collect();
    latencies.sort();
    let percentile = |p: f64| {
        if latencies.is_empty() {
            return 0;
        }
        let rank = ((p / 100.0) * latencies.len() as f64).ceil() as usize;
        latencies[rank.clamp(1, latencies.len()) - 1].as_millis()
    };
    let successes = outcomes.iter().filter(|o| o.success).count();
    let rate = if outcomes.is_empty() {
        0.0
    } else {
        100.0 * successes as f64 / outcomes.len() as f64
    };
    println!(
        "requests={} success={rate:.2}% p50={}ms p99={}ms",
        outcomes.len(),
        percentile(50.0),
        percentile(99.0)
    );
    match min_success {
        Some(min) if rate < min || outcomes.is_empty() => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1_500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3d").is_err());
    }

    #[test]
    fn only_business_answers_count() {
        assert_eq!(classify(&json!({"status": "confirmed"})), Some("confirmed"));
        assert_eq!(
            classify(&json!({"status": "failed", "failure": "declined"})),
            Some("declined")
        );
        assert_eq!(
            classify(&json!({"status": "failed", "failure": "out_of_stock"})),
            Some("out_of_stock")
        );
        assert_eq!(
            classify(&json!({"status": "failed", "failure": "payments_unavailable"})),
            None
        );
        assert_eq!(classify(&json!({"status": "pending"})), None);
    }

    #[test]
    fn baskets_hold_distinct_products() {
        let products: Vec<String> = ["a", "b", "sku-limited"].map(String::from).to_vec();
        for _ in 0..100 {
            let basket = basket(&products);
            let items = basket["items"].as_array().unwrap();
            assert!((1..=3).contains(&items.len()));
            let mut skus: Vec<_> = items.iter().map(|i| i["sku"].as_str().unwrap()).collect();
            skus.sort_unstable();
            skus.dedup();
            assert_eq!(skus.len(), items.len());
        }
    }
}
