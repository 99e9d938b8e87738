//! The conformance suite behind `cargo test` (the `conformance` test target): every planned
//! edge of every fixture becomes a trial; the run happens once, for the selected trials only.
//!
//! Trials are listed from the engine alone, so `--list` never touches a backend. When only
//! some trials are selected (a filter, `--exact`, or `cargo nextest` running one trial per
//! process), only the pods their edges involve are deployed: an edge's verdict depends only
//! on its two pods, their namespaces and the policies, so the smaller run is still correct.
//!
//! Environment:
//! - `NETPOL_FIXTURES`: fixture directories, or directories of them (`:`-separated); default
//!   every fixture under the repository's `fixtures/` except the slow ones of
//!   [`OPT_IN_FIXTURES`], which run only when named (`NETPOL_FIXTURES=$PWD/fixtures` from the
//!   repository root runs them all; relative paths are relative to `harness/`);
//! - `NETPOL_BACKEND`: `local` (default) or `kube`; `kube` also needs `NETPOL_KUBE_CONTEXT`,
//!   so that a test run never picks a cluster by itself;
//! - `NETPOL_VIA`: the probe modes, a comma list of `pod` (default), `service` and `dns`;
//!   trials of a mode other than `pod` have `@mode` after their step
//!   (`meeting-app::policies@service::...`);
//! - `NETPOL_TIMEOUT_MS`, `NETPOL_CONVERGE_TIMEOUT_S`: the per-probe and convergence timeouts.

use super::backends::{BackendKind, every_policy};
use super::error::Error;
use super::events::Observer;
use super::fixture::{Fixture, fixture_dirs};
use super::options::RunOptions;
use super::plan::Plan;
use super::run::run_fixture;
use crate::backend::kube::KubeExec;
use crate::backend::{KubeBackend, LocalBackend, LocalConfig, Via};
use crate::engine::{Engine, lint};
use crate::report::{EdgeReport, message::failure_message};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A fixture of the suite: loaded and planned, or why not.
#[derive(Debug)]
pub enum SuiteFixture {
    Planned {
        fixture: Fixture,
        /// Boxed: a plan is much larger than the invalid variant.
        plan: Box<Plan>,
    },
    /// The fixture could not be loaded or planned; its one trial, `<name>::load`, fails.
    Invalid { name: String, message: String },
}

/// Every fixture of the suite and the trials they make.
#[derive(Debug)]
pub struct Suite {
    pub fixtures: Vec<SuiteFixture>,
}

/// What the run of the selected trials gave: each edge's report by trial name, and per
/// fixture the error that stopped its run.
#[derive(Debug, Default)]
pub struct SuiteResults {
    pub edges: BTreeMap<String, EdgeReport>,
    pub errors: BTreeMap<String, String>,
}

/// Fixtures under the repository's `fixtures/` that the default suite leaves out because a run
/// of them takes minutes (`upstream-model`: 20 steps, about 85 s in pod mode on the local
/// backend); `NETPOL_FIXTURES` runs them.
pub const OPT_IN_FIXTURES: [&str; 1] = ["upstream-model"];

