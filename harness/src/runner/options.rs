//! The knobs of a run.

use std::time::Duration;

/// Default per-probe timeout.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_millis(2000);
/// Default convergence timeout.
pub const DEFAULT_CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);

/// How a run probes and how long it waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// How long one probe waits for an answer; a denied edge that drops costs this much.
    pub probe_timeout: Duration,
    /// How long after a change the data plane may take to match the policies. Also bounds
    /// the baseline's retries.
    pub converge_timeout: Duration,
    /// Consecutive matching rounds that make a step converged.
    pub matching_rounds: usize,
    /// Source pods probed at the same time.
    pub max_concurrent_batches: usize,
    /// Tear down and stop with [`Error::Interrupted`](super::Error::Interrupted) on Ctrl-C.
    pub handle_ctrl_c: bool,
    /// Data-plane faults the backend was asked to inject, recorded in the report.
    pub faults: Vec<String>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
            converge_timeout: DEFAULT_CONVERGE_TIMEOUT,
            matching_rounds: 2,
            max_concurrent_batches: 256,
            handle_ctrl_c: true,
            faults: Vec::new(),
        }
    }
}
