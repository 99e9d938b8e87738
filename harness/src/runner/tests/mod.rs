//! Runner logic against [`FakeBackend`]: convergence, the positive control, mismatch
//! detection, steps, subsets and report contents. Time is paused (tokio's test clock), so
//! timeouts cost nothing and durations are exact.

mod fake;

use super::steps::{Action, ActionKind, Location, Step};
use super::*;
use crate::engine::{
    LabelSelector, Labels, NAMESPACE_NAME_LABEL, Namespace, NetworkPolicy, Origin, Peer, Pod,
    PolicyPort, PortRef, Rule, Topology,
};
use crate::report::{Expected, RunReport, matrix, message};
use fake::FakeBackend;
use netpol_probes::spec::{Check, PortSpec, Protocol};
use netpol_probes::wire::Outcome;
use std::collections::BTreeSet;
use std::time::Duration;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn port(port: u16, protocol: Protocol, check: Option<Check>) -> PortSpec {
    PortSpec {
        port,
        protocol,
        name: None,
        check,
    }
}

fn pod(name: &str, ip: &str, ports: Vec<PortSpec>) -> Pod {
    Pod {
        name: name.to_owned(),
        namespace: "app".to_owned(),
        labels: labels(&[("app", name)]),
        ip: ip.parse().unwrap(),
        provided: false,
        ports,
    }
}

/// Three pods in namespace `app`: `web` (80/TCP), `db` (5432/TCP, postgres) and `cache`
/// (80/TCP and 53/UDP). One policy: only `web` may reach `db`, on 5432.
fn fixture() -> Fixture {
    let topology = Topology {
        namespaces: vec![Namespace {
            name: "app".to_owned(),
            labels: labels(&[(NAMESPACE_NAME_LABEL, "app")]),
        }],
        pods: vec![
            pod(
                "web",
                "10.0.0.1",
                vec![port(80, Protocol::Tcp, Some(Check::Http))],
            ),
            pod(
                "db",
                "10.0.0.2",
                vec![port(5432, Protocol::Tcp, Some(Check::Postgres))],
            ),
            pod(
                "cache",
                "10.0.0.3",
                vec![
                    port(80, Protocol::Tcp, None),
                    port(53, Protocol::Udp, Some(Check::Dns)),
                ],
            ),
        ],
    };
    let selector = |app: &str| LabelSelector {
        match_labels: labels(&[("app", app)]),
        match_expressions: Vec::new(),
    };
    let policy = NetworkPolicy {
        name: "db-from-web".to_owned(),
        namespace: "app".to_owned(),
        pod_selector: selector("db"),
        isolates_ingress: true,
        isolates_egress: false,
        ingress: vec![Rule {
            peers: vec![Peer::Pods {
                namespace_selector: None,
                pod_selector: Some(selector("web")),
            }],
            ports: vec![PolicyPort {
                protocol: Protocol::Tcp,
                port: Some(PortRef::Number(5432)),
                end_port: None,
            }],
        }],
        egress: Vec::new(),
        origin: Origin::default(),
    };
    let mut fixture = Fixture::new("demo", topology, vec![policy]);
    fixture.steps = vec![Step {
        name: "open-again".to_owned(),
        description: Some("delete every policy".to_owned()),
        actions: vec![Action {
            kind: ActionKind::DeleteAll,
            at: Location::default(),
        }],
    }];
    fixture
}

fn options() -> RunOptions {
    RunOptions {
        handle_ctrl_c: false,
        converge_timeout: Duration::from_secs(10),
        ..RunOptions::default()
    }
}

async fn run(backend: &mut FakeBackend, fixture: &Fixture) -> Result<RunReport> {
    let plan = Plan::new(fixture)?;
    run_fixture(backend, fixture, &plan, &options(), &Silent).await
}

