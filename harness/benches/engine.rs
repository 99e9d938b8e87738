//! Engine throughput on synthetic clusters: `cargo bench -p netpol-harness --bench engine`.
//!
//! Prints, per size, the time `Engine::new` takes and how many edge verdicts per second one
//! core computes, both with the deciding policies and rules collected (`verdict`) and as a
//! bare yes/no (`allows`), and how long `lint` takes. The goal is at least one million
//! verdicts per second on one core for 1,000 pods in 20 namespaces under 200 policies.
//!
//! Rates are given against wall time and against the thread's CPU time: on a machine shared
//! with other work the second is the one-core figure, as it leaves out time the scheduler
//! gave to other processes.

use netpol_harness::engine::{Engine, lint};
use netpol_harness::synth::synthetic;
use std::hint::black_box;
use std::time::{Duration, Instant};

const SEED: u64 = 2;
/// (pods, namespaces, policies)
const SIZES: [(usize, usize, usize); 4] = [(15, 3, 5), (60, 6, 20), (200, 10, 50), (1000, 20, 200)];

fn main() {
    println!(
        "{:>5} {:>3} {:>5} {:>8} {:>14} {:>9} {:>11} {:>11} {:>11} {:>9} {:>8} {:>8}",
        "pods",
        "ns",
        "pols",
        "edges",
        "allowed",
        "new",
        "verdict/s",
        "verdict/cpu",
        "allows/cpu",
        "lint cpu",
        "findings",
        "peak MiB"
    );
    for (pods, namespaces, policies) in SIZES {
        bench_size(pods, namespaces, policies);
    }
}

fn bench_size(pods: usize, namespaces: usize, policy_count: usize) {
    let (topology, policies) = synthetic(pods, namespaces, policy_count, SEED);
    let (engine, new_time) = best_of(5, || Engine::new(&topology, &policies));
    let edges = engine.edges();
    let verdicts = || {
        edges
            .iter()
            .filter(|&&e| black_box(engine.verdict(e)).allowed())
            .count()
    };
    let (allowed, verdict_time) = best_of(3, verdicts);
    let (_, allows_time) = best_of(3, || {
        edges
            .iter()
            .filter(|&&e| black_box(engine.allows(e)))
            .count()
    });
    let (findings, lint_time) = best_of(1, || lint(&engine, &[]).len());
    println!(
        "{pods:>5} {namespaces:>3} {policy_count:>5} {:>8} {:>14} {:>9} {:>11.0} {:>11.0} \
         {:>11.0} {:>9} {findings:>8} {:>8}",
        edges.len(),
        format!("{allowed} ({:.0}%)", percent(allowed, edges.len())),
        format!("{:.2?}", new_time.wall),
        per_second(edges.len(), verdict_time.wall),
        per_second(edges.len(), verdict_time.cpu),
        per_second(edges.len(), allows_time.cpu),
        format!("{:.2?}", lint_time.cpu),
        peak_mib(),
    );
}

/// This process's peak resident memory in MiB so far (`VmHWM` of /proc/self/status; it only
/// grows, so each row bounds the sizes up to it).
fn peak_mib() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or_else(|| "?".to_owned(), |kb| format!("{:.1}", kb / 1024.0))
}

/// The fastest of several runs, by wall time and by this thread's CPU time.
#[derive(Clone, Copy)]
struct Timing {
    wall: Duration,
    cpu: Duration,
}

/// Runs `work` `runs` times (at least once) and returns the last result with the fastest
/// times.
fn best_of<T>(runs: usize, mut work: impl FnMut() -> T) -> (T, Timing) {
    let mut best = Timing {
        wall: Duration::MAX,
        cpu: Duration::MAX,
    };
    let (cpu_start, start) = (thread_cpu_time(), Instant::now());
    let mut result = black_box(work());
    best.wall = start.elapsed();
    best.cpu = thread_cpu_time().saturating_sub(cpu_start);
    for _ in 1..runs {
        let (cpu_start, start) = (thread_cpu_time(), Instant::now());
        result = black_box(work());
        best.wall = best.wall.min(start.elapsed());
        best.cpu = best.cpu.min(thread_cpu_time().saturating_sub(cpu_start));
    }
    (result, best)
}

/// The CPU time this thread has used so far (zero if the clock cannot be read).
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec that outlives the call.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    let seconds = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(now.tv_nsec).unwrap_or(0);
    if status == 0 {
        Duration::new(seconds, nanos)
    } else {
        Duration::ZERO
    }
}

fn per_second(count: usize, time: Duration) -> f64 {
    count as f64 / time.as_secs_f64().max(f64::MIN_POSITIVE)
}

fn percent(part: usize, whole: usize) -> f64 {
    100.0 * part as f64 / whole.max(1) as f64
}
