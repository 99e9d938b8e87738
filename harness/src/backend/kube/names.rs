//! How topology names become cluster names, and the labels that mark the harness's objects.
//!
//! A run gets a *run id*. Each topology namespace is either *suffixed* (`meeting-app` becomes
//! `meeting-app-<run id>`, created by the run and deleted at teardown) or *exact* (used under
//! its own name: created when missing, reused and never deleted when present). Namespaces of
//! provided pods (`kube-system` for CoreDNS) are always exact; others are exact when the
//! configuration says so, typically because a policy selects them by name.
//!
//! Because the API server sets `kubernetes.io/metadata.name` to a namespace's real name, a
//! policy that selects a suffixed namespace by that label must be rewritten:
//! [`NamespaceMap::cluster_name`] translates the label's values in `namespaceSelector`s (see
//! the `manifests` module). Pods in exact namespaces get the run id as a name suffix so that
//! two runs sharing such a namespace do not collide.
//!
//! Each probe pod has a ClusterIP Service of its own, named by [`service_name`]: the pod's
//! cluster name when it is a valid Service name (a DNS-1035 label), else a name derived from
//! it. The same name is the value of the pod's [`POD_LABEL`], which the Service selects.

use crate::engine::{NAMESPACE_NAME_LABEL, NetworkPolicy, Operator, Peer, Topology};
use std::collections::{BTreeMap, BTreeSet};

/// Set on every object the harness creates; `clean` deletes only objects carrying it.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY_VALUE: &str = "netpol-harness";
/// Set on every object the harness creates, to the run id.
pub const RUN_ID_LABEL: &str = "netpol-harness/run-id";
/// Set on every probe pod to its [`service_name`]: with [`RUN_ID_LABEL`], the labels that
/// select exactly that pod (a fixture's own labels may be shared by several pods).
pub const POD_LABEL: &str = "netpol-harness/pod";
/// The field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "netpol-harness";

/// The label selector of every object any run of the harness created.
pub fn managed_selector() -> String {
    format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}")
}

/// The label selector of the objects run `run_id` created.
pub fn run_selector(run_id: &str) -> String {
    format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE},{RUN_ID_LABEL}={run_id}")
}

/// The labels the harness puts on every object it creates.
pub fn ownership_labels(run_id: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY_VALUE.to_owned()),
        (RUN_ID_LABEL.to_owned(), run_id.to_owned()),
    ])
}

/// The namespaces `policies` select by name: values of `kubernetes.io/metadata.name` in
/// `namespaceSelector` `matchLabels` and `In`/`NotIn` expressions.
pub fn namespaces_named_by(policies: &[NetworkPolicy]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let rules = policies
        .iter()
        .flat_map(|p| p.ingress.iter().chain(&p.egress));
    for peer in rules.flat_map(|r| &r.peers) {
        let Peer::Pods {
            namespace_selector: Some(selector),
            ..
        } = peer
        else {
            continue;
        };
        names.extend(selector.match_labels.get(NAMESPACE_NAME_LABEL).cloned());
        for requirement in &selector.match_expressions {
            if requirement.key == NAMESPACE_NAME_LABEL
                && matches!(requirement.operator, Operator::In | Operator::NotIn)
            {
                names.extend(requirement.values.iter().cloned());
            }
        }
    }
    names
}

/// Where each topology namespace lives in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NamespaceMap {
    /// Topology name to cluster name.
    names: BTreeMap<String, String>,
    run_id: String,
}

impl NamespaceMap {
    /// Plans the names for `topology`: exact for `exact` and for namespaces with a provided
    /// pod, suffixed with `-<run_id>` otherwise.
    pub fn plan(topology: &Topology, exact: &BTreeSet<String>, run_id: &str) -> Self {
        let provided: BTreeSet<&str> = topology
            .pods
            .iter()
            .filter(|p| p.provided)
            .map(|p| p.namespace.as_str())
            .collect();
        let names = topology
            .namespaces
            .iter()
            .map(|ns| {
                let cluster = if exact.contains(&ns.name) || provided.contains(ns.name.as_str()) {
                    ns.name.clone()
                } else {
                    suffixed(&ns.name, run_id)
                };
                (ns.name.clone(), cluster)
            })
            .collect();
        NamespaceMap {
            names,
            run_id: run_id.to_owned(),
        }
    }

