//! [`KubeBackend`]: the [`Backend`] that runs probe pods on a Kubernetes cluster.

use super::config::{ClusterAccess, KubeConfig, connect_to};
use super::error::{ExecError, KubeError, Result};
use super::exec::{ExecTransport, KubeExec, run_batch};
use super::manifests::{self, PodSettings};
use super::names::{FIELD_MANAGER, NamespaceMap};
use super::wait;
use crate::backend::{Backend, BackendError};
use crate::engine::{
    Labels, NAMESPACE_NAME_LABEL, NetworkPolicy, Pod as TopologyPod, PodIndex, Topology,
};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy as ApiNetworkPolicy;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use netpol_probes::spec::Check;
use netpol_probes::wire::{ProbeResult, Target};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

/// Where a topology pod lives in the cluster once deployed (or found, for provided pods).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterPod {
    pub namespace: String,
    pub name: String,
    /// The pod IP, or for a provided pod the ClusterIP of the Service in front of it.
    pub address: IpAddr,
    /// The node the pod runs on; `None` for provided pods, reached through their Service.
    pub node: Option<String>,
    pub provided: bool,
    /// The Service standing for the pod: the one the run created for a probe pod, the one
    /// found in front of a provided pod (`kube-dns`); `None` for a probe pod without ports.
    pub service: Option<ClusterService>,
}

/// A Service in the cluster, as probes reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterService {
    /// Its name, in the namespace of the pod it stands for.
    pub name: String,
    /// Its ClusterIP.
    pub address: IpAddr,
}

impl ClusterPod {
    /// `namespace/name` as the pod's agent reports it (downward API).
    pub fn identity(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// A topology namespace in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NamespaceState {
    cluster: String,
    /// Created by this run (and deleted at teardown); otherwise reused and never deleted.
    created: bool,
    /// The topology labels currently applied (without `kubernetes.io/metadata.name`).
    labels: Labels,
    /// For a reused namespace: the value each label the harness changed had before
    /// (`None`: absent), restored at teardown.
    originals: BTreeMap<String, Option<String>>,
    /// For a reused namespace: its labels when the run found it.
    found: BTreeMap<String, String>,
}

/// What a deploy created or found.
#[derive(Debug, Default)]
struct Deployed {
    topology: Topology,
    names: NamespaceMap,
    namespaces: BTreeMap<String, NamespaceState>,
    /// Indexed like `topology.pods`; filled once every pod is ready.
    pods: Vec<ClusterPod>,
    /// Probe pods applied so far, `(namespace, name)`, for teardown.
    applied_pods: Vec<(String, String)>,
    /// Services applied so far, `(namespace, name)`, for teardown.
    applied_services: Vec<(String, String)>,
}

/// What a deploy applies for one probe pod.
struct ProbeObjects {
    /// The topology pod it stands for.
    index: PodIndex,
    pod: Pod,
    /// `None` for a pod without ports.
    service: Option<Service>,
}

/// The Kubernetes backend. See the [module docs](super) for naming, labels and cleanup.
///
/// Generic over its exec transport so tests can replace the WebSocket; use
/// [`KubeBackend::connect`] for the real one.
pub struct KubeBackend<E: ExecTransport = KubeExec> {
    client: kube::Client,
    exec: E,
    config: KubeConfig,
    deployed: Option<Deployed>,
    /// Policies applied and not yet removed, `(namespace, name)` in the cluster.
    policies: BTreeSet<(String, String)>,
}

impl KubeBackend<KubeExec> {
    /// Connects to `config.access`; changes nothing in the cluster.
    ///
    /// # Errors
    /// [`KubeError::Kubeconfig`], [`KubeError::InCluster`] or [`KubeError::Client`].
    pub async fn connect(config: KubeConfig) -> Result<Self> {
        let client = connect_to(&config.access).await?;
        Ok(KubeBackend::with_client(
            client.clone(),
            KubeExec::new(client),
            config,
        ))
    }
    /// The backend the runner and the CLI use: the context from `flag` (`--kube-context`) or
    /// `NETPOL_KUBE_CONTEXT`, the image from `NETPOL_PROBE_IMAGE`, and the namespaces that
    /// `policies` select by name kept under their exact names. Pass every policy the run may
    /// apply (all steps), so that no namespace a later step names by label gets a suffix;
    /// names stay consistent either way, since policies are rewritten through the mapping.
    ///
    /// # Errors
    /// [`BackendError::Preflight`] without a context; the connection errors of
    /// [`connect`](Self::connect).
    pub async fn from_env(
        flag: Option<String>,
        policies: &[NetworkPolicy],
    ) -> Result<Self, BackendError> {
        KubeBackend::open(flag.map(ClusterAccess::Context), policies).await
    }

