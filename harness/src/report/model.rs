//! The results of a run: what every edge was expected to do, what its probe saw, and whether
//! they agree. Serialized as the JSON report.

use netpol_probes::spec::Protocol;
use netpol_probes::wire::Outcome;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// What the engine says about an edge, without the rules behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expected {
    Allow,
    Deny,
}

impl Expected {
    pub fn from_allowed(allowed: bool) -> Self {
        if allowed {
            Expected::Allow
        } else {
            Expected::Deny
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Expected::Allow => "allow",
            Expected::Deny => "deny",
        }
    }
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a probe's outcome says about the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The right server answered: the edge is open.
    Open,
    /// Nothing answered (timeout), or the network refused, reset or reported it unreachable.
    /// Once the positive control has shown the server answers, these mean a denial.
    Closed,
    /// Something answered, but not the right pod or protocol, or the check could not run, or
    /// (`dns_failure`) the destination's name did not resolve, so the destination was never
    /// dialled. Never a pass: the harness cannot tell what the policy did, even for an
    /// expected deny (a source whose egress denies DNS cannot verify its denies by name).
    Broken,
}

impl Seen {
    pub fn of(outcome: Outcome) -> Seen {
        match outcome {
            Outcome::Connected => Seen::Open,
            Outcome::Timeout | Outcome::Refused | Outcome::Reset | Outcome::Unreachable => {
                Seen::Closed
            }
            Outcome::WrongIdentity
            | Outcome::ProtocolError
            | Outcome::Unsupported
            | Outcome::DnsFailure => Seen::Broken,
        }
    }
}

/// Whether `outcome` agrees with `expected`: an allowed edge must connect to the right pod, a
/// denied one must be closed.
pub fn passes(expected: Expected, outcome: Outcome) -> bool {
    matches!(
        (expected, Seen::of(outcome)),
        (Expected::Allow, Seen::Open) | (Expected::Deny, Seen::Closed)
    )
}

/// The report of one fixture's run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub metadata: Metadata,
    /// The verified steps in run order; the first is the fixture's own policies.
    pub steps: Vec<StepReport>,
}

/// Facts about a run that make its result reproducible and comparable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub fixture: String,
    /// The backend's name, e.g. `local`.
    pub backend: String,
    pub harness_version: String,
    /// FNV-1a 64 of the fixture's files (hex).
    pub topology_hash: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// RFC 3339, UTC.
    pub finished_at: String,
    pub probe_timeout_ms: u64,
    pub converge_timeout_ms: u64,
    /// Data-plane faults injected on purpose; empty for a clean run.
    #[serde(default)]
    pub faults: Vec<String>,
    /// Pods deployed (fewer than the fixture's when a subset of trials was selected).
    pub pods: usize,
    /// The `ipBlock`s rewritten because the backend gave pods other addresses than the
    /// fixture's (a cluster's IPAM), each as `policy direction rule peer: old -> new`; empty
    /// when the pods got the fixture's addresses or no block depended on them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readdressed: Vec<String>,
    pub phases: PhaseTimes,
}

#[cfg(test)]
impl Metadata {
    /// Metadata for tests that build reports by hand: a clean run of `fixture` on the local
    /// backend with the default timeouts, no times, no faults; change what a test is about.
    pub(crate) fn sample(fixture: &str) -> Metadata {
        Metadata {
            fixture: fixture.to_owned(),
            backend: "local".to_owned(),
            harness_version: "0.1.0".to_owned(),
            topology_hash: "0123456789abcdef".to_owned(),
            started_at: String::new(),
            finished_at: String::new(),
            probe_timeout_ms: 2000,
            converge_timeout_ms: 30_000,
            faults: Vec::new(),
            pods: 2,
            readdressed: Vec::new(),
            phases: PhaseTimes::default(),
        }
    }
}

/// Wall time of the phases that are not steps, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseTimes {
    pub deploy_ms: f64,
    pub baseline_ms: f64,
    pub teardown_ms: f64,
}

/// One verified step: its convergence and every edge's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub convergence: Convergence,
    pub edges: Vec<EdgeReport>,
}

