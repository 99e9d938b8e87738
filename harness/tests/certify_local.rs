//! `netpol-harness certify` and `compare` on the real local backend, over the shipped
//! profiles (`meeting-app`, `semantics`, `upstream-model`):
//!
//! 1. a clean certification passes, and its report directory holds what a publisher needs:
//!    counts equal to the trials the profiles plan (computed from the plans here), JUnit and
//!    JSON files and an HTML page (one cell per trial) that agree with them, convergence
//!    figures, no fault, digests;
//! 2. `meeting-app` and `semantics` again with a fault injected through the runner options
//!    (the command line has no `--fault` for `certify`): the report says it is not a
//!    certification, lists the failing edges with their explanations, and its digests equal
//!    the first run's, since the inputs are the same (this second run is what proves digests
//!    stable across runs; the upstream model's is compared with one computed from its files);
//! 3. `compare` finds every failing edge of the faulted report as a regression (exit 1), the
//!    upstream model's edges as removed, and the other way round the failures as fixed
//!    (exit 0).
//!
//! Needs root (network namespaces, nftables) and the `netpol-probe` binary (built by
//! `cargo test --workspace`, or set NETPOL_PROBE_BIN). About five minutes: the clean run takes
//! about four (the upstream model's 20 steps in two modes, three), the faulted one waits out
//! a short convergence timeout on every failing step.

#[expect(
    dead_code,
    reason = "the helpers shared with local_backend.rs; this test needs only `privileged`"
)]
mod common;

use clap::Parser;
use netpol_harness::certify::profile;
use netpol_harness::certify::report::{
    CertificationReport, FixtureOutcome, FixtureRun, NOT_A_CERTIFICATION, ProfileRun, Verdict,
};
use netpol_harness::cli::{self, Cli, Command, Status};
use netpol_harness::report::RunReport;
use netpol_harness::runner::{Fixture, Plan, RunOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every shipped profile: the clean certification runs them all.
const PROFILES: [&str; 3] = ["meeting-app", "semantics", "upstream-model"];
/// The faulted run's profiles: the upstream model is left out, because with a fault every one
/// of its 20 steps waits out the convergence timeout in each mode (minutes); its digest is
/// checked against one computed from its files instead.
const FAULTED: [&str; 2] = ["meeting-app", "semantics"];

fn profiles_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../profiles")
}

fn certify_args(profiles: &[&str], out: &Path) -> Vec<String> {
    let mut args: Vec<String> = ["netpol-harness", "certify", "--backend", "local"]
        .map(str::to_owned)
        .to_vec();
    for name in profiles {
        args.extend(["--profile".to_owned(), (*name).to_owned()]);
    }
    args.extend([
        "--profiles-dir".to_owned(),
        profiles_dir().display().to_string(),
        "--out".to_owned(),
        out.display().to_string(),
    ]);
    args
}

fn read_report(dir: &Path) -> CertificationReport {
    let text = std::fs::read_to_string(dir.join("report.yaml")).expect("report.yaml");
    serde_saphyr::from_str(&text).expect("report.yaml parses as a certification report")
}

/// The trials each profile's fixtures plan, and their steps, from the profiles and fixtures
/// alone.
fn planned(name: &str) -> Vec<(String, usize, usize)> {
    let profile = profile::load(&profiles_dir(), name).unwrap();
    profile
        .fixture_dirs
        .iter()
        .map(|dir| {
            let fixture = Fixture::load(dir).unwrap();
            let plan = Plan::with_modes(&fixture, &profile.modes).unwrap();
            (fixture.name, plan.edges().count(), plan.steps.len())
        })
        .collect()
}

