//! Invariants of NetworkPolicy semantics, checked on random synthetic clusters, and a
//! differential test against the reference engine.

use crate::builders::*;
use crate::reference;
use netpol_harness::engine::{
    Direction, DirectionVerdict, Edge, Engine, NetworkPolicy, Operator, Peer, PortRef, Topology,
    lint,
};
use netpol_harness::synth::synthetic;
use proptest::prelude::*;

/// A random cluster: up to 24 pods in up to 4 namespaces under up to 10 policies.
fn cluster() -> impl Strategy<Value = (Topology, Vec<NetworkPolicy>)> {
    (0usize..24, 1usize..5, 0usize..10, any::<u64>())
        .prop_map(|(pods, namespaces, policies, seed)| synthetic(pods, namespaces, policies, seed))
}

/// Every edge, plus for each pair of pods each port number the destination serves over every
/// protocol and an unserved port, so that verdicts where a protocol or a port does not match
/// what the destination declares are compared too.
fn probe_edges(engine: &Engine<'_>) -> Vec<Edge> {
    let pods = &engine.topology().pods;
    let mut edges = Vec::new();
    for src in 0..pods.len() {
        for dst in (0..pods.len()).filter(|&dst| dst != src) {
            let numbers = pods[dst].ports.iter().map(|p| p.port).chain([7]);
            for port in numbers {
                let with = |protocol| Edge {
                    src,
                    dst,
                    port,
                    protocol,
                };
                edges.extend([Tcp, Udp, Sctp].map(with));
            }
        }
    }
    edges
}

/// Policies that admit everything in both directions, one per namespace.
fn allow_all_policies(topology: &Topology) -> Vec<NetworkPolicy> {
    let namespaces = topology.namespaces.iter().map(|n| n.name.as_str());
    namespaces
        .map(|ns| {
            policy(ns, "allow-all", all())
                .ingress(vec![allow_all()])
                .egress(vec![allow_all()])
        })
        .collect()
}

/// Policies that isolate every pod in both directions and admit nothing, one per namespace.
fn deny_all_policies(topology: &Topology) -> Vec<NetworkPolicy> {
    let namespaces = topology.namespaces.iter().map(|n| n.name.as_str());
    let both = [Direction::Ingress, Direction::Egress];
    namespaces
        .map(|ns| policy(ns, "deny-all", all()).types(&both))
        .collect()
}

