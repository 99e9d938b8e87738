//! Socket creation below what tokio offers: listeners that bind IPv4 and IPv6 wildcards side by
//! side (`IPV6_V6ONLY`), and one-to-one SCTP sockets, which tokio does not know at all.
//!
//! Every socket is created non-blocking and close-on-exec, so it can be handed to tokio
//! ([`tokio::io::unix::AsyncFd`] for SCTP) or to a child process never.

use nix::sys::socket::{
    self, AddressFamily, Backlog, SockFlag, SockProtocol, SockType, SockaddrStorage, sockopt,
};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// The transport of a socket this module creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Udp,
    /// One-to-one (`SOCK_STREAM`) SCTP.
    Sctp,
}

impl Transport {
    fn kind(self) -> (SockType, SockProtocol) {
        match self {
            Transport::Tcp => (SockType::Stream, SockProtocol::Tcp),
            Transport::Udp => (SockType::Datagram, SockProtocol::Udp),
            Transport::Sctp => (SockType::Stream, SockProtocol::Sctp),
        }
    }
}

/// Creates an unbound, non-blocking socket of the address's family.
///
/// # Errors
///
/// The OS error; for SCTP on a kernel without it, see [`is_unsupported`].
pub fn new_socket(transport: Transport, family_of: &SocketAddr) -> io::Result<OwnedFd> {
    let family = match family_of {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let (ty, protocol) = transport.kind();
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    Ok(socket::socket(family, ty, flags, protocol)?)
}

/// Binds a socket to `addr` and, for stream transports, listens on it.
///
/// IPv6 sockets are made IPv6-only so that `0.0.0.0:p` and `[::]:p` can be bound together.
///
/// # Errors
///
/// The OS error of the first failing call.
pub fn bind(transport: Transport, addr: SocketAddr) -> io::Result<OwnedFd> {
    let fd = new_socket(transport, &addr)?;
    if addr.is_ipv6() {
        socket::setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    }
    if transport != Transport::Udp {
        socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    }
    socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    if transport != Transport::Udp {
        socket::listen(&fd, Backlog::MAXCONN)?;
    }
    Ok(fd)
}

/// Whether a socket error means the kernel does not offer the transport (no SCTP module).
pub fn is_unsupported(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EPROTONOSUPPORT | libc::ESOCKTNOSUPPORT | libc::EPFNOSUPPORT)
    )
}

/// Starts a non-blocking connect; `Ok(false)` means it is in progress (`EINPROGRESS`).
///
/// # Errors
///
/// An immediate failure, such as `ECONNREFUSED` or `ENETUNREACH`.
pub fn start_connect(fd: &OwnedFd, addr: SocketAddr) -> io::Result<bool> {
    match socket::connect(fd.as_raw_fd(), &SockaddrStorage::from(addr)) {
        Ok(()) => Ok(true),
        Err(nix::errno::Errno::EINPROGRESS) => Ok(false),
        Err(errno) => Err(errno.into()),
    }
}

/// The pending error of a socket (`SO_ERROR`), as a connect that completed reports it.
///
/// # Errors
///
/// The connect's error, or the error of reading it.
pub fn take_error(fd: &OwnedFd) -> io::Result<()> {
    match socket::getsockopt(fd, sockopt::SocketError)? {
        0 => Ok(()),
        code => Err(io::Error::from_raw_os_error(code)),
    }
}

/// Hands a socket to tokio's reactor.
fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an `OwnedFd` keeps its descriptor open and unchanged until it is dropped, and the
    // `AsyncFd` owns it for all of its life.
    unsafe { AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)
}

/// A listening one-to-one SCTP socket driven by tokio.
#[derive(Debug)]
pub struct SctpListener {
    fd: AsyncFd<OwnedFd>,
}

impl SctpListener {
    /// Binds and listens; must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// The OS error; [`is_unsupported`] tells a kernel without SCTP.
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        let fd = bind(Transport::Sctp, addr)?;
        Ok(SctpListener { fd: register(fd)? })
    }

    /// Waits for the next association.
    ///
    /// # Errors
    ///
    /// The error of `accept4`.
    pub async fn accept(&self) -> io::Result<SctpStream> {
        let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
        let raw = self
            .fd
            .async_io(Interest::READABLE, |fd| {
                Ok(socket::accept4(fd.as_raw_fd(), flags)?)
            })
            .await?;
        // SAFETY: accept4 returned a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(SctpStream { fd: register(fd)? })
    }
}

/// A connected one-to-one SCTP socket driven by tokio.
#[derive(Debug)]
pub struct SctpStream {
    fd: AsyncFd<OwnedFd>,
}

impl SctpStream {
    /// Connects to `addr`; must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// The OS error; [`is_unsupported`] tells a kernel without SCTP.
    pub async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let fd = new_socket(Transport::Sctp, &addr)?;
        let done = start_connect(&fd, addr)?;
        let fd = register(fd)?;
        if !done {
            fd.async_io(Interest::WRITABLE, take_error).await?;
        }
        Ok(SctpStream { fd })
    }

    /// Reads what has arrived; 0 means the peer shut down.
    ///
    /// # Errors
    ///
    /// The error of `recv`.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd
            .async_io(Interest::READABLE, |fd| {
                Ok(socket::recv(
                    fd.as_raw_fd(),
                    buf,
                    socket::MsgFlags::empty(),
                )?)
            })
            .await
    }

    /// Writes all of `buf`.
    ///
    /// # Errors
    ///
    /// The error of `send`.
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let sent = self
                .fd
                .async_io(Interest::WRITABLE, |fd| {
                    Ok(socket::send(
                        fd.as_raw_fd(),
                        buf,
                        socket::MsgFlags::MSG_NOSIGNAL,
                    )?)
                })
                .await?;
            buf = &buf[sent..];
        }
        Ok(())
    }
}
