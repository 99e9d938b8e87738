//! Verdicts: whether the policies allow an edge, and which policies and rules decided it.
//!
//! Semantics (networking.k8s.io/v1): a pod is isolated for a direction when at least one
//! policy that selects it has that direction in its policy types. A non-isolated pod allows
//! everything in that direction. An isolated pod allows exactly the union of the matching
//! rules of all policies that select it and isolate it in that direction. An edge is allowed
//! only when the source's egress and the destination's ingress both allow it.
//!
//! A rule matches an edge when one of its peers matches the pod on the other side and one of
//! its ports matches the edge's port and protocol; an empty peer list matches every peer and
//! an empty port list every port and protocol. Rules of a policy in a direction it does not
//! isolate (e.g. ingress rules under `policyTypes: [Egress]`) are ignored. A named port
//! resolves against the destination pod's container ports, whichever side the rule is on:
//! <https://kubernetes.io/docs/concepts/services-networking/network-policies/#behavior-of-to-and-from-selectors>
//!
//! # Known limitations
//!
//! - `ipBlock` peers are matched against pod IPs as the topology gives them. The API leaves
//!   open whether a CNI applies them to pod traffic (before or after any NAT); the engine
//!   says it does, as the upstream e2e suite expects.
//! - Traffic from outside the topology (nodes, external hosts) is not modelled: every edge
//!   is between two pods of the topology.

use super::index::Index;
use super::model::{Direction, Edge, NetworkPolicy, Pod, PodIndex, Topology};
use netpol_probes::spec::Protocol;

/// Points at one rule of one policy (indices into the policy list and its rule list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleRef {
    pub policy: usize,
    pub direction: Direction,
    pub rule: usize,
}

/// What one direction of an edge says: the source's egress or the destination's ingress.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirectionVerdict {
    /// Indices of the policies that select the pod and isolate it in this direction.
    /// Empty: the pod is not isolated, so this direction allows the edge.
    pub isolated_by: Vec<usize>,
    /// The rules that allow the edge (empty when isolated and nothing allows it).
    pub allowed_by: Vec<RuleRef>,
}

impl DirectionVerdict {
    /// Whether this side lets the edge through: not isolated, or a rule admits it.
    pub fn allows(&self) -> bool {
        self.isolated_by.is_empty() || !self.allowed_by.is_empty()
    }
}

/// The engine's expectation for one edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The source pod's egress side.
    pub egress: DirectionVerdict,
    /// The destination pod's ingress side.
    pub ingress: DirectionVerdict,
}

impl Verdict {
    pub fn allowed(&self) -> bool {
        self.egress.allows() && self.ingress.allows()
    }

    pub fn side(&self, direction: Direction) -> &DirectionVerdict {
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }
}

/// Computes verdicts for a topology under a set of policies.
///
/// Construction precomputes which pods each policy selects and each peer matches, so that
/// [`Engine::verdict`] is cheap enough to plan clusters of thousands of pods.
///
/// Pod indices outside the topology never cause a panic: such a pod is selected by no
/// policy (so it is not isolated), matched by no selector or `ipBlock` peer, and serves no
/// named port; only rules with an empty peer list admit it.
pub struct Engine<'a> {
    topology: &'a Topology,
    policies: &'a [NetworkPolicy],
    index: Index,
}

impl<'a> Engine<'a> {
    /// Precomputes every policy's subjects and every rule's matching peers and ports.
    ///
    /// Accepts any model value: unvalidated input (e.g. an `endPort` below its port or a
    /// prefix longer than the address) is read as documented on the matching code, never
    /// with a panic.
    pub fn new(topology: &'a Topology, policies: &'a [NetworkPolicy]) -> Self {
        let index = Index::build(topology, policies);
        Engine {
            topology,
            policies,
            index,
        }
    }

