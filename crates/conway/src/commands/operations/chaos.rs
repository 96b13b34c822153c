//! `conway chaos kill SERVICE [--instance ID] [--every 10s] [--for 2m]`, `conway chaos
//! stop [JOB]`, `conway chaos jobs` and `conway events`.

use comfy_table::Table;
use conway_client::Client;
use conway_core::api::{ChaosJob, ChaosJobState, ChaosKillRequest};
use conway_core::units::Duration;

use super::{print_json, print_out, timestamp};
use crate::cli::Output;
use crate::exit::Outcome;

/// `conway chaos kill`: starts the job and returns; it runs in `conway up`.
pub(crate) async fn chaos_kill(
    server: &str,
    output: Output,
    request: ChaosKillRequest,
) -> anyhow::Result<Outcome> {
    let job = Client::new(server)?.chaos_kill(&request).await?;
    match output {
        Output::Json => print_json(&job)?,
        Output::Table => {
            let what = match (&job.request.every, &job.request.duration) {
                (None, _) => "killed once".to_owned(),
                (Some(every), None) => {
                    format!("kills every {every} until `conway chaos stop {}`", job.id)
                }
                (Some(every), Some(total)) => format!("kills every {every} for {total}"),
            };
            print_out(&format!(
                "{}: {} ({what}; {} so far)\n",
                job.id,
                target(&job),
                job.kills
            ))?;
        }
    }
    Ok(Outcome::Success)
}

/// `conway chaos stop [JOB]`: stops one job, or every running one.
pub(crate) async fn chaos_stop(
    server: &str,
    output: Output,
    job: Option<&str>,
) -> anyhow::Result<Outcome> {
    let client = Client::new(server)?;
    let ids: Vec<String> = match job {
        Some(id) => vec![id.to_owned()],
        None => client
            .chaos_jobs()
            .await?
            .into_iter()
            .filter(|j| j.state == ChaosJobState::Running)
            .map(|j| j.id)
            .collect(),
    };
    let mut stopped = Vec::new();
    for id in ids {
        stopped.push(client.stop_chaos_job(&id).await?);
    }
    match output {
        Output::Json => print_json(&stopped)?,
        Output::Table if stopped.is_empty() => print_out("no chaos job runs\n")?,
        Output::Table => {
            for job in &stopped {
                print_out(&format!("stopped {} after {} kills\n", job.id, job.kills))?;
            }
        }
    }
    Ok(Outcome::Success)
}

/// `conway chaos jobs`.
pub(crate) async fn chaos_jobs(server: &str, output: Output) -> anyhow::Result<Outcome> {
    let jobs = Client::new(server)?.chaos_jobs().await?;
    match output {
        Output::Json => print_json(&jobs)?,
        Output::Table if jobs.is_empty() => print_out("no chaos jobs\n")?,
        Output::Table => {
            let mut table = plain(&["JOB", "TARGET", "EVERY", "FOR", "STATE", "KILLS", "STARTED"]);
            for job in &jobs {
                let show = |d: &Option<Duration>| d.map_or("-".to_owned(), |d| d.to_string());
                table.add_row([
                    job.id.clone(),
                    target(job),
                    show(&job.request.every),
                    show(&job.request.duration),
                    state(job).to_owned(),
                    job.kills.to_string(),
                    timestamp(job.started_us),
                ]);
            }
            print_out(&render(&table))?;
        }
    }
    Ok(Outcome::Success)
}

/// `conway events`: what was done to the system, oldest first.
pub(crate) async fn events(server: &str, output: Output) -> anyhow::Result<Outcome> {
    let events = Client::new(server)?.events().await?;
    match output {
        Output::Json => print_json(&events)?,
        Output::Table if events.is_empty() => print_out("no events\n")?,
        Output::Table => {
            let mut table = plain(&["TIME (UTC)", "KIND", "SERVICE", "INSTANCE", "MESSAGE"]);
            for event in &events {
                table.add_row([
                    timestamp(event.time_us),
                    event.kind.clone(),
                    event.service.clone().unwrap_or_else(|| "-".into()),
                    event.instance.clone().unwrap_or_else(|| "-".into()),
                    event.message.lines().next().unwrap_or_default().to_owned(),
                ]);
            }
            print_out(&render(&table))?;
        }
    }
    Ok(Outcome::Success)
}

fn target(job: &ChaosJob) -> String {
    match &job.request.instance {
        Some(instance) => instance.clone(),
        None => format!("{} (a random instance)", job.request.service),
    }
}

fn state(job: &ChaosJob) -> &'static str {
    match job.state {
        ChaosJobState::Running => "running",
        ChaosJobState::Finished => "finished",
        ChaosJobState::Stopped => "stopped",
    }
}

/// A borderless table whose columns are separated by two spaces.
fn plain(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_style(comfy_table::presets::NOTHING)
        .set_header(header.iter().copied());
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table
}

/// The table's lines, without the padding after the last column.
fn render(table: &Table) -> String {
    table
        .lines()
        .map(|line| line.trim_end().to_owned() + "\n")
        .collect()
}
