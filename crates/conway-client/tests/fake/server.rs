//! A scripted stand-in for the control plane: each watch request takes the next answer
//! from a queue, so tests can break, compact and resume watches at will.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use conway_core::api::{CheckedBy, ConfigSnapshot, Instance, InstanceState};
use conway_core::manifest::Service;
use futures_util::StreamExt;
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

/// How the fake answers one watch request.
pub(crate) enum Answer {
    /// An error status with an API error body.
    Status(u16, &'static str),
    /// These lines, then the end of the body.
    Lines(Vec<String>),
    /// Whatever the test sends through the channel, as it sends it; the body ends when
    /// the sender is dropped.
    Channel(mpsc::UnboundedReceiver<Bytes>),
}

/// What the fake serves, and what it saw.
#[derive(Default)]
pub(crate) struct Script {
    /// The revision `GET /v1/config` reports.
    pub(crate) revision: i64,
    /// What `GET /v1/services/orders/instances` lists.
    pub(crate) instances: Vec<Instance>,
    /// Answers to the next watch requests; when empty, a watch stays open and silent.
    pub(crate) watches: VecDeque<Answer>,
    /// The `since` of each watch request, in order.
    pub(crate) sinces: Vec<Option<i64>>,
    /// How many times the configuration was read.
    pub(crate) config_reads: usize,
}

/// A running fake.
pub(crate) struct Fake {
    pub(crate) url: String,
    pub(crate) script: Arc<Mutex<Script>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Serves `script` on a loopback port chosen by the system.
pub(crate) async fn start(script: Script) -> Fake {
    let script = Arc::new(Mutex::new(script));
    let app = axum::Router::new()
        .route("/v1/config", get(config))
        .route("/v1/services/{name}/instances", get(instances))
        .route("/v1/services", get(|| async { pending().await }))
        .route("/v1/watch", get(watch))
        .with_state(Arc::clone(&script));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("bound"));
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    Fake {
        url,
        script,
        server,
    }
}

/// An instance of `orders`.
pub(crate) fn instance(id: &str) -> Instance {
    Instance {
        id: id.to_owned(),
        service: "orders".to_owned(),
        address: "127.0.0.1".to_owned(),
        port: 9000,
        version: None,
        zone: None,
        metadata: BTreeMap::new(),
        ttl: conway_core::units::Duration::from_secs(30),
        checked_by: CheckedBy::ControlPlane,
        state: InstanceState::Healthy,
        reason: None,
        registered_at_ms: 0,
    }
}

/// The watch line of an instance's registration at `revision`.
pub(crate) fn put_line(revision: i64, id: &str) -> String {
    let value = serde_json::to_value(instance(id)).expect("serializable");
    json!({ "revision": revision, "op": "put", "kind": "instance", "key": id, "value": value })
        .to_string()
        + "\n"
}

/// A never-answering request.
async fn pending() -> StatusCode {
    std::future::pending::<()>().await;
    StatusCode::OK
}

async fn config(State(script): State<Arc<Mutex<Script>>>) -> Json<ConfigSnapshot> {
    let mut script = script.lock();
    script.config_reads += 1;
    let services = BTreeMap::from([("orders".to_owned(), Service::default())]);
    Json(ConfigSnapshot {
        revision: script.revision,
        services,
        ..Default::default()
    })
}

async fn instances(
    State(script): State<Arc<Mutex<Script>>>,
    Path(name): Path<String>,
) -> Json<Vec<Instance>> {
    let script = script.lock();
    Json(
        script
            .instances
            .iter()
            .filter(|i| i.service == name)
            .cloned()
            .collect(),
    )
}

#[derive(Deserialize)]
struct WatchQuery {
    since: Option<i64>,
}

async fn watch(
    State(script): State<Arc<Mutex<Script>>>,
    Query(query): Query<WatchQuery>,
) -> Response {
    let answer = {
        let mut script = script.lock();
        script.sinces.push(query.since);
        script.watches.pop_front()
    };
    match answer {
        Some(Answer::Status(status, code)) => {
            let status = StatusCode::from_u16(status).expect("a status");
            let body = json!({ "error": { "code": code, "message": format!("scripted {code}") } });
            (status, Json(body)).into_response()
        }
        Some(Answer::Lines(lines)) => {
            let chunks = lines
                .into_iter()
                .map(|line| Ok::<_, std::convert::Infallible>(Bytes::from(line)));
            Body::from_stream(futures_util::stream::iter(chunks)).into_response()
        }
        Some(Answer::Channel(receiver)) => {
            let chunks = futures_util::stream::unfold(receiver, |mut receiver| async move {
                receiver
                    .recv()
                    .await
                    .map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), receiver))
            });
            Body::from_stream(chunks).into_response()
        }
        None => Body::from_stream(
            futures_util::stream::pending::<Result<Bytes, std::convert::Infallible>>().boxed(),
        )
        .into_response(),
    }
}
