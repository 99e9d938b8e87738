//! Table cases, one NetworkPolicy rule each, named as the sentence they pin.
//!
//! Most run on the upstream e2e suite's model ([`xyz`]); the expected matrices follow the
//! API reference (<https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/network-policy-v1/>)
//! and the e2e suite's cases in `test/e2e/network/netpol/network_policy.go`.

use crate::builders::*;
use netpol_harness::engine::{Direction, Edge, Engine, NetworkPolicy, Operator, Rule, Topology};

const INGRESS: &[Direction] = &[Direction::Ingress];
const EGRESS: &[Direction] = &[Direction::Egress];
const BOTH: &[Direction] = &[Direction::Ingress, Direction::Egress];

fn x_a(selector_rules: Vec<Rule>) -> NetworkPolicy {
    policy("x", "x-a", sel(&[("pod", "a")])).ingress(selector_rules)
}

// --- Label selectors -------------------------------------------------------------------

#[test]
fn empty_selector_matches_every_label_set() {
    assert!(all().matches(&labels(&[])));
    assert!(all().matches(&labels(&[("pod", "a")])));
}

#[test]
fn match_labels_require_every_pair() {
    let selector = sel(&[("app", "web"), ("tier", "front")]);
    assert!(selector.matches(&labels(&[("app", "web"), ("tier", "front"), ("x", "y")])));
    assert!(!selector.matches(&labels(&[("app", "web")])));
    assert!(!selector.matches(&labels(&[("app", "web"), ("tier", "back")])));
}

#[test]
fn in_matches_only_listed_values_and_never_a_missing_key() {
    let selector = expr("tier", Operator::In, &["front", "back"]);
    assert!(selector.matches(&labels(&[("tier", "back")])));
    assert!(!selector.matches(&labels(&[("tier", "data")])));
    assert!(!selector.matches(&labels(&[])));
}

#[test]
fn not_in_matches_pods_lacking_the_key() {
    let selector = expr("tier", Operator::NotIn, &["db"]);
    assert!(selector.matches(&labels(&[])));
    assert!(selector.matches(&labels(&[("tier", "web")])));
    assert!(!selector.matches(&labels(&[("tier", "db")])));
}

#[test]
fn exists_matches_any_value_of_the_key() {
    let selector = expr("tier", Operator::Exists, &[]);
    assert!(selector.matches(&labels(&[("tier", "")])));
    assert!(!selector.matches(&labels(&[("other", "tier")])));
}

#[test]
fn does_not_exist_matches_only_pods_lacking_the_key() {
    let selector = expr("tier", Operator::DoesNotExist, &[]);
    assert!(selector.matches(&labels(&[("app", "web")])));
    assert!(!selector.matches(&labels(&[("tier", "web")])));
}

#[test]
fn match_labels_and_match_expressions_must_all_hold() {
    let mut selector = expr("tier", Operator::NotIn, &["db"]);
    selector.match_labels = labels(&[("app", "web")]);
    assert!(selector.matches(&labels(&[("app", "web")])));
    assert!(!selector.matches(&labels(&[("app", "web"), ("tier", "db")])));
    assert!(!selector.matches(&labels(&[("app", "api")])));
}

#[test]
fn in_without_values_matches_nothing_and_not_in_without_values_matches_everything() {
    assert!(!expr("k", Operator::In, &[]).matches(&labels(&[("k", "v")])));
    assert!(expr("k", Operator::NotIn, &[]).matches(&labels(&[("k", "v")])));
}

#[test]
fn not_in_peer_admits_pods_lacking_the_key_as_kubernetes_does() {
    let topology = Topology {
        namespaces: vec![namespace("x", &[])],
        pods: vec![
            pod(
                "x/plain",
                &[("pod", "plain")],
                "10.0.0.1",
                vec![serve(80, Tcp, None)],
            ),
            pod(
                "x/db",
                &[("role", "db")],
                "10.0.0.2",
                vec![serve(80, Tcp, None)],
            ),
            pod(
                "x/web",
                &[("role", "web")],
                "10.0.0.3",
                vec![serve(80, Tcp, None)],
            ),
            pod(
                "x/server",
                &[("pod", "server")],
                "10.0.0.4",
                vec![serve(80, Tcp, None)],
            ),
        ],
    };
    let peer = pods(expr("role", Operator::NotIn, &["db"]));
    let policies =
        [policy("x", "p", sel(&[("pod", "server")])).ingress(vec![rule(vec![peer], vec![])])];
    assert_matrix(&topology, &policies, 80, Tcp, |from, to| {
        to != "x/server" || from != "x/db"
    });
}

