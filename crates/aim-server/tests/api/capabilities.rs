//! Capabilities are granted by people only; agents declare and request.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::Harness;

#[tokio::test]
async fn agents_cannot_grant_themselves_capabilities() {
    let h = Harness::start().await;
    let a = h.register("greedy").await;
    // The upstream hole: POST /sdk-api/agents/{id}/capabilities granted anything. Here it only
    // records a declaration.
    let (s, r) = h
        .as_agent(&a, Method::POST, &format!("/api/v1/sdk-api/agents/{}/capabilities", a.id), Some(json!({"capabilityType": "delete_*", "scope": {"source": "python_sdk_auto_detection"}})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(r["granted"], false);
    assert_eq!(r["status"], "declared");
    let (s, v) = h.verify(&a, "delete_file", None, json!({})).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "a declaration is not a grant: {v}"
    );
    // The grant endpoint refuses agents outright, even for themselves.
    let (s, e) = h
        .as_agent(
            &a,
            Method::POST,
            &format!("/api/v1/agents/{}/capabilities", a.id),
            Some(json!({"capability": "delete_*"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert!(e["error"].as_str().unwrap().contains("only people"));
    // A member API key cannot grant either (admin only).
    let member = h.key_with_role("m@acme.test", "member").await;
    let (s, _) = h
        .call(
            Method::POST,
            &format!("/api/v1/agents/{}/capabilities", a.id),
            &member,
            Some(json!({"capability": "delete_*"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, caps) = h
        .admin(
            Method::GET,
            &format!("/api/v1/agents/{}/capabilities", a.id),
            None,
        )
        .await;
    assert_eq!(caps["granted"], json!([]));
    assert_eq!(caps["declared"][0]["capability"], "delete_*");
    assert_eq!(caps["declared"][0]["source"], "sdk_report");
    h.stop().await;
}

#[tokio::test]
async fn grant_and_revoke_change_decisions() {
    let h = Harness::start().await;
    let a = h.register("grantee").await;
    let (s, _) = h.verify(&a, "write_file", None, json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, c) = h
        .admin(
            Method::POST,
            "/api/v1/agents/grantee/capabilities",
            Some(json!({"capability": "write_*", "reason": "report writer"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    assert_eq!(c["granted"][0]["capability"], "write_*");
    assert_eq!(c["granted"][0]["granted_by"], "admin@acme.test");
    let (s, _) = h
        .admin(
            Method::POST,
            "/api/v1/agents/grantee/capabilities",
            Some(json!({"capability_type": "write_*"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, v) = h.verify(&a, "write_file", None, json!({})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // Revoke (the `*` is URL-encoded).
    let (s, c) = h
        .admin(
            Method::DELETE,
            "/api/v1/agents/grantee/capabilities/write_%2A",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["granted"], json!([]));
    let (s, _) = h
        .admin(
            Method::DELETE,
            "/api/v1/agents/grantee/capabilities/write_%2A",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = h.verify(&a, "write_file", None, json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Bad capability names.
    for bad in ["", "a*b", "**"] {
        let (s, _) = h
            .admin(
                Method::POST,
                "/api/v1/agents/grantee/capabilities",
                Some(json!({"capability": bad})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad:?}");
    }
    let (_, log) = h
        .admin(Method::GET, "/api/v1/audit-logs?action=capability.*", None)
        .await;
    let actions: Vec<_> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(actions, vec!["capability.revoked", "capability.granted"]);
    h.stop().await;
}

#[tokio::test]
async fn capability_requests_are_approved_or_rejected_by_people() {
    let h = Harness::start().await;
    let a = h.register("asker").await;
    let path = format!("/api/v1/sdk-api/agents/{}/capability-requests", a.id);
    let (s, e) = h
        .as_agent(
            &a,
            Method::POST,
            &path,
            Some(json!({"capability_type": "send_email", "reason": "short"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(e["error"].as_str().unwrap().contains("10 characters"));
    let (s, r) = h
        .as_agent(
            &a,
            Method::POST,
            &path,
            Some(
                json!({"capability_type": "send_email", "reason": "needs to send weekly digests"}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(r["status"], "pending");
    let rid = r["id"].as_str().unwrap().to_owned();
    let (s, _) = h
        .as_agent(
            &a,
            Method::POST,
            &path,
            Some(
                json!({"capability_type": "send_email", "reason": "needs to send weekly digests"}),
            ),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "one pending request per capability"
    );
    let (_, list) = h
        .admin(
            Method::GET,
            "/api/v1/capability-requests?status=pending",
            None,
        )
        .await;
    assert_eq!(list["requests"].as_array().unwrap().len(), 1);
    // The agent cannot approve its own request (it has no API key route to do so).
    let (s, _) = h
        .as_agent(
            &a,
            Method::POST,
            &format!("/api/v1/capability-requests/{rid}/approve"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, r) = h
        .admin(
            Method::POST,
            &format!("/api/v1/capability-requests/{rid}/approve"),
            Some(json!({"reason": "ok"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["status"], "approved");
    assert_eq!(r["reviewed_by"], "admin@acme.test");
    let (s, _) = h.verify(&a, "send_email", None, json!({})).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = h
        .admin(
            Method::POST,
            &format!("/api/v1/capability-requests/{rid}/reject"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    // Already granted: a new request conflicts.
    let (s, _) = h
        .as_agent(
            &a,
            Method::POST,
            &path,
            Some(
                json!({"capability_type": "send_email", "reason": "needs to send weekly digests"}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    // Rejection.
    let (_, r) = h
        .as_agent(&a, Method::POST, &path, Some(json!({"capability_type": "execute_command", "reason": "wants a shell for debugging"})))
        .await;
    let rid = r["id"].as_str().unwrap();
    let (s, r) = h
        .admin(
            Method::POST,
            &format!("/api/v1/capability-requests/{rid}/reject"),
            Some(json!({"reason": "no shells"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(r["status"], "rejected");
    let (s, _) = h.verify(&a, "execute_command", None, json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = h
        .admin(
            Method::POST,
            "/api/v1/capability-requests/not-a-uuid/approve",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    h.stop().await;
}
