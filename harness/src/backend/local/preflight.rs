//! Checks that run before the local backend changes anything, each failing with what to do.

use crate::backend::BackendError;
use crate::engine::{Cidr, Topology};
use netpol_probes::spec::Check;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// `CAP_NET_ADMIN` and `CAP_SYS_ADMIN` (to create and mount network namespaces).
const NEEDED_CAPS: [(u32, &str); 2] = [(12, "CAP_NET_ADMIN"), (21, "CAP_SYS_ADMIN")];

/// Fails unless the process may create network namespaces and nftables tables.
pub fn privileges() -> Result<(), BackendError> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    let missing: Vec<&str> = NEEDED_CAPS
        .iter()
        .filter(|(bit, _)| effective & (1 << bit) == 0)
        .map(|(_, name)| *name)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(BackendError::Preflight {
        message: format!(
            "the local backend needs {}: run as root or use --backend kube",
            missing.join(" and ")
        ),
    })
}

/// Finds `program` on `PATH`, then in `extra` directories.
pub fn find_program(program: &str, extra: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra.iter().cloned())
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The directories where Debian and Ubuntu install Postgres' server binaries, newest first.
pub fn postgres_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .collect();
    dirs.sort_by(|a, b| b.cmp(a));
    dirs
}

/// Where `netpol_probes::servers` looks for `redis-server` and `dnsmasq` after `PATH`.
const SBIN_DIRS: [&str; 4] = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/// The programs the local backend runs, found before anything is changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Programs {
    /// The directory holding `initdb` and `postgres` (of one Postgres version), when a pod
    /// serves Postgres.
    pub postgres_bin_dir: Option<PathBuf>,
}

/// Fails when `ip` or `nft`, or a server the topology needs, is not installed, naming the
/// apt package to install.
pub fn programs(topology: &Topology) -> Result<Programs, BackendError> {
    let missing = |program: &str, package: &str| BackendError::Preflight {
        message: format!(
            "`{program}` is not installed: install the `{package}` package \
             (apt-get install {package})"
        ),
    };
    let require = |program: &str, package: &str, extra: &[PathBuf]| {
        find_program(program, extra).ok_or_else(|| missing(program, package))
    };
    require("ip", "iproute2", &[])?;
    require("nft", "nftables", &[])?;
    let needs = |check: Check| {
        topology
            .pods
            .iter()
            .flat_map(|p| &p.ports)
            .any(|port| port.effective_check() == check)
    };
    let mut programs = Programs {
        postgres_bin_dir: None,
    };
    if needs(Check::Postgres) {
        // `postgres` must sit next to `initdb`, so that both come from one Postgres version.
        let initdb = require("initdb", "postgresql", &postgres_dirs())?;
        let dir = initdb.parent().unwrap_or(Path::new("/")).to_owned();
        if !is_executable(&dir.join("postgres")) {
            return Err(missing("postgres", "postgresql"));
        }
        programs.postgres_bin_dir = Some(dir);
    }
    let sbin: Vec<PathBuf> = SBIN_DIRS.iter().map(PathBuf::from).collect();
    if needs(Check::Redis) {
        require("redis-server", "redis-server", &sbin)?;
    }
    if needs(Check::Dns) {
        require("dnsmasq", "dnsmasq", &sbin)?;
    }
    Ok(programs)
}

/// Fails when a pod is not IPv4 (the local data plane is IPv4 only).
pub fn address_families(topology: &Topology) -> Result<(), BackendError> {
    match topology.pods.iter().find(|pod| !pod.ip.is_ipv4()) {
        None => Ok(()),
        Some(pod) => Err(BackendError::Unsupported(format!(
            "pod {} has the IPv6 address {}: the local backend runs IPv4 pods only",
            pod.id(),
            pod.ip
        ))),
    }
}

/// Fails when an address the run uses (a pod's, an external host's, the DNS Service's)
/// falls inside a network configured on the machine's own (root namespace) interfaces, or
/// one of those interface addresses falls inside the pod CIDR.
pub fn overlaps(used: &[(String, IpAddr)], pod_cidr: Option<Cidr>) -> Result<(), BackendError> {
    let output = std::process::Command::new("ip")
        .args(["-j", "addr"])
        .output()
        .map_err(|source| BackendError::Spawn {
            program: "ip".into(),
            source,
        })?;
    let interfaces: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
    for (ifname, network) in host_networks(&interfaces) {
        if network.addr.is_loopback() {
            continue;
        }
        let clash = used
            .iter()
            .find(|(_, ip)| network.contains(*ip))
            .map(|(what, ip)| format!("{what} ({ip})"))
            .or_else(|| {
                pod_cidr
                    .filter(|c| c.contains(network.addr))
                    .map(|c| format!("pod CIDR {c}"))
            });
        if let Some(clash) = clash {
            return Err(BackendError::Preflight {
                message: format!(
                    "{clash} overlaps {}/{} on {ifname} of this machine: choose another pod \
                     CIDR (topology addresses) so test traffic cannot be confused with it",
                    network.addr, network.prefix
                ),
            });
        }
    }
    Ok(())
}

/// `(interface, address/prefix)` for every address in `ip -j addr` output.
fn host_networks(interfaces: &serde_json::Value) -> Vec<(String, Cidr)> {
    let mut networks = Vec::new();
    for interface in interfaces.as_array().into_iter().flatten() {
        let ifname = interface["ifname"].as_str().unwrap_or("?").to_owned();
        for info in interface["addr_info"].as_array().into_iter().flatten() {
            let addr = info["local"]
                .as_str()
                .and_then(|a| a.parse::<IpAddr>().ok());
            let prefix = info["prefixlen"]
                .as_u64()
                .and_then(|p| u8::try_from(p).ok());
            if let (Some(addr), Some(prefix)) = (addr, prefix) {
                networks.push((ifname.clone(), Cidr { addr, prefix }));
            }
        }
    }
    networks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_networks_are_read_from_ip_json() {
        let json = serde_json::json!([
            {"ifname": "eth0", "addr_info": [{"family": "inet", "local": "10.1.2.3", "prefixlen": 8}]}
        ]);
        let networks = host_networks(&json);
        assert_eq!(networks.len(), 1);
        assert!(networks[0].1.contains("10.244.0.1".parse().unwrap()));
    }
}
