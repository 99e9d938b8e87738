//! Lint findings on the seed fixture and on small policy sets built to trigger each kind.

use crate::builders::*;
use netpol_harness::engine::lint::{
    INTENT_DENIED, NO_DNS_EGRESS, ONE_SIDED, PEER_MATCHES_NOTHING, POLICY_SELECTS_NOTHING,
};
use netpol_harness::engine::{
    Direction, Engine, Finding, IntentFlow, NetworkPolicy, Topology, lint,
};
use netpol_probes::spec::Protocol;

fn flow(topology: &Topology, from: &str, to: &str, port: u16, protocol: Protocol) -> IntentFlow {
    let edge = edge(topology, from, to, port, protocol);
    IntentFlow {
        src: edge.src,
        dst: edge.dst,
        port,
        protocol,
        reason: "test".into(),
    }
}

fn messages<'a>(findings: &'a [Finding], kind: &str) -> Vec<&'a str> {
    findings
        .iter()
        .filter(|f| f.kind == kind)
        .map(|f| f.message.as_str())
        .collect()
}

fn seed_findings(
    extra: Vec<NetworkPolicy>,
    intent: &[(&str, &str, u16, Protocol)],
) -> Vec<Finding> {
    let (topology, mut policies) = meeting_app();
    policies.extend(extra);
    let intent: Vec<IntentFlow> = intent
        .iter()
        .map(|&(from, to, port, protocol)| flow(&topology, from, to, port, protocol))
        .collect();
    lint(&Engine::new(&topology, &policies), &intent)
}

#[test]
fn lint_reports_that_the_backends_cannot_reach_redis() {
    let findings = seed_findings(
        vec![],
        &[
            ("meeting-app/flask-backend", "meeting-app/redis", 6379, Tcp),
            (
                "meeting-app/frontend",
                "meeting-app/flask-backend",
                5000,
                Tcp,
            ),
        ],
    );
    assert_eq!(
        messages(&findings, INTENT_DENIED),
        [
            "meeting-app/flask-backend -> meeting-app/redis 6379/TCP is denied: source \
         meeting-app/flask-backend is isolated for egress by meeting-app/flask-backend-policy, \
         meeting-app/node-backend-policy, and no egress rule allows meeting-app/redis on 6379/TCP"
        ]
    );
}

#[test]
fn lint_reports_that_prometheus_cannot_scrape_the_backends_or_the_frontend() {
    let findings = seed_findings(
        vec![],
        &[
            (
                "meeting-app/prometheus",
                "meeting-app/node-backend",
                3001,
                Tcp,
            ),
            ("meeting-app/prometheus", "meeting-app/frontend", 3000, Tcp),
        ],
    );
    let denied = messages(&findings, INTENT_DENIED);
    assert_eq!(denied.len(), 2);
    assert!(denied[0].contains(
        "destination meeting-app/node-backend is isolated for ingress by \
         meeting-app/flask-backend-policy, meeting-app/node-backend-policy, and no ingress rule \
         admits meeting-app/prometheus on 3001/TCP"
    ));
    assert!(denied[1].contains("isolated for ingress by meeting-app/frontend-policy"));
}

#[test]
fn lint_reports_one_sided_edges_once_per_allowing_rule() {
    let findings = seed_findings(vec![], &[]);
    assert_eq!(
        messages(&findings, ONE_SIDED),
        [
            "ingress rule 0 of meeting-app/redis-policy admits meeting-app/flask-backend -> \
             meeting-app/redis 6379/TCP; meeting-app/node-backend -> meeting-app/redis 6379/TCP, \
             but the source's egress denies them (isolated by meeting-app/flask-backend-policy, \
             meeting-app/node-backend-policy)",
            "egress rule 0 of meeting-app/prometheus-policy allows meeting-app/prometheus -> \
             meeting-app/frontend 3000/TCP, 8080/TCP; meeting-app/prometheus -> \
             meeting-app/flask-backend 5000/TCP, 5000/UDP, 8080/TCP; meeting-app/prometheus -> \
             meeting-app/node-backend 3001/TCP, 8080/TCP, but the destination's ingress denies \
             them (isolated by meeting-app/frontend-policy, meeting-app/flask-backend-policy, \
             meeting-app/node-backend-policy)",
        ]
    );
}

#[test]
fn one_sided_finding_lists_a_few_pairs_and_counts_the_rest() {
    let topology = xyz();
    let policies = vec![
        policy("x", "open-egress", all())
            .egress(vec![allow_all()])
            .types(&[Direction::Egress]),
        policy("y", "closed", all()).types(&[Direction::Ingress]),
    ];
    let findings = lint(&Engine::new(&topology, &policies), &[]);
    let one_sided = messages(&findings, ONE_SIDED);
    assert_eq!(one_sided.len(), 1, "{one_sided:#?}");
    assert!(
        one_sided[0].starts_with("egress rule 0 of x/open-egress allows x/a -> y/a 80/TCP, 80/UDP")
    );
    assert!(one_sided[0].ends_with(
        "; and 5 more pairs (30 edges), but the destination's ingress denies them (isolated by \
         y/closed)"
    ));
}

