//! Logs and traces.
//!
//! Logs are JSON lines on stdout (the supervisor captures them). Spans come from the
//! OpenTelemetry SDK and go to `OTEL_EXPORTER_OTLP_ENDPOINT` over OTLP/HTTP with
//! protobuf bodies. The SDK's batch processor exports from its own thread; its HTTP
//! client here is the service's reqwest, driven on the service's Tokio runtime
//! ([`RuntimeClient`]), so neither a blocking client nor a second runtime is built.
//!
//! Every request gets a server span, child of the caller's `traceparent` when it sent
//! one; the handler runs with that span as its current context, so calls it makes
//! through [`Mesh`](crate::Mesh) carry it on.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use opentelemetry::context::FutureExt;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue, global};
use opentelemetry_http::{HeaderExtractor, HeaderInjector, HttpClient, HttpError};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;

use crate::Config;

/// The name spans are recorded under.
const TRACER: &str = "shop";

/// Keeps the tracer provider; [`Telemetry::shutdown`] flushes spans still buffered.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
}

/// Sets up JSON logs on stdout and the tracer. Call once, inside the Tokio runtime.
pub fn init(config: &Config) -> Telemetry {
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // `try_init`: tests may set up more than one service in one process.
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .try_init();
    init_tracer(config)
}

/// The tracer alone: spans (and trace ids for logs) even when nothing exports them.
pub fn init_tracer(config: &Config) -> Telemetry {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let provider = provider(config);
    global::set_tracer_provider(provider.clone());
    Telemetry { provider }
}

/// A tracer provider exporting to the configured OTLP endpoint, if any.
fn provider(config: &Config) -> SdkTracerProvider {
    let resource = Resource::builder()
        .with_service_name(config.service.clone())
        .with_attribute(KeyValue::new(
            "service.instance.id",
            config.instance.clone(),
        ))
        .build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    if let Some(endpoint) = &config.otlp_endpoint {
        match exporter(endpoint) {
            Ok(exporter) => builder = builder.with_batch_exporter(exporter),
            Err(error) => tracing::warn!(%error, endpoint, "spans will not be exported"),
        }
    }
    builder.build()
}

fn exporter(
    endpoint: &str,
) -> Result<opentelemetry_otlp::SpanExporter, Box<dyn std::error::Error>> {
    let client = reqwest::Client::builder()
        // The receiver is local: never through the mesh, whatever `no_proxy` says.
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()?;
    let client = RuntimeClient {
        client,
        runtime: tokio::runtime::Handle::try_current()?,
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .build()?;
    Ok(exporter)
}

impl Telemetry {
    /// Flushes and stops the exporter. Blocks: runs on a blocking thread, so the
    /// runtime stays free to drive the last export.
    pub async fn shutdown(self) {
        let provider = self.provider;
        let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
    }
}

/// The OTLP exporter's HTTP client: reqwest, run on the service's Tokio runtime even
/// though the SDK's batch thread, which has no runtime, calls it.
#[derive(Debug)]
struct RuntimeClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for RuntimeClient {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let task = self.runtime.spawn(async move {
            let response = client.execute(reqwest::Request::try_from(request)?).await?;
            let status = response.status();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        });
        let (status, body) = task.await??;
        Ok(http::Response::builder().status(status).body(body)?)
    }
}

/// The trace context a request carries (`traceparent`), or none.
pub fn extract(headers: &http::HeaderMap) -> Context {
    global::get_text_map_propagator(|propagator| propagator.extract(&HeaderExtractor(headers)))
}

/// Writes the current context's `traceparent` into `headers`.
pub fn inject(cx: &Context, headers: &mut http::HeaderMap) {
    global::get_text_map_propagator(|propagator| {
        propagator.inject_context(cx, &mut HeaderInjector(headers));
    });
}

