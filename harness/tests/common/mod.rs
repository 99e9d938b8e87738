//! Helpers shared by the local backend's integration tests.

use netpol_harness::backend::{Backend, BackendError, LocalBackend, LocalConfig};
use netpol_harness::engine::{
    Edge, LabelSelector, Labels, NAMESPACE_NAME_LABEL, Namespace, NetworkPolicy, Origin, Peer,
    PolicyPort, PortRef, Rule, Topology,
};
use netpol_probes::spec::{Check, PortSpec, Protocol};
use netpol_probes::wire::{ProbeResult, Target};
use std::collections::BTreeMap;

/// Whether privileged tests may run here. Without root they fail with the backend's own
/// preflight message, unless `NETPOL_SKIP_PRIVILEGED=1` (which CI never sets) skips them.
pub fn privileged() -> bool {
    match netpol_harness::backend::local::preflight::privileges() {
        Ok(()) => true,
        Err(_) if std::env::var("NETPOL_SKIP_PRIVILEGED").as_deref() == Ok("1") => {
            eprintln!("skipped: not privileged and NETPOL_SKIP_PRIVILEGED=1");
            false
        }
        Err(error) => panic!("{error} (or set NETPOL_SKIP_PRIVILEGED=1 to skip)"),
    }
}

pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub fn selector(pairs: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: labels(pairs),
        match_expressions: vec![],
    }
}

pub fn namespace(name: &str, extra: &[(&str, &str)]) -> Namespace {
    let mut labels = labels(extra);
    labels.insert(NAMESPACE_NAME_LABEL.into(), name.into());
    Namespace {
        name: name.into(),
        labels,
    }
}

pub fn port(port: u16, protocol: Protocol, check: Option<Check>, name: Option<&str>) -> PortSpec {
    PortSpec {
        port,
        protocol,
        name: name.map(str::to_owned),
        check,
    }
}

pub fn tcp(number: u16) -> PortSpec {
    port(number, Protocol::Tcp, None, None)
}

pub fn peer(ns: Option<LabelSelector>, pod: Option<LabelSelector>) -> Peer {
    Peer::Pods {
        namespace_selector: ns,
        pod_selector: pod,
    }
}

pub fn policy_port(protocol: Protocol, port: Option<PortRef>, end: Option<u16>) -> PolicyPort {
    PolicyPort {
        protocol,
        port,
        end_port: end,
    }
}

pub fn policy(
    namespace: &str,
    name: &str,
    subjects: LabelSelector,
    ingress: Option<Vec<Rule>>,
    egress: Option<Vec<Rule>>,
) -> NetworkPolicy {
    NetworkPolicy {
        name: name.into(),
        namespace: namespace.into(),
        pod_selector: subjects,
        isolates_ingress: ingress.is_some(),
        isolates_egress: egress.is_some(),
        ingress: ingress.unwrap_or_default(),
        egress: egress.unwrap_or_default(),
        origin: Origin::default(),
    }
}

/// A config with a fresh run id and probe binary lookup as in CI.
pub fn config() -> LocalConfig {
    LocalConfig::default()
}

/// The target that crosses `edge` on `backend`'s data plane.
pub fn target(backend: &LocalBackend, topology: &Topology, edge: Edge, timeout_ms: u64) -> Target {
    let dst = &topology.pods[edge.dst];
    let spec = dst
        .ports
        .iter()
        .find(|p| p.port == edge.port && p.protocol == edge.protocol)
        .expect("edges use served ports");
    let check = spec.effective_check();
    Target {
        id: format!("{}->{}:{}/{}", edge.src, edge.dst, edge.port, edge.protocol),
        ip: backend.address(edge.dst),
        port: edge.port,
        protocol: edge.protocol,
        check,
        expect_identity: check.served_by_agent().then(|| dst.id()),
        timeout_ms,
        dns_name: None,
        host: None,
        resolver: None,
    }
}

/// Probes every edge (one batch per source pod, all sources at once) and returns what each
/// probe saw.
pub async fn probe_edges(
    backend: &LocalBackend,
    topology: &Topology,
    edges: &[Edge],
    timeout_ms: u64,
) -> Result<BTreeMap<Edge, ProbeResult>, BackendError> {
    let mut by_source: BTreeMap<usize, Vec<(Edge, Target)>> = BTreeMap::new();
    for edge in edges {
        by_source
            .entry(edge.src)
            .or_default()
            .push((*edge, target(backend, topology, *edge, timeout_ms)));
    }
    let batches = by_source.iter().map(|(src, pairs)| async move {
        let targets: Vec<Target> = pairs.iter().map(|(_, t)| t.clone()).collect();
        let results = backend.probe(*src, &targets).await?;
        Ok::<_, BackendError>(
            pairs
                .iter()
                .map(|(edge, t)| {
                    let result = results
                        .iter()
                        .find(|r| r.id == t.id)
                        .expect("one per target");
                    (*edge, result.clone())
                })
                .collect::<Vec<_>>(),
        )
    });
    let mut observed = BTreeMap::new();
    for batch in futures_util::future::join_all(batches).await {
        observed.extend(batch?);
    }
    Ok(observed)
}

/// `edge` as a readable line.
pub fn show(topology: &Topology, edge: Edge) -> String {
    format!(
        "{} -> {}:{}/{}",
        topology.pods[edge.src].id(),
        topology.pods[edge.dst].id(),
        edge.port,
        edge.protocol
    )
}

/// The `nph-<runid>` namespaces that still exist.
pub fn leftover_namespaces(run_id: &str) -> Vec<String> {
    netpol_harness::backend::local::netns::list_netns()
        .into_iter()
        .filter(|n| n.starts_with(&format!("nph-{run_id}")))
        .collect()
}
