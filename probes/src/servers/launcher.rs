//! A thread of its own to start servers from, so that they outlive the caller's thread.

use std::future::Future;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A thread with a single-threaded tokio runtime that runs server starts, for servers that
/// must outlive the thread (or runtime) that asked for them.
///
/// Every server dies with the *thread* that forked it (`PR_SET_PDEATHSIG` fires when that
/// thread exits, not only when the process does). Started from a `#[tokio::test]`, a
/// `spawn_blocking` thread or a runtime that is dropped before the guards are, servers would
/// be killed early. Servers started through [`Launcher::spawn`] are forked on the launcher's
/// thread, which ends only when the launcher is dropped: stop the servers before that.
#[derive(Debug)]
pub struct Launcher {
    runtime: tokio::runtime::Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Launcher {
    /// Starts the launcher thread.
    ///
    /// # Errors
    ///
    /// When the thread or its runtime cannot be created.
    pub fn new() -> std::io::Result<Launcher> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        // A current-thread runtime runs its tasks only on the thread inside `block_on`.
        let thread = std::thread::Builder::new()
            .name("server-launcher".to_owned())
            .spawn(move || {
                let _ = runtime.block_on(stopped);
            })?;
        Ok(Launcher {
            runtime: handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Runs `future` (e.g. [`start_postgres`](super::start_postgres)) on the launcher thread.
    /// The handle can be awaited from any runtime.
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime.spawn(future)
    }

    /// Runs `future` on the launcher thread and waits for its output.
    ///
    /// # Panics
    ///
    /// When `future` panics (the panic is passed on).
    pub async fn run<F>(&self, future: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Launcher::join(self.spawn(future)).await
    }

    /// Waits for a future started with [`spawn`](Self::spawn).
    ///
    /// # Panics
    ///
    /// When the future panicked (the panic is passed on), or when the launcher was dropped
    /// before it finished.
    pub async fn join<T>(handle: JoinHandle<T>) -> T {
        match handle.await {
            Ok(output) => output,
            Err(error) => match error.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(error) => panic!("the server launcher stopped first: {error}"),
            },
        }
    }
}

impl Drop for Launcher {
    /// Ends the thread; tasks still running are dropped (their guards stop their servers).
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
