//! Timeouts and unreachables for real: nftables rules and `prohibit` routes in a throwaway
//! network namespace, probed from inside it.

use crate::common::{TestNetns, privileged, target};
use netpol_probes::spec::{Check, Protocol};
use netpol_probes::wire::Outcome;
use std::net::SocketAddr;

const DROPPED: u16 = 9001;
const REJECTED: u16 = 9002;

/// A namespace whose input drops port 9001 and rejects port 9002 as administratively
/// prohibited, the two ways a CNI denies an edge.
fn denying_netns() -> TestNetns {
    let netns = TestNetns::new();
    netns.nft(&format!(
        "table inet nph {{
            chain input {{
                type filter hook input priority 0; policy accept;
                meta l4proto {{ tcp, udp }} th dport {DROPPED} drop
                meta l4proto {{ tcp, udp }} th dport {REJECTED} reject with icmpx type admin-prohibited
            }}
        }}"
    ));
    netns
}

fn all_checks() -> Vec<(Protocol, Check)> {
    vec![
        (Protocol::Tcp, Check::Http),
        (Protocol::Tcp, Check::Websocket),
        (Protocol::Tcp, Check::Postgres),
        (Protocol::Tcp, Check::Redis),
        (Protocol::Tcp, Check::Dns),
        (Protocol::Udp, Check::Dns),
        (Protocol::Tcp, Check::Tcp),
        (Protocol::Udp, Check::Udp),
    ]
}

#[tokio::test]
async fn a_dropped_port_times_out_after_the_timeout_and_no_later() {
    if !privileged("a_dropped_port_times_out_after_the_timeout_and_no_later") {
        return;
    }
    let netns = denying_netns();
    let addr: SocketAddr = ([127, 0, 0, 1], DROPPED).into();
    for (protocol, check) in all_checks() {
        let mut dropped = target("drop", addr, protocol, check);
        dropped.timeout_ms = 300;
        let result = netns.probe(dropped).await;
        assert_eq!(
            result.outcome,
            Outcome::Timeout,
            "{check}/{protocol}: {result:?}"
        );
        assert!(
            (300.0..400.0).contains(&result.elapsed_ms),
            "{check}/{protocol} took {} ms for a 300 ms timeout",
            result.elapsed_ms
        );
    }
}

#[tokio::test]
async fn a_rejected_port_is_unreachable() {
    if !privileged("a_rejected_port_is_unreachable") {
        return;
    }
    let netns = denying_netns();
    let addr: SocketAddr = ([127, 0, 0, 1], REJECTED).into();
    for (protocol, check) in all_checks() {
        let result = netns.probe(target("reject", addr, protocol, check)).await;
        assert_eq!(
            result.outcome,
            Outcome::Unreachable,
            "{check}/{protocol}: {result:?}"
        );
        assert!(result.elapsed_ms < 100.0, "{result:?}");
    }
}

#[tokio::test]
async fn a_prohibit_route_is_unreachable() {
    if !privileged("a_prohibit_route_is_unreachable") {
        return;
    }
    let netns = TestNetns::new();
    // More specific than the local table's 127.0.0.0/8, so it wins for this one address.
    netns.exec(
        "ip",
        &[
            "route",
            "add",
            "prohibit",
            "127.0.0.77/32",
            "table",
            "local",
        ],
    );
    let addr: SocketAddr = ([127, 0, 0, 77], 80).into();
    for (protocol, check) in all_checks() {
        let result = netns.probe(target("prohibit", addr, protocol, check)).await;
        assert_eq!(
            result.outcome,
            Outcome::Unreachable,
            "{check}/{protocol}: {result:?}"
        );
    }
}

#[tokio::test]
async fn the_namespace_is_deleted_when_its_guard_drops() {
    if !privileged("the_namespace_is_deleted_when_its_guard_drops") {
        return;
    }
    let netns = TestNetns::new();
    let path = netpol_probes::netns::path(&netns.name);
    assert!(path.exists());
    drop(netns);
    assert!(!path.exists(), "{} still exists", path.display());
}
