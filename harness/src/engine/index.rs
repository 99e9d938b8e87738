//! The engine's precomputed state: which pods each policy selects, which pods each rule's
//! peers match, and each rule's ports in a form that needs no string comparison per edge.
//!
//! Everything here is computed once in [`Index::build`], so that a verdict costs a few bit
//! tests and integer comparisons per rule of the policies that select the edge's two pods.

use super::model::{
    Direction, Edge, LabelSelector, Labels, NAMESPACE_NAME_LABEL, NetworkPolicy, Peer, PodIndex,
    PolicyPort, PortRef, Rule, Topology,
};
use super::verdict::RuleRef;
use netpol_probes::spec::Protocol;
use std::collections::HashMap;

/// A set of pod indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PodSet {
    words: Vec<u64>,
}

impl PodSet {
    pub(crate) fn empty(pods: usize) -> Self {
        PodSet {
            words: vec![0; pods.div_ceil(64)],
        }
    }

    fn insert(&mut self, pod: PodIndex) {
        if let Some(word) = self.words.get_mut(pod / 64) {
            *word |= 1 << (pod % 64);
        }
    }

    /// Whether `pod` is in the set; pods outside the topology never are.
    pub(crate) fn contains(&self, pod: PodIndex) -> bool {
        self.words
            .get(pod / 64)
            .is_some_and(|word| word & (1 << (pod % 64)) != 0)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.words.iter().all(|&word| word == 0)
    }

    fn union_with(&mut self, other: &PodSet) {
        for (word, other) in self.words.iter_mut().zip(&other.words) {
            *word |= other;
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = PodIndex> + '_ {
        self.words.iter().enumerate().flat_map(|(at, &word)| {
            (0..64)
                .filter(move |bit| word & (1 << bit) != 0)
                .map(move |bit| at * 64 + bit)
        })
    }
}

/// The peers a rule admits.
#[derive(Debug)]
enum Peers {
    /// `from`/`to` missing or empty: every peer, inside the cluster or not.
    All,
    /// The union of the pods each listed peer matches.
    Pods(PodSet),
}

/// One `NetworkPolicyPort`, resolved for fast matching.
#[derive(Debug)]
enum PortMatch {
    /// Every port of the protocol (`port` absent).
    AnyPort(Protocol),
    /// `port` alone (`first == last`) or `port`..=`endPort`.
    Range {
        protocol: Protocol,
        first: u16,
        last: u16,
    },
    /// A named port: matches the destination pod's port of that name and protocol only.
    Named { protocol: Protocol, name: NameId },
    /// A named port no pod of the topology declares.
    Unresolvable,
}

/// An interned container port name.
type NameId = u32;

/// A container port that has a name, as named ports resolve against it.
#[derive(Debug, Clone, Copy)]
struct NamedPort {
    name: NameId,
    protocol: Protocol,
    port: u16,
}

/// One rule of a policy that isolates its subjects in the rule's direction.
#[derive(Debug)]
struct CompiledRule {
    rule_ref: RuleRef,
    peers: Peers,
    /// Empty: every port and protocol.
    ports: Vec<PortMatch>,
}

/// What the engine knows about one pod of the topology.
#[derive(Debug, Default)]
struct PodState {
    /// Per direction ([`slot`]): policies that select the pod and isolate it that way.
    isolated_by: [Vec<usize>; 2],
    /// Per direction: indices into [`Index::rules`] of those policies' rules, in policy and
    /// rule order.
    rules: [Vec<usize>; 2],
    named_ports: Vec<NamedPort>,
}

/// The precomputed state behind [`super::Engine`].
#[derive(Debug)]
pub(crate) struct Index {
    pods: Vec<PodState>,
    rules: Vec<CompiledRule>,
    /// Per policy: the pods it selects.
    subjects: Vec<PodSet>,
}

/// The array position of a direction in [`PodState`].
fn slot(direction: Direction) -> usize {
    match direction {
        Direction::Ingress => 0,
        Direction::Egress => 1,
    }
}

impl Index {
    pub(crate) fn build(topology: &Topology, policies: &[NetworkPolicy]) -> Self {
        let scope = Scope::new(topology);
        let mut names = HashMap::new();
        let mut pods: Vec<PodState> = topology
            .pods
            .iter()
            .map(|pod| PodState {
                named_ports: intern_ports(pod, &mut names),
                ..PodState::default()
            })
            .collect();
        let subjects: Vec<PodSet> = policies.iter().map(|p| scope.subjects(p)).collect();
        let mut rules = Vec::new();
        for (policy_index, policy) in policies.iter().enumerate() {
            for direction in Direction::BOTH {
                if !policy.isolates(direction) {
                    continue;
                }
                let first_rule = rules.len();
                for (rule_index, rule) in policy.rules(direction).iter().enumerate() {
                    let rule_ref = RuleRef {
                        policy: policy_index,
                        direction,
                        rule: rule_index,
                    };
                    rules.push(scope.compile(policy, rule, rule_ref, &names));
                }
                for pod in subjects[policy_index].iter() {
                    let state = &mut pods[pod];
                    state.isolated_by[slot(direction)].push(policy_index);
                    state.rules[slot(direction)].extend(first_rule..rules.len());
                }
            }
        }
        Index {
            pods,
            rules,
            subjects,
        }
    }

