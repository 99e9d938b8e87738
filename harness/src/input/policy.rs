//! NetworkPolicy manifests, validated as the API server validates them and with its
//! defaults applied.
//!
//! Reading follows `kubectl apply --validate=strict` and the API server's validation of
//! networking.k8s.io/v1 NetworkPolicy
//! (<https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/network-policy-v1/>):
//!
//! - a file holds one or more YAML documents; empty documents are skipped, and a
//!   `kind: List` document contributes each of its `items`;
//! - `apiVersion` must be `networking.k8s.io/v1` and `kind` `NetworkPolicy`; unknown fields
//!   are rejected everywhere;
//! - `metadata.name` is required (a DNS-1123 subdomain); `metadata.namespace` defaults to
//!   `default`, as `kubectl apply` does when neither the manifest nor the command line
//!   names one;
//! - `spec.podSelector` is required (it may be `{}`);
//! - `spec.policyTypes` holds `Ingress` and/or `Egress`, each at most once; when it is absent
//!   or empty it defaults to Ingress, plus Egress when `spec.egress` has at least one rule;
//! - a peer sets at least one of `podSelector`, `namespaceSelector` and `ipBlock`, and an
//!   `ipBlock` stands alone;
//! - `ipBlock.cidr` is an IPv4 or IPv6 CIDR. Host bits set (`10.0.0.1/24`) are accepted and
//!   cleared (`10.0.0.0/24`), as the API server accepts them and data planes use the
//!   network; each `except` must be of the same family and strictly inside `cidr`;
//! - a port's `protocol` is `TCP`, `UDP` or `SCTP` (default `TCP`); `port` is a number from
//!   1 to 65535 or a port name (`IANA_SVC_NAME`); `endPort` needs a numeric `port` and must
//!   not be below it;
//! - `matchExpressions` operators are `In` and `NotIn` (with values) and `Exists` and
//!   `DoesNotExist` (without).
//!
//! A `null` field counts as absent, as it does for the API server.

use super::error::{Checked, Error, Problem, Result};
use super::fields::{self, Object};
use super::names;
use super::topology::label_map;
use super::yaml::read_file;
use super::yaml::{self, Node, Value};
use crate::engine::model::{
    Cidr, IpBlock, LabelSelector, NetworkPolicy, Operator, Origin, Peer, PolicyPort, PortRef,
    Requirement, Rule,
};
use netpol_probes::spec::Protocol;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

/// The namespace of a manifest that names none, as with `kubectl apply` without `-n`.
pub const DEFAULT_NAMESPACE: &str = "default";

/// The `metadata` fields of an object (`ObjectMeta`); the harness uses name, namespace
/// and labels, and accepts the others without reading them.
const METADATA_FIELDS: [&str; 15] = [
    "name",
    "namespace",
    "labels",
    "annotations",
    "generateName",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "ownerReferences",
    "finalizers",
    "managedFields",
    "selfLink",
];

/// Reads every NetworkPolicy in `paths`: files, or directories whose `*.yaml` and `*.yml`
/// files are read in name order (not recursively).
///
/// # Errors
///
/// The first file that cannot be read or holds an invalid manifest; a directory without
/// manifests; two policies with the same namespace and name.
pub fn load_policies(paths: &[PathBuf]) -> Result<Vec<NetworkPolicy>> {
    let mut policies: Vec<NetworkPolicy> = Vec::new();
    for file in manifest_files(paths)? {
        for policy in parse_policies(&read_file(&file)?, &file)? {
            if let Some(first) = policies
                .iter()
                .find(|p| p.namespace == policy.namespace && p.name == policy.name)
            {
                return Err(Error::Invalid {
                    file: policy.origin.file.clone(),
                    document: Some(policy.origin.document),
                    field: "metadata.name".to_owned(),
                    line: None,
                    message: format!(
                        "policy {} is also defined in {} (rename one of them)",
                        policy.id(),
                        first.origin
                    ),
                });
            }
            policies.push(policy);
        }
    }
    Ok(policies)
}

/// The manifest files `paths` name, directories expanded.
fn manifest_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let read_error = |source| Error::Read {
            path: path.clone(),
            source,
        };
        let mut found = Vec::new();
        for entry in std::fs::read_dir(path).map_err(read_error)? {
            let entry_path = entry.map_err(read_error)?.path();
            let is_yaml = entry_path
                .extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml");
            if is_yaml && !entry_path.is_dir() {
                found.push(entry_path);
            }
        }
        if found.is_empty() {
            return Err(Error::EmptyDirectory { path: path.clone() });
        }
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