    /// The cluster name of topology namespace `name`; names outside the topology (a policy
    /// may select `monitoring` by name) are left as they are.
    pub fn cluster_name<'a>(&'a self, name: &'a str) -> &'a str {
        self.names.get(name).map_or(name, String::as_str)
    }

    /// Whether `name` (a topology namespace) is used under its exact name.
    pub fn is_exact(&self, name: &str) -> bool {
        self.names.get(name).is_some_and(|cluster| cluster == name)
    }

    /// The cluster name of a pod: its own in a suffixed namespace (the namespace already
    /// belongs to the run), `<name>-<run id>` in an exact one (which other runs may share).
    pub fn pod_name(&self, namespace: &str, name: &str) -> String {
        if self.is_exact(namespace) {
            suffixed(name, &self.run_id)
        } else {
            name.to_owned()
        }
    }

    /// Topology name and cluster name of every namespace.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.names.iter().map(|(t, c)| (t.as_str(), c.as_str()))
    }
}

/// The name of the Service standing for the probe pod named `pod` (its cluster name), stable
/// for a given pod name. A pod name that is a valid DNS-1035 label (at most 63 lowercase
/// letters, digits and `-`, starting with a letter, ending with a letter or digit), as most
/// are, is used as it is. Any other (pod names are DNS-1123 subdomains: they may hold dots,
/// start with a digit or be longer) becomes a valid label: other characters replaced by `-`,
/// `s-` put before a leading digit, shortened, and a hash of the whole pod name appended so
/// that two pods whose names differ only where they were changed keep distinct Services.
pub fn service_name(pod: &str) -> String {
    if is_dns1035_label(pod) {
        return pod.to_owned();
    }
    let mut base: String = pod
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    if !base.starts_with(|c: char| c.is_ascii_lowercase()) {
        base.insert_str(0, "s-");
    }
    let hash = format!("{:08x}", fnv1a(pod.as_bytes()) as u32);
    let keep = (63 - hash.len() - 1).min(base.len());
    format!("{}-{hash}", base[..keep].trim_end_matches('-'))
}

/// A DNS-1035 label, the syntax of a Service name.
fn is_dns1035_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[bytes.len() - 1] != b'-'
}

