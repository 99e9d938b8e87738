//! Differential test of the readers against the engine's synthetic generator: a synthetic
//! cluster written as YAML and read back is the same cluster.

use netpol_harness::engine::model::{NetworkPolicy, Origin};
use netpol_harness::input::{parse_policies, parse_topology, render_policies, render_topology};
use netpol_harness::synth::synthetic;
use proptest::prelude::*;
use std::path::Path;

fn without_origin(policies: &[NetworkPolicy]) -> Vec<NetworkPolicy> {
    policies
        .iter()
        .cloned()
        .map(|p| NetworkPolicy {
            origin: Origin::default(),
            ..p
        })
        .collect()
}

fn round_trip(pods: usize, namespaces: usize, policies: usize, seed: u64) {
    let (topology, policies) = synthetic(pods, namespaces, policies, seed);
    let topology_text = render_topology(&topology);
    let read = parse_topology(&topology_text, Path::new("t.yaml"))
        .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{topology_text}"));
    assert_eq!(read, topology, "seed {seed}");
    let policies_text = render_policies(&policies);
    let read = parse_policies(&policies_text, Path::new("p.yaml"))
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    let documents: Vec<usize> = read.iter().map(|p| p.origin.document).collect();
    assert_eq!(
        documents,
        (0..policies.len()).collect::<Vec<_>>(),
        "one document per policy"
    );
    let (read, expected) = (without_origin(&read), without_origin(&policies));
    for (read, expected) in read.iter().zip(&expected) {
        assert_eq!(read, expected, "seed {seed}");
    }
    assert_eq!(read.len(), expected.len());
}

#[test]
fn a_benchmark_sized_synthetic_cluster_survives_a_round_trip() {
    round_trip(1000, 20, 200, 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn synthetic_clusters_survive_a_round_trip_through_yaml(seed in any::<u64>()) {
        round_trip(30, 3, 20, seed);
    }
}
