//! The servers of a pod, mapped from its topology entry to [`netpol_probes::servers`]: the
//! `netpol-probe serve` agent for agent-served ports, and real Postgres, Redis and dnsmasq for
//! `postgres`, `redis` and `dns` ports, each started inside the pod's network namespace with
//! its work directory under the run's directory (which teardown and `clean` remove).
//!
//! Starting, readiness (a `SELECT 1`, a `PING`, a DNS query over UDP and TCP, the agent's
//! ready file), stopping and dying with the harness are the probes module's; this module
//! only says which servers a pod has and how they are configured.

use crate::backend::BackendError;
use crate::engine::{Pod, Topology};
use futures_util::future::try_join_all;
use netpol_probes::servers::{
    self, AgentOptions, DnsmasqOptions, PostgresOptions, RedisOptions, ServerGuard,
};
use netpol_probes::spec::Check;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// What the servers of every pod of a run share.
#[derive(Debug, Clone)]
pub struct RunServers {
    /// The run's directory: every server's work directory is created inside it.
    pub run_dir: PathBuf,
    /// The `netpol-probe` binary.
    pub probe_bin: PathBuf,
    /// The directory holding `postgres` (found by preflight).
    pub postgres_bin_dir: Option<PathBuf>,
    /// The run's Postgres template data directory, copied for every Postgres pod.
    pub postgres_template: Option<PathBuf>,
    /// The A records every dnsmasq answers (see [`dns_records`]).
    pub dns_records: BTreeMap<String, Vec<IpAddr>>,
    /// How long each server may take to answer.
    pub ready_timeout: Duration,
}

/// A pod (or external host) whose servers to start, owned so it can cross threads.
#[derive(Debug, Clone)]
pub struct PodLaunch {
    pub pod: Pod,
    pub netns: String,
}

/// How to start one server of a pod.
#[derive(Debug, Clone)]
pub enum ServerOptions {
    Agent(AgentOptions),
    Postgres(PostgresOptions),
    Redis(RedisOptions),
    Dnsmasq(DnsmasqOptions),
}

impl ServerOptions {
    async fn start(&self) -> Result<ServerGuard, servers::Error> {
        match self {
            ServerOptions::Agent(options) => servers::start_agent(options).await,
            ServerOptions::Postgres(options) => servers::start_postgres(options).await,
            ServerOptions::Redis(options) => servers::start_redis(options).await,
            ServerOptions::Dnsmasq(options) => servers::start_dnsmasq(options).await,
        }
    }
}

/// The servers of `pod` in namespace `netns`: always the agent (it serves the agent-served
/// ports and is what probes run from), then one real server per port number of the other
/// checks (a DNS port listed for UDP and TCP is one dnsmasq, answering over both).
pub fn pod_servers(pod: &Pod, netns: &str, run: &RunServers) -> Vec<ServerOptions> {
    let netns = Some(netns.to_owned());
    let parent_dir = Some(run.run_dir.clone());
    let agent_ports = pod
        .ports
        .iter()
        .filter(|p| p.effective_check().served_by_agent())
        .cloned()
        .collect();
    let mut agent = AgentOptions::new(
        run.probe_bin.clone(),
        &pod.namespace,
        &pod.name,
        agent_ports,
    );
    agent.netns.clone_from(&netns);
    agent.parent_dir.clone_from(&parent_dir);
    agent.ready_timeout = run.ready_timeout;
    let mut options = vec![ServerOptions::Agent(agent)];
    let mut started: Vec<(Check, u16)> = Vec::new();
    for port in &pod.ports {
        let check = port.effective_check();
        if check.served_by_agent() || started.contains(&(check, port.port)) {
            continue;
        }
        started.push((check, port.port));
        let listen = SocketAddr::new(pod.ip, port.port);
        let server = match check {
            Check::Postgres => {
                let mut postgres = PostgresOptions::new(listen);
                postgres.cluster_name = Some(pod.name.clone());
                postgres.template.clone_from(&run.postgres_template);
                if let Some(bin_dir) = &run.postgres_bin_dir {
                    postgres.bin_dir.clone_from(bin_dir);
                }
                postgres.netns.clone_from(&netns);
                postgres.parent_dir.clone_from(&parent_dir);
                postgres.ready_timeout = run.ready_timeout;
                ServerOptions::Postgres(postgres)
            }
            Check::Redis => {
                let mut redis = RedisOptions::new(listen);
                redis.netns.clone_from(&netns);
                redis.parent_dir.clone_from(&parent_dir);
                redis.ready_timeout = run.ready_timeout;
                ServerOptions::Redis(redis)
            }
            Check::Dns => {
                let mut dns = DnsmasqOptions::new(listen);
                dns.records.clone_from(&run.dns_records);
                dns.netns.clone_from(&netns);
                dns.parent_dir.clone_from(&parent_dir);
                dns.ready_timeout = run.ready_timeout;
                ServerOptions::Dnsmasq(dns)
            }
            _ => continue,
        };
        options.push(server);
    }
    options
}

