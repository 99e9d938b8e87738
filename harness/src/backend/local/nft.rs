//! The nftables compiler: NetworkPolicies to one `inet` table in the node namespace.
//!
//! The table is compiled from the policies' *structure*, not from the engine's per-edge
//! verdicts, so that the local data plane is a second, independent implementation of
//! NetworkPolicy that the differential test checks the engine against. The semantics
//! implemented here are those of networking.k8s.io/v1
//! (<https://kubernetes.io/docs/concepts/services-networking/network-policies/>):
//!
//! - a pod is *isolated* for a direction when a policy selecting it has that direction in
//!   its policy types; a pod not isolated for a direction allows everything in it;
//! - an isolated pod allows the union of the matching rules of the policies isolating it;
//! - a rule matches when one of its peers and one of its ports match (no peers: every peer;
//!   no ports: every port);
//! - an edge passes only when the source's egress *and* the destination's ingress allow it;
//! - replies of an accepted connection pass (`ct state established,related`).
//!
//! Layout of the table: a `pod_forward` base chain accepts established traffic, then jumps
//! to the `egress_rules` chain (decides for the source) and the `ingress_rules` chain
//! (decides for the destination). Each of them `return`s as soon as its side allows the packet and ends in
//! `drop`. Subjects and peers are named address sets (`p<policy>_subjects`,
//! `p<policy>_<direction><rule>_peers`), ports are anonymous sets on the rule. A
//! `dns_dnat` chain (prerouting) translates the kube-dns Service address to the DNS pod, and a
//! `service_dnat` chain each probe Service's ClusterIP and port to its pod, before the filter
//! sees the packet, so policy is evaluated on the translated packet, as with kube-proxy.
//!
//! Named ports are resolved against the destination pod: the subjects for ingress rules, the
//! peer pods for egress rules, giving (destination address, port) pairs.
//!
//! Only IPv4 is compiled: IPv6 `ipBlock`s match nothing here (the local backend has no IPv6
//! pods).
//!
//! Injected [`Faults`] (issue 7) bend exactly one of these steps each.

use super::selector::{namespace_labels, selector_matches};
use crate::backend::Via;
use crate::engine::{Direction, IpBlock, NetworkPolicy, Peer, PolicyPort, PortRef, Rule, Topology};
use netpol_probes::spec::Protocol;
use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::time::Duration;

/// Enforcement bugs the compiler can inject on purpose, to prove the harness catches them.
/// The default is a correct data plane.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// Rules match their peers but accept any port.
    pub ignore_ports: bool,
    /// Port rules for TCP or UDP match both protocols.
    pub ignore_protocol: bool,
    /// Egress isolation is not enforced.
    pub no_egress: bool,
    /// Ingress isolation is not enforced.
    pub no_ingress: bool,
    /// A peer with a namespaceSelector and a podSelector matches either (as if they were two
    /// peers).
    pub selectors_or: bool,
    /// A podSelector-only peer matches pods of every namespace.
    pub ignore_namespace: bool,
    /// Rules with a named port match nothing.
    pub no_named_ports: bool,
    /// A port range matches only its first port.
    pub ignore_endport: bool,
    /// `ipBlock.except` is not excluded.
    pub ignore_except: bool,
    /// DNS over TCP (port 53) is dropped for isolated pods even where allowed.
    pub drop_dns_tcp: bool,
    /// UDP bypasses policy.
    pub default_allow_udp: bool,
    /// Policy is evaluated on the packet before the Service DNAT of the probe Services: it
    /// sees the ClusterIP instead of the pod (traffic to kube-dns is still evaluated after
    /// its translation, so pods can still resolve).
    pub policy_before_dnat: bool,
    /// Policies take effect only this long after they are applied (handled by the backend,
    /// not the compiler).
    pub late_enforcement: Option<Duration>,
}

impl Faults {
    /// The names `--fault` accepts.
    pub const NAMES: [&'static str; 13] = [
        "ignore-ports",
        "ignore-protocol",
        "no-egress",
        "no-ingress",
        "selectors-or",
        "ignore-namespace",
        "no-named-ports",
        "ignore-endport",
        "ignore-except",
        "drop-dns-tcp",
        "default-allow-udp",
        "policy-before-dnat",
        "late-enforcement=MS",
    ];

