//! The one error type of the reporters.

use std::path::PathBuf;

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to serialize the JSON report")]
    Json(#[source] serde_json::Error),
    #[error("failed to serialize the JUnit report")]
    Junit(#[source] quick_junit::SerializeError),
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