// --- Subjects and selector peers -------------------------------------------------------

#[test]
fn empty_pod_selector_selects_every_pod_of_the_policy_namespace_and_no_other() {
    let topology = xyz();
    let policies = [policy("x", "deny-all", all())];
    let engine = Engine::new(&topology, &policies);
    let subjects: Vec<String> = engine
        .subjects(0)
        .iter()
        .map(|&p| engine.pod_name(p))
        .collect();
    assert_eq!(subjects, ["x/a", "x/b", "x/c"]);
    assert_eq!(
        engine.policies_selecting(index_of(&topology, "y/a")),
        Vec::<usize>::new()
    );
    assert_eq!(
        engine.policies_selecting(index_of(&topology, "x/b")),
        vec![0]
    );
}

#[test]
fn default_deny_ingress_denies_only_traffic_into_the_policy_namespace() {
    let policies = [policy("x", "deny-ingress", all())];
    assert_matrix(&xyz(), &policies, 80, Tcp, |_, to| ns(to) != "x");
}

#[test]
fn default_deny_all_denies_both_directions_of_the_selected_pods() {
    let policies = [policy("x", "deny-all", all()).types(BOTH)];
    assert_matrix(&xyz(), &policies, 80, Tcp, |from, to| {
        ns(from) != "x" && ns(to) != "x"
    });
}

#[test]
fn empty_pod_selector_peer_does_not_match_pods_in_other_namespaces() {
    let policies = [policy("x", "same-ns", all()).ingress(vec![rule(vec![pods(all())], vec![])])];
    assert_matrix(&xyz(), &policies, 80, Tcp, |from, to| {
        ns(to) != "x" || ns(from) == "x"
    });
}

#[test]
fn pod_selector_peer_admits_matching_pods_of_the_policy_namespace_only() {
    let policies = [x_a(vec![rule(vec![pods(sel(&[("pod", "b")]))], vec![])])];
    assert_matrix(&xyz(), &policies, 80, Tcp, |from, to| {
        to != "x/a" || from == "x/b"
    });
}

#[test]
fn pod_selector_peer_with_match_expressions_admits_listed_pods() {
    let peer = pods(expr("pod", Operator::In, &["b"]));
    let policies = [x_a(vec![rule(vec![peer], vec![])])];
    assert_matrix(&xyz(), &policies, 80, Tcp, |from, to| {
        to != "x/a" || from == "x/b"
    });
}

#[test]
fn namespace_selector_alone_admits_every_pod_of_matching_namespaces() {
    let policies = [x_a(vec![rule(
        vec![namespaces(sel(&[("ns", "y")]))],
        vec![],
    )])];
    assert_matrix(&xyz(), &policies, 80, Tcp, |from, to| {
        to != "x/a" || ns(from) == "y"
    });
}

#[test]
fn namespace_selector_with_match_expressions_admits_listed_namespaces() {
    let peer = namespaces(expr("ns", Operator::In, &["y"]));
    let policies = [x_a(vec![rule(vec![peer], vec![])])];
    assert_matrix(&xyz(), &policies, 80, Tcp, |from, to| {
        to != "x/a" || ns(from) == "y"
    });
}

#[test]
fn empty_namespace_selector_admits_pods_of_every_namespace() {
    let policies = [x_a(vec![rule(
        vec![namespaces(all())],
        vec![port(Tcp, 81)],
    )])];
    let topology = xyz();
    assert_matrix(&topology, &policies, 81, Tcp, |_, _| true);
    assert_matrix(&topology, &policies, 80, Tcp, |_, to| to != "x/a");
}

#[test]
fn namespace_and_pod_selector_in_one_peer_must_both_match() {
    let peer = pods_in(sel(&[("ns", "y")]), sel(&[("pod", "b")]));
    let policies = [x_a(vec![rule(vec![peer], vec![])])];
    assert_matrix(&xyz(), &policies, 80, Tcp, |from, to| {
        to != "x/a" || from == "y/b"
    });
}

