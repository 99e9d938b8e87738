//! A throwaway Postgres 15: trust authentication from everywhere, no durability.

use super::process::{Error, Launch, ServerGuard, WorkDir, describe_status, require_binary};
use nix::sys::signal::Signal;
use nix::unistd::{Gid, Uid, User};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where Debian's `postgresql-15` package installs the server binaries.
pub const POSTGRES_BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

/// `pg_hba.conf` letting anyone in as anyone: the probe only needs to prove it got through.
const PG_HBA: &str = "local all all trust\nhost all all 0.0.0.0/0 trust\nhost all all ::/0 trust\n";

/// initdb's flags besides the data dir: no fsync, and 1 MB WAL segments instead of 16 MB, which
/// shrinks every copy of the data dir by 15 MB.
const INITDB_FLAGS: [&str; 5] = [
    "--no-sync",
    "--no-instructions",
    "--encoding=UTF8",
    "--locale=C",
    "--wal-segsize=1",
];

/// How to start one Postgres server.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// The address and port to listen on (`listen_addresses`, `port`).
    pub listen: SocketAddr,
    /// Run inside this network namespace (`/run/netns/NAME`).
    pub netns: Option<String>,
    /// The `cluster_name` setting, shown in `ps` (e.g. the pod's `namespace/name`).
    pub cluster_name: Option<String>,
    /// A data directory made by [`PostgresTemplate`] to copy instead of running initdb.
    pub template: Option<PathBuf>,
    /// The directory holding `postgres` and `initdb`.
    pub bin_dir: PathBuf,
    /// Where to create the server's work directory; [`base_dir`](super::base_dir) when
    /// `None`. A caller that cleans up after killed runs passes a directory it owns.
    pub parent_dir: Option<PathBuf>,
    pub ready_timeout: Duration,
}

impl PostgresOptions {
    pub fn new(listen: SocketAddr) -> Self {
        PostgresOptions {
            listen,
            netns: None,
            cluster_name: None,
            template: None,
            bin_dir: PathBuf::from(POSTGRES_BIN_DIR),
            parent_dir: None,
            ready_timeout: Duration::from_secs(30),
        }
    }
}

/// A data directory initialised once and copied for every server, which skips initdb (about
/// a second each).
#[derive(Debug)]
pub struct PostgresTemplate {
    dir: WorkDir,
}

impl PostgresTemplate {
    /// Runs initdb into a new temporary directory, as user `postgres` when running as root.
    ///
    /// # Errors
    ///
    /// [`Error`] when Postgres is not installed or initdb fails.
    pub async fn create(bin_dir: &Path) -> Result<PostgresTemplate, Error> {
        PostgresTemplate::create_in(bin_dir, None).await
    }

    /// As [`create`](Self::create), with the template's directory under `parent_dir` (see
    /// [`PostgresOptions::parent_dir`]).
    ///
    /// # Errors
    ///
    /// [`Error`] when Postgres is not installed or initdb fails.
    pub async fn create_in(
        bin_dir: &Path,
        parent_dir: Option<&Path>,
    ) -> Result<PostgresTemplate, Error> {
        let dir = WorkDir::in_parent(parent_dir, "pgtemplate")?;
        let user = server_user()?;
        chown(dir.path(), user)?;
        initdb(bin_dir, &dir.path().join("data"), dir.path(), user).await?;
        Ok(PostgresTemplate { dir })
    }