    /// Turns on the fault `name` (one of [`Faults::NAMES`]).
    ///
    /// # Errors
    /// An unknown name, or a `late-enforcement` delay that is not a number of milliseconds.
    pub fn enable(&mut self, name: &str) -> Result<(), String> {
        let flag = match name {
            "ignore-ports" => &mut self.ignore_ports,
            "ignore-protocol" => &mut self.ignore_protocol,
            "no-egress" => &mut self.no_egress,
            "no-ingress" => &mut self.no_ingress,
            "selectors-or" => &mut self.selectors_or,
            "ignore-namespace" => &mut self.ignore_namespace,
            "no-named-ports" => &mut self.no_named_ports,
            "ignore-endport" => &mut self.ignore_endport,
            "ignore-except" => &mut self.ignore_except,
            "drop-dns-tcp" => &mut self.drop_dns_tcp,
            "default-allow-udp" => &mut self.default_allow_udp,
            "policy-before-dnat" => &mut self.policy_before_dnat,
            other => {
                let Some(ms) = other.strip_prefix("late-enforcement=") else {
                    return Err(format!(
                        "unknown fault {other:?}: expected one of {}",
                        Self::NAMES.join(", ")
                    ));
                };
                let ms: u64 = ms
                    .parse()
                    .map_err(|_| format!("late-enforcement needs milliseconds, got {ms:?}"))?;
                self.late_enforcement = Some(Duration::from_millis(ms));
                return Ok(());
            }
        };
        *flag = true;
        Ok(())
    }

    /// The names of the faults turned on, for reports.
    pub fn names(&self) -> Vec<String> {
        let flags = [
            self.ignore_ports,
            self.ignore_protocol,
            self.no_egress,
            self.no_ingress,
            self.selectors_or,
            self.ignore_namespace,
            self.no_named_ports,
            self.ignore_endport,
            self.ignore_except,
            self.drop_dns_tcp,
            self.default_allow_udp,
            self.policy_before_dnat,
        ];
        let mut names: Vec<String> = Self::NAMES
            .iter()
            .zip(flags)
            .filter(|(_, on)| *on)
            .map(|(name, _)| (*name).to_owned())
            .collect();
        if let Some(delay) = self.late_enforcement {
            names.push(format!("late-enforcement={}", delay.as_millis()));
        }
        names
    }

    /// The probe mode whose probes see these faults: [`Via::Service`] when
    /// `policy-before-dnat` is on, since it changes only traffic sent to a Service address,
    /// else [`Via::Pod`].
    pub fn shown_via(&self) -> Via {
        if self.policy_before_dnat {
            Via::Service
        } else {
            Via::Pod
        }
    }

    fn enforces(&self, direction: Direction) -> bool {
        match direction {
            Direction::Ingress => !self.no_ingress,
            Direction::Egress => !self.no_egress,
        }
    }
}

impl FromStr for Faults {
    type Err = String;

    /// A comma-separated list of fault names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut faults = Faults::default();
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            faults.enable(name)?;
        }
        Ok(faults)
    }
}

/// A Service address translated to a pod, as kube-proxy does for kube-dns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnsService {
    pub service_ip: Ipv4Addr,
    pub pod_ip: Ipv4Addr,
}

/// A probe pod's Service: its ClusterIP translated to the pod, per service port, as
/// kube-proxy's nftables mode does. Each port's `targetPort` is the pod's port (by name where
/// the pod names it, which locally is the same number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceDnat {
    pub service_ip: Ipv4Addr,
    pub pod_ip: Ipv4Addr,
    pub ports: Vec<(Protocol, u16)>,
}

/// Everything the compiler reads.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The table's name, `nph-<runid>`.
    pub table: &'a str,
    pub topology: &'a Topology,
    pub policies: &'a [NetworkPolicy],
    pub faults: &'a Faults,
    pub dns: Option<DnsService>,
    pub services: &'a [ServiceDnat],
}