#[test]
fn namespace_and_pod_selector_in_two_peers_match_either() {
    let peers = vec![namespaces(sel(&[("ns", "y")])), pods(sel(&[("pod", "b")]))];
    let policies = [x_a(vec![rule(peers, vec![])])];
    assert_matrix(&xyz(), &policies, 80, Tcp, |from, to| {
        to != "x/a" || ns(from) == "y" || from == "x/b"
    });
}

#[test]
fn multiple_selectors_with_not_in_and_in_expressions_are_anded_within_a_peer() {
    let peer = pods_in(
        expr("ns", Operator::NotIn, &["x"]),
        expr("pod", Operator::In, &["b", "c"]),
    );
    let policies = [x_a(vec![rule(vec![peer], vec![])])];
    assert_matrix(&xyz(), &policies, 80, Tcp, |from, to| {
        to != "x/a" || (ns(from) != "x" && ["b", "c"].contains(&name(from)))
    });
}

#[test]
fn two_pod_selector_peers_admit_the_union_of_their_pods() {
    let peers = vec![pods(sel(&[("pod", "b")])), pods(sel(&[("pod", "c")]))];
    let policies = [x_a(vec![rule(peers, vec![])])];
    assert_matrix(&xyz(), &policies, 80, Tcp, |from, to| {
        to != "x/a" || from == "x/b" || from == "x/c"
    });
}

#[test]
fn namespace_selector_matches_the_implied_metadata_name_label() {
    let mut topology = xyz();
    for namespace in &mut topology.namespaces {
        namespace.labels.clear();
    }
    let peer = namespaces(sel(&[("kubernetes.io/metadata.name", "y")]));
    let policies = [x_a(vec![rule(vec![peer], vec![])])];
    assert_matrix(&topology, &policies, 80, Tcp, |from, to| {
        to != "x/a" || ns(from) == "y"
    });
}

#[test]
fn pods_of_a_namespace_the_topology_does_not_list_match_by_the_implied_name_label() {
    let mut topology = xyz();
    topology.pods.push(pod(
        "w/a",
        &[("pod", "a")],
        "10.0.4.1",
        vec![serve(80, Tcp, None)],
    ));
    let peer = namespaces(sel(&[("kubernetes.io/metadata.name", "w")]));
    let policies = [x_a(vec![rule(vec![peer], vec![])])];
    assert_matrix(&topology, &policies, 80, Tcp, |from, to| {
        to != "x/a" || ns(from) == "w"
    });
}

#[test]
fn peer_with_neither_selector_admits_every_pod_of_the_policy_namespace() {
    let peer = netpol_harness::engine::Peer::Pods {
        namespace_selector: None,
        pod_selector: None,
    };
    let policies = [x_a(vec![rule(vec![peer], vec![])])];
    assert_matrix(&xyz(), &policies, 80, Tcp, |from, to| {
        to != "x/a" || ns(from) == "x"
    });
}

#[test]
fn policy_in_a_namespace_without_pods_selects_nothing() {
    let topology = xyz();
    let policies = [policy("w", "deny-all", all()).types(BOTH)];
    assert!(Engine::new(&topology, &policies).subjects(0).is_empty());
    assert_matrix(&topology, &policies, 80, Tcp, |_, _| true);
}

// --- Isolation and combination -----------------------------------------------------------

#[test]
fn pod_no_policy_selects_is_not_isolated_in_either_direction() {
    let topology = xyz();
    let policies = [policy("x", "deny-all", sel(&[("pod", "a")])).types(BOTH)];
    let engine = Engine::new(&topology, &policies);
    let verdict = engine.verdict(edge(&topology, "x/b", "y/b", 80, Tcp));
    assert!(verdict.egress.isolated_by.is_empty() && verdict.ingress.isolated_by.is_empty());
    assert!(verdict.allowed());
}

#[test]
fn ingress_rule_with_no_peers_and_no_ports_admits_everything() {
    let policies = [policy("x", "allow-all", all()).ingress(vec![allow_all()])];
    assert_matrix(&xyz(), &policies, 80, Udp, |_, _| true);
}

#[test]
fn egress_rules_are_ignored_when_policy_types_are_ingress_only() {
    let policies = [policy("x", "p", sel(&[("pod", "a")]))
        .ingress(vec![allow_all()])
        .egress(vec![rule(vec![pods(sel(&[("pod", "b")]))], vec![])])
        .types(INGRESS)];
    assert_matrix(&xyz(), &policies, 80, Tcp, |_, _| true);
}

