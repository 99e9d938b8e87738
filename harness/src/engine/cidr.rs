//! `ipBlock` matching: an address is in a block when it is inside `cidr` and outside every
//! `except` range. Families never mix: an IPv4 block matches no IPv6 address (not even an
//! IPv4-mapped one) and the other way round.
//! <https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/network-policy-v1/#NetworkPolicySpec>

use super::model::{Cidr, IpBlock};
use std::fmt;
use std::net::IpAddr;

impl Cidr {
    /// Whether `ip` lies inside this network.
    ///
    /// Host bits set in `addr` are ignored, and a prefix longer than the family's width is
    /// read as the full width, so that unvalidated input cannot cause a panic.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = prefix_mask(self.prefix, 32) as u32;
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = prefix_mask(self.prefix, 128);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The network mask of `prefix` leading one bits in the low `width` bits of a `u128`.
fn prefix_mask(prefix: u8, width: u32) -> u128 {
    let ones = u32::from(prefix).min(width);
    if ones == 0 {
        return 0;
    }
    let low_width = if width == 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    };
    (u128::MAX << (width - ones)) & low_width
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl IpBlock {
    /// Whether `ip` is inside `cidr` and outside every `except` range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.cidr.contains(ip) && !self.except.iter().any(|except| except.contains(ip))
    }
}

impl fmt::Display for IpBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ipBlock {}", self.cidr)?;
        if !self.except.is_empty() {
            let except: Vec<String> = self.except.iter().map(Cidr::to_string).collect();
            write!(f, " except {}", except.join(", "))?;
        }
        Ok(())
    }
}
