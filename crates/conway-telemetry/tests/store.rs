//! The store through `Telemetry`: queries, retention with an injected clock, restarts,
//! a damaged file, and sampling at ingest.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use conway_telemetry::store::DB_FILE;
use conway_telemetry::{
    Clock, Level, LogQuery, LogRecord, ManualClock, SamplingConfig, Signal, SpanId, SpanKind,
    SpanRecord, SpanStatus, Telemetry, TelemetryConfig, TraceId, TraceQuery,
};

fn config() -> TelemetryConfig {
    TelemetryConfig {
        sampling: SamplingConfig::keep_all(),
        ..TelemetryConfig::default()
    }
}

fn span(
    trace: u8,
    id: u8,
    parent: Option<u8>,
    service: &str,
    start: SystemTime,
    millis: u64,
    status: SpanStatus,
) -> SpanRecord {
    SpanRecord {
        trace_id: TraceId([trace; 16]),
        span_id: SpanId([id; 8]),
        parent_span_id: parent.map(|p| SpanId([p; 8])),
        service: service.to_owned(),
        operation: format!("{service} op"),
        kind: SpanKind::Server,
        start,
        duration: Duration::from_millis(millis),
        status,
        status_message: None,
        attributes: serde_json::Map::new(),
    }
}

/// Three traces: 1 fast through gateway → orders; 2 slow with an error in payments;
/// 3 medium in billing alone.
fn three_traces(now: SystemTime) -> Vec<SpanRecord> {
    let ok = SpanStatus::Unset;
    vec![
        span(1, 1, None, "gateway", now, 10, ok),
        span(
            1,
            2,
            Some(1),
            "orders",
            now + Duration::from_millis(1),
            5,
            ok,
        ),
        span(2, 1, None, "gateway", now + Duration::from_secs(1), 900, ok),
        span(
            2,
            2,
            Some(1),
            "payments",
            now + Duration::from_millis(1_001),
            800,
            SpanStatus::Error,
        ),
        span(3, 1, None, "billing", now + Duration::from_secs(2), 100, ok),
    ]
}

fn ids(summaries: &[conway_core::api::TraceSummary]) -> Vec<String> {
    summaries
        .iter()
        .map(|s| s.trace_id[..2].to_owned())
        .collect()
}

#[tokio::test]
async fn traces_are_found_by_id_service_duration_and_status() {
    let telemetry = Telemetry::in_memory(config()).expect("telemetry");
    let now = SystemTime::now();
    // The child of trace 2 arrives in a batch before its root: the summary still
    // names the root once it comes.
    let mut spans = three_traces(now);
    let early_child = spans.remove(3);
    telemetry
        .ingest_spans(vec![early_child])
        .await
        .expect("ingest");
    telemetry.ingest_spans(spans).await.expect("ingest");

    let search = |query: TraceQuery| {
        let telemetry = telemetry.clone();
        async move { telemetry.traces(query).await.expect("search") }
    };
    let all = search(TraceQuery {
        limit: 10,
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&all), ["03", "02", "01"], "newest first");
    let slow = all
        .iter()
        .find(|t| t.trace_id.starts_with("02"))
        .expect("trace 2");
    assert_eq!(
        slow.root_service, "gateway",
        "the root beats the earlier child"
    );
    assert_eq!(
        (slow.spans, slow.error, slow.duration_us),
        (2, true, 900_000)
    );

    let orders = search(TraceQuery {
        service: Some("orders".into()),
        limit: 10,
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&orders), ["01"]);
    let gateway = search(TraceQuery {
        service: Some("gateway".into()),
        limit: 10,
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&gateway), ["02", "01"]);
    let errors = search(TraceQuery {
        errors_only: true,
        limit: 10,
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&errors), ["02"]);
    let long = search(TraceQuery {
        min_duration: Some(Duration::from_millis(50)),
        limit: 10,
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&long), ["03", "02"]);
    let operation = search(TraceQuery {
        service: Some("gateway".into()),
        operation: Some("gateway op".into()),
        min_duration: Some(Duration::from_millis(500)),
        limit: 10,
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&operation), ["02"]);
    let limited = search(TraceQuery {
        limit: 1,
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&limited), ["03"]);

    let trace = telemetry
        .trace(TraceId([2; 16]))
        .await
        .expect("query")
        .expect("trace 2");
    assert_eq!(trace.spans.len(), 2);
    assert_eq!(trace.spans[0].service, "gateway", "by start time");
    assert!(
        telemetry
            .trace(TraceId([9; 16]))
            .await
            .expect("query")
            .is_none()
    );
}

