//! Sensitivity: the same fixture verified once on a correct data plane and once per injected
//! fault (issue 7), on one local deployment, to show which faults the fixture would catch.
//!
//! A *fault run* is the fixture's planned steps verified with one set of
//! [`Faults`] switched on; its report records their names in
//! [`Metadata::faults`](crate::report::Metadata::faults). Between fault runs the faults are
//! switched off, the policies removed and the fixture's labels put back, so each run starts
//! from the state a fresh deployment would have.

use super::error::{Error, Result};
use super::events::Observer;
use super::fixture::Fixture;
use super::options::RunOptions;
use super::plan::Plan;
use super::readdress::readdress;
use super::run::{deploy_and_baseline, interruptible, rerun_fixture, reset_fixture, with_teardown};
use crate::backend::local::Faults;
use crate::backend::{Backend, BackendError, LocalBackend, LocalConfig};
use crate::report::{PhaseTimes, RunReport};
use tracing::Instrument;

/// One verification of a deployed fixture: the faults switched on and the plan probed.
#[derive(Debug, Clone, Copy)]
pub struct FaultRun<'a> {
    /// [`Faults::default`] for the clean run.
    pub faults: &'a Faults,
    /// The fixture's plan in the probe modes that show `faults`
    /// ([`Faults::shown_via`]).
    pub plan: &'a Plan,
}

/// Deploys `fixture` once on the local backend, then verifies it once per entry of `runs`,
/// and tears down whatever happens.
///
/// The first run's plan is also the baseline's: its modes must hold every mode the other
/// runs probe, so that the positive control proves each of them connects. Make it the clean
/// run.
///
/// Returns one report per entry of `runs`, in order; the first carries the deploy and
/// baseline times.
///
/// # Errors
/// Infrastructure errors, as [`run_fixture`](super::run_fixture); failing edges are in the
/// reports.
pub async fn sensitivity_local(
    fixture: &Fixture,
    runs: &[FaultRun<'_>],
    options: &RunOptions,
    observer: &dyn Observer,
) -> Result<Vec<RunReport>> {
    let Some(first) = runs.first() else {
        return Ok(Vec::new());
    };
    let mut backend = LocalBackend::new(LocalConfig::default());
    let mut phases = PhaseTimes::default();
    let work = async {
        deploy_and_baseline(
            &mut backend,
            fixture,
            first.plan,
            options,
            observer,
            &mut phases,
        )
        .await?;
        let mut reports = Vec::with_capacity(runs.len());
        for run in runs {
            // The local backend gives pods their fixture addresses, so this is normally the
            // run's plan itself.
            let readdressed = readdress(&backend, run.plan)?;
            let plan = readdressed.as_ref().map_or(run.plan, |r| &r.plan);
            let report = fault_run(&mut backend, fixture, plan, run.faults, options, observer);
            reports.push(report.await?);
        }
        Ok(reports)
    };
    let result = interruptible(work, options.handle_ctrl_c).await;
    let teardown = backend.teardown().await;
    let mut reports = with_teardown(result, teardown)?;
    if let Some(first) = reports.first_mut() {
        first.metadata.phases = phases;
    }
    Ok(reports)
}

/// One fault run on a deployed backend: clean state first, then the faults, then the steps.
async fn fault_run(
    backend: &mut LocalBackend,
    fixture: &Fixture,
    plan: &Plan,
    faults: &Faults,
    options: &RunOptions,
    observer: &dyn Observer,
) -> Result<RunReport> {
    let set_faults = |backend: &mut LocalBackend, faults: Faults| {
        backend
            .set_faults(faults)
            .map_err(|source: BackendError| Error::Backend {
                action: "set the injected faults".to_owned(),
                source,
            })
    };
    // Reset with a correct data plane: under `late-enforcement` the removal of the previous
    // run's policies would itself be late.
    set_faults(backend, Faults::default())?;
    reset_fixture(backend, fixture).await?;
    set_faults(backend, faults.clone())?;
    let options = RunOptions {
        faults: faults.names(),
        ..options.clone()
    };
    let span = tracing::info_span!("fault_run", faults = ?options.faults);
    rerun_fixture(backend, fixture, plan, &options, observer)
        .instrument(span)
        .await
}
