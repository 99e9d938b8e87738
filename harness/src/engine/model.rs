//! The engine's input, after parsing and validation: a [`Topology`] of namespaces and pods,
//! and [`NetworkPolicy`]s with every API default already applied.
//!
//! These types are the contract between the parsers (which fill them from YAML), the engine
//! (which computes verdicts from them) and the backends (which compile them to a data plane).
//! Field meanings follow networking.k8s.io/v1:
//! <https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/network-policy-v1/>

use netpol_probes::spec::{PortSpec, Protocol};
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

/// Label keys and values of a namespace or pod.
pub type Labels = BTreeMap<String, String>;

/// The label every namespace carries, set by the API server to the namespace's name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A namespace of the topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub name: String,
    /// Always contains [`NAMESPACE_NAME_LABEL`] set to `name`.
    pub labels: Labels,
}

/// A pod of the topology: the stand-in for one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    pub name: String,
    pub namespace: String,
    pub labels: Labels,
    /// Assigned by the topology file or deterministically by the parser.
    pub ip: IpAddr,
    /// Already exists in a real cluster (e.g. CoreDNS): never a probe source there.
    pub provided: bool,
    pub ports: Vec<PortSpec>,
}

impl Pod {
    /// `namespace/name`, the identity a probe pod reports.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// The namespaces and pods a run deploys (or finds, for provided pods).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Topology {
    pub namespaces: Vec<Namespace>,
    pub pods: Vec<Pod>,
}

impl Topology {
    /// The index of the pod whose [`Pod::id`] is `id` (`namespace/name`).
    pub fn pod_index(&self, id: &str) -> Option<PodIndex> {
        let (namespace, name) = id.split_once('/')?;
        self.pods
            .iter()
            .position(|pod| pod.namespace == namespace && pod.name == name)
    }
}

/// Index of a pod in [`Topology::pods`].
pub type PodIndex = usize;

/// Which way traffic flows relative to the policy's subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// Traffic arriving at the subject; peers are sources.
    Ingress,
    /// Traffic leaving the subject; peers are destinations.
    Egress,
}

impl Direction {
    pub const BOTH: [Direction; 2] = [Direction::Ingress, Direction::Egress];

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "Ingress",
            Direction::Egress => "Egress",
        }
    }

    /// The direction in lower case, as sentences use it (`ingress`, `egress`).
    pub fn as_lowercase(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }

    /// The other direction: the side of an edge this one is not.
    pub fn opposite(self) -> Direction {
        match self {
            Direction::Ingress => Direction::Egress,
            Direction::Egress => Direction::Ingress,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `LabelSelector`. The empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    pub match_labels: Labels,
    pub match_expressions: Vec<Requirement>,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    /// Non-empty for `In`/`NotIn`, empty for `Exists`/`DoesNotExist` (validated).
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

/// An IP network: an address with all host bits zero and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

/// `NetworkPolicyPeer.ipBlock`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpBlock {
    pub cidr: Cidr,
    /// Each strictly inside `cidr` and of the same family (validated).
    pub except: Vec<Cidr>,
}

/// `NetworkPolicyPeer`: exactly one of a pod/namespace selector pair or an ipBlock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// `podSelector` and/or `namespaceSelector` (at least one is `Some`).
    ///
    /// Without `namespace_selector`, pods are taken from the policy's own namespace; without
    /// `pod_selector`, every pod of the selected namespaces matches.
    Pods {
        namespace_selector: Option<LabelSelector>,
        pod_selector: Option<LabelSelector>,
    },
    IpBlock(IpBlock),
}

/// `NetworkPolicyPort.port`: a number or a container port name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PortRef {
    Number(u16),
    Name(String),
}

/// `NetworkPolicyPort` with its protocol defaulted (TCP when absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyPort {
    pub protocol: Protocol,
    /// `None`: every port of the protocol.
    pub port: Option<PortRef>,
    /// Only with a numeric `port`, and `>= port` (validated).
    pub end_port: Option<u16>,
}

/// One ingress or egress rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rule {
    /// `from` / `to`. Empty (missing or `[]`): every peer, including outside the cluster.
    pub peers: Vec<Peer>,
    /// Empty (missing or `[]`): every port and protocol.
    pub ports: Vec<PolicyPort>,
}

/// Where a manifest came from, for errors and explanations.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    pub file: PathBuf,
    /// Zero-based index of the YAML document within the file.
    pub document: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (document {})", self.file.display(), self.document)
    }
}

/// A validated NetworkPolicy with the API server's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkPolicy {
    pub name: String,
    pub namespace: String,
    /// Selects the policy's subjects among the pods of `namespace`.
    pub pod_selector: LabelSelector,
    /// The directions this policy isolates its subjects in: `spec.policyTypes`, or when
    /// absent, Ingress always plus Egress when the policy has egress rules.
    pub isolates_ingress: bool,
    pub isolates_egress: bool,
    pub ingress: Vec<Rule>,
    pub egress: Vec<Rule>,
    pub origin: Origin,
}

impl NetworkPolicy {
    /// `namespace/name`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    pub fn isolates(&self, direction: Direction) -> bool {
        match direction {
            Direction::Ingress => self.isolates_ingress,
            Direction::Egress => self.isolates_egress,
        }
    }

    pub fn rules(&self, direction: Direction) -> &[Rule] {
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }
}

/// An edge: one attempt to reach `port`/`protocol` on `dst` from `src`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Edge {
    pub src: PodIndex,
    pub dst: PodIndex,
    pub port: u16,
    pub protocol: Protocol,
}

impl Edge {
    /// The pod whose policies decide `direction`'s side of the edge: the destination for
    /// ingress, the source for egress.
    pub fn subject(self, direction: Direction) -> PodIndex {
        match direction {
            Direction::Ingress => self.dst,
            Direction::Egress => self.src,
        }
    }

    /// The pod on the other side from [`Edge::subject`]: the one the rules' peers must match.
    pub fn peer(self, direction: Direction) -> PodIndex {
        self.subject(direction.opposite())
    }
}

/// One flow a fixture's intent file says should work, with the sentence it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentFlow {
    pub src: PodIndex,
    pub dst: PodIndex,
    pub port: u16,
    pub protocol: Protocol,
    /// The sentence of the source document this flow comes from.
    pub reason: String,
}
