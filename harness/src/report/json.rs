//! The JSON report: an array of [`RunReport`]s, one per fixture, pretty-printed.

use super::error::{Error, Result};
use super::model::RunReport;
use std::path::Path;

/// The JSON text of `reports`.
///
/// # Errors
/// Serialization failed (not expected for these types).
pub fn to_json(reports: &[RunReport]) -> Result<String> {
    serde_json::to_string_pretty(reports).map_err(Error::Json)
}

/// Writes the JSON report of `reports` to `path`.
///
/// # Errors
/// The file cannot be written.
pub fn write_json(path: &Path, reports: &[RunReport]) -> Result<()> {
    let text = to_json(reports)?;
    std::fs::write(path, text + "\n").map_err(|source| Error::Write {
        path: path.to_owned(),
        source,
    })
}
