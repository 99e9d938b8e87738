//! The local backend: pods as network namespaces on this machine, policies compiled to
//! nftables, real servers inside.
//!
//! # Network
//! A *node* namespace (`nph-<runid>-node`) is the router. Each pod gets a namespace joined to
//! the node by a veth pair (node side `nph-<runid>-<index>`, pod side `eth0`) with its
//! topology address as a /32, a default route through the link-local next hop 169.254.1.1
//! and a /32 route per pod in the node, as Calico does. Both ends carry static neighbour
//! entries, which replaces proxy ARP. Nothing lives in the root namespace and the node has
//! no default route, so test traffic never leaves the run's namespaces.
//!
//! Links are made with two `ip -batch` runs (namespaces and veths from the root namespace,
//! then the node's routes) plus one `ip -n <pod> -batch` per pod, all started at once; no
//! `ip netns exec` is needed: commands enter a namespace with `setns` before `exec`.
//!
//! # Policies
//! [`nft`] compiles the policies to one `inet` table (`nph-<runid>`) in the node namespace,
//! loaded with `nft -f -`. The text format was chosen over the `nftables` crate: the crate
//! drives the same `nft` binary (through JSON), so it is not faster and brings no stronger
//! atomicity, while the text is what `nft list table` shows a user debugging a run and what
//! unit tests can read. A whole table is replaced in one transaction, so a policy change
//! never opens a window. After each change the node's conntrack table is flushed (through
//! ctnetlink, no `conntrack` tool needed): otherwise a UDP flow a previous policy set
//! allowed would keep passing as "established" for 30 s or more, and convergence checks
//! would see stale allows.
//!
//! The `provided` DNS pod (CoreDNS in a cluster) is deployed like any pod and serves DNS
//! with dnsmasq; the kube-dns Service address (10.96.0.10 by default) is DNATed to it in the
//! node's prerouting, and [`Backend::address`] returns that address for it.
//!
//! # Cleanup
//! Every resource is named `nph-<runid>...` and recorded in a state file before it exists
//! ([`state`]). [`LocalBackend::teardown`], dropping the backend (also on panic), and the
//! signal handler of [`LocalBackend::install_signal_cleanup`] remove it; [`clean`] removes
//! what killed runs left.
//!
//! # Servers
//! [`servers`] maps each pod's ports to `netpol_probes::servers` (the agent, Postgres from a
//! template initdb'd once per run, Redis, dnsmasq), which starts them in the pod's namespace
//! and waits until each answers. Every server's work directory (data, sockets, logs) is
//! inside the run's directory `<tmp>/nph-<runid>`, so removing that one directory removes
//! them all. Servers die with the thread that forked them (`PR_SET_PDEATHSIG`), so they are
//! started from a thread the backend owns (a [`Launcher`]): they die with the harness
//! process but not with whichever thread happened to call `deploy`.
//!
//! # Faults
//! [`Faults`] (issue 7) are enforcement bugs injected on purpose: each bends one step of the
//! compiler (see [`nft`]), except `late-enforcement`, which delays loading the compiled table.
//! [`LocalBackend::set_faults`] switches them on a deployed run.
//!
//! # Known limitations
//! - IPv4 only: IPv6 pods are refused before anything is created.
//! - Servers are plain child processes of the harness: a pod's "containers" share the
//!   machine's filesystem and users.
//! - A process killed with SIGKILL cannot clean up: its servers die with it
//!   (`PR_SET_PDEATHSIG`), and `netpol-harness clean --backend local` removes the rest.
//! - A deployment belongs to one process: there is no way yet to attach to a running
//!   deployment from another process (e.g. one nextest trial per process).

pub mod netns;
pub mod nft;
pub mod preflight;
mod selector;
pub mod servers;
pub mod state;

pub use nft::Faults;
pub use state::{Report, clean};

