//! `netpol-harness sensitivity` on the real local backend: with the seed and the semantics
//! fixture, the clean runs pass, every injected fault is detected by some edge, and a
//! late enforcement inside the convergence timeout passes with a convergence time that
//! holds the delay.
//!
//! Needs root (network namespaces, nftables) and the `netpol-probe` binary (built by
//! `cargo test --workspace`, or set NETPOL_PROBE_BIN). One deployment per fixture serves
//! every fault; the run takes about five minutes because every step of a detected fault
//! waits out the convergence timeout.

use clap::Parser;
use netpol_harness::cli::{self, Cli, Status};

#[test]
fn every_fault_is_detected_by_the_seed_or_the_semantics_fixture_and_the_clean_run_passes() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures");
    let cli = Cli::try_parse_from([
        "netpol-harness",
        "sensitivity",
        "--fixtures",
        &format!("{fixtures}/meeting-app"),
        "--fixtures",
        &format!("{fixtures}/semantics"),
    ])
    .unwrap();
    let mut out = Vec::new();
    let status = cli::run(cli, &mut out).expect("no infrastructure error");
    let table = String::from_utf8(out).unwrap();
    eprintln!("{table}");
    assert_eq!(status, Status::Success, "{table}");
    assert!(
        table.contains("PASS: the clean run passes and every fault is caught"),
        "{table}"
    );
    let late = table
        .lines()
        .find(|line| line.starts_with("late-enforcement=1500"))
        .expect("a late-enforcement row");
    let numbers: Vec<f64> = late
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    let [time, resolution, ..] = numbers[..] else {
        panic!("no convergence time in {late:?}");
    };
    // The rules are loaded after the delay, and loading takes a moment (longer on a loaded
    // machine): the interval must end after the delay, start before the rules could have
    // been loaded, and be about one round (a probe timeout, 1 s) wide.
    assert!(
        1500.0 <= time + 1.0 && time - resolution <= 1500.0 + 1000.0 && resolution <= 3000.0,
        "convergence {time} ms ± {resolution} ms does not hold the 1500 ms delay: {late}"
    );
}