impl Suite {
    /// The fixtures `NETPOL_FIXTURES` names, or [`Suite::default_roots`] of the repository's
    /// `fixtures/` directory.
    pub fn from_env() -> Suite {
        let roots: Vec<PathBuf> = match std::env::var_os("NETPOL_FIXTURES") {
            Some(paths) => std::env::split_paths(&paths).collect(),
            None => {
                Suite::default_roots(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures"))
            }
        };
        Suite::load(&roots)
    }

    /// The fixture directories under `root` but those named in [`OPT_IN_FIXTURES`]; `root`
    /// itself when it cannot be listed, so that loading it reports why.
    pub fn default_roots(root: &Path) -> Vec<PathBuf> {
        match fixture_dirs(root) {
            Ok(dirs) => dirs
                .into_iter()
                .filter(|dir| {
                    let name = dir.file_name().and_then(|name| name.to_str());
                    !name.is_some_and(|name| OPT_IN_FIXTURES.contains(&name))
                })
                .collect(),
            Err(_) => vec![root.to_owned()],
        }
    }

    /// Loads and plans the fixtures under `roots`, in the modes `NETPOL_VIA` names.
    pub fn load(roots: &[PathBuf]) -> Suite {
        match modes_from_env() {
            Ok(modes) => Suite::load_with_modes(roots, &modes),
            Err(message) => Suite {
                fixtures: vec![SuiteFixture::Invalid {
                    name: "NETPOL_VIA".to_owned(),
                    message,
                }],
            },
        }
    }

    /// Loads and plans the fixtures under `roots`, each edge once per mode of `modes`.
    pub fn load_with_modes(roots: &[PathBuf], modes: &[Via]) -> Suite {
        let mut fixtures = Vec::new();
        for root in roots {
            let dirs = match fixture_dirs(root) {
                Ok(dirs) => dirs,
                Err(error) => {
                    let name = root.display().to_string();
                    fixtures.push(SuiteFixture::Invalid {
                        name,
                        message: error.chain(),
                    });
                    continue;
                }
            };
            for dir in dirs {
                fixtures.push(load_one(dir, modes));
            }
        }
        Suite { fixtures }
    }

    /// Every trial name, in suite order (fixtures, then steps, then edges).
    pub fn trial_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for fixture in &self.fixtures {
            match fixture {
                SuiteFixture::Planned { plan, .. } => {
                    names.extend(plan.edges().map(|edge| edge.trial.clone()));
                }
                SuiteFixture::Invalid { name, .. } => names.push(load_trial(name)),
            }
        }
        names
    }

    /// The lint findings of every fixture's intent, as `fixture: kind: message` lines.
    pub fn lint_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        for fixture in &self.fixtures {
            if let SuiteFixture::Planned { fixture, .. } = fixture {
                let engine = Engine::new(&fixture.topology, &fixture.policies);
                let findings = lint(&engine, &fixture.intent);
                warnings.extend(findings.iter().map(|f| format!("{}: {f}", fixture.name)));
            }
        }
        warnings
    }

    /// Runs the fixtures that have selected trials, each deploying only the pods the
    /// selected edges involve, on the backend the environment names. Blocks; makes its own
    /// Tokio runtime.
    pub fn run_selected(
        &self,
        selected: &BTreeSet<String>,
        observer: &dyn Observer,
    ) -> SuiteResults {
        let mut results = SuiteResults::default();
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                let message = format!("failed to start a Tokio runtime: {error}");
                for fixture in self.planned() {
                    results.errors.insert(fixture.name.clone(), message.clone());
                }
                return results;
            }
        };
        let options = options_from_env();
        for (fixture, plan) in self.planned_pairs() {
            let Some(subset) = subset(fixture, plan, selected) else {
                continue;
            };
            let outcome =
                runtime.block_on(run_subset(subset, plan.modes.clone(), &options, observer));
            match outcome {
                Ok(edges) => results
                    .edges
                    .extend(edges.into_iter().map(|e| (e.name.clone(), e))),
                Err(error) => {
                    results.errors.insert(fixture.name.clone(), error.chain());
                }
            }
        }
        results
    }

    fn planned(&self) -> impl Iterator<Item = &Fixture> {
        self.planned_pairs().map(|(fixture, _)| fixture)
    }

    fn planned_pairs(&self) -> impl Iterator<Item = (&Fixture, &Plan)> {
        self.fixtures.iter().filter_map(|fixture| match fixture {
            SuiteFixture::Planned { fixture, plan } => Some((fixture, &**plan)),
            SuiteFixture::Invalid { .. } => None,
        })
    }
}

