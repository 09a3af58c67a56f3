//! Registration, lookup, lifecycle, key rotation, tenant isolation.

use std::time::Duration;

use aim_crypto::AgentKeypair;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{Harness, TestAgent};

#[tokio::test]
async fn sdk_api_key_registration_generates_a_key_returned_once() {
    let h = Harness::start().await;
    // The Python SDK's API-key mode: camelCase fields, no public key.
    let (status, body) = h
        .send(
            Method::POST,
            "/api/v1/public/agents/register",
            &[("x-aim-api-key", h.admin_key.clone())],
            Some(
                serde_json::to_vec(&json!({
                    "name": "sdk-agent", "displayName": "SDK Agent", "description": "d",
                    "agentType": "ai_agent", "version": "1.0.0",
                    "talksTo": ["filesystem"], "capabilities": ["read_file"],
                }))
                .unwrap(),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for field in [
        "agent_id",
        "name",
        "display_name",
        "public_key",
        "private_key",
        "aim_url",
        "status",
        "trust_score",
        "message",
    ] {
        assert!(body.get(field).is_some(), "missing {field}: {body}");
    }
    assert_eq!(body["status"], "verified");
    assert_eq!(body["aim_url"], h.url);
    let private = body["private_key"].as_str().unwrap();
    let public = body["public_key"].as_str().unwrap();
    // The returned private key is the 64-byte form and matches the public key.
    let pair = AgentKeypair::from_private_key_b64_checked(private, public).unwrap();
    assert_eq!(pair.public_key().to_b64(), public);
    let id = body["agent_id"].as_str().unwrap();
    // The server kept only the public key: the agent view has no private key, the declared
    // capability is not a grant.
    let (s, agent) = h
        .admin(Method::GET, &format!("/api/v1/agents/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(!agent.to_string().contains(private));
    assert_eq!(agent["capabilities"], json!(["read_file"]));
    assert_eq!(agent["granted_capabilities"], json!([]));
    assert_eq!(agent["talks_to"], json!(["filesystem"]));
    // The database holds no private key either.
    let db = std::fs::read(h.dir.path().join("aim.db")).unwrap();
    let wal = std::fs::read(h.dir.path().join("aim.db-wal")).unwrap_or_default();
    let seed_b64 = &private[..40];
    for bytes in [&db, &wal] {
        assert!(!String::from_utf8_lossy(bytes).contains(seed_b64));
    }
    // The agent can sign with the returned key.
    let agent = TestAgent {
        id: id.to_owned(),
        name: "sdk-agent".into(),
        keys: pair,
    };
    let (s, _) = h
        .as_agent(&agent, Method::GET, &format!("/api/v1/agents/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    h.stop().await;
}

#[tokio::test]
async fn client_key_registration_returns_no_private_key_and_names_are_unique() {
    let h = Harness::start().await;
    let a = h.register("alpha").await;
    let (s, body) = h
        .call(
            Method::POST,
            "/api/v1/public/agents/register",
            &h.admin_key,
            Some(json!({ "name": "alpha", "public_key": AgentKeypair::generate().unwrap().public_key().to_b64() })),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert!(body["error"].as_str().unwrap().contains("alpha"));
    // Bad public key.
    let (s, _) = h
        .admin(
            Method::POST,
            "/api/v1/agents",
            Some(json!({ "name": "beta", "public_key": "AAAA" })),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Authenticated creation.
    let pk = AgentKeypair::generate().unwrap().public_key().to_b64();
    let (s, created) = h
        .admin(
            Method::POST,
            "/api/v1/agents",
            Some(json!({ "name": "beta", "public_key": pk })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(created["public_key"], pk);
    assert!(created.get("private_key").is_none());
    // Get by id and by name; list.
    let (s, by_name) = h.admin(Method::GET, "/api/v1/agents/alpha", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(by_name["id"], a.id);
    let (s, sdk) = h
        .admin(Method::GET, "/api/v1/sdk-api/agents/alpha", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(sdk["success"], true);
    assert_eq!(sdk["agent"]["id"], a.id);
    let (s, list) = h.admin(Method::GET, "/api/v1/agents", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["total"], 2);
    assert_eq!(list["agents"][0]["name"], "alpha");
    let (s, list) = h
        .admin(Method::GET, "/api/v1/agents?status=suspended", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["total"], 0);
    let (s, _) = h.admin(Method::GET, "/api/v1/agents/nobody", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    h.stop().await;
}

#[tokio::test]
async fn suspend_reactivate_revoke() {
    let h = Harness::start().await;
    let a = h.agent_with("worker", &["read_*"]).await;
    let path = format!("/api/v1/agents/{}", a.id);
    let (s, v) = h
        .admin(
            Method::POST,
            &format!("{path}/suspend"),
            Some(json!({"reason": "investigating"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "suspended");
    // A suspended agent's signature is refused.
    let (s, e) = h.as_agent(&a, Method::GET, &path, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(e["error"].as_str().unwrap().contains("suspended"), "{e}");
    let (s, e) = h.verify(&a, "read_file", Some("x"), json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    // Suspending twice conflicts; a member cannot reactivate.
    let (s, _) = h
        .admin(Method::POST, &format!("{path}/suspend"), None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let member = h.key_with_role("m@acme.test", "member").await;
    let (s, _) = h
        .call(Method::POST, &format!("{path}/reactivate"), &member, None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = h
        .admin(Method::POST, &format!("{path}/reactivate"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "verified");
    let (s, _) = h.verify(&a, "read_file", Some("x"), json!({})).await;
    assert_eq!(s, StatusCode::CREATED);
    // Revocation is final.
    let (s, v) = h.admin(Method::POST, &format!("{path}/revoke"), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "revoked");
    let (s, _) = h
        .admin(Method::POST, &format!("{path}/reactivate"), None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = h.as_agent(&a, Method::GET, &path, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    h.stop().await;
}

#[tokio::test]
async fn key_rotation_with_grace_period() {
    let h = Harness::start().await;
    let mut a = h.agent_with("rotor", &["read_*"]).await;
    let old = a.keys.clone();
    let new = AgentKeypair::generate().unwrap();
    // The agent rotates its own key, signing with the current one.
    let path = format!("/api/v1/agents/{}/keys", a.id);
    let (s, r) = h
        .as_agent(
            &a,
            Method::POST,
            &path,
            Some(json!({ "public_key": new.public_key().to_b64(), "grace_seconds": 600 })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["rotation_count"], 1);
    assert_eq!(r["previous_public_key"], old.public_key().to_b64());
    // During the grace period both keys verify.
    let (s, _) = h.verify(&a, "read_file", None, json!({})).await;
    assert_eq!(s, StatusCode::CREATED);
    a.keys = new.clone();
    let (s, _) = h.verify(&a, "read_file", None, json!({})).await;
    assert_eq!(s, StatusCode::CREATED);
    // After it, only the new key.
    h.clock.advance(Duration::from_secs(601));
    let (s, _) = h.verify(&a, "read_file", None, json!({})).await;
    assert_eq!(s, StatusCode::CREATED);
    a.keys = old;
    let (s, e) = h.verify(&a, "read_file", None, json!({})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{e}");
    // Rotating to the same key conflicts; a person can rotate too; audit has the change.
    let (s, _) = h
        .admin(
            Method::POST,
            &path,
            Some(json!({ "public_key": new.public_key().to_b64() })),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, log) = h
        .admin(
            Method::GET,
            &format!(
                "/api/v1/audit-logs?action=agent.key_rotated&agent_id={}",
                a.id
            ),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(log["entries"].as_array().unwrap().len(), 1);
    assert_eq!(log["entries"][0]["actor_type"], "agent");
    h.stop().await;
}

#[tokio::test]
async fn tenants_never_see_each_other() {
    let h = Harness::start().await;
    let mine = h.agent_with("mine", &["read_*"]).await;
    let (_, other_key) = h.other_org().await;
    // The other organization's admin sees nothing of ours.
    for path in [
        format!("/api/v1/agents/{}", mine.id),
        "/api/v1/agents/mine".to_owned(),
        format!("/api/v1/sdk-api/agents/{}", mine.id),
        format!("/api/v1/agents/{}/capabilities", mine.id),
        format!("/api/v1/agents/{}/trust-score", mine.id),
        format!("/api/v1/agents/{}/trust-score/history", mine.id),
        format!("/api/v1/agents/{}/mcp-servers", mine.id),
        format!("/api/v1/detection/agents/{}/status", mine.id),
        format!("/api/v1/agents/{}/tree-heads", mine.id),
    ] {
        let (s, b) = h.call(Method::GET, &path, &other_key, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}: {b}");
    }
    let (s, list) = h
        .call(Method::GET, "/api/v1/agents", &other_key, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["total"], 0);
    // Nor change it.
    for (method, path, body) in [
        (
            Method::POST,
            format!("/api/v1/agents/{}/suspend", mine.id),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/agents/{}/revoke", mine.id),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/agents/{}/capabilities", mine.id),
            Some(json!({"capability": "delete_*"})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/agents/{}/capabilities/read_*", mine.id),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/agents/{}/keys", mine.id),
            Some(json!({"public_key": AgentKeypair::generate().unwrap().public_key().to_b64()})),
        ),
        (
            Method::PUT,
            format!("/api/v1/agents/{}/mcp-servers", mine.id),
            Some(json!({"mcp_server_ids": ["x"]})),
        ),
        (
            Method::POST,
            format!("/api/v1/sdk-api/agents/{}/mcp-servers", mine.id),
            Some(json!({"mcp_server_ids": ["x"]})),
        ),
        (
            Method::POST,
            format!("/api/v1/sdk-api/agents/{}/capabilities", mine.id),
            Some(json!({"capabilityType": "x"})),
        ),
        (
            Method::POST,
            format!("/api/v1/sdk-api/agents/{}/capability-requests", mine.id),
            Some(json!({"capability_type": "x", "reason": "long enough reason"})),
        ),
        (
            Method::POST,
            format!("/api/v1/detection/agents/{}/report", mine.id),
            Some(
                json!({"detections": [{"mcpServer": "m", "detectionMethod": "manual", "confidence": 50, "timestamp": "2025-01-01T00:00:00Z"}]}),
            ),
        ),
    ] {
        let (s, b) = h.call(method.clone(), &path, &other_key, body).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} {path}: {b}");
    }
    // Our agent is untouched.
    let (s, v) = h
        .admin(Method::GET, &format!("/api/v1/agents/{}", mine.id), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "verified");
    assert_eq!(v["granted_capabilities"], json!(["read_*"]));
    assert_eq!(v["talks_to"], json!([]));
    // Verifications of one tenant are invisible to the other.
    let (s, ver) = h.verify(&mine, "read_file", None, json!({})).await;
    assert_eq!(s, StatusCode::CREATED);
    let vid = ver["id"].as_str().unwrap();
    for (method, path) in [
        (Method::GET, format!("/api/v1/verifications/{vid}")),
        (Method::GET, format!("/api/v1/sdk-api/verifications/{vid}")),
        (Method::POST, format!("/api/v1/verifications/{vid}/approve")),
        (Method::POST, format!("/api/v1/verifications/{vid}/deny")),
        (
            Method::POST,
            format!("/api/v1/sdk-api/verifications/{vid}/result"),
        ),
    ] {
        let body = (method == Method::POST).then(|| json!({"result": "failure"}));
        let (s, b) = h.call(method.clone(), &path, &other_key, body).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} {path}: {b}");
    }
    let (s, list) = h
        .call(Method::GET, "/api/v1/verifications", &other_key, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["total"], 0);
    let (s, log) = h
        .call(Method::GET, "/api/v1/audit-logs", &other_key, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(!log.to_string().contains(&mine.id));
    // The other organization's key cannot verify actions for our agent either.
    let body = h.verification_body(&mine, "read_file", None, json!({}));
    let (s, _) = h
        .send(
            Method::POST,
            "/api/v1/sdk-api/verifications",
            &[("x-api-key", other_key.clone())],
            Some(body),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    h.stop().await;
}
