//! `POST /v1/services/{name}/scale` with `{"replicas": N}`, served beside the control
//! plane's API in `up`, where the supervisor runs in the same process. The control
//! plane does not know the supervisor; this route calls it through the
//! [`Scale`] trait. Errors have the API's shape, `{"error": {"code", "message"}}`.

use std::sync::{Arc, OnceLock};

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use conway_core::api::{ErrorBody, ErrorDetail};
use conway_supervisor::{Scale, ScaleError};
use serde::{Deserialize, Serialize};

/// The request's body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScaleRequest {
    replicas: u32,
}

/// The answer: the replicas now wanted, and before.
#[derive(Debug, Serialize)]
struct ScaleAnswer {
    service: String,
    replicas: u32,
    previous: u32,
}

/// Where the supervisor is found once it exists (the route is served before).
#[derive(Default)]
pub(super) struct Slot(OnceLock<Arc<dyn Scale>>);

impl Slot {
    pub(super) fn set(&self, scaler: Arc<dyn Scale>) {
        let _ = self.0.set(scaler);
    }
}

/// The scale route over `slot`; other paths fall through to what the caller adds.
pub(super) fn router(slot: Arc<Slot>) -> Router {
    Router::new()
        .route("/v1/services/{name}/scale", post(scale))
        .with_state(slot)
}

async fn scale(
    State(slot): State<Arc<Slot>>,
    Path(name): Path<String>,
    body: Result<Json<ScaleRequest>, JsonRejection>,
) -> Response {
    let Some(scaler) = slot.0.get() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the supervisor is starting; try again".to_owned(),
        );
    };
    let request = match body {
        Ok(Json(request)) => request,
        Err(rejection) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("{}; expected {{\"replicas\": N}}", rejection.body_text()),
            );
        }
    };
    match scaler.scale(&name, request.replicas) {
        Ok(scaled) => Json(ScaleAnswer {
            service: scaled.service,
            replicas: scaled.replicas,
            previous: scaled.previous,
        })
        .into_response(),
        Err(failure) => {
            let (status, code) = match failure {
                ScaleError::Unknown(_) => (StatusCode::NOT_FOUND, "not_found"),
                ScaleError::External(_) => (StatusCode::CONFLICT, "conflict"),
                ScaleError::TooMany(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
                ScaleError::Stopping => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            };
            error(status, code, failure.to_string())
        }
    }
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.to_owned(),
            message,
        },
    };
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use conway_supervisor::Scaled;
    use parking_lot::Mutex;
    use tower::ServiceExt;

    use super::*;

    #[derive(Default)]
    struct Fake(Mutex<Vec<(String, u32)>>);

    impl Scale for Fake {
        fn scale(&self, service: &str, replicas: u32) -> Result<Scaled, ScaleError> {
            match service {
                "orders" => {
                    self.0.lock().push((service.to_owned(), replicas));
                    Ok(Scaled {
                        service: service.to_owned(),
                        replicas,
                        previous: 1,
                    })
                }
                "billing" => Err(ScaleError::External(service.to_owned())),
                _ => Err(ScaleError::Unknown(service.to_owned())),
            }
        }
    }

    async fn post(router: Router, path: &str, body: &str) -> (StatusCode, serde_json::Value) {
        let request = Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .expect("request");
        let response = router.oneshot(request).await.expect("answer");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, serde_json::from_slice(&bytes).expect("JSON"))
    }

    #[tokio::test]
    async fn scales_and_maps_errors() {
        let fake = Arc::new(Fake::default());
        let slot = Arc::new(Slot::default());
        let app = router(slot.clone());
        let (status, body) = post(
            app.clone(),
            "/v1/services/orders/scale",
            r#"{"replicas": 3}"#,
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "no supervisor yet");
        assert_eq!(body["error"]["code"], "unavailable");
        slot.set(fake.clone());
        let (status, body) = post(
            app.clone(),
            "/v1/services/orders/scale",
            r#"{"replicas": 3}"#,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            serde_json::json!({"service": "orders", "replicas": 3, "previous": 1})
        );
        assert_eq!(*fake.0.lock(), [("orders".to_owned(), 3)]);
        let (status, body) =
            post(app.clone(), "/v1/services/nope/scale", r#"{"replicas": 1}"#).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["code"], "not_found");
        let (status, body) = post(
            app.clone(),
            "/v1/services/billing/scale",
            r#"{"replicas": 1}"#,
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("no `run` command")
        );
        for bad in [r#"{"replicas": -1}"#, r#"{"count": 1}"#, "{"] {
            let (status, body) = post(app.clone(), "/v1/services/orders/scale", bad).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
            assert_eq!(body["error"]["code"], "invalid_request", "{bad}");
        }
        assert_eq!(fake.0.lock().len(), 1, "refused requests scale nothing");
    }
}