    /// The topology the engine was built for.
    pub fn topology(&self) -> &'a Topology {
        self.topology
    }

    /// The policies the engine was built for; [`RuleRef::policy`] indexes into this list.
    pub fn policies(&self) -> &'a [NetworkPolicy] {
        self.policies
    }

    /// The verdict for one edge. `edge.src != edge.dst` (pod-to-itself is not an edge).
    pub fn verdict(&self, edge: Edge) -> Verdict {
        Verdict {
            egress: self.side(Direction::Egress, edge),
            ingress: self.side(Direction::Ingress, edge),
        }
    }

    /// Whether the policies allow `edge`: the same answer as `verdict(edge).allowed()`
    /// without collecting the policies and rules behind it.
    pub fn allows(&self, edge: Edge) -> bool {
        Direction::BOTH
            .into_iter()
            .all(|direction| self.side_allows(direction, edge))
    }

    /// What one side of `edge` says: the source's egress or the destination's ingress.
    pub fn side(&self, direction: Direction, edge: Edge) -> DirectionVerdict {
        let isolated_by = self.index.isolated_by(edge.subject(direction), direction);
        let allowed_by = if isolated_by.is_empty() {
            Vec::new()
        } else {
            self.admitting_rules(direction, edge).collect()
        };
        DirectionVerdict {
            isolated_by: isolated_by.to_vec(),
            allowed_by,
        }
    }

    /// Whether one side of `edge` allows it: `side(direction, edge).allows()`, cheaply.
    pub fn side_allows(&self, direction: Direction, edge: Edge) -> bool {
        let isolated = !self
            .index
            .isolated_by(edge.subject(direction), direction)
            .is_empty();
        !isolated || self.admitting_rules(direction, edge).next().is_some()
    }

    /// The rules of the policies isolating `direction`'s side of `edge` that admit it, in
    /// policy and rule order.
    pub(crate) fn admitting_rules(
        &self,
        direction: Direction,
        edge: Edge,
    ) -> impl Iterator<Item = RuleRef> {
        self.index.admitting_rules(direction, edge)
    }

    /// Every edge of the topology, in a stable order: each ordered pair of distinct pods
    /// whose source is not `provided`, times each port the destination serves.
    ///
    /// Sources come in topology order, then destinations, then the destination's ports in
    /// the order it declares them; a port/protocol pair a pod declares twice is one edge.
    pub fn edges(&self) -> Vec<Edge> {
        let pods = &self.topology.pods;
        let served: Vec<Vec<(u16, Protocol)>> = pods.iter().map(distinct_ports).collect();
        let mut edges = Vec::new();
        for src in (0..pods.len()).filter(|&src| !pods[src].provided) {
            for (dst, ports) in served.iter().enumerate().filter(|&(dst, _)| dst != src) {
                let edge = |&(port, protocol): &(u16, Protocol)| Edge {
                    src,
                    dst,
                    port,
                    protocol,
                };
                edges.extend(ports.iter().map(edge));
            }
        }
        edges
    }

    /// The policies that select `pod` (indices into the policy list), in policy order.
    pub fn policies_selecting(&self, pod: PodIndex) -> Vec<usize> {
        (0..self.policies.len())
            .filter(|&policy| self.selects(policy, pod))
            .collect()
    }

    /// The pods `policy` selects (its subjects), in topology order; none for an index
    /// outside the policy list.
    pub fn subjects(&self, policy: usize) -> Vec<PodIndex> {
        self.index
            .subjects(policy)
            .map(|set| set.iter().collect())
            .unwrap_or_default()
    }

    /// Whether `policy` selects `pod`.
    pub fn selects(&self, policy: usize, pod: PodIndex) -> bool {
        self.index
            .subjects(policy)
            .is_some_and(|set| set.contains(pod))
    }

    /// The policies that select `pod` and isolate it in `direction`, in policy order.
    pub fn isolated_by(&self, pod: PodIndex, direction: Direction) -> &[usize] {
        self.index.isolated_by(pod, direction)
    }

    /// `namespace/name` of a pod, or `pod #N` for an index outside the topology.
    pub fn pod_name(&self, pod: PodIndex) -> String {
        self.topology
            .pods
            .get(pod)
            .map_or_else(|| format!("pod #{pod}"), |p| p.id())
    }

    /// `namespace/name` of a policy, or `policy #N` for an index outside the policy list.
    pub fn policy_name(&self, policy: usize) -> String {
        self.policies
            .get(policy)
            .map_or_else(|| format!("policy #{policy}"), |p| p.id())
    }

    /// A rule as people name it: `ingress rule 0 of meeting-app/postgres-policy`.
    pub fn rule_name(&self, rule: RuleRef) -> String {
        let direction = rule.direction.as_lowercase();
        format!(
            "{direction} rule {} of {}",
            rule.rule,
            self.policy_name(rule.policy)
        )
    }
}

/// The port/protocol pairs a pod serves, each once, in declaration order.
fn distinct_ports(pod: &Pod) -> Vec<(u16, Protocol)> {
    let mut ports: Vec<(u16, Protocol)> = Vec::with_capacity(pod.ports.len());
    for spec in &pod.ports {
        if !ports.contains(&(spec.port, spec.protocol)) {
            ports.push((spec.port, spec.protocol));
        }
    }
    ports
}
