//! Table tests of the input readers: the seed fixtures load, and every invalid input is
//! rejected with a one-line message naming the file, the document and the field path.

use netpol_harness::engine::model::{Cidr, NAMESPACE_NAME_LABEL, Operator, Peer, PortRef};
use netpol_harness::input::{
    load_intent, load_policies, load_topology, parse_intent, parse_policies, parse_topology,
};
use netpol_probes::spec::Protocol;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

fn seed(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/meeting-app")
        .join(file)
}

/// A NetworkPolicy manifest named `p` in namespace `ns` with the given `spec` body
/// (indented by two spaces).
fn manifest(spec: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: p\n  \
         namespace: ns\nspec:\n{spec}"
    )
}

/// An error and its sources, joined by `: ` as the binary prints them.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

/// Asserts that `text`, read as `x.yaml`, is rejected with a message that contains every
/// one of `expected`.
fn assert_policy_error(case: &str, text: &str, expected: &[&str]) {
    let error = match parse_policies(text, Path::new("x.yaml")) {
        Ok(policies) => panic!("{case}: accepted: {policies:?}"),
        Err(error) => chain(&error),
    };
    assert!(
        !error.contains('\n'),
        "{case}: message spans lines: {error}"
    );
    for part in expected {
        assert!(error.contains(part), "{case}: {error:?} lacks {part:?}");
    }
}

