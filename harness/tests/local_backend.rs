//! The local backend through its real data plane: deploy, positive control, the differential
//! test against the engine, removal of policies, cleanup after a killed run, and the tricky
//! NetworkPolicy semantics (named ports, endPort, ipBlock with except, UDP, ns+pod AND).
//!
//! These tests need root (network namespaces, nftables). Each uses its own run id, and
//! `clean` only removes runs whose owner process is dead, so they run in parallel safely.

mod common;

use common::*;
use netpol_harness::backend::local::{self, ExternalHost};
use netpol_harness::backend::{Backend, BackendError, LocalBackend, LocalConfig};
use netpol_harness::engine::{
    Cidr, Edge, Engine, IpBlock, NetworkPolicy, Peer, Pod, PortRef, Rule, Topology,
};
use netpol_probes::spec::{Check, PortSpec, Protocol};
use netpol_probes::wire::{Outcome, Target};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Probe timeout for edges: generous for a loaded 2-core CI machine, short enough that a
/// round of denied edges stays quick (they run concurrently).
const TIMEOUT_MS: u64 = 700;

fn pod(ns: &str, name: &str, ip: &str, pod_labels: &[(&str, &str)], ports: Vec<PortSpec>) -> Pod {
    Pod {
        name: name.into(),
        namespace: ns.into(),
        labels: labels(pod_labels),
        ip: ip.parse().unwrap(),
        provided: false,
        ports,
    }
}

/// An app-like topology with every kind of server: agent ports over TCP and UDP, Postgres,
/// Redis, and the provided DNS pod behind the kube-dns Service address.
fn app_topology() -> Topology {
    let mut coredns = pod(
        "kube-system",
        "coredns",
        "10.244.9.10",
        &[("k8s-app", "kube-dns")],
        vec![
            port(53, Protocol::Udp, Some(Check::Dns), Some("dns")),
            port(53, Protocol::Tcp, Some(Check::Dns), Some("dns-tcp")),
        ],
    );
    coredns.provided = true;
    Topology {
        namespaces: vec![
            namespace("frontend", &[("team", "web")]),
            namespace("backend", &[("team", "data")]),
            namespace("other", &[("team", "web")]),
            namespace("kube-system", &[]),
        ],
        pods: vec![
            pod(
                "frontend",
                "web",
                "10.244.1.10",
                &[("app", "web")],
                vec![port(80, Protocol::Tcp, Some(Check::Http), Some("http"))],
            ),
            pod(
                "frontend",
                "admin",
                "10.244.1.11",
                &[("app", "admin")],
                vec![port(8080, Protocol::Tcp, Some(Check::Http), Some("http"))],
            ),
            pod(
                "backend",
                "api",
                "10.244.2.10",
                &[("app", "api")],
                vec![
                    port(5000, Protocol::Tcp, None, Some("api")),
                    port(5000, Protocol::Udp, None, None),
                    tcp(5001),
                    tcp(5002),
                    port(7000, Protocol::Udp, None, Some("stats")),
                ],
            ),
            pod(
                "backend",
                "db",
                "10.244.2.11",
                &[("app", "db")],
                vec![port(5432, Protocol::Tcp, Some(Check::Postgres), Some("pg"))],
            ),
            pod(
                "backend",
                "cache",
                "10.244.2.12",
                &[("app", "cache")],
                vec![port(6379, Protocol::Tcp, Some(Check::Redis), None)],
            ),
            pod(
                "other",
                "web",
                "10.244.3.10",
                &[("app", "web")],
                vec![port(80, Protocol::Tcp, Some(Check::Http), Some("http"))],
            ),
            coredns,
        ],
    }
}

