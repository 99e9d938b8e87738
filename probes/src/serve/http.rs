//! A deliberately small HTTP/1.1 server: one request per connection, `Connection: close`.
//!
//! Anything that does not start like an HTTP request line gets a 400 at once, so that a client
//! of another protocol (Postgres, Redis) sees a protocol error rather than a silent server.

use super::run::Shared;
use crate::wire::IdentityBody;
use std::io;
use std::sync::atomic::Ordering;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest request head read; a probe's is a few hundred bytes.
const MAX_HEAD: usize = 8192;

/// Reads one request and answers it.
pub(crate) async fn serve(stream: &mut TcpStream, port: u16, shared: &Shared) -> io::Result<()> {
    let response = match read_head(stream).await? {
        Some(head) => respond(&head, port, shared),
        None => reply(400, "text/plain", "bad request\n"),
    };
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// Reads up to the blank line ending the head; `None` when the bytes are not HTTP.
async fn read_head(stream: &mut TcpStream) -> io::Result<Option<String>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        if !buf[0].is_ascii_uppercase() || buf.len() > MAX_HEAD {
            return Ok(None);
        }
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(String::from_utf8(buf[..end].to_vec()).ok());
        }
    }
}

fn respond(head: &str, port: u16, shared: &Shared) -> String {
    let mut words = head.lines().next().unwrap_or_default().split(' ');
    let (method, path) = (
        words.next().unwrap_or_default(),
        words.next().unwrap_or_default(),
    );
    if !words.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return reply(400, "text/plain", "bad request\n");
    }
    if method != "GET" && method != "HEAD" {
        return reply(405, "text/plain", "method not allowed\n");
    }
    if path == "/healthz" {
        return if shared.ready.load(Ordering::SeqCst) {
            reply(200, "text/plain", "ok\n")
        } else {
            reply(503, "text/plain", "not ready\n")
        };
    }
    let body = IdentityBody {
        pod: shared.identity.clone(),
        port,
    };
    let body = serde_json::to_string(&body).unwrap_or_default();
    reply(200, "application/json", &body)
}

fn reply(status: u16, content_type: &str, body: &str) -> String {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    )
}
