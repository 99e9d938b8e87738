//! Spawning a server (in a namespace, as a user, in its own process group, dying with the
//! thread that started it), waiting until it answers, and stopping it.

use crate::netns;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Gid, Pid, Uid};
use std::ffi::OsString;
use std::fs::File;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Errors of starting a server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{binary} not found at {path}: install the apt package `{package}`")]
    MissingBinary {
        binary: &'static str,
        path: PathBuf,
        package: &'static str,
    },
    #[error(
        "{binary} not found on PATH, /usr/sbin or /usr/bin: install the apt package `{package}`"
    )]
    NotOnPath {
        binary: &'static str,
        package: &'static str,
    },
    #[error(
        "netpol-probe not found at {path}: run `cargo build -p netpol-probes` or set NETPOL_PROBE_BIN"
    )]
    AgentNotBuilt { path: PathBuf },
    #[error("user `postgres` does not exist: install the apt package `postgresql`")]
    NoPostgresUser,
    #[error("failed to prepare {path}")]
    Prepare {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to start {binary}")]
    Spawn {
        binary: String,
        #[source]
        source: io::Error,
    },
    #[error("{binary} failed ({status}); its output ends with:\n{tail}")]
    Failed {
        binary: String,
        status: String,
        tail: String,
    },
    #[error(
        "{binary} did not answer on {addr} within {timeout:?} (last check: {last}); \
         its log ends with:\n{tail}"
    )]
    NotReady {
        binary: String,
        addr: SocketAddr,
        timeout: Duration,
        last: String,
        tail: String,
    },
    #[error("failed to run the readiness check in the server's network namespace")]
    Netns(#[from] netns::Error),
}

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// A directory removed, with its contents, on drop.
#[derive(Debug)]
pub struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    /// Creates `netpol-KIND-PID-N` under [`base_dir`].
    ///
    /// # Errors
    ///
    /// [`Error::Prepare`] when the directory cannot be created.
    pub fn new(kind: &str) -> Result<WorkDir, Error> {
        WorkDir::new_in(&base_dir(), kind)
    }

    /// Creates `netpol-KIND-PID-N` under `parent`, creating `parent` too if missing.
    ///
    /// A caller that must remove everything a killed process left (the local backend's
    /// `clean`) passes a directory it owns and removes: the work dir sits inside it.
    ///
    /// # Errors
    ///
    /// [`Error::Prepare`] when the directory cannot be created.
    pub fn new_in(parent: &Path, kind: &str) -> Result<WorkDir, Error> {
        let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
        let name = format!("netpol-{kind}-{}-{n}", std::process::id());
        let path = parent.join(name);
        // A directory left by an earlier process with our pid would only hold stale files.
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).map_err(|source| Error::Prepare {
            path: path.clone(),
            source,
        })?;
        Ok(WorkDir { path })
    }

    /// Creates `netpol-KIND-PID-N` under `parent`, or under [`base_dir`] for `None` (what
    /// the `parent_dir` field of every options struct means).
    pub(crate) fn in_parent(parent: Option<&Path>, kind: &str) -> Result<WorkDir, Error> {
        match parent {
            Some(parent) => WorkDir::new_in(parent, kind),
            None => WorkDir::new(kind),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.path) {
            tracing::debug!(path = %self.path.display(), %error, "could not remove a work dir");
        }
    }
}

/// Where work dirs go: `$NETPOL_SERVERS_DIR` if set, else `/dev/shm` when it is a tmpfs with a
/// gigabyte free, else the system temp dir.
///
/// Memory matters: copying a Postgres data dir takes about 0.2 s on tmpfs against 3 s on a
/// busy disk, and a topology copies one per pod.
pub fn base_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("NETPOL_SERVERS_DIR") {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    let roomy = nix::sys::statvfs::statvfs(shm).is_ok_and(|stat| {
        let free = stat.blocks_available().saturating_mul(stat.fragment_size());
        free >= 1 << 30
    });
    let writable = nix::unistd::access(shm, nix::unistd::AccessFlags::W_OK).is_ok();
    if roomy && writable {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    }
}

/// Finds a binary on `PATH`, then in the sbin and bin directories Debian installs to.
pub(crate) fn find_binary(binary: &'static str, package: &'static str) -> Result<PathBuf, Error> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(binary))
        .find(|candidate| candidate.is_file())
        .ok_or(Error::NotOnPath { binary, package })
}

/// Checks that a binary at a fixed path exists.
pub(crate) fn require_binary(
    path: PathBuf,
    binary: &'static str,
    package: &'static str,
) -> Result<PathBuf, Error> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::MissingBinary {
            binary,
            path,
            package,
        })
    }
}

/// How to run a server process.
#[derive(Debug)]
pub(crate) struct Launch<'a> {
    pub binary: &'a Path,
    pub args: Vec<OsString>,
    pub netns: Option<&'a str>,
    /// Switch to this user and group before exec (when running as root).
    pub user: Option<(Uid, Gid)>,
    pub cwd: &'a Path,
    /// Receives the child's standard output and error.
    pub log: &'a Path,
}