#[test]
fn ingress_rules_are_ignored_when_policy_types_are_egress_only() {
    let policies = [policy("x", "p", sel(&[("pod", "a")]))
        .ingress(vec![rule(vec![pods(sel(&[("pod", "b")]))], vec![])])
        .types(EGRESS)];
    assert_matrix(&xyz(), &policies, 80, Tcp, |from, _| from != "x/a");
}

#[test]
fn egress_only_policy_leaves_ingress_of_its_subjects_open() {
    let policies = [policy("x", "deny-egress", all()).types(EGRESS)];
    assert_matrix(&xyz(), &policies, 80, Tcp, |from, _| ns(from) != "x");
}

#[test]
fn policies_selecting_the_same_pod_combine_by_union() {
    let policies = [
        x_a(vec![rule(vec![pods(sel(&[("pod", "b")]))], vec![])]),
        policy("x", "all-from-c", all())
            .ingress(vec![rule(vec![pods(sel(&[("pod", "c")]))], vec![])]),
    ];
    assert_matrix(&xyz(), &policies, 80, Tcp, |from, to| match to {
        "x/a" => from == "x/b" || from == "x/c",
        _ if ns(to) == "x" => from == "x/c",
        _ => true,
    });
}

#[test]
fn allow_all_ingress_policy_takes_precedence_over_a_narrower_one() {
    let policies = [
        x_a(vec![rule(
            vec![pods(sel(&[("pod", "b")]))],
            vec![port(Tcp, 80)],
        )]),
        policy("x", "allow-all", sel(&[("pod", "a")])).ingress(vec![allow_all()]),
    ];
    assert_matrix(&xyz(), &policies, 81, Tcp, |_, _| true);
}

#[test]
fn allow_all_egress_policy_takes_precedence_over_a_narrower_one() {
    let policies = [
        policy("x", "to-b", sel(&[("pod", "a")]))
            .egress(vec![rule(
                vec![pods(sel(&[("pod", "b")]))],
                vec![port(Tcp, 80)],
            )])
            .types(EGRESS),
        policy("x", "allow-all", sel(&[("pod", "a")]))
            .egress(vec![allow_all()])
            .types(EGRESS),
    ];
    assert_matrix(&xyz(), &policies, 81, Tcp, |_, _| true);
}

#[test]
fn edge_needs_source_egress_even_when_the_destination_ingress_admits_it() {
    let policies = [
        policy("x", "deny-egress", sel(&[("pod", "a")])).types(EGRESS),
        policy("y", "from-x", sel(&[("pod", "b")]))
            .ingress(vec![rule(vec![namespaces(sel(&[("ns", "x")]))], vec![])]),
    ];
    assert_matrix(&xyz(), &policies, 80, Tcp, |from, to| {
        from != "x/a" && (to != "y/b" || ns(from) == "x")
    });
}

#[test]
fn ingress_and_egress_of_one_pod_are_controlled_independently() {
    let policies = [policy("x", "p", sel(&[("pod", "a")]))
        .ingress(vec![rule(vec![pods(sel(&[("pod", "b")]))], vec![])])
        .egress(vec![rule(vec![pods(sel(&[("pod", "c")]))], vec![])])];
    assert_matrix(&xyz(), &policies, 80, Tcp, |from, to| {
        (to != "x/a" || from == "x/b") && (from != "x/a" || to == "x/c")
    });
}

#[test]
fn egress_to_a_pod_in_another_namespace_needs_both_selectors_to_match() {
    let peer = pods_in(sel(&[("ns", "y")]), sel(&[("pod", "b")]));
    let policies = [policy("x", "p", sel(&[("pod", "a")]))
        .egress(vec![rule(vec![peer], vec![])])
        .types(EGRESS)];
    assert_matrix(&xyz(), &policies, 80, Tcp, |from, to| {
        from != "x/a" || to == "y/b"
    });
}

// --- Ports and protocols -----------------------------------------------------------------

