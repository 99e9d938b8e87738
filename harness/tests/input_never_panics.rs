//! Property tests: no input, however malformed, makes a reader panic, and whatever a reader
//! accepts satisfies the model's documented invariants.

use netpol_harness::engine::model::{Cidr, NetworkPolicy, Operator, Peer, PortRef};
use netpol_harness::input::{parse_intent, parse_policies, parse_topology};
use proptest::prelude::*;
use std::net::IpAddr;
use std::path::Path;

/// Keys and scalars of the input formats, so that random documents often get past the
/// first checks and reach the deeper ones.
const KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "namespace",
    "labels",
    "spec",
    "podSelector",
    "namespaceSelector",
    "ipBlock",
    "cidr",
    "except",
    "policyTypes",
    "ingress",
    "egress",
    "from",
    "to",
    "ports",
    "port",
    "endPort",
    "protocol",
    "matchLabels",
    "matchExpressions",
    "key",
    "operator",
    "values",
    "items",
    "namespaces",
    "pods",
    "ip",
    "provided",
    "check",
    "flows",
    "reason",
];
const SCALARS: &[&str] = &[
    "networking.k8s.io/v1",
    "NetworkPolicy",
    "List",
    "v1",
    "TCP",
    "UDP",
    "SCTP",
    "Ingress",
    "Egress",
    "In",
    "NotIn",
    "Exists",
    "DoesNotExist",
    "http",
    "a",
    "ns",
    "10.0.0.0/8",
    "10.0.0.1/24",
    "10.0.0.0/33",
    "fd00::/64",
    "::/0",
    "0.0.0.0/0",
    "app",
    "a/b",
    "ns/a",
    "53/UDP",
];

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![
            Just(0i64),
            Just(1),
            Just(80),
            Just(65535),
            Just(65536),
            Just(-1),
            any::<i64>()
        ]
        .prop_map(Value::from),
        proptest::sample::select(SCALARS).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 48, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..6).prop_map(
                |entries| {
                    Value::Object(
                        entries
                            .into_iter()
                            .map(|(k, v)| (k.to_owned(), v))
                            .collect(),
                    )
                }
            ),
        ]
    })
}

/// A random manifest-shaped document: the right top-level fields, random contents.
fn manifest_like() -> impl Strategy<Value = String> {
    (json_value(), json_value(), any::<bool>()).prop_map(|(metadata, spec, valid_head)| {
        let mut doc = serde_json::json!({"metadata": metadata, "spec": spec});
        if valid_head {
            doc["apiVersion"] = "networking.k8s.io/v1".into();
            doc["kind"] = "NetworkPolicy".into();
            doc["metadata"] = serde_json::json!({"name": "p", "namespace": "ns"});
        }
        // JSON is YAML.
        doc.to_string()
    })
}

/// Whether the CIDR's host bits are all zero.
fn is_network(cidr: &Cidr) -> bool {
    let (bits, width) = match cidr.addr {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    };
    let host_bits = width - u32::from(cidr.prefix.min(width as u8));
    bits == 0 || bits.trailing_zeros() >= host_bits
}

fn cidr_text() -> impl Strategy<Value = String> {
    prop_oneof![
        (any::<[u8; 4]>(), 0u8..36)
            .prop_map(|(a, p)| format!("{}.{}.{}.{}/{p}", a[0], a[1], a[2], a[3])),
        (any::<u16>(), any::<u16>(), 0u8..132).prop_map(|(a, b, p)| format!("{a:x}:{b:x}::/{p}")),
        (0u8..4, 0u8..33).prop_map(|(a, p)| format!("10.{a}.0.0/{p}")),
        ".{0,10}",
    ]
}

fn port_value() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        (0i64..70000).prop_map(serde_json::Value::from),
        proptest::sample::select(&["http", "dns-tcp", "80", "-x", "HTTP"][..])
            .prop_map(serde_json::Value::from),
        Just(serde_json::Value::Null),
    ]
}

