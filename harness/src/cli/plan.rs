//! `plan`: every edge of the topology with its verdict.
//!
//! The table form is a truth table with sources as rows and destination ports as columns;
//! the JSON form is an array with one [`PlannedEdge`] per edge, in [`Engine::edges`] order.

use super::args::InputArgs;
use super::error::{Error, Status};
use super::table;
#[cfg(test)]
use crate::engine::RuleRef;
use crate::engine::{Direction, Edge, Engine, Verdict};
use clap::ValueEnum;
use netpol_probes::spec::Protocol;
use serde::Serialize;
use std::io::{BufWriter, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// A truth table: `.` allowed, `X` denied, `-` same pod.
    #[default]
    Table,
    /// A JSON array with one object per edge, with the policies and rules behind its verdict.
    Json,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// One edge of `plan --format json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedEdge<'a> {
    /// Source pod, `namespace/name`.
    pub from: &'a str,
    /// Destination pod, `namespace/name`.
    pub to: &'a str,
    pub port: u16,
    pub protocol: Protocol,
    /// `allow` or `deny`.
    pub verdict: &'static str,
    /// Policies (`namespace/name`) isolating the source for egress; empty: not isolated.
    pub egress_isolated_by: Vec<&'a str>,
    /// Egress rules of the source's policies that allow the edge.
    pub egress_allowed_by: Vec<RuleId<'a>>,
    /// Policies isolating the destination for ingress; empty: not isolated.
    pub ingress_isolated_by: Vec<&'a str>,
    /// Ingress rules of the destination's policies that admit the edge.
    pub ingress_allowed_by: Vec<RuleId<'a>>,
}

/// A rule of a policy: the policy's `namespace/name` and the rule's index in its
/// `ingress` or `egress` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RuleId<'a> {
    pub policy: &'a str,
    pub rule: usize,
}

/// Runs `plan`.
///
/// # Errors
///
/// Invalid input files, or a failure to write the report.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<Status, Error> {
    let (topology, policies) = args.input.load()?;
    let engine = Engine::new(&topology, &policies);
    let mut out = BufWriter::new(out);
    match args.format {
        Format::Table => table::write(&engine, &mut out)?,
        Format::Json => write_json(&engine, &mut out)?,
    }
    out.flush()?;
    Ok(Status::Success)
}

/// Streams the JSON array, one edge per line, without holding the whole plan in memory.
///
/// A plan of a thousand pods has millions of edges, so each line is assembled by hand from
/// names escaped once, rather than by serialising a [`PlannedEdge`] per edge; a test checks
/// that both give the same bytes.
fn write_json(engine: &Engine<'_>, out: &mut dyn Write) -> std::io::Result<()> {
    let quote = |name: String| serde_json::Value::String(name).to_string();
    let pods: Vec<String> = engine
        .topology()
        .pods
        .iter()
        .map(|p| quote(p.id()))
        .collect();
    let policies: Vec<String> = engine.policies().iter().map(|p| quote(p.id())).collect();
    let names = QuotedNames {
        pods: &pods,
        policies: &policies,
    };
    let mut line = Vec::with_capacity(1024);
    out.write_all(b"[")?;
    for (index, edge) in engine.edges().into_iter().enumerate() {
        line.clear();
        line.extend_from_slice(if index == 0 { b"\n  " } else { b",\n  " });
        names.write_edge(&mut line, edge, &engine.verdict(edge));
        out.write_all(&line)?;
    }
    out.write_all(b"\n]\n")
}

/// Pod and policy names as JSON string literals.
struct QuotedNames<'a> {
    pods: &'a [String],
    policies: &'a [String],
}