    /// As [`from_env`](Self::from_env), with the cluster given as `access` (`--kube-context`
    /// or `--in-cluster`; `None`: `NETPOL_KUBE_CONTEXT`).
    ///
    /// # Errors
    /// As [`from_env`](Self::from_env).
    pub async fn open(
        access: Option<ClusterAccess>,
        policies: &[NetworkPolicy],
    ) -> Result<Self, BackendError> {
        let mut config = KubeConfig::from_access(access)?;
        config.exact_namespaces = super::names::namespaces_named_by(policies);
        Ok(KubeBackend::connect(config).await?)
    }
}

impl<E: ExecTransport> KubeBackend<E> {
    /// A backend over an existing client and exec transport.
    pub fn with_client(client: kube::Client, exec: E, config: KubeConfig) -> Self {
        KubeBackend {
            client,
            exec,
            config,
            deployed: None,
            policies: BTreeSet::new(),
        }
    }

    pub fn config(&self) -> &KubeConfig {
        &self.config
    }

    /// Where topology pod `pod` lives in the cluster, once deployed.
    pub fn cluster_pod(&self, pod: PodIndex) -> Option<&ClusterPod> {
        self.deployed.as_ref()?.pods.get(pod)
    }

    /// The node pod `pod` runs on, once deployed (`None` for provided pods).
    pub fn node(&self, pod: PodIndex) -> Option<&str> {
        self.cluster_pod(pod)?.node.as_deref()
    }

    /// Whether an edge from `src` to `dst` crosses nodes; `None` when a side's node is not
    /// known (a provided pod behind its Service).
    pub fn crosses_nodes(&self, src: PodIndex, dst: PodIndex) -> Option<bool> {
        Some(self.node(src)? != self.node(dst)?)
    }

    /// The cluster name of topology namespace `namespace`, once deployed.
    pub fn cluster_namespace<'a>(&'a self, namespace: &'a str) -> Option<&'a str> {
        Some(self.deployed.as_ref()?.names.cluster_name(namespace))
    }

    /// Deploys `topology`: namespaces, then probe pods, then waits for every pod to be ready
    /// and finds the provided ones. What was created before a failure is recorded, so
    /// [`teardown`](Self::remove_all) removes it.
    ///
    /// # Errors
    /// See [`KubeError`]; pods that do not become ready come with their events.
    pub async fn deploy_topology(&mut self, topology: &Topology) -> Result<()> {
        if self.deployed.is_some() {
            self.remove_all().await?;
        }
        let names =
            NamespaceMap::plan(topology, &self.config.exact_namespaces, &self.config.run_id);
        // Build every manifest first: a topology this backend cannot deploy changes nothing.
        let manifests = topology
            .pods
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.provided)
            .map(|(index, pod)| self.probe_objects(index, pod, &names))
            .collect::<Result<Vec<_>>>()?;
        check_distinct_services(topology, &manifests)?;
        self.deployed = Some(Deployed {
            topology: topology.clone(),
            names: names.clone(),
            ..Default::default()
        });
        for namespace in &topology.namespaces {
            let state = self
                .ensure_namespace(&names, &namespace.name, &namespace.labels)
                .await?;
            self.deployed_mut()?
                .namespaces
                .insert(namespace.name.clone(), state);
        }
        for objects in &manifests {
            let (namespace, name) = namespace_and_name(&objects.pod.metadata);
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
            let action = || format!("create probe pod {namespace}/{name}");
            apply(&api, &name, &objects.pod, action).await?;
            self.deployed_mut()?.applied_pods.push((namespace, name));
        }
        // Created while the pods start: a Service's endpoints follow its pod's readiness.
        let mut services = BTreeMap::new();
        for objects in &manifests {
            if let Some(service) = &objects.service {
                services.insert(objects.index, self.create_service(service).await?);
            }
        }
        let ready = futures_util::future::try_join_all(manifests.iter().map(|objects| {
            let (namespace, name) = namespace_and_name(&objects.pod.metadata);
            wait::pod_ready(
                self.client.clone(),
                namespace,
                name,
                self.config.ready_timeout,
            )
        }))
        .await?;
        let mut pods = self.locate_pods(topology, &names, ready).await?;
        for (index, service) in services {
            pods[index].service = Some(service);
        }
        self.deployed_mut()?.pods = pods;
        Ok(())
    }