use self::netns::{GATEWAY, NODE_MAC, Names};
use self::state::RunState;
use super::{Backend, BackendError};
use crate::engine::{Cidr, Labels, NAMESPACE_NAME_LABEL, NetworkPolicy, PodIndex, Topology};
use netpol_probes::servers::{Launcher, PostgresTemplate, ServerGuard};
use netpol_probes::spec::{Check, PortSpec};
use netpol_probes::wire::{ProbeResult, Target};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The kube-dns Service address pods use, DNATed to the `provided` DNS pod.
pub const DNS_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);

/// The default Service address range: probe pods' ClusterIPs are allocated from it.
pub const DEFAULT_SERVICE_CIDR: Cidr = Cidr {
    addr: IpAddr::V4(Ipv4Addr::new(10, 96, 0, 0)),
    prefix: 16,
};

/// ClusterIPs start at this offset in the Service range, so that the addresses kube-dns
/// (10.96.0.10) and the `kubernetes` Service (10.96.0.1) use stay free.
const SERVICE_OFFSET: u32 = 256;

/// The default pod CIDR (the topology parser assigns pod addresses from it).
pub const DEFAULT_POD_CIDR: Cidr = Cidr {
    addr: IpAddr::V4(Ipv4Addr::new(10, 244, 0, 0)),
    prefix: 16,
};

/// A host outside the cluster (not a pod: no policy selects it), for `ipBlock` tests. It
/// runs the agent on its ports and can be probed from and to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalHost {
    /// Short name (part of its namespace's name).
    pub name: String,
    /// Must lie outside the pod CIDR, e.g. in 192.0.2.0/24 (TEST-NET-1).
    pub ip: Ipv4Addr,
    pub ports: Vec<PortSpec>,
}

/// How to run the local backend.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// The run id (5 characters `[a-z0-9]`); random when `None`.
    pub run_id: Option<String>,
    /// Checked against the machine's addresses before anything is created.
    pub pod_cidr: Cidr,
    pub dns_service_ip: Ipv4Addr,
    /// The Service address range; pod `i`'s ClusterIP is the range's address 256 + `i`.
    pub service_cidr: Cidr,
    /// Data-plane bugs to inject (none by default).
    pub faults: Faults,
    /// The `netpol-probe` binary; found automatically when `None` (see [`find_probe_bin`]).
    pub probe_bin: Option<PathBuf>,
    pub external_hosts: Vec<ExternalHost>,
    /// How long each server may take to answer once started (all start at once).
    pub ready_timeout: Duration,
}

impl Default for LocalConfig {
    fn default() -> Self {
        LocalConfig {
            run_id: None,
            pod_cidr: DEFAULT_POD_CIDR,
            dns_service_ip: DNS_SERVICE_IP,
            service_cidr: DEFAULT_SERVICE_CIDR,
            faults: Faults::default(),
            probe_bin: None,
            external_hosts: Vec::new(),
            ready_timeout: Duration::from_secs(20),
        }
    }
}

/// Where the `netpol-probe` binary is (see [`find_agent_binary`]): `NETPOL_PROBE_BIN`, else
/// beside the running executable or in its parent directory (tests run from
/// `target/<profile>/deps`), else on `PATH`.
///
/// [`find_agent_binary`]: netpol_probes::servers::find_agent_binary
///
/// # Errors
/// [`BackendError::ProbeBinaryMissing`].
pub fn find_probe_bin() -> Result<PathBuf, BackendError> {
    netpol_probes::servers::find_agent_binary().map_err(|error| match error {
        netpol_probes::servers::Error::AgentNotBuilt { path } => BackendError::ProbeBinaryMissing {
            looked_at: vec![path],
        },
        other => BackendError::Preflight {
            message: other.to_string(),
        },
    })
}

/// The length of a run id.
pub const RUN_ID_LEN: usize = 5;

/// A new random run id: 5 characters of `[a-z0-9]`.
pub fn new_run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    let mut n = hasher.finish();
    (0..RUN_ID_LEN)
        .map(|_| {
            let c = b"abcdefghijklmnopqrstuvwxyz0123456789"[(n % 36) as usize];
            n /= 36;
            c as char
        })
        .collect()
}

