//! `compare`: which edges changed verdict between two reports, e.g. the certifications of two
//! versions of a CNI.
//!
//! A report is a certification report directory (or its `report.yaml`), whose fixtures' JSON
//! reports hold every edge, or a JSON report of `run --json`. An edge is identified by its
//! profile (when both reports have profiles), fixture, step, probe mode, source, destination,
//! port and protocol, not by its expected verdict: an edge whose fixture changed its
//! expectation is the same edge. Each edge that differs is one of:
//!
//! - *regressed*: passed in OLD, fails in NEW;
//! - *fixed*: failed in OLD, passes in NEW;
//! - *added* / *removed*: in NEW only / in OLD only (a fixture, step or mode that one report
//!   lacks, e.g. a skipped profile).

use super::error::{Error, Result};
use super::output::REPORT_YAML;
use super::report::CertificationReport;
use crate::report::{EdgeReport, RunReport};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Every edge result of one report, by run.
#[derive(Debug, Clone)]
pub struct LoadedReport {
    pub path: PathBuf,
    /// What was tested: the implementation's title for a certification report, the backend
    /// for a JSON report.
    pub title: String,
    /// The runs, each with its profile (`None` for a JSON report).
    pub runs: Vec<(Option<String>, RunReport)>,
}

/// Reads the report at `path`: a report directory, a `report.yaml`, or a JSON run report.
///
/// # Errors
/// A file cannot be read or is not a report ([`Error::Read`], [`Error::NotAReport`]).
pub fn load(path: &Path) -> Result<LoadedReport> {
    let yaml = if path.is_dir() {
        Some(path.join(REPORT_YAML))
    } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
        Some(path.to_owned())
    } else {
        None
    };
    match yaml {
        Some(file) => load_certification(path, &file),
        None => {
            let runs = read_runs(path)?;
            let title = runs
                .first()
                .map(|r| format!("the {} backend", r.metadata.backend))
                .unwrap_or_else(|| "an empty run".to_owned());
            Ok(LoadedReport {
                path: path.to_owned(),
                title,
                runs: runs.into_iter().map(|r| (None, r)).collect(),
            })
        }
    }
}

fn load_certification(path: &Path, file: &Path) -> Result<LoadedReport> {
    let text = read(file)?;
    let report: CertificationReport =
        serde_saphyr::from_str(&text).map_err(|source| Error::NotAReport {
            path: file.to_owned(),
            what: "certification report (report.yaml)",
            source: Box::new(source),
        })?;
    let base = file.parent().unwrap_or(Path::new("."));
    let mut runs = Vec::new();
    for profile in &report.profiles {
        for fixture in &profile.fixtures {
            if let Some(json) = &fixture.json {
                for run in read_runs(&base.join(json))? {
                    runs.push((Some(profile.name.clone()), run));
                }
            }
        }
    }
    let mut title = report.implementation.title();
    if !report.certification {
        title.push_str(&format!(" (faults injected: {})", report.faults.join(", ")));
    }
    Ok(LoadedReport {
        path: path.to_owned(),
        title,
        runs,
    })
}

/// The runs of a JSON report: an array of run reports, or one.
fn read_runs(path: &Path) -> Result<Vec<RunReport>> {
    let text = read(path)?;
    let not_a_report = |source: serde_json::Error| Error::NotAReport {
        path: path.to_owned(),
        what: "JSON run report",
        source: Box::new(source),
    };
    match serde_json::from_str::<Vec<RunReport>>(&text) {
        Ok(runs) => Ok(runs),
        Err(error) => serde_json::from_str::<RunReport>(&text)
            .map(|run| vec![run])
            .map_err(|_| not_a_report(error)),
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })
}

/// How an edge changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    Regressed,
    Fixed,
    Added,
    Removed,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Regressed => "pass → fail",
            Change::Fixed => "fail → pass",
            Change::Added => "added",
            Change::Removed => "removed",
        }
    }
}

/// Where an edge was verified: profile, fixture, and step (`step@mode` for modes other than
/// `pod`, as in trial names).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Group {
    pub profile: Option<String>,
    pub fixture: String,
    pub step: String,
}

impl std::fmt::Display for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(profile) = &self.profile {
            write!(f, "profile {profile}, ")?;
        }
        write!(f, "fixture {}, step {}", self.fixture, self.step)
    }
}

