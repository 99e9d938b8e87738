//! Backends: where the topology's probe pods run and where the policies are enforced.
//!
//! A backend *deploys* a [`Topology`] (one probe pod per topology pod, each serving its
//! ports), *applies* a set of [`NetworkPolicy`]s to its data plane, and runs *probes* from a
//! source pod: one batch of [`Target`]s per call, executed by `netpol-probe probe` inside the
//! pod, returning one [`ProbeResult`] per target. The runner is generic over [`Backend`] so
//! the same conformance run works on the [`local`] backend (network namespaces and
//! nftables on this machine) and on a Kubernetes cluster.
//!
//! Errors a backend returns are *infrastructure errors*: the harness could not test. What a
//! probe saw (connected, timeout, refused...) is never an error but an [`Outcome`] in its
//! result.
//!
//! [`Outcome`]: netpol_probes::wire::Outcome

pub mod local;

use crate::engine::{Labels, NetworkPolicy, PodIndex, Topology};
use netpol_probes::wire::{ProbeResult, Target};
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;

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

    /// Removes everything the backend created. Idempotent.
    fn teardown(&mut self) -> impl Future<Output = Result<(), BackendError>> + Send;
}
