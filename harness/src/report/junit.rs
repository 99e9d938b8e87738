//! JUnit XML: one testsuite per fixture and step, one testcase per edge named like its trial;
//! a failing edge carries the [failure message](super::message::failure_message).

use super::error::{Error, Result};
use super::message::{failure_message, headline};
use super::model::RunReport;
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use std::path::Path;
use std::time::Duration;

/// The JUnit report of `reports`.
pub fn to_junit(reports: &[RunReport]) -> Report {
    let mut junit = Report::new("netpol-harness");
    for report in reports {
        let meta = &report.metadata;
        for step in &report.steps {
            let mut suite = TestSuite::new(format!("{}::{}", meta.fixture, step.name));
            suite.add_property(Property::new("backend", meta.backend.as_str()));
            suite.add_property(Property::new("topology_hash", meta.topology_hash.as_str()));
            if !meta.faults.is_empty() {
                suite.add_property(Property::new("faults_injected", meta.faults.join(",")));
            }
            for rewrite in &meta.readdressed {
                suite.add_property(Property::new("ip_block_readdressed", rewrite.as_str()));
            }
            if let Some(ms) = step.convergence.time_ms {
                suite.add_property(Property::new("convergence_ms", format!("{ms:.0}")));
            }
            for edge in &step.edges {
                let status = if edge.passed {
                    TestCaseStatus::success()
                } else {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status.set_message(headline(edge));
                    status.set_type(edge.observed.as_str());
                    status.set_description(failure_message(edge));
                    status
                };
                let mut case = TestCase::new(edge.name.as_str(), status);
                case.set_classname(format!("{}::{}", meta.fixture, step.name));
                case.set_time(Duration::from_secs_f64(edge.latency_ms.max(0.0) / 1000.0));
                suite.add_test_case(case);
            }
            junit.add_test_suite(suite);
        }
    }
    junit
}

/// Writes the JUnit XML of `reports` to `path`.
///
/// # Errors
/// Serialization failed, or the file cannot be written.
pub fn write_junit(path: &Path, reports: &[RunReport]) -> Result<()> {
    let xml = to_junit(reports).to_string().map_err(Error::Junit)?;
    std::fs::write(path, xml).map_err(|source| Error::Write {
        path: path.to_owned(),
        source,
    })
}
