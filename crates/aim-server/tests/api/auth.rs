//! Agent signatures (replay, stale timestamps, wrong keys, path binding) and API keys (roles,
//! revocation).

use aim_crypto::AgentKeypair;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{Harness, TestAgent};

#[tokio::test]
async fn a_signed_request_is_accepted_once() {
    let h = Harness::start().await;
    let a = h.agent_with("once", &["read_*"]).await;
    let path = format!("/api/v1/agents/{}", a.id);
    let headers = h.sign(&a, "GET", &path, b"");
    let (s, _) = h.send(Method::GET, &path, &headers, None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = h.send(Method::GET, &path, &headers, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(e["error"], "replayed request");
    // Writes too: the same verification request twice.
    let body = h.verification_body(&a, "read_file", None, json!({}));
    let vpath = "/api/v1/sdk-api/verifications";
    let headers = h.sign(&a, "POST", vpath, &body);
    let (s, _) = h
        .send(Method::POST, vpath, &headers, Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, e) = h
        .send(Method::POST, vpath, &headers, Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(e["error"], "replayed request");
    // The same body with fresh headers is still a replay of the body signature.
    h.clock.advance(std::time::Duration::from_secs(1));
    let headers = h.sign(&a, "POST", vpath, &body);
    let (s, e) = h
        .send(Method::POST, vpath, &headers, Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(e["error"], "replayed request");
    // And without any headers (body-signature mode, as the PyPI SDKs send it).
    let (s, e) = h.send(Method::POST, vpath, &[], Some(body)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{e}");
    // Only one verification was stored.
    let (_, list) = h.admin(Method::GET, "/api/v1/verifications", None).await;
    assert_eq!(list["total"], 1);
    h.stop().await;
}

#[tokio::test]
async fn replay_guard_holds_across_replicas_sharing_the_database() {
    let h = Harness::start().await;
    let a = h.agent_with("shared", &["read_*"]).await;
    // A second server process on the same data directory.
    let replica = aim_server::Server::start(h.config.clone()).await.unwrap();
    let path = format!("/api/v1/agents/{}", a.id);
    let headers = h.sign(&a, "GET", &path, b"");
    let (s, _) = h.send(Method::GET, &path, &headers, None).await;
    assert_eq!(s, StatusCode::OK);
    let mut rb = h.http.get(format!("{}{path}", replica.url()));
    for (k, v) in &headers {
        rb = rb.header(*k, v);
    }
    let resp = rb.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "replayed request");
    replica.shutdown().await.unwrap();
    h.stop().await;
}

#[tokio::test]
async fn verification_signatures_recorded_under_bare_digest_keys_are_still_replays() {
    // Earlier versions stored a verification's replay keys as the bare SHA-256 hex of each
    // signature; the current one leads them with the signed time. A server started on such a
    // database still refuses replays of those signatures while they are fresh.
    let h = Harness::start().await;
    let a = h.agent_with("legacy", &["read_*"]).await;
    let body = h.verification_body(&a, "read_file", None, json!({}));
    let vpath = "/api/v1/sdk-api/verifications";
    let headers = h.sign(&a, "POST", vpath, &body);
    let (s, _) = h
        .send(Method::POST, vpath, &headers, Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // Rewrite the stored keys as the previous version wrote them.
    let url = format!("sqlite://{}", h.config.database_path().display());
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let done = sqlx::query(
        "UPDATE verifications SET body_signature_hash = substr(body_signature_hash, 14), \
         header_signature_hash = substr(header_signature_hash, 14)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(done.rows_affected(), 1);
    let (key,): (String,) = sqlx::query_as("SELECT body_signature_hash FROM verifications")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(key.len(), 64, "a bare hex digest: {key}");
    drop(conn);
    // A server started now (the upgraded replica) refuses the replay, with the same headers or
    // with fresh ones.
    let replica = aim_server::Server::start(h.config.clone()).await.unwrap();
    let post = |headers: Vec<(&'static str, String)>| {
        let mut rb = h
            .http
            .post(format!("{}{vpath}", replica.url()))
            .header("content-type", "application/json")
            .body(body.clone());
        for (k, v) in &headers {
            rb = rb.header(*k, v);
        }
        async move {
            let resp = rb.send().await.unwrap();
            let status = resp.status();
            let e: serde_json::Value = resp.json().await.unwrap();
            (status, e)
        }
    };
    let (s, e) = post(headers.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{e}");
    assert_eq!(e["error"], "replayed request");
    h.clock.advance(std::time::Duration::from_secs(1));
    let (s, e) = post(h.sign(&a, "POST", vpath, &body)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{e}");
    assert_eq!(e["error"], "replayed request");
    // A fresh verification is accepted and stored under a current key.
    let fresh = h.verification_body(&a, "read_file", None, json!({"n": 2}));
    let mut rb = h
        .http
        .post(format!("{}{vpath}", replica.url()))
        .body(fresh.clone());
    for (k, v) in &h.sign(&a, "POST", vpath, &fresh) {
        rb = rb.header(*k, v);
    }
    assert_eq!(rb.send().await.unwrap().status(), StatusCode::CREATED);
    let (_, list) = h.admin(Method::GET, "/api/v1/verifications", None).await;
    assert_eq!(list["total"], 2);
    replica.shutdown().await.unwrap();
    h.stop().await;
}

#[tokio::test]
async fn stale_and_future_timestamps_are_refused() {
    let h = Harness::start().await;
    let a = h.agent_with("clocky", &["read_*"]).await;
    let path = format!("/api/v1/agents/{}", a.id);
    let now = h.now_secs();
    for (ts, ok) in [
        (now - 301, false),
        (now + 301, false),
        (now - 300, true),
        (now + 299, true),
    ] {
        let headers = h.sign_at(&a, "GET", &path, b"", ts);
        let (s, e) = h.send(Method::GET, &path, &headers, None).await;
        if ok {
            assert_eq!(s, StatusCode::OK, "{ts}: {e}");
        } else {
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{ts}");
            assert!(
                e["error"]
                    .as_str()
                    .unwrap()
                    .contains("away from server time"),
                "{e}"
            );
        }
    }
    // The verification body's own timestamp must be fresh too, even with fresh headers.
    let body = h.verification_body(&a, "read_file", None, json!({}));
    h.clock.advance(std::time::Duration::from_secs(400));
    let (s, e) = h.post_verification(&a, body).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{e}");
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("verification timestamp"),
        "{e}"
    );
    h.stop().await;
}

#[tokio::test]
async fn wrong_keys_and_tampering_are_refused() {
    let h = Harness::start().await;
    let a = h.agent_with("victim", &["read_*"]).await;
    let path = format!("/api/v1/agents/{}", a.id);
    // An impostor signs with its own key and even sends its own X-Public-Key: the registered
    // key is used, so it fails.
    let impostor = TestAgent {
        id: a.id.clone(),
        name: a.name.clone(),
        keys: AgentKeypair::generate().unwrap(),
    };
    let (s, e) = h.as_agent(&impostor, Method::GET, &path, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{e}");
    // A correct signature with a mismatching X-Public-Key header is refused.
    let mut headers = h.sign(&a, "GET", &path, b"");
    headers[3].1 = impostor.keys.public_key().to_b64();
    let (s, e) = h.send(Method::GET, &path, &headers, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(e["error"].as_str().unwrap().contains("X-Public-Key"), "{e}");
    // Without X-Public-Key the registered key is used.
    let headers = h.sign(&a, "GET", &path, b"");
    let (s, _) = h.send(Method::GET, &path, &headers[..3], None).await;
    assert_eq!(s, StatusCode::OK);
    // A tampered body fails.
    let body = serde_json::to_vec(&json!({"detections": [{"mcpServer": "m", "detectionMethod": "manual", "confidence": 1, "timestamp": "2025-01-01T00:00:00Z"}]})).unwrap();
    let rpath = format!("/api/v1/detection/agents/{}/report", a.id);
    let headers = h.sign(&a, "POST", &rpath, &body);
    let mut tampered = body.clone();
    tampered[20] ^= 1;
    let (s, _) = h.send(Method::POST, &rpath, &headers, Some(tampered)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Missing headers, bad agent id, unknown agent.
    let (s, e) = h.send(Method::GET, &path, &headers[..2], None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(e["error"].as_str().unwrap().contains("X-Timestamp"), "{e}");
    let mut bad = h.sign(&a, "GET", &path, b"");
    bad[0].1 = "not-a-uuid".into();
    let (s, _) = h.send(Method::GET, &path, &bad, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let ghost = TestAgent {
        id: uuid::Uuid::new_v4().to_string(),
        name: "ghost".into(),
        keys: AgentKeypair::generate().unwrap(),
    };
    let (s, e) = h.as_agent(&ghost, Method::GET, &path, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(e["error"], "unknown agent");
    // A verification body signed by another key is refused even with valid headers.
    let forged = h.verification_body(&impostor, "read_file", None, json!({}));
    let (s, e) = h.post_verification(&a, forged).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{e}");
    h.stop().await;
}

#[tokio::test]
async fn the_signer_is_bound_to_the_agent_in_the_path() {
    let h = Harness::start().await;
    let a = h.agent_with("a-agent", &["read_*"]).await;
    let b = h.agent_with("b-agent", &["read_*"]).await;
    for path in [
        format!("/api/v1/agents/{}", b.id),
        format!("/api/v1/agents/{}/capabilities", b.id),
        format!("/api/v1/agents/{}/trust-score", b.id),
    ] {
        let (s, e) = h.as_agent(&a, Method::GET, &path, None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}");
        assert!(
            e["error"].as_str().unwrap().contains("signed by agent"),
            "{e}"
        );
    }
    let (s, _) = h
        .as_agent(
            &a,
            Method::POST,
            &format!("/api/v1/sdk-api/agents/{}/mcp-servers", b.id),
            Some(json!({"mcp_server_ids": ["x"]})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // A verification body naming B, signed in the headers by A.
    let body = h.verification_body(&b, "read_file", None, json!({}));
    let (s, e) = h.post_verification(&a, body).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    // Agent A cannot read B's verifications.
    let (s, v) = h.verify(&b, "read_file", None, json!({})).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = h
        .as_agent(
            &a,
            Method::GET,
            &format!(
                "/api/v1/sdk-api/verifications/{}",
                v["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    h.stop().await;
}

#[tokio::test]
async fn api_key_roles_and_revocation() {
    let h = Harness::start().await;
    let viewer = h.key_with_role("v@acme.test", "viewer").await;
    let member = h.key_with_role("m@acme.test", "member").await;
    // Viewers read, never write.
    let (s, _) = h.call(Method::GET, "/api/v1/agents", &viewer, None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = h
        .call(
            Method::POST,
            "/api/v1/public/agents/register",
            &viewer,
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    // Members register agents but do not grant capabilities or write policies.
    let (s, a) = h
        .call(
            Method::POST,
            "/api/v1/agents",
            &member,
            Some(json!({"name": "by-member"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    assert!(a["private_key"].is_string());
    let (s, _) = h
        .call(
            Method::POST,
            "/api/v1/agents/by-member/capabilities",
            &member,
            Some(json!({"capability": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = h
        .call(
            Method::POST,
            "/api/v1/policies",
            &member,
            Some(json!({"name": "p", "effect": "allow"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Keys cannot exceed their owner's role.
    let (s, e) = h
        .call(
            Method::POST,
            "/api/v1/api-keys",
            &member,
            Some(json!({"name": "up", "role": "admin"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    let (s, k) = h
        .call(
            Method::POST,
            "/api/v1/api-keys",
            &member,
            Some(json!({"name": "down", "role": "viewer"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let lesser = k["api_key"].as_str().unwrap().to_owned();
    let (s, _) = h
        .call(
            Method::POST,
            "/api/v1/agents",
            &lesser,
            Some(json!({"name": "nope"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Revocation is immediate.
    let (s, _) = h
        .call(
            Method::DELETE,
            &format!("/api/v1/api-keys/{}", k["id"].as_str().unwrap()),
            &member,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = h.call(Method::GET, "/api/v1/agents", &lesser, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(e["error"].as_str().unwrap().contains("revoked"));
    // Disabling the owner stops all their keys.
    let (s, _) = h
        .admin(
            Method::PATCH,
            "/api/v1/users/m@acme.test",
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = h.call(Method::GET, "/api/v1/agents", &member, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // The last admin cannot be demoted.
    let (s, e) = h
        .admin(
            Method::PATCH,
            "/api/v1/users/admin@acme.test",
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    // Unknown, malformed and missing keys.
    for key in [
        "aim_live_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "garbage",
        "",
    ] {
        let (s, _) = h.call(Method::GET, "/api/v1/agents", key, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{key}");
    }
    let (s, _) = h.send(Method::GET, "/api/v1/agents", &[], None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = h
        .send(
            Method::GET,
            "/api/v1/agents",
            &[("authorization", format!("Bearer {}", h.admin_key))],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = h
        .send(
            Method::GET,
            "/api/v1/agents",
            &[("authorization", "Basic eA==".into())],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Listing keys never shows secrets.
    let (_, keys) = h.admin(Method::GET, "/api/v1/api-keys", None).await;
    assert!(!keys.to_string().contains(&h.admin_key));
    assert!(!keys.to_string().contains(&member));
    h.stop().await;
}
