//! Local backend setup times: `cargo bench -p netpol-harness --bench local_deploy` (as root).
//!
//! Deploys the seed fixture three times, then synthetic topologies of 60 and 200 pods, and
//! prints per deploy the time of each phase (preflight; namespaces and links; the first
//! nftables table; servers, including Postgres initdb, until every pod is ready), the time
//! to apply the policies (compile, `nft -f`, conntrack flush), one probing round of every
//! edge with no policy (all open) and one with the policies (denied edges wait out the
//! 1 s probe timeout), the teardown, and the process's peak resident memory so far (VmHWM,
//! which only grows: read it down the rows). Goals: namespaces and links for the seed well
//! under 1 s, the whole seed deploy under 5 s, deploy linear in pods, a probing round flat
//! in edges up to the concurrency bound.

use netpol_harness::backend::{Backend, LocalBackend, LocalConfig, Via};
use netpol_harness::engine::{NetworkPolicy, Topology};
use netpol_harness::runner::RunOptions;
use netpol_harness::runner::plan::baseline_edges;
use netpol_harness::runner::probing::probe_round;
use std::path::Path;
use std::time::{Duration, Instant};

fn seed() -> (Topology, Vec<NetworkPolicy>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/meeting-app");
    let topology = netpol_harness::input::load_topology(&dir.join("topology.yaml")).unwrap();
    let policies = netpol_harness::input::load_policies(&[dir.join("policies")]).unwrap();
    (topology, policies)
}

/// A synthetic topology without its IPv6 pods (the local backend is IPv4 only).
fn synthetic(pods: usize) -> (Topology, Vec<NetworkPolicy>) {
    let (mut topology, policies) = netpol_harness::synth::synthetic(pods, pods / 10, pods / 4, 2);
    topology.pods.retain(|pod| pod.ip.is_ipv4());
    (topology, policies)
}

fn ms(duration: Duration) -> String {
    format!("{:.0}", duration.as_secs_f64() * 1000.0)
}

async fn measure(name: &str, topology: &Topology, policies: &[NetworkPolicy]) {
    let mut backend = LocalBackend::new(LocalConfig::default());
    backend.deploy(topology).await.expect("deploy");
    let t = backend.timings();
    let edges = baseline_edges(name, topology, &[Via::Pod]);
    let options = RunOptions {
        probe_timeout: Duration::from_millis(1000),
        ..RunOptions::default()
    };
    let start = Instant::now();
    probe_round(&backend, topology, &edges, &options)
        .await
        .expect("open round");
    let open_round = start.elapsed();
    let start = Instant::now();
    backend.apply_policies(policies).await.expect("apply");
    let apply = start.elapsed();
    let start = Instant::now();
    probe_round(&backend, topology, &edges, &options)
        .await
        .expect("policy round");
    let policy_round = start.elapsed();
    let start = Instant::now();
    backend.teardown().await.expect("teardown");
    let teardown = start.elapsed();
    println!(
        "{name:<14} {:>5} {:>6} {:>9} {:>8} {:>6} {:>7} {:>8} {:>8} {:>6} {:>6} {:>6} {:>9} {:>8}",
        topology.pods.len(),
        edges.len(),
        ms(t.preflight),
        ms(t.network),
        ms(t.nftables),
        ms(t.initdb),
        ms(t.servers),
        ms(t.total),
        ms(apply),
        ms(open_round),
        ms(policy_round),
        ms(teardown),
        peak_mib()
    );
}

/// This process's peak resident memory in MiB (`VmHWM` of /proc/self/status).
fn peak_mib() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or_else(|| "?".to_owned(), |kb| format!("{:.1}", kb / 1024.0))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    println!(
        "{:<14} {:>5} {:>6} {:>9} {:>8} {:>6} {:>7} {:>8} {:>8} {:>6} {:>6} {:>6} {:>9} {:>8}",
        "topology",
        "pods",
        "edges",
        "preflight",
        "network",
        "nft",
        "initdb",
        "servers",
        "deploy",
        "apply",
        "open",
        "policy",
        "teardown",
        "peak MiB"
    );
    println!("(times in ms; open and policy are one probing round each)");
    let (topology, policies) = seed();
    for _ in 0..3 {
        runtime.block_on(measure("meeting-app", &topology, &policies));
    }
    for pods in [15, 60, 200] {
        let (topology, policies) = synthetic(pods);
        runtime.block_on(measure(&format!("synthetic-{pods}"), &topology, &policies));
    }
}
