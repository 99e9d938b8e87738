//! Network namespace plumbing: names, `ip -batch` scripts, entering a namespace, and
//! flushing a namespace's conntrack table.
//!
//! Everything here works on named namespaces (`/run/netns/<name>`, the files `ip netns`
//! manages) and never changes the namespace of the calling thread: commands enter a
//! namespace in `pre_exec`, and in-process work runs on a short-lived thread of its own.

use crate::backend::BackendError;
use std::fs::File;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Every name a local run creates starts with this.
pub const PREFIX: &str = "nph-";

/// Where `ip netns` keeps its namespace files.
pub const NETNS_DIR: &str = "/run/netns";

/// The link-local next hop every pod routes through (never configured on any interface: both
/// sides have static neighbour entries, so no ARP or proxy ARP is needed).
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

/// The MAC of the node side of every veth (one per link, so the same on all is fine).
pub const NODE_MAC: &str = "ee:ee:ee:ee:ee:ee";

/// The names of one run's namespaces and interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub run_id: String,
}

impl Names {
    pub fn new(run_id: &str) -> Self {
        Names {
            run_id: run_id.to_owned(),
        }
    }

    /// `nph-<runid>`: the nftables table, the state file stem and the prefix of every other
    /// name of the run.
    pub fn run(&self) -> String {
        format!("{PREFIX}{}", self.run_id)
    }

    /// The node namespace: the router between the pods.
    pub fn node(&self) -> String {
        format!("{}-node", self.run())
    }

    /// The namespace of a pod, readable in `ip netns list`; falls back to the pod's index
    /// when the names are too long for a file name.
    pub fn pod(&self, index: usize, namespace: &str, pod: &str) -> String {
        let readable = format!("{}-{namespace}-{pod}", self.run());
        if readable.len() <= 200 && !readable.contains('/') {
            readable
        } else {
            format!("{}-p{index}", self.run())
        }
    }

    /// The namespace of an external (non-pod) host.
    pub fn external(&self, name: &str) -> String {
        format!("{}-x-{name}", self.run())
    }

    /// The node side of a pod's veth: at most 15 characters (`nph-` + 5 + `-` + index).
    pub fn pod_link(&self, index: usize) -> String {
        format!("{}-{index}", self.run())
    }

    /// The node side of an external host's veth.
    pub fn external_link(&self, index: usize) -> String {
        format!("{}-x{index}", self.run())
    }
}

/// The MAC address of a pod's `eth0`: locally administered, derived from its address.
pub fn pod_mac(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
}

/// The file of a named namespace.
pub fn netns_path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Opens a named namespace for [`setns`](libc::setns).
pub fn open_netns(name: &str) -> Result<File, BackendError> {
    File::open(netns_path(name)).map_err(|source| BackendError::Io {
        action: format!("open network namespace {name}"),
        source,
    })
}

