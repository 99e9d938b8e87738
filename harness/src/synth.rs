//! A deterministic generator of synthetic clusters and policy sets, for benchmarks and
//! property tests.
//!
//! The same arguments always give the same output, on every platform: randomness comes from
//! a small SplitMix64 generator seeded by the caller. The output exercises every part of the
//! model: `matchLabels` and every `matchExpressions` operator, empty selectors, namespace
//! selectors (with and without a pod selector, and `{}`), `ipBlock`s with `except` in both
//! address families, numeric, ranged (`endPort`) and named ports over TCP, UDP and SCTP,
//! ingress and egress rules, empty peer and port lists, and every combination of policy
//! types, including rules in a direction the policy does not isolate.

use crate::engine::model::{
    Cidr, IpBlock, LabelSelector, Labels, NAMESPACE_NAME_LABEL, Namespace, NetworkPolicy, Operator,
    Origin, Peer, Pod, PolicyPort, PortRef, Requirement, Rule, Topology,
};
use netpol_probes::spec::{PortSpec, Protocol};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const APPS: [&str; 6] = ["web", "api", "db", "cache", "queue", "auth"];
const TIERS: [&str; 3] = ["front", "back", "data"];
const ENVS: [&str; 3] = ["prod", "staging", "dev"];
const TEAMS: [&str; 4] = ["red", "blue", "green", "gold"];
/// The ports pods serve: number and protocol. Each is named `serve-<port>-<proto>`.
const PORTS: [(u16, Protocol); 8] = [
    (80, Protocol::Tcp),
    (81, Protocol::Tcp),
    (80, Protocol::Udp),
    (53, Protocol::Udp),
    (443, Protocol::Tcp),
    (5432, Protocol::Tcp),
    (9090, Protocol::Tcp),
    (81, Protocol::Sctp),
];

/// A synthetic topology of `pods` pods spread over `namespaces` namespaces, and `policies`
/// policies over them, all derived from `seed`.
///
/// Pod 0 (when there is one) is a provided `k8s-app=kube-dns` pod serving 53/UDP; about one
/// pod in eight has an IPv6 address. Zero namespaces is read as one.
pub fn synthetic(
    pods: usize,
    namespaces: usize,
    policies: usize,
    seed: u64,
) -> (Topology, Vec<NetworkPolicy>) {
    let mut rng = Rng::new(seed);
    let namespaces: Vec<Namespace> = (0..namespaces.max(1))
        .map(|i| synth_namespace(&mut rng, i))
        .collect();
    let pods = (0..pods)
        .map(|i| synth_pod(&mut rng, i, &namespaces))
        .collect();
    let topology = Topology { namespaces, pods };
    let policies = (0..policies)
        .map(|i| synth_policy(&mut rng, i, &topology))
        .collect();
    (topology, policies)
}

/// SplitMix64: tiny, fast, and good enough to spread choices evenly.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound`; 0 when `bound` is 0.
    fn below(&mut self, bound: usize) -> usize {
        match u64::try_from(bound) {
            Ok(0) | Err(_) => 0,
            Ok(bound) => usize::try_from(self.next() % bound).unwrap_or(0),
        }
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn labels<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Labels {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn synth_namespace(rng: &mut Rng, index: usize) -> Namespace {
    let name = format!("ns-{index}");
    let mut labels = labels([(NAMESPACE_NAME_LABEL, name.as_str())]);
    labels.insert("team".to_owned(), rng.pick(&TEAMS).to_string());
    if rng.chance(60) {
        labels.insert("env".to_owned(), rng.pick(&ENVS).to_string());
    }
    Namespace { name, labels }
}

fn synth_pod(rng: &mut Rng, index: usize, namespaces: &[Namespace]) -> Pod {
    let namespace = rng.pick(namespaces).name.clone();
    let ip = pod_ip(rng, index);
    if index == 0 {
        let dns = PortSpec {
            port: 53,
            protocol: Protocol::Udp,
            name: Some("dns".into()),
            check: None,
        };
        let labels = labels([("k8s-app", "kube-dns")]);
        return Pod {
            name: "dns-0".into(),
            namespace,
            labels,
            ip,
            provided: true,
            ports: vec![dns],
        };
    }
    let mut labels = labels([("app", *rng.pick(&APPS))]);
    if rng.chance(70) {
        labels.insert("tier".into(), rng.pick(&TIERS).to_string());
    }
    if rng.chance(40) {
        labels.insert("env".into(), rng.pick(&ENVS).to_string());
    }
    let ports = synth_ports(rng);
    Pod {
        name: format!("pod-{index}"),
        namespace,
        labels,
        ip,
        provided: false,
        ports,
    }
}

/// Distinct addresses: pod `i` gets 10.0.0.0 + `i`, or fd00::`i` for about one pod in eight.
fn pod_ip(rng: &mut Rng, index: usize) -> IpAddr {
    let index = u32::try_from(index).unwrap_or(u32::MAX);
    if rng.chance(12) {
        IpAddr::V6(Ipv6Addr::from(0xfd00_u128 << 112 | u128::from(index)))
    } else {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (index & 0x00ff_ffff)))
    }
}

