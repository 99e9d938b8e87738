//! The phases of a run: deploy, baseline, then for each planned step: change, converge,
//! verify; teardown always, also after an error or Ctrl-C.

use super::converge::{Converged, baseline, converge, millis};
use super::error::{Error, Result};
use super::events::{Event, Observer, Phase};
use super::fixture::Fixture;
use super::options::RunOptions;
use super::plan::{Plan, PlannedStep, baseline_edges};
use super::readdress::Readdressed;
use super::steps::ActionKind;
use crate::backend::{Backend, BackendError};
use crate::report::{EdgeReport, Metadata, PhaseTimes, RunReport, StepReport, passes, rfc3339};
use std::future::Future;
use std::time::SystemTime;
use tokio::time::Instant;
use tracing::Instrument;

/// The harness's version, recorded in reports.
pub const HARNESS_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Runs `plan` (made from `fixture`) on `backend` and tears it down, whatever happens.
///
/// The fixture's topology is deployed as given: pass a
/// [`restricted`](Fixture::restricted) fixture and its plan to run a subset of edges.
///
/// # Errors
/// Infrastructure errors (a backend call failed, the positive control failed, a probe batch
/// broke) and [`Error::Interrupted`] after Ctrl-C when [`RunOptions::handle_ctrl_c`] is set.
/// Failing edges are not errors: they are in the report.
pub async fn run_fixture<B: Backend>(
    backend: &mut B,
    fixture: &Fixture,
    plan: &Plan,
    options: &RunOptions,
    observer: &dyn Observer,
) -> Result<RunReport> {
    let started_at = SystemTime::now();
    observer.event(&Event::FixtureStarted {
        fixture: &fixture.name,
        pods: fixture.topology.pods.len(),
        steps: plan.steps.len(),
    });
    let mut phases = PhaseTimes::default();
    let result = interruptible(
        execute(&mut *backend, fixture, plan, options, observer, &mut phases),
        options.handle_ctrl_c,
    )
    .await;
    if let Err(error) = &result {
        observer.event(&Event::Failed {
            message: error.to_string(),
        });
    }
    let teardown = timed_phase(Phase::Teardown, 0, None, observer, backend.teardown()).await;
    phases.teardown_ms = teardown.1;
    let (steps, rewrites) = with_teardown(result, teardown.0)?;
    let mut report = report(backend.name(), fixture, options, started_at, phases, steps);
    report.metadata.readdressed = rewrites;
    Ok(report)
}

/// Combines a run's result with its teardown's: the run's error wins (a teardown that also
/// failed is logged); a run that succeeded fails when its teardown did.
pub(super) fn with_teardown<T>(
    result: Result<T>,
    teardown: std::result::Result<(), crate::backend::BackendError>,
) -> Result<T> {
    match (result, teardown) {
        (Ok(value), Ok(())) => Ok(value),
        (Ok(_), Err(source)) => Err(Error::Backend {
            action: "tear down".to_owned(),
            source,
        }),
        (Err(error), teardown) => {
            if let Err(source) = teardown {
                tracing::warn!(error = %source, "teardown after a failed run also failed");
            }
            Err(error)
        }
    }
}

/// Verifies `plan` again on a `backend` that already runs `fixture`'s topology (deployed, its
/// baseline passed, and put back in its starting state by [`reset_fixture`]): runs the
/// planned steps. Nothing is deployed or torn down, so one deployment serves several runs,
/// e.g. one per injected fault.
///
/// # Errors
/// As [`run_fixture`], without Ctrl-C handling: the caller owns the deployment.
pub async fn rerun_fixture<B: Backend>(
    backend: &mut B,
    fixture: &Fixture,
    plan: &Plan,
    options: &RunOptions,
    observer: &dyn Observer,
) -> Result<RunReport> {
    let started_at = SystemTime::now();
    let steps = run_steps(backend, plan, options, observer).await?;
    let phases = PhaseTimes::default();
    Ok(report(
        backend.name(),
        fixture,
        options,
        started_at,
        phases,
        steps,
    ))
}

