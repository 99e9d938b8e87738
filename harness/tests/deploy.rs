//! The Sonobuoy plugin (`deploy/sonobuoy-plugin.yaml`), its RBAC (`deploy/rbac.yaml`), its
//! entry point (`deploy/sonobuoy-results.sh`) and the harness image (`harness/Dockerfile`)
//! fit together: the container is a valid Kubernetes container running a `certify` command
//! this harness accepts, on profiles the kube backend can run, writing where Sonobuoy
//! collects; the pod runs as the service account the RBAC binds; the image holds the entry
//! point; and the entry point hands the results over as Sonobuoy's worker expects.
//!
//! That the RBAC covers every request the kube backend makes is checked beside the backend's
//! fake API server (`backend::kube::tests`).

use clap::Parser;
use k8s_openapi::api::core::v1::{Container, PodSpec, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use netpol_harness::certify::profile;
use netpol_harness::cli::{Cli, Command};
use netpol_harness::runner::BackendKind;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command as Process;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str_multiple(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn plugin() -> Value {
    let mut documents = yaml_documents(&repo().join("deploy/sonobuoy-plugin.yaml"));
    assert_eq!(documents.len(), 1, "a plugin definition is one document");
    documents.remove(0)
}

fn container() -> Container {
    serde_json::from_value(plugin()["spec"].clone()).expect("spec is a Kubernetes container")
}

#[test]
fn the_plugin_is_a_junit_job_whose_pod_runs_as_the_service_account_the_rbac_binds() {
    let plugin = plugin();
    let config = &plugin["sonobuoy-config"];
    assert_eq!(config["driver"], "Job");
    assert_eq!(config["plugin-name"], "netpol-harness");
    assert_eq!(config["result-format"], "junit");
    let pod: PodSpec = serde_json::from_value(plugin["podSpec"].clone()).expect("a pod spec");
    let account = pod.service_account_name.expect("a service account");

    let rbac = yaml_documents(&repo().join("deploy/rbac.yaml"));
    let of_kind = |kind: &str| {
        rbac.iter()
            .find(|d| d["kind"] == kind)
            .unwrap_or_else(|| panic!("deploy/rbac.yaml has a {kind}"))
            .clone()
    };
    let service_account: ServiceAccount =
        serde_json::from_value(of_kind("ServiceAccount")).unwrap();
    assert_eq!(
        service_account.metadata.name.as_deref(),
        Some(account.as_str())
    );
    // Sonobuoy runs its plugins in its own namespace, `sonobuoy` unless told otherwise.
    assert_eq!(
        service_account.metadata.namespace.as_deref(),
        Some("sonobuoy")
    );
    let binding: ClusterRoleBinding =
        serde_json::from_value(of_kind("ClusterRoleBinding")).unwrap();
    let role = of_kind("ClusterRole");
    assert_eq!(binding.role_ref.kind, "ClusterRole");
    assert_eq!(
        Some(&binding.role_ref.name),
        role["metadata"]["name"]
            .as_str()
            .map(str::to_owned)
            .as_ref()
    );
    let subjects = binding.subjects.unwrap_or_default();
    assert!(
        subjects.iter().any(|s| s.kind == "ServiceAccount"
            && s.name == account
            && s.namespace.as_deref() == Some("sonobuoy")),
        "{subjects:?}"
    );
}

#[test]
fn the_container_runs_a_valid_in_cluster_certification_into_the_results_directory() {
    let container = container();
    let args = container.args.clone().expect("args");
    let cli = Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    let Command::Certify(certify) = cli.command else {
        panic!("{args:?} is not `netpol-harness certify`");
    };
    assert_eq!(certify.backend, BackendKind::Kube);
    assert!(certify.kube.in_cluster, "a plugin pod has no kubeconfig");
    assert_eq!(certify.kube.kube_context, None);

    let mount = container
        .volume_mounts
        .unwrap_or_default()
        .into_iter()
        .find(|m| m.name == "results")
        .expect("the results volume Sonobuoy shares with its worker");
    assert_eq!(certify.out, PathBuf::from(&mount.mount_path));
    let env = container.env.unwrap_or_default();
    let value = |name: &str| {
        env.iter()
            .find(|e| e.name == name)
            .and_then(|e| e.value.clone())
    };
    assert_eq!(
        value("SONOBUOY_RESULTS_DIR").as_deref(),
        Some(mount.mount_path.as_str())
    );
    assert!(
        value("NETPOL_PROBE_IMAGE").is_some(),
        "the probe pods' image is named"
    );

    for name in &certify.profiles {
        let profile = profile::load(&repo().join("profiles"), name).unwrap();
        assert!(
            profile.unmet(BackendKind::Kube).is_empty(),
            "profile {name} cannot run on a cluster"
        );
    }
}

#[test]
fn the_harness_image_holds_the_entry_point_the_plugin_calls_and_the_profiles() {
    let command = container().command.expect("a command");
    let dockerfile = std::fs::read_to_string(repo().join("harness/Dockerfile")).unwrap();
    let copy = format!("COPY deploy/sonobuoy-results.sh {}", command[0]);
    assert!(
        dockerfile.contains(&copy),
        "harness/Dockerfile lacks `{copy}`"
    );
    assert!(
        dockerfile.contains("COPY profiles "),
        "the image holds the profiles"
    );
    assert!(
        dockerfile.contains("COPY fixtures "),
        "the image holds the fixtures"
    );
    assert_eq!(container().args.unwrap()[0], "netpol-harness");
    assert!(
        dockerfile.contains("/usr/local/bin/netpol-harness"),
        "on the PATH"
    );
}

#[test]
fn the_entry_point_hands_the_results_over_even_when_the_certification_fails() {
    let results = std::env::temp_dir().join(format!("nph-sonobuoy-{}", std::process::id()));
    std::fs::create_dir_all(&results).unwrap();
    let status = Process::new("sh")
        .arg(repo().join("deploy/sonobuoy-results.sh"))
        .args(["sh", "-c", "mkdir -p \"$SONOBUOY_RESULTS_DIR/p\" && echo r > \"$SONOBUOY_RESULTS_DIR/p/f.junit.xml\"; exit 1"])
        .env("SONOBUOY_RESULTS_DIR", &results)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "a failing certification is a result: {status}"
    );
    let done = std::fs::read_to_string(results.join("done")).expect("the done file");
    let tarball = results.join("netpol-harness.tar.gz");
    assert_eq!(done, tarball.display().to_string());
    let listing = Process::new("tar")
        .arg("-tzf")
        .arg(&tarball)
        .output()
        .unwrap();
    let listing = String::from_utf8(listing.stdout).unwrap();
    assert!(listing.lines().any(|l| l == "./p/f.junit.xml"), "{listing}");
    std::fs::remove_dir_all(&results).unwrap();
}

/// Every (apiGroup, resource, verb) a ClusterRole grants.
fn grants(role: &Value) -> std::collections::BTreeSet<(String, String, String)> {
    let strings = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut grants = std::collections::BTreeSet::new();
    for rule in role["rules"].as_array().expect("rules") {
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    grants.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    grants
}

#[test]
fn the_readme_cluster_role_is_the_one_in_deploy_rbac_yaml_but_for_certify_extras() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let block = readme
        .split("```yaml\n")
        .skip(1)
        .filter_map(|rest| rest.split("\n```").next())
        .find(|block| block.contains("kind: ClusterRole"))
        .expect("the README shows the ClusterRole");
    let shown: Value = serde_saphyr::from_str(block).expect("the README's ClusterRole parses");
    let rbac = yaml_documents(&repo().join("deploy/rbac.yaml"));
    let role = rbac
        .iter()
        .find(|d| d["kind"] == "ClusterRole")
        .expect("deploy/rbac.yaml has a ClusterRole");
    let (shown, deployed) = (grants(&shown), grants(role));
    assert!(!shown.is_empty());
    // The README's role is what `run` needs; deploy/rbac.yaml adds what `certify` reads.
    let missing: Vec<_> = shown.difference(&deployed).collect();
    assert!(
        missing.is_empty(),
        "in the README, not in deploy/rbac.yaml: {missing:?}"
    );
    let extra: Vec<_> = deployed.difference(&shown).collect();
    assert_eq!(
        extra,
        [&(
            "apps".to_owned(),
            "daemonsets".to_owned(),
            "list".to_owned()
        )],
        "deploy/rbac.yaml grants more than the README says it adds"
    );
}
