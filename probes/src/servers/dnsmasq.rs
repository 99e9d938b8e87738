//! `dnsmasq` as a small authoritative DNS server: fixed records, `NXDOMAIN` for every other
//! name under the local domains, no upstream, no DHCP.

use super::process::{Error, Launch, ServerGuard, WorkDir, find_binary};
use super::redis::{answers, readiness_target};
use crate::spec::{Check, Protocol};
use nix::sys::signal::Signal;
use nix::unistd::Uid;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// How to start one dnsmasq.
#[derive(Debug, Clone)]
pub struct DnsmasqOptions {
    /// The address and port to answer on, over UDP and TCP.
    pub listen: SocketAddr,
    /// Run inside this network namespace (`/run/netns/NAME`).
    pub netns: Option<String>,
    /// A and AAAA records: a fully qualified name (trailing dot optional) and its addresses.
    pub records: BTreeMap<String, Vec<IpAddr>>,
    /// Domains answered locally: unknown names under them get `NXDOMAIN` (`--local`).
    /// Names outside them get `REFUSED` (there is no upstream).
    pub local_domains: Vec<String>,
    /// Where to create the server's work directory; [`base_dir`](super::base_dir) when
    /// `None`. A caller that cleans up after killed runs passes a directory it owns.
    pub parent_dir: Option<PathBuf>,
    pub ready_timeout: Duration,
}

impl DnsmasqOptions {
    pub fn new(listen: SocketAddr) -> Self {
        DnsmasqOptions {
            listen,
            netns: None,
            records: BTreeMap::new(),
            local_domains: vec!["cluster.local".to_owned()],
            parent_dir: None,
            ready_timeout: Duration::from_secs(10),
        }
    }
}

/// Starts dnsmasq and waits until it answers a query over UDP and over TCP.
///
/// dnsmasq binds its sockets before anything else, then drops root for `nobody`; when we run
/// as root it is told to stay root (`--user=root`) so that a port below 1024 (53) works the
/// same way as any other.
///
/// # Errors
///
/// [`Error`]; [`Error::NotOnPath`] names the apt package `dnsmasq`.
pub async fn start_dnsmasq(options: &DnsmasqOptions) -> Result<ServerGuard, Error> {
    let binary = find_binary("dnsmasq", "dnsmasq")?;
    let dir = WorkDir::in_parent(options.parent_dir.as_deref(), "dnsmasq")?;
    let log = dir.path().join("dnsmasq.log");
    let launch = Launch {
        binary: &binary,
        args: dnsmasq_args(options, &dir),
        netns: options.netns.as_deref(),
        user: None,
        cwd: dir.path(),
        log: &log,
    };
    let child = launch.spawn()?;
    let mut guard = ServerGuard::new(&binary, child, options.listen, log, Signal::SIGTERM, dir);
    let udp = readiness_target(options.listen, Check::Dns, Protocol::Udp);
    let tcp = readiness_target(options.listen, Check::Dns, Protocol::Tcp);
    guard
        .wait_ready(options.netns.as_deref(), options.ready_timeout, move || {
            let (udp, tcp) = (udp.clone(), tcp.clone());
            async move {
                answers(&udp).await?;
                answers(&tcp).await
            }
        })
        .await?;
    Ok(guard)
}

fn dnsmasq_args(options: &DnsmasqOptions, dir: &WorkDir) -> Vec<OsString> {
    let mut args = vec![
        // Not `--no-daemon`: that is dnsmasq's debug mode, which also answers TCP queries in
        // the main process, so one TCP client that stops talking (a probe whose connection a
        // policy change cut) stalls every query, UDP too, until dnsmasq's TCP timeout.
        // `--keep-in-foreground` runs it as normal, one child per TCP connection, in the
        // server's process group, which stopping the server kills.
        "--keep-in-foreground".to_owned(),
        "--conf-file=/dev/null".to_owned(),
        "--no-resolv".to_owned(),
        "--no-hosts".to_owned(),
        "--no-poll".to_owned(),
        "--bind-interfaces".to_owned(),
        format!("--listen-address={}", options.listen.ip()),
        format!("--port={}", options.listen.port()),
        format!("--pid-file={}", dir.path().join("dnsmasq.pid").display()),
        "--log-facility=-".to_owned(),
    ];
    if Uid::effective().is_root() {
        args.push("--user=root".to_owned());
    }
    for domain in &options.local_domains {
        args.push(format!("--local=/{}/", domain.trim_end_matches('.')));
    }
    for (name, ips) in &options.records {
        for ip in ips {
            args.push(format!("--host-record={},{ip}", name.trim_end_matches('.')));
        }
    }
    args.into_iter().map(OsString::from).collect()
}
