use super::*;
use crate::engine::{Cidr, LabelSelector, Labels, Namespace, Origin, Pod};
use netpol_probes::spec::PortSpec;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn pod(namespace: &str, name: &str, ip: &str, ports: &[(u16, Protocol, Option<&str>)]) -> Pod {
    Pod {
        name: name.into(),
        namespace: namespace.into(),
        labels: labels(&[("app", name)]),
        ip: ip.parse().unwrap(),
        provided: false,
        ports: ports
            .iter()
            .map(|(port, protocol, name)| PortSpec {
                port: *port,
                protocol: *protocol,
                name: name.map(str::to_owned),
                check: None,
            })
            .collect(),
    }
}

fn topology() -> Topology {
    let ns = |name: &str, team: &str| Namespace {
        name: name.into(),
        labels: labels(&[(crate::engine::NAMESPACE_NAME_LABEL, name), ("team", team)]),
    };
    Topology {
        namespaces: vec![ns("x", "blue"), ns("y", "red")],
        pods: vec![
            pod("x", "a", "10.244.0.1", &[(80, Protocol::Tcp, Some("http"))]),
            pod(
                "x",
                "b",
                "10.244.0.2",
                &[(8080, Protocol::Tcp, Some("http"))],
            ),
            pod("y", "a", "10.244.1.1", &[(53, Protocol::Udp, Some("dns"))]),
            pod("y", "b", "10.244.1.2", &[(81, Protocol::Tcp, None)]),
        ],
    }
}

fn select(app: &str) -> LabelSelector {
    LabelSelector {
        match_labels: labels(&[("app", app)]),
        match_expressions: vec![],
    }
}

fn policy(ingress: Vec<Rule>, egress: Vec<Rule>) -> NetworkPolicy {
    NetworkPolicy {
        name: "p".into(),
        namespace: "x".into(),
        pod_selector: select("a"),
        isolates_ingress: true,
        isolates_egress: !egress.is_empty(),
        ingress,
        egress,
        origin: Origin::default(),
    }
}

fn compiled(policies: &[NetworkPolicy], faults: &Faults) -> String {
    let topology = topology();
    compile(&Input {
        table: "nph-test0",
        topology: &topology,
        policies,
        faults,
        dns: None,
        services: &[],
    })
}

fn set_elements(script: &str, set: &str) -> Option<String> {
    let start = script.find(&format!("set {set} {{"))?;
    let body = &script[start..start + script[start..].find("  }\n")?];
    Some(
        body.split("elements = { ")
            .nth(1)
            .map_or("", |e| e.trim_end_matches(" }\n"))
            .to_owned(),
    )
}

fn pods_peer(ns: Option<LabelSelector>, pod: Option<LabelSelector>) -> Peer {
    Peer::Pods {
        namespace_selector: ns,
        pod_selector: pod,
    }
}

fn team(team: &str) -> LabelSelector {
    LabelSelector {
        match_labels: labels(&[("team", team)]),
        match_expressions: vec![],
    }
}

#[test]
fn no_policies_isolate_nothing_and_add_no_rules() {
    let script = compiled(&[], &Faults::default());
    assert_eq!(
        set_elements(&script, "ingress_isolated").as_deref(),
        Some("")
    );
    assert_eq!(
        set_elements(&script, "egress_isolated").as_deref(),
        Some("")
    );
    assert!(!script.contains("rule 0"));
}

#[test]
fn pod_selector_peer_without_namespace_selector_stays_in_the_policy_namespace() {
    let rule = Rule {
        peers: vec![pods_peer(None, Some(select("b")))],
        ports: vec![],
    };
    let script = compiled(&[policy(vec![rule], vec![])], &Faults::default());
    assert_eq!(
        set_elements(&script, "ingress_isolated").unwrap(),
        "10.244.0.1"
    );
    assert_eq!(
        set_elements(&script, "p0_ingress0_peers").unwrap(),
        "10.244.0.2"
    );
}

