//! Convergence: probing the whole matrix in rounds until the data plane matches the policies,
//! and the baseline, the positive control that precedes any policy.
//!
//! A data plane enforces a change some time after it is made (a CNI watches the API, compiles
//! rules, programs the kernel). Instead of a fixed sleep, the runner probes every edge in
//! rounds until the observed matrix equals the expected one for
//! [`RunOptions::matching_rounds`] consecutive rounds, or the convergence timeout passes. A
//! mismatch in either direction is retried this way while the window lasts; after it, the
//! last round's outcomes are the results, and both kinds of mismatch fail.

use super::error::{Error, Result};
use super::events::{Event, Observer};
use super::options::RunOptions;
use super::plan::PlannedEdge;
use super::probing::{Observation, probe_round};
use crate::backend::Backend;
use crate::engine::Topology;
use crate::report::{Convergence, passes};
use netpol_probes::wire::unix_ms_now;
use std::time::Duration;
use tokio::time::Instant;

/// The least time between the starts of two rounds that did not match, so that a data plane
/// that refuses at once is not probed in a busy loop.
const MIN_ROUND_INTERVAL: Duration = Duration::from_millis(50);

/// The last round's observations and how convergence went.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Converged {
    pub observations: Vec<Observation>,
    pub convergence: Convergence,
}

/// Probes `edges` in rounds from `changed_at` (the moment the change was made) until they
/// match for enough consecutive rounds or the convergence timeout passes.
///
/// The convergence time is bounded by when probes actually went out, not by when rounds
/// began: an agent can start long after its round (a process to spawn, an exec to open),
/// and a probe that leaves after the change took effect sees the new state even if its
/// round began before. When round *k* is the first of the final run of matching rounds, the
/// data plane was still wrong when the last mismatching probe of round *k − 1* left, and
/// right when those edges' probes of round *k* left: `time_ms` is the latter, and
/// `resolution_ms` the width of that interval. Agents report when each probe began
/// ([`Observation::started_at_ms`]); such times are clamped to their round, and a probe
/// without one counts as sent when its round began.
///
/// # Errors
/// Infrastructure errors from probing.
pub(crate) async fn converge<B: Backend>(
    backend: &B,
    topology: &Topology,
    edges: &[PlannedEdge],
    changed_at: Instant,
    options: &RunOptions,
    observer: &dyn Observer,
) -> Result<Converged> {
    // The edges that did not match in the last round, and when the last of their probes
    // left (time since the change).
    let mut last_mismatch: Option<(Vec<usize>, Duration)> = None;
    // Upper bound and resolution of the convergence time, from the first round of the
    // current run of matching rounds.
    let mut first_match: Option<(Duration, Duration)> = None;
    let mut streak = 0;
    let mut round = 0;
    loop {
        let start = Instant::now();
        let start_unix_ms = unix_ms_now();
        let observations = probe_round(backend, topology, edges, options).await?;
        let sent = SendTimes {
            round_start: start - changed_at,
            round_length: start.elapsed(),
            start_unix_ms,
        };
        round += 1;
        let mismatches: Vec<usize> = edges
            .iter()
            .zip(&observations)
            .enumerate()
            .filter(|(_, (planned, observed))| !passes(planned.expected, observed.outcome))
            .map(|(index, _)| index)
            .collect();
        let matching = edges.len() - mismatches.len();
        observer.event(&Event::RoundFinished {
            round,
            matching,
            edges: edges.len(),
            elapsed: start.elapsed(),
        });
        if mismatches.is_empty() {
            if first_match.is_none() {
                let (lower, upper) = match &last_mismatch {
                    Some((missed, left)) => (*left, sent.latest(missed, &observations)),
                    None => (Duration::ZERO, sent.latest_of_all(&observations)),
                };
                first_match = Some((upper, upper.saturating_sub(lower)));
            }
            streak += 1;
        } else {
            tracing::debug!(round, mismatches = mismatches.len(), "not converged yet");
            let left = sent.latest(&mismatches, &observations);
            last_mismatch = Some((mismatches, left));
            first_match = None;
            streak = 0;
        }
        let converged = streak >= options.matching_rounds.max(1);
        if converged || changed_at.elapsed() >= options.converge_timeout {
            let convergence = Convergence {
                converged,
                time_ms: first_match.filter(|_| converged).map(|(t, _)| millis(t)),
                resolution_ms: first_match.filter(|_| converged).map(|(_, r)| millis(r)),
                rounds: round,
                elapsed_ms: millis(changed_at.elapsed()),
            };
            return Ok(Converged {
                observations,
                convergence,
            });
        }
        if streak == 0 {
            tokio::time::sleep_until(start + MIN_ROUND_INTERVAL).await;
        }
    }
}