    /// The policies that select `pod` and isolate it in `direction`.
    pub(crate) fn isolated_by(&self, pod: PodIndex, direction: Direction) -> &[usize] {
        self.pods
            .get(pod)
            .map_or(&[], |state| &state.isolated_by[slot(direction)])
    }

    /// The pods `policy` selects, or `None` for an index outside the policy list.
    pub(crate) fn subjects(&self, policy: usize) -> Option<&PodSet> {
        self.subjects.get(policy)
    }

    /// The rules that admit `edge` on `direction`'s side: the destination's ingress rules
    /// or the source's egress rules.
    pub(crate) fn admitting_rules(
        &self,
        direction: Direction,
        edge: Edge,
    ) -> impl Iterator<Item = RuleRef> + '_ {
        let (subject, peer) = (edge.subject(direction), edge.peer(direction));
        let rule_ids = self
            .pods
            .get(subject)
            .map_or(&[][..], |s| &s.rules[slot(direction)]);
        let dst_ports = self
            .pods
            .get(edge.dst)
            .map_or(&[][..], |s| &s.named_ports[..]);
        rule_ids
            .iter()
            .map(|&id| &self.rules[id])
            .filter(move |rule| rule.admits(peer, edge.port, edge.protocol, dst_ports))
            .map(|rule| rule.rule_ref)
    }
}

impl CompiledRule {
    fn admits(&self, peer: PodIndex, port: u16, protocol: Protocol, dst: &[NamedPort]) -> bool {
        let peer_matches = match &self.peers {
            Peers::All => true,
            Peers::Pods(pods) => pods.contains(peer),
        };
        peer_matches
            && (self.ports.is_empty() || self.ports.iter().any(|p| p.admits(port, protocol, dst)))
    }
}

impl PortMatch {
    fn compile(port: &PolicyPort, names: &HashMap<&str, NameId>) -> Self {
        let protocol = port.protocol;
        match &port.port {
            None => PortMatch::AnyPort(protocol),
            // An endPort below port is invalid; it is read as the single port rather than
            // as an empty range so that the rule still means what its `port` says.
            Some(PortRef::Number(first)) => {
                let last = port.end_port.map_or(*first, |end| end.max(*first));
                PortMatch::Range {
                    protocol,
                    first: *first,
                    last,
                }
            }
            Some(PortRef::Name(name)) => match names.get(name.as_str()) {
                Some(&name) => PortMatch::Named { protocol, name },
                None => PortMatch::Unresolvable,
            },
        }
    }

    /// Whether traffic to `port`/`protocol` on a destination pod serving `dst` matches.
    ///
    /// A named port resolves against the destination pod's container ports, for ingress
    /// (the subject) and egress (the peer) alike, and only to a port of the same protocol.
    fn admits(&self, port: u16, protocol: Protocol, dst: &[NamedPort]) -> bool {
        match *self {
            PortMatch::AnyPort(p) => p == protocol,
            PortMatch::Range {
                protocol: p,
                first,
                last,
            } => p == protocol && (first..=last).contains(&port),
            PortMatch::Named { protocol: p, name } => {
                p == protocol
                    && dst
                        .iter()
                        .any(|d| d.name == name && d.protocol == p && d.port == port)
            }
            PortMatch::Unresolvable => false,
        }
    }
}

fn intern_ports<'t>(
    pod: &'t super::model::Pod,
    names: &mut HashMap<&'t str, NameId>,
) -> Vec<NamedPort> {
    pod.ports
        .iter()
        .filter_map(|spec| {
            let name = spec.name.as_deref()?;
            let next = NameId::try_from(names.len()).unwrap_or(NameId::MAX);
            let name = *names.entry(name).or_insert(next);
            Some(NamedPort {
                name,
                protocol: spec.protocol,
                port: spec.port,
            })
        })
        .collect()
}

/// The topology seen from selectors: each pod's namespace and that namespace's labels.
struct Scope<'t> {
    topology: &'t Topology,
    /// Distinct namespace names with their labels, including namespaces pods name but the
    /// topology does not list.
    namespaces: Vec<(&'t str, Labels)>,
    /// Per pod: index into `namespaces`.
    pod_namespace: Vec<usize>,
}

