//! Calls to other services, only ever through the mesh.
//!
//! A call names the service, not an address: `http://inventory/reservations`. Where the
//! supervisor gave this instance a listener for that dependency
//! (`CONWAY_UPSTREAM_INVENTORY=http://127.0.0.1:PORT`), the call goes there; otherwise
//! it goes through the mesh's forward proxy from `http_proxy` (whose user and password
//! are this instance's identity), and `no_proxy` keeps local addresses direct. Each call
//! is a client span whose context goes along in `traceparent`.

use std::collections::BTreeMap;
use std::time::Duration;

use opentelemetry::trace::SpanKind;
use reqwest::{Method, NoProxy, Proxy, RequestBuilder, Response};

use crate::telemetry;

/// Where calls go.
#[derive(Debug, Clone, Default)]
pub struct MeshConfig {
    /// The mesh's forward proxy (`http://SERVICE:TOKEN@127.0.0.1:PORT`).
    pub proxy: Option<String>,
    /// Hosts reached directly (`localhost,127.0.0.1,::1`).
    pub no_proxy: Option<String>,
    /// A listener per dependency, by service name: `inventory` → `http://127.0.0.1:PORT`.
    pub upstreams: BTreeMap<String, String>,
}

impl MeshConfig {
    /// From `http_proxy`/`HTTP_PROXY`, `no_proxy`/`NO_PROXY` and `CONWAY_UPSTREAM_*`.
    pub fn from_env() -> Self {
        let first = |names: &[&str]| {
            names
                .iter()
                .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
        };
        let upstreams = std::env::vars()
            .filter_map(|(name, value)| {
                let dependency = name.strip_prefix("CONWAY_UPSTREAM_")?;
                Some((dependency.to_ascii_lowercase().replace('_', "-"), value))
            })
            .collect();
        Self {
            proxy: first(&["http_proxy", "HTTP_PROXY"]),
            no_proxy: first(&["no_proxy", "NO_PROXY"]),
            upstreams,
        }
    }
}

/// A call that got no HTTP answer: its outcome is unknown.
#[derive(Debug, thiserror::Error)]
#[error("call to {service} failed: {source}")]
pub struct MeshError {
    /// The service called.
    pub service: String,
    /// What went wrong.
    #[source]
    pub source: reqwest::Error,
}

impl MeshError {
    /// Whether the call ran out of time (rather than failing to connect or being reset).
    pub fn is_timeout(&self) -> bool {
        self.source.is_timeout()
    }
}

/// A client for calls to other services.
#[derive(Debug, Clone)]
pub struct Mesh {
    client: reqwest::Client,
    upstreams: BTreeMap<String, String>,
}

