//! The one error type of certification: profiles, report directories, comparisons.

use std::path::PathBuf;

/// Why a profile or a report could not be read or written.
///
/// Reading (profiles, reports to compare) fails on bad input (exit code 2); writing and
/// asking the cluster fail on the machine or the cluster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: invalid profile", file.display())]
    Syntax {
        file: PathBuf,
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// A bad field of a profile file, e.g. `fixtures[1]`.
    #[error(transparent)]
    Profile(crate::input::FieldError),
    #[error(
        "{}: no profile here (a profiles directory holds <name>.yaml files; set it with \
         --profiles-dir or NETPOL_PROFILES_DIR)",
        dir.display()
    )]
    NoProfiles { dir: PathBuf },
    #[error("unknown profile {name:?} in {}: expected one of {}", dir.display(), known.join(", "))]
    UnknownProfile {
        name: String,
        dir: PathBuf,
        known: Vec<String>,
    },
    /// A report file that `compare` reads is not a report.
    #[error("{}: not a {what}", path.display())]
    NotAReport {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A fixture's JUnit or JSON report could not be written.
    #[error(transparent)]
    Report(#[from] crate::report::Error),
    #[error("failed to serialize report.yaml")]
    Yaml(#[source] serde_saphyr::SerializeError),
    /// The cluster could not be asked what it runs (an infrastructure error).
    #[error("failed to {action}")]
    Cluster {
        action: String,
        #[source]
        source: kube::Error,
    },
}

impl Error {
    /// Whether the error is the user's input rather than the machine or the cluster.
    pub fn is_bad_input(&self) -> bool {
        !matches!(
            self,
            Error::Write { .. } | Error::Report(_) | Error::Yaml(_) | Error::Cluster { .. }
        )
    }
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