fn explicitly_allows(side: &DirectionVerdict) -> bool {
    !side.isolated_by.is_empty() && !side.allowed_by.is_empty()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn engine_agrees_with_the_reference_implementation((topology, policies) in cluster()) {
        let engine = Engine::new(&topology, &policies);
        for edge in probe_edges(&engine) {
            let expected = reference::verdict(&topology, &policies, edge);
            let verdict = engine.verdict(edge);
            prop_assert_eq!(&verdict, &expected, "{}", engine.explain(edge));
            prop_assert_eq!(engine.allows(edge), expected.allowed());
        }
    }

    #[test]
    fn a_pod_no_policy_selects_allows_everything_in_both_directions(
        (topology, policies) in cluster()
    ) {
        let engine = Engine::new(&topology, &policies);
        for edge in probe_edges(&engine) {
            for direction in Direction::BOTH {
                if engine.policies_selecting(edge.subject(direction)).is_empty() {
                    let side = engine.side(direction, edge);
                    prop_assert!(side.isolated_by.is_empty() && side.allows());
                }
            }
        }
    }

    #[test]
    fn verdicts_do_not_depend_on_policy_order((topology, policies) in cluster()) {
        let engine = Engine::new(&topology, &policies);
        let mut reversed = policies.clone();
        reversed.reverse();
        let other = Engine::new(&topology, &reversed);
        let last = policies.len().saturating_sub(1);
        for edge in probe_edges(&engine) {
            prop_assert_eq!(engine.allows(edge), other.allows(edge));
            for direction in Direction::BOTH {
                let subject = edge.subject(direction);
                let mut isolators: Vec<usize> =
                    other.isolated_by(subject, direction).iter().map(|p| last - p).collect();
                isolators.sort_unstable();
                prop_assert_eq!(engine.isolated_by(subject, direction), &isolators[..]);
            }
        }
    }

    #[test]
    fn policies_combine_by_union_per_direction(
        (topology, policies) in cluster(),
        split in any::<prop::sample::Index>(),
    ) {
        let at = split.index(policies.len() + 1);
        let (first, second) = policies.split_at(at);
        let whole = Engine::new(&topology, &policies);
        let (one, two) = (Engine::new(&topology, first), Engine::new(&topology, second));
        for edge in probe_edges(&whole) {
            for direction in Direction::BOTH {
                let (a, b) = (one.side(direction, edge), two.side(direction, edge));
                let open = a.isolated_by.is_empty() && b.isolated_by.is_empty();
                let expected = open || explicitly_allows(&a) || explicitly_allows(&b);
                prop_assert_eq!(whole.side_allows(direction, edge), expected);
            }
        }
    }

    #[test]
    fn adding_policies_never_revokes_what_an_isolated_side_already_allows(
        (topology, policies) in cluster(),
        split in any::<prop::sample::Index>(),
    ) {
        let at = split.index(policies.len() + 1);
        let whole = Engine::new(&topology, &policies);
        let part = Engine::new(&topology, &policies[..at]);
        for edge in probe_edges(&whole) {
            for direction in Direction::BOTH {
                if explicitly_allows(&part.side(direction, edge)) {
                    prop_assert!(whole.side_allows(direction, edge));
                }
            }
        }
    }

    #[test]
    fn ingress_and_egress_isolate_independently((topology, policies) in cluster()) {
        let engine = Engine::new(&topology, &policies);
        for direction in Direction::BOTH {
            let mut only = policies.clone();
            for policy in &mut only {
                match direction {
                    Direction::Ingress => policy.isolates_egress = false,
                    Direction::Egress => policy.isolates_ingress = false,
                }
            }
            let other = Engine::new(&topology, &only);
            for edge in probe_edges(&engine) {
                prop_assert_eq!(engine.side(direction, edge), other.side(direction, edge));
                prop_assert!(other.side_allows(direction.opposite(), edge));
            }
        }
    }

    #[test]
    fn allow_all_in_both_directions_allows_every_edge((topology, mut policies) in cluster()) {
        policies.extend(allow_all_policies(&topology));
        let engine = Engine::new(&topology, &policies);
        for edge in probe_edges(&engine) {
            prop_assert!(engine.allows(edge), "{}", engine.explain(edge));
        }
    }

    #[test]
    fn deny_all_alone_denies_every_edge((topology, _) in cluster()) {
        let policies = deny_all_policies(&topology);
        let engine = Engine::new(&topology, &policies);
        for edge in probe_edges(&engine) {
            prop_assert!(!engine.allows(edge));
        }
    }

    #[test]
    fn with_deny_all_added_only_edges_both_sides_explicitly_allow_remain(
        (topology, mut policies) in cluster()
    ) {
        let before = Engine::new(&topology, &policies);
        let expected: Vec<bool> = probe_edges(&before)
            .into_iter()
            .map(|edge| {
                let verdict = before.verdict(edge);
                explicitly_allows(&verdict.egress) && explicitly_allows(&verdict.ingress)
            })
            .collect();
        let edges = probe_edges(&before);
        policies.extend(deny_all_policies(&topology));
        let after = Engine::new(&topology, &policies);
        let allowed: Vec<bool> = edges.into_iter().map(|edge| after.allows(edge)).collect();
        prop_assert_eq!(allowed, expected);
    }

    #[test]
    fn edges_exclude_self_and_provided_sources_and_cover_every_served_port(
        (topology, policies) in cluster()
    ) {
        let engine = Engine::new(&topology, &policies);
        let edges = engine.edges();
        for edge in &edges {
            prop_assert!(edge.src != edge.dst && !topology.pods[edge.src].provided);
            let served = &topology.pods[edge.dst].ports;
            prop_assert!(served.iter().any(|p| p.port == edge.port && p.protocol == edge.protocol));
        }
        let mut sorted = edges.clone();
        sorted.sort_by_key(|e| (e.src, e.dst));
        prop_assert_eq!(sorted, edges);
    }

    #[test]
    fn malformed_models_never_panic(
        (topology, policies) in cluster(),
        mangle in any::<u64>(),
    ) {
        let policies = mangled(policies, mangle);
        let engine = Engine::new(&topology, &policies);
        let pods = topology.pods.len();
        let strays = [
            Edge { src: pods, dst: 0, port: 0, protocol: Sctp },
            Edge { src: 0, dst: pods + 3, port: u16::MAX, protocol: Udp },
            Edge { src: usize::MAX, dst: usize::MAX, port: 80, protocol: Tcp },
        ];
        for edge in probe_edges(&engine).into_iter().chain(strays) {
            let _ = engine.explain(edge).to_string();
            let expected = reference::verdict(&topology, &policies, edge).allowed();
            prop_assert_eq!(engine.allows(edge), expected);
        }
        let _ = lint(&engine, &[]);
    }
}

