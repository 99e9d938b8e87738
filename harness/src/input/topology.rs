//! The topology file: the namespaces and pods a run deploys.
//!
//! ```yaml
//! namespaces:
//!   - name: meeting-app
//!     labels: {}            # kubernetes.io/metadata.name=<name> is always implied
//! pods:
//!   - name: frontend
//!     namespace: meeting-app
//!     labels: {app: meeting-app-frontend}
//!     ip: 10.244.1.5        # optional
//!     provided: false       # optional: already exists in a real cluster
//!     ports:
//!       - {port: 3000, protocol: TCP, name: http, check: http}
//! ```
//!
//! Every pod's namespace must be declared under `namespaces`: a typo in a namespace name
//! would otherwise silently create a namespace no policy or selector expects.
//!
//! Pods without an `ip` get one from 10.244.0.0/16, in order of appearance starting at
//! 10.244.1.1, skipping addresses given explicitly and those ending in `.0` or `.255`; the
//! same file therefore always yields the same addresses.

use super::error::{Checked, Problem, Result};
use super::fields::{self, Object};
use super::names;
use super::yaml::Node;
use super::yaml::{read_file, single_document};
use crate::engine::model::{Labels, NAMESPACE_NAME_LABEL, Namespace, Pod, Topology};
use netpol_probes::spec::{Check, PortSpec, Protocol};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

/// Every [`Check`], to parse the `check` field by its API spelling.
const CHECKS: [Check; 8] = [
    Check::Http,
    Check::Websocket,
    Check::Postgres,
    Check::Redis,
    Check::Dns,
    Check::Tcp,
    Check::Udp,
    Check::Sctp,
];

/// Reads and validates the topology file at `path`.
///
/// # Errors
///
/// [`super::Error::Read`] when the file cannot be read, [`super::Error::Syntax`] for
/// invalid YAML, and [`super::Error::Invalid`] naming the field for anything the format or
/// Kubernetes naming rules reject.
pub fn load_topology(path: &Path) -> Result<Topology> {
    parse_topology(&read_file(path)?, path)
}

/// Parses and validates a topology given as text; `file` is only used in errors.
///
/// # Errors
///
/// As [`load_topology`], except for reading.
pub fn parse_topology(text: &str, file: &Path) -> Result<Topology> {
    let root = single_document(text, file)?;
    topology(&root).map_err(|problem| problem.in_file(file, None))
}

fn topology(root: &Node) -> Checked<Topology> {
    let object = Object::new(root, "", &["namespaces", "pods"])?;
    let mut namespaces: Vec<Namespace> = Vec::new();
    for (path, node) in object.list("namespaces")? {
        let namespace = namespace(node, &path)?;
        if namespaces.iter().any(|n| n.name == namespace.name) {
            return Err(Problem::new(
                fields::join(&path, "name"),
                node.line,
                format!("namespace {:?} is declared twice", namespace.name),
            ));
        }
        namespaces.push(namespace);
    }
    let seen: HashSet<&str> = namespaces.iter().map(|n| n.name.as_str()).collect();
    let pod_nodes = object.list("pods")?;
    let mut pods = Vec::with_capacity(pod_nodes.len());
    let mut explicit_ips = Vec::with_capacity(pod_nodes.len());
    for (path, node) in &pod_nodes {
        let (pod, ip) = pod(node, path, &seen)?;
        if pods
            .iter()
            .any(|p: &Pod| p.namespace == pod.namespace && p.name == pod.name)
        {
            return Err(Problem::new(
                fields::join(path, "name"),
                node.line,
                format!("pod {} is declared twice", pod.id()),
            ));
        }
        pods.push(pod);
        explicit_ips.push(ip);
    }
    assign_ips(&mut pods, &explicit_ips, &pod_nodes)?;
    Ok(Topology { namespaces, pods })
}

fn namespace(node: &Node, path: &str) -> Checked<Namespace> {
    let object = Object::new(node, path, &["name", "labels"])?;
    let name = object.required_string("name")?;
    names::dns1123_label(name).map_err(|m| object.problem("name", m))?;
    let mut labels = match object.get("labels") {
        Some(labels) => label_map(labels, &object.field_path("labels"))?,
        None => Labels::new(),
    };
    match labels.get(NAMESPACE_NAME_LABEL) {
        Some(value) if value != name => {
            return Err(object.problem(
                "labels",
                format!(
                    "{NAMESPACE_NAME_LABEL} must equal the namespace name {name:?} (it is \
                     implied; remove it)"
                ),
            ));
        }
        _ => {}
    }
    labels.insert(NAMESPACE_NAME_LABEL.to_owned(), name.to_owned());
    Ok(Namespace {
        name: name.to_owned(),
        labels,
    })
}

