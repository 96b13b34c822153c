//! `conway deploy SERVICE --version V [--run CMD] [--canary PERCENT]`, `--promote`,
//! `--rollback`: starts the deploy, then follows it, printing each step on stderr,
//! until it is done, rolled back, or a canary waiting for its verdict.

use std::time::Duration;

use conway_client::Client;
use conway_core::api::{DeployRequest, DeployState, Deployment};

use super::{print_json, print_out};
use crate::cli::Output;
use crate::exit::Outcome;

/// How often a deploy is looked at while it runs.
const POLL: Duration = Duration::from_millis(100);

/// What the command line asked.
pub(crate) struct DeployArgs {
    pub(crate) service: String,
    pub(crate) version: Option<String>,
    pub(crate) run: Option<String>,
    pub(crate) canary: Option<u8>,
    pub(crate) promote: bool,
    pub(crate) rollback: bool,
    pub(crate) health_timeout: Option<conway_core::units::Duration>,
    pub(crate) detach: bool,
    pub(crate) status: bool,
}

/// `conway deploy`.
pub(crate) async fn deploy(
    server: &str,
    output: Output,
    args: DeployArgs,
) -> anyhow::Result<Outcome> {
    if args.status {
        let deployment = Client::new(server)?.deployment(&args.service).await?;
        match output {
            Output::Json => print_json(&deployment)?,
            Output::Table => {
                let mut text = format!(
                    "{}: {} → {}, {} ({:.1}s)\n",
                    deployment.service,
                    deployment.from.as_deref().unwrap_or("(no version)"),
                    deployment.to.as_deref().unwrap_or("(no version)"),
                    deployment.state.as_str(),
                    deployment.elapsed_ms as f64 / 1000.0
                );
                for step in &deployment.steps {
                    text.push_str(&format!("  {step}\n"));
                }
                if let Some(reason) = &deployment.reason {
                    text.push_str(&format!("  reason: {reason}\n"));
                }
                print_out(&text)?;
            }
        }
        return Ok(Outcome::Success);
    }
    if !args.promote && !args.rollback && args.version.is_none() {
        return Ok(Outcome::Usage(format!(
            "conway deploy {0} needs --version V (or --promote or --rollback of a canary); see `conway deploy --help`",
            args.service
        )));
    }
    let run = match args.run.as_deref().map(parse_run).transpose() {
        Ok(run) => run,
        Err(message) => return Ok(Outcome::Usage(message)),
    };
    let client = Client::new(server)?;
    let request = DeployRequest {
        version: args.version,
        run,
        canary: args.canary,
        promote: args.promote,
        rollback: args.rollback,
        health_timeout: args.health_timeout,
    };
    let mut deployment = client.deploy(&args.service, &request).await?;
    eprintln!("{}", headline(&deployment, &request));
    // A promote or rollback answers with the canary's steps: only new ones are news.
    let mut shown = deployment.steps.len();
    while !args.detach && !deployment.state.settled() {
        tokio::time::sleep(POLL).await;
        deployment = client.deployment(&args.service).await?;
        for step in deployment.steps.iter().skip(shown) {
            eprintln!("  {step}");
        }
        shown = shown.max(deployment.steps.len());
    }
    if output == Output::Json {
        print_json(&deployment)?;
    }
    let service = &deployment.service;
    let to = deployment.to.as_deref().unwrap_or("(no version)");
    let from = deployment.from.as_deref().unwrap_or("(no version)");
    let seconds = deployment.elapsed_ms as f64 / 1000.0;
    let (line, outcome) = match deployment.state {
        DeployState::Done => (
            format!("{service} runs {to} (took {seconds:.1}s)"),
            Outcome::Success,
        ),
        DeployState::Canary => match &deployment.reason {
            Some(reason) if request.promote => {
                eprintln!("error: the promote failed: {reason}");
                return Ok(Outcome::Failed);
            }
            _ => (
                format!(
                    "canary: {to} takes {}% of {service}'s requests; `conway deploy {service} --promote` or `--rollback`",
                    deployment.canary.unwrap_or_default()
                ),
                Outcome::Success,
            ),
        },
        DeployState::RolledBack => match &deployment.reason {
            Some(reason) => {
                eprintln!(
                    "error: the deploy of {service} {to} was rolled back to {from}: {reason}"
                );
                return Ok(Outcome::Failed);
            }
            None => (format!("{service} rolled back to {from}"), Outcome::Success),
        },
        _ => (
            format!(
                "{service}: deploy {}; see it with `conway deploy {service} --status`",
                deployment.state.as_str()
            ),
            Outcome::Success,
        ),
    };
    if output == Output::Table {
        print_out(&format!("{line}\n"))?;
    }
    Ok(outcome)
}

fn headline(deployment: &Deployment, request: &DeployRequest) -> String {
    let service = &deployment.service;
    let from = deployment.from.as_deref().unwrap_or("(no version)");
    let to = deployment.to.as_deref().unwrap_or("(no version)");
    if request.promote {
        format!("promoting the canary of {service}: every replica to {to}")
    } else if request.rollback {
        format!("rolling back the canary of {service} ({to}) to {from}")
    } else if let Some(percent) = request.canary {
        format!("deploying {service} {to} as a {percent}% canary beside {from}")
    } else {
        format!("deploying {service} {from} → {to}, one replica at a time")
    }
}

/// `--run`: a JSON array of arguments, or words split on whitespace.
fn parse_run(text: &str) -> Result<Vec<String>, String> {
    let argv: Vec<String> = if text.trim_start().starts_with('[') {
        serde_json::from_str(text)
            .map_err(|e| format!("--run: not a JSON array of strings ({e}): {text}"))?
    } else {
        text.split_whitespace().map(str::to_owned).collect()
    };
    if argv.is_empty() {
        return Err("--run needs a command".into());
    }
    Ok(argv)
}

#[cfg(test)]
mod tests {
    use super::parse_run;

    #[test]
    fn run_is_words_or_a_json_array() {
        assert_eq!(
            parse_run("python3 app.py --v2").unwrap(),
            ["python3", "app.py", "--v2"]
        );
        assert_eq!(
            parse_run(r#"["sh", "-c", "exec app --port $PORT"]"#).unwrap(),
            ["sh", "-c", "exec app --port $PORT"]
        );
        assert!(parse_run("  ").is_err());
        assert!(parse_run("[1]").is_err());
    }
}
