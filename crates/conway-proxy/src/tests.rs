//! The engine end to end on loopback sockets, without a control plane: a table built by
//! hand, the gateway listener, real upstream servers and a real client.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use conway_core::manifest::{Route, Service};
use conway_resilience::retry::RetryPolicy;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, Response};
use parking_lot::Mutex;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

use crate::balance::{BalanceOptions, Endpoint, EndpointSet};
use crate::body::ProxyBody;
use crate::gateway::Gateway;
use crate::metrics::ProxyMetrics;
use crate::proxy::Proxy;
use crate::ratelimit::RateLimits;
use crate::router::Router;
use crate::server::{Handler, serve};
use crate::table::{ServiceState, Table};
use crate::upstream::Upstreams;

/// An instance answering every request with its name, noting the client port of each
/// request (one port per connection the proxy opened).
#[derive(Debug)]
struct Instance {
    name: &'static str,
    ports: Mutex<Vec<u16>>,
    /// Each request's target as sent, and its `Host`.
    targets: Mutex<Vec<(String, String)>>,
}

impl Handler for Instance {
    async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        client: SocketAddr,
    ) -> Response<ProxyBody> {
        self.ports.lock().push(client.port());
        let host = request
            .headers()
            .get("host")
            .map(|h| h.to_str().unwrap_or("?").to_owned());
        self.targets
            .lock()
            .push((request.uri().to_string(), host.unwrap_or_default()));
        Response::new(ProxyBody::full(self.name))
    }
}

async fn instance(name: &'static str) -> (SocketAddr, Arc<Instance>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let instance = Arc::new(Instance {
        name,
        ports: Mutex::default(),
        targets: Mutex::default(),
    });
    tokio::spawn(serve(
        listener,
        instance.clone(),
        std::future::pending(),
        Duration::from_secs(1),
    ));
    (address, instance)
}

/// A loopback port nothing listens on.
fn dead_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address")
}

/// A gateway routing `/` to service `web` over `endpoints`, with `resilience` (JSON).
async fn gateway(
    endpoints: Vec<Endpoint>,
    resilience: serde_json::Value,
) -> (SocketAddr, Arc<Proxy>) {
    let config: Service =
        serde_json::from_value(json!({ "resilience": resilience })).expect("a service");
    let state = ServiceState {
        name: "web".into(),
        endpoints: EndpointSet::new(
            BalanceOptions::new(config.resilience.balancer.clone()),
            endpoints,
        ),
        retry: RetryPolicy::new(&config.resilience.retries),
        breaker: None,
        outlier: None,
        bulkhead: None,
        declared_faults: None,
        runtime_faults: None,
        faults: Default::default(),
        inflight: Default::default(),
        split: Vec::new(),
        protocol: config.protocol,
        config,
    };
    let route: Route =
        serde_json::from_value(json!({ "path": "/", "service": "web" })).expect("a route");
    let table = Table {
        listed: true,
        router: Router::new(&[route]),
        services: HashMap::from([("web".to_owned(), Arc::new(state))]),
        ..Table::default()
    };
    let proxy = Arc::new(Proxy {
        table: Arc::new(ArcSwap::from_pointee(table)),
        upstreams: Upstreams::new(),
        metrics: Arc::new(ProxyMetrics::new()),
        access_log: None,
        rate_limits: RateLimits::default(),
        https_port: None,
        exporter: None,
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(serve(
        listener,
        Arc::new(Gateway::new(proxy.clone())),
        std::future::pending(),
        Duration::from_secs(1),
    ));
    (address, proxy)
}

/// Sends `count` GETs one after another on one client connection; their statuses and
/// bodies.
async fn get_many(gateway: SocketAddr, count: usize) -> Vec<(u16, String)> {
    let stream = TcpStream::connect(gateway).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(connection);
    let mut answers = Vec::with_capacity(count);
    for _ in 0..count {
        let request = Request::get("/")
            .header("host", "shop.example")
            .body(Empty::<Bytes>::new())
            .expect("a request");
        sender.ready().await.expect("the connection to the gateway");
        let response = sender.send_request(request).await.expect("an answer");
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.expect("a body");
        answers.push((
            status,
            String::from_utf8_lossy(&body.to_bytes()).into_owned(),
        ));
    }
    answers
}

fn tries_of(proxy: &Proxy, endpoint: &str) -> Option<u64> {
    let prefix =
        format!("conway_proxy_endpoint_requests_total{{service=\"web\",endpoint=\"{endpoint}\"}} ");
    proxy.metrics.encode().lines().find_map(|line| {
        line.strip_prefix(prefix.as_str())
            .map(|n| n.parse().expect("a count"))
    })
}

/// An instance that refuses connections (its process died; the registry still lists it
/// as healthy) is left out at its first refusal: round robin would send it every other
/// request, yet after 20 requests it got exactly one try, and every client got its
/// answer from the live instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_endpoint_gets_no_second_try() {
    let (live, _instance) = instance("live").await;
    let endpoints = vec![
        Endpoint::new("dead", dead_port()),
        Endpoint::new("live", live),
    ];
    let (gateway, proxy) = gateway(endpoints, json!({ "balancer": "round-robin" })).await;

    let answers = get_many(gateway, 20).await;
    assert!(
        answers
            .iter()
            .all(|(status, body)| *status == 200 && body == "live"),
        "{answers:?}"
    );
    assert_eq!(
        tries_of(&proxy, "dead"),
        Some(1),
        "{}",
        proxy.metrics.encode()
    );
    assert_eq!(tries_of(&proxy, "live"), Some(20));
}

/// With nothing listening, the client gets a 502 that says which instance refused, and
/// why, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_answers_502_naming_the_instance() {
    let endpoints = vec![Endpoint::new("dead", dead_port())];
    let (gateway, _proxy) = gateway(endpoints, json!({})).await;

    let answers = get_many(gateway, 1).await;
    let (status, body) = &answers[0];
    assert_eq!(*status, 502, "{body}");
    let body: serde_json::Value = serde_json::from_str(body).expect("a JSON error");
    assert_eq!(body["error"]["code"], "connect_error");
    let message = body["error"]["message"].as_str().expect("a message");
    assert!(
        message.starts_with("cannot connect to web at dead: tcp connect failed: "),
        "{message}"
    );
    assert_eq!(message.matches("refused").count(), 1, "{message}");
}

/// Requests one after another reuse one upstream connection; two instances each get
/// their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_connections_are_kept_alive_and_reused() {
    let (a, instance_a) = instance("a").await;
    let (b, instance_b) = instance("b").await;
    let endpoints = vec![Endpoint::new("a", a), Endpoint::new("b", b)];
    let (gateway, _proxy) = gateway(endpoints, json!({ "balancer": "round-robin" })).await;

    let answers = get_many(gateway, 20).await;
    // Origin form, and the client's Host, as the instance would get them directly.
    assert_eq!(
        instance_a.targets.lock()[0],
        ("/".to_owned(), "shop.example".to_owned())
    );
    let served: HashSet<&str> = answers.iter().map(|(_, body)| body.as_str()).collect();
    assert_eq!(served, HashSet::from(["a", "b"]), "{answers:?}");
    for instance in [&instance_a, &instance_b] {
        let ports = instance.ports.lock();
        assert_eq!(ports.len(), 10, "round robin: {ports:?}");
        let connections: HashSet<&u16> = ports.iter().collect();
        assert_eq!(connections.len(), 1, "{}: {ports:?}", instance.name);
    }
}