/// Puts a deployed fixture back in its starting state: no policy, its own labels.
///
/// # Errors
/// A backend call failed (an infrastructure error).
pub async fn reset_fixture<B: Backend>(backend: &mut B, fixture: &Fixture) -> Result<()> {
    let backend_error = |action: &str| {
        let action = action.to_owned();
        move |source| Error::Backend { action, source }
    };
    backend
        .apply_policies(&[])
        .await
        .map_err(backend_error("remove the policies"))?;
    let topology = &fixture.topology;
    for namespace in &topology.namespaces {
        backend
            .set_namespace_labels(&namespace.name, namespace.labels.clone())
            .await
            .map_err(backend_error("reset the namespace labels"))?;
    }
    for (index, pod) in topology.pods.iter().enumerate() {
        backend
            .set_pod_labels(index, pod.labels.clone())
            .await
            .map_err(backend_error("reset the pod labels"))?;
    }
    Ok(())
}

fn report(
    backend: &str,
    fixture: &Fixture,
    options: &RunOptions,
    started_at: SystemTime,
    phases: PhaseTimes,
    steps: Vec<StepReport>,
) -> RunReport {
    RunReport {
        metadata: Metadata {
            fixture: fixture.name.clone(),
            backend: backend.to_owned(),
            harness_version: HARNESS_VERSION.to_owned(),
            topology_hash: fixture.source_hash.clone(),
            started_at: rfc3339(started_at),
            finished_at: rfc3339(SystemTime::now()),
            probe_timeout_ms: u64::try_from(options.probe_timeout.as_millis()).unwrap_or(0),
            converge_timeout_ms: u64::try_from(options.converge_timeout.as_millis()).unwrap_or(0),
            faults: options.faults.clone(),
            pods: fixture.topology.pods.len(),
            readdressed: Vec::new(),
            phases,
        },
        steps,
    }
}

/// Runs `work`, or stops it at the first Ctrl-C when `enabled`.
pub(super) async fn interruptible<T>(
    work: impl Future<Output = Result<T>>,
    enabled: bool,
) -> Result<T> {
    if !enabled {
        return work.await;
    }
    let interrupt = async {
        // Without a signal handler there is nothing to wait for; the run goes on.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = work => result,
        () = interrupt => {
            tracing::warn!("interrupted: tearing down");
            Err(Error::Interrupted)
        }
    }
}

/// Awaits a backend call as a phase: events around it, and its wall time in milliseconds.
async fn timed_phase<T>(
    phase: Phase,
    edges: usize,
    step: Option<&str>,
    observer: &dyn Observer,
    work: impl Future<Output = std::result::Result<T, BackendError>>,
) -> (std::result::Result<T, BackendError>, f64) {
    observer.event(&Event::PhaseStarted { phase, step, edges });
    let start = Instant::now();
    let result = work.await;
    let elapsed = start.elapsed();
    match &result {
        Ok(_) => observer.event(&Event::PhaseFinished { phase, elapsed }),
        // Failures of the run's phases are reported once, by `run_fixture`.
        Err(error) if phase == Phase::Teardown => observer.event(&Event::Failed {
            message: error.to_string(),
        }),
        Err(_) => {}
    }
    (result, millis(elapsed))
}

async fn execute<B: Backend>(
    backend: &mut B,
    fixture: &Fixture,
    plan: &Plan,
    options: &RunOptions,
    observer: &dyn Observer,
    phases: &mut PhaseTimes,
) -> Result<(Vec<StepReport>, Vec<String>)> {
    let readdressed =
        deploy_and_baseline(backend, fixture, plan, options, observer, phases).await?;
    let (plan, rewrites) = match &readdressed {
        Some(readdressed) => (&readdressed.plan, readdressed.rewrites.clone()),
        None => (plan, Vec::new()),
    };
    Ok((run_steps(backend, plan, options, observer).await?, rewrites))
}

/// Runs every planned step in order: its changes, convergence and verification.
async fn run_steps<B: Backend>(
    backend: &mut B,
    plan: &Plan,
    options: &RunOptions,
    observer: &dyn Observer,
) -> Result<Vec<StepReport>> {
    let mut reports = Vec::with_capacity(plan.steps.len());
    for step in &plan.steps {
        let span = tracing::info_span!("step", step = %step.name);
        let report = run_step(backend, step, options, observer).instrument(span);
        reports.push(report.await?);
    }
    Ok(reports)
}