/// 64-bit FNV-1a: a hash that, unlike `std`'s, is the same in every build, so a pod keeps its
/// Service name across versions of the harness.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// `name-suffix`, shortened so that it stays a valid DNS label (63 characters at most).
fn suffixed(name: &str, suffix: &str) -> String {
    let keep = 63usize.saturating_sub(suffix.len() + 1).min(name.len());
    let base = name[..keep].trim_end_matches('-');
    format!("{base}-{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{LabelSelector, Namespace, Origin, Pod, Requirement, Rule};
    use std::net::{IpAddr, Ipv4Addr};

    fn namespace(name: &str) -> Namespace {
        Namespace {
            name: name.into(),
            labels: [(NAMESPACE_NAME_LABEL.to_owned(), name.to_owned())].into(),
        }
    }

    fn pod(namespace: &str, name: &str, provided: bool) -> Pod {
        Pod {
            name: name.into(),
            namespace: namespace.into(),
            labels: Default::default(),
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            provided,
            ports: vec![],
        }
    }

    fn topology() -> Topology {
        Topology {
            namespaces: ["meeting-app", "ingress-nginx", "kube-system"]
                .map(namespace)
                .into(),
            pods: vec![
                pod("meeting-app", "frontend", false),
                pod("ingress-nginx", "controller", false),
                pod("kube-system", "coredns", true),
            ],
        }
    }

    fn selecting_namespaces(selector: LabelSelector) -> NetworkPolicy {
        NetworkPolicy {
            name: "p".into(),
            namespace: "meeting-app".into(),
            pod_selector: LabelSelector::default(),
            isolates_ingress: true,
            isolates_egress: false,
            ingress: vec![Rule {
                peers: vec![Peer::Pods {
                    namespace_selector: Some(selector),
                    pod_selector: None,
                }],
                ports: vec![],
            }],
            egress: vec![],
            origin: Origin::default(),
        }
    }

    #[test]
    fn namespaces_selected_by_name_label_or_expression_are_named_by_the_policies() {
        let by_label = selecting_namespaces(LabelSelector {
            match_labels: [(NAMESPACE_NAME_LABEL.to_owned(), "ingress-nginx".to_owned())].into(),
            match_expressions: vec![],
        });
        let by_expression = selecting_namespaces(LabelSelector {
            match_labels: Default::default(),
            match_expressions: vec![Requirement {
                key: NAMESPACE_NAME_LABEL.into(),
                operator: Operator::NotIn,
                values: vec!["monitoring".into()],
            }],
        });
        let names = namespaces_named_by(&[by_label, by_expression]);
        assert_eq!(
            names,
            BTreeSet::from(["ingress-nginx".into(), "monitoring".into()])
        );
    }

    #[test]
    fn unnamed_namespaces_get_the_run_suffix_and_named_or_provided_ones_keep_their_name() {
        let map = NamespaceMap::plan(&topology(), &["ingress-nginx".into()].into(), "r1");
        assert_eq!(map.cluster_name("meeting-app"), "meeting-app-r1");
        assert_eq!(map.cluster_name("ingress-nginx"), "ingress-nginx");
        assert_eq!(map.cluster_name("kube-system"), "kube-system");
        assert_eq!(map.cluster_name("monitoring"), "monitoring");
    }

    #[test]
    fn pods_in_exact_namespaces_carry_the_run_id_in_their_name() {
        let map = NamespaceMap::plan(&topology(), &["ingress-nginx".into()].into(), "r1");
        assert_eq!(map.pod_name("ingress-nginx", "controller"), "controller-r1");
        assert_eq!(map.pod_name("meeting-app", "frontend"), "frontend");
    }

    #[test]
    fn suffixed_names_stay_valid_dns_labels() {
        let long = "a".repeat(63);
        let name = suffixed(&long, "abcdef");
        assert_eq!(name.len(), 63);
        assert!(name.ends_with("-abcdef"));
    }

    #[test]
    fn pod_names_that_are_valid_service_names_name_their_service() {
        for name in ["frontend", "controller-r1", "a", &"a".repeat(63)] {
            assert_eq!(service_name(name), name);
        }
    }

    #[test]
    fn other_pod_names_become_valid_distinct_and_stable_service_names() {
        let names = [
            "web.v2",
            "web-v2",
            "2fa",
            "a.b.c",
            "a-b.c",
            &format!("{}.x", "a".repeat(100)),
            &format!("{}.y", "a".repeat(100)),
            &"b".repeat(64),
        ];
        let derived: Vec<String> = names.iter().map(|n| service_name(n)).collect();
        for (name, service) in names.iter().zip(&derived) {
            assert!(is_dns1035_label(service), "{name} -> {service}");
            assert!(service.len() <= 63, "{name} -> {service}");
            assert_eq!(&service_name(name), service, "stable for {name}");
        }
        let distinct: BTreeSet<&String> = derived.iter().collect();
        assert_eq!(distinct.len(), derived.len(), "{derived:?}");
        assert_eq!(service_name("web-v2"), "web-v2");
        assert!(
            service_name("web.v2").starts_with("web-v2-"),
            "{}",
            service_name("web.v2")
        );
        assert!(
            service_name("2fa").starts_with("s-2fa-"),
            "{}",
            service_name("2fa")
        );
    }

    #[test]
    fn service_names_derive_from_a_hash_that_does_not_change_between_builds() {
        // FNV-1a 64 of "web.v2", low 32 bits: a change here renames every derived Service.
        assert_eq!(service_name("web.v2"), "web-v2-f5280609");
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn selectors_name_every_managed_object_or_only_the_run() {
        assert_eq!(
            managed_selector(),
            "app.kubernetes.io/managed-by=netpol-harness"
        );
        assert_eq!(
            run_selector("r1"),
            "app.kubernetes.io/managed-by=netpol-harness,netpol-harness/run-id=r1"
        );
    }
}