/// Measured durations of the last deploy, for benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DeployTimings {
    pub preflight: Duration,
    /// Namespaces, veths, addresses, routes, forwarding.
    pub network: Duration,
    /// Loading the empty policy table.
    pub nftables: Duration,
    /// Starting every server and waiting until all are ready (includes Postgres initdb).
    pub servers: Duration,
    /// From starting Postgres initdb (in parallel with the network) to its end; zero when no
    /// pod serves Postgres.
    pub initdb: Duration,
    pub total: Duration,
}

/// The local backend. See the [module docs](self).
pub struct LocalBackend {
    config: LocalConfig,
    names: Names,
    topology: Topology,
    policies: Vec<NetworkPolicy>,
    /// Set once deploy starts creating things.
    state: Option<RunState>,
    probe_bin: PathBuf,
    servers: Vec<ServerGuard>,
    dns: Option<(PodIndex, nft::DnsService)>,
    /// The Service of each pod (`None` for `provided` pods), by pod index.
    services: Vec<Option<nft::ServiceDnat>>,
    /// Bumped on every policy change, so a late enforcement never overrides a newer one.
    generation: Arc<AtomicU64>,
    timings: DeployTimings,
    /// Starts the servers (see the [module docs](self)); created by `deploy`, and dropped
    /// only after teardown has stopped them.
    launcher: Option<Launcher>,
}

impl LocalBackend {
    /// A backend that has created nothing yet.
    ///
    /// # Panics
    /// When `config.run_id` is not 5 characters of `[a-z0-9]`.
    pub fn new(config: LocalConfig) -> Self {
        let run_id = config.run_id.clone().unwrap_or_else(new_run_id);
        assert!(
            run_id.len() == RUN_ID_LEN
                && run_id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
            "a run id is 5 characters of [a-z0-9], got {run_id:?}"
        );
        LocalBackend {
            names: Names::new(&run_id),
            config,
            topology: Topology::default(),
            policies: Vec::new(),
            state: None,
            probe_bin: PathBuf::new(),
            servers: Vec::new(),
            dns: None,
            services: Vec::new(),
            generation: Arc::new(AtomicU64::new(0)),
            timings: DeployTimings::default(),
            launcher: None,
        }
    }

    pub fn run_id(&self) -> &str {
        &self.names.run_id
    }

    /// The names of this run's namespaces and interfaces.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// The topology as deployed, with label changes applied.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The network namespace of pod `pod`.
    pub fn pod_netns(&self, pod: PodIndex) -> String {
        let p = &self.topology.pods[pod];
        self.names.pod(pod, &p.namespace, &p.name)
    }

    /// The network namespace of external host `host` (index into the config's list).
    pub fn external_netns(&self, host: usize) -> String {
        self.names.external(&self.config.external_hosts[host].name)
    }

    pub fn timings(&self) -> DeployTimings {
        self.timings
    }

    /// The nftables table currently loaded, as `nft list table` shows it.
    ///
    /// # Errors
    /// When nothing is deployed or `nft` fails.
    pub fn ruleset(&self) -> Result<String, BackendError> {
        self.state.as_ref().ok_or(BackendError::NotDeployed)?;
        let mut command = std::process::Command::new("nft");
        command.args(["list", "table", "inet", &self.names.run()]);
        netns::enter_in_child(&mut command, netns::open_netns(&self.names.node())?);
        netns::run_with_input(command, "")
    }