#[test]
fn egress_rule_on_port_80_denies_port_81() {
    let policies =
        [policy("x", "p", sel(&[("pod", "a")])).egress(vec![rule(vec![], vec![port(Tcp, 80)])])];
    let topology = xyz();
    assert_matrix(&topology, &policies, 80, Tcp, |_, to| to != "x/a");
    assert_matrix(&topology, &policies, 81, Tcp, |from, to| {
        from != "x/a" && to != "x/a"
    });
}

#[test]
fn ingress_port_rule_admits_only_the_listed_port() {
    let peer = namespaces(sel(&[("ns", "y")]));
    let policies = [x_a(vec![rule(vec![peer], vec![port(Tcp, 81)])])];
    let topology = xyz();
    assert_matrix(&topology, &policies, 81, Tcp, |from, to| {
        to != "x/a" || ns(from) == "y"
    });
    assert_matrix(&topology, &policies, 80, Tcp, |_, to| to != "x/a");
}

#[test]
fn port_without_number_admits_every_port_of_its_protocol_only() {
    let policies = [x_a(vec![rule(vec![], vec![any_port(Tcp)])])];
    let topology = xyz();
    assert_matrix(&topology, &policies, 80, Tcp, |_, _| true);
    assert_matrix(&topology, &policies, 81, Tcp, |_, _| true);
    assert_matrix(&topology, &policies, 80, Udp, |_, to| to != "x/a");
}

#[test]
fn tcp_rule_does_not_admit_udp_on_the_same_port() {
    let policies = [x_a(vec![rule(vec![], vec![port(Tcp, 80)])])];
    let topology = xyz();
    assert_matrix(&topology, &policies, 80, Tcp, |_, _| true);
    assert_matrix(&topology, &policies, 80, Udp, |_, to| to != "x/a");
}

#[test]
fn sctp_rule_is_not_treated_as_tcp() {
    let policies = [x_a(vec![rule(vec![], vec![port(Sctp, 80)])])];
    let topology = xyz();
    assert_matrix(&topology, &policies, 80, Sctp, |_, _| true);
    assert_matrix(&topology, &policies, 80, Tcp, |_, to| to != "x/a");
}

#[test]
fn udp_rule_admits_udp_and_not_tcp_or_sctp() {
    let policies = [x_a(vec![rule(vec![], vec![port(Udp, 81)])])];
    let topology = xyz();
    assert_matrix(&topology, &policies, 81, Udp, |_, _| true);
    assert_matrix(&topology, &policies, 81, Tcp, |_, to| to != "x/a");
    assert_matrix(&topology, &policies, 81, Sctp, |_, to| to != "x/a");
}

#[test]
fn end_port_admits_every_port_of_the_inclusive_range() {
    let policies = [x_a(vec![rule(vec![], vec![port_range(Tcp, 80, 81)])])];
    let topology = xyz();
    assert_matrix(&topology, &policies, 80, Tcp, |_, _| true);
    assert_matrix(&topology, &policies, 81, Tcp, |_, _| true);
    assert_matrix(&topology, &policies, 80, Udp, |_, to| to != "x/a");
}

#[test]
fn end_port_range_excludes_ports_below_its_start() {
    let policies = [x_a(vec![rule(vec![], vec![port_range(Tcp, 81, 90)])])];
    let topology = xyz();
    let engine = Engine::new(&topology, &policies);
    let to_x_a = |number| engine.allows(edge(&topology, "y/b", "x/a", number, Tcp));
    assert_eq!(
        [80, 81, 85, 90, 91].map(to_x_a),
        [false, true, true, true, false]
    );
}

#[test]
fn end_port_below_port_is_read_as_the_single_port() {
    let policies = [x_a(vec![rule(vec![], vec![port_range(Tcp, 81, 80)])])];
    let topology = xyz();
    let engine = Engine::new(&topology, &policies);
    let to_x_a = |number| engine.allows(edge(&topology, "y/b", "x/a", number, Tcp));
    assert_eq!([80, 81, 82].map(to_x_a), [false, true, false]);
}

#[test]
fn named_port_on_ingress_admits_only_the_port_of_that_name() {
    let policies = [x_a(vec![rule(vec![], vec![named(Tcp, "serve-81-tcp")])])];
    let topology = xyz();
    assert_matrix(&topology, &policies, 81, Tcp, |_, _| true);
    assert_matrix(&topology, &policies, 80, Tcp, |_, to| to != "x/a");
    assert_matrix(&topology, &policies, 81, Udp, |_, to| to != "x/a");
}

