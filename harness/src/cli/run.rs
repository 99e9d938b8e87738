//! `run`: the conformance run of one or more fixtures on a backend, with a truth table per
//! step, a summary, and optional JUnit and JSON reports.
//!
//! Exit statuses: 0 every edge passed; 1 some edge did not behave as the policies say;
//! 2 bad input (arguments or fixture files); 3 infrastructure error (the harness could not
//! test: a pod never became ready, the positive control failed); 130 interrupted.

use super::args::KubeArgs;
use super::error::{Error, Status};
use crate::backend::Via;
use crate::backend::local::Faults;
use crate::engine::{Engine, lint};
use crate::report::{RunReport, json, junit, matrix, progress::Progress};
use crate::runner::{
    self, BackendKind, Fixture, Observer, Plan, RunOptions, fixture::fixture_dirs,
};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Arguments of `netpol-harness run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Where the probe pods run and the policies are enforced: `local` (network namespaces
    /// and nftables on this machine, needs root) or `kube` (a Kubernetes cluster, see
    /// --kube-context).
    #[arg(long, value_name = "NAME", default_value = "local", value_parser = parse_backend)]
    pub backend: BackendKind,
    #[command(flatten)]
    pub kube: KubeArgs,
    /// A fixture directory (topology.yaml, policies/, optional intent.yaml and steps.yaml),
    /// or a directory of fixture directories.
    #[arg(long, value_name = "DIR")]
    pub fixtures: PathBuf,
    /// Write a JUnit XML report here (one testcase per edge).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write the JSON report here (every edge, and the run's metadata).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// How probes address their destination: `pod` (the pod IP), `service` (the ClusterIP
    /// of the pod's Service) or `dns` (the Service's name, resolved in the source pod).
    /// Repeat the flag or give a comma list to test every edge once per mode in one run.
    #[arg(
        long,
        value_name = "MODE",
        default_value = "pod",
        value_delimiter = ',',
        value_parser = parse_via
    )]
    pub via: Vec<Via>,
    /// Per-probe timeout in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pub timeout: u64,
    /// How long, in seconds, the data plane may take to match the policies after a change.
    #[arg(long, value_name = "S", default_value_t = 30)]
    pub converge_timeout: u64,
    /// Inject a data-plane fault (repeatable; local backend only), to check that the run
    /// fails: ignore-ports, ignore-protocol, no-egress, no-ingress, selectors-or,
    /// ignore-namespace, no-named-ports, ignore-endport, ignore-except, drop-dns-tcp,
    /// default-allow-udp, late-enforcement=MS. The reports name the faults.
    #[arg(long = "fault", value_name = "NAME", value_parser = parse_fault)]
    pub faults: Vec<String>,
}

/// Checks one `--fault` name, keeping it as written for the reports.
pub(super) fn parse_fault(name: &str) -> Result<String, String> {
    Faults::default().enable(name)?;
    Ok(name.to_owned())
}

pub(super) fn parse_backend(name: &str) -> Result<BackendKind, String> {
    name.parse().map_err(|e: runner::Error| e.to_string())
}

pub(super) fn parse_via(name: &str) -> Result<Via, String> {
    name.parse()
}

impl RunArgs {
    /// The `--via` modes, deduplicated, in the order given.
    pub fn modes(&self) -> Vec<Via> {
        let mut modes = Vec::new();
        for via in &self.via {
            if !modes.contains(via) {
                modes.push(*via);
            }
        }
        modes
    }

    fn options(&self) -> RunOptions {
        RunOptions {
            faults: self.faults.clone(),
            ..timing(self.timeout, self.converge_timeout)
        }
    }
}

/// The run options of `--timeout MS` and `--converge-timeout S`, otherwise the defaults.
pub(super) fn timing(timeout_ms: u64, converge_timeout_s: u64) -> RunOptions {
    RunOptions {
        probe_timeout: Duration::from_millis(timeout_ms),
        converge_timeout: Duration::from_secs(converge_timeout_s),
        ..RunOptions::default()
    }
}

/// Loads the fixture in `dir` (or every fixture under it) and plans each, every edge once per
/// mode of `modes`.
///
/// # Errors
/// The first fixture that cannot be loaded or planned (bad input).
pub(super) fn plan_fixtures(dir: &Path, modes: &[Via]) -> Result<Vec<(Fixture, Plan)>, Error> {
    let mut planned = Vec::new();
    for dir in fixture_dirs(dir)? {
        let fixture = Fixture::load(&dir)?;
        let plan = Plan::with_modes(&fixture, modes)?;
        planned.push((fixture, plan));
    }
    Ok(planned)
}

/// Writes the lint findings of every fixture's intent to `out`, as warnings: facts about the
/// policies, not conformance failures.
pub(super) fn write_lint_warnings(
    planned: &[(Fixture, Plan)],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    for (fixture, _) in planned {
        let engine = Engine::new(&fixture.topology, &fixture.policies);
        for finding in lint(&engine, &fixture.intent) {
            writeln!(out, "warning: {}: {finding}", fixture.name)?;
        }
    }
    Ok(())
}

/// Runs the planned fixtures on `backend` (for `kube`, the cluster `kube` names), one fresh
/// backend each, in order: the reports of the fixtures that ran and the error that stopped
/// the run, if any.
pub(super) async fn run_planned(
    backend: BackendKind,
    kube: &KubeArgs,
    planned: &[(Fixture, Plan)],
    options: &RunOptions,
    observer: &dyn Observer,
) -> (Vec<RunReport>, Option<runner::Error>) {
    match backend {
        BackendKind::Kube => runner::run_on_kube(kube.access(), planned, options, observer).await,
        kind => runner::run_on(kind, planned, options, observer).await,
    }
}

/// Whether to color the truth tables: stdout is a terminal and NO_COLOR is unset.
pub(super) fn color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Runs `run` on a new Tokio runtime; see [`run_command`].
///
/// # Errors
/// As [`run_command`].
pub fn run(args: &RunArgs, out: &mut dyn Write) -> Result<Status, Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Output)?;
    runtime.block_on(run_command(args, out))
}

/// Loads and plans every fixture (so that bad input stops the run before anything is
/// deployed), prints their lint findings as warnings, runs them, prints a truth table per
/// step and a summary to `out`, and writes the requested reports.
///
/// # Errors
/// [`Error::Run`] for bad input (exit 2) or an infrastructure error (exit 3), after writing
/// the reports of the fixtures that completed; [`Error::Report`] when a report file cannot be
/// written; [`Error::Output`] when `out` fails.
pub async fn run_command(args: &RunArgs, out: &mut dyn Write) -> Result<Status, Error> {
    let planned = plan_fixtures(&args.fixtures, &args.modes())?;
    write_lint_warnings(&planned, out)?;
    let progress = Progress::new();
    let options = args.options();
    let (reports, error) =
        run_planned(args.backend, &args.kube, &planned, &options, &progress).await;
    let color = color();
    for report in &reports {
        writeln!(out, "{}", matrix::render_report(report, color))?;
    }
    if let Some(path) = &args.json {
        json::write_json(path, &reports)?;
    }
    if let Some(path) = &args.junit {
        junit::write_junit(path, &reports)?;
    }
    if let Some(error) = error {
        return Err(error.into());
    }
    Ok(if reports.iter().all(|r| r.passed()) {
        Status::Success
    } else {
        Status::Failure
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> RunArgs {
        let cli = Cli::try_parse_from([&["netpol-harness", "run"], args].concat()).unwrap();
        match cli.command {
            Command::Run(args) => args,
            other => panic!("parsed as {other:?}"),
        }
    }

    fn exit_code(args: &RunArgs) -> (u8, String) {
        let error = run(args, &mut Vec::new()).unwrap_err();
        (error.exit_code(), anyhow::Error::from(error).to_string())
    }

    #[test]
    fn defaults_are_the_local_backend_and_the_documented_timeouts() {
        let args = parse(&["--fixtures", "fixtures/meeting-app"]);
        assert_eq!(args.backend, BackendKind::Local);
        let options = args.options();
        assert_eq!(options.probe_timeout, Duration::from_millis(2000));
        assert_eq!(options.converge_timeout, Duration::from_secs(30));
    }

    #[test]
    fn the_kube_backend_without_a_context_is_an_infrastructure_error_saying_how_to_name_one() {
        // `make e2e` names a real cluster in the environment; this case is about its absence.
        if std::env::var_os("NETPOL_KUBE_CONTEXT").is_some() {
            return;
        }
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/meeting-app");
        let args = parse(&["--backend", "kube", "--fixtures", fixtures]);
        let error = run(&args, &mut Vec::new()).unwrap_err();
        let code = error.exit_code();
        let message = format!("{:#}", anyhow::Error::from(error));
        assert_eq!(code, 3, "{message}");
        assert!(message.contains("--kube-context"), "{message}");
    }

    #[test]
    fn the_kube_context_is_taken_from_the_command_line() {
        let args = parse(&[
            "--backend",
            "kube",
            "--kube-context",
            "kind-netpol",
            "--fixtures",
            "x",
        ]);
        assert_eq!(args.kube.kube_context.as_deref(), Some("kind-netpol"));
    }

    #[test]
    fn faults_are_repeatable_and_recorded_in_the_run_options() {
        let args = parse(&[
            "--fixtures",
            "x",
            "--fault",
            "no-egress",
            "--fault",
            "late-enforcement=1500",
        ]);
        assert_eq!(
            args.options().faults,
            ["no-egress", "late-enforcement=1500"]
        );
    }

    #[test]
    fn an_unknown_fault_is_rejected_by_the_parser_listing_the_known_ones() {
        let error = Cli::try_parse_from([
            "netpol-harness",
            "run",
            "--fixtures",
            "x",
            "--fault",
            "nope",
        ])
        .unwrap_err()
        .to_string();
        assert!(error.contains("unknown fault \"nope\""), "{error}");
        assert!(error.contains("ignore-except"), "{error}");
    }

    #[test]
    fn faults_on_the_kube_backend_are_bad_input_saying_they_need_the_local_backend() {
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/meeting-app");
        let args = parse(&[
            "--backend",
            "kube",
            "--kube-context",
            "none",
            "--fixtures",
            fixtures,
            "--fault",
            "no-egress",
        ]);
        let (code, message) = exit_code(&args);
        assert_eq!(code, 2, "{message}");
        assert!(message.contains("--backend local"), "{message}");
    }

    #[test]
    fn an_unknown_backend_is_rejected_by_the_parser() {
        let error = Cli::try_parse_from([
            "netpol-harness",
            "run",
            "--backend",
            "k8s",
            "--fixtures",
            "x",
        ])
        .unwrap_err();
        assert!(
            error.to_string().contains("unknown backend \"k8s\""),
            "{error}"
        );
    }

    #[test]
    fn a_directory_without_fixtures_is_bad_input_before_anything_is_deployed() {
        let dir = std::env::temp_dir().join(format!("netpol-run-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let args = parse(&["--fixtures", dir.to_str().unwrap()]);
        let (code, message) = exit_code(&args);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(code, 2);
        assert!(message.contains("no fixture here"), "{message}");
    }
}
