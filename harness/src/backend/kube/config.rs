//! What the Kubernetes backend is told: which cluster, which image, how long to wait.

use super::error::{KubeError, Result};
use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

/// The environment variable naming the kube context, read when `--kube-context` is absent.
pub const CONTEXT_ENV: &str = "NETPOL_KUBE_CONTEXT";

/// The environment variable overriding the probe image.
pub const IMAGE_ENV: &str = "NETPOL_PROBE_IMAGE";

/// The environment variable overriding the cluster's DNS domain.
pub const CLUSTER_DOMAIN_ENV: &str = "NETPOL_KUBE_CLUSTER_DOMAIN";

/// The DNS domain of Services unless told otherwise: the kubelet's default `clusterDomain`.
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";

/// The probe image `make image` builds and loads into kind.
pub const DEFAULT_IMAGE: &str = "netpol-probe:dev";

/// The image of the real Postgres server beside pods with a `postgres` port.
pub const POSTGRES_IMAGE: &str = "postgres:15";

/// The image of the real Redis server beside pods with a `redis` port.
pub const REDIS_IMAGE: &str = "redis:7";

/// The image of the DNS server beside pods with a `dns` port (the CoreDNS of Kubernetes 1.33,
/// already on kind's nodes).
pub const DNS_IMAGE: &str = "registry.k8s.io/coredns/coredns:v1.12.0";

/// The port on which every probe pod's agent answers `GET /healthz` for its readiness probe,
/// unless the pod already serves HTTP. Nothing probes it.
pub const DEFAULT_CANARY_PORT: u16 = 9999;

/// How the harness reaches the cluster. There is no default: a harness that creates and
/// deletes objects must be told which cluster it works on (see [`resolve_access`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterAccess {
    /// A context of the kubeconfig (`KUBECONFIG` or `~/.kube/config`): `--kube-context` or
    /// `NETPOL_KUBE_CONTEXT`.
    Context(String),
    /// The service account of the pod the harness runs in (`--in-cluster`), e.g. as a
    /// Sonobuoy plugin: the API server from `KUBERNETES_SERVICE_HOST`, the token and CA from
    /// `/var/run/secrets/kubernetes.io/serviceaccount`.
    InCluster,
}

impl fmt::Display for ClusterAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterAccess::Context(context) => write!(f, "context {context:?}"),
            ClusterAccess::InCluster => f.write_str("the in-cluster service account"),
        }
    }
}

/// Settings of a [`KubeBackend`](super::KubeBackend).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeConfig {
    /// The cluster to use; there is no default (see [`resolve_access`]).
    pub access: ClusterAccess,
    /// The probe image (default [`DEFAULT_IMAGE`]).
    pub image: String,
    /// Identifies this run: label value and namespace suffix. Lowercase alphanumerics.
    pub run_id: String,
    /// Topology namespaces used under their exact name (created when missing, reused when
    /// present). Namespaces of provided pods are always exact; every other namespace gets
    /// the suffix `-<run_id>`. Fill with [`namespaces_named_by`] to keep the names that the
    /// policies select by `kubernetes.io/metadata.name`.
    pub exact_namespaces: BTreeSet<String>,
    /// How long a probe pod may take to become ready (image pull included).
    pub ready_timeout: Duration,
    /// How long other waits (service accounts, deletions) may take.
    pub wait_timeout: Duration,
    /// Margin added to a probe batch's own deadline for the exec round trip.
    pub exec_margin: Duration,
    /// See [`DEFAULT_CANARY_PORT`].
    pub canary_port: u16,
    /// The cluster's DNS domain (the kubelet's `clusterDomain`): Service names are
    /// `<service>.<namespace>.svc.<cluster_domain>`. Default [`DEFAULT_CLUSTER_DOMAIN`].
    pub cluster_domain: String,
}

impl KubeConfig {
    /// A configuration for kubeconfig context `context` with a fresh run id and the
    /// defaults.
    pub fn new(context: impl Into<String>) -> Self {
        KubeConfig::with_access(ClusterAccess::Context(context.into()))
    }

    /// A configuration for `access` with a fresh run id and the defaults.
    pub fn with_access(access: ClusterAccess) -> Self {
        KubeConfig {
            access,
            image: DEFAULT_IMAGE.to_owned(),
            run_id: new_run_id(),
            exact_namespaces: BTreeSet::new(),
            ready_timeout: Duration::from_secs(180),
            wait_timeout: Duration::from_secs(60),
            exec_margin: Duration::from_secs(15),
            canary_port: DEFAULT_CANARY_PORT,
            cluster_domain: DEFAULT_CLUSTER_DOMAIN.to_owned(),
        }
    }