#[test]
fn invalid_manifests_are_rejected_with_file_document_and_field_path() {
    let cases: &[(&str, String, &[&str])] = &[
        (
            "endPort below port",
            manifest(
                "  podSelector: {}\n  ingress:\n  - ports:\n    - port: 80\n    - port: 80\n      \
                 endPort: 79\n",
            ),
            &["x.yaml: document 0: spec.ingress[0].ports[1].endPort: must be >= port (80)"],
        ),
        (
            "endPort with a named port",
            manifest(
                "  podSelector: {}\n  egress:\n  - ports:\n    - port: http\n      endPort: 90\n",
            ),
            &["document 0: spec.egress[0].ports[0].endPort: endPort requires a numeric port"],
        ),
        (
            "endPort without a port",
            manifest("  podSelector: {}\n  egress:\n  - ports:\n    - endPort: 90\n"),
            &["spec.egress[0].ports[0].endPort: endPort requires a numeric port"],
        ),
        (
            "endPort above 65535",
            manifest(
                "  podSelector: {}\n  egress:\n  - ports:\n    - port: 1\n      endPort: 65536\n",
            ),
            &["spec.egress[0].ports[0].endPort: must be between 1 and 65535"],
        ),
        (
            "cidr prefix too long",
            manifest(
                "  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock:\n        cidr: 10.0.0.0/33\n",
            ),
            &["spec.ingress[0].from[0].ipBlock.cidr: \"10.0.0.0/33\" is not a valid CIDR"],
        ),
        (
            "cidr without prefix",
            manifest(
                "  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock:\n        cidr: 10.0.0.1\n",
            ),
            &["spec.ingress[0].from[0].ipBlock.cidr: \"10.0.0.1\" is not a valid CIDR"],
        ),
        (
            "except outside its cidr",
            manifest(
                "  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock:\n        cidr: \
                 10.0.0.0/16\n        except: [10.1.0.0/24]\n",
            ),
            &["spec.ingress[0].from[0].ipBlock.except[0]: 10.1.0.0/24 must be strictly inside"],
        ),
        (
            "except equal to its cidr",
            manifest(
                "  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock:\n        cidr: \
                 10.0.0.0/16\n        except: [10.0.0.0/16]\n",
            ),
            &["ipBlock.except[0]: 10.0.0.0/16 must be strictly inside cidr 10.0.0.0/16"],
        ),
        (
            "except of the other family",
            manifest(
                "  podSelector: {}\n  egress:\n  - to:\n    - ipBlock:\n        cidr: 0.0.0.0/0\n        \
                 except: ['fd00::/64']\n",
            ),
            &["spec.egress[0].to[0].ipBlock.except[0]: fd00::/64 must be strictly inside"],
        ),
        (
            "unknown operator",
            manifest(
                "  podSelector:\n    matchExpressions:\n    - {key: app, operator: Contains, \
                 values: [a]}\n",
            ),
            &["spec.podSelector.matchExpressions[0].operator: unsupported operator \"Contains\""],
        ),
        (
            "In without values",
            manifest("  podSelector:\n    matchExpressions:\n    - {key: app, operator: In}\n"),
            &["spec.podSelector.matchExpressions[0].values: must be non-empty"],
        ),
        (
            "Exists with values",
            manifest(
                "  podSelector:\n    matchExpressions:\n    - {key: app, operator: Exists, \
                 values: [a]}\n",
            ),
            &["spec.podSelector.matchExpressions[0].values: must be empty"],
        ),
        (
            "wrong kind",
            manifest("  podSelector: {}\n").replace("kind: NetworkPolicy", "kind: Deployment"),
            &[
                "x.yaml: document 0: kind: expected kind NetworkPolicy, found \"Deployment\" (line 2)",
            ],
        ),
        (
            "wrong apiVersion",
            manifest("  podSelector: {}\n").replace("networking.k8s.io/v1", "extensions/v1beta1"),
            &["document 0: apiVersion: unsupported apiVersion \"extensions/v1beta1\""],
        ),
        (
            "misspelt field",
            manifest("  podselector: {}\n"),
            &["document 0: spec.podselector: unknown field"],
        ),
        (
            "unknown field in a port",
            manifest("  podSelector: {}\n  ingress:\n  - ports:\n    - prot: TCP\n"),
            &["spec.ingress[0].ports[0].prot: unknown field"],
        ),
        (
            "missing podSelector",
            manifest("  ingress: []\n"),
            &["document 0: spec.podSelector: required field is missing"],
        ),
        (
            "missing name",
            manifest("  podSelector: {}\n").replace("  name: p\n", ""),
            &["document 0: metadata.name: required field is missing"],
        ),
        (
            "name with capitals",
            manifest("  podSelector: {}\n").replace("name: p", "name: Frontend_Policy"),
            &["metadata.name: \"Frontend_Policy\" is not a valid DNS-1123 subdomain"],
        ),
        (
            "unknown policy type",
            manifest("  podSelector: {}\n  policyTypes: [Both]\n"),
            &["spec.policyTypes[0]: unsupported policy type \"Both\""],
        ),
        (
            "duplicate policy type",
            manifest("  podSelector: {}\n  policyTypes: [Egress, Egress]\n"),
            &["spec.policyTypes[1]: policy type listed twice"],
        ),
        (
            "empty peer",
            manifest("  podSelector: {}\n  ingress:\n  - from:\n    - {}\n"),
            &["spec.ingress[0].from[0]: a peer must set podSelector, namespaceSelector or ipBlock"],
        ),
        (
            "ipBlock combined with a selector",
            manifest(
                "  podSelector: {}\n  egress:\n  - to:\n    - ipBlock: {cidr: 10.0.0.0/8}\n      \
                 podSelector: {}\n",
            ),
            &["spec.egress[0].to[0]: ipBlock cannot be combined with podSelector"],
        ),
        (
            "lowercase protocol",
            manifest(
                "  podSelector: {}\n  ingress:\n  - ports:\n    - {protocol: tcp, port: 80}\n",
            ),
            &["spec.ingress[0].ports[0].protocol: unsupported protocol \"tcp\""],
        ),
        (
            "port zero",
            manifest("  podSelector: {}\n  ingress:\n  - ports:\n    - port: 0\n"),
            &["spec.ingress[0].ports[0].port: must be between 1 and 65535"],
        ),
        (
            "port number out of range",
            manifest("  podSelector: {}\n  ingress:\n  - ports:\n    - port: 70000\n"),
            &["spec.ingress[0].ports[0].port: must be between 1 and 65535"],
        ),
        (
            "quoted port number",
            manifest("  podSelector: {}\n  ingress:\n  - ports:\n    - port: \"80\"\n"),
            &["spec.ingress[0].ports[0].port: \"80\" is not a valid port name"],
        ),
        (
            "port name too long",
            manifest("  podSelector: {}\n  ingress:\n  - ports:\n    - port: metrics-endpoint-x\n"),
            &["spec.ingress[0].ports[0].port: \"metrics-endpoint-x\" is not a valid port name"],
        ),
        (
            "invalid label value",
            manifest("  podSelector:\n    matchLabels: {app: -x}\n"),
            &["spec.podSelector.matchLabels.app: \"-x\" is not a valid label value"],
        ),
        (
            "invalid label key",
            manifest("  podSelector:\n    matchLabels: {\"a/b/c\": x}\n"),
            &["spec.podSelector.matchLabels.a/b/c: \"a/b/c\" is not a valid label key"],
        ),
        (
            "unquoted numeric label value",
            manifest("  podSelector:\n    matchLabels: {version: 1}\n"),
            &["spec.podSelector.matchLabels.version: expected a string (quote the value)"],
        ),
        (
            "ingress given as a mapping",
            manifest("  podSelector: {}\n  ingress:\n    from: []\n"),
            &["spec.ingress: expected a list, found a mapping"],
        ),
        (
            "invalid namespace",
            manifest("  podSelector: {}\n").replace("namespace: ns", "namespace: a.b"),
            &["metadata.namespace: \"a.b\" is not a valid DNS-1123 label"],
        ),
        (
            "error in the third document",
            format!(
                "{}\n---\n{}\n---\n{}",
                manifest("  podSelector: {}\n"),
                manifest("  podSelector: {}\n").replace("name: p", "name: q"),
                manifest("  podSelector: {}\n  ingress:\n  - ports:\n    - port: 0\n")
                    .replace("name: p", "name: r"),
            ),
            &[
                "x.yaml: document 2: spec.ingress[0].ports[0].port: must be between 1 and 65535 (line 28)",
            ],
        ),
        (
            "invalid YAML in the second document",
            format!("{}---\nspec: [unclosed\n", manifest("  podSelector: {}\n")),
            &["x.yaml: document 1: invalid YAML"],
        ),
        (
            "List item with an invalid port",
            format!(
                "apiVersion: v1\nkind: List\nitems:\n- {}",
                manifest("  podSelector: {}\n  ingress:\n  - ports:\n    - port: 0\n")
                    .replace('\n', "\n  ")
            ),
            &["document 0: items[0].spec.ingress[0].ports[0].port: must be between 1 and 65535"],
        ),
        (
            "a duplicate key",
            manifest("  podSelector: {}\n  podSelector: {}\n"),
            &["x.yaml: document 0: invalid YAML: duplicate key \"podSelector\" at line 8"],
        ),
        (
            "a scalar document",
            "just a string\n".to_owned(),
            &["x.yaml: document 0: expected a mapping, found a string"],
        ),
    ];
    for (case, text, expected) in cases {
        assert_policy_error(case, text, expected);
    }
}

