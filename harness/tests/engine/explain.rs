//! Explanations: the sentences the CLI's `explain` command and test failures print.

use crate::builders::*;
use netpol_harness::engine::{Direction, Engine, RuleRef};

#[test]
fn denied_ingress_names_the_isolating_policy_and_the_missing_rule() {
    let (topology, policies) = meeting_app();
    let engine = Engine::new(&topology, &policies);
    let explanation = engine.explain(edge(
        &topology,
        "meeting-app/frontend",
        "meeting-app/redis",
        6379,
        Tcp,
    ));
    assert!(!explanation.allowed);
    assert_eq!(
        explanation.ingress.to_string(),
        "destination meeting-app/redis is isolated for ingress by meeting-app/redis-policy, \
         and no ingress rule admits meeting-app/frontend on 6379/TCP"
    );
}

#[test]
fn explanation_prints_a_headline_and_one_line_per_side() {
    let (topology, policies) = meeting_app();
    let engine = Engine::new(&topology, &policies);
    let explanation = engine.explain(edge(
        &topology,
        "meeting-app/flask-backend",
        "meeting-app/postgres",
        5432,
        Tcp,
    ));
    let expected = "\
meeting-app/flask-backend -> meeting-app/postgres 5432/TCP: allow
  egress: source meeting-app/flask-backend is isolated for egress by \
meeting-app/flask-backend-policy, meeting-app/node-backend-policy; allowed by egress rule 0 of \
meeting-app/flask-backend-policy, egress rule 0 of meeting-app/node-backend-policy
  ingress: destination meeting-app/postgres is isolated for ingress by \
meeting-app/postgres-policy; allowed by ingress rule 0 of meeting-app/postgres-policy";
    assert_eq!(explanation.to_string(), expected);
}

#[test]
fn side_no_policy_isolates_says_so() {
    let (topology, policies) = meeting_app();
    let engine = Engine::new(&topology, &policies);
    let explanation = engine.explain(edge(
        &topology,
        "meeting-app/outsider",
        "meeting-app/grafana",
        3000,
        Tcp,
    ));
    assert!(explanation.allowed);
    assert_eq!(explanation.reason(), "allowed");
    assert_eq!(
        explanation.egress.to_string(),
        "source meeting-app/outsider is not isolated for egress (no policy selecting it \
         isolates egress), so egress allows it"
    );
}

#[test]
fn reason_of_a_denied_edge_names_every_denying_side() {
    let (topology, policies) = meeting_app();
    let engine = Engine::new(&topology, &policies);
    let explanation = engine.explain(edge(
        &topology,
        "meeting-app/flask-backend",
        "meeting-app/frontend",
        3000,
        Tcp,
    ));
    let reason = explanation.reason();
    assert!(reason.starts_with("source meeting-app/flask-backend is isolated for egress by"));
    assert!(reason.contains("; destination meeting-app/frontend is isolated for ingress by"));
}

#[test]
fn verdict_lists_isolating_policies_and_admitting_rules_by_index() {
    let (topology, policies) = meeting_app();
    let engine = Engine::new(&topology, &policies);
    let verdict = engine.verdict(edge(
        &topology,
        "meeting-app/frontend",
        "meeting-app/node-backend",
        3001,
        Tcp,
    ));
    assert_eq!(verdict.egress.isolated_by, vec![0]);
    assert_eq!(
        verdict.egress.allowed_by,
        vec![RuleRef {
            policy: 0,
            direction: Direction::Egress,
            rule: 0
        }]
    );
    assert_eq!(verdict.ingress.isolated_by, vec![1, 2]);
    assert_eq!(
        verdict.ingress.allowed_by,
        vec![RuleRef {
            policy: 2,
            direction: Direction::Ingress,
            rule: 0
        }]
    );
    assert_eq!(
        engine.rule_name(verdict.ingress.allowed_by[0]),
        "ingress rule 0 of meeting-app/node-backend-policy"
    );
}

#[test]
fn explanation_serializes_to_json_with_pods_policies_and_rules_by_name() {
    let (topology, policies) = meeting_app();
    let engine = Engine::new(&topology, &policies);
    let explanation = engine.explain(edge(
        &topology,
        "meeting-app/frontend",
        "meeting-app/redis",
        6379,
        Tcp,
    ));
    let json = serde_json::to_value(&explanation).expect("explanation serializes");
    assert_eq!(json["allowed"], false);
    assert_eq!(json["src"], "meeting-app/frontend");
    assert_eq!(
        json["ingress"]["isolated_by"][0],
        "meeting-app/redis-policy"
    );
    assert_eq!(json["ingress"]["port"], "6379/TCP");
    assert!(json.get("edge").is_none());
}
