//! Builders that keep engine test cases short: topologies, selectors, peers, ports, rules
//! and policies in one line each.

use netpol_harness::engine::{
    Cidr, Direction, Edge, Engine, IpBlock, LabelSelector, Labels, NAMESPACE_NAME_LABEL, Namespace,
    NetworkPolicy, Operator, Origin, Peer, Pod, PodIndex, PolicyPort, PortRef, Requirement, Rule,
    Topology,
};
use netpol_probes::spec::{PortSpec, Protocol};
use std::net::IpAddr;

pub use Protocol::{Sctp, Tcp, Udp};

pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `matchLabels` only.
pub fn sel(pairs: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: labels(pairs),
        match_expressions: Vec::new(),
    }
}

/// One `matchExpressions` requirement only.
pub fn expr(key: &str, operator: Operator, values: &[&str]) -> LabelSelector {
    let values = values.iter().map(|v| v.to_string()).collect();
    let requirement = Requirement {
        key: key.into(),
        operator,
        values,
    };
    LabelSelector {
        match_labels: Labels::new(),
        match_expressions: vec![requirement],
    }
}

pub fn all() -> LabelSelector {
    LabelSelector::default()
}

/// A `podSelector`-only peer.
pub fn pods(selector: LabelSelector) -> Peer {
    Peer::Pods {
        namespace_selector: None,
        pod_selector: Some(selector),
    }
}

/// A `namespaceSelector`-only peer.
pub fn namespaces(selector: LabelSelector) -> Peer {
    Peer::Pods {
        namespace_selector: Some(selector),
        pod_selector: None,
    }
}

/// One peer with both selectors.
pub fn pods_in(namespace_selector: LabelSelector, pod_selector: LabelSelector) -> Peer {
    Peer::Pods {
        namespace_selector: Some(namespace_selector),
        pod_selector: Some(pod_selector),
    }
}

pub fn cidr(text: &str) -> Cidr {
    let (addr, prefix) = text.split_once('/').expect("cidr has a prefix");
    Cidr {
        addr: addr.parse().expect("cidr address"),
        prefix: prefix.parse().expect("prefix"),
    }
}

pub fn ip_block(block: &str, except: &[&str]) -> Peer {
    Peer::IpBlock(IpBlock {
        cidr: cidr(block),
        except: except.iter().map(|c| cidr(c)).collect(),
    })
}

pub fn port(protocol: Protocol, number: u16) -> PolicyPort {
    PolicyPort {
        protocol,
        port: Some(PortRef::Number(number)),
        end_port: None,
    }
}

pub fn port_range(protocol: Protocol, first: u16, last: u16) -> PolicyPort {
    PolicyPort {
        protocol,
        port: Some(PortRef::Number(first)),
        end_port: Some(last),
    }
}

pub fn named(protocol: Protocol, name: &str) -> PolicyPort {
    PolicyPort {
        protocol,
        port: Some(PortRef::Name(name.into())),
        end_port: None,
    }
}

pub fn any_port(protocol: Protocol) -> PolicyPort {
    PolicyPort {
        protocol,
        port: None,
        end_port: None,
    }
}

pub fn rule(peers: Vec<Peer>, ports: Vec<PolicyPort>) -> Rule {
    Rule { peers, ports }
}

/// A rule that admits every peer on every port.
pub fn allow_all() -> Rule {
    Rule::default()
}

/// A policy as the API server defaults it: it isolates ingress, and egress once egress rules
/// are added with [`PolicyExt::egress`]. It starts with no rules.
pub fn policy(namespace: &str, name: &str, selector: LabelSelector) -> NetworkPolicy {
    NetworkPolicy {
        name: name.into(),
        namespace: namespace.into(),
        pod_selector: selector,
        isolates_ingress: true,
        isolates_egress: false,
        ingress: Vec::new(),
        egress: Vec::new(),
        origin: Origin::default(),
    }
}

pub trait PolicyExt {
    fn ingress(self, rules: Vec<Rule>) -> Self;
    /// Adds egress rules; non-empty egress rules make the policy isolate egress, as
    /// `policyTypes` defaulting does.
    fn egress(self, rules: Vec<Rule>) -> Self;
    /// Sets `policyTypes` explicitly.
    fn types(self, directions: &[Direction]) -> Self;
}

impl PolicyExt for NetworkPolicy {
    fn ingress(mut self, rules: Vec<Rule>) -> Self {
        self.ingress = rules;
        self
    }

    fn egress(mut self, rules: Vec<Rule>) -> Self {
        self.isolates_egress |= !rules.is_empty();
        self.egress = rules;
        self
    }

    fn types(mut self, directions: &[Direction]) -> Self {
        self.isolates_ingress = directions.contains(&Direction::Ingress);
        self.isolates_egress = directions.contains(&Direction::Egress);
        self
    }
}

