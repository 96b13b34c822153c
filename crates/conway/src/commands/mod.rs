//! One module per verb; `run` dispatches.

mod schema;
mod server;
mod validate;

use crate::cli::{ChaosCommand, Cli, Command};
use crate::exit::Outcome;

/// Runs the command line's verb.
pub(crate) fn run(cli: Cli) -> Outcome {
    let output = cli.global.output;
    match cli.command {
        Command::Validate { manifest } => validate::run(&manifest.file, output).into(),
        Command::Schema { format } => schema::run(format).into(),
        Command::Up { .. } => Outcome::NotBuilt("up"),
        Command::Server {
            file,
            component,
            otlp_listen: None,
            require_token: false,
            in_memory,
        } => {
            let args = server::ServerArgs {
                manifest: file,
                listen: component.listen,
                data_dir: component.data_dir,
                in_memory,
            };
            block_on(server::run(args))
        }
        Command::Server { .. } => Outcome::NotBuilt("server --otlp-listen/--require-token"),
        Command::Gateway(_) => Outcome::NotBuilt("gateway"),
        Command::Mesh(_) => Outcome::NotBuilt("mesh"),
        Command::Agent { .. } => Outcome::NotBuilt("agent"),
        Command::Apply { .. } => Outcome::NotBuilt("apply"),
        Command::Services => Outcome::NotBuilt("services"),
        Command::Instances { .. } => Outcome::NotBuilt("instances"),
        Command::Routes => Outcome::NotBuilt("routes"),
        Command::Register { .. } => Outcome::NotBuilt("register"),
        Command::Deregister { .. } => Outcome::NotBuilt("deregister"),
        Command::Scale { .. } => Outcome::NotBuilt("scale"),
        Command::Deploy { .. } => Outcome::NotBuilt("deploy"),
        Command::Graph { .. } => Outcome::NotBuilt("graph"),
        Command::Traces { .. } => Outcome::NotBuilt("traces"),
        Command::Trace { .. } => Outcome::NotBuilt("trace"),
        Command::Logs { .. } => Outcome::NotBuilt("logs"),
        Command::Chaos(ChaosCommand::Run { .. }) => Outcome::NotBuilt("chaos run"),
        Command::Chaos(ChaosCommand::Kill { .. }) => Outcome::NotBuilt("chaos kill"),
        Command::Chaos(ChaosCommand::Stop) => Outcome::NotBuilt("chaos stop"),
        Command::Lint { .. } => Outcome::NotBuilt("lint"),
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
