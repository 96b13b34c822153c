//! Writing results to stdout: JSON for `--output json`, text for people. A reader that
//! went away (`conway events | head`) is no error.

use std::io::Write;

use serde::Serialize;

/// `value` as pretty JSON and a newline.
pub(crate) fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    let mut json = serde_json::to_string_pretty(value)?;
    json.push('\n');
    print_out(&json)
}

/// Writes `text` to stdout.
pub(crate) fn print_out(text: &str) -> anyhow::Result<()> {
    write_out(text).map(drop)
}

/// Writes `text` to stdout; false when the reader went away (`conway logs -f | head`),
/// so that a follower can stop.
pub(crate) fn write_out(text: &str) -> anyhow::Result<bool> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(error) => Err(error.into()),
    }
}
