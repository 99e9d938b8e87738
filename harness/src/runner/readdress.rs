//! Pod addresses the backend chose: a fixture names pod addresses (`ip:` in its topology, or
//! the ones the loader assigns), and its `ipBlock` peers may tell pods apart by them. The
//! local backend gives pods those addresses; a cluster's IPAM gives others.
//!
//! After deploy, the runner asks the backend where each pod is. When pods moved, every
//! `ipBlock` whose pod membership the move changes is rewritten so that it selects the same
//! pods at their new addresses: its CIDR becomes the smallest one covering the pods it held
//! and the pods it carved out, and its `except` the new addresses of every other pod inside
//! that CIDR (a block that held no pod keeps its CIDR and excepts the pods that moved in).
//! Blocks that select the same pods either way, e.g. `0.0.0.0/0` or an external range, are
//! left alone. The plan is then made again with the new addresses and policies; each edge
//! must keep its verdict (so trial names stay the same), or the run stops with
//! [`Error::AddressDependent`]. Only pods are ever probed, so a rewritten block is exact for
//! every address the run uses; what it does for other addresses is not tested anyway.
//!
//! Provided pods (CoreDNS) keep their fixture address: the backend reports their Service's,
//! not theirs, and a verdict that depends on theirs stops the run.

use super::error::{Error, Result};
use super::plan::{Plan, PlannedStep, State, planned_edges};
use crate::backend::Backend;
use crate::engine::{Cidr, IpBlock, NetworkPolicy, Peer, Pod};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A plan made again for the addresses the pods got.
#[derive(Debug, Clone)]
pub(super) struct Readdressed {
    pub plan: Plan,
    /// Each rewritten block, once: `policy direction rule peer: old -> new`.
    pub rewrites: Vec<String>,
}

/// The plan for the addresses `backend` gave the pods of `plan`'s first step: `None` when
/// every pod got its fixture address, otherwise the plan with `ipBlock`s rewritten (see the
/// [module docs](self)).
///
/// # Errors
/// [`Error::AddressDependent`] when a verdict would change even so.
pub(super) fn readdress<B: Backend>(backend: &B, plan: &Plan) -> Result<Option<Readdressed>> {
    readdress_with(plan, |pod| backend.address(pod))
}

/// [`readdress`] with the pods' addresses given by `address` (by pod index).
fn readdress_with(plan: &Plan, address: impl Fn(usize) -> IpAddr) -> Result<Option<Readdressed>> {
    let Some(first) = plan.steps.first() else {
        return Ok(None);
    };
    let pods = &first.state.topology.pods;
    let mut moved = Vec::new();
    let actual: Vec<IpAddr> = pods
        .iter()
        .enumerate()
        .map(|(index, pod)| {
            let address = address(index);
            if pod.provided || address == pod.ip {
                pod.ip
            } else {
                moved.push(format!("{} got {address}, not {}", pod.id(), pod.ip));
                address
            }
        })
        .collect();
    if moved.is_empty() {
        return Ok(None);
    }
    let mut changed = Vec::new();
    let mut rewrites: Vec<String> = Vec::new();
    let mut steps = Vec::with_capacity(plan.steps.len());
    for step in &plan.steps {
        let mut topology = step.state.topology.clone();
        for (pod, address) in topology.pods.iter_mut().zip(&actual) {
            pod.ip = *address;
        }
        let policies: Vec<NetworkPolicy> = step
            .state
            .policies
            .iter()
            .map(|policy| readdress_policy(policy, pods, &actual))
            .collect();
        for (new, old) in policies.iter().zip(&step.state.policies) {
            for rewrite in describe_rewrites(old, new) {
                if !rewrites.contains(&rewrite) {
                    rewrites.push(rewrite);
                }
            }
        }
        let state = State { topology, policies };
        let edges = planned_edges(&plan.fixture, &step.name, &state, &plan.modes);
        for (planned, now) in step.edges.iter().zip(&edges) {
            if planned.id != now.id || planned.via != now.via {
                changed.push(format!("{} is no longer planned", planned.trial));
            } else if planned.expected != now.expected {
                changed.push(format!("{} would be {}", planned.trial, now.expected));
            }
        }
        if edges.len() != step.edges.len() {
            changed.push(format!("step {} plans other edges", step.name));
        }
        steps.push(PlannedStep {
            state,
            edges,
            ..step.clone()
        });
    }
    if !changed.is_empty() {
        return Err(Error::AddressDependent {
            fixture: plan.fixture.clone(),
            moved,
            changed,
        });
    }
    tracing::info!(
        fixture = %plan.fixture,
        moved = moved.len(),
        rewritten = rewrites.len(),
        "pods got other addresses than the fixture's; ipBlocks that depend on them now name the new ones"
    );
    Ok(Some(Readdressed {
        plan: Plan {
            steps,
            ..plan.clone()
        },
        rewrites,
    }))
}

