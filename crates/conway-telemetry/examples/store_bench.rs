//! The telemetry store's benchmark (issue 6): ingest rate and trace lookup latency with
//! a million spans stored, on disk (SQLite, WAL) beside the same run in memory.
//!
//! Run by `bench/telemetry.sh`; prints one Markdown table. Not a test: it asserts
//! nothing. Arguments: `--spans N` (default 1,000,000), `--batch N` (spans per OTLP
//! request, default 1,000), `--lookups N` (default 2,000).

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use conway_telemetry::otlp::traces_request;
use conway_telemetry::{
    SamplingConfig, Signal, SpanId, SpanKind, SpanRecord, SpanStatus, Telemetry, TelemetryConfig,
    TraceId, TraceQuery,
};
use prost::Message;
use serde_json::json;

const SERVICES: [&str; 4] = ["gateway", "orders", "inventory", "payments"];
const SPANS_PER_TRACE: usize = 10;

struct Args {
    spans: usize,
    batch: usize,
    lookups: usize,
}

fn args() -> Args {
    let mut args = Args {
        spans: 1_000_000,
        batch: 1_000,
        lookups: 2_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().and_then(|v| v.replace('_', "").parse().ok());
        match (flag.as_str(), value) {
            ("--spans", Some(n)) => args.spans = n,
            ("--batch", Some(n)) => args.batch = n,
            ("--lookups", Some(n)) => args.lookups = n,
            _ => {
                eprintln!("usage: store-bench [--spans N] [--batch N] [--lookups N]");
                std::process::exit(2);
            }
        }
    }
    args
}

/// One trace starting at `start`: a gateway root and children across the services, 1%
/// with an error. Trace and span ids are random, as W3C ids are; start times move
/// forward as live traffic does.
fn trace(start: SystemTime) -> Vec<SpanRecord> {
    let trace_id = TraceId::random();
    let root = SpanId::random();
    let error = fastrand::u32(0..100) == 0;
    (0..SPANS_PER_TRACE)
        .map(|i| {
            let service = SERVICES[i % SERVICES.len()];
            SpanRecord {
                trace_id,
                span_id: if i == 0 { root } else { SpanId::random() },
                parent_span_id: (i > 0).then_some(root),
                service: service.to_owned(),
                operation: format!("GET /api/{service}/{}", i % 3),
                kind: if i == 0 {
                    SpanKind::Server
                } else {
                    SpanKind::Client
                },
                start: start + Duration::from_micros(i as u64 * 150),
                duration: Duration::from_micros(fastrand::u64(200..50_000)),
                status: if error && i == SPANS_PER_TRACE - 1 {
                    SpanStatus::Error
                } else {
                    SpanStatus::Unset
                },
                status_message: None,
                attributes: json!({
                    "http.request.method": "GET",
                    "http.route": format!("/api/{service}"),
                    "http.response.status_code": if error { 503 } else { 200 },
                    "server.address": "127.0.0.1",
                    "conway.instance": format!("{service}-{}", i % 2),
                })
                .as_object()
                .cloned()
                .unwrap_or_default(),
            }
        })
        .collect()
}

/// This process's CPU time (user + system) so far, from `/proc/self/stat`; zero where
/// there is none. Rates per CPU-second hold on a machine whose cores are shared.
fn cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the command name (which may hold spaces) start at state (3rd).
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

struct Row {
    store: &'static str,
    otlp_rate: f64,
    otlp_cpu_rate: f64,
    insert_rate: f64,
    insert_cpu_rate: f64,
    lookup_p50: Duration,
    lookup_p99: Duration,
    search_p50: Duration,
    size_mib: f64,
    reopen: Option<Duration>,
}

