//! Errors and exit statuses of the command line.

use crate::{certify, input, report, runner};

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
    /// A profile or a report to compare is invalid, the certification report could not be
    /// written, or the cluster could not be asked what it runs.
    #[error(transparent)]
    Certify(#[from] certify::Error),
}

impl Error {
    /// The process exit code: 2 for bad input or arguments, 1 when the output failed, and
    /// for `run` errors the runner's code (2 bad input, 3 infrastructure, 130 interrupted);
    /// 3 when the cluster could not be asked what it runs.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Input(_) | Error::Argument(_) | Error::Report(_) => 2,
            Error::Output(_) => 1,
            Error::Run(error) => error.exit_code(),
            Error::Certify(certify::Error::Cluster { .. }) => runner::EXIT_INFRASTRUCTURE,
            Error::Certify(_) => runner::EXIT_BAD_INPUT,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Self {
        Error::Output(error)
    }
}
