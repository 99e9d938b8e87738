//! The truth table `plan` prints: sources as rows, destination ports as columns, `.` where
//! the policies allow the edge, `X` where they deny it and `-` on a pod's own ports (not an
//! edge). Columns are numbered and a legend names them, so the table stays narrow.

use crate::engine::{Edge, Engine};
use netpol_probes::spec::Protocol;
use std::io::{self, Write};

/// One column: a port of a destination pod.
struct Column {
    dst: usize,
    port: u16,
    protocol: Protocol,
}

/// Writes the legend, the table and a one-line summary.
pub(crate) fn write(engine: &Engine<'_>, out: &mut dyn Write) -> io::Result<()> {
    let pods = &engine.topology().pods;
    let columns = columns(engine);
    let sources: Vec<usize> = (0..pods.len()).filter(|&i| !pods[i].provided).collect();
    let number_width = columns.len().to_string().len();
    writeln!(out, "destination ports:")?;
    for (number, column) in columns.iter().enumerate() {
        let pod = pods[column.dst].id();
        let (port, protocol) = (column.port, column.protocol);
        writeln!(
            out,
            "  {:>number_width$}  {pod}:{port}/{protocol}",
            number + 1
        )?;
    }
    writeln!(out)?;
    let source_names: Vec<String> = sources.iter().map(|&i| pods[i].id()).collect();
    let name_width = source_names
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max(6);
    write!(out, "{:name_width$} ", "source")?;
    for number in 1..=columns.len() {
        write!(out, " {number:>number_width$}")?;
    }
    writeln!(out)?;
    let (mut allowed, mut denied) = (0usize, 0usize);
    for (&src, name) in sources.iter().zip(&source_names) {
        write!(out, "{name:name_width$} ")?;
        for column in &columns {
            let mark = if column.dst == src {
                '-'
            } else {
                let edge = Edge {
                    src,
                    dst: column.dst,
                    port: column.port,
                    protocol: column.protocol,
                };
                if engine.allows(edge) {
                    allowed += 1;
                    '.'
                } else {
                    denied += 1;
                    'X'
                }
            };
            write!(out, " {mark:>number_width$}")?;
        }
        writeln!(out)?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{} edges: {allowed} allowed (.), {denied} denied (X); - marks a pod's own ports",
        allowed + denied
    )
}

/// Every port of every pod, in topology order, each port/protocol pair once per pod.
fn columns(engine: &Engine<'_>) -> Vec<Column> {
    let mut columns: Vec<Column> = Vec::new();
    for (dst, pod) in engine.topology().pods.iter().enumerate() {
        let first = columns.len();
        for spec in &pod.ports {
            let seen = columns[first..]
                .iter()
                .any(|c| c.port == spec.port && c.protocol == spec.protocol);
            if !seen {
                columns.push(Column {
                    dst,
                    port: spec.port,
                    protocol: spec.protocol,
                });
            }
        }
    }
    columns
}
