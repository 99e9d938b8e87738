//! Probing from inside a pod: one exec of `netpol-probe probe` per source pod per call, the
//! batch of targets on its stdin, one JSON result per line on its stdout.
//!
//! The exec itself sits behind [`ExecTransport`] so that the batch encoding, the output
//! parsing and the error mapping are tested without a cluster; [`KubeExec`] is the real
//! transport (a WebSocket through the API server, kube's `ws` feature).

use super::error::ExecError;
use super::manifests::{AGENT_BINARY, AGENT_CONTAINER};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use netpol_probes::wire::{ProbeResult, Target};
use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The command exec'd in the source pod's agent container.
pub const PROBE_COMMAND: [&str; 2] = [AGENT_BINARY, "probe"];

/// How many probes `netpol-probe probe` runs at once by default; sizes the batch deadline.
const AGENT_CONCURRENCY: usize = 256;

/// Where to exec and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub command: Vec<String>,
    pub stdin: Vec<u8>,
}

/// What an exec produced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// `None` on success, else what the API server's status said (e.g. the exit code).
    pub failure: Option<String>,
}

/// Runs a command in a container with stdin, collecting stdout and stderr.
pub trait ExecTransport: Send + Sync + 'static {
    /// Runs `request` to completion.
    ///
    /// # Errors
    /// [`ExecError::Start`] or [`ExecError::Stream`] when the command could not run; a
    /// command that ran and failed is an [`ExecOutput`] with a `failure`.
    fn exec(
        &self,
        request: ExecRequest,
    ) -> impl Future<Output = Result<ExecOutput, ExecError>> + Send;
}

/// The real transport: `Api::<Pod>::exec` over a WebSocket.
#[derive(Clone)]
pub struct KubeExec {
    client: kube::Client,
}

impl KubeExec {
    pub fn new(client: kube::Client) -> Self {
        KubeExec { client }
    }
}

/// The attach parameters of a probe exec: stdin for the batch, stdout for the results,
/// stderr for the diagnostics, no TTY (it would mangle the JSON lines).
pub fn attach_params(container: &str) -> AttachParams {
    AttachParams {
        container: Some(container.to_owned()),
        stdin: true,
        stdout: true,
        stderr: true,
        tty: false,
        max_stdin_buf_size: Some(1 << 20),
        max_stdout_buf_size: Some(1 << 20),
        max_stderr_buf_size: Some(1 << 16),
    }
}

impl ExecTransport for KubeExec {
    async fn exec(&self, request: ExecRequest) -> Result<ExecOutput, ExecError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &request.namespace);
        let mut process = api
            .exec(
                &request.pod,
                &request.command,
                &attach_params(&request.container),
            )
            .await
            .map_err(ExecError::Start)?;
        let mut stdin = process.stdin().ok_or_else(|| missing_stream("stdin"))?;
        let mut stdout = process.stdout().ok_or_else(|| missing_stream("stdout"))?;
        let mut stderr = process.stderr().ok_or_else(|| missing_stream("stderr"))?;
        let status = process.take_status();
        // Write, then close stdin (the agent reads to end of file) while draining both
        // outputs, so that no side waits on a full pipe.
        let write = async {
            stdin.write_all(&request.stdin).await?;
            stdin.shutdown().await
        };
        let mut out = Vec::new();
        let mut err = Vec::new();
        let (written, read_out, read_err) = tokio::join!(
            write,
            stdout.read_to_end(&mut out),
            stderr.read_to_end(&mut err)
        );
        written
            .and(read_out)
            .and(read_err)
            .map_err(ExecError::Stream)?;
        let status = match status {
            Some(status) => status.await,
            None => None,
        };
        process
            .join()
            .await
            .map_err(|e| ExecError::Stream(std::io::Error::other(e)))?;
        let failure = status
            .filter(|s| s.status.as_deref() != Some("Success"))
            .map(|s| {
                let code = s
                    .details
                    .and_then(|d| d.causes)
                    .into_iter()
                    .flatten()
                    .find(|c| c.reason.as_deref() == Some("ExitCode"))
                    .and_then(|c| c.message);
                match code {
                    Some(code) => format!("exit code {code}"),
                    None => s.message.unwrap_or_else(|| "failure".to_owned()),
                }
            });
        Ok(ExecOutput {
            stdout: out,
            stderr: err,
            failure,
        })
    }
}

