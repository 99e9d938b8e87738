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
    let mut previous_start = changed_at;
    // Upper bound and resolution of the convergence time, from the first round of the
    // current run of matching rounds.
    let mut first_match: Option<(Duration, Duration)> = None;
    let mut streak = 0;
    let mut round = 0;
    loop {
        let start = Instant::now();
        let observations = probe_round(backend, topology, edges, options).await?;
        round += 1;
        let matching = count_matching(edges, &observations);
        observer.event(&Event::RoundFinished {
            round,
            matching,
            edges: edges.len(),
            elapsed: start.elapsed(),
        });
        if matching == edges.len() {
            first_match.get_or_insert((start - changed_at, start - previous_start));
            streak += 1;
        } else {
            tracing::debug!(
                round,
                mismatches = edges.len() - matching,
                "not converged yet"
            );
            first_match = None;
            streak = 0;
        }
        previous_start = start;
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

fn count_matching(edges: &[PlannedEdge], observations: &[Observation]) -> usize {
    edges
        .iter()
        .zip(observations)
        .filter(|(planned, observed)| passes(planned.expected, observed.outcome))
        .count()
}

pub(crate) fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