fn one_policy(spec: &str) -> netpol_harness::engine::model::NetworkPolicy {
    let mut policies = parse_policies(&manifest(spec), Path::new("x.yaml")).expect("valid");
    assert_eq!(policies.len(), 1);
    policies.remove(0)
}

#[test]
fn policy_types_default_to_ingress_plus_egress_when_there_are_egress_rules() {
    let cases: &[(&str, &str, bool, bool)] = &[
        ("no rules at all", "  podSelector: {}\n", true, false),
        (
            "ingress rules only",
            "  podSelector: {}\n  ingress: [{}]\n",
            true,
            false,
        ),
        (
            "an empty egress list",
            "  podSelector: {}\n  egress: []\n",
            true,
            false,
        ),
        (
            "an egress rule",
            "  podSelector: {}\n  egress: [{}]\n",
            true,
            true,
        ),
        (
            "an empty policyTypes list",
            "  podSelector: {}\n  policyTypes: []\n",
            true,
            false,
        ),
        (
            "explicit Egress only",
            "  podSelector: {}\n  policyTypes: [Egress]\n",
            false,
            true,
        ),
        (
            "explicit Ingress despite egress rules",
            "  podSelector: {}\n  policyTypes: [Ingress]\n  egress: [{}]\n",
            true,
            false,
        ),
        (
            "explicit both",
            "  podSelector: {}\n  policyTypes: [Ingress, Egress]\n",
            true,
            true,
        ),
    ];
    for (case, spec, ingress, egress) in cases {
        let policy = one_policy(spec);
        assert_eq!(
            (policy.isolates_ingress, policy.isolates_egress),
            (*ingress, *egress),
            "{case}"
        );
    }
}