/// `policy direction rule peer: old -> new` for each block `new` rewrote in `old`.
fn describe_rewrites(old: &NetworkPolicy, new: &NetworkPolicy) -> Vec<String> {
    let mut rewrites = Vec::new();
    for (direction, old_rules, new_rules) in [
        ("ingress", &old.ingress, &new.ingress),
        ("egress", &old.egress, &new.egress),
    ] {
        for (rule, (old_rule, new_rule)) in old_rules.iter().zip(new_rules).enumerate() {
            for (peer, (was, now)) in old_rule.peers.iter().zip(&new_rule.peers).enumerate() {
                if let (Peer::IpBlock(was), Peer::IpBlock(now)) = (was, now)
                    && was != now
                {
                    rewrites.push(format!(
                        "{} {direction}[{rule}] peer {peer}: {was} -> {now}",
                        old.id()
                    ));
                }
            }
        }
    }
    rewrites
}

/// `policy` with each `ipBlock` peer rewritten for the pods' new addresses.
fn readdress_policy(policy: &NetworkPolicy, pods: &[Pod], actual: &[IpAddr]) -> NetworkPolicy {
    let mut policy = policy.clone();
    for rule in policy.ingress.iter_mut().chain(policy.egress.iter_mut()) {
        for peer in &mut rule.peers {
            if let Peer::IpBlock(block) = peer {
                *block = readdress_block(block, pods, actual);
            }
        }
    }
    policy
}

/// A block that selects, at the pods' `actual` addresses, the probe pods `block` selects at
/// their fixture addresses.
pub(super) fn readdress_block(block: &IpBlock, pods: &[Pod], actual: &[IpAddr]) -> IpBlock {
    let probe_pods: Vec<(&Pod, IpAddr)> = pods
        .iter()
        .zip(actual.iter().copied())
        .filter(|(pod, _)| !pod.provided)
        .collect();
    let same = probe_pods
        .iter()
        .all(|(pod, now)| block.contains(pod.ip) == block.contains(*now));
    if same {
        return block.clone();
    }
    let v4 = block.cidr.addr.is_ipv4();
    let members: Vec<IpAddr> = probe_pods
        .iter()
        .filter(|(pod, _)| block.contains(pod.ip))
        .map(|(_, now)| *now)
        .filter(|now| now.is_ipv4() == v4)
        .collect();
    let carved = probe_pods
        .iter()
        .filter(|(pod, _)| block.cidr.contains(pod.ip) && !block.contains(pod.ip))
        .map(|(_, now)| *now)
        .filter(|now| now.is_ipv4() == v4);
    let cidr = if members.is_empty() {
        block.cidr
    } else {
        covering(members.iter().copied().chain(carved))
    };
    let mut except: Vec<Cidr> = probe_pods
        .iter()
        .map(|(_, now)| *now)
        .filter(|now| cidr.contains(*now) && !members.contains(now))
        .map(host)
        .filter(|host| host.prefix > cidr.prefix)
        .collect();
    except.sort_by_key(|host| host.addr);
    except.dedup();
    IpBlock { cidr, except }
}