    /// A configuration from the command line's `--kube-context` (when given) and the
    /// environment ([`CONTEXT_ENV`], [`IMAGE_ENV`], [`CLUSTER_DOMAIN_ENV`]).
    ///
    /// # Errors
    /// [`KubeError::NoContext`] when neither names a context; [`KubeError::Setting`] for a
    /// cluster domain that is not a DNS name.
    pub fn from_env(flag: Option<String>) -> Result<Self> {
        KubeConfig::from_access(flag.map(ClusterAccess::Context))
    }

    /// A configuration for `access` as [`resolve_access`] completes it from the environment
    /// ([`CONTEXT_ENV`]), with the image from [`IMAGE_ENV`].
    ///
    /// # Errors
    /// [`KubeError::NoContext`] when `access` is `None` and the environment names no context.
    pub fn from_access(access: Option<ClusterAccess>) -> Result<Self> {
        let access = resolve_access(access, std::env::var(CONTEXT_ENV).ok())?;
        let mut config = KubeConfig::with_access(access);
        if let Some(image) = std::env::var(IMAGE_ENV).ok().filter(|i| !i.is_empty()) {
            config.image = image;
        }
        if let Some(domain) = std::env::var(CLUSTER_DOMAIN_ENV)
            .ok()
            .filter(|d| !d.is_empty())
        {
            config.cluster_domain = cluster_domain(&domain)?;
        }
        Ok(config)
    }
}

/// A cluster domain as [`CLUSTER_DOMAIN_ENV`] gives it: dot-separated DNS labels, a trailing
/// dot allowed (and dropped).
///
/// # Errors
/// [`KubeError::Setting`] naming the variable.
pub fn cluster_domain(value: &str) -> Result<String> {
    let domain = value.strip_suffix('.').unwrap_or(value);
    if crate::input::names::dns1123_subdomain(domain).is_err() {
        return Err(KubeError::Setting {
            variable: CLUSTER_DOMAIN_ENV,
            value: value.to_owned(),
            expected: "the cluster's DNS domain, lowercase DNS labels joined by dots \
                       (the kubelet's clusterDomain, e.g. cluster.local)",
        });
    }
    Ok(domain.to_owned())
}

/// The context to connect to: the flag, else the environment variable. Never the
/// kubeconfig's current context: a harness that creates and deletes objects must not guess.
///
/// # Errors
/// [`KubeError::NoContext`] when neither is given (or both are empty).
pub fn resolve_context(flag: Option<String>, env: Option<String>) -> Result<String> {
    flag.filter(|c| !c.is_empty())
        .or(env.filter(|c| !c.is_empty()))
        .ok_or(KubeError::NoContext)
}

/// The cluster to use: `access` as the command line gives it (`--kube-context` or
/// `--in-cluster`), else the context `env` names (`NETPOL_KUBE_CONTEXT`). Never the
/// kubeconfig's current context, and the in-cluster service account only when asked for.
///
/// # Errors
/// [`KubeError::NoContext`] when neither names a cluster (an empty context counts as none).
pub fn resolve_access(access: Option<ClusterAccess>, env: Option<String>) -> Result<ClusterAccess> {
    match access {
        Some(ClusterAccess::InCluster) => Ok(ClusterAccess::InCluster),
        Some(ClusterAccess::Context(flag)) => {
            resolve_context(Some(flag), env).map(ClusterAccess::Context)
        }
        None => resolve_context(None, env).map(ClusterAccess::Context),
    }
}

/// Connects to the cluster `access` names.
///
/// # Errors
/// As [`connect`] for a context; [`KubeError::InCluster`] when the in-cluster configuration
/// cannot be loaded (not in a pod, no service account token), [`KubeError::Client`] when no
/// client can be built from it.
pub async fn connect_to(access: &ClusterAccess) -> Result<kube::Client> {
    match access {
        ClusterAccess::Context(context) => connect(context).await,
        ClusterAccess::InCluster => {
            let config = kube::Config::incluster().map_err(KubeError::InCluster)?;
            kube::Client::try_from(config).map_err(|source| KubeError::Client {
                context: "in-cluster".to_owned(),
                source,
            })
        }
    }
}

/// Connects to the named context of the kubeconfig (`KUBECONFIG` or `~/.kube/config`).
///
/// # Errors
/// [`KubeError::Kubeconfig`] when the context is missing or unreadable,
/// [`KubeError::Client`] when no client can be built from it.
pub async fn connect(context: &str) -> Result<kube::Client> {
    let options = kube::config::KubeConfigOptions {
        context: Some(context.to_owned()),
        ..Default::default()
    };
    let config = kube::Config::from_kubeconfig(&options)
        .await
        .map_err(|source| KubeError::Kubeconfig {
            context: context.to_owned(),
            source,
        })?;
    kube::Client::try_from(config).map_err(|source| KubeError::Client {
        context: context.to_owned(),
        source,
    })
}