/// How long the data plane took to match the policies after a change.
///
/// Timed by when probes left (agents report it), not by when rounds began: when round *k* is
/// the first of the final run of matching rounds, the data plane was still wrong when the
/// last mismatching probe of round *k − 1* left (or at the change, if round 1 matched) and
/// right when those edges' probes of round *k* left. `time_ms` is that upper bound and
/// `resolution_ms` the width of the interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Convergence {
    pub converged: bool,
    /// From the change to the moment the data plane was seen right (see above); `None` if
    /// never converged.
    pub time_ms: Option<f64>,
    /// The uncertainty of `time_ms`; `None` if never converged.
    pub resolution_ms: Option<f64>,
    /// Probing rounds made.
    pub rounds: usize,
    /// From the change to the end of the last round.
    pub elapsed_ms: f64,
}

/// One edge of one verified step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeReport {
    /// The trial name, e.g. `meeting-app::policies::a/b->c/d:80/TCP::allow`.
    pub name: String,
    /// `namespace/name`.
    pub src: String,
    /// `namespace/name`.
    pub dst: String,
    pub port: u16,
    pub protocol: Protocol,
    pub expected: Expected,
    /// How the probe addressed the destination: `pod`, `service` or `dns`.
    #[serde(default = "pod_mode")]
    pub via: String,
    /// What the probe dialled: an address, or a name with its resolver and expected address.
    #[serde(default)]
    pub dialled: String,
    /// The outcome of the final round's probe.
    pub observed: Outcome,
    pub latency_ms: f64,
    #[serde(default)]
    pub detail: String,
    /// The engine's explanation of the verdict.
    pub explanation: String,
    pub passed: bool,
}

fn pod_mode() -> String {
    "pod".to_owned()
}

/// How many edges passed and failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    /// Expected allow, seen closed.
    pub blocked_allows: usize,
    /// Expected deny, seen open.
    pub leaked_denies: usize,
    /// A wrong pod or protocol answered, or the check could not run.
    pub broken: usize,
}

impl Counts {
    pub fn total(&self) -> usize {
        self.passed + self.failed
    }

    fn add(&mut self, edge: &EdgeReport) {
        if edge.passed {
            self.passed += 1;
            return;
        }
        self.failed += 1;
        match (edge.expected, Seen::of(edge.observed)) {
            (_, Seen::Broken) => self.broken += 1,
            (Expected::Allow, _) => self.blocked_allows += 1,
            (Expected::Deny, _) => self.leaked_denies += 1,
        }
    }
}

impl StepReport {
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        self.edges.iter().for_each(|edge| counts.add(edge));
        counts
    }
}

impl RunReport {
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        self.edges().for_each(|edge| counts.add(edge));
        counts
    }

    /// Every edge of every step, in run order.
    pub fn edges(&self) -> impl Iterator<Item = &EdgeReport> {
        self.steps.iter().flat_map(|step| &step.edges)
    }

    pub fn passed(&self) -> bool {
        self.edges().all(|edge| edge.passed)
    }
}

/// `time` as RFC 3339 in UTC with milliseconds, e.g. `2026-12-03T16:23:13.042Z`.
pub fn rfc3339(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        since_epoch.subsec_millis()
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap_day = UNIX_EPOCH + Duration::from_millis(951_782_400_123);
        assert_eq!(rfc3339(leap_day), "2000-02-29T00:00:00.123Z");
        let later = UNIX_EPOCH + Duration::from_secs(1_796_311_393);
        assert_eq!(rfc3339(later), "2026-12-03T15:23:13.000Z");
    }

    #[test]
    fn only_the_right_kind_of_outcome_passes() {
        use Outcome::*;
        for outcome in [Timeout, Refused, Reset, Unreachable] {
            assert!(passes(Expected::Deny, outcome));
            assert!(!passes(Expected::Allow, outcome));
        }
        assert!(passes(Expected::Allow, Connected));
        assert!(!passes(Expected::Deny, Connected));
        for outcome in [WrongIdentity, ProtocolError, Unsupported] {
            assert!(!passes(Expected::Allow, outcome));
            assert!(!passes(Expected::Deny, outcome));
        }
    }
}
