//! `synth`: write a synthetic cluster (a topology file and a policies file) from the engine's
//! deterministic generator, so that `plan` can be measured end to end on a cluster of any
//! size.

use super::error::{Error, Status};
use crate::input::{self, render_policies, render_topology};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Number of pods.
    #[arg(long, default_value_t = 1000)]
    pub pods: usize,
    /// Number of namespaces.
    #[arg(long, default_value_t = 20)]
    pub namespaces: usize,
    /// Number of policies.
    #[arg(long, default_value_t = 200)]
    pub policies: usize,
    /// Seed of the generator: the same seed always gives the same cluster.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Directory to write `topology.yaml` and `policies.yaml` into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Runs `synth`, printing the paths it wrote.
///
/// # Errors
///
/// [`Error::Input`] when the directory or a file cannot be written.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<Status, Error> {
    let (topology, policies) =
        crate::synth::synthetic(args.pods, args.namespaces, args.policies, args.seed);
    let write = |name: &str, text: String| {
        let path = args.out.join(name);
        std::fs::create_dir_all(&args.out)
            .and_then(|()| std::fs::write(&path, text))
            .map(|()| path.clone())
            .map_err(|source| Error::Input(input::Error::Write { path, source }))
    };
    let topology_path = write("topology.yaml", render_topology(&topology))?;
    let policies_path = write("policies.yaml", render_policies(&policies))?;
    writeln!(out, "{}", topology_path.display())?;
    writeln!(out, "{}", policies_path.display())?;
    Ok(Status::Success)
}
