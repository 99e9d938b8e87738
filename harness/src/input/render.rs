//! The inverse of the readers: model values written back as YAML the readers accept.
//!
//! Used to turn synthetic clusters into files (benchmarks, round-trip tests) and by
//! backends that need manifests. Fields come in the order the API reference lists them.
//! Policies are written with an explicit `policyTypes`, so that reading them back gives the
//! same isolation whatever the API's defaulting would say.
//!
//! # Caveats
//!
//! A policy that isolates neither direction cannot be written as a manifest (an empty
//! `policyTypes` defaults to Ingress); it is written with `policyTypes: []`.

use crate::engine::model::{
    Cidr, LabelSelector, Labels, NAMESPACE_NAME_LABEL, NetworkPolicy, Operator, Peer, PolicyPort,
    PortRef, Requirement, Rule, Topology,
};
use netpol_probes::spec::PortSpec;
use serde::Serialize;

/// The topology file for `topology`; the implied namespace name label is left out.
pub fn render_topology(topology: &Topology) -> String {
    let namespaces = topology
        .namespaces
        .iter()
        .map(|namespace| {
            let mut labels = namespace.labels.clone();
            labels.remove(NAMESPACE_NAME_LABEL);
            NamespaceOut {
                name: &namespace.name,
                labels,
            }
        })
        .collect();
    let pods = topology
        .pods
        .iter()
        .map(|pod| PodOut {
            name: &pod.name,
            namespace: &pod.namespace,
            labels: &pod.labels,
            ip: pod.ip.to_string(),
            provided: pod.provided,
            ports: &pod.ports,
        })
        .collect();
    yaml(&TopologyOut { namespaces, pods })
}

/// One manifest per policy, as a multi-document YAML stream.
pub fn render_policies(policies: &[NetworkPolicy]) -> String {
    let documents: Vec<String> = policies.iter().map(render_policy).collect();
    documents.join("---\n")
}

/// The NetworkPolicy manifest for `policy`.
pub fn render_policy(policy: &NetworkPolicy) -> String {
    let mut policy_types = Vec::new();
    if policy.isolates_ingress {
        policy_types.push("Ingress");
    }
    if policy.isolates_egress {
        policy_types.push("Egress");
    }
    yaml(&Manifest {
        api_version: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: Metadata {
            name: &policy.name,
            namespace: &policy.namespace,
        },
        spec: Spec {
            pod_selector: selector(&policy.pod_selector),
            policy_types,
            ingress: policy
                .ingress
                .iter()
                .map(|r| rule(r, PeersKey::From))
                .collect(),
            egress: policy
                .egress
                .iter()
                .map(|r| rule(r, PeersKey::To))
                .collect(),
        },
    })
}

#[derive(Serialize)]
struct TopologyOut<'a> {
    namespaces: Vec<NamespaceOut<'a>>,
    pods: Vec<PodOut<'a>>,
}

#[derive(Serialize)]
struct NamespaceOut<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Labels::is_empty")]
    labels: Labels,
}

#[derive(Serialize)]
struct PodOut<'a> {
    name: &'a str,
    namespace: &'a str,
    #[serde(skip_serializing_if = "Labels::is_empty")]
    labels: &'a Labels,
    ip: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    provided: bool,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    ports: &'a [PortSpec],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest<'a> {
    api_version: &'static str,
    kind: &'static str,
    metadata: Metadata<'a>,
    spec: Spec<'a>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    name: &'a str,
    namespace: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Spec<'a> {
    pod_selector: Selector<'a>,
    policy_types: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ingress: Vec<RuleOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    egress: Vec<RuleOut<'a>>,
}

/// Under which key a rule lists its peers.
#[derive(Clone, Copy)]
enum PeersKey {
    From,
    To,
}

#[derive(Serialize)]
struct RuleOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<Vec<PeerOut<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<Vec<PeerOut<'a>>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ports: Vec<PortOut<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PeerOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace_selector: Option<Selector<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pod_selector: Option<Selector<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_block: Option<IpBlockOut>,
}

#[derive(Serialize)]
struct IpBlockOut {
    cidr: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    except: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Selector<'a> {
    #[serde(skip_serializing_if = "Labels::is_empty")]
    match_labels: &'a Labels,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    match_expressions: Vec<Expression<'a>>,
}

#[derive(Serialize)]
struct Expression<'a> {
    key: &'a str,
    operator: &'static str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    values: &'a [String],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PortOut<'a> {
    protocol: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<PortValue<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_port: Option<u16>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum PortValue<'a> {
    Number(u16),
    Name(&'a str),
}

fn rule(rule: &Rule, key: PeersKey) -> RuleOut<'_> {
    let peers = (!rule.peers.is_empty()).then(|| rule.peers.iter().map(peer).collect());
    let (from, to) = match key {
        PeersKey::From => (peers, None),
        PeersKey::To => (None, peers),
    };
    RuleOut {
        from,
        to,
        ports: rule.ports.iter().map(port).collect(),
    }
}

fn peer(peer: &Peer) -> PeerOut<'_> {
    match peer {
        Peer::Pods {
            namespace_selector,
            pod_selector,
        } => PeerOut {
            namespace_selector: namespace_selector.as_ref().map(selector),
            pod_selector: pod_selector.as_ref().map(selector),
            ip_block: None,
        },
        Peer::IpBlock(block) => PeerOut {
            namespace_selector: None,
            pod_selector: None,
            ip_block: Some(IpBlockOut {
                cidr: cidr(&block.cidr),
                except: block.except.iter().map(cidr).collect(),
            }),
        },
    }
}

fn selector(selector: &LabelSelector) -> Selector<'_> {
    Selector {
        match_labels: &selector.match_labels,
        match_expressions: selector.match_expressions.iter().map(expression).collect(),
    }
}

fn expression(requirement: &Requirement) -> Expression<'_> {
    let operator = match requirement.operator {
        Operator::In => "In",
        Operator::NotIn => "NotIn",
        Operator::Exists => "Exists",
        Operator::DoesNotExist => "DoesNotExist",
    };
    Expression {
        key: &requirement.key,
        operator,
        values: &requirement.values,
    }
}

fn port(port: &PolicyPort) -> PortOut<'_> {
    PortOut {
        protocol: port.protocol.as_str(),
        port: port.port.as_ref().map(|port| match port {
            PortRef::Number(number) => PortValue::Number(*number),
            PortRef::Name(name) => PortValue::Name(name),
        }),
        end_port: port.end_port,
    }
}

fn cidr(cidr: &Cidr) -> String {
    format!("{}/{}", cidr.addr, cidr.prefix)
}

/// YAML for a value. Should the YAML writer ever refuse one of these plain structures,
/// JSON (which is YAML) is written instead.
fn yaml(value: &impl Serialize) -> String {
    serde_saphyr::to_string(value)
        .or_else(|_| serde_json::to_string(value).map(|json| json + "\n"))
        .unwrap_or_default()
}