#[test]
fn namespace_defaults_to_default_like_kubectl() {
    let text = manifest("  podSelector: {}\n").replace("  namespace: ns\n", "");
    let policies = parse_policies(&text, Path::new("x.yaml")).unwrap();
    assert_eq!(policies[0].namespace, "default");
}

#[test]
fn cidr_host_bits_are_cleared_and_ipv6_is_accepted() {
    let policy = one_policy(
        "  podSelector: {}\n  egress:\n  - to:\n    - ipBlock: {cidr: 10.0.0.1/24, except: \
         [10.0.0.128/25]}\n    - ipBlock: {cidr: 'fd00::/48', except: ['fd00:0:0:1::/64']}\n",
    );
    let blocks: Vec<_> = policy.egress[0]
        .peers
        .iter()
        .map(|peer| match peer {
            Peer::IpBlock(block) => block.clone(),
            other => panic!("not an ipBlock: {other:?}"),
        })
        .collect();
    assert_eq!(
        blocks[0].cidr,
        Cidr {
            addr: "10.0.0.0".parse().unwrap(),
            prefix: 24
        }
    );
    assert_eq!(
        blocks[0].except,
        vec![Cidr {
            addr: "10.0.0.128".parse().unwrap(),
            prefix: 25
        }]
    );
    assert_eq!(
        blocks[1].cidr,
        Cidr {
            addr: "fd00::".parse().unwrap(),
            prefix: 48
        }
    );
}

#[test]
fn ports_default_to_tcp_and_keep_names_and_ranges() {
    let policy = one_policy(
        "  podSelector: {}\n  ingress:\n  - ports:\n    - port: http\n    - {protocol: UDP, \
         port: 53}\n    - {port: 8000, endPort: 8080}\n    - protocol: SCTP\n",
    );
    let ports = &policy.ingress[0].ports;
    assert_eq!(ports[0].protocol, Protocol::Tcp);
    assert_eq!(ports[0].port, Some(PortRef::Name("http".into())));
    assert_eq!(
        (ports[1].protocol, ports[1].port.clone()),
        (Protocol::Udp, Some(PortRef::Number(53)))
    );
    assert_eq!(ports[2].end_port, Some(8080));
    assert_eq!(
        (ports[3].protocol, ports[3].port.clone()),
        (Protocol::Sctp, None)
    );
}

#[test]
fn missing_and_empty_peers_and_ports_read_as_empty_lists() {
    let policy = one_policy(
        "  podSelector: {}\n  ingress:\n  - {}\n  - from: []\n    ports: []\n  - from: null\n  \
         - from:\n    - podSelector: {}\n",
    );
    assert_eq!(policy.ingress.len(), 4);
    assert!(
        policy.ingress[..3]
            .iter()
            .all(|r| r.peers.is_empty() && r.ports.is_empty())
    );
    assert_eq!(
        policy.ingress[3].peers,
        vec![Peer::Pods {
            namespace_selector: None,
            pod_selector: Some(Default::default())
        }]
    );
}

#[test]
fn selectors_keep_labels_and_expressions() {
    let policy = one_policy(
        "  podSelector:\n    matchLabels: {app: web}\n    matchExpressions:\n    - {key: tier, \
         operator: NotIn, values: [db]}\n    - {key: canary, operator: DoesNotExist}\n",
    );
    assert_eq!(
        policy
            .pod_selector
            .match_labels
            .get("app")
            .map(String::as_str),
        Some("web")
    );
    let operators: Vec<_> = policy
        .pod_selector
        .match_expressions
        .iter()
        .map(|r| r.operator)
        .collect();
    assert_eq!(operators, vec![Operator::NotIn, Operator::DoesNotExist]);
}

#[test]
fn empty_documents_are_skipped_but_counted() {
    let text = format!(
        "---\n# only a comment\n---\n{}---\n---\n{}",
        manifest("  podSelector: {}\n"),
        manifest("  podSelector: {}\n").replace("name: p", "name: q")
    );
    let policies = parse_policies(&text, Path::new("x.yaml")).unwrap();
    let documents: Vec<_> = policies.iter().map(|p| p.origin.document).collect();
    assert_eq!(documents, vec![1, 3]);
}