/// An `nft -f` script that replaces the run's table in one transaction: create it if
/// missing, delete it, define it anew. The kernel applies the whole script or nothing, so
/// no packet ever sees a missing or half-built table.
pub fn replace_script(input: &Input<'_>) -> String {
    let table = input.table;
    format!(
        "table inet {table}\ndelete table inet {table}\n{}",
        compile(input)
    )
}

/// The `nft -f` script that deletes the run's table (if it exists).
pub fn delete_script(table: &str) -> String {
    format!("table inet {table}\ndelete table inet {table}\n")
}

/// The table definition for `input`.
pub fn compile(input: &Input<'_>) -> String {
    let mut sets = String::new();
    let mut chains = [String::new(), String::new()];
    for (d, direction) in Direction::BOTH.into_iter().enumerate() {
        let mut isolated = Vec::new();
        for (p, policy) in input.policies.iter().enumerate() {
            if !policy.isolates(direction) || !input.faults.enforces(direction) {
                continue;
            }
            let subjects = subjects(input.topology, policy);
            isolated.extend(subjects.iter().copied());
            for (r, rule) in policy.rules(direction).iter().enumerate() {
                let ctx = RuleContext {
                    input,
                    policy,
                    p,
                    direction,
                    r,
                    subjects: &subjects,
                };
                ctx.emit(rule, &mut sets, &mut chains[d]);
            }
        }
        isolated.sort();
        isolated.dedup();
        let name = format!("{}_isolated", chain_name(direction));
        write_set(&mut sets, &name, &singles(&isolated));
    }
    let mut out = format!("table inet {} {{\n{sets}", input.table);
    write_dnat_chains(&mut out, input);
    write_filter_chains(&mut out, input);
    for (d, direction) in Direction::BOTH.into_iter().enumerate() {
        let name = chain_name(direction);
        let own = own_field(direction);
        let _ = writeln!(
            out,
            "  chain {name}_rules {{\n    ip {own} != @{name}_isolated return"
        );
        if input.faults.drop_dns_tcp {
            out.push_str("    tcp dport 53 drop comment \"fault: drop-dns-tcp\"\n");
        }
        out.push_str(&chains[d]);
        out.push_str("    drop\n  }\n");
    }
    out.push_str("}\n");
    out
}

/// The Service translations, in prerouting at `dstnat` priority as kube-proxy's nftables mode
/// hooks them, so that the filter (forward) evaluates policy on the translated packet. Only
/// new connections are translated; conntrack un-NATs the replies, and the filter's
/// `established,related` accept never sees a new connection, translated or not.
fn write_dnat_chains(out: &mut String, input: &Input<'_>) {
    if let Some(DnsService { service_ip, pod_ip }) = input.dns {
        let _ = write!(
            out,
            "  chain dns_dnat {{\n    type nat hook prerouting priority dstnat; policy accept;\n    \
             ip daddr {service_ip} meta l4proto {{ tcp, udp }} th dport 53 dnat ip to {pod_ip}\n  \
             }}\n"
        );
    }
    if input.services.is_empty() {
        return;
    }
    out.push_str(
        "  chain service_dnat {\n    type nat hook prerouting priority dstnat; policy accept;\n",
    );
    for service in input.services {
        let ServiceDnat {
            service_ip,
            pod_ip,
            ports,
        } = service;
        for (protocol, port) in ports {
            let l4 = proto(*protocol);
            let _ = writeln!(
                out,
                "    ip daddr {service_ip} meta l4proto {l4} th dport {port} dnat ip to {pod_ip}"
            );
        }
    }
    out.push_str("  }\n");
}