impl QuotedNames<'_> {
    /// Appends `edge` as the compact JSON of its [`PlannedEdge`].
    fn write_edge(&self, line: &mut Vec<u8>, edge: Edge, verdict: &Verdict) {
        line.extend_from_slice(b"{\"from\":");
        line.extend_from_slice(self.pod(edge.src));
        line.extend_from_slice(b",\"to\":");
        line.extend_from_slice(self.pod(edge.dst));
        line.extend_from_slice(b",\"port\":");
        push_number(line, usize::from(edge.port));
        line.extend_from_slice(b",\"protocol\":\"");
        line.extend_from_slice(edge.protocol.as_str().as_bytes());
        line.extend_from_slice(if verdict.allowed() {
            b"\",\"verdict\":\"allow\""
        } else {
            b"\",\"verdict\":\"deny\""
        });
        for direction in [Direction::Egress, Direction::Ingress] {
            let side = verdict.side(direction);
            line.extend_from_slice(b",\"");
            line.extend_from_slice(direction.as_lowercase().as_bytes());
            line.extend_from_slice(b"_isolated_by\":[");
            for (i, &policy) in side.isolated_by.iter().enumerate() {
                if i > 0 {
                    line.push(b',');
                }
                line.extend_from_slice(self.policy(policy));
            }
            line.extend_from_slice(b"],\"");
            line.extend_from_slice(direction.as_lowercase().as_bytes());
            line.extend_from_slice(b"_allowed_by\":[");
            for (i, rule) in side.allowed_by.iter().enumerate() {
                if i > 0 {
                    line.push(b',');
                }
                line.extend_from_slice(b"{\"policy\":");
                line.extend_from_slice(self.policy(rule.policy));
                line.extend_from_slice(b",\"rule\":");
                push_number(line, rule.rule);
                line.push(b'}');
            }
            line.push(b']');
        }
        line.push(b'}');
    }

    fn pod(&self, index: usize) -> &[u8] {
        self.pods
            .get(index)
            .map_or(b"\"?\"", |name| name.as_bytes())
    }

    fn policy(&self, index: usize) -> &[u8] {
        self.policies
            .get(index)
            .map_or(b"\"?\"", |name| name.as_bytes())
    }
}

/// Appends the decimal digits of `n`.
fn push_number(line: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    line.extend_from_slice(&digits[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{load_policies, load_topology};
    use std::path::Path;

    /// The hand-assembled lines are exactly the compact JSON of [`PlannedEdge`].
    #[test]
    fn json_lines_match_the_serialised_planned_edges() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/meeting-app");
        let topology = load_topology(&root.join("topology.yaml")).unwrap();
        let policies = load_policies(&[root.join("policies")]).unwrap();
        let engine = Engine::new(&topology, &policies);
        let pod_ids: Vec<String> = topology.pods.iter().map(|p| p.id()).collect();
        let policy_ids: Vec<String> = policies.iter().map(|p| p.id()).collect();
        let quote = |name: &String| serde_json::Value::String(name.clone()).to_string();
        let pods: Vec<String> = pod_ids.iter().map(quote).collect();
        let quoted: Vec<String> = policy_ids.iter().map(quote).collect();
        let names = QuotedNames {
            pods: &pods,
            policies: &quoted,
        };
        for edge in engine.edges() {
            let verdict = engine.verdict(edge);
            let mut line = Vec::new();
            names.write_edge(&mut line, edge, &verdict);
            let side = |direction: Direction| verdict.side(direction);
            let isolated_by = |direction| -> Vec<&str> {
                side(direction)
                    .isolated_by
                    .iter()
                    .map(|&p| policy_ids[p].as_str())
                    .collect()
            };
            let allowed_by = |direction| -> Vec<RuleId<'_>> {
                let rule = |r: &RuleRef| RuleId {
                    policy: &policy_ids[r.policy],
                    rule: r.rule,
                };
                side(direction).allowed_by.iter().map(rule).collect()
            };
            let planned = PlannedEdge {
                from: &pod_ids[edge.src],
                to: &pod_ids[edge.dst],
                port: edge.port,
                protocol: edge.protocol,
                verdict: if verdict.allowed() { "allow" } else { "deny" },
                egress_isolated_by: isolated_by(Direction::Egress),
                egress_allowed_by: allowed_by(Direction::Egress),
                ingress_isolated_by: isolated_by(Direction::Ingress),
                ingress_allowed_by: allowed_by(Direction::Ingress),
            };
            assert_eq!(
                String::from_utf8(line).unwrap(),
                serde_json::to_string(&planned).unwrap()
            );
        }
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        for n in [0, 7, 10, 65535, usize::MAX] {
            let mut line = Vec::new();
            push_number(&mut line, n);
            assert_eq!(line, n.to_string().into_bytes());
        }
    }
}
