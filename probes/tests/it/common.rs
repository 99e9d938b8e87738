//! Helpers shared by the integration tests: privilege checks, free loopback ports, targets,
//! throwaway network namespaces and the agent served in-process.

use netpol_probes::serve::{ServeConfig, Server, parse_port};
use netpol_probes::spec::{Check, Protocol};
use netpol_probes::wire::{ProbeResult, Target};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Whether privileged tests may run: true as root; false (with a message) when
/// `NETPOL_SKIP_PRIVILEGED=1`; a panic otherwise, so a CI that lost root notices.
pub fn privileged(test: &str) -> bool {
    if nix::unistd::Uid::effective().is_root() {
        return true;
    }
    if std::env::var("NETPOL_SKIP_PRIVILEGED").as_deref() == Ok("1") {
        eprintln!("skipping {test}: needs root (NETPOL_SKIP_PRIVILEGED=1)");
        return false;
    }
    panic!(
        "{test} needs root (network namespaces, nftables): run as root or set NETPOL_SKIP_PRIVILEGED=1 to skip it"
    );
}

static NEXT_IP: AtomicU32 = AtomicU32::new(10);

/// A loopback address of its own for each server, so tests cannot hit each other's ports.
pub fn loopback_ip() -> IpAddr {
    let n = NEXT_IP.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    Ipv4Addr::new(
        127,
        (pid % 200 + 20) as u8,
        (n / 250) as u8,
        (n % 250 + 2) as u8,
    )
    .into()
}

/// A port free for both TCP and UDP on `ip` right now.
pub fn free_port(ip: IpAddr) -> u16 {
    loop {
        let tcp = TcpListener::bind((ip, 0)).expect("bind a loopback port");
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind((ip, port)).is_ok() {
            return port;
        }
    }
}

pub fn free_addr() -> SocketAddr {
    let ip = loopback_ip();
    SocketAddr::new(ip, free_port(ip))
}

pub fn target(id: &str, addr: SocketAddr, protocol: Protocol, check: Check) -> Target {
    Target {
        id: id.to_owned(),
        ip: addr.ip(),
        port: addr.port(),
        protocol,
        check,
        expect_identity: None,
        timeout_ms: 2000,
        dns_name: None,
        host: None,
        resolver: None,
    }
}

pub fn expecting(mut target: Target, identity: &str) -> Target {
    target.expect_identity = Some(identity.to_owned());
    target
}

pub async fn probe(target: &Target) -> ProbeResult {
    netpol_probes::probe::Prober::new()
        .unwrap()
        .probe(target)
        .await
}

/// The agent serving `ports` (`PORT/PROTOCOL/CHECK`) on `ip` in this process, until dropped.
pub struct Agent {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Agent {
    pub fn start(identity: &str, ip: IpAddr, ports: &[String]) -> Agent {
        let config = ServeConfig {
            identity: identity.to_owned(),
            ports: ports.iter().map(|p| parse_port(p).unwrap()).collect(),
            bind: vec![ip],
            ready_file: None,
        };
        let server = Server::bind(&config).expect("bind the agent's ports");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        Agent {
            stop: Some(stop),
            task,
        }
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        (&mut self.task).await.unwrap();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

static NEXT_NETNS: AtomicU32 = AtomicU32::new(0);

/// A throwaway network namespace with `lo` up, deleted on drop (also when a test fails).
pub struct TestNetns {
    pub name: String,
}

impl TestNetns {
    pub fn new() -> TestNetns {
        let n = NEXT_NETNS.fetch_add(1, Ordering::Relaxed);
        let name = format!("nph-t{}-{n}", std::process::id() % 1_000_000);
        assert!(name.len() <= 15, "namespace name {name} too long");
        run("ip", &["netns", "add", &name]);
        let netns = TestNetns { name };
        netns.exec("ip", &["link", "set", "lo", "up"]);
        netns
    }

    /// Runs a command inside the namespace, panicking on failure.
    pub fn exec(&self, program: &str, args: &[&str]) {
        let mut all = vec!["netns", "exec", &self.name, program];
        all.extend_from_slice(args);
        run("ip", &all);
    }

    /// Loads an nftables ruleset inside the namespace.
    pub fn nft(&self, ruleset: &str) {
        let path = std::env::temp_dir().join(format!("{}.nft", self.name));
        std::fs::write(&path, ruleset).unwrap();
        let loaded = Command::new("ip")
            .args(["netns", "exec", &self.name, "nft", "-f"])
            .arg(&path)
            .output();
        std::fs::remove_file(&path).unwrap();
        let output = loaded.expect("failed to run nft (install nftables)");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "nft rejected the ruleset: {stderr}"
        );
    }

    /// Probes from inside the namespace.
    pub async fn probe(&self, target: Target) -> ProbeResult {
        netpol_probes::netns::run_in(
            Some(&self.name),
            move || async move { probe(&target).await },
        )
        .await
        .unwrap()
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let status = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("warning: could not delete network namespace {}", self.name);
        }
    }
}

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("failed to run {program} (install iproute2 and nftables): {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
