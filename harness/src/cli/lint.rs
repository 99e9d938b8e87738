//! `lint`: intended flows the policies deny, policies and peers that select nothing,
//! egress-isolated pods without DNS, and edges one side allows and the other denies.

use super::args::InputArgs;
use super::error::{Error, Status};
use crate::engine::{Engine, lint};
use crate::input;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,
    /// The intended flows (a fixture's intent.yaml); each one the policies deny is a finding.
    #[arg(long, value_name = "FILE")]
    pub intent: Option<PathBuf>,
    /// Exit with status 1 when there are findings.
    #[arg(long)]
    pub deny_findings: bool,
}

/// Runs `lint`: one finding per line (`kind: message`), then a count.
///
/// # Errors
///
/// Invalid input files, or a failure to write the report.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<Status, Error> {
    let (topology, policies) = args.input.load()?;
    let intent = match &args.intent {
        Some(path) => input::load_intent(path, &topology)?,
        None => Vec::new(),
    };
    let engine = Engine::new(&topology, &policies);
    let findings = lint(&engine, &intent);
    for finding in &findings {
        writeln!(out, "{finding}")?;
    }
    match findings.len() {
        0 => writeln!(out, "no findings")?,
        1 => writeln!(out, "1 finding")?,
        n => writeln!(out, "{n} findings")?,
    }
    let failed = args.deny_findings && !findings.is_empty();
    Ok(if failed {
        Status::Failure
    } else {
        Status::Success
    })
}
