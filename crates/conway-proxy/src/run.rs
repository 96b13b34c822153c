//! Running a proxy: follow the control plane, serve the role's listener and the admin
//! listener, stop gracefully.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use conway_client::{Client, ClientError, Mirror, MirrorOptions};
use tokio::net::TcpListener;

use crate::admin::Admin;
use crate::gateway::Gateway;
use crate::metrics::ProxyMetrics;
use crate::server::serve;
use crate::table::Table;
use crate::updater;

/// How long in-flight requests may finish after a shutdown begins.
pub const GRACE: Duration = Duration::from_secs(10);

/// What a gateway needs to run.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// Where clients connect.
    pub listen: SocketAddr,
    /// Where `/healthz` and `/metrics` are served.
    pub admin_listen: SocketAddr,
    /// The control plane.
    pub server: String,
    /// Where the last known state is saved; `None` keeps nothing.
    pub data_dir: Option<PathBuf>,
    /// Write one log line per request.
    pub access_log: bool,
}

/// A gateway that is serving.
#[derive(Debug)]
pub struct RunningGateway {
    /// The clients' address.
    pub address: SocketAddr,
    /// The admin address.
    pub admin: SocketAddr,
    /// The table in force.
    pub table: Arc<ArcSwap<Table>>,
    mirror_task: tokio::task::JoinHandle<()>,
    listeners: Vec<tokio::task::JoinHandle<()>>,
}

/// Why a proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The control plane's address is not a URL.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A listener could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Binds the listeners and starts following the control plane (from the saved state
/// first, if any). Returns once the table holds a listing of the registry: routes are
/// in force when the gateway says it is ready.
pub async fn start_gateway(
    options: GatewayOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<RunningGateway, StartError> {
    let client = Client::new(&options.server)?;
    let saved = options
        .data_dir
        .as_deref()
        .and_then(updater::load_saved)
        .unwrap_or_default();
    let mirror = Mirror::start_from(client, MirrorOptions::default(), saved);
    let table = Arc::new(ArcSwap::from_pointee(Table::default()));
    let mut changes = mirror.changed();
    let mirror_task = tokio::spawn(updater::follow(
        mirror,
        table.clone(),
        options.data_dir.clone(),
    ));
    let bind = |address| async move {
        TcpListener::bind(address)
            .await
            .map_err(|source| StartError::Bind { address, source })
    };
    let listener = bind(options.listen).await?;
    let admin_listener = bind(options.admin_listen).await?;
    let (address, admin) = (local(&listener), local(&admin_listener));
    let mut waited = false;
    while !table.load().listed {
        if !waited {
            tracing::info!(server = %options.server, "waiting for the control plane's routes");
            waited = true;
        }
        if changes.changed().await.is_err() {
            break;
        }
        tokio::task::yield_now().await;
    }
    let metrics = Arc::new(ProxyMetrics::new());
    let gateway = Arc::new(Gateway::new(
        table.clone(),
        metrics.clone(),
        options.access_log,
    ));
    let admin_handler = Arc::new(Admin::new(table.clone(), metrics));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let listeners = vec![
        tokio::spawn(serve(
            listener,
            gateway,
            until_stopped(stopped.clone()),
            GRACE,
        )),
        tokio::spawn(serve(
            admin_listener,
            admin_handler,
            until_stopped(stopped),
            GRACE,
        )),
    ];
    Ok(RunningGateway {
        address,
        admin,
        table,
        mirror_task,
        listeners,
    })
}

impl RunningGateway {
    /// Waits until both listeners have stopped (after the shutdown signal and the grace
    /// period), then stops following the control plane.
    pub async fn wait(self) {
        for listener in self.listeners {
            let _ = listener.await;
        }
        self.mirror_task.abort();
    }
}

fn local(listener: &TcpListener) -> SocketAddr {
    listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
}
