//! The checks of ports the agent serves: HTTP, WebSocket and the plain transports.

use super::outcome::{Checked, Failure};
use crate::sockets::{self, SctpStream};
use crate::wire::{IdentityBody, Outcome, Target};
use futures_util::{SinkExt, StreamExt};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio_tungstenite::tungstenite::Message;

/// The longest identity line read from a server.
const MAX_LINE: usize = 512;

pub(crate) fn addr(target: &Target) -> SocketAddr {
    SocketAddr::new(target.ip, target.port)
}

pub(crate) async fn connect_tcp(target: &Target) -> Result<TcpStream, Failure> {
    let stream = TcpStream::connect(addr(target))
        .await
        .map_err(|e| Failure::io(&e))?;
    // Probes exchange a few small messages; waiting to coalesce them only adds latency.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Compares the identity a server sent with the one the target expects.
pub(crate) fn verify_identity(target: &Target, seen: &str) -> Checked {
    match &target.expect_identity {
        Some(expected) if expected != seen => Err(Failure::new(
            Outcome::WrongIdentity,
            format!("answered by {seen:?}, expected {expected:?}"),
        )),
        _ => Ok(format!("answered by {seen:?}")),
    }
}

/// `GET /` must answer 200, and name the expected pod when one is given.
pub(crate) async fn http(client: &reqwest::Client, target: &Target) -> Checked {
    let url = format!("http://{}/", addr(target));
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| Failure::from_error(&e))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| Failure::from_error(&e))?;
    if status != reqwest::StatusCode::OK {
        return Err(Failure::protocol(format!(
            "answered status {status}, expected 200"
        )));
    }
    if target.expect_identity.is_none() {
        return Ok(format!("status {status}"));
    }
    let identity: IdentityBody = serde_json::from_slice(&body)
        .map_err(|e| Failure::protocol(format!("the body names no pod: {e}")))?;
    verify_identity(target, &identity.pod)
}

/// Upgrade, read the identity as the first message, then one echo round trip.
pub(crate) async fn websocket(target: &Target) -> Checked {
    let stream = connect_tcp(target).await?;
    let url = format!("ws://{}/", addr(target));
    let (mut socket, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .map_err(|e| Failure::from_error(&e))?;
    let identity = match next_text(&mut socket).await? {
        Some(text) => text,
        None => return Err(Failure::protocol("closed before sending an identity")),
    };
    let verified = verify_identity(target, &identity)?;
    let nonce = format!("netpol-probe echo {}", target.id);
    socket
        .send(Message::text(nonce.clone()))
        .await
        .map_err(|e| Failure::from_error(&e))?;
    match next_text(&mut socket).await? {
        Some(echo) if echo == nonce => {}
        Some(other) => {
            return Err(Failure::protocol(format!(
                "echoed {other:?}, sent {nonce:?}"
            )));
        }
        None => return Err(Failure::protocol("closed instead of echoing")),
    }
    // The verdict is in; a failing close handshake does not change it.
    let _ = socket.close(None).await;
    Ok(verified)
}

async fn next_text<S>(
    socket: &mut tokio_tungstenite::WebSocketStream<S>,
) -> Result<Option<String>, Failure>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    while let Some(message) = socket.next().await {
        match message.map_err(|e| Failure::from_error(&e))? {
            Message::Text(text) => return Ok(Some(text.as_str().to_owned())),
            Message::Binary(data) => return Ok(Some(String::from_utf8_lossy(&data).into_owned())),
            Message::Close(_) => return Ok(None),
            _ => {}
        }
    }
    Ok(None)
}

/// Connect; read the identity line only when one is expected (other servers may not talk).
pub(crate) async fn tcp(target: &Target) -> Checked {
    let mut stream = connect_tcp(target).await?;
    if target.expect_identity.is_none() {
        return Ok("connected".to_owned());
    }
    let mut line = Vec::new();
    let mut chunk = [0u8; MAX_LINE];
    while !line.contains(&b'\n') && line.len() < MAX_LINE {
        let n = stream.read(&mut chunk).await.map_err(|e| Failure::io(&e))?;
        if n == 0 {
            break;
        }
        line.extend_from_slice(&chunk[..n]);
    }
    identity_from_line(target, &line)
}

fn identity_from_line(target: &Target, line: &[u8]) -> Checked {
    let text = String::from_utf8_lossy(line);
    let identity = text.lines().next().unwrap_or_default().trim();
    if identity.is_empty() {
        return Err(Failure::protocol("closed without sending an identity"));
    }
    verify_identity(target, identity)
}

/// One datagram out, one back; an ICMP port unreachable surfaces as `ECONNREFUSED` on the
/// connected socket.
pub(crate) async fn udp(target: &Target) -> Checked {
    let local: SocketAddr = match target.ip {
        std::net::IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        std::net::IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await.map_err(|e| Failure::io(&e))?;
    socket
        .connect(addr(target))
        .await
        .map_err(|e| Failure::io(&e))?;
    let request = format!("netpol-probe {}\n", target.id);
    socket
        .send(request.as_bytes())
        .await
        .map_err(|e| Failure::io(&e))?;
    let mut buf = vec![0u8; 2048];
    let n = socket.recv(&mut buf).await.map_err(|e| Failure::io(&e))?;
    if target.expect_identity.is_none() {
        return Ok(format!("{n} bytes back"));
    }
    identity_from_line(target, &buf[..n])
}

/// Connect over one-to-one SCTP; read the identity line when one is expected.
pub(crate) async fn sctp(target: &Target) -> Checked {
    let stream = SctpStream::connect(addr(target)).await.map_err(|e| {
        if sockets::is_unsupported(&e) {
            Failure::new(Outcome::Unsupported, format!("the kernel has no SCTP: {e}"))
        } else {
            Failure::io(&e)
        }
    })?;
    if target.expect_identity.is_none() {
        return Ok("connected".to_owned());
    }
    let mut buf = [0u8; MAX_LINE];
    let n = stream.read(&mut buf).await.map_err(|e| Failure::io(&e))?;
    identity_from_line(target, &buf[..n])
}
