//! Certification: named *profiles* of fixtures and probe modes, run against an
//! implementation (a cluster's CNI, or the local backend's nftables data plane), recorded in
//! a report directory that can be published and compared between versions.
//!
//! Words used here, beside the runner's (*fixture*, *step*, *trial*, *convergence*):
//! - *profile* ([`profile`]): a named set of fixtures and probe modes, with what it requires
//!   of a backend; one file `profiles/<name>.yaml`;
//! - *implementation* ([`implementation`]): what enforced the policies, with its version and
//!   the Kubernetes version, detected from the cluster or given by flags;
//! - *certification report* ([`report`]): `report.yaml`, what was certified, how, on which
//!   inputs (digests) and with what result; [`markdown`] renders it for people and
//!   [`output`] writes the report directory with the HTML page of the truth tables and every
//!   fixture's JUnit and JSON reports;
//! - *skipped* trial: planned but not run, because the backend lacks what its profile
//!   requires or because the run stopped before its fixture;
//! - *comparison* ([`compare`]): the edges whose verdict changed between two reports.
//!
//! A report with injected faults is not a certification: `certify` injects none, and a
//! report that has some says so ([`report::NOT_A_CERTIFICATION`]).
//!
//! # Known limitations
//! - CNI detection knows Calico, Cilium, Antrea, Weave, kindnet and Flannel by their agent
//!   images; any other CNI is `unknown` unless `--cni-name` and `--cni-version` name it.
//! - Digests are FNV-1a 64 over the fixtures' files ([`Fixture::source_hash`]): they tell
//!   inputs apart, they do not authenticate them.
//!
//! [`Fixture::source_hash`]: crate::runner::Fixture::source_hash

pub mod compare;
mod error;
pub mod implementation;
pub mod markdown;
pub mod output;
pub mod profile;
pub mod report;

pub use error::{Error, Result};
pub use implementation::Implementation;
pub use profile::{Profile, Requirement};
pub use report::{CertificationReport, TrialCounts, Verdict};
