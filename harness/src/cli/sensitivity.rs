//! `sensitivity`: proves the fixtures would catch broken data planes. Each fixture is
//! deployed once on the local backend and verified once clean and once per injected fault
//! (issue 7); a table says, per fault, whether some edge failed (the fault was *detected*),
//! how many, and a few of them. Each fault is probed in the mode that shows it
//! ([`Faults::shown_via`]): `policy-before-dnat` through Service addresses, the rest through
//! pod addresses.
//!
//! `late-enforcement=MS` is the exception: a delay inside the convergence timeout is not a
//! conformance failure, so its run must pass and report a convergence time close to the
//! delay (within the stated resolution, about one probe timeout).
//!
//! Exit statuses: 0 the clean runs pass, every other fault is detected and every
//! late-enforcement run passes; 1 otherwise; 2 bad input; 3 infrastructure error.

use super::error::{Error, Status};
use super::run::parse_fault;
use crate::backend::Via;
use crate::backend::local::Faults;
use crate::report::{RunReport, progress::Progress};
use crate::runner::sensitivity::FaultRun;
use crate::runner::{self, Fixture, Plan, RunOptions, fixture::fixture_dirs};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// The delay of the default `late-enforcement` run: inside the default convergence timeout.
pub const DEFAULT_LATE_ENFORCEMENT_MS: u64 = 1500;

/// Arguments of `netpol-harness sensitivity`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// A fixture directory, or a directory of fixture directories (repeatable).
    #[arg(long, value_name = "DIR", required = true)]
    pub fixtures: Vec<PathBuf>,
    /// A fault to inject (repeatable; default: every fault, late-enforcement with
    /// 1500 ms).
    #[arg(long = "fault", value_name = "NAME", value_parser = parse_fault)]
    pub faults: Vec<String>,
    /// Per-probe timeout in milliseconds (also the resolution of convergence times).
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub timeout: u64,
    /// How long, in seconds, a step may take to converge. Every step of a detected fault
    /// waits this long, so it bounds the command's run time.
    #[arg(long, value_name = "S", default_value_t = 5)]
    pub converge_timeout: u64,
}

impl Args {
    /// The faults to inject, one run each: the ones named, else every fault.
    pub fn fault_names(&self) -> Vec<String> {
        if !self.faults.is_empty() {
            return self.faults.clone();
        }
        Faults::NAMES
            .iter()
            .map(|name| match name.strip_suffix("=MS") {
                Some(late) => format!("{late}={DEFAULT_LATE_ENFORCEMENT_MS}"),
                None => (*name).to_owned(),
            })
            .collect()
    }

    fn options(&self) -> RunOptions {
        RunOptions {
            probe_timeout: Duration::from_millis(self.timeout),
            converge_timeout: Duration::from_secs(self.converge_timeout),
            ..RunOptions::default()
        }
    }
}

/// What one fault did to the fixtures' runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The fault's name; `None` for the clean run.
    pub fault: Option<String>,
    /// The probe modes of the fault's runs.
    pub via: Vec<Via>,
    /// Every failing edge's trial name, in run order.
    pub failing: Vec<String>,
    /// The fixtures with a failing edge.
    pub detected_by: Vec<String>,
    /// The slowest step's convergence time and resolution in milliseconds; `None` when some
    /// step never converged.
    pub convergence: Option<(f64, f64)>,
}

impl Row {
    /// A row from the reports of one fault's runs (one per fixture).
    pub fn new(fault: Option<String>, via: &[Via], reports: &[&RunReport]) -> Row {
        let mut row = Row {
            fault,
            via: via.to_vec(),
            failing: Vec::new(),
            detected_by: Vec::new(),
            convergence: Some((0.0, 0.0)),
        };
        for report in reports {
            let before = row.failing.len();
            for step in &report.steps {
                let failing = step.edges.iter().filter(|e| !e.passed);
                row.failing.extend(failing.map(|e| e.name.clone()));
                let c = &step.convergence;
                row.convergence = match (row.convergence, c.time_ms, c.resolution_ms) {
                    (Some(slowest), Some(time), Some(res)) if c.converged => {
                        Some(if time > slowest.0 {
                            (time, res)
                        } else {
                            slowest
                        })
                    }
                    _ => None,
                };
            }
            if row.failing.len() > before {
                row.detected_by.push(report.metadata.fixture.clone());
            }
        }
        row
    }

    /// Whether a run with this fault must pass rather than fail.
    fn must_pass(&self) -> bool {
        self.fault
            .as_deref()
            .is_none_or(|f| f.starts_with("late-enforcement"))
    }

    /// Whether the row is what a harness that catches this fault shows.
    pub fn as_expected(&self) -> bool {
        self.must_pass() == self.failing.is_empty()
    }

    fn verdict(&self) -> String {
        match (self.must_pass(), self.failing.is_empty(), self.convergence) {
            (true, true, Some((time, res))) if self.fault.is_some() => {
                format!("passes, converged in {time:.0} ms ± {res:.0} ms")
            }
            (true, true, _) => "passes".to_owned(),
            (true, false, _) => "FAILS".to_owned(),
            (false, false, _) => format!("yes ({})", self.detected_by.join(", ")),
            (false, true, _) => "NO".to_owned(),
        }
    }
}

