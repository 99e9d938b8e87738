//! `report.yaml`: the certification report. What was certified (implementation, Kubernetes
//! and harness versions), how (backend, probe modes, timeouts, faults), on which inputs (a
//! digest of every fixture), and with what result: per profile and fixture the trials that
//! passed, failed and were skipped, and the convergence times of their steps.
//!
//! The per-edge results are not in this file but in the JSON report of each fixture, which
//! the report names ([`FixtureReport::json`]); `compare` reads them from there.

use super::implementation::Implementation;
use super::profile::Profile;
use crate::backend::Via;
use crate::report::RunReport;
use crate::runner::Plan;
use crate::runner::fixture::fnv1a_hex;
use serde::{Deserialize, Serialize};

/// The note of a report whose data plane had faults injected on purpose.
pub const NOT_A_CERTIFICATION: &str =
    "not a certification: data-plane faults were injected on purpose";

/// The whole certification report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificationReport {
    /// `false` when faults were injected ([`NOT_A_CERTIFICATION`]): such a report tests the
    /// harness, not an implementation.
    pub certification: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub result: Verdict,
    pub implementation: Implementation,
    /// `local` or `kube`.
    pub backend: String,
    pub harness_version: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// RFC 3339, UTC.
    pub finished_at: String,
    /// Every probe mode of the profiles, in first-use order.
    pub probe_modes: Vec<String>,
    pub probe_timeout_ms: u64,
    pub converge_timeout_ms: u64,
    /// Data-plane faults injected on purpose; empty for a certification.
    pub faults: Vec<String>,
    /// Digest of every profile's fixtures ([`ProfileReport::digest`]), in profile order.
    pub fixtures_digest: String,
    pub counts: TrialCounts,
    pub convergence: ConvergenceStats,
    /// The infrastructure error that stopped the run; the fixtures after it were not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub profiles: Vec<ProfileReport>,
}

/// The outcome of a certification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every trial that ran passed, and the run completed.
    Pass,
    /// Some trial failed.
    Fail,
    /// No trial failed, but an infrastructure error stopped the run.
    Incomplete,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Incomplete => "incomplete",
        }
    }
}

/// Trials (one edge of one verified step in one probe mode) by result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrialCounts {
    pub passed: usize,
    pub failed: usize,
    /// Planned but not run: the backend lacks what the profile requires, or the run stopped
    /// before the fixture.
    pub skipped: usize,
}

impl TrialCounts {
    pub fn total(&self) -> usize {
        self.passed + self.failed + self.skipped
    }

    fn add(&mut self, other: TrialCounts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }
}

/// Convergence times of verified steps: from a change to the first of the matching rounds
/// that ended its convergence, in milliseconds (each with a resolution of about one round,
/// see [`Convergence`](crate::report::Convergence)).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConvergenceStats {
    /// Steps verified.
    pub steps: usize,
    /// Steps that converged within the convergence timeout; the figures are over these.
    pub converged: usize,
    pub median_ms: Option<f64>,
    /// Nearest-rank 90th percentile.
    pub p90_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

impl ConvergenceStats {
    /// The statistics of the steps of `reports`.
    pub fn of<'a>(reports: impl IntoIterator<Item = &'a RunReport>) -> Self {
        let mut steps = 0;
        let mut times = Vec::new();
        for step in reports.into_iter().flat_map(|r| &r.steps) {
            steps += 1;
            if let (true, Some(ms)) = (step.convergence.converged, step.convergence.time_ms) {
                // A tenth of a millisecond: the figures' resolution is a round, far coarser.
                times.push((ms * 10.0).round() / 10.0);
            }
        }
        times.sort_by(f64::total_cmp);
        ConvergenceStats {
            steps,
            converged: times.len(),
            median_ms: median(&times),
            p90_ms: percentile(&times, 90),
            max_ms: times.last().copied(),
        }
    }
}

/// The median of sorted `values` (the mean of the middle two for an even count).
fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// The nearest-rank `p`th percentile of sorted `values`: the smallest value with at least
/// `p` percent of the values at or below it.
fn percentile(sorted: &[f64], p: usize) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    Some(sorted[rank - 1])
}

/// One profile's part of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileReport {
    pub name: String,
    pub description: String,
    pub modes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// FNV-1a 64 over the profile's fixtures, each as its name and
    /// [`source_hash`](crate::runner::Fixture::source_hash), in order.
    pub digest: String,
    pub counts: TrialCounts,
    pub convergence: ConvergenceStats,
    pub fixtures: Vec<FixtureReport>,
}

