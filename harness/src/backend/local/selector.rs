//! Namespace labels as selectors see them; label matching itself is the engine's
//! ([`LabelSelector::matches`]), since selectors are not where the two implementations of
//! NetworkPolicy should differ.

use crate::engine::{LabelSelector, Labels, NAMESPACE_NAME_LABEL, Topology};

/// Whether `selector` matches `labels`.
pub fn selector_matches(selector: &LabelSelector, labels: &Labels) -> bool {
    selector.matches(labels)
}

/// The labels of namespace `name` as the API server keeps them: the name label is always
/// present (also for a namespace the topology does not list).
pub fn namespace_labels(topology: &Topology, name: &str) -> Labels {
    let mut labels = topology
        .namespaces
        .iter()
        .find(|ns| ns.name == name)
        .map(|ns| ns.labels.clone())
        .unwrap_or_default();
    labels.insert(NAMESPACE_NAME_LABEL.to_owned(), name.to_owned());
    labels
}
