//! Running code and child processes inside a named network namespace (`/run/netns/NAME`,
//! the convention of `ip netns`).
//!
//! A namespace is entered with `setns(2)`, which changes only the calling thread: children enter
//! it between fork and exec ([`enter_in_child`]), async code runs on a dedicated thread with its
//! own single-threaded tokio runtime ([`run_in`]).

use nix::sched::{CloneFlags, setns};
use std::fs::File;
use std::future::Future;
use std::io;
use std::os::fd::AsFd;
use std::path::PathBuf;

/// Errors of entering a network namespace.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to open network namespace {name:?} at {path}: create it with `ip netns add`")]
    Open {
        name: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to enter network namespace {name:?} (needs CAP_SYS_ADMIN: run as root)")]
    Enter {
        name: String,
        #[source]
        source: nix::Error,
    },
    #[error("failed to start a thread for network namespace {name:?}")]
    Thread {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("the thread running in network namespace {name:?} panicked")]
    Panicked { name: String },
}

/// The path `ip netns` uses for a named namespace.
pub fn path(name: &str) -> PathBuf {
    PathBuf::from("/run/netns").join(name)
}

/// Opens a named namespace, to be entered later (for example in a child before exec).
///
/// # Errors
///
/// [`Error::Open`] when the namespace does not exist or cannot be read.
pub fn open(name: &str) -> Result<File, Error> {
    let path = path(name);
    File::open(&path).map_err(|source| Error::Open {
        name: name.to_owned(),
        path,
        source,
    })
}

/// Moves the calling thread into the namespace `file` refers to.
///
/// Safe to call between fork and exec: it makes one system call and allocates nothing.
///
/// # Errors
///
/// The `setns` error, e.g. `EPERM` without CAP_SYS_ADMIN.
pub fn enter_in_child(file: &File) -> io::Result<()> {
    setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
}

/// Runs an async computation with the current thread's network namespace set to `name`
/// (or left alone for `None`), on a new thread with a single-threaded tokio runtime.
///
/// Sockets the computation creates belong to that namespace.
///
/// # Errors
///
/// [`Error`] when the namespace cannot be entered or the thread fails.
pub async fn run_in<F, Fut, T>(name: Option<&str>, make: F) -> Result<T, Error>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let label = name.unwrap_or("(current)").to_owned();
    let file = name.map(open).transpose()?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let thread_label = label.clone();
    std::thread::Builder::new()
        .name(format!("netns-{label}"))
        .spawn(move || {
            let result = (|| {
                if let Some(file) = &file {
                    setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|source| {
                        Error::Enter {
                            name: thread_label.clone(),
                            source,
                        }
                    })?;
                }
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|source| Error::Thread {
                        name: thread_label.clone(),
                        source,
                    })?;
                Ok(runtime.block_on(make()))
            })();
            // The receiver is gone only when the caller stopped waiting; nothing to report to.
            let _ = tx.send(result);
        })
        .map_err(|source| Error::Thread {
            name: label.clone(),
            source,
        })?;
    rx.await.map_err(|_| Error::Panicked { name: label })?
}
