//! Running a proxy: follow the control plane, serve each listener in its role (gateway,
//! mesh, or a caller's dedicated upstream) and the admin listener, stop gracefully.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use conway_client::{Client, ClientError, Mirror, MirrorOptions};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::access_log::{AccessLog, Format as AccessLogFormat};
use crate::admin::Admin;
use crate::gateway::Gateway;
use crate::mesh::{Mesh, MeshMode};
use crate::metrics::ProxyMetrics;
use crate::proxy::Proxy;
use crate::ratelimit::RateLimits;
use crate::server::{serve, serve_tls};
use crate::table::Table;
use crate::tls;
use crate::updater;
use conway_telemetry::Exporter;
use tokio_rustls::TlsAcceptor;

/// How long in-flight requests may finish after a shutdown begins.
pub const GRACE: Duration = Duration::from_secs(10);

/// What every proxy process needs.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// The control plane.
    pub server: String,
    /// Where `/healthz` and `/metrics` are served.
    pub admin_listen: SocketAddr,
    /// Where the last known state is saved; `None` keeps nothing.
    pub data_dir: Option<PathBuf>,
    /// Write one log line per request, in this format.
    pub access_log: Option<AccessLogFormat>,
    /// The OTLP/HTTP receiver that gets a span per request and the caller → callee
    /// counts behind the dependency graph (`http://127.0.0.1:4318`).
    pub otlp: Option<String>,
}

/// One listener and its role.
#[derive(Debug, Clone)]
pub enum Listen {
    /// Outside clients, by `[[gateway.routes]]`.
    Gateway(SocketAddr),
    /// Outside clients over HTTPS, with the certificates of `[gateway.tls]`.
    GatewayTls(SocketAddr),
    /// Services calling services through their proxy setting.
    Mesh(SocketAddr),
    /// One service's listener for one dependency (`CONWAY_UPSTREAM_<DEPENDENCY>`).
    Upstream {
        /// Where it listens.
        listen: SocketAddr,
        /// The calling service.
        caller: String,
        /// The dependency it reaches.
        target: String,
    },
}

impl Listen {
    fn address(&self) -> SocketAddr {
        match self {
            Self::Gateway(address)
            | Self::GatewayTls(address)
            | Self::Mesh(address)
            | Self::Upstream {
                listen: address, ..
            } => *address,
        }
    }
}

/// A proxy that is serving.
#[derive(Debug)]
pub struct RunningProxy {
    /// The bound address of each listener, in the order given.
    pub addresses: Vec<SocketAddr>,
    /// The admin address.
    pub admin: SocketAddr,
    /// The table in force.
    pub table: Arc<ArcSwap<Table>>,
    mirror_task: JoinHandle<()>,
    listeners: Vec<JoinHandle<()>>,
    access_log: Option<AccessLog>,
}

