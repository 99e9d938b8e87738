//! What a local run created, recorded on disk, and the cleanup that removes it.
//!
//! Before it creates anything, a run writes `/run/netpol-harness/nph-<runid>.json` with its
//! owner's pid and start time. Teardown and [`clean`] use the same routine: kill every
//! process inside the run's namespaces, delete the namespaces (which takes their interfaces
//! and the nftables table with them), remove the run's work directory, then the state file.
//! [`clean`] only touches runs whose owner is dead, and only names starting with `nph-`.

use super::netns::{self, PREFIX};
use crate::backend::BackendError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where runs record their resources.
pub const STATE_DIR: &str = "/run/netpol-harness";

/// The resources of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    pub run_id: String,
    /// The harness process that owns the run.
    pub owner_pid: i32,
    /// The owner's start time (field 22 of `/proc/<pid>/stat`), so a reused pid is not
    /// mistaken for the owner.
    pub owner_start: u64,
    /// Every namespace the run creates (recorded before it is created).
    pub namespaces: Vec<String>,
    /// The run's directory: every server's work directory (Postgres data, sockets, ready
    /// files, logs) is inside it.
    pub workdir: PathBuf,
}

impl RunState {
    /// The state of a new run owned by this process.
    pub fn new(run_id: &str, namespaces: Vec<String>, workdir: PathBuf) -> Self {
        let owner_pid = std::process::id() as i32;
        RunState {
            run_id: run_id.to_owned(),
            owner_pid,
            owner_start: process_start(owner_pid).unwrap_or(0),
            namespaces,
            workdir,
        }
    }

    pub fn path(run_id: &str) -> PathBuf {
        Path::new(STATE_DIR).join(format!("{PREFIX}{run_id}.json"))
    }

    /// Writes the state file (creating the state directory if needed).
    pub fn save(&self) -> Result<(), BackendError> {
        let io = |action: &str| {
            let action = action.to_owned();
            move |source| BackendError::Io { action, source }
        };
        std::fs::create_dir_all(STATE_DIR).map_err(io("create /run/netpol-harness"))?;
        let json = serde_json::to_vec_pretty(self).expect("run state serializes");
        std::fs::write(Self::path(&self.run_id), json).map_err(io("write the run state file"))
    }

    fn load(path: &Path) -> Option<Self> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    /// Whether the process that owns the run is still alive.
    pub fn owner_alive(&self) -> bool {
        process_start(self.owner_pid).is_some_and(|start| start == self.owner_start)
    }
}

/// What [`clean`] removed and what it left alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Runs whose leftovers were removed.
    pub runs: Vec<String>,
    pub namespaces: Vec<String>,
    pub killed_pids: Vec<i32>,
    pub directories: Vec<PathBuf>,
    /// Runs skipped because their owner is alive.
    pub live_runs: Vec<String>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "removed {} run(s), {} namespace(s), {} process(es), {} directory(ies); left {} \
             live run(s) alone",
            self.runs.len(),
            self.namespaces.len(),
            self.killed_pids.len(),
            self.directories.len(),
            self.live_runs.len()
        )
    }
}

/// Runs of this process that a signal handler must remove, by run id.
static LIVE_RUNS: Mutex<BTreeMap<String, RunState>> = Mutex::new(BTreeMap::new());

/// Records a run of this process for [`remove_registered`].
pub fn register(state: &RunState) {
    lock().insert(state.run_id.clone(), state.clone());
}

/// Forgets a run once it is removed.
pub fn deregister(run_id: &str) {
    lock().remove(run_id);
}

fn lock() -> std::sync::MutexGuard<'static, BTreeMap<String, RunState>> {
    LIVE_RUNS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Removes every run of this process (for signal handlers, which cannot reach the backends).
pub fn remove_registered() {
    let runs: Vec<RunState> = lock().values().cloned().collect();
    for run in runs {
        let _ = remove_run(&run, &mut Report::default());
        deregister(&run.run_id);
    }
}