pub fn serve(number: u16, protocol: Protocol, name: Option<&str>) -> PortSpec {
    PortSpec {
        port: number,
        protocol,
        name: name.map(str::to_owned),
        check: None,
    }
}

pub fn pod(id: &str, pod_labels: &[(&str, &str)], ip: &str, ports: Vec<PortSpec>) -> Pod {
    let (namespace, name) = id.split_once('/').expect("pod id is namespace/name");
    Pod {
        name: name.into(),
        namespace: namespace.into(),
        labels: labels(pod_labels),
        ip: ip.parse::<IpAddr>().expect("pod ip"),
        provided: false,
        ports,
    }
}

pub fn namespace(name: &str, extra: &[(&str, &str)]) -> Namespace {
    let mut labels = labels(extra);
    labels.insert(NAMESPACE_NAME_LABEL.into(), name.into());
    Namespace {
        name: name.into(),
        labels,
    }
}

/// The upstream e2e suite's model: namespaces x, y, z (labelled `ns=<name>`), pods a, b, c
/// labelled `pod=<name>` in each, each serving 80 and 81 over TCP, UDP and SCTP on ports
/// named `serve-<port>-<proto>`. Pod IPs are 10.0.<namespace>.<pod>, numbered from 1.
pub fn xyz() -> Topology {
    let names = ["x", "y", "z"];
    let namespaces = names.iter().map(|n| namespace(n, &[("ns", n)])).collect();
    let mut pods = Vec::new();
    for (n, ns) in names.iter().enumerate() {
        for (p, name) in ["a", "b", "c"].iter().enumerate() {
            let ports = [80, 81]
                .into_iter()
                .flat_map(|number| {
                    [Tcp, Udp, Sctp].map(|protocol| {
                        let port_name =
                            format!("serve-{number}-{}", protocol.as_str().to_lowercase());
                        serve(number, protocol, Some(&port_name))
                    })
                })
                .collect();
            let ip = format!("10.0.{}.{}", n + 1, p + 1);
            pods.push(pod(&format!("{ns}/{name}"), &[("pod", name)], &ip, ports));
        }
    }
    Topology { namespaces, pods }
}

pub fn index_of(topology: &Topology, id: &str) -> PodIndex {
    topology
        .pod_index(id)
        .unwrap_or_else(|| panic!("no pod {id}"))
}

pub fn edge(topology: &Topology, from: &str, to: &str, number: u16, protocol: Protocol) -> Edge {
    Edge {
        src: index_of(topology, from),
        dst: index_of(topology, to),
        port: number,
        protocol,
    }
}

