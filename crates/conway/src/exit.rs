//! Exit codes, documented once: 0 success, 1 the work failed (an invalid manifest, a
//! server that answered with an error), 2 a usage error or a command that is not built
//! yet, 3 the control plane could not be reached (nothing answered at `--server` /
//! `CONWAY_URL`).

use std::process::ExitCode;

use conway_client::ClientError;

/// How a command ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Done.
    Success,
    /// The command ran and found a problem it already reported (exit 1).
    Failed,
    /// The command is declared but not built yet (exit 2).
    NotBuilt(&'static str),
    /// The command line asks for something that cannot be (exit 2).
    Usage(String),
    /// Nothing answered at the control plane's address (exit 3); the message names it.
    Unreachable(String),
    /// An error to print on stderr (exit 1).
    Error(anyhow::Error),
}

impl From<anyhow::Result<Outcome>> for Outcome {
    /// A client error that means the control plane is not there exits 3, and a
    /// `--server` that is not a URL exits 2; every other error exits 1.
    fn from(result: anyhow::Result<Outcome>) -> Self {
        result.unwrap_or_else(|error| match error.downcast_ref::<ClientError>() {
            Some(client @ ClientError::Unreachable { .. }) => Self::Unreachable(client.to_string()),
            Some(client @ ClientError::InvalidUrl { .. }) => {
                Self::Usage(format!("--server: {client}"))
            }
            _ => Self::Error(error),
        })
    }
}

impl Outcome {
    /// Prints what remains to be said and turns the outcome into an exit code.
    pub(crate) fn report(self) -> ExitCode {
        match self {
            Self::Success => ExitCode::SUCCESS,
            Self::Failed => ExitCode::from(1),
            Self::NotBuilt(command) => {
                eprintln!("conway {command}: not yet supported in this version of conway");
                ExitCode::from(2)
            }
            Self::Usage(message) => {
                eprintln!("error: {message}");
                ExitCode::from(2)
            }
            Self::Unreachable(message) => {
                eprintln!("error: {message}");
                ExitCode::from(3)
            }
            Self::Error(error) => {
                eprintln!("error: {error:#}");
                ExitCode::from(1)
            }
        }
    }
}