/// Deploys the fixture's topology and proves every edge connects with no policy.
///
/// Returns the plan to run instead of `plan` when the pods got other addresses than the
/// fixture's and some `ipBlock` had to follow them (see [`readdress`](super::readdress)).
///
/// # Errors
/// Infrastructure errors, and [`Error::AddressDependent`] when the pods' addresses change a
/// verdict that no rewritten `ipBlock` can keep.
pub(super) async fn deploy_and_baseline<B: Backend>(
    backend: &mut B,
    fixture: &Fixture,
    plan: &Plan,
    options: &RunOptions,
    observer: &dyn Observer,
    phases: &mut PhaseTimes,
) -> Result<Option<Readdressed>> {
    let topology = &fixture.topology;
    let (deployed, deploy_ms) =
        timed_phase(Phase::Deploy, 0, None, observer, backend.deploy(topology)).await;
    phases.deploy_ms = deploy_ms;
    deployed.map_err(|source| Error::Backend {
        action: "deploy the topology".to_owned(),
        source,
    })?;
    let readdressed = super::readdress::readdress(&*backend, plan)?;

    let edges = baseline_edges(&fixture.name, topology, &plan.modes);
    let phase = Phase::Baseline;
    observer.event(&Event::PhaseStarted {
        phase,
        step: None,
        edges: edges.len(),
    });
    let start = Instant::now();
    baseline(&*backend, topology, &edges, options, observer).await?;
    observer.event(&Event::PhaseFinished {
        phase,
        elapsed: start.elapsed(),
    });
    phases.baseline_ms = millis(start.elapsed());
    Ok(readdressed)
}

/// Makes a step's changes, converges and turns the last round into the step's report.
async fn run_step<B: Backend>(
    backend: &mut B,
    step: &PlannedStep,
    options: &RunOptions,
    observer: &dyn Observer,
) -> Result<StepReport> {
    let phase = Phase::Converge;
    let edges = step.edges.len();
    observer.event(&Event::PhaseStarted {
        phase,
        step: Some(&step.name),
        edges,
    });
    let changed_at = Instant::now();
    apply_changes(backend, step).await?;
    let topology = &step.state.topology;
    let Converged {
        observations,
        convergence,
    } = converge(
        &*backend,
        topology,
        &step.edges,
        changed_at,
        options,
        observer,
    )
    .await?;
    observer.event(&Event::PhaseFinished {
        phase,
        elapsed: changed_at.elapsed(),
    });
    let edges = step
        .edges
        .iter()
        .zip(observations)
        .map(|(planned, observed)| EdgeReport {
            name: planned.trial.clone(),
            src: planned.explanation.src.clone(),
            dst: planned.explanation.dst.clone(),
            port: planned.edge.port,
            protocol: planned.edge.protocol,
            expected: planned.expected,
            via: planned.via.to_string(),
            dialled: super::probing::dial(&*backend, planned.edge.dst, planned.via)
                .map(|dial| dial.to_string())
                .unwrap_or_default(),
            passed: passes(planned.expected, observed.outcome),
            observed: observed.outcome,
            latency_ms: observed.latency_ms,
            detail: observed.detail,
            explanation: planned.explanation.to_string(),
        })
        .collect();
    Ok(StepReport {
        name: step.name.clone(),
        description: step.description.clone(),
        convergence,
        edges,
    })
}

/// Tells the backend what the step changes: the whole policy set when it changes, then the
/// labels it sets, taken from the step's planned state.
async fn apply_changes<B: Backend>(backend: &mut B, step: &PlannedStep) -> Result<()> {
    let backend_error = |action: String| move |source| Error::Backend { action, source };
    let state = &step.state;
    if step.changes_policies() {
        let action = format!("apply the policies of step {}", step.name);
        backend
            .apply_policies(&state.policies)
            .await
            .map_err(backend_error(action))?;
    }
    for action in &step.actions {
        match &action.kind {
            ActionKind::SetNamespaceLabels { namespace, .. } => {
                let labels = state
                    .topology
                    .namespaces
                    .iter()
                    .find(|ns| &ns.name == namespace)
                    .map(|ns| ns.labels.clone())
                    .unwrap_or_default();
                let what = format!("set the labels of namespace {namespace}");
                backend
                    .set_namespace_labels(namespace, labels)
                    .await
                    .map_err(backend_error(what))?;
            }
            ActionKind::SetPodLabels { pod, .. } => {
                let Some(index) = state.topology.pods.iter().position(|p| &p.id() == pod) else {
                    continue;
                };
                let labels = state.topology.pods[index].labels.clone();
                let what = format!("set the labels of pod {pod}");
                backend
                    .set_pod_labels(index, labels)
                    .await
                    .map_err(backend_error(what))?;
            }
            _ => {}
        }
    }
    Ok(())
}
