//! The report directory `certify --out DIR` writes:
//!
//! ```text
//! DIR/report.yaml                      the certification report (see [`report`](super::report))
//! DIR/report.md                        the same for people, with every failing edge explained
//! DIR/<profile>/<fixture>.junit.xml    one testcase per edge
//! DIR/<profile>/<fixture>.json         every edge's result (what `compare` reads)
//! ```

use super::error::{Error, Result};
use super::markdown;
use super::report::{CertificationReport, FixtureOutcome, ProfileRun, fixture_files};
use crate::report::{json, junit};
use std::path::{Path, PathBuf};

/// The report file of a report directory.
pub const REPORT_YAML: &str = "report.yaml";
/// The Markdown report of a report directory.
pub const REPORT_MD: &str = "report.md";

/// Writes the report directory `dir` (created when missing; files of an earlier report are
/// replaced) and returns the files written, in order.
///
/// # Errors
/// [`Error::Write`] or [`Error::Report`] for the first file that cannot be written.
pub fn write_dir(
    dir: &Path,
    report: &CertificationReport,
    runs: &[ProfileRun<'_>],
) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    create_dir(dir)?;
    for run in runs {
        for fixture in &run.fixtures {
            let FixtureOutcome::Ran(result) = &fixture.outcome else {
                continue;
            };
            let (junit_file, json_file) = fixture_files(&run.profile.name, &fixture.name);
            let (junit_path, json_path) = (dir.join(junit_file), dir.join(json_file));
            if let Some(parent) = junit_path.parent() {
                create_dir(parent)?;
            }
            let reports = std::slice::from_ref(result.as_ref());
            junit::write_junit(&junit_path, reports)?;
            json::write_json(&json_path, reports)?;
            written.extend([junit_path, json_path]);
        }
    }
    let yaml = report.to_yaml().map_err(Error::Yaml)?;
    written.push(write(&dir.join(REPORT_YAML), &yaml)?);
    written.push(write(
        &dir.join(REPORT_MD),
        &markdown::render(report, runs),
    )?);
    Ok(written)
}

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.to_owned(),
        source,
    })
}

fn write(path: &Path, text: &str) -> Result<PathBuf> {
    std::fs::write(path, text).map_err(|source| Error::Write {
        path: path.to_owned(),
        source,
    })?;
    Ok(path.to_owned())
}
