//! `netpol-probe`: the agent that runs in every probe pod.
//!
//! It *serves* the ports of the app the pod stands in for ([`serve`], driven by
//! [`spec::PortSpec`]) and *probes* batches of targets from inside the pod ([`probe`],
//! [`wire::Target`] in, [`wire::ProbeResult`] out). [`servers`] starts the real servers
//! (Postgres, Redis, dnsmasq) and the agent itself, optionally inside a network namespace
//! ([`netns`]), for backends and tests.
//!
//! # Known limitations
//!
//! - SCTP needs the kernel's `sctp` module; without it `serve` skips SCTP ports and probes
//!   report `unsupported`.
//! - The HTTP server answers one request per connection (`Connection: close`).

pub mod netns;
pub mod probe;
pub mod serve;
pub mod servers;
pub mod sockets;
pub mod spec;
pub mod wire;
