//! The reporters against a hand-made report: JSON and JUnit parse back, the summary counts.

use super::*;
use netpol_probes::spec::Protocol;
use netpol_probes::wire::Outcome;

fn edge(name: &str, expected: Expected, observed: Outcome) -> EdgeReport {
    EdgeReport {
        name: format!("demo::policies::{name}::{expected}"),
        src: "app/web".to_owned(),
        dst: "app/db".to_owned(),
        port: 5432,
        protocol: Protocol::Tcp,
        expected,
        via: "pod".to_owned(),
        dialled: String::new(),
        observed,
        latency_ms: if observed == Outcome::Timeout {
            2000.0
        } else {
            1.5
        },
        detail: "no answer <within> & \"quotes\"".to_owned(),
        explanation: "app/web -> app/db 5432/TCP: deny\n  egress: ...\n  ingress: ...".to_owned(),
        passed: passes(expected, observed),
    }
}

fn sample() -> RunReport {
    RunReport {
        metadata: Metadata {
            backend: "fake".to_owned(),
            started_at: "2026-12-03T16:00:00.000Z".to_owned(),
            finished_at: "2026-12-03T16:00:09.000Z".to_owned(),
            faults: vec!["no-egress".to_owned()],
            pods: 3,
            phases: PhaseTimes {
                deploy_ms: 900.0,
                baseline_ms: 20.0,
                teardown_ms: 10.0,
            },
            ..Metadata::sample("demo")
        },
        steps: vec![StepReport {
            name: "policies".to_owned(),
            description: None,
            convergence: Convergence {
                converged: false,
                time_ms: None,
                resolution_ms: None,
                rounds: 12,
                elapsed_ms: 30_500.0,
            },
            edges: vec![
                edge(
                    "app/web->app/db:5432/TCP",
                    Expected::Allow,
                    Outcome::Connected,
                ),
                edge(
                    "app/cache->app/db:5432/TCP",
                    Expected::Deny,
                    Outcome::Connected,
                ),
                edge("app/db->app/web:80/TCP", Expected::Allow, Outcome::Timeout),
                edge(
                    "app/db->app/cache:80/TCP",
                    Expected::Allow,
                    Outcome::WrongIdentity,
                ),
            ],
        }],
    }
}

#[test]
fn the_json_report_parses_back_to_the_same_report() {
    let reports = vec![sample()];
    let text = json::to_json(&reports).unwrap();
    let parsed: Vec<RunReport> = serde_json::from_str(&text).unwrap();
    assert_eq!(parsed, reports);
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value[0]["steps"][0]["edges"][1]["observed"], "connected");
    assert_eq!(value[0]["steps"][0]["edges"][1]["expected"], "deny");
    assert_eq!(value[0]["metadata"]["faults"][0], "no-egress");
}

#[test]
fn the_junit_report_parses_back_with_one_testcase_per_edge_and_the_failures() {
    let xml = junit::to_junit(&[sample()]).to_string().unwrap();
    let parsed = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    assert_eq!((parsed.tests, parsed.failures), (4, 3));
    let suite = &parsed.test_suites[0];
    assert_eq!(suite.name.as_str(), "demo::policies");
    let names: Vec<&str> = suite.test_cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names[1], "demo::policies::app/cache->app/db:5432/TCP::deny");
    let quick_junit::TestCaseStatus::NonSuccess {
        message,
        description,
        ..
    } = &suite.test_cases[1].status
    else {
        panic!("the leaked deny is a failure");
    };
    assert_eq!(
        message.as_ref().map(|m| m.as_str()),
        Some("expected deny, observed allow (connected in 2 ms)")
    );
    let description = description.as_ref().unwrap().as_str();
    assert!(description.contains("probe detail: no answer <within> & \"quotes\""));
    assert!(description.contains("why the policies deny it:\n  app/web -> app/db"));
}

