//! The implementation under test: which CNI (and version) enforced the policies, on which
//! Kubernetes version.
//!
//! On a cluster the CNI is recognised from the images of its DaemonSets (in any namespace:
//! operators install Calico into `calico-system`), the version is the image tag, and the
//! Kubernetes version is the API server's `/version`. On the local backend the implementation
//! is the harness's own nftables data plane (`local-nftables`) at the version of `nft`.
//! `--cni-name` and `--cni-version` override what was detected, e.g. for a CNI this module
//! does not know or an image without a tag.

use super::error::{Error, Result};
use k8s_openapi::api::apps::v1::DaemonSet;
use kube::api::{Api, ListParams};
use serde::{Deserialize, Serialize};

/// The name and version reported when they could not be found.
pub const UNKNOWN: &str = "unknown";

/// The name of the local backend's data plane.
pub const LOCAL_DATA_PLANE: &str = "local-nftables";

/// What was certified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Implementation {
    /// The CNI's name (`calico`, `cilium`, ..., `local-nftables`), or `unknown`.
    pub cni: String,
    /// Its version (the image tag on a cluster), or `unknown`.
    pub cni_version: String,
    /// How name and version were found: the DaemonSet and image they were read from, the
    /// flags that overrode them, or why they are unknown.
    pub source: String,
    /// The API server's version (`v1.33.1`); `None` on the local backend.
    pub kubernetes_version: Option<String>,
}

impl Implementation {
    /// `name version`, e.g. `calico v3.32.1`.
    pub fn title(&self) -> String {
        format!("{} {}", self.cni, self.cni_version)
    }

    /// Replaces the name and version with the flags' values, where given, and says so in
    /// [`source`](Self::source).
    pub fn overridden(mut self, name: Option<&str>, version: Option<&str>) -> Self {
        let mut given = Vec::new();
        if let Some(name) = name {
            self.cni = name.to_owned();
            given.push("--cni-name");
        }
        if let Some(version) = version {
            self.cni_version = version.to_owned();
            given.push("--cni-version");
        }
        if !given.is_empty() {
            self.source = format!(
                "given with {} (detected: {})",
                given.join(" and "),
                self.source
            );
        }
        self
    }
}

/// A CNI this module recognises: its name, and whether an image repository is its agent's.
struct KnownCni {
    name: &'static str,
    matches: fn(&str) -> bool,
}

/// In priority order: where two are found (Canal is Calico's policy engine over Flannel's
/// network; Cilium can chain onto another CNI), the first one enforces the policies.
const KNOWN_CNIS: [KnownCni; 6] = [
    KnownCni {
        name: "cilium",
        matches: |repo| repo.ends_with("cilium/cilium"),
    },
    KnownCni {
        name: "calico",
        matches: |repo| repo.ends_with("calico/node"),
    },
    KnownCni {
        name: "antrea",
        matches: |repo| {
            let last = last_segment(repo);
            last.starts_with("antrea-agent") || last == "antrea-ubuntu"
        },
    },
    KnownCni {
        name: "weave",
        matches: |repo| last_segment(repo) == "weave-kube",
    },
    KnownCni {
        name: "kindnet",
        matches: |repo| last_segment(repo) == "kindnetd",
    },
    KnownCni {
        name: "flannel",
        matches: |repo| last_segment(repo) == "flannel",
    },
];

fn last_segment(repo: &str) -> &str {
    repo.rsplit('/').next().unwrap_or(repo)
}

/// An image reference split into repository and tag: `quay.io/cilium/cilium:v1.18.0@sha256:…`
/// is `("quay.io/cilium/cilium", Some("v1.18.0"))`. A registry port is not a tag.
pub fn split_image(image: &str) -> (&str, Option<&str>) {
    let image = image.split('@').next().unwrap_or(image);
    let name_start = image.rfind('/').map_or(0, |slash| slash + 1);
    match image[name_start..].rfind(':') {
        Some(colon) => {
            let colon = name_start + colon;
            (&image[..colon], Some(&image[colon + 1..]))
        }
        None => (image, None),
    }
}

