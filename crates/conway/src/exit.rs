//! Exit codes, documented once: 0 success, 1 the work failed (an invalid manifest, a
//! server that answered with an error), 2 a usage error or a command that is not built
//! yet, 3 the control plane could not be reached.

use std::process::ExitCode;

/// How a command ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Done.
    Success,
    /// The command ran and found a problem it already reported (exit 1).
    Failed,
    /// The command is declared but not built yet (exit 2).
    NotBuilt(&'static str),
    /// An error to print on stderr (exit 1).
    Error(anyhow::Error),
}

impl From<anyhow::Result<Outcome>> for Outcome {
    fn from(result: anyhow::Result<Outcome>) -> Self {
        result.unwrap_or_else(Outcome::Error)
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
            Self::Error(error) => {
                eprintln!("error: {error:#}");
                ExitCode::from(1)
            }
        }
    }
}
