//! Label selector matching, as `metav1.LabelSelector` defines it.
//!
//! A selector matches a set of labels when every `matchLabels` pair is present and every
//! `matchExpressions` requirement holds; the empty selector matches everything. `NotIn` and
//! `DoesNotExist` match labels that lack the key, exactly as Kubernetes evaluates them:
//! <https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#set-based-requirement>

use super::model::{LabelSelector, Labels, Operator, Requirement};
use std::fmt;

impl LabelSelector {
    /// The selector that matches everything (`{}`).
    pub fn everything() -> Self {
        LabelSelector::default()
    }

    /// Whether the selector has neither `matchLabels` nor `matchExpressions`.
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    /// Whether `labels` satisfy every `matchLabels` pair and every requirement.
    pub fn matches(&self, labels: &Labels) -> bool {
        let pairs_hold = self
            .match_labels
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value));
        pairs_hold && self.match_expressions.iter().all(|req| req.matches(labels))
    }
}

impl Requirement {
    /// Whether `labels` satisfy this requirement.
    ///
    /// `In` with no values matches nothing and `NotIn` with no values matches everything:
    /// validation rejects both, but the model can hold them and evaluating them literally
    /// never panics.
    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.key);
        let listed = || value.is_some_and(|v| self.values.contains(v));
        match self.operator {
            Operator::In => listed(),
            Operator::NotIn => !listed(),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

impl Operator {
    /// The operator's name as the Kubernetes API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::In => "In",
            Operator::NotIn => "NotIn",
            Operator::Exists => "Exists",
            Operator::DoesNotExist => "DoesNotExist",
        }
    }
}

/// Prints the selector in kubectl's selector syntax inside braces, e.g.
/// `{app=web,tier in (back,data),!legacy}`; the empty selector prints as `{}`.
impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pairs = self.match_labels.iter().map(|(k, v)| format!("{k}={v}"));
        let requirements = self.match_expressions.iter().map(Requirement::to_string);
        let terms: Vec<String> = pairs.chain(requirements).collect();
        write!(f, "{{{}}}", terms.join(","))
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values = self.values.join(",");
        match self.operator {
            Operator::In => write!(f, "{} in ({values})", self.key),
            Operator::NotIn => write!(f, "{} notin ({values})", self.key),
            Operator::Exists => f.write_str(&self.key),
            Operator::DoesNotExist => write!(f, "!{}", self.key),
        }
    }
}
