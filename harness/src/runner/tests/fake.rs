//! A backend that simulates a data plane from the engine's verdicts: deterministic, no root,
//! with injectable mistakes, dead servers and a delay before policies take effect.

use crate::backend::{Backend, BackendError};
use crate::engine::{
    Edge, Engine, Labels, NAMESPACE_NAME_LABEL, NetworkPolicy, PodIndex, Topology,
};
use netpol_probes::wire::{Outcome, ProbeResult, Target, unix_ms_now};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// What the fake data plane enforces: the policies applied, and since when.
#[derive(Debug, Clone)]
pub(super) struct Enforced {
    topology: Topology,
    /// The policies before the last change, in force until `effective_at`.
    old: Vec<NetworkPolicy>,
    new: Vec<NetworkPolicy>,
    effective_at: Instant,
}

/// Calls the runner made, for assertions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Calls {
    pub deployed_pods: Vec<String>,
    pub applies: Vec<Vec<String>>,
    /// The policies of each apply, as the backend received them.
    pub applied: Vec<Vec<NetworkPolicy>>,
    pub pod_labels: Vec<(String, Labels)>,
    pub namespace_labels: Vec<(String, Labels)>,
    /// Targets per batch, in call order.
    pub batches: Vec<(String, usize)>,
    pub teardowns: usize,
}

#[derive(Debug, Default)]
pub struct FakeBackend {
    /// How long after `apply_policies` or a label change the new state takes effect.
    pub enforcement_delay: Duration,
    /// Outcomes forced for edges named `src->dst:port/PROTOCOL`, whatever the policies say,
    /// once policies were first applied (the positive control sees a healthy data plane).
    pub mistakes: BTreeMap<String, Outcome>,
    /// Pods (`namespace/name`) whose servers never answer: every probe to them is refused.
    pub dead: Vec<String>,
    /// How long a batch's agent takes to start: its probes leave this long after the batch
    /// was asked for, and say so in [`ProbeResult::started_at_ms`].
    pub send_delay: Duration,
    /// The addresses pods get, by pod index, as a cluster's IPAM would choose them; empty for
    /// the topology's.
    pub addresses: Vec<IpAddr>,
    /// Make `deploy` fail.
    pub fail_deploy: bool,
    pub(super) enforced: Option<Enforced>,
    pub calls: Mutex<Calls>,
}

impl FakeBackend {
    pub fn calls(&self) -> Calls {
        self.calls.lock().unwrap().clone()
    }

    fn changed(&mut self, change: impl FnOnce(&mut Enforced)) -> Result<(), BackendError> {
        let delay = self.enforcement_delay;
        let enforced = self.enforced.as_mut().ok_or(BackendError::NotDeployed)?;
        // A change made while the previous one is pending takes the pending one with it.
        if Instant::now() >= enforced.effective_at {
            enforced.old = enforced.new.clone();
        }
        change(enforced);
        enforced.effective_at = Instant::now() + delay;
        Ok(())
    }

    fn outcome(&self, src: PodIndex, target: &Target) -> (Outcome, String) {
        let enforced = self.enforced.as_ref().expect("deployed");
        let topology = &enforced.topology;
        let Some(dst) = topology.pods.iter().position(|p| p.ip == target.ip) else {
            return (Outcome::Unreachable, format!("no pod has {}", target.ip));
        };
        let edge = Edge {
            src,
            dst,
            port: target.port,
            protocol: target.protocol,
        };
        let id = crate::runner::plan::edge_id(topology, edge);
        let applied = !self.calls.lock().unwrap().applies.is_empty();
        if let Some(&outcome) = self.mistakes.get(&id).filter(|_| applied) {
            return (outcome, "injected mistake".to_owned());
        }
        if self.dead.contains(&topology.pods[dst].id()) {
            return (Outcome::Refused, "connection refused".to_owned());
        }
        let policies = if Instant::now() >= enforced.effective_at {
            &enforced.new
        } else {
            &enforced.old
        };
        if Engine::new(topology, policies).allows(edge) {
            (Outcome::Connected, String::new())
        } else {
            (Outcome::Timeout, "no answer".to_owned())
        }
    }
}