/// Per profile of `report.html`'s embedded data, the cells of its truth tables and how many
/// are mismatches; and whether the page refers to anything outside itself.
fn html_cells(dir: &Path) -> (Vec<(String, usize, usize)>, bool) {
    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html");
    let start = html
        .find(r#"<script type="application/json" id="data">"#)
        .unwrap();
    let data = &html[start..];
    let data = &data[data.find('>').unwrap() + 1..data.find("</script>").unwrap()];
    let data: serde_json::Value = serde_json::from_str(data).expect("the page's data");
    let profiles = data["profiles"].as_array().unwrap();
    let cells = profiles
        .iter()
        .map(|profile| {
            let cells: Vec<&serde_json::Value> = profile["fixtures"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|f| f["tables"].as_array().unwrap())
                .flat_map(|t| t["cells"].as_array().unwrap())
                .collect();
            let mismatches = cells.iter().filter(|c| c["mismatch"] == true).count();
            (
                profile["name"].as_str().unwrap().to_owned(),
                cells.len(),
                mismatches,
            )
        })
        .collect();
    let external = ["src=\"http", "href=\"http", "url(http"]
        .iter()
        .any(|pattern| html.contains(pattern));
    (cells, external)
}

/// A profile's digest computed from its files alone, without running it.
fn digest_from_files(name: &str) -> String {
    let profile = profile::load(&profiles_dir(), name).unwrap();
    let fixtures = profile
        .fixtures
        .iter()
        .zip(&profile.fixture_dirs)
        .map(|(path, dir)| {
            let fixture = Fixture::load(dir).unwrap();
            FixtureRun {
                path: path.clone(),
                name: fixture.name.clone(),
                source_hash: fixture.source_hash.clone(),
                plan: Plan::with_modes(&fixture, &profile.modes).unwrap(),
                outcome: FixtureOutcome::Skipped("not run".to_owned()),
            }
        })
        .collect();
    ProfileRun {
        profile: &profile,
        fixtures,
    }
    .digest()
}

fn compare(old: &Path, new: &Path) -> (Status, String) {
    let cli = Cli::try_parse_from([
        "netpol-harness",
        "compare",
        old.to_str().unwrap(),
        new.to_str().unwrap(),
    ])
    .unwrap();
    let mut out = Vec::new();
    let status = cli::run(cli, &mut out).expect("the reports are readable");
    (status, String::from_utf8(out).unwrap())
}

#[test]
fn certify_reports_every_planned_trial_and_compare_finds_an_injected_faults_regressions() {
    if !common::privileged() {
        return;
    }
    let root = std::env::temp_dir().join(format!("nph-certify-{}", std::process::id()));
    let (clean_dir, faulted_dir) = (root.join("clean"), root.join("faulted"));

    // 1. The clean certification.
    let cli = Cli::try_parse_from(certify_args(&PROFILES, &clean_dir)).unwrap();
    let mut out = Vec::new();
    let status = cli::run(cli, &mut out).expect("no infrastructure error");
    let printed = String::from_utf8(out).unwrap();
    assert_eq!(status, Status::Success, "{printed}");
    let clean = read_report(&clean_dir);
    assert!(clean.certification && clean.note.is_none() && clean.faults.is_empty());
    assert_eq!(clean.result, Verdict::Pass);
    assert_eq!(clean.backend, "local");
    assert_eq!(clean.implementation.cni, "local-nftables");
    assert!(
        clean.implementation.cni_version.starts_with('v'),
        "{clean:?}"
    );
    assert_eq!(clean.implementation.kubernetes_version, None);
    assert_eq!(clean.probe_modes, ["pod", "service", "dns"]);
    let names: Vec<&str> = clean.profiles.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, PROFILES);

    let mut all_trials = 0;
    let mut all_steps = 0;
    for profile in &clean.profiles {
        let plan = planned(&profile.name);
        let trials: usize = plan.iter().map(|(_, trials, _)| trials).sum();
        let steps: usize = plan.iter().map(|(_, _, steps)| steps).sum();
        all_trials += trials;
        all_steps += steps;
        assert_eq!(profile.counts.total(), trials, "{}", profile.name);
        assert_eq!(profile.counts.passed, trials, "{}", profile.name);
        assert_eq!(profile.convergence.steps, steps, "{}", profile.name);
        assert_eq!(profile.convergence.converged, steps, "{}", profile.name);
        for (fixture, (name, trials, _)) in profile.fixtures.iter().zip(&plan) {
            assert_eq!(&fixture.name, name);
            assert_eq!(fixture.counts.total(), *trials, "{name}");
            // The JSON and JUnit files hold one result per trial.
            let json =
                std::fs::read_to_string(clean_dir.join(fixture.json.as_ref().unwrap())).unwrap();
            let runs: Vec<RunReport> = serde_json::from_str(&json).unwrap();
            assert_eq!(runs[0].edges().count(), *trials, "{name}");
            assert_eq!(runs[0].metadata.topology_hash, fixture.digest, "{name}");
            let junit =
                std::fs::read_to_string(clean_dir.join(fixture.junit.as_ref().unwrap())).unwrap();
            assert_eq!(junit.matches("<testcase ").count(), *trials, "{name}");
        }
    }
    assert_eq!(clean.counts.total(), all_trials);
    let c = &clean.convergence;
    assert_eq!((c.steps, c.converged), (all_steps, all_steps));
    let (median, p90, max) = (c.median_ms.unwrap(), c.p90_ms.unwrap(), c.max_ms.unwrap());
    assert!(0.0 < median && median <= p90 && p90 <= max, "{c:?}");
    // The HTML page draws one cell per trial, none a mismatch, from nothing outside itself.
    let (cells, external) = html_cells(&clean_dir);
    let expected: Vec<(String, usize, usize)> = clean
        .profiles
        .iter()
        .map(|p| (p.name.clone(), p.counts.total(), 0))
        .collect();
    assert_eq!(cells, expected);
    assert!(!external, "report.html refers to something outside itself");
    let markdown = std::fs::read_to_string(clean_dir.join("report.md")).unwrap();
    assert!(markdown.contains("**Result: PASS**"), "{markdown}");
    assert!(!markdown.contains("Failing edges"), "{markdown}");

    // 2. The same profiles with a data plane that ignores ingress policies.
    let Command::Certify(args) = Cli::try_parse_from(certify_args(&FAULTED, &faulted_dir))
        .unwrap()
        .command
    else {
        unreachable!("parsed as certify");
    };
    let options = RunOptions {
        converge_timeout: Duration::from_secs(4),
        faults: vec!["no-ingress".to_owned()],
        ..RunOptions::default()
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut out = Vec::new();
    let status = runtime
        .block_on(cli::certify::certify_with(&args, options, &mut out))
        .expect("a broken data plane is a result, not an error");
    let printed = String::from_utf8(out).unwrap();
    assert_eq!(status, Status::Failure, "{printed}");
    assert!(printed.contains("NOT A CERTIFICATION"), "{printed}");
    let faulted = read_report(&faulted_dir);
    assert!(!faulted.certification);
    assert_eq!(faulted.note.as_deref(), Some(NOT_A_CERTIFICATION));
    assert_eq!(faulted.faults, ["no-ingress"]);
    assert_eq!(faulted.result, Verdict::Fail);
    let faulted_trials: usize = clean.profiles[..FAULTED.len()]
        .iter()
        .map(|p| p.counts.total())
        .sum();
    assert_eq!(faulted.counts.total(), faulted_trials);
    assert!(faulted.counts.failed > 0);
    // Same inputs, same digests, run after run.
    for (a, b) in clean.profiles.iter().zip(&faulted.profiles) {
        assert_eq!(a.digest, b.digest, "{}", a.name);
        assert!(
            b.counts.failed > 0,
            "no-ingress fails denied edges of {}",
            b.name
        );
    }
    for profile in &clean.profiles[FAULTED.len()..] {
        assert_eq!(
            profile.digest,
            digest_from_files(&profile.name),
            "{}",
            profile.name
        );
    }
    let markdown = std::fs::read_to_string(faulted_dir.join("report.md")).unwrap();
    assert!(markdown.contains("NOT A CERTIFICATION"), "{markdown}");
    assert!(markdown.contains("**Result: FAIL**"), "{markdown}");
    for profile in &faulted.profiles {
        let heading = format!("### Failing edges ({})", profile.counts.failed);
        assert!(markdown.contains(&heading), "{heading}");
        let first = &profile.fixtures[0].failing[0];
        assert!(markdown.contains(&format!("- `{first}`")), "{first}");
    }
    assert!(
        markdown.contains("why the policies deny it"),
        "explanations in report.md"
    );

    // 3. compare: every edge the faulted run failed passed before.
    let (status, text) = compare(&clean_dir, &faulted_dir);
    assert_eq!(status, Status::Failure, "{text}");
    let summary = format!(
        "REGRESSIONS: {} regressed (pass → fail)",
        faulted.counts.failed
    );
    assert!(text.contains(&summary), "{summary}\n{text}");
    let removed: usize = clean.profiles[FAULTED.len()..]
        .iter()
        .map(|p| p.counts.total())
        .sum();
    assert!(
        text.contains(&format!("0 added, {removed} removed")),
        "{text}"
    );
    assert!(
        text.contains("profile meeting-app, fixture meeting-app, step policies"),
        "{text}"
    );
    let (status, text) = compare(&faulted_dir.join("report.yaml"), &clean_dir);
    assert_eq!(status, Status::Success, "{text}");
    let summary = format!(
        "no regression: 0 regressed (pass → fail), {} fixed",
        faulted.counts.failed
    );
    assert!(text.contains(&summary), "{summary}\n{text}");

    std::fs::remove_dir_all(&root).unwrap();
}
