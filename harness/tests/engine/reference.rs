//! A deliberately simple reference engine: every verdict matches labels, namespaces, IPs and
//! ports from scratch, straight from the API reference's wording, with no precomputation.
//! The property tests check that the optimized engine agrees with it.

use netpol_harness::engine::{
    Cidr, Direction, DirectionVerdict, Edge, LabelSelector, Labels, NAMESPACE_NAME_LABEL,
    NetworkPolicy, Operator, Peer, Pod, PolicyPort, PortRef, RuleRef, Topology, Verdict,
};
use netpol_probes::spec::Protocol;
use std::net::IpAddr;

pub fn verdict(topology: &Topology, policies: &[NetworkPolicy], edge: Edge) -> Verdict {
    Verdict {
        egress: side(topology, policies, Direction::Egress, edge),
        ingress: side(topology, policies, Direction::Ingress, edge),
    }
}

fn side(
    topology: &Topology,
    policies: &[NetworkPolicy],
    direction: Direction,
    edge: Edge,
) -> DirectionVerdict {
    let (subject, peer) = match direction {
        Direction::Ingress => (edge.dst, edge.src),
        Direction::Egress => (edge.src, edge.dst),
    };
    let mut verdict = DirectionVerdict::default();
    let Some(subject) = topology.pods.get(subject) else {
        return verdict;
    };
    let peer = topology.pods.get(peer);
    let destination = topology.pods.get(edge.dst);
    for (index, policy) in policies.iter().enumerate() {
        let selects = policy.namespace == subject.namespace
            && selector(&policy.pod_selector, &subject.labels);
        let isolates = match direction {
            Direction::Ingress => policy.isolates_ingress,
            Direction::Egress => policy.isolates_egress,
        };
        if !(selects && isolates) {
            continue;
        }
        verdict.isolated_by.push(index);
        let rules = match direction {
            Direction::Ingress => &policy.ingress,
            Direction::Egress => &policy.egress,
        };
        for (rule_index, rule) in rules.iter().enumerate() {
            let peer_ok = rule.peers.is_empty()
                || rule
                    .peers
                    .iter()
                    .any(|p| peer.is_some_and(|pod| peer_matches(topology, policy, p, pod)));
            let port_ok = rule.ports.is_empty()
                || rule
                    .ports
                    .iter()
                    .any(|p| port_matches(p, destination, edge.port, edge.protocol));
            if peer_ok && port_ok {
                verdict.allowed_by.push(RuleRef {
                    policy: index,
                    direction,
                    rule: rule_index,
                });
            }
        }
    }
    verdict
}

pub fn selector(selector: &LabelSelector, labels: &Labels) -> bool {
    for (key, value) in &selector.match_labels {
        if labels.get(key) != Some(value) {
            return false;
        }
    }
    for requirement in &selector.match_expressions {
        let value = labels.get(&requirement.key);
        let ok = match requirement.operator {
            Operator::In => value.is_some() && requirement.values.contains(value.unwrap()),
            Operator::NotIn => value.is_none() || !requirement.values.contains(value.unwrap()),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        };
        if !ok {
            return false;
        }
    }
    true
}

fn namespace_labels(topology: &Topology, name: &str) -> Labels {
    let mut labels = topology
        .namespaces
        .iter()
        .find(|namespace| namespace.name == name)
        .map(|namespace| namespace.labels.clone())
        .unwrap_or_default();
    labels.insert(NAMESPACE_NAME_LABEL.to_string(), name.to_string());
    labels
}

fn peer_matches(topology: &Topology, policy: &NetworkPolicy, peer: &Peer, pod: &Pod) -> bool {
    match peer {
        Peer::Pods {
            namespace_selector,
            pod_selector,
        } => {
            let namespace_ok = match namespace_selector {
                None => pod.namespace == policy.namespace,
                Some(s) => selector(s, &namespace_labels(topology, &pod.namespace)),
            };
            let pod_ok = match pod_selector {
                None => true,
                Some(s) => selector(s, &pod.labels),
            };
            namespace_ok && pod_ok
        }
        Peer::IpBlock(block) => {
            in_cidr(&block.cidr, pod.ip) && !block.except.iter().any(|e| in_cidr(e, pod.ip))
        }
    }
}

/// Compares the first `prefix` bits one by one.
fn in_cidr(cidr: &Cidr, ip: IpAddr) -> bool {
    let (network, address, width) = match (cidr.addr, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => (n.octets().to_vec(), a.octets().to_vec(), 32),
        (IpAddr::V6(n), IpAddr::V6(a)) => (n.octets().to_vec(), a.octets().to_vec(), 128),
        _ => return false,
    };
    let bit = |bytes: &[u8], i: usize| bytes[i / 8] >> (7 - i % 8) & 1;
    (0..usize::from(cidr.prefix).min(width)).all(|i| bit(&network, i) == bit(&address, i))
}

fn port_matches(
    port: &PolicyPort,
    destination: Option<&Pod>,
    number: u16,
    protocol: Protocol,
) -> bool {
    if port.protocol != protocol {
        return false;
    }
    match &port.port {
        None => true,
        Some(PortRef::Number(first)) => {
            let last = port.end_port.unwrap_or(*first).max(*first);
            *first <= number && number <= last
        }
        Some(PortRef::Name(name)) => destination.is_some_and(|pod| {
            pod.ports.iter().any(|p| {
                p.name.as_deref() == Some(name.as_str())
                    && p.protocol == protocol
                    && p.port == number
            })
        }),
    }
}