impl Backend for FakeBackend {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn deploy(&mut self, topology: &Topology) -> Result<(), BackendError> {
        self.calls.lock().unwrap().deployed_pods = topology.pods.iter().map(|p| p.id()).collect();
        if self.fail_deploy {
            return Err(BackendError::NotReady {
                pod: topology.pods[0].id(),
                detail: "server did not start".to_owned(),
            });
        }
        let mut topology = topology.clone();
        for (pod, address) in topology.pods.iter_mut().zip(&self.addresses) {
            pod.ip = *address;
        }
        self.enforced = Some(Enforced {
            topology,
            old: Vec::new(),
            new: Vec::new(),
            effective_at: Instant::now(),
        });
        Ok(())
    }

    async fn apply_policies(&mut self, policies: &[NetworkPolicy]) -> Result<(), BackendError> {
        let ids = policies.iter().map(NetworkPolicy::id).collect();
        let mut calls = self.calls.lock().unwrap();
        calls.applies.push(ids);
        calls.applied.push(policies.to_vec());
        drop(calls);
        self.changed(|enforced| enforced.new = policies.to_vec())
    }

    async fn set_pod_labels(&mut self, pod: PodIndex, labels: Labels) -> Result<(), BackendError> {
        let enforced = self.enforced.as_mut().ok_or(BackendError::NotDeployed)?;
        let id = enforced.topology.pods[pod].id();
        self.calls
            .lock()
            .unwrap()
            .pod_labels
            .push((id, labels.clone()));
        // Labels change at once in this fake; only policies are enforced late.
        enforced.topology.pods[pod].labels = labels;
        Ok(())
    }

    async fn set_namespace_labels(
        &mut self,
        namespace: &str,
        mut labels: Labels,
    ) -> Result<(), BackendError> {
        labels.insert(NAMESPACE_NAME_LABEL.to_owned(), namespace.to_owned());
        let record = (namespace.to_owned(), labels.clone());
        self.calls.lock().unwrap().namespace_labels.push(record);
        let enforced = self.enforced.as_mut().ok_or(BackendError::NotDeployed)?;
        if let Some(ns) = enforced
            .topology
            .namespaces
            .iter_mut()
            .find(|n| n.name == namespace)
        {
            ns.labels = labels;
        }
        Ok(())
    }

    async fn probe(
        &self,
        src: PodIndex,
        targets: &[Target],
    ) -> Result<Vec<ProbeResult>, BackendError> {
        let enforced = self.enforced.as_ref().ok_or(BackendError::NotDeployed)?;
        let record = (enforced.topology.pods[src].id(), targets.len());
        self.calls.lock().unwrap().batches.push(record);
        // The wall clock stands still under paused Tokio time: the start of the probes is
        // the wall-clock time of the call plus the simulated start-up.
        let started_at_ms = unix_ms_now() + self.send_delay.as_secs_f64() * 1000.0;
        tokio::time::sleep(self.send_delay).await;
        let results: Vec<(ProbeResult, bool)> = targets
            .iter()
            .map(|target| {
                let (outcome, detail) = self.outcome(src, target);
                let timed_out = outcome == Outcome::Timeout;
                let elapsed_ms = if timed_out {
                    target.timeout_ms as f64
                } else {
                    1.0
                };
                let result = ProbeResult {
                    id: target.id.clone(),
                    outcome,
                    elapsed_ms,
                    detail,
                    started_at_ms: Some(started_at_ms),
                };
                (result, timed_out)
            })
            .collect();
        // A dropped probe costs its timeout, as on a real data plane.
        let dropped = results.iter().any(|(_, timed_out)| *timed_out);
        let longest = targets.iter().map(|t| t.timeout_ms).max().unwrap_or(0);
        let wait = if dropped { longest } else { 1 };
        tokio::time::sleep(Duration::from_millis(wait)).await;
        Ok(results.into_iter().map(|(result, _)| result).collect())
    }

    fn address(&self, pod: PodIndex) -> IpAddr {
        self.enforced.as_ref().expect("deployed").topology.pods[pod].ip
    }

    fn service_address(&self, _pod: PodIndex) -> Option<IpAddr> {
        None
    }

    fn service_host(&self, _pod: PodIndex) -> Option<String> {
        None
    }

    fn resolver(&self) -> Option<IpAddr> {
        None
    }

    async fn teardown(&mut self) -> Result<(), BackendError> {
        self.calls.lock().unwrap().teardowns += 1;
        self.enforced = None;
        Ok(())
    }
}