async fn run(dir: Option<&Path>, args: &Args, label: &'static str) -> Row {
    let config = TelemetryConfig {
        sampling: SamplingConfig::keep_all(),
        max_size: u64::MAX,
        retention: Duration::from_secs(30 * 24 * 3600),
        ..TelemetryConfig::default()
    };
    let telemetry = match dir {
        Some(dir) => Telemetry::open(dir, config.clone()),
        None => Telemetry::in_memory(config.clone()),
    }
    .expect("open the store");
    // A million spans over the last hour, arriving in time order (with some jitter).
    let first = SystemTime::now() - Duration::from_secs(3_600);
    let traces = (args.spans + args.spans / 10) / SPANS_PER_TRACE + 1;
    let step = Duration::from_secs(3_600) / traces as u32;
    let mut clock = first;
    let mut next = move || {
        clock += step;
        clock - Duration::from_micros(fastrand::u64(0..5_000))
    };
    let mut ids = Vec::new();
    let mut busy = Duration::ZERO;
    let mut ingested = 0;
    let cpu = cpu_time();
    // OTLP path: protobuf decode, conversion, sampling (keep all), store.
    while ingested < args.spans {
        let mut batch = Vec::with_capacity(args.batch);
        while batch.len() < args.batch {
            let spans = trace(next());
            ids.push(spans[0].trace_id);
            batch.extend(spans);
        }
        let body = traces_request(&batch).encode_to_vec();
        let started = Instant::now();
        let response = telemetry
            .receive(
                Signal::Traces,
                Some("application/x-protobuf"),
                None,
                body.into(),
            )
            .await;
        busy += started.elapsed();
        assert_eq!(
            response.status,
            200,
            "{:?}",
            String::from_utf8_lossy(&response.body)
        );
        ingested += batch.len();
    }
    let otlp_rate = ingested as f64 / busy.as_secs_f64();
    // Includes building the requests, which the timer leaves out: a lower bound.
    let otlp_cpu_rate = ingested as f64 / (cpu_time() - cpu).as_secs_f64().max(0.01);
    eprintln!("{label}: {ingested} spans through OTLP at {otlp_rate:.0}/s");

    // In-process records straight to the store, with the million already there.
    let extra = (args.spans / 10).max(args.batch);
    let mut busy = Duration::ZERO;
    let mut inserted = 0;
    let cpu = cpu_time();
    while inserted < extra {
        let mut batch = Vec::with_capacity(args.batch);
        while batch.len() < args.batch {
            batch.extend(trace(next()));
        }
        let started = Instant::now();
        telemetry.ingest_spans(batch.clone()).await.expect("ingest");
        busy += started.elapsed();
        inserted += batch.len();
    }
    let insert_rate = inserted as f64 / busy.as_secs_f64();
    let insert_cpu_rate = inserted as f64 / (cpu_time() - cpu).as_secs_f64().max(0.01);

    let mut lookups = Vec::with_capacity(args.lookups);
    for _ in 0..args.lookups {
        let id = ids[fastrand::usize(0..ids.len())];
        let started = Instant::now();
        let trace = telemetry.trace(id).await.expect("lookup").expect("found");
        lookups.push(started.elapsed());
        assert_eq!(trace.spans.len(), SPANS_PER_TRACE);
    }
    lookups.sort();
    let mut searches = Vec::new();
    for i in 0..200 {
        let query = TraceQuery {
            service: (i % 2 == 0).then(|| SERVICES[i % SERVICES.len()].to_owned()),
            errors_only: i % 3 == 0,
            limit: 20,
            ..TraceQuery::default()
        };
        let started = Instant::now();
        let found = telemetry.traces(query).await.expect("search");
        searches.push(started.elapsed());
        assert!(!found.is_empty());
    }
    searches.sort();
    let size = telemetry.store_size().await.expect("size");
    drop(telemetry);
    let reopen = match dir {
        Some(dir) => {
            let started = Instant::now();
            let reopened = Telemetry::open(dir, config).expect("reopen");
            let elapsed = started.elapsed();
            assert!(reopened.open_report().damaged.is_none());
            Some(elapsed)
        }
        None => None,
    };
    Row {
        store: label,
        otlp_rate,
        otlp_cpu_rate,
        insert_rate,
        insert_cpu_rate,
        lookup_p50: percentile(&lookups, 0.5),
        lookup_p99: percentile(&lookups, 0.99),
        search_p50: percentile(&searches, 0.5),
        size_mib: size.used as f64 / (1024.0 * 1024.0),
        reopen,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = args();
    let dir = tempfile_dir();
    let disk = run(Some(&dir), &args, "SQLite file (WAL)").await;
    let _ = std::fs::remove_dir_all(&dir);
    let memory = run(None, &args, "SQLite in memory").await;
    println!(
        "Telemetry store: {} spans ({} per trace) through OTLP/protobuf in requests of {}, then {} more in process; {} lookups by trace id; {} cores",
        args.spans,
        SPANS_PER_TRACE,
        args.batch,
        (args.spans / 10).max(args.batch),
        args.lookups,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    println!();
    println!(
        "| store | OTLP ingest (spans/s) | per CPU-second | in-process ingest (spans/s) | per CPU-second | trace by id p50 | p99 | search p50 | size | reopen (quick_check) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for row in [&disk, &memory] {
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {} | {} | {} | {:.0} MiB | {} |",
            row.store,
            row.otlp_rate,
            row.otlp_cpu_rate,
            row.insert_rate,
            row.insert_cpu_rate,
            ms(row.lookup_p50),
            ms(row.lookup_p99),
            ms(row.search_p50),
            row.size_mib,
            row.reopen.map_or_else(|| "—".to_owned(), ms),
        );
    }
    println!();
    println!(
        "Ingest rates are spans over the time spent in the store's calls (requests are built outside it); per CPU-second: spans over this process's CPU time in the phase, request building included, so they hold when other work shares the cores (load average at the end: {}).",
        std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    );
    println!(
        "file / memory: ingest {:.2}×, lookup p99 {:.2}×. Targets (issue 6): ingest ≥ 50,000 spans/s; a trace by id ≤ 10 ms with 1,000,000 spans stored.",
        disk.otlp_rate / memory.otlp_rate,
        disk.lookup_p99.as_secs_f64() / memory.lookup_p99.as_secs_f64().max(1e-9),
    );
}

/// A fresh folder under the system's temporary folder.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "conway-telemetry-bench-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).expect("temporary folder");
    dir
}