/// Removes everything `run` created: its processes, namespaces, work directory and state
/// file. Safe to call twice.
pub fn remove_run(run: &RunState, report: &mut Report) -> Result<(), BackendError> {
    let pids = netns::pids_in_netns(&run.namespaces);
    kill_and_wait(&pids);
    report.killed_pids.extend(pids);
    let existing: Vec<String> = run
        .namespaces
        .iter()
        .filter(|n| netns::netns_path(n).exists())
        .cloned()
        .collect();
    netns::delete_netns(&existing)?;
    report.namespaces.extend(existing);
    if run.workdir.is_dir() && is_ours(&run.workdir) {
        std::fs::remove_dir_all(&run.workdir).map_err(|source| BackendError::Io {
            action: format!("remove {}", run.workdir.display()),
            source,
        })?;
        report.directories.push(run.workdir.clone());
    }
    let _ = std::fs::remove_file(RunState::path(&run.run_id));
    report.runs.push(run.run_id.clone());
    Ok(())
}

/// Only directories named `nph-...` are ever removed.
fn is_ours(dir: &Path) -> bool {
    dir.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(PREFIX))
}

fn kill_and_wait(pids: &[i32]) {
    for pid in pids {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while pids
        .iter()
        .any(|pid| Path::new(&format!("/proc/{pid}/ns")).exists())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The start time of process `pid` in clock ticks since boot, if it exists (zombies count as
/// dead).
pub fn process_start(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the command come state (field 3) ... starttime (field 22).
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// The run id of a name `nph-<runid>[-...]`, if it has the prefix and a well-formed run id
/// (5 characters of `[a-z0-9]`, as [`new_run_id`](super::new_run_id) makes them).
fn run_id_of(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(PREFIX)?;
    let id = rest.split(['-', '.']).next()?;
    let well_formed = id.len() == super::RUN_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    well_formed.then_some(id)
}

/// Removes the leftovers of local runs whose owner process is dead: namespaces (with their
/// processes and tables), work directories and state files, all named `nph-*`. Live runs
/// and anything without the prefix are never touched.
///
/// # Errors
/// When a namespace or directory cannot be removed; what was removed before is reported in
/// the logs.
pub fn clean() -> Result<Report, BackendError> {
    let mut report = Report::default();
    let mut dead: BTreeMap<String, RunState> = BTreeMap::new();
    for entry in std::fs::read_dir(STATE_DIR).into_iter().flatten().flatten() {
        let path = entry.path();
        let Some(state) = RunState::load(&path) else {
            continue;
        };
        if !path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(PREFIX))
        {
            continue;
        }
        if state.owner_alive() {
            report.live_runs.push(state.run_id.clone());
        } else {
            dead.insert(state.run_id.clone(), state);
        }
    }
    // Namespaces and directories without a state file: a run killed before it could write
    // one, or whose state file was lost.
    let workdirs = std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten();
    let names = netns::list_netns().into_iter().chain(
        workdirs
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.starts_with(PREFIX)),
    );
    for name in names {
        let Some(id) = run_id_of(&name).map(str::to_owned) else {
            continue;
        };
        if report.live_runs.contains(&id) || is_live(&id) {
            continue;
        }
        let run = dead.entry(id.clone()).or_insert_with(|| RunState {
            run_id: id.clone(),
            owner_pid: 0,
            owner_start: 0,
            namespaces: Vec::new(),
            workdir: std::env::temp_dir().join(format!("{PREFIX}{id}")),
        });
        if netns::netns_path(&name).exists() && !run.namespaces.contains(&name) {
            run.namespaces.push(name);
        }
    }
    for run in dead.values() {
        tracing::debug!(run = %run.run_id, "removing the leftovers of a dead run");
        remove_run(run, &mut report)?;
    }
    Ok(report)
}

/// Whether run `id` has a state file whose owner is alive (checked again right before
/// removing anything, so a run that started during `clean` is left alone).
fn is_live(id: &str) -> bool {
    RunState::load(&RunState::path(id)).is_some_and(|state| state.owner_alive())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_read_from_prefixed_names_only() {
        assert_eq!(run_id_of("nph-ab12c-node"), Some("ab12c"));
        assert_eq!(run_id_of("nph-ab12c"), Some("ab12c"));
        assert_eq!(run_id_of("nph-ab12c.json"), Some("ab12c"));
        assert_eq!(run_id_of("cni-1234"), None);
        assert_eq!(run_id_of("nph-"), None);
        assert_eq!(run_id_of("nph-t31185-0.nft"), None, "not a run id of ours");
        assert_eq!(run_id_of("nph-AB12C-node"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_made_up_start_time_is_not() {
        let mut state = RunState::new("zzzzz", vec![], PathBuf::from("/nonexistent"));
        assert!(state.owner_alive());
        state.owner_start += 1;
        assert!(!state.owner_alive());
    }
}