fn app_policies() -> Vec<NetworkPolicy> {
    let kube_dns = peer(
        Some(selector(&[("kubernetes.io/metadata.name", "kube-system")])),
        Some(selector(&[("k8s-app", "kube-dns")])),
    );
    let dns_ports = vec![
        policy_port(Protocol::Udp, Some(PortRef::Number(53)), None),
        policy_port(Protocol::Tcp, Some(PortRef::Number(53)), None),
    ];
    vec![
        policy(
            "backend",
            "default-deny",
            selector(&[]),
            Some(vec![]),
            Some(vec![]),
        ),
        policy(
            "backend",
            "api-from-web",
            selector(&[("app", "api")]),
            Some(vec![Rule {
                peers: vec![peer(
                    Some(selector(&[("team", "web")])),
                    Some(selector(&[("app", "web")])),
                )],
                ports: vec![
                    policy_port(Protocol::Tcp, Some(PortRef::Number(5000)), Some(5001)),
                    policy_port(Protocol::Udp, Some(PortRef::Name("stats".into())), None),
                ],
            }]),
            None,
        ),
        policy(
            "backend",
            "api-egress",
            selector(&[("app", "api")]),
            None,
            Some(vec![
                Rule {
                    peers: vec![peer(None, Some(selector(&[("app", "db")])))],
                    ports: vec![policy_port(
                        Protocol::Tcp,
                        Some(PortRef::Name("pg".into())),
                        None,
                    )],
                },
                Rule {
                    peers: vec![kube_dns],
                    ports: dns_ports,
                },
            ]),
        ),
        policy(
            "backend",
            "db-from-api",
            selector(&[("app", "db")]),
            Some(vec![Rule {
                peers: vec![peer(None, Some(selector(&[("app", "api")])))],
                ports: vec![policy_port(
                    Protocol::Tcp,
                    Some(PortRef::Number(5432)),
                    None,
                )],
            }]),
            None,
        ),
        policy(
            "frontend",
            "web-egress",
            selector(&[("app", "web")]),
            None,
            Some(vec![Rule {
                peers: vec![peer(Some(selector(&[("team", "data")])), None)],
                ports: vec![],
            }]),
        ),
    ]
}

/// Probes every edge of `topology` and fails with every edge where the data plane and the
/// engine disagree.
async fn assert_data_plane_matches_engine(
    backend: &LocalBackend,
    topology: &Topology,
    policies: &[NetworkPolicy],
) {
    let engine = Engine::new(topology, policies);
    let edges = engine.edges();
    let mut observed = probe_edges(backend, topology, &edges, TIMEOUT_MS)
        .await
        .unwrap();
    // A loaded machine can make an allowed probe miss its short timeout: edges seen denied
    // but expected allowed get one more try with a long timeout (a real deny still times out).
    let retry: Vec<Edge> = edges
        .iter()
        .filter(|e| engine.verdict(**e).allowed() && !observed[e].outcome.is_connected())
        .copied()
        .collect();
    if !retry.is_empty() {
        observed.extend(probe_edges(backend, topology, &retry, 5000).await.unwrap());
    }
    let mismatches: Vec<String> = edges
        .iter()
        .filter_map(|edge| {
            let expected = engine.verdict(*edge).allowed();
            let result = &observed[edge];
            (result.outcome.is_connected() != expected).then(|| {
                format!(
                    "{}: engine says {}, data plane saw {} ({})",
                    show(topology, *edge),
                    if expected { "allow" } else { "deny" },
                    result.outcome,
                    result.detail
                )
            })
        })
        .collect();
    assert!(
        mismatches.is_empty(),
        "{} of {} edges differ:\n{}\n\nruleset:\n{}",
        mismatches.len(),
        edges.len(),
        mismatches.join("\n"),
        backend.ruleset().unwrap_or_default()
    );
}