impl Mesh {
    /// A client for `config`.
    pub fn new(config: MeshConfig) -> Result<Self, reqwest::Error> {
        // The proxy is set explicitly rather than left to reqwest's reading of the
        // environment, so what a test configures is what runs.
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(1))
            .pool_idle_timeout(Duration::from_secs(30));
        if let Some(proxy) = &config.proxy {
            let no_proxy = config.no_proxy.as_deref().and_then(NoProxy::from_string);
            builder = builder.proxy(Proxy::http(proxy)?.no_proxy(no_proxy));
        }
        Ok(Self {
            client: builder.build()?,
            upstreams: config.upstreams,
        })
    }

    /// A client configured from the environment.
    pub fn from_env() -> Result<Self, reqwest::Error> {
        Self::new(MeshConfig::from_env())
    }

    /// The URL of `path` on `service`: its upstream listener's, or `http://SERVICE/PATH`.
    pub fn url(&self, service: &str, path: &str) -> String {
        match self.upstreams.get(service) {
            Some(base) => format!("{}{path}", base.trim_end_matches('/')),
            None => format!("http://{service}{path}"),
        }
    }

    /// A request to `path` on `service`; send it with [`Mesh::send`].
    pub fn request(&self, method: Method, service: &str, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(service, path))
    }

    /// Sends `request` to `service` in a client span, carrying the trace context.
    pub async fn send(
        &self,
        service: &str,
        request: RequestBuilder,
    ) -> Result<Response, MeshError> {
        let error = |source| MeshError {
            service: service.to_owned(),
            source,
        };
        let mut request = request.build().map_err(error)?;
        let cx = telemetry::start(format!("{} {service}", request.method()), SpanKind::Client);
        telemetry::inject(&cx, request.headers_mut());
        match self.client.execute(request).await {
            Ok(response) => {
                telemetry::end(&cx, Some(response.status().as_u16()), None);
                Ok(response)
            }
            Err(source) => {
                telemetry::end(&cx, None, Some(source.to_string()));
                Err(error(source))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::Router;
    use axum::extract::State;
    use axum::http::{HeaderMap, Uri};
    use axum::routing::any;
    use parking_lot::Mutex;

    use super::*;

    type Seen = Arc<Mutex<Vec<(String, HeaderMap)>>>;

    /// A stand-in for the mesh: records each request's URI and headers.
    async fn recorder() -> (String, Seen) {
        let seen: Seen = Arc::default();
        let app = Router::new()
            .fallback(any(
                |State(seen): State<Seen>, uri: Uri, headers: HeaderMap| async move {
                    seen.lock().push((uri.to_string(), headers));
                    "ok"
                },
            ))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{address}"), seen)
    }

    #[tokio::test]
    async fn calls_by_name_go_through_the_proxy_with_the_instance_identity() {
        let (mesh, seen) = recorder().await;
        let proxy = mesh.replace("http://", "http://orders:s3cret@");
        let client = Mesh::new(MeshConfig {
            proxy: Some(proxy),
            no_proxy: Some("localhost,127.0.0.1,::1".into()),
            upstreams: BTreeMap::new(),
        })
        .unwrap();
        let response = client
            .send(
                "inventory",
                client.request(Method::POST, "inventory", "/reservations"),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let seen = seen.lock();
        let (uri, headers) = &seen[0];
        // Absolute form, as a forward proxy receives it.
        assert_eq!(uri, "http://inventory/reservations");
        assert_eq!(headers["host"], "inventory");
        // Base64 of "orders:s3cret".
        assert_eq!(headers["proxy-authorization"], "Basic b3JkZXJzOnMzY3JldA==");
    }

    #[tokio::test]
    async fn an_upstream_listener_wins_and_local_addresses_skip_the_proxy() {
        let (upstream, seen) = recorder().await;
        let client = Mesh::new(MeshConfig {
            // A proxy nobody listens on: using it would fail the call.
            proxy: Some("http://orders:t@127.0.0.1:9".into()),
            no_proxy: Some("localhost,127.0.0.1,::1".into()),
            upstreams: BTreeMap::from([("payments".to_owned(), upstream.clone())]),
        })
        .unwrap();
        assert_eq!(
            client.url("payments", "/charges"),
            format!("{upstream}/charges")
        );
        assert_eq!(client.url("catalog", "/x"), "http://catalog/x");
        client
            .send(
                "payments",
                client.request(Method::GET, "payments", "/charges"),
            )
            .await
            .unwrap();
        assert_eq!(seen.lock()[0].0, "/charges");
    }

    #[tokio::test]
    async fn calls_carry_the_current_trace_as_a_child_span() {
        use opentelemetry::context::FutureExt;
        use opentelemetry::trace::TraceContextExt;

        crate::telemetry::init_tracer(&crate::Config::for_test("orders", "."));
        let (upstream, seen) = recorder().await;
        let client = Mesh::new(MeshConfig {
            upstreams: BTreeMap::from([("payments".to_owned(), upstream)]),
            ..MeshConfig::default()
        })
        .unwrap();
        let mut incoming = HeaderMap::new();
        incoming.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let parent = crate::telemetry::extract(&incoming);
        assert!(parent.span().span_context().is_valid());
        client
            .send("payments", client.request(Method::GET, "payments", "/x"))
            .with_context(parent)
            .await
            .unwrap();
        let seen = seen.lock();
        let sent = seen[0].1["traceparent"].to_str().unwrap();
        assert!(
            sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{sent}"
        );
        assert!(!sent.contains("00f067aa0ba902b7"), "a new span id: {sent}");
    }
}
