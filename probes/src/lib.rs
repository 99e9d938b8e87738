//! `netpol-probe`: the agent that runs in every probe pod.
//!
//! It *serves* the ports of the app the pod stands in for ([`spec::PortSpec`]) and *probes*
//! batches of targets from inside the pod ([`wire::Target`] in, [`wire::ProbeResult`] out).

pub mod spec;
pub mod wire;
