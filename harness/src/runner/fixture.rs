//! Fixtures: a directory holding what one conformance run tests.
//!
//! ```text
//! fixtures/meeting-app/
//!   topology.yaml   namespaces and probe pods (required)
//!   policies/       the NetworkPolicies under test (required)
//!   intent.yaml     flows the application needs, linted before the run (optional)
//!   steps.yaml      changes to verify after the policies (optional, see [`steps`](super::steps))
//! ```

use super::error::{Error, Result};
use super::steps::{ActionKind, Step, load_steps};
use crate::engine::{IntentFlow, NetworkPolicy, Topology};
use crate::input;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The topology file of a fixture directory.
pub const TOPOLOGY_FILE: &str = "topology.yaml";
/// The policies directory of a fixture directory.
pub const POLICIES_DIR: &str = "policies";
/// The optional intent file of a fixture directory.
pub const INTENT_FILE: &str = "intent.yaml";
/// The optional steps file of a fixture directory.
pub const STEPS_FILE: &str = "steps.yaml";

/// A loaded, validated fixture.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The directory's name: the first segment of every trial name.
    pub name: String,
    pub dir: PathBuf,
    pub topology: Topology,
    pub policies: Vec<NetworkPolicy>,
    /// Empty when the fixture has no intent file.
    pub intent: Vec<IntentFlow>,
    /// Empty when the fixture has no steps file.
    pub steps: Vec<Step>,
    /// A stable hash of the fixture's files (FNV-1a 64, hex), recorded in reports so that two
    /// results can be told apart when their inputs differ.
    pub source_hash: String,
}

impl Fixture {
    /// Loads the fixture in `dir`: its topology, policies, intent and steps, with the
    /// policies of every step's `apply` action read.
    ///
    /// # Errors
    /// A file cannot be read or is invalid (input errors name the file, document and field),
    /// or a step is inconsistent with the topology and policies (checked by [`Plan::new`]).
    ///
    /// [`Plan::new`]: super::Plan::new
    pub fn load(dir: &Path) -> Result<Fixture> {
        let topology_file = dir.join(TOPOLOGY_FILE);
        let topology = input::load_topology(&topology_file)?;
        let policies = input::load_policies(&[dir.join(POLICIES_DIR)])?;
        let intent_file = dir.join(INTENT_FILE);
        let intent = if intent_file.is_file() {
            input::load_intent(&intent_file, &topology)?
        } else {
            Vec::new()
        };
        let steps_file = dir.join(STEPS_FILE);
        let mut steps = if steps_file.is_file() {
            load_steps(&steps_file)?
        } else {
            Vec::new()
        };
        let mut sources: Vec<PathBuf> = vec![topology_file, intent_file, steps_file.clone()];
        sources.extend(policies.iter().map(|p| p.origin.file.clone()));
        for step in &mut steps {
            for action in &mut step.actions {
                if let ActionKind::Apply { files, policies } = &mut action.kind {
                    *policies = input::load_policies(files)?;
                    sources.extend(policies.iter().map(|p| p.origin.file.clone()));
                }
            }
        }
        sources.dedup();
        let texts = sources
            .iter()
            .map(|path| std::fs::read(path).unwrap_or_default());
        let name = dir.file_name().map_or_else(
            || dir.display().to_string(),
            |name| name.to_string_lossy().into_owned(),
        );
        Ok(Fixture {
            name,
            dir: dir.to_owned(),
            topology,
            policies,
            intent,
            steps,
            source_hash: fnv1a_hex(texts),
        })
    }

    /// A fixture built in memory (tests, generated topologies); its hash covers the values.
    pub fn new(name: &str, topology: Topology, policies: Vec<NetworkPolicy>) -> Self {
        let source_hash = fnv1a_hex([format!("{topology:?}"), format!("{policies:?}")]);
        Fixture {
            name: name.to_owned(),
            dir: PathBuf::from(name),
            topology,
            policies,
            intent: Vec::new(),
            steps: Vec::new(),
            source_hash,
        }
    }

    /// The path of `steps.yaml`, named in step errors.
    pub fn steps_file(&self) -> PathBuf {
        self.dir.join(STEPS_FILE)
    }

    /// The same fixture with only the pods in `keep` (by `namespace/name`), for runs of a
    /// subset of trials.
    ///
    /// An edge's verdict depends only on its two pods, their namespaces and the policies, so
    /// the edges among kept pods keep their verdicts. Every namespace and policy is kept;
    /// label changes of pods not kept are dropped; intent flows are dropped (their pod
    /// indices would no longer hold).
    pub fn restricted(&self, keep: &BTreeSet<String>) -> Fixture {
        let mut fixture = self.clone();
        fixture.topology.pods.retain(|pod| keep.contains(&pod.id()));
        fixture.intent.clear();
        for step in &mut fixture.steps {
            step.actions.retain(|action| match &action.kind {
                ActionKind::SetPodLabels { pod, .. } => keep.contains(pod),
                _ => true,
            });
        }
        fixture
    }
}

/// Every fixture under `path`: `path` itself when it holds a topology file, otherwise each
/// direct subdirectory that does, in name order.
///
/// # Errors
/// [`Error::NoFixtures`] when there is none; [`Error::Read`] when `path` cannot be listed.
pub fn fixture_dirs(path: &Path) -> Result<Vec<PathBuf>> {
    if path.join(TOPOLOGY_FILE).is_file() {
        return Ok(vec![path.to_owned()]);
    }
    let read_error = |source| Error::Read {
        path: path.to_owned(),
        source,
    };
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(path).map_err(read_error)? {
        let dir = entry.map_err(read_error)?.path();
        if dir.join(TOPOLOGY_FILE).is_file() {
            dirs.push(dir);
        }
    }
    dirs.sort();
    if dirs.is_empty() {
        return Err(Error::NoFixtures {
            path: path.to_owned(),
        });
    }
    Ok(dirs)
}

/// FNV-1a, 64 bits, over each part followed by a separator byte; lowercase hex.
pub(crate) fn fnv1a_hex<I, T>(parts: I) -> String
where
    I: IntoIterator<Item = T>,
    T: AsRef<[u8]>,
{
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for part in parts {
        for &byte in part.as_ref().iter().chain(&[0xff]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vector_and_separates_parts() {
        // FNV-1a 64 of "a" is af63dc4c8601ec8c; the separator byte changes it.
        assert_ne!(fnv1a_hex(["a"]), "af63dc4c8601ec8c");
        assert_ne!(fnv1a_hex(["ab", "c"]), fnv1a_hex(["a", "bc"]));
        assert_eq!(fnv1a_hex(["x"]), fnv1a_hex(["x"]));
    }
}
