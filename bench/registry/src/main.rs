//! `registry-bench`: measures the numbers issue 3 asks of Conway's registry and control
//! plane — watch propagation, failure detection, scale, write throughput — with etcd as
//! the anchor when it is installed, and prints them as one Markdown table.
//!
//! A benchmark, not a test: it asserts nothing and `cargo test` never runs it. Every
//! process it starts listens on loopback and is killed when the run ends, however it ends.

mod api;
mod detection;
mod procs;
mod propagation;
mod report;
mod scale;
mod stats;
mod throughput;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::api::Target;
use crate::report::{Anchor, Report};

const USAGE: &str = "usage: registry-bench [--conway PATH] [--etcd PATH | --no-etcd] [--quick]

  --conway PATH  the conway binary (default: target/release/conway)
  --etcd PATH    the etcd binary (default: etcd on PATH, if any)
  --no-etcd      skip the etcd anchor
  --quick        shorter windows, for trying the benchmark out (not for reporting)";

#[derive(Debug)]
struct Options {
    conway: PathBuf,
    etcd: Option<PathBuf>,
    quick: bool,
}

fn parse(mut args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
    let mut options = Options {
        conway: PathBuf::from("target/release/conway"),
        etcd: procs::find_etcd(),
        quick: false,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--conway" => options.conway = args.next().context("--conway needs a path")?.into(),
            "--etcd" => options.etcd = Some(args.next().context("--etcd needs a path")?.into()),
            "--no-etcd" => options.etcd = None,
            "--quick" => options.quick = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("registry-bench: {error:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("registry-bench: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Dropping `run` (on Ctrl-C, or unwinding from a panic) drops the guards of every
    // process it started, which kills them.
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = run(options) => outcome,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("registry-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn progress(message: &str) {
    eprintln!("registry-bench: {message}");
}

async fn run(options: Options) -> anyhow::Result<()> {
    if !options.conway.is_file() {
        bail!(
            "no conway binary at {} (build it with cargo build --release -p conway)",
            options.conway.display()
        );
    }
    let q = options.quick;
    let propagation_plan = propagation::Plan {
        watchers: 100,
        registrations: if q { 100 } else { 300 },
        spacing: Duration::from_millis(5),
    };
    let scale_plan = scale::Plan {
        instances: 10_000,
        services: 20,
        period: Duration::from_secs(10),
        warmup: Duration::from_secs(if q { 2 } else { 3 }),
        window: Duration::from_secs(if q { 8 } else { 30 }),
        register_clients: 32,
        heartbeat_connections: 8,
    };
    let throughput_plan = throughput::Plan {
        clients: 64,
        warmup: Duration::from_millis(500),
        window: Duration::from_secs(if q { 2 } else { 5 }),
    };
    let trials = 5;

    print_header(&options);

    progress("1. propagation, Conway");
    let conway = procs::start_conway(&options.conway, false).await?;
    let propagation = propagation::run(&Target::Conway(conway.url.clone()), propagation_plan).await;
    drop(conway);

    let anchor = match &options.etcd {
        None => Anchor::NotInstalled,
        Some(binary) => match procs::start_etcd(binary, &api::client()?).await {
            Err(error) => Anchor::Failed(format!("{error:#}")),
            Ok(etcd) => {
                let target = Target::Etcd(etcd.url.clone());
                progress("1. propagation, etcd");
                let propagation = propagation::run(&target, propagation_plan).await;
                progress("4. write throughput, etcd");
                let throughput = throughput::run(&target, throughput_plan).await;
                Anchor::Ran {
                    version: etcd.version.clone(),
                    propagation,
                    throughput,
                }
            }
        },
    };

    progress("2. detection");
    let conway = procs::start_conway(&options.conway, false).await?;
    let failing_check = detection::failing_check(&conway.url, trials).await;
    let lapsed_lease = detection::lapsed_lease(&conway.url, trials).await;
    drop(conway);

    progress("3. scale");
    let conway = procs::start_conway(&options.conway, false).await?;
    let scale = scale::run(&conway, scale_plan).await;
    drop(conway);

    progress("4. write throughput, Conway durable");
    let conway = procs::start_conway(&options.conway, false).await?;
    let durable = throughput::run(&Target::Conway(conway.url.clone()), throughput_plan).await;
    drop(conway);
    progress("4. write throughput, Conway in-memory");
    let conway = procs::start_conway(&options.conway, true).await?;
    let in_memory = throughput::run(&Target::Conway(conway.url.clone()), throughput_plan).await;
    drop(conway);

    println!();
    Report {
        watchers: propagation_plan.watchers,
        registrations: propagation_plan.registrations,
        instances: scale_plan.instances,
        window: scale_plan.window,
        clients: throughput_plan.clients,
        propagation,
        anchor,
        failing_check,
        lapsed_lease,
        scale,
        durable,
        in_memory,
    }
    .print();
    println!("- load average at the end: {}", load_average());
    Ok(())
}

/// The machine and the date, so a table can be told apart from another run's.
fn print_header(options: &Options) {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M:%S UTC"])
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|date| date.trim().to_owned())
        .unwrap_or_default();
    println!("# Conway registry benchmark");
    println!();
    println!("- machine: {cores} cores (nproc), {model}");
    println!("- date: {date}");
    println!(
        "- conway: {}; etcd: {}{}",
        options.conway.display(),
        options
            .etcd
            .as_ref()
            .map_or("not installed".to_owned(), |p| p.display().to_string()),
        if options.quick {
            " — quick mode: shorter windows, not for reporting"
        } else {
            ""
        }
    );
    println!(
        "- the server, etcd and this load generator share the machine's cores; every process is on loopback"
    );
    println!("- load average at the start: {}", load_average());
}

/// `/proc/loadavg`'s 1, 5 and 15 minute averages: other work on a shared machine shows here.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}