#[test]
fn a_list_contributes_its_items() {
    let item = |text: String| text.trim_end().replace('\n', "\n  ");
    let text = format!(
        "apiVersion: v1\nkind: List\nitems:\n- {}\n- {}\n",
        item(manifest("  podSelector: {}\n")),
        item(manifest("  podSelector: {}\n").replace("name: p", "name: q")),
    );
    let policies = parse_policies(&text, Path::new("x.yaml")).unwrap();
    assert_eq!(
        policies.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["p", "q"]
    );
}

#[test]
fn the_seed_policies_load_with_api_defaults() {
    let policies = load_policies(&[seed("policies")]).unwrap();
    let summary: Vec<_> = policies
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.namespace.as_str(),
                p.isolates_ingress,
                p.isolates_egress,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("filebeat-policy", "meeting-app", true, true),
            ("flask-backend-policy", "meeting-app", true, true),
            ("frontend-policy", "meeting-app", true, true),
            ("node-backend-policy", "meeting-app", true, true),
            ("postgres-policy", "meeting-app", true, false),
            ("prometheus-policy", "meeting-app", true, true),
            ("redis-policy", "meeting-app", true, false),
        ]
    );
    // Every policy with an egress section ends with the DNS rule.
    for policy in policies.iter().filter(|p| !p.egress.is_empty()) {
        let dns = policy.egress.last().unwrap();
        assert_eq!(dns.ports.len(), 2, "{}", policy.name);
    }
}

#[test]
fn a_policy_defined_twice_is_rejected() {
    let error = load_policies(&[seed("policies"), seed("policies/redis-policy.yaml")])
        .unwrap_err()
        .to_string();
    assert!(error.contains("redis-policy.yaml: document 0: metadata.name: policy meeting-app/redis-policy is also defined"), "{error}");
}

#[test]
fn a_directory_without_manifests_is_rejected() {
    let empty = Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-manifests");
    std::fs::create_dir_all(&empty).unwrap();
    let error = load_policies(&[empty]).unwrap_err().to_string();
    assert!(error.contains("no *.yaml or *.yml files"), "{error}");
}

#[test]
fn a_missing_file_names_the_file() {
    let error = load_policies(&[PathBuf::from("does/not/exist.yaml")]).unwrap_err();
    assert_eq!(error.to_string(), "failed to read does/not/exist.yaml");
}

// Topology.

fn topology(pods: &str) -> String {
    format!("namespaces:\n  - name: a\n  - name: b\n    labels: {{team: x}}\npods:\n{pods}")
}

