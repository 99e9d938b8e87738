//! `compare OLD NEW`: which edges changed verdict between two reports (certification report
//! directories, their `report.yaml`, or JSON run reports), grouped per profile, fixture and
//! step, with a summary (see [`crate::certify::compare`]).
//!
//! Exit statuses: 0 NEW fails no edge that OLD passed; 1 NEW has regressions (pass → fail);
//! 2 a report cannot be read.

use super::error::{Error, Status};
use crate::certify::compare;
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `netpol-harness compare`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The earlier report: a `certify --out` directory, its report.yaml, or a `run --json`
    /// file.
    #[arg(value_name = "OLD")]
    pub old: PathBuf,
    /// The later report, in any of the same forms.
    #[arg(value_name = "NEW")]
    pub new: PathBuf,
}

/// Compares the reports and prints the changed edges and a summary.
///
/// # Errors
/// [`Error::Certify`] when a report cannot be read.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<Status, Error> {
    let old = compare::load(&args.old)?;
    let new = compare::load(&args.new)?;
    let comparison = compare::compare(&old, &new);
    write!(out, "{}", compare::render(&old, &new, &comparison))?;
    Ok(if comparison.has_regressions() {
        Status::Failure
    } else {
        Status::Success
    })
}
