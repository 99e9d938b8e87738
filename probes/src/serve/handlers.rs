//! The accept loops and the per-connection servers other than HTTP.

use super::http;
use super::run::Shared;
use crate::sockets::SctpListener;
use crate::spec::Check;
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

/// How long a connection may stay open; a probe needs milliseconds, this only bounds leaks.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);

/// Accepts TCP connections and serves each with the port's check. Connections live in this
/// task's [`JoinSet`], so aborting the loop at shutdown closes them too.
pub(crate) async fn accept_stream(
    listener: TcpListener,
    check: Check,
    port: u16,
    shared: Arc<Shared>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let shared = Arc::clone(&shared);
                    connections.spawn(async move {
                        let serve = serve_stream(stream, check, port, &shared);
                        let _ = tokio::time::timeout(CONNECTION_LIFETIME, serve).await;
                    });
                }
                Err(error) => {
                    tracing::debug!(%error, port, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next() => {}
        }
    }
}

async fn serve_stream(mut stream: TcpStream, check: Check, port: u16, shared: &Shared) {
    let result = match check {
        Check::Http => http::serve(&mut stream, port, shared)
            .await
            .map_err(|e| e.to_string()),
        Check::Websocket => serve_websocket(stream, shared)
            .await
            .map_err(|e| e.to_string()),
        _ => write_identity_line(&mut stream, shared)
            .await
            .map_err(|e| e.to_string()),
    };
    if let Err(error) = result {
        tracing::debug!(%error, port, %check, "connection ended with an error");
    }
}

async fn write_identity_line(stream: &mut TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream
        .write_all(format!("{}\n", shared.identity).as_bytes())
        .await?;
    stream.shutdown().await
}

/// Sends the identity as the first message, then echoes text and binary messages.
async fn serve_websocket(
    stream: TcpStream,
    shared: &Shared,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let mut socket = tokio_tungstenite::accept_async(stream).await?;
    socket.send(Message::text(shared.identity.clone())).await?;
    while let Some(message) = socket.next().await {
        match message? {
            message @ (Message::Text(_) | Message::Binary(_)) => socket.send(message).await?,
            Message::Close(_) => break,
            _ => {}
        }
    }
    Ok(())
}

/// Answers every datagram with the identity.
pub(crate) async fn answer_datagrams(socket: UdpSocket, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 2048];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((_, peer)) => {
                if let Err(error) = socket.send_to(shared.identity.as_bytes(), peer).await {
                    tracing::debug!(%error, %peer, "could not answer a datagram");
                }
            }
            Err(error) => tracing::debug!(%error, "receive failed"),
        }
    }
}

/// Accepts SCTP associations, writes the identity line to each and closes it.
pub(crate) async fn accept_sctp(listener: SctpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(stream) => {
                    let line = format!("{}\n", shared.identity);
                    connections.spawn(async move {
                        if let Err(error) = stream.write_all(line.as_bytes()).await {
                            tracing::debug!(%error, "could not write to an SCTP association");
                        }
                    });
                }
                Err(error) => {
                    tracing::debug!(%error, "SCTP accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next() => {}
        }
    }
}
