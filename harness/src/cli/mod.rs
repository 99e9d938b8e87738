//! The `netpol-harness` command line: argument definitions and one module per subcommand.
//!
//! - `plan`: every edge of a topology with its verdict, as a truth table or JSON;
//! - `explain`: why the policies allow or deny one edge;
//! - `lint`: findings about a policy set, including intended flows it denies;
//! - `run`: the conformance run of fixtures on a backend (see [`run`](mod@run) for its exit
//!   statuses);
//! - `sensitivity`: runs fixtures once clean and once per injected data-plane fault on the
//!   local backend, and tells which faults they catch;
//! - `profiles`: lists the certification profiles (named sets of fixtures and probe modes);
//! - `certify`: runs profiles and writes a certification report directory (see
//!   [`crate::certify`]);
//! - `compare`: which edges changed verdict between two reports;
//! - `clean`: removes what runs left behind on a backend;
//! - `synth`: a synthetic cluster written as input files, to measure `plan` end to end.
//!
//! Each subcommand lives in its own module with an `Args` struct and a `run` function that
//! writes to a given output and returns an [`ExitCode`]-like [`Status`]; adding a subcommand
//! means adding a module and a variant of [`Command`].
//!
//! Exit statuses: 0 success; 1 the command ran and reports a failure (lint findings with
//! `--deny-findings`, failing edges for `run`); 2 bad input (an unreadable or invalid file, a
//! bad argument); 3 an infrastructure error (`run` could not test).
//!
//! [`ExitCode`]: std::process::ExitCode

mod args;
pub mod certify;
pub mod clean;
pub mod compare;
mod error;
pub mod explain;
pub mod lint;
pub mod plan;
pub mod profiles;
pub mod run;
pub mod sensitivity;
pub mod synth;
mod table;

pub use args::{Cli, Command, InputArgs, KubeArgs};
pub use error::{Error, Status};

use std::io::Write;

/// Runs the parsed command line, writing its report to `out`.
///
/// # Errors
///
/// [`Error::Input`] when an input file cannot be loaded, [`Error::Argument`] for an
/// argument naming something the topology lacks, [`Error::Output`] when `out` fails.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<Status, Error> {
    match cli.command {
        Command::Plan(args) => plan::run(&args, out),
        Command::Explain(args) => explain::run(&args, out),
        Command::Lint(args) => lint::run(&args, out),
        Command::Run(args) => run::run(&args, out),
        Command::Profiles(args) => profiles::run(&args, out),
        Command::Certify(args) => certify::run(&args, out),
        Command::Compare(args) => compare::run(&args, out),
        Command::Clean(args) => clean::run(&args, out),
        Command::Synth(args) => synth::run(&args, out),
        Command::Sensitivity(args) => sensitivity::run(&args, out),
    }
}