/// The base chains that evaluate policy: `pod_forward` on the translated packet (forward),
/// or with the `policy-before-dnat` fault `pod_prerouting` in prerouting before every DNAT
/// (the kernel runs all nat chains at the nat hook's own priority, so `dstnat - 10` is before
/// them all): it sees ClusterIPs, not pods. The kube-dns address is left to a forward chain
/// even then, so that pods still resolve and pod-mode probes see no difference.
fn write_filter_chains(out: &mut String, input: &Input<'_>) {
    let mut base = |name: &str, hook: &str, skip: &str| {
        let _ = write!(
            out,
            "  chain {name} {{\n    type filter hook {hook}; policy accept;\n    \
             ct state established,related accept\n{skip}"
        );
        if input.faults.default_allow_udp {
            out.push_str("    meta l4proto udp accept comment \"fault: default-allow-udp\"\n");
        }
        out.push_str("    jump egress_rules\n    jump ingress_rules\n  }\n");
    };
    if !input.faults.policy_before_dnat {
        base("pod_forward", "forward priority filter", "");
        return;
    }
    let comment = "comment \"fault: policy-before-dnat\"";
    let Some(DnsService { service_ip, .. }) = input.dns else {
        base("pod_prerouting", "prerouting priority dstnat - 10", "");
        return;
    };
    base(
        "pod_prerouting",
        "prerouting priority dstnat - 10",
        &format!("    ip daddr {service_ip} return {comment}\n"),
    );
    base(
        "pod_forward",
        "forward priority filter",
        &format!("    ct original ip daddr != {service_ip} accept {comment}\n"),
    );
}

/// One rule being compiled, with where it sits.
struct RuleContext<'a> {
    input: &'a Input<'a>,
    policy: &'a NetworkPolicy,
    p: usize,
    direction: Direction,
    r: usize,
    subjects: &'a [Ipv4Addr],
}

