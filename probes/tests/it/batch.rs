//! Batches: every target runs concurrently, so a batch costs about one timeout.

use crate::common::{Agent, TestNetns, expecting, free_port, loopback_ip, privileged, target};
use netpol_probes::probe::{DEFAULT_CONCURRENCY, Prober};
use netpol_probes::servers::{AgentOptions, start_agent};
use netpol_probes::spec::{Check, Protocol};
use netpol_probes::wire::{Outcome, ProbeResult, Target};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const TIMEOUT_MS: u64 = 1000;

fn agent_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_netpol-probe"))
}

fn outcome_counts(results: &[ProbeResult]) -> HashMap<Outcome, usize> {
    let mut counts = HashMap::new();
    for result in results {
        *counts.entry(result.outcome).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_loopback_targets_finish_within_three_timeouts() {
    let ip = loopback_ip();
    let ports: Vec<u16> = (0..3).map(|_| free_port(ip)).collect();
    let closed = free_port(ip);
    let agent = Agent::start(
        "x/a",
        ip,
        &[
            format!("{}/TCP/http", ports[0]),
            format!("{}/TCP/tcp", ports[1]),
            format!("{}/UDP/udp", ports[2]),
        ],
    );
    let kinds = [
        (ports[0], Protocol::Tcp, Check::Http),
        (ports[1], Protocol::Tcp, Check::Tcp),
        (ports[2], Protocol::Udp, Check::Udp),
        (closed, Protocol::Tcp, Check::Tcp),
    ];
    let targets: Vec<Target> = (0..1000)
        .map(|i| {
            let (port, protocol, check) = kinds[i % kinds.len()];
            let mut t = expecting(
                target(
                    &format!("t{i:04}"),
                    SocketAddr::new(ip, port),
                    protocol,
                    check,
                ),
                "x/a",
            );
            t.timeout_ms = TIMEOUT_MS;
            t
        })
        .collect();
    let started = Instant::now();
    let results = Prober::new()
        .unwrap()
        .probe_all(targets, DEFAULT_CONCURRENCY)
        .await;
    let elapsed = started.elapsed();
    eprintln!(
        "1000 loopback targets in {elapsed:?}: {:?}",
        outcome_counts(&results)
    );
    assert!(
        elapsed < Duration::from_millis(3 * TIMEOUT_MS),
        "took {elapsed:?}"
    );
    assert_eq!(results.len(), 1000);
    for (i, result) in results.iter().enumerate() {
        assert_eq!(
            result.id,
            format!("t{i:04}"),
            "results must keep the input order"
        );
        let expected = if i % 4 == 3 {
            Outcome::Refused
        } else {
            Outcome::Connected
        };
        assert_eq!(result.outcome, expected, "{result:?}");
    }
    agent.stop().await;
}

/// The issue's example: 500 targets, half of them dropped, take about one timeout with 256 in
/// flight, where one at a time they would take 250 timeouts.
#[tokio::test]
async fn five_hundred_targets_half_dropped_finish_within_three_timeouts_via_the_binary() {
    if !privileged("five_hundred_targets_half_dropped_finish_within_three_timeouts_via_the_binary")
    {
        return;
    }
    let netns = TestNetns::new();
    netns.nft(
        "table inet nph {
            chain input {
                type filter hook input priority 0; policy accept;
                tcp dport 9001 drop
            }
        }",
    );
    let mut options = AgentOptions::new(
        netpol_probes::servers::find_agent_binary().unwrap(),
        "x",
        "a",
        vec![netpol_probes::serve::parse_port("8080/TCP/http").unwrap()],
    );
    options.netns = Some(netns.name.clone());
    let agent = start_agent(&options).await.unwrap();
    let targets: Vec<Target> = (0..500)
        .map(|i| {
            let port = if i % 2 == 0 { 8080 } else { 9001 };
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let mut t = expecting(
                target(&format!("t{i:04}"), addr, Protocol::Tcp, Check::Http),
                "x/a",
            );
            t.timeout_ms = TIMEOUT_MS;
            t
        })
        .collect();
    let input = agent.dir().join("targets.json");
    std::fs::write(&input, serde_json::to_string(&targets).unwrap()).unwrap();
    let started = Instant::now();
    let output = tokio::process::Command::new("ip")
        .args(["netns", "exec", &netns.name])
        .arg(agent_binary())
        .args(["probe", "--input"])
        .arg(&input)
        .output()
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Vec<ProbeResult> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let counts = outcome_counts(&results);
    eprintln!("500 targets, half dropped, through the binary in {elapsed:?}: {counts:?}");
    assert_eq!(counts.get(&Outcome::Connected), Some(&250), "{counts:?}");
    assert_eq!(counts.get(&Outcome::Timeout), Some(&250), "{counts:?}");
    assert!(
        elapsed < Duration::from_millis(3 * TIMEOUT_MS),
        "took {elapsed:?}"
    );
    // A timeout costs the timeout and a few milliseconds; the margin is for a loaded CI host.
    let slowest = results.iter().map(|r| r.elapsed_ms).fold(0.0, f64::max);
    eprintln!("slowest probe: {slowest:.1} ms for a {TIMEOUT_MS} ms timeout");
    assert!(
        slowest < TIMEOUT_MS as f64 + 250.0,
        "a probe took {slowest} ms"
    );
}

#[tokio::test]
async fn bad_input_exits_with_code_two() {
    for input in [
        "not json",
        r#"[{"id": "a"}]"#,
        r#"[{"id":"a","ip":"127.0.0.1","port":1,"protocol":"TCP","check":"tcp","timeout_ms":0}]"#,
    ] {
        let mut child = tokio::process::Command::new(agent_binary())
            .arg("probe")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).await.unwrap();
        drop(stdin);
        let output = child.wait_with_output().await.unwrap();
        assert_eq!(output.status.code(), Some(2), "{input}: {output:?}");
        assert!(output.stdout.is_empty());
    }
}

#[tokio::test]
async fn an_empty_batch_succeeds_with_no_output() {
    let output = tokio::process::Command::new(agent_binary())
        .args(["probe", "--input", "/dev/stdin"])
        .stdin(std::fs::File::open("/dev/null").unwrap())
        .output()
        .await
        .unwrap();
    // /dev/null holds no JSON at all: that is bad input, not an empty batch.
    assert_eq!(output.status.code(), Some(2));
    let dir = std::env::temp_dir().join(format!("nph-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.json");
    std::fs::write(&empty, "[]").unwrap();
    let output = tokio::process::Command::new(agent_binary())
        .args(["probe", "--input"])
        .arg(&empty)
        .output()
        .await
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(output.status.success());
    assert!(output.stdout.is_empty());
}