impl<'t> Scope<'t> {
    fn new(topology: &'t Topology) -> Self {
        let mut namespaces: Vec<(&str, Labels)> = Vec::new();
        let mut by_name: HashMap<&str, usize> = HashMap::new();
        let mut add = |name: &'t str, labels: Option<&Labels>| {
            *by_name.entry(name).or_insert_with(|| {
                namespaces.push((name, namespace_labels(name, labels)));
                namespaces.len() - 1
            })
        };
        for namespace in &topology.namespaces {
            add(&namespace.name, Some(&namespace.labels));
        }
        let pod_namespace = topology
            .pods
            .iter()
            .map(|pod| add(&pod.namespace, None))
            .collect();
        Scope {
            topology,
            namespaces,
            pod_namespace,
        }
    }

    /// A policy's subjects: the pods of its namespace its `podSelector` matches.
    fn subjects(&self, policy: &NetworkPolicy) -> PodSet {
        self.pods_where(|pod| {
            let in_namespace = self.topology.pods[pod].namespace == policy.namespace;
            in_namespace && policy.pod_selector.matches(&self.topology.pods[pod].labels)
        })
    }

    fn compile(
        &self,
        policy: &NetworkPolicy,
        rule: &Rule,
        rule_ref: RuleRef,
        names: &HashMap<&str, NameId>,
    ) -> CompiledRule {
        let peers = if rule.peers.is_empty() {
            Peers::All
        } else {
            let mut pods = PodSet::empty(self.topology.pods.len());
            for peer in &rule.peers {
                pods.union_with(&self.peer_pods(policy, peer));
            }
            Peers::Pods(pods)
        };
        let ports = rule
            .ports
            .iter()
            .map(|port| PortMatch::compile(port, names))
            .collect();
        CompiledRule {
            rule_ref,
            peers,
            ports,
        }
    }

    /// The pods of the topology one peer of `policy` matches.
    ///
    /// A `podSelector` alone selects pods of the policy's namespace; a `namespaceSelector`
    /// alone selects every pod of the namespaces it matches; both together select the pods
    /// matching the pod selector within those namespaces. An `ipBlock` matches the pods whose
    /// IP it contains.
    fn peer_pods(&self, policy: &NetworkPolicy, peer: &Peer) -> PodSet {
        let pods = &self.topology.pods;
        match peer {
            Peer::Pods {
                namespace_selector,
                pod_selector,
            } => {
                let in_namespace: Vec<bool> = self
                    .namespaces
                    .iter()
                    .map(|(name, labels)| match namespace_selector {
                        Some(selector) => selector.matches(labels),
                        None => *name == policy.namespace,
                    })
                    .collect();
                let everything = LabelSelector::everything();
                let pod_selector = pod_selector.as_ref().unwrap_or(&everything);
                self.pods_where(|pod| {
                    in_namespace[self.pod_namespace[pod]] && pod_selector.matches(&pods[pod].labels)
                })
            }
            Peer::IpBlock(block) => self.pods_where(|pod| block.contains(pods[pod].ip)),
        }
    }

    fn pods_where(&self, mut keep: impl FnMut(PodIndex) -> bool) -> PodSet {
        let mut set = PodSet::empty(self.topology.pods.len());
        for pod in (0..self.topology.pods.len()).filter(|&pod| keep(pod)) {
            set.insert(pod);
        }
        set
    }
}

/// A namespace's labels as the API server keeps them: `kubernetes.io/metadata.name` is
/// always present and always the namespace's name.
fn namespace_labels(name: &str, labels: Option<&Labels>) -> Labels {
    let mut labels = labels.cloned().unwrap_or_default();
    labels.insert(NAMESPACE_NAME_LABEL.to_owned(), name.to_owned());
    labels
}

/// A selector peer of a policy's rule: the rule and the peer's position in its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PeerRef<'p> {
    pub(crate) rule: RuleRef,
    /// The peer's position in the rule's `from`/`to` list.
    pub(crate) index: usize,
    pub(crate) peer: &'p Peer,
    /// The namespace of the peer's policy.
    pub(crate) namespace: &'p str,
}

/// Every pod/namespace selector peer, in policy, direction, rule and peer order, that
/// matches no pod of the topology. `ipBlock` peers are left out: they usually name
/// addresses outside the cluster.
pub(crate) fn peers_matching_nothing<'p>(
    topology: &Topology,
    policies: &'p [NetworkPolicy],
) -> Vec<PeerRef<'p>> {
    let scope = Scope::new(topology);
    let mut found = Vec::new();
    for (policy_index, policy) in policies.iter().enumerate() {
        for direction in Direction::BOTH {
            for (rule_index, rule) in policy.rules(direction).iter().enumerate() {
                let rule_ref = RuleRef {
                    policy: policy_index,
                    direction,
                    rule: rule_index,
                };
                for (peer_index, peer) in rule.peers.iter().enumerate() {
                    let selects = matches!(peer, Peer::Pods { .. });
                    if selects && scope.peer_pods(policy, peer).is_empty() {
                        found.push(PeerRef {
                            rule: rule_ref,
                            index: peer_index,
                            peer,
                            namespace: &policy.namespace,
                        });
                    }
                }
            }
        }
    }
    found
}