/// One edge that differs between the reports.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeChange {
    pub change: Change,
    /// `src->dst:port/PROTOCOL`.
    pub edge: String,
    pub old: Option<EdgeReport>,
    pub new: Option<EdgeReport>,
}

/// The differences between two reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Comparison {
    /// Groups in NEW's order, then those only OLD has; changes within a group in run order.
    pub groups: Vec<(Group, Vec<EdgeChange>)>,
    pub unchanged_passing: usize,
    pub unchanged_failing: usize,
    /// Fixtures whose inputs differ between the reports (`fixture: old → new` digests).
    pub inputs_differ: Vec<String>,
}

impl Comparison {
    /// How many edges changed this way.
    pub fn count(&self, change: Change) -> usize {
        self.groups
            .iter()
            .flat_map(|(_, changes)| changes)
            .filter(|c| c.change == change)
            .count()
    }

    /// Whether NEW fails an edge OLD passed.
    pub fn has_regressions(&self) -> bool {
        self.count(Change::Regressed) > 0
    }
}

type Key = (Group, String);

/// Every edge of `report` by key, in run order; profiles are part of the key only when
/// `with_profiles`.
fn edges(report: &LoadedReport, with_profiles: bool) -> Vec<(Key, &EdgeReport)> {
    let mut edges = Vec::new();
    for (profile, run) in &report.runs {
        for step in &run.steps {
            for edge in &step.edges {
                let step = if edge.via == "pod" {
                    step.name.clone()
                } else {
                    format!("{}@{}", step.name, edge.via)
                };
                let group = Group {
                    profile: profile.clone().filter(|_| with_profiles),
                    fixture: run.metadata.fixture.clone(),
                    step,
                };
                let id = format!("{}->{}:{}/{}", edge.src, edge.dst, edge.port, edge.protocol);
                edges.push(((group, id), edge));
            }
        }
    }
    edges
}

/// Compares OLD with NEW.
pub fn compare(old: &LoadedReport, new: &LoadedReport) -> Comparison {
    let with_profiles = [old, new]
        .iter()
        .all(|r| r.runs.iter().all(|(profile, _)| profile.is_some()));
    let old_edges = edges(old, with_profiles);
    let new_edges = edges(new, with_profiles);
    let old_by_key: BTreeMap<&Key, &EdgeReport> = old_edges.iter().map(|(k, e)| (k, *e)).collect();
    let new_by_key: BTreeMap<&Key, &EdgeReport> = new_edges.iter().map(|(k, e)| (k, *e)).collect();
    let mut comparison = Comparison::default();
    let mut push = |group: &Group, change: EdgeChange| match comparison
        .groups
        .iter_mut()
        .find(|(g, _)| g == group)
    {
        Some((_, changes)) => changes.push(change),
        None => comparison.groups.push((group.clone(), vec![change])),
    };
    let (mut passing, mut failing) = (0, 0);
    for (key, new_edge) in &new_edges {
        let change = match old_by_key.get(key) {
            None => Some(Change::Added),
            Some(old_edge) => match (old_edge.passed, new_edge.passed) {
                (true, false) => Some(Change::Regressed),
                (false, true) => Some(Change::Fixed),
                (true, true) => {
                    passing += 1;
                    None
                }
                (false, false) => {
                    failing += 1;
                    None
                }
            },
        };
        if let Some(change) = change {
            let old = old_by_key.get(key).map(|e| (*e).clone());
            let edge = key.1.clone();
            let new = Some((*new_edge).clone());
            push(
                &key.0,
                EdgeChange {
                    change,
                    edge,
                    old,
                    new,
                },
            );
        }
    }
    for (key, old_edge) in &old_edges {
        if !new_by_key.contains_key(key) {
            let change = EdgeChange {
                change: Change::Removed,
                edge: key.1.clone(),
                old: Some((*old_edge).clone()),
                new: None,
            };
            push(&key.0, change);
        }
    }
    comparison.unchanged_passing = passing;
    comparison.unchanged_failing = failing;
    comparison.inputs_differ = inputs_differ(old, new);
    comparison
}

fn inputs_differ(old: &LoadedReport, new: &LoadedReport) -> Vec<String> {
    let hashes = |report: &LoadedReport| -> BTreeMap<String, String> {
        report
            .runs
            .iter()
            .map(|(_, r)| (r.metadata.fixture.clone(), r.metadata.topology_hash.clone()))
            .collect()
    };
    let (old, new) = (hashes(old), hashes(new));
    old.iter()
        .filter_map(|(fixture, old_hash)| {
            let new_hash = new.get(fixture)?;
            (new_hash != old_hash).then(|| format!("{fixture}: {old_hash} → {new_hash}"))
        })
        .collect()
}

