//! `report.md`: the certification report for people. The same facts as `report.yaml`, a
//! table of the profiles, and every failing edge with what was expected, what the probe saw,
//! and why the policies allow or deny it.

use super::report::{CertificationReport, ConvergenceStats, ProfileRun, TrialCounts, Verdict};
use crate::report::message::failure_message;
use std::fmt::Write;

/// The Markdown text of `report`, with the failing edges of `runs`.
pub fn render(report: &CertificationReport, runs: &[ProfileRun<'_>]) -> String {
    let mut text = String::new();
    let implementation = &report.implementation;
    let _ = writeln!(
        text,
        "# NetworkPolicy conformance: {}\n",
        cell(&implementation.title())
    );
    if let Some(note) = &report.note {
        let _ = writeln!(
            text,
            "> **{}**: {}\n",
            note.to_uppercase(),
            report.faults.join(", ")
        );
    }
    let _ = writeln!(
        text,
        "**Result: {}**: {}\n",
        report.result.as_str().to_uppercase(),
        counts_text(&report.counts)
    );
    if let Some(error) = &report.error {
        let _ = writeln!(
            text,
            "The run stopped at an infrastructure error (the harness could not test; the \
             fixtures after it were not run):\n\n```text\n{error}\n```\n"
        );
    }
    facts_table(&mut text, report);
    profiles_table(&mut text, report);
    for (profile, run) in report.profiles.iter().zip(runs) {
        let _ = writeln!(text, "## Profile `{}`\n", profile.name);
        let _ = writeln!(text, "{}\n", profile.description);
        let _ = writeln!(
            text,
            "Probe modes: {}. Fixtures digest: `{}`.\n",
            profile.modes.join(", "),
            profile.digest
        );
        text.push_str("| fixture | digest | passed | failed | skipped | files |\n");
        text.push_str("|---|---|---:|---:|---:|---|\n");
        for fixture in &profile.fixtures {
            let files = match (&fixture.junit, &fixture.json, &fixture.skipped) {
                (Some(junit), Some(json), _) => format!("[JUnit]({junit}), [JSON]({json})"),
                (_, _, Some(reason)) => format!("skipped: {}", cell(reason)),
                _ => String::new(),
            };
            let c = fixture.counts;
            let _ = writeln!(
                text,
                "| `{}` | `{}` | {} | {} | {} | {files} |",
                fixture.path, fixture.digest, c.passed, c.failed, c.skipped
            );
        }
        text.push('\n');
        for fixture in profile
            .fixtures
            .iter()
            .filter(|f| !f.readdressed.is_empty())
        {
            let _ = writeln!(
                text,
                "The pods of `{}` got other addresses than the fixture's; these ipBlocks were \
                 rewritten to select the same pods at their new addresses (every verdict \
                 checked unchanged):\n",
                fixture.path
            );
            for rewrite in &fixture.readdressed {
                let _ = writeln!(text, "- `{rewrite}`");
            }
            text.push('\n');
        }
        failing_edges(&mut text, run);
    }
    text
}

fn facts_table(text: &mut String, report: &CertificationReport) {
    let implementation = &report.implementation;
    let timeouts = format!(
        "{} ms per probe, {} ms to converge",
        report.probe_timeout_ms, report.converge_timeout_ms
    );
    let faults = if report.faults.is_empty() {
        "none".to_owned()
    } else {
        report.faults.join(", ")
    };
    let rows = [
        ("implementation", implementation.title()),
        ("found by", implementation.source.clone()),
        (
            "Kubernetes",
            implementation
                .kubernetes_version
                .clone()
                .unwrap_or_else(|| "none (local backend)".to_owned()),
        ),
        ("backend", report.backend.clone()),
        (
            "harness",
            format!("netpol-harness {}", report.harness_version),
        ),
        ("started", report.started_at.clone()),
        ("finished", report.finished_at.clone()),
        ("probe modes", report.probe_modes.join(", ")),
        ("timeouts", timeouts),
        ("faults injected", faults),
        ("fixtures digest", format!("`{}`", report.fixtures_digest)),
        ("convergence", convergence_text(&report.convergence)),
    ];
    text.push_str("| | |\n|---|---|\n");
    for (name, value) in rows {
        let _ = writeln!(text, "| {name} | {} |", cell(&value));
    }
    text.push('\n');
}

fn profiles_table(text: &mut String, report: &CertificationReport) {
    text.push_str("## Profiles\n\n");
    text.push_str(
        "| profile | result | passed | failed | skipped | convergence (median / p90 / max) |\n",
    );
    text.push_str("|---|---|---:|---:|---:|---|\n");
    for profile in &report.profiles {
        let c = profile.counts;
        let result = if c.failed > 0 {
            Verdict::Fail.as_str()
        } else if c.passed == 0 {
            "skipped"
        } else if c.skipped > 0 {
            "pass (partly skipped)"
        } else {
            Verdict::Pass.as_str()
        };
        let _ = writeln!(
            text,
            "| `{}` | {result} | {} | {} | {} | {} |",
            profile.name,
            c.passed,
            c.failed,
            c.skipped,
            convergence_text(&profile.convergence)
        );
    }
    text.push('\n');
}

fn failing_edges(text: &mut String, run: &ProfileRun<'_>) {
    let failing: Vec<_> = run
        .reports()
        .flat_map(|report| report.edges())
        .filter(|edge| !edge.passed)
        .collect();
    if failing.is_empty() {
        return;
    }
    let _ = writeln!(text, "### Failing edges ({})\n", failing.len());
    for edge in failing {
        let _ = writeln!(
            text,
            "- `{}`\n\n  ```text\n  {}\n  ```\n",
            edge.name,
            failure_message(edge).replace('\n', "\n  ")
        );
    }
}

fn counts_text(counts: &TrialCounts) -> String {
    format!(
        "{} trials: {} passed, {} failed, {} skipped",
        counts.total(),
        counts.passed,
        counts.failed,
        counts.skipped
    )
}

/// `1002 / 2004 / 3010 ms over 12 of 12 steps`, or why there is no figure.
pub fn convergence_text(stats: &ConvergenceStats) -> String {
    match (stats.median_ms, stats.p90_ms, stats.max_ms) {
        (Some(median), Some(p90), Some(max)) => format!(
            "{median:.0} / {p90:.0} / {max:.0} ms over {} of {} steps converged",
            stats.converged, stats.steps
        ),
        _ if stats.steps == 0 => "no step ran".to_owned(),
        _ => format!("no step of {} converged", stats.steps),
    }
}

/// `text` fit for a table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
