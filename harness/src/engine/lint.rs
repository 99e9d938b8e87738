//! Static findings about a policy set: intended flows it denies, policies and peers that
//! select nothing, egress-isolated pods without DNS, and edges one side allows but the
//! other denies.

use super::model::IntentFlow;
use super::verdict::Engine;
use std::fmt;

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
    let _ = (engine, intent);
    todo!("engine: lint")
}