/// Edges listed by name per group and kind of change before the rest is only counted.
const LISTED: usize = 5;

/// The comparison as text: the changed edges per group, then a summary line.
pub fn render(old: &LoadedReport, new: &LoadedReport, comparison: &Comparison) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "OLD {} ({})\nNEW {} ({})",
        old.path.display(),
        old.title,
        new.path.display(),
        new.title
    );
    for differ in &comparison.inputs_differ {
        let _ = writeln!(
            text,
            "note: the fixture's inputs differ between the reports ({differ}): changes may come \
             from the fixture rather than the implementation"
        );
    }
    for (group, changes) in &comparison.groups {
        let _ = writeln!(text, "\n{group}:");
        for kind in [
            Change::Regressed,
            Change::Fixed,
            Change::Added,
            Change::Removed,
        ] {
            let of_kind: Vec<&EdgeChange> = changes.iter().filter(|c| c.change == kind).collect();
            for change in of_kind.iter().take(LISTED) {
                let _ = writeln!(
                    text,
                    "  {:<11}  {}{}",
                    kind.as_str(),
                    change.edge,
                    detail(change)
                );
            }
            if of_kind.len() > LISTED {
                let _ = writeln!(
                    text,
                    "  {:<11}  and {} more edges",
                    kind.as_str(),
                    of_kind.len() - LISTED
                );
            }
        }
    }
    let _ = writeln!(
        text,
        "\n{}: {} regressed (pass → fail), {} fixed (fail → pass), {} added, {} removed, \
         {} unchanged ({} passing, {} failing)",
        if comparison.has_regressions() {
            "REGRESSIONS"
        } else {
            "no regression"
        },
        comparison.count(Change::Regressed),
        comparison.count(Change::Fixed),
        comparison.count(Change::Added),
        comparison.count(Change::Removed),
        comparison.unchanged_passing + comparison.unchanged_failing,
        comparison.unchanged_passing,
        comparison.unchanged_failing
    );
    text
}

