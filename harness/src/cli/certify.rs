//! `certify`: runs certification profiles on a backend and writes a report directory (see
//! [`crate::certify`]): `report.yaml`, `report.md`, `report.html`, and each fixture's JUnit
//! and JSON reports.
//!
//! Profiles whose requirements the backend does not meet are skipped (their trials counted as
//! skipped, with the reason); when every profile asked for would be skipped, nothing runs and
//! the command stops as bad input. An infrastructure error stops the run: the report is still
//! written, the fixtures after the error counted as skipped and the result `incomplete`.
//!
//! Exit statuses: 0 every trial passed; 1 some edge did not behave as the policies say;
//! 2 bad input (a profile, a fixture, an argument); 3 infrastructure error (the harness
//! could not test, or could not ask the cluster what it runs); 130 interrupted.

use super::args::KubeArgs;
use super::error::{Error, Status};
use super::profiles::ProfilesDir;
use super::run::{parse_backend, run_planned, timing, write_lint_warnings};
use crate::backend::{BackendError, kube};
use crate::certify::report::{FixtureOutcome, FixtureRun, ProfileRun, RunFacts};
use crate::certify::{
    CertificationReport, Implementation, Profile, implementation, output, profile,
};
use crate::report::{matrix, progress::Progress, rfc3339};
use crate::runner::{self, BackendKind, Fixture, Plan, RunOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::SystemTime;

/// Arguments of `netpol-harness certify`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// A profile to run (repeatable, or a comma list); `netpol-harness profiles` lists them.
    #[arg(
        long = "profile",
        value_name = "NAME",
        required = true,
        value_delimiter = ','
    )]
    pub profiles: Vec<String>,
    #[command(flatten)]
    pub dir: ProfilesDir,
    /// Where the probe pods run and the policies are enforced: `local` (this machine's
    /// network namespaces and nftables, needs root) or `kube` (a cluster and its CNI).
    #[arg(long, value_name = "NAME", default_value = "local", value_parser = parse_backend)]
    pub backend: BackendKind,
    #[command(flatten)]
    pub kube: KubeArgs,
    /// The report directory to write (created when missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The CNI's name, instead of the one detected from the cluster's DaemonSets.
    #[arg(long, value_name = "NAME")]
    pub cni_name: Option<String>,
    /// The CNI's version, instead of the detected image tag.
    #[arg(long, value_name = "VERSION")]
    pub cni_version: Option<String>,
    /// Per-probe timeout in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pub timeout: u64,
    /// How long, in seconds, the data plane may take to match the policies after a change.
    #[arg(long, value_name = "S", default_value_t = 30)]
    pub converge_timeout: u64,
}

/// Runs `certify` on a new Tokio runtime; see [`certify_command`].
///
/// # Errors
/// As [`certify_command`].
pub fn run(args: &Args, out: &mut dyn Write) -> Result<Status, Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Output)?;
    runtime.block_on(certify_command(args, out))
}

/// Certifies with the timeouts of `args` and no fault; see [`certify_with`].
///
/// # Errors
/// As [`certify_with`].
pub async fn certify_command(args: &Args, out: &mut dyn Write) -> Result<Status, Error> {
    certify_with(args, timing(args.timeout, args.converge_timeout), out).await
}

/// A profile's fixtures, loaded and planned in the profile's modes.
struct PlannedProfile {
    profile: Profile,
    fixtures: Vec<(String, Fixture, Plan)>,
    /// Why the profile cannot run on the backend; `None` when it can.
    skipped: Option<String>,
}

