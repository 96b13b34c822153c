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
use tokio::net::TcpListener;

use crate::exit::Outcome;
use crate::signals::shutdown_signal;

/// The control plane's default address.
const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 7700);

pub(crate) struct ServerArgs {
    pub(crate) manifest: Option<PathBuf>,
    pub(crate) listen: Option<SocketAddr>,
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) in_memory: bool,
}

pub(crate) async fn run(args: ServerArgs) -> anyhow::Result<Outcome> {
    let listen = args.listen.unwrap_or(DEFAULT_LISTEN);
    if !listen.ip().is_loopback() {
        bail!(
            "listening on {listen} would expose the control plane beyond this machine, which needs the admin token: not yet supported in this version of conway; listen on 127.0.0.1"
        );
    }
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
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    let checks = conway_server::spawn_health_checks(registry.clone());
    let router = conway_server::router(registry, &ServerOptions::default());
    let ready = ReadyLine {
        ready: true,
        control_plane: Some(format!("http://{address}")),
        ..Default::default()
    };
    println!("{}", serde_json::to_string(&ready)?);
    tracing::info!(%address, data_dir = %data_dir.display(), "control plane ready");
    conway_server::serve(listener, router, shutdown_signal()).await?;
    checks.abort();
    tracing::info!("control plane stopped");
    Ok(Outcome::Success)
}

/// `--data-dir`, else `.conway/` beside the manifest, else `.conway/` here.
fn data_dir(flag: Option<PathBuf>, manifest: Option<&Path>) -> PathBuf {
    flag.unwrap_or_else(|| {
        manifest
            .and_then(Path::parent)
            .map_or_else(|| PathBuf::from(".conway"), |dir| dir.join(".conway"))
    })
}
