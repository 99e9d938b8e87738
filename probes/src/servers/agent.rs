//! The agent itself, `netpol-probe serve`, as a child process.

use super::process::{Error, Launch, ServerGuard, WorkDir, find_binary};
use crate::spec::PortSpec;
use nix::sys::signal::Signal;
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Finds the `netpol-probe` binary: `$NETPOL_PROBE_BIN`, else beside the running executable
/// or one directory up (Cargo puts test binaries in `target/*/deps/`), else on `PATH`.
///
/// # Errors
///
/// [`Error::AgentNotBuilt`] with a hint to build it.
pub fn find_agent_binary() -> Result<PathBuf, Error> {
    if let Some(path) = std::env::var_os("NETPOL_PROBE_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().ok();
    let beside = exe.iter().flat_map(|exe| exe.ancestors().skip(1).take(2));
    let found = beside
        .map(|dir| dir.join("netpol-probe"))
        .find(|candidate| candidate.is_file());
    let path = exe
        .as_deref()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."))
        .join("netpol-probe");
    found
        .or_else(|| find_binary("netpol-probe", "").ok())
        .ok_or(Error::AgentNotBuilt { path })
}

/// How to start one agent.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// The `netpol-probe` binary (see [`find_agent_binary`]).
    pub binary: PathBuf,
    /// The pod's namespace and name: its identity.
    pub namespace: String,
    pub name: String,
    pub ports: Vec<PortSpec>,
    /// Addresses to bind; empty means the agent's default (`0.0.0.0` and `::`).
    pub bind: Vec<IpAddr>,
    /// Run inside this network namespace (`/run/netns/NAME`).
    pub netns: Option<String>,
    /// Where to create the server's work directory; [`base_dir`](super::base_dir) when
    /// `None`. A caller that cleans up after killed runs passes a directory it owns.
    pub parent_dir: Option<PathBuf>,
    pub ready_timeout: Duration,
}

impl AgentOptions {
    pub fn new(binary: PathBuf, namespace: &str, name: &str, ports: Vec<PortSpec>) -> Self {
        AgentOptions {
            binary,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            ports,
            bind: Vec::new(),
            netns: None,
            parent_dir: None,
            ready_timeout: Duration::from_secs(10),
        }
    }
}

/// Starts `netpol-probe serve` and waits for its ready file (written once every listener is
/// bound). The guard's [`addr`](ServerGuard::addr) is the first bind address (or `0.0.0.0`)
/// with the first port.
///
/// # Errors
///
/// [`Error`] when the binary is missing, exits, or is not ready in time.
pub async fn start_agent(options: &AgentOptions) -> Result<ServerGuard, Error> {
    let binary = options.binary.clone();
    if !binary.is_file() {
        return Err(Error::AgentNotBuilt { path: binary });
    }
    let dir = WorkDir::in_parent(options.parent_dir.as_deref(), "agent")?;
    let spec = dir.path().join("ports.json");
    let ready = dir.path().join("ready");
    let json = serde_json::to_string(&options.ports).unwrap_or_else(|_| "[]".to_owned());
    std::fs::write(&spec, json).map_err(|source| Error::Prepare {
        path: spec.clone(),
        source,
    })?;
    let mut args: Vec<OsString> = vec![
        "serve".into(),
        "--namespace".into(),
        options.namespace.clone().into(),
        "--name".into(),
        options.name.clone().into(),
        "--spec".into(),
        spec.into(),
        "--ready-file".into(),
        ready.clone().into(),
    ];
    for ip in &options.bind {
        args.push("--bind".into());
        args.push(ip.to_string().into());
    }
    let log = dir.path().join("agent.log");
    let launch = Launch {
        binary: &binary,
        args,
        netns: options.netns.as_deref(),
        user: None,
        cwd: dir.path(),
        log: &log,
    };
    let child = launch.spawn()?;
    let ip = options
        .bind
        .first()
        .copied()
        .unwrap_or(Ipv4Addr::UNSPECIFIED.into());
    let addr = SocketAddr::new(ip, options.ports.first().map_or(0, |p| p.port));
    let mut guard = ServerGuard::new(&binary, child, addr, log, Signal::SIGTERM, dir);
    // The ready file is on the shared filesystem: no need to look from inside the namespace.
    guard
        .wait_ready(None, options.ready_timeout, move || {
            let ready = ready.clone();
            async move {
                if ready.exists() {
                    Ok(())
                } else {
                    Err("no ready file yet".to_owned())
                }
            }
        })
        .await?;
    Ok(guard)
}
