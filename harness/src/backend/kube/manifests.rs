//! The objects the backend applies, built without IO: namespaces, probe pods, their
//! Services, and NetworkPolicies converted back from the engine's model.

use super::names::{NamespaceMap, POD_LABEL, RUN_ID_LABEL, ownership_labels, service_name};
use crate::engine::{
    Cidr, LabelSelector, Labels, NAMESPACE_NAME_LABEL, NetworkPolicy, Operator, Peer, PolicyPort,
    PortRef, Rule,
};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::networking::v1 as net;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use netpol_probes::spec::{Check, PortSpec};
use std::collections::{BTreeMap, BTreeSet};

/// The name of the container running `netpol-probe serve`, in which probes are exec'd.
pub const AGENT_CONTAINER: &str = "agent";

/// Where `probes/Dockerfile` puts the agent: the image is `scratch`, with no `PATH` to search.
pub const AGENT_BINARY: &str = "/netpol-probe";

/// The uid the agent runs as: any non-root uid works, the image needs no user of its own.
const AGENT_UID: i64 = 65532;
/// The uid of the `postgres` user in the official Postgres image.
const POSTGRES_UID: i64 = 999;
/// The uid of the `redis` user in the official Redis image.
const REDIS_UID: i64 = 999;
/// Where Postgres keeps its data: an `emptyDir`, so nothing persists.
const PGDATA: &str = "/var/lib/postgresql/data/pgdata";

/// Everything a probe pod needs besides the topology pod itself.
#[derive(Debug, Clone, Copy)]
pub struct PodSettings<'a> {
    pub run_id: &'a str,
    pub image: &'a str,
    pub canary_port: u16,
}