    /// Removes every run of this process when the process gets SIGINT or SIGTERM, then exits
    /// with 130 or 143. Call once, inside a Tokio runtime, before deploying; runs still
    /// alive at the signal are removed even though their backends cannot be reached.
    ///
    /// # Errors
    /// When the signal handlers cannot be installed.
    pub fn install_signal_cleanup() -> Result<(), BackendError> {
        use tokio::signal::unix::{SignalKind, signal};
        let io = |source| BackendError::Io {
            action: "install signal handlers".into(),
            source,
        };
        let mut interrupt = signal(SignalKind::interrupt()).map_err(io)?;
        let mut terminate = signal(SignalKind::terminate()).map_err(io)?;
        tokio::spawn(async move {
            let code = tokio::select! {
                _ = interrupt.recv() => 130,
                _ = terminate.recv() => 143,
            };
            tracing::warn!("interrupted: removing this process's local runs");
            state::remove_registered();
            std::process::exit(code);
        });
        Ok(())
    }

    /// The faults currently injected.
    pub fn faults(&self) -> &Faults {
        &self.config.faults
    }

    /// Replaces the injected faults and re-enforces the current policies with them, so one
    /// deployment can be checked against several faults in turn.
    ///
    /// # Errors
    /// As [`Backend::apply_policies`].
    pub fn set_faults(&mut self, faults: Faults) -> Result<(), BackendError> {
        self.state.as_ref().ok_or(BackendError::NotDeployed)?;
        self.config.faults = faults;
        self.enforce()
    }

    /// Runs a batch of probes from external host `host`.
    ///
    /// # Errors
    /// As [`Backend::probe`].
    pub async fn probe_from_external(
        &self,
        host: usize,
        targets: &[Target],
    ) -> Result<Vec<ProbeResult>, BackendError> {
        let netns = self.external_netns(host);
        self.probe_in(&netns, &self.config.external_hosts[host].name, targets)
            .await
    }

    async fn deploy_inner(&mut self, topology: &Topology) -> Result<(), BackendError> {
        let start = Instant::now();
        if self.state.is_some() {
            return Err(BackendError::Unsupported(
                "deploy called twice on one backend".into(),
            ));
        }
        let programs = self.preflight(topology)?;
        self.topology = topology.clone();
        self.dns = self.dns_service();
        self.services = self.pod_services()?;
        let run_dir = std::env::temp_dir().join(self.names.run());
        let mut namespaces = vec![self.names.node()];
        namespaces.extend((0..topology.pods.len()).map(|i| self.pod_netns(i)));
        namespaces.extend(
            self.config
                .external_hosts
                .iter()
                .map(|h| self.names.external(&h.name)),
        );
        let state = RunState::new(self.run_id(), namespaces, run_dir.clone());
        state.save()?;
        state::register(&state);
        self.state = Some(state);
        self.timings.preflight = start.elapsed();

        std::fs::create_dir_all(&run_dir).map_err(|source| BackendError::Io {
            action: format!("create {}", run_dir.display()),
            source,
        })?;
        let io = |source| BackendError::Io {
            action: "start the server launcher thread".into(),
            source,
        };
        let launcher = self.launcher.insert(Launcher::new().map_err(io)?);
        // initdb is the slowest step (about a second): it runs while the network is built, and
        // is waited for even when the network fails, so nothing writes into the run's
        // directory once teardown removes it.
        let template = programs.postgres_bin_dir.clone().map(|bin_dir| {
            let parent = run_dir.clone();
            launcher.spawn(async move {
                let started = Instant::now();
                let template = PostgresTemplate::create_in(&bin_dir, Some(&parent)).await;
                (template, started.elapsed())
            })
        });
        let network = self.build_network_and_table();
        let servers_start = Instant::now();
        let template = match template {
            Some(task) => {
                let (template, took) = Launcher::join(task).await;
                self.timings.initdb = took;
                Some(template.map_err(|source| BackendError::ServerStart {
                    what: "the Postgres template (initdb)".into(),
                    source: Box::new(source),
                })?)
            }
            None => None,
        };
        network?;
        self.start_servers(run_dir, programs, template.as_ref())
            .await?;
        // Every Postgres has its own copy by now.
        drop(template);
        self.timings.servers = servers_start.elapsed();
        self.timings.total = start.elapsed();
        tracing::debug!(run = %self.run_id(), timings = ?self.timings, "local deploy done");
        Ok(())
    }