    /// Applies `service` (server-side, like every object of the run) and returns its name
    /// and ClusterIP. The API server allocates the ClusterIP when it creates the Service, so
    /// the apply's answer carries it; should it not, the Service is read once more.
    ///
    /// # Errors
    /// [`KubeError::Api`], or [`KubeError::NoClusterIp`] when the Service has none.
    async fn create_service(&mut self, service: &Service) -> Result<ClusterService> {
        let (namespace, name) = namespace_and_name(&service.metadata);
        let api: Api<Service> = Api::namespaced(self.client.clone(), &namespace);
        let applied = apply(&api, &name, service, || {
            format!("create Service {namespace}/{name}")
        })
        .await?;
        self.deployed_mut()?
            .applied_services
            .push((namespace.clone(), name.clone()));
        let address = match cluster_ip(&applied) {
            Some(address) => address,
            None => {
                let read = api.get(&name).await.map_err(|source| KubeError::Api {
                    action: format!("read Service {namespace}/{name}"),
                    source,
                })?;
                cluster_ip(&read).ok_or_else(|| KubeError::NoClusterIp {
                    service: format!("{namespace}/{name}"),
                })?
            }
        };
        tracing::debug!(service = %format!("{namespace}/{name}"), %address, "Service created");
        Ok(ClusterService { name, address })
    }

    /// Where every topology pod is: the ready probe pods (in topology order, provided pods
    /// skipped) and the provided pods found in the cluster.
    async fn locate_pods(
        &self,
        topology: &Topology,
        names: &NamespaceMap,
        ready: Vec<Pod>,
    ) -> Result<Vec<ClusterPod>> {
        let mut ready = ready.into_iter();
        let mut located = Vec::with_capacity(topology.pods.len());
        for pod in &topology.pods {
            let cluster = if pod.provided {
                self.find_provided(pod, names).await?
            } else {
                deployed_pod(&ready.next().ok_or(KubeError::NotDeployed)?)?
            };
            tracing::debug!(
                pod = %pod.id(),
                cluster = %cluster.identity(),
                node = ?cluster.node,
                address = %cluster.address,
                "pod located"
            );
            located.push(cluster);
        }
        Ok(located)
    }

    fn deployed_mut(&mut self) -> Result<&mut Deployed> {
        self.deployed.as_mut().ok_or(KubeError::NotDeployed)
    }

    /// The probe pod standing for topology pod `pod` (at `index`), and its Service.
    fn probe_objects(
        &self,
        index: PodIndex,
        pod: &TopologyPod,
        names: &NamespaceMap,
    ) -> Result<ProbeObjects> {
        let settings = PodSettings {
            run_id: &self.config.run_id,
            image: &self.config.image,
            canary_port: self.config.canary_port,
        };
        let name = names.pod_name(&pod.namespace, &pod.name);
        let namespace = names.cluster_name(&pod.namespace);
        let manifest = manifests::probe_pod(&name, namespace, &pod.labels, &pod.ports, settings)
            .map_err(KubeError::Unsupported)?;
        let service = manifests::probe_service(&name, namespace, &pod.ports, &self.config.run_id);
        Ok(ProbeObjects {
            index,
            pod: manifest,
            service,
        })
    }

