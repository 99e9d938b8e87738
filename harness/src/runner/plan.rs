//! The plan of a run: for every verified step, the state the data plane should be in and
//! every edge's expected verdict, computed by the engine alone (no backend), so that trials
//! can be listed without a cluster.

use super::error::Result;
use super::fixture::Fixture;
use super::steps::{Action, ActionKind, Location, POLICIES_STEP};
use crate::backend::Via;
use crate::engine::{
    Edge, Engine, Explanation, NAMESPACE_NAME_LABEL, NetworkPolicy, PodIndex, Topology,
};
use crate::report::Expected;
use std::path::Path;

/// What the data plane should enforce after a step: the topology with its current labels,
/// and the applied policies.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub topology: Topology,
    pub policies: Vec<NetworkPolicy>,
}

/// One edge to verify in one step.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedEdge {
    pub edge: Edge,
    /// How the probe addresses the destination; the verdict does not depend on it.
    pub via: Via,
    /// `src->dst:port/PROTOCOL` with pods as `namespace/name`.
    pub id: String,
    /// The trial name: `fixture::step::id::verdict`, the step as `step@mode` when the
    /// mode is not `pod` (see [`trial_name`]).
    pub trial: String,
    pub expected: Expected,
    pub explanation: Explanation,
}

/// One verified step: the actions that lead to it, the state and the edges.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedStep {
    pub name: String,
    pub description: Option<String>,
    pub actions: Vec<Action>,
    pub state: State,
    pub edges: Vec<PlannedEdge>,
}

impl PlannedStep {
    /// Whether the step changes the applied policies (so the backend must apply them).
    pub fn changes_policies(&self) -> bool {
        self.actions.iter().any(|action| {
            matches!(
                action.kind,
                ActionKind::DeleteAll | ActionKind::Delete(_) | ActionKind::Apply { .. }
            )
        })
    }
}

/// Every verified step of a fixture, in run order.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub fixture: String,
    /// The probe modes, in order; every step has each edge once per mode.
    pub modes: Vec<Via>,
    pub steps: Vec<PlannedStep>,
}

impl Plan {
    /// Plans `fixture`: its policies as the first step ([`POLICIES_STEP`]), then each step of
    /// its steps file.
    ///
    /// # Errors
    /// A step deletes a policy that is not applied, or names a pod or namespace the topology
    /// does not have.
    pub fn new(fixture: &Fixture) -> Result<Plan> {
        Plan::with_modes(fixture, &[Via::Pod])
    }

    /// Plans `fixture` as [`Plan::new`] does, with each edge once per mode of `modes` (in
    /// that order within each step).
    ///
    /// # Errors
    /// As [`Plan::new`].
    pub fn with_modes(fixture: &Fixture, modes: &[Via]) -> Result<Plan> {
        let initial = Action {
            kind: ActionKind::Apply {
                files: vec![fixture.dir.join(super::fixture::POLICIES_DIR)],
                policies: fixture.policies.clone(),
            },
            at: Location::default(),
        };
        let mut state = State {
            topology: fixture.topology.clone(),
            policies: Vec::new(),
        };
        let steps_file = fixture.steps_file();
        let mut steps = Vec::new();
        let first = [(POLICIES_STEP.to_owned(), None, vec![initial])];
        let rest = fixture.steps.iter().map(|step| {
            (
                step.name.clone(),
                step.description.clone(),
                step.actions.clone(),
            )
        });
        for (name, description, actions) in first.into_iter().chain(rest) {
            for action in &actions {
                perform(&mut state, action, &steps_file)?;
            }
            let edges = planned_edges(&fixture.name, &name, &state, modes);
            steps.push(PlannedStep {
                name,
                description,
                actions,
                state: state.clone(),
                edges,
            });
        }
        Ok(Plan {
            fixture: fixture.name.clone(),
            modes: modes.to_vec(),
            steps,
        })
    }

    /// Every planned edge of every step, in run order.
    pub fn edges(&self) -> impl Iterator<Item = &PlannedEdge> {
        self.steps.iter().flat_map(|step| &step.edges)
    }
}