/// Starts the servers of every pod at once and waits until each answers. On the first server
/// that fails, the others are stopped and the error names its pod.
///
/// # Errors
/// [`BackendError::ServerStart`].
pub async fn start_all(
    pods: Vec<PodLaunch>,
    run: RunServers,
) -> Result<Vec<ServerGuard>, BackendError> {
    let starts = pods.iter().map(|launch| async {
        let options = pod_servers(&launch.pod, &launch.netns, &run);
        try_join_all(options.iter().map(ServerOptions::start))
            .await
            .map_err(|source| BackendError::ServerStart {
                what: format!("the servers of pod {}", launch.pod.id()),
                source: Box::new(source),
            })
    });
    let started = try_join_all(starts).await?;
    Ok(started.into_iter().flatten().collect())
}

/// The names every DNS pod answers: each pod by its name and its Service by
/// [`service_host`] (the Service's ClusterIP, `service_ips` by pod index; the pod's own
/// address for a pod without a Service), plus `kubernetes.default.svc.cluster.local` (the
/// name DNS probes ask by default). Pods sharing a name in different namespaces share the
/// short name's records.
pub fn dns_records(
    topology: &Topology,
    kubernetes_service: IpAddr,
    service_ips: &[Option<IpAddr>],
) -> BTreeMap<String, Vec<IpAddr>> {
    let mut records: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
    records.insert(
        "kubernetes.default.svc.cluster.local".to_owned(),
        vec![kubernetes_service],
    );
    for (index, pod) in topology.pods.iter().enumerate() {
        records.entry(pod.name.clone()).or_default().push(pod.ip);
        let fqdn = format!("{}.{}.svc.cluster.local", pod.name, pod.namespace);
        match service_ips.get(index).copied().flatten() {
            Some(service) if pod.provided => {
                records.entry(fqdn).or_default().push(pod.ip);
                records
                    .entry(service_host(pod, true))
                    .or_default()
                    .push(service);
            }
            Some(service) => records.entry(fqdn).or_default().push(service),
            None => records.entry(fqdn).or_default().push(pod.ip),
        }
    }
    records
}

