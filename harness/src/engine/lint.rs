//! Static findings about a policy set: intended flows it denies, policies and peers that
//! select nothing, egress-isolated pods without DNS, and edges one side allows but the
//! other denies.
//!
//! Findings come in a deterministic order: by kind in the order of the constants below,
//! then in intent, policy, or topology order within a kind.

use super::index::{PeerRef, peers_matching_nothing};
use super::model::{Direction, Edge, IntentFlow, Peer, PodIndex};
use super::verdict::{Engine, RuleRef};
use netpol_probes::spec::Protocol;
use std::collections::BTreeMap;
use std::fmt;

/// An intent flow the policies deny.
pub const INTENT_DENIED: &str = "intent-denied";
/// A policy whose `podSelector` matches no pod of its namespace.
pub const POLICY_SELECTS_NOTHING: &str = "policy-selects-nothing";
/// A pod/namespace selector peer of a rule that matches no pod of the topology.
pub const PEER_MATCHES_NOTHING: &str = "peer-matches-nothing";
/// An egress-isolated pod that cannot reach any `k8s-app=kube-dns` pod on 53/UDP.
pub const NO_DNS_EGRESS: &str = "no-dns-egress";
/// Edges between a source and a destination that one side's rules explicitly allow and
/// the other side denies.
pub const ONE_SIDED: &str = "one-sided";

/// The label CoreDNS and kube-dns pods carry.
const DNS_LABEL: (&str, &str) = ("k8s-app", "kube-dns");

/// One lint finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// A stable kebab-case name of the finding's kind, e.g. `intent-denied`.
    pub kind: &'static str,
    /// One line a user can act on.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// Every finding for the engine's policies, given the intended flows (possibly none).
pub fn lint(engine: &Engine<'_>, intent: &[IntentFlow]) -> Vec<Finding> {
    let mut findings = intent_denied(engine, intent);
    findings.extend(policies_selecting_nothing(engine));
    findings.extend(peers_selecting_nothing(engine));
    findings.extend(pods_without_dns(engine));
    findings.extend(one_sided(engine));
    findings
}

/// Intent flows the policies deny, with the policies and direction that block each. A flow
/// from a pod to itself is not an edge and is not judged.
fn intent_denied(engine: &Engine<'_>, intent: &[IntentFlow]) -> Vec<Finding> {
    let edges = intent
        .iter()
        .filter(|flow| flow.src != flow.dst)
        .map(|flow| Edge {
            src: flow.src,
            dst: flow.dst,
            port: flow.port,
            protocol: flow.protocol,
        });
    let explanations = edges
        .map(|edge| engine.explain(edge))
        .filter(|e| !e.allowed);
    explanations
        .map(|e| Finding {
            kind: INTENT_DENIED,
            message: format!("{} is denied: {}", e.flow(), e.reason()),
        })
        .collect()
}

fn policies_selecting_nothing(engine: &Engine<'_>) -> Vec<Finding> {
    let policies = engine.policies().iter().enumerate();
    let empty = policies.filter(|&(index, _)| engine.subjects(index).is_empty());
    empty
        .map(|(_, policy)| Finding {
            kind: POLICY_SELECTS_NOTHING,
            message: format!(
                "{} selects no pod: podSelector {} matches no pod of namespace {}",
                policy.id(),
                policy.pod_selector,
                policy.namespace
            ),
        })
        .collect()
}

fn peers_selecting_nothing(engine: &Engine<'_>) -> Vec<Finding> {
    let unmatched = peers_matching_nothing(engine.topology(), engine.policies());
    unmatched
        .into_iter()
        .map(|PeerRef { rule, peer }| Finding {
            kind: PEER_MATCHES_NOTHING,
            message: format!(
                "peer {peer} of {} ({}) matches no pod of the topology",
                engine.rule_name(rule),
                describe_peer(engine, rule, peer)
            ),
        })
        .collect()
}