/// A namespace the run creates: the topology's labels plus the ownership labels.
/// `kubernetes.io/metadata.name` is left to the API server, which sets it to the real name.
pub fn namespace(name: &str, topology_labels: &Labels, run_id: &str) -> core::Namespace {
    let mut labels: BTreeMap<String, String> = topology_labels
        .iter()
        .filter(|(k, _)| k.as_str() != NAMESPACE_NAME_LABEL)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.extend(ownership_labels(run_id));
    core::Namespace {
        metadata: meta::ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(labels),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The labels the harness applies to a namespace it reuses: only the topology's labels the
/// namespace lacks, applied by the harness's field manager so that teardown can release
/// exactly them. Never the ownership labels: `clean` must not delete a reused namespace.
pub fn reused_namespace_labels(wanted: &Labels, existing: &BTreeMap<String, String>) -> Labels {
    wanted
        .iter()
        .filter(|(k, v)| k.as_str() != NAMESPACE_NAME_LABEL && existing.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A namespace patch for server-side apply that owns exactly `labels`.
pub fn namespace_labels_patch(name: &str, labels: Labels) -> core::Namespace {
    core::Namespace {
        metadata: meta::ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(labels),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The labels that select exactly the probe pod named `pod` of run `run_id`: the run id and
/// the pod's [`POD_LABEL`]. Its Service selects it by them alone, since a fixture's own
/// labels (`app: meeting-app`) may be shared by several pods.
pub fn pod_identity(pod: &str, run_id: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (RUN_ID_LABEL.to_owned(), run_id.to_owned()),
        (POD_LABEL.to_owned(), service_name(pod)),
    ])
}

/// The probe pod standing in for one topology pod, labelled with the topology's labels, the
/// ownership labels and [`pod_identity`].
///
/// One `agent` container serves every port the agent answers itself; each `postgres` or
/// `redis` port gets a real server container beside it, and each `dns` port number a CoreDNS,
/// which declare those ports (so named ports resolve as in the real app). Pods of a run spread across nodes (topology spread on
/// the hostname, best effort) so that same-node and cross-node edges both occur.
pub fn probe_pod(
    name: &str,
    namespace: &str,
    labels: &Labels,
    ports: &[PortSpec],
    settings: PodSettings<'_>,
) -> Result<core::Pod, String> {
    let mut pod_labels = labels.clone();
    pod_labels.extend(ownership_labels(settings.run_id));
    pod_labels.extend(pod_identity(name, settings.run_id));
    let mut containers = vec![agent_container(ports, settings)?];
    let mut volumes = Vec::new();
    for spec in ports {
        match spec.effective_check() {
            Check::Postgres => {
                let (container, mut vols) = postgres_container(spec);
                containers.push(container);
                volumes.append(&mut vols);
            }
            Check::Redis => {
                let (container, mut vols) = redis_container(spec);
                containers.push(container);
                volumes.append(&mut vols);
            }
            _ => {}
        }
    }
    let mut dns_ports: BTreeMap<u16, Vec<&PortSpec>> = BTreeMap::new();
    for spec in ports.iter().filter(|p| p.effective_check() == Check::Dns) {
        dns_ports.entry(spec.port).or_default().push(spec);
    }
    containers.extend(dns_ports.into_values().map(|specs| dns_container(&specs)));
    Ok(core::Pod {
        metadata: meta::ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(pod_labels),
            ..Default::default()
        },
        spec: Some(core::PodSpec {
            containers,
            volumes: (!volumes.is_empty()).then_some(volumes),
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            termination_grace_period_seconds: Some(2),
            security_context: Some(core::PodSecurityContext {
                run_as_non_root: Some(true),
                // emptyDir volumes become writable by the servers' uids through this group.
                fs_group: Some(POSTGRES_UID),
                seccomp_profile: Some(core::SeccompProfile {
                    type_: "RuntimeDefault".to_owned(),
                    ..Default::default()
                }),
                // Lets the non-root agent bind ports below 1024 (80, 443, 53) without
                // NET_BIND_SERVICE; a "safe" sysctl since Kubernetes 1.22.
                sysctls: Some(vec![core::Sysctl {
                    name: "net.ipv4.ip_unprivileged_port_start".to_owned(),
                    value: "0".to_owned(),
                }]),
                ..Default::default()
            }),
            topology_spread_constraints: Some(vec![core::TopologySpreadConstraint {
                max_skew: 1,
                topology_key: "kubernetes.io/hostname".to_owned(),
                when_unsatisfiable: "ScheduleAnyway".to_owned(),
                label_selector: Some(meta::LabelSelector {
                    match_labels: Some(ownership_labels(settings.run_id)),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// The ClusterIP Service standing for the probe pod named `pod` (in `namespace`, serving
/// `ports`), as an application would reach the pod: named by [`service_name`], labelled with
/// the ownership labels, selecting the pod by [`pod_identity`], with one port per port the
/// pod serves. Each Service port has the pod port's number and protocol and, when the pod
/// port has a name, its name and a `targetPort` by that name (which the endpoints controller
/// resolves to the container port of that name and protocol); an unnamed one is named
/// `<protocol>-<port>` (a Service with several ports must name each) and targets the number.
/// `None` for a pod that serves no port: a Service needs at least one, and nothing dials
/// such a pod. Field meanings:
/// <https://kubernetes.io/docs/reference/kubernetes-api/service-resources/service-v1/>
pub fn probe_service(
    pod: &str,
    namespace: &str,
    ports: &[PortSpec],
    run_id: &str,
) -> Option<core::Service> {
    if ports.is_empty() {
        return None;
    }
    let mut taken: BTreeSet<String> = ports.iter().filter_map(|p| p.name.clone()).collect();
    let service_ports = ports
        .iter()
        .map(|spec| {
            let (name, target) = match &spec.name {
                Some(name) => (name.clone(), IntOrString::String(name.clone())),
                None => (
                    unnamed_port_name(spec, &mut taken),
                    IntOrString::Int(i32::from(spec.port)),
                ),
            };
            core::ServicePort {
                name: Some(name),
                protocol: Some(spec.protocol.as_str().to_owned()),
                port: i32::from(spec.port),
                target_port: Some(target),
                ..Default::default()
            }
        })
        .collect();
    Some(core::Service {
        metadata: meta::ObjectMeta {
            name: Some(service_name(pod)),
            namespace: Some(namespace.to_owned()),
            labels: Some(ownership_labels(run_id)),
            ..Default::default()
        },
        spec: Some(core::ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(pod_identity(pod, run_id)),
            ports: Some(service_ports),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// `tcp-80` for an unnamed 80/TCP, made unique among the Service's port names (`taken`,
/// which the new name joins) by a counter should a named port already be called that.
fn unnamed_port_name(spec: &PortSpec, taken: &mut BTreeSet<String>) -> String {
    let base = format!(
        "{}-{}",
        spec.protocol.as_str().to_ascii_lowercase(),
        spec.port
    );
    let name = std::iter::once(base.clone())
        .chain((2..).map(|n| format!("{base}-{n}")))
        .find(|name| !taken.contains(name))
        .unwrap_or(base);
    taken.insert(name.clone());
    name
}

/// `netpol-probe serve` with the pod's ports as `--port PORT/PROTOCOL/CHECK[/NAME]`.
fn agent_container(
    ports: &[PortSpec],
    settings: PodSettings<'_>,
) -> Result<core::Container, String> {
    let served: Vec<&PortSpec> = ports
        .iter()
        .filter(|p| p.effective_check().served_by_agent())
        .collect();
    let mut args = vec!["serve".to_owned()];
    let mut container_ports = Vec::new();
    for spec in &served {
        args.push("--port".to_owned());
        args.push(port_arg(spec));
        container_ports.push(container_port(spec));
    }
    let readiness = readiness(
        &served,
        settings.canary_port,
        &mut args,
        &mut container_ports,
    )?;
    Ok(core::Container {
        name: AGENT_CONTAINER.to_owned(),
        image: Some(settings.image.to_owned()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        command: Some(vec![AGENT_BINARY.to_owned()]),
        args: Some(args),
        env: Some(vec![
            field_env("POD_NAME", "metadata.name"),
            field_env("POD_NAMESPACE", "metadata.namespace"),
        ]),
        ports: Some(container_ports),
        readiness_probe: Some(readiness),
        resources: Some(resources("10m", "16Mi", "128Mi")),
        security_context: Some(restricted(AGENT_UID)),
        ..Default::default()
    })
}

/// `GET /healthz`, which the agent answers with 200 once every listener is bound, on the
/// topology's canary port (the HTTP port named `canary`, which no policy names), else on the
/// first HTTP port. A pod without an HTTP port (possibly without any TCP port, so that a TCP
/// check cannot stand in) gets an extra HTTP port, [`PodSettings::canary_port`], for this
/// probe alone.
fn readiness(
    served: &[&PortSpec],
    canary_port: u16,
    args: &mut Vec<String>,
    container_ports: &mut Vec<core::ContainerPort>,
) -> Result<core::Probe, String> {
    let http = |p: &&&PortSpec| p.effective_check() == Check::Http;
    let canary = served
        .iter()
        .filter(http)
        .find(|p| p.name.as_deref() == Some("canary"));
    let port = match canary.or_else(|| served.iter().find(http)) {
        Some(http) => http.port,
        None if served.iter().any(|p| p.port == canary_port) => {
            return Err(format!(
                "the pod serves port {canary_port} without HTTP, which the canary needs: \
                 choose another canary port"
            ));
        }
        None => {
            args.push("--port".to_owned());
            args.push(format!("{canary_port}/TCP/http"));
            container_ports.push(core::ContainerPort {
                container_port: i32::from(canary_port),
                name: Some("nph-canary".to_owned()),
                protocol: Some("TCP".to_owned()),
                ..Default::default()
            });
            canary_port
        }
    };
    Ok(core::Probe {
        http_get: Some(core::HTTPGetAction {
            path: Some("/healthz".to_owned()),
            port: IntOrString::Int(i32::from(port)),
            ..Default::default()
        }),
        period_seconds: Some(1),
        timeout_seconds: Some(1),
        failure_threshold: Some(3),
        ..Default::default()
    })
}

/// A real Postgres with trust authentication and its data in an `emptyDir`: nothing persists.
fn postgres_container(spec: &PortSpec) -> (core::Container, Vec<core::Volume>) {
    let name = format!("postgres-{}", spec.port);
    let data = format!("{name}-data");
    let run = format!("{name}-run");
    let container = core::Container {
        name: name.clone(),
        image: Some(super::config::POSTGRES_IMAGE.to_owned()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        args: Some(vec![
            "postgres".to_owned(),
            "-p".to_owned(),
            spec.port.to_string(),
        ]),
        env: Some(vec![
            value_env("POSTGRES_HOST_AUTH_METHOD", "trust"),
            value_env("PGDATA", PGDATA),
        ]),
        ports: Some(vec![container_port(spec)]),
        readiness_probe: Some(tcp_readiness(spec.port)),
        resources: Some(resources("50m", "64Mi", "256Mi")),
        security_context: Some(restricted(POSTGRES_UID)),
        volume_mounts: Some(vec![
            mount(&data, "/var/lib/postgresql/data"),
            mount(&run, "/var/run/postgresql"),
            mount(&format!("{name}-tmp"), "/tmp"),
        ]),
        ..Default::default()
    };
    let volumes = vec![
        empty_dir(&data),
        empty_dir(&run),
        empty_dir(&format!("{name}-tmp")),
    ];
    (container, volumes)
}

/// A real Redis without persistence (`--save ''`, no append-only file), open to the network.
fn redis_container(spec: &PortSpec) -> (core::Container, Vec<core::Volume>) {
    let name = format!("redis-{}", spec.port);
    let data = format!("{name}-data");
    let port = spec.port.to_string();
    let args = [
        "--port",
        &port,
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "no",
    ]
    .map(str::to_owned)
    .into();
    let container = core::Container {
        name: name.clone(),
        image: Some(super::config::REDIS_IMAGE.to_owned()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        command: Some(vec!["redis-server".to_owned()]),
        args: Some(args),
        ports: Some(vec![container_port(spec)]),
        readiness_probe: Some(tcp_readiness(spec.port)),
        resources: Some(resources("10m", "16Mi", "128Mi")),
        security_context: Some(restricted(REDIS_UID)),
        volume_mounts: Some(vec![mount(&data, "/data")]),
        ..Default::default()
    };
    (container, vec![empty_dir(&data)])
}

/// A CoreDNS serving `specs` (one port number, over UDP and/or TCP). Without a Corefile it
/// answers every query through its `whoami` plugin: any answer proves the server was reached,
/// which is all a `dns` check asks.
fn dns_container(specs: &[&PortSpec]) -> core::Container {
    let port = specs[0].port;
    core::Container {
        name: format!("dns-{port}"),
        image: Some(super::config::DNS_IMAGE.to_owned()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        args: Some(vec!["-dns.port".to_owned(), port.to_string()]),
        ports: Some(specs.iter().map(|spec| container_port(spec)).collect()),
        readiness_probe: Some(tcp_readiness(port)),
        resources: Some(resources("10m", "16Mi", "64Mi")),
        security_context: Some(restricted(AGENT_UID)),
        ..Default::default()
    }
}

/// The `--port` argument of `netpol-probe serve`.
fn port_arg(spec: &PortSpec) -> String {
    let mut arg = format!("{}/{}/{}", spec.port, spec.protocol, spec.effective_check());
    if let Some(name) = &spec.name {
        arg.push('/');
        arg.push_str(name);
    }
    arg
}

fn container_port(spec: &PortSpec) -> core::ContainerPort {
    core::ContainerPort {
        container_port: i32::from(spec.port),
        name: spec.name.clone(),
        protocol: Some(spec.protocol.as_str().to_owned()),
        ..Default::default()
    }
}

fn tcp_readiness(port: u16) -> core::Probe {
    core::Probe {
        tcp_socket: Some(core::TCPSocketAction {
            port: IntOrString::Int(i32::from(port)),
            ..Default::default()
        }),
        period_seconds: Some(1),
        ..Default::default()
    }
}

/// No privileges: a fixed non-root uid, no escalation, a read-only root, no capabilities.
fn restricted(uid: i64) -> core::SecurityContext {
    core::SecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(uid),
        run_as_group: Some(uid),
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(core::Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn resources(cpu: &str, memory: &str, memory_limit: &str) -> core::ResourceRequirements {
    core::ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity(cpu.to_owned())),
            ("memory".to_owned(), Quantity(memory.to_owned())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_owned(),
            Quantity(memory_limit.to_owned()),
        )])),
        ..Default::default()
    }
}

fn field_env(name: &str, path: &str) -> core::EnvVar {
    core::EnvVar {
        name: name.to_owned(),
        value_from: Some(core::EnvVarSource {
            field_ref: Some(core::ObjectFieldSelector {
                field_path: path.to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn value_env(name: &str, value: &str) -> core::EnvVar {
    core::EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        ..Default::default()
    }
}

fn mount(volume: &str, path: &str) -> core::VolumeMount {
    core::VolumeMount {
        name: volume.to_owned(),
        mount_path: path.to_owned(),
        ..Default::default()
    }
}

fn empty_dir(name: &str) -> core::Volume {
    core::Volume {
        name: name.to_owned(),
        empty_dir: Some(core::EmptyDirVolumeSource::default()),
        ..Default::default()
    }
}

/// The NetworkPolicy to apply for `policy`, in the run's namespaces.
///
/// `metadata.namespace` and every `kubernetes.io/metadata.name` value in a
/// `namespaceSelector` go through `namespaces`, so a policy that selects `meeting-app` by
/// name selects the run's `meeting-app-<run id>`. `policyTypes` is written out as the engine
/// resolved it, so the cluster cannot default it differently. Field meanings:
/// <https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/network-policy-v1/>
pub fn network_policy(
    policy: &NetworkPolicy,
    namespaces: &NamespaceMap,
    run_id: &str,
) -> net::NetworkPolicy {
    let mut policy_types = Vec::new();
    if policy.isolates_ingress {
        policy_types.push("Ingress".to_owned());
    }
    if policy.isolates_egress {
        policy_types.push("Egress".to_owned());
    }
    let rules = |rules: &[Rule]| {
        (!rules.is_empty()).then(|| {
            rules
                .iter()
                .map(|r| rule(r, namespaces))
                .collect::<Vec<_>>()
        })
    };
    net::NetworkPolicy {
        metadata: meta::ObjectMeta {
            name: Some(policy.name.clone()),
            namespace: Some(namespaces.cluster_name(&policy.namespace).to_owned()),
            labels: Some(ownership_labels(run_id)),
            ..Default::default()
        },
        spec: Some(net::NetworkPolicySpec {
            pod_selector: Some(selector(&policy.pod_selector, None)),
            policy_types: Some(policy_types),
            ingress: rules(&policy.ingress).map(|rules| {
                rules
                    .into_iter()
                    .map(|(peers, ports)| net::NetworkPolicyIngressRule { from: peers, ports })
                    .collect()
            }),
            egress: rules(&policy.egress).map(|rules| {
                rules
                    .into_iter()
                    .map(|(peers, ports)| net::NetworkPolicyEgressRule { to: peers, ports })
                    .collect()
            }),
        }),
    }
}

type ApiRule = (
    Option<Vec<net::NetworkPolicyPeer>>,
    Option<Vec<net::NetworkPolicyPort>>,
);

/// A rule's peers and ports; an empty list in the model (every peer, every port) is an
/// absent field in the API.
fn rule(rule: &Rule, namespaces: &NamespaceMap) -> ApiRule {
    let peers = rule
        .peers
        .iter()
        .map(|p| peer(p, namespaces))
        .collect::<Vec<_>>();
    let ports = rule.ports.iter().map(port).collect::<Vec<_>>();
    (
        (!peers.is_empty()).then_some(peers),
        (!ports.is_empty()).then_some(ports),
    )
}

fn peer(peer: &Peer, namespaces: &NamespaceMap) -> net::NetworkPolicyPeer {
    match peer {
        Peer::Pods {
            namespace_selector,
            pod_selector,
        } => net::NetworkPolicyPeer {
            namespace_selector: namespace_selector
                .as_ref()
                .map(|s| selector(s, Some(namespaces))),
            pod_selector: pod_selector.as_ref().map(|s| selector(s, None)),
            ip_block: None,
        },
        Peer::IpBlock(block) => net::NetworkPolicyPeer {
            ip_block: Some(net::IPBlock {
                cidr: cidr(&block.cidr),
                except: (!block.except.is_empty()).then(|| block.except.iter().map(cidr).collect()),
            }),
            ..Default::default()
        },
    }
}

fn cidr(cidr: &Cidr) -> String {
    format!("{}/{}", cidr.addr, cidr.prefix)
}

fn port(port: &PolicyPort) -> net::NetworkPolicyPort {
    net::NetworkPolicyPort {
        protocol: Some(port.protocol.as_str().to_owned()),
        port: port.port.as_ref().map(|p| match p {
            PortRef::Number(n) => IntOrString::Int(i32::from(*n)),
            PortRef::Name(name) => IntOrString::String(name.clone()),
        }),
        end_port: port.end_port.map(i32::from),
    }
}

/// A label selector; with `namespaces`, values of `kubernetes.io/metadata.name` are
/// translated to the run's namespace names.
fn selector(selector: &LabelSelector, namespaces: Option<&NamespaceMap>) -> meta::LabelSelector {
    let translate = |key: &str, value: &str| match namespaces {
        Some(map) if key == NAMESPACE_NAME_LABEL => map.cluster_name(value).to_owned(),
        _ => value.to_owned(),
    };
    let labels: BTreeMap<String, String> = selector
        .match_labels
        .iter()
        .map(|(k, v)| (k.clone(), translate(k, v)))
        .collect();
    let expressions: Vec<meta::LabelSelectorRequirement> = selector
        .match_expressions
        .iter()
        .map(|r| meta::LabelSelectorRequirement {
            key: r.key.clone(),
            operator: match r.operator {
                Operator::In => "In",
                Operator::NotIn => "NotIn",
                Operator::Exists => "Exists",
                Operator::DoesNotExist => "DoesNotExist",
            }
            .to_owned(),
            values: (!r.values.is_empty())
                .then(|| r.values.iter().map(|v| translate(&r.key, v)).collect()),
        })
        .collect();
    meta::LabelSelector {
        match_labels: (!labels.is_empty()).then_some(labels),
        match_expressions: (!expressions.is_empty()).then_some(expressions),
    }
}