/// Loads the profiles, plans their fixtures, asks the backend what it runs, runs every
/// fixture of the profiles it can run, writes the report directory and prints a summary.
///
/// `options` are the run's; their faults, which the command line never sets, make the report
/// "not a certification" (tests use them to produce a report with regressions).
///
/// # Errors
/// Bad input (exit 2) before anything runs; [`Error::Run`] for an infrastructure error or an
/// interruption, after writing the report; [`Error::Certify`] when the report cannot be
/// written or the cluster cannot be asked what it runs.
pub async fn certify_with(
    args: &Args,
    options: RunOptions,
    out: &mut dyn Write,
) -> Result<Status, Error> {
    let planned = plan_profiles(args)?;
    let runnable: Vec<(Fixture, Plan)> = planned
        .iter()
        .filter(|p| p.skipped.is_none())
        .flat_map(|p| {
            p.fixtures
                .iter()
                .map(|(_, f, plan)| (f.clone(), plan.clone()))
        })
        .collect();
    for profile in planned.iter().filter(|p| p.skipped.is_some()) {
        let reason = profile.skipped.as_deref().unwrap_or_default();
        writeln!(
            out,
            "warning: skipping profile {}: {reason}",
            profile.profile.name
        )?;
    }
    write_lint_warnings(&runnable, out)?;

    let started_at = rfc3339(SystemTime::now());
    let implementation = implementation(args)
        .await?
        .overridden(args.cni_name.as_deref(), args.cni_version.as_deref());
    writeln!(
        out,
        "certifying {} ({}) on the {} backend",
        implementation.title(),
        implementation.source,
        args.backend
    )?;
    let progress = Progress::new();
    let (reports, error) =
        run_planned(args.backend, &args.kube, &runnable, &options, &progress).await;

    let mut reports = reports.into_iter();
    let not_run = error.as_ref().map(|e| {
        format!(
            "not run: the run stopped at an infrastructure error before it ({})",
            e.chain()
        )
    });
    let runs: Vec<ProfileRun<'_>> = planned
        .iter()
        .map(|p| ProfileRun {
            profile: &p.profile,
            fixtures: p
                .fixtures
                .iter()
                .map(|(path, fixture, plan)| {
                    let outcome = match &p.skipped {
                        Some(reason) => FixtureOutcome::Skipped(reason.clone()),
                        None => match reports.next() {
                            Some(report) => FixtureOutcome::Ran(Box::new(report)),
                            None => FixtureOutcome::Skipped(not_run.clone().unwrap_or_default()),
                        },
                    };
                    FixtureRun {
                        path: path.clone(),
                        name: fixture.name.clone(),
                        source_hash: fixture.source_hash.clone(),
                        plan: plan.clone(),
                        outcome,
                    }
                })
                .collect(),
        })
        .collect();
    let facts = RunFacts {
        implementation,
        backend: args.backend.to_string(),
        started_at,
        finished_at: rfc3339(SystemTime::now()),
        probe_timeout_ms: millis(options.probe_timeout),
        converge_timeout_ms: millis(options.converge_timeout),
        faults: options.faults.clone(),
        error: error.as_ref().map(runner::Error::chain),
    };
    let report = CertificationReport::new(facts, &runs);
    output::write_dir(&args.out, &report, &runs)?;

    for run in &runs {
        for fixture in &run.fixtures {
            if let FixtureOutcome::Ran(result) = &fixture.outcome {
                write!(out, "{}", matrix::summary(result))?;
            }
        }
    }
    let counts = report.counts;
    writeln!(
        out,
        "{}{}: {} trials: {} passed, {} failed, {} skipped; report in {}",
        report.result.as_str().to_uppercase(),
        if report.certification {
            ""
        } else {
            " (NOT A CERTIFICATION: faults injected)"
        },
        counts.total(),
        counts.passed,
        counts.failed,
        counts.skipped,
        args.out.display()
    )?;
    if let Some(error) = error {
        return Err(error.into());
    }
    Ok(if counts.failed == 0 {
        Status::Success
    } else {
        Status::Failure
    })
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Loads every profile asked for (each once, in the order given) and plans its fixtures.
fn plan_profiles(args: &Args) -> Result<Vec<PlannedProfile>, Error> {
    let dir = &args.dir.profiles_dir;
    let mut names: Vec<&str> = Vec::new();
    for name in &args.profiles {
        if !names.contains(&name.as_str()) {
            names.push(name);
        }
    }
    let mut planned = Vec::new();
    for name in names {
        let profile = profile::load(dir, name)?;
        let mut fixtures = Vec::new();
        for (path, dir) in profile.fixtures.iter().zip(&profile.fixture_dirs) {
            let fixture = Fixture::load(dir)?;
            let plan = Plan::with_modes(&fixture, &profile.modes)?;
            fixtures.push((path.clone(), fixture, plan));
        }
        let unmet = profile.unmet(args.backend);
        let skipped = (!unmet.is_empty()).then(|| {
            let unmet: Vec<String> = unmet.iter().map(ToString::to_string).collect();
            format!(
                "requires {}, which the {} backend lacks",
                unmet.join(", "),
                args.backend
            )
        });
        planned.push(PlannedProfile {
            profile,
            fixtures,
            skipped,
        });
    }
    if planned.iter().all(|p| p.skipped.is_some()) {
        let reasons: Vec<String> = planned
            .iter()
            .map(|p| {
                format!(
                    "{} {}",
                    p.profile.name,
                    p.skipped.as_deref().unwrap_or_default()
                )
            })
            .collect();
        return Err(Error::Argument(format!(
            "nothing to certify on --backend {}: profile {}; choose another backend or \
             profile (`netpol-harness profiles` lists which backends can run each)",
            args.backend,
            reasons.join("; profile ")
        )));
    }
    Ok(planned)
}

/// What the backend runs: the cluster's CNI and Kubernetes version, or the local data plane.
async fn implementation(args: &Args) -> Result<Implementation, Error> {
    match args.backend {
        BackendKind::Local => Ok(implementation::local()),
        BackendKind::Kube => {
            let connect_error = |error: kube::KubeError| {
                Error::Run(runner::Error::Backend {
                    action: "connect to the cluster".to_owned(),
                    source: BackendError::from(error),
                })
            };
            let env = std::env::var(kube::config::CONTEXT_ENV).ok();
            let access = kube::resolve_access(args.kube.access(), env).map_err(connect_error)?;
            let client = kube::connect_to(&access).await.map_err(connect_error)?;
            Ok(implementation::of_cluster(&client).await?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        let cli = Cli::try_parse_from([&["netpol-harness", "certify"], args].concat())?;
        match cli.command {
            Command::Certify(args) => Ok(args),
            other => panic!("parsed as {other:?}"),
        }
    }

    fn profiles_dir() -> String {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../profiles").to_owned()
    }

    fn exit(args: &Args) -> (u8, String) {
        let error = run(args, &mut Vec::new()).unwrap_err();
        (
            error.exit_code(),
            format!("{:#}", anyhow::Error::from(error)),
        )
    }

    #[test]
    fn profiles_are_repeatable_or_a_comma_list_and_the_backend_defaults_to_local() {
        let args = parse(&["--profile", "a,b", "--profile", "c", "--out", "x"]).unwrap();
        assert_eq!(args.profiles, ["a", "b", "c"]);
        assert_eq!(args.backend, BackendKind::Local);
        assert_eq!(args.timeout, 2000);
        assert_eq!(args.converge_timeout, 30);
    }

    #[test]
    fn certify_has_no_fault_flag_and_needs_a_profile_and_an_output_directory() {
        let error = parse(&["--profile", "p", "--out", "x", "--fault", "no-egress"]).unwrap_err();
        assert!(error.to_string().contains("--fault"), "{error}");
        assert!(parse(&["--out", "x"]).is_err());
        assert!(parse(&["--profile", "p"]).is_err());
    }

    #[test]
    fn in_cluster_and_a_kube_context_exclude_each_other() {
        let args = ["--profile", "p", "--out", "x", "--backend", "kube"];
        let error = parse(&[&args[..], &["--in-cluster", "--kube-context", "c"]].concat());
        assert!(error.is_err());
        let in_cluster = parse(&[&args[..], &["--in-cluster"]].concat()).unwrap();
        assert_eq!(
            in_cluster.kube.access(),
            Some(kube::ClusterAccess::InCluster)
        );
    }

    #[test]
    fn an_unknown_profile_is_bad_input_listing_the_known_ones() {
        let dir = profiles_dir();
        let args = parse(&["--profile", "nope", "--profiles-dir", &dir, "--out", "x"]).unwrap();
        let (code, message) = exit(&args);
        assert_eq!(code, 2, "{message}");
        assert!(message.contains("unknown profile \"nope\""), "{message}");
        assert!(message.contains("meeting-app"), "{message}");
    }

    #[test]
    fn a_profile_the_backend_cannot_run_alone_is_bad_input_naming_the_requirement() {
        // A profile of the user's that declares it needs the fixture's own pod addresses.
        let root = std::env::temp_dir().join(format!("nph-certify-pinned-{}", std::process::id()));
        let profiles = root.join("profiles");
        std::fs::create_dir_all(&profiles).unwrap();
        let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
        let _ = std::os::unix::fs::symlink(fixtures, root.join("fixtures"));
        std::fs::write(
            profiles.join("pinned.yaml"),
            "description: pinned\nfixtures: [fixtures/semantics]\nrequires: [pinned-pod-ips]\n",
        )
        .unwrap();
        let dir = profiles.display().to_string();
        let args = [
            "--profile",
            "pinned",
            "--profiles-dir",
            &dir,
            "--out",
            "x",
            "--backend",
            "kube",
            "--kube-context",
            "none",
        ];
        let (code, message) = exit(&parse(&args).unwrap());
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(code, 2, "{message}");
        assert!(message.contains("pinned-pod-ips"), "{message}");
        assert!(message.contains("kube backend lacks"), "{message}");
    }

    #[test]
    fn the_kube_backend_without_a_cluster_is_an_infrastructure_error_before_anything_runs() {
        if std::env::var_os(kube::config::CONTEXT_ENV).is_some() {
            return;
        }
        let dir = profiles_dir();
        let out =
            std::env::temp_dir().join(format!("nph-certify-nocluster-{}", std::process::id()));
        let args = [
            "--profile",
            "meeting-app",
            "--profiles-dir",
            &dir,
            "--backend",
            "kube",
            "--out",
            out.to_str().unwrap(),
        ];
        let (code, message) = exit(&parse(&args).unwrap());
        assert_eq!(code, 3, "{message}");
        assert!(message.contains("--kube-context"), "{message}");
        assert!(!out.exists(), "no report for a run that never started");
    }
}
