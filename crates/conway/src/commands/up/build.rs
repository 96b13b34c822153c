//! The builds before `up` starts anything: one spinner per distinct build command, its
//! output shown when it fails (and `up` stops there).

use std::future::Future;
use std::io::IsTerminal;
use std::time::Duration;

use conway_supervisor::Launcher;
use conway_supervisor::build::{BuildError, Builder};
use conway_supervisor::plan::BuildStep;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How the builds went.
pub(super) enum Built {
    /// Every build passed (or there were none).
    All,
    /// One failed; it was reported.
    Failed,
    /// Ctrl-C or SIGTERM came first; the running build was stopped.
    Interrupted,
}

/// Runs `steps` one after the other until one fails or `interrupted` completes.
pub(super) async fn run(
    steps: &[BuildStep],
    launcher: Launcher,
    interrupted: impl Future<Output = ()>,
) -> anyhow::Result<Built> {
    if steps.is_empty() {
        return Ok(Built::All);
    }
    let builder = Builder::new(launcher)?;
    // Spinners on a terminal; plain lines otherwise (CI logs, tests).
    let terminal = std::io::stderr().is_terminal();
    let progress = MultiProgress::with_draw_target(if terminal {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let say = |spinner: &ProgressBar, line: String| {
        if terminal {
            spinner.finish_with_message(line);
        } else {
            eprintln!("{line}");
        }
    };
    tokio::pin!(interrupted);
    for step in steps {
        let label = format!(
            "{} (for {})",
            step.command.join(" "),
            step.services.join(", ")
        );
        let spinner = progress.add(ProgressBar::new_spinner());
        spinner.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        spinner.set_message(format!("building: {label}"));
        spinner.enable_steady_tick(Duration::from_millis(100));
        if !terminal {
            eprintln!("building: {label}");
        }
        tokio::select! {
            built = builder.run(step) => match built {
                Ok(took) => say(&spinner, format!("built: {label} in {:.1}s", took.as_secs_f64())),
                Err(error) => {
                    say(&spinner, format!("build failed: {error}"));
                    if let BuildError::Failed { output, .. } = &error {
                        eprintln!("--- output of `{}` ---", step.command.join(" "));
                        eprint!("{output}");
                        if !output.is_empty() && !output.ends_with('\n') {
                            eprintln!();
                        }
                        eprintln!("---");
                    }
                    eprintln!("error: a build failed; nothing was started");
                    return Ok(Built::Failed);
                }
            },
            () = &mut interrupted => {
                spinner.abandon_with_message(format!("interrupted: {label}"));
                return Ok(Built::Interrupted);
            }
        }
    }
    Ok(Built::All)
}
