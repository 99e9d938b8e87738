//! The backend against a fake API server: an in-process `tower` service handed to
//! `kube::Client::new`, which records every request and answers from a small in-memory
//! store (server-side apply stores the applied object, assigning pods an IP and a node and
//! Services a ClusterIP; merge patches change labels; lists honour equality label and field
//! selectors; watches never answer).

use super::exec::{ExecOutput, ExecRequest};
use super::*;
use crate::backend::{Backend, BackendError};
use crate::engine::{
    Cidr, IpBlock, LabelSelector, Labels, NAMESPACE_NAME_LABEL, Namespace, NetworkPolicy, Origin,
    Peer, Pod, PolicyPort, PortRef, Rule, Topology,
};
use netpol_probes::spec::{Check, PortSpec, Protocol};
use netpol_probes::wire::Target;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// The fake API server

/// One request the fake API server received.
#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Recorded {
    fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn params(&self, key: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn is_apply(&self) -> bool {
        self.method == "PATCH"
            && self.header("content-type") == Some("application/apply-patch+yaml")
    }

    fn is_merge(&self) -> bool {
        self.method == "PATCH"
            && self.header("content-type") == Some("application/merge-patch+json")
    }
}

/// Where a request goes: `(resource, namespace or "", name, subresource)`.
type Route = (String, String, Option<String>, Option<String>);

fn route(path: &str) -> Route {
    let rest = path
        .strip_prefix("/api/v1/")
        .or_else(|| path.strip_prefix("/apis/networking.k8s.io/v1/"))
        .expect("a core or networking path");
    let s: Vec<String> = rest.split('/').map(str::to_owned).collect();
    match s.as_slice() {
        [resource] => (resource.clone(), String::new(), None, None),
        [ns, name] if ns == "namespaces" => (ns.clone(), String::new(), Some(name.clone()), None),
        [_, ns, resource] => (resource.clone(), ns.clone(), None, None),
        [_, ns, resource, name] => (resource.clone(), ns.clone(), Some(name.clone()), None),
        [_, ns, resource, name, sub] => (
            resource.clone(),
            ns.clone(),
            Some(name.clone()),
            Some(sub.clone()),
        ),
        _ => panic!("unexpected path {path}"),
    }
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

fn labels_of(object: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(object["metadata"]["labels"].clone()).unwrap_or_default()
}

fn selector_matches(selector: &str, labels: &BTreeMap<String, String>) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let (key, value) = term.split_once('=').expect("an equality selector");
        labels.get(key).map(String::as_str) == Some(value)
    })
}

fn field_matches(selector: &str, object: &Value) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let (path, value) = term.split_once('=').expect("an equality selector");
        let found = match path {
            "metadata.name" => &object["metadata"]["name"],
            "involvedObject.name" => &object["involvedObject"]["name"],
            other => panic!("unexpected field selector {other}"),
        };
        found.as_str() == Some(value)
    })
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": if code < 300 { "Success" } else { "Failure" },
        "reason": reason, "message": message, "code": code,
    })
}

/// The store behind the fake API server.
#[derive(Default)]
struct Cluster {
    /// `(resource, namespace or "", name)` to object.
    objects: BTreeMap<(String, String, String), Value>,
    /// Pods that stay pending with an image pull error.
    never_ready: BTreeSet<String>,
    pods_started: u8,
    /// ClusterIPs allocated so far, from 10.96.1.1.
    services_created: u8,
    /// Answer Service applies without `spec.clusterIP` (it is stored, and a get shows it).
    hide_cluster_ip_on_apply: bool,
    /// Allocate no ClusterIP at all, as if a webhook made the Services headless.
    headless_services: bool,
}

impl Cluster {
    fn insert(&mut self, resource: &str, object: Value) {
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let name = object["metadata"]["name"].as_str().unwrap().to_owned();
        self.objects
            .insert((resource.to_owned(), namespace, name), object);
    }

    /// A kind cluster with CoreDNS, an unrelated app, and nothing of the harness.
    fn seeded() -> Self {
        let mut cluster = Cluster::default();
        for name in ["kube-system", "default"] {
            cluster.insert(
                "namespaces",
                json!({"metadata": {"name": name, "labels": {NAMESPACE_NAME_LABEL: name}}}),
            );
        }
        cluster.insert(
            "pods",
            json!({
                "metadata": {"name": "coredns-7db6d8ff4d-abcde", "namespace": "kube-system",
                             "labels": {"k8s-app": "kube-dns", "pod-template-hash": "7db6d8ff4d"}},
                "spec": {"containers": [{"name": "coredns"}], "nodeName": "netpol-control-plane"},
                "status": {"podIP": "192.168.0.3",
                           "conditions": [{"type": "Ready", "status": "True"}]}
            }),
        );
        cluster.insert(
            "services",
            json!({
                "metadata": {"name": "kube-dns", "namespace": "kube-system"},
                "spec": {"selector": {"k8s-app": "kube-dns"}, "clusterIP": "10.96.0.10"}
            }),
        );
        cluster.insert(
            "services",
            json!({
                "metadata": {"name": "metrics", "namespace": "kube-system"},
                "spec": {"selector": {"k8s-app": "metrics-server"}, "clusterIP": "10.96.0.20"}
            }),
        );
        cluster
    }

    fn answer(&mut self, request: &Recorded) -> Option<(u16, Value)> {
        let (resource, namespace, name, sub) = route(&request.path);
        if sub.as_deref() == Some("exec") {
            return Some((
                403,
                status(403, "Forbidden", "pods \"x\" is forbidden: exec denied"),
            ));
        }
        let key = |name: &str| (resource.clone(), namespace.clone(), name.to_owned());
        match (request.method.as_str(), name) {
            ("GET", None) if request.param("watch") == Some("true") => None,
            ("GET", None) => Some((200, self.list(&resource, &namespace, request))),
            ("GET", Some(name)) => Some(match self.objects.get(&key(&name)).cloned() {
                Some(object) => {
                    // A terminating object finishes terminating once it has been seen.
                    if object["status"]["phase"] == "Terminating" {
                        self.objects.remove(&key(&name));
                    }
                    (200, object)
                }
                None => (
                    404,
                    status(404, "NotFound", &format!("{resource} \"{name}\" not found")),
                ),
            }),
            ("PATCH", Some(_)) if request.is_apply() => {
                assert_eq!(request.param("fieldManager"), Some("netpol-harness"));
                Some((200, self.apply(&resource, request.json())))
            }
            ("PATCH", Some(name)) if request.is_merge() => {
                let Some(object) = self.objects.get_mut(&key(&name)) else {
                    return Some((404, status(404, "NotFound", "not found")));
                };
                let labels = &mut object["metadata"]["labels"];
                if labels.is_null() {
                    *labels = json!({});
                }
                for (k, v) in request.json()["metadata"]["labels"].as_object().unwrap() {
                    match v {
                        Value::Null => drop(labels.as_object_mut().unwrap().remove(k)),
                        other => drop(
                            labels
                                .as_object_mut()
                                .unwrap()
                                .insert(k.clone(), other.clone()),
                        ),
                    }
                }
                Some((200, object.clone()))
            }
            ("DELETE", Some(name)) => match self.objects.remove(&key(&name)) {
                Some(_) => {
                    if resource == "namespaces" {
                        self.objects.retain(|(_, ns, _), _| *ns != name);
                    }
                    Some((200, status(200, "", "")))
                }
                None => Some((404, status(404, "NotFound", "not found"))),
            },
            (method, name) => panic!("unexpected {method} {resource} {name:?}"),
        }
    }

