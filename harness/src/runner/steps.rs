//! The `steps.yaml` format: what happens to a fixture after its policies are verified.
//!
//! A fixture's optional `steps.yaml` is one YAML document holding a list of *steps*. Each step
//! has a `name` and one or more actions; the runner performs the actions, converges and
//! verifies every edge again, so a fixture can test how a data plane handles updates.
//!
//! ```yaml
//! - name: tighten-redis              # kebab-case, unique; names the step's trials
//!   description: only the backend may reach Redis   # optional
//!   delete: [meeting-app/allow-redis]                # policies by namespace/name
//!   apply: [extra/redis-strict.yaml, extra/more/]    # files or directories, relative to
//!                                                    # the fixture directory
//! - name: relabel-frontend
//!   set-pod-labels: {pod: meeting-app/frontend, labels: {app: frontend, tier: edge}}
//!   set-namespace-labels: {namespace: monitoring, labels: {team: ops}}
//! - name: open-again
//!   delete-all: true
//! ```
//!
//! The actions of one step run in this order, whatever their order in the file:
//! `delete-all`, `delete`, `apply`, `set-namespace-labels`, `set-pod-labels`. `apply` adds
//! policies, replacing any already applied with the same namespace and name. Label actions
//! replace the whole label set (a namespace keeps its `kubernetes.io/metadata.name` label, as
//! the API server does). Each step starts from the state the previous one left.
//!
//! Errors name the file, the field path (`[1].delete[0]`) and the line.

use super::error::{Error, Result};
use crate::engine::{Labels, NetworkPolicy};
use crate::input::FieldError;
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The name of the fixture's first verified step: its own policies, applied after the baseline.
pub const POLICIES_STEP: &str = "policies";

/// Step names the harness uses itself.
const RESERVED_NAMES: [&str; 2] = [POLICIES_STEP, "baseline"];

/// One step of a fixture: actions, then converge and verify.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Kebab-case, unique within the fixture; the step segment of its trial names.
    pub name: String,
    pub description: Option<String>,
    /// In execution order.
    pub actions: Vec<Action>,
}

/// One change a step makes, with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    pub kind: ActionKind,
    /// Where the action is written, for errors found when it is planned.
    pub at: Location,
}

/// What a step action does.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionKind {
    /// Removes every applied policy.
    DeleteAll,
    /// Removes policies by `namespace/name`.
    Delete(Vec<String>),
    /// Adds the policies of `files` (resolved against the fixture directory), replacing any
    /// with the same namespace and name. `policies` is filled when the fixture is loaded.
    Apply {
        files: Vec<PathBuf>,
        policies: Vec<NetworkPolicy>,
    },
    /// Replaces the labels of a namespace.
    SetNamespaceLabels { namespace: String, labels: Labels },
    /// Replaces the labels of a pod (`namespace/name`).
    SetPodLabels { pod: String, labels: Labels },
}

impl ActionKind {
    /// The action's key in `steps.yaml`.
    pub fn key(&self) -> &'static str {
        match self {
            ActionKind::DeleteAll => "delete-all",
            ActionKind::Delete(_) => "delete",
            ActionKind::Apply { .. } => "apply",
            ActionKind::SetNamespaceLabels { .. } => "set-namespace-labels",
            ActionKind::SetPodLabels { .. } => "set-pod-labels",
        }
    }
}

/// A field of `steps.yaml`: its path (`[1].delete`) and line (0 when unknown).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    pub field: String,
    pub line: u64,
}

impl Location {
    fn new(field: String, line: u64) -> Self {
        Location { field, line }
    }