/// `  (expected deny: OLD timeout, NEW connected)` for a changed verdict.
fn detail(change: &EdgeChange) -> String {
    match (&change.old, &change.new) {
        (Some(old), Some(new)) => {
            let expected = if old.expected == new.expected {
                format!("expected {}", new.expected)
            } else {
                format!("expected {} → {}", old.expected, new.expected)
            };
            format!("  ({expected}: OLD {}, NEW {})", old.observed, new.observed)
        }
        (None, Some(edge)) | (Some(edge), None) => {
            let result = if edge.passed { "passes" } else { "fails" };
            format!(
                "  ({result}: expected {}, observed {})",
                edge.expected, edge.observed
            )
        }
        (None, None) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Convergence, Expected, Metadata, StepReport};
    use netpol_probes::spec::Protocol;
    use netpol_probes::wire::Outcome;

    /// An edge `a/x -> b/<dst>:80/TCP` expected `expected`, seen `observed`, in mode `via`.
    fn edge(dst: &str, via: &str, expected: Expected, observed: Outcome) -> EdgeReport {
        EdgeReport {
            name: format!("f::policies::a/x->b/{dst}:80/TCP::{expected}"),
            src: "a/x".into(),
            dst: format!("b/{dst}"),
            port: 80,
            protocol: Protocol::Tcp,
            expected,
            via: via.into(),
            dialled: String::new(),
            observed,
            latency_ms: 1.0,
            detail: String::new(),
            explanation: "because".into(),
            passed: crate::report::passes(expected, observed),
        }
    }

    fn run(hash: &str, edges: Vec<EdgeReport>) -> RunReport {
        RunReport {
            metadata: Metadata {
                topology_hash: hash.into(),
                ..Metadata::sample("f")
            },
            steps: vec![StepReport {
                name: "policies".into(),
                description: None,
                convergence: Convergence {
                    converged: true,
                    time_ms: Some(1.0),
                    resolution_ms: Some(1.0),
                    rounds: 2,
                    elapsed_ms: 2.0,
                },
                edges,
            }],
        }
    }

    fn loaded(profile: Option<&str>, run: RunReport) -> LoadedReport {
        LoadedReport {
            path: PathBuf::from("r"),
            title: "t".into(),
            runs: vec![(profile.map(str::to_owned), run)],
        }
    }

    use Expected::{Allow, Deny};
    use Outcome::{Connected, Timeout};

    #[test]
    fn each_kind_of_change_is_found_and_unchanged_edges_are_counted() {
        let old = loaded(
            Some("p"),
            run(
                "h",
                vec![
                    edge("regressed", "pod", Deny, Timeout),
                    edge("fixed", "pod", Allow, Timeout),
                    edge("still-failing", "pod", Allow, Timeout),
                    edge("still-passing", "pod", Allow, Connected),
                    edge("removed", "pod", Allow, Connected),
                ],
            ),
        );
        let new = loaded(
            Some("p"),
            run(
                "h",
                vec![
                    edge("regressed", "pod", Deny, Connected),
                    edge("fixed", "pod", Allow, Connected),
                    edge("still-failing", "pod", Allow, Timeout),
                    edge("still-passing", "pod", Allow, Connected),
                    edge("added", "service", Allow, Connected),
                ],
            ),
        );
        let comparison = compare(&old, &new);
        let found: Vec<(Change, &str)> = comparison
            .groups
            .iter()
            .flat_map(|(_, changes)| changes)
            .map(|c| (c.change, c.edge.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (Change::Regressed, "a/x->b/regressed:80/TCP"),
                (Change::Fixed, "a/x->b/fixed:80/TCP"),
                (Change::Removed, "a/x->b/removed:80/TCP"),
                (Change::Added, "a/x->b/added:80/TCP"),
            ]
        );
        let steps: Vec<String> = comparison
            .groups
            .iter()
            .map(|(g, _)| g.to_string())
            .collect();
        assert_eq!(
            steps,
            [
                "profile p, fixture f, step policies",
                "profile p, fixture f, step policies@service"
            ]
        );
        assert_eq!(
            (comparison.unchanged_passing, comparison.unchanged_failing),
            (1, 1)
        );
        assert!(comparison.has_regressions());
        let text = render(&old, &new, &comparison);
        assert!(
            text.contains(
                "pass → fail  a/x->b/regressed:80/TCP  (expected deny: OLD timeout, NEW connected)"
            ),
            "{text}"
        );
        assert!(
            text.contains("REGRESSIONS: 1 regressed (pass → fail), 1 fixed"),
            "{text}"
        );
        assert!(
            text.contains("2 unchanged (1 passing, 1 failing)"),
            "{text}"
        );
        assert!(comparison.inputs_differ.is_empty());
    }

    #[test]
    fn an_edge_whose_expectation_changed_is_the_same_edge_and_the_changed_inputs_are_noted() {
        let old = loaded(None, run("h1", vec![edge("d", "pod", Allow, Connected)]));
        let new = loaded(None, run("h2", vec![edge("d", "pod", Deny, Connected)]));
        let comparison = compare(&old, &new);
        assert_eq!(comparison.count(Change::Regressed), 1);
        assert_eq!(comparison.count(Change::Added), 0);
        assert_eq!(comparison.inputs_differ, ["f: h1 → h2"]);
        let text = render(&old, &new, &comparison);
        assert!(text.contains("expected allow → deny"), "{text}");
        assert!(text.contains("note: the fixture's inputs differ"), "{text}");
    }

    #[test]
    fn profiles_are_ignored_when_one_report_has_none() {
        let old = loaded(None, run("h", vec![edge("d", "pod", Allow, Connected)]));
        let new = loaded(Some("p"), run("h", vec![edge("d", "pod", Allow, Timeout)]));
        let comparison = compare(&old, &new);
        assert_eq!(comparison.count(Change::Regressed), 1);
        assert_eq!(comparison.groups[0].0.profile, None);
    }

    #[test]
    fn a_file_that_is_not_a_report_is_bad_input_naming_it() {
        let dir = std::env::temp_dir().join(format!("nph-compare-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let json = dir.join("run.json");
        std::fs::write(&json, "{\"not\": \"a report\"}").unwrap();
        let error = load(&json).unwrap_err();
        assert!(error.is_bad_input());
        assert!(
            error
                .to_string()
                .contains("run.json: not a JSON run report"),
            "{error}"
        );
        let missing = load(&dir).unwrap_err();
        assert!(missing.to_string().contains("report.yaml"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
