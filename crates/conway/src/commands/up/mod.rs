//! `conway up`: build, then run in this one process the control plane, the proxy (the
//! gateway, the mesh, and one listener per declared dependency) and the supervisor of
//! every service — each part talking to the control plane over its HTTP API, as it
//! would when run apart — until Ctrl-C or SIGTERM stops them: instances first, then the
//! proxy, then the control plane.

mod apply;
mod autoscale;
mod build;
mod logs;
mod operations;
mod proxy;
mod report;
mod scale;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use conway_client::Client;
use conway_core::api::ReadyLine;
use conway_core::{LoadError, Manifest, load_file};
use conway_registry::registry::Registry;
use conway_registry::store::{EmbeddedStore, StoreError};
use conway_server::ServerOptions;
use conway_supervisor::plan::build_steps;
use conway_supervisor::{Launcher, LogSink, Supervisor, SupervisorOptions};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::exit::Outcome;
use crate::signals::shutdown_signal;

/// The control plane's default address.
const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 7700);

/// How long `up` waits for every service to be healthy (or in a crash loop) before it
/// says which is not and prints its ready line anyway.
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) struct UpArgs {
    pub(crate) manifest: PathBuf,
    pub(crate) listen: Option<SocketAddr>,
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) follow_logs: bool,
    pub(crate) stop_grace: Duration,
    pub(crate) otlp_listen: Option<SocketAddr>,
}

/// `conway exec-child`: becomes the command (see `conway_supervisor::process::exec_child`).
pub(crate) fn exec_child(parent: u32, program: &Path, argv: &[std::ffi::OsString]) -> Outcome {
    let error = conway_supervisor::process::exec_child(parent, program, argv);
    Outcome::Error(anyhow::Error::new(error).context(format!("cannot run {}", program.display())))
}

pub(crate) async fn run(args: UpArgs) -> anyhow::Result<Outcome> {
    let stop = Stop::on_signals();
    let listen = args.listen.unwrap_or(DEFAULT_LISTEN);
    if !listen.ip().is_loopback() {
        bail!(
            "listening on {listen} would expose the control plane beyond this machine, which needs the admin token: not yet supported in this version of conway; listen on 127.0.0.1"
        );
    }
    let manifest = match load_file(&args.manifest) {
        Ok(loaded) => {
            eprint!(
                "{}",
                loaded.warnings.render(&args.manifest.display().to_string())
            );
            loaded.manifest
        }
        Err(LoadError::Invalid { diagnostics, .. }) => {
            eprint!(
                "{}",
                diagnostics.render(&args.manifest.display().to_string())
            );
            return Ok(Outcome::Failed);
        }
        Err(error) => return Err(error.into()),
    };
    let manifest_dir = std::path::absolute(
        args.manifest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    )?;
    let data_dir = std::path::absolute(
        args.data_dir
            .unwrap_or_else(|| manifest_dir.join(".conway")),
    )?;
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create the data folder {}", data_dir.display()))?;
    // The registry's lock says whether another `up` runs here: take it before building.
    let store = match EmbeddedStore::open(data_dir.join("registry")).await {
        Ok(store) => store,
        Err(StoreError::FolderInUse(_)) => bail!(
            "the data folder {} is in use by another `conway up` or `conway server`; stop that one first, or give this one another --data-dir",
            data_dir.display()
        ),
        Err(error) => {
            return Err(anyhow::Error::new(error).context(format!(
                "cannot open the registry in {}",
                data_dir.display()
            )));
        }
    };

    let launcher = Launcher::Wrapper {
        program: std::env::current_exe().context("cannot find the conway binary")?,
        args: vec!["exec-child".into()],
    };
    let steps = build_steps(&manifest, &manifest_dir);
    match build::run(&steps, launcher.clone(), stop.wait()).await? {
        build::Built::All => {}
        build::Built::Failed => return Ok(Outcome::Failed),
        build::Built::Interrupted => return Ok(Outcome::Success),
    }

    let mut options = SupervisorOptions::new(&data_dir);
    options.stop_grace = args.stop_grace;
    options.launcher = launcher;
    if args.follow_logs {
        options
            .sinks
            .push(Arc::new(report::StderrSink) as Arc<dyn LogSink>);
    }
    let telemetry_config = conway_telemetry::TelemetryConfig::from_manifest(&manifest.telemetry);
    let telemetry = super::server::open_telemetry(false, &data_dir, telemetry_config).await?;
    // Every captured line goes into the log store too (see `logs` for levels).
    options
        .sinks
        .push(Arc::new(logs::StoreSink(telemetry.log_sink())) as Arc<dyn LogSink>);
    let otlp = match super::server::bind_otlp(args.otlp_listen).await? {
        Some(listener) => listener,
        // The default port is taken (another system is up): any free one will do.
        None => TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("cannot listen for OTLP")?,
    };
    let system = System::start(
        &manifest,
        &manifest_dir,
        store,
        listen,
        &data_dir,
        options,
        (telemetry, otlp),
    )
    .await?;
    let outcome = system.run(&stop).await;
    system.stop().await;
    outcome
}

