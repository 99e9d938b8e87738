//! What a run tells its observers while it goes: the runner and the progress display talk
//! only through these events, so the runner never prints.

use std::fmt;
use std::time::Duration;

/// A phase of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Creating the probe pods and waiting until they are ready.
    Deploy,
    /// Probing every edge with no policy applied: the positive control.
    Baseline,
    /// Making a step's changes, then probing in rounds until the data plane matches.
    Converge,
    /// Removing everything the run created.
    Teardown,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Deploy => "deploy",
            Phase::Baseline => "baseline",
            Phase::Converge => "converge",
            Phase::Teardown => "teardown",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happened during a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    /// A fixture's run begins.
    FixtureStarted {
        fixture: &'a str,
        pods: usize,
        steps: usize,
    },
    /// A phase begins; `step` names the step for [`Phase::Converge`]; `edges` is how many
    /// edges each round probes (0 for deploy and teardown).
    PhaseStarted {
        phase: Phase,
        step: Option<&'a str>,
        edges: usize,
    },
    /// A probing round of the current phase ended.
    RoundFinished {
        round: usize,
        /// Edges whose outcome agreed with the expectation.
        matching: usize,
        edges: usize,
        elapsed: Duration,
    },
    /// The current phase ended successfully.
    PhaseFinished { phase: Phase, elapsed: Duration },
    /// The current phase, if any, ended with an error, or the run was interrupted.
    Failed { message: String },
}

/// Receives a run's events. Called from the run's task; keep it quick.
pub trait Observer: Sync {
    fn event(&self, event: &Event<'_>);
}

/// Ignores every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Observer for Silent {
    fn event(&self, _event: &Event<'_>) {}
}