#[test]
fn named_port_from_a_namespace_admits_that_namespace_on_that_port_only() {
    let peer = namespaces(sel(&[("ns", "y")]));
    let policies = [x_a(vec![rule(
        vec![peer],
        vec![named(Tcp, "serve-80-tcp")],
    )])];
    let topology = xyz();
    assert_matrix(&topology, &policies, 80, Tcp, |from, to| {
        to != "x/a" || ns(from) == "y"
    });
    assert_matrix(&topology, &policies, 81, Tcp, |_, to| to != "x/a");
}

#[test]
fn named_port_on_egress_admits_only_the_port_of_that_name() {
    let policies = [policy("x", "p", sel(&[("pod", "a")]))
        .egress(vec![rule(vec![], vec![named(Udp, "serve-80-udp")])])];
    let topology = xyz();
    assert_matrix(&topology, &policies, 80, Udp, |_, to| to != "x/a");
    assert_matrix(&topology, &policies, 80, Tcp, |from, to| {
        from != "x/a" && to != "x/a"
    });
}

#[test]
fn named_port_with_another_protocol_than_the_container_port_matches_nothing() {
    let policies = [x_a(vec![rule(vec![], vec![named(Udp, "serve-80-tcp")])])];
    let topology = xyz();
    assert_matrix(&topology, &policies, 80, Tcp, |_, to| to != "x/a");
    assert_matrix(&topology, &policies, 80, Udp, |_, to| to != "x/a");
}

#[test]
fn named_port_no_pod_declares_admits_nothing() {
    let policies = [x_a(vec![rule(vec![], vec![named(Tcp, "no-such-port")])])];
    assert_matrix(&xyz(), &policies, 80, Tcp, |_, to| to != "x/a");
}

/// Two servers name different numbers `http`; a client serves no port at all.
fn http_servers() -> Topology {
    Topology {
        namespaces: vec![namespace("x", &[])],
        pods: vec![
            pod("x/client", &[("role", "client")], "10.0.0.1", vec![]),
            pod(
                "x/web1",
                &[("role", "web")],
                "10.0.0.2",
                vec![serve(8080, Tcp, Some("http"))],
            ),
            pod(
                "x/web2",
                &[("role", "web")],
                "10.0.0.3",
                vec![serve(9090, Tcp, Some("http"))],
            ),
        ],
    }
}

#[test]
fn named_port_on_egress_resolves_against_the_destination_pod() {
    let topology = http_servers();
    let policies = [policy("x", "client", sel(&[("role", "client")]))
        .egress(vec![rule(vec![], vec![named(Tcp, "http")])])];
    let engine = Engine::new(&topology, &policies);
    let from_client = |to, number| engine.allows(edge(&topology, "x/client", to, number, Tcp));
    assert!(from_client("x/web1", 8080) && from_client("x/web2", 9090));
    assert!(!from_client("x/web1", 9090) && !from_client("x/web2", 8080));
}

#[test]
fn named_port_on_ingress_resolves_against_each_subject_separately() {
    let topology = http_servers();
    let policies = [policy("x", "web", sel(&[("role", "web")]))
        .ingress(vec![rule(vec![], vec![named(Tcp, "http")])])];
    let engine = Engine::new(&topology, &policies);
    let to = |dst, number| engine.allows(edge(&topology, "x/client", dst, number, Tcp));
    assert!(to("x/web1", 8080) && to("x/web2", 9090));
    assert!(!to("x/web1", 9090) && !to("x/web2", 8080));
}

// --- ipBlock -------------------------------------------------------------------------------

fn egress_from_x_a(rules: Vec<Rule>) -> [NetworkPolicy; 1] {
    [policy("x", "p", sel(&[("pod", "a")]))
        .egress(rules)
        .types(EGRESS)]
}

#[test]
fn ip_block_admits_the_pod_whose_ip_is_inside_the_cidr() {
    let policies = egress_from_x_a(vec![rule(vec![ip_block("10.0.2.2/32", &[])], vec![])]);
    assert_matrix(&xyz(), &policies, 80, Tcp, |from, to| {
        from != "x/a" || to == "y/b"
    });
}

