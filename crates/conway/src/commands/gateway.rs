//! `conway gateway` and `conway mesh`: a proxy alone, following a control plane.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use conway_core::api::ReadyLine;
use conway_proxy::run::{Listen, ProxyOptions, start};

use crate::exit::Outcome;
use crate::signals::shutdown_signal;

/// The gateway's default address.
const GATEWAY_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);
/// The mesh's default address.
const MESH_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 15001);

/// Which proxy role to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Gateway,
    Mesh,
}

pub(crate) struct ProxyRun {
    pub(crate) role: Role,
    pub(crate) server: String,
    pub(crate) listen: Option<SocketAddr>,
    pub(crate) admin_listen: SocketAddr,
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) threads: Option<usize>,
    /// The access log's format; `None` writes none.
    pub(crate) access_log: Option<conway_proxy::access_log::Format>,
    pub(crate) tls_listen: Option<SocketAddr>,
    pub(crate) otlp: Option<String>,
}

/// Runs the proxy on its own runtime, with `--threads` workers. One worker is this
/// thread itself (tokio's current-thread runtime): no task ever crosses threads, so no
/// wake-up pays for one.
pub(crate) fn run(args: ProxyRun) -> Outcome {
    let mut builder = match args.threads {
        Some(0 | 1) => tokio::runtime::Builder::new_current_thread(),
        Some(threads) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(threads);
            builder
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    match builder.enable_all().build() {
        Ok(runtime) => runtime.block_on(serve(args)).into(),
        Err(error) => {
            Outcome::Error(anyhow::Error::new(error).context("cannot start the async runtime"))
        }
    }
}

async fn serve(args: ProxyRun) -> anyhow::Result<Outcome> {
    let (listen, folder, name) = match args.role {
        Role::Gateway => (
            Listen::Gateway(args.listen.unwrap_or(GATEWAY_LISTEN)),
            "gateway",
            "gateway",
        ),
        Role::Mesh => (
            Listen::Mesh(args.listen.unwrap_or(MESH_LISTEN)),
            "mesh",
            "mesh",
        ),
    };
    let options = ProxyOptions {
        server: args.server,
        admin_listen: args.admin_listen,
        data_dir: Some(
            args.data_dir
                .unwrap_or_else(|| PathBuf::from(".conway").join(folder)),
        ),
        access_log: args.access_log,
        otlp: args.otlp,
    };
    let mut listens = vec![listen];
    match (args.role, args.tls_listen) {
        (Role::Gateway, Some(address)) => listens.push(Listen::GatewayTls(address)),
        (Role::Mesh, Some(_)) => {
            anyhow::bail!("--tls-listen is for the gateway; the mesh serves loopback callers only")
        }
        _ => {}
    }
    let running = start(options, listens, shutdown_signal())
        .await
        .with_context(|| format!("cannot start the {name}"))?;
    let address = format!("http://{}", running.addresses[0]);
    let mut ready = ReadyLine {
        ready: true,
        admin: Some(format!("http://{}", running.admin)),
        ..Default::default()
    };
    match args.role {
        Role::Gateway => {
            ready.gateway = Some(address.clone());
            ready.gateway_tls = running.addresses.get(1).map(|a| format!("https://{a}"));
        }
        Role::Mesh => ready.mesh = Some(address.clone()),
    }
    println!("{}", serde_json::to_string(&ready)?);
    tracing::info!(%address, admin = %running.admin, "{name} ready");
    running.wait().await;
    tracing::info!("{name} stopped");
    Ok(Outcome::Success)
}