/// The DNS name of a pod's Service: `<pod>.<namespace>.svc.cluster.local`, or
/// `kube-dns.<namespace>.svc.cluster.local` for the DNS pod behind kube-dns.
pub fn service_host(pod: &Pod, kube_dns: bool) -> String {
    let name = if kube_dns { "kube-dns" } else { &pod.name };
    format!("{name}.{}.svc.cluster.local", pod.namespace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Labels;
    use netpol_probes::spec::{PortSpec, Protocol};

    fn port(port: u16, protocol: Protocol, check: Option<Check>) -> PortSpec {
        PortSpec {
            port,
            protocol,
            name: None,
            check,
        }
    }

    fn pod(namespace: &str, name: &str, ip: &str, ports: Vec<PortSpec>) -> Pod {
        Pod {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            labels: Labels::new(),
            ip: ip.parse().unwrap(),
            provided: false,
            ports,
        }
    }

    fn run() -> RunServers {
        RunServers {
            run_dir: PathBuf::from("/tmp/nph-abcde"),
            probe_bin: PathBuf::from("/bin/netpol-probe"),
            postgres_bin_dir: Some(PathBuf::from("/usr/lib/postgresql/16/bin")),
            postgres_template: Some(PathBuf::from("/tmp/nph-abcde/template")),
            dns_records: BTreeMap::new(),
            ready_timeout: Duration::from_secs(7),
        }
    }

    #[test]
    fn a_pod_gets_the_agent_and_one_real_server_per_port_number() {
        let pod = pod(
            "kube-system",
            "coredns",
            "10.244.9.10",
            vec![
                port(53, Protocol::Udp, Some(Check::Dns)),
                port(53, Protocol::Tcp, Some(Check::Dns)),
                port(5432, Protocol::Tcp, Some(Check::Postgres)),
                port(6379, Protocol::Tcp, Some(Check::Redis)),
                port(8080, Protocol::Tcp, Some(Check::Http)),
                port(9000, Protocol::Udp, None),
            ],
        );
        let servers = pod_servers(&pod, "nph-abcde-3", &run());
        let kinds: Vec<String> = servers
            .iter()
            .map(|s| match s {
                ServerOptions::Agent(a) => format!("agent {} ports", a.ports.len()),
                ServerOptions::Postgres(p) => format!("postgres {}", p.listen),
                ServerOptions::Redis(r) => format!("redis {}", r.listen),
                ServerOptions::Dnsmasq(d) => format!("dnsmasq {}", d.listen),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "agent 2 ports",
                "dnsmasq 10.244.9.10:53",
                "postgres 10.244.9.10:5432",
                "redis 10.244.9.10:6379"
            ]
        );
    }

    #[test]
    fn every_server_runs_in_the_pod_namespace_with_its_files_under_the_run_directory() {
        let pod = pod(
            "backend",
            "db",
            "10.244.2.11",
            vec![port(5432, Protocol::Tcp, Some(Check::Postgres))],
        );
        let run = run();
        for server in pod_servers(&pod, "nph-abcde-3", &run) {
            let (netns, parent_dir, timeout) = match &server {
                ServerOptions::Agent(o) => (&o.netns, &o.parent_dir, o.ready_timeout),
                ServerOptions::Postgres(o) => {
                    assert_eq!(o.cluster_name.as_deref(), Some("db"));
                    assert_eq!(o.template, run.postgres_template);
                    assert_eq!(Some(&o.bin_dir), run.postgres_bin_dir.as_ref());
                    (&o.netns, &o.parent_dir, o.ready_timeout)
                }
                ServerOptions::Redis(o) => (&o.netns, &o.parent_dir, o.ready_timeout),
                ServerOptions::Dnsmasq(o) => (&o.netns, &o.parent_dir, o.ready_timeout),
            };
            assert_eq!(netns.as_deref(), Some("nph-abcde-3"), "{server:?}");
            assert_eq!(parent_dir.as_ref(), Some(&run.run_dir), "{server:?}");
            assert_eq!(timeout, run.ready_timeout, "{server:?}");
        }
    }

    #[test]
    fn dns_answers_pods_by_short_name_and_services_by_their_clusterip() {
        let topology = Topology {
            namespaces: Vec::new(),
            pods: vec![
                pod("frontend", "web", "10.244.1.10", vec![]),
                pod("other", "web", "10.244.3.10", vec![]),
            ],
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let services = [Some(ip("10.96.1.0")), None];
        let records = dns_records(&topology, ip("10.96.0.1"), &services);
        assert_eq!(records["web"], [ip("10.244.1.10"), ip("10.244.3.10")]);
        assert_eq!(records["web.frontend.svc.cluster.local"], [ip("10.96.1.0")]);
        assert_eq!(records["web.other.svc.cluster.local"], [ip("10.244.3.10")]);
        assert_eq!(
            records["kubernetes.default.svc.cluster.local"],
            [ip("10.96.0.1")]
        );
        assert_eq!(records.len(), 4);
    }
}
