//! Choosing a backend by name, and running several fixtures, each on a fresh backend (with
//! the requested faults injected, on the local backend only).

use super::error::{Error, Result};
use super::events::Observer;
use super::fixture::Fixture;
use super::options::RunOptions;
use super::plan::Plan;
use super::run::run_fixture;
use super::steps::ActionKind;
use crate::backend::kube::{ClusterAccess, KubeExec};
use crate::backend::local::Faults;
use crate::backend::{Backend, BackendError, KubeBackend, LocalBackend, LocalConfig};
use crate::engine::NetworkPolicy;
use crate::report::RunReport;
use std::fmt;
use std::str::FromStr;

/// The backends a run can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// Network namespaces and nftables on this machine (needs root).
    Local,
    /// A Kubernetes cluster: the kubeconfig context named by `--kube-context` or
    /// `NETPOL_KUBE_CONTEXT`, or the pod's own service account with `--in-cluster`.
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
    if kind != BackendKind::Local && !options.faults.is_empty() {
        return (Vec::new(), Some(faults_need_local()));
    }
    match kind {
        BackendKind::Local => {
            let faults = match local_faults(&options.faults) {
                Ok(faults) => faults,
                Err(error) => return (Vec::new(), Some(error)),
            };
            let make = async || {
                let faults = faults.clone();
                Ok(LocalBackend::new(LocalConfig {
                    faults,
                    ..LocalConfig::default()
                }))
            };
            run_fixtures(make, fixtures, options, observer).await
        }
        BackendKind::Kube => run_on_kube(None, fixtures, options, observer).await,
    }
}

/// The local backend's faults named by `names` (each one of [`Faults::NAMES`]).
///
/// # Errors
/// [`Error::Faults`] naming an unknown fault and the known ones.
pub fn local_faults(names: &[String]) -> Result<Faults> {
    let mut faults = Faults::default();
    for name in names {
        faults.enable(name).map_err(Error::Faults)?;
    }
    Ok(faults)
}

fn faults_need_local() -> Error {
    Error::Faults(
        "--fault needs --backend local: faults are injected by the local backend's nftables \
         compiler, a cluster's CNI cannot be told to misbehave"
            .to_owned(),
    )
}

/// Runs every planned fixture on the Kubernetes cluster `access` names (`None`: the context
/// `NETPOL_KUBE_CONTEXT` names), one fresh backend (and run id) each, in order.
pub async fn run_on_kube(
    access: Option<ClusterAccess>,
    fixtures: &[(Fixture, Plan)],
    options: &RunOptions,
    observer: &dyn Observer,
) -> (Vec<RunReport>, Option<Error>) {
    if !options.faults.is_empty() {
        return (Vec::new(), Some(faults_need_local()));
    }
    let policies = every_policy(fixtures.iter().map(|(fixture, _)| fixture));
    let make = async || KubeBackend::<KubeExec>::open(access.clone(), &policies).await;
    run_fixtures(make, fixtures, options, observer).await
}

/// Every policy the fixtures may apply, their steps' included: the kube backend keeps the
/// namespaces they select by name under their exact names.
pub(crate) fn every_policy<'a>(
    fixtures: impl IntoIterator<Item = &'a Fixture>,
) -> Vec<NetworkPolicy> {
    let mut policies = Vec::new();
    for fixture in fixtures {
        policies.extend(fixture.policies.iter().cloned());
        for action in fixture.steps.iter().flat_map(|step| &step.actions) {
            if let ActionKind::Apply {
                policies: applied, ..
            } = &action.kind
            {
                policies.extend(applied.iter().cloned());
            }
        }
    }
    policies
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
