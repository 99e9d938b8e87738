//! `explain`: which policies isolate the destination for ingress and the source for egress,
//! and which rule of which policy allows the edge, or that none does.

use super::args::InputArgs;
use super::error::{Error, Status};
use crate::engine::model::{PodIndex, Topology};
use crate::engine::{Edge, Engine};
use crate::input;
use netpol_probes::spec::{PortSpec, Protocol};
use std::io::Write;

const EDGE_HINT: &str = "e.g. meeting-app/frontend meeting-app/redis 6379/TCP";

#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "The edge may also follow the policies directly: \
    explain --topology t.yaml --policies policies/ ns/a ns/b 80/TCP (the last three values \
    are then taken as FROM, TO and PORT/PROTO).")]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,
    /// The edge: source pod and destination pod as namespace/name, then the port and its
    /// protocol (PORT/PROTO, e.g. 6379/TCP; the protocol defaults to TCP) or the name of one
    /// of the destination's container ports.
    #[arg(value_names = ["FROM", "TO", "PORT/PROTO"], num_args = 0..=3)]
    pub edge: Vec<String>,
}

impl Args {
    /// The policy paths and the three edge values, taking the edge from the end of the
    /// `--policies` values when it was written right after them (clap gives them all to
    /// `--policies`, which takes one or more values).
    fn split(&self) -> Result<(Vec<std::path::PathBuf>, [String; 3]), Error> {
        let mut policies = self.input.policies.clone();
        let mut edge = self.edge.clone();
        while edge.len() < 3 && policies.len() > 1 {
            let last = policies.pop().map(|p| p.to_string_lossy().into_owned());
            edge.insert(0, last.unwrap_or_default());
        }
        let edge: [String; 3] = edge.try_into().map_err(|_| {
            Error::Argument(format!("explain needs FROM TO PORT/PROTO ({EDGE_HINT})"))
        })?;
        Ok((policies, edge))
    }
}

/// Runs `explain`.
///
/// # Errors
///
/// Invalid input files; a pod the topology lacks, a malformed port, or the same pod on both
/// ends; a failure to write the report.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<Status, Error> {
    let (policy_paths, [from, to, port]) = args.split()?;
    let topology = input::load_topology(&args.input.topology)?;
    let policies = input::load_policies(&policy_paths)?;
    let src = pod(&topology, &from, &args.input.topology)?;
    let dst = pod(&topology, &to, &args.input.topology)?;
    if src == dst {
        return Err(Error::Argument(format!(
            "{from} is both FROM and TO: traffic from a pod to itself is not an edge"
        )));
    }
    let (port, protocol) = match named_port(&topology.pods[dst].ports, &port) {
        Some(served) => served,
        None => port_protocol(&port)?,
    };
    let engine = Engine::new(&topology, &policies);
    let edge = Edge {
        src,
        dst,
        port,
        protocol,
    };
    writeln!(out, "{}", engine.explain(edge))?;
    let served = topology.pods[dst]
        .ports
        .iter()
        .any(|p| p.port == port && p.protocol == protocol);
    if !served {
        writeln!(
            out,
            "note: {to} does not serve {port}/{protocol} in the topology; the verdict is what \
             the policies say about that port"
        )?;
    }
    Ok(Status::Success)
}

fn pod(topology: &Topology, reference: &str, file: &std::path::Path) -> Result<PodIndex, Error> {
    input::find_pod(topology, reference).ok_or_else(|| {
        Error::Argument(format!(
            "no pod {reference:?} in {} (name pods as namespace/name, {EDGE_HINT})",
            file.display()
        ))
    })
}

/// The port and protocol of the destination's container port named `text`, if it has one.
fn named_port(ports: &[PortSpec], text: &str) -> Option<(u16, Protocol)> {
    ports
        .iter()
        .find(|spec| spec.name.as_deref() == Some(text))
        .map(|spec| (spec.port, spec.protocol))
}

/// `PORT/PROTO` or `PORT` (TCP); the protocol in any case.
fn port_protocol(text: &str) -> Result<(u16, Protocol), Error> {
    let (port, protocol) = text.split_once('/').unwrap_or((text, "TCP"));
    let port = port.parse::<u16>().ok().filter(|&p| p != 0);
    let protocol = protocol.to_ascii_uppercase().parse::<Protocol>().ok();
    port.zip(protocol).ok_or_else(|| {
        Error::Argument(format!(
            "{text:?} is not PORT/PROTO (a port from 1 to 65535 and TCP, UDP or SCTP, \
             e.g. 6379/TCP)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_take_an_optional_protocol_in_any_case() {
        assert_eq!(port_protocol("53/udp").unwrap(), (53, Protocol::Udp));
        assert_eq!(port_protocol("80").unwrap(), (80, Protocol::Tcp));
        assert_eq!(port_protocol("9/SCTP").unwrap(), (9, Protocol::Sctp));
        for bad in ["0/TCP", "http", "80/ICMP", "70000", ""] {
            assert!(port_protocol(bad).is_err(), "{bad}");
        }
    }
}
