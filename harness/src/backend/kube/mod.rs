//! The Kubernetes backend: probe pods on a real cluster, policies enforced by its CNI.
//!
//! - **Which cluster**: only the kubeconfig context named by `--kube-context` or
//!   `NETPOL_KUBE_CONTEXT`, or the pod's own service account when `--in-cluster` is given
//!   ([`config::resolve_access`]); never the current context.
//! - **Names** ([`names`]): each run has a run id. Topology namespaces get the suffix
//!   `-<run id>` unless they are *exact*: namespaces of provided pods (`kube-system`) and
//!   those listed in [`KubeConfig::exact_namespaces`] (typically the ones the policies select
//!   by `kubernetes.io/metadata.name`, see [`names::namespaces_named_by`]). Exact namespaces
//!   are created when missing and reused, never deleted, when present. A policy's
//!   `metadata.namespace`, and the values of `kubernetes.io/metadata.name` in its
//!   `namespaceSelector`s, are rewritten through the same mapping, so a policy selecting
//!   `meeting-app` by name selects `meeting-app-<run id>`.
//! - **Ownership**: every object the harness creates carries
//!   `app.kubernetes.io/managed-by=netpol-harness` and `netpol-harness/run-id=<run id>`;
//!   teardown deletes only what the run created, [`clean()`] only labelled objects. A reused
//!   namespace is never labelled as the harness's: the topology labels it lacked are added
//!   and restored to their previous values at teardown.
//! - **Probe pods** ([`manifests::probe_pod`]): `netpol-probe serve` with the pod's ports,
//!   identity from the downward API, readiness on `/healthz` (the `canary` port), no
//!   privileges; real Postgres, Redis and DNS (CoreDNS) containers beside the agent for those
//!   ports; spread across nodes.
//!   [`KubeBackend::crosses_nodes`] tells whether an edge crossed nodes.
//! - **Services** ([`manifests::probe_service`]): one ClusterIP Service per probe pod with
//!   ports, in the pod's namespace, named by [`names::service_name`] (the pod's name when it
//!   is a valid Service name), selecting exactly that pod by the run id and the pod's
//!   [`names::POD_LABEL`], one port per port the pod serves (`targetPort` by name when the
//!   port has one). `--via service` dials its ClusterIP, `--via dns` its name
//!   `<service>.<namespace>.svc.<cluster domain>` ([`KubeConfig::cluster_domain`],
//!   `NETPOL_KUBE_CLUSTER_DOMAIN`, default `cluster.local`) through the cluster DNS. The
//!   baseline waits out the endpoints' propagation: it retries until every edge connects.
//! - **Provided pods** (CoreDNS) are found by their labels and reached through the ClusterIP
//!   of the Service selecting them (`kube-dns`), which is also their Service in `service`
//!   and `dns` modes and, for the DNS pod, the resolver. Nothing is created for them.
//! - **Policies**: server-side apply, field manager `netpol-harness`, forced; removed by name.
//! - **Probes** ([`exec`]): one exec of `netpol-probe probe` per source pod per call, the
//!   batch on stdin. A failing exec is an infrastructure error, never a verdict.
//!
//! # Known limitations
//! - Replacing the policy set is not atomic: new policies are applied before stale ones are
//!   deleted, so the union of both is briefly enforced. The runner converges anyway.
//! - `ipBlock` peers are applied as written: CIDRs that name topology pod IPs do not follow
//!   the pods to their cluster IPs.
//! - Two runs sharing an exact namespace see each other's pods there, and a policy of one
//!   run in that namespace can select the other run's pods. A run that created an exact
//!   namespace deletes it at teardown even if another run still uses it.
//! - Closing the probe's stdin needs the `v5.channel.k8s.io` stream protocol (Kubernetes
//!   1.30 or newer); with an older API server every batch times out.
//! - Dropping the backend without `teardown` only warns: run `clean`.

pub mod backend;
pub mod clean;
pub mod config;
pub mod error;
pub mod exec;
pub mod manifests;
pub mod names;
pub mod wait;

#[cfg(test)]
mod tests;

pub use backend::{ClusterPod, ClusterService, KubeBackend};
pub use clean::{Cleaned, clean, clean_cluster, clean_context};
pub use config::{ClusterAccess, KubeConfig, connect, connect_to, resolve_access, resolve_context};
pub use error::{ExecError, KubeError};
pub use exec::{ExecTransport, KubeExec};