    /// Creates the namespace when missing (labelled as the run's), or reuses it, adding the
    /// topology labels it lacks and remembering their previous values.
    async fn ensure_namespace(
        &self,
        names: &NamespaceMap,
        topology_name: &str,
        labels: &Labels,
    ) -> Result<NamespaceState> {
        let cluster = names.cluster_name(topology_name).to_owned();
        let api: Api<Namespace> = Api::all(self.client.clone());
        let existing = self.settled_namespace(&api, &cluster).await?;
        let topology_labels: Labels = labels
            .iter()
            .filter(|(k, _)| k.as_str() != NAMESPACE_NAME_LABEL)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let found: Option<BTreeMap<String, String>> =
            existing.map(|ns| ns.metadata.labels.unwrap_or_default().into_iter().collect());
        let ours = found.as_ref().is_some_and(|labels| {
            labels.get(super::names::RUN_ID_LABEL) == Some(&self.config.run_id)
        });
        let Some(found) = found.filter(|_| !ours) else {
            let manifest = manifests::namespace(&cluster, labels, &self.config.run_id);
            tracing::debug!(namespace = %cluster, "creating the namespace");
            apply(&api, &cluster, &manifest, || {
                format!("create namespace {cluster}")
            })
            .await?;
            wait::created::<ServiceAccount>(
                Api::namespaced(self.client.clone(), &cluster),
                "default",
                format!("service account default in new namespace {cluster}"),
                self.config.wait_timeout,
            )
            .await?;
            return Ok(NamespaceState {
                cluster,
                created: true,
                labels: topology_labels,
                originals: BTreeMap::new(),
                found: BTreeMap::new(),
            });
        };
        tracing::debug!(namespace = %cluster, "reusing the existing namespace");
        let mut state = NamespaceState {
            cluster,
            created: false,
            labels: BTreeMap::new(),
            originals: BTreeMap::new(),
            found,
        };
        self.relabel_namespace(&mut state, topology_labels).await?;
        Ok(state)
    }

    /// Namespace `name` as it is once any deletion in progress has finished: a namespace a
    /// previous run deleted (back-to-back runs that share an exact namespace) stays
    /// `Terminating` for a while and accepts no new pods.
    async fn settled_namespace(
        &self,
        api: &Api<Namespace>,
        name: &str,
    ) -> Result<Option<Namespace>> {
        let lookup = |source| KubeError::Api {
            action: format!("look up namespace {name}"),
            source,
        };
        let existing = api.get_opt(name).await.map_err(lookup)?;
        let terminating = existing.as_ref().is_some_and(|ns| {
            ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating")
        });
        if !terminating {
            return Ok(existing);
        }
        let uid = existing.and_then(|ns| ns.metadata.uid).unwrap_or_default();
        wait::deleted(
            api.clone(),
            name,
            &uid,
            format!("terminating namespace {name} to be deleted"),
            self.config.wait_timeout,
        )
        .await?;
        api.get_opt(name).await.map_err(lookup)
    }

    /// Replaces the topology labels of a namespace with a JSON merge patch. On a reused
    /// namespace, the first change of each label remembers the value it had, for teardown.
    async fn relabel_namespace(&self, state: &mut NamespaceState, labels: Labels) -> Result<()> {
        let current = |key: &str| {
            if state.created || state.originals.contains_key(key) {
                state.labels.get(key)
            } else {
                state.found.get(key)
            }
        };
        let mut patch = serde_json::Map::new();
        for key in state.labels.keys().filter(|k| !labels.contains_key(*k)) {
            if current(key).is_some() {
                patch.insert(key.clone(), serde_json::Value::Null);
            }
        }
        for (key, value) in &labels {
            if current(key) != Some(value) {
                patch.insert(key.clone(), value.clone().into());
            }
        }
        if !state.created {
            for key in patch.keys() {
                let before = state.found.get(key).cloned();
                state.originals.entry(key.clone()).or_insert(before);
            }
        }
        if !patch.is_empty() {
            let cluster = state.cluster.clone();
            let body = serde_json::json!({ "metadata": { "labels": patch } });
            let api: Api<Namespace> = Api::all(self.client.clone());
            api.patch(&cluster, &merge_params(), &Patch::Merge(&body))
                .await
                .map_err(|source| KubeError::Api {
                    action: format!("label namespace {cluster}"),
                    source,
                })?;
        }
        state.labels = labels;
        Ok(())
    }

