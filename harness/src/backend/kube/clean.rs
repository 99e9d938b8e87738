//! `netpol-harness clean --backend kube`: removes what any run left behind, selecting only
//! objects labelled `app.kubernetes.io/managed-by=netpol-harness`.

use super::backend::delete;
use super::error::{KubeError, Result};
use super::names::managed_selector;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, ListParams};
use std::collections::BTreeSet;

/// What [`clean`] deleted: `kind namespace/name` (or `Namespace name`), in deletion order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cleaned {
    pub deleted: Vec<String>,
}

/// Connects to the context from `flag` (`--kube-context`) or `NETPOL_KUBE_CONTEXT` and runs
/// [`clean`]: what `netpol-harness clean --backend kube` does.
///
/// # Errors
/// [`KubeError::NoContext`], the connection errors of [`connect`](super::connect), or those
/// of [`clean`].
pub async fn clean_context(flag: Option<String>) -> Result<Cleaned> {
    clean_cluster(flag.map(super::ClusterAccess::Context)).await
}

/// As [`clean_context`], with the cluster given as `access` (`--kube-context` or
/// `--in-cluster`; `None`: `NETPOL_KUBE_CONTEXT`).
///
/// # Errors
/// As [`clean_context`].
pub async fn clean_cluster(access: Option<super::ClusterAccess>) -> Result<Cleaned> {
    let access =
        super::config::resolve_access(access, std::env::var(super::config::CONTEXT_ENV).ok())?;
    let client = super::connect_to(&access).await?;
    clean(&client).await
}

/// Deletes every labelled namespace (the namespaces runs created, with everything in them),
/// then the labelled NetworkPolicies, Services and pods left in other namespaces (those runs
/// reused). Unlabelled objects are never touched, whatever namespace they are in.
///
/// # Errors
/// [`KubeError::Api`] for the first list or deletion that failed (deletions stop there).
pub async fn clean(client: &kube::Client) -> Result<Cleaned> {
    let params = ListParams::default().labels(&managed_selector());
    let mut cleaned = Cleaned::default();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let owned = namespaces
        .list(&params)
        .await
        .map_err(|source| KubeError::Api {
            action: "list the harness's namespaces".into(),
            source,
        })?;
    let mut deleted_namespaces = BTreeSet::new();
    for namespace in owned.items {
        let name = namespace.metadata.name.unwrap_or_default();
        tracing::debug!(namespace = %name, "deleting a labelled namespace");
        delete(&namespaces, &name, || format!("delete namespace {name}")).await?;
        cleaned.deleted.push(format!("Namespace {name}"));
        deleted_namespaces.insert(name);
    }
    clean_kind::<NetworkPolicy>(client, &params, &deleted_namespaces, &mut cleaned).await?;
    clean_kind::<Service>(client, &params, &deleted_namespaces, &mut cleaned).await?;
    clean_kind::<Pod>(client, &params, &deleted_namespaces, &mut cleaned).await?;
    Ok(cleaned)
}

/// Deletes the labelled objects of kind `K` outside `skip` (namespaces already going away).
async fn clean_kind<K>(
    client: &kube::Client,
    params: &ListParams,
    skip: &BTreeSet<String>,
    cleaned: &mut Cleaned,
) -> Result<()>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    let all: Api<K> = Api::all(client.clone());
    let list = all.list(params).await.map_err(|source| KubeError::Api {
        action: format!("list the harness's {kind}s"),
        source,
    })?;
    for object in list.items {
        let meta = object.meta();
        let namespace = meta.namespace.clone().unwrap_or_default();
        let name = meta.name.clone().unwrap_or_default();
        if skip.contains(&namespace) {
            continue;
        }
        let api: Api<K> = Api::namespaced(client.clone(), &namespace);
        delete(&api, &name, || format!("delete {kind} {namespace}/{name}")).await?;
        cleaned.deleted.push(format!("{kind} {namespace}/{name}"));
    }
    Ok(())
}