/// Parses every NetworkPolicy of a multi-document YAML text; `file` is recorded in each
/// policy's [`Origin`] and named in errors.
///
/// # Errors
///
/// [`Error::Syntax`] for invalid YAML and [`Error::Invalid`] for an invalid manifest, with
/// the document index and field path.
pub fn parse_policies(text: &str, file: &Path) -> Result<Vec<NetworkPolicy>> {
    let documents = yaml::documents(text).map_err(|e| Error::Syntax {
        file: file.to_owned(),
        document: Some(e.document),
        line: e.line,
        source: e.source,
    })?;
    let mut policies = Vec::new();
    for document in documents {
        let Some(root) = document.root else { continue };
        let origin = Origin {
            file: file.to_owned(),
            document: document.index,
        };
        let parsed = document_policies(&root, origin)
            .map_err(|problem| problem.in_file(file, Some(document.index)))?;
        policies.extend(parsed);
    }
    Ok(policies)
}

/// The policies of one document: one NetworkPolicy, or the items of a `List`.
fn document_policies(root: &Node, origin: Origin) -> Checked<Vec<NetworkPolicy>> {
    if fields::peek_string(root, "kind") != Some("List") {
        return Ok(vec![policy(root, "", origin)?]);
    }
    let object = Object::new(root, "", &["apiVersion", "kind", "metadata", "items"])?;
    let api_version = object.required_string("apiVersion")?;
    if api_version != "v1" {
        return Err(Problem::new(
            "apiVersion",
            root.line,
            format!("a List has apiVersion v1, found {api_version:?}"),
        ));
    }
    let items = object.list("items")?;
    items
        .into_iter()
        .map(|(path, node)| policy(node, &path, origin.clone()))
        .collect()
}

fn policy(node: &Node, path: &str, origin: Origin) -> Checked<NetworkPolicy> {
    let object = Object::new(node, path, &["apiVersion", "kind", "metadata", "spec"])?;
    let api_version = object.required_string("apiVersion")?;
    if api_version != "networking.k8s.io/v1" {
        return Err(object.problem(
            "apiVersion",
            format!("unsupported apiVersion {api_version:?} (expected networking.k8s.io/v1)"),
        ));
    }
    let kind = object.required_string("kind")?;
    if kind != "NetworkPolicy" {
        return Err(object.problem(
            "kind",
            format!("expected kind NetworkPolicy, found {kind:?}"),
        ));
    }
    let metadata_path = object.field_path("metadata");
    let (name, namespace) = metadata(object.required("metadata")?, &metadata_path)?;
    let spec_path = object.field_path("spec");
    let spec = object.required("spec")?;
    let spec = Object::new(
        spec,
        &spec_path,
        &["podSelector", "policyTypes", "ingress", "egress"],
    )?;
    let selector_path = spec.field_path("podSelector");
    let pod_selector = selector(spec.required("podSelector")?, &selector_path)?;
    let policy_types = policy_types(&spec)?;
    let ingress = rules(&spec, "ingress", "from")?;
    let egress = rules(&spec, "egress", "to")?;
    // The API server's defaulting: "If this field is not specified, it will default based on
    // the existence of egress rules" — Ingress always, Egress when there is an egress rule.
    let (isolates_ingress, isolates_egress) = policy_types.unwrap_or((true, !egress.is_empty()));
    Ok(NetworkPolicy {
        name,
        namespace,
        pod_selector,
        isolates_ingress,
        isolates_egress,
        ingress,
        egress,
        origin,
    })
}

/// `metadata.name` and `metadata.namespace` (defaulted).
fn metadata(node: &Node, path: &str) -> Checked<(String, String)> {
    let object = Object::new(node, path, &METADATA_FIELDS)?;
    let name = object.required_string("name")?;
    names::dns1123_subdomain(name).map_err(|m| object.problem("name", m))?;
    let namespace = object.string("namespace")?.unwrap_or(DEFAULT_NAMESPACE);
    names::dns1123_label(namespace).map_err(|m| object.problem("namespace", m))?;
    if let Some(labels) = object.get("labels") {
        label_map(labels, &object.field_path("labels"))?;
    }
    Ok((name.to_owned(), namespace.to_owned()))
}

