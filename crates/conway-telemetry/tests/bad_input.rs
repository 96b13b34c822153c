//! Property tests over the receiver's parsers (the fuzzing of outside input): whatever
//! the bytes, in either encoding and for every signal, the receiver answers 200 or 400
//! and never panics; a valid request with bytes flipped is still answered.

use bytes::Bytes;
use conway_telemetry::otlp::{logs_request, traces_request};
use conway_telemetry::{
    Level, LogRecord, SamplingConfig, Signal, SpanId, SpanKind, SpanRecord, SpanStatus, Telemetry,
    TelemetryConfig, TraceId,
};
use proptest::prelude::*;
use prost::Message;

fn telemetry() -> Telemetry {
    Telemetry::in_memory(TelemetryConfig {
        sampling: SamplingConfig::keep_all(),
        ..TelemetryConfig::default()
    })
    .expect("telemetry")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

const SIGNALS: [Signal; 3] = [Signal::Traces, Signal::Logs, Signal::Metrics];
const TYPES: [&str; 2] = ["application/x-protobuf", "application/json"];

fn valid_bodies() -> Vec<(Signal, Vec<u8>)> {
    let span = SpanRecord {
        trace_id: TraceId([7; 16]),
        span_id: SpanId([1; 8]),
        parent_span_id: Some(SpanId([2; 8])),
        service: "orders".into(),
        operation: "GET /".into(),
        kind: SpanKind::Server,
        start: std::time::SystemTime::now(),
        duration: std::time::Duration::from_millis(3),
        status: SpanStatus::Error,
        status_message: Some("x".into()),
        attributes: serde_json::json!({"a": [1, {"b": "c"}], "d": 1.5})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    };
    let log = LogRecord::line("orders", Some("i-1"), Level::Warn, "hello");
    vec![
        (Signal::Traces, traces_request(&[span]).encode_to_vec()),
        (Signal::Logs, logs_request(&[log]).encode_to_vec()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_bytes_are_answered_200_or_400(
        body in proptest::collection::vec(any::<u8>(), 0..512),
        signal in 0..3usize,
        content_type in 0..2usize,
    ) {
        let telemetry = telemetry();
        let response = runtime().block_on(telemetry.receive(
            SIGNALS[signal],
            Some(TYPES[content_type]),
            None,
            Bytes::from(body),
        ));
        prop_assert!(matches!(response.status, 200 | 400), "{}", response.status);
    }

    #[test]
    fn json_shaped_garbage_is_answered_200_or_400(
        text in r#"\{("resource(Spans|Logs|Metrics)": ?\[(\{("scope(Spans|Logs|Metrics)"|"resource"|"spans"|"logRecords"|"traceId"|"x"): ?(\[\]|\{\}|"[0-9a-f]{0,34}"|[0-9]{1,20}|null)\}|,)*\])?\}"#,
        signal in 0..3usize,
    ) {
        let telemetry = telemetry();
        let response = runtime().block_on(telemetry.receive(
            SIGNALS[signal],
            Some("application/json"),
            None,
            Bytes::from(text),
        ));
        prop_assert!(matches!(response.status, 200 | 400), "{}", response.status);
    }

    #[test]
    fn flipped_bytes_in_valid_protobuf_are_answered(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        which in 0..2usize,
    ) {
        let (signal, mut body) = valid_bodies().swap_remove(which);
        for (at, value) in flips {
            let len = body.len();
            body[at % len] ^= value | 1;
        }
        let telemetry = telemetry();
        let response = runtime().block_on(telemetry.receive(
            signal,
            Some("application/x-protobuf"),
            None,
            Bytes::from(body),
        ));
        prop_assert!(matches!(response.status, 200 | 400), "{}", response.status);
    }
}

#[test]
fn the_valid_bodies_are_accepted_whole() {
    let runtime = runtime();
    for (signal, body) in valid_bodies() {
        let telemetry = telemetry();
        let response = runtime.block_on(telemetry.receive(
            signal,
            Some("application/x-protobuf"),
            None,
            Bytes::from(body),
        ));
        assert_eq!(
            (response.status, response.body.len()),
            (200, 0),
            "{signal:?}"
        );
        assert_eq!(telemetry.metrics().received(signal), 1);
    }
}
