//! The inverse of the readers: model values written back as YAML the readers accept.
//!
//! Used to turn synthetic clusters into files (benchmarks, round-trip tests) and by
//! backends that need manifests. Policies are written with an explicit `policyTypes`, so
//! that reading them back gives the same isolation whatever the API's defaulting would say.
//!
//! # Caveats
//!
//! A policy that isolates neither direction cannot be written as a manifest (an empty
//! `policyTypes` defaults to Ingress); it is written with `policyTypes: []`.

use crate::engine::model::{
    Cidr, LabelSelector, Labels, NAMESPACE_NAME_LABEL, NetworkPolicy, Operator, Peer, PolicyPort,
    PortRef, Rule, Topology,
};
use serde_json::{Map, Value, json};

/// The topology file for `topology`; the implied namespace name label is left out.
pub fn render_topology(topology: &Topology) -> String {
    let namespaces: Vec<Value> = topology
        .namespaces
        .iter()
        .map(|namespace| {
            let mut labels = namespace.labels.clone();
            labels.remove(NAMESPACE_NAME_LABEL);
            json!({"name": namespace.name, "labels": labels})
        })
        .collect();
    let pods: Vec<Value> = topology
        .pods
        .iter()
        .map(|pod| {
            json!({
                "name": pod.name,
                "namespace": pod.namespace,
                "labels": pod.labels,
                "ip": pod.ip.to_string(),
                "provided": pod.provided,
                "ports": pod.ports,
            })
        })
        .collect();
    yaml(&json!({"namespaces": namespaces, "pods": pods}))
}

/// One manifest per policy, as a multi-document YAML stream.
pub fn render_policies(policies: &[NetworkPolicy]) -> String {
    let documents: Vec<String> = policies.iter().map(render_policy).collect();
    documents.join("---\n")
}

/// The NetworkPolicy manifest for `policy`.
pub fn render_policy(policy: &NetworkPolicy) -> String {
    let mut types = Vec::new();
    if policy.isolates_ingress {
        types.push("Ingress");
    }
    if policy.isolates_egress {
        types.push("Egress");
    }
    let mut spec = Map::new();
    spec.insert("podSelector".into(), selector(&policy.pod_selector));
    spec.insert("policyTypes".into(), json!(types));
    if !policy.ingress.is_empty() {
        spec.insert("ingress".into(), rules(&policy.ingress, "from"));
    }
    if !policy.egress.is_empty() {
        spec.insert("egress".into(), rules(&policy.egress, "to"));
    }
    yaml(&json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": policy.name, "namespace": policy.namespace},
        "spec": spec,
    }))
}

fn rules(rules: &[Rule], peers_key: &str) -> Value {
    let rules = rules.iter().map(|rule| {
        let mut object = Map::new();
        if !rule.peers.is_empty() {
            object.insert(peers_key.into(), rule.peers.iter().map(peer).collect());
        }
        if !rule.ports.is_empty() {
            object.insert("ports".into(), rule.ports.iter().map(port).collect());
        }
        Value::Object(object)
    });
    rules.collect()
}

fn peer(peer: &Peer) -> Value {
    let mut object = Map::new();
    match peer {
        Peer::Pods {
            namespace_selector,
            pod_selector,
        } => {
            if let Some(namespaces) = namespace_selector {
                object.insert("namespaceSelector".into(), selector(namespaces));
            }
            if let Some(pods) = pod_selector {
                object.insert("podSelector".into(), selector(pods));
            }
        }
        Peer::IpBlock(block) => {
            let mut ip_block = Map::new();
            ip_block.insert("cidr".into(), cidr(&block.cidr));
            if !block.except.is_empty() {
                ip_block.insert("except".into(), block.except.iter().map(cidr).collect());
            }
            object.insert("ipBlock".into(), Value::Object(ip_block));
        }
    }
    Value::Object(object)
}

fn selector(selector: &LabelSelector) -> Value {
    let mut object = Map::new();
    if !selector.match_labels.is_empty() {
        object.insert("matchLabels".into(), labels(&selector.match_labels));
    }
    if !selector.match_expressions.is_empty() {
        let expressions = selector.match_expressions.iter().map(|requirement| {
            let operator = match requirement.operator {
                Operator::In => "In",
                Operator::NotIn => "NotIn",
                Operator::Exists => "Exists",
                Operator::DoesNotExist => "DoesNotExist",
            };
            let mut object = Map::new();
            object.insert("key".into(), json!(requirement.key));
            object.insert("operator".into(), json!(operator));
            if !requirement.values.is_empty() {
                object.insert("values".into(), json!(requirement.values));
            }
            Value::Object(object)
        });
        object.insert("matchExpressions".into(), expressions.collect());
    }
    Value::Object(object)
}

fn labels(labels: &Labels) -> Value {
    json!(labels)
}

fn port(port: &PolicyPort) -> Value {
    let mut object = Map::new();
    object.insert("protocol".into(), json!(port.protocol.as_str()));
    match &port.port {
        Some(PortRef::Number(number)) => object.insert("port".into(), json!(number)),
        Some(PortRef::Name(name)) => object.insert("port".into(), json!(name)),
        None => None,
    };
    if let Some(end) = port.end_port {
        object.insert("endPort".into(), json!(end));
    }
    Value::Object(object)
}

fn cidr(cidr: &Cidr) -> Value {
    json!(format!("{}/{}", cidr.addr, cidr.prefix))
}

/// YAML for a JSON value. Serialising a `serde_json::Value` cannot fail; should the YAML
/// writer ever refuse, JSON (which is YAML) is written instead.
fn yaml(value: &Value) -> String {
    serde_saphyr::to_string(value).unwrap_or_else(|_| format!("{value}\n"))
}