#[tokio::test]
async fn logs_are_filtered_and_followed_by_id() {
    let telemetry = Telemetry::in_memory(config()).expect("telemetry");
    let now = SystemTime::now();
    let mut logs = Vec::new();
    for (i, (service, level, body)) in [
        ("orders", Level::Info, "order 1 placed"),
        ("orders", Level::Error, "order 2 failed: 50% off_code"),
        ("billing", Level::Warn, "ledger slow"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut record = LogRecord::line(service, Some("i-1"), level, body);
        record.time = now + Duration::from_millis(i as u64);
        record.trace_id = (i == 1).then_some(TraceId([5; 16]));
        logs.push(record);
    }
    telemetry.ingest_logs(logs).await.expect("ingest");
    let query = |q: LogQuery| {
        let telemetry = telemetry.clone();
        async move {
            telemetry
                .logs(LogQuery { limit: 100, ..q })
                .await
                .expect("logs")
                .into_iter()
                .map(|l| l.body)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        query(LogQuery::default()).await,
        [
            "order 1 placed",
            "order 2 failed: 50% off_code",
            "ledger slow"
        ],
        "oldest first"
    );
    assert_eq!(
        query(LogQuery {
            service: Some("orders".into()),
            min_level: Some(Level::Warn),
            ..Default::default()
        })
        .await,
        ["order 2 failed: 50% off_code"]
    );
    assert_eq!(
        query(LogQuery {
            text: Some("50% OFF_".into()),
            ..Default::default()
        })
        .await
        .len(),
        1,
        "case-insensitive, wildcards literal"
    );
    assert_eq!(
        query(LogQuery {
            text: Some("5_%".into()),
            ..Default::default()
        })
        .await
        .len(),
        0
    );
    assert_eq!(
        query(LogQuery {
            trace_id: Some(TraceId([5; 16])),
            ..Default::default()
        })
        .await
        .len(),
        1
    );
    let newest_two = telemetry
        .logs(LogQuery {
            limit: 2,
            ..Default::default()
        })
        .await
        .expect("logs");
    assert_eq!(newest_two[1].body, "ledger slow");
    let mut watch = telemetry.watch_logs();
    let last = *watch.borrow_and_update();
    assert_eq!(last, newest_two[1].id);
    let sink = telemetry.log_sink();
    let _tasks = telemetry.start();
    assert!(sink.send(LogRecord::line(
        "orders",
        None,
        Level::Info,
        "from the supervisor"
    )));
    tokio::time::timeout(Duration::from_secs(5), watch.changed())
        .await
        .expect("a new record in time")
        .expect("watch");
    let after = query(LogQuery {
        after_id: Some(last),
        ..Default::default()
    })
    .await;
    assert_eq!(after, ["from the supervisor"]);
}

#[tokio::test]
async fn retention_deletes_by_age_with_an_injected_clock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let clock = ManualClock::new(start);
    let telemetry = Telemetry::with_clock(
        Some(dir.path()),
        TelemetryConfig {
            retention: Duration::from_secs(3600),
            ..config()
        },
        Arc::new(clock.clone()),
    )
    .expect("telemetry");
    telemetry
        .ingest_spans(three_traces(start))
        .await
        .expect("ingest");
    let mut old_log = LogRecord::line("orders", None, Level::Info, "old");
    old_log.time = start;
    telemetry.ingest_logs(vec![old_log]).await.expect("ingest");
    clock.advance(Duration::from_secs(1800));
    let later = clock.now();
    telemetry
        .ingest_spans(vec![span(
            7,
            1,
            None,
            "orders",
            later,
            1,
            SpanStatus::Unset,
        )])
        .await
        .expect("ingest");
    let (by_age, _) = telemetry.run_retention().await.expect("retention");
    assert_eq!(by_age.spans, 0, "nothing is an hour old yet");
    // Now every span of the first three traces (the last started 2 s in) is past it.
    clock.advance(Duration::from_secs(1805));
    let (by_age, by_size) = telemetry.run_retention().await.expect("retention");
    assert_eq!((by_age.spans, by_age.logs), (5, 1));
    assert_eq!(by_size.spans, 0);
    assert_eq!(telemetry.metrics().deleted(Signal::Traces, "age"), 5);
    let left = telemetry
        .traces(TraceQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("search");
    assert_eq!(ids(&left), ["07"]);
    assert!(
        telemetry
            .trace(TraceId([1; 16]))
            .await
            .expect("query")
            .is_none()
    );
}

#[tokio::test]
async fn retention_keeps_the_store_under_its_size_oldest_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let max_size = 2 * 1024 * 1024;
    let telemetry = Telemetry::open(
        dir.path(),
        TelemetryConfig {
            max_size,
            ..config()
        },
    )
    .expect("telemetry");
    let base = SystemTime::now() - Duration::from_secs(600);
    let padding = "p".repeat(1_000);
    for batch in 0..40u64 {
        let spans: Vec<SpanRecord> = (0..100u64)
            .map(|i| {
                let n = batch * 100 + i;
                let mut record = span(
                    0,
                    1,
                    None,
                    "orders",
                    base + Duration::from_millis(n * 10),
                    1,
                    SpanStatus::Unset,
                );
                record.trace_id = TraceId((u128::from(n) + 1).to_be_bytes());
                record
                    .attributes
                    .insert("padding".into(), padding.clone().into());
                record
            })
            .collect();
        telemetry.ingest_spans(spans).await.expect("ingest");
    }
    let before = telemetry.store_size().await.expect("size").used;
    assert!(
        before > max_size,
        "the test fills more than the limit: {before}"
    );
    let (_, by_size) = telemetry.run_retention().await.expect("retention");
    assert!(by_size.spans > 0);
    let after = telemetry.store_size().await.expect("size");
    assert!(after.used <= max_size, "{} > {max_size}", after.used);
    assert!(
        after.file <= before,
        "free pages went back to the file system"
    );
    assert_eq!(telemetry.metrics().store_bytes() as u64, after.used);
    // The newest survive, the oldest went.
    let newest = TraceId(4_000u128.to_be_bytes());
    let oldest = TraceId(1u128.to_be_bytes());
    assert!(telemetry.trace(newest).await.expect("query").is_some());
    assert!(telemetry.trace(oldest).await.expect("query").is_none());
}

#[tokio::test]
async fn a_restart_keeps_spans_and_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = SystemTime::now();
    {
        let telemetry = Telemetry::open(dir.path(), config()).expect("telemetry");
        telemetry
            .ingest_spans(three_traces(now))
            .await
            .expect("ingest");
        telemetry
            .ingest_logs(vec![LogRecord::line("orders", None, Level::Info, "kept")])
            .await
            .expect("ingest");
    }
    let telemetry = Telemetry::open(dir.path(), config()).expect("reopen");
    assert!(telemetry.open_report().damaged.is_none());
    let trace = telemetry.trace(TraceId([2; 16])).await.expect("query");
    assert_eq!(trace.map(|t| t.spans.len()), Some(2));
    let logs = telemetry
        .logs(LogQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("logs");
    assert_eq!(logs.len(), 1);
    assert_eq!(
        *telemetry.watch_logs().borrow(),
        logs[0].id,
        "follow resumes after the last"
    );
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_moved_aside() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(DB_FILE), vec![0x5a; 64 * 1024]).expect("garbage");
    let telemetry = Telemetry::open(dir.path(), config()).expect("starts fresh");
    let damaged = telemetry.open_report().damaged.clone().expect("reported");
    assert!(damaged.moved_to.exists(), "{}", damaged.moved_to.display());
    assert!(
        damaged
            .moved_to
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("telemetry.db.damaged-")),
        "{}",
        damaged.moved_to.display()
    );
    assert_eq!(
        std::fs::read(&damaged.moved_to).expect("kept").len(),
        64 * 1024
    );
    telemetry
        .ingest_spans(three_traces(SystemTime::now()))
        .await
        .expect("the fresh store works");
}