/// `spec.policyTypes` as (ingress, egress), or `None` when absent or empty (defaulted).
fn policy_types(spec: &Object<'_>) -> Checked<Option<(bool, bool)>> {
    let mut types = (false, false);
    let entries = spec.list("policyTypes")?;
    if entries.is_empty() {
        return Ok(None);
    }
    for (path, node) in entries {
        let slot = match fields::string(node, &path)? {
            "Ingress" => &mut types.0,
            "Egress" => &mut types.1,
            other => {
                return Err(Problem::new(
                    path,
                    node.line,
                    format!("unsupported policy type {other:?} (expected Ingress or Egress)"),
                ));
            }
        };
        if *slot {
            return Err(Problem::new(path, node.line, "policy type listed twice"));
        }
        *slot = true;
    }
    Ok(Some(types))
}

/// `spec.ingress` or `spec.egress`, whose peers are under `peers_key` (`from` or `to`).
fn rules(spec: &Object<'_>, key: &str, peers_key: &str) -> Checked<Vec<Rule>> {
    spec.list(key)?
        .into_iter()
        .map(|(path, node)| {
            let object = Object::new(node, &path, &[peers_key, "ports"])?;
            let peers = object
                .list(peers_key)?
                .into_iter()
                .map(|(path, node)| peer(node, &path))
                .collect::<Checked<_>>()?;
            let ports = object
                .list("ports")?
                .into_iter()
                .map(|(path, node)| policy_port(node, &path))
                .collect::<Checked<_>>()?;
            Ok(Rule { peers, ports })
        })
        .collect()
}

fn peer(node: &Node, path: &str) -> Checked<Peer> {
    let object = Object::new(node, path, &["podSelector", "namespaceSelector", "ipBlock"])?;
    let pod_path = object.field_path("podSelector");
    let pod_selector = object
        .get("podSelector")
        .map(|n| selector(n, &pod_path))
        .transpose()?;
    let namespace_path = object.field_path("namespaceSelector");
    let namespace_selector = object
        .get("namespaceSelector")
        .map(|n| selector(n, &namespace_path))
        .transpose()?;
    let block_path = object.field_path("ipBlock");
    let ip_block = object
        .get("ipBlock")
        .map(|n| ip_block(n, &block_path))
        .transpose()?;
    match (
        ip_block,
        pod_selector.is_some() || namespace_selector.is_some(),
    ) {
        (Some(_), true) => Err(Problem::new(
            path,
            node.line,
            "ipBlock cannot be combined with podSelector or namespaceSelector in one peer \
             (make them two peers)",
        )),
        (Some(block), false) => Ok(Peer::IpBlock(block)),
        (None, true) => Ok(Peer::Pods {
            namespace_selector,
            pod_selector,
        }),
        (None, false) => Err(Problem::new(
            path,
            node.line,
            "a peer must set podSelector, namespaceSelector or ipBlock",
        )),
    }
}

fn selector(node: &Node, path: &str) -> Checked<LabelSelector> {
    let object = Object::new(node, path, &["matchLabels", "matchExpressions"])?;
    let match_labels = match object.get("matchLabels") {
        Some(labels) => label_map(labels, &object.field_path("matchLabels"))?,
        None => Default::default(),
    };
    let match_expressions = object
        .list("matchExpressions")?
        .into_iter()
        .map(|(path, node)| requirement(node, &path))
        .collect::<Checked<_>>()?;
    Ok(LabelSelector {
        match_labels,
        match_expressions,
    })
}

fn requirement(node: &Node, path: &str) -> Checked<Requirement> {
    let object = Object::new(node, path, &["key", "operator", "values"])?;
    let key = object.required_string("key")?;
    names::label_key(key).map_err(|m| object.problem("key", m))?;
    let operator =
        match object.required_string("operator")? {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            other => {
                return Err(object.problem("operator", format!(
                    "unsupported operator {other:?} (expected In, NotIn, Exists or DoesNotExist)"
                ),
            ));
            }
        };
    let values = object
        .list("values")?
        .into_iter()
        .map(|(path, node)| {
            let value = fields::string(node, &path)?;
            names::label_value(value).map_err(|m| Problem::new(&path, node.line, m))?;
            Ok(value.to_owned())
        })
        .collect::<Checked<Vec<_>>>()?;
    match operator {
        Operator::In | Operator::NotIn if values.is_empty() => {
            Err(object.problem("values", "must be non-empty when operator is In or NotIn"))
        }
        Operator::Exists | Operator::DoesNotExist if !values.is_empty() => Err(object.problem(
            "values",
            "must be empty when operator is Exists or DoesNotExist",
        )),
        _ => Ok(Requirement {
            key: key.to_owned(),
            operator,
            values,
        }),
    }
}

