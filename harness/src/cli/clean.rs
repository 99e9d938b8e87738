//! `clean`: removes what runs of the harness left behind on a backend.
//!
//! - `local`: the namespaces, processes and directories of runs whose owner process is dead;
//! - `kube`: every object labelled `app.kubernetes.io/managed-by=netpol-harness` in the
//!   cluster of `--kube-context` (or `NETPOL_KUBE_CONTEXT`): the namespaces runs created, and
//!   the pods, Services and NetworkPolicies they left in namespaces they reused. Nothing
//!   unlabelled is touched.

use super::args::KubeArgs;
use super::error::{Error, Status};
use super::run::parse_backend;
use crate::backend::{BackendError, kube, local};
use crate::runner::{self, BackendKind};
use std::io::Write;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The backend to clean: `local` (this machine) or `kube` (a cluster).
    #[arg(long, value_name = "NAME", default_value = "local", value_parser = parse_backend)]
    pub backend: BackendKind,
    #[command(flatten)]
    pub kube: KubeArgs,
}

/// Cleans the backend and lists what was removed.
///
/// # Errors
/// [`Error::Run`] with an infrastructure error when the backend cannot be cleaned.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<Status, Error> {
    let failed = |source: BackendError| {
        Error::Run(runner::Error::Backend {
            action: "clean the backend".to_owned(),
            source,
        })
    };
    match args.backend {
        BackendKind::Local => {
            let report = local::clean().map_err(failed)?;
            writeln!(out, "{report}")?;
        }
        BackendKind::Kube => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(Error::Output)?;
            let cleaned = runtime
                .block_on(kube::clean_cluster(args.kube.access()))
                .map_err(|error| failed(error.into()))?;
            for object in &cleaned.deleted {
                writeln!(out, "deleted {object}")?;
            }
            writeln!(out, "removed {} labelled object(s)", cleaned.deleted.len())?;
        }
    }
    Ok(Status::Success)
}
