//! The operations `conway up` serves beside the control plane's API, where the
//! supervisor runs in the same process: deploys (`GET|POST
//! /v1/services/{name}/deploy`, through the [`Deploy`] trait), `POST /v1/apply`, chaos
//! kills (`POST /v1/chaos/kill`, `GET /v1/chaos/jobs`, `DELETE /v1/chaos/jobs/{id}`)
//! and what they did (`GET /v1/events`). Until the supervisor exists they answer 503;
//! errors have the API's shape, `{"error": {"code", "message"}}`.

use std::sync::{Arc, OnceLock};

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use conway_core::Manifest;
use conway_core::api::{ApplyRequest, ChaosKillRequest, DeployRequest, ErrorBody, ErrorDetail};
use conway_registry::registry::Registry;
use conway_supervisor::history::History;
use conway_supervisor::{ChaosError, ChaosJobs, Deploy, DeployError, Launcher, Supervisor};

use super::apply::{Applier, ApplyError};

/// What the routes need, once it exists (they are served before).
#[derive(Default)]
pub(super) struct Slot(OnceLock<Parts>);

pub(super) struct Parts {
    pub(super) deploy: Arc<dyn Deploy>,
    pub(super) chaos: Arc<ChaosJobs>,
    pub(super) history: Arc<History>,
    pub(super) applier: Arc<Applier>,
}

impl Parts {
    /// The operations of `supervisor`, applying manifests over `manifest` (whose
    /// folder is `manifest_dir`) with `launcher` for builds.
    pub(super) fn new(
        supervisor: &Supervisor,
        registry: Registry,
        manifest: &Manifest,
        manifest_dir: &std::path::Path,
        launcher: Launcher,
    ) -> Self {
        Self {
            deploy: Arc::new(supervisor.clone()),
            chaos: Arc::new(ChaosJobs::new(supervisor.clone())),
            history: supervisor.history(),
            applier: Arc::new(Applier {
                supervisor: supervisor.clone(),
                registry,
                manifest_dir: manifest_dir.to_owned(),
                launcher,
                manifest: tokio::sync::Mutex::new(manifest.clone()),
            }),
        }
    }
}

impl Slot {
    pub(super) fn set(&self, parts: Parts) {
        let _ = self.0.set(parts);
    }
}

/// The routes over `slot`; other paths fall through to what the caller adds.
pub(super) fn router(slot: Arc<Slot>) -> Router {
    Router::new()
        .route("/v1/services/{name}/deploy", get(deployment).post(deploy))
        .route("/v1/apply", post(apply))
        .route("/v1/chaos/kill", post(chaos_kill))
        .route("/v1/chaos/jobs", get(chaos_jobs))
        .route("/v1/chaos/jobs/{id}", delete(chaos_stop))
        .route("/v1/events", get(events))
        .with_state(slot)
}

type Answer = Result<Response, Refused>;

fn parts(slot: &Slot) -> Result<&Parts, Refused> {
    slot.0.get().ok_or_else(|| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the supervisor is starting; try again".to_owned(),
        )
    })
}

fn body<T>(body: Result<Json<T>, JsonRejection>, expected: &str) -> Result<T, Refused> {
    body.map(|Json(request)| request).map_err(|rejection| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("{}; expected {expected}", rejection.body_text()),
        )
    })
}

async fn deploy(
    State(slot): State<Arc<Slot>>,
    Path(name): Path<String>,
    request: Result<Json<DeployRequest>, JsonRejection>,
) -> Answer {
    let parts = parts(&slot)?;
    let request = body(
        request,
        r#"{"version": "V", "canary": PERCENT} or {"promote": true} or {"rollback": true}"#,
    )?;
    let deployment = parts.deploy.deploy(&name, request).map_err(deploy_error)?;
    Ok((StatusCode::ACCEPTED, Json(deployment)).into_response())
}

async fn deployment(State(slot): State<Arc<Slot>>, Path(name): Path<String>) -> Answer {
    let parts = parts(&slot)?;
    let deployment = parts.deploy.deployment(&name).map_err(deploy_error)?;
    Ok(Json(deployment).into_response())
}

fn deploy_error(failure: DeployError) -> Refused {
    let (status, code) = match failure {
        DeployError::Unknown(_) | DeployError::NoDeploy(_) => (StatusCode::NOT_FOUND, "not_found"),
        DeployError::External(_) | DeployError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        DeployError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
        DeployError::Stopping => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    };
    error(status, code, failure.to_string())
}

async fn apply(
    State(slot): State<Arc<Slot>>,
    request: Result<Json<ApplyRequest>, JsonRejection>,
) -> Answer {
    let parts = parts(&slot)?;
    let request = body(
        request,
        r#"{"manifest": "TOML text", "path": "conway.toml"}"#,
    )?;
    let file = request.path.as_deref().unwrap_or("conway.toml");
    match parts.applier.apply(&request.manifest, file).await {
        Ok(applied) => Ok(Json(applied).into_response()),
        Err(ApplyError::Invalid(lines)) => Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_manifest",
            lines.trim_end().to_owned(),
        )),
        Err(ApplyError::Build(message)) => Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "build_failed",
            message,
        )),
        Err(ApplyError::Registry(message)) => Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            message,
        )),
    }
}

async fn chaos_kill(
    State(slot): State<Arc<Slot>>,
    request: Result<Json<ChaosKillRequest>, JsonRejection>,
) -> Answer {
    let parts = parts(&slot)?;
    let request = body(
        request,
        r#"{"service": "S", "instance": "S-1", "every": "10s", "for": "2m"}"#,
    )?;
    let job = parts.chaos.start(request).map_err(chaos_error)?;
    Ok((StatusCode::CREATED, Json(job)).into_response())
}

async fn chaos_jobs(State(slot): State<Arc<Slot>>) -> Answer {
    let parts = parts(&slot)?;
    Ok(Json(parts.chaos.jobs()).into_response())
}

async fn chaos_stop(State(slot): State<Arc<Slot>>, Path(id): Path<String>) -> Answer {
    let parts = parts(&slot)?;
    let mut stopped = parts.chaos.stop(Some(&id)).map_err(chaos_error)?;
    Ok(Json(stopped.remove(0)).into_response())
}

fn chaos_error(failure: ChaosError) -> Refused {
    let (status, code) = match failure {
        ChaosError::Unknown(_) | ChaosError::NoInstance(_) | ChaosError::NoJob(_) => {
            (StatusCode::NOT_FOUND, "not_found")
        }
        ChaosError::NotRunning(..) | ChaosError::NothingToKill(_) => {
            (StatusCode::CONFLICT, "conflict")
        }
        ChaosError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
    };
    error(status, code, failure.to_string())
}

async fn events(State(slot): State<Arc<Slot>>) -> Answer {
    let parts = parts(&slot)?;
    Ok(Json(parts.history.events()).into_response())
}

/// A refused request: its status, code and message.
struct Refused {
    status: StatusCode,
    code: &'static str,
    message: String,
}

fn error(status: StatusCode, code: &'static str, message: String) -> Refused {
    Refused {
        status,
        code,
        message,
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}