/// A short run id: 6 base-36 characters from the clock and the process id. Unique enough to
/// keep two runs on one cluster apart; not a secret.
pub fn new_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut seed = (nanos as u64) ^ (u64::from(std::process::id()) << 32);
    // One round of splitmix64 so that runs started close together differ in every digit.
    seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    seed = (seed ^ (seed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    seed = (seed ^ (seed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    seed ^= seed >> 31;
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..6)
        .map(|_| {
            let digit = DIGITS[(seed % 36) as usize] as char;
            seed /= 36;
            digit
        })
        .collect()
}

pub use super::names::namespaces_named_by;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_over_the_environment() {
        let context = resolve_context(Some("kind-a".into()), Some("kind-b".into())).unwrap();
        assert_eq!(context, "kind-a");
    }

    #[test]
    fn the_environment_is_used_without_a_flag() {
        assert_eq!(
            resolve_context(None, Some("kind-netpol".into())).unwrap(),
            "kind-netpol"
        );
    }

    #[test]
    fn without_a_context_the_backend_refuses_to_run() {
        for (flag, env) in [(None, None), (Some(String::new()), Some(String::new()))] {
            let error = resolve_context(flag, env).unwrap_err();
            assert!(matches!(error, KubeError::NoContext));
            let message = error.to_string();
            assert!(message.contains("--kube-context"), "{message}");
            assert!(message.contains(CONTEXT_ENV), "{message}");
        }
    }

    #[test]
    fn the_in_cluster_service_account_is_used_only_when_asked_for() {
        let env = Some("kind-b".to_owned());
        let asked = resolve_access(Some(ClusterAccess::InCluster), env.clone()).unwrap();
        assert_eq!(asked, ClusterAccess::InCluster);
        let not_asked = resolve_access(None, env).unwrap();
        assert_eq!(not_asked, ClusterAccess::Context("kind-b".into()));
        let error = resolve_access(None, None).unwrap_err();
        assert!(matches!(error, KubeError::NoContext), "{error}");
        assert!(error.to_string().contains("--in-cluster"), "{error}");
    }

    #[test]
    fn an_empty_context_flag_falls_back_to_the_environment() {
        let access = ClusterAccess::Context(String::new());
        let resolved = resolve_access(Some(access), Some("kind-env".into())).unwrap();
        assert_eq!(resolved, ClusterAccess::Context("kind-env".into()));
    }

    #[tokio::test]
    async fn in_cluster_access_outside_a_pod_says_how_to_name_a_context_instead() {
        // Inside a pod (a cluster job running the tests) the configuration would load.
        if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
            return;
        }
        let Err(error) = connect_to(&ClusterAccess::InCluster).await else {
            panic!("a client outside a pod");
        };
        assert!(matches!(error, KubeError::InCluster(_)), "{error:?}");
        assert!(error.to_string().contains("--kube-context"), "{error}");
    }

    #[tokio::test]
    async fn an_unknown_context_is_a_kubeconfig_error() {
        let dir = std::env::temp_dir().join(format!("nph-kubeconfig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n",
        )
        .unwrap();
        let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
        let options = kube::config::KubeConfigOptions {
            context: Some("kind-missing".into()),
            ..Default::default()
        };
        let result = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await;
        assert!(
            result.is_err(),
            "a missing context must not fall back to another"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Building a TLS client is where two rustls crypto providers (ring from kube, aws-lc-rs
    /// from a dependency's defaults) would panic; it connects to nothing.
    #[tokio::test]
    async fn a_client_for_a_tls_context_builds_with_a_single_crypto_provider() {
        let kubeconfig: kube::config::Kubeconfig = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": {
                "server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": true}}],
            "users": [{"name": "u", "user": {"token": "t"}}],
            "contexts": [{"name": "kind-test", "context": {"cluster": "c", "user": "u"}}]
        }))
        .unwrap();
        let options = kube::config::KubeConfigOptions {
            context: Some("kind-test".into()),
            ..Default::default()
        };
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .unwrap();
        assert_eq!(config.cluster_url.to_string(), "https://127.0.0.1:6443/");
        kube::Client::try_from(config).expect("a TLS client");
    }

    #[test]
    fn a_cluster_domain_is_a_dns_name_and_loses_its_trailing_dot() {
        assert_eq!(cluster_domain("cluster.local").unwrap(), "cluster.local");
        assert_eq!(cluster_domain("corp.example.").unwrap(), "corp.example");
        for bad in ["", ".", "Cluster.local", "a..b", "-a.b", "a_b.local"] {
            let error = cluster_domain(bad).unwrap_err();
            let message = error.to_string();
            assert!(message.contains(CLUSTER_DOMAIN_ENV), "{message}");
            assert!(message.contains("clusterDomain"), "{message}");
        }
    }

    #[test]
    fn run_ids_are_short_lowercase_alphanumerics() {
        let id = new_run_id();
        assert_eq!(id.len(), 6);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
            "{id}"
        );
    }
}
