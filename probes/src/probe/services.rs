//! The checks of ports real servers serve: Postgres, Redis and DNS.

use super::checks::{addr, connect_tcp};
use super::outcome::{Checked, Failure, chain};
use crate::wire::{Outcome, Target};
use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use std::future::Future;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;

/// The name a `dns` check asks for when the target names none.
pub const DEFAULT_DNS_NAME: &str = "kubernetes.default.svc.cluster.local.";

/// Runs a client request beside the connection driver that serves it, so both end together
/// when the deadline drops this future (no task outlives the probe).
async fn with_driver<T, E, D>(request: impl Future<Output = T>, driver: D) -> Result<T, Failure>
where
    D: Future<Output = Result<(), E>>,
    E: std::error::Error + 'static,
{
    tokio::pin!(request, driver);
    tokio::select! {
        result = &mut request => Ok(result),
        ended = &mut driver => match ended {
            Err(error) => Err(Failure::from_error(&error)),
            Ok(()) => Err(Failure::protocol("the server closed the connection")),
        },
    }
}

/// Connects as user `postgres` to database `postgres` and runs `SELECT 1`. An error the server
/// sends (authentication, missing database, starting up) still proves it was reached.
pub(crate) async fn postgres(target: &Target) -> Checked {
    match postgres_select_one(target).await? {
        Ok(()) => Ok("SELECT 1 answered".to_owned()),
        Err(error) => match error.as_db_error() {
            Some(db) => Ok(format!(
                "server answered {}: {}",
                db.code().code(),
                db.message()
            )),
            None => Err(Failure::from_error(&error)),
        },
    }
}

/// Whether the Postgres server at `addr` answers `SELECT 1` (not just that it was reached).
///
/// # Errors
///
/// What went wrong, as text.
pub async fn postgres_ready(addr: SocketAddr) -> Result<(), String> {
    let target = Target {
        id: "ready".to_owned(),
        ip: addr.ip(),
        port: addr.port(),
        protocol: crate::spec::Protocol::Tcp,
        check: crate::spec::Check::Postgres,
        expect_identity: None,
        timeout_ms: 0,
        dns_name: None,
        host: None,
        resolver: None,
    };
    match postgres_select_one(&target).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(chain(&error)),
        Err(failure) => Err(failure.detail),
    }
}

/// The outer error is the connection failing; the inner one what the server answered.
async fn postgres_select_one(
    target: &Target,
) -> Result<Result<(), tokio_postgres::Error>, Failure> {
    let stream = connect_tcp(target).await?;
    let mut config = tokio_postgres::Config::new();
    config
        .user("postgres")
        .dbname("postgres")
        .application_name("netpol-probe");
    let (client, connection) = match config.connect_raw(stream, tokio_postgres::NoTls).await {
        Ok(pair) => pair,
        Err(error) => return Ok(Err(error)),
    };
    tokio::pin!(connection);
    let answered = with_driver(client.simple_query("SELECT 1"), connection.as_mut()).await?;
    // Dropping the client sends Terminate; driving the connection to its end delivers it, so
    // the server logs a clean disconnect rather than an unexpected EOF.
    drop(client);
    let _ = connection.await;
    Ok(answered.map(drop))
}

/// `PING` must answer `PONG`.
pub(crate) async fn redis(target: &Target) -> Checked {
    let stream = connect_tcp(target).await?;
    let info = redis::RedisConnectionInfo::default();
    // The deadline of the whole check bounds every wait; the crate's own 500 ms would not.
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    let (mut connection, driver) =
        redis::aio::MultiplexedConnection::new_with_config(&info, stream, config)
            .await
            .map_err(|e| Failure::from_error(&e))?;
    let driver = async move {
        driver.await;
        Ok::<(), std::io::Error>(())
    };
    let command = redis::cmd("PING");
    let ping = command.query_async::<String>(&mut connection);
    match with_driver(ping, driver).await? {
        Ok(pong) if pong == "PONG" => Ok("PONG".to_owned()),
        Ok(other) => Err(Failure::protocol(format!("PING answered {other:?}"))),
        Err(error) => Err(Failure::from_error(&error)),
    }
}

/// Sends one `A` query to exactly this server over exactly the target's transport, with no
/// retry: a NOERROR or NXDOMAIN answer proves the server was reached.
pub(crate) async fn dns(target: &Target) -> Checked {
    let name = target.dns_name.as_deref().unwrap_or(DEFAULT_DNS_NAME);
    let name = Name::from_ascii(name)
        .map_err(|e| Failure::protocol(format!("invalid dns_name {name:?}: {e}")))?;
    let mut query = Message::query();
    query.add_query(Query::query(name, RecordType::A));
    query.metadata.recursion_desired = true;
    let request = query
        .to_vec()
        .map_err(|e| Failure::protocol(e.to_string()))?;
    let response = match target.protocol {
        crate::spec::Protocol::Udp => dns_over_udp(target, &request).await?,
        crate::spec::Protocol::Tcp => dns_over_tcp(target, &request).await?,
        crate::spec::Protocol::Sctp => {
            return Err(Failure::new(
                Outcome::Unsupported,
                "DNS over SCTP is not a thing",
            ));
        }
    };
    let answer = Message::from_vec(&response)
        .map_err(|e| Failure::protocol(format!("malformed DNS answer: {e}")))?;
    if answer.metadata.id != query.metadata.id
        || answer.metadata.message_type != MessageType::Response
    {
        return Err(Failure::protocol("the DNS answer does not match the query"));
    }
    // The mnemonic as RFC 1035 and dig spell it: NOERROR, NXDOMAIN, REFUSED.
    let code = format!("{:?}", answer.metadata.response_code).to_ascii_uppercase();
    match answer.metadata.response_code {
        ResponseCode::NoError | ResponseCode::NXDomain => {
            Ok(format!("{code}, {} answers", answer.answers.len()))
        }
        _ => Err(Failure::protocol(format!("DNS server answered {code}"))),
    }
}

async fn dns_over_udp(target: &Target, request: &[u8]) -> Result<Vec<u8>, Failure> {
    let local: SocketAddr = match target.ip {
        std::net::IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        std::net::IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await.map_err(|e| Failure::io(&e))?;
    socket
        .connect(addr(target))
        .await
        .map_err(|e| Failure::io(&e))?;
    socket.send(request).await.map_err(|e| Failure::io(&e))?;
    let mut buf = vec![0u8; 4096];
    let n = socket.recv(&mut buf).await.map_err(|e| Failure::io(&e))?;
    buf.truncate(n);
    Ok(buf)
}

/// DNS over TCP frames each message with its length as two big-endian bytes (RFC 1035 4.2.2).
async fn dns_over_tcp(target: &Target, request: &[u8]) -> Result<Vec<u8>, Failure> {
    let mut stream = connect_tcp(target).await?;
    let length = u16::try_from(request.len()).map_err(|_| Failure::protocol("query too long"))?;
    let mut framed = length.to_be_bytes().to_vec();
    framed.extend_from_slice(request);
    stream
        .write_all(&framed)
        .await
        .map_err(|e| Failure::io(&e))?;
    let eof = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Failure::protocol("closed before a full DNS answer"),
        _ => Failure::io(&e),
    };
    let length = stream.read_u16().await.map_err(eof)?;
    let mut buf = vec![0u8; usize::from(length)];
    stream.read_exact(&mut buf).await.map_err(eof)?;
    Ok(buf)
}