impl Launch<'_> {
    /// The command, set to enter the namespace, lead a new process group and drop to the user
    /// in the child, in that order (entering a namespace needs root).
    pub fn command(&self) -> Result<Command, Error> {
        let netns_file = self.netns.map(netns::open).transpose()?;
        let prepare = |source| Error::Prepare {
            path: self.log.to_owned(),
            source,
        };
        let log = File::create(self.log).map_err(prepare)?;
        let log_err = log.try_clone().map_err(prepare)?;
        let mut command = Command::new(self.binary);
        command
            .args(&self.args)
            .current_dir(self.cwd)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let user = self.user;
        let parent = nix::unistd::getpid();
        // SAFETY: the closure runs between fork and exec and only makes system calls
        // (setns, setpgid, setgroups, setgid, setuid, prctl, getppid); it allocates nothing.
        unsafe {
            command.pre_exec(move || {
                if let Some(file) = &netns_file {
                    netns::enter_in_child(file)?;
                }
                nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0))?;
                if let Some((uid, gid)) = user {
                    nix::unistd::setgroups(&[gid])?;
                    nix::unistd::setgid(gid)?;
                    nix::unistd::setuid(uid)?;
                }
                // After the credential change, which clears the death signal.
                die_with_parent(parent)
            });
        }
        Ok(command)
    }

    pub fn spawn(&self) -> Result<Child, Error> {
        let binary = self.binary.display().to_string();
        self.command()?
            .spawn()
            .map_err(|source| Error::Spawn { binary, source })
    }
}

/// Makes the kernel SIGKILL the calling child when the thread that forked it exits (which
/// includes the whole parent process being killed), and fails if the parent is already gone.
///
/// Safe between fork and exec: two system calls, no allocation.
fn die_with_parent(parent: Pid) -> io::Result<()> {
    // SAFETY: prctl(2) with PR_SET_PDEATHSIG takes a signal number and nothing else.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // The parent may have died between fork and prctl: then nothing would kill us later.
    if nix::unistd::getppid() != parent {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    Ok(())
}

/// A running server; dropping it stops the server's whole process group.
#[derive(Debug)]
pub struct ServerGuard {
    binary: String,
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    stop_signal: Signal,
    /// Set once [`stop_all`] has stopped the process.
    stopped: bool,
    /// Removed after the process is gone.
    dir: WorkDir,
}

impl ServerGuard {
    pub(crate) fn new(
        binary: &Path,
        child: Child,
        addr: SocketAddr,
        log: PathBuf,
        stop_signal: Signal,
        dir: WorkDir,
    ) -> ServerGuard {
        let binary = binary
            .file_name()
            .unwrap_or(binary.as_os_str())
            .to_string_lossy()
            .into();
        ServerGuard {
            binary,
            child,
            addr,
            log,
            stop_signal,
            stopped: false,
            dir,
        }
    }

    /// The process id, which is also its process group id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The file receiving the server's output.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The working directory (data, sockets, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Waits until `ready` succeeds, from inside `netns`, checking every 20 ms.
    ///
    /// # Errors
    ///
    /// [`Error::Failed`] when the process exits first, [`Error::NotReady`] after `timeout`.
    pub(crate) async fn wait_ready<F, Fut>(
        &mut self,
        netns: Option<&str>,
        timeout: Duration,
        ready: F,
    ) -> Result<(), Error>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), String>>,
    {
        let pid = self.child.id();
        let waited = netns::run_in(netns, move || async move {
            let start = Instant::now();
            loop {
                let attempt = tokio::time::timeout(Duration::from_secs(1), ready()).await;
                let last = match attempt {
                    Ok(Ok(())) => return Ok(()),
                    Ok(Err(error)) => error,
                    Err(_) => "no answer within 1 s".to_owned(),
                };
                if has_exited(pid) || start.elapsed() >= timeout {
                    return Err(last);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await?;
        let Err(last) = waited else { return Ok(()) };
        let tail = log_tail(&self.log);
        match self.child.try_wait() {
            Ok(Some(status)) => Err(Error::Failed {
                binary: self.binary.clone(),
                status: describe_status(status),
                tail,
            }),
            _ => Err(Error::NotReady {
                binary: self.binary.clone(),
                addr: self.addr,
                timeout,
                last,
                tail,
            }),
        }
    }
}

impl ServerGuard {
    fn group(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Waits up to two seconds for the process to exit after its stop signal, then kills
    /// whatever is left of its group.
    fn reap(&mut self, signalled: bool) {
        if signalled {
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        // Whatever is left of the group (workers, or a server ignoring the signal) goes now.
        let _ = killpg(self.group(), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Stops many servers at once: signals them all, then waits for each, so stopping a whole
/// topology takes as long as its slowest server rather than the sum of all.
pub fn stop_all(guards: impl IntoIterator<Item = ServerGuard>) {
    let mut guards: Vec<ServerGuard> = guards.into_iter().collect();
    let signalled: Vec<bool> = guards
        .iter()
        .map(|g| killpg(g.group(), g.stop_signal).is_ok())
        .collect();
    for (guard, signalled) in guards.iter_mut().zip(signalled) {
        guard.reap(signalled);
        guard.stopped = true;
    }
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        if !self.stopped {
            let signalled = killpg(self.group(), self.stop_signal).is_ok();
            self.reap(signalled);
        }
    }
}

/// Whether a child has exited (it is a zombie or gone), without reaping it.
fn has_exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => true,
    }
}

pub(crate) fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}

/// The last lines of a log, for error messages.
pub(crate) fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