    /// Builds the network and loads the empty policy table, timing both.
    fn build_network_and_table(&mut self) -> Result<(), BackendError> {
        let network_start = Instant::now();
        self.build_network()?;
        self.timings.network = network_start.elapsed();
        let nft_start = Instant::now();
        self.load_policies(&[])?;
        self.timings.nftables = nft_start.elapsed();
        Ok(())
    }

    fn preflight(&mut self, topology: &Topology) -> Result<preflight::Programs, BackendError> {
        preflight::privileges()?;
        preflight::address_families(topology)?;
        let programs = preflight::programs(topology)?;
        self.probe_bin = match &self.config.probe_bin {
            Some(path) => path.clone(),
            None => find_probe_bin()?,
        };
        let mut used: Vec<(String, IpAddr)> = topology
            .pods
            .iter()
            .map(|p| (format!("pod {}", p.id()), p.ip))
            .collect();
        used.extend(
            self.config
                .external_hosts
                .iter()
                .map(|h| (format!("external host {}", h.name), IpAddr::V4(h.ip))),
        );
        used.push((
            "the DNS Service address".into(),
            IpAddr::V4(self.config.dns_service_ip),
        ));
        preflight::overlaps(&used, Some(self.config.pod_cidr))?;
        Ok(programs)
    }

    /// The first `provided` pod serving DNS stands behind the kube-dns Service address.
    fn dns_service(&self) -> Option<(PodIndex, nft::DnsService)> {
        self.topology.pods.iter().enumerate().find_map(|(i, pod)| {
            let serves_dns = pod.ports.iter().any(|p| p.effective_check() == Check::Dns);
            let IpAddr::V4(pod_ip) = pod.ip else {
                return None;
            };
            (pod.provided && serves_dns).then_some((
                i,
                nft::DnsService {
                    service_ip: self.config.dns_service_ip,
                    pod_ip,
                },
            ))
        })
    }

    /// One Service per non-provided pod, with a ClusterIP from the Service range (see
    /// [`LocalConfig::service_cidr`]) and one port per served port.
    fn pod_services(&self) -> Result<Vec<Option<nft::ServiceDnat>>, BackendError> {
        let IpAddr::V4(first) = self.config.service_cidr.addr else {
            return Err(BackendError::Unsupported("an IPv6 Service range".into()));
        };
        let size = 1u64 << (32 - u32::from(self.config.service_cidr.prefix.min(32)));
        let pods = &self.topology.pods;
        if u64::from(SERVICE_OFFSET) + pods.len() as u64 > size {
            return Err(BackendError::Preflight {
                message: format!(
                    "the Service range {}/{} is too small for {} pods: use a /16",
                    first,
                    self.config.service_cidr.prefix,
                    pods.len()
                ),
            });
        }
        let services = pods.iter().enumerate().map(|(index, pod)| {
            let IpAddr::V4(pod_ip) = pod.ip else {
                return None;
            };
            let offset = SERVICE_OFFSET + u32::try_from(index).ok()?;
            (!pod.provided).then(|| nft::ServiceDnat {
                service_ip: Ipv4Addr::from(u32::from(first) + offset),
                pod_ip,
                ports: pod.ports.iter().map(|p| (p.protocol, p.port)).collect(),
            })
        });
        Ok(services.collect())
    }

    /// The ClusterIP of each pod's Service, by pod index; kube-dns's for the DNS pod.
    fn service_ips(&self) -> Vec<Option<IpAddr>> {
        (0..self.topology.pods.len())
            .map(|pod| self.service_address(pod))
            .collect()
    }

    /// Every (namespace, node-side link, address) of the run's pods and external hosts.
    fn endpoints(&self) -> Vec<(String, String, Ipv4Addr)> {
        let pods = self.topology.pods.iter().enumerate().map(|(i, pod)| {
            let IpAddr::V4(ip) = pod.ip else {
                unreachable!("preflight refuses IPv6 pods")
            };
            (self.pod_netns(i), self.names.pod_link(i), ip)
        });
        let external = self
            .config
            .external_hosts
            .iter()
            .enumerate()
            .map(|(i, host)| {
                (
                    self.names.external(&host.name),
                    self.names.external_link(i),
                    host.ip,
                )
            });
        pods.chain(external).collect()
    }

