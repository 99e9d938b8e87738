//! `netpol-probe serve` as a process: readiness only after binding, prompt shutdown.

use crate::common::{expecting, free_port, loopback_ip, probe, target};
use netpol_probes::spec::{Check, Protocol};
use netpol_probes::wire::Outcome;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Serve {
    child: Child,
    ready: PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.ready);
    }
}

fn serve(ip: std::net::IpAddr, ports: &[String]) -> Serve {
    let ready = std::env::temp_dir().join(format!(
        "nph-ready-{}-{}",
        std::process::id(),
        ports[0].replace('/', "_")
    ));
    let _ = std::fs::remove_file(&ready);
    let mut command = Command::new(env!("CARGO_BIN_EXE_netpol-probe"));
    command
        .arg("serve")
        .args(["--bind", &ip.to_string(), "--ready-file"])
        .arg(&ready);
    for port in ports {
        command.args(["--port", port]);
    }
    command
        .env("POD_NAMESPACE", "x")
        .env("POD_NAME", "a")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    Serve {
        child: command.spawn().unwrap(),
        ready,
    }
}

fn wait_for(path: &std::path::Path, child: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if path.exists() {
            return true;
        }
        if matches!(child.try_wait(), Ok(Some(_))) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

#[tokio::test]
async fn every_port_answers_as_soon_as_the_ready_file_exists() {
    let ip = loopback_ip();
    let (http, udp, tcp) = (free_port(ip), free_port(ip), free_port(ip));
    let mut server = serve(
        ip,
        &[
            format!("{http}/TCP/http/canary"),
            format!("{udp}/UDP"),
            format!("{tcp}/TCP"),
        ],
    );
    assert!(wait_for(&server.ready, &mut server.child), "no ready file");
    assert_eq!(std::fs::read_to_string(&server.ready).unwrap(), "x/a\n");
    for (port, protocol, check) in [
        (http, Protocol::Tcp, Check::Http),
        (udp, Protocol::Udp, Check::Udp),
        (tcp, Protocol::Tcp, Check::Tcp),
    ] {
        let result = probe(&expecting(
            target("ready", SocketAddr::new(ip, port), protocol, check),
            "x/a",
        ))
        .await;
        assert_eq!(result.outcome, Outcome::Connected, "{check}: {result:?}");
    }
    let health = reqwest::get(format!("http://{}/healthz", SocketAddr::new(ip, http)))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn a_port_that_cannot_be_bound_fails_serve_without_a_ready_file() {
    let ip = loopback_ip();
    let taken = std::net::TcpListener::bind((ip, 0)).unwrap();
    let port = taken.local_addr().unwrap().port();
    let free = free_port(ip);
    let mut server = serve(ip, &[format!("{free}/TCP/http"), format!("{port}/TCP/tcp")]);
    let status = server.child.wait().unwrap();
    assert!(!status.success());
    assert!(
        !server.ready.exists(),
        "ready file written although a port was not bound"
    );
    let mut stderr = String::new();
    std::io::Read::read_to_string(server.child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("failed to bind tcp port"), "{stderr}");
}

#[tokio::test]
async fn sigterm_stops_serve_within_a_second_and_removes_the_ready_file() {
    let ip = loopback_ip();
    let port = free_port(ip);
    let ws = free_port(ip);
    let mut server = serve(
        ip,
        &[format!("{port}/TCP/http"), format!("{ws}/TCP/websocket")],
    );
    assert!(wait_for(&server.ready, &mut server.child), "no ready file");
    // An open WebSocket must not hold the shutdown up.
    let (_socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/", SocketAddr::new(ip, ws)))
            .await
            .unwrap();
    let started = Instant::now();
    kill(Pid::from_raw(server.child.id() as i32), Signal::SIGTERM).unwrap();
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "serve still running after 1 s"
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    let stopped_in = started.elapsed();
    eprintln!("serve stopped {stopped_in:?} after SIGTERM");
    assert!(status.success(), "{status}");
    assert!(!server.ready.exists());
    let result = probe(&target(
        "after",
        SocketAddr::new(ip, port),
        Protocol::Tcp,
        Check::Http,
    ))
    .await;
    assert_eq!(result.outcome, Outcome::Refused, "{result:?}");
}