    /// Finds a provided pod (CoreDNS) by its labels in its namespace, and the Service in
    /// front of it, whose ClusterIP is what pods really dial.
    async fn find_provided(&self, pod: &TopologyPod, names: &NamespaceMap) -> Result<ClusterPod> {
        let namespace = names.cluster_name(&pod.namespace).to_owned();
        let selector = pod
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let found = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|source| KubeError::Api {
                action: format!("list pods {selector} in {namespace}"),
                source,
            })?;
        let Some(ready) = found.items.iter().find(|p| wait::is_pod_ready(Some(p))) else {
            return Err(KubeError::ProvidedNotFound {
                pod: pod.id(),
                detail: format!(
                    "{} pods with labels {selector} in namespace {namespace}, none ready",
                    found.items.len()
                ),
            });
        };
        let services: Api<Service> = Api::namespaced(self.client.clone(), &namespace);
        let services = services
            .list(&ListParams::default())
            .await
            .map_err(|source| KubeError::Api {
                action: format!("list services in {namespace}"),
                source,
            })?;
        let pod_labels = ready.metadata.labels.clone().unwrap_or_default();
        let service = services
            .items
            .iter()
            .filter(|service| {
                let selector = service.spec.as_ref().and_then(|s| s.selector.as_ref());
                selector.is_some_and(|sel| {
                    !sel.is_empty() && sel.iter().all(|(k, v)| pod_labels.get(k) == Some(v))
                })
            })
            .find_map(|service| {
                Some(ClusterService {
                    name: service.metadata.name.clone()?,
                    address: cluster_ip(service)?,
                })
            })
            .ok_or_else(|| KubeError::ProvidedNotFound {
                pod: pod.id(),
                detail: format!(
                    "no Service with a ClusterIP selects the pods {selector} in {namespace}"
                ),
            })?;
        Ok(ClusterPod {
            namespace,
            name: ready.metadata.name.clone().unwrap_or_default(),
            address: service.address,
            node: None,
            provided: true,
            service: Some(service),
        })
    }

    /// Replaces the applied policies with `policies`: applies every new one first (server-side
    /// apply, forced, field manager `netpol-harness`), then deletes the old ones that are not
    /// in the new set, by name.
    ///
    /// # Errors
    /// [`KubeError::Api`] naming the policy.
    pub async fn replace_policies(&mut self, policies: &[NetworkPolicy]) -> Result<()> {
        let names = self
            .deployed
            .as_ref()
            .ok_or(KubeError::NotDeployed)?
            .names
            .clone();
        let mut wanted = BTreeSet::new();
        for policy in policies {
            let manifest = manifests::network_policy(policy, &names, &self.config.run_id);
            let namespace = manifest.metadata.namespace.clone().unwrap_or_default();
            let api: Api<ApiNetworkPolicy> = Api::namespaced(self.client.clone(), &namespace);
            apply(&api, &policy.name, &manifest, || {
                format!(
                    "apply NetworkPolicy {namespace}/{} (from {})",
                    policy.name, policy.origin
                )
            })
            .await?;
            wanted.insert((namespace.clone(), policy.name.clone()));
            self.policies.insert((namespace, policy.name.clone()));
        }
        let stale: Vec<_> = self.policies.difference(&wanted).cloned().collect();
        tracing::debug!(
            applied = wanted.len(),
            stale = stale.len(),
            "replacing the policy set"
        );
        for (namespace, name) in stale {
            let api: Api<ApiNetworkPolicy> = Api::namespaced(self.client.clone(), &namespace);
            delete(&api, &name, || {
                format!("delete NetworkPolicy {namespace}/{name}")
            })
            .await?;
            self.policies.remove(&(namespace, name));
        }
        Ok(())
    }

    /// Replaces the labels of pod `pod`, keeping the harness's own.
    ///
    /// # Errors
    /// [`KubeError::NotDeployed`], [`KubeError::Unsupported`] for a provided pod, or
    /// [`KubeError::Api`].
    pub async fn relabel_pod(&mut self, pod: PodIndex, labels: Labels) -> Result<()> {
        let deployed = self.deployed.as_mut().ok_or(KubeError::NotDeployed)?;
        let (Some(topology_pod), Some(cluster)) =
            (deployed.topology.pods.get_mut(pod), deployed.pods.get(pod))
        else {
            return Err(KubeError::NotDeployed);
        };
        if cluster.provided {
            return Err(KubeError::Unsupported(format!(
                "changing the labels of provided pod {}",
                topology_pod.id()
            )));
        }
        let mut patch = serde_json::Map::new();
        for key in topology_pod
            .labels
            .keys()
            .filter(|k| !labels.contains_key(*k))
        {
            patch.insert(key.clone(), serde_json::Value::Null);
        }
        for (key, value) in &labels {
            patch.insert(key.clone(), value.clone().into());
        }
        let body = serde_json::json!({ "metadata": { "labels": patch } });
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &cluster.namespace);
        api.patch(&cluster.name, &merge_params(), &Patch::Merge(&body))
            .await
            .map_err(|source| KubeError::Api {
                action: format!("label pod {}", cluster.identity()),
                source,
            })?;
        topology_pod.labels = labels;
        Ok(())
    }

    /// Replaces the topology labels of namespace `namespace` (see the module docs for reused
    /// namespaces).
    ///
    /// # Errors
    /// [`KubeError::NotDeployed`] or [`KubeError::Api`].
    pub async fn relabel_namespace_by_name(
        &mut self,
        namespace: &str,
        labels: Labels,
    ) -> Result<()> {
        let deployed = self.deployed.as_ref().ok_or(KubeError::NotDeployed)?;
        let mut state = deployed.namespaces.get(namespace).cloned().ok_or_else(|| {
            KubeError::Unsupported(format!("namespace {namespace} is not in the topology"))
        })?;
        let labels: Labels = labels
            .into_iter()
            .filter(|(k, _)| k != NAMESPACE_NAME_LABEL)
            .collect();
        self.relabel_namespace(&mut state, labels).await?;
        self.deployed_mut()?
            .namespaces
            .insert(namespace.to_owned(), state);
        Ok(())
    }

    /// Runs one batch from pod `src` (see [`run_batch`]); the identities the targets expect
    /// are translated to the cluster's names.
    ///
    /// # Errors
    /// [`KubeError::Exec`] for anything that kept the batch from producing its results.
    pub async fn probe_from(&self, src: PodIndex, targets: &[Target]) -> Result<Vec<ProbeResult>> {
        let deployed = self.deployed.as_ref().ok_or(KubeError::NotDeployed)?;
        let source = deployed.pods.get(src).ok_or(KubeError::NotDeployed)?;
        if source.provided {
            return Err(KubeError::Unsupported(format!(
                "probing from provided pod {}",
                deployed.topology.pods[src].id()
            )));
        }
        let identities: BTreeMap<String, String> = deployed
            .topology
            .pods
            .iter()
            .zip(&deployed.pods)
            .map(|(t, c)| (t.id(), c.identity()))
            .collect();
        let targets: Vec<Target> = targets
            .iter()
            .map(|t| Target {
                expect_identity: t
                    .expect_identity
                    .as_ref()
                    .map(|id| identities.get(id).cloned().unwrap_or_else(|| id.clone())),
                ..t.clone()
            })
            .collect();
        tracing::debug!(src = %source.identity(), targets = targets.len(), "exec probe batch");
        run_batch(
            &self.exec,
            &source.namespace,
            &source.name,
            &targets,
            self.config.exec_margin,
        )
        .await
        .map_err(|source_error: ExecError| KubeError::Exec {
            pod: source.identity(),
            source: source_error,
        })
    }

    /// Deletes what this run created: its policies, its Services and pods in reused
    /// namespaces, the labels it changed on reused namespaces (restored), and the namespaces
    /// it created (with the Services and pods in them).
    /// Objects already gone are fine; every deletion is attempted, the first error returned.
    ///
    /// # Errors
    /// [`KubeError::Api`] for the first deletion that failed.
    pub async fn remove_all(&mut self) -> Result<()> {
        let mut first_error = None;
        let mut note = |result: Result<()>| {
            if let Err(error) = result {
                tracing::warn!(error = %super::error::error_chain(&error), "teardown step failed");
                first_error.get_or_insert(error);
            }
        };
        for (namespace, name) in std::mem::take(&mut self.policies) {
            let api: Api<ApiNetworkPolicy> = Api::namespaced(self.client.clone(), &namespace);
            note(
                delete(&api, &name, || {
                    format!("delete NetworkPolicy {namespace}/{name}")
                })
                .await,
            );
        }
        let Some(deployed) = self.deployed.take() else {
            return first_error.map_or(Ok(()), Err);
        };
        let created: BTreeSet<&str> = deployed
            .namespaces
            .values()
            .filter(|s| s.created)
            .map(|s| s.cluster.as_str())
            .collect();
        for (namespace, name) in deployed
            .applied_services
            .iter()
            .filter(|(ns, _)| !created.contains(ns.as_str()))
        {
            let api: Api<Service> = Api::namespaced(self.client.clone(), namespace);
            note(delete(&api, name, || format!("delete Service {namespace}/{name}")).await);
        }
        for (namespace, name) in deployed
            .applied_pods
            .iter()
            .filter(|(ns, _)| !created.contains(ns.as_str()))
        {
            let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
            note(
                delete(&api, name, || {
                    format!("delete probe pod {namespace}/{name}")
                })
                .await,
            );
        }
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        for state in deployed.namespaces.values() {
            if state.created {
                let name = &state.cluster;
                note(delete(&namespaces, name, || format!("delete namespace {name}")).await);
            } else if !state.originals.is_empty() {
                let restore: serde_json::Map<_, _> = state
                    .originals
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.clone().map_or(serde_json::Value::Null, Into::into),
                        )
                    })
                    .collect();
                let body = serde_json::json!({ "metadata": { "labels": restore } });
                let name = &state.cluster;
                let result = namespaces
                    .patch(name, &merge_params(), &Patch::Merge(&body))
                    .await;
                note(
                    result
                        .map(drop)
                        .or_else(ignore_not_found)
                        .map_err(|source| KubeError::Api {
                            action: format!("restore the labels of namespace {name}"),
                            source,
                        }),
                );
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl<E: ExecTransport> Drop for KubeBackend<E> {
    fn drop(&mut self) {
        if self.deployed.is_some() || !self.policies.is_empty() {
            tracing::warn!(
                run_id = %self.config.run_id,
                "kube backend dropped without teardown: run `netpol-harness clean --backend kube` \
                 to remove what it left"
            );
        }
    }
}

