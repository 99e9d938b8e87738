//! Every check against the agent's own servers, connected and wrong identity.

use crate::common::{Agent, expecting, free_port, loopback_ip, probe, target};
use netpol_probes::spec::{Check, Protocol};
use netpol_probes::wire::Outcome;
use std::net::SocketAddr;

struct Case {
    name: &'static str,
    protocol: Protocol,
    check: Check,
}

const AGENT_CASES: [Case; 4] = [
    Case {
        name: "http",
        protocol: Protocol::Tcp,
        check: Check::Http,
    },
    Case {
        name: "websocket",
        protocol: Protocol::Tcp,
        check: Check::Websocket,
    },
    Case {
        name: "tcp",
        protocol: Protocol::Tcp,
        check: Check::Tcp,
    },
    Case {
        name: "udp",
        protocol: Protocol::Udp,
        check: Check::Udp,
    },
];

/// Serves every case on its own port and returns the agent with the case addresses.
fn serve_all(identity: &str) -> (Agent, Vec<SocketAddr>) {
    let ip = loopback_ip();
    let addrs: Vec<SocketAddr> = AGENT_CASES
        .iter()
        .map(|_| SocketAddr::new(ip, free_port(ip)))
        .collect();
    let ports: Vec<String> = AGENT_CASES
        .iter()
        .zip(&addrs)
        .map(|(case, addr)| format!("{}/{}/{}", addr.port(), case.protocol, case.check))
        .collect();
    (Agent::start(identity, ip, &ports), addrs)
}

#[tokio::test]
async fn every_agent_check_connects_and_verifies_the_identity() {
    let (agent, addrs) = serve_all("x/a");
    for (case, addr) in AGENT_CASES.iter().zip(addrs) {
        let plain = probe(&target(case.name, addr, case.protocol, case.check)).await;
        assert_eq!(
            plain.outcome,
            Outcome::Connected,
            "{}: {plain:?}",
            case.name
        );
        let verified = probe(&expecting(
            target(case.name, addr, case.protocol, case.check),
            "x/a",
        ))
        .await;
        assert_eq!(
            verified.outcome,
            Outcome::Connected,
            "{}: {verified:?}",
            case.name
        );
        assert!(
            verified.detail.contains("x/a"),
            "{}: {verified:?}",
            case.name
        );
        assert!(
            verified.elapsed_ms > 0.0 && verified.elapsed_ms < 1000.0,
            "{verified:?}"
        );
    }
    agent.stop().await;
}

#[tokio::test]
async fn every_agent_check_reports_a_wrong_identity() {
    let (agent, addrs) = serve_all("x/a");
    for (case, addr) in AGENT_CASES.iter().zip(addrs) {
        let result = probe(&expecting(
            target(case.name, addr, case.protocol, case.check),
            "y/b",
        ))
        .await;
        assert_eq!(
            result.outcome,
            Outcome::WrongIdentity,
            "{}: {result:?}",
            case.name
        );
        assert!(
            result.detail.contains("x/a") && result.detail.contains("y/b"),
            "{result:?}"
        );
    }
    agent.stop().await;
}

#[tokio::test]
async fn every_agent_check_reports_a_closed_port_as_refused() {
    let ip = loopback_ip();
    for case in &AGENT_CASES {
        let addr = SocketAddr::new(ip, free_port(ip));
        let result = probe(&target(case.name, addr, case.protocol, case.check)).await;
        assert_eq!(
            result.outcome,
            Outcome::Refused,
            "{}: {result:?}",
            case.name
        );
        assert!(result.elapsed_ms < 100.0, "{result:?}");
    }
}

#[tokio::test]
async fn sctp_connects_or_is_reported_unsupported_by_both_sides() {
    let ip = loopback_ip();
    let port = free_port(ip);
    let agent = Agent::start("x/a", ip, &[format!("{port}/SCTP/sctp")]);
    let addr = SocketAddr::new(ip, port);
    let result = probe(&expecting(
        target("sctp", addr, Protocol::Sctp, Check::Sctp),
        "x/a",
    ))
    .await;
    let kernel_has_sctp = std::path::Path::new("/proc/net/sctp").exists();
    let expected = if kernel_has_sctp {
        Outcome::Connected
    } else {
        Outcome::Unsupported
    };
    assert_eq!(result.outcome, expected, "{result:?}");
    agent.stop().await;
}

#[tokio::test]
async fn a_check_over_the_wrong_protocol_is_unsupported() {
    let addr = SocketAddr::new(loopback_ip(), 80);
    let result = probe(&target("http-over-udp", addr, Protocol::Udp, Check::Http)).await;
    assert_eq!(result.outcome, Outcome::Unsupported, "{result:?}");
}

#[tokio::test]
async fn checks_of_other_protocols_against_the_http_port_are_protocol_errors() {
    let ip = loopback_ip();
    let port = free_port(ip);
    let agent = Agent::start("x/a", ip, &[format!("{port}/TCP/http")]);
    let addr = SocketAddr::new(ip, port);
    for check in [Check::Postgres, Check::Redis, Check::Websocket, Check::Dns] {
        let result = probe(&target(check.as_str(), addr, Protocol::Tcp, check)).await;
        assert_eq!(
            result.outcome,
            Outcome::ProtocolError,
            "{check}: {result:?}"
        );
    }
    agent.stop().await;
}

#[tokio::test]
async fn a_connection_reset_after_accept_is_reported_as_reset() {
    use nix::sys::socket::{setsockopt, sockopt::Linger};
    let ip = loopback_ip();
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        // A zero linger time makes close send a reset instead of a FIN.
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        setsockopt(&stream, Linger, &linger).unwrap();
        drop(stream);
    });
    let result = probe(&expecting(
        target("reset", addr, Protocol::Tcp, Check::Tcp),
        "x/a",
    ))
    .await;
    assert_eq!(result.outcome, Outcome::Reset, "{result:?}");
    server.await.unwrap();
}

#[tokio::test]
async fn agent_checks_work_over_ipv6() {
    let ip: std::net::IpAddr = std::net::Ipv6Addr::LOCALHOST.into();
    let (http, udp) = (free_port(ip), free_port(ip));
    let agent = Agent::start(
        "x/a",
        ip,
        &[format!("{http}/TCP/http"), format!("{udp}/UDP/udp")],
    );
    for (port, protocol, check) in [
        (http, Protocol::Tcp, Check::Http),
        (udp, Protocol::Udp, Check::Udp),
    ] {
        let addr = SocketAddr::new(ip, port);
        let result = probe(&expecting(target("v6", addr, protocol, check), "x/a")).await;
        assert_eq!(result.outcome, Outcome::Connected, "{check}: {result:?}");
    }
    agent.stop().await;
}
