//! The intent file: the flows a fixture's source document says should work, each with the
//! sentence it comes from. `lint` reports every intended flow the policies deny.
//!
//! ```yaml
//! flows:
//!   - from: ingress-nginx/controller
//!     to: meeting-app/frontend
//!     port: 3000              # protocol defaults to TCP
//!     reason: "the sentence of the document"
//!   - from: [meeting-app/frontend, meeting-app/redis]   # several sources
//!     to: kube-system/coredns
//!     ports: [53/UDP, 53/TCP]                           # several ports
//!     reason: "All services have egress access to kube-dns for service discovery"
//! ```
//!
//! `from` and `to` name pods as `namespace/name`, each a single pod or a list; an entry stands
//! for every combination of its sources, destinations and ports. `port` with an optional
//! `protocol`, or `ports` as `PORT/PROTOCOL` strings, name ports the destination serves.

use super::error::{Checked, Problem, Result};
use super::fields::{self, Object};
use super::yaml::{Node, Value};
use super::yaml::{read_file, single_document};
use crate::engine::model::{IntentFlow, PodIndex, Topology};
use netpol_probes::spec::Protocol;
use std::path::Path;

/// Reads the intent file at `path`, resolving pods against `topology`.
///
/// # Errors
///
/// A file that cannot be read, invalid YAML, or a flow naming an unknown pod, a port its
/// destination does not serve, or a pod as its own destination.
pub fn load_intent(path: &Path, topology: &Topology) -> Result<Vec<IntentFlow>> {
    parse_intent(&read_file(path)?, path, topology)
}

/// Parses an intent file given as text; `file` is only used in errors.
///
/// # Errors
///
/// As [`load_intent`], except for reading.
pub fn parse_intent(text: &str, file: &Path, topology: &Topology) -> Result<Vec<IntentFlow>> {
    let root = single_document(text, file)?;
    intent(&root, topology).map_err(|problem| problem.in_file(file, None))
}

fn intent(root: &Node, topology: &Topology) -> Checked<Vec<IntentFlow>> {
    let object = Object::new(root, "", &["flows"])?;
    let entries = object.list("flows")?;
    let mut flows = Vec::new();
    for (path, node) in entries {
        flows.extend(entry(node, &path, topology)?);
    }
    Ok(flows)
}

/// One entry of `flows`, expanded to a flow per source, destination and port.
fn entry(node: &Node, path: &str, topology: &Topology) -> Checked<Vec<IntentFlow>> {
    let object = Object::new(
        node,
        path,
        &["from", "to", "port", "protocol", "ports", "reason"],
    )?;
    let from_path = object.field_path("from");
    let sources = pods(object.required("from")?, &from_path, topology)?;
    let to_path = object.field_path("to");
    let destinations = pods(object.required("to")?, &to_path, topology)?;
    let ports = ports(&object)?;
    let reason = object.required_string("reason")?.trim();
    if reason.is_empty() {
        return Err(object.problem("reason", "must not be empty"));
    }
    let mut flows = Vec::new();
    for &src in &sources {
        for &dst in &destinations {
            if src == dst {
                return Err(Problem::new(
                    path,
                    node.line,
                    format!("{} is both source and destination", topology.pods[src].id()),
                ));
            }
            for &(port, protocol) in &ports {
                let served = topology.pods[dst]
                    .ports
                    .iter()
                    .any(|spec| spec.port == port && spec.protocol == protocol);
                if !served {
                    return Err(Problem::new(
                        path,
                        node.line,
                        format!(
                            "{} does not serve {port}/{protocol} (add the port to the topology)",
                            topology.pods[dst].id()
                        ),
                    ));
                }
                flows.push(IntentFlow {
                    src,
                    dst,
                    port,
                    protocol,
                    reason: reason.to_owned(),
                });
            }
        }
    }
    Ok(flows)
}

/// A pod reference or a list of them.
fn pods(node: &Node, path: &str, topology: &Topology) -> Checked<Vec<PodIndex>> {
    let references = match &node.value {
        Value::Seq(_) => fields::list(node, path)?,
        _ => vec![(path.to_owned(), node)],
    };
    if references.is_empty() {
        return Err(Problem::new(path, node.line, "must name at least one pod"));
    }
    references
        .into_iter()
        .map(|(path, node)| {
            let reference = fields::string(node, &path)?;
            find_pod(topology, reference).ok_or_else(|| {
                Problem::new(
                    &path,
                    node.line,
                    format!("no pod {reference:?} in the topology (write it as namespace/name)"),
                )
            })
        })
        .collect()
}

/// The index of the pod `namespace/name` in `topology`.
pub fn find_pod(topology: &Topology, reference: &str) -> Option<PodIndex> {
    let (namespace, name) = reference.split_once('/')?;
    topology
        .pods
        .iter()
        .position(|pod| pod.namespace == namespace && pod.name == name)
}

/// `port` (+ `protocol`) or `ports: [PORT/PROTOCOL, ...]`.
fn ports(object: &Object<'_>) -> Checked<Vec<(u16, Protocol)>> {
    let single = object.get("port");
    let protocol = object.string("protocol")?;
    let list = object.list("ports")?;
    match (single, list.is_empty()) {
        (Some(port), true) => {
            let port = fields::port_number(port, &object.field_path("port"))?;
            let protocol = match protocol {
                None => Protocol::Tcp,
                Some(text) => text.parse().map_err(|m| object.problem("protocol", m))?,
            };
            Ok(vec![(port, protocol)])
        }
        (None, false) if protocol.is_none() => list
            .into_iter()
            .map(|(path, node)| {
                let text = fields::string(node, &path)?;
                parse_port_protocol(text).map_err(|m| Problem::new(&path, node.line, m))
            })
            .collect(),
        _ => Err(Problem::new(
            object.path(),
            object.line(),
            "give either `port` (and optionally `protocol`) or `ports: [PORT/PROTOCOL, ...]`",
        )),
    }
}

/// Parses `PORT/PROTOCOL` (`53/UDP`); the protocol is required.
pub fn parse_port_protocol(text: &str) -> Result<(u16, Protocol), String> {
    let invalid = || format!("{text:?} is not PORT/PROTOCOL (e.g. 53/UDP or 80/TCP)");
    let (port, protocol) = text.split_once('/').ok_or_else(invalid)?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0).ok_or_else(invalid)?;
    Ok((port, protocol.parse()?))
}
