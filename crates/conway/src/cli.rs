//! The command line: every verb of ARCHITECTURE.md's public interface, with its flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::logging::LogFormat;

/// Conway runs a system of microservices: a registry and control plane, a gateway and
/// mesh proxy with resilience policies, a supervisor, chaos tools and telemetry — in one
/// binary, with nothing else to install.
#[derive(Debug, Parser)]
#[command(name = "conway", version, about, long_about = None, propagate_version = true)]
#[command(
    after_help = "Start with `conway validate -f conway.toml`; every listing takes `--output json`.\n\
Exit codes: 0 success, 1 failure (reported on stderr), 2 usage error or a command not built yet,\n\
3 the control plane could not be reached."
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// The control plane to talk to.
    #[arg(
        long,
        global = true,
        env = "CONWAY_URL",
        default_value = "http://127.0.0.1:7700"
    )]
    pub(crate) server: String,
    /// How results are printed.
    #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
    pub(crate) output: Output,
    /// How Conway's own logs are written (to stderr; the level comes from CONWAY_LOG).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    /// Tables and sentences for people.
    Table,
    /// JSON for scripts.
    Json,
}

/// The manifest to read.
#[derive(Debug, Args)]
pub(crate) struct ManifestArg {
    /// The manifest file.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        default_value = "conway.toml"
    )]
    pub(crate) file: PathBuf,
}

