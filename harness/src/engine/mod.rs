//! The NetworkPolicy engine: pure computation of what the policies allow.
//!
//! No IO, no async, no clock. Parsing files sits above it; backends and the runner call it.
//!
//! Domain words, used the same way everywhere in the harness:
//! - *subject*: a pod a policy selects with its `podSelector`;
//! - *peer*: the other side of a rule (`from` for ingress, `to` for egress);
//! - *edge*: source pod, destination pod, port, protocol;
//! - *verdict*: allow or deny, with the rules that decided it;
//! - *probe*: one attempt to cross an edge; *outcome*: what a probe saw.
//!
//! The semantics follow networking.k8s.io/v1 NetworkPolicy
//! (<https://kubernetes.io/docs/concepts/services-networking/network-policies/>):
//! [`selector`] matches labels, [`cidr`] matches `ipBlock`s, [`verdict`] decides edges,
//! [`explain`] puts a verdict into words and [`lint`](mod@lint) reports findings about a
//! policy set.

pub mod cidr;
pub mod explain;
mod index;
pub mod lint;
pub mod model;
pub mod selector;
pub mod verdict;

pub use explain::{Explanation, SideExplanation};
pub use lint::{Finding, lint};
pub use model::*;
pub use verdict::{DirectionVerdict, Engine, RuleRef, Verdict};