/// The CNI that `daemonsets` run, recognised from their containers' images, as
/// `(name, version, source)`; `None` when no known CNI runs.
pub fn recognise_cni(daemonsets: &[DaemonSet]) -> Option<(String, String, String)> {
    let mut images = Vec::new();
    for daemonset in daemonsets {
        let namespace = daemonset.metadata.namespace.as_deref().unwrap_or_default();
        let name = daemonset.metadata.name.as_deref().unwrap_or_default();
        let Some(pod) = daemonset
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
        else {
            continue;
        };
        for container in &pod.containers {
            if let Some(image) = &container.image {
                images.push((format!("{namespace}/{name}"), image.clone()));
            }
        }
    }
    KNOWN_CNIS.iter().find_map(|cni| {
        images.iter().find_map(|(workload, image)| {
            let (repo, tag) = split_image(image);
            (cni.matches)(repo).then(|| {
                let version = tag.unwrap_or(UNKNOWN).to_owned();
                let source = format!("detected: DaemonSet {workload}, image {image}");
                (cni.name.to_owned(), version, source)
            })
        })
    })
}

/// Asks the cluster behind `client` what it runs: the API server's version and the CNI of
/// its DaemonSets. A CNI that cannot be listed (no permission) is reported as unknown, with
/// why, rather than failing the certification: `--cni-name` can name it.
///
/// # Errors
/// [`Error::Cluster`] when the API server's version cannot be read (the cluster is not
/// reachable, so nothing could be tested).
pub async fn of_cluster(client: &kube::Client) -> Result<Implementation> {
    let version = client
        .apiserver_version()
        .await
        .map_err(|source| Error::Cluster {
            action: "read the API server's version".to_owned(),
            source,
        })?;
    let daemonsets: Api<DaemonSet> = Api::all(client.clone());
    let (cni, cni_version, source) = match daemonsets.list(&ListParams::default()).await {
        Ok(list) => recognise_cni(&list.items).unwrap_or_else(|| {
            let source = format!(
                "not detected: no DaemonSet runs a known CNI image ({}); name it with \
                 --cni-name and --cni-version",
                KNOWN_CNIS.map(|c| c.name).join(", ")
            );
            (UNKNOWN.to_owned(), UNKNOWN.to_owned(), source)
        }),
        Err(error) => {
            tracing::warn!(%error, "cannot list DaemonSets to detect the CNI");
            let source = format!(
                "not detected: listing DaemonSets failed ({error}); name it with --cni-name \
                 and --cni-version"
            );
            (UNKNOWN.to_owned(), UNKNOWN.to_owned(), source)
        }
    };
    Ok(Implementation {
        cni,
        cni_version,
        source,
        kubernetes_version: Some(version.git_version),
    })
}

/// The local backend's data plane: `local-nftables` at the version `nft --version` prints.
pub fn local() -> Implementation {
    let output = std::process::Command::new("nft").arg("--version").output();
    let (version, source) = match output {
        Ok(output) if output.status.success() => {
            let text = String::from_utf8_lossy(&output.stdout).into_owned();
            match nft_version(&text) {
                Some(version) => (
                    version.to_owned(),
                    format!("nft --version: {}", text.trim()),
                ),
                None => (
                    UNKNOWN.to_owned(),
                    format!("nft --version printed {text:?}"),
                ),
            }
        }
        Ok(output) => (
            UNKNOWN.to_owned(),
            format!("nft --version failed ({})", output.status),
        ),
        Err(error) => (UNKNOWN.to_owned(), format!("nft could not be run: {error}")),
    };
    Implementation {
        cni: LOCAL_DATA_PLANE.to_owned(),
        cni_version: version,
        source,
        kubernetes_version: None,
    }
}