async fn assert_everything_open(backend: &LocalBackend, topology: &Topology) {
    let edges = Engine::new(topology, &[]).edges();
    let observed = probe_edges(backend, topology, &edges, 3000).await.unwrap();
    let closed: Vec<String> = observed
        .iter()
        .filter(|(_, r)| !r.outcome.is_connected())
        .map(|(edge, r)| format!("{}: {} ({})", show(topology, *edge), r.outcome, r.detail))
        .collect();
    assert!(
        closed.is_empty(),
        "edges not open without policies:\n{}",
        closed.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_plane_agrees_with_the_engine_on_every_edge() {
    if !privileged() {
        return;
    }
    let topology = app_topology();
    let policies = app_policies();
    let mut backend = LocalBackend::new(config());
    let run_id = backend.run_id().to_owned();
    let start = Instant::now();
    backend.deploy(&topology).await.unwrap();
    eprintln!(
        "deploy of {} pods: {:?} ({:?})",
        topology.pods.len(),
        start.elapsed(),
        backend.timings()
    );

    assert_everything_open(&backend, &topology).await;
    backend.apply_policies(&policies).await.unwrap();
    assert_data_plane_matches_engine(&backend, &topology, &policies).await;

    backend.apply_policies(&[]).await.unwrap();
    assert_everything_open(&backend, &topology).await;

    backend.teardown().await.unwrap();
    assert_eq!(leftover_namespaces(&run_id), Vec::<String>::new());
    assert!(!std::env::temp_dir().join(format!("nph-{run_id}")).exists());
}

/// The seed fixture: the meeting app's topology and policies.
fn seed() -> (Topology, Vec<NetworkPolicy>) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/meeting-app");
    let topology = netpol_harness::input::load_topology(&dir.join("topology.yaml")).unwrap();
    let policies = netpol_harness::input::load_policies(&[dir.join("policies")]).unwrap();
    (topology, policies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_is_open_then_enforced_as_the_engine_says_then_open_again() {
    if !privileged() {
        return;
    }
    let (topology, policies) = seed();
    let mut backend = LocalBackend::new(config());
    let run_id = backend.run_id().to_owned();
    let start = Instant::now();
    backend.deploy(&topology).await.unwrap();
    eprintln!(
        "seed deploy of {} pods: {:?} ({:?})",
        topology.pods.len(),
        start.elapsed(),
        backend.timings()
    );
    assert_everything_open(&backend, &topology).await;
    backend.apply_policies(&policies).await.unwrap();
    assert_data_plane_matches_engine(&backend, &topology, &policies).await;
    backend.apply_policies(&[]).await.unwrap();
    assert_everything_open(&backend, &topology).await;
    drop(backend);
    assert_eq!(leftover_namespaces(&run_id), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_changes_re_enforce_the_policies() {
    if !privileged() {
        return;
    }
    let mut topology = app_topology();
    let policies = app_policies();
    let mut backend = LocalBackend::new(config());
    backend.deploy(&topology).await.unwrap();
    backend.apply_policies(&policies).await.unwrap();
    // The admin pod becomes a web pod: api-from-web now admits it.
    let admin = topology
        .pods
        .iter()
        .position(|p| p.name == "admin")
        .unwrap();
    topology.pods[admin].labels = labels(&[("app", "web")]);
    backend
        .set_pod_labels(admin, topology.pods[admin].labels.clone())
        .await
        .unwrap();
    // The other namespace leaves team web: its web pod loses access.
    let other = topology
        .namespaces
        .iter_mut()
        .find(|n| n.name == "other")
        .unwrap();
    other.labels.insert("team".into(), "gone".into());
    let other_labels = other.labels.clone();
    backend
        .set_namespace_labels("other", other_labels)
        .await
        .unwrap();
    assert_eq!(backend.topology(), &topology);
    assert_data_plane_matches_engine(&backend, &topology, &policies).await;
}

fn external(name: &str, ip: &str) -> ExternalHost {
    ExternalHost {
        name: name.into(),
        ip: ip.parse().unwrap(),
        ports: vec![tcp(80)],
    }
}

/// The semantics topology: a client in namespace `a`, servers in `a` and `b`, and two hosts
/// outside the cluster, one inside an ipBlock and one inside its except.
fn semantics_setup() -> (Topology, Vec<NetworkPolicy>, LocalConfig) {
    let server_ports = vec![
        port(8080, Protocol::Tcp, None, Some("web")),
        tcp(81),
        tcp(9000),
        tcp(9001),
        tcp(9002),
        port(9999, Protocol::Udp, None, Some("metrics")),
    ];
    let topology = Topology {
        namespaces: vec![
            namespace("a", &[("team", "a")]),
            namespace("b", &[("team", "b")]),
        ],
        pods: vec![
            pod(
                "a",
                "client",
                "10.244.7.1",
                &[("app", "client")],
                vec![tcp(80)],
            ),
            pod(
                "a",
                "server",
                "10.244.7.2",
                &[("app", "server")],
                server_ports.clone(),
            ),
            pod(
                "b",
                "server",
                "10.244.8.2",
                &[("app", "server")],
                server_ports,
            ),
        ],
    };
    let cidr = |s: &str, prefix| Cidr {
        addr: s.parse().unwrap(),
        prefix,
    };
    let block = |c, except| Peer::IpBlock(IpBlock { cidr: c, except });
    let client_egress = policy(
        "a",
        "client-egress",
        selector(&[("app", "client")]),
        None,
        Some(vec![
            Rule {
                peers: vec![block(
                    cidr("198.51.100.0", 24),
                    vec![cidr("198.51.100.128", 25)],
                )],
                ports: vec![policy_port(Protocol::Tcp, Some(PortRef::Number(80)), None)],
            },
            Rule {
                peers: vec![peer(
                    Some(selector(&[("team", "b")])),
                    Some(selector(&[("app", "server")])),
                )],
                ports: vec![
                    policy_port(Protocol::Tcp, Some(PortRef::Name("web".into())), None),
                    policy_port(Protocol::Tcp, Some(PortRef::Number(9000)), Some(9001)),
                    policy_port(Protocol::Udp, Some(PortRef::Number(9999)), None),
                ],
            },
        ]),
    );
    let server_ingress = policy(
        "b",
        "server-ingress",
        selector(&[("app", "server")]),
        Some(vec![
            Rule {
                peers: vec![block(cidr("198.51.100.0", 28), vec![])],
                ports: vec![policy_port(
                    Protocol::Tcp,
                    Some(PortRef::Name("web".into())),
                    None,
                )],
            },
            Rule {
                peers: vec![peer(
                    Some(selector(&[("team", "a")])),
                    Some(selector(&[("app", "client")])),
                )],
                ports: vec![],
            },
        ]),
        None,
    );
    let config = LocalConfig {
        external_hosts: vec![
            ExternalHost {
                ports: vec![tcp(80), tcp(8080)],
                ..external("inside", "198.51.100.10")
            },
            external("except", "198.51.100.200"),
        ],
        ..config()
    };
    (topology, vec![client_egress, server_ingress], config)
}

fn to_ip(backend_ip: &str, port: u16, protocol: Protocol, id: &str) -> Target {
    Target {
        id: id.into(),
        ip: backend_ip.parse::<IpAddr>().unwrap(),
        port,
        protocol,
        check: Check::default_for(protocol),
        expect_identity: None,
        timeout_ms: TIMEOUT_MS,
        dns_name: None,
        host: None,
        resolver: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tricky_semantics_hold_through_the_data_plane() {
    if !privileged() {
        return;
    }
    let (topology, policies, config) = semantics_setup();
    let mut backend = LocalBackend::new(config);
    backend.deploy(&topology).await.unwrap();
    backend.apply_policies(&policies).await.unwrap();

    // Pod to pod: named ports, endPort, UDP, and namespace+pod selectors ANDed.
    assert_data_plane_matches_engine(&backend, &topology, &policies).await;
    let engine = Engine::new(&topology, &policies);
    let allowed = |dst: usize, port: u16, protocol| {
        engine
            .verdict(Edge {
                src: 0,
                dst,
                port,
                protocol,
            })
            .allowed()
    };
    assert!(allowed(2, 8080, Protocol::Tcp), "named port to b/server");
    assert!(
        allowed(2, 9001, Protocol::Tcp) && !allowed(2, 9002, Protocol::Tcp),
        "endPort"
    );
    assert!(allowed(2, 9999, Protocol::Udp), "UDP");
    assert!(
        !allowed(1, 8080, Protocol::Tcp),
        "a/server is in the wrong namespace (AND)"
    );

    // Egress to hosts outside the cluster: the ipBlock admits 198.51.100.10, its except does not.
    let targets = [
        to_ip("198.51.100.10", 80, Protocol::Tcp, "inside"),
        to_ip("198.51.100.200", 80, Protocol::Tcp, "except"),
        to_ip("198.51.100.10", 8080, Protocol::Tcp, "inside-wrong-port"),
    ];
    let results = backend.probe(0, &targets).await.unwrap();
    let outcome = |id: &str| results.iter().find(|r| r.id == id).unwrap().outcome;
    assert_eq!(outcome("inside"), Outcome::Connected, "{results:?}");
    assert_eq!(outcome("except"), Outcome::Timeout, "{results:?}");
    assert_eq!(
        outcome("inside-wrong-port"),
        Outcome::Timeout,
        "{results:?}"
    );

    // Ingress from outside: the /28 ipBlock admits 198.51.100.10 on the named port only.
    let to_server = |port, id: &str| to_ip("10.244.8.2", port, Protocol::Tcp, id);
    let from_inside = backend
        .probe_from_external(0, &[to_server(8080, "web"), to_server(81, "other-port")])
        .await
        .unwrap();
    let from_except = backend
        .probe_from_external(1, &[to_server(8080, "web")])
        .await
        .unwrap();
    let outcome_in = |id: &str| from_inside.iter().find(|r| r.id == id).unwrap().outcome;
    assert_eq!(outcome_in("web"), Outcome::Connected, "{from_inside:?}");
    assert_eq!(
        outcome_in("other-port"),
        Outcome::Timeout,
        "{from_inside:?}"
    );
    assert_eq!(from_except[0].outcome, Outcome::Timeout, "{from_except:?}");
}

/// Sends one datagram from `source_port` of pod `src`'s namespace to `dst`, and says
/// whether an answer came back within 500 ms.
fn udp_exchange(backend: &LocalBackend, src: usize, source_port: u16, dst: &str) -> bool {
    let dst: std::net::SocketAddr = dst.parse().unwrap();
    local::netns::in_netns(&backend.pod_netns(src), move || {
        let socket = std::net::UdpSocket::bind(("0.0.0.0", source_port))?;
        socket.set_read_timeout(Some(Duration::from_millis(500)))?;
        socket.send_to(b"ping", dst)?;
        let mut buffer = [0u8; 512];
        Ok(socket.recv_from(&mut buffer).is_ok())
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_change_ends_udp_flows_the_old_policies_allowed() {
    if !privileged() {
        return;
    }
    // A UDP "connection" lives on in conntrack for 30 s or more after its last datagram.
    // Without the flush on every policy change, the same 5-tuple would keep passing as
    // established after a policy denies it.
    let (topology, policies, config) = semantics_setup();
    let mut backend = LocalBackend::new(config);
    backend.deploy(&topology).await.unwrap();
    // a/client to a/server 9999/UDP: open without policies, denied by client-egress.
    assert!(
        udp_exchange(&backend, 0, 40_000, "10.244.7.2:9999"),
        "open before policies"
    );
    backend.apply_policies(&policies).await.unwrap();
    assert!(
        !udp_exchange(&backend, 0, 40_000, "10.244.7.2:9999"),
        "stale conntrack entry"
    );
    // And the other way: a flow the policies denied passes once they are removed.
    backend.apply_policies(&[]).await.unwrap();
    assert!(
        udp_exchange(&backend, 0, 40_000, "10.244.7.2:9999"),
        "open after removal"
    );
}

/// Used by [`a_killed_run_leaves_nothing_after_clean`]: in the child process it spawns, this
/// deploys, says so on stdout, and waits to be killed. Elsewhere it does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helper_deploys_and_waits_when_spawned_by_the_kill_test() {
    let Ok(run_id) = std::env::var("NPH_TEST_CHILD_RUN_ID") else {
        return;
    };
    let (topology, _, _) = semantics_setup();
    let mut backend = LocalBackend::new(LocalConfig {
        run_id: Some(run_id),
        ..config()
    });
    if std::env::var("NPH_TEST_SIGNAL_CLEANUP").is_ok() {
        LocalBackend::install_signal_cleanup().unwrap();
    }
    backend.deploy(&topology).await.unwrap();
    println!("DEPLOYED");
    tokio::time::sleep(Duration::from_secs(120)).await;
}

/// Starts the helper above in a child process with run id `run_id`; returns once it has
/// deployed.
fn spawn_deployed_child(run_id: &str, signal_cleanup: bool) -> std::process::Child {
    use std::io::BufRead;
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "helper_deploys_and_waits_when_spawned_by_the_kill_test",
            "--exact",
            "--nocapture",
        ])
        .env("NPH_TEST_CHILD_RUN_ID", run_id)
        .stdout(std::process::Stdio::piped());
    if signal_cleanup {
        command.env("NPH_TEST_SIGNAL_CLEANUP", "1");
    }
    let mut child = command.spawn().unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let deployed = stdout
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains("DEPLOYED"));
    assert!(deployed, "the child did not deploy");
    child
}

#[test]
fn ctrl_c_removes_the_run_before_exiting() {
    if !privileged() {
        return;
    }
    let run_id = local::new_run_id();
    let mut child = spawn_deployed_child(&run_id, true);
    let pids = local::netns::pids_in_netns(&leftover_namespaces(&run_id));
    assert!(!pids.is_empty());
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(leftover_namespaces(&run_id), Vec::<String>::new());
    assert!(
        pids.iter()
            .all(|pid| local::state::process_start(*pid).is_none())
    );
    assert!(!local::state::RunState::path(&run_id).exists());
}

#[test]
fn a_killed_run_leaves_nothing_after_clean() {
    if !privileged() {
        return;
    }
    let run_id = local::new_run_id();
    let mut child = spawn_deployed_child(&run_id, false);
    let namespaces = leftover_namespaces(&run_id);
    assert!(!namespaces.is_empty());
    let pids = local::netns::pids_in_netns(&namespaces);
    assert!(
        !pids.is_empty(),
        "the child's servers run in its namespaces"
    );
    child.kill().unwrap();
    child.wait().unwrap();

    let report = local::clean().unwrap();
    assert!(report.runs.contains(&run_id), "{report:?}");
    assert_eq!(leftover_namespaces(&run_id), Vec::<String>::new());
    // Killed servers may linger as zombies until their new parent reaps them; none runs.
    assert!(
        pids.iter()
            .all(|pid| local::state::process_start(*pid).is_none())
    );
    assert!(!local::state::RunState::path(&run_id).exists());
    assert!(!std::env::temp_dir().join(format!("nph-{run_id}")).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_leaves_live_runs_alone() {
    if !privileged() {
        return;
    }
    let (topology, _, config) = semantics_setup();
    let mut backend = LocalBackend::new(config);
    backend.deploy(&topology).await.unwrap();
    let report = local::clean().unwrap();
    assert!(
        report.live_runs.contains(&backend.run_id().to_owned()),
        "{report:?}"
    );
    assert!(!leftover_namespaces(backend.run_id()).is_empty());
    let results = backend
        .probe(0, &[to_ip("10.244.8.2", 81, Protocol::Tcp, "x")])
        .await
        .unwrap();
    assert_eq!(results[0].outcome, Outcome::Connected);
}

/// How many edges of `topology` the data plane decides differently from the engine.
async fn mismatches(
    backend: &LocalBackend,
    topology: &Topology,
    policies: &[NetworkPolicy],
) -> Vec<String> {
    let engine = Engine::new(topology, policies);
    let edges = engine.edges();
    let observed = probe_edges(backend, topology, &edges, TIMEOUT_MS)
        .await
        .unwrap();
    edges
        .iter()
        .filter(|e| observed[e].outcome.is_connected() != engine.verdict(**e).allowed())
        .map(|e| show(topology, *e))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_injected_fault_makes_the_data_plane_disagree_with_the_engine() {
    if !privileged() {
        return;
    }
    let topology = app_topology();
    let policies = app_policies();
    let mut backend = LocalBackend::new(config());
    backend.deploy(&topology).await.unwrap();
    backend.apply_policies(&policies).await.unwrap();
    // ignore-namespace and ignore-except need peers this topology cannot exercise; the
    // semantics fixture of issue 7 covers them.
    let faults = [
        "ignore-ports",
        "ignore-protocol",
        "no-egress",
        "no-ingress",
        "selectors-or",
        "no-named-ports",
        "ignore-endport",
        "drop-dns-tcp",
        "default-allow-udp",
    ];
    let mut undetected = Vec::new();
    for fault in faults {
        backend.set_faults(fault.parse().unwrap()).unwrap();
        let found = mismatches(&backend, &topology, &policies).await;
        eprintln!(
            "{fault}: {} edges differ, e.g. {:?}",
            found.len(),
            found.first()
        );
        if found.is_empty() {
            undetected.push(fault);
        }
    }
    assert!(
        undetected.is_empty(),
        "faults without effect: {undetected:?}"
    );
    backend.set_faults(local::Faults::default()).unwrap();
    assert_eq!(
        mismatches(&backend, &topology, &policies).await,
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_enforcement_keeps_the_old_policies_for_its_delay() {
    if !privileged() {
        return;
    }
    let (topology, policies, config) = semantics_setup();
    let faults = "late-enforcement=1500".parse().unwrap();
    let mut backend = LocalBackend::new(LocalConfig { faults, ..config });
    backend.deploy(&topology).await.unwrap();
    let denied = [to_ip("10.244.8.2", 81, Protocol::Tcp, "81")];
    backend.apply_policies(&policies).await.unwrap();
    let early = backend.probe(0, &denied).await.unwrap();
    assert_eq!(early[0].outcome, Outcome::Connected, "{early:?}");
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let late = backend.probe(0, &denied).await.unwrap();
    assert_eq!(late[0].outcome, Outcome::Timeout, "{late:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_that_fails_leaves_nothing_behind() {
    if !privileged() {
        return;
    }
    // Two pods with one address: the node cannot route both, so the network setup fails.
    let (mut topology, _, _) = semantics_setup();
    topology.pods[1].ip = topology.pods[0].ip;
    let mut backend = LocalBackend::new(config());
    let error = backend.deploy(&topology).await.unwrap_err();
    assert!(matches!(error, BackendError::Command { .. }), "{error:?}");
    assert_eq!(leftover_namespaces(backend.run_id()), Vec::<String>::new());
    assert!(!local::state::RunState::path(backend.run_id()).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_cannot_start_fails_the_deploy_naming_its_pod_and_its_cause() {
    if !privileged() {
        return;
    }
    // The agent and Redis both listen on port 6379 of the pod: whichever binds second exits.
    let clash = pod(
        "x",
        "clash",
        "10.244.1.10",
        &[],
        vec![
            port(6379, Protocol::Tcp, Some(Check::Http), None),
            port(6379, Protocol::Tcp, Some(Check::Redis), None),
        ],
    );
    let topology = Topology {
        namespaces: vec![namespace("x", &[])],
        pods: vec![clash],
    };
    let mut backend = LocalBackend::new(config());
    let error = backend.deploy(&topology).await.unwrap_err();
    assert!(
        matches!(error, BackendError::ServerStart { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("x/clash"), "{error}");
    // The cause carries the end of the failed server's log.
    let cause = std::error::Error::source(&error).map(ToString::to_string);
    assert!(
        cause.is_some_and(|cause| cause.contains("already in use")),
        "{error:?}"
    );
    assert_eq!(leftover_namespaces(backend.run_id()), Vec::<String>::new());
    assert!(!local::state::RunState::path(backend.run_id()).exists());
    let run_dir = std::env::temp_dir().join(format!("nph-{}", backend.run_id()));
    assert!(!run_dir.exists(), "{} is left", run_dir.display());
}

#[test]
fn preflight_refuses_addresses_inside_a_network_of_this_machine() {
    let output = std::process::Command::new("ip")
        .args(["-j", "addr"])
        .output()
        .unwrap();
    let interfaces: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let host_address = interfaces
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|i| i["addr_info"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a["local"].as_str()?.parse::<IpAddr>().ok())
        .find(|ip| ip.is_ipv4() && !ip.is_loopback());
    let Some(host_address) = host_address else {
        eprintln!("skipped: this machine has no non-loopback IPv4 address");
        return;
    };
    let used = [("pod x/y".to_owned(), host_address)];
    let error = local::preflight::overlaps(&used, None).unwrap_err();
    assert!(
        error.to_string().contains("choose another pod CIDR"),
        "{error}"
    );
    let elsewhere = [("pod x/y".to_owned(), "10.244.0.1".parse().unwrap())];
    if !host_address.to_string().starts_with("10.") {
        local::preflight::overlaps(&elsewhere, None).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_except_fault_lets_the_excepted_host_through() {
    if !privileged() {
        return;
    }
    let (topology, policies, config) = semantics_setup();
    let mut backend = LocalBackend::new(config);
    backend.deploy(&topology).await.unwrap();
    backend.apply_policies(&policies).await.unwrap();
    let excepted = [to_ip("198.51.100.200", 80, Protocol::Tcp, "except")];
    assert_eq!(
        backend.probe(0, &excepted).await.unwrap()[0].outcome,
        Outcome::Timeout
    );
    backend
        .set_faults("ignore-except".parse().unwrap())
        .unwrap();
    assert_eq!(
        backend.probe(0, &excepted).await.unwrap()[0].outcome,
        Outcome::Connected
    );
}

#[test]
fn servers_outlive_the_thread_that_deployed_them() {
    if !privileged() {
        return;
    }
    // Servers die with the thread that forked them (PR_SET_PDEATHSIG) unless the backend
    // starts them from a thread of its own: deploy from a thread that then ends.
    let (topology, _, config) = semantics_setup();
    let backend = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut backend = LocalBackend::new(config);
        runtime.block_on(backend.deploy(&topology)).unwrap();
        backend
    })
    .join()
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let target = [to_ip("10.244.8.2", 81, Protocol::Tcp, "x")];
    let results = runtime.block_on(backend.probe(0, &target)).unwrap();
    assert_eq!(results[0].outcome, Outcome::Connected, "{results:?}");
}
