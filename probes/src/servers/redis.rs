//! A throwaway `redis-server`: no persistence, reachable from other namespaces.

use super::process::{Error, Launch, ServerGuard, WorkDir, find_binary};
use crate::spec::{Check, Protocol};
use crate::wire::{Outcome, Target};
use nix::sys::signal::Signal;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How to start one Redis server.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    pub listen: SocketAddr,
    /// Run inside this network namespace (`/run/netns/NAME`).
    pub netns: Option<String>,
    /// Where to create the server's work directory; [`base_dir`](super::base_dir) when
    /// `None`. A caller that cleans up after killed runs passes a directory it owns.
    pub parent_dir: Option<PathBuf>,
    pub ready_timeout: Duration,
}

impl RedisOptions {
    pub fn new(listen: SocketAddr) -> Self {
        RedisOptions {
            listen,
            netns: None,
            parent_dir: None,
            ready_timeout: Duration::from_secs(10),
        }
    }
}

/// Starts `redis-server` and waits until it answers `PING`.
///
/// # Errors
///
/// [`Error`]; [`Error::NotOnPath`] names the apt package `redis-server`.
pub async fn start_redis(options: &RedisOptions) -> Result<ServerGuard, Error> {
    let binary = find_binary("redis-server", "redis-server")?;
    let dir = WorkDir::in_parent(options.parent_dir.as_deref(), "redis")?;
    let log = dir.path().join("redis.log");
    let args = [
        "--bind",
        &options.listen.ip().to_string(),
        "--port",
        &options.listen.port().to_string(),
        "--save",
        "",
        "--appendonly",
        "no",
        // Clients come from other namespaces and carry no password.
        "--protected-mode",
        "no",
        "--daemonize",
        "no",
        "--dir",
        &dir.path().display().to_string(),
        "--databases",
        "1",
    ]
    .map(OsString::from)
    .to_vec();
    let launch = Launch {
        binary: &binary,
        args,
        netns: options.netns.as_deref(),
        user: None,
        cwd: dir.path(),
        log: &log,
    };
    let child = launch.spawn()?;
    let mut guard = ServerGuard::new(&binary, child, options.listen, log, Signal::SIGTERM, dir);
    let target = readiness_target(options.listen, Check::Redis, Protocol::Tcp);
    guard
        .wait_ready(options.netns.as_deref(), options.ready_timeout, move || {
            let target = target.clone();
            async move { answers(&target).await }
        })
        .await?;
    Ok(guard)
}

/// A target for a readiness check: the agent's own probe against the server.
pub(crate) fn readiness_target(addr: SocketAddr, check: Check, protocol: Protocol) -> Target {
    Target {
        id: format!("ready-{check}"),
        ip: addr.ip(),
        port: addr.port(),
        protocol,
        check,
        expect_identity: None,
        timeout_ms: 1000,
        dns_name: None,
        host: None,
        resolver: None,
    }
}

/// Whether the probe of `target` connects.
pub(crate) async fn answers(target: &Target) -> Result<(), String> {
    let prober = crate::probe::Prober::new().map_err(|e| e.to_string())?;
    let result = prober.probe(target).await;
    match result.outcome {
        Outcome::Connected => Ok(()),
        outcome => Err(format!("{outcome}: {}", result.detail)),
    }
}