/// Why a proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The control plane's address is not a URL.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The OTLP endpoint is not a URL.
    #[error("{0}")]
    Otlp(String),
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
/// first, if any). Returns once the table holds a listing of the registry, so routes
/// are in force when the proxy says it is ready; serves until `shutdown` completes.
pub async fn start(
    options: ProxyOptions,
    listens: Vec<Listen>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<RunningProxy, StartError> {
    let client = Client::new(&options.server)?;
    let saved = options
        .data_dir
        .as_deref()
        .and_then(updater::load_saved)
        .unwrap_or_default();
    let mirror = Mirror::start_from(client, MirrorOptions::default(), saved);
    let table = Arc::new(ArcSwap::from_pointee(Table::default()));
    let (built, mut tables) = watch::channel(0);
    let mirror_task = tokio::spawn(updater::follow(
        mirror,
        table.clone(),
        options.data_dir.clone(),
        built,
    ));
    let mut bound = Vec::with_capacity(listens.len());
    for listen in &listens {
        let address = listen.address();
        bound.push(
            TcpListener::bind(address)
                .await
                .map_err(|source| StartError::Bind { address, source })?,
        );
    }
    let admin_listener = TcpListener::bind(options.admin_listen)
        .await
        .map_err(|source| StartError::Bind {
            address: options.admin_listen,
            source,
        })?;
    if !table.load().listed {
        tracing::info!(server = %options.server, "waiting for the control plane's state");
        let _ = tables.wait_for(|_| table.load().listed).await;
    }
    let metrics = Arc::new(ProxyMetrics::new());
    let exporter = match &options.otlp {
        Some(endpoint) => {
            Some(Exporter::new(endpoint).map_err(|e| StartError::Otlp(e.to_string()))?)
        }
        None => None,
    };
    let proxy = Arc::new(Proxy {
        table: table.clone(),
        upstreams: crate::upstream::Upstreams::new(),
        metrics: metrics.clone(),
        access_log: options.access_log.map(AccessLog::stderr),
        rate_limits: RateLimits::default(),
        https_port: listens
            .iter()
            .zip(&bound)
            .find(|(l, _)| matches!(l, Listen::GatewayTls(_)))
            .map(|(_, b)| local(b).port()),
        exporter,
    });
    tokio::spawn(forget_idle_keys(proxy.clone()));
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let until_stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    crate::load::spawn_reporter(&options.server, &listens, table.clone(), until_stopped());
    let addresses = bound.iter().map(local).collect();
    let admin = local(&admin_listener);
    let mut listeners = Vec::with_capacity(bound.len() + 1);
    for (listener, listen) in bound.into_iter().zip(listens) {
        let task = match listen {
            Listen::Gateway(_) => tokio::spawn(serve(
                listener,
                Arc::new(Gateway::new(proxy.clone())),
                until_stopped(),
                GRACE,
            )),
            Listen::GatewayTls(_) => tokio::spawn(serve_tls(
                listener,
                TlsAcceptor::from(tls::server_config(table.clone())),
                Arc::new(Gateway::tls(proxy.clone())),
                until_stopped(),
                GRACE,
            )),
            Listen::Mesh(_) => tokio::spawn(serve(
                listener,
                Arc::new(Mesh::new(proxy.clone(), MeshMode::Proxy)),
                until_stopped(),
                GRACE,
            )),
            Listen::Upstream { caller, target, .. } => {
                let mode = MeshMode::Upstream {
                    caller: caller.into(),
                    target: target.into(),
                };
                tokio::spawn(serve(
                    listener,
                    Arc::new(Mesh::new(proxy.clone(), mode)),
                    until_stopped(),
                    GRACE,
                ))
            }
        };
        listeners.push(task);
    }
    listeners.push(tokio::spawn(serve(
        admin_listener,
        Arc::new(Admin::new(table.clone(), metrics)),
        until_stopped(),
        GRACE,
    )));
    Ok(RunningProxy {
        addresses,
        admin,
        table,
        mirror_task,
        listeners,
        access_log: proxy.access_log.clone(),
    })
}

impl RunningProxy {
    /// Waits until every listener has stopped (after the shutdown signal and the grace
    /// period), then stops following the control plane.
    pub async fn wait(self) {
        for listener in self.listeners {
            let _ = listener.await;
        }
        self.mirror_task.abort();
        if let Some(log) = &self.access_log {
            log.flush();
        }
    }
}

/// What a gateway alone needs to run.
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
    proxy: RunningProxy,
}

/// Starts a proxy with one gateway listener.
pub async fn start_gateway(
    options: GatewayOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<RunningGateway, StartError> {
    let proxy_options = ProxyOptions {
        server: options.server,
        admin_listen: options.admin_listen,
        data_dir: options.data_dir,
        access_log: options.access_log.then_some(AccessLogFormat::Text),
        otlp: None,
    };
    let proxy = start(
        proxy_options,
        vec![Listen::Gateway(options.listen)],
        shutdown,
    )
    .await?;
    Ok(RunningGateway {
        address: proxy.addresses[0],
        admin: proxy.admin,
        table: proxy.table.clone(),
        proxy,
    })
}

impl RunningGateway {
    /// Waits until the gateway has stopped.
    pub async fn wait(self) {
        self.proxy.wait().await;
    }
}

/// Every minute, forgets rate-limit keys that are idle and routes that are gone.
async fn forget_idle_keys(proxy: Arc<Proxy>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        let routes = proxy
            .table
            .load()
            .router
            .routes()
            .iter()
            .map(|r| r.name.clone())
            .collect();
        proxy.rate_limits.retain(&routes);
    }
}

fn local(listener: &TcpListener) -> SocketAddr {
    listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
}