impl RuleContext<'_> {
    /// Appends the rule's sets to `sets` and its nft rules (one per policy port) to `chain`.
    fn emit(&self, rule: &Rule, sets: &mut String, chain: &mut String) {
        let comment = format!(
            "comment \"{} {} rule {}\"",
            self.policy.id(),
            self.direction.as_str().to_lowercase(),
            self.r
        );
        let own = format!("ip {} @p{}_subjects", own_field(self.direction), self.p);
        if !sets.contains(&format!("set p{}_subjects ", self.p)) {
            write_set(
                sets,
                &format!("p{}_subjects", self.p),
                &singles(self.subjects),
            );
        }
        if self.subjects.is_empty() {
            return;
        }
        let peers = self.peer_ranges(rule);
        let peer_match = match &peers {
            None => String::new(),
            Some(ranges) if ranges.is_empty() => return,
            Some(ranges) => {
                let name = format!("p{}_{}{}_peers", self.p, chain_name(self.direction), self.r);
                write_set(sets, &name, ranges);
                format!(" ip {} @{name}", peer_field(self.direction))
            }
        };
        let ports: &[PolicyPort] = if self.input.faults.ignore_ports {
            &[]
        } else {
            &rule.ports
        };
        if ports.is_empty() {
            let _ = writeln!(chain, "    {own}{peer_match} return {comment}");
            return;
        }
        for port in ports {
            if let Some(port_match) = self.port_match(port, peers.as_deref()) {
                let _ = writeln!(chain, "    {own}{peer_match} {port_match} return {comment}");
            }
        }
    }

    /// The addresses the rule's peers match, or `None` when the rule has no peers (every
    /// source or destination, inside the cluster or not).
    fn peer_ranges(&self, rule: &Rule) -> Option<Vec<Range>> {
        if rule.peers.is_empty() {
            return None;
        }
        let mut ranges = Vec::new();
        for peer in &rule.peers {
            match peer {
                Peer::Pods {
                    namespace_selector,
                    pod_selector,
                } => {
                    let pods = self.peer_pods(namespace_selector.as_ref(), pod_selector.as_ref());
                    ranges.extend(pods.into_iter().map(Range::single));
                }
                Peer::IpBlock(block) => ranges.extend(self.block_ranges(block)),
            }
        }
        Some(normalize(ranges))
    }

    /// `NetworkPolicyPeer` with selectors: pods of the policy's namespace when there is no
    /// namespaceSelector, every pod of the selected namespaces when there is no podSelector,
    /// and both conditions together (AND) when there are both.
    fn peer_pods(
        &self,
        namespace_selector: Option<&crate::engine::LabelSelector>,
        pod_selector: Option<&crate::engine::LabelSelector>,
    ) -> Vec<Ipv4Addr> {
        let topology = self.input.topology;
        let faults = self.input.faults;
        let in_selected_namespace = |namespace: &str| match namespace_selector {
            Some(selector) => selector_matches(selector, &namespace_labels(topology, namespace)),
            None => faults.ignore_namespace || namespace == self.policy.namespace,
        };
        topology
            .pods
            .iter()
            .filter(|pod| {
                let pod_ok = pod_selector.is_none_or(|s| selector_matches(s, &pod.labels));
                let ns_ok = in_selected_namespace(&pod.namespace);
                if faults.selectors_or && namespace_selector.is_some() && pod_selector.is_some() {
                    // As if the peer were two: `{namespaceSelector}` and `{podSelector}`, the
                    // latter in the policy's own namespace.
                    ns_ok || (pod_ok && pod.namespace == self.policy.namespace)
                } else {
                    pod_ok && ns_ok
                }
            })
            .filter_map(|pod| ipv4(pod.ip))
            .collect()
    }

    /// `IPBlock`: the CIDR minus every `except` CIDR.
    fn block_ranges(&self, block: &IpBlock) -> Vec<Range> {
        let Some(cidr) = Range::cidr(block.cidr.addr, block.cidr.prefix) else {
            return Vec::new();
        };
        if self.input.faults.ignore_except {
            return vec![cidr];
        }
        let excepts: Vec<Range> = block
            .except
            .iter()
            .filter_map(|c| Range::cidr(c.addr, c.prefix))
            .collect();
        subtract(cidr, &excepts)
    }

    /// The nft match for one `NetworkPolicyPort`, or `None` when it matches nothing.
    fn port_match(&self, port: &PolicyPort, peers: Option<&[Range]>) -> Option<String> {
        let faults = self.input.faults;
        let protocol = if faults.ignore_protocol && port.protocol != Protocol::Sctp {
            "{ tcp, udp }".to_owned()
        } else {
            proto(port.protocol).to_owned()
        };
        let l4 = format!("meta l4proto {protocol}");
        match (&port.port, port.end_port) {
            (None, _) => Some(l4),
            (Some(PortRef::Number(first)), None) => Some(format!("{l4} th dport {first}")),
            (Some(PortRef::Number(first)), Some(_)) if faults.ignore_endport => {
                Some(format!("{l4} th dport {first}"))
            }
            (Some(PortRef::Number(first)), Some(last)) => {
                Some(format!("{l4} th dport {first}-{last}"))
            }
            (Some(PortRef::Name(name)), _) => {
                if faults.no_named_ports {
                    return None;
                }
                let pairs = self.named_port_pairs(name, port.protocol, peers);
                if pairs.is_empty() {
                    return None;
                }
                let elements: Vec<String> = pairs
                    .iter()
                    .map(|(ip, number)| format!("{ip} . {number}"))
                    .collect();
                Some(format!(
                    "{l4} ip daddr . th dport {{ {} }}",
                    elements.join(", ")
                ))
            }
        }
    }

    /// A named port resolves against the destination pod's container ports (matching name
    /// and protocol): the subjects for ingress, the pods among the peers for egress.
    fn named_port_pairs(
        &self,
        name: &str,
        protocol: Protocol,
        peers: Option<&[Range]>,
    ) -> Vec<(Ipv4Addr, u16)> {
        let destinations: Vec<Ipv4Addr> = match self.direction {
            Direction::Ingress => self.subjects.to_vec(),
            Direction::Egress => self
                .input
                .topology
                .pods
                .iter()
                .filter_map(|pod| ipv4(pod.ip))
                .filter(|ip| peers.is_none_or(|ranges| ranges.iter().any(|r| r.contains(*ip))))
                .collect(),
        };
        let pods = &self.input.topology.pods;
        let mut pairs = Vec::new();
        for ip in destinations {
            let Some(pod) = pods.iter().find(|pod| pod.ip == IpAddr::V4(ip)) else {
                continue;
            };
            pairs.extend(
                pod.ports
                    .iter()
                    .filter(|spec| spec.protocol == protocol && spec.name.as_deref() == Some(name))
                    .map(|spec| (ip, spec.port)),
            );
        }
        pairs.sort();
        pairs.dedup();
        pairs
    }
}

