//! The report directory `certify --out DIR` writes:
//!
//! ```text
//! DIR/report.yaml                      the certification report (see [`report`](super::report))
//! DIR/report.md                        the same for people, with every failing edge explained
//! DIR/report.html                      one self-contained page: per profile, fixture and step
//!                                      the truth table (see `crate::report::html`)
//! DIR/<profile>/<fixture>.junit.xml    one testcase per edge
//! DIR/<profile>/<fixture>.json         every edge's result (what `compare` reads)
//! ```

use super::error::{Error, Result};
use super::markdown::{self, convergence_text};
use super::report::{CertificationReport, FixtureOutcome, ProfileRun, fixture_files};
use crate::report::html::{Page, ProfilePage, render};
use crate::report::{RunReport, json, junit};
use std::path::{Path, PathBuf};

/// The report file of a report directory.
pub const REPORT_YAML: &str = "report.yaml";
/// The Markdown report of a report directory.
pub const REPORT_MD: &str = "report.md";
/// The HTML report of a report directory.
pub const REPORT_HTML: &str = "report.html";

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
    written.push(write(&dir.join(REPORT_HTML), &html_page(report, runs))?);
    Ok(written)
}

/// The HTML page of the report: the facts of `report.yaml` at the top, then per profile the
/// truth tables of its fixtures' runs (none for a skipped profile; the facts say why).
pub fn html_page(report: &CertificationReport, runs: &[ProfileRun<'_>]) -> String {
    let implementation = &report.implementation;
    let counts = report.counts;
    let mut result = format!(
        "{}: {} trials, {} passed, {} failed, {} skipped",
        report.result.as_str(),
        counts.total(),
        counts.passed,
        counts.failed,
        counts.skipped
    );
    if let Some(note) = &report.note {
        result = format!("{result} ({note}: {})", report.faults.join(", "));
    }
    let mut facts = vec![
        ("Implementation", implementation.title()),
        ("Found by", implementation.source.clone()),
        (
            "Kubernetes",
            implementation
                .kubernetes_version
                .clone()
                .unwrap_or_else(|| "none (local backend)".to_owned()),
        ),
        ("Backend", report.backend.clone()),
        (
            "Harness",
            format!("netpol-harness {}", report.harness_version),
        ),
        ("Result", result),
        (
            "Convergence (median / p90 / max)",
            convergence_text(&report.convergence),
        ),
        ("Probe modes", report.probe_modes.join(", ")),
        ("Started", report.started_at.clone()),
        ("Finished", report.finished_at.clone()),
        ("Fixtures digest", report.fixtures_digest.clone()),
    ];
    if let Some(error) = &report.error {
        facts.push(("Stopped by", error.clone()));
    }
    for fixture in report.profiles.iter().flat_map(|p| &p.fixtures) {
        if let Some(reason) = &fixture.skipped {
            facts.push(("Skipped", format!("{}: {reason}", fixture.path)));
        }
    }
    let facts: Vec<(String, String)> = facts
        .into_iter()
        .map(|(label, value)| (label.to_owned(), value))
        .collect();
    let reports: Vec<Vec<RunReport>> = runs
        .iter()
        .map(|run| run.reports().cloned().collect())
        .collect();
    let profiles: Vec<ProfilePage<'_>> = runs
        .iter()
        .zip(&reports)
        .map(|(run, reports)| ProfilePage {
            name: &run.profile.name,
            reports,
        })
        .collect();
    let title = format!("NetworkPolicy conformance: {}", implementation.title());
    render(&Page {
        title: &title,
        facts: &facts,
        profiles: &profiles,
    })
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