/// Checks every ordered pair of distinct pods on `number/protocol` against `expected(from,
/// to)` (pod ids), and fails listing every wrong verdict with its explanation.
pub fn assert_matrix(
    topology: &Topology,
    policies: &[NetworkPolicy],
    number: u16,
    protocol: Protocol,
    expected: impl Fn(&str, &str) -> bool,
) {
    let engine = Engine::new(topology, policies);
    let mut wrong = Vec::new();
    for (src, from) in topology.pods.iter().enumerate() {
        for (dst, to) in topology
            .pods
            .iter()
            .enumerate()
            .filter(|&(dst, _)| dst != src)
        {
            let edge = Edge {
                src,
                dst,
                port: number,
                protocol,
            };
            let want = expected(&from.id(), &to.id());
            let verdict = engine.verdict(edge);
            assert_eq!(
                verdict.allowed(),
                engine.allows(edge),
                "allows() disagrees with verdict()"
            );
            if verdict.allowed() != want {
                let want = if want { "allow" } else { "deny" };
                wrong.push(format!("expected {want}, got {}", engine.explain(edge)));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong verdicts:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// The namespace of a pod id.
pub fn ns(id: &str) -> &str {
    id.split_once('/').map_or(id, |(ns, _)| ns)
}

/// The pod name of a pod id.
pub fn name(id: &str) -> &str {
    id.split_once('/').map_or(id, |(_, name)| name)
}

/// The seed fixture in code: the meeting-app topology of issue 2 and the policies of the seed
/// document, each egress section extended with the document's DNS rule.
pub fn meeting_app() -> (Topology, Vec<NetworkPolicy>) {
    (meeting_app_topology(), meeting_app_policies())
}

fn meeting_app_topology() -> Topology {
    let canary = || serve(8080, Tcp, Some("canary"));
    let app = |id: &str, app_labels: &[(&str, &str)], ip: &str, mut ports: Vec<PortSpec>| {
        ports.push(canary());
        pod(id, app_labels, ip, ports)
    };
    let dns = || vec![serve(53, Udp, Some("dns")), serve(53, Tcp, Some("dns-tcp"))];
    let mut coredns = pod(
        "kube-system/coredns",
        &[("k8s-app", "kube-dns")],
        "10.0.9.10",
        dns(),
    );
    coredns.provided = true;
    let pods = vec![
        app(
            "meeting-app/frontend",
            &[("app", "meeting-app-frontend")],
            "10.0.1.1",
            vec![serve(3000, Tcp, Some("http"))],
        ),
        app(
            "meeting-app/flask-backend",
            &[("app", "meeting-app"), ("component", "flask")],
            "10.0.1.2",
            vec![
                serve(5000, Tcp, Some("http")),
                serve(5000, Udp, Some("udp")),
            ],
        ),
        app(
            "meeting-app/node-backend",
            &[("app", "meeting-app"), ("component", "node")],
            "10.0.1.3",
            vec![serve(3001, Tcp, Some("websocket"))],
        ),
        app(
            "meeting-app/postgres",
            &[("app", "postgres")],
            "10.0.1.4",
            vec![serve(5432, Tcp, Some("postgres"))],
        ),
        app(
            "meeting-app/redis",
            &[("app", "redis")],
            "10.0.1.5",
            vec![serve(6379, Tcp, Some("redis"))],
        ),
        app(
            "meeting-app/prometheus",
            &[("app", "prometheus")],
            "10.0.1.6",
            vec![serve(9090, Tcp, Some("http"))],
        ),
        app(
            "meeting-app/grafana",
            &[("app", "grafana")],
            "10.0.1.7",
            vec![serve(3000, Tcp, Some("http"))],
        ),
        app(
            "meeting-app/filebeat",
            &[("app", "filebeat")],
            "10.0.1.8",
            vec![serve(5066, Tcp, Some("http"))],
        ),
        app(
            "meeting-app/logstash",
            &[("app", "logstash")],
            "10.0.1.9",
            vec![
                serve(5044, Tcp, Some("beats")),
                serve(9600, Tcp, Some("http")),
            ],
        ),
        app(
            "meeting-app/outsider",
            &[("role", "outsider")],
            "10.0.1.10",
            vec![],
        ),
        app(
            "meeting-app/fake-dns",
            &[("k8s-app", "kube-dns")],
            "10.0.1.11",
            dns(),
        ),
        app(
            "ingress-nginx/controller",
            &[("app.kubernetes.io/name", "ingress-nginx")],
            "10.0.2.1",
            vec![serve(80, Tcp, Some("http"))],
        ),
        coredns,
        app(
            "elsewhere/intruder",
            &[("app", "meeting-app-frontend")],
            "10.0.3.1",
            vec![],
        ),
    ];
    let namespaces = ["meeting-app", "ingress-nginx", "kube-system", "elsewhere"];
    Topology {
        namespaces: namespaces.iter().map(|n| namespace(n, &[])).collect(),
        pods,
    }
}

fn meeting_app_policies() -> Vec<NetworkPolicy> {
    let app = |name: &str| pods(sel(&[("app", name)]));
    let dns = rule(
        vec![pods_in(
            sel(&[(NAMESPACE_NAME_LABEL, "kube-system")]),
            sel(&[("k8s-app", "kube-dns")]),
        )],
        vec![port(Udp, 53), port(Tcp, 53)],
    );
    let backend = |name: &str, ingress_port: u16| {
        policy("meeting-app", name, sel(&[("app", "meeting-app")]))
            .ingress(vec![rule(
                vec![app("meeting-app-frontend")],
                vec![port(Tcp, ingress_port)],
            )])
            .egress(vec![
                rule(vec![app("postgres")], vec![port(Tcp, 5432)]),
                dns.clone(),
            ])
    };
    let ingress_nginx = namespaces(sel(&[(NAMESPACE_NAME_LABEL, "ingress-nginx")]));
    vec![
        policy(
            "meeting-app",
            "frontend-policy",
            sel(&[("app", "meeting-app-frontend")]),
        )
        .ingress(vec![rule(vec![ingress_nginx], vec![port(Tcp, 3000)])])
        .egress(vec![
            rule(
                vec![app("meeting-app")],
                vec![port(Tcp, 5000), port(Tcp, 3001)],
            ),
            dns.clone(),
        ]),
        backend("flask-backend-policy", 5000),
        backend("node-backend-policy", 3001),
        policy(
            "meeting-app",
            "postgres-policy",
            sel(&[("app", "postgres")]),
        )
        .ingress(vec![rule(vec![app("meeting-app")], vec![port(Tcp, 5432)])]),
        policy("meeting-app", "redis-policy", sel(&[("app", "redis")]))
            .ingress(vec![rule(vec![app("meeting-app")], vec![port(Tcp, 6379)])]),
        policy(
            "meeting-app",
            "prometheus-policy",
            sel(&[("app", "prometheus")]),
        )
        .ingress(vec![rule(vec![app("grafana")], vec![])])
        .egress(vec![
            rule(
                vec![app("meeting-app"), app("meeting-app-frontend")],
                vec![],
            ),
            dns.clone(),
        ]),
        policy(
            "meeting-app",
            "filebeat-policy",
            sel(&[("app", "filebeat")]),
        )
        .egress(vec![rule(vec![app("logstash")], vec![]), dns]),
    ]
}
