//! The errors of the Kubernetes backend and how they map onto [`BackendError`].

use crate::backend::BackendError;
use std::time::Duration;

/// Why the Kubernetes backend could not do what it was asked.
///
/// Every variant is an infrastructure error: the harness could not test. None is a verdict.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// No context was named: the backend never falls back to the kubeconfig's current context.
    #[error(
        "no Kubernetes context named: pass --kube-context NAME or set NETPOL_KUBE_CONTEXT, \
         or --in-cluster when running in a pod (the harness creates and deletes objects, so \
         it never guesses the cluster)"
    )]
    NoContext,
    /// `--in-cluster` was given, but the process does not run in a pod with a service account.
    #[error(
        "failed to load the in-cluster configuration (--in-cluster): run inside a pod with a \
         service account token, or name a kubeconfig context with --kube-context instead"
    )]
    InCluster(#[source] kube::config::InClusterError),
    /// The kubeconfig could not be read or does not have the context.
    #[error(
        "failed to load context {context:?} from the kubeconfig: check `kubectl config get-contexts`"
    )]
    Kubeconfig {
        context: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// A client could not be built from the loaded configuration.
    #[error("failed to build a Kubernetes client for context {context:?}")]
    Client {
        context: String,
        #[source]
        source: kube::Error,
    },
    /// An API request failed.
    #[error("failed to {action}")]
    Api {
        action: String,
        #[source]
        source: kube::Error,
    },
    /// A wait ended without the condition holding.
    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout { what: String, timeout: Duration },
    /// A watch used for waiting failed.
    #[error("failed while waiting for {what}")]
    Wait {
        what: String,
        #[source]
        source: kube::runtime::wait::Error,
    },
    /// A probe pod did not become ready; `events` are the pod's events, oldest first.
    #[error(
        "pod {pod} did not become ready within {timeout:?}{}: check the image is loaded \
         (`make image`) and the CNI is running",
        describe_events(.events)
    )]
    PodNotReady {
        pod: String,
        timeout: Duration,
        /// `reason: message` of each event of the pod, and the waiting reason of each
        /// container that is not running.
        events: Vec<String>,
    },
    /// A setting from the environment is invalid.
    #[error("{variable}={value:?} is invalid: expected {expected}")]
    Setting {
        variable: &'static str,
        value: String,
        expected: &'static str,
    },
    /// A Service the harness created has no ClusterIP: the API server allocates one when it
    /// creates a `ClusterIP` Service, so something in the cluster changed it.
    #[error(
        "Service {service} has no ClusterIP although it was created as type ClusterIP: check \
         the cluster's admission webhooks or policies that mutate Services"
    )]
    NoClusterIp { service: String },
    /// A provided pod (e.g. CoreDNS) or the Service in front of it is not in the cluster.
    #[error("provided pod {pod} not found in the cluster: {detail}")]
    ProvidedNotFound { pod: String, detail: String },
    /// The exec running `netpol-probe probe` failed.
    #[error("probe exec in pod {pod} failed")]
    Exec {
        pod: String,
        #[source]
        source: ExecError,
    },
    /// The topology or policies use something this backend cannot do.
    #[error("unsupported by the kube backend: {0}")]
    Unsupported(String),
    /// The operation needs a deployed topology.
    #[error("nothing is deployed: call deploy first")]
    NotDeployed,
}

/// Why one exec of `netpol-probe probe` did not produce a result per target.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The exec could not be started (API error, upgrade refused, pod gone).
    #[error("failed to start the exec")]
    Start(#[source] kube::Error),
    /// The exec's streams failed.
    #[error("the exec's streams failed")]
    Stream(#[source] std::io::Error),
    /// The command exited with a failure status.
    #[error("`netpol-probe probe` failed: {status}; stderr: {stderr}")]
    Failed { status: String, stderr: String },
    /// The exec did not finish in time.
    #[error(
        "no complete answer within {0:?}: the API server may not support closing stdin \
         (needs the v5.channel.k8s.io stream protocol, Kubernetes 1.30 or newer)"
    )]
    Timeout(Duration),
    /// A line of the output is not a probe result.
    #[error("output line {line} is not a probe result: {text:?}")]
    Parse {
        line: usize,
        text: String,
        #[source]
        source: serde_json::Error,
    },
    /// The output has no result for some targets.
    #[error(
        "no result for {missing} of {total} targets (first missing: {first:?}); stderr: {stderr}"
    )]
    Missing {
        missing: usize,
        total: usize,
        first: String,
        stderr: String,
    },
    /// The batch could not be encoded.
    #[error("failed to encode the batch")]
    Encode(#[source] serde_json::Error),
}

fn describe_events(events: &[String]) -> String {
    if events.is_empty() {
        " (no events)".to_owned()
    } else {
        format!(" (events: {})", events.join("; "))
    }
}

/// The result type of this module.
pub type Result<T, E = KubeError> = std::result::Result<T, E>;

impl From<KubeError> for BackendError {
    /// Maps onto the shared variants; the whole [`KubeError`] stays reachable as the source
    /// of [`BackendError::Io`] where no shared variant fits.
    fn from(error: KubeError) -> Self {
        match error {
            KubeError::NoContext | KubeError::Setting { .. } => BackendError::Preflight {
                message: error.to_string(),
            },
            KubeError::PodNotReady { ref pod, .. } => BackendError::NotReady {
                pod: pod.clone(),
                detail: error.to_string(),
            },
            KubeError::Exec {
                ref pod,
                ref source,
            } => BackendError::Probe {
                pod: pod.clone(),
                detail: error_chain(source),
            },
            KubeError::Unsupported(what) => BackendError::Unsupported(what),
            KubeError::NotDeployed => BackendError::NotDeployed,
            other => BackendError::Io {
                action: "run the kube backend".to_owned(),
                source: std::io::Error::other(other),
            },
        }
    }
}

/// `error: cause: cause...`, for the string details of [`BackendError`].
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