impl SuiteResults {
    /// The result of trial `name` of fixture `fixture`: `Ok` when its edge passed, otherwise
    /// the failure message.
    ///
    /// # Errors
    /// The edge failed, its fixture's run failed, or it did not run.
    pub fn verdict(&self, fixture: &str, name: &str) -> Result<(), String> {
        if let Some(edge) = self.edges.get(name) {
            return if edge.passed {
                Ok(())
            } else {
                Err(failure_message(edge))
            };
        }
        match self.errors.get(fixture) {
            Some(error) => Err(format!("the harness could not test this edge: {error}")),
            None => Err("this edge was not run (a harness bug: please report it)".to_owned()),
        }
    }
}

/// The trial of a fixture that could not be loaded.
pub fn load_trial(fixture: &str) -> String {
    format!("{fixture}::load")
}

/// `NETPOL_VIA` (default `pod`).
///
/// # Errors
/// An unknown mode.
pub fn modes_from_env() -> Result<Vec<Via>, String> {
    match std::env::var("NETPOL_VIA") {
        Ok(list) if !list.trim().is_empty() => {
            Via::parse_list(&list).map_err(|e| format!("NETPOL_VIA: {e}"))
        }
        _ => Ok(vec![Via::Pod]),
    }
}

fn load_one(dir: PathBuf, modes: &[Via]) -> SuiteFixture {
    let name = dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let loaded = Fixture::load(&dir).and_then(|fixture| {
        let plan = Plan::with_modes(&fixture, modes)?;
        Ok((fixture, plan))
    });
    match loaded {
        Ok((fixture, plan)) => SuiteFixture::Planned {
            fixture,
            plan: Box::new(plan),
        },
        Err(error) => SuiteFixture::Invalid {
            name,
            message: error.chain(),
        },
    }
}

/// The fixture restricted to the pods of its selected edges, and its plan; `None` when no
/// trial of the fixture is selected.
pub fn subset(fixture: &Fixture, plan: &Plan, selected: &BTreeSet<String>) -> Option<Fixture> {
    let mut pods = BTreeSet::new();
    for edge in plan.edges().filter(|edge| selected.contains(&edge.trial)) {
        pods.insert(edge.explanation.src.clone());
        pods.insert(edge.explanation.dst.clone());
    }
    if pods.is_empty() {
        return None;
    }
    if pods.len() == fixture.topology.pods.len() {
        return Some(fixture.clone());
    }
    Some(fixture.restricted(&pods))
}

async fn run_subset(
    fixture: Fixture,
    modes: Vec<Via>,
    options: &RunOptions,
    observer: &dyn Observer,
) -> Result<Vec<EdgeReport>, Error> {
    let plan = Plan::with_modes(&fixture, &modes)?;
    let report = match backend_from_env()? {
        BackendKind::Local => {
            let mut backend = LocalBackend::new(LocalConfig::default());
            run_fixture(&mut backend, &fixture, &plan, options, observer).await?
        }
        BackendKind::Kube => {
            let policies = every_policy([&fixture]);
            let mut backend = KubeBackend::<KubeExec>::from_env(None, &policies)
                .await
                .map_err(|source| Error::Backend {
                    action: "start the backend".to_owned(),
                    source,
                })?;
            run_fixture(&mut backend, &fixture, &plan, options, observer).await?
        }
    };
    Ok(report
        .steps
        .into_iter()
        .flat_map(|step| step.edges)
        .collect())
}

/// `NETPOL_BACKEND` (default `local`); `kube` only with `NETPOL_KUBE_CONTEXT` set.
///
/// # Errors
/// An unknown backend name, or `kube` without a context.
pub fn backend_from_env() -> Result<BackendKind, Error> {
    let kind = match std::env::var("NETPOL_BACKEND") {
        Ok(name) if !name.is_empty() => name.parse()?,
        _ => BackendKind::Local,
    };
    if kind == BackendKind::Kube && std::env::var_os("NETPOL_KUBE_CONTEXT").is_none() {
        return Err(Error::KubeContextMissing);
    }
    Ok(kind)
}