    fn list(&self, resource: &str, namespace: &str, request: &Recorded) -> Value {
        let items: Vec<Value> = self
            .objects
            .iter()
            .filter(|((r, ns, _), _)| r == resource && (namespace.is_empty() || ns == namespace))
            .map(|(_, object)| object)
            .filter(|o| {
                request
                    .param("labelSelector")
                    .is_none_or(|s| selector_matches(s, &labels_of(o)))
            })
            .filter(|o| {
                request
                    .param("fieldSelector")
                    .is_none_or(|s| field_matches(s, o))
            })
            .cloned()
            .collect();
        json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items})
    }

    /// Stores an applied object the way the API server and controllers would fill it in.
    fn apply(&mut self, resource: &str, mut object: Value) -> Value {
        let name = object["metadata"]["name"].as_str().unwrap().to_owned();
        match resource {
            "namespaces" => {
                object["metadata"]["labels"][NAMESPACE_NAME_LABEL] = json!(name);
                self.insert(
                    "serviceaccounts",
                    json!({"metadata": {"name": "default", "namespace": name}}),
                );
            }
            "services" => {
                let namespace = object["metadata"]["namespace"].as_str().unwrap().to_owned();
                let key = ("services".to_owned(), namespace, name.clone());
                // A ClusterIP is allocated once, at creation; later applies keep it.
                let allocated = match self.objects.get(&key) {
                    Some(existing) => existing["spec"]["clusterIP"].clone(),
                    None if self.headless_services => json!("None"),
                    None => {
                        self.services_created += 1;
                        json!(format!("10.96.1.{}", self.services_created))
                    }
                };
                object["spec"]["clusterIP"] = allocated;
                self.insert(resource, object.clone());
                if self.hide_cluster_ip_on_apply {
                    object["spec"].as_object_mut().unwrap().remove("clusterIP");
                }
                return object;
            }
            "pods" => {
                let namespace = object["metadata"]["namespace"].as_str().unwrap().to_owned();
                self.pods_started += 1;
                let node = ["netpol-worker", "netpol-worker2"][usize::from(self.pods_started % 2)];
                object["spec"]["nodeName"] = json!(node);
                object["status"] = if self.never_ready.contains(&name) {
                    self.insert(
                        "events",
                        json!({
                            "metadata": {"name": format!("{name}.1"), "namespace": namespace},
                            "involvedObject": {"kind": "Pod", "name": name},
                            "reason": "Failed",
                            "message": "Failed to pull image \"netpol-probe:dev\": not found"
                        }),
                    );
                    json!({
                        "phase": "Pending",
                        "conditions": [{"type": "Ready", "status": "False"}],
                        "containerStatuses": [{
                            "name": "agent", "ready": false, "restartCount": 0,
                            "image": "netpol-probe:dev", "imageID": "",
                            "state": {"waiting": {"reason": "ErrImagePull", "message": "not found"}}
                        }]
                    })
                } else {
                    json!({
                        "phase": "Running",
                        "podIP": format!("192.168.1.{}", self.pods_started),
                        "conditions": [{"type": "Ready", "status": "True"}]
                    })
                };
            }
            _ => {}
        }
        self.insert(resource, object.clone());
        object
    }
}

/// The fake API server: a shared store and the log of every request.
#[derive(Clone)]
struct FakeApi {
    cluster: Arc<Mutex<Cluster>>,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl FakeApi {
    fn new(cluster: Cluster) -> Self {
        FakeApi {
            cluster: Arc::new(Mutex::new(cluster)),
            requests: Arc::default(),
        }
    }

    fn client(&self) -> kube::Client {
        let api = self.clone();
        let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
            let api = api.clone();
            async move { Ok::<_, Infallible>(api.handle(request).await) }
        });
        kube::Client::new(service, "default")
    }

    async fn handle(
        &self,
        request: http::Request<kube::client::Body>,
    ) -> http::Response<kube::client::Body> {
        let (parts, body) = request.into_parts();
        let body = body
            .collect_bytes()
            .await
            .expect("a readable body")
            .to_vec();
        let query = parts
            .uri
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (decode(k), decode(v))
            })
            .collect();
        let recorded = Recorded {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query,
            headers: parts.headers,
            body,
        };
        self.requests.lock().unwrap().push(recorded.clone());
        let answer = self.cluster.lock().unwrap().answer(&recorded);
        let Some((code, body)) = answer else {
            return std::future::pending().await;
        };
        http::Response::builder()
            .status(code)
            .header("content-type", "application/json")
            .body(kube::client::Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap()
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// The body of the server-side apply to `path`.
    fn applied(&self, path: &str) -> Value {
        let requests = self.requests();
        let apply = requests
            .iter()
            .find(|r| r.path == path && r.is_apply())
            .unwrap_or_else(|| panic!("no server-side apply of {path}"));
        assert_eq!(apply.param("force"), Some("true"), "{path}");
        apply.json()
    }

    fn deleted(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter(|r| r.method == "DELETE")
            .map(|r| r.path.clone())
            .collect()
    }
}

/// An exec transport answering every probe as connected, recording the requests.
#[derive(Default, Clone)]
struct Connected {
    requests: Arc<Mutex<Vec<ExecRequest>>>,
}

