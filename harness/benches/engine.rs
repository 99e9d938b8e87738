//! Engine throughput on synthetic clusters: `cargo bench -p netpol-harness --bench engine`.
//!
//! Prints, per size, the time `Engine::new` takes and how many edge verdicts per second one
//! core computes, both with explanations collected (`verdict`) and as a bare yes/no
//! (`allows`). The goal is at least one million verdicts per second for 1,000 pods in 20
//! namespaces under 200 policies.

use netpol_harness::engine::{Engine, lint};
use netpol_harness::synth::synthetic;
use std::hint::black_box;
use std::time::{Duration, Instant};

const SEED: u64 = 2;
/// (pods, namespaces, policies)
const SIZES: [(usize, usize, usize); 4] = [(15, 3, 5), (60, 6, 20), (200, 10, 50), (1000, 20, 200)];

fn main() {
    println!(
        "{:>6} {:>4} {:>6} {:>10} {:>14} {:>9} {:>12} {:>12} {:>9} {:>8}",
        "pods",
        "ns",
        "pols",
        "edges",
        "allowed",
        "new",
        "verdict/s",
        "allows/s",
        "lint",
        "findings"
    );
    for (pods, namespaces, policies) in SIZES {
        bench_size(pods, namespaces, policies);
    }
}

fn bench_size(pods: usize, namespaces: usize, policy_count: usize) {
    let (topology, policies) = synthetic(pods, namespaces, policy_count, SEED);
    let (engine, new_time) = best_of(5, || Engine::new(&topology, &policies));
    let edges = engine.edges();
    let (allowed, verdict_time) = best_of(3, || {
        edges
            .iter()
            .filter(|&&e| black_box(engine.verdict(e)).allowed())
            .count()
    });
    let (_, allows_time) = best_of(3, || {
        edges
            .iter()
            .filter(|&&e| black_box(engine.allows(e)))
            .count()
    });
    let lint_start = Instant::now();
    let findings = black_box(lint(&engine, &[])).len();
    let lint_time = lint_start.elapsed();
    println!(
        "{pods:>6} {namespaces:>4} {policy_count:>6} {:>10} {:>14} {:>9} {:>12.0} {:>12.0} {:>9} {:>8}",
        edges.len(),
        format!("{allowed} ({:.0}%)", percent(allowed, edges.len())),
        format!("{:.2?}", new_time),
        per_second(edges.len(), verdict_time),
        per_second(edges.len(), allows_time),
        format!("{:.2?}", lint_time),
        findings,
    );
}

/// Runs `work` `runs` times and returns the last result with the fastest time.
fn best_of<T>(runs: usize, mut work: impl FnMut() -> T) -> (T, Duration) {
    let mut best = Duration::MAX;
    let mut result = None;
    for _ in 0..runs {
        let start = Instant::now();
        let value = black_box(work());
        best = best.min(start.elapsed());
        result = Some(value);
    }
    (result.expect("runs is at least one"), best)
}

fn per_second(count: usize, time: Duration) -> f64 {
    count as f64 / time.as_secs_f64().max(f64::MIN_POSITIVE)
}

fn percent(part: usize, whole: usize) -> f64 {
    100.0 * part as f64 / whole.max(1) as f64
}
