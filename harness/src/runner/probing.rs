//! One probing round: every edge probed once, concurrently.
//!
//! Edges are grouped by source pod into one [`Backend::probe`] batch each, and the batches of
//! all sources run at the same time (up to [`RunOptions::max_concurrent_batches`]); the agent
//! in each source pod probes its batch's targets concurrently. A round therefore takes about
//! one probe timeout (a denied edge costs a timeout when the policy drops), whatever the
//! number of edges. With several probe modes, the modes are probed one after the other, each
//! as such a round.

use super::error::{Error, Result};
use super::options::RunOptions;
use super::plan::PlannedEdge;
use crate::backend::{Backend, BackendError, Via};
use crate::engine::{PodIndex, Topology};
use crate::report::passes;
use futures_util::StreamExt;
use futures_util::stream;
use netpol_probes::spec::Check;
use netpol_probes::wire::{Outcome, ProbeResult, Target};
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;
use tracing::Instrument;

/// The name `dns` checks query: one every cluster DNS serves.
pub const DNS_CHECK_NAME: &str = "kubernetes.default.svc.cluster.local.";

/// How long a batch may run beyond its probes' timeout before the run gives up on it: the
/// agent's own overhead (spawn, connection setup) must fit in it.
const BATCH_GRACE: Duration = Duration::from_secs(10);

/// What the probe of one edge saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub outcome: Outcome,
    pub latency_ms: f64,
    pub detail: String,
    /// When the probe began, in milliseconds since the Unix epoch by the agent's clock, if the
    /// agent said ([`ProbeResult::started_at_ms`]).
    pub started_at_ms: Option<f64>,
}

/// Probes every edge of `edges` once; the observations come back in the order of `edges`.
///
/// # Errors
/// A batch failed, stalled or answered for fewer targets than it was given: infrastructure
/// errors, not outcomes.
pub async fn probe_round<B: Backend>(
    backend: &B,
    topology: &Topology,
    edges: &[PlannedEdge],
    options: &RunOptions,
) -> Result<Vec<Observation>> {
    // One mode after the other: all modes at once would multiply the load on the servers
    // (and, in dns mode, on the one cluster DNS) beyond what one round of one mode puts there.
    let mut by_mode: BTreeMap<Via, BTreeMap<PodIndex, Vec<usize>>> = BTreeMap::new();
    for (index, planned) in edges.iter().enumerate() {
        if planned.edge.src != planned.edge.dst {
            let by_source = by_mode.entry(planned.via).or_default();
            by_source.entry(planned.edge.src).or_default().push(index);
        }
    }
    let mut observations: Vec<Option<Observation>> = vec![None; edges.len()];
    for by_source in by_mode.into_values() {
        let batches = by_source
            .into_iter()
            .map(|(src, members)| probe_batch(backend, topology, src, members, edges, options));
        let results: Vec<Result<Vec<(usize, Observation)>>> = stream::iter(batches)
            .buffer_unordered(options.max_concurrent_batches.max(1))
            .collect()
            .await;
        for batch in results {
            for (index, observation) in batch? {
                observations[index] = Some(observation);
            }
        }
    }
    Ok(observations
        .into_iter()
        .map(|o| o.unwrap_or_else(self_edge_observation))
        .collect())
}

/// Self-edges are never probed; should one be planned, it reads as unsupported (a failure),
/// so that it cannot pass silently.
fn self_edge_observation() -> Observation {
    Observation {
        outcome: Outcome::Unsupported,
        latency_ms: 0.0,
        detail: "pod-to-itself traffic is not probed".to_owned(),
        started_at_ms: None,
    }
}

async fn probe_batch<B: Backend>(
    backend: &B,
    topology: &Topology,
    src: PodIndex,
    members: Vec<usize>,
    edges: &[PlannedEdge],
    options: &RunOptions,
) -> Result<Vec<(usize, Observation)>> {
    let targets: Vec<Target> = members
        .iter()
        .map(|&index| target(backend, topology, &edges[index], index, options))
        .collect::<Result<_>>()?;
    let pod = topology.pods[src].id();
    let deadline = options.probe_timeout + BATCH_GRACE;
    let batch = backend.probe(src, &targets);
    let span = tracing::debug_span!("batch", src = %pod, targets = targets.len());
    let results = tokio::time::timeout(deadline, batch.instrument(span))
        .await
        .map_err(|_| Error::BatchStalled {
            pod: pod.clone(),
            seconds: deadline.as_secs(),
        })?
        .map_err(|source| Error::Backend {
            action: format!("probe from {pod}"),
            source,
        })?;
    collect_results(&pod, &members, edges, results)
}