/// A selector peer in the words of the manifest: `namespaceSelector {...} and podSelector
/// {...}`.
fn describe_peer(engine: &Engine<'_>, rule: RuleRef, peer: usize) -> String {
    let policy = &engine.policies()[rule.policy];
    match &policy.rules(rule.direction)[rule.rule].peers[peer] {
        Peer::Pods {
            namespace_selector,
            pod_selector,
        } => {
            let namespaces = namespace_selector
                .as_ref()
                .map(|s| format!("namespaceSelector {s}"));
            let pods = pod_selector.as_ref().map(|s| format!("podSelector {s}"));
            let parts: Vec<String> = namespaces.into_iter().chain(pods).collect();
            if parts.is_empty() {
                format!("every pod of namespace {}", policy.namespace)
            } else {
                parts.join(" and ")
            }
        }
        Peer::IpBlock(block) => block.to_string(),
    }
}

/// Egress-isolated pods (other than provided ones) that cannot resolve names: no allowed
/// edge to a `k8s-app=kube-dns` pod on 53/UDP. When the topology has no such pod, a pod
/// passes if one of its egress rules admits 53/UDP to every peer.
fn pods_without_dns(engine: &Engine<'_>) -> Vec<Finding> {
    let pods = &engine.topology().pods;
    let dns_pods: Vec<PodIndex> = (0..pods.len())
        .filter(|&pod| {
            pods[pod]
                .labels
                .get(DNS_LABEL.0)
                .is_some_and(|v| v == DNS_LABEL.1)
        })
        .collect();
    let isolated = (0..pods.len()).filter(|&pod| {
        !pods[pod].provided && !engine.isolated_by(pod, Direction::Egress).is_empty()
    });
    isolated
        .filter_map(|pod| dns_problem(engine, pod, &dns_pods))
        .map(|message| Finding {
            kind: NO_DNS_EGRESS,
            message,
        })
        .collect()
}

/// Why `pod` has no DNS, or `None` when it has.
fn dns_problem(engine: &Engine<'_>, pod: PodIndex, dns_pods: &[PodIndex]) -> Option<String> {
    let to = |dst| Edge {
        src: pod,
        dst,
        port: 53,
        protocol: Protocol::Udp,
    };
    let servers: Vec<PodIndex> = dns_pods.iter().copied().filter(|&dst| dst != pod).collect();
    let name = engine.pod_name(pod);
    let isolators = engine.isolated_by(pod, Direction::Egress);
    let isolated_by: Vec<String> = isolators.iter().map(|&p| engine.policy_name(p)).collect();
    let isolated_by = isolated_by.join(", ");
    if servers.is_empty() {
        // No DNS pod to aim at: a pod outside the topology stands for an external resolver.
        let anywhere = to(usize::MAX);
        return (!engine.side_allows(Direction::Egress, anywhere)).then(|| {
            format!(
                "{name} is isolated for egress by {isolated_by}, and no egress rule allows \
                 53/UDP to every destination (the topology has no k8s-app=kube-dns pod)"
            )
        });
    }
    if servers.iter().any(|&dst| engine.allows(to(dst))) {
        return None;
    }
    let names: Vec<String> = servers.iter().map(|&p| engine.pod_name(p)).collect();
    let names = names.join(", ");
    if servers
        .iter()
        .any(|&dst| engine.side_allows(Direction::Egress, to(dst)))
    {
        Some(format!(
            "{name} has no DNS: its egress allows 53/UDP to a k8s-app=kube-dns pod, but the \
             ingress of every such pod ({names}) denies it"
        ))
    } else {
        Some(format!(
            "{name} is isolated for egress by {isolated_by}, and no egress rule allows 53/UDP \
             to any k8s-app=kube-dns pod ({names})"
        ))
    }
}

/// How many source/destination pairs a `one-sided` finding lists before it counts the rest.
const LISTED_PAIRS: usize = 4;

/// What groups one-sided edges into one finding: the side that allows them, the rules that
/// allow them, and the policies that isolate the other side.
type OneSidedKey = (Direction, Vec<RuleRef>, Vec<usize>);