/// The table: one row per fault, the clean run first.
pub fn render(rows: &[Row]) -> String {
    let name = |row: &Row| row.fault.clone().unwrap_or_else(|| "(clean)".to_owned());
    let via = |row: &Row| {
        row.via
            .iter()
            .map(Via::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    let verdicts: Vec<String> = rows.iter().map(Row::verdict).collect();
    let name_width = rows.iter().map(|r| name(r).len()).max().unwrap_or(0).max(5);
    let via_width = rows.iter().map(|r| via(r).len()).max().unwrap_or(0).max(3);
    let verdict_width = verdicts.iter().map(String::len).max().unwrap_or(0).max(8);
    let mut text = format!(
        "{:name_width$}  {:via_width$}  {:verdict_width$}  {:>7}  examples\n",
        "fault", "via", "detected", "failing"
    );
    for (row, verdict) in rows.iter().zip(&verdicts) {
        let examples = row.failing.iter().take(3).cloned().collect::<Vec<_>>();
        let line = format!(
            "{:name_width$}  {:via_width$}  {verdict:verdict_width$}  {:>7}  {}",
            name(row),
            via(row),
            row.failing.len(),
            examples.join(", ")
        );
        let _ = writeln!(text, "{}", line.trim_end());
    }
    let missed: Vec<String> = rows.iter().filter(|r| !r.as_expected()).map(name).collect();
    if missed.is_empty() {
        text.push_str("PASS: the clean run passes and every fault is caught\n");
    } else {
        let _ = writeln!(text, "FAIL: not as expected: {}", missed.join(", "));
    }
    text
}

/// Runs `sensitivity` on a new Tokio runtime; see [`sensitivity_command`].
///
/// # Errors
/// As [`sensitivity_command`].
pub fn run(args: &Args, out: &mut dyn Write) -> Result<Status, Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Output)?;
    runtime.block_on(sensitivity_command(args, out))
}

