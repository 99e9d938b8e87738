//! The servers of a pod: the `netpol-probe serve` agent for agent-served ports, and real
//! Postgres, Redis and dnsmasq for `postgres`, `redis` and `dns` ports, each started inside
//! the pod's network namespace.
//!
//! Every server is a child of the harness that dies with it (`PR_SET_PDEATHSIG`) and with its
//! [`Server`] guard; teardown and `clean` also kill whatever is left in the run's namespaces.
//!
//! TODO: move process starting to `netpol_probes::servers` once it lands, so the kube
//! backend's pod images and the local backend start servers the same way.

use super::netns::{enter_in_child, open_netns};
use crate::backend::BackendError;
use crate::engine::{Pod, Topology};
use netpol_probes::spec::{Check, PortSpec, Protocol};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server process, killed when dropped.
#[derive(Debug)]
pub struct Server {
    pub what: String,
    child: Child,
    log: PathBuf,
}

impl Server {
    /// Whether the process has exited (with its status), e.g. because its port was taken.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of the server's output, to say why it failed.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Switches to this user in the child, after entering the namespace (which needs root).
#[derive(Debug, Clone, Copy)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

impl RunAs {
    /// The `postgres` system user Postgres must run as.
    pub fn postgres() -> Result<Self, BackendError> {
        match nix::unistd::User::from_name("postgres") {
            Ok(Some(user)) => Ok(RunAs {
                uid: user.uid.as_raw(),
                gid: user.gid.as_raw(),
            }),
            _ => Err(BackendError::Preflight {
                message: "there is no `postgres` user: install the `postgresql` package".into(),
            }),
        }
    }
}

/// Starts `command` inside namespace `ns` (when given), as `run_as` (when given), with its
/// output appended to `log`, dying with the harness.
pub fn spawn(
    what: String,
    mut command: Command,
    ns: Option<&str>,
    run_as: Option<RunAs>,
    log: &Path,
) -> Result<Server, BackendError> {
    if let Some(ns) = ns {
        enter_in_child(&mut command, open_netns(ns)?);
    }
    // SAFETY: only async-signal-safe calls (setgroups, setgid, setuid, prctl) between fork
    // and exec. Credentials change after entering the namespace (which needs root), and the
    // death signal is set after them because a credential change clears it.
    unsafe {
        command.pre_exec(move || {
            if let Some(RunAs { uid, gid }) = run_as {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|source| BackendError::Io {
            action: format!("open {}", log.display()),
            source,
        })?;
    let log_err = log_file.try_clone().map_err(|source| BackendError::Io {
        action: format!("open {}", log.display()),
        source,
    })?;
    let program = command.get_program().to_string_lossy().into_owned();
    let child = command
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        .spawn()
        .map_err(|source| BackendError::Spawn { program, source })?;
    Ok(Server {
        what,
        child,
        log: log.to_owned(),
    })
}

/// The files of one run's servers.
#[derive(Debug, Clone)]
pub struct Workdir {
    pub root: PathBuf,
}

impl Workdir {
    pub fn log(&self, name: &str) -> PathBuf {
        self.root.join(format!("{name}.log"))
    }

    pub fn postgres_template(&self) -> PathBuf {
        self.root.join("pg-template")
    }

    pub fn postgres_data(&self, pod: usize) -> PathBuf {
        self.root.join(format!("pg-{pod}"))
    }

    pub fn dns_hosts(&self) -> PathBuf {
        self.root.join("dns-hosts")
    }

    pub fn ready_file(&self, pod: usize) -> PathBuf {
        self.root.join(format!("agent-{pod}.ready"))
    }
}

/// Starts `initdb` for the run's Postgres template data directory (once per run; each
/// Postgres pod gets a copy). Returns the running `initdb`.
pub fn start_initdb(initdb: &Path, workdir: &Workdir) -> Result<Server, BackendError> {
    let run_as = RunAs::postgres()?;
    // initdb runs as `postgres`, which cannot create entries in the root-owned work
    // directory: the template directory is created for it.
    let template = workdir.postgres_template();
    let io = |source| BackendError::Io {
        action: format!("create {}", template.display()),
        source,
    };
    std::fs::create_dir(&template).map_err(io)?;
    std::os::unix::fs::chown(&template, Some(run_as.uid), Some(run_as.gid)).map_err(io)?;
    let mut command = Command::new(initdb);
    command.arg("-D").arg(workdir.postgres_template()).args([
        "-A",
        "trust",
        "-U",
        "postgres",
        "-E",
        "UTF8",
        "--no-sync",
        "--no-instructions",
    ]);
    spawn(
        "initdb".into(),
        command,
        None,
        Some(RunAs::postgres()?),
        &workdir.log("initdb"),
    )
}

/// Waits for `initdb`, then lets every address connect without a password (trust), as the
/// probe's `postgres` check logs in as `postgres` from other pods.
pub fn finish_initdb(mut initdb: Server, workdir: &Workdir) -> Result<(), BackendError> {
    let status = initdb.child.wait().map_err(|source| BackendError::Io {
        action: "wait for initdb".into(),
        source,
    })?;
    if !status.success() {
        let log = std::fs::read_to_string(workdir.log("initdb")).unwrap_or_default();
        return Err(BackendError::Command {
            command: "initdb".into(),
            status: status.to_string(),
            stderr: log.trim().to_owned(),
        });
    }
    let hba = workdir.postgres_template().join("pg_hba.conf");
    let mut content = std::fs::read_to_string(&hba).unwrap_or_default();
    content.push_str("\nhost all all 0.0.0.0/0 trust\nhost all all ::/0 trust\n");
    std::fs::write(&hba, content).map_err(|source| BackendError::Io {
        action: "write pg_hba.conf".into(),
        source,
    })
}

/// The servers of pod `index`, started but not yet ready.
pub struct PodServers<'a> {
    pub index: usize,
    pub pod: &'a Pod,
    pub netns: &'a str,
    pub workdir: &'a Workdir,
    pub programs: &'a super::preflight::Programs,
    pub probe_bin: &'a Path,
}

impl PodServers<'_> {
    pub fn start(&self) -> Result<Vec<Server>, BackendError> {
        let mut servers = Vec::new();
        let agent_ports: Vec<&PortSpec> = self
            .pod
            .ports
            .iter()
            .filter(|p| p.effective_check().served_by_agent())
            .collect();
        servers.push(self.agent(&agent_ports)?);
        // One server per port number: a DNS port listed for UDP and TCP is one dnsmasq.
        let mut started: Vec<(Check, u16)> = Vec::new();
        for port in &self.pod.ports {
            let check = port.effective_check();
            if check.served_by_agent() || started.contains(&(check, port.port)) {
                continue;
            }
            started.push((check, port.port));
            match check {
                Check::Postgres => servers.push(self.postgres(port.port)?),
                Check::Redis => servers.push(self.redis(port.port)?),
                Check::Dns => servers.push(self.dnsmasq(port.port)?),
                _ => {}
            }
        }
        Ok(servers)
    }

    fn name(&self, server: &str) -> String {
        format!("{server} of {}", self.pod.id())
    }

    fn log(&self, server: &str) -> PathBuf {
        self.workdir.log(&format!("{server}-{}", self.index))
    }

    /// The agent serves the agent-served ports and is what probes run from.
    fn agent(&self, ports: &[&PortSpec]) -> Result<Server, BackendError> {
        let ready = self.workdir.ready_file(self.index);
        let mut command = Command::new(self.probe_bin);
        command
            .arg("serve")
            .args(["--namespace", &self.pod.namespace, "--name", &self.pod.name])
            .arg("--ready-file")
            .arg(&ready);
        for port in ports {
            command.arg("--port").arg(port_arg(port));
        }
        spawn(
            self.name("agent"),
            command,
            Some(self.netns),
            None,
            &self.log("agent"),
        )
    }

    fn postgres(&self, port: u16) -> Result<Server, BackendError> {
        let data = self.workdir.postgres_data(self.index);
        let status = Command::new("cp")
            .arg("-a")
            .arg(self.workdir.postgres_template())
            .arg(&data)
            .status()
            .map_err(|source| BackendError::Spawn {
                program: "cp".into(),
                source,
            })?;
        if !status.success() {
            return Err(BackendError::Command {
                command: "cp -a pg-template".into(),
                status: status.to_string(),
                stderr: String::new(),
            });
        }
        let program = self
            .programs
            .postgres
            .as_deref()
            .unwrap_or(Path::new("postgres"));
        let mut command = Command::new(program);
        command.arg("-D").arg(&data);
        let settings = [
            format!("listen_addresses={}", self.pod.ip),
            format!("port={port}"),
            format!("cluster_name={}", self.pod.name),
            format!("unix_socket_directories={}", data.display()),
            "fsync=off".into(),
            "synchronous_commit=off".into(),
            "full_page_writes=off".into(),
            "shared_buffers=16MB".into(),
            "max_connections=50".into(),
        ];
        for setting in settings {
            command.arg("-c").arg(setting);
        }
        let run_as = Some(RunAs::postgres()?);
        spawn(
            self.name("postgres"),
            command,
            Some(self.netns),
            run_as,
            &self.log("postgres"),
        )
    }

    fn redis(&self, port: u16) -> Result<Server, BackendError> {
        let program = self
            .programs
            .redis
            .as_deref()
            .unwrap_or(Path::new("redis-server"));
        let mut command = Command::new(program);
        command
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                &self.pod.ip.to_string(),
            ])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .args(["--daemonize", "no", "--logfile", ""])
            .arg("--dir")
            .arg(&self.workdir.root);
        spawn(
            self.name("redis-server"),
            command,
            Some(self.netns),
            None,
            &self.log("redis"),
        )
    }

