//! The conformance run: deploy a fixture's topology on a [`Backend`](crate::backend::Backend),
//! prove every edge reachable with no policy, apply the policies, converge, verify every edge
//! against the engine's verdict, run the fixture's steps, and tear down.
//!
//! Words used here, beside the engine's (*edge*, *verdict*, *probe*, *outcome*):
//! - *fixture*: a directory with a topology, policies, and optionally an intent and steps
//!   ([`fixture`]);
//! - *step*: a change to the policies or labels followed by a converge and a verify
//!   ([`steps`]); the fixture's own policies are the first step, named `policies`;
//! - *plan*: every step's expected state and edge verdicts, from the engine alone ([`plan`]);
//! - *round*: every edge of a step probed once, concurrently ([`probing`]);
//! - *baseline*: the positive control, a round with no policy in which every edge must
//!   connect; a failure there is an infrastructure error, never a conformance result;
//! - *convergence*: rounds until the observed matrix equals the expected one for two
//!   consecutive rounds ([`converge`](mod@converge));
//! - *trial*: one edge of one verified step, as `cargo test` and JUnit show it, named
//!   `fixture::step::src->dst:port/PROTOCOL::verdict`, the step as `step@mode` for probe
//!   modes other than `pod` ([`plan::trial_name`]);
//! - *readdressing*: after deploy, when a backend gave pods other addresses than the
//!   fixture's (a cluster's IPAM), the `ipBlock`s that depend on them are rewritten to select
//!   the same pods at their new addresses, and every verdict is checked unchanged (`readdress`).
//!
//! [`run_fixture`] runs one fixture; the `run` command ([`cli::run`]) and the `conformance`
//! test target ([`suite`]) are built on it. Results are [`RunReport`]s.
//!
//! [`cli::run`]: mod@crate::cli::run
//! [`RunReport`]: crate::report::RunReport
//!
//! # Known limitations
//! - Probe modes (`pod`, `service`, `dns`, see `docs/probe-modes.md`) are planned per edge
//!   ([`Plan::with_modes`]) with one expectation for every mode; `dns` needs a `provided`
//!   DNS pod in the topology, on either backend, to have a resolver.
//! - Faults (issue 7) are injected by the local backend only; the runner records their names
//!   in [`RunOptions::faults`] and [`sensitivity`] verifies a fixture once per fault.
//! - Under `cargo nextest` every trial is its own process, so every trial deploys the two
//!   pods of its edge and converges on its own: correct, but each costs a deploy and two
//!   rounds (about 2 probe timeouts for a denied edge). `cargo test` runs the suite once.
//! - Convergence is measured at the granularity of a round: when the data plane is late, the
//!   resolution of a convergence time is about one round, one probe timeout when denied edges
//!   drop (a round waits for its timeouts). The bounds are the times the agents say their
//!   probes began; on a cluster those are node clocks, clamped to the round they belong to.

pub mod backends;
pub mod converge;
mod error;
pub mod events;
pub mod fixture;
mod options;
pub mod plan;
pub mod probing;
mod readdress;
mod run;
pub mod sensitivity;
pub mod steps;
pub mod suite;

pub use backends::{BackendKind, local_faults, run_fixtures, run_on, run_on_kube};
pub use error::{
    EXIT_BAD_INPUT, EXIT_CONFORMANCE, EXIT_INFRASTRUCTURE, EXIT_INTERRUPTED, EXIT_PASS, Error,
    Result,
};
pub use events::{Event, Observer, Phase, Silent};
pub use fixture::Fixture;
pub use options::{DEFAULT_CONVERGE_TIMEOUT, DEFAULT_PROBE_TIMEOUT, RunOptions};
pub use plan::{Plan, PlannedEdge, PlannedStep, State};
pub use probing::Observation;
pub use run::{HARNESS_VERSION, rerun_fixture, reset_fixture, run_fixture};
pub use steps::{Action, ActionKind, Step};

#[cfg(test)]
mod tests;
