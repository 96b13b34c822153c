//! The `conway` binary: argument parsing and wiring; the work lives in the crates.

mod cli;
mod commands;
mod exit;
mod logging;
mod signals;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    logging::init(cli.global.log_format);
    commands::run(cli).report()
}
