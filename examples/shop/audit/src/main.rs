//! `shop-audit`: cross-checks the shop's services after a run. It finds each service's
//! instances through Conway's control plane (`GET /v1/services/{name}/instances`), reads
//! the audit endpoint (`GET /internal/audit`) of one instance of `orders`, `inventory`
//! and `payments` (the replicas of a service share their data), waits for pending sagas
//! to end, and checks that every confirmed order took its stock and was charged exactly
//! once, and that every failed order holds no stock and no net charge.
//!
//! Exit codes: 0 clean; 1 discrepancies (listed); 3 the control plane or a service
//! could not be reached.

mod check;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Cross-check the shop's orders, inventory and payments.
#[derive(Debug, Parser)]
#[command(name = "shop-audit", version)]
struct Args {
    /// The control plane's URL.
    #[arg(long, env = "CONWAY_URL", default_value = "http://127.0.0.1:7700")]
    server: String,
    /// How long to wait for pending orders to end before counting them as discrepancies.
    #[arg(long, default_value_t = 30)]
    settle_seconds: u64,
}

/// A failure to reach something.
#[derive(Debug)]
struct Unreachable(String);

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client");
    match audit(&client, &args).await {
        Ok(report) => {
            println!(
                "orders={} confirmed={} failed={} pending={} discrepancies={}",
                report.orders,
                report.confirmed,
                report.failed,
                report.pending,
                report.discrepancies.len()
            );
            for discrepancy in &report.discrepancies {
                println!("discrepancy: {discrepancy}");
            }
            if report.discrepancies.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(Unreachable(message)) => {
            eprintln!("shop-audit: {message}");
            ExitCode::from(3)
        }
    }
}

async fn audit(client: &reqwest::Client, args: &Args) -> Result<check::Report, Unreachable> {
    let server = args.server.trim_end_matches('/');
    let deadline = Instant::now() + Duration::from_secs(args.settle_seconds);
    // Orders first, again and again until no saga is pending (or the wait is over), so
    // that inventory and payments are read after every saga they took part in.
    let orders: Vec<check::Order> = loop {
        let orders: Vec<check::Order> = list(client, server, "orders", "orders").await?;
        let pending = orders.iter().filter(|o| o.status == "pending").count();
        if pending == 0 || Instant::now() >= deadline {
            break orders;
        }
        eprintln!("shop-audit: {pending} orders pending; waiting for their sagas");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let inventory = fetch(client, server, "inventory").await?;
    let reservations: Vec<check::Reservation> = field(&inventory, "inventory", "reservations")?;
    let unbalanced: Vec<String> = field(&inventory, "inventory", "unbalanced")?;
    let charges: Vec<check::Charge> = list(client, server, "payments", "charges").await?;
    Ok(check::check(&orders, &reservations, &charges, &unbalanced))
}

fn field<T: DeserializeOwned>(body: &Value, service: &str, name: &str) -> Result<T, Unreachable> {
    serde_json::from_value(body[name].clone())
        .map_err(|error| Unreachable(format!("{service}'s audit has no valid {name:?}: {error}")))
}

async fn list<T: DeserializeOwned>(
    client: &reqwest::Client,
    server: &str,
    service: &str,
    name: &str,
) -> Result<Vec<T>, Unreachable> {
    field(&fetch(client, server, service).await?, service, name)
}

/// The audit of `service`, from the first of its instances that answers (healthy ones
/// first).
async fn fetch(
    client: &reqwest::Client,
    server: &str,
    service: &str,
) -> Result<Value, Unreachable> {
    let url = format!("{server}/v1/services/{service}/instances");
    let instances: Value = async {
        let response = client.get(&url).send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        response.json().await.map_err(|e| e.to_string())
    }
    .await
    .map_err(|error| {
        Unreachable(format!(
            "cannot list {service}'s instances at {url}: {error}"
        ))
    })?;
    let mut instances: Vec<&Value> = instances.as_array().into_iter().flatten().collect();
    instances.sort_by_key(|instance| instance["state"] != "healthy");
    let mut errors = Vec::new();
    for instance in instances {
        let (Some(address), Some(port)) = (instance["address"].as_str(), instance["port"].as_u64())
        else {
            continue;
        };
        let host = if address.contains(':') {
            format!("[{address}]")
        } else {
            address.to_owned()
        };
        let url = format!("http://{host}:{port}/internal/audit");
        match client.get(&url).send().await {
            Ok(response) if response.status().is_success() => {
                if let Ok(body) = response.json().await {
                    return Ok(body);
                }
                errors.push(format!("{url}: unreadable answer"));
            }
            Ok(response) => errors.push(format!("{url}: HTTP {}", response.status())),
            Err(error) => errors.push(format!("{url}: {error}")),
        }
    }
    Err(Unreachable(if errors.is_empty() {
        format!("{service} has no instances")
    } else {
        format!("no instance of {service} answered: {}", errors.join("; "))
    }))
}