/// Breaks what validation would reject: endPort below port and on named ports, over-long
/// prefixes, `In` without values, peers with neither selector, unknown namespaces.
fn mangled(mut policies: Vec<NetworkPolicy>, seed: u64) -> Vec<NetworkPolicy> {
    for (i, policy) in policies.iter_mut().enumerate() {
        let pick = (seed >> (i % 60)) & 0xf;
        if pick == 0 {
            policy.namespace = "nowhere".into();
        }
        let rules = policy.ingress.iter_mut().chain(policy.egress.iter_mut());
        for rule in rules {
            for port in &mut rule.ports {
                match (&port.port, pick % 3) {
                    (Some(PortRef::Number(n)), 0) => port.end_port = Some(n.saturating_sub(5)),
                    (Some(PortRef::Name(_)), 1) => port.end_port = Some(1),
                    _ => {}
                }
            }
            for peer in &mut rule.peers {
                match (peer, pick % 4) {
                    (Peer::IpBlock(block), 0) => block.cidr.prefix = 200,
                    (
                        Peer::Pods {
                            namespace_selector,
                            pod_selector,
                        },
                        1,
                    ) => {
                        *namespace_selector = None;
                        *pod_selector = None;
                    }
                    (
                        Peer::Pods {
                            pod_selector: Some(selector),
                            ..
                        },
                        2,
                    ) => {
                        selector
                            .match_expressions
                            .push(netpol_harness::engine::Requirement {
                                key: "app".into(),
                                operator: Operator::In,
                                values: Vec::new(),
                            });
                    }
                    _ => {}
                }
            }
        }
    }
    policies
}

/// Larger clusters than the property tests draw, so that selectors meet more namespaces and
/// pods meet more policies at once.
#[test]
fn engine_agrees_with_the_reference_implementation_on_larger_clusters() {
    for seed in [1, 42] {
        let (topology, policies) = synthetic(60, 6, 30, seed);
        let engine = Engine::new(&topology, &policies);
        for edge in probe_edges(&engine) {
            let expected = reference::verdict(&topology, &policies, edge);
            assert_eq!(
                engine.verdict(edge),
                expected,
                "seed {seed}: {}",
                engine.explain(edge)
            );
        }
    }
}

#[test]
fn synthetic_clusters_are_deterministic_per_seed() {
    assert_eq!(synthetic(50, 4, 20, 9), synthetic(50, 4, 20, 9));
    assert_ne!(synthetic(50, 4, 20, 9), synthetic(50, 4, 20, 10));
}

#[test]
fn synthetic_clusters_exercise_every_part_of_the_model() {
    let (topology, policies) = synthetic(1000, 20, 200, 2);
    let rules = || {
        policies
            .iter()
            .flat_map(|p| p.ingress.iter().chain(&p.egress))
    };
    let ports = || rules().flat_map(|r| &r.ports);
    let peers = || rules().flat_map(|r| &r.peers);
    let selectors = || {
        let of_peers = peers().flat_map(|peer| match peer {
            Peer::Pods {
                namespace_selector,
                pod_selector,
            } => {
                vec![namespace_selector.as_ref(), pod_selector.as_ref()]
            }
            Peer::IpBlock(_) => vec![],
        });
        of_peers
            .flatten()
            .chain(policies.iter().map(|p| &p.pod_selector))
    };
    for operator in [
        Operator::In,
        Operator::NotIn,
        Operator::Exists,
        Operator::DoesNotExist,
    ] {
        let uses = |s: &netpol_harness::engine::LabelSelector| {
            s.match_expressions.iter().any(|r| r.operator == operator)
        };
        assert!(selectors().any(uses), "no {operator:?}");
    }
    assert!(selectors().any(|s| s.match_expressions.is_empty() && s.match_labels.is_empty()));
    assert!(selectors().any(|s| !s.match_expressions.is_empty() && !s.match_labels.is_empty()));
    assert!(
        topology.pods.iter().any(|p| p.ip.is_ipv6()) && topology.pods.iter().any(|p| p.provided)
    );
    let block = |v6: bool| {
        let fits = |b: &netpol_harness::engine::IpBlock| {
            b.cidr.addr.is_ipv6() == v6 && !b.except.is_empty()
        };
        peers().any(|p| matches!(p, Peer::IpBlock(b) if fits(b)))
    };
    assert!(block(true) && block(false));
    assert!(ports().any(|p| p.end_port.is_some()));
    assert!(ports().any(|p| matches!(p.port, Some(PortRef::Name(_)))));
    assert!(ports().any(|p| p.port.is_none()));
    assert!(
        [Tcp, Udp, Sctp]
            .iter()
            .all(|&protocol| ports().any(|p| p.protocol == protocol))
    );
    assert!(rules().any(|r| r.peers.is_empty()) && rules().any(|r| r.ports.is_empty()));
    let types = |ingress, egress| {
        policies
            .iter()
            .any(|p| p.isolates_ingress == ingress && p.isolates_egress == egress)
    };
    assert!(types(true, false) && types(false, true) && types(true, true));
    assert!(
        policies
            .iter()
            .any(|p| !p.isolates_egress && !p.egress.is_empty())
    );
}