#[test]
fn seed_policies_select_pods_match_peers_and_keep_dns() {
    let findings = seed_findings(vec![], &[]);
    assert!(messages(&findings, POLICY_SELECTS_NOTHING).is_empty());
    assert!(messages(&findings, PEER_MATCHES_NOTHING).is_empty());
    assert!(
        messages(&findings, NO_DNS_EGRESS).is_empty(),
        "{findings:#?}"
    );
}

#[test]
fn lint_reports_policies_that_select_no_pod() {
    let ghost = policy("meeting-app", "ghost", sel(&[("app", "ghost")]));
    let findings = seed_findings(vec![ghost], &[]);
    assert_eq!(
        messages(&findings, POLICY_SELECTS_NOTHING),
        [
            "meeting-app/ghost selects no pod: podSelector {app=ghost} matches no pod of namespace \
         meeting-app"
        ]
    );
}

#[test]
fn lint_reports_selector_peers_that_match_no_pod_but_not_ip_blocks() {
    let peers = vec![
        pods(sel(&[("app", "grafana")])),
        pods_in(sel(&[("team", "none")]), sel(&[("app", "grafana")])),
        ip_block("192.168.0.0/16", &[]),
        pods(sel(&[("app", "web")])),
    ];
    let odd =
        policy("meeting-app", "odd", sel(&[("app", "grafana")])).ingress(vec![rule(peers, vec![])]);
    let findings = seed_findings(vec![odd], &[]);
    assert_eq!(
        messages(&findings, PEER_MATCHES_NOTHING),
        [
            "peer 1 of ingress rule 0 of meeting-app/odd (namespaceSelector {team=none} and \
         podSelector {app=grafana}) matches no pod of the topology",
            "peer 3 of ingress rule 0 of meeting-app/odd (podSelector {app=web}) matches no pod of \
         the topology",
        ]
    );
}

#[test]
fn lint_reports_egress_isolated_pods_that_cannot_reach_dns() {
    let deny = policy("meeting-app", "logstash-deny", sel(&[("app", "logstash")]))
        .types(&[Direction::Egress]);
    let findings = seed_findings(vec![deny], &[]);
    assert_eq!(
        messages(&findings, NO_DNS_EGRESS),
        [
            "meeting-app/logstash is isolated for egress by meeting-app/logstash-deny, and no \
             egress rule allows 53/UDP to any k8s-app=kube-dns pod (meeting-app/fake-dns, \
             kube-system/coredns)"
        ]
    );
}

#[test]
fn lint_reports_dns_blocked_by_the_dns_pods_ingress() {
    let (mut topology, _) = meeting_app();
    topology.pods.retain(|p| p.name != "fake-dns");
    let policies = vec![
        policy("meeting-app", "app", all()).egress(vec![rule(vec![], vec![port(Udp, 53)])]),
        policy("kube-system", "dns", all()),
    ];
    let findings = lint(&Engine::new(&topology, &policies), &[]);
    let no_dns = messages(&findings, NO_DNS_EGRESS);
    assert_eq!(no_dns.len(), 10);
    assert!(no_dns[0].ends_with(
        "has no DNS: its egress allows 53/UDP to a k8s-app=kube-dns pod, \
         but the ingress of every such pod (kube-system/coredns) denies it"
    ));
}

#[test]
fn lint_findings_come_in_kind_order_and_are_deterministic() {
    let ghost = policy("meeting-app", "ghost", sel(&[("app", "ghost")]))
        .ingress(vec![rule(vec![pods(sel(&[("app", "web")]))], vec![])]);
    let intent = [("meeting-app/flask-backend", "meeting-app/redis", 6379, Tcp)];
    let first = seed_findings(vec![ghost.clone()], &intent);
    assert_eq!(first, seed_findings(vec![ghost], &intent));
    let kinds: Vec<&str> = first.iter().map(|f| f.kind).collect();
    let order = [
        INTENT_DENIED,
        POLICY_SELECTS_NOTHING,
        PEER_MATCHES_NOTHING,
        NO_DNS_EGRESS,
        ONE_SIDED,
    ];
    let rank = |kind: &str| order.iter().position(|k| *k == kind).unwrap();
    assert!(
        kinds.windows(2).all(|pair| rank(pair[0]) <= rank(pair[1])),
        "{kinds:?}"
    );
}

#[test]
fn intent_flow_from_a_pod_to_itself_is_not_judged() {
    let deny = policy("meeting-app", "all", all()).types(&[Direction::Ingress]);
    let findings = seed_findings(
        vec![deny],
        &[("meeting-app/redis", "meeting-app/redis", 6379, Tcp)],
    );
    assert!(messages(&findings, INTENT_DENIED).is_empty());
}
