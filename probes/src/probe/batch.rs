//! Reading a batch of targets and probing them concurrently under one deadline each.

use super::outcome::{Checked, Failure};
use super::{checks, services};
use crate::spec::Check;
use crate::wire::{Outcome, ProbeResult, Target};
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tracing::Instrument;

/// How many probes run at once unless told otherwise.
pub const DEFAULT_CONCURRENCY: usize = 256;

/// Errors that keep a batch from running at all.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to read the targets")]
    Read(#[source] std::io::Error),
    #[error("failed to parse the targets as a JSON array of targets")]
    Parse(#[source] serde_json::Error),
    #[error("target {id:?} is invalid: {reason}")]
    Invalid { id: String, reason: String },
    #[error("failed to build the HTTP client")]
    HttpClient(#[source] reqwest::Error),
}

/// Reads a JSON array of [`Target`]s and checks each is runnable.
///
/// # Errors
///
/// [`Error::Read`], [`Error::Parse`] or [`Error::Invalid`] (zero timeout, bad DNS name).
pub fn read_targets(mut input: impl Read) -> Result<Vec<Target>, Error> {
    let mut text = String::new();
    input.read_to_string(&mut text).map_err(Error::Read)?;
    let targets: Vec<Target> = serde_json::from_str(&text).map_err(Error::Parse)?;
    for target in &targets {
        let invalid = |reason: String| Error::Invalid {
            id: target.id.clone(),
            reason,
        };
        if target.timeout_ms == 0 {
            return Err(invalid("timeout_ms must be positive".to_owned()));
        }
        match (&target.host, target.resolver) {
            (Some(host), Some(_)) => {
                hickory_proto::rr::Name::from_ascii(host)
                    .map_err(|e| invalid(format!("host {host:?} is not a DNS name: {e}")))?;
            }
            (Some(_), None) => return Err(invalid("host needs a resolver".to_owned())),
            (None, _) => {}
        }
        if let Some(name) = &target.dns_name {
            hickory_proto::rr::Name::from_ascii(name)
                .map_err(|e| invalid(format!("dns_name {name:?} is not a DNS name: {e}")))?;
        }
    }
    Ok(targets)
}

/// Puts what the resolution said before the check's detail.
fn prefix_detail(checked: Checked, resolved: Option<&str>) -> Checked {
    let Some(resolved) = resolved else {
        return checked;
    };
    let join = |detail: String| format!("{resolved}; {detail}");
    match checked {
        Ok(detail) => Ok(join(detail)),
        Err(failure) => Err(Failure::new(failure.outcome, join(failure.detail))),
    }
}

/// Probes targets; cheap to clone, one per process is enough.
#[derive(Debug, Clone)]
pub struct Prober {
    http: reqwest::Client,
}

impl Prober {
    /// # Errors
    ///
    /// [`Error::HttpClient`] when the HTTP client cannot be built.
    pub fn new() -> Result<Prober, Error> {
        let http = reqwest::Client::builder()
            .no_proxy()
            // Each probe must open its own connection: a pooled one would cross no edge.
            .pool_max_idle_per_host(0)
            .user_agent(concat!("netpol-probe/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(Error::HttpClient)?;
        Ok(Prober { http })
    }

    /// Probes one target: the whole check runs under the target's deadline.
    pub async fn probe(&self, target: &Target) -> ProbeResult {
        let span = tracing::debug_span!(
            "probe",
            id = %target.id,
            dst = %target.ip,
            port = target.port,
            protocol = %target.protocol,
            check = %target.check,
        );
        self.probe_in_span(target).instrument(span).await
    }

    async fn probe_in_span(&self, target: &Target) -> ProbeResult {
        let started_at_ms = crate::wire::unix_ms_now();
        let start = Instant::now();
        let deadline = Duration::from_millis(target.timeout_ms);
        let checked = match self.resolved(target, deadline).await {
            Ok((target, resolved)) => {
                let checked = match tokio::time::timeout(deadline, self.check(&target)).await {
                    Ok(checked) => checked,
                    Err(_) => Err(Failure::new(
                        Outcome::Timeout,
                        format!("no answer within {} ms", target.timeout_ms),
                    )),
                };
                prefix_detail(checked, resolved.as_deref())
            }
            Err(failure) => Err(failure),
        };
        // Whole microseconds: finer digits would be noise, and they print short.
        let elapsed_ms = start.elapsed().as_micros() as f64 / 1000.0;
        let (outcome, detail) = match checked {
            Ok(detail) => (Outcome::Connected, detail),
            Err(failure) => (failure.outcome, failure.detail),
        };
        tracing::debug!(%outcome, elapsed_ms, detail, "probed");
        ProbeResult {
            id: target.id.clone(),
            outcome,
            elapsed_ms,
            detail,
            started_at_ms: Some(started_at_ms),
        }
    }

    /// The target with its `host` resolved to the address to dial, and what the resolution
    /// said; the target itself when it has no `host`.
    async fn resolved(
        &self,
        target: &Target,
        deadline: Duration,
    ) -> Result<(Target, Option<String>), Failure> {
        let (Some(host), Some(resolver)) = (&target.host, target.resolver) else {
            return Ok((target.clone(), None));
        };
        let ip = super::resolve::resolve(host, resolver, deadline).await?;
        let said = format!("{host} resolved to {ip} via {resolver}");
        let dialled = Target {
            ip: std::net::IpAddr::V4(ip),
            host: None,
            resolver: None,
            ..target.clone()
        };
        Ok((dialled, Some(said)))
    }

    async fn check(&self, target: &Target) -> Checked {
        let transport = crate::serve::transport_of(target.check);
        if let Some(needs) = transport.filter(|needs| *needs != target.protocol) {
            return Err(Failure::new(
                Outcome::Unsupported,
                format!(
                    "check {} runs over {needs}, not {}",
                    target.check, target.protocol
                ),
            ));
        }
        match target.check {
            Check::Http => checks::http(&self.http, target).await,
            Check::Websocket => checks::websocket(target).await,
            Check::Tcp => checks::tcp(target).await,
            Check::Udp => checks::udp(target).await,
            Check::Sctp => checks::sctp(target).await,
            Check::Postgres => services::postgres(target).await,
            Check::Redis => services::redis(target).await,
            Check::Dns => services::dns(target).await,
        }
    }

    /// Probes every target with at most `concurrency` in flight, handing each result to `emit`
    /// in input order as soon as it and all before it are done.
    pub async fn run_batch(
        &self,
        targets: Vec<Target>,
        concurrency: usize,
        mut emit: impl FnMut(ProbeResult),
    ) {
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        let handles: Vec<_> = targets
            .into_iter()
            .map(|target| {
                let prober = self.clone();
                let permits = Arc::clone(&permits);
                let id = target.id.clone();
                let handle = tokio::spawn(async move {
                    let _permit = permits.acquire_owned().await;
                    prober.probe(&target).await
                });
                (id, handle)
            })
            .collect();
        for (id, handle) in handles {
            emit(handle.await.unwrap_or_else(|error| ProbeResult {
                id,
                outcome: Outcome::ProtocolError,
                elapsed_ms: 0.0,
                detail: format!("the probe crashed (a bug in netpol-probe): {error}"),
                started_at_ms: None,
            }));
        }
    }

    /// Probes every target and returns the results in input order.
    pub async fn probe_all(&self, targets: Vec<Target>, concurrency: usize) -> Vec<ProbeResult> {
        let mut results = Vec::with_capacity(targets.len());
        self.run_batch(targets, concurrency, |result| results.push(result))
            .await;
        results
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGET: &str =
        r#"{"id":"a","ip":"10.96.1.0","port":80,"protocol":"TCP","check":"tcp","timeout_ms":100"#;

    #[test]
    fn a_target_without_host_reads_as_before_and_a_host_needs_a_resolver() {
        let plain = read_targets(format!("[{TARGET}}}]").as_bytes()).unwrap();
        assert_eq!(plain[0].host, None);
        let named =
            format!(r#"[{TARGET},"host":"web.app.svc.cluster.local","resolver":"10.96.0.10"}}]"#);
        let named = read_targets(named.as_bytes()).unwrap();
        assert_eq!(named[0].resolver, Some("10.96.0.10".parse().unwrap()));
        let orphan = format!(r#"[{TARGET},"host":"web.app.svc.cluster.local"}}]"#);
        let error = read_targets(orphan.as_bytes()).unwrap_err();
        assert!(
            error.to_string().contains("host needs a resolver"),
            "{error}"
        );
    }
}