/// Where a long-running component keeps its state and listens.
#[derive(Debug, Args)]
pub(crate) struct ComponentArgs {
    /// The component's own address (port 0 picks a free one; the ready line says which).
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Option<SocketAddr>,
    /// The data folder; default: `.conway/` beside the manifest.
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Build, start and supervise the whole system on this machine.
    Up {
        #[command(flatten)]
        manifest: ManifestArg,
        #[command(flatten)]
        component: ComponentArgs,
        /// The OTLP/HTTP receiver's address.
        #[arg(long, value_name = "ADDR")]
        otlp_listen: Option<SocketAddr>,
        /// Print every instance's output on stderr, each line prefixed
        /// `service/instance |` (the last lines of a crashing instance are shown anyway).
        #[arg(long)]
        follow_logs: bool,
        /// How long each instance may take to exit after SIGTERM before it is killed.
        #[arg(
            long,
            value_name = "DURATION",
            env = "CONWAY_STOP_GRACE",
            default_value = "10s"
        )]
        stop_grace: conway_core::units::Duration,
    },
    /// Internal: how `conway up` starts each process (arm the parent-death signal, then
    /// exec the command), so none outlives it.
    #[command(name = "exec-child", hide = true)]
    ExecChild {
        /// The supervisor's process id.
        #[arg(long)]
        parent: u32,
        /// The program file to exec.
        #[arg(long)]
        program: PathBuf,
        /// The command line the program sees, its name first.
        #[arg(last = true, required = true)]
        argv: Vec<std::ffi::OsString>,
    },
    /// Check a manifest: exit 0, or 1 with FILE:LINE:COLUMN: message lines.
    Validate {
        #[command(flatten)]
        manifest: ManifestArg,
    },
    /// Print the manifest's JSON Schema (or its Markdown reference).
    Schema {
        /// What to print.
        #[arg(long, value_enum, default_value_t = SchemaFormat::Json)]
        format: SchemaFormat,
    },
    /// Run the control plane alone: registry, API, dashboard, OTLP receiver.
    Server {
        /// A manifest whose declared state the server loads.
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: Option<PathBuf>,
        #[command(flatten)]
        component: ComponentArgs,
        /// The OTLP/HTTP receiver's address.
        #[arg(long, value_name = "ADDR")]
        otlp_listen: Option<SocketAddr>,
        /// Require the admin token on loopback too.
        #[arg(long)]
        require_token: bool,
        /// Keep the registry in memory only, for development and benchmarks: nothing
        /// is written to disk and everything is lost when the server stops.
        #[arg(long)]
        in_memory: bool,
    },
    /// Run the gateway alone (north-south proxy).
    Gateway(ProxyArgs),
    /// Run the mesh proxy alone (east-west proxy).
    Mesh(ProxyArgs),
    /// Run the node agent: supervise this machine's share of the system.
    Agent {
        #[command(flatten)]
        component: ComponentArgs,
    },
    /// Change a running system to a new declared state.
    #[command(
        after_help = "The manifest is checked first (FILE:LINE:COLUMN errors, exit 1); then `conway up`\n\
starts new services, drains and stops removed ones, rolls changed ones (run, build, env,\n\
version, health) one replica at a time, scales, and applies policy changes (routes,\n\
resilience, rate limits, consumers) without restarting anything.\n\n\
Examples:\n  conway apply -f conway.toml\n  conway apply -f conway.toml --output json"
    )]
    Apply {
        #[command(flatten)]
        manifest: ManifestArg,
    },
    /// List the services.
    Services,
    /// List the instances, of one service or of all.
    Instances {
        /// Only this service's instances.
        service: Option<String>,
    },
    /// List the routes in force.
    Routes,
    /// Register an external instance.
    Register {
        /// The service it belongs to.
        service: String,
        /// Where it listens: `127.0.0.1:9000`, `[::1]:9000` or `HOST:9000`.
        #[arg(value_name = "ADDRESS:PORT")]
        address: crate::commands::registry::Endpoint,
        /// How long it stays registered without a heartbeat.
        #[arg(long, default_value = "30s")]
        ttl: conway_core::units::Duration,
    },
    /// Remove an instance.
    Deregister {
        /// The instance's id.
        id: String,
    },
    /// Set a service's number of instances.
    Scale {
        /// The service.
        service: String,
        /// How many instances.
        replicas: u32,
    },
    /// Roll a service to a new version, or send it a canary share of traffic.
    // `--version` is the new version here, not conway's (which `propagate_version` adds).
    #[command(disable_version_flag = true)]
    #[command(
        after_help = "A rolling deploy starts one new replica at a time; each must pass its health checks\n\
before an old one is deregistered and stopped. A new replica that is not healthy within\n\
--health-timeout, or exits 3 times first, rolls the deploy back (exit 1, saying why).\n\
A canary runs beside the old replicas and gets PERCENT% of requests at the gateway and in\n\
the mesh until --promote (every replica rolled to it) or --rollback.\n\n\
Examples:\n  conway deploy orders --version 1.5.0\n  conway deploy orders --version 1.5.0 --run 'target/release/orders-1.5 --port $PORT'\n  conway deploy orders --version 1.5.0 --canary 10\n  conway deploy orders --promote\n  conway deploy orders --rollback\n  conway deploy orders --status --output json"
    )]
    Deploy {
        /// The service.
        service: String,
        /// The new version.
        #[arg(long)]
        version: Option<String>,
        /// The new version's command, if it differs: words split on spaces, or a JSON
        /// array of arguments.
        #[arg(long, value_name = "CMD")]
        run: Option<String>,
        /// Send this percentage of traffic to the new version until promoted.
        #[arg(long, value_name = "PERCENT")]
        canary: Option<u8>,
        /// Make the canary the only version.
        #[arg(long, conflicts_with_all = ["rollback", "canary"])]
        promote: bool,
        /// Remove the canary.
        #[arg(long, conflicts_with = "canary")]
        rollback: bool,
        /// How long each new replica may take to become healthy (default 60s).
        #[arg(long, value_name = "DURATION")]
        health_timeout: Option<conway_core::units::Duration>,
        /// Return once the deploy started, without following it.
        #[arg(long)]
        detach: bool,
        /// Show the service's last deploy and its steps.
        #[arg(long, conflicts_with_all = ["version", "run", "canary", "promote", "rollback"])]
        status: bool,
    },
    /// Show observed and declared dependencies.
    Graph {
        /// How the graph is drawn.
        #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
        format: GraphFormat,
    },
    /// Search traces.
    Traces {
        /// Only traces through this service.
        #[arg(long)]
        service: Option<String>,
        /// Only traces with errors.
        #[arg(long)]
        errors: bool,
        /// Only traces at least this long (e.g. 100ms).
        #[arg(long)]
        min_duration: Option<String>,
        /// The most traces listed.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Show one trace as a tree of spans with timings.
    Trace {
        /// The trace id (32 hex digits).
        id: String,
    },
    /// Show captured logs.
    Logs {
        /// Only this service's logs.
        #[arg(long)]
        service: Option<String>,
        /// Only this instance's logs (`orders-2`).
        #[arg(long)]
        instance: Option<String>,
        /// Only this trace's logs.
        #[arg(long)]
        trace: Option<String>,
        /// Keep printing new lines.
        #[arg(long)]
        follow: bool,
    },
    /// Chaos experiments and kills.
    #[command(subcommand)]
    Chaos(ChaosCommand),
    /// What was done to the running system: deploys, applies, chaos kills.
    Events,
    /// Governance findings: undeclared calls, services without an owner, open routes.
    Lint {
        #[command(flatten)]
        manifest: ManifestArg,
    },
}

