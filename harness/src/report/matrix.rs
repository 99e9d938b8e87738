//! The truth table: one row per source pod, one column per destination port, each cell the
//! expected verdict and whether the probe agreed. Mismatches stand out (a letter instead of a
//! dot, and red when colors are on).

use super::model::{Counts, EdgeReport, Expected, RunReport, Seen, StepReport};
use netpol_probes::wire::Outcome;
use std::collections::BTreeMap;
use std::fmt::Write;

const RED: &str = "\x1b[1;31m";
const GREEN: &str = "\x1b[32m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

/// What the cells mean, printed under every table.
pub const LEGEND: &str = "cells: . allowed as expected   x denied as expected (dropped: timeout)   \
                          r denied as expected (rejected: refused, reset or unreachable)\n       \
                          - same pod   \
                          A expected allow, seen denied   D expected deny, seen allowed   \
                          ? wrong pod or protocol answered, or unsupported";

/// The whole text report of `report`: a table per step (per step and mode when the run
/// probed through several modes, titled `step@mode` for modes other than `pod`), then the
/// summary.
pub fn render_report(report: &RunReport, color: bool) -> String {
    let mut text = String::new();
    for step in &report.steps {
        for table in split_by_mode(step) {
            text.push_str(&render_step(&report.metadata.fixture, &table, color));
            text.push('\n');
        }
    }
    text.push_str(&summary(report));
    text
}

/// The step's edges of each mode as a step of their own, in the order the modes first
/// appear; the step itself when all its edges are probed through pod IPs.
pub(super) fn split_by_mode(step: &StepReport) -> Vec<StepReport> {
    let mut modes: Vec<&str> = Vec::new();
    for edge in &step.edges {
        if !modes.contains(&edge.via.as_str()) {
            modes.push(&edge.via);
        }
    }
    if modes.iter().all(|via| *via == "pod") {
        return vec![step.clone()];
    }
    modes
        .into_iter()
        .map(|via| StepReport {
            name: if via == "pod" {
                step.name.clone()
            } else {
                format!("{}@{via}", step.name)
            },
            edges: step
                .edges
                .iter()
                .filter(|e| e.via == via)
                .cloned()
                .collect(),
            ..step.clone()
        })
        .collect()
}

/// One step's table with its header (convergence) and column legend.
pub fn render_step(fixture: &str, step: &StepReport, color: bool) -> String {
    let mut text = format!("{fixture} :: {}: {}\n", step.name, convergence_line(step));
    let layout = Layout::of(&step.edges);
    let cells: BTreeMap<(usize, usize), &EdgeReport> =
        layout.positions.iter().copied().zip(&step.edges).collect();
    let name_width = layout
        .rows
        .iter()
        .map(|n| n.len())
        .max()
        .unwrap_or(0)
        .max(6);
    let cell_width = layout.columns.len().to_string().len() + 1;

    let _ = write!(text, "{:name_width$}", "source");
    for number in 1..=layout.columns.len() {
        let _ = write!(text, "{number:>cell_width$}");
    }
    text.push('\n');
    for (row, name) in layout.rows.iter().enumerate() {
        let _ = write!(text, "{name:name_width$}");
        for (column, column_name) in layout.columns.iter().enumerate() {
            let same_pod = column_name.split(' ').next() == Some(name.as_str());
            let empty = if same_pod { '-' } else { ' ' };
            let (symbol, style) = cells
                .get(&(row, column))
                .map_or((empty, None), |e| styled(Cell::of(e)));
            let padded = format!("{symbol:>cell_width$}");
            match style.filter(|_| color) {
                Some(style) => {
                    let _ = write!(text, "{style}{padded}{RESET}");
                }
                None => text.push_str(&padded),
            }
        }
        text.push('\n');
    }
    text.push_str("destination ports:\n");
    for (number, name) in layout.columns.iter().enumerate() {
        let _ = writeln!(text, "{:>cell_width$} {name}", number + 1);
    }
    text.push_str(LEGEND);
    text.push('\n');
    text
}