/// Reads a pod; its IP is returned apart because it may still have to be assigned.
fn pod(node: &Node, path: &str, namespaces: &HashSet<&str>) -> Checked<(Pod, Option<IpAddr>)> {
    const FIELDS: [&str; 6] = ["name", "namespace", "labels", "ip", "provided", "ports"];
    let object = Object::new(node, path, &FIELDS)?;
    let name = object.required_string("name")?;
    names::dns1123_subdomain(name).map_err(|m| object.problem("name", m))?;
    let namespace = object.required_string("namespace")?;
    if !namespaces.contains(namespace) {
        return Err(object.problem(
            "namespace",
            format!("namespace {namespace:?} is not declared (add it under `namespaces`)"),
        ));
    }
    let labels = match object.get("labels") {
        Some(labels) => label_map(labels, &object.field_path("labels"))?,
        None => Labels::new(),
    };
    let ip = match object.string("ip")? {
        None => None,
        Some(text) => Some(
            text.parse::<IpAddr>()
                .map_err(|_| object.problem("ip", format!("{text:?} is not an IP address")))?,
        ),
    };
    let provided = match object.get("provided") {
        Some(value) => fields::boolean(value, &object.field_path("provided"))?,
        None => false,
    };
    let ports = object
        .list("ports")?
        .into_iter()
        .map(|(path, node)| port(node, &path))
        .collect::<Checked<Vec<_>>>()?;
    check_unique_ports(&ports, &object.field_path("ports"), node.line)?;
    let pod = Pod {
        name: name.to_owned(),
        namespace: namespace.to_owned(),
        labels,
        ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        provided,
        ports,
    };
    Ok((pod, ip))
}

fn port(node: &Node, path: &str) -> Checked<PortSpec> {
    let object = Object::new(node, path, &["port", "protocol", "name", "check"])?;
    let port_path = object.field_path("port");
    let port = fields::port_number(object.required("port")?, &port_path)?;
    let protocol = match object.string("protocol")? {
        None => Protocol::Tcp,
        Some(text) => text
            .parse::<Protocol>()
            .map_err(|m| object.problem("protocol", m))?,
    };
    let name = object.string("name")?;
    if let Some(name) = name {
        names::port_name(name).map_err(|m| object.problem("name", m))?;
    }
    let check =
        match object.string("check")? {
            None => None,
            Some(text) => Some(CHECKS.into_iter().find(|c| c.as_str() == text).ok_or_else(
                || {
                    let known: Vec<&str> = CHECKS.iter().map(|c| c.as_str()).collect();
                    object.problem(
                        "check",
                        format!(
                            "unknown check {text:?} (expected one of {})",
                            known.join(", ")
                        ),
                    )
                },
            )?),
        };
    Ok(PortSpec {
        port,
        protocol,
        name: name.map(str::to_owned),
        check,
    })
}

/// A pod serves each port/protocol once, and each port name once: a named port must
/// resolve to exactly one container port.
fn check_unique_ports(ports: &[PortSpec], path: &str, line: usize) -> Checked<()> {
    let mut served = BTreeSet::new();
    let mut names = BTreeSet::new();
    for (index, spec) in ports.iter().enumerate() {
        let spec_path = fields::at(path, index);
        if !served.insert((spec.port, spec.protocol)) {
            return Err(Problem::new(
                fields::join(&spec_path, "port"),
                line,
                format!("{}/{} is listed twice", spec.port, spec.protocol),
            ));
        }
        if let Some(name) = &spec.name
            && !names.insert(name.as_str())
        {
            return Err(Problem::new(
                fields::join(&spec_path, "name"),
                line,
                format!("port name {name:?} is used twice"),
            ));
        }
    }
    Ok(())
}

/// Reads a label map, checking Kubernetes label syntax.
pub(crate) fn label_map(node: &Node, path: &str) -> Checked<Labels> {
    let mut labels = BTreeMap::new();
    for entry in fields::string_map(node, path)? {
        let entry_path = fields::join(path, entry.key);
        names::label_key(entry.key).map_err(|m| Problem::new(&entry_path, entry.line, m))?;
        names::label_value(entry.value).map_err(|m| Problem::new(&entry_path, entry.line, m))?;
        labels.insert(entry.key.to_owned(), entry.value.to_owned());
    }
    Ok(labels)
}

/// Gives every pod its IP: the explicit one, or the next free one from 10.244.1.1.
fn assign_ips(
    pods: &mut [Pod],
    explicit: &[Option<IpAddr>],
    nodes: &[(String, &Node)],
) -> Checked<()> {
    let mut taken: HashSet<IpAddr> = HashSet::new();
    for (index, ip) in explicit.iter().enumerate() {
        if let Some(ip) = ip
            && !taken.insert(*ip)
        {
            let (path, node) = &nodes[index];
            return Err(Problem::new(
                fields::join(path, "ip"),
                node.line,
                format!("IP address {ip} is given to two pods"),
            ));
        }
    }
    let mut next = u32::from(Ipv4Addr::new(10, 244, 1, 1));
    let last = u32::from(Ipv4Addr::new(10, 244, 255, 254));
    for (index, pod) in pods.iter_mut().enumerate() {
        pod.ip = match explicit[index] {
            Some(ip) => ip,
            None => loop {
                if next > last {
                    let (path, node) = &nodes[index];
                    return Err(Problem::new(
                        path.as_str(),
                        node.line,
                        "no free address left in 10.244.0.0/16 (give pods explicit IPs)",
                    ));
                }
                let candidate = Ipv4Addr::from(next);
                next += 1;
                let host = candidate.octets()[3];
                if host != 0 && host != 255 && taken.insert(IpAddr::V4(candidate)) {
                    break IpAddr::V4(candidate);
                }
            },
        };
    }
    Ok(())
}