    fn build_network(&self) -> Result<(), BackendError> {
        let node = self.names.node();
        let endpoints = self.endpoints();
        let mut root = format!("netns add {node}\n");
        for (ns, _, _) in &endpoints {
            root.push_str(&format!("netns add {ns}\n"));
        }
        for (ns, link, ip) in &endpoints {
            root.push_str(&format!(
                "link add {link} netns {node} address {NODE_MAC} type veth peer name eth0 \
                 netns {ns} address {}\n",
                netns::pod_mac(*ip)
            ));
        }
        netns::ip_batch(None, &root)?;
        netns::in_netns(&node, || netns::write_net_sysctl("ipv4/ip_forward", "1"))?;
        let mut node_script = String::from("link set lo up\n");
        for (_, link, ip) in &endpoints {
            node_script.push_str(&format!(
                "link set {link} up\nroute add {ip}/32 dev {link}\n\
                 neigh replace {ip} lladdr {} dev {link} nud permanent\n",
                netns::pod_mac(*ip)
            ));
        }
        let mut children = vec![(node.clone(), netns::spawn_ip_batch(&node, &node_script)?)];
        for (ns, _, ip) in &endpoints {
            let script = format!(
                "link set lo up\nlink set eth0 up\naddr add {ip}/32 dev eth0\n\
                 neigh replace {GATEWAY} lladdr {NODE_MAC} dev eth0 nud permanent\n\
                 route add {GATEWAY} dev eth0 scope link\n\
                 route add default via {GATEWAY} dev eth0 src {ip}\n"
            );
            children.push((ns.clone(), netns::spawn_ip_batch(ns, &script)?));
        }
        let mut first_error = None;
        for (ns, child) in children {
            if let Err(e) = netns::wait_batch(&ns, child) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Starts every pod's and external host's servers on the launcher thread and waits until
    /// all answer.
    async fn start_servers(
        &mut self,
        run_dir: PathBuf,
        programs: preflight::Programs,
        template: Option<&PostgresTemplate>,
    ) -> Result<(), BackendError> {
        let mut pods: Vec<servers::PodLaunch> = (0..self.topology.pods.len())
            .map(|index| servers::PodLaunch {
                pod: self.topology.pods[index].clone(),
                netns: self.pod_netns(index),
            })
            .collect();
        let hosts = self.config.external_hosts.iter();
        pods.extend(hosts.map(|host| servers::PodLaunch {
            pod: crate::engine::Pod {
                name: host.name.clone(),
                namespace: "external".into(),
                labels: Labels::new(),
                ip: IpAddr::V4(host.ip),
                provided: false,
                ports: host.ports.clone(),
            },
            netns: self.names.external(&host.name),
        }));
        let kubernetes_service = IpAddr::V4(Ipv4Addr::new(10, 96, 0, 1));
        let run = servers::RunServers {
            run_dir,
            probe_bin: self.probe_bin.clone(),
            postgres_bin_dir: programs.postgres_bin_dir,
            postgres_template: template.map(PostgresTemplate::data_dir),
            dns_records: servers::dns_records(
                &self.topology,
                kubernetes_service,
                &self.service_ips(),
            ),
            ready_timeout: self.config.ready_timeout,
        };
        let launcher = self.launcher.as_ref().expect("deploy starts the launcher");
        let started = launcher.run(servers::start_all(pods, run)).await?;
        self.servers.extend(started);
        Ok(())
    }

    /// Compiles and loads `policies` against the current topology, then flushes conntrack.
    fn load_policies(&self, policies: &[NetworkPolicy]) -> Result<(), BackendError> {
        let table = self.names.run();
        let services = self.service_dnats();
        // With no policies every fault is a no-op: the baseline is always a clean network.
        let input = nft::Input {
            table: &table,
            topology: &self.topology,
            policies,
            faults: &self.config.faults,
            dns: self.dns.map(|(_, dns)| dns),
            services: &services,
        };
        load_script(&self.names.node(), &nft::replace_script(&input))
    }

    /// Enforces `self.policies`, now or, with the `late-enforcement` fault, after its delay.
    fn enforce(&self) -> Result<(), BackendError> {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let Some(delay) = self.config.faults.late_enforcement else {
            return self.load_policies(&self.policies);
        };
        let table = self.names.run();
        let services = self.service_dnats();
        let input = nft::Input {
            table: &table,
            topology: &self.topology,
            policies: &self.policies,
            faults: &self.config.faults,
            dns: self.dns.map(|(_, dns)| dns),
            services: &services,
        };
        let script = nft::replace_script(&input);
        let node = self.names.node();
        let current = Arc::clone(&self.generation);
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            if current.load(Ordering::SeqCst) == generation {
                if let Err(error) = load_script(&node, &script) {
                    tracing::warn!(%error, "late enforcement failed");
                }
            }
        });
        Ok(())
    }