/// `converged in 2013 ms (resolution 2005 ms, 3 rounds)` or why not.
pub fn convergence_line(step: &StepReport) -> String {
    let c = &step.convergence;
    match (c.time_ms, c.resolution_ms) {
        (Some(time), Some(resolution)) if c.converged => format!(
            "converged in {time:.0} ms (resolution {resolution:.0} ms, {} rounds)",
            c.rounds
        ),
        _ => format!(
            "did not converge within {:.0} ms ({} rounds); the last round is the result",
            c.elapsed_ms, c.rounds
        ),
    }
}

/// Counts per step and in total, for the end of a run.
pub fn summary(report: &RunReport) -> String {
    let mut text = String::new();
    for step in &report.steps {
        let _ = writeln!(
            text,
            "{} :: {}: {}; {}",
            report.metadata.fixture,
            step.name,
            counts_line(&step.counts()),
            convergence_line(step)
        );
        if let Some(denials) = denials_line(step) {
            let _ = writeln!(text, "  {denials}");
        }
    }
    if !report.metadata.faults.is_empty() {
        // A run with injected faults tests the harness, not the network: say so on the line
        // a reader looks at first.
        let _ = writeln!(
            text,
            "FAULTS INJECTED: {} (the data plane was broken on purpose)",
            report.metadata.faults.join(", ")
        );
    }
    if !report.metadata.readdressed.is_empty() {
        let _ = writeln!(
            text,
            "ipBlocks rewritten for the pods' addresses on this backend (same pods, same verdicts):"
        );
        for rewrite in &report.metadata.readdressed {
            let _ = writeln!(text, "  {rewrite}");
        }
    }
    let verdict = if report.passed() { "PASS" } else { "FAIL" };
    let _ = writeln!(
        text,
        "{verdict} {}: {} (backend {}, {} pods)",
        report.metadata.fixture,
        counts_line(&report.counts()),
        report.metadata.backend,
        report.metadata.pods
    );
    text
}

/// `412 edges: 410 passed, 2 failed (1 allow blocked, 1 deny open, 0 broken)`.
pub fn counts_line(counts: &Counts) -> String {
    let mut line = format!(
        "{} edges: {} passed, {} failed",
        counts.total(),
        counts.passed,
        counts.failed
    );
    if counts.failed > 0 {
        let _ = write!(
            line,
            " ({} allow blocked, {} deny open, {} broken)",
            counts.blocked_allows, counts.leaked_denies, counts.broken
        );
    }
    line
}

/// How the data plane denied: `denied edges seen as: 120 timeout, 3 refused`; `None` when no
/// edge was seen denied.
pub fn denials_line(step: &StepReport) -> Option<String> {
    let mut seen: Vec<(Outcome, usize)> = Vec::new();
    for edge in step
        .edges
        .iter()
        .filter(|e| Seen::of(e.observed) == Seen::Closed)
    {
        match seen
            .iter_mut()
            .find(|(outcome, _)| *outcome == edge.observed)
        {
            Some((_, count)) => *count += 1,
            None => seen.push((edge.observed, 1)),
        }
    }
    if seen.is_empty() {
        return None;
    }
    seen.sort_by_key(|&(outcome, count)| (std::cmp::Reverse(count), outcome.as_str()));
    let parts: Vec<String> = seen.iter().map(|(o, n)| format!("{n} {o}")).collect();
    Some(format!("denied edges seen as: {}", parts.join(", ")))
}

/// What one cell of the truth table says: the expected verdict and whether the probe agreed.
/// The text matrix and the HTML report classify edges the same way, with the same symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// Expected allow, and the right pod answered.
    AllowOk,
    /// Expected deny, and the probe was dropped (timeout).
    DenyDropped,
    /// Expected deny, and the probe was rejected (refused, reset or unreachable).
    DenyRejected,
    /// Expected allow, seen closed.
    BlockedAllow,
    /// Expected deny, seen open.
    LeakedDeny,
    /// A wrong pod or protocol answered, or the check could not run.
    Broken,
}

impl Cell {
    pub fn of(edge: &EdgeReport) -> Cell {
        match (edge.expected, Seen::of(edge.observed), edge.passed) {
            (Expected::Allow, _, true) => Cell::AllowOk,
            (Expected::Deny, _, true) if edge.observed == Outcome::Timeout => Cell::DenyDropped,
            (Expected::Deny, _, true) => Cell::DenyRejected,
            (_, Seen::Broken, false) => Cell::Broken,
            (Expected::Allow, _, false) => Cell::BlockedAllow,
            (Expected::Deny, _, false) => Cell::LeakedDeny,
        }
    }

