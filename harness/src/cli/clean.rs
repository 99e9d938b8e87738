//! `netpol-harness clean --backend local`: removes what killed local runs left behind.

use super::error::{Error, Status};
use crate::backend::local;
use std::io::Write;

/// Which backend's leftovers to remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// Network namespaces, nftables tables, processes and work directories named `nph-*`.
    Local,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[arg(long, value_enum, default_value = "local")]
    pub backend: BackendKind,
}

/// Removes the leftovers of local runs whose owner process is dead; live runs and anything
/// not named `nph-*` are left alone.
///
/// # Errors
/// [`Error::Backend`] when something cannot be removed (not root, for instance).
pub fn run(args: &Args, out: &mut dyn Write) -> Result<Status, Error> {
    match args.backend {
        BackendKind::Local => {
            local::preflight::privileges()?;
            let report = local::clean()?;
            for run in &report.runs {
                writeln!(out, "removed run nph-{run}")?;
            }
            writeln!(out, "{report}")?;
        }
    }
    Ok(Status::Success)
}
