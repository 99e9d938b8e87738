//! `plan`: every edge of the topology with its verdict.
//!
//! The table form is a truth table with sources as rows and destination ports as columns;
//! the JSON form is an array with one [`PlannedEdge`] per edge, in [`Engine::edges`] order.

use super::args::InputArgs;
use super::error::{Error, Status};
use super::table;
use crate::engine::{Direction, Engine, RuleRef, Verdict};
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
fn write_json(engine: &Engine<'_>, out: &mut dyn Write) -> std::io::Result<()> {
    let pods: Vec<String> = engine.topology().pods.iter().map(|p| p.id()).collect();
    let policies: Vec<String> = engine.policies().iter().map(|p| p.id()).collect();
    let names = Names {
        policies: &policies,
    };
    out.write_all(b"[")?;
    for (index, edge) in engine.edges().into_iter().enumerate() {
        out.write_all(if index == 0 { b"\n  " } else { b",\n  " })?;
        let verdict = engine.verdict(edge);
        let planned = PlannedEdge {
            from: &pods[edge.src],
            to: &pods[edge.dst],
            port: edge.port,
            protocol: edge.protocol,
            verdict: if verdict.allowed() { "allow" } else { "deny" },
            egress_isolated_by: names.isolated_by(&verdict, Direction::Egress),
            egress_allowed_by: names.allowed_by(&verdict, Direction::Egress),
            ingress_isolated_by: names.isolated_by(&verdict, Direction::Ingress),
            ingress_allowed_by: names.allowed_by(&verdict, Direction::Ingress),
        };
        serde_json::to_writer(&mut *out, &planned)?;
    }
    out.write_all(b"\n]\n")
}

/// Policy names, computed once for the whole plan.
struct Names<'a> {
    policies: &'a [String],
}

impl<'a> Names<'a> {
    fn policy(&self, index: usize) -> &'a str {
        self.policies.get(index).map_or("?", String::as_str)
    }

    fn isolated_by(&self, verdict: &Verdict, direction: Direction) -> Vec<&'a str> {
        verdict
            .side(direction)
            .isolated_by
            .iter()
            .map(|&p| self.policy(p))
            .collect()
    }

    fn allowed_by(&self, verdict: &Verdict, direction: Direction) -> Vec<RuleId<'a>> {
        let rule = |r: &RuleRef| RuleId {
            policy: self.policy(r.policy),
            rule: r.rule,
        };
        verdict
            .side(direction)
            .allowed_by
            .iter()
            .map(rule)
            .collect()
    }
}
