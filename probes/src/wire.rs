//! The JSON formats of `netpol-probe probe`: a batch of targets in, one result per target out.
//!
//! The harness writes [`Target`]s as a JSON array (stdin or a file) and reads back one
//! [`ProbeResult`] per line. These formats are an interface between the harness and agents
//! that may run in another image version: add fields only with defaults.

use crate::spec::{Check, Protocol};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// One attempt to cross an edge, as the source pod's agent receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Opaque id chosen by the caller, echoed in the result.
    pub id: String,
    /// Address to dial (IPv4 or IPv6); with [`host`](Target::host), the address the caller
    /// expects the name to resolve to (reported, not dialled).
    pub ip: IpAddr,
    pub port: u16,
    pub protocol: Protocol,
    pub check: Check,
    /// The `namespace/name` the destination must report; checked for agent-served ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_identity: Option<String>,
    pub timeout_ms: u64,
    /// The name to query for `dns` checks (default `kubernetes.default.svc.cluster.local.`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_name: Option<String>,
    /// A name to resolve and dial instead of `ip` (e.g. `db.app.svc.cluster.local`): the
    /// agent asks [`resolver`](Target::resolver) with one UDP query and dials the first
    /// address of the answer. A failed resolution is [`Outcome::DnsFailure`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The DNS server `host` is resolved with (port 53); required with `host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolver: Option<IpAddr>,
}

/// What a probe saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The service answered as expected (the edge is open).
    Connected,
    /// The destination answered with a TCP reset to the SYN, or ICMP port unreachable.
    Refused,
    /// Nothing came back within the timeout (the usual sign of a dropping policy).
    Timeout,
    /// An established connection was reset.
    Reset,
    /// ICMP host/network unreachable or administratively prohibited.
    Unreachable,
    /// Something answered but not with the expected protocol.
    ProtocolError,
    /// A different pod than the expected one answered.
    WrongIdentity,
    /// The agent cannot run this check here (e.g. no SCTP in the kernel).
    Unsupported,
    /// The target's `host` could not be resolved (no answer, an error, or no address): the
    /// target itself was never dialled.
    DnsFailure,
}

impl Outcome {
    /// Whether this outcome shows the edge is open.
    pub fn is_connected(self) -> bool {
        self == Outcome::Connected
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Connected => "connected",
            Outcome::Refused => "refused",
            Outcome::Timeout => "timeout",
            Outcome::Reset => "reset",
            Outcome::Unreachable => "unreachable",
            Outcome::ProtocolError => "protocol_error",
            Outcome::WrongIdentity => "wrong_identity",
            Outcome::Unsupported => "unsupported",
            Outcome::DnsFailure => "dns_failure",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of one [`Target`], written as one JSON line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub id: String,
    pub outcome: Outcome,
    pub elapsed_ms: f64,
    #[serde(default)]
    pub detail: String,
    /// When the probe began, in milliseconds since the Unix epoch by the agent's clock: the
    /// moment its packets saw the data plane, which the harness needs to time convergence
    /// (a batch's agent may start well after the harness asked for it). `None` from agents
    /// that predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at_ms: Option<f64>,
}

/// Now, in milliseconds since the Unix epoch, as [`ProbeResult::started_at_ms`] counts.
pub fn unix_ms_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64() * 1000.0)
}

/// The JSON body with which the agent's HTTP server answers `GET /`, naming the pod it runs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityBody {
    /// `namespace/name` of the pod.
    pub pod: String,
    /// The port that answered.
    #[serde(default)]
    pub port: u16,
}