#[test]
fn invalid_topologies_are_rejected_with_file_and_field_path() {
    let cases: &[(&str, String, &str)] = &[
        (
            "undeclared namespace",
            topology("  - {name: p, namespace: c}\n"),
            "t.yaml: pods[0].namespace: namespace \"c\" is not declared",
        ),
        (
            "duplicate pod",
            topology("  - {name: p, namespace: a}\n  - {name: p, namespace: a}\n"),
            "t.yaml: pods[1].name: pod a/p is declared twice",
        ),
        (
            "duplicate IP",
            topology(
                "  - {name: p, namespace: a, ip: 10.0.0.1}\n  - {name: q, namespace: b, ip: \
                 10.0.0.1}\n",
            ),
            "t.yaml: pods[1].ip: IP address 10.0.0.1 is given to two pods",
        ),
        (
            "invalid IP",
            topology("  - {name: p, namespace: a, ip: 10.0.0.300}\n"),
            "t.yaml: pods[0].ip: \"10.0.0.300\" is not an IP address",
        ),
        (
            "port zero",
            topology("  - {name: p, namespace: a, ports: [{port: 0}]}\n"),
            "t.yaml: pods[0].ports[0].port: must be between 1 and 65535",
        ),
        (
            "same port and protocol twice",
            topology(
                "  - {name: p, namespace: a, ports: [{port: 80}, {port: 80, protocol: TCP}]}\n",
            ),
            "t.yaml: pods[0].ports[1].port: 80/TCP is listed twice",
        ),
        (
            "same port name twice",
            topology(
                "  - {name: p, namespace: a, ports: [{port: 80, name: web}, {port: 81, name: \
                 web}]}\n",
            ),
            "t.yaml: pods[0].ports[1].name: port name \"web\" is used twice",
        ),
        (
            "port name with a double dash",
            topology("  - {name: p, namespace: a, ports: [{port: 80, name: we--b}]}\n"),
            "t.yaml: pods[0].ports[0].name: \"we--b\" is not a valid port name",
        ),
        (
            "port name without a letter",
            topology("  - {name: p, namespace: a, ports: [{port: 80, name: \"8080\"}]}\n"),
            "t.yaml: pods[0].ports[0].name: \"8080\" is not a valid port name",
        ),
        (
            "unknown check",
            topology("  - {name: p, namespace: a, ports: [{port: 80, check: ping}]}\n"),
            "t.yaml: pods[0].ports[0].check: unknown check \"ping\"",
        ),
        (
            "unknown protocol",
            topology("  - {name: p, namespace: a, ports: [{port: 80, protocol: ICMP}]}\n"),
            "t.yaml: pods[0].ports[0].protocol: unsupported protocol \"ICMP\"",
        ),
        (
            "invalid label key",
            topology("  - {name: p, namespace: a, labels: {\"-app\": x}}\n"),
            "t.yaml: pods[0].labels.-app: \"-app\" is not a valid label key",
        ),
        (
            "invalid label value",
            topology("  - {name: p, namespace: a, labels: {app: \"a b\"}}\n"),
            "t.yaml: pods[0].labels.app: \"a b\" is not a valid label value",
        ),
        (
            "misspelt field",
            topology("  - {name: p, namespace: a, label: {}}\n"),
            "t.yaml: pods[0].label: unknown field",
        ),
        (
            "provided given as a string",
            topology("  - {name: p, namespace: a, provided: \"yes\"}\n"),
            "t.yaml: pods[0].provided: expected true or false, found a string",
        ),
        (
            "namespace declared twice",
            "namespaces:\n  - name: a\n  - name: a\n".to_owned(),
            "t.yaml: namespaces[1].name: namespace \"a\" is declared twice",
        ),
        (
            "namespace name label contradicting the name",
            "namespaces:\n  - name: a\n    labels: {kubernetes.io/metadata.name: b}\n".to_owned(),
            "t.yaml: namespaces[0].labels: kubernetes.io/metadata.name must equal",
        ),
        ("an empty file", String::new(), "t.yaml: the file is empty"),
        (
            "two documents",
            "namespaces: []\n---\npods: []\n".to_owned(),
            "t.yaml: document 1: expected a single YAML document",
        ),
    ];
    for (case, text, expected) in cases {
        let error = parse_topology(text, Path::new("t.yaml"))
            .expect_err(case)
            .to_string();
        assert!(
            error.contains(expected),
            "{case}: {error:?} lacks {expected:?}"
        );
    }
}

#[test]
fn namespaces_carry_the_implied_name_label() {
    let topology = parse_topology(&topology(""), Path::new("t.yaml")).unwrap();
    let b = &topology.namespaces[1];
    assert_eq!(
        b.labels.get(NAMESPACE_NAME_LABEL).map(String::as_str),
        Some("b")
    );
    assert_eq!(b.labels.get("team").map(String::as_str), Some("x"));
}

#[test]
fn missing_ips_are_assigned_in_order_skipping_explicit_ones() {
    let text = topology(
        "  - {name: p, namespace: a}\n  - {name: q, namespace: a, ip: 10.244.1.2}\n  - {name: \
         r, namespace: b}\n  - {name: s, namespace: b, ip: 'fd00::1'}\n",
    );
    let first = parse_topology(&text, Path::new("t.yaml")).unwrap();
    let ips: Vec<IpAddr> = first.pods.iter().map(|p| p.ip).collect();
    let expected: Vec<IpAddr> = ["10.244.1.1", "10.244.1.2", "10.244.1.3", "fd00::1"]
        .iter()
        .map(|ip| ip.parse().unwrap())
        .collect();
    assert_eq!(ips, expected);
    assert_eq!(
        parse_topology(&text, Path::new("t.yaml")).unwrap(),
        first,
        "stable"
    );
}

