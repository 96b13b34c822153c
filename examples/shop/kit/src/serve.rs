//! Serving a service: its `main` (environment, telemetry, exit code), its router's
//! `GET /health`, a span and a log line per request, the listener on loopback at `PORT`,
//! and a graceful stop on SIGTERM or Ctrl-C.

use std::error::Error;
use std::process::ExitCode;

use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;

use crate::{Config, telemetry};

/// A service's whole `main`: reads the environment ([`Config::from_env`] for
/// `service`), starts telemetry, runs `run`, flushes telemetry, and turns the result
/// into the exit code, an error logged as `SERVICE stopped`.
pub async fn main(
    service: &str,
    run: impl AsyncFnOnce(&Config) -> Result<(), Box<dyn Error>>,
) -> ExitCode {
    let config = Config::from_env(service);
    let telemetry = telemetry::init(&config);
    let result = run(&config).await;
    telemetry.shutdown().await;
    exit_code(service, result)
}

fn exit_code(service: &str, result: Result<(), Box<dyn Error>>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "{service} stopped");
            ExitCode::FAILURE
        }
    }
}

/// `app` with `GET /health` and the per-request span and access log.
pub fn app(app: Router, config: &Config) -> Router {
    let health = serde_json::json!({
        "status": "ok",
        "service": config.service,
        "instance": config.instance,
    });
    app.route("/health", get(move || async move { Json(health) }))
        .layer(axum::middleware::from_fn(telemetry::observe))
}

/// Binds `127.0.0.1:PORT`.
pub async fn bind(config: &Config) -> std::io::Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", config.port)).await
}

/// Serves `app` on `listener` until SIGTERM or Ctrl-C, letting requests in flight end.
pub async fn run(listener: TcpListener, app: Router, config: &Config) -> std::io::Result<()> {
    let address = listener.local_addr()?;
    tracing::info!(
        service = %config.service,
        instance = %config.instance,
        address = %address,
        data_dir = %config.data_dir.display(),
        "listening"
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(stopped())
        .await?;
    tracing::info!(service = %config.service, instance = %config.instance, "stopped");
    Ok(())
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn stopped() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_that_stops_with_an_error_exits_with_failure() {
        assert_eq!(exit_code("catalog", Ok(())), ExitCode::SUCCESS);
        let error = std::io::Error::other("the store is gone");
        assert_eq!(exit_code("catalog", Err(error.into())), ExitCode::FAILURE);
    }
}
