//! The verbs that change a running system through `conway up`: `conway deploy`,
//! `conway apply`, `conway chaos kill|stop|jobs` and `conway events`. Each speaks to
//! the control plane through `conway-client`; API errors exit 1, an unreachable
//! control plane 3 (see `crate::exit`).

mod apply;
mod chaos;
mod deploy;

use std::io::Write;

use serde::Serialize;

pub(crate) use apply::apply;
pub(crate) use chaos::{chaos_jobs, chaos_kill, chaos_stop, events};
pub(crate) use deploy::{DeployArgs, deploy};

fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    let mut json = serde_json::to_string_pretty(value)?;
    json.push('\n');
    print_out(&json)
}

/// Writes to stdout; a reader that went away (`conway events | head`) is no error.
fn print_out(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(()),
    }
}

/// `2024-05-01 12:00:00.123` (UTC) from microseconds since the Unix epoch.
fn timestamp(micros: i64) -> String {
    let seconds = micros.div_euclid(1_000_000);
    let millis = micros.rem_euclid(1_000_000) / 1_000;
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{millis:03}",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_utc() {
        assert_eq!(super::timestamp(0), "1970-01-01 00:00:00.000");
        assert_eq!(
            super::timestamp(1_700_000_000_123_456),
            "2023-11-14 22:13:20.123"
        );
    }
}