/// The version word of `nft --version`'s output: `nftables v1.0.6 (Lester Gooch #5)` gives
/// `v1.0.6`.
pub fn nft_version(text: &str) -> Option<&str> {
    text.split_whitespace()
        .find(|word| word.starts_with('v') && word[1..].starts_with(|c: char| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use std::convert::Infallible;

    fn daemonset(namespace: &str, name: &str, images: &[&str]) -> Value {
        let containers: Vec<Value> = images
            .iter()
            .enumerate()
            .map(|(i, image)| json!({"name": format!("c{i}"), "image": image}))
            .collect();
        json!({
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "selector": {"matchLabels": {"k8s-app": name}},
                "template": {"metadata": {"labels": {"k8s-app": name}},
                             "spec": {"containers": containers}}
            }
        })
    }

    fn parsed(values: Vec<Value>) -> Vec<DaemonSet> {
        values
            .into_iter()
            .map(|v| serde_json::from_value(v).unwrap())
            .collect()
    }

    #[test]
    fn image_references_split_into_repository_and_tag() {
        let cases = [
            (
                "quay.io/cilium/cilium:v1.18.0",
                ("quay.io/cilium/cilium", Some("v1.18.0")),
            ),
            (
                "quay.io/cilium/cilium:v1.18.0@sha256:abc",
                ("quay.io/cilium/cilium", Some("v1.18.0")),
            ),
            (
                "registry:5000/calico/node",
                ("registry:5000/calico/node", None),
            ),
            (
                "registry:5000/calico/node:v3.32.1",
                ("registry:5000/calico/node", Some("v3.32.1")),
            ),
            ("kindnetd@sha256:abc", ("kindnetd", None)),
        ];
        for (image, expected) in cases {
            assert_eq!(split_image(image), expected, "{image}");
        }
    }

    #[test]
    fn each_known_cni_is_recognised_from_its_agent_image_with_the_tag_as_version() {
        let cases = [
            (
                "kube-system",
                "calico-node",
                "docker.io/calico/node:v3.32.1",
                "calico",
                "v3.32.1",
            ),
            (
                "calico-system",
                "calico-node",
                "quay.io/calico/node:v3.30.0",
                "calico",
                "v3.30.0",
            ),
            (
                "kube-system",
                "cilium",
                "quay.io/cilium/cilium:v1.18.0@sha256:1",
                "cilium",
                "v1.18.0",
            ),
            (
                "kube-flannel",
                "kube-flannel-ds",
                "ghcr.io/flannel-io/flannel:v0.26.7",
                "flannel",
                "v0.26.7",
            ),
            (
                "kube-system",
                "kindnet",
                "docker.io/kindest/kindnetd:v20250512-df8de77b",
                "kindnet",
                "v20250512-df8de77b",
            ),
            (
                "kube-system",
                "antrea-agent",
                "antrea/antrea-agent-ubuntu:v2.3.0",
                "antrea",
                "v2.3.0",
            ),
            (
                "kube-system",
                "weave-net",
                "weaveworks/weave-kube:2.8.1",
                "weave",
                "2.8.1",
            ),
        ];
        for (namespace, name, image, cni, version) in cases {
            let proxy = daemonset(
                "kube-system",
                "kube-proxy",
                &["registry.k8s.io/kube-proxy:v1.33.1"],
            );
            let found = recognise_cni(&parsed(vec![proxy, daemonset(namespace, name, &[image])]));
            let (found_cni, found_version, source) = found.expect(image);
            assert_eq!(
                (found_cni.as_str(), found_version.as_str()),
                (cni, version),
                "{image}"
            );
            assert!(source.contains(&format!("{namespace}/{name}")), "{source}");
            assert!(source.contains(image), "{source}");
        }
    }

    #[test]
    fn the_policy_engine_wins_when_two_cnis_run_together() {
        // Canal: Calico enforces the policies over Flannel's network.
        let canal = daemonset(
            "kube-system",
            "canal",
            &[
                "docker.io/flannel/flannel:v0.26.7",
                "docker.io/calico/node:v3.32.1",
            ],
        );
        let kindnet = daemonset("kube-system", "kindnet", &["docker.io/kindest/kindnetd:v1"]);
        let (cni, version, _) = recognise_cni(&parsed(vec![kindnet, canal])).unwrap();
        assert_eq!((cni.as_str(), version.as_str()), ("calico", "v3.32.1"));
    }

    #[test]
    fn an_untagged_image_has_an_unknown_version_and_no_cni_image_no_cni() {
        let untagged = daemonset("kube-system", "cilium", &["quay.io/cilium/cilium@sha256:1"]);
        let (_, version, _) = recognise_cni(&parsed(vec![untagged])).unwrap();
        assert_eq!(version, UNKNOWN);
        let proxy = daemonset(
            "kube-system",
            "kube-proxy",
            &["registry.k8s.io/kube-proxy:v1.33.1"],
        );
        assert_eq!(recognise_cni(&parsed(vec![proxy])), None);
    }

    #[test]
    fn flags_override_what_was_detected_and_say_so() {
        let detected = Implementation {
            cni: UNKNOWN.into(),
            cni_version: UNKNOWN.into(),
            source: "not detected".into(),
            kubernetes_version: Some("v1.33.1".into()),
        };
        let given = detected.overridden(Some("ovn-kubernetes"), Some("1.0"));
        assert_eq!(given.title(), "ovn-kubernetes 1.0");
        assert!(
            given.source.contains("--cni-name and --cni-version"),
            "{}",
            given.source
        );
        assert!(given.source.contains("not detected"), "{}", given.source);
    }

    #[test]
    fn the_nft_version_is_the_v_word_of_its_banner() {
        assert_eq!(
            nft_version("nftables v1.0.6 (Lester Gooch #5)\n"),
            Some("v1.0.6")
        );
        assert_eq!(nft_version("nftables version unknown"), None);
    }

    /// A fake API server (an in-process tower service, as in the kube backend's tests) that
    /// answers `/version` and the DaemonSet list, or refuses the list.
    fn fake_cluster(daemonsets: Option<Vec<Value>>) -> kube::Client {
        let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
            let daemonsets = daemonsets.clone();
            async move {
                let (code, body) = match request.uri().path() {
                    "/version" => (
                        200,
                        json!({"major": "1", "minor": "33", "gitVersion": "v1.33.1",
                               "gitCommit": "8adc0f041b8e7ad1d30e29cc59c6ae7a15e19828",
                               "gitTreeState": "clean", "buildDate": "2025-05-15T08:19:08Z",
                               "goVersion": "go1.24.2", "compiler": "gc",
                               "platform": "linux/amd64"}),
                    ),
                    "/apis/apps/v1/daemonsets" => match &daemonsets {
                        Some(items) => (
                            200,
                            json!({"apiVersion": "apps/v1", "kind": "DaemonSetList",
                                   "metadata": {"resourceVersion": "1"}, "items": items}),
                        ),
                        None => (
                            403,
                            json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                   "status": "Failure", "reason": "Forbidden", "code": 403,
                                   "message": "daemonsets.apps is forbidden: User \
                                               \"system:serviceaccount:sonobuoy:x\" cannot \
                                               list resource \"daemonsets\""}),
                        ),
                    },
                    other => panic!("unexpected request to {other}"),
                };
                let response = http::Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(kube::client::Body::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap();
                Ok::<_, Infallible>(response)
            }
        });
        kube::Client::new(service, "default")
    }

    #[tokio::test]
    async fn a_cluster_reports_its_kubernetes_version_and_the_cni_of_its_daemonsets() {
        let client = fake_cluster(Some(vec![
            daemonset(
                "kube-system",
                "kube-proxy",
                &["registry.k8s.io/kube-proxy:v1.33.1"],
            ),
            daemonset(
                "kube-system",
                "calico-node",
                &["docker.io/calico/node:v3.32.1"],
            ),
        ]));
        let found = of_cluster(&client).await.unwrap();
        assert_eq!(found.kubernetes_version.as_deref(), Some("v1.33.1"));
        assert_eq!(found.title(), "calico v3.32.1");
        assert!(
            found.source.contains("kube-system/calico-node"),
            "{}",
            found.source
        );
    }

    #[tokio::test]
    async fn a_cluster_without_a_known_cni_is_unknown_and_says_which_flags_name_it() {
        let client = fake_cluster(Some(vec![daemonset(
            "kube-system",
            "ovnkube-node",
            &["ghcr.io/ovn-org/ovn-kubernetes/ovn-kube-ubuntu:master"],
        )]));
        let found = of_cluster(&client).await.unwrap();
        assert_eq!(found.title(), "unknown unknown");
        assert!(found.source.contains("--cni-name"), "{}", found.source);
    }

    #[tokio::test]
    async fn daemonsets_the_harness_may_not_list_leave_the_cni_unknown_not_the_run_failed() {
        let found = of_cluster(&fake_cluster(None)).await.unwrap();
        assert_eq!(found.cni, UNKNOWN);
        assert!(found.source.contains("forbidden"), "{}", found.source);
        assert_eq!(found.kubernetes_version.as_deref(), Some("v1.33.1"));
    }
}