/// The parts running in this process.
struct System {
    supervisor: Supervisor,
    client: Client,
    events: tokio::task::JoinHandle<()>,
    proxy: proxy::Proxy,
    control_plane: ControlPlane,
    ready: ReadyLine,
    /// Scales services with `autoscale`, until dropped.
    _autoscaler: conway_supervisor::autoscale::Autoscaler,
}

/// The control plane, serving.
struct ControlPlane {
    stop: watch::Sender<bool>,
    serving: tokio::task::JoinHandle<std::io::Result<()>>,
    otlp: tokio::task::JoinHandle<std::io::Result<()>>,
    checks: tokio::task::JoinHandle<()>,
    /// Retention and forwarding of the telemetry store, until dropped.
    _telemetry: conway_telemetry::TelemetryTasks,
}

impl ControlPlane {
    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.serving.await;
        let _ = self.otlp.await;
        self.checks.abort();
    }
}

impl System {
    /// Starts the control plane, then the proxy (gateway, mesh, one listener per
    /// declared dependency), then creates the supervisor with their addresses.
    async fn start(
        manifest: &Manifest,
        manifest_dir: &Path,
        store: EmbeddedStore,
        listen: SocketAddr,
        data_dir: &Path,
        mut options: SupervisorOptions,
        (telemetry, otlp): (conway_telemetry::Telemetry, TcpListener),
    ) -> anyhow::Result<Self> {
        let registry = Registry::new(Arc::new(store));
        registry
            .load_manifest(manifest)
            .await
            .context("cannot load the manifest into the registry")?;
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen} for the control plane"))?;
        let url = format!("http://{}", listener.local_addr()?);
        let client = Client::builder(&url)
            .timeout(Duration::from_secs(5))
            .build()?;
        // Scale requests reach the supervisor once it exists; until then they get 503.
        let scaler = Arc::new(scale::Slot::default());
        let operated = Arc::new(operations::Slot::default());
        let otlp_url = format!("http://{}", otlp.local_addr()?);
        let telemetry_tasks = telemetry.start();
        let api = conway_server::router(
            registry.clone(),
            &ServerOptions {
                telemetry: Some(telemetry.clone()),
                ..ServerOptions::default()
            },
        );
        let decisions = conway_supervisor::autoscale::Decisions::default();
        let router = autoscale::with_metrics(
            scale::router(scaler.clone())
                .merge(operations::router(operated.clone()))
                .fallback_service(api),
            decisions.clone(),
        );
        let (stop_api, api_stopped) = watch::channel(false);
        let control_plane = ControlPlane {
            stop: stop_api,
            otlp: tokio::spawn(conway_server::serve(
                otlp,
                conway_server::otlp_router(telemetry),
                until(api_stopped.clone()),
            )),
            serving: tokio::spawn(conway_server::serve(listener, router, until(api_stopped))),
            _telemetry: telemetry_tasks,
            checks: conway_server::spawn_health_checks(registry.clone()),
        };
        let proxy = match proxy::Proxy::start(
            manifest,
            manifest_dir,
            &url,
            data_dir,
            Some(otlp_url.clone()),
        )
        .await
        {
            Ok(proxy) => proxy,
            Err(error) => {
                control_plane.stop().await;
                return Err(error);
            }
        };
        options.mesh = Some(proxy.mesh);
        options.otlp = Some(otlp_url.clone());
        options.upstreams = proxy.upstreams.clone();
        let launcher = options.launcher.clone();
        let (supervisor, events) =
            match Supervisor::new(manifest, manifest_dir, client.clone(), options) {
                Ok(created) => created,
                Err(error) => {
                    proxy.stop().await;
                    control_plane.stop().await;
                    return Err(error.into());
                }
            };
        scaler.set(Arc::new(supervisor.clone()));
        operated.set(operations::Parts::new(
            &supervisor,
            registry,
            manifest,
            manifest_dir,
            launcher,
        ));
        let autoscaler = conway_supervisor::autoscale::Autoscaler::start(
            manifest,
            &supervisor,
            &client,
            decisions,
        );
        let ready = ReadyLine {
            ready: true,
            dashboard: Some(format!("{url}/")),
            control_plane: Some(url),
            gateway: Some(format!("http://{}", proxy.gateway)),
            gateway_tls: proxy.gateway_tls.map(|a| format!("https://{a}")),
            mesh: Some(format!("http://{}", proxy.mesh)),
            otlp: Some(otlp_url),
            admin: Some(format!("http://{}", proxy.admin)),
        };
        Ok(Self {
            supervisor,
            client,
            events: tokio::spawn(report::print_events(events)),
            proxy,
            control_plane,
            ready,
            _autoscaler: autoscaler,
        })
    }

    /// Starts the services, says when they are up, and runs until `stop`.
    async fn run(&self, stop: &Stop) -> anyhow::Result<Outcome> {
        tokio::select! {
            () = self.supervisor.start() => {}
            () = stop.wait() => return Ok(Outcome::Success),
        }
        tokio::select! {
            settled = tokio::time::timeout(START_TIMEOUT, self.supervisor.wait_settled()) => {
                if settled.is_err() {
                    report::not_ready(&self.supervisor.status(), START_TIMEOUT);
                }
            }
            () = stop.wait() => return Ok(Outcome::Success),
        }
        self.gateway_caught_up().await;
        println!("{}", serde_json::to_string(&self.ready)?);
        eprint!(
            "{}",
            report::summary(&self.supervisor.status(), &self.ready)
        );
        tracing::info!("up; Ctrl-C or SIGTERM stops everything");
        stop.wait().await;
        Ok(Outcome::Success)
    }

    /// Waits (a little) until the proxy has seen the registry as it is now, so that
    /// once the ready line is out, requests reach the healthy instances.
    async fn gateway_caught_up(&self) {
        let Ok(revision) = self.client.ready().await else {
            return;
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.proxy.revision() < revision && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Instances first (deregistered, then stopped), then the proxy, then the control
    /// plane.
    async fn stop(self) {
        self.supervisor.shutdown().await;
        self.proxy.stop().await;
        self.control_plane.stop().await;
        self.events.abort();
        tracing::info!("stopped");
    }
}

/// Ctrl-C or SIGTERM, as a flag every part can wait on. A second signal while
/// stopping exits at once (the instances die with this process: parent-death signal).
struct Stop(watch::Receiver<bool>);

impl Stop {
    fn on_signals() -> Self {
        let (sender, receiver) = watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = sender.send(true);
            shutdown_signal().await;
            eprintln!("conway up: second signal; exiting without waiting for the instances");
            std::process::exit(1);
        });
        Self(receiver)
    }

    fn wait(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        until(self.0.clone())
    }
}

/// Completes once `flag` is true (or its sender is gone).
async fn until(mut flag: watch::Receiver<bool>) {
    let _ = flag.wait_for(|stop| *stop).await;
}
