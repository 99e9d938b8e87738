//! The `upstream-model` fixture (fixtures/upstream-model): it loads and plans without a
//! backend, every step has the edges and denials its README derives, hand-derived verdicts of
//! every step hold, and the truth table of every step is snapshotted.
//!
//! Running the fixture for real takes about 85 s in pod mode, so the default `conformance`
//! run leaves it out (see `netpol_harness::runner::suite`); these tests only plan it.

use netpol_harness::backend::Via;
use netpol_harness::report::Expected;
use netpol_harness::runner::suite::Suite;
use netpol_harness::runner::{Fixture, Plan, PlannedStep};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/upstream-model")
}

fn plan() -> Plan {
    let fixture = Fixture::load(&dir()).expect("the fixture loads");
    Plan::new(&fixture).expect("the fixture plans")
}

fn step<'a>(plan: &'a Plan, name: &str) -> &'a PlannedStep {
    plan.steps
        .iter()
        .find(|step| step.name == name)
        .unwrap_or_else(|| panic!("no step {name}"))
}

fn expected(step: &PlannedStep, id: &str) -> Expected {
    step.edges
        .iter()
        .find(|edge| edge.id == id)
        .unwrap_or_else(|| panic!("no edge {id} in step {}", step.name))
        .expected
}

/// Every step in run order with its denied edges, each count derived in the README's table
/// (e.g. `policies`: 3 pods of x x 4 ports x 9 other sources).
const DENIED_PER_STEP: [(&str, usize); 20] = [
    ("policies", 108),
    ("deny-egress", 108),
    ("deny-all", 192),
    ("same-namespace", 84),
    ("from-namespace", 24),
    ("pod-and-namespace", 28),
    ("pod-or-namespace", 20),
    ("pod-expressions", 52),
    ("namespace-expressions", 48),
    ("named-ports", 18),
    ("port-range", 9),
    ("one-port", 33),
    ("egress-pods-ports", 32),
    ("ip-block", 56),
    ("stacked", 65),
    ("update-policy", 65),
    ("delete-policy", 66),
    ("relabel-pod", 30),
    ("relabel-namespace", 24),
    ("delete-all-policies", 0),
];

#[test]
fn every_step_has_380_edges_and_the_denials_the_readme_derives() {
    let plan = plan();
    let names: Vec<&str> = plan.steps.iter().map(|s| s.name.as_str()).collect();
    let expected_names: Vec<&str> = DENIED_PER_STEP.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, expected_names);
    for (name, denied) in DENIED_PER_STEP {
        let step = step(&plan, name);
        // 10 probe pods (the provided DNS pod is never a source), each reaching the 9 other
        // probe pods on 4 ports and the DNS pod on 2.
        assert_eq!(step.edges.len(), 380, "edges of step {name}");
        let actual = step
            .edges
            .iter()
            .filter(|e| e.expected == Expected::Deny)
            .count();
        assert_eq!(actual, denied, "denied edges of step {name}");
    }
}