fn missing_stream(name: &str) -> ExecError {
    ExecError::Stream(std::io::Error::other(format!(
        "the exec has no {name} stream"
    )))
}

/// The exec request of one probe batch from `pod`.
///
/// # Errors
/// [`ExecError::Encode`] when the targets cannot be written as JSON.
pub fn batch_request(
    namespace: &str,
    pod: &str,
    targets: &[Target],
) -> Result<ExecRequest, ExecError> {
    let stdin = serde_json::to_vec(targets).map_err(ExecError::Encode)?;
    Ok(ExecRequest {
        namespace: namespace.to_owned(),
        pod: pod.to_owned(),
        container: AGENT_CONTAINER.to_owned(),
        command: PROBE_COMMAND.map(str::to_owned).into(),
        stdin,
    })
}

/// How long a batch may take: its probes run `AGENT_CONCURRENCY` at a time, each within its
/// own timeout, plus `margin` for the exec round trip.
pub fn batch_deadline(targets: &[Target], margin: Duration) -> Duration {
    let longest = targets.iter().map(|t| t.timeout_ms).max().unwrap_or(0);
    let waves = targets.len().div_ceil(AGENT_CONCURRENCY) as u64;
    Duration::from_millis(longest.saturating_mul(waves)) + margin
}

/// The results in `output`, one per target.
///
/// # Errors
/// [`ExecError::Failed`] when the command failed, [`ExecError::Parse`] for a line that is
/// not a result, [`ExecError::Missing`] when some target has no result.
pub fn parse_results(
    targets: &[Target],
    output: &ExecOutput,
) -> Result<Vec<ProbeResult>, ExecError> {
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if let Some(status) = &output.failure {
        return Err(ExecError::Failed {
            status: status.clone(),
            stderr,
        });
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut results = Vec::with_capacity(targets.len());
    for (index, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let result: ProbeResult =
            serde_json::from_str(line).map_err(|source| ExecError::Parse {
                line: index + 1,
                text: line.chars().take(200).collect(),
                source,
            })?;
        results.push(result);
    }
    let answered: BTreeSet<&str> = results.iter().map(|r| r.id.as_str()).collect();
    let missing: Vec<&str> = targets
        .iter()
        .map(|t| t.id.as_str())
        .filter(|id| !answered.contains(id))
        .collect();
    if let Some(first) = missing.first() {
        return Err(ExecError::Missing {
            missing: missing.len(),
            total: targets.len(),
            first: (*first).to_owned(),
            stderr,
        });
    }
    Ok(results)
}

/// Runs one batch through `transport` within [`batch_deadline`].
///
/// # Errors
/// Any [`ExecError`]; none of them is a verdict.
pub async fn run_batch<T: ExecTransport>(
    transport: &T,
    namespace: &str,
    pod: &str,
    targets: &[Target],
    margin: Duration,
) -> Result<Vec<ProbeResult>, ExecError> {
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let request = batch_request(namespace, pod, targets)?;
    let deadline = batch_deadline(targets, margin);
    let output = tokio::time::timeout(deadline, transport.exec(request))
        .await
        .map_err(|_| ExecError::Timeout(deadline))??;
    parse_results(targets, &output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netpol_probes::spec::{Check, Protocol};
    use netpol_probes::wire::Outcome;
    use std::sync::Mutex;

    fn target(id: &str) -> Target {
        Target {
            id: id.into(),
            ip: "10.244.1.5".parse().unwrap(),
            port: 3000,
            protocol: Protocol::Tcp,
            check: Check::Http,
            expect_identity: Some("meeting-app-r1/frontend".into()),
            timeout_ms: 2000,
            dns_name: None,
            host: None,
            resolver: None,
        }
    }

    /// Answers every exec with a canned output and records the requests.
    #[derive(Default)]
    struct Canned {
        output: Option<ExecOutput>,
        requests: Mutex<Vec<ExecRequest>>,
    }

    impl ExecTransport for Canned {
        async fn exec(&self, request: ExecRequest) -> Result<ExecOutput, ExecError> {
            self.requests.lock().unwrap().push(request);
            match &self.output {
                Some(output) => Ok(output.clone()),
                None => std::future::pending().await,
            }
        }
    }

    fn line(id: &str, outcome: &str) -> String {
        format!(r#"{{"id":"{id}","outcome":"{outcome}","elapsed_ms":1.5,"detail":""}}"#)
    }

    #[tokio::test]
    async fn a_batch_is_one_exec_of_netpol_probe_with_the_targets_on_stdin() {
        let stdout = format!("{}\n{}\n", line("a", "connected"), line("b", "timeout"));
        let canned = Canned {
            output: Some(ExecOutput {
                stdout: stdout.into_bytes(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let targets = [target("a"), target("b")];
        let results = run_batch(
            &canned,
            "meeting-app-r1",
            "frontend",
            &targets,
            Duration::ZERO,
        )
        .await;
        let results = results.unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(results[1].outcome, Outcome::Timeout);
        let requests = canned.requests.lock().unwrap();
        assert_eq!(requests.len(), 1, "one exec per source pod per call");
        assert_eq!(requests[0].command, ["/netpol-probe", "probe"]);
        assert_eq!(requests[0].container, "agent");
        assert_eq!(requests[0].namespace, "meeting-app-r1");
        let sent: Vec<Target> = serde_json::from_slice(&requests[0].stdin).unwrap();
        assert_eq!(sent, targets);
    }

    #[tokio::test]
    async fn an_empty_batch_runs_no_exec() {
        let canned = Canned::default();
        assert!(
            run_batch(&canned, "n", "p", &[], Duration::ZERO)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(canned.requests.lock().unwrap().is_empty());
    }

    #[test]
    fn a_failed_command_is_an_error_with_its_stderr() {
        let output = ExecOutput {
            stderr: b"netpol-probe: failed to parse the targets\n".to_vec(),
            failure: Some("exit code 2".into()),
            ..Default::default()
        };
        let error = parse_results(&[target("a")], &output).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("exit code 2"), "{message}");
        assert!(message.contains("failed to parse the targets"), "{message}");
    }

    #[test]
    fn a_line_that_is_not_a_result_is_an_error_not_a_verdict() {
        let output = ExecOutput {
            stdout: b"panicked at main.rs\n".to_vec(),
            ..Default::default()
        };
        let error = parse_results(&[target("a")], &output).unwrap_err();
        assert!(
            matches!(error, ExecError::Parse { line: 1, .. }),
            "{error:?}"
        );
    }

    #[test]
    fn a_target_without_a_result_is_an_error() {
        let output = ExecOutput {
            stdout: format!("{}\n", line("a", "refused")).into(),
            ..Default::default()
        };
        let error = parse_results(&[target("a"), target("b")], &output).unwrap_err();
        assert!(
            matches!(
                error,
                ExecError::Missing {
                    missing: 1,
                    total: 2,
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn an_exec_that_never_finishes_times_out() {
        let canned = Canned::default();
        let quick = Target {
            timeout_ms: 1,
            ..target("a")
        };
        let error = run_batch(&canned, "n", "p", &[quick], Duration::from_millis(20))
            .await
            .unwrap_err();
        let expected = Duration::from_millis(21);
        assert!(
            matches!(error, ExecError::Timeout(d) if d == expected),
            "{error}"
        );
    }

    #[test]
    fn the_deadline_grows_with_the_waves_of_concurrent_probes() {
        let many: Vec<Target> = (0..300).map(|i| target(&i.to_string())).collect();
        assert_eq!(
            batch_deadline(&many, Duration::from_secs(1)),
            Duration::from_secs(5)
        );
    }
}
