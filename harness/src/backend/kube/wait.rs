//! Waiting for the cluster: watches through `kube::runtime::wait::await_condition`, each with
//! a timeout and a description of what it waits for.

use super::error::{KubeError, Result};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams};
use kube::runtime::wait::{await_condition, conditions};
use std::fmt::Debug;
use std::time::Duration;

/// Whether a pod's `Ready` condition is `True`: every container passes its readiness probe.
pub fn is_pod_ready(pod: Option<&Pod>) -> bool {
    pod.and_then(|p| p.status.as_ref())
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}

/// Waits until pod `namespace/name` is ready and returns it (with its IP and node).
///
/// # Errors
/// [`KubeError::PodNotReady`] with the pod's events and container states after `timeout`;
/// [`KubeError::Wait`] when the watch fails.
pub async fn pod_ready(
    client: kube::Client,
    namespace: String,
    name: String,
    timeout: Duration,
) -> Result<Pod> {
    let api: Api<Pod> = Api::namespaced(client, &namespace);
    tracing::debug!(pod = %format!("{namespace}/{name}"), ?timeout, "waiting for the pod to be ready");
    let waited =
        tokio::time::timeout(timeout, await_condition(api.clone(), &name, is_pod_ready)).await;
    match waited {
        Ok(Ok(Some(pod))) => Ok(pod),
        Ok(Ok(None)) | Err(_) => Err(KubeError::PodNotReady {
            pod: format!("{namespace}/{name}"),
            timeout,
            events: diagnose(&api, &name).await,
        }),
        Ok(Err(source)) => Err(KubeError::Wait {
            what: format!("pod {namespace}/{name} to be ready"),
            source,
        }),
    }
}

/// Waits until object `name` exists (e.g. the `default` service account of a new namespace,
/// without which the API server refuses pods).
///
/// # Errors
/// [`KubeError::Timeout`] or [`KubeError::Wait`], naming `what`.
pub async fn created<K>(api: Api<K>, name: &str, what: String, timeout: Duration) -> Result<()>
where
    K: Clone + Debug + Send + serde::de::DeserializeOwned + kube::Resource + 'static,
{
    tracing::debug!(%what, ?timeout, "waiting");
    match tokio::time::timeout(
        timeout,
        await_condition(api, name, conditions::is_created()),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(source)) => Err(KubeError::Wait { what, source }),
        Err(_) => Err(KubeError::Timeout { what, timeout }),
    }
}

/// Waits until the object `name` with `uid` is gone (deleted, or replaced by a new one).
///
/// # Errors
/// [`KubeError::Timeout`] or [`KubeError::Wait`], naming `what`.
pub async fn deleted<K>(
    api: Api<K>,
    name: &str,
    uid: &str,
    what: String,
    timeout: Duration,
) -> Result<()>
where
    K: Clone + Debug + Send + serde::de::DeserializeOwned + kube::Resource + 'static,
{
    tracing::debug!(%what, ?timeout, "waiting");
    let gone = await_condition(api, name, conditions::is_deleted(uid));
    match tokio::time::timeout(timeout, gone).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(source)) => Err(KubeError::Wait { what, source }),
        Err(_) => Err(KubeError::Timeout { what, timeout }),
    }
}

/// What explains a pod that is not ready: why each container waits or failed, then the
/// pod's events (`reason: message`), as far as they can be read.
pub async fn diagnose(api: &Api<Pod>, name: &str) -> Vec<String> {
    let mut lines = Vec::new();
    match api.get_opt(name).await {
        Ok(Some(pod)) => lines.extend(container_states(&pod)),
        Ok(None) => lines.push("the pod does not exist".to_owned()),
        Err(error) => lines.push(format!("pod unreadable: {error}")),
    }
    let events: Api<Event> = Api::namespaced(
        api.clone().into_client(),
        api.namespace().unwrap_or_default(),
    );
    let params = ListParams::default().fields(&format!("involvedObject.name={name}"));
    match events.list(&params).await {
        Ok(list) => lines.extend(list.items.iter().map(|e| {
            format!(
                "{}: {}",
                e.reason.as_deref().unwrap_or("Event"),
                e.message.as_deref().unwrap_or("").trim()
            )
        })),
        Err(error) => lines.push(format!("events unreadable: {error}")),
    }
    lines
}

/// `container NAME waiting: REASON: MESSAGE` for each container that is not running.
fn container_states(pod: &Pod) -> Vec<String> {
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref());
    let mut lines = Vec::new();
    if let Some(phase) = pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        lines.push(format!("phase {phase}"));
    }
    for status in statuses.into_iter().flatten() {
        let state = status.state.as_ref();
        if let Some(waiting) = state.and_then(|s| s.waiting.as_ref()) {
            lines.push(format!(
                "container {} waiting: {}: {}",
                status.name,
                waiting.reason.as_deref().unwrap_or("unknown"),
                waiting.message.as_deref().unwrap_or("")
            ));
        } else if let Some(terminated) = state.and_then(|s| s.terminated.as_ref()) {
            lines.push(format!(
                "container {} terminated: {} (exit code {})",
                status.name,
                terminated.reason.as_deref().unwrap_or("unknown"),
                terminated.exit_code
            ));
        } else if !status.ready {
            lines.push(format!("container {} running but not ready", status.name));
        }
    }
    lines
}