/// The current trace id in hex, for log lines.
pub fn trace_id() -> String {
    let cx = Context::current();
    let span = cx.span();
    let context = span.span_context();
    if context.is_valid() {
        context.trace_id().to_string()
    } else {
        String::new()
    }
}

/// Starts a span of `kind` as a child of the current context.
pub fn start(name: impl Into<std::borrow::Cow<'static, str>>, kind: SpanKind) -> Context {
    let tracer = global::tracer(TRACER);
    let parent = Context::current();
    let span = tracer
        .span_builder(name)
        .with_kind(kind)
        .start_with_context(&tracer, &parent);
    parent.with_span(span)
}

/// Marks the span of `cx` with an HTTP status, as an error from 500 on, and ends it.
pub fn end(cx: &Context, status: Option<u16>, error: Option<String>) {
    let span = cx.span();
    if let Some(status) = status {
        span.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
    }
    match error {
        Some(error) => span.set_status(Status::error(error)),
        None if status.is_some_and(|status| status >= 500) => {
            span.set_status(Status::error("server error"));
        }
        None => {}
    }
    span.end();
}

/// Middleware: a server span per request (child of its `traceparent`), the handler run
/// inside it, and one access-log line (but for health checks).
pub async fn observe(request: Request, next: Next) -> Response {
    let parent = extract(request.headers());
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || request.uri().path().to_owned(),
        |path| path.as_str().to_owned(),
    );
    let path = request.uri().path().to_owned();
    let tracer = global::tracer(TRACER);
    let span = tracer
        .span_builder(format!("{method} {route}"))
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("http.request.method", method.to_string()),
            KeyValue::new("http.route", route.clone()),
            KeyValue::new("url.path", path.clone()),
        ])
        .start_with_context(&tracer, &parent);
    let cx = parent.with_span(span);
    let trace_id = cx.span().span_context().trace_id().to_string();
    let started = Instant::now();
    let response = next.run(request).with_context(cx.clone()).await;
    let status = response.status().as_u16();
    end(&cx, Some(status), None);
    if path != "/health" {
        tracing::info!(
            method = %method,
            path = %path,
            status,
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            trace_id = %trace_id,
            "request"
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::HeaderMap;
    use axum::routing::post;
    use opentelemetry::trace::{Span as _, TracerProvider};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue;
    use parking_lot::Mutex;
    use prost::Message;

    use super::*;

    type Received = Arc<Mutex<Vec<(String, Bytes)>>>;

    #[tokio::test]
    async fn spans_reach_the_otlp_endpoint_as_protobuf() {
        let received: Received = Arc::default();
        let receiver = Router::new()
            .route(
                "/v1/traces",
                post(
                    |State(r): State<Received>, headers: HeaderMap, body: Bytes| async move {
                        let kind = headers["content-type"]
                            .to_str()
                            .unwrap_or_default()
                            .to_owned();
                        r.lock().push((kind, body));
                        ""
                    },
                ),
            )
            .with_state(received.clone());
        let endpoint = crate::testing::spawn(receiver).await;
        let config = Config {
            otlp_endpoint: Some(endpoint),
            ..Config::for_test("catalog", ".")
        };
        let provider = provider(&config);
        provider
            .tracer("test")
            .start("GET /api/catalog/products")
            .end();
        Telemetry { provider }.shutdown().await;

        let received = received.lock();
        assert_eq!(received.len(), 1);
        let (kind, body) = &received[0];
        assert_eq!(kind, "application/x-protobuf");
        let request = ExportTraceServiceRequest::decode(body.clone()).unwrap();
        let spans = &request.resource_spans[0];
        let service = spans
            .resource
            .as_ref()
            .unwrap()
            .attributes
            .iter()
            .find(|a| a.key == "service.name")
            .and_then(|a| a.value.as_ref()?.value.clone());
        assert_eq!(service, Some(StringValue("catalog".into())));
        assert_eq!(
            spans.scope_spans[0].spans[0].name,
            "GET /api/catalog/products"
        );
    }
}