fn synth_ports(rng: &mut Rng) -> Vec<PortSpec> {
    let count = 1 + rng.below(3);
    let mut ports: Vec<PortSpec> = Vec::new();
    for _ in 0..count {
        let (port, protocol) = *rng.pick(&PORTS);
        if ports
            .iter()
            .any(|p| p.port == port && p.protocol == protocol)
        {
            continue;
        }
        let name = rng.chance(80).then(|| port_name(port, protocol));
        ports.push(PortSpec {
            port,
            protocol,
            name,
            check: None,
        });
    }
    ports
}

fn port_name(port: u16, protocol: Protocol) -> String {
    format!("serve-{port}-{}", protocol.as_str().to_lowercase())
}

fn synth_policy(rng: &mut Rng, index: usize, topology: &Topology) -> NetworkPolicy {
    let namespace = rng.pick(&topology.namespaces).name.clone();
    let pod_selector = pod_selector(rng);
    let (isolates_ingress, isolates_egress) = match rng.below(10) {
        0..=3 => (true, false),
        4..=5 => (false, true),
        _ => (true, true),
    };
    // Rules in a direction the policy does not isolate are kept sometimes: the engine must
    // ignore them.
    let ingress_present = isolates_ingress || rng.chance(15);
    let ingress = synth_rules(rng, ingress_present);
    let egress_present = isolates_egress || rng.chance(15);
    let egress = synth_rules(rng, egress_present);
    NetworkPolicy {
        name: format!("policy-{index}"),
        namespace,
        pod_selector,
        isolates_ingress,
        isolates_egress,
        ingress,
        egress,
        origin: Origin::default(),
    }
}

fn synth_rules(rng: &mut Rng, present: bool) -> Vec<Rule> {
    if !present {
        return Vec::new();
    }
    // 0 rules: deny everything in the direction; otherwise up to 3 rules.
    let count = if rng.chance(15) { 0 } else { 1 + rng.below(3) };
    (0..count).map(|_| synth_rule(rng)).collect()
}

fn synth_rule(rng: &mut Rng) -> Rule {
    let peers = if rng.chance(15) {
        Vec::new()
    } else {
        (0..1 + rng.below(3)).map(|_| synth_peer(rng)).collect()
    };
    let ports = if rng.chance(25) {
        Vec::new()
    } else {
        (0..1 + rng.below(3))
            .map(|_| synth_policy_port(rng))
            .collect()
    };
    Rule { peers, ports }
}

fn synth_peer(rng: &mut Rng) -> Peer {
    match rng.below(10) {
        0..=3 => Peer::Pods {
            namespace_selector: None,
            pod_selector: Some(pod_selector(rng)),
        },
        4..=5 => Peer::Pods {
            namespace_selector: Some(namespace_selector(rng)),
            pod_selector: None,
        },
        6..=8 => Peer::Pods {
            namespace_selector: Some(namespace_selector(rng)),
            pod_selector: Some(pod_selector(rng)),
        },
        _ => Peer::IpBlock(ip_block(rng)),
    }
}