/// One fixture of a profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FixtureReport {
    pub name: String,
    /// As the profile names it.
    pub path: String,
    /// The fixture's [`source_hash`](crate::runner::Fixture::source_hash).
    pub digest: String,
    pub counts: TrialCounts,
    /// Why the fixture's trials were skipped; `None` when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// The JUnit report, relative to the report directory; `None` when skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub junit: Option<String>,
    /// The JSON report (every edge), relative to the report directory; `None` when skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<String>,
    /// The trial names of the failing edges, in run order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failing: Vec<String>,
    /// The `ipBlock`s rewritten for the addresses the cluster gave the pods (see
    /// [`Metadata::readdressed`](crate::report::Metadata::readdressed)).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readdressed: Vec<String>,
}

/// What happened to one planned fixture.
#[derive(Debug, Clone)]
pub enum FixtureOutcome {
    /// The fixture ran (whether or not its edges passed). Boxed: a report is much larger
    /// than a reason.
    Ran(Box<RunReport>),
    /// The fixture did not run, for this reason.
    Skipped(String),
}

/// One fixture of a profile as certified: its plan and what happened.
#[derive(Debug, Clone)]
pub struct FixtureRun {
    /// As the profile names it.
    pub path: String,
    pub name: String,
    pub source_hash: String,
    pub plan: Plan,
    pub outcome: FixtureOutcome,
}

/// One profile as certified.
#[derive(Debug, Clone)]
pub struct ProfileRun<'a> {
    pub profile: &'a Profile,
    pub fixtures: Vec<FixtureRun>,
}

impl ProfileRun<'_> {
    /// The reports of the fixtures that ran.
    pub fn reports(&self) -> impl Iterator<Item = &RunReport> {
        self.fixtures.iter().filter_map(|f| match &f.outcome {
            FixtureOutcome::Ran(report) => Some(report.as_ref()),
            FixtureOutcome::Skipped(_) => None,
        })
    }

    /// The profile's digest (see [`ProfileReport::digest`]).
    pub fn digest(&self) -> String {
        fnv1a_hex(
            self.fixtures
                .iter()
                .flat_map(|f| [f.name.as_bytes(), f.source_hash.as_bytes()]),
        )
    }
}

/// What the whole run was: the facts `report.yaml` records beside the profiles.
#[derive(Debug, Clone)]
pub struct RunFacts {
    pub implementation: Implementation,
    pub backend: String,
    pub started_at: String,
    pub finished_at: String,
    pub probe_timeout_ms: u64,
    pub converge_timeout_ms: u64,
    pub faults: Vec<String>,
    pub error: Option<String>,
}

/// Where a fixture's JUnit and JSON reports go in the report directory:
/// `<profile>/<fixture>.junit.xml` and `<profile>/<fixture>.json`.
pub fn fixture_files(profile: &str, fixture: &str) -> (String, String) {
    (
        format!("{profile}/{fixture}.junit.xml"),
        format!("{profile}/{fixture}.json"),
    )
}

