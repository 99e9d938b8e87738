//! The vocabulary shared by the agent and the harness: which port a pod serves, over which
//! protocol, and how a probe verifies that the service behind it answered.
//!
//! These types are plain data (no IO) so that the harness's pure policy engine can use them.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A transport protocol as NetworkPolicy names it (`NetworkPolicyPort.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub const ALL: [Protocol; 3] = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp];

    /// The protocol's name as the Kubernetes API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = String;

    /// Parses the API spelling (`TCP`, `UDP`, `SCTP`); the API is case-sensitive.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "TCP" => Ok(Protocol::Tcp),
            "UDP" => Ok(Protocol::Udp),
            "SCTP" => Ok(Protocol::Sctp),
            other => Err(format!(
                "unsupported protocol {other:?}: expected TCP, UDP or SCTP"
            )),
        }
    }
}

/// How a probe verifies the service behind a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Check {
    Http,
    Websocket,
    Postgres,
    Redis,
    Dns,
    Tcp,
    Udp,
    Sctp,
}

impl Check {
    /// Whether `netpol-probe serve` answers this check itself; the others are served by real
    /// servers (Postgres, Redis, a DNS server) that the backend starts beside the agent.
    pub fn served_by_agent(self) -> bool {
        !matches!(self, Check::Postgres | Check::Redis | Check::Dns)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Check::Http => "http",
            Check::Websocket => "websocket",
            Check::Postgres => "postgres",
            Check::Redis => "redis",
            Check::Dns => "dns",
            Check::Tcp => "tcp",
            Check::Udp => "udp",
            Check::Sctp => "sctp",
        }
    }

    /// The check used when a topology names none: plain transport-level reachability.
    pub fn default_for(protocol: Protocol) -> Check {
        match protocol {
            Protocol::Tcp => Check::Tcp,
            Protocol::Udp => Check::Udp,
            Protocol::Sctp => Check::Sctp,
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One port a pod serves: the container port of the app it stands in for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortSpec {
    pub port: u16,
    #[serde(default = "default_protocol")]
    pub protocol: Protocol,
    /// The container port name, against which NetworkPolicy named ports resolve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// How a probe verifies the service; defaults to a transport check of the protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<Check>,
}

fn default_protocol() -> Protocol {
    Protocol::Tcp
}

impl PortSpec {
    /// The check to run against this port.
    pub fn effective_check(&self) -> Check {
        self.check
            .unwrap_or_else(|| Check::default_for(self.protocol))
    }
}
