//! One module per verb; `run` dispatches.

mod chaos_run;
mod format;
mod gateway;
mod lint;
mod operations;
mod output;
pub(crate) mod registry;
mod scale;
mod schema;
mod server;
mod telemetry;
mod up;
mod validate;

use crate::cli::{ChaosCommand, Cli, Command};
use crate::exit::Outcome;

/// Runs the command line's verb.
pub(crate) fn run(cli: Cli) -> Outcome {
    let output = cli.global.output;
    match cli.command {
        Command::Validate { manifest } => validate::run(&manifest.file, output).into(),
        Command::Schema { format } => schema::run(format).into(),
        Command::Up {
            manifest,
            component,
            otlp_listen,
            follow_logs,
            stop_grace,
        } => block_on(up::run(up::UpArgs {
            manifest: manifest.file,
            listen: component.listen,
            data_dir: component.data_dir,
            follow_logs,
            stop_grace: stop_grace.get(),
            otlp_listen,
        })),
        Command::ExecChild {
            parent,
            program,
            argv,
        } => up::exec_child(parent, &program, &argv),
        Command::Server {
            file,
            component,
            otlp_listen,
            require_token,
            in_memory,
        } => {
            let args = server::ServerArgs {
                manifest: file,
                listen: component.listen,
                data_dir: component.data_dir,
                in_memory,
                require_token,
                otlp_listen,
            };
            block_on(server::run(args))
        }
        Command::Gateway(proxy) => {
            gateway::run(proxy_run(gateway::Role::Gateway, cli.global, proxy))
        }
        Command::Mesh(proxy) => gateway::run(proxy_run(gateway::Role::Mesh, cli.global, proxy)),
        Command::Agent { .. } => Outcome::NotBuilt("agent"),
        Command::Apply { manifest } => block_on(operations::apply(
            &cli.global.server,
            output,
            &manifest.file,
        )),
        Command::Services => block_on(registry::services(&cli.global.server, output)),
        Command::Instances { service } => block_on(registry::instances(
            &cli.global.server,
            output,
            service.as_deref(),
        )),
        Command::Routes => block_on(registry::routes(&cli.global.server, output)),
        Command::Register {
            service,
            address,
            ttl,
        } => block_on(registry::register(
            &cli.global.server,
            output,
            &service,
            address,
            ttl,
        )),
        Command::Deregister { id } => {
            block_on(registry::deregister(&cli.global.server, output, &id))
        }
        Command::Scale { service, replicas } => {
            block_on(scale::run(&cli.global.server, output, &service, replicas))
        }
        Command::Deploy {
            service,
            version,
            run,
            canary,
            promote,
            rollback,
            health_timeout,
            detach,
            status,
        } => block_on(operations::deploy(
            &cli.global.server,
            output,
            operations::DeployArgs {
                service,
                version,
                run,
                canary,
                promote,
                rollback,
                health_timeout,
                detach,
                status,
            },
        )),
        Command::Graph { format } => block_on(telemetry::graph(&cli.global.server, output, format)),
        Command::Traces {
            service,
            errors,
            min_duration,
            limit,
        } => block_on(telemetry::traces(
            &cli.global.server,
            output,
            conway_client::TraceFilter {
                service,
                operation: None,
                min_duration,
                errors,
                limit: Some(limit),
            },
        )),
        Command::Trace { id } => block_on(telemetry::trace(&cli.global.server, output, &id)),
        Command::Logs {
            service,
            instance,
            trace,
            follow,
        } => block_on(telemetry::logs(
            &cli.global.server,
            output,
            conway_client::LogFilter {
                service,
                instance,
                trace_id: trace,
                ..Default::default()
            },
            follow,
        )),
        Command::Chaos(ChaosCommand::Run { experiment }) => {
            block_on(chaos_run::run(&cli.global.server, output, &experiment))
        }
        Command::Chaos(ChaosCommand::Kill {
            service,
            instance,
            every,
            duration,
        }) => block_on(operations::chaos_kill(
            &cli.global.server,
            output,
            conway_core::api::ChaosKillRequest {
                service,
                instance,
                every,
                duration,
            },
        )),
        Command::Chaos(ChaosCommand::Stop { job }) => block_on(operations::chaos_stop(
            &cli.global.server,
            output,
            job.as_deref(),
        )),
        Command::Chaos(ChaosCommand::Jobs) => {
            block_on(operations::chaos_jobs(&cli.global.server, output))
        }
        Command::Events => block_on(operations::events(&cli.global.server, output)),
        Command::Lint { manifest } => {
            block_on(lint::run(&manifest.file, &cli.global.server, output))
        }
    }
}

/// Runs an async command on a multi-threaded runtime.
fn block_on(command: impl std::future::Future<Output = anyhow::Result<Outcome>>) -> Outcome {
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(command).into(),
        Err(error) => {
            Outcome::Error(anyhow::Error::new(error).context("cannot start the async runtime"))
        }
    }
}

fn proxy_run(
    role: gateway::Role,
    global: crate::cli::GlobalArgs,
    proxy: crate::cli::ProxyArgs,
) -> gateway::ProxyRun {
    // The access log follows `--log-format`, as the program's own logs do.
    let format = match global.log_format {
        crate::logging::LogFormat::Text => conway_proxy::access_log::Format::Text,
        crate::logging::LogFormat::Json => conway_proxy::access_log::Format::Json,
    };
    gateway::ProxyRun {
        role,
        server: global.server,
        listen: proxy.component.listen,
        admin_listen: proxy.admin_listen,
        data_dir: proxy.component.data_dir,
        threads: proxy.threads,
        access_log: (!proxy.no_access_log).then_some(format),
        tls_listen: proxy.tls_listen,
        otlp: proxy.otlp,
    }
}
