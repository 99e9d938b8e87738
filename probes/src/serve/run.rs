//! Binding every listener, reporting readiness, and serving until shutdown.

use super::config::{self, ServeConfig};
use super::handlers;
use crate::sockets::{self, SctpListener, Transport};
use crate::spec::{Check, PortSpec};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinSet;

/// Errors of serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid serve configuration")]
    Config(#[from] config::Error),
    #[error("failed to bind {check} port {addr}: is another process listening there?")]
    Bind {
        addr: SocketAddr,
        check: Check,
        #[source]
        source: io::Error,
    },
    #[error("failed to write the ready file {path}")]
    ReadyFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What every server of the pod shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub identity: String,
    /// Set once every listener is bound; `/healthz` answers 503 before.
    pub ready: AtomicBool,
}

/// One bound socket, with the check it serves.
#[derive(Debug)]
enum Listener {
    Stream {
        listener: TcpListener,
        check: Check,
        port: u16,
    },
    Datagram(UdpSocket),
    Sctp(SctpListener),
}

/// A pod's servers, bound and ready: build with [`Server::bind`], then [`Server::run`].
#[derive(Debug)]
pub struct Server {
    shared: Arc<Shared>,
    listeners: Vec<Listener>,
    addrs: Vec<SocketAddr>,
    ready_file: Option<PathBuf>,
}

impl Server {
    /// Binds every agent-served port on every address, then marks the pod ready: `/healthz`
    /// answers 200 and the ready file is written. Must be called inside a tokio runtime.
    ///
    /// SCTP ports are skipped with a warning when the kernel has no SCTP, and so is `::` when
    /// the default addresses are used on a host without IPv6.
    ///
    /// # Errors
    ///
    /// [`Error`] when the configuration is invalid, a port cannot be bound or the ready file
    /// cannot be written.
    pub fn bind(config: &ServeConfig) -> Result<Server, Error> {
        config.validate()?;
        let mut listeners = Vec::new();
        let mut addrs = Vec::new();
        for spec in config
            .ports
            .iter()
            .filter(|p| p.effective_check().served_by_agent())
        {
            for (ip, optional) in config.bind_addrs() {
                match bind_one(spec, ip) {
                    Ok(Some(listener)) => {
                        addrs.push(SocketAddr::new(ip, spec.port));
                        listeners.push(listener);
                    }
                    Ok(None) => break,
                    Err(source) if optional && is_missing_family(&source) => {
                        tracing::warn!(%ip, port = spec.port, error = %source, "skipping an address");
                    }
                    Err(source) => {
                        let addr = SocketAddr::new(ip, spec.port);
                        return Err(Error::Bind {
                            addr,
                            check: spec.effective_check(),
                            source,
                        });
                    }
                }
            }
        }
        let shared = Arc::new(Shared {
            identity: config.identity.clone(),
            ready: false.into(),
        });
        shared.ready.store(true, Ordering::SeqCst);
        if let Some(path) = &config.ready_file {
            write_ready_file(path, &config.identity)?;
        }
        tracing::info!(identity = %config.identity, listeners = addrs.len(), "ready");
        Ok(Server {
            shared,
            listeners,
            addrs,
            ready_file: config.ready_file.clone(),
        })
    }

    /// The addresses bound, one per listener.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Serves until `shutdown` completes, then stops every server and removes the ready file.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let mut tasks = JoinSet::new();
        for listener in self.listeners {
            let shared = Arc::clone(&self.shared);
            match listener {
                Listener::Stream {
                    listener,
                    check,
                    port,
                } => {
                    tasks.spawn(handlers::accept_stream(listener, check, port, shared));
                }
                Listener::Datagram(socket) => {
                    tasks.spawn(handlers::answer_datagrams(socket, shared));
                }
                Listener::Sctp(listener) => {
                    tasks.spawn(handlers::accept_sctp(listener, shared));
                }
            }
        }
        shutdown.await;
        self.shared.ready.store(false, Ordering::SeqCst);
        tasks.shutdown().await;
        if let Some(path) = &self.ready_file {
            if let Err(error) = std::fs::remove_file(path) {
                tracing::debug!(path = %path.display(), %error, "could not remove the ready file");
            }
        }
        tracing::info!("stopped");
    }
}

/// Binds one port on one address; `Ok(None)` when the kernel lacks the port's transport.
fn bind_one(spec: &PortSpec, ip: IpAddr) -> io::Result<Option<Listener>> {
    let addr = SocketAddr::new(ip, spec.port);
    let check = spec.effective_check();
    Ok(Some(match check {
        Check::Udp => {
            let socket = std::net::UdpSocket::from(sockets::bind(Transport::Udp, addr)?);
            Listener::Datagram(UdpSocket::from_std(socket)?)
        }
        Check::Sctp => match SctpListener::bind(addr) {
            Ok(listener) => Listener::Sctp(listener),
            Err(error) if sockets::is_unsupported(&error) => {
                tracing::warn!(
                    port = spec.port,
                    "skipping SCTP port: the kernel has no SCTP"
                );
                return Ok(None);
            }
            Err(error) => return Err(error),
        },
        _ => {
            let listener = std::net::TcpListener::from(sockets::bind(Transport::Tcp, addr)?);
            Listener::Stream {
                listener: TcpListener::from_std(listener)?,
                check,
                port: spec.port,
            }
        }
    }))
}

/// Whether binding failed because the host has no such address family (no IPv6).
fn is_missing_family(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL)
    )
}

/// Writes the ready file atomically, so a watcher never reads it half-written.
fn write_ready_file(path: &std::path::Path, identity: &str) -> Result<(), Error> {
    let fail = |source| Error::ReadyFile {
        path: path.to_owned(),
        source,
    };
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    std::fs::write(&partial, format!("{identity}\n")).map_err(fail)?;
    std::fs::rename(&partial, path).map_err(fail)
}
