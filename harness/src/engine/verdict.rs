//! Verdicts: whether the policies allow an edge, and which policies and rules decided it.
//!
//! Semantics (networking.k8s.io/v1): a pod is isolated for a direction when at least one
//! policy that selects it has that direction in its policy types. A non-isolated pod allows
//! everything in that direction. An isolated pod allows exactly the union of the matching
//! rules of all policies that select it and isolate it in that direction. An edge is allowed
//! only when the source's egress and the destination's ingress both allow it.

use super::model::{Direction, Edge, NetworkPolicy, PodIndex, Topology};

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
pub struct Engine<'a> {
    pub topology: &'a Topology,
    pub policies: &'a [NetworkPolicy],
}

impl<'a> Engine<'a> {
    pub fn new(topology: &'a Topology, policies: &'a [NetworkPolicy]) -> Self {
        Engine { topology, policies }
    }

    /// The verdict for one edge. `edge.src != edge.dst` (pod-to-itself is not an edge).
    pub fn verdict(&self, edge: Edge) -> Verdict {
        let _ = edge;
        todo!("engine: verdict")
    }

    /// Every edge of the topology, in a stable order: each ordered pair of distinct pods
    /// whose source is not `provided`, times each port the destination serves.
    pub fn edges(&self) -> Vec<Edge> {
        todo!("engine: edges")
    }

    /// The policies that select `pod` (indices into the policy list).
    pub fn policies_selecting(&self, pod: PodIndex) -> Vec<usize> {
        let _ = pod;
        todo!("engine: policies_selecting")
    }
}
