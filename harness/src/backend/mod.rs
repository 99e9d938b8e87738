//! Backends: where the topology's probe pods run and where the policies are enforced.
//!
//! A backend *deploys* a [`Topology`] (one probe pod per topology pod, each serving its
//! ports), *applies* a set of [`NetworkPolicy`]s to its data plane, and runs *probes* from a
//! source pod: one batch of [`Target`]s per call, executed by `netpol-probe probe` inside the
//! pod, returning one [`ProbeResult`] per target. The runner is generic over [`Backend`] so
//! the same conformance run works on the [`local`] backend (network namespaces and
//! nftables on this machine) and on a Kubernetes cluster ([`kube`]).
//!
//! Errors a backend returns are *infrastructure errors*: the harness could not test. What a
//! probe saw (connected, timeout, refused...) is never an error but an [`Outcome`] in its
//! result.
//!
//! [`Outcome`]: netpol_probes::wire::Outcome

pub mod kube;
pub mod local;

use crate::engine::{Labels, NetworkPolicy, PodIndex, Topology};
use netpol_probes::wire::{ProbeResult, Target};
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;

pub use kube::{KubeBackend, KubeConfig};
pub use local::{LocalBackend, LocalConfig};

/// Why a backend could not do what the runner asked.
///
/// Messages are lowercase and, where the user can fix the cause, say how.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The machine cannot run this backend; nothing was changed.
    #[error("{message}")]
    Preflight { message: String },
    /// A program the backend runs could not be started.
    #[error("failed to run `{program}`")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// A program the backend runs exited with an error.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    /// A file or system call the backend needs failed.
    #[error("failed to {action}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },
    /// A pod did not become ready (its servers did not start or did not answer).
    #[error("pod {pod} did not become ready: {detail}")]
    NotReady { pod: String, detail: String },
    /// A server did not start or did not answer in time: `what` names it, e.g. `the servers
    /// of pod backend/db`.
    #[error("{what} did not become ready")]
    ServerStart {
        what: String,
        /// Boxed: the probes error is large, and every backend `Result` would carry its size.
        #[source]
        source: Box<netpol_probes::servers::Error>,
    },
    /// `netpol-probe probe` failed inside a pod, or its output could not be read.
    #[error("probe batch from {pod} failed: {detail}")]
    Probe { pod: String, detail: String },
    /// The `netpol-probe` binary could not be found.
    #[error(
        "cannot find the `netpol-probe` binary (looked at {looked_at:?}): build it with \
         `cargo build -p netpol-probes` or set NETPOL_PROBE_BIN"
    )]
    ProbeBinaryMissing { looked_at: Vec<PathBuf> },
    /// The operation needs a deployed topology.
    #[error("nothing is deployed: call deploy first")]
    NotDeployed,
    /// The topology or policies use something this backend cannot do.
    #[error("unsupported by this backend: {0}")]
    Unsupported(String),
}

/// How a probe addresses its destination pod, as `--via` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Via {
    /// The pod's own IP ([`Backend::address`]).
    #[default]
    Pod,
    /// The ClusterIP of the pod's Service ([`Backend::service_address`]): policy must be
    /// enforced on the translated packet.
    Service,
    /// The Service's DNS name ([`Backend::service_host`]), resolved inside the source pod
    /// through the cluster DNS ([`Backend::resolver`]).
    Dns,
}

impl Via {
    /// Every mode, in the order a run with several probes them.
    pub const ALL: [Via; 3] = [Via::Pod, Via::Service, Via::Dns];

    pub fn as_str(self) -> &'static str {
        match self {
            Via::Pod => "pod",
            Via::Service => "service",
            Via::Dns => "dns",
        }
    }

    /// A comma-separated list of modes (`pod,service`), deduplicated, in the given order.
    ///
    /// # Errors
    /// An unknown mode or an empty list.
    pub fn parse_list(list: &str) -> Result<Vec<Via>, String> {
        let mut modes = Vec::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let via: Via = name.parse()?;
            if !modes.contains(&via) {
                modes.push(via);
            }
        }
        if modes.is_empty() {
            return Err("expected at least one of pod, service, dns".to_owned());
        }
        Ok(modes)
    }
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Via {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Via::ALL
            .into_iter()
            .find(|via| via.as_str() == s)
            .ok_or_else(|| format!("unknown probe mode {s:?}: expected pod, service or dns"))
    }
}

/// A place to run probe pods and enforce NetworkPolicies.
///
/// The calls follow a run's phases: [`deploy`](Backend::deploy) once, then any number of
/// [`apply_policies`](Backend::apply_policies) and [`probe`](Backend::probe) calls (probes
/// from different source pods may run concurrently), then [`teardown`](Backend::teardown).
/// Dropping a backend without `teardown` must still remove what it created.
pub trait Backend {
    /// A short name for reports, e.g. `local`.
    fn name(&self) -> &'static str;

    /// Creates every pod of `topology`, starts its servers and waits until every pod is
    /// ready to serve and to probe. No policies are enforced afterwards.
    ///
    /// # Errors
    /// Preflight problems (before anything is changed), and pods that do not become ready.
    fn deploy(
        &mut self,
        topology: &Topology,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Replaces the whole enforced policy set with `policies`, atomically: at no moment is a
    /// mix of the old and new sets, or no policy at all, enforced. An empty slice removes
    /// every policy. Returns once the data plane has accepted the change (a backend that
    /// enforces asynchronously, like a CNI, may still take a while: the runner converges).
    fn apply_policies(
        &mut self,
        policies: &[NetworkPolicy],
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Replaces the labels of pod `pod` and re-enforces the current policies for them.
    fn set_pod_labels(
        &mut self,
        pod: PodIndex,
        labels: Labels,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Replaces the labels of namespace `namespace` and re-enforces the current policies.
    /// The namespace's name label is kept whatever `labels` says, as the API server does.
    fn set_namespace_labels(
        &mut self,
        namespace: &str,
        labels: Labels,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Runs one batch of probes from inside pod `src`, one result per target, in any order.
    ///
    /// # Errors
    /// Only when the batch could not run or its output is unreadable; a blocked edge is an
    /// outcome, not an error.
    fn probe(
        &self,
        src: PodIndex,
        targets: &[Target],
    ) -> impl Future<Output = Result<Vec<ProbeResult>, BackendError>> + Send;

    /// The address to dial to reach pod `pod`: its IP, or for a `provided` DNS pod the
    /// address pods really use (the kube-dns Service IP).
    fn address(&self, pod: PodIndex) -> IpAddr;

    /// The ClusterIP of the Service standing for pod `pod` (one port per served port, to the
    /// pod), or `None` when the pod has none. A `provided` DNS pod's Service is kube-dns.
    fn service_address(&self, pod: PodIndex) -> Option<IpAddr>;

    /// The DNS name of the Service standing for pod `pod`
    /// (`<service>.<namespace>.svc.cluster.local`, with the namespace as deployed), or `None`
    /// when the pod has no Service.
    fn service_host(&self, pod: PodIndex) -> Option<String>;

    /// The cluster DNS address pods resolve names with (the kube-dns Service), or `None`
    /// when the topology has no DNS pod.
    fn resolver(&self) -> Option<IpAddr>;

    /// Removes everything the backend created. Idempotent.
    fn teardown(&mut self) -> impl Future<Output = Result<(), BackendError>> + Send;
}