fn options_from_env() -> RunOptions {
    let number = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let mut options = RunOptions::default();
    if let Some(ms) = number("NETPOL_TIMEOUT_MS") {
        options.probe_timeout = Duration::from_millis(ms);
    }
    if let Some(seconds) = number("NETPOL_CONVERGE_TIMEOUT_S") {
        options.converge_timeout = Duration::from_secs(seconds);
    }
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> Suite {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/meeting-app");
        Suite::load(&[root])
    }

    #[test]
    fn the_seed_lists_one_uniquely_named_trial_per_edge_and_step_without_a_backend() {
        let suite = seed();
        let names = suite.trial_names();
        let unique: BTreeSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        assert!(names.len() > 100, "{}", names.len());
        for name in &names {
            let segments: Vec<&str> = name.split("::").collect();
            assert_eq!(segments.len(), 4, "{name}");
            assert_eq!(segments[0], "meeting-app");
            assert!(
                ["policies", "delete-all-policies"].contains(&segments[1]),
                "{name}"
            );
            assert!(["allow", "deny"].contains(&segments[3]), "{name}");
        }
        assert!(names.contains(
            &"meeting-app::policies::ingress-nginx/controller->meeting-app/frontend:3000/TCP::allow"
                .to_owned()
        ));
    }

    #[test]
    fn a_selected_subset_deploys_the_pods_of_its_edges_and_keeps_their_verdicts() {
        let suite = seed();
        let SuiteFixture::Planned { fixture, plan } = &suite.fixtures[0] else {
            panic!("the seed fixture is invalid");
        };
        let selected: BTreeSet<String> = plan
            .edges()
            .filter(|edge| edge.id.contains("meeting-app/redis:6379/TCP"))
            .map(|edge| edge.trial.clone())
            .collect();
        let subset = subset(fixture, plan, &selected).unwrap();
        assert!(subset.topology.pods.len() < fixture.topology.pods.len());
        assert!(
            subset
                .topology
                .pods
                .iter()
                .any(|pod| pod.id() == "meeting-app/redis")
        );
        let subset_plan = Plan::new(&subset).unwrap();
        for trial in &selected {
            let original = plan.edges().find(|e| &e.trial == trial).unwrap();
            let planned = subset_plan.edges().find(|e| &e.trial == trial).unwrap();
            assert_eq!(planned.expected, original.expected, "{trial}");
        }
        assert!(super::subset(fixture, plan, &BTreeSet::new()).is_none());
    }

    #[test]
    fn every_mode_other_than_pod_names_its_trials_after_the_step_and_pod_names_stay() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/meeting-app");
        let pod_only =
            Suite::load_with_modes(std::slice::from_ref(&root), &[Via::Pod]).trial_names();
        let all = Suite::load_with_modes(&[root], &Via::ALL).trial_names();
        assert_eq!(all.len(), pod_only.len() * 3);
        let pod_names: Vec<&String> = all.iter().filter(|n| !n.contains('@')).collect();
        assert_eq!(pod_names, pod_only.iter().collect::<Vec<_>>());
        let redis = "::meeting-app/frontend->meeting-app/redis:6379/TCP::deny";
        for name in [
            "meeting-app::policies",
            "meeting-app::policies@service",
            "meeting-app::policies@dns",
        ] {
            assert!(all.contains(&format!("{name}{redis}")), "{name}");
        }
        assert!(Via::parse_list("pod,dns,pod").unwrap() == [Via::Pod, Via::Dns]);
        assert!(Via::parse_list("ip").is_err());
    }

    #[test]
    fn an_unreadable_fixture_becomes_one_failing_load_trial() {
        let suite = Suite::load(&[PathBuf::from("/nonexistent/fixtures")]);
        assert_eq!(suite.trial_names(), ["/nonexistent/fixtures::load"]);
    }
}