#[test]
fn the_seed_topology_loads() {
    let topology = load_topology(&seed("topology.yaml")).unwrap();
    assert_eq!(topology.namespaces.len(), 4);
    assert_eq!(topology.pods.len(), 14);
    let coredns = topology
        .pods
        .iter()
        .find(|p| p.id() == "kube-system/coredns")
        .unwrap();
    assert!(coredns.provided);
    for pod in topology.pods.iter().filter(|p| p.name != "coredns") {
        assert!(
            pod.ports
                .iter()
                .any(|p| p.port == 8080 && p.name.as_deref() == Some("canary")),
            "{} has no canary port",
            pod.id()
        );
    }
}

// Intent.

#[test]
fn invalid_intents_are_rejected_with_file_and_field_path() {
    let topology = load_topology(&seed("topology.yaml")).unwrap();
    let flow = |body: &str| format!("flows:\n  - {body}\n");
    let cases: &[(&str, String, &str)] = &[
        (
            "unknown pod",
            flow("{from: meeting-app/nobody, to: meeting-app/redis, port: 6379, reason: r}"),
            "i.yaml: flows[0].from: no pod \"meeting-app/nobody\" in the topology",
        ),
        (
            "unknown pod in a list",
            flow(
                "{from: meeting-app/redis, to: [meeting-app/postgres, redis], port: 1, reason: r}",
            ),
            "i.yaml: flows[0].to[1]: no pod \"redis\"",
        ),
        (
            "a port the destination does not serve",
            flow("{from: meeting-app/frontend, to: meeting-app/redis, port: 6380, reason: r}"),
            "i.yaml: flows[0]: meeting-app/redis does not serve 6380/TCP",
        ),
        (
            "a pod to itself",
            flow("{from: meeting-app/redis, to: meeting-app/redis, port: 6379, reason: r}"),
            "i.yaml: flows[0]: meeting-app/redis is both source and destination",
        ),
        (
            "no reason",
            flow("{from: meeting-app/frontend, to: meeting-app/redis, port: 6379}"),
            "i.yaml: flows[0].reason: required field is missing",
        ),
        (
            "port and ports",
            flow(
                "{from: meeting-app/frontend, to: kube-system/coredns, port: 53, ports: \
                 [53/UDP], reason: r}",
            ),
            "i.yaml: flows[0]: give either `port`",
        ),
        (
            "a malformed ports entry",
            flow("{from: meeting-app/frontend, to: kube-system/coredns, ports: [53], reason: r}"),
            "i.yaml: flows[0].ports[0]: expected a string",
        ),
    ];
    for (case, text, expected) in cases {
        let error = parse_intent(text, Path::new("i.yaml"), &topology)
            .expect_err(case)
            .to_string();
        assert!(
            error.contains(expected),
            "{case}: {error:?} lacks {expected:?}"
        );
    }
}

#[test]
fn the_seed_intent_expands_lists_of_pods_and_ports() {
    let topology = load_topology(&seed("topology.yaml")).unwrap();
    let flows = load_intent(&seed("intent.yaml"), &topology).unwrap();
    // 1 + 2 + 2 + 2 + 9 * 2 (DNS) + 1 + 3 + 1
    assert_eq!(flows.len(), 30);
    let dns = flows.iter().filter(|f| f.port == 53).count();
    assert_eq!(dns, 18);
    assert!(flows.iter().all(|f| !f.reason.is_empty()));
}

#[test]
fn assigned_ips_skip_addresses_ending_in_0_and_255() {
    let pods: String = (0..256)
        .map(|i| format!("  - {{name: p{i}, namespace: a}}\n"))
        .collect();
    let topology = parse_topology(&topology(&pods), Path::new("t.yaml")).unwrap();
    let ip = |i: usize| topology.pods[i].ip.to_string();
    assert_eq!(
        (ip(253), ip(254), ip(255)),
        (
            "10.244.1.254".into(),
            "10.244.2.1".into(),
            "10.244.2.2".into()
        )
    );
}