/// Makes `command` run inside namespace `ns` (entered between fork and exec).
pub fn enter_in_child(command: &mut Command, ns: File) {
    // SAFETY: the closure only calls setns(2), which is async-signal-safe, on a file
    // descriptor the closure owns.
    unsafe {
        command.pre_exec(move || {
            if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Runs `f` on a fresh thread that has entered namespace `ns`, so that sockets it opens and
/// `/proc/sys/net` files it writes belong to that namespace.
pub fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, BackendError> {
    let file = open_netns(ns)?;
    let action = format!("work inside network namespace {ns}");
    let joined = std::thread::spawn(move || {
        // SAFETY: setns(2) on a descriptor we own; it changes only this thread's namespace,
        // and this thread ends after `f`.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        f()
    })
    .join();
    match joined {
        Ok(result) => result.map_err(|source| BackendError::Io { action, source }),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Writes a sysctl of the namespace the calling thread is in (`net.ipv4.ip_forward` is
/// `ipv4/ip_forward` here).
pub fn write_net_sysctl(key: &str, value: &str) -> std::io::Result<()> {
    std::fs::write(Path::new("/proc/sys/net").join(key), value)
}

/// Runs `program args...` with `input` on stdin and fails with its stderr on a non-zero
/// exit.
pub fn run_with_input(mut command: Command, input: &str) -> Result<String, BackendError> {
    let shown = format!("{command:?}").replace('"', "");
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| BackendError::Spawn { program, source })?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // A write error means the child exited early; its status and stderr say why.
    let _ = stdin.write_all(input.as_bytes());
    drop(stdin);
    let output = child
        .wait_with_output()
        .map_err(|source| BackendError::Io {
            action: format!("wait for {shown}"),
            source,
        })?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    Err(BackendError::Command {
        command: shown,
        status: output.status.to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    })
}

/// `ip [-n ns] -batch -` with `script` on stdin.
pub fn ip_batch(ns: Option<&str>, script: &str) -> Result<(), BackendError> {
    let mut command = Command::new("ip");
    if let Some(ns) = ns {
        command.args(["-n", ns]);
    }
    command.args(["-batch", "-"]);
    run_with_input(command, script).map(drop)
}

/// Starts `ip -n ns -batch -` without waiting, so that many namespaces are configured in
/// parallel; [`wait_batch`] collects it.
pub fn spawn_ip_batch(ns: &str, script: &str) -> Result<std::process::Child, BackendError> {
    let mut child = Command::new("ip")
        .args(["-n", ns, "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| BackendError::Spawn {
            program: "ip".into(),
            source,
        })?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let _ = stdin.write_all(script.as_bytes());
    Ok(child)
}

/// Waits for a batch started by [`spawn_ip_batch`].
pub fn wait_batch(ns: &str, child: std::process::Child) -> Result<(), BackendError> {
    let output = child
        .wait_with_output()
        .map_err(|source| BackendError::Io {
            action: format!("wait for ip -n {ns} -batch"),
            source,
        })?;
    if output.status.success() {
        return Ok(());
    }
    Err(BackendError::Command {
        command: format!("ip -n {ns} -batch -"),
        status: output.status.to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    })
}

/// The named namespaces that exist now.
pub fn list_netns() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// Deletes named namespaces (those that no longer exist are skipped). A namespace dies, with
/// its interfaces and nftables tables, once no process is left in it.
pub fn delete_netns(names: &[String]) -> Result<(), BackendError> {
    let existing: Vec<&String> = names.iter().filter(|n| netns_path(n).exists()).collect();
    if existing.is_empty() {
        return Ok(());
    }
    let script: String = existing
        .iter()
        .map(|n| format!("netns del {n}\n"))
        .collect();
    // `-force` keeps going past a namespace another cleanup removed meanwhile; that
    // cleanup's success is ours too.
    let mut command = Command::new("ip");
    command.args(["-force", "-batch", "-"]);
    match run_with_input(command, &script) {
        Err(_) if existing.iter().all(|n| !netns_path(n).exists()) => Ok(()),
        result => result.map(drop),
    }
}

/// The process ids whose network namespace is one of `names`.
pub fn pids_in_netns(names: &[String]) -> Vec<i32> {
    use std::os::unix::fs::MetadataExt;
    let wanted: Vec<(u64, u64)> = names
        .iter()
        .filter_map(|n| std::fs::metadata(netns_path(n)).ok())
        .map(|m| (m.dev(), m.ino()))
        .collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::metadata(format!("/proc/{pid}/ns/net"))
                .map(|m| wanted.contains(&(m.dev(), m.ino())))
                .unwrap_or(false)
        })
        .collect()
}

/// Deletes every entry of the conntrack table of the namespace the calling thread is in,
/// through ctnetlink (what `conntrack -F` does), so that no flow a previous policy set
/// accepted keeps passing as "established" (UDP flows especially linger for 30 s or more).
pub fn flush_conntrack() -> std::io::Result<()> {
    const NFNL_SUBSYS_CTNETLINK: u16 = 1;
    const IPCTNL_MSG_CT_DELETE: u16 = 2;
    // SAFETY: plain socket(2); the descriptor is owned by `OwnedFd` below.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_NETFILTER,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let mut message = [0u8; 20];
    let kind = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE;
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
    message[0..4].copy_from_slice(&20u32.to_ne_bytes());
    message[4..6].copy_from_slice(&kind.to_ne_bytes());
    message[6..8].copy_from_slice(&flags.to_ne_bytes());
    message[8..12].copy_from_slice(&1u32.to_ne_bytes());
    // nfgenmsg: family AF_UNSPEC (every family), version 0, resource id 0.
    message[16] = libc::AF_UNSPEC as u8;
    // SAFETY: a zeroed sockaddr_nl with the family set addresses the kernel.
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: buffer and address are valid for the lengths given.
    let sent = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            message.as_ptr().cast(),
            message.len(),
            0,
            (&raw const kernel).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut reply = [0u8; 256];
    // SAFETY: the buffer is valid for its length.
    let received = unsafe { libc::recv(fd.as_raw_fd(), reply.as_mut_ptr().cast(), reply.len(), 0) };
    if received < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // The ack is an NLMSG_ERROR whose error code is 0 on success.
    if received >= 20 && u16::from_ne_bytes([reply[4], reply[5]]) == libc::NLMSG_ERROR as u16 {
        let code = i32::from_ne_bytes([reply[16], reply[17], reply[18], reply[19]]);
        if code != 0 && code != -libc::ENOENT {
            return Err(std::io::Error::from_raw_os_error(-code));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_fit_the_kernel_limit() {
        let names = Names::new("abcde");
        assert!(names.pod_link(99_999).len() <= 15);
        assert!(names.external_link(9_999).len() <= 15);
    }

    #[test]
    fn every_name_of_a_run_carries_the_prefix_and_run_id() {
        let names = Names::new("k3x9z");
        for name in [
            names.node(),
            names.pod(0, "a", "b"),
            names.external("e"),
            names.pod_link(1),
        ] {
            assert!(name.starts_with("nph-k3x9z"), "{name}");
        }
    }

    #[test]
    fn pod_mac_is_locally_administered_and_unique_per_address() {
        assert_eq!(pod_mac(Ipv4Addr::new(10, 244, 0, 17)), "02:42:0a:f4:00:11");
    }
}