    fn dnsmasq(&self, port: u16) -> Result<Server, BackendError> {
        let program = self
            .programs
            .dnsmasq
            .as_deref()
            .unwrap_or(Path::new("dnsmasq"));
        let mut command = Command::new(program);
        command
            .args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
            ])
            .args([
                "--bind-interfaces",
                "--user=root",
                "--group=root",
                "--pid-file=",
            ])
            .args(["--local=/cluster.local/", "--log-facility=-"])
            .arg(format!("--listen-address={}", self.pod.ip))
            .arg(format!("--port={port}"))
            .arg(format!(
                "--addn-hosts={}",
                self.workdir.dns_hosts().display()
            ));
        spawn(
            self.name("dnsmasq"),
            command,
            Some(self.netns),
            None,
            &self.log("dnsmasq"),
        )
    }
}

/// The agent's `--port` argument: `PORT/PROTOCOL/CHECK[/NAME]`.
fn port_arg(port: &PortSpec) -> String {
    let spec = format!("{}/{}/{}", port.port, port.protocol, port.effective_check());
    match &port.name {
        Some(name) => format!("{spec}/{name}"),
        None => spec,
    }
}

/// A hosts file answering every pod by its name and by `<pod>.<namespace>.svc.cluster.local`,
/// plus `kubernetes.default.svc.cluster.local` (the name DNS probes ask by default).
pub fn dns_hosts(topology: &Topology, kubernetes_service: IpAddr) -> String {
    let mut hosts = format!("{kubernetes_service} kubernetes.default.svc.cluster.local\n");
    for pod in &topology.pods {
        hosts.push_str(&format!(
            "{} {} {}.{}.svc.cluster.local\n",
            pod.ip, pod.name, pod.name, pod.namespace
        ));
    }
    hosts
}