impl<E: ExecTransport> Backend for KubeBackend<E> {
    fn name(&self) -> &'static str {
        "kube"
    }

    async fn deploy(&mut self, topology: &Topology) -> Result<(), BackendError> {
        Ok(self.deploy_topology(topology).await?)
    }

    /// Not atomic on a cluster: the new policies are applied before the stale ones are
    /// deleted, so for a moment the union of both sets is enforced (never no policy).
    async fn apply_policies(&mut self, policies: &[NetworkPolicy]) -> Result<(), BackendError> {
        Ok(self.replace_policies(policies).await?)
    }

    async fn set_pod_labels(&mut self, pod: PodIndex, labels: Labels) -> Result<(), BackendError> {
        Ok(self.relabel_pod(pod, labels).await?)
    }

    async fn set_namespace_labels(
        &mut self,
        namespace: &str,
        labels: Labels,
    ) -> Result<(), BackendError> {
        Ok(self.relabel_namespace_by_name(namespace, labels).await?)
    }

    async fn probe(
        &self,
        src: PodIndex,
        targets: &[Target],
    ) -> Result<Vec<ProbeResult>, BackendError> {
        Ok(self.probe_from(src, targets).await?)
    }

    fn address(&self, pod: PodIndex) -> IpAddr {
        match self.cluster_pod(pod) {
            Some(cluster) => cluster.address,
            None => {
                tracing::warn!(pod, "address asked before deploy");
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            }
        }
    }

    /// The ClusterIP of the Service the run created for a probe pod, or of the Service found
    /// in front of a provided pod (`kube-dns`).
    fn service_address(&self, pod: PodIndex) -> Option<IpAddr> {
        Some(self.cluster_pod(pod)?.service.as_ref()?.address)
    }

    /// `<service>.<namespace>.svc.<cluster domain>`, the namespace as deployed
    /// ([`KubeConfig::cluster_domain`]).
    fn service_host(&self, pod: PodIndex) -> Option<String> {
        let cluster = self.cluster_pod(pod)?;
        let service = cluster.service.as_ref()?;
        Some(format!(
            "{}.{}.svc.{}",
            service.name, cluster.namespace, self.config.cluster_domain
        ))
    }

    /// The ClusterIP of the Service in front of the topology's first provided pod serving
    /// DNS (`kube-dns`): the cluster DNS every pod resolves with. `None` without such a pod,
    /// as the local backend does: the engine cannot say whether DNS egress is allowed for a
    /// DNS server the topology does not have.
    fn resolver(&self) -> Option<IpAddr> {
        let deployed = self.deployed.as_ref()?;
        let (_, dns) =
            deployed
                .topology
                .pods
                .iter()
                .zip(&deployed.pods)
                .find(|(pod, cluster)| {
                    cluster.provided && pod.ports.iter().any(|p| p.effective_check() == Check::Dns)
                })?;
        Some(dns.service.as_ref()?.address)
    }

    async fn teardown(&mut self) -> Result<(), BackendError> {
        Ok(self.remove_all().await?)
    }
}