/// When the probes of one round left, as times since the change.
struct SendTimes {
    /// From the change to the start of the round.
    round_start: Duration,
    round_length: Duration,
    /// The start of the round by the wall clock, to place agents' times in it.
    start_unix_ms: f64,
}

impl SendTimes {
    fn of(&self, observation: &Observation) -> Duration {
        let into_round = observation.started_at_ms.map_or(Duration::ZERO, |at| {
            let offset = (at - self.start_unix_ms).max(0.0) / 1000.0;
            Duration::from_secs_f64(offset).min(self.round_length)
        });
        self.round_start + into_round
    }

    /// The latest send among the observations at `indices`.
    fn latest(&self, indices: &[usize], observations: &[Observation]) -> Duration {
        indices
            .iter()
            .map(|&index| self.of(&observations[index]))
            .max()
            .unwrap_or(self.round_start)
    }

    fn latest_of_all(&self, observations: &[Observation]) -> Duration {
        observations
            .iter()
            .map(|observation| self.of(observation))
            .max()
            .unwrap_or(self.round_start)
    }
}

/// The positive control: with no policy applied, every edge must connect to the right pod.
/// Edges that do not are probed again until they do or the convergence timeout passes.
///
/// # Errors
/// [`Error::Baseline`] listing the edges that never connected, and infrastructure errors from
/// probing.
pub(crate) async fn baseline<B: Backend>(
    backend: &B,
    topology: &Topology,
    edges: &[PlannedEdge],
    options: &RunOptions,
    observer: &dyn Observer,
) -> Result<()> {
    let started = Instant::now();
    let mut pending: Vec<PlannedEdge> = edges.to_vec();
    let mut round = 0;
    loop {
        let start = Instant::now();
        let observations = probe_round(backend, topology, &pending, options).await?;
        round += 1;
        let failing: Vec<(PlannedEdge, Observation)> = pending
            .into_iter()
            .zip(observations)
            .filter(|(planned, observed)| !passes(planned.expected, observed.outcome))
            .collect();
        observer.event(&Event::RoundFinished {
            round,
            matching: edges.len() - failing.len(),
            edges: edges.len(),
            elapsed: start.elapsed(),
        });
        if failing.is_empty() {
            return Ok(());
        }
        if started.elapsed() >= options.converge_timeout {
            let failures = failing
                .iter()
                .map(|(planned, observed)| describe_failure(planned, observed))
                .collect();
            return Err(Error::Baseline {
                failures,
                total: edges.len(),
            });
        }
        tracing::debug!(
            round,
            failing = failing.len(),
            "positive control incomplete, retrying"
        );
        pending = failing.into_iter().map(|(planned, _)| planned).collect();
        tokio::time::sleep_until(start + MIN_ROUND_INTERVAL).await;
    }
}

fn describe_failure(planned: &PlannedEdge, observed: &Observation) -> String {
    if observed.detail.is_empty() {
        format!("{} {}", planned.id, observed.outcome)
    } else {
        format!("{} {} ({})", planned.id, observed.outcome, observed.detail)
    }
}

pub(crate) fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