#[test]
fn ignore_namespace_fault_matches_pod_selector_peers_in_every_namespace() {
    let rule = Rule {
        peers: vec![pods_peer(None, Some(select("b")))],
        ports: vec![],
    };
    let faults = Faults {
        ignore_namespace: true,
        ..Faults::default()
    };
    let script = compiled(&[policy(vec![rule], vec![])], &faults);
    assert_eq!(
        set_elements(&script, "p0_ingress0_peers").unwrap(),
        "10.244.0.2, 10.244.1.2"
    );
}

#[test]
fn namespace_and_pod_selector_in_one_peer_must_both_match() {
    let peer = pods_peer(Some(team("red")), Some(select("a")));
    let rule = Rule {
        peers: vec![peer],
        ports: vec![],
    };
    let script = compiled(&[policy(vec![rule.clone()], vec![])], &Faults::default());
    assert_eq!(
        set_elements(&script, "p0_ingress0_peers").unwrap(),
        "10.244.1.1"
    );
    let faults = Faults {
        selectors_or: true,
        ..Faults::default()
    };
    let script = compiled(&[policy(vec![rule], vec![])], &faults);
    assert_eq!(
        set_elements(&script, "p0_ingress0_peers").unwrap(),
        "10.244.0.1, 10.244.1.1-10.244.1.2"
    );
}

#[test]
fn ip_block_excludes_its_except_ranges() {
    let cidr = |s: &str, prefix| Cidr {
        addr: s.parse().unwrap(),
        prefix,
    };
    let block = IpBlock {
        cidr: cidr("192.0.2.0", 24),
        except: vec![cidr("192.0.2.128", 25), cidr("192.0.2.16", 28)],
    };
    let rule = Rule {
        peers: vec![Peer::IpBlock(block)],
        ports: vec![],
    };
    let script = compiled(&[policy(vec![], vec![rule.clone()])], &Faults::default());
    assert_eq!(
        set_elements(&script, "p0_egress0_peers").unwrap(),
        "192.0.2.0-192.0.2.15, 192.0.2.32-192.0.2.127"
    );
    let faults = Faults {
        ignore_except: true,
        ..Faults::default()
    };
    let script = compiled(&[policy(vec![], vec![rule])], &faults);
    assert_eq!(
        set_elements(&script, "p0_egress0_peers").unwrap(),
        "192.0.2.0-192.0.2.255"
    );
}

#[test]
fn named_port_resolves_against_each_destination_pod() {
    let port = PolicyPort {
        protocol: Protocol::Tcp,
        port: Some(PortRef::Name("http".into())),
        end_port: None,
    };
    let peers = vec![pods_peer(Some(LabelSelector::default()), None)];
    let rule = Rule {
        peers,
        ports: vec![port],
    };
    let script = compiled(&[policy(vec![], vec![rule])], &Faults::default());
    assert!(
        script.contains("ip daddr . th dport { 10.244.0.1 . 80, 10.244.0.2 . 8080 }"),
        "{script}"
    );
    let faults = Faults {
        no_named_ports: true,
        ..Faults::default()
    };
    let script = compiled(&[policy(vec![], vec![Rule::default()])], &faults);
    assert!(!script.contains("th dport"), "{script}");
}

#[test]
fn end_port_becomes_a_port_range() {
    let port = PolicyPort {
        protocol: Protocol::Udp,
        port: Some(PortRef::Number(5000)),
        end_port: Some(5010),
    };
    let rule = Rule {
        peers: vec![],
        ports: vec![port],
    };
    let script = compiled(&[policy(vec![rule.clone()], vec![])], &Faults::default());
    assert!(
        script.contains("meta l4proto udp th dport 5000-5010 return"),
        "{script}"
    );
    let faults = Faults {
        ignore_endport: true,
        ..Faults::default()
    };
    let script = compiled(&[policy(vec![rule], vec![])], &faults);
    assert!(
        script.contains("meta l4proto udp th dport 5000 return"),
        "{script}"
    );
}

