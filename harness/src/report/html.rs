//! The HTML report: one self-contained page (inline CSS and JavaScript, no external assets,
//! no network fetches) with a section per *profile* (e.g. a CNI and its configuration), in it
//! one part per fixture, and in that one truth table per step (per step and probe mode,
//! titled `step@mode` for modes other than `pod`, as the text [`matrix`](mod@super::matrix)
//! does).
//!
//! A table has a row per source pod and a column per destination pod and port, laid out as
//! the text matrix lays them out; each cell is an edge, its expected verdict against what the
//! probe saw, colored and marked with the text matrix's symbol so that a mismatch (`A` an
//! allow blocked, `D` a deny open, `?` broken) does not rely on color alone. Hovering a cell
//! shows the engine's explanation of the verdict and what was dialled and observed (its
//! `title`); clicking it shows the same in a details panel. Namespace and protocol filters
//! hide rows and columns; the filter state lives in the URL fragment
//! (`#hide-ns=a,b&hide-proto=UDP&only=mismatches&edge=TRIAL`), so a view can be linked.
//!
//! The report's data is embedded once, as JSON in `<script type="application/json"
//! id="data">`, and the tables are drawn from it by the page's script; anything taken from a
//! report reaches the page either HTML-escaped or through the DOM's text APIs, and the JSON
//! has `<`, `>` and `&` escaped so that no `</script>` or `<!--` in a pod name or an
//! explanation can end the script element. A Content-Security-Policy forbids every fetch.
//!
//! Stable hooks for tests and tools: `td.cell[data-edge=TRIAL][data-kind=KIND]` per edge
//! (class `mismatch` when the probe disagreed), `p.summary[data-step]` per table,
//! `#details[data-edge]` for the selected edge.

use super::matrix::{self, Cell, Layout};
use super::model::{EdgeReport, Metadata, RunReport, StepReport};
use netpol_probes::spec::Protocol;
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt::Write;

/// One page: a title, key facts shown at the top, and one section per profile.
pub struct Page<'a> {
    pub title: &'a str,
    /// (label, value) pairs, e.g. ("CNI", "calico v3.29.1"), ("Kubernetes", "v1.33.1"), ("Harness", "0.1.0").
    pub facts: &'a [(String, String)],
    pub profiles: &'a [ProfilePage<'a>],
}

/// One profile's section: the reports of its fixtures.
pub struct ProfilePage<'a> {
    pub name: &'a str,
    /// One RunReport per fixture of the profile (see harness/src/report/model.rs).
    pub reports: &'a [RunReport],
}

const STYLE: &str = include_str!("html/report.css");
const SCRIPT: &str = include_str!("html/report.js");

/// Forbids every fetch: the page needs nothing but its own inline style and script.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     script-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

/// The page's HTML.
pub fn render(page: &Page<'_>) -> String {
    let data = embedded_json(&PageData::of(page));
    let title = escape(page.title);
    let mut html = String::with_capacity(data.len() + STYLE.len() + SCRIPT.len() + 4096);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CONTENT_SECURITY_POLICY}\">\n\
         <meta name=\"generator\" content=\"netpol-harness {}\">\n\
         <title>{title}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n\
         <header>\n<h1>{title}</h1>\n",
        env!("CARGO_PKG_VERSION")
    );
    if !page.facts.is_empty() {
        html.push_str("<dl class=\"facts\">\n");
        for (label, value) in page.facts {
            let _ = writeln!(
                html,
                "<div><dt>{}</dt><dd>{}</dd></div>",
                escape(label),
                escape(value)
            );
        }
        html.push_str("</dl>\n");
    }
    html.push_str(
        "<p id=\"verdict\" role=\"status\"></p>\n</header>\n\
         <noscript><p class=\"noscript\">This report draws its tables with JavaScript: \
         enable it, or read the JSON report.</p></noscript>\n\
         <div class=\"layout\">\n<main>\n\
         <form id=\"filters\" aria-label=\"Filters\"></form>\n",
    );
    html.push_str(&legend());
    html.push_str(
        "<div id=\"profiles\"></div>\n</main>\n\
         <aside id=\"details\" aria-live=\"polite\" aria-label=\"Edge details\">\n\
         <h2>Edge details</h2>\n<p class=\"hint\">Select a cell to see why the policies \
         allow or deny its edge, and what the probe dialled and saw.</p>\n</aside>\n</div>\n",
    );
    let _ = write!(
        html,
        "<script type=\"application/json\" id=\"data\">{data}</script>\n\
         <script>\n{SCRIPT}</script>\n</body>\n</html>\n"
    );
    html
}

/// The legend of the cells, with the text matrix's symbols.
fn legend() -> String {
    let entries = [
        (Cell::AllowOk, "allowed, as expected"),
        (Cell::DenyDropped, "denied, as expected (dropped: timeout)"),
        (
            Cell::DenyRejected,
            "denied, as expected (rejected: refused, reset or unreachable)",
        ),
        (Cell::BlockedAllow, "mismatch: expected allow, seen denied"),
        (Cell::LeakedDeny, "mismatch: expected deny, seen allowed"),
        (
            Cell::Broken,
            "mismatch: wrong pod or protocol answered, or the check could not run",
        ),
    ];
    let mut html = String::from("<ul id=\"legend\" aria-label=\"Legend\">\n");
    for (cell, meaning) in entries {
        let mismatch = if cell.is_mismatch() { " mismatch" } else { "" };
        let _ = writeln!(
            html,
            "<li><span class=\"swatch k-{}{mismatch}\" aria-hidden=\"true\">{}</span> {}</li>",
            cell.name(),
            cell.symbol(),
            escape(meaning)
        );
    }
    html.push_str(
        "<li><span class=\"swatch same\" aria-hidden=\"true\">-</span> same pod, not probed</li>\n",
    );
    html.push_str("</ul>\n");
    html
}

