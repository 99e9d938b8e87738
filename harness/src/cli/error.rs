//! Errors and exit statuses of the command line.

use crate::{input, report, runner};

/// How a command ended when it did not fail; [`Status::code`] is the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The command did its job and found nothing wrong.
    Success,
    /// The command did its job and reports a failure (e.g. lint findings with
    /// `--deny-findings`).
    Failure,
}

impl Status {
    pub fn code(self) -> u8 {
        match self {
            Status::Success => 0,
            Status::Failure => 1,
        }
    }
}

/// Why a command could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Input(#[from] input::Error),
    /// A command-line argument that parses but does not fit the inputs, e.g. a pod the
    /// topology lacks. The message names the argument and says what to do.
    #[error("{0}")]
    Argument(String),
    #[error("failed to write the report")]
    Output(#[source] std::io::Error),
    /// `run` could not produce a result: bad fixture input or an infrastructure error.
    #[error(transparent)]
    Run(#[from] runner::Error),
    /// `run` could not write a report file.
    #[error(transparent)]
    Report(#[from] report::Error),
    /// A backend could not do its job (an infrastructure error).
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),
}

impl Error {
    /// The process exit code: 2 for bad input or arguments, 1 when the output failed, 3 when a
    /// backend failed, and for `run` errors the runner's code (2 bad input, 3 infrastructure,
    /// 130 interrupted).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Input(_) | Error::Argument(_) | Error::Report(_) => 2,
            Error::Output(_) => 1,
            Error::Backend(_) => 3,
            Error::Run(error) => error.exit_code(),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Self {
        Error::Output(error)
    }
}