/// Loads and plans every fixture, runs each once clean and once per fault on one local
/// deployment, and prints the table.
///
/// Each fault run probes in the mode that shows its fault ([`Faults::shown_via`]); the clean
/// run, which is also the baseline, probes in every mode a fault run uses, so that a fault
/// run's failures are the fault's and not the mode's.
///
/// # Errors
/// [`Error::Run`] for bad input (exit 2) or an infrastructure error (exit 3);
/// [`Error::Output`] when `out` fails.
pub async fn sensitivity_command(args: &Args, out: &mut dyn Write) -> Result<Status, Error> {
    let names = args.fault_names();
    let mut faults = vec![Faults::default()];
    for name in &names {
        faults.push(runner::local_faults(std::slice::from_ref(name))?);
    }
    let mut modes: Vec<Vec<Via>> = faults.iter().map(|f| vec![f.shown_via()]).collect();
    modes[0] = modes
        .iter()
        .flatten()
        .copied()
        .collect::<BTreeSet<Via>>()
        .into_iter()
        .collect();
    // Every fixture is planned before the first is deployed: bad input stops the command
    // before anything runs.
    let mut planned = Vec::new();
    for dirs in &args.fixtures {
        for dir in fixture_dirs(dirs)? {
            let fixture = Fixture::load(&dir)?;
            let mut plans = BTreeMap::new();
            for run_modes in &modes {
                if !plans.contains_key(run_modes) {
                    plans.insert(run_modes.clone(), Plan::with_modes(&fixture, run_modes)?);
                }
            }
            planned.push((fixture, plans));
        }
    }
    let progress = Progress::new();
    let options = args.options();
    let mut per_fixture = Vec::new();
    for (fixture, plans) in &planned {
        let runs: Vec<FaultRun> = faults
            .iter()
            .zip(&modes)
            .map(|(faults, modes)| FaultRun {
                faults,
                plan: &plans[modes],
            })
            .collect();
        let reports =
            runner::sensitivity::sensitivity_local(fixture, &runs, &options, &progress).await?;
        per_fixture.push(reports);
    }
    let rows: Vec<Row> = std::iter::once(None)
        .chain(names.into_iter().map(Some))
        .zip(&modes)
        .enumerate()
        .map(|(i, (fault, modes))| {
            let reports: Vec<&RunReport> = per_fixture.iter().map(|r| &r[i]).collect();
            Row::new(fault, modes, &reports)
        })
        .collect();
    write!(out, "{}", render(&rows))?;
    Ok(if rows.iter().all(Row::as_expected) {
        Status::Success
    } else {
        Status::Failure
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use crate::report::{Convergence, EdgeReport, Expected, Metadata, StepReport};
    use clap::Parser;
    use netpol_probes::spec::Protocol;
    use netpol_probes::wire::Outcome;

    fn parse(args: &[&str]) -> Args {
        let cli = Cli::try_parse_from([&["netpol-harness", "sensitivity"], args].concat());
        match cli.unwrap().command {
            Command::Sensitivity(args) => args,
            other => panic!("parsed as {other:?}"),
        }
    }

    fn report(fixture: &str, failing: &[&str], convergence: Option<(f64, f64)>) -> RunReport {
        let edge = |name: &str, passed: bool| EdgeReport {
            name: name.to_owned(),
            src: "a/x".to_owned(),
            dst: "a/y".to_owned(),
            port: 80,
            protocol: Protocol::Tcp,
            expected: Expected::Deny,
            observed: if passed {
                Outcome::Timeout
            } else {
                Outcome::Connected
            },
            latency_ms: 1.0,
            detail: String::new(),
            explanation: String::new(),
            via: "pod".to_owned(),
            dialled: "10.244.1.2".to_owned(),
            passed,
        };
        let mut edges = vec![edge("ok", true)];
        edges.extend(failing.iter().map(|name| edge(name, false)));
        RunReport {
            metadata: Metadata {
                probe_timeout_ms: 1000,
                converge_timeout_ms: 5000,
                ..Metadata::sample(fixture)
            },
            steps: vec![StepReport {
                name: "policies".to_owned(),
                description: None,
                convergence: Convergence {
                    converged: convergence.is_some(),
                    time_ms: convergence.map(|c| c.0),
                    resolution_ms: convergence.map(|c| c.1),
                    rounds: 3,
                    elapsed_ms: 3000.0,
                },
                edges,
            }],
        }
    }

    #[test]
    fn without_faults_named_every_fault_runs_with_late_enforcement_inside_the_timeout() {
        let args = parse(&["--fixtures", "a", "--fixtures", "b"]);
        let names = args.fault_names();
        assert_eq!(names.len(), Faults::NAMES.len());
        assert!(names.iter().any(|name| name == "policy-before-dnat"));
        assert_eq!(names.last().unwrap(), "late-enforcement=1500");
        assert!(DEFAULT_LATE_ENFORCEMENT_MS < args.converge_timeout * 1000);
        assert_eq!(args.fixtures.len(), 2);
    }

    #[test]
    fn named_faults_replace_the_default_list_and_unknown_ones_are_rejected() {
        let args = parse(&["--fixtures", "a", "--fault", "no-egress"]);
        assert_eq!(args.fault_names(), ["no-egress"]);
        let error = Cli::try_parse_from([
            "netpol-harness",
            "sensitivity",
            "--fixtures",
            "a",
            "--fault",
            "late-enforcement=soon",
        ])
        .unwrap_err();
        assert!(error.to_string().contains("milliseconds"), "{error}");
    }

    #[test]
    fn a_fault_is_detected_by_the_fixtures_where_some_edge_fails() {
        let seed = report("seed", &[], Some((10.0, 5.0)));
        let semantics = report("semantics", &["e1", "e2"], None);
        let row = Row::new(
            Some("ignore-except".to_owned()),
            &[Via::Pod],
            &[&seed, &semantics],
        );
        assert_eq!(row.failing, ["e1", "e2"]);
        assert_eq!(row.detected_by, ["semantics"]);
        assert_eq!(row.convergence, None);
        assert!(row.as_expected());
    }

    #[test]
    fn late_enforcement_must_pass_and_shows_the_slowest_convergence() {
        let a = report("seed", &[], Some((1600.0, 900.0)));
        let b = report("semantics", &[], Some((2400.0, 1000.0)));
        let row = Row::new(
            Some("late-enforcement=1500".to_owned()),
            &[Via::Pod],
            &[&a, &b],
        );
        assert_eq!(row.convergence, Some((2400.0, 1000.0)));
        assert!(row.as_expected());
        let failed = report("seed", &["e"], Some((1.0, 1.0)));
        let row = Row::new(
            Some("late-enforcement=1500".to_owned()),
            &[Via::Pod],
            &[&failed],
        );
        assert!(!row.as_expected());
    }

    #[test]
    fn the_table_names_each_fault_its_verdict_and_at_most_three_examples() {
        let clean = report("seed", &[], Some((5.0, 5.0)));
        let broken = report("seed", &["e1", "e2", "e3", "e4"], None);
        let late = report("seed", &[], Some((1620.0, 1000.0)));
        let pod = [Via::Pod];
        let rows = [
            Row::new(None, &[Via::Pod, Via::Service], &[&clean]),
            Row::new(Some("no-egress".to_owned()), &pod, &[&broken]),
            Row::new(Some("ignore-except".to_owned()), &pod, &[&clean]),
            Row::new(
                Some("policy-before-dnat".to_owned()),
                &[Via::Service],
                &[&broken],
            ),
            Row::new(Some("late-enforcement=1500".to_owned()), &pod, &[&late]),
        ];
        insta::assert_snapshot!(render(&rows), @r"
        fault                  via          detected                                 failing  examples
        (clean)                pod,service  passes                                         0
        no-egress              pod          yes (seed)                                     4  e1, e2, e3
        ignore-except          pod          NO                                             0
        policy-before-dnat     service      yes (seed)                                     4  e1, e2, e3
        late-enforcement=1500  pod          passes, converged in 1620 ms ± 1000 ms         0
        FAIL: not as expected: ignore-except
        ");
    }
}
