//! The HTML page as text: escaping, the embedded data, no external references. The browser
//! test (harness/tests/html_browser.rs) checks what the page's script draws from it.

use super::*;
use crate::report::model::{Convergence, Expected, passes};
use netpol_probes::wire::Outcome;

const MARKUP: &str = "</script><b>bold</b><!--";

fn edge(
    src: &str,
    dst: &str,
    port: u16,
    protocol: Protocol,
    via: &str,
    expected: Expected,
    observed: Outcome,
) -> EdgeReport {
    let step = if via == "pod" {
        "policies".to_owned()
    } else {
        format!("policies@{via}")
    };
    EdgeReport {
        name: format!("demo::{step}::{src}->{dst}:{port}/{protocol}::{expected}"),
        src: src.to_owned(),
        dst: dst.to_owned(),
        port,
        protocol,
        expected,
        via: via.to_owned(),
        dialled: format!("10.0.0.2:{port}"),
        observed,
        latency_ms: 1.5,
        detail: String::new(),
        explanation: format!("{src} -> {dst} {port}/{protocol}: {expected}\n  ingress: ..."),
        passed: passes(expected, observed),
    }
}

fn report(edges: Vec<EdgeReport>) -> RunReport {
    RunReport {
        metadata: Metadata {
            backend: "fake".to_owned(),
            started_at: "2026-12-03T16:00:00.000Z".to_owned(),
            finished_at: "2026-12-03T16:00:09.000Z".to_owned(),
            pods: 3,
            ..Metadata::sample("demo")
        },
        steps: vec![StepReport {
            name: "policies".to_owned(),
            description: Some("the fixture's policies".to_owned()),
            convergence: Convergence {
                converged: true,
                time_ms: Some(2013.0),
                resolution_ms: Some(2005.0),
                rounds: 3,
                elapsed_ms: 6100.0,
            },
            edges,
        }],
    }
}

/// Three pods, TCP and UDP, one edge of each kind of cell, each edge probed by pod IP and
/// through its Service.
fn sample() -> RunReport {
    use Expected::{Allow, Deny};
    use Outcome::*;
    let mut edges = Vec::new();
    for via in ["pod", "service"] {
        edges.extend([
            edge(
                "app/web",
                "app/db",
                5432,
                Protocol::Tcp,
                via,
                Allow,
                Connected,
            ),
            edge("app/web", "app/dns", 53, Protocol::Udp, via, Deny, Timeout),
            edge("app/db", "app/web", 80, Protocol::Tcp, via, Deny, Refused),
            edge("app/db", "app/dns", 53, Protocol::Udp, via, Allow, Timeout),
            edge(
                "other/job",
                "app/web",
                80,
                Protocol::Tcp,
                via,
                Deny,
                Connected,
            ),
            edge(
                "other/job",
                "app/db",
                5432,
                Protocol::Tcp,
                via,
                Allow,
                WrongIdentity,
            ),
        ]);
    }
    report(edges)
}

fn page_of(reports: &[RunReport]) -> String {
    let facts = [("CNI".to_owned(), "calico v3.29.1".to_owned())];
    let profiles = [ProfilePage {
        name: "calico",
        reports,
    }];
    render(&Page {
        title: "Conformance",
        facts: &facts,
        profiles: &profiles,
    })
}

/// The text of the `<script type="application/json" id="data">` element, parsed.
fn embedded(html: &str) -> serde_json::Value {
    let open = "<script type=\"application/json\" id=\"data\">";
    let start = html.find(open).expect("the page embeds its data") + open.len();
    let end = start
        + html[start..]
            .find("</script>")
            .expect("the data script ends");
    serde_json::from_str(&html[start..end]).expect("the embedded data is JSON")
}

