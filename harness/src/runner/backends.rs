//! Choosing a backend by name, and running several fixtures, each on a fresh backend.

use super::error::{Error, Result};
use super::events::Observer;
use super::fixture::Fixture;
use super::options::RunOptions;
use super::plan::Plan;
use super::run::run_fixture;
use crate::backend::{Backend, BackendError, LocalBackend, LocalConfig};
use crate::report::RunReport;
use std::fmt;
use std::str::FromStr;

/// The backends a run can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// Network namespaces and nftables on this machine (needs root).
    Local,
    /// A Kubernetes cluster (issue 6; not built yet).
    Kube,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Local => "local",
            BackendKind::Kube => "kube",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackendKind {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        match name {
            "local" => Ok(BackendKind::Local),
            "kube" => Ok(BackendKind::Kube),
            other => Err(Error::UnknownBackend(other.to_owned())),
        }
    }
}

/// Runs every planned fixture on `kind`, one fresh backend each, in order.
///
/// Returns the reports of the fixtures that ran, and the error that stopped the run, if any
/// (the fixtures after it do not run).
pub async fn run_on(
    kind: BackendKind,
    fixtures: &[(Fixture, Plan)],
    options: &RunOptions,
    observer: &dyn Observer,
) -> (Vec<RunReport>, Option<Error>) {
    match kind {
        BackendKind::Local => {
            let make = async || Ok(LocalBackend::new(LocalConfig::default()));
            run_fixtures(make, fixtures, options, observer).await
        }
        // TODO(issue 6): connect a `KubeBackend` here (with the context from the command
        // line or NETPOL_KUBE_CONTEXT) once the Kubernetes backend is merged.
        BackendKind::Kube => (
            Vec::new(),
            Some(Error::BackendUnavailable("kube".to_owned())),
        ),
    }
}

/// Runs every planned fixture on a backend made by `make` (which may connect to a cluster),
/// one fresh backend each, in order; stops at the first error.
pub async fn run_fixtures<B: Backend>(
    mut make: impl AsyncFnMut() -> Result<B, BackendError>,
    fixtures: &[(Fixture, Plan)],
    options: &RunOptions,
    observer: &dyn Observer,
) -> (Vec<RunReport>, Option<Error>) {
    let mut reports = Vec::with_capacity(fixtures.len());
    for (fixture, plan) in fixtures {
        let mut backend = match make().await {
            Ok(backend) => backend,
            Err(source) => {
                let action = "start the backend".to_owned();
                return (reports, Some(Error::Backend { action, source }));
            }
        };
        match run_fixture(&mut backend, fixture, plan, options, observer).await {
            Ok(report) => reports.push(report),
            Err(error) => return (reports, Some(error)),
        }
    }
    (reports, None)
}