/// The smallest CIDR holding every address of `addresses` (all of one family, at least one).
fn covering(addresses: impl Iterator<Item = IpAddr>) -> Cidr {
    let bits: Vec<(u128, u8)> = addresses
        .map(|address| match address {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
            IpAddr::V6(v6) => (u128::from(v6), 128),
        })
        .collect();
    let width = bits.first().map_or(32, |(_, width)| *width);
    let low = bits.iter().map(|(value, _)| *value).min().unwrap_or(0);
    let high = bits.iter().map(|(value, _)| *value).max().unwrap_or(0);
    let differing = 128 - (low ^ high).leading_zeros();
    let prefix = u8::try_from(u32::from(width) - differing).unwrap_or(0);
    let mask = if differing >= 128 {
        0
    } else {
        u128::MAX << differing
    };
    let network = low & mask;
    let addr = if width == 32 {
        IpAddr::V4(Ipv4Addr::from(u32::try_from(network).unwrap_or(0)))
    } else {
        IpAddr::V6(Ipv6Addr::from(network))
    };
    Cidr { addr, prefix }
}

/// The CIDR of one address.
fn host(address: IpAddr) -> Cidr {
    let prefix = if address.is_ipv4() { 32 } else { 128 };
    Cidr {
        addr: address,
        prefix,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Labels;

    fn cidr(text: &str) -> Cidr {
        let (addr, prefix) = text.split_once('/').unwrap();
        Cidr {
            addr: addr.parse().unwrap(),
            prefix: prefix.parse().unwrap(),
        }
    }

    fn pods(ips: &[&str]) -> Vec<Pod> {
        ips.iter()
            .enumerate()
            .map(|(index, ip)| Pod {
                name: format!("p{index}"),
                namespace: "n".to_owned(),
                labels: Labels::new(),
                ip: ip.parse().unwrap(),
                provided: false,
                ports: Vec::new(),
            })
            .collect()
    }

    fn ips(texts: &[&str]) -> Vec<IpAddr> {
        texts.iter().map(|ip| ip.parse().unwrap()).collect()
    }

    fn block(cidr_text: &str, except: &[&str]) -> IpBlock {
        IpBlock {
            cidr: cidr(cidr_text),
            except: except.iter().map(|e| cidr(e)).collect(),
        }
    }

    #[test]
    fn covering_is_the_smallest_cidr_holding_every_address() {
        assert_eq!(
            covering(ips(&["10.1.2.3"]).into_iter()),
            cidr("10.1.2.3/32")
        );
        assert_eq!(
            covering(ips(&["10.1.2.3", "10.1.2.2"]).into_iter()),
            cidr("10.1.2.2/31")
        );
        assert_eq!(
            covering(ips(&["192.168.1.7", "192.168.2.1"]).into_iter()),
            cidr("192.168.0.0/22")
        );
        assert_eq!(
            covering(ips(&["0.0.0.1", "255.0.0.0"]).into_iter()),
            cidr("0.0.0.0/0")
        );
        assert_eq!(
            covering(ips(&["fd00::1", "fd00::8"]).into_iter()),
            cidr("fd00::/124")
        );
    }

    #[test]
    fn a_block_keeps_its_pods_and_its_except_at_their_new_addresses() {
        // p0 and p1 inside, p2 carved out, p3 outside; the cluster scatters them.
        let pods = pods(&["10.244.20.1", "10.244.20.2", "10.244.20.3", "10.244.30.1"]);
        let original = block("10.244.20.0/24", &["10.244.20.3/32"]);
        let actual = ips(&[
            "192.168.5.10",
            "192.168.5.40",
            "192.168.5.20",
            "192.168.5.30",
        ]);
        let new = readdress_block(&original, &pods, &actual);
        assert_eq!(new.cidr, cidr("192.168.5.0/26"));
        assert_eq!(
            new.except,
            [cidr("192.168.5.20/32"), cidr("192.168.5.30/32")]
        );
        let selected: Vec<bool> = actual.iter().map(|ip| new.contains(*ip)).collect();
        assert_eq!(selected, [true, true, false, false]);
    }

    #[test]
    fn blocks_that_select_the_same_pods_either_way_are_left_alone() {
        let pods = pods(&["10.244.20.1", "10.244.20.2"]);
        let actual = ips(&["192.168.5.10", "192.168.5.40"]);
        for original in [
            block("0.0.0.0/0", &[]),
            block("203.0.113.0/24", &[]),
            block("0.0.0.0/0", &["172.16.0.0/12"]),
        ] {
            assert_eq!(readdress_block(&original, &pods, &actual), original);
        }
    }

    #[test]
    fn a_block_that_held_no_pod_excepts_the_pods_that_moved_into_it() {
        let pods = pods(&["10.244.20.1", "10.244.20.2"]);
        let original = block("192.168.0.0/16", &[]);
        let actual = ips(&["192.168.5.10", "10.9.9.9"]);
        let new = readdress_block(&original, &pods, &actual);
        assert_eq!(new, block("192.168.0.0/16", &["192.168.5.10/32"]));
    }

    /// Every shipped fixture keeps every verdict of every step, in every mode, when a cluster
    /// scatters its pods over addresses of its own, in any order.
    #[test]
    fn every_shipped_fixture_keeps_its_verdicts_at_addresses_a_cluster_chose() {
        use crate::backend::Via;
        use crate::runner::Fixture;
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
        let mut seen = 0;
        for entry in std::fs::read_dir(&root).unwrap() {
            let dir = entry.unwrap().path();
            if !dir.join("topology.yaml").is_file() {
                continue;
            }
            seen += 1;
            let fixture = Fixture::load(&dir).unwrap();
            let plan = Plan::with_modes(&fixture, &[Via::Pod, Via::Service]).unwrap();
            let pods = fixture.topology.pods.len();
            // Three IPAMs: in order from another range, in reverse order, and scattered
            // across two /24s by a stride coprime to the pod count.
            let layouts: [Box<dyn Fn(usize) -> IpAddr>; 3] = [
                Box::new(|i| IpAddr::from([192, 168, 0, u8::try_from(i + 2).unwrap()])),
                Box::new(move |i| IpAddr::from([10, 20, 3, u8::try_from(pods - i).unwrap()])),
                Box::new(move |i| {
                    let slot = (i * 37 + 11) % 509;
                    let third = u8::try_from(slot / 250).unwrap();
                    IpAddr::from([172, 16, 40 + third, u8::try_from(slot % 250 + 1).unwrap()])
                }),
            ];
            for (layout, address) in layouts.iter().enumerate() {
                let Readdressed {
                    plan: readdressed,
                    rewrites,
                } = readdress_with(&plan, address)
                    .unwrap_or_else(|e| panic!("{} layout {layout}: {e}", fixture.name))
                    .expect("pods moved");
                let trials = |plan: &Plan| -> Vec<String> {
                    plan.edges().map(|e| e.trial.clone()).collect()
                };
                assert_eq!(trials(&readdressed), trials(&plan), "{}", fixture.name);
                let has_blocks = plan.steps.iter().any(|step| {
                    step.state.policies.iter().any(|policy| {
                        let mut rules = policy.ingress.iter().chain(&policy.egress);
                        rules.any(|rule| rule.peers.iter().any(|p| matches!(p, Peer::IpBlock(_))))
                    })
                });
                let rewritten = plan
                    .steps
                    .iter()
                    .zip(&readdressed.steps)
                    .any(|(old, new)| old.state.policies != new.state.policies);
                assert_eq!(rewritten, has_blocks, "{} layout {layout}", fixture.name);
                assert_eq!(!rewrites.is_empty(), has_blocks, "{rewrites:?}");
            }
        }
        assert!(seen >= 3, "the shipped fixtures are found ({seen})");
    }

    #[test]
    fn provided_pods_neither_count_nor_get_excepted() {
        let mut pods = pods(&["10.244.20.1", "10.244.20.2", "10.96.0.10"]);
        pods[2].provided = true;
        let original = block("10.244.20.1/32", &[]);
        let actual = ips(&["192.168.5.10", "192.168.5.11", "10.96.0.10"]);
        let new = readdress_block(&original, &pods, &actual);
        assert_eq!(new, block("192.168.5.10/32", &[]));
    }
}
