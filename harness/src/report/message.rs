//! The failure message of one edge, as `cargo test` and JUnit show it: what was expected,
//! what the probe saw, and why the engine expects what it does.

use super::model::{EdgeReport, Seen};
use std::fmt::Write;

/// The first line of a failure: `expected allow, observed deny (timeout after 2001 ms)`.
pub fn headline(edge: &EdgeReport) -> String {
    let (outcome, ms) = (edge.observed, edge.latency_ms);
    let observed = match Seen::of(outcome) {
        Seen::Open => format!("allow ({outcome} in {ms:.0} ms)"),
        Seen::Closed => format!("deny ({outcome} after {ms:.0} ms)"),
        Seen::Broken => format!("{outcome} after {ms:.0} ms"),
    };
    format!("expected {}, observed {observed}", edge.expected)
}

/// The full failure message: the headline, the probe's detail, and the engine's explanation.
pub fn failure_message(edge: &EdgeReport) -> String {
    let mut message = headline(edge);
    if !edge.dialled.is_empty() {
        let _ = write!(message, "\ndialled ({}): {}", edge.via, edge.dialled);
    }
    if edge.observed == netpol_probes::wire::Outcome::DnsFailure {
        message.push_str(
            "\nthe destination's name did not resolve, so the destination was never dialled: \
             allow the source's egress to the cluster DNS to verify this edge by name",
        );
    }
    if !edge.detail.is_empty() {
        let _ = write!(message, "\nprobe detail: {}", edge.detail);
    }
    let _ = write!(
        message,
        "\nwhy the policies {} it:\n  {}",
        edge.expected,
        edge.explanation.replace('\n', "\n  ")
    );
    message
}