fn tables(data: &serde_json::Value) -> Vec<&serde_json::Value> {
    data["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["fixtures"].as_array().unwrap())
        .flat_map(|f| f["tables"].as_array().unwrap())
        .collect()
}

#[test]
fn markup_in_pod_names_explanations_titles_and_facts_appears_escaped() {
    let mut report = sample();
    let evil = format!("app/{MARKUP}");
    for edge in &mut report.steps[0].edges {
        if edge.src == "app/web" {
            edge.src.clone_from(&evil);
        }
        edge.explanation.push_str(MARKUP);
        edge.detail = format!("answered {MARKUP} & more");
    }
    let facts = [(format!("CNI {MARKUP}"), format!("v1 {MARKUP}"))];
    let reports = [report.clone()];
    let profiles = [ProfilePage {
        name: MARKUP,
        reports: &reports,
    }];
    let html = render(&Page {
        title: &format!("Run {MARKUP}"),
        facts: &facts,
        profiles: &profiles,
    });

    assert!(
        !html.contains("<b>"),
        "raw markup from a report reached the page"
    );
    assert!(!html.contains("<!--"), "a comment opener reached the page");
    assert_eq!(
        html.to_ascii_lowercase().matches("</script").count(),
        2,
        "only the data and the code script elements end"
    );
    assert!(html.contains("<title>Run &lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;&lt;!--</title>"));
    assert!(html.contains("<dt>CNI &lt;/script&gt;&lt;b&gt;"), "{html}");
    let data = embedded(&html);
    assert_eq!(data["profiles"][0]["name"], MARKUP);
    let cells = tables(&data)[0]["cells"].as_array().unwrap().clone();
    let first: EdgeReport = serde_json::from_value(cells[0]["edge"].clone()).unwrap();
    assert_eq!(first.src, evil);
    assert!(first.explanation.ends_with(MARKUP));
    assert!(
        data["namespaces"]
            .as_array()
            .unwrap()
            .contains(&"app".into())
    );
}

#[test]
fn escape_replaces_every_character_html_gives_a_meaning() {
    assert_eq!(
        escape(r#"<a href="x" title='y'>&amp;</a>"#),
        "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;"
    );
    assert_eq!(escape("meeting-app/frontend"), "meeting-app/frontend");
}

#[test]
fn the_embedded_json_parses_back_to_the_same_edges_each_in_its_row_and_column() {
    let report = sample();
    let html = page_of(std::slice::from_ref(&report));
    let data = embedded(&html);
    let tables = tables(&data);
    let steps: Vec<&str> = tables.iter().map(|t| t["step"].as_str().unwrap()).collect();
    assert_eq!(
        steps,
        ["policies", "policies@service"],
        "a table per step and mode"
    );

    let mut parsed = Vec::new();
    for table in &tables {
        for cell in table["cells"].as_array().unwrap() {
            let edge: EdgeReport = serde_json::from_value(cell["edge"].clone()).unwrap();
            let row = cell["row"].as_u64().unwrap() as usize;
            let column = &table["columns"][cell["column"].as_u64().unwrap() as usize];
            assert_eq!(table["rows"][row], edge.src.as_str());
            assert_eq!(column["dst"], edge.dst.as_str());
            assert_eq!(column["port"], edge.port);
            assert_eq!(column["protocol"], edge.protocol.as_str());
            let kind = Cell::of(&edge);
            assert_eq!(cell["kind"], kind.name());
            assert_eq!(cell["mismatch"], !edge.passed);
            parsed.push(edge);
        }
    }
    assert_eq!(parsed, report.steps[0].edges);
}

#[test]
fn the_tables_are_laid_out_as_the_text_matrix_lays_them_out() {
    let report = sample();
    let data = embedded(&page_of(std::slice::from_ref(&report)));
    let table = tables(&data)[0];
    assert_eq!(
        table["rows"],
        serde_json::json!(["app/web", "app/db", "other/job"])
    );
    let columns: Vec<String> = table["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {}/{}",
                c["dst"].as_str().unwrap(),
                c["port"],
                c["protocol"].as_str().unwrap()
            )
        })
        .collect();
    let text = matrix::render_step("demo", &report.steps[0], false);
    let listed: Vec<&str> = text
        .lines()
        .skip_while(|line| *line != "destination ports:")
        .skip(1)
        .take(columns.len())
        .map(|line| line.trim_start().split_once(' ').unwrap().1)
        .collect();
    assert_eq!(columns, listed, "{text}");
}

#[test]
fn the_page_counts_one_cell_per_edge_and_marks_each_mismatch() {
    let report = sample();
    let data = embedded(&page_of(std::slice::from_ref(&report)));
    let cells: Vec<&serde_json::Value> = tables(&data)
        .into_iter()
        .flat_map(|t| t["cells"].as_array().unwrap())
        .collect();
    assert_eq!(cells.len(), report.edges().count());
    let mismatches = cells.iter().filter(|c| c["mismatch"] == true).count();
    assert_eq!(mismatches, report.counts().failed);
    let kinds = |kind: &str| cells.iter().filter(|c| c["kind"] == kind).count();
    let counts = report.counts();
    assert_eq!(kinds("blocked-allow"), counts.blocked_allows);
    assert_eq!(kinds("leaked-deny"), counts.leaked_denies);
    assert_eq!(kinds("broken"), counts.broken);
    assert_eq!(
        (
            kinds("allow-ok"),
            kinds("deny-dropped"),
            kinds("deny-rejected")
        ),
        (2, 2, 2)
    );
    assert_eq!(data["protocols"], serde_json::json!(["TCP", "UDP"]));
    assert_eq!(data["namespaces"], serde_json::json!(["app", "other"]));
}

#[test]
fn the_page_references_nothing_outside_itself() {
    let html = page_of(&[sample()]);
    for reference in [
        "src=", "href=", "url(", "@import", "http://", "https://", "//cdn",
    ] {
        assert!(
            !html.contains(reference),
            "the page refers to something outside itself: {reference}"
        );
    }
    assert!(html.contains("Content-Security-Policy\" content=\"default-src 'none';"));
}

#[test]
fn the_pages_own_style_and_script_cannot_end_their_elements() {
    for (name, text) in [("report.css", STYLE), ("report.js", SCRIPT)] {
        let lower = text.to_ascii_lowercase();
        for forbidden in ["</script", "<script", "<!--", "</style"] {
            assert!(!lower.contains(forbidden), "{name} contains {forbidden}");
        }
    }
}

#[test]
fn a_page_without_profiles_still_renders() {
    let html = render(&Page {
        title: "Nothing yet",
        facts: &[],
        profiles: &[],
    });
    let data = embedded(&html);
    assert_eq!(data["profiles"], serde_json::json!([]));
    assert!(html.contains("<h1>Nothing yet</h1>"));
}