#[tokio::test]
async fn a_damaged_page_keeps_what_can_be_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let telemetry = Telemetry::open(dir.path(), config()).expect("telemetry");
        telemetry
            .ingest_spans(three_traces(SystemTime::now()))
            .await
            .expect("ingest");
        let logs: Vec<LogRecord> = (0..2_000)
            .map(|i| {
                LogRecord::line(
                    "orders",
                    None,
                    Level::Info,
                    &format!("line {i} {}", "x".repeat(200)),
                )
            })
            .collect();
        telemetry.ingest_logs(logs).await.expect("ingest");
    }
    // Checkpoint the write-ahead log into the file, then scribble over pages deep in it
    // (the logs table), leaving the header and schema intact.
    {
        let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).expect("open");
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .expect("checkpoint");
    }
    let path = dir.path().join(DB_FILE);
    let mut bytes = std::fs::read(&path).expect("read");
    let len = bytes.len();
    assert!(len > 200 * 1024, "a file of many pages: {len}");
    for byte in &mut bytes[len - 100 * 1024..len - 40 * 1024] {
        *byte = 0xff;
    }
    std::fs::write(&path, bytes).expect("write");

    let telemetry = Telemetry::open(dir.path(), config()).expect("starts");
    let damaged = telemetry
        .open_report()
        .damaged
        .clone()
        .expect("the damage is reported");
    assert!(damaged.moved_to.exists());
    assert!(!damaged.error.is_empty());
    // The spans were in early pages and are salvaged; the new store works.
    assert_eq!(damaged.salvaged_spans, 5, "{damaged:?}");
    let trace = telemetry.trace(TraceId([2; 16])).await.expect("query");
    assert_eq!(trace.map(|t| t.spans.len()), Some(2));
    let summaries = telemetry
        .traces(TraceQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("rebuilt summaries");
    assert_eq!(summaries.len(), 3);
}

#[tokio::test]
async fn sampling_keeps_errors_and_whole_traces() {
    let telemetry = Telemetry::in_memory(TelemetryConfig {
        sampling: SamplingConfig {
            per_service: None,
            share: 0.0,
        },
        ..TelemetryConfig::default()
    })
    .expect("telemetry");
    let now = SystemTime::now();
    telemetry
        .ingest_spans(three_traces(now))
        .await
        .expect("ingest");
    let kept = telemetry
        .traces(TraceQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("search");
    assert_eq!(ids(&kept), ["02"], "only the trace with an error");
    let trace = telemetry
        .trace(TraceId([2; 16]))
        .await
        .expect("query")
        .expect("kept");
    assert_eq!(trace.spans.len(), 2, "with its healthy root");
    assert_eq!(telemetry.metrics().sampled("kept_error"), 1);
    assert_eq!(telemetry.metrics().sampled("dropped"), 2);
    assert_eq!(
        telemetry.metrics().dropped(Signal::Traces, "sampled_out"),
        3
    );
}
