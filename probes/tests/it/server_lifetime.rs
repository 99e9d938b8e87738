//! Where a server's files live and how long the server lives: inside the parent directory
//! the caller gives, and no longer than the thread that started it unless a `Launcher` did.

use crate::common::{free_addr, probe, target};
use netpol_probes::servers::{Launcher, RedisOptions, ServerGuard, start_redis};
use netpol_probes::spec::{Check, Protocol};
use netpol_probes::wire::Outcome;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Whether process `pid` has exited (gone, or a zombie its parent has not reaped yet).
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => true,
    }
}

fn exits_within(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if exited(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    exited(pid)
}

/// Starts a Redis from a thread of its own, which ends once the server is ready.
fn start_from_a_thread_that_ends(
    start: impl FnOnce() -> ServerGuard + Send + 'static,
) -> ServerGuard {
    std::thread::spawn(start).join().unwrap()
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_work_dir_sits_inside_the_parent_dir_given_and_goes_with_its_server() {
    let parent = std::env::temp_dir().join(format!("netpol-parent-{}", std::process::id()));
    let mut options = RedisOptions::new(free_addr());
    options.parent_dir = Some(parent.clone());
    let redis = current_thread_runtime()
        .block_on(start_redis(&options))
        .unwrap();
    assert_eq!(redis.dir().parent(), Some(parent.as_path()));
    assert!(redis.log_path().starts_with(&parent));
    let dir: PathBuf = redis.dir().to_owned();
    drop(redis);
    assert!(!dir.exists(), "{} outlived its server", dir.display());
    std::fs::remove_dir(&parent).unwrap();
}

#[test]
fn a_server_dies_with_the_thread_that_started_it() {
    let options = RedisOptions::new(free_addr());
    let redis = start_from_a_thread_that_ends(move || {
        current_thread_runtime()
            .block_on(start_redis(&options))
            .unwrap()
    });
    assert!(
        exits_within(redis.pid(), Duration::from_secs(2)),
        "redis-server {} outlived the thread that started it",
        redis.pid()
    );
}

#[test]
fn a_server_started_by_a_launcher_outlives_the_thread_that_asked_for_it() {
    let launcher = std::sync::Arc::new(Launcher::new().unwrap());
    let options = RedisOptions::new(free_addr());
    let asked_by = std::sync::Arc::clone(&launcher);
    let redis = start_from_a_thread_that_ends(move || {
        current_thread_runtime()
            .block_on(asked_by.run(async move { start_redis(&options).await }))
            .unwrap()
    });
    assert!(!exits_within(redis.pid(), Duration::from_millis(300)));
    let runtime = current_thread_runtime();
    let ping = runtime.block_on(probe(&target(
        "redis",
        redis.addr(),
        Protocol::Tcp,
        Check::Redis,
    )));
    assert_eq!(ping.outcome, Outcome::Connected, "{ping:?}");
    // Stopped before its launcher ends, as the launcher's docs ask.
    drop(redis);
    drop(launcher);
}