/// What `conway schema` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SchemaFormat {
    /// JSON Schema (draft 2020-12).
    Json,
    /// The Markdown reference of every key (docs/manifest.md).
    Markdown,
}

/// How `conway graph` draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum GraphFormat {
    Text,
    Dot,
    Mermaid,
    Json,
}

/// Flags of the proxies.
#[derive(Debug, Args)]
pub(crate) struct ProxyArgs {
    #[command(flatten)]
    pub(crate) component: ComponentArgs,
    /// Worker threads; default: the machine's cores. With 1, everything runs on one
    /// thread (no hand-offs between threads), the cheapest way to use one core.
    #[arg(long, value_name = "N")]
    pub(crate) threads: Option<usize>,
    /// The admin listener (`/healthz`, `/metrics`); port 0 picks a free one.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub(crate) admin_listen: SocketAddr,
    /// Do not write a log line per request.
    #[arg(long)]
    pub(crate) no_access_log: bool,
    /// The gateway's HTTPS listener, serving `[gateway.tls]` certificates (gateway only).
    #[arg(long, value_name = "ADDR")]
    pub(crate) tls_listen: Option<SocketAddr>,
    /// The OTLP/HTTP receiver that gets a span per request and the counts behind the
    /// dependency graph (the control plane's, e.g. http://127.0.0.1:4318).
    #[arg(long, value_name = "URL", env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub(crate) otlp: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ChaosCommand {
    /// Run an experiment: check the steady state, inject, check again, roll back.
    Run {
        /// The experiment file.
        experiment: PathBuf,
    },
    /// Kill instances of a service (SIGKILL), once or repeatedly.
    #[command(
        after_help = "The kills run in `conway up` as a job, which goes on after this command returns;\n\
each is recorded as a `chaos.kill` event (`conway events`). The supervisor restarts what\n\
was killed, as after any crash.\n\n\
Examples:\n  conway chaos kill orders                          # one random instance, once\n  conway chaos kill orders --instance orders-2\n  conway chaos kill orders --every 10s --for 2m\n  conway chaos stop                                 # every running job"
    )]
    Kill {
        /// The service.
        service: String,
        /// Only this instance.
        #[arg(long)]
        instance: Option<String>,
        /// Kill again at this interval (e.g. 10s).
        #[arg(long)]
        every: Option<conway_core::units::Duration>,
        /// Stop after this long (e.g. 2m; needs --every).
        #[arg(long = "for", requires = "every")]
        duration: Option<conway_core::units::Duration>,
    },
    /// Stop a chaos job, or every running one.
    Stop {
        /// The job (`chaos-1`); default: every running job.
        job: Option<String>,
    },
    /// List the chaos jobs.
    Jobs,
}