impl ExecTransport for Connected {
    async fn exec(&self, request: ExecRequest) -> Result<ExecOutput, ExecError> {
        let targets: Vec<Target> = serde_json::from_slice(&request.stdin).unwrap();
        self.requests.lock().unwrap().push(request);
        let stdout = targets
            .iter()
            .map(|t| {
                format!(
                    "{{\"id\":\"{}\",\"outcome\":\"connected\",\"elapsed_ms\":0.4}}\n",
                    t.id
                )
            })
            .collect::<String>();
        Ok(ExecOutput {
            stdout: stdout.into_bytes(),
            ..Default::default()
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The topology and policies of the tests: a slice of the meeting app

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn namespace(name: &str, extra: &[(&str, &str)]) -> Namespace {
    let mut labels = labels(extra);
    labels.insert(NAMESPACE_NAME_LABEL.to_owned(), name.to_owned());
    Namespace {
        name: name.to_owned(),
        labels,
    }
}

fn port(port: u16, protocol: Protocol, check: Check, name: Option<&str>) -> PortSpec {
    PortSpec {
        port,
        protocol,
        name: name.map(str::to_owned),
        check: Some(check),
    }
}

fn pod(namespace: &str, name: &str, pod_labels: &[(&str, &str)], ports: Vec<PortSpec>) -> Pod {
    Pod {
        name: name.into(),
        namespace: namespace.into(),
        labels: labels(pod_labels),
        ip: IpAddr::from([10, 0, 0, 1]),
        provided: false,
        ports,
    }
}

const FRONTEND: usize = 0;
const POSTGRES: usize = 1;
const CONTROLLER: usize = 2;
const COREDNS: usize = 3;

fn topology() -> Topology {
    let mut coredns = pod(
        "kube-system",
        "coredns",
        &[("k8s-app", "kube-dns")],
        vec![
            port(53, Protocol::Udp, Check::Dns, Some("dns")),
            port(53, Protocol::Tcp, Check::Dns, Some("dns-tcp")),
        ],
    );
    coredns.provided = true;
    Topology {
        namespaces: vec![
            namespace("meeting-app", &[("team", "meetings")]),
            namespace("ingress-nginx", &[("purpose", "ingress")]),
            namespace("kube-system", &[]),
        ],
        pods: vec![
            pod(
                "meeting-app",
                "frontend",
                &[("app", "meeting-app-frontend")],
                vec![port(3000, Protocol::Tcp, Check::Http, Some("http"))],
            ),
            pod(
                "meeting-app",
                "postgres",
                &[("app", "postgres")],
                vec![port(5432, Protocol::Tcp, Check::Postgres, Some("postgres"))],
            ),
            pod(
                "ingress-nginx",
                "controller",
                &[("app", "ingress-nginx")],
                vec![port(80, Protocol::Tcp, Check::Tcp, None)],
            ),
            coredns,
        ],
    }
}

fn selector(pairs: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: labels(pairs),
        match_expressions: vec![],
    }
}

fn tcp(port: u16) -> PolicyPort {
    PolicyPort {
        protocol: Protocol::Tcp,
        port: Some(PortRef::Number(port)),
        end_port: None,
    }
}

/// The frontend's policy, plus an egress rule selecting its own namespace by name, a named
/// port and an ipBlock, so that every conversion shows.
fn frontend_policy() -> NetworkPolicy {
    NetworkPolicy {
        name: "frontend-policy".into(),
        namespace: "meeting-app".into(),
        pod_selector: selector(&[("app", "meeting-app-frontend")]),
        isolates_ingress: true,
        isolates_egress: true,
        ingress: vec![Rule {
            peers: vec![Peer::Pods {
                namespace_selector: Some(selector(&[(NAMESPACE_NAME_LABEL, "ingress-nginx")])),
                pod_selector: None,
            }],
            ports: vec![tcp(3000)],
        }],
        egress: vec![
            Rule {
                peers: vec![Peer::Pods {
                    namespace_selector: Some(selector(&[(NAMESPACE_NAME_LABEL, "meeting-app")])),
                    pod_selector: Some(selector(&[("app", "postgres")])),
                }],
                ports: vec![PolicyPort {
                    protocol: Protocol::Tcp,
                    port: Some(PortRef::Name("postgres".into())),
                    end_port: None,
                }],
            },
            Rule {
                peers: vec![Peer::IpBlock(IpBlock {
                    cidr: Cidr {
                        addr: "10.0.0.0".parse().unwrap(),
                        prefix: 8,
                    },
                    except: vec![Cidr {
                        addr: "10.1.0.0".parse().unwrap(),
                        prefix: 16,
                    }],
                })],
                ports: vec![],
            },
        ],
        origin: Origin {
            file: "policies/frontend-policy.yaml".into(),
            document: 0,
        },
    }
}

fn config() -> KubeConfig {
    KubeConfig {
        run_id: "r1".into(),
        exact_namespaces: ["ingress-nginx".to_owned()].into(),
        ready_timeout: Duration::from_secs(5),
        wait_timeout: Duration::from_secs(5),
        ..KubeConfig::new("kind-netpol")
    }
}

/// A cluster where `ingress-nginx` already exists (with a label of its own) and so is reused.
fn cluster_with_ingress_nginx() -> Cluster {
    let mut cluster = Cluster::seeded();
    cluster.insert(
        "namespaces",
        json!({"metadata": {"name": "ingress-nginx",
                            "labels": {NAMESPACE_NAME_LABEL: "ingress-nginx", "owner": "platform"}}}),
    );
    cluster
}

async fn deployed(cluster: Cluster) -> (FakeApi, KubeBackend<Connected>, Connected) {
    let api = FakeApi::new(cluster);
    let exec = Connected::default();
    let mut backend = KubeBackend::with_client(api.client(), exec.clone(), config());
    backend.deploy(&topology()).await.expect("deploy");
    (api, backend, exec)
}

fn target(id: &str, ip: IpAddr, identity: &str) -> Target {
    Target {
        id: id.into(),
        ip,
        port: 3000,
        protocol: Protocol::Tcp,
        check: Check::Http,
        expect_identity: Some(identity.into()),
        timeout_ms: 1000,
        dns_name: None,
        host: None,
        resolver: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Deploy

#[tokio::test]
async fn a_missing_namespace_is_created_with_the_run_suffix_and_the_ownership_labels() {
    let (api, mut backend, _) = deployed(cluster_with_ingress_nginx()).await;
    let namespace = api.applied("/api/v1/namespaces/meeting-app-r1");
    assert_eq!(
        namespace,
        json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "meeting-app-r1", "labels": {
                "app.kubernetes.io/managed-by": "netpol-harness",
                "netpol-harness/run-id": "r1",
                "team": "meetings",
            }}
        })
    );
    assert_eq!(
        backend.cluster_namespace("meeting-app"),
        Some("meeting-app-r1")
    );
    backend.teardown().await.unwrap();
}

#[tokio::test]
async fn an_existing_namespace_is_reused_without_ownership_labels_and_restored_at_teardown() {
    let (api, mut backend, _) = deployed(cluster_with_ingress_nginx()).await;
    let requests = api.requests();
    let to_ingress: Vec<&Recorded> = requests
        .iter()
        .filter(|r| r.path == "/api/v1/namespaces/ingress-nginx")
        .collect();
    assert!(
        to_ingress.iter().all(|r| !r.is_apply()),
        "a reused namespace is never applied"
    );
    let merge = to_ingress
        .iter()
        .find(|r| r.is_merge())
        .expect("the missing label is added");
    assert_eq!(
        merge.json(),
        json!({"metadata": {"labels": {"purpose": "ingress"}}})
    );
    assert_eq!(merge.param("fieldManager"), Some("netpol-harness"));

    backend.teardown().await.unwrap();
    let restore = api
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path == "/api/v1/namespaces/ingress-nginx" && r.is_merge());
    assert_eq!(
        restore.unwrap().json(),
        json!({"metadata": {"labels": {"purpose": null}}})
    );
    let labels = labels_of(
        &api.cluster.lock().unwrap().objects
            [&("namespaces".into(), String::new(), "ingress-nginx".into())],
    );
    assert_eq!(
        labels,
        labels_of(&json!({"metadata": {"labels": {
        NAMESPACE_NAME_LABEL: "ingress-nginx", "owner": "platform"}}}))
    );
}

#[tokio::test]
async fn a_probe_pod_runs_the_agent_unprivileged_with_its_ports_and_identity() {
    let (api, mut backend, _) = deployed(Cluster::seeded()).await;
    let pod = api.applied("/api/v1/namespaces/meeting-app-r1/pods/frontend");
    assert_eq!(pod["apiVersion"], "v1");
    assert_eq!(pod["kind"], "Pod");
    assert_eq!(
        pod["metadata"],
        json!({"name": "frontend", "namespace": "meeting-app-r1", "labels": {
            "app": "meeting-app-frontend",
            "app.kubernetes.io/managed-by": "netpol-harness",
            "netpol-harness/run-id": "r1",
            "netpol-harness/pod": "frontend",
        }})
    );
    let spec = &pod["spec"];
    assert_eq!(spec["automountServiceAccountToken"], false);
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        spec["securityContext"]["sysctls"],
        json!([{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}])
    );
    assert_eq!(
        spec["topologySpreadConstraints"],
        json!([{
            "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {
                "app.kubernetes.io/managed-by": "netpol-harness", "netpol-harness/run-id": "r1"}}
        }])
    );
    let containers = spec["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    assert_eq!(
        containers[0],
        json!({
            "name": "agent",
            "image": "netpol-probe:dev",
            "imagePullPolicy": "IfNotPresent",
            "command": ["/netpol-probe"],
            "args": ["serve", "--port", "3000/TCP/http/http"],
            "env": [
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_NAMESPACE",
                 "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}
            ],
            "ports": [{"containerPort": 3000, "name": "http", "protocol": "TCP"}],
            "readinessProbe": {
                "httpGet": {"path": "/healthz", "port": 3000},
                "periodSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 3
            },
            "resources": {
                "requests": {"cpu": "10m", "memory": "16Mi"},
                "limits": {"memory": "128Mi"}
            },
            "securityContext": {
                "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
                "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                "capabilities": {"drop": ["ALL"]}
            }
        })
    );
    backend.teardown().await.unwrap();
}