#[test]
fn a_rule_whose_peers_match_nothing_allows_nothing() {
    let rule = Rule {
        peers: vec![pods_peer(None, Some(select("nobody")))],
        ports: vec![],
    };
    let script = compiled(&[policy(vec![rule], vec![])], &Faults::default());
    assert!(!script.contains("rule 0"), "{script}");
    assert_eq!(
        set_elements(&script, "ingress_isolated").unwrap(),
        "10.244.0.1"
    );
}

#[test]
fn policy_types_without_egress_do_not_isolate_egress() {
    let mut p = policy(vec![], vec![Rule::default()]);
    p.isolates_egress = false;
    let script = compiled(&[p], &Faults::default());
    assert_eq!(set_elements(&script, "egress_isolated").unwrap(), "");
}

#[test]
fn no_ingress_fault_leaves_ingress_unisolated() {
    let faults = Faults {
        no_ingress: true,
        ..Faults::default()
    };
    let script = compiled(&[policy(vec![], vec![])], &faults);
    assert_eq!(set_elements(&script, "ingress_isolated").unwrap(), "");
}

#[test]
fn ranges_merge_and_subtract() {
    let r = |a: u32, b: u32| Range { first: a, last: b };
    assert_eq!(
        normalize(vec![r(5, 9), r(1, 3), r(4, 4), r(20, 30)]),
        vec![r(1, 9), r(20, 30)]
    );
    assert_eq!(
        subtract(r(0, 10), &[r(0, 2), r(5, 5)]),
        vec![r(3, 4), r(6, 10)]
    );
    assert_eq!(subtract(r(0, 10), &[r(0, 10)]), vec![]);
    assert_eq!(subtract(r(0, u32::MAX), &[r(10, u32::MAX)]), vec![r(0, 9)]);
}

#[test]
fn fault_names_parse_and_print_back() {
    let faults: Faults = "ignore-ports, late-enforcement=1500".parse().unwrap();
    assert!(faults.ignore_ports);
    assert_eq!(faults.names(), ["ignore-ports", "late-enforcement=1500"]);
    assert!("no-such-fault".parse::<Faults>().is_err());
}

#[test]
fn only_policy_before_dnat_needs_probes_through_service_addresses() {
    for name in Faults::NAMES {
        let faults: Faults = name.replace("=MS", "=10").parse().unwrap();
        let expected = if name == "policy-before-dnat" {
            Via::Service
        } else {
            Via::Pod
        };
        assert_eq!(faults.shown_via(), expected, "{name}");
    }
    let both: Faults = "no-egress,policy-before-dnat".parse().unwrap();
    assert_eq!(both.shown_via(), Via::Service);
    assert_eq!(Faults::default().shown_via(), Via::Pod);
}

#[test]
#[ignore = "prints a sample script for manual nft checks"]
fn print_sample_script() {
    let topology = topology();
    let port = |p: PortRef| PolicyPort {
        protocol: Protocol::Tcp,
        port: Some(p),
        end_port: None,
    };
    let rule = Rule {
        peers: vec![
            pods_peer(Some(team("red")), Some(select("a"))),
            Peer::IpBlock(IpBlock {
                cidr: Cidr {
                    addr: "192.0.2.0".parse().unwrap(),
                    prefix: 24,
                },
                except: vec![Cidr {
                    addr: "192.0.2.128".parse().unwrap(),
                    prefix: 25,
                }],
            }),
        ],
        ports: vec![
            port(PortRef::Name("http".into())),
            port(PortRef::Number(81)),
        ],
    };
    let policies = [policy(vec![rule.clone()], vec![rule, Rule::default()])];
    let faults = Faults {
        drop_dns_tcp: true,
        default_allow_udp: true,
        ..Faults::default()
    };
    let dns = Some(DnsService {
        service_ip: "10.96.0.10".parse().unwrap(),
        pod_ip: "10.244.1.1".parse().unwrap(),
    });
    let input = Input {
        table: "nph-test0",
        topology: &topology,
        policies: &policies,
        faults: &faults,
        dns,
        services: &[],
    };
    println!("{}", replace_script(&input));
}