    /// The cell's symbol, as [`LEGEND`] explains it.
    pub fn symbol(self) -> char {
        match self {
            Cell::AllowOk => '.',
            Cell::DenyDropped => 'x',
            Cell::DenyRejected => 'r',
            Cell::BlockedAllow => 'A',
            Cell::LeakedDeny => 'D',
            Cell::Broken => '?',
        }
    }

    /// A stable name for machines, e.g. `leaked-deny`.
    pub fn name(self) -> &'static str {
        match self {
            Cell::AllowOk => "allow-ok",
            Cell::DenyDropped => "deny-dropped",
            Cell::DenyRejected => "deny-rejected",
            Cell::BlockedAllow => "blocked-allow",
            Cell::LeakedDeny => "leaked-deny",
            Cell::Broken => "broken",
        }
    }

    /// Whether the probe disagreed with the expected verdict.
    pub fn is_mismatch(self) -> bool {
        matches!(self, Cell::BlockedAllow | Cell::LeakedDeny | Cell::Broken)
    }
}

fn styled(cell: Cell) -> (char, Option<&'static str>) {
    let style = match cell {
        Cell::AllowOk => GREEN,
        Cell::DenyDropped | Cell::DenyRejected => DIM,
        Cell::BlockedAllow | Cell::LeakedDeny | Cell::Broken => RED,
    };
    (cell.symbol(), Some(style))
}

fn column_key(edge: &EdgeReport) -> String {
    format!("{} {}/{}", edge.dst, edge.port, edge.protocol)
}

/// Where a step's edges go in its table (the HTML report lays its tables out the same way).
pub(super) struct Layout {
    /// Source pods (`namespace/name`), top to bottom.
    pub rows: Vec<String>,
    /// Destination columns (`namespace/name port/PROTOCOL`), left to right.
    pub columns: Vec<String>,
    /// Each edge's (row, column), in the order of the edges.
    pub positions: Vec<(usize, usize)>,
}

impl Layout {
    pub fn of(edges: &[EdgeReport]) -> Layout {
        let (rows, columns) = axes(edges);
        let positions = edges
            .iter()
            .map(|edge| (rows[&edge.src], columns[&column_key(edge)]))
            .collect();
        Layout {
            rows: sorted_names(&rows),
            columns: sorted_names(&columns),
            positions,
        }
    }
}

/// Row and column numbers: pods in order of first appearance (sources, then destinations),
/// each destination's ports in order of appearance.
fn axes<'a>(edges: &'a [EdgeReport]) -> (BTreeMap<String, usize>, BTreeMap<String, usize>) {
    let mut pods: Vec<&str> = Vec::new();
    let mut note = |pod: &'a str| -> usize {
        pods.iter().position(|p| *p == pod).unwrap_or_else(|| {
            pods.push(pod);
            pods.len() - 1
        })
    };
    let mut rows = BTreeMap::new();
    let mut keyed_columns: Vec<((usize, usize), String)> = Vec::new();
    for (position, edge) in edges.iter().enumerate() {
        let src = note(&edge.src);
        let next = rows.len();
        rows.entry(edge.src.clone()).or_insert((src, next));
        let dst = note(&edge.dst);
        let key = column_key(edge);
        if !keyed_columns.iter().any(|(_, k)| *k == key) {
            keyed_columns.push(((dst, position), key));
        }
    }
    let mut ordered_rows: Vec<(usize, String)> = rows
        .into_iter()
        .map(|(name, (order, _))| (order, name))
        .collect();
    ordered_rows.sort();
    keyed_columns.sort();
    let rows = ordered_rows
        .into_iter()
        .enumerate()
        .map(|(index, (_, name))| (name, index))
        .collect();
    let columns = keyed_columns
        .into_iter()
        .enumerate()
        .map(|(index, (_, key))| (key, index))
        .collect();
    (rows, columns)
}

fn sorted_names(numbers: &BTreeMap<String, usize>) -> Vec<String> {
    let mut names: Vec<(usize, &str)> = numbers.iter().map(|(n, &i)| (i, n.as_str())).collect();
    names.sort();
    names.into_iter().map(|(_, name)| name.to_owned()).collect()
}