/// Hand-derived verdicts, at least one per step: `step edge verdict: why`.
const CASES: &[&str] = &[
    "policies y/a->x/b:80/TCP deny: x is isolated for ingress with no rule",
    "policies x/a->x/b:81/UDP deny: its own namespace is denied too",
    "policies x/a->y/a:80/TCP allow: egress of x is not isolated",
    "deny-egress x/a->x/b:80/TCP deny: x is isolated for egress",
    "deny-egress x/a->kube-system/coredns:53/UDP allow: allow-dns adds DNS",
    "deny-egress y/a->x/a:80/TCP allow: ingress of x is open again",
    "deny-all y/a->x/a:80/TCP deny: x is isolated for ingress",
    "deny-all x/b->kube-system/coredns:53/TCP allow: DNS over TCP too",
    "deny-all x/c->z/c:81/UDP deny: x is isolated for egress",
    "same-namespace x/b->x/a:80/TCP allow: podSelector {} is all of x",
    "same-namespace y/a->x/a:80/TCP deny: ... and only x",
    "from-namespace y/c->x/a:81/UDP allow: every port, from ns=y",
    "from-namespace x/b->x/a:80/TCP deny: not from x itself",
    "from-namespace z/a->x/b:80/TCP allow: x/b is not selected",
    "pod-and-namespace z/b->x/a:80/TCP allow: pod=b in ns In (y, z)",
    "pod-and-namespace x/b->x/a:80/TCP deny: pod=b, wrong namespace",
    "pod-and-namespace y/a->x/a:80/TCP deny: right namespace, wrong pod",
    "pod-or-namespace x/b->x/a:80/TCP allow: the pod=b peer, own namespace",
    "pod-or-namespace y/a->x/a:80/TCP allow: the ns=y peer",
    "pod-or-namespace z/b->x/a:80/TCP deny: pod=b but not in x",
    "pod-expressions y/b->y/a:80/TCP allow: pod In (b, c)",
    "pod-expressions y/a->y/b:80/TCP deny: pod=a is not In (b, c)",
    "pod-expressions w/d->y/b:81/UDP allow: no pod label: DoesNotExist",
    "pod-expressions z/b->y/a:80/TCP deny: In (b, c) is in y only",
    "pod-expressions x/a->y/c:80/TCP allow: y/c is not selected (NotIn c)",
    "namespace-expressions w/d->z/a:80/TCP allow: ns DoesNotExist on w",
    "namespace-expressions y/a->z/a:80/TCP deny: y has an ns label",
    "namespace-expressions w/d->z/b:80/TCP deny: ns Exists fails on w",
    "namespace-expressions x/a->z/b:80/TCP allow: ns Exists on x",
    "namespace-expressions w/d->z/c:80/TCP allow: NotIn matches no label",
    "namespace-expressions x/b->z/c:80/TCP deny: ns NotIn (x) fails",
    "named-ports y/a->x/a:81/TCP allow: serve-81-tcp",
    "named-ports y/a->x/a:80/TCP deny: no rule names 80/TCP",
    "named-ports w/d->x/a:80/UDP allow: serve-80-udp, every namespace",
    "named-ports w/d->x/a:81/UDP deny: no rule names 81/UDP",
    "port-range z/c->x/a:81/TCP allow: 80-81/TCP ends at 81",
    "port-range z/c->x/a:80/UDP allow: 79-80/UDP",
    "port-range z/c->x/a:81/UDP deny: 81 is after 79-80",
    "one-port y/b->x/a:81/TCP allow: protocol defaults to TCP",
    "one-port y/b->x/a:81/UDP deny: ... not UDP",
    "one-port y/b->x/a:80/TCP deny: only port 81",
    "one-port z/b->x/a:81/TCP deny: only ns=y",
    "egress-pods-ports x/a->y/b:80/TCP allow: serve-80-tcp on y/b",
    "egress-pods-ports x/a->y/b:81/TCP deny: not the named port",
    "egress-pods-ports x/a->z/c:81/UDP allow: ns=z on 81/UDP",
    "egress-pods-ports x/a->z/c:81/TCP deny: ... UDP only",
    "egress-pods-ports x/a->kube-system/coredns:53/UDP allow: DNS",
    "egress-pods-ports x/a->x/b:80/TCP deny: nothing else",
    "egress-pods-ports x/b->y/a:80/TCP allow: x/b is not selected",
    "ip-block x/a->y/a:80/TCP allow: in 10.244.11.0/24",
    "ip-block x/a->y/b:80/TCP deny: except 10.244.11.2/32",
    "ip-block x/b->z/a:81/UDP allow: in 10.244.10.0/24",
    "ip-block x/c->z/a:80/TCP deny: except 10.244.10.3/32",
    "ip-block y/a->z/a:80/TCP deny: outside the CIDR",
    "stacked x/b->x/a:80/TCP allow: allow-b-to-a",
    "stacked x/b->x/a:81/TCP deny: allow-b-to-a is 80/TCP only",
    "stacked y/c->x/a:81/UDP allow: allow-ns-to-a",
    "stacked z/a->x/a:81/TCP deny: allow-ns-to-a is ns=y",
    "stacked x/a->x/b:80/TCP deny: default-deny-ingress alone",
    "stacked w/d->x/c:80/UDP allow: allow-all-to-c beats deny-all",
    "update-policy y/c->x/a:81/UDP deny: allow-ns-to-a now ns=z",
    "update-policy z/a->x/a:81/TCP allow: allow-ns-to-a now ns=z",
    "update-policy x/b->x/a:80/TCP allow: allow-b-to-a unchanged",
    "delete-policy x/b->x/a:80/TCP deny: allow-b-to-a deleted",
    "delete-policy z/a->x/a:81/UDP allow: allow-ns-to-a stays",
    "relabel-pod y/a->x/b:80/TCP allow: x/b is pod=c: allow-all-to-c",
    "relabel-pod x/b->x/a:80/TCP deny: no policy admits pod=c on x/a",
    "relabel-namespace y/a->x/a:81/TCP allow: y is ns=z now",
    "relabel-namespace y/a->x/a:80/TCP deny: ... on 81 only",
    "delete-all-policies y/a->x/a:80/TCP allow: no policy left",
];