/// `src->dst:port/PROTOCOL`, the edge part of a trial name.
pub fn edge_id(topology: &Topology, edge: Edge) -> String {
    let pod = |index: PodIndex| topology.pods[index].id();
    format!(
        "{}->{}:{}/{}",
        pod(edge.src),
        pod(edge.dst),
        edge.port,
        edge.protocol
    )
}

/// `fixture::step::edge::verdict`: stable across runs, sortable, and filterable by any
/// segment (`::deny`, `meeting-app::policies::`, `->meeting-app/redis:`). A mode other than
/// `pod` joins the step as `step@mode` (`meeting-app::policies@service::...`), so that pod
/// names stay what they were before modes existed and `@service` filters one mode.
pub fn trial_name(
    fixture: &str,
    step: &str,
    via: Via,
    edge_id: &str,
    expected: Expected,
) -> String {
    match via {
        Via::Pod => format!("{fixture}::{step}::{edge_id}::{expected}"),
        _ => format!("{fixture}::{step}@{via}::{edge_id}::{expected}"),
    }
}

/// The baseline's edges: every edge of `topology` with no policy, once per mode of `modes`,
/// all expected to connect.
pub fn baseline_edges(fixture: &str, topology: &Topology, modes: &[Via]) -> Vec<PlannedEdge> {
    let state = State {
        topology: topology.clone(),
        policies: Vec::new(),
    };
    planned_edges(fixture, "baseline", &state, modes)
}

pub(super) fn planned_edges(
    fixture: &str,
    step: &str,
    state: &State,
    modes: &[Via],
) -> Vec<PlannedEdge> {
    let engine = Engine::new(&state.topology, &state.policies);
    let edges: Vec<Edge> = engine
        .edges()
        .into_iter()
        .filter(|edge| edge.src != edge.dst)
        .collect();
    let explained: Vec<(Edge, Explanation)> = edges
        .into_iter()
        .map(|edge| (edge, engine.explain(edge)))
        .collect();
    let mut planned = Vec::with_capacity(explained.len() * modes.len());
    for &via in modes {
        for (edge, explanation) in &explained {
            let expected = Expected::from_allowed(explanation.allowed);
            let id = edge_id(&state.topology, *edge);
            planned.push(PlannedEdge {
                edge: *edge,
                via,
                trial: trial_name(fixture, step, via, &id, expected),
                id,
                expected,
                explanation: explanation.clone(),
            });
        }
    }
    planned
}

/// Applies one step action to the planned state.
fn perform(state: &mut State, action: &Action, steps_file: &Path) -> Result<()> {
    match &action.kind {
        ActionKind::DeleteAll => state.policies.clear(),
        ActionKind::Delete(ids) => {
            for (i, id) in ids.iter().enumerate() {
                let Some(index) = state.policies.iter().position(|p| &p.id() == id) else {
                    let at = Location {
                        field: format!("{}[{i}]", action.at.field),
                        line: action.at.line,
                    };
                    let message = format!("policy {id} is not applied at this step");
                    return Err(at.error(steps_file, message));
                };
                state.policies.remove(index);
            }
        }
        ActionKind::Apply { policies, .. } => {
            for policy in policies {
                state.policies.retain(|p| p.id() != policy.id());
                state.policies.push(policy.clone());
            }
        }
        ActionKind::SetNamespaceLabels { namespace, labels } => {
            let Some(ns) = state
                .topology
                .namespaces
                .iter_mut()
                .find(|ns| &ns.name == namespace)
            else {
                let message = format!("namespace {namespace} is not in the topology");
                return Err(action.at.error(steps_file, message));
            };
            ns.labels = labels.clone();
            ns.labels
                .insert(NAMESPACE_NAME_LABEL.to_owned(), namespace.clone());
        }
        ActionKind::SetPodLabels { pod, labels } => {
            let Some(found) = state.topology.pods.iter_mut().find(|p| &p.id() == pod) else {
                let message = format!("pod {pod} is not in the topology");
                return Err(action.at.error(steps_file, message));
            };
            found.labels = labels.clone();
        }
    }
    Ok(())
}