#[test]
fn ip_block_except_excludes_pods_inside_the_except_range() {
    let block = ip_block("10.0.2.0/24", &["10.0.2.2/32"]);
    let policies = egress_from_x_a(vec![rule(vec![block], vec![])]);
    assert_matrix(&xyz(), &policies, 80, Tcp, |from, to| {
        from != "x/a" || to == "y/a" || to == "y/c"
    });
}

#[test]
fn ip_in_both_cidr_and_except_is_admitted_when_another_rule_covers_it() {
    let policies = egress_from_x_a(vec![
        rule(vec![ip_block("10.0.2.0/24", &["10.0.2.2/32"])], vec![]),
        rule(vec![ip_block("10.0.2.2/32", &[])], vec![]),
    ]);
    assert_matrix(&xyz(), &policies, 80, Tcp, |from, to| {
        from != "x/a" || ns(to) == "y"
    });
}

#[test]
fn ingress_ip_block_matches_the_source_pod_ip() {
    let policies = [x_a(vec![rule(vec![ip_block("10.0.3.0/24", &[])], vec![])])];
    assert_matrix(&xyz(), &policies, 80, Tcp, |from, to| {
        to != "x/a" || ns(from) == "z"
    });
}

/// Pods of both address families, including an IPv4-mapped IPv6 address.
fn dual_stack() -> Topology {
    let web = || vec![serve(80, Tcp, None)];
    Topology {
        namespaces: vec![namespace("x", &[])],
        pods: vec![
            pod("x/v4", &[], "10.0.0.1", web()),
            pod("x/v6", &[], "fd00::1", web()),
            pod("x/v6-other", &[], "fd00::2", web()),
            pod("x/mapped", &[], "::ffff:10.0.0.2", web()),
            pod("x/server", &[("role", "server")], "10.0.0.9", web()),
        ],
    }
}

#[test]
fn ipv4_block_never_matches_ipv6_pods() {
    let policies = [policy("x", "p", sel(&[("role", "server")]))
        .ingress(vec![rule(vec![ip_block("0.0.0.0/0", &[])], vec![])])];
    assert_matrix(&dual_stack(), &policies, 80, Tcp, |from, to| {
        to != "x/server" || from == "x/v4"
    });
}

#[test]
fn ipv6_block_admits_ipv6_pods_outside_its_except_only() {
    let block = ip_block("fd00::/64", &["fd00::2/128"]);
    let policies =
        [policy("x", "p", sel(&[("role", "server")])).ingress(vec![rule(vec![block], vec![])])];
    assert_matrix(&dual_stack(), &policies, 80, Tcp, |from, to| {
        to != "x/server" || from == "x/v6"
    });
}

#[test]
fn cidr_with_too_long_prefix_or_host_bits_matches_without_panicking() {
    assert!(cidr("10.0.0.1/40").contains("10.0.0.1".parse().unwrap()));
    assert!(!cidr("10.0.0.1/40").contains("10.0.0.2".parse().unwrap()));
    assert!(cidr("10.0.0.7/24").contains("10.0.0.200".parse().unwrap()));
    assert!(cidr("::/0").contains("fd00::1".parse().unwrap()));
    assert!(cidr("fd00::1/200").contains("fd00::1".parse().unwrap()));
}

// --- Edges ---------------------------------------------------------------------------------

#[test]
fn pod_to_itself_is_not_an_edge() {
    let topology = xyz();
    let engine = Engine::new(&topology, &[]);
    assert!(engine.edges().iter().all(|edge| edge.src != edge.dst));
    assert_eq!(engine.edges().len(), 9 * 8 * 6);
}

#[test]
fn provided_pods_are_destinations_but_never_sources() {
    let mut topology = xyz();
    topology.pods[0].provided = true;
    let engine = Engine::new(&topology, &[]);
    let edges = engine.edges();
    assert!(edges.iter().all(|edge| edge.src != 0));
    assert!(edges.iter().any(|edge| edge.dst == 0));
}