/// `text` with the characters HTML gives a meaning escaped, for text and attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// `data` as JSON that is safe inside a `<script>` element: `<`, `>` and `&` (which can only
/// occur inside JSON strings) become `\u` escapes, so the text never contains `</script>` or
/// `<!--`; U+2028 and U+2029 too, for older JavaScript parsers.
fn embedded_json(data: &PageData<'_>) -> String {
    // The data has only string keys and serializable values (non-finite floats become null),
    // so serialization cannot fail.
    let json = serde_json::to_string(data).expect("the page data serializes to JSON");
    let mut safe = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => safe.push_str("\\u003c"),
            '>' => safe.push_str("\\u003e"),
            '&' => safe.push_str("\\u0026"),
            '\u{2028}' => safe.push_str("\\u2028"),
            '\u{2029}' => safe.push_str("\\u2029"),
            c => safe.push(c),
        }
    }
    safe
}

/// What the page's script draws, embedded as JSON.
#[derive(Serialize)]
struct PageData<'a> {
    /// Every namespace of a source or destination pod, sorted: the namespace filter.
    namespaces: Vec<&'a str>,
    /// Every protocol of a destination port, sorted: the protocol filter.
    protocols: Vec<Protocol>,
    profiles: Vec<ProfileData<'a>>,
}

#[derive(Serialize)]
struct ProfileData<'a> {
    name: &'a str,
    fixtures: Vec<FixtureData<'a>>,
}

#[derive(Serialize)]
struct FixtureData<'a> {
    metadata: &'a Metadata,
    tables: Vec<TableData>,
}

/// One truth table: a step, or a step and probe mode.
#[derive(Serialize)]
struct TableData {
    /// `step` or `step@mode`.
    step: String,
    description: Option<String>,
    converged: bool,
    /// As the text report words it, e.g. `converged in 2013 ms (resolution 2005 ms, 3 rounds)`.
    convergence: String,
    /// Source pods, `namespace/name`.
    rows: Vec<String>,
    columns: Vec<ColumnData>,
    cells: Vec<CellData>,
}

#[derive(Serialize)]
struct ColumnData {
    /// `namespace/name`.
    dst: String,
    port: u16,
    protocol: Protocol,
}

#[derive(Serialize)]
struct CellData {
    row: usize,
    column: usize,
    /// [`Cell::name`].
    kind: &'static str,
    symbol: char,
    mismatch: bool,
    edge: EdgeReport,
}

impl<'a> PageData<'a> {
    fn of(page: &Page<'a>) -> PageData<'a> {
        let mut namespaces = BTreeSet::new();
        let mut protocols = BTreeSet::new();
        for report in page.profiles.iter().flat_map(|p| p.reports) {
            for edge in report.edges() {
                namespaces.insert(namespace_of(&edge.src));
                namespaces.insert(namespace_of(&edge.dst));
                protocols.insert(edge.protocol);
            }
        }
        let profiles = page
            .profiles
            .iter()
            .map(|profile| ProfileData {
                name: profile.name,
                fixtures: profile
                    .reports
                    .iter()
                    .map(|report| FixtureData {
                        metadata: &report.metadata,
                        tables: report
                            .steps
                            .iter()
                            .flat_map(matrix::split_by_mode)
                            .map(|step| TableData::of(&step))
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        PageData {
            namespaces: namespaces.into_iter().collect(),
            protocols: protocols.into_iter().collect(),
            profiles,
        }
    }
}

impl TableData {
    fn of(step: &StepReport) -> TableData {
        let layout = Layout::of(&step.edges);
        let mut columns: Vec<Option<ColumnData>> = layout.columns.iter().map(|_| None).collect();
        let cells = step
            .edges
            .iter()
            .zip(&layout.positions)
            .map(|(edge, &(row, column))| {
                columns[column].get_or_insert_with(|| ColumnData {
                    dst: edge.dst.clone(),
                    port: edge.port,
                    protocol: edge.protocol,
                });
                let cell = Cell::of(edge);
                CellData {
                    row,
                    column,
                    kind: cell.name(),
                    symbol: cell.symbol(),
                    mismatch: cell.is_mismatch(),
                    edge: edge.clone(),
                }
            })
            .collect();
        TableData {
            step: step.name.clone(),
            description: step.description.clone(),
            converged: step.convergence.converged,
            convergence: matrix::convergence_line(step),
            rows: layout.rows,
            // Every column comes from an edge, so none is left empty.
            columns: columns.into_iter().flatten().collect(),
            cells,
        }
    }
}

/// The namespace of a `namespace/name` pod.
fn namespace_of(pod: &str) -> &str {
    pod.split_once('/').map_or("", |(namespace, _)| namespace)
}

#[cfg(test)]
mod tests;