    /// The data directory, for [`PostgresOptions::template`].
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

/// Starts Postgres and waits until it answers `SELECT 1`.
///
/// # Errors
///
/// [`Error`] naming the binary and what went wrong; [`Error::MissingBinary`] names the apt
/// package `postgresql`.
pub async fn start_postgres(options: &PostgresOptions) -> Result<ServerGuard, Error> {
    let binary = require_binary(options.bin_dir.join("postgres"), "postgres", "postgresql")?;
    let user = server_user()?;
    let dir = WorkDir::in_parent(options.parent_dir.as_deref(), "postgres")?;
    chown(dir.path(), user)?;
    let data = dir.path().join("data");
    match &options.template {
        Some(template) => copy_dir(template, &data).await?,
        None => initdb(&options.bin_dir, &data, dir.path(), user).await?,
    }
    let hba = data.join("pg_hba.conf");
    std::fs::write(&hba, PG_HBA).map_err(|source| Error::Prepare {
        path: hba.clone(),
        source,
    })?;
    chown(&hba, user)?;
    let log = dir.path().join("postgres.log");
    let launch = Launch {
        binary: &binary,
        args: server_args(options, &data, dir.path()),
        netns: options.netns.as_deref(),
        user,
        cwd: dir.path(),
        log: &log,
    };
    let child = launch.spawn()?;
    // SIGQUIT is Postgres's immediate shutdown: no checkpoint, shared memory removed.
    let mut guard = ServerGuard::new(&binary, child, options.listen, log, Signal::SIGQUIT, dir);
    let addr = options.listen;
    guard
        .wait_ready(options.netns.as_deref(), options.ready_timeout, move || {
            crate::probe::postgres_ready(addr)
        })
        .await?;
    Ok(guard)
}

fn server_args(options: &PostgresOptions, data: &Path, socket_dir: &Path) -> Vec<OsString> {
    let mut settings = vec![
        format!("listen_addresses={}", options.listen.ip()),
        format!("port={}", options.listen.port()),
        format!("unix_socket_directories={}", socket_dir.display()),
        "fsync=off".to_owned(),
        "synchronous_commit=off".to_owned(),
        "full_page_writes=off".to_owned(),
        "max_connections=50".to_owned(),
        "shared_buffers=16MB".to_owned(),
        "logging_collector=off".to_owned(),
    ];
    if let Some(name) = &options.cluster_name {
        settings.push(format!("cluster_name={name}"));
    }
    let mut args: Vec<OsString> = vec!["-D".into(), data.into()];
    for setting in settings {
        args.push("-c".into());
        args.push(setting.into());
    }
    args
}

/// The user to run Postgres as: `postgres` when we are root (Postgres refuses root), else us.
fn server_user() -> Result<Option<(Uid, Gid)>, Error> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    match User::from_name("postgres") {
        Ok(Some(user)) => Ok(Some((user.uid, user.gid))),
        _ => Err(Error::NoPostgresUser),
    }
}

fn chown(path: &Path, user: Option<(Uid, Gid)>) -> Result<(), Error> {
    let Some((uid, gid)) = user else {
        return Ok(());
    };
    nix::unistd::chown(path, Some(uid), Some(gid)).map_err(|errno| Error::Prepare {
        path: path.to_owned(),
        source: errno.into(),
    })
}

async fn initdb(
    bin_dir: &Path,
    data: &Path,
    cwd: &Path,
    user: Option<(Uid, Gid)>,
) -> Result<(), Error> {
    let binary = require_binary(bin_dir.join("initdb"), "initdb", "postgresql")?;
    let log = cwd.join("initdb.log");
    let args = [
        "-D",
        &data.display().to_string(),
        "-U",
        "postgres",
        "--auth=trust",
    ]
    .iter()
    .map(OsString::from)
    .chain(INITDB_FLAGS.map(Into::into))
    .collect();
    let launch = Launch {
        binary: &binary,
        args,
        netns: None,
        user,
        cwd,
        log: &log,
    };
    let mut command = tokio::process::Command::from(launch.command()?);
    let status = command.status().await.map_err(|source| Error::Spawn {
        binary: "initdb".to_owned(),
        source,
    })?;
    if status.success() {
        return Ok(());
    }
    Err(Error::Failed {
        binary: "initdb".to_owned(),
        status: describe_status(status),
        tail: super::process::log_tail(&log),
    })
}

/// Copies a template data directory, keeping owners and modes (`cp -a`).
async fn copy_dir(from: &Path, to: &Path) -> Result<(), Error> {
    let output = tokio::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .await
        .map_err(|source| Error::Spawn {
            binary: "cp".to_owned(),
            source,
        })?;
    if output.status.success() {
        return Ok(());
    }
    Err(Error::Failed {
        binary: format!("cp -a {}", from.display()),
        status: describe_status(output.status),
        tail: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}