    /// The error "`message`" at this location of `file`.
    pub fn error(&self, file: &Path, message: impl Into<String>) -> Error {
        Error::Steps(FieldError {
            file: file.to_owned(),
            field: self.field.clone(),
            line: self.line,
            message: message.into(),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawStep {
    name: Spanned<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    delete_all: Option<Spanned<bool>>,
    #[serde(default)]
    delete: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    apply: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    set_namespace_labels: Option<Spanned<RawNamespaceLabels>>,
    #[serde(default)]
    set_pod_labels: Option<Spanned<RawPodLabels>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNamespaceLabels {
    namespace: Spanned<String>,
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPodLabels {
    pod: Spanned<String>,
    labels: BTreeMap<String, String>,
}

/// Reads `steps.yaml` at `path`; apply actions' policies are left empty (see
/// [`ActionKind::Apply`]).
///
/// # Errors
/// The file cannot be read, is not valid YAML of this format, or a step is invalid.
pub fn load_steps(path: &Path) -> Result<Vec<Step>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_steps(&text, path)
}

/// Parses the text of a `steps.yaml`; `file` is named in errors and apply paths are resolved
/// against its directory.
///
/// # Errors
/// Invalid YAML, unknown fields, wrong types, and invalid steps, each naming the field.
pub fn parse_steps(text: &str, file: &Path) -> Result<Vec<Step>> {
    // Errors are one line each, so that they fit a log line and an exit message.
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    let raw: Option<Vec<Spanned<RawStep>>> = serde_saphyr::from_str_with_options(text, options)
        .map_err(|source| Error::StepsSyntax {
            file: file.to_owned(),
            source: Box::new(source),
        })?;
    let base = file.parent().unwrap_or(Path::new("."));
    let mut steps: Vec<Step> = Vec::new();
    for (index, raw_step) in raw.unwrap_or_default().into_iter().enumerate() {
        let step = convert_step(index, raw_step, base, file)?;
        if let Some(first) = steps.iter().position(|s| s.name == step.name) {
            let at = Location::new(format!("[{index}].name"), 0);
            return Err(at.error(file, format!("step name also used by step {first}")));
        }
        steps.push(step);
    }
    Ok(steps)
}

fn convert_step(index: usize, raw: Spanned<RawStep>, base: &Path, file: &Path) -> Result<Step> {
    let step_line = raw.referenced.line();
    let raw = raw.value;
    let field = |key: &str| format!("[{index}].{key}");
    let at = |key: &str, line: u64| Location::new(field(key), line);
    let name = raw.name.value;
    check_step_name(&name).map_err(|m| at("name", raw.name.referenced.line()).error(file, m))?;

    let mut actions = Vec::new();
    if let Some(delete_all) = raw.delete_all.filter(|d| d.value) {
        let kind = ActionKind::DeleteAll;
        actions.push(Action {
            kind,
            at: at("delete-all", delete_all.referenced.line()),
        });
    }
    if let Some(delete) = raw.delete {
        let mut ids = Vec::new();
        for (i, id) in delete.value.into_iter().enumerate() {
            let here = at(&format!("delete[{i}]"), id.referenced.line());
            check_object_ref(&id.value, "policy").map_err(|m| here.error(file, m))?;
            ids.push(id.value);
        }
        let here = at("delete", delete.referenced.line());
        actions.push(Action {
            kind: ActionKind::Delete(ids),
            at: here,
        });
    }
    if let Some(apply) = raw.apply {
        let files = apply
            .value
            .into_iter()
            .map(|p| base.join(p.value))
            .collect();
        let kind = ActionKind::Apply {
            files,
            policies: Vec::new(),
        };
        actions.push(Action {
            kind,
            at: at("apply", apply.referenced.line()),
        });
    }
    if let Some(set) = raw.set_namespace_labels {
        let RawNamespaceLabels { namespace, labels } = set.value;
        let here = at(
            "set-namespace-labels.namespace",
            namespace.referenced.line(),
        );
        if namespace.value.is_empty() || namespace.value.contains('/') {
            return Err(here.error(file, "expected a namespace name"));
        }
        let kind = ActionKind::SetNamespaceLabels {
            namespace: namespace.value,
            labels,
        };
        actions.push(Action {
            kind,
            at: at("set-namespace-labels", set.referenced.line()),
        });
    }
    if let Some(set) = raw.set_pod_labels {
        let RawPodLabels { pod, labels } = set.value;
        let here = at("set-pod-labels.pod", pod.referenced.line());
        check_object_ref(&pod.value, "pod").map_err(|m| here.error(file, m))?;
        let kind = ActionKind::SetPodLabels {
            pod: pod.value,
            labels,
        };
        actions.push(Action {
            kind,
            at: at("set-pod-labels", set.referenced.line()),
        });
    }
    if actions.is_empty() {
        let message = "a step needs at least one action: apply, delete, delete-all, \
                       set-pod-labels or set-namespace-labels";
        return Err(Location::new(format!("[{index}]"), step_line).error(file, message));
    }
    Ok(Step {
        name,
        description: raw.description,
        actions,
    })
}

/// Step names become part of trial names: keep them short, stable and filterable.
fn check_step_name(name: &str) -> std::result::Result<(), String> {
    let kebab = !name.is_empty()
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !kebab {
        return Err(format!(
            "step name {name:?} must be kebab-case (lowercase letters, digits and '-')"
        ));
    }
    if RESERVED_NAMES.contains(&name) {
        return Err(format!(
            "step name {name:?} is reserved by the harness: choose another"
        ));
    }
    Ok(())
}

/// `namespace/name` with both parts non-empty.
fn check_object_ref(reference: &str, what: &str) -> std::result::Result<(), String> {
    match reference.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => Ok(()),
        _ => Err(format!(
            "expected a {what} as namespace/name, found {reference:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Step>> {
        parse_steps(text, Path::new("fixtures/app/steps.yaml"))
    }

    fn error(text: &str) -> String {
        parse(text).expect_err("should be rejected").to_string()
    }

    #[test]
    fn every_action_is_read_in_execution_order() {
        let steps = parse(
            "- name: change\n  set-pod-labels: {pod: a/b, labels: {x: y}}\n  apply: [p.yaml]\n  \
             delete: [a/p]\n  delete-all: true\n  \
             set-namespace-labels: {namespace: a, labels: {}}\n",
        )
        .unwrap();
        let keys: Vec<_> = steps[0].actions.iter().map(|a| a.kind.key()).collect();
        assert_eq!(
            keys,
            [
                "delete-all",
                "delete",
                "apply",
                "set-namespace-labels",
                "set-pod-labels"
            ]
        );
        let ActionKind::Apply { files, .. } = &steps[0].actions[2].kind else {
            panic!("not apply");
        };
        assert_eq!(files, &[PathBuf::from("fixtures/app/p.yaml")]);
        assert_eq!(steps[0].actions[4].at.field, "[0].set-pod-labels");
        assert_eq!(steps[0].actions[4].at.line, 2);
    }

    #[test]
    fn an_empty_file_has_no_steps() {
        assert_eq!(parse("").unwrap(), Vec::new());
        assert_eq!(parse("[]").unwrap(), Vec::new());
    }

    #[test]
    fn a_step_without_actions_is_rejected_with_its_index() {
        let message = error("- name: a\n  delete-all: true\n- name: nothing\n");
        assert_eq!(
            message,
            "fixtures/app/steps.yaml: [1]: a step needs at least one action: apply, delete, \
             delete-all, set-pod-labels or set-namespace-labels (line 3)"
        );
    }

    #[test]
    fn a_policy_reference_without_namespace_names_its_field() {
        let message = error("- name: a\n  delete: [ok/one, lonely]\n");
        assert_eq!(
            message,
            "fixtures/app/steps.yaml: [0].delete[1]: expected a policy as namespace/name, \
             found \"lonely\" (line 2)"
        );
    }

    #[test]
    fn step_names_must_be_kebab_case_unique_and_not_reserved() {
        assert!(error("- name: Bad Name\n  delete-all: true\n").contains("[0].name"));
        assert!(error("- name: policies\n  delete-all: true\n").contains("reserved"));
        let duplicate = error("- name: a\n  delete-all: true\n- name: a\n  delete-all: true\n");
        assert!(
            duplicate.contains("[1].name: step name also used by step 0"),
            "{duplicate}"
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let error = parse("- name: a\n  delete-al: true\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "fixtures/app/steps.yaml: invalid steps file"
        );
        let cause = std::error::Error::source(&error).unwrap().to_string();
        assert_eq!(
            cause,
            "unknown field `delete-al`, expected one of name, description, delete-all, delete, \
             apply, set-namespace-labels, set-pod-labels at line 2, column 3"
        );
    }
}
