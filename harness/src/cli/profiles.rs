//! `profiles`: lists the certification profiles of a profiles directory: name, description,
//! fixtures, probe modes, and the backends that can run them.
//!
//! Exit statuses: 0 every profile is valid; 2 a profile is invalid (after listing the valid
//! ones and naming the problem of each invalid one) or the directory has none.

use super::error::{Error, Status};
use crate::certify::profile::{self, DEFAULT_PROFILES_DIR, PROFILES_DIR_ENV};
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `netpol-harness profiles`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub dir: ProfilesDir,
}

/// Where the profiles are: shared by `profiles` and `certify`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProfilesDir {
    /// The directory of profile files (`<name>.yaml`). Fixture paths in a profile are relative
    /// to the directory that holds this one (the repository root for `profiles`).
    #[arg(
        long,
        value_name = "DIR",
        env = PROFILES_DIR_ENV,
        default_value = DEFAULT_PROFILES_DIR
    )]
    pub profiles_dir: PathBuf,
}

/// Lists every profile of the directory.
///
/// # Errors
/// [`Error::Certify`] when the directory cannot be read or has no profile;
/// [`Error::Argument`] when some profile is invalid.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<Status, Error> {
    let dir = &args.dir.profiles_dir;
    let loaded = profile::load_all(dir)?;
    let total = loaded.len();
    let mut invalid = 0;
    for (i, result) in loaded.into_iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        match result {
            Ok(profile) => {
                writeln!(out, "{}: {}", profile.name, profile.description)?;
                writeln!(out, "  fixtures: {}", profile.fixtures.join(", "))?;
                let modes: Vec<String> = profile.modes.iter().map(|m| m.to_string()).collect();
                writeln!(out, "  modes:    {}", modes.join(", "))?;
                if !profile.requires.is_empty() {
                    let requires: Vec<String> =
                        profile.requires.iter().map(|r| r.to_string()).collect();
                    writeln!(out, "  requires: {}", requires.join(", "))?;
                }
                let backends: Vec<&str> = profile.backends().iter().map(|b| b.as_str()).collect();
                writeln!(out, "  backends: {}", backends.join(", "))?;
            }
            Err(error) => {
                invalid += 1;
                writeln!(out, "INVALID: {:#}", anyhow::Error::from(error))?;
            }
        }
    }
    if invalid > 0 {
        return Err(Error::Argument(format!(
            "{invalid} of {total} profiles in {} are invalid (listed above)",
            dir.display()
        )));
    }
    Ok(Status::Success)
}