/// The pods a policy's `podSelector` selects in its namespace.
fn subjects(topology: &Topology, policy: &NetworkPolicy) -> Vec<Ipv4Addr> {
    topology
        .pods
        .iter()
        .filter(|pod| pod.namespace == policy.namespace)
        .filter(|pod| selector_matches(&policy.pod_selector, &pod.labels))
        .filter_map(|pod| ipv4(pod.ip))
        .collect()
}

fn chain_name(direction: Direction) -> &'static str {
    match direction {
        Direction::Ingress => "ingress",
        Direction::Egress => "egress",
    }
}

/// The packet field holding the subject's address: the destination for ingress, the source
/// for egress.
fn own_field(direction: Direction) -> &'static str {
    match direction {
        Direction::Ingress => "daddr",
        Direction::Egress => "saddr",
    }
}

/// The packet field holding the peer's address.
fn peer_field(direction: Direction) -> &'static str {
    match direction {
        Direction::Ingress => "saddr",
        Direction::Egress => "daddr",
    }
}

fn proto(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}

fn ipv4(ip: IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(ip) => Some(ip),
        IpAddr::V6(_) => None,
    }
}

fn singles(ips: &[Ipv4Addr]) -> Vec<Range> {
    normalize(ips.iter().map(|ip| Range::single(*ip)).collect())
}

fn write_set(out: &mut String, name: &str, ranges: &[Range]) {
    // Every set is an interval set: merged neighbours become ranges.
    let _ = write!(
        out,
        "  set {name} {{\n    type ipv4_addr;\n    flags interval;\n"
    );
    if !ranges.is_empty() {
        let elements: Vec<String> = ranges.iter().map(|r| r.to_nft()).collect();
        let _ = writeln!(out, "    elements = {{ {} }}", elements.join(", "));
    }
    out.push_str("  }\n");
}

/// An inclusive range of IPv4 addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Range {
    pub first: u32,
    pub last: u32,
}

impl Range {
    fn single(ip: Ipv4Addr) -> Self {
        Range {
            first: ip.into(),
            last: ip.into(),
        }
    }

    /// The addresses of an IPv4 CIDR (`None` for IPv6).
    fn cidr(addr: IpAddr, prefix: u8) -> Option<Self> {
        let first = u32::from(ipv4(addr)?);
        let size = if prefix == 0 {
            u32::MAX
        } else {
            (1u32 << (32 - u32::from(prefix))) - 1
        };
        Some(Range {
            first: first & !size,
            last: (first & !size) | size,
        })
    }

    fn contains(self, ip: Ipv4Addr) -> bool {
        (self.first..=self.last).contains(&u32::from(ip))
    }

    fn to_nft(self) -> String {
        let (first, last) = (Ipv4Addr::from(self.first), Ipv4Addr::from(self.last));
        if first == last {
            first.to_string()
        } else {
            format!("{first}-{last}")
        }
    }
}

/// Sorts and merges overlapping or adjacent ranges (nft rejects overlapping elements).
fn normalize(mut ranges: Vec<Range>) -> Vec<Range> {
    ranges.sort();
    let mut merged: Vec<Range> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if range.first <= last.last.saturating_add(1) => {
                last.last = last.last.max(range.last);
            }
            _ => merged.push(range),
        }
    }
    merged
}

/// `range` minus every range of `holes`.
fn subtract(range: Range, holes: &[Range]) -> Vec<Range> {
    let mut out = Vec::new();
    let mut next = Some(range.first);
    for hole in normalize(holes.to_vec()) {
        let Some(start) = next else { break };
        if hole.last < start || hole.first > range.last {
            continue;
        }
        if hole.first > start {
            out.push(Range {
                first: start,
                last: hole.first - 1,
            });
        }
        next = hole.last.checked_add(1).filter(|n| *n <= range.last);
    }
    if let Some(start) = next {
        out.push(Range {
            first: start,
            last: range.last,
        });
    }
    out
}

#[cfg(test)]
mod tests;
