//! `conway gateway`: the north-south proxy alone, following a control plane.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use conway_core::api::ReadyLine;
use conway_proxy::run::{GatewayOptions, start_gateway};

use crate::exit::Outcome;
use crate::signals::shutdown_signal;

/// The gateway's default address.
const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);

pub(crate) struct GatewayArgs {
    pub(crate) server: String,
    pub(crate) listen: Option<SocketAddr>,
    pub(crate) admin_listen: SocketAddr,
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) threads: Option<usize>,
    pub(crate) access_log: bool,
}

/// Runs the gateway on its own runtime, with `--threads` workers.
pub(crate) fn run(args: GatewayArgs) -> Outcome {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        builder.worker_threads(threads.max(1));
    }
    match builder.enable_all().build() {
        Ok(runtime) => runtime.block_on(serve(args)).into(),
        Err(error) => {
            Outcome::Error(anyhow::Error::new(error).context("cannot start the async runtime"))
        }
    }
}

async fn serve(args: GatewayArgs) -> anyhow::Result<Outcome> {
    let listen = args.listen.unwrap_or(DEFAULT_LISTEN);
    let options = GatewayOptions {
        listen,
        admin_listen: args.admin_listen,
        server: args.server,
        data_dir: Some(
            args.data_dir
                .unwrap_or_else(|| PathBuf::from(".conway").join("gateway")),
        ),
        access_log: args.access_log,
    };
    let running = start_gateway(options, shutdown_signal())
        .await
        .context("cannot start the gateway")?;
    let ready = ReadyLine {
        ready: true,
        gateway: Some(format!("http://{}", running.address)),
        admin: Some(format!("http://{}", running.admin)),
        ..Default::default()
    };
    println!("{}", serde_json::to_string(&ready)?);
    tracing::info!(address = %running.address, admin = %running.admin, "gateway ready");
    running.wait().await;
    tracing::info!("gateway stopped");
    Ok(Outcome::Success)
}
