//! `conway server`: the control plane alone.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use conway_core::api::ReadyLine;
use conway_core::{LoadError, load_file};
use conway_registry::registry::Registry;
use conway_registry::store::EmbeddedStore;
use conway_server::ServerOptions;
use conway_telemetry::{Telemetry, TelemetryConfig};
use tokio::net::TcpListener;

use crate::exit::Outcome;
use crate::signals::shutdown_signal;

/// The control plane's default address.
const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 7700);

/// The OTLP/HTTP receiver's default address.
const DEFAULT_OTLP_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 4318);

pub(crate) struct ServerArgs {
    pub(crate) manifest: Option<PathBuf>,
    pub(crate) listen: Option<SocketAddr>,
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) in_memory: bool,
    pub(crate) require_token: bool,
    pub(crate) otlp_listen: Option<SocketAddr>,
}

pub(crate) async fn run(args: ServerArgs) -> anyhow::Result<Outcome> {
    let listen = args.listen.unwrap_or(DEFAULT_LISTEN);
    let admin_token = admin_token(listen, args.require_token)?;
    let manifest = match &args.manifest {
        Some(path) => match load_file(path) {
            Ok(mut loaded) => {
                eprint!("{}", loaded.warnings.render(&path.display().to_string()));
                let folder = std::path::absolute(path)
                    .ok()
                    .and_then(|p| p.parent().map(Path::to_path_buf));
                loaded
                    .manifest
                    .resolve_key_files(&folder.unwrap_or_default());
                Some(loaded.manifest)
            }
            Err(LoadError::Invalid { diagnostics, .. }) => {
                eprint!("{}", diagnostics.render(&path.display().to_string()));
                return Ok(Outcome::Failed);
            }
            Err(error) => return Err(error.into()),
        },
        None => None,
    };
    let data_dir = data_dir(args.data_dir, args.manifest.as_deref());
    let store = if args.in_memory {
        EmbeddedStore::in_memory()
            .await
            .context("cannot open an in-memory registry")?
    } else {
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("cannot create the data folder {}", data_dir.display()))?;
        EmbeddedStore::open(data_dir.join("registry"))
            .await
            .with_context(|| format!("cannot open the registry in {}", data_dir.display()))?
    };
    let registry = Registry::new(Arc::new(store));
    if let Some(manifest) = &manifest {
        registry
            .load_manifest(manifest)
            .await
            .context("cannot load the manifest into the registry")?;
    }
    let telemetry_config = manifest
        .as_ref()
        .map_or_else(TelemetryConfig::default, |m| {
            TelemetryConfig::from_manifest(&m.telemetry)
        });
    let telemetry = open_telemetry(args.in_memory, &data_dir, telemetry_config).await?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    let otlp_listener = bind_otlp(args.otlp_listen).await?;
    let otlp_address = otlp_listener
        .as_ref()
        .map(TcpListener::local_addr)
        .transpose()?;
    let checks = conway_server::spawn_health_checks(registry.clone());
    let router = conway_server::router(
        registry,
        &ServerOptions {
            admin_token,
            telemetry: Some(telemetry.clone()),
            ..ServerOptions::default()
        },
    );
    let telemetry_tasks = telemetry.start();
    let (stop_otlp, otlp_stopped) = tokio::sync::oneshot::channel::<()>();
    let otlp = otlp_listener.map(|listener| {
        let router = conway_server::otlp_router(telemetry.clone());
        tokio::spawn(conway_server::serve(listener, router, async move {
            let _ = otlp_stopped.await;
        }))
    });
    let ready = ReadyLine {
        ready: true,
        control_plane: Some(format!("http://{address}")),
        otlp: otlp_address.map(|a| format!("http://{a}")),
        ..Default::default()
    };
    println!("{}", serde_json::to_string(&ready)?);
    tracing::info!(%address, data_dir = %data_dir.display(), "control plane ready");
    conway_server::serve(listener, router, shutdown_signal()).await?;
    let _ = stop_otlp.send(());
    if let Some(otlp) = otlp {
        let _ = otlp.await;
    }
    drop(telemetry_tasks);
    checks.abort();
    tracing::info!("control plane stopped");
    Ok(Outcome::Success)
}

/// The admin token from `CONWAY_ADMIN_TOKEN`: required beyond loopback and with
/// `--require-token`.
fn admin_token(listen: SocketAddr, require: bool) -> anyhow::Result<Option<String>> {
    let token = std::env::var(conway_client::TOKEN_ENV)
        .ok()
        .filter(|t| !t.is_empty());
    let needed = require || !listen.ip().is_loopback();
    match (needed, token) {
        (true, None) => bail!(
            "{} needs an admin token: set {} to a long random secret (e.g. `export {}=$(openssl rand -hex 32)`) for the server and every client",
            if require {
                "--require-token".to_owned()
            } else {
                format!("listening on {listen}, beyond loopback,")
            },
            conway_client::TOKEN_ENV,
            conway_client::TOKEN_ENV
        ),
        (_, Some(token)) if token.len() < 16 => bail!(
            "{} must be at least 16 characters",
            conway_client::TOKEN_ENV
        ),
        (_, token) => Ok(token),
    }
}

/// Opens the telemetry store in `DATA_DIR/telemetry` (or in memory), reporting a
/// damaged store that had to be moved aside.
pub(crate) async fn open_telemetry(
    in_memory: bool,
    data_dir: &Path,
    config: TelemetryConfig,
) -> anyhow::Result<Telemetry> {
    if in_memory {
        return Telemetry::in_memory(config).context("cannot open an in-memory telemetry store");
    }
    let dir = data_dir.join("telemetry");
    let shown = dir.display().to_string();
    let telemetry = tokio::task::spawn_blocking(move || Telemetry::open(&dir, config))
        .await?
        .with_context(|| format!("cannot open the telemetry store in {shown}"))?;
    if let Some(damaged) = &telemetry.open_report().damaged {
        eprintln!(
            "warning: the telemetry store in {shown} was damaged ({}); it was moved to {} and a fresh one started, keeping {} spans and {} log records that could still be read",
            damaged.error,
            damaged.moved_to.display(),
            damaged.salvaged_spans,
            damaged.salvaged_logs,
        );
    }
    Ok(telemetry)
}

/// Binds the OTLP receiver: `--otlp-listen`, else 127.0.0.1:4318 — and, when that
/// default is taken (another control plane on this machine), none, with a warning.
pub(crate) async fn bind_otlp(flag: Option<SocketAddr>) -> anyhow::Result<Option<TcpListener>> {
    let address = flag.unwrap_or(DEFAULT_OTLP_LISTEN);
    match TcpListener::bind(address).await {
        Ok(listener) => Ok(Some(listener)),
        Err(error) if flag.is_none() && error.kind() == std::io::ErrorKind::AddrInUse => {
            eprintln!(
                "warning: {address} is in use, so this control plane has no OTLP receiver; pass --otlp-listen ADDR (port 0 picks a free one)"
            );
            Ok(None)
        }
        Err(error) => {
            Err(anyhow::Error::new(error).context(format!("cannot listen for OTLP on {address}")))
        }
    }
}

/// `--data-dir`, else `.conway/` beside the manifest, else `.conway/` here.
fn data_dir(flag: Option<PathBuf>, manifest: Option<&Path>) -> PathBuf {
    flag.unwrap_or_else(|| {
        manifest
            .and_then(Path::parent)
            .map_or_else(|| PathBuf::from(".conway"), |dir| dir.join(".conway"))
    })
}