/// One-sided edges with the same [`OneSidedKey`], by source and destination pair.
#[derive(Default)]
struct OneSided {
    pairs: Vec<(PodIndex, PodIndex, Vec<Edge>)>,
    edges: usize,
}

impl OneSided {
    fn add(&mut self, edge: Edge) {
        self.edges += 1;
        match self.pairs.last_mut() {
            Some((src, dst, edges)) if (*src, *dst) == (edge.src, edge.dst) => edges.push(edge),
            _ => self.pairs.push((edge.src, edge.dst, vec![edge])),
        }
    }
}

/// Edges that one side explicitly allows (a rule of an isolating policy admits them) and the
/// other side denies, one finding per allowing rule set and denying policy set, in the order
/// of their first edge. An edge whose allowing side is not isolated at all is the ordinary
/// default deny of the other side, not a finding.
fn one_sided(engine: &Engine<'_>) -> Vec<Finding> {
    let mut order: BTreeMap<OneSidedKey, usize> = BTreeMap::new();
    let mut groups: Vec<(OneSidedKey, OneSided)> = Vec::new();
    for edge in engine.edges() {
        let Some(key) = one_sided_key(engine, edge) else {
            continue;
        };
        let at = *order.entry(key.clone()).or_insert_with(|| {
            groups.push((key, OneSided::default()));
            groups.len() - 1
        });
        groups[at].1.add(edge);
    }
    let findings = groups
        .iter()
        .map(|(key, group)| one_sided_message(engine, key, group));
    findings
        .map(|message| Finding {
            kind: ONE_SIDED,
            message,
        })
        .collect()
}

/// The group of `edge` when exactly one side allows it and that side is isolated.
fn one_sided_key(engine: &Engine<'_>, edge: Edge) -> Option<OneSidedKey> {
    let isolated = |d: Direction| !engine.isolated_by(edge.subject(d), d).is_empty();
    if !Direction::BOTH.into_iter().all(isolated) {
        return None;
    }
    let [ingress, egress] = Direction::BOTH.map(|d| engine.side_allows(d, edge));
    let allowing = match (ingress, egress) {
        (true, false) => Direction::Ingress,
        (false, true) => Direction::Egress,
        _ => return None,
    };
    let rules = engine.side(allowing, edge).allowed_by;
    let denying = allowing.opposite();
    Some((
        allowing,
        rules,
        engine.isolated_by(edge.subject(denying), denying).to_vec(),
    ))
}

fn one_sided_message(engine: &Engine<'_>, key: &OneSidedKey, group: &OneSided) -> String {
    let (allowing, rules, denied_by) = key;
    let rules: Vec<String> = rules.iter().map(|&r| engine.rule_name(r)).collect();
    let denied_by: Vec<String> = denied_by.iter().map(|&p| engine.policy_name(p)).collect();
    let (verb, denied) = match allowing {
        Direction::Egress => ("allows", "the destination's ingress denies"),
        Direction::Ingress => ("admits", "the source's egress denies"),
    };
    let listed = group
        .pairs
        .iter()
        .take(LISTED_PAIRS)
        .map(|(src, dst, edges)| {
            let ports: Vec<String> = edges
                .iter()
                .map(|e| format!("{}/{}", e.port, e.protocol))
                .collect();
            format!(
                "{} -> {} {}",
                engine.pod_name(*src),
                engine.pod_name(*dst),
                ports.join(", ")
            )
        });
    let mut pairs = listed.collect::<Vec<_>>().join("; ");
    let unlisted = group.pairs.len().saturating_sub(LISTED_PAIRS);
    if unlisted > 0 {
        let shown: usize = group
            .pairs
            .iter()
            .take(LISTED_PAIRS)
            .map(|p| p.2.len())
            .sum();
        let edges = group.edges - shown;
        pairs.push_str(&format!("; and {unlisted} more pairs ({edges} edges)"));
    }
    format!(
        "{} {verb} {pairs}, but {denied} them (isolated by {})",
        rules.join(", "),
        denied_by.join(", ")
    )
}