/// A manifest with a valid skeleton and random ipBlocks and ports, to reach the checks of
/// CIDRs and port ranges.
fn skeleton_manifest() -> impl Strategy<Value = String> {
    let block = (cidr_text(), proptest::collection::vec(cidr_text(), 0..3));
    let port = (
        port_value(),
        port_value(),
        proptest::sample::select(&["TCP", "UDP", "x"][..]),
    );
    (block, proptest::collection::vec(port, 0..3)).prop_map(|((cidr, except), ports)| {
        let ports: Vec<_> = ports
            .into_iter()
            .map(|(port, end, protocol)| serde_json::json!({"port": port, "endPort": end, "protocol": protocol}))
            .collect();
        serde_json::json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "p"},
            "spec": {
                "podSelector": {},
                "egress": [{"to": [{"ipBlock": {"cidr": cidr, "except": except}}], "ports": ports}],
            },
        })
        .to_string()
    })
}

fn check_invariants(policy: &NetworkPolicy) {
    let rules = policy.ingress.iter().chain(&policy.egress);
    for rule in rules {
        for port in &rule.ports {
            if let Some(end) = port.end_port {
                match &port.port {
                    Some(PortRef::Number(start)) => assert!(end >= *start),
                    other => panic!("endPort {end} with port {other:?}"),
                }
            }
            assert_ne!(port.port, Some(PortRef::Number(0)));
        }
        for peer in &rule.peers {
            match peer {
                Peer::Pods {
                    namespace_selector,
                    pod_selector,
                } => {
                    assert!(namespace_selector.is_some() || pod_selector.is_some());
                    for selector in namespace_selector.iter().chain(pod_selector) {
                        for requirement in &selector.match_expressions {
                            let needs_values =
                                matches!(requirement.operator, Operator::In | Operator::NotIn);
                            assert_eq!(needs_values, !requirement.values.is_empty());
                        }
                    }
                }
                Peer::IpBlock(block) => {
                    assert!(is_network(&block.cidr), "{:?}", block.cidr);
                    for except in &block.except {
                        assert!(is_network(except));
                        assert!(except.prefix > block.cidr.prefix);
                        assert_eq!(except.addr.is_ipv4(), block.cidr.addr.is_ipv4());
                    }
                }
            }
        }
    }
}

fn seed_topology() -> netpol_harness::engine::model::Topology {
    static SEED: std::sync::OnceLock<netpol_harness::engine::model::Topology> =
        std::sync::OnceLock::new();
    SEED.get_or_init(|| {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/meeting-app/topology.yaml");
        netpol_harness::input::load_topology(&path).expect("the seed topology loads")
    })
    .clone()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,300}") {
        let _ = parse_policies(&text, Path::new("x.yaml"));
        let _ = parse_topology(&text, Path::new("t.yaml"));
    }

    #[test]
    fn yaml_punctuation_never_panics(text in "[a-z0-9:{}\\[\\],\\- \n#'\"/.*&!|>%@?]{0,200}") {
        let _ = parse_policies(&text, Path::new("x.yaml"));
        let _ = parse_topology(&text, Path::new("t.yaml"));
    }

    #[test]
    fn random_manifests_never_panic_and_keep_the_invariants(
        docs in proptest::collection::vec(manifest_like(), 1..3)
    ) {
        let text = docs.join("\n---\n");
        if let Ok(policies) = parse_policies(&text, Path::new("x.yaml")) {
            for policy in &policies {
                check_invariants(policy);
            }
        }
    }

    #[test]
    fn random_ip_blocks_and_ports_keep_the_invariants(text in skeleton_manifest()) {
        if let Ok(policies) = parse_policies(&text, Path::new("x.yaml")) {
            for policy in &policies {
                check_invariants(policy);
            }
        }
    }

    #[test]
    fn random_topologies_and_intents_never_panic(doc in json_value(), intent in json_value()) {
        let text = doc.to_string();
        if let Ok(topology) = parse_topology(&text, Path::new("t.yaml")) {
            let _ = parse_intent(&intent.to_string(), Path::new("i.yaml"), &topology);
        }
        let _ = parse_intent(&intent.to_string(), Path::new("i.yaml"), &seed_topology());
    }
}