fn pod_selector(rng: &mut Rng) -> LabelSelector {
    match rng.below(10) {
        0..=1 => LabelSelector::everything(),
        2..=5 => LabelSelector {
            match_labels: labels([("app", *rng.pick(&APPS))]),
            ..Default::default()
        },
        _ => {
            let key = *rng.pick(&["app", "tier", "env"]);
            let vocabulary: &[&str] = match key {
                "app" => &APPS,
                "tier" => &TIERS,
                _ => &ENVS,
            };
            // Sometimes with a label pair as well, which must hold together with the
            // requirement.
            let match_labels = if rng.chance(30) {
                labels([("app", *rng.pick(&APPS))])
            } else {
                Labels::new()
            };
            LabelSelector {
                match_labels,
                match_expressions: vec![requirement(rng, key, vocabulary)],
            }
        }
    }
}

fn namespace_selector(rng: &mut Rng) -> LabelSelector {
    match rng.below(10) {
        0..=1 => LabelSelector::everything(),
        2..=4 => LabelSelector {
            match_labels: labels([("team", *rng.pick(&TEAMS))]),
            ..Default::default()
        },
        5..=6 => {
            let name = format!("ns-{}", rng.below(8));
            LabelSelector {
                match_labels: labels([(NAMESPACE_NAME_LABEL, name.as_str())]),
                ..Default::default()
            }
        }
        _ => LabelSelector {
            match_labels: Labels::new(),
            match_expressions: vec![requirement(rng, "env", &ENVS)],
        },
    }
}

fn requirement(rng: &mut Rng, key: &str, vocabulary: &[&str]) -> Requirement {
    let operator = *rng.pick(&[
        Operator::In,
        Operator::NotIn,
        Operator::Exists,
        Operator::DoesNotExist,
    ]);
    let values = match operator {
        Operator::In | Operator::NotIn => {
            let mut values: Vec<String> = (0..1 + rng.below(2))
                .map(|_| rng.pick(vocabulary).to_string())
                .collect();
            values.dedup();
            values
        }
        Operator::Exists | Operator::DoesNotExist => Vec::new(),
    };
    Requirement {
        key: key.to_owned(),
        operator,
        values,
    }
}

/// A block around a random slice of the pod addresses, with part of it excepted.
fn ip_block(rng: &mut Rng) -> IpBlock {
    if rng.chance(20) {
        let base = 0xfd00_u128 << 112 | (rng.below(64) as u128) << 4;
        let cidr = Cidr {
            addr: IpAddr::V6(Ipv6Addr::from(base & !0xff)),
            prefix: 120,
        };
        let except = Cidr {
            addr: IpAddr::V6(Ipv6Addr::from(base)),
            prefix: 124,
        };
        return IpBlock {
            cidr,
            except: vec![except],
        };
    }
    let third = u32::try_from(rng.below(4)).unwrap_or(0);
    let cidr = Cidr {
        addr: IpAddr::V4(Ipv4Addr::new(10, 0, third as u8, 0)),
        prefix: 24,
    };
    let except = (0..rng.below(3))
        .map(|_| {
            let fourth = u8::try_from(rng.below(16) * 16).unwrap_or(0);
            let prefix = 28 + u8::try_from(rng.below(5)).unwrap_or(0);
            let addr = Ipv4Addr::new(10, 0, third as u8, fourth);
            Cidr {
                addr: IpAddr::V4(addr),
                prefix,
            }
        })
        .collect();
    IpBlock { cidr, except }
}

fn synth_policy_port(rng: &mut Rng) -> PolicyPort {
    let protocol = *rng.pick(&[Protocol::Tcp, Protocol::Tcp, Protocol::Udp, Protocol::Sctp]);
    let numbered = |port| Some(PortRef::Number(port));
    match rng.below(10) {
        0 => PolicyPort {
            protocol,
            port: None,
            end_port: None,
        },
        1..=4 => PolicyPort {
            protocol,
            port: numbered(rng.pick(&PORTS).0),
            end_port: None,
        },
        5..=6 => {
            let first = *rng.pick(&[53, 80, 443, 5000]);
            let end_port = Some(first + u16::try_from(rng.below(10)).unwrap_or(0));
            PolicyPort {
                protocol,
                port: numbered(first),
                end_port,
            }
        }
        _ => {
            let (port, declared) = *rng.pick(&PORTS);
            // Mostly the protocol the name was declared with; sometimes another, which must
            // then match nothing.
            let protocol = if rng.chance(80) { declared } else { protocol };
            PolicyPort {
                protocol,
                port: Some(PortRef::Name(port_name(port, declared))),
                end_port: None,
            }
        }
    }
}