impl CertificationReport {
    /// The report of `runs`.
    pub fn new(facts: RunFacts, runs: &[ProfileRun<'_>]) -> Self {
        let profiles: Vec<ProfileReport> = runs.iter().map(profile_report).collect();
        let mut counts = TrialCounts::default();
        profiles.iter().for_each(|p| counts.add(p.counts));
        let mut probe_modes: Vec<String> = Vec::new();
        for mode in runs.iter().flat_map(|r| &r.profile.modes) {
            if !probe_modes.iter().any(|m| m == mode.as_str()) {
                probe_modes.push(mode.to_string());
            }
        }
        let certification = facts.faults.is_empty();
        let result = if counts.failed > 0 {
            Verdict::Fail
        } else if facts.error.is_some() {
            Verdict::Incomplete
        } else {
            Verdict::Pass
        };
        CertificationReport {
            certification,
            note: (!certification).then(|| NOT_A_CERTIFICATION.to_owned()),
            result,
            implementation: facts.implementation,
            backend: facts.backend,
            harness_version: crate::runner::HARNESS_VERSION.to_owned(),
            started_at: facts.started_at,
            finished_at: facts.finished_at,
            probe_modes,
            probe_timeout_ms: facts.probe_timeout_ms,
            converge_timeout_ms: facts.converge_timeout_ms,
            faults: facts.faults,
            fixtures_digest: fnv1a_hex(
                profiles
                    .iter()
                    .flat_map(|p| [p.name.as_bytes(), p.digest.as_bytes()]),
            ),
            counts,
            convergence: ConvergenceStats::of(runs.iter().flat_map(ProfileRun::reports)),
            error: facts.error,
            profiles,
        }
    }

    /// The YAML text of the report.
    ///
    /// # Errors
    /// Serialization failed (not expected for these types).
    pub fn to_yaml(&self) -> Result<String, serde_saphyr::SerializeError> {
        serde_saphyr::to_string(self)
    }
}

fn profile_report(run: &ProfileRun<'_>) -> ProfileReport {
    let profile = run.profile;
    let fixtures: Vec<FixtureReport> = run
        .fixtures
        .iter()
        .map(|fixture| fixture_report(&profile.name, fixture))
        .collect();
    let mut counts = TrialCounts::default();
    fixtures.iter().for_each(|f| counts.add(f.counts));
    ProfileReport {
        name: profile.name.clone(),
        description: profile.description.clone(),
        modes: profile.modes.iter().map(Via::to_string).collect(),
        requires: profile.requires.iter().map(ToString::to_string).collect(),
        digest: run.digest(),
        counts,
        convergence: ConvergenceStats::of(run.reports()),
        fixtures,
    }
}

fn fixture_report(profile: &str, fixture: &FixtureRun) -> FixtureReport {
    let mut report = FixtureReport {
        name: fixture.name.clone(),
        path: fixture.path.clone(),
        digest: fixture.source_hash.clone(),
        counts: TrialCounts::default(),
        skipped: None,
        junit: None,
        json: None,
        failing: Vec::new(),
        readdressed: Vec::new(),
    };
    match &fixture.outcome {
        FixtureOutcome::Ran(run) => {
            let counts = run.counts();
            report.counts.passed = counts.passed;
            report.counts.failed = counts.failed;
            // Trials planned but without a result (none, unless the runner changes) are
            // skipped, so that the counts always add up to the plan.
            let planned = fixture.plan.edges().count();
            report.counts.skipped = planned.saturating_sub(counts.total());
            report.failing = run
                .edges()
                .filter(|e| !e.passed)
                .map(|e| e.name.clone())
                .collect();
            report.readdressed.clone_from(&run.metadata.readdressed);
            let (junit, json) = fixture_files(profile, &fixture.name);
            report.junit = Some(junit);
            report.json = Some(json);
        }
        FixtureOutcome::Skipped(reason) => {
            report.counts.skipped = fixture.plan.edges().count();
            report.skipped = Some(reason.clone());
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certify::profile;
    use std::path::PathBuf;

    fn profiles_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../profiles")
    }

    /// The shipped `name` profile with every fixture skipped for `reason`.
    fn skipped_run(profile: &Profile, reason: &str) -> Vec<FixtureRun> {
        let fixture_dirs = profile.fixture_dirs.iter().zip(&profile.fixtures);
        fixture_dirs
            .map(|(dir, path)| {
                let fixture = crate::runner::Fixture::load(dir).unwrap();
                FixtureRun {
                    path: path.clone(),
                    name: fixture.name.clone(),
                    source_hash: fixture.source_hash.clone(),
                    plan: Plan::with_modes(&fixture, &profile.modes).unwrap(),
                    outcome: FixtureOutcome::Skipped(reason.to_owned()),
                }
            })
            .collect()
    }

    fn facts(error: Option<&str>, faults: &[&str]) -> RunFacts {
        RunFacts {
            implementation: Implementation {
                cni: "calico".into(),
                cni_version: "v3.32.1".into(),
                source: "detected".into(),
                kubernetes_version: Some("v1.33.1".into()),
            },
            backend: "kube".into(),
            started_at: "2026-12-03T15:23:13.000Z".into(),
            finished_at: "2026-12-03T15:24:13.000Z".into(),
            probe_timeout_ms: 2000,
            converge_timeout_ms: 30_000,
            faults: faults.iter().map(|f| (*f).to_owned()).collect(),
            error: error.map(str::to_owned),
        }
    }

    #[test]
    fn skipped_fixtures_count_every_planned_trial_as_skipped_and_an_error_makes_it_incomplete() {
        let semantics = profile::load(&profiles_dir(), "semantics").unwrap();
        let fixtures = skipped_run(&semantics, "requires pinned-pod-ips");
        let planned: usize = fixtures.iter().map(|f| f.plan.edges().count()).sum();
        let runs = [ProfileRun {
            profile: &semantics,
            fixtures,
        }];
        let report =
            CertificationReport::new(facts(Some("pod x did not become ready"), &[]), &runs);
        assert_eq!(
            report.counts,
            TrialCounts {
                passed: 0,
                failed: 0,
                skipped: planned
            }
        );
        assert_eq!(report.result, Verdict::Incomplete);
        assert_eq!(report.profiles[0].fixtures[0].json, None);
        assert_eq!(report.convergence.steps, 0);
        let markdown = crate::certify::markdown::render(&report, &runs);
        assert!(
            markdown.contains("skipped: requires pinned-pod-ips"),
            "{markdown}"
        );
        assert!(
            markdown.contains("pod x did not become ready"),
            "{markdown}"
        );
        assert!(markdown.contains("| `semantics` | skipped |"), "{markdown}");
    }

    #[test]
    fn a_report_with_faults_is_not_a_certification_and_survives_a_yaml_round_trip() {
        let seed = profile::load(&profiles_dir(), "meeting-app").unwrap();
        let runs = [ProfileRun {
            fixtures: skipped_run(&seed, "not run"),
            profile: &seed,
        }];
        let report = CertificationReport::new(facts(None, &["no-egress"]), &runs);
        assert!(!report.certification);
        assert_eq!(report.note.as_deref(), Some(NOT_A_CERTIFICATION));
        assert_eq!(report.probe_modes, ["pod", "service", "dns"]);
        let yaml = report.to_yaml().unwrap();
        let back: CertificationReport = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(back, report);
        let markdown = crate::certify::markdown::render(&report, &runs);
        assert!(markdown.contains("NOT A CERTIFICATION"), "{markdown}");
    }

    #[test]
    fn rewritten_ip_blocks_are_recorded_in_the_yaml_and_listed_in_the_markdown() {
        let semantics = profile::load(&profiles_dir(), "semantics").unwrap();
        let mut fixtures = skipped_run(&semantics, "unused");
        let rewrite = "beta/server-ingress ingress[2] peer 0: ipBlock 10.244.20.0/24 except \
                       10.244.20.3/32 -> ipBlock 192.168.5.0/26 except 192.168.5.20/32";
        let metadata = crate::report::Metadata {
            backend: "kube".into(),
            topology_hash: fixtures[0].source_hash.clone(),
            readdressed: vec![rewrite.to_owned()],
            ..crate::report::Metadata::sample(&fixtures[0].name)
        };
        fixtures[0].outcome = FixtureOutcome::Ran(Box::new(RunReport {
            metadata,
            steps: Vec::new(),
        }));
        let runs = [ProfileRun {
            profile: &semantics,
            fixtures,
        }];
        let report = CertificationReport::new(facts(None, &[]), &runs);
        assert_eq!(report.profiles[0].fixtures[0].readdressed, [rewrite]);
        let yaml = report.to_yaml().unwrap();
        assert!(yaml.contains("readdressed:"), "{yaml}");
        let back: CertificationReport = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(back, report);
        let markdown = crate::certify::markdown::render(&report, &runs);
        assert!(markdown.contains(&format!("- `{rewrite}`")), "{markdown}");
    }

    #[test]
    fn digests_depend_on_the_fixtures_and_their_order_only() {
        let seed = profile::load(&profiles_dir(), "meeting-app").unwrap();
        let semantics = profile::load(&profiles_dir(), "semantics").unwrap();
        let digest = |profile: &Profile, reason: &str| {
            ProfileRun {
                profile,
                fixtures: skipped_run(profile, reason),
            }
            .digest()
        };
        assert_eq!(digest(&seed, "a"), digest(&seed, "b"));
        assert_ne!(digest(&seed, "a"), digest(&semantics, "a"));
    }

    #[test]
    fn median_p90_and_max_follow_their_definitions() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[1.0, 2.0, 10.0, 11.0]), Some(6.0));
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&ten, 90), Some(9.0));
        let eleven: Vec<f64> = (1..=11).map(f64::from).collect();
        assert_eq!(percentile(&eleven, 90), Some(10.0));
        assert_eq!(percentile(&[5.0], 90), Some(5.0));
    }
}
