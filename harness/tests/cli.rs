//! End-to-end tests of the `netpol-harness` binary on the meeting-app seed fixtures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/meeting-app");
    root.join(path).display().to_string()
}

fn harness(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netpol-harness"))
        .args(args)
        .output()
        .expect("failed to start netpol-harness")
}

/// Runs a subcommand on the seed topology and policies, with `extra` arguments after them.
fn on_seed(command: &str, extra: &[&str]) -> Output {
    let (topology, policies) = (fixture("topology.yaml"), fixture("policies"));
    let mut args = vec![command, "--topology", &topology, "--policies", &policies];
    args.extend_from_slice(extra);
    harness(&args)
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("stderr is UTF-8")
}

fn plan_json() -> Vec<serde_json::Value> {
    let output = on_seed("plan", &["--format", "json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_str(&stdout(&output)).expect("plan --format json prints a JSON array")
}

fn find<'a>(
    plan: &'a [serde_json::Value],
    from: &str,
    to: &str,
    port: u64,
    protocol: &str,
) -> &'a serde_json::Value {
    plan.iter()
        .find(|e| {
            e["from"] == from && e["to"] == to && e["port"] == port && e["protocol"] == protocol
        })
        .unwrap_or_else(|| panic!("no edge {from} -> {to} {port}/{protocol}"))
}

#[test]
fn plan_json_has_one_object_per_edge_with_its_verdict() {
    let plan = plan_json();
    // 13 sources (coredns is provided), each to every port of every other pod.
    assert_eq!(plan.len(), 350);
    for edge in &plan {
        for field in ["from", "to", "port", "protocol", "verdict"] {
            assert!(edge.get(field).is_some(), "{edge} lacks {field}");
        }
        assert!(
            edge["verdict"] == "allow" || edge["verdict"] == "deny",
            "{edge}"
        );
        assert_ne!(edge["from"], edge["to"], "pod-to-itself is not an edge");
        assert_ne!(
            edge["from"], "kube-system/coredns",
            "provided pods are never sources"
        );
    }
    let allowed = find(
        &plan,
        "meeting-app/frontend",
        "meeting-app/flask-backend",
        5000,
        "TCP",
    );
    assert_eq!(allowed["verdict"], "allow");
    assert_eq!(
        allowed["ingress_allowed_by"],
        serde_json::json!([{"policy": "meeting-app/flask-backend-policy", "rule": 0}])
    );
    let udp = find(
        &plan,
        "meeting-app/frontend",
        "meeting-app/flask-backend",
        5000,
        "UDP",
    );
    assert_eq!(udp["verdict"], "deny");
    let dns = find(
        &plan,
        "meeting-app/flask-backend",
        "kube-system/coredns",
        53,
        "UDP",
    );
    assert_eq!(dns["verdict"], "allow");
    let fake_dns = find(
        &plan,
        "meeting-app/flask-backend",
        "meeting-app/fake-dns",
        53,
        "UDP",
    );
    assert_eq!(
        fake_dns["verdict"], "deny",
        "the DNS rule ANDs namespace and pod selectors"
    );
    let intruder = find(
        &plan,
        "elsewhere/intruder",
        "meeting-app/flask-backend",
        5000,
        "TCP",
    );
    assert_eq!(
        intruder["verdict"], "deny",
        "a podSelector peer only matches its own namespace"
    );
}

