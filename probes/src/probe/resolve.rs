//! Resolving a target's `host` the way an application in the pod would: one UDP `A` query to
//! the cluster DNS, no retry, no search domains, no cache.

use super::outcome::Failure;
use crate::wire::Outcome;
use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::net::UdpSocket;

/// The DNS port resolvers answer on.
pub const DNS_PORT: u16 = 53;

/// The first `A` address `resolver` gives for `host`, within `deadline`.
///
/// # Errors
/// A [`Outcome::DnsFailure`] failure: no answer in time, an ICMP error, an error code
/// (NXDOMAIN, SERVFAIL...), a malformed answer, or an answer without an address. The detail
/// says which, and names the resolver.
pub(crate) async fn resolve(
    host: &str,
    resolver: IpAddr,
    deadline: Duration,
) -> Result<Ipv4Addr, Failure> {
    let failed =
        |why: String| Failure::new(Outcome::DnsFailure, format!("{host} via {resolver}: {why}"));
    let name = Name::from_ascii(fqdn(host)).map_err(|e| failed(format!("not a DNS name: {e}")))?;
    let mut query = Message::query();
    query.add_query(Query::query(name, RecordType::A));
    query.metadata.recursion_desired = true;
    let request = query.to_vec().map_err(|e| failed(e.to_string()))?;
    let exchange = exchange(SocketAddr::new(resolver, DNS_PORT), &request);
    let response = match tokio::time::timeout(deadline, exchange).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => return Err(failed(error.to_string())),
        Err(_) => {
            return Err(failed(format!(
                "no answer within {} ms",
                deadline.as_millis()
            )));
        }
    };
    let answer =
        Message::from_vec(&response).map_err(|e| failed(format!("malformed answer: {e}")))?;
    if answer.metadata.id != query.metadata.id
        || answer.metadata.message_type != MessageType::Response
    {
        return Err(failed("the answer does not match the query".to_owned()));
    }
    if answer.metadata.response_code != ResponseCode::NoError {
        let code = format!("{:?}", answer.metadata.response_code).to_ascii_uppercase();
        return Err(failed(format!("answered {code}")));
    }
    answer
        .answers
        .iter()
        .find_map(|record| match &record.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .ok_or_else(|| failed("the answer has no A record".to_owned()))
}

/// The name as an absolute name: a resolver is asked exactly this name, without search
/// domains.
fn fqdn(host: &str) -> String {
    if host.ends_with('.') {
        host.to_owned()
    } else {
        format!("{host}.")
    }
}

async fn exchange(server: SocketAddr, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(server).await?;
    socket.send(request).await?;
    let mut buf = vec![0u8; 4096];
    let n = socket.recv(&mut buf).await?;
    buf.truncate(n);
    Ok(buf)
}
