//! Policies and risk levels change decisions; changes are audited.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::Harness;

#[tokio::test]
async fn policies_override_grants_in_priority_order() {
    let h = Harness::start().await;
    let a = h.agent_with("bot", &["read_*"]).await;
    // Deny PII reads.
    let (s, p) = h
        .admin(Method::POST, "/api/v1/policies", Some(json!({"name": "no-pii", "priority": 10, "action": "read_*", "resource": "pii_*", "effect": "deny"})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    assert_eq!(p["agent_pattern"], "*");
    let (s, v) = h
        .verify(&a, "read_database", Some("pii_customers"), json!({}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(
        v["denial_reason"]
            .as_str()
            .unwrap()
            .contains("policy 'no-pii'"),
        "{v}"
    );
    let (s, _) = h
        .verify(&a, "read_database", Some("orders"), json!({}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // A higher-priority require_approval for this agent wins.
    let (s, _) = h
        .admin(Method::POST, "/api/v1/policies", Some(json!({"name": "review-bot", "priority": 20, "agent": a.id, "effect": "require_approval"})))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, v) = h
        .verify(&a, "read_database", Some("pii_customers"), json!({}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    // Disable it; allow high-risk deletes of tmp files without a grant.
    let (s, p) = h
        .admin(
            Method::PUT,
            "/api/v1/policies/review-bot",
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(p["enabled"], false);
    assert_eq!(p["priority"], 20, "unchanged fields keep their values");
    let (s, _) = h
        .admin(Method::POST, "/api/v1/policies", Some(json!({"name": "tmp-cleanup", "action": "delete_file", "resource": "/tmp/*", "effect": "allow", "min_trust": 0.5})))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, v) = h.verify(&a, "delete_file", Some("/tmp/x"), json!({})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, _) = h
        .verify(&a, "delete_file", Some("/home/x"), json!({}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "outside the policy: no grant");
    // min_trust above the agent's trust: held or denied.
    let (s, _) = h
        .admin(
            Method::PUT,
            "/api/v1/policies/tmp-cleanup",
            Some(json!({"min_trust": 0.99})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = h.verify(&a, "delete_file", Some("/tmp/y"), json!({})).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, _) = h
        .admin(
            Method::PUT,
            "/api/v1/policies/tmp-cleanup",
            Some(json!({"below_min_trust": "deny"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = h.verify(&a, "delete_file", Some("/tmp/z"), json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(
        v["denial_reason"].as_str().unwrap().contains("min_trust"),
        "{v}"
    );
    // Listing, validation, deletion.
    let (_, list) = h.admin(Method::GET, "/api/v1/policies", None).await;
    let names: Vec<_> = list["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["review-bot", "no-pii", "tmp-cleanup"]);
    for bad in [
        json!({"name": "x"}),
        json!({"effect": "allow"}),
        json!({"name": "x", "effect": "maybe"}),
        json!({"name": "x", "effect": "allow", "min_trust": 2}),
        json!({"name": "x", "effect": "allow", "action": "a*b"}),
    ] {
        let (s, _) = h
            .admin(Method::POST, "/api/v1/policies", Some(bad.clone()))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (s, _) = h
        .admin(
            Method::POST,
            "/api/v1/policies",
            Some(json!({"name": "no-pii", "effect": "allow"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = h
        .admin(Method::DELETE, "/api/v1/policies/no-pii", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = h.admin(Method::GET, "/api/v1/policies/no-pii", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, log) = h
        .admin(Method::GET, "/api/v1/audit-logs?action=policy.", None)
        .await;
    assert_eq!(log["entries"].as_array().unwrap().len(), 7);
    h.stop().await;
}

#[tokio::test]
async fn risk_levels_are_configurable_per_organization() {
    let h = Harness::start().await;
    let a = h.agent_with("reader", &["read_*"]).await;
    let (_, levels) = h.admin(Method::GET, "/api/v1/risk-levels", None).await;
    assert_eq!(levels["fallback"], "medium");
    assert!(
        levels["defaults"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["action_pattern"] == "delete_*" && r["risk"] == "high")
    );
    let (s, _) = h.verify(&a, "read_secrets", None, json!({})).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, levels) = h
        .admin(
            Method::PUT,
            "/api/v1/risk-levels",
            Some(json!({"action_pattern": "read_secrets", "risk": "critical"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{levels}");
    assert_eq!(levels["overrides"][0]["required_trust"], 0.8);
    let (s, v) = h.verify(&a, "read_secrets", None, json!({})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["risk_level"], "critical");
    let (s, _) = h
        .admin(
            Method::PUT,
            "/api/v1/risk-levels",
            Some(json!({"action_pattern": "read_secrets", "risk": "extreme"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = h
        .admin(Method::DELETE, "/api/v1/risk-levels/read_secrets", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = h
        .admin(Method::DELETE, "/api/v1/risk-levels/read_secrets", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = h.verify(&a, "read_secrets", None, json!({})).await;
    assert_eq!(s, StatusCode::CREATED);
    // Another organization's override does not leak.
    let (_, other) = h.other_org().await;
    let (s, _) = h
        .call(
            Method::PUT,
            "/api/v1/risk-levels",
            &other,
            Some(json!({"action_pattern": "read_*", "risk": "critical"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = h.verify(&a, "read_file", None, json!({})).await;
    assert_eq!(s, StatusCode::CREATED);
    h.stop().await;
}