#[test]
fn plan_json_matches_the_reviewed_snapshot() {
    let output = on_seed("plan", &["--format", "json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    insta::assert_snapshot!("meeting_app_plan_json", stdout(&output));
}

#[test]
fn plan_table_marks_allowed_denied_and_own_ports() {
    let output = on_seed("plan", &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let table = stdout(&output);
    assert!(
        table.contains("   1  meeting-app/frontend:3000/TCP\n"),
        "{table}"
    );
    let controller = table
        .lines()
        .find(|l| l.starts_with("ingress-nginx/controller "))
        .expect("a row for the ingress controller");
    let marks: Vec<&str> = controller.split_whitespace().skip(1).collect();
    assert_eq!(marks[0], ".", "controller reaches frontend:3000/TCP");
    assert_eq!(marks[1], "X", "controller does not reach frontend:8080/TCP");
    assert_eq!(marks[24], "-", "the controller's own port");
    assert!(
        table.contains("350 edges: 120 allowed (.), 230 denied (X)"),
        "{table}"
    );
    assert!(
        !table.lines().any(|l| l.starts_with("kube-system/coredns")),
        "provided pod row"
    );
}

#[test]
fn explain_names_the_rules_that_allow_an_edge() {
    let output = on_seed(
        "explain",
        &[
            "meeting-app/frontend",
            "meeting-app/flask-backend",
            "5000/TCP",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.starts_with("meeting-app/frontend -> meeting-app/flask-backend 5000/TCP: allow\n"),
        "{text}"
    );
    assert!(
        text.contains("egress rule 0 of meeting-app/frontend-policy"),
        "{text}"
    );
    assert!(
        text.contains("ingress rule 0 of meeting-app/flask-backend-policy"),
        "{text}"
    );
}

#[test]
fn explain_names_the_side_that_denies_an_edge() {
    let output = on_seed(
        "explain",
        &["meeting-app/flask-backend", "meeting-app/redis", "6379/TCP"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.starts_with("meeting-app/flask-backend -> meeting-app/redis 6379/TCP: deny\n"),
        "{text}"
    );
    assert!(
        text.contains("isolated for egress by meeting-app/flask-backend-policy"),
        "{text}"
    );
    assert!(
        text.contains("no egress rule allows meeting-app/redis on 6379/TCP"),
        "{text}"
    );
}

#[test]
fn explain_accepts_the_edge_before_the_options() {
    let (topology, policies) = (fixture("topology.yaml"), fixture("policies"));
    let output = harness(&[
        "explain",
        "meeting-app/grafana",
        "meeting-app/prometheus",
        "9090",
        "--topology",
        &topology,
        "--policies",
        &policies,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output)
            .starts_with("meeting-app/grafana -> meeting-app/prometheus 9090/TCP: allow")
    );
}

#[test]
fn explain_resolves_a_port_name_against_the_destination() {
    let output = on_seed(
        "explain",
        &[
            "meeting-app/frontend",
            "meeting-app/node-backend",
            "websocket",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.starts_with("meeting-app/frontend -> meeting-app/node-backend 3001/TCP: allow"),
        "{text}"
    );
}

#[test]
fn explain_of_an_unknown_pod_exits_2_naming_the_topology() {
    let output = on_seed(
        "explain",
        &["meeting-app/nobody", "meeting-app/redis", "6379/TCP"],
    );
    assert_eq!(output.status.code(), Some(2));
    let error = stderr(&output);
    assert!(
        error.contains("no pod \"meeting-app/nobody\" in"),
        "{error}"
    );
    assert!(error.contains("topology.yaml"), "{error}");
}

#[test]
fn lint_reports_the_seed_denials_of_intended_flows() {
    let intent = fixture("intent.yaml");
    let output = on_seed("lint", &["--intent", &intent]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "findings alone do not fail: {}",
        stderr(&output)
    );
    let report = stdout(&output);
    let denied: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("intent-denied: "))
        .collect();
    let expected = [
        // The backends' egress allows only Postgres and DNS.
        "meeting-app/flask-backend -> meeting-app/redis 6379/TCP is denied",
        "meeting-app/node-backend -> meeting-app/redis 6379/TCP is denied",
        // The backends admit only the frontend, the frontend only ingress-nginx.
        "meeting-app/prometheus -> meeting-app/frontend 3000/TCP is denied",
        "meeting-app/prometheus -> meeting-app/flask-backend 5000/TCP is denied",
        "meeting-app/prometheus -> meeting-app/node-backend 3001/TCP is denied",
    ];
    for flow in expected {
        assert!(
            denied.iter().any(|l| l.contains(flow)),
            "missing {flow:?} in:\n{report}"
        );
    }
    assert_eq!(denied.len(), expected.len(), "{report}");
    let redis = denied
        .iter()
        .find(|l| l.contains("flask-backend -> meeting-app/redis"))
        .unwrap();
    assert!(
        redis.contains("egress"),
        "names the blocking direction: {redis}"
    );
    let scrape = denied
        .iter()
        .find(|l| l.contains("prometheus -> meeting-app/frontend"))
        .unwrap();
    assert!(
        scrape.contains("ingress by meeting-app/frontend-policy"),
        "{scrape}"
    );
}

#[test]
fn lint_with_deny_findings_exits_1_when_there_are_findings() {
    let intent = fixture("intent.yaml");
    let output = on_seed("lint", &["--intent", &intent, "--deny-findings"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
}

fn write_temp(name: &str, text: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, text).expect("write a temporary manifest");
    path
}

#[test]
fn an_invalid_manifest_exits_2_with_a_one_line_cause_naming_the_file() {
    let bad = write_temp(
        "cli-bad-endport.yaml",
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec:\n  \
         podSelector: {}\n  ingress:\n  - ports:\n    - {port: 80, endPort: 79}\n",
    );
    let topology = fixture("topology.yaml");
    for command in ["plan", "lint"] {
        let output = harness(&[
            command,
            "--topology",
            &topology,
            "--policies",
            bad.to_str().unwrap(),
        ]);
        assert_eq!(output.status.code(), Some(2), "{command}");
        let error = stderr(&output);
        assert_eq!(error.lines().count(), 1, "{error}");
        assert!(error.starts_with("error: "), "{error}");
        assert!(
            error.contains("cli-bad-endport.yaml: document 0: spec.ingress[0].ports[0].endPort: must be >= port (80)"),
            "{error}"
        );
        assert!(output.stdout.is_empty(), "no partial report");
    }
}

#[test]
fn a_missing_topology_exits_2_naming_the_file() {
    let policies = fixture("policies");
    let output = harness(&[
        "plan",
        "--topology",
        "no/such/topology.yaml",
        "--policies",
        &policies,
    ]);
    assert_eq!(output.status.code(), Some(2));
    let error = stderr(&output);
    assert!(
        error.contains("failed to read no/such/topology.yaml"),
        "{error}"
    );
    assert_eq!(error.lines().count(), 1, "{error}");
}

#[test]
fn invalid_yaml_exits_2_naming_the_file_and_line() {
    let bad = write_temp("cli-bad-yaml.yaml", "namespaces: [\n");
    let policies = fixture("policies");
    let output = harness(&[
        "plan",
        "--topology",
        bad.to_str().unwrap(),
        "--policies",
        &policies,
    ]);
    assert_eq!(output.status.code(), Some(2));
    let error = stderr(&output);
    assert!(
        error.contains("cli-bad-yaml.yaml: invalid YAML: "),
        "{error}"
    );
    assert!(error.contains("line "), "{error}");
}

#[test]
fn every_command_has_help() {
    for command in [
        &["--help"][..],
        &["plan", "--help"],
        &["explain", "--help"],
        &["lint", "--help"],
    ] {
        let output = harness(command);
        assert!(output.status.success(), "{command:?}");
        assert!(
            stdout(&output).contains("Usage: netpol-harness"),
            "{command:?}"
        );
    }
}

#[test]
fn a_usage_error_exits_2() {
    let output = harness(&["plan", "--topology"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn synth_writes_a_cluster_that_plan_reads() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-synth");
    let dir = dir.to_str().unwrap();
    let output = harness(&[
        "synth",
        "--pods",
        "30",
        "--namespaces",
        "3",
        "--policies",
        "10",
        "--out",
        dir,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let (topology, policies) = (
        format!("{dir}/topology.yaml"),
        format!("{dir}/policies.yaml"),
    );
    assert_eq!(stdout(&output), format!("{topology}\n{policies}\n"));
    let plan = harness(&["plan", "--topology", &topology, "--policies", &policies]);
    assert!(plan.status.success(), "{}", stderr(&plan));
}

/// A repository-like directory: `profiles/` with copies of the shipped `meeting-app` and
/// `semantics` profiles (and `extra` files), and `fixtures` linking to the real fixtures.
fn profiles_root(name: &str, extra: &[(&str, &str)]) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let root = std::env::temp_dir().join(format!("nph-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("profiles")).unwrap();
    std::os::unix::fs::symlink(repo.join("fixtures"), root.join("fixtures")).unwrap();
    for profile in ["meeting-app.yaml", "semantics.yaml"] {
        let from = repo.join("profiles").join(profile);
        std::fs::copy(from, root.join("profiles").join(profile)).unwrap();
    }
    for (file, text) in extra {
        std::fs::write(root.join("profiles").join(file), text).unwrap();
    }
    root
}

#[test]
fn profiles_lists_each_profile_with_its_fixtures_modes_and_backends() {
    let pinned =
        "description: pinned\nfixtures: [fixtures/semantics]\nrequires: [pinned-pod-ips]\n";
    let root = profiles_root("profiles", &[("pinned.yaml", pinned)]);
    let dir = root.join("profiles").display().to_string();
    let output = harness(&["profiles", "--profiles-dir", &dir]);
    std::fs::remove_dir_all(&root).unwrap();
    let text = stdout(&output);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    let seed = text.find("meeting-app: ").expect("the seed profile");
    let pinned = text.find("pinned: ").expect("the pinned profile");
    let semantics = text.find("semantics: ").expect("the semantics profile");
    assert!(seed < pinned && pinned < semantics, "in name order: {text}");
    let (seed, pinned, semantics) = (
        &text[seed..pinned],
        &text[pinned..semantics],
        &text[semantics..],
    );
    assert!(seed.contains("fixtures: fixtures/meeting-app"), "{seed}");
    assert!(seed.contains("modes:    pod, service, dns"), "{seed}");
    assert!(seed.contains("backends: local, kube"), "{seed}");
    assert!(pinned.contains("requires: pinned-pod-ips"), "{pinned}");
    assert!(pinned.contains("backends: local\n"), "{pinned}");
    assert!(!semantics.contains("requires:"), "{semantics}");
    assert!(semantics.contains("backends: local, kube"), "{semantics}");
}

#[test]
fn profiles_names_the_file_field_and_line_of_an_invalid_profile_and_exits_2() {
    let broken =
        "description: points nowhere\nfixtures:\n  - fixtures/meeting-app\n  - fixtures/nope\n";
    let root = profiles_root("invalid", &[("broken.yaml", broken)]);
    let dir = root.join("profiles").display().to_string();
    let output = harness(&["profiles", "--profiles-dir", &dir]);
    std::fs::remove_dir_all(&root).unwrap();
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains("meeting-app: "),
        "the valid ones are still listed: {text}"
    );
    assert!(text.contains("INVALID: "), "{text}");
    assert!(
        text.contains("broken.yaml: fixtures[1]: fixture directory"),
        "{text}"
    );
    assert!(text.contains("(line 4)"), "{text}");
    assert!(
        stderr(&output).contains("1 of 3 profiles"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn compare_of_a_missing_report_is_bad_input_naming_it() {
    let output = harness(&["compare", "/nonexistent/old", "/nonexistent/new.json"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("/nonexistent/old"),
        "{}",
        stderr(&output)
    );
}