fn namespace_and_name(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> (String, String) {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// The pod IP and node of a ready probe pod.
fn deployed_pod(pod: &Pod) -> Result<ClusterPod> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let status = pod.status.as_ref();
    let address = status
        .and_then(|s| s.pod_ip.as_deref())
        .and_then(|ip| ip.parse().ok())
        .ok_or_else(|| KubeError::PodNotReady {
            pod: format!("{namespace}/{name}"),
            timeout: std::time::Duration::ZERO,
            events: vec!["ready but without a pod IP".to_owned()],
        })?;
    let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    Ok(ClusterPod {
        namespace,
        name,
        address,
        node,
        provided: false,
        service: None,
    })
}

/// A Service's ClusterIP; `None` when it has none (`None` is also how a headless Service
/// spells it).
fn cluster_ip(service: &Service) -> Option<IpAddr> {
    service.spec.as_ref()?.cluster_ip.as_deref()?.parse().ok()
}

/// Two probe pods of one namespace must not share a Service name: the name is also the
/// value of the label the Service selects its pod by. Distinct valid names never collide;
/// derived ones ([`super::names::service_name`]) only by a hash collision, or with a pod
/// already named like a derived name.
fn check_distinct_services(topology: &Topology, manifests: &[ProbeObjects]) -> Result<()> {
    let mut seen: BTreeMap<(String, String), PodIndex> = BTreeMap::new();
    for objects in manifests {
        let Some(service) = &objects.service else {
            continue;
        };
        if let Some(first) = seen.insert(namespace_and_name(&service.metadata), objects.index) {
            let (namespace, name) = namespace_and_name(&service.metadata);
            return Err(KubeError::Unsupported(format!(
                "pods {} and {} would share the Service name {name} in namespace {namespace}: \
                 rename one of them",
                topology.pods[first].id(),
                topology.pods[objects.index].id()
            )));
        }
    }
    Ok(())
}

/// Server-side apply, forced, with the harness's field manager.
async fn apply<K>(
    api: &Api<K>,
    name: &str,
    object: &K,
    action: impl FnOnce() -> String,
) -> Result<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .map_err(|source| KubeError::Api {
        action: action(),
        source,
    })
}

/// Deletes by name; an object already gone is not an error.
pub(super) async fn delete<K>(
    api: &Api<K>,
    name: &str,
    action: impl FnOnce() -> String,
) -> Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.delete(name, &DeleteParams::default())
        .await
        .map(drop)
        .or_else(ignore_not_found)
        .map_err(|source| KubeError::Api {
            action: action(),
            source,
        })
}

fn ignore_not_found(error: kube::Error) -> std::result::Result<(), kube::Error> {
    match error {
        kube::Error::Api(status) if status.is_not_found() => Ok(()),
        other => Err(other),
    }
}

fn merge_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..Default::default()
    }
}