fn failing(report: &RunReport) -> Vec<&str> {
    report
        .edges()
        .filter(|edge| !edge.passed)
        .map(|edge| edge.name.as_str())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_correct_data_plane_passes_every_edge_of_every_step() {
    let mut backend = FakeBackend::default();
    let report = run(&mut backend, &fixture()).await.unwrap();

    assert!(report.passed(), "{:?}", failing(&report));
    let steps: Vec<_> = report.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(steps, ["policies", "open-again"]);
    // 3 sources x the other pods' ports: web->db, web->cache x2, db->web, db->cache x2,
    // cache->web, cache->db.
    assert_eq!(report.steps[0].edges.len(), 8);
    let denied: Vec<_> = report.steps[0]
        .edges
        .iter()
        .filter(|e| e.expected == Expected::Deny)
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(
        denied,
        ["demo::policies::app/cache->app/db:5432/TCP::deny"],
        "only web may reach db"
    );
    assert!(
        report.steps[1]
            .edges
            .iter()
            .all(|e| e.expected == Expected::Allow)
    );
    let calls = backend.calls();
    assert_eq!(
        calls.applies,
        vec![vec!["app/db-from-web".to_owned()], vec![]]
    );
    assert_eq!(calls.teardowns, 1);
}

#[tokio::test(start_paused = true)]
async fn report_metadata_and_edges_say_what_ran() {
    let mut backend = FakeBackend::default();
    let fixture = fixture();
    let report = run(&mut backend, &fixture).await.unwrap();

    let meta = &report.metadata;
    assert_eq!(meta.fixture, "demo");
    assert_eq!(meta.backend, "fake");
    assert_eq!(meta.harness_version, HARNESS_VERSION);
    assert_eq!(meta.topology_hash, fixture.source_hash);
    assert_eq!(meta.topology_hash.len(), 16);
    assert_eq!(meta.probe_timeout_ms, 2000);
    assert_eq!(meta.pods, 3);
    assert!(meta.faults.is_empty());
    assert!(meta.started_at.ends_with('Z') && meta.started_at <= meta.finished_at);

    let edge = report
        .edges()
        .find(|e| e.expected == Expected::Deny)
        .unwrap();
    assert_eq!(
        (edge.src.as_str(), edge.dst.as_str()),
        ("app/cache", "app/db")
    );
    assert_eq!((edge.port, edge.protocol), (5432, Protocol::Tcp));
    assert_eq!(edge.observed, Outcome::Timeout);
    assert_eq!(edge.latency_ms, 2000.0);
    assert!(
        edge.explanation.contains("app/db-from-web"),
        "{}",
        edge.explanation
    );
}

/// The convergence time and resolution of `report`'s first step, after checking that the
/// interval they give holds `delay_ms`.
fn interval_holding(report: &RunReport, delay_ms: f64) -> (f64, f64) {
    let convergence = &report.steps[0].convergence;
    assert!(convergence.converged, "{convergence:?}");
    let (time, resolution) = (
        convergence.time_ms.unwrap(),
        convergence.resolution_ms.unwrap(),
    );
    assert!(
        time - resolution <= delay_ms && delay_ms <= time,
        "the delay lies in the reported interval: {time} ms ± {resolution} ms"
    );
    (time, resolution)
}

#[tokio::test(start_paused = true)]
async fn convergence_needs_two_matching_rounds_and_measures_the_enforcement_delay() {
    let delay = Duration::from_millis(4500);
    let mut backend = FakeBackend {
        enforcement_delay: delay,
        ..FakeBackend::default()
    };
    let report = run(&mut backend, &fixture()).await.unwrap();

    assert!(report.passed(), "{:?}", failing(&report));
    let (_, resolution) = interval_holding(&report, 4500.0);
    assert!(
        resolution <= 2100.0,
        "one round of a 2 s probe timeout: {resolution}"
    );
    // The open edge leaked until the policy took effect, then two rounds matched.
    let convergence = &report.steps[0].convergence;
    assert!(convergence.rounds >= 3, "{convergence:?}");
}

#[tokio::test(start_paused = true)]
async fn a_matrix_that_matches_at_once_converges_in_two_rounds() {
    let mut backend = FakeBackend::default();
    let report = run(&mut backend, &fixture()).await.unwrap();
    let convergence = &report.steps[0].convergence;
    assert_eq!(convergence.rounds, 2);
    // The first round's probes left at once (the wall clock moves a little in between).
    let time = convergence.time_ms.unwrap();
    assert!((0.0..50.0).contains(&time), "{convergence:?}");
    assert_eq!(convergence.resolution_ms, Some(time));
}

#[tokio::test(start_paused = true)]
async fn convergence_is_timed_by_when_probes_leave_not_when_rounds_begin() {
    // Agents start 800 ms after their round begins. Before the policy takes effect the
    // denied edge leaks at once, so rounds begin every 801 ms: 0, 801, ..., 4005, whose
    // probes leave at 4805, after the 4500 ms delay. Timed by round starts, convergence
    // would read 4005 ms, before the policy took effect.
    let mut backend = FakeBackend {
        enforcement_delay: Duration::from_millis(4500),
        send_delay: Duration::from_millis(800),
        ..FakeBackend::default()
    };
    let report = run(&mut backend, &fixture()).await.unwrap();

    assert!(report.passed(), "{:?}", failing(&report));
    let (time, resolution) = interval_holding(&report, 4500.0);
    assert!(
        (4804.0..4850.0).contains(&time) && (750.0..850.0).contains(&resolution),
        "from the last leak (4004 ms) to the first probe that saw the policy (4805 ms): \
         {time} ms ± {resolution} ms"
    );
}

#[tokio::test(start_paused = true)]
async fn a_data_plane_that_never_enforces_times_out_and_fails_the_denied_edge() {
    let delay = Duration::from_secs(3600);
    let mut backend = FakeBackend {
        enforcement_delay: delay,
        ..FakeBackend::default()
    };
    let report = run(&mut backend, &fixture()).await.unwrap();

    let convergence = &report.steps[0].convergence;
    assert!(!convergence.converged);
    assert_eq!(
        (convergence.time_ms, convergence.resolution_ms),
        (None, None)
    );
    assert!(convergence.elapsed_ms >= 10_000.0, "{convergence:?}");
    assert_eq!(
        failing(&report),
        ["demo::policies::app/cache->app/db:5432/TCP::deny"]
    );
    let failure = report.edges().find(|e| !e.passed).unwrap();
    assert_eq!(failure.observed, Outcome::Connected);
}

#[tokio::test(start_paused = true)]
async fn mismatches_in_both_directions_fail_after_the_window() {
    let mut backend = FakeBackend::default();
    backend
        .mistakes
        .insert("app/web->app/db:5432/TCP".to_owned(), Outcome::Timeout);
    backend
        .mistakes
        .insert("app/cache->app/db:5432/TCP".to_owned(), Outcome::Connected);
    let report = run_after_baseline(&mut backend).await;

    let counts = report.steps[0].counts();
    assert_eq!(
        (counts.blocked_allows, counts.leaked_denies, counts.broken),
        (1, 1, 0)
    );
    assert_eq!(
        failing(&report),
        [
            "demo::policies::app/web->app/db:5432/TCP::allow",
            "demo::policies::app/cache->app/db:5432/TCP::deny",
            // The mistakes persist after the policies are deleted.
            "demo::open-again::app/web->app/db:5432/TCP::allow",
        ]
    );
    assert!(!report.steps[0].convergence.converged);
}

#[tokio::test(start_paused = true)]
async fn a_wrong_pod_answering_an_allowed_edge_is_a_failure_with_that_outcome() {
    let mut backend = FakeBackend::default();
    backend
        .mistakes
        .insert("app/db->app/web:80/TCP".to_owned(), Outcome::WrongIdentity);
    let report = run_after_baseline(&mut backend).await;
    let edge = report.edges().find(|e| !e.passed).unwrap();
    assert_eq!(edge.observed, Outcome::WrongIdentity);
    assert_eq!(report.steps[0].counts().broken, 1);
    assert!(message::headline(edge).contains("observed wrong_identity"));
}

async fn run_after_baseline(backend: &mut FakeBackend) -> RunReport {
    run(backend, &fixture()).await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_dead_server_fails_the_positive_control_as_an_infrastructure_error() {
    let mut backend = FakeBackend {
        dead: vec!["app/db".to_owned()],
        ..FakeBackend::default()
    };
    let error = run(&mut backend, &fixture()).await.unwrap_err();

    assert!(matches!(&error, Error::Baseline { failures, total: 8 } if failures.len() == 2));
    assert_eq!(error.exit_code(), EXIT_INFRASTRUCTURE);
    assert!(
        error
            .to_string()
            .starts_with("positive control failed: 2 of 8 edges"),
        "{error}"
    );
    let calls = backend.calls();
    assert!(
        calls.applies.is_empty(),
        "no policy is applied after a failed baseline"
    );
    assert_eq!(calls.teardowns, 1, "torn down after the failure");
}

#[tokio::test(start_paused = true)]
async fn a_failed_deploy_is_an_infrastructure_error_and_still_tears_down() {
    let mut backend = FakeBackend {
        fail_deploy: true,
        ..FakeBackend::default()
    };
    let error = run(&mut backend, &fixture()).await.unwrap_err();
    assert_eq!(error.exit_code(), EXIT_INFRASTRUCTURE);
    assert_eq!(error.to_string(), "failed to deploy the topology");
    assert_eq!(backend.calls().teardowns, 1);
}

#[tokio::test(start_paused = true)]
async fn one_batch_per_source_per_round_and_no_self_probes() {
    let mut backend = FakeBackend::default();
    run(&mut backend, &fixture()).await.unwrap();
    let batches = backend.calls().batches;
    // Baseline 1 round + 2 steps x 2 rounds, 3 sources each.
    assert_eq!(batches.len(), 3 * 5);
    for chunk in batches.chunks(3) {
        let mut sources: Vec<_> = chunk.iter().map(|(src, _)| src.as_str()).collect();
        sources.sort_unstable();
        assert_eq!(sources, ["app/cache", "app/db", "app/web"]);
        assert_eq!(chunk.iter().map(|(_, n)| n).sum::<usize>(), 8);
    }
}

#[tokio::test(start_paused = true)]
async fn label_steps_reach_the_backend_and_change_verdicts() {
    let mut fixture = fixture();
    fixture.steps = vec![Step {
        name: "cache-becomes-web".to_owned(),
        description: None,
        actions: vec![Action {
            kind: ActionKind::SetPodLabels {
                pod: "app/cache".to_owned(),
                labels: labels(&[("app", "web")]),
            },
            at: Location::default(),
        }],
    }];
    let mut backend = FakeBackend::default();
    let report = run(&mut backend, &fixture).await.unwrap();

    assert!(report.passed(), "{:?}", failing(&report));
    let step = &report.steps[1];
    assert!(
        step.edges.iter().all(|e| e.expected == Expected::Allow),
        "cache now counts as web"
    );
    let calls = backend.calls();
    assert_eq!(
        calls.pod_labels,
        vec![("app/cache".to_owned(), labels(&[("app", "web")]))]
    );
    assert_eq!(
        calls.applies.len(),
        1,
        "a label step does not re-apply policies"
    );
}

#[tokio::test(start_paused = true)]
async fn a_restricted_fixture_deploys_only_the_selected_pods() {
    let full = fixture();
    let keep: BTreeSet<String> = ["app/cache".to_owned(), "app/db".to_owned()].into();
    let fixture = full.restricted(&keep);
    let mut backend = FakeBackend::default();
    let report = run(&mut backend, &fixture).await.unwrap();

    assert_eq!(backend.calls().deployed_pods, ["app/db", "app/cache"]);
    let full_plan = Plan::new(&full).unwrap();
    for edge in report.edges() {
        let planned = full_plan
            .edges()
            .find(|p| p.trial == edge.name)
            .expect("same trial name");
        assert_eq!(planned.expected, edge.expected);
    }
}

#[tokio::test(start_paused = true)]
async fn the_matrix_shows_expected_and_observed_per_source_and_destination_port() {
    let mut backend = FakeBackend::default();
    backend
        .mistakes
        .insert("app/cache->app/db:5432/TCP".to_owned(), Outcome::Connected);
    let report = run_after_baseline(&mut backend).await;
    insta::assert_snapshot!(matrix::render_step("demo", &report.steps[0], false));
}

#[tokio::test(start_paused = true)]
async fn the_failure_message_says_expected_observed_detail_and_why() {
    let mut backend = FakeBackend::default();
    backend
        .mistakes
        .insert("app/web->app/db:5432/TCP".to_owned(), Outcome::Refused);
    let report = run_after_baseline(&mut backend).await;
    let edge = report.edges().find(|e| !e.passed).unwrap();
    insta::assert_snapshot!(message::failure_message(edge));
}

#[test]
fn deleting_a_policy_that_is_not_applied_is_bad_input_naming_the_field() {
    let mut fixture = fixture();
    fixture.steps[0].actions = vec![Action {
        kind: ActionKind::Delete(vec!["app/nope".to_owned()]),
        at: Location {
            field: "[0].delete".to_owned(),
            line: 3,
        },
    }];
    let error = Plan::new(&fixture).unwrap_err();
    assert_eq!(error.exit_code(), EXIT_BAD_INPUT);
    assert_eq!(
        error.to_string(),
        "demo/steps.yaml: [0].delete[0]: policy app/nope is not applied at this step (line 3)"
    );
}

#[tokio::test(start_paused = true)]
async fn several_fixtures_run_in_order_each_on_a_fresh_backend() {
    let fixture = fixture();
    let planned = vec![
        (fixture.clone(), Plan::new(&fixture).unwrap()),
        (fixture.clone(), Plan::new(&fixture).unwrap()),
    ];
    let mut made = 0;
    let make = async || {
        made += 1;
        Ok(FakeBackend::default())
    };
    let (reports, error) = run_fixtures(make, &planned, &options(), &Silent).await;
    assert!(error.is_none());
    assert_eq!(reports.len(), 2);
    assert_eq!(made, 2);

    let failing = async || -> std::result::Result<FakeBackend, _> {
        Err(crate::backend::BackendError::NotDeployed)
    };
    let (reports, error) = run_fixtures(failing, &planned, &options(), &Silent).await;
    assert!(reports.is_empty());
    assert_eq!(error.unwrap().exit_code(), EXIT_INFRASTRUCTURE);
}

/// The demo fixture with `db`'s policy admitting an ipBlock instead of the `web` pods.
fn fixture_with_ip_block(block: &str, except: &[&str]) -> Fixture {
    let cidr = |text: &str| {
        let (addr, prefix) = text.split_once('/').unwrap();
        crate::engine::Cidr {
            addr: addr.parse().unwrap(),
            prefix: prefix.parse().unwrap(),
        }
    };
    let mut fixture = fixture();
    fixture.policies[0].ingress[0].peers = vec![Peer::IpBlock(crate::engine::IpBlock {
        cidr: cidr(block),
        except: except.iter().map(|e| cidr(e)).collect(),
    })];
    fixture
}

fn addresses(ips: &[&str]) -> Vec<std::net::IpAddr> {
    ips.iter().map(|ip| ip.parse().unwrap()).collect()
}

#[tokio::test(start_paused = true)]
async fn ip_blocks_follow_pods_that_get_other_addresses() {
    // web (10.0.0.1) and db (10.0.0.2) inside, cache (10.0.0.3) carved out; the cluster
    // scatters them over 192.168.7.0/28.
    let fixture = fixture_with_ip_block("10.0.0.0/30", &["10.0.0.3/32"]);
    let mut backend = FakeBackend {
        addresses: addresses(&["192.168.7.9", "192.168.7.2", "192.168.7.5"]),
        ..FakeBackend::default()
    };
    let report = run(&mut backend, &fixture).await.unwrap();

    // The fake enforces what it received at the addresses it gave: every verdict held.
    assert!(report.passed(), "{:?}", failing(&report));
    let names: Vec<&str> = report.edges().map(|e| e.name.as_str()).collect();
    let planned = Plan::new(&fixture).unwrap();
    let trials: Vec<&str> = planned.edges().map(|e| e.trial.as_str()).collect();
    assert_eq!(names, trials, "the same trials, with the same verdicts");
    let applied = &backend.calls().applied[0];
    let Peer::IpBlock(block) = &applied[0].ingress[0].peers[0] else {
        panic!("{applied:?}");
    };
    assert_eq!(
        block.to_string(),
        "ipBlock 192.168.7.0/28 except 192.168.7.5/32"
    );
    assert_eq!(
        report.metadata.readdressed,
        [
            "app/db-from-web ingress[0] peer 0: ipBlock 10.0.0.0/30 except 10.0.0.3/32 -> \
          ipBlock 192.168.7.0/28 except 192.168.7.5/32"
        ],
        "the report says what was rewritten"
    );
}

#[tokio::test(start_paused = true)]
async fn pods_that_get_other_addresses_stop_a_run_when_no_ip_block_can_follow_them() {
    // The block names an address no pod has; the cluster gives web exactly that address, and
    // a /32 cannot except itself.
    let fixture = fixture_with_ip_block("192.168.7.1/32", &[]);
    let mut backend = FakeBackend {
        addresses: addresses(&["192.168.7.1", "192.168.7.2", "192.168.7.3"]),
        ..FakeBackend::default()
    };
    let error = run(&mut backend, &fixture).await.unwrap_err();

    assert!(matches!(error, Error::AddressDependent { .. }), "{error:?}");
    assert_eq!(error.exit_code(), EXIT_INFRASTRUCTURE);
    let message = error.to_string();
    for expected in [
        "app/web got 192.168.7.1, not 10.0.0.1",
        "demo::policies::app/web->app/db:5432/TCP::deny would be allow",
    ] {
        assert!(message.contains(expected), "{message}");
    }
    assert_eq!(backend.calls().teardowns, 1, "torn down after the error");
    assert!(backend.calls().applies.is_empty(), "no policy applied");
}

#[tokio::test(start_paused = true)]
async fn other_addresses_leave_selector_policies_and_wide_blocks_alone() {
    for (block, ips) in [
        ("0.0.0.0/0", ["192.168.7.1", "192.168.7.2", "192.168.7.3"]),
        ("", ["192.168.7.1", "192.168.7.2", "192.168.7.3"]),
    ] {
        let fixture = if block.is_empty() {
            fixture()
        } else {
            fixture_with_ip_block(block, &[])
        };
        let mut backend = FakeBackend {
            addresses: addresses(&ips),
            ..FakeBackend::default()
        };
        let report = run(&mut backend, &fixture).await.unwrap();
        assert!(report.passed(), "{block}: {:?}", failing(&report));
        assert_eq!(backend.calls().applied[0], fixture.policies, "{block}");
        assert!(report.metadata.readdressed.is_empty(), "{block}");
    }
}
