//! Label selector matching for the nftables compiler.
//!
//! TODO: call the engine's matching once it is public, so the two implementations share
//! only the model (they must stay independent for the differential test only in how they
//! combine rules; label matching itself is not where they should differ).

use crate::engine::{LabelSelector, Labels, NAMESPACE_NAME_LABEL, Operator, Topology};

/// Whether `selector` matches `labels` (`matchLabels` and every `matchExpressions` entry).
pub fn selector_matches(selector: &LabelSelector, labels: &Labels) -> bool {
    let labels_ok = selector
        .match_labels
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v));
    labels_ok
        && selector.match_expressions.iter().all(|req| {
            let value = labels.get(&req.key);
            match req.operator {
                Operator::In => value.is_some_and(|v| req.values.contains(v)),
                Operator::NotIn => value.is_none_or(|v| !req.values.contains(v)),
                Operator::Exists => value.is_some(),
                Operator::DoesNotExist => value.is_none(),
            }
        })
}

/// The labels of namespace `name`; a namespace the topology does not list carries only its
/// name label.
pub fn namespace_labels(topology: &Topology, name: &str) -> Labels {
    topology
        .namespaces
        .iter()
        .find(|ns| ns.name == name)
        .map(|ns| ns.labels.clone())
        .unwrap_or_else(|| Labels::from([(NAMESPACE_NAME_LABEL.to_owned(), name.to_owned())]))
}