    fn service_dnats(&self) -> Vec<nft::ServiceDnat> {
        self.services.iter().flatten().cloned().collect()
    }

    async fn probe_in(
        &self,
        netns: &str,
        who: &str,
        targets: &[Target],
    ) -> Result<Vec<ProbeResult>, BackendError> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        self.state.as_ref().ok_or(BackendError::NotDeployed)?;
        let failed = |detail: String| BackendError::Probe {
            pod: who.to_owned(),
            detail,
        };
        let input = serde_json::to_vec(targets).expect("targets serialize");
        let ns_file = netns::open_netns(netns)?;
        let mut command = tokio::process::Command::new(&self.probe_bin);
        command
            .arg("probe")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        // SAFETY: only setns(2), async-signal-safe, on a descriptor the closure owns.
        unsafe {
            command.pre_exec(move || {
                use std::os::fd::AsRawFd;
                if libc::setns(ns_file.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|source| BackendError::Spawn {
            program: self.probe_bin.display().to_string(),
            source,
        })?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let longest = targets.iter().map(|t| t.timeout_ms).max().unwrap_or(0);
        let limit = Duration::from_millis(longest * 2) + Duration::from_secs(10);
        let run = async {
            // Dropping stdin closes it: the agent reads the whole array before probing.
            let write = async move {
                let written = stdin.write_all(&input).await;
                drop(stdin);
                written
            };
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let (w, o, e) = tokio::join!(
                write,
                stdout.read_to_end(&mut out),
                stderr.read_to_end(&mut err)
            );
            let _ = w;
            o?;
            e?;
            let status = child.wait().await?;
            Ok::<_, std::io::Error>((status, out, err))
        };
        let (status, out, err) = tokio::time::timeout(limit, run)
            .await
            .map_err(|_| failed(format!("no answer within {limit:?}")))?
            .map_err(|e| failed(e.to_string()))?;
        if !status.success() {
            return Err(failed(format!(
                "netpol-probe probe exited ({status}): {}",
                String::from_utf8_lossy(&err).trim()
            )));
        }
        let results: Vec<ProbeResult> = String::from_utf8_lossy(&out)
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()
            .map_err(|e| failed(format!("unreadable result line: {e}")))?;
        if let Some(missing) = targets
            .iter()
            .find(|t| !results.iter().any(|r| r.id == t.id))
        {
            return Err(failed(format!("no result for target {}", missing.id)));
        }
        Ok(results)
    }

    fn teardown_sync(&mut self) -> Result<(), BackendError> {
        // Stopping the guards signals and reaps the direct children (all at once); what they
        // started (Postgres backends) is killed by namespace below.
        netpol_probes::servers::stop_all(self.servers.drain(..));
        let Some(state) = self.state.take() else {
            return Ok(());
        };
        self.generation.fetch_add(1, Ordering::SeqCst);
        let result = state::remove_run(&state, &mut Report::default());
        state::deregister(&state.run_id);
        result
    }
}

/// Loads an nft script in namespace `node` and flushes the namespace's conntrack table.
fn load_script(node: &str, script: &str) -> Result<(), BackendError> {
    let mut command = std::process::Command::new("nft");
    command.args(["-f", "-"]);
    netns::enter_in_child(&mut command, netns::open_netns(node)?);
    netns::run_with_input(command, script)?;
    netns::in_netns(node, netns::flush_conntrack)
}

impl Backend for LocalBackend {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn deploy(&mut self, topology: &Topology) -> Result<(), BackendError> {
        let result = self.deploy_inner(topology).await;
        if result.is_err() {
            // Nothing half-built is left for the caller to remove.
            let _ = self.teardown_sync();
        }
        result
    }

    async fn apply_policies(&mut self, policies: &[NetworkPolicy]) -> Result<(), BackendError> {
        self.state.as_ref().ok_or(BackendError::NotDeployed)?;
        self.policies = policies.to_vec();
        self.enforce()
    }

    async fn set_pod_labels(&mut self, pod: PodIndex, labels: Labels) -> Result<(), BackendError> {
        self.state.as_ref().ok_or(BackendError::NotDeployed)?;
        let target = self.topology.pods.get_mut(pod).ok_or_else(|| {
            BackendError::Unsupported(format!("pod index {pod} is not in the topology"))
        })?;
        target.labels = labels;
        self.enforce()
    }

    async fn set_namespace_labels(
        &mut self,
        namespace: &str,
        mut labels: Labels,
    ) -> Result<(), BackendError> {
        self.state.as_ref().ok_or(BackendError::NotDeployed)?;
        labels.insert(NAMESPACE_NAME_LABEL.to_owned(), namespace.to_owned());
        match self
            .topology
            .namespaces
            .iter_mut()
            .find(|ns| ns.name == namespace)
        {
            Some(ns) => ns.labels = labels,
            None => self.topology.namespaces.push(crate::engine::Namespace {
                name: namespace.to_owned(),
                labels,
            }),
        }
        self.enforce()
    }

    async fn probe(
        &self,
        src: PodIndex,
        targets: &[Target],
    ) -> Result<Vec<ProbeResult>, BackendError> {
        let pod = self
            .topology
            .pods
            .get(src)
            .ok_or(BackendError::NotDeployed)?;
        self.probe_in(&self.pod_netns(src), &pod.id(), targets)
            .await
    }

    fn address(&self, pod: PodIndex) -> IpAddr {
        match self.dns {
            Some((dns_pod, dns)) if dns_pod == pod => IpAddr::V4(dns.service_ip),
            _ => self.topology.pods[pod].ip,
        }
    }

    fn service_address(&self, pod: PodIndex) -> Option<IpAddr> {
        match self.dns {
            Some((dns_pod, dns)) if dns_pod == pod => Some(IpAddr::V4(dns.service_ip)),
            _ => self
                .services
                .get(pod)?
                .as_ref()
                .map(|s| IpAddr::V4(s.service_ip)),
        }
    }

    fn service_host(&self, pod: PodIndex) -> Option<String> {
        self.service_address(pod)?;
        let kube_dns = self.dns.is_some_and(|(dns_pod, _)| dns_pod == pod);
        Some(servers::service_host(&self.topology.pods[pod], kube_dns))
    }

    fn resolver(&self) -> Option<IpAddr> {
        self.dns.map(|(_, dns)| IpAddr::V4(dns.service_ip))
    }

    async fn teardown(&mut self) -> Result<(), BackendError> {
        self.teardown_sync()
    }
}

impl Drop for LocalBackend {
    fn drop(&mut self) {
        if let Err(error) = self.teardown_sync() {
            tracing::warn!(%error, run = %self.run_id(), "failed to remove a local run");
        }
    }
}