#[tokio::test]
async fn a_postgres_port_gets_a_real_postgres_beside_an_agent_ready_on_the_canary_port() {
    let (api, mut backend, _) = deployed(Cluster::seeded()).await;
    let pod = api.applied("/api/v1/namespaces/meeting-app-r1/pods/postgres");
    let containers = pod["spec"]["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 2);
    let agent = &containers[0];
    assert_eq!(agent["args"], json!(["serve", "--port", "9999/TCP/http"]));
    assert_eq!(agent["readinessProbe"]["httpGet"]["port"], 9999);
    let postgres = &containers[1];
    assert_eq!(postgres["name"], "postgres-5432");
    assert_eq!(postgres["image"], "postgres:15");
    assert_eq!(postgres["args"], json!(["postgres", "-p", "5432"]));
    assert_eq!(
        postgres["env"],
        json!([
            {"name": "POSTGRES_HOST_AUTH_METHOD", "value": "trust"},
            {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"}
        ])
    );
    assert_eq!(
        postgres["ports"],
        json!([{"containerPort": 5432, "name": "postgres", "protocol": "TCP"}])
    );
    assert_eq!(postgres["securityContext"]["runAsUser"], 999);
    assert_eq!(postgres["securityContext"]["readOnlyRootFilesystem"], true);
    let mounts: Vec<&str> = postgres["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    assert_eq!(
        mounts,
        ["/var/lib/postgresql/data", "/var/run/postgresql", "/tmp"]
    );
    let volumes = pod["spec"]["volumes"].as_array().unwrap();
    assert!(
        volumes.iter().all(|v| v["emptyDir"] == json!({})),
        "nothing persists: {volumes:?}"
    );
    backend.teardown().await.unwrap();
}

#[test]
fn dns_ports_get_one_coredns_per_port_number_and_readiness_prefers_the_canary_port() {
    let ports = [
        port(53, Protocol::Udp, Check::Dns, Some("dns")),
        port(53, Protocol::Tcp, Check::Dns, Some("dns-tcp")),
        port(9090, Protocol::Tcp, Check::Http, Some("http")),
        port(8080, Protocol::Tcp, Check::Http, Some("canary")),
    ];
    let settings = manifests::PodSettings {
        run_id: "r1",
        image: "img",
        canary_port: 9999,
    };
    let pod = manifests::probe_pod("fake-dns", "ns", &Labels::new(), &ports, settings).unwrap();
    let pod = serde_json::to_value(pod).unwrap();
    let agent = &pod["spec"]["containers"][0];
    assert_eq!(
        agent["args"],
        json!([
            "serve",
            "--port",
            "9090/TCP/http/http",
            "--port",
            "8080/TCP/http/canary"
        ])
    );
    assert_eq!(agent["readinessProbe"]["httpGet"]["port"], 8080);
    let dns = &pod["spec"]["containers"][1];
    assert_eq!(dns["name"], "dns-53");
    assert_eq!(dns["image"], "registry.k8s.io/coredns/coredns:v1.12.0");
    assert_eq!(dns["args"], json!(["-dns.port", "53"]));
    assert_eq!(
        dns["ports"],
        json!([
            {"containerPort": 53, "name": "dns", "protocol": "UDP"},
            {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"}
        ])
    );
    assert_eq!(dns["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["spec"]["containers"].as_array().unwrap().len(), 2);
}

#[test]
fn a_redis_port_gets_a_redis_without_persistence() {
    let spec = port(6379, Protocol::Tcp, Check::Redis, Some("redis"));
    let settings = manifests::PodSettings {
        run_id: "r1",
        image: "img",
        canary_port: 9999,
    };
    let pod = manifests::probe_pod("redis", "ns", &Labels::new(), &[spec], settings).unwrap();
    let pod = serde_json::to_value(pod).unwrap();
    let redis = &pod["spec"]["containers"][1];
    assert_eq!(redis["image"], "redis:7");
    assert_eq!(redis["command"], json!(["redis-server"]));
    assert_eq!(
        redis["args"],
        json!([
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no"
        ])
    );
    assert_eq!(
        redis["volumeMounts"],
        json!([{"mountPath": "/data", "name": "redis-6379-data"}])
    );
}

#[tokio::test]
async fn pods_in_an_exact_namespace_carry_the_run_id_and_provided_pods_are_not_deployed() {
    let (api, mut backend, _) = deployed(Cluster::seeded()).await;
    let applied_pods: Vec<String> = api
        .requests()
        .iter()
        .filter(|r| r.is_apply() && r.path.contains("/pods/"))
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        applied_pods,
        [
            "/api/v1/namespaces/meeting-app-r1/pods/frontend",
            "/api/v1/namespaces/meeting-app-r1/pods/postgres",
            "/api/v1/namespaces/ingress-nginx/pods/controller-r1",
        ]
    );
    // ingress-nginx did not exist: created under its exact name, labelled as the run's.
    let namespace = api.applied("/api/v1/namespaces/ingress-nginx");
    assert_eq!(
        namespace["metadata"]["labels"]["netpol-harness/run-id"],
        "r1"
    );
    backend.teardown().await.unwrap();
}

#[tokio::test]
async fn provided_pods_are_reached_through_their_service_and_probe_pods_by_their_ip() {
    let (_, mut backend, _) = deployed(Cluster::seeded()).await;
    assert_eq!(
        backend.address(COREDNS),
        "10.96.0.10".parse::<IpAddr>().unwrap()
    );
    assert_eq!(
        backend.cluster_pod(COREDNS).unwrap().name,
        "coredns-7db6d8ff4d-abcde"
    );
    assert_eq!(
        backend.address(FRONTEND),
        "192.168.1.1".parse::<IpAddr>().unwrap()
    );
    assert_eq!(backend.node(FRONTEND), Some("netpol-worker2"));
    assert_eq!(backend.node(POSTGRES), Some("netpol-worker"));
    assert_eq!(backend.crosses_nodes(FRONTEND, POSTGRES), Some(true));
    assert_eq!(backend.crosses_nodes(FRONTEND, CONTROLLER), Some(false));
    assert_eq!(backend.crosses_nodes(FRONTEND, COREDNS), None);
    backend.teardown().await.unwrap();
}

#[tokio::test]
async fn a_missing_provided_pod_is_an_error_naming_its_labels() {
    let mut cluster = Cluster::seeded();
    cluster
        .objects
        .retain(|(resource, _, _), _| resource != "services");
    let api = FakeApi::new(cluster);
    let mut backend = KubeBackend::with_client(api.client(), Connected::default(), config());
    let error = backend.deploy_topology(&topology()).await.unwrap_err();
    assert!(
        matches!(error, KubeError::ProvidedNotFound { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("k8s-app=kube-dns"), "{error}");
    backend.remove_all().await.unwrap();
}

#[tokio::test]
async fn a_pod_that_never_becomes_ready_is_reported_with_its_events() {
    let mut cluster = Cluster::seeded();
    cluster.never_ready.insert("frontend".into());
    let api = FakeApi::new(cluster);
    let config = KubeConfig {
        ready_timeout: Duration::from_millis(300),
        ..config()
    };
    let mut backend = KubeBackend::with_client(api.client(), Connected::default(), config);
    let error = backend.deploy(&topology()).await.unwrap_err();
    let BackendError::NotReady { pod, detail } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(pod, "meeting-app-r1/frontend");
    assert!(detail.contains("ErrImagePull"), "{detail}");
    assert!(
        detail.contains("Failed: Failed to pull image \"netpol-probe:dev\""),
        "{detail}"
    );
    assert!(detail.contains("make image"), "{detail}");
    let events = api
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/events"))
        .unwrap();
    assert_eq!(events.path, "/api/v1/namespaces/meeting-app-r1/events");
    assert_eq!(
        events.param("fieldSelector"),
        Some("involvedObject.name=frontend")
    );

    // What the failed deploy created is still removed.
    backend.teardown().await.unwrap();
    assert!(
        api.deleted()
            .contains(&"/api/v1/namespaces/meeting-app-r1".to_owned())
    );
}

#[tokio::test]
async fn a_topology_the_backend_cannot_deploy_changes_nothing() {
    let api = FakeApi::new(Cluster::seeded());
    let mut backend = KubeBackend::with_client(api.client(), Connected::default(), config());
    let mut topology = topology();
    // Without an HTTP port the agent needs the canary port for readiness, but it is taken.
    topology.pods[POSTGRES]
        .ports
        .push(port(9999, Protocol::Tcp, Check::Tcp, None));
    let error = backend.deploy(&topology).await.unwrap_err();
    assert!(matches!(error, BackendError::Unsupported(_)), "{error:?}");
    assert!(api.requests().is_empty(), "{:?}", api.requests());
}

// ---------------------------------------------------------------------------------------------
// Policies and labels

#[tokio::test]
async fn policies_are_applied_server_side_into_the_run_namespaces_with_names_rewritten() {
    let (api, mut backend, _) = deployed(Cluster::seeded()).await;
    backend.apply_policies(&[frontend_policy()]).await.unwrap();
    let path =
        "/apis/networking.k8s.io/v1/namespaces/meeting-app-r1/networkpolicies/frontend-policy";
    let apply = api.requests().into_iter().find(|r| r.path == path).unwrap();
    assert_eq!(apply.method, "PATCH");
    assert_eq!(
        apply.header("content-type"),
        Some("application/apply-patch+yaml")
    );
    assert_eq!(apply.param("fieldManager"), Some("netpol-harness"));
    assert_eq!(apply.param("force"), Some("true"));
    assert_eq!(
        apply.json(),
        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {
                "name": "frontend-policy",
                "namespace": "meeting-app-r1",
                "labels": {
                    "app.kubernetes.io/managed-by": "netpol-harness",
                    "netpol-harness/run-id": "r1"
                }
            },
            "spec": {
                "podSelector": {"matchLabels": {"app": "meeting-app-frontend"}},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{
                    "from": [{"namespaceSelector": {"matchLabels": {
                        "kubernetes.io/metadata.name": "ingress-nginx"}}}],
                    "ports": [{"protocol": "TCP", "port": 3000}]
                }],
                "egress": [
                    {
                        "to": [{
                            "namespaceSelector": {"matchLabels": {
                                "kubernetes.io/metadata.name": "meeting-app-r1"}},
                            "podSelector": {"matchLabels": {"app": "postgres"}}
                        }],
                        "ports": [{"protocol": "TCP", "port": "postgres"}]
                    },
                    {"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]}
                ]
            }
        })
    );
    backend.teardown().await.unwrap();
}

#[test]
fn match_expressions_on_the_namespace_name_are_rewritten_too() {
    use crate::engine::{Operator, Requirement};
    let topology = topology();
    let names = names::NamespaceMap::plan(&topology, &BTreeSet::new(), "r1");
    let mut policy = frontend_policy();
    policy.ingress[0].peers = vec![Peer::Pods {
        namespace_selector: Some(LabelSelector {
            match_labels: Labels::new(),
            match_expressions: vec![Requirement {
                key: NAMESPACE_NAME_LABEL.into(),
                operator: Operator::NotIn,
                values: vec!["meeting-app".into(), "monitoring".into()],
            }],
        }),
        pod_selector: None,
    }];
    let applied = serde_json::to_value(manifests::network_policy(&policy, &names, "r1")).unwrap();
    assert_eq!(
        applied["spec"]["ingress"][0]["from"][0]["namespaceSelector"],
        json!({"matchExpressions": [{
            "key": "kubernetes.io/metadata.name", "operator": "NotIn",
            "values": ["meeting-app-r1", "monitoring"]
        }]})
    );
}

#[tokio::test]
async fn replacing_the_policy_set_deletes_the_stale_policies_by_name() {
    let (api, mut backend, _) = deployed(Cluster::seeded()).await;
    backend.apply_policies(&[frontend_policy()]).await.unwrap();
    backend.apply_policies(&[]).await.unwrap();
    assert_eq!(
        api.deleted(),
        ["/apis/networking.k8s.io/v1/namespaces/meeting-app-r1/networkpolicies/frontend-policy"]
    );
    backend.teardown().await.unwrap();
}

#[tokio::test]
async fn pod_labels_are_replaced_with_a_merge_patch_that_keeps_the_harness_labels() {
    let (api, mut backend, _) = deployed(Cluster::seeded()).await;
    backend
        .set_pod_labels(FRONTEND, labels(&[("tier", "web")]))
        .await
        .unwrap();
    let patch = api.requests().into_iter().rfind(|r| r.is_merge()).unwrap();
    assert_eq!(
        patch.path,
        "/api/v1/namespaces/meeting-app-r1/pods/frontend"
    );
    assert_eq!(
        patch.json(),
        json!({"metadata": {"labels": {"app": null, "tier": "web"}}})
    );
    backend.teardown().await.unwrap();
}

#[tokio::test]
async fn namespace_labels_of_a_created_namespace_are_replaced_but_its_name_label_kept() {
    let (api, mut backend, _) = deployed(Cluster::seeded()).await;
    let new = labels(&[(NAMESPACE_NAME_LABEL, "anything"), ("env", "test")]);
    backend
        .set_namespace_labels("meeting-app", new)
        .await
        .unwrap();
    let patch = api.requests().into_iter().rfind(|r| r.is_merge()).unwrap();
    assert_eq!(patch.path, "/api/v1/namespaces/meeting-app-r1");
    assert_eq!(
        patch.json(),
        json!({"metadata": {"labels": {"team": null, "env": "test"}}})
    );
    backend.teardown().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Probing

#[tokio::test]
async fn a_probe_batch_is_one_exec_in_the_source_pod_with_cluster_identities() {
    let (_, mut backend, exec) = deployed(Cluster::seeded()).await;
    let ip = backend.address(CONTROLLER);
    let targets = [
        target("1", ip, "ingress-nginx/controller"),
        target("2", ip, "elsewhere/x"),
    ];
    let results = backend.probe(FRONTEND, &targets).await.unwrap();
    assert_eq!(results.len(), 2);
    let requests = exec.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].namespace, "meeting-app-r1");
    assert_eq!(requests[0].pod, "frontend");
    assert_eq!(requests[0].container, "agent");
    assert_eq!(requests[0].command, ["/netpol-probe", "probe"]);
    let sent: Vec<Target> = serde_json::from_slice(&requests[0].stdin).unwrap();
    assert_eq!(
        sent[0].expect_identity.as_deref(),
        Some("ingress-nginx/controller-r1")
    );
    assert_eq!(sent[1].expect_identity.as_deref(), Some("elsewhere/x"));
    assert_eq!(sent[0].ip, ip);
    backend.teardown().await.unwrap();
}

#[tokio::test]
async fn probing_from_a_provided_pod_is_refused() {
    let (_, mut backend, _) = deployed(Cluster::seeded()).await;
    let error = backend.probe(COREDNS, &[]).await.unwrap_err();
    assert!(matches!(error, BackendError::Unsupported(_)), "{error:?}");
    backend.teardown().await.unwrap();
}

#[tokio::test]
async fn the_exec_request_runs_netpol_probe_with_stdin_over_a_websocket_upgrade() {
    let api = FakeApi::new(Cluster::seeded());
    let client = api.client();
    let mut backend = KubeBackend::with_client(client.clone(), KubeExec::new(client), config());
    backend.deploy(&topology()).await.unwrap();
    let ip = backend.address(POSTGRES);
    let error = backend
        .probe(FRONTEND, &[target("1", ip, "meeting-app/postgres")])
        .await;

    // The fake API server refuses the exec: an infrastructure error, not a verdict.
    let error = error.unwrap_err();
    let BackendError::Probe { pod, detail } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(pod, "meeting-app-r1/frontend");
    assert!(detail.contains("exec denied"), "{detail}");

    let requests = api.requests();
    let exec = requests.iter().find(|r| r.path.ends_with("/exec")).unwrap();
    assert_eq!(exec.method, "GET");
    assert_eq!(
        exec.path,
        "/api/v1/namespaces/meeting-app-r1/pods/frontend/exec"
    );
    assert_eq!(exec.params("command"), ["/netpol-probe", "probe"]);
    assert_eq!(exec.param("container"), Some("agent"));
    assert_eq!(exec.param("stdin"), Some("true"));
    assert_eq!(exec.param("stdout"), Some("true"));
    assert_eq!(exec.param("stderr"), Some("true"));
    assert_eq!(exec.param("tty"), None);
    assert_eq!(exec.header("upgrade"), Some("websocket"));
    let protocols = exec.header("sec-websocket-protocol").unwrap();
    assert!(protocols.starts_with("v5.channel.k8s.io"), "{protocols}");
    backend.teardown().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Services

/// Every object of `resource` in the fake cluster.
fn stored(api: &FakeApi, resource: &str) -> Vec<Value> {
    api.cluster
        .lock()
        .unwrap()
        .objects
        .iter()
        .filter(|((r, _, _), _)| r == resource)
        .map(|(_, object)| object.clone())
        .collect()
}

/// The paths of every server-side apply of a Service, in order.
fn applied_services(api: &FakeApi) -> Vec<String> {
    api.requests()
        .iter()
        .filter(|r| r.is_apply() && r.path.contains("/services/"))
        .map(|r| r.path.clone())
        .collect()
}

/// Two pods sharing their app label, one serving named and unnamed ports over TCP, UDP and
/// SCTP, one without ports, and one whose name is no valid Service name.
fn services_topology() -> Topology {
    Topology {
        namespaces: vec![namespace("shop", &[])],
        pods: vec![
            pod(
                "shop",
                "flask",
                &[("app", "shop")],
                vec![
                    port(5000, Protocol::Tcp, Check::Http, Some("http")),
                    port(5000, Protocol::Udp, Check::Udp, Some("udp")),
                    port(7000, Protocol::Udp, Check::Udp, None),
                    port(9000, Protocol::Sctp, Check::Sctp, None),
                ],
            ),
            pod(
                "shop",
                "node",
                &[("app", "shop")],
                vec![port(80, Protocol::Tcp, Check::Http, None)],
            ),
            pod("shop", "client", &[("app", "client")], vec![]),
            pod(
                "shop",
                "web.v2",
                &[("app", "web")],
                vec![port(8080, Protocol::Tcp, Check::Http, Some("http"))],
            ),
        ],
    }
}

#[tokio::test]
async fn a_probe_pod_gets_a_cluster_ip_service_with_one_port_per_served_port() {
    let api = FakeApi::new(Cluster::seeded());
    let mut backend = KubeBackend::with_client(api.client(), Connected::default(), config());
    backend.deploy(&services_topology()).await.unwrap();
    assert_eq!(
        api.applied("/api/v1/namespaces/shop-r1/services/flask"),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "flask",
                "namespace": "shop-r1",
                "labels": {
                    "app.kubernetes.io/managed-by": "netpol-harness",
                    "netpol-harness/run-id": "r1"
                }
            },
            "spec": {
                "type": "ClusterIP",
                "selector": {"netpol-harness/pod": "flask", "netpol-harness/run-id": "r1"},
                "ports": [
                    {"name": "http", "protocol": "TCP", "port": 5000, "targetPort": "http"},
                    {"name": "udp", "protocol": "UDP", "port": 5000, "targetPort": "udp"},
                    {"name": "udp-7000", "protocol": "UDP", "port": 7000, "targetPort": 7000},
                    {"name": "sctp-9000", "protocol": "SCTP", "port": 9000, "targetPort": 9000}
                ]
            }
        })
    );
    assert_eq!(
        api.applied("/api/v1/namespaces/shop-r1/services/node")["spec"]["ports"],
        json!([{"name": "tcp-80", "protocol": "TCP", "port": 80, "targetPort": 80}])
    );
    assert_eq!(
        applied_services(&api),
        [
            "/api/v1/namespaces/shop-r1/services/flask",
            "/api/v1/namespaces/shop-r1/services/node",
            "/api/v1/namespaces/shop-r1/services/web-v2-f5280609",
        ],
        "one Service per probe pod with ports, none for the pod without"
    );
    backend.teardown().await.unwrap();
}

#[tokio::test]
async fn each_service_selects_exactly_its_pod_even_when_pods_share_their_app_labels() {
    let api = FakeApi::new(Cluster::seeded());
    let mut backend = KubeBackend::with_client(api.client(), Connected::default(), config());
    backend.deploy(&services_topology()).await.unwrap();
    let pods = stored(&api, "pods");
    for service in stored(&api, "services") {
        if service["metadata"]["namespace"] != "shop-r1" {
            continue;
        }
        let selector: BTreeMap<String, String> =
            serde_json::from_value(service["spec"]["selector"].clone()).unwrap();
        let selected: Vec<&Value> = pods
            .iter()
            .filter(|pod| {
                let labels = labels_of(pod);
                pod["metadata"]["namespace"] == "shop-r1"
                    && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
            .collect();
        assert_eq!(selected.len(), 1, "{service}");
        // The pod's named container ports resolve every targetPort given by name.
        let container_ports: Vec<Value> = selected[0]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
            .collect();
        for service_port in service["spec"]["ports"].as_array().unwrap() {
            let target = &service_port["targetPort"];
            let found = container_ports.iter().any(|p| {
                p["protocol"] == service_port["protocol"]
                    && (p["name"] == *target || p["containerPort"] == *target)
                    && p["containerPort"] == service_port["port"]
            });
            assert!(
                found,
                "{service_port} has no container port in {container_ports:?}"
            );
        }
    }
    let web = pods
        .iter()
        .find(|p| p["metadata"]["name"] == "web.v2")
        .unwrap();
    assert_eq!(labels_of(web)["netpol-harness/pod"], "web-v2-f5280609");
    backend.teardown().await.unwrap();
}

#[tokio::test]
async fn services_report_their_cluster_ip_and_name_and_coredns_its_kube_dns_service() {
    let (_, mut backend, _) = deployed(Cluster::seeded()).await;
    let ip = |text: &str| text.parse::<IpAddr>().unwrap();
    // Services are applied in topology order, after the pods: frontend, postgres, controller.
    assert_eq!(backend.service_address(FRONTEND), Some(ip("10.96.1.1")));
    assert_eq!(backend.service_address(POSTGRES), Some(ip("10.96.1.2")));
    assert_eq!(backend.service_address(CONTROLLER), Some(ip("10.96.1.3")));
    assert_eq!(backend.service_address(COREDNS), Some(ip("10.96.0.10")));
    assert_eq!(
        backend.service_host(FRONTEND).as_deref(),
        Some("frontend.meeting-app-r1.svc.cluster.local")
    );
    assert_eq!(
        backend.service_host(CONTROLLER).as_deref(),
        Some("controller-r1.ingress-nginx.svc.cluster.local")
    );
    assert_eq!(
        backend.service_host(COREDNS).as_deref(),
        Some("kube-dns.kube-system.svc.cluster.local")
    );
    assert_eq!(backend.resolver(), Some(ip("10.96.0.10")));
    // The pod address is unchanged by the Service.
    assert_eq!(backend.address(FRONTEND), ip("192.168.1.1"));
    backend.teardown().await.unwrap();
}

#[tokio::test]
async fn the_cluster_domain_of_the_configuration_ends_every_service_name() {
    let api = FakeApi::new(Cluster::seeded());
    let config = KubeConfig {
        cluster_domain: "corp.example".into(),
        ..config()
    };
    let mut backend = KubeBackend::with_client(api.client(), Connected::default(), config);
    backend.deploy(&topology()).await.unwrap();
    assert_eq!(
        backend.service_host(POSTGRES).as_deref(),
        Some("postgres.meeting-app-r1.svc.corp.example")
    );
    assert_eq!(
        backend.service_host(COREDNS).as_deref(),
        Some("kube-dns.kube-system.svc.corp.example")
    );
    backend.teardown().await.unwrap();
}

#[tokio::test]
async fn without_a_dns_pod_in_the_topology_there_is_no_resolver_and_no_service_for_portless_pods() {
    let api = FakeApi::new(Cluster::seeded());
    let mut backend = KubeBackend::with_client(api.client(), Connected::default(), config());
    backend.deploy(&services_topology()).await.unwrap();
    assert_eq!(backend.resolver(), None);
    assert_eq!(backend.service_address(2), None);
    assert_eq!(backend.service_host(2), None);
    assert_eq!(
        backend.service_host(3).as_deref(),
        Some("web-v2-f5280609.shop-r1.svc.cluster.local")
    );
    backend.teardown().await.unwrap();
}

#[tokio::test]
async fn nothing_is_created_in_the_namespace_of_provided_pods() {
    let (api, mut backend, _) = deployed(Cluster::seeded()).await;
    let into_kube_system: Vec<String> = api
        .requests()
        .iter()
        .filter(|r| r.method != "GET" && r.path.contains("/namespaces/kube-system"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(into_kube_system.is_empty(), "{into_kube_system:?}");
    backend.teardown().await.unwrap();
    let into_kube_system = api
        .requests()
        .iter()
        .any(|r| r.method != "GET" && r.path.contains("/namespaces/kube-system"));
    assert!(!into_kube_system, "teardown leaves kube-system alone");
}

#[tokio::test]
async fn a_cluster_ip_missing_from_the_apply_answer_is_read_back() {
    let mut cluster = Cluster::seeded();
    cluster.hide_cluster_ip_on_apply = true;
    let (api, mut backend, _) = deployed(cluster).await;
    assert_eq!(
        backend.service_address(FRONTEND),
        Some("10.96.1.1".parse().unwrap())
    );
    let read = api.requests().into_iter().any(|r| {
        r.method == "GET" && r.path == "/api/v1/namespaces/meeting-app-r1/services/frontend"
    });
    assert!(read, "the Service is read once more for its ClusterIP");
    backend.teardown().await.unwrap();
}

#[tokio::test]
async fn a_service_without_a_cluster_ip_stops_the_deploy_and_is_still_removed() {
    let mut cluster = cluster_with_ingress_nginx();
    cluster.headless_services = true;
    // Only controller, in the reused ingress-nginx, so its Service is deleted by name.
    let mut topology = topology();
    topology
        .pods
        .retain(|p| p.name == "controller" || p.provided);
    let api = FakeApi::new(cluster);
    let mut backend = KubeBackend::with_client(api.client(), Connected::default(), config());
    let error = backend.deploy(&topology).await.unwrap_err();
    let message = super::error::error_chain(&error);
    assert!(
        message.contains("Service ingress-nginx/controller-r1 has no ClusterIP"),
        "{message}"
    );
    backend.teardown().await.unwrap();
    assert!(
        api.deleted()
            .contains(&"/api/v1/namespaces/ingress-nginx/services/controller-r1".to_owned()),
        "{:?}",
        api.deleted()
    );
}

#[tokio::test]
async fn pods_whose_service_names_would_collide_are_refused_before_anything_is_created() {
    let api = FakeApi::new(Cluster::seeded());
    let mut backend = KubeBackend::with_client(api.client(), Connected::default(), config());
    let mut topology = services_topology();
    topology.pods.push(pod(
        "shop",
        "web-v2-f5280609",
        &[],
        vec![port(80, Protocol::Tcp, Check::Http, None)],
    ));
    let error = backend.deploy(&topology).await.unwrap_err();
    let BackendError::Unsupported(message) = &error else {
        panic!("{error:?}")
    };
    assert!(
        message.contains("shop/web.v2 and shop/web-v2-f5280609"),
        "{message}"
    );
    assert!(message.contains("rename one"), "{message}");
    assert!(api.requests().is_empty(), "{:?}", api.requests());
}

#[tokio::test]
async fn the_runner_dials_cluster_ips_and_service_names_through_kube_dns() {
    use crate::backend::Via;
    use crate::runner::plan::baseline_edges;
    use crate::runner::probing::{Dial, dial, probe_round};
    let (_, mut backend, exec) = deployed(Cluster::seeded()).await;
    let ip = |text: &str| text.parse::<IpAddr>().unwrap();
    assert_eq!(
        dial(&backend, POSTGRES, Via::Service),
        Ok(Dial {
            ip: ip("10.96.1.2"),
            host: None,
            resolver: None
        })
    );
    assert_eq!(
        dial(&backend, POSTGRES, Via::Dns),
        Ok(Dial {
            ip: ip("10.96.1.2"),
            host: Some("postgres.meeting-app-r1.svc.cluster.local".into()),
            resolver: Some(ip("10.96.0.10"))
        })
    );
    assert_eq!(
        dial(&backend, COREDNS, Via::Dns).map(|d| d.host),
        Ok(Some("kube-dns.kube-system.svc.cluster.local".into()))
    );

    // A whole round in service and dns modes reaches the agents with those targets.
    let topology = topology();
    let edges = baseline_edges("meeting-app", &topology, &[Via::Service, Via::Dns]);
    let options = crate::runner::RunOptions::default();
    let observations = probe_round(&backend, &topology, &edges, &options)
        .await
        .unwrap();
    assert_eq!(observations.len(), edges.len());
    let sent: Vec<Target> = exec
        .requests
        .lock()
        .unwrap()
        .iter()
        .flat_map(|r| serde_json::from_slice::<Vec<Target>>(&r.stdin).unwrap())
        .collect();
    let to_postgres: Vec<(IpAddr, Option<String>, Option<IpAddr>)> = sent
        .iter()
        .filter(|t| t.port == 5432)
        .map(|t| (t.ip, t.host.clone(), t.resolver))
        .collect();
    let postgres_host = "postgres.meeting-app-r1.svc.cluster.local".to_owned();
    // From frontend and controller, once per mode.
    assert_eq!(
        to_postgres,
        [
            (ip("10.96.1.2"), None, None),
            (ip("10.96.1.2"), None, None),
            (
                ip("10.96.1.2"),
                Some(postgres_host.clone()),
                Some(ip("10.96.0.10"))
            ),
            (ip("10.96.1.2"), Some(postgres_host), Some(ip("10.96.0.10"))),
        ]
    );
    assert!(
        sent.iter()
            .filter(|t| t.port == 53)
            .all(|t| t.ip == ip("10.96.0.10")),
        "CoreDNS is dialled through kube-dns: {sent:?}"
    );
    backend.teardown().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Teardown and clean

#[tokio::test]
async fn teardown_deletes_what_the_run_created_and_nothing_else() {
    let (api, mut backend, _) = deployed(cluster_with_ingress_nginx()).await;
    backend.apply_policies(&[frontend_policy()]).await.unwrap();
    backend.teardown().await.unwrap();
    assert_eq!(
        api.deleted(),
        [
            "/apis/networking.k8s.io/v1/namespaces/meeting-app-r1/networkpolicies/frontend-policy",
            "/api/v1/namespaces/ingress-nginx/services/controller-r1",
            "/api/v1/namespaces/ingress-nginx/pods/controller-r1",
            "/api/v1/namespaces/meeting-app-r1",
        ]
    );
    // The Services in the deleted namespace went with it; those of the cluster stayed.
    let services: Vec<(String, String)> = api
        .cluster
        .lock()
        .unwrap()
        .objects
        .keys()
        .filter(|(resource, _, _)| resource == "services")
        .map(|(_, namespace, name)| (namespace.clone(), name.clone()))
        .collect();
    assert_eq!(
        services,
        [
            ("kube-system".to_owned(), "kube-dns".to_owned()),
            ("kube-system".to_owned(), "metrics".to_owned())
        ]
    );
    let before = api.requests().len();
    backend.teardown().await.unwrap();
    assert_eq!(
        api.requests().len(),
        before,
        "a second teardown has nothing left to do"
    );
}

#[tokio::test]
async fn clean_deletes_only_labelled_objects() {
    let mut cluster = cluster_with_ingress_nginx();
    let owned =
        json!({"app.kubernetes.io/managed-by": "netpol-harness", "netpol-harness/run-id": "old"});
    cluster.insert(
        "namespaces",
        json!({"metadata": {"name": "meeting-app-old", "labels": owned}}),
    );
    cluster.insert(
        "pods",
        json!({"metadata": {"name": "frontend", "namespace": "meeting-app-old", "labels": owned}}),
    );
    cluster.insert("pods", json!({"metadata": {"name": "controller-old", "namespace": "ingress-nginx", "labels": owned}}));
    cluster.insert("pods", json!({"metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx", "labels": {"app": "ingress-nginx"}}}));
    cluster.insert(
        "networkpolicies",
        json!({"metadata": {"name": "frontend-policy", "namespace": "ingress-nginx", "labels": owned}}),
    );
    cluster.insert(
        "networkpolicies",
        json!({"metadata": {"name": "users-own", "namespace": "default"}}),
    );
    cluster.insert(
        "services",
        json!({"metadata": {"name": "frontend", "namespace": "meeting-app-old", "labels": owned}}),
    );
    cluster.insert(
        "services",
        json!({"metadata": {"name": "controller-old", "namespace": "ingress-nginx", "labels": owned}}),
    );
    cluster.insert(
        "services",
        json!({"metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx",
                            "labels": {"app": "ingress-nginx"}}}),
    );
    let api = FakeApi::new(cluster);

    let cleaned = clean(&api.client()).await.unwrap();

    let lists: Vec<Recorded> = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET")
        .collect();
    assert_eq!(
        lists.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(),
        [
            "/api/v1/namespaces",
            "/apis/networking.k8s.io/v1/networkpolicies",
            "/api/v1/services",
            "/api/v1/pods"
        ]
    );
    for list in &lists {
        assert_eq!(
            list.param("labelSelector"),
            Some("app.kubernetes.io/managed-by=netpol-harness")
        );
    }
    assert_eq!(
        api.deleted(),
        [
            "/api/v1/namespaces/meeting-app-old",
            "/apis/networking.k8s.io/v1/namespaces/ingress-nginx/networkpolicies/frontend-policy",
            "/api/v1/namespaces/ingress-nginx/services/controller-old",
            "/api/v1/namespaces/ingress-nginx/pods/controller-old",
        ]
    );
    assert_eq!(
        cleaned.deleted,
        [
            "Namespace meeting-app-old",
            "NetworkPolicy ingress-nginx/frontend-policy",
            "Service ingress-nginx/controller-old",
            "Pod ingress-nginx/controller-old",
        ]
    );
    let left: Vec<String> = api
        .cluster
        .lock()
        .unwrap()
        .objects
        .keys()
        .filter(|(resource, namespace, _)| resource == "services" && namespace != "kube-system")
        .map(|(_, namespace, name)| format!("{namespace}/{name}"))
        .collect();
    assert_eq!(left, ["ingress-nginx/ingress-nginx-controller"]);
}

// ---------------------------------------------------------------------------------------------
// Errors

#[test]
fn kube_errors_map_onto_backend_errors_keeping_their_cause() {
    let preflight = BackendError::from(KubeError::NoContext);
    assert!(matches!(preflight, BackendError::Preflight { .. }));
    assert!(preflight.to_string().contains("NETPOL_KUBE_CONTEXT"));

    let timeout = KubeError::Timeout {
        what: "service account default".into(),
        timeout: Duration::from_secs(1),
    };
    let io = BackendError::from(timeout);
    let source = std::error::Error::source(&io).expect("the kube error stays the source");
    assert!(
        source
            .to_string()
            .contains("waiting for service account default"),
        "{source}"
    );
}

// ---------------------------------------------------------------------------------------------
// A real cluster

/// Deploys two pods on the cluster of `NETPOL_KUBE_CONTEXT`, checks they reach each other,
/// that a deny-all ingress policy blocks it, and that teardown leaves nothing labelled.
#[tokio::test]
#[ignore = "needs a kind cluster"]
async fn a_real_cluster_enforces_a_deny_all_policy() {
    let config = KubeConfig::from_env(None).expect("NETPOL_KUBE_CONTEXT names the cluster");
    let mut backend = KubeBackend::connect(config).await.unwrap();
    let topology = Topology {
        namespaces: vec![namespace("e2e", &[])],
        pods: vec![
            pod(
                "e2e",
                "a",
                &[("pod", "a")],
                vec![port(80, Protocol::Tcp, Check::Http, Some("http"))],
            ),
            pod(
                "e2e",
                "b",
                &[("pod", "b")],
                vec![port(80, Protocol::Tcp, Check::Http, Some("http"))],
            ),
        ],
    };
    let result = async {
        backend.deploy(&topology).await?;
        let to_b = [Target {
            port: 80,
            ..target("a->b", backend.address(1), "e2e/b")
        }];
        let open = backend.probe(0, &to_b).await?;
        assert!(open[0].outcome.is_connected(), "{open:?}");
        let deny = NetworkPolicy {
            name: "deny-ingress".into(),
            namespace: "e2e".into(),
            pod_selector: LabelSelector::default(),
            isolates_ingress: true,
            isolates_egress: false,
            ingress: vec![],
            egress: vec![],
            origin: Origin::default(),
        };
        backend.apply_policies(&[deny]).await?;
        let mut denied = false;
        for _ in 0..20 {
            if !backend.probe(0, &to_b).await?[0].outcome.is_connected() {
                denied = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert!(denied, "the deny-all policy was not enforced within 10 s");
        Ok::<_, BackendError>(())
    }
    .await;
    backend.teardown().await.unwrap();
    result.unwrap();
}

/// Deploys two pods and the cluster's CoreDNS on the cluster of `NETPOL_KUBE_CONTEXT`, and
/// checks that one reaches the other through its Service's ClusterIP and through its name
/// resolved by kube-dns (retried while the endpoints propagate).
#[tokio::test]
#[ignore = "needs a kind cluster"]
async fn a_real_cluster_answers_through_the_service_and_its_name() {
    let config = KubeConfig::from_env(None).expect("NETPOL_KUBE_CONTEXT names the cluster");
    let mut backend = KubeBackend::connect(config).await.unwrap();
    let mut topology = topology();
    topology.namespaces = vec![namespace("e2e-svc", &[]), namespace("kube-system", &[])];
    topology.pods = vec![
        pod(
            "e2e-svc",
            "a",
            &[("pod", "a")],
            vec![port(80, Protocol::Tcp, Check::Http, Some("http"))],
        ),
        pod(
            "e2e-svc",
            "b",
            &[("pod", "b")],
            vec![port(80, Protocol::Tcp, Check::Http, None)],
        ),
        topology.pods[COREDNS].clone(),
    ];
    let result = async {
        backend.deploy(&topology).await?;
        let by_service = Target {
            port: 80,
            ..target("service", backend.service_address(1).unwrap(), "e2e-svc/b")
        };
        let by_name = Target {
            id: "dns".into(),
            host: backend.service_host(1),
            resolver: backend.resolver(),
            ..by_service.clone()
        };
        let mut last = Vec::new();
        for _ in 0..20 {
            last = backend
                .probe(0, &[by_service.clone(), by_name.clone()])
                .await?;
            if last.iter().all(|r| r.outcome.is_connected()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert!(last.iter().all(|r| r.outcome.is_connected()), "{last:?}");
        Ok::<_, BackendError>(())
    }
    .await;
    backend.teardown().await.unwrap();
    result.unwrap();
}

#[tokio::test]
async fn the_seed_fixture_deploys_with_its_named_namespaces_kept_and_the_others_suffixed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/meeting-app");
    let topology = crate::input::load_topology(&dir.join("topology.yaml")).unwrap();
    let policies = crate::input::load_policies(&[dir.join("policies")]).unwrap();
    let api = FakeApi::new(Cluster::seeded());
    let config = KubeConfig {
        exact_namespaces: names::namespaces_named_by(&policies),
        ..config()
    };
    let mut backend = KubeBackend::with_client(api.client(), Connected::default(), config);
    backend.deploy(&topology).await.unwrap();
    backend.apply_policies(&policies).await.unwrap();
    assert_eq!(
        backend.cluster_namespace("meeting-app"),
        Some("meeting-app-r1")
    );
    assert_eq!(
        backend.cluster_namespace("ingress-nginx"),
        Some("ingress-nginx")
    );
    assert_eq!(
        backend.cluster_namespace("kube-system"),
        Some("kube-system")
    );
    let applied = api.requests().iter().filter(|r| r.is_apply()).count();
    let probe_pods = topology.pods.iter().filter(|p| !p.provided).count();
    let services = topology
        .pods
        .iter()
        .filter(|p| !p.provided && !p.ports.is_empty())
        .count();
    let created_namespaces = topology.namespaces.len() - 1;
    assert_eq!(
        applied,
        created_namespaces + probe_pods + services + policies.len()
    );
    for (index, pod) in topology.pods.iter().enumerate() {
        let cluster = backend.cluster_pod(index).unwrap();
        let expected = if pod.provided {
            Some("kube-dns.kube-system.svc.cluster.local".to_owned())
        } else {
            (!pod.ports.is_empty())
                .then(|| format!("{}.{}.svc.cluster.local", cluster.name, cluster.namespace))
        };
        assert_eq!(backend.service_host(index), expected, "{}", pod.id());
    }
    backend.teardown().await.unwrap();
}

#[tokio::test]
async fn a_namespace_still_terminating_from_a_previous_run_is_awaited_then_created() {
    let mut cluster = Cluster::seeded();
    cluster.insert(
        "namespaces",
        json!({
            "metadata": {"name": "ingress-nginx", "uid": "old-run",
                         "labels": {"netpol-harness/run-id": "r0"}},
            "status": {"phase": "Terminating"}
        }),
    );
    let (api, mut backend, _) = deployed(cluster).await;
    let waited = api.requests().into_iter().any(|r| {
        r.path == "/api/v1/namespaces"
            && r.param("fieldSelector") == Some("metadata.name=ingress-nginx")
    });
    assert!(
        waited,
        "the deletion is awaited through a watch of the namespace"
    );
    let created = api.applied("/api/v1/namespaces/ingress-nginx");
    assert_eq!(created["metadata"]["labels"]["netpol-harness/run-id"], "r1");
    backend.teardown().await.unwrap();
    assert!(
        api.deleted()
            .contains(&"/api/v1/namespaces/ingress-nginx".to_owned())
    );
}

// ---------------------------------------------------------------------------------------------
// RBAC

/// The RBAC verbs a recorded request needs: `(API group, resource[/subresource], verb)`.
fn rbac_needs(request: &Recorded) -> Vec<(String, String, String)> {
    let group = if request.path.starts_with("/api/v1/") {
        ""
    } else {
        "networking.k8s.io"
    };
    let (resource, _, name, sub) = route(&request.path);
    let resource = match sub {
        Some(sub) => format!("{resource}/{sub}"),
        None => resource,
    };
    let verbs: &[&str] = match (request.method.as_str(), name) {
        // A WebSocket exec is a GET authorized as `create` since Kubernetes 1.31.
        ("GET", Some(_)) if resource.ends_with("/exec") => &["get", "create"],
        ("GET", Some(_)) => &["get"],
        ("GET", None) if request.param("watch") == Some("true") => &["watch"],
        ("GET", None) => &["list"],
        // Server-side apply creates the object when it does not exist.
        ("PATCH", _) if request.is_apply() => &["patch", "create"],
        ("PATCH", _) => &["patch"],
        ("POST", _) => &["create"],
        ("DELETE", _) => &["delete"],
        (method, _) => panic!("unexpected {method} {}", request.path),
    };
    verbs
        .iter()
        .map(|verb| (group.to_owned(), resource.clone(), (*verb).to_owned()))
        .collect()
}

/// Every request of a run's life on the fake API server: a deploy into a reused namespace,
/// policies applied and replaced, labels changed, a probe exec, teardown and clean; and a
/// deploy whose pod never becomes ready (its events are read).
async fn every_kind_of_request() -> Vec<Recorded> {
    let api = FakeApi::new(cluster_with_ingress_nginx());
    let client = api.client();
    let exec = KubeExec::new(client.clone());
    let mut backend = KubeBackend::with_client(client.clone(), exec, config());
    backend.deploy(&topology()).await.unwrap();
    backend.apply_policies(&[frontend_policy()]).await.unwrap();
    let labels_now = labels(&[("tier", "web")]);
    backend.set_pod_labels(FRONTEND, labels_now).await.unwrap();
    let team = labels(&[("team", "other")]);
    backend
        .set_namespace_labels("ingress-nginx", team)
        .await
        .unwrap();
    let ip = backend.address(POSTGRES);
    let targets = [target("1", ip, "meeting-app/postgres")];
    let refused = backend.probe(FRONTEND, &targets).await;
    assert!(refused.is_err(), "the fake API server refuses execs");
    backend.apply_policies(&[]).await.unwrap();
    backend.teardown().await.unwrap();
    clean::clean(&client).await.unwrap();

    let mut never_ready = Cluster::seeded();
    never_ready.never_ready.insert("frontend".into());
    let failing = FakeApi::new(never_ready);
    let config = KubeConfig {
        ready_timeout: Duration::from_millis(300),
        ..config()
    };
    let mut backend = KubeBackend::with_client(failing.client(), Connected::default(), config);
    assert!(backend.deploy(&topology()).await.is_err());
    backend.teardown().await.unwrap();
    [api.requests(), failing.requests()].concat()
}

#[tokio::test]
async fn the_rbac_of_deploy_allows_every_request_the_backend_makes() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/rbac.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let documents: Vec<Value> = serde_saphyr::from_str_multiple(&text).unwrap();
    let role = documents
        .into_iter()
        .find(|d| d["kind"] == "ClusterRole")
        .expect("deploy/rbac.yaml has a ClusterRole");
    let role: k8s_openapi::api::rbac::v1::ClusterRole = serde_json::from_value(role).unwrap();
    let rules = role.rules.unwrap_or_default();
    let allows = |(group, resource, verb): &(String, String, String)| {
        rules.iter().any(|rule| {
            let has = |list: &Option<Vec<String>>, item: &str| {
                list.iter().flatten().any(|x| x == item || x == "*")
            };
            has(&rule.api_groups, group)
                && has(&rule.resources, resource)
                && rule.verbs.contains(verb)
        })
    };

    let mut needed: BTreeSet<(String, String, String)> = BTreeSet::new();
    for request in every_kind_of_request().await {
        needed.extend(rbac_needs(&request));
    }
    // `certify` reads the CNI from the DaemonSets of every namespace
    // (`certify::implementation::of_cluster`, tested against its own fake API server).
    needed.insert(("apps".into(), "daemonsets".into(), "list".into()));
    // The run's core requests are all there, so that a change to the scenario above that
    // drops them cannot make this test pass vacuously.
    for core in [
        ("", "pods", "patch"),
        ("", "pods/exec", "create"),
        ("", "namespaces", "delete"),
    ] {
        let core = (core.0.to_owned(), core.1.to_owned(), core.2.to_owned());
        assert!(needed.contains(&core), "{core:?} not exercised");
    }
    let missing: Vec<_> = needed.iter().filter(|need| !allows(need)).collect();
    assert!(
        missing.is_empty(),
        "deploy/rbac.yaml does not allow {missing:?}"
    );
}