#[test]
fn edges_come_in_source_destination_and_declared_port_order_without_duplicates() {
    let topology = Topology {
        namespaces: vec![namespace("x", &[])],
        pods: vec![
            pod("x/a", &[], "10.0.0.1", vec![serve(53, Udp, None)]),
            pod(
                "x/b",
                &[],
                "10.0.0.2",
                vec![
                    serve(81, Tcp, None),
                    serve(80, Tcp, None),
                    serve(81, Tcp, Some("again")),
                ],
            ),
        ],
    };
    let engine = Engine::new(&topology, &[]);
    let edges = engine.edges();
    let expected = [
        Edge {
            src: 0,
            dst: 1,
            port: 81,
            protocol: Tcp,
        },
        Edge {
            src: 0,
            dst: 1,
            port: 80,
            protocol: Tcp,
        },
        Edge {
            src: 1,
            dst: 0,
            port: 53,
            protocol: Udp,
        },
    ];
    assert_eq!(edges, expected);
}

// --- Robustness ------------------------------------------------------------------------------

#[test]
fn pod_indices_outside_the_topology_never_panic() {
    let topology = xyz();
    let policies = [
        policy("x", "deny-all", all()).types(BOTH),
        policy("y", "open", all())
            .ingress(vec![allow_all()])
            .egress(vec![allow_all()]),
    ];
    let engine = Engine::new(&topology, &policies);
    let outside = Edge {
        src: 999,
        dst: usize::MAX,
        port: 80,
        protocol: Tcp,
    };
    assert!(engine.verdict(outside).allowed());
    let into_x = Edge {
        src: 999,
        dst: 0,
        port: 80,
        protocol: Tcp,
    };
    assert!(!engine.allows(into_x));
    let into_y = Edge {
        src: 999,
        dst: index_of(&topology, "y/a"),
        port: 80,
        protocol: Tcp,
    };
    assert!(engine.allows(into_y));
    assert!(engine.explain(outside).to_string().contains("pod #999"));
    assert!(engine.policies_selecting(999).is_empty() && engine.subjects(7).is_empty());
}

#[test]
fn verdicts_are_the_same_whatever_the_policy_order() {
    let topology = xyz();
    let mut policies = vec![
        x_a(vec![rule(
            vec![pods(sel(&[("pod", "b")]))],
            vec![port(Tcp, 80)],
        )]),
        policy("x", "deny-egress", all()).types(EGRESS),
        policy("y", "from-x", all())
            .ingress(vec![rule(vec![namespaces(sel(&[("ns", "x")]))], vec![])]),
    ];
    let before: Vec<bool> = {
        let engine = Engine::new(&topology, &policies);
        engine
            .edges()
            .into_iter()
            .map(|e| engine.allows(e))
            .collect()
    };
    policies.reverse();
    let engine = Engine::new(&topology, &policies);
    let after: Vec<bool> = engine
        .edges()
        .into_iter()
        .map(|e| engine.allows(e))
        .collect();
    assert_eq!(before, after);
}

#[test]
fn provided_pods_are_still_subjects_and_peers() {
    let mut topology = xyz();
    let x_b = index_of(&topology, "x/b");
    topology.pods[x_b].provided = true;
    let policies = [
        x_a(vec![rule(vec![pods(sel(&[("pod", "b")]))], vec![])]),
        policy("x", "b", sel(&[("pod", "b")])),
    ];
    let engine = Engine::new(&topology, &policies);
    assert!(engine.allows(edge(&topology, "x/b", "x/a", 80, Tcp)));
    assert!(!engine.allows(edge(&topology, "x/a", "x/b", 80, Tcp)));
}

#[test]
fn empty_topology_without_policies_has_no_edges_and_no_findings() {
    let topology = Topology::default();
    let engine = Engine::new(&topology, &[]);
    assert!(engine.edges().is_empty());
    assert!(netpol_harness::engine::lint(&engine, &[]).is_empty());
}

#[test]
fn selectors_and_ip_blocks_print_in_kubectl_syntax() {
    let mut selector = expr("tier", Operator::In, &["back", "data"]);
    selector.match_labels = labels(&[("app", "web")]);
    selector
        .match_expressions
        .extend(expr("legacy", Operator::DoesNotExist, &[]).match_expressions);
    assert_eq!(
        selector.to_string(),
        "{app=web,tier in (back,data),!legacy}"
    );
    assert_eq!(all().to_string(), "{}");
    let netpol_harness::engine::Peer::IpBlock(block) = ip_block("10.0.0.0/16", &["10.0.1.0/24"])
    else {
        unreachable!("ip_block builds an ipBlock peer")
    };
    assert_eq!(block.to_string(), "ipBlock 10.0.0.0/16 except 10.0.1.0/24");
}
