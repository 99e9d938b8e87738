//! Reporters: what a run's [`RunReport`] looks like to people and to CI.
//!
//! - [`model`]: the report itself, serialized as the JSON report ([`json`]);
//! - [`junit`]: JUnit XML, one testcase per edge;
//! - [`html`]: one self-contained page of truth tables, per profile, fixture and step, with
//!   filters and each edge's explanation;
//! - [`matrix`]: the truth table of expected vs observed per source pod and destination port,
//!   with summary counts and convergence times;
//! - [`message`]: the failure message of one edge (`cargo test`, JUnit);
//! - [`progress`]: per-phase progress while a run goes (an [`Observer`](crate::runner::Observer)).

mod error;
pub mod html;
pub mod json;
pub mod junit;
pub mod matrix;
pub mod message;
pub mod model;
pub mod progress;

pub use error::{Error, Result};
pub use model::{
    Convergence, Counts, EdgeReport, Expected, Metadata, PhaseTimes, RunReport, Seen, StepReport,
    passes, rfc3339,
};

#[cfg(test)]
mod tests;
