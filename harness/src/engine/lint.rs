//! Static findings about a policy set: intended flows it denies, policies and peers that
//! select nothing, egress-isolated pods without DNS, and edges one side allows but the
//! other denies.
//!
//! Findings come in a deterministic order: by kind in the order of the constants below,
//! then in intent order (`intent-denied`), policy and rule order (`policy-selects-nothing`,
//! `peer-matches-nothing`, `one-sided`) or topology order (`no-dns-egress`).

use super::index::{PeerRef, peers_matching_nothing};
use super::model::{Direction, Edge, IntentFlow, Peer, PodIndex};
use super::verdict::{Engine, RuleRef};
use netpol_probes::spec::Protocol;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// An intent flow the policies deny.
pub const INTENT_DENIED: &str = "intent-denied";
/// A policy whose `podSelector` matches no pod of its namespace.
pub const POLICY_SELECTS_NOTHING: &str = "policy-selects-nothing";
/// A pod/namespace selector peer of a rule that matches no pod of the topology.
pub const PEER_MATCHES_NOTHING: &str = "peer-matches-nothing";
/// An egress-isolated pod that cannot reach any `k8s-app=kube-dns` pod on 53/UDP.
pub const NO_DNS_EGRESS: &str = "no-dns-egress";
/// Edges that one side's rules explicitly allow and the other side denies, reported once per
/// allowing rule.
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
    let message = |found: PeerRef<'_>| {
        format!(
            "peer {} of {} ({}) matches no pod of the topology",
            found.index,
            engine.rule_name(found.rule),
            describe_peer(found.peer, found.namespace)
        )
    };
    let messages = unmatched.into_iter().map(message);
    messages
        .map(|message| Finding {
            kind: PEER_MATCHES_NOTHING,
            message,
        })
        .collect()
}

/// A peer in the words of the manifest, e.g. `namespaceSelector {...} and podSelector
/// {...}`; `namespace` is the policy's own.
fn describe_peer(peer: &Peer, namespace: &str) -> String {
    match peer {
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
                format!("every pod of namespace {namespace}")
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
    let egress_allows = servers
        .iter()
        .any(|&dst| engine.side_allows(Direction::Egress, to(dst)));
    Some(if egress_allows {
        format!(
            "{name} has no DNS: its egress allows 53/UDP to a k8s-app=kube-dns pod, but the \
             ingress of every such pod ({names}) denies it"
        )
    } else {
        format!(
            "{name} is isolated for egress by {isolated_by}, and no egress rule allows 53/UDP \
             to any k8s-app=kube-dns pod ({names})"
        )
    })
}

/// How many source/destination pairs a `one-sided` finding lists before it counts the rest.
const LISTED_PAIRS: usize = 4;

/// One-sided edges attributed to one allowing rule, by source and destination pair.
#[derive(Default)]
struct OneSided {
    pairs: Vec<(PodIndex, PodIndex, Vec<Edge>)>,
    edges: usize,
    /// The policies isolating the denying side of any of the edges.
    denied_by: BTreeSet<usize>,
}

impl OneSided {
    fn add(&mut self, edge: Edge, denied_by: &[usize]) {
        self.edges += 1;
        self.denied_by.extend(denied_by);
        match self.pairs.last_mut() {
            Some((src, dst, edges)) if (*src, *dst) == (edge.src, edge.dst) => edges.push(edge),
            _ => self.pairs.push((edge.src, edge.dst, vec![edge])),
        }
    }
}

/// Edges that one side explicitly allows (a rule of an isolating policy admits them) and the
/// other side denies: one finding per allowing rule (the first, when several admit an edge),
/// in policy and rule order, so that the output grows with the policies and not with the
/// cluster. An edge whose allowing side is not isolated at all is the ordinary default deny
/// of the other side, not a finding.
fn one_sided(engine: &Engine<'_>) -> Vec<Finding> {
    let mut groups: BTreeMap<RuleRef, OneSided> = BTreeMap::new();
    for edge in engine.edges() {
        if let Some((rule, denied_by)) = one_sided_rule(engine, edge) {
            groups.entry(rule).or_default().add(edge, denied_by);
        }
    }
    let findings = groups
        .iter()
        .map(|(&rule, group)| one_sided_message(engine, rule, group));
    findings
        .map(|message| Finding {
            kind: ONE_SIDED,
            message,
        })
        .collect()
}

/// When exactly one side allows `edge` and that side is isolated: the first rule that allows
/// it, and the policies isolating the other side.
fn one_sided_rule<'e>(engine: &'e Engine<'_>, edge: Edge) -> Option<(RuleRef, &'e [usize])> {
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
    let rule = engine.admitting_rules(allowing, edge).next()?;
    let denying = allowing.opposite();
    Some((rule, engine.isolated_by(edge.subject(denying), denying)))
}

fn one_sided_message(engine: &Engine<'_>, rule: RuleRef, group: &OneSided) -> String {
    let denied_by: Vec<String> = group
        .denied_by
        .iter()
        .map(|&p| engine.policy_name(p))
        .collect();
    let (verb, denied) = match rule.direction {
        Direction::Egress => ("allows", "the destination's ingress denies"),
        Direction::Ingress => ("admits", "the source's egress denies"),
    };
    let listed = group.pairs.iter().take(LISTED_PAIRS);
    let mut pairs: Vec<String> = listed
        .clone()
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
        })
        .collect();
    let unlisted = group.pairs.len().saturating_sub(LISTED_PAIRS);
    if unlisted > 0 {
        let edges = group.edges - listed.map(|(_, _, edges)| edges.len()).sum::<usize>();
        pairs.push(format!("and {unlisted} more pairs ({edges} edges)"));
    }
    format!(
        "{} {verb} {}, but {denied} them (isolated by {})",
        engine.rule_name(rule),
        pairs.join("; "),
        denied_by.join(", ")
    )
}