/// Matches a batch's results to its edges by target id (the edge's index in the round).
fn collect_results(
    pod: &str,
    members: &[usize],
    edges: &[PlannedEdge],
    results: Vec<ProbeResult>,
) -> Result<Vec<(usize, Observation)>> {
    let mut by_id: BTreeMap<String, ProbeResult> =
        results.into_iter().map(|r| (r.id.clone(), r)).collect();
    let mut observations = Vec::with_capacity(members.len());
    for &index in members {
        let Some(result) = by_id.remove(&index.to_string()) else {
            continue;
        };
        let planned = &edges[index];
        let span = tracing::debug_span!(
            "edge",
            src = %planned.explanation.src,
            dst = %planned.explanation.dst,
            port = planned.edge.port,
            protocol = %planned.edge.protocol,
            expected = %planned.expected,
        );
        span.in_scope(|| {
            if passes(planned.expected, result.outcome) {
                let (outcome, elapsed_ms) = (result.outcome, result.elapsed_ms);
                tracing::trace!(%outcome, elapsed_ms, "probed");
            } else {
                tracing::debug!(
                    outcome = %result.outcome,
                    detail = %result.detail,
                    "outcome disagrees with the verdict"
                );
            }
        });
        observations.push((
            index,
            Observation {
                outcome: result.outcome,
                latency_ms: result.elapsed_ms,
                detail: result.detail,
                started_at_ms: result.started_at_ms,
            },
        ));
    }
    let missing = members.len() - observations.len();
    if missing > 0 {
        return Err(Error::MissingResults {
            pod: pod.to_owned(),
            missing,
        });
    }
    Ok(observations)
}

/// The probe of `planned`: the destination's address (as its mode says) and port, and the
/// check its port declares.
///
/// # Errors
/// The backend has no Service (or no cluster DNS) for a `service` or `dns` probe.
fn target<B: Backend>(
    backend: &B,
    topology: &Topology,
    planned: &PlannedEdge,
    index: usize,
    options: &RunOptions,
) -> Result<Target> {
    let edge = planned.edge;
    let dst = &topology.pods[edge.dst];
    let check = dst
        .ports
        .iter()
        .find(|spec| spec.port == edge.port && spec.protocol == edge.protocol)
        .map_or_else(
            || Check::default_for(edge.protocol),
            |spec| spec.effective_check(),
        );
    let dial = dial(backend, edge.dst, planned.via).map_err(|what| Error::Backend {
        action: format!("probe {} via {}", planned.id, planned.via),
        source: BackendError::Unsupported(format!("{what} for pod {}", dst.id())),
    })?;
    Ok(Target {
        id: index.to_string(),
        ip: dial.ip,
        port: edge.port,
        protocol: edge.protocol,
        check,
        expect_identity: check.served_by_agent().then(|| dst.id()),
        timeout_ms: u64::try_from(options.probe_timeout.as_millis()).unwrap_or(u64::MAX),
        dns_name: (check == Check::Dns).then(|| DNS_CHECK_NAME.to_owned()),
        host: dial.host,
        resolver: dial.resolver,
    })
}

/// What a probe dials to reach a pod in one mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dial {
    /// The address dialled, or with `host` the address the name should resolve to.
    pub ip: IpAddr,
    pub host: Option<String>,
    pub resolver: Option<IpAddr>,
}

impl fmt::Display for Dial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.host, self.resolver) {
            (Some(host), Some(resolver)) => {
                write!(
                    f,
                    "{host} (resolved through {resolver}, expected {})",
                    self.ip
                )
            }
            _ => write!(f, "{}", self.ip),
        }
    }
}

/// What to dial to reach pod `dst` via `via`, or what the backend lacks for it.
///
/// # Errors
/// The backend has no Service for `dst`, or no cluster DNS for `dns`.
pub fn dial<B: Backend>(backend: &B, dst: PodIndex, via: Via) -> Result<Dial, &'static str> {
    let pod = || Dial {
        ip: backend.address(dst),
        host: None,
        resolver: None,
    };
    Ok(match via {
        Via::Pod => pod(),
        Via::Service => Dial {
            ip: backend.service_address(dst).ok_or("no Service")?,
            ..pod()
        },
        Via::Dns => Dial {
            ip: backend.service_address(dst).ok_or("no Service")?,
            host: Some(backend.service_host(dst).ok_or("no Service name")?),
            resolver: Some(backend.resolver().ok_or("no cluster DNS in the topology")?),
        },
    })
}