#[test]
fn the_summary_counts_each_kind_of_failure() {
    let report = sample();
    let counts = report.counts();
    assert_eq!(
        (
            counts.passed,
            counts.failed,
            counts.blocked_allows,
            counts.leaked_denies,
            counts.broken
        ),
        (1, 3, 1, 1, 1)
    );
    insta::assert_snapshot!(matrix::summary(&report), @r"
    demo :: policies: 4 edges: 1 passed, 3 failed (1 allow blocked, 1 deny open, 1 broken); did not converge within 30500 ms (12 rounds); the last round is the result
      denied edges seen as: 1 timeout
    FAULTS INJECTED: no-egress (the data plane was broken on purpose)
    FAIL demo: 4 edges: 1 passed, 3 failed (1 allow blocked, 1 deny open, 1 broken) (backend fake, 3 pods)
    ");
}

#[test]
fn colors_mark_mismatches_only_when_asked() {
    let report = sample();
    let plain = matrix::render_step("demo", &report.steps[0], false);
    assert!(!plain.contains('\x1b'));
    let colored = matrix::render_step("demo", &report.steps[0], true);
    assert!(colored.contains("\x1b[1;31m"), "mismatches in red");
}

#[test]
fn a_dns_failure_never_passes_not_even_an_expected_deny() {
    assert!(!passes(Expected::Deny, Outcome::DnsFailure));
    assert!(!passes(Expected::Allow, Outcome::DnsFailure));
    let mut failed = edge("a->b", Expected::Deny, Outcome::DnsFailure);
    failed.via = "dns".to_owned();
    failed.dialled = "db.app.svc.cluster.local (resolved through 10.96.0.10)".to_owned();
    let text = message::failure_message(&failed);
    assert!(
        text.contains("dialled (dns): db.app.svc.cluster.local"),
        "{text}"
    );
    assert!(text.contains("never dialled"), "{text}");
}

#[test]
fn a_run_through_several_modes_prints_one_table_per_step_and_mode() {
    let mut report = sample();
    let step = &mut report.steps[0];
    let mut through_service: Vec<EdgeReport> = step.edges.clone();
    for edge in &mut through_service {
        edge.via = "service".to_owned();
    }
    step.edges.extend(through_service);
    let text = matrix::render_report(&report, false);
    assert!(text.contains("demo :: policies: "), "{text}");
    assert!(text.contains("demo :: policies@service: "), "{text}");
}

#[test]
fn a_run_with_injected_faults_says_so_in_the_summary_the_json_and_the_junit() {
    let mut report = sample();
    report.metadata.faults = vec!["no-egress".to_owned(), "late-enforcement=1500".to_owned()];
    let summary = matrix::summary(&report);
    assert!(
        summary.contains("FAULTS INJECTED: no-egress, late-enforcement=1500"),
        "{summary}"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["metadata"]["faults"],
        serde_json::json!(["no-egress", "late-enforcement=1500"])
    );
    let xml = junit::to_junit(std::slice::from_ref(&report))
        .to_string()
        .unwrap();
    assert!(
        xml.contains(r#"name="faults_injected" value="no-egress,late-enforcement=1500""#),
        "{xml}"
    );
}

#[test]
fn a_clean_run_names_no_faults() {
    let mut report = sample();
    report.metadata.faults.clear();
    assert!(!matrix::summary(&report).contains("FAULTS"));
}

#[test]
fn rewritten_ip_blocks_are_named_in_the_summary_the_json_and_the_junit() {
    let mut report = sample();
    let rewrite = "app/db ingress[0] peer 0: ipBlock 10.0.0.0/30 -> ipBlock 192.168.7.0/28";
    assert!(!matrix::summary(&report).contains("rewritten"));
    assert!(
        serde_json::to_value(&report).unwrap()["metadata"]
            .get("readdressed")
            .is_none(),
        "left out of the JSON when nothing was rewritten"
    );
    report.metadata.readdressed = vec![rewrite.to_owned()];
    let summary = matrix::summary(&report);
    assert!(summary.contains(&format!("\n  {rewrite}\n")), "{summary}");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["metadata"]["readdressed"],
        serde_json::json!([rewrite])
    );
    let xml = junit::to_junit(std::slice::from_ref(&report))
        .to_string()
        .unwrap();
    assert!(xml.contains(r#"name="ip_block_readdressed""#), "{xml}");
}
