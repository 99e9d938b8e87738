//! Argument definitions (clap derive), shared by every subcommand.

use super::{certify, clean, compare, explain, lint, plan, profiles, run, sensitivity, synth};
use crate::backend::kube::ClusterAccess;
use crate::engine::model::{NetworkPolicy, Topology};
use crate::input;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Proves, edge by edge, that a cluster's network does exactly what its NetworkPolicies say.
#[derive(Debug, Parser)]
#[command(
    name = "netpol-harness",
    version,
    propagate_version = true,
    after_help = "Exit status: 0 success; 1 the command reports a failure (edges that did not \
                  behave as the policies say, lint findings with --deny-findings); 2 bad input \
                  (an invalid file or argument); 3 an infrastructure error (the harness could \
                  not test); 130 interrupted."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print every edge of the topology with the verdict the policies give it.
    Plan(plan::Args),
    /// Explain why the policies allow or deny one edge.
    Explain(explain::Args),
    /// Report intended flows the policies deny and other likely mistakes.
    Lint(lint::Args),
    /// Deploy fixtures on a backend and verify every edge against the policies.
    Run(run::RunArgs),
    /// Run fixtures once clean and once per injected data-plane fault (local backend), and
    /// show which faults they catch.
    Sensitivity(sensitivity::Args),
    /// List the certification profiles: named sets of fixtures and probe modes.
    Profiles(profiles::Args),
    /// Run certification profiles on a backend and write a report directory (YAML,
    /// Markdown, HTML, and JUnit and JSON per fixture).
    Certify(certify::Args),
    /// Show which edges changed verdict between two reports (a regression view).
    Compare(compare::Args),
    /// Remove what runs left behind on a backend (only the harness's own objects).
    Clean(clean::Args),
    /// Write a synthetic cluster (topology and policies) for benchmarks.
    Synth(synth::Args),
}

/// Which cluster `--backend kube` uses: shared by `run`, `certify` and `clean`.
#[derive(Debug, Clone, Default, Args)]
pub struct KubeArgs {
    /// The kubeconfig context of the cluster for `--backend kube` (default: the
    /// NETPOL_KUBE_CONTEXT environment variable; never the current context).
    #[arg(long, value_name = "NAME", conflicts_with = "in_cluster")]
    pub kube_context: Option<String>,
    /// For `--backend kube` inside a pod (e.g. the Sonobuoy plugin): use the pod's service
    /// account instead of a kubeconfig context. Never implied.
    #[arg(long)]
    pub in_cluster: bool,
}

impl KubeArgs {
    /// The cluster the flags name; `None` leaves it to NETPOL_KUBE_CONTEXT.
    pub fn access(&self) -> Option<ClusterAccess> {
        if self.in_cluster {
            Some(ClusterAccess::InCluster)
        } else {
            self.kube_context.clone().map(ClusterAccess::Context)
        }
    }
}

/// The topology and policies every subcommand reads.
#[derive(Debug, Clone, Args)]
pub struct InputArgs {
    /// The topology file: namespaces and pods with their labels and ports.
    #[arg(long, value_name = "FILE")]
    pub topology: PathBuf,
    /// NetworkPolicy manifests: files, or directories of *.yaml/*.yml files (multi-document
    /// files allowed).
    #[arg(long, value_name = "PATH", num_args = 1.., required = true)]
    pub policies: Vec<PathBuf>,
}

impl InputArgs {
    /// Loads and validates the topology and the policies.
    ///
    /// # Errors
    ///
    /// The first input file that cannot be read or is invalid.
    pub fn load(&self) -> Result<(Topology, Vec<NetworkPolicy>), input::Error> {
        let topology = input::load_topology(&self.topology)?;
        let policies = input::load_policies(&self.policies)?;
        Ok((topology, policies))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