/// The TCP ports of `pod` a real server (not the agent) listens on: connectable once ready.
pub fn tcp_server_ports(pod: &Pod) -> Vec<u16> {
    pod.ports
        .iter()
        .filter(|p| p.protocol == Protocol::Tcp && !p.effective_check().served_by_agent())
        .map(|p| p.port)
        .collect()
}

/// Waits, inside the pod's namespace, until every port in `ports` accepts TCP connections
/// and `ready_file` exists.
pub fn wait_ready(
    netns: &str,
    ip: IpAddr,
    ports: Vec<u16>,
    ready_file: PathBuf,
    deadline: Instant,
) -> Result<(), String> {
    let netns = netns.to_owned();
    let result = super::netns::in_netns(&netns, move || {
        let mut pending = ports;
        loop {
            pending.retain(|port| {
                let addr = SocketAddr::new(ip, *port);
                TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err()
            });
            let agent_ready = ready_file.exists();
            if pending.is_empty() && agent_ready {
                return Ok(Ok(()));
            }
            if Instant::now() >= deadline {
                let mut missing: Vec<String> = pending
                    .iter()
                    .map(|p| format!("port {p} not accepting"))
                    .collect();
                if !agent_ready {
                    missing.push("agent not ready".into());
                }
                return Ok(Err(missing.join(", ")));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    result.map_err(|e| e.to_string())?
}