#[test]
fn hand_derived_verdicts_of_every_step_hold() {
    let plan = plan();
    let mut wrong = Vec::new();
    let mut covered = BTreeSet::new();
    for case in CASES {
        let (claim, why) = case.split_once(": ").expect("a case has a reason");
        let [name, id, verdict] = claim.split(' ').collect::<Vec<_>>()[..] else {
            panic!("a case is `step edge verdict: why`, not {case:?}");
        };
        let actual = expected(step(&plan, name), id);
        if actual.as_str() != verdict {
            wrong.push(format!(
                "{name}: {id} is {actual}, expected {verdict} ({why})"
            ));
        }
        covered.insert(name);
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(covered.len(), plan.steps.len(), "every step has a case");
}

#[test]
fn the_label_steps_change_labels_and_the_last_step_restores_them() {
    let plan = plan();
    let namespace_labels = |step: &str, ns: &str| {
        let state = &self::step(&plan, step).state;
        let ns = state.topology.namespaces.iter().find(|n| n.name == ns);
        ns.expect("namespace exists").labels.get("ns").cloned()
    };
    assert_eq!(
        namespace_labels("relabel-namespace", "y").as_deref(),
        Some("z")
    );
    assert_eq!(
        namespace_labels("delete-all-policies", "y").as_deref(),
        Some("y")
    );
    let pod_label = |step: &str| {
        let state = &self::step(&plan, step).state;
        let pod = state.topology.pods.iter().find(|p| p.id() == "x/b");
        pod.expect("x/b exists").labels.get("pod").cloned()
    };
    assert_eq!(pod_label("relabel-pod").as_deref(), Some("c"));
    assert_eq!(pod_label("delete-all-policies").as_deref(), Some("b"));
    assert!(step(&plan, "delete-all-policies").state.policies.is_empty());
}

#[test]
fn the_default_conformance_suite_leaves_the_fixture_out_but_lists_it_when_named() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let default_names =
        Suite::load_with_modes(&Suite::default_roots(&fixtures), &[Via::Pod]).trial_names();
    assert!(default_names.iter().any(|n| n.starts_with("meeting-app::")));
    assert!(
        !default_names
            .iter()
            .any(|n| n.starts_with("upstream-model::"))
    );
    let named = Suite::load_with_modes(&[dir()], &[Via::Pod]).trial_names();
    assert_eq!(named.len(), 20 * 380);
    assert!(
        named.contains(&"upstream-model::pod-and-namespace::z/b->x/a:80/TCP::allow".to_owned())
    );
}

/// The truth table of every step: rows are sources, columns destination ports (numbered
/// once at the top), `.` allowed, `X` denied, `-` the source's own ports.
fn truth_tables(plan: &Plan) -> String {
    let first = &plan.steps[0];
    let topology = &first.state.topology;
    let mut columns: Vec<(usize, u16, String)> = Vec::new();
    for (index, pod) in topology.pods.iter().enumerate() {
        for port in &pod.ports {
            columns.push((index, port.port, port.protocol.to_string()));
        }
    }
    let mut out = String::from("destination ports:\n");
    for (number, (pod, port, protocol)) in columns.iter().enumerate() {
        let id = topology.pods[*pod].id();
        writeln!(out, "{:>3} {id}:{port}/{protocol}", number + 1).unwrap();
    }
    for step in &plan.steps {
        writeln!(out, "\n{}:", step.name).unwrap();
        for (src, pod) in topology.pods.iter().enumerate() {
            if pod.provided {
                continue;
            }
            let cells: String = columns
                .iter()
                .map(|(dst, port, protocol)| {
                    let edge = step.edges.iter().find(|e| {
                        e.edge.src == src
                            && e.edge.dst == *dst
                            && e.edge.port == *port
                            && e.edge.protocol.to_string() == *protocol
                    });
                    match edge.map(|e| e.expected) {
                        None => '-',
                        Some(Expected::Allow) => '.',
                        Some(Expected::Deny) => 'X',
                    }
                })
                .collect();
            writeln!(out, "  {:<5} {cells}", pod.id()).unwrap();
        }
    }
    out
}

#[test]
fn the_truth_table_of_every_step_is_the_snapshotted_one() {
    insta::assert_snapshot!(truth_tables(&plan()));
}