fn ip_block(node: &Node, path: &str) -> Checked<IpBlock> {
    let object = Object::new(node, path, &["cidr", "except"])?;
    let cidr_path = object.field_path("cidr");
    let cidr_node = object.required("cidr")?;
    let cidr = parse_cidr(fields::string(cidr_node, &cidr_path)?)
        .map_err(|m| Problem::new(&cidr_path, cidr_node.line, m))?;
    let except = object
        .list("except")?
        .into_iter()
        .map(|(path, node)| {
            let text = fields::string(node, &path)?;
            let except = parse_cidr(text).map_err(|m| Problem::new(&path, node.line, m))?;
            if !strictly_inside(except, cidr) {
                return Err(Problem::new(
                    &path,
                    node.line,
                    format!("{text} must be strictly inside cidr {}", format_cidr(cidr)),
                ));
            }
            Ok(except)
        })
        .collect::<Checked<_>>()?;
    Ok(IpBlock { cidr, except })
}

fn policy_port(node: &Node, path: &str) -> Checked<PolicyPort> {
    let object = Object::new(node, path, &["protocol", "port", "endPort"])?;
    let protocol = match object.string("protocol")? {
        None => Protocol::Tcp,
        Some(text) => text
            .parse::<Protocol>()
            .map_err(|m| object.problem("protocol", m))?,
    };
    let port_path = object.field_path("port");
    let port = object
        .get("port")
        .map(|n| port_ref(n, &port_path))
        .transpose()?;
    let end_path = object.field_path("endPort");
    let end_port = match object.get("endPort") {
        None => None,
        Some(end) => {
            let end_port = fields::port_number(end, &end_path)?;
            match &port {
                Some(PortRef::Number(start)) if end_port < *start => {
                    return Err(Problem::new(
                        end_path,
                        end.line,
                        format!("must be >= port ({start})"),
                    ));
                }
                Some(PortRef::Number(_)) => {}
                Some(PortRef::Name(_)) | None => {
                    return Err(Problem::new(
                        end_path,
                        end.line,
                        "endPort requires a numeric port (a port name cannot start a range)",
                    ));
                }
            }
            Some(end_port)
        }
    };
    Ok(PolicyPort {
        protocol,
        port,
        end_port,
    })
}

/// `port`: a number from 1 to 65535 or an `IANA_SVC_NAME`.
fn port_ref(node: &Node, path: &str) -> Checked<PortRef> {
    match &node.value {
        Value::Str(name) => {
            names::port_name(name).map_err(|m| Problem::new(path, node.line, m))?;
            Ok(PortRef::Name(name.clone()))
        }
        _ => fields::port_number(node, path).map(PortRef::Number),
    }
}

/// Parses `address/prefix`, clearing any host bits.
pub(crate) fn parse_cidr(text: &str) -> Result<Cidr, String> {
    let invalid = || format!("{text:?} is not a valid CIDR (e.g. 10.0.0.0/16 or fd00::/64)");
    let (address, prefix) = text.split_once('/').ok_or_else(invalid)?;
    let addr: IpAddr = address.parse().map_err(|_| invalid())?;
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) || prefix.len() > 3 {
        return Err(invalid());
    }
    let prefix: u8 = prefix.parse().map_err(|_| invalid())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(invalid());
    }
    Ok(Cidr {
        addr: mask(addr, prefix),
        prefix,
    })
}

/// `addr` with all bits after the first `prefix` cleared.
fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let kept = bits.checked_shr(32 - u32::from(prefix)).unwrap_or(0);
            let masked = kept.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(if prefix == 0 { 0 } else { masked }))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let kept = bits.checked_shr(128 - u32::from(prefix)).unwrap_or(0);
            let masked = kept.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(if prefix == 0 { 0 } else { masked }))
        }
    }
}

fn strictly_inside(inner: Cidr, outer: Cidr) -> bool {
    inner.addr.is_ipv4() == outer.addr.is_ipv4()
        && inner.prefix > outer.prefix
        && mask(inner.addr, outer.prefix) == outer.addr
}

fn format_cidr(cidr: Cidr) -> String {
    format!("{}/{}", cidr.addr, cidr.prefix)
}
