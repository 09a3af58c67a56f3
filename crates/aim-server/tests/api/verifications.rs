//! Verification: approved, denied, pending, approval and denial by people, expiry, results, and
//! byte-exact compatibility with the Python SDK's body signature.

use std::time::Duration;

use aim_crypto::canonical::{Value as Canon, parse};
use aim_crypto::test_vectors as tv;
use aim_crypto::{ActionPayload, AgentKeypair};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{Harness, METRICS_TOKEN, TestAgent};

#[tokio::test]
async fn approved_denied_and_pending_answers() {
    let h = Harness::start().await;
    let a = h.agent_with("clerk", &["read_*", "delete_file"]).await;
    // Low risk with a grant: 201.
    let (s, v) = h
        .verify(&a, "read_database", Some("users"), json!({"q": 1}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["status"], "approved");
    assert_eq!(v["approved_by"], "system");
    assert!(v["expires_at"].is_string());
    assert!(v["trust_score"].as_f64().unwrap() > 0.8);
    let id = v["id"].as_str().unwrap().to_owned();
    // The returned id is persisted.
    let (s, got) = h
        .admin(Method::GET, &format!("/api/v1/verifications/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got["status"], "approved");
    assert_eq!(got["action_type"], "read_database");
    assert_eq!(got["context"], json!({"q": 1}));
    // No capability: 403 with the reason and what to change.
    let (s, v) = h.verify(&a, "send_email", None, json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["status"], "denied");
    assert_eq!(
        v["denial_reason"],
        "agent 'clerk' has no capability 'send_email'; grant it with: aim capabilities grant clerk send_email"
    );
    assert!(v["error"].as_str().unwrap().starts_with("action denied: "));
    let denied_id = v["id"].as_str().unwrap().to_owned();
    let (_, got) = h
        .as_agent(
            &a,
            Method::GET,
            &format!("/api/v1/sdk-api/verifications/{denied_id}"),
            None,
        )
        .await;
    assert_eq!(got["status"], "denied");
    // High risk: 202 pending.
    let (s, v) = h.verify(&a, "delete_file", Some("/tmp/x"), json!({})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["status"], "pending");
    assert_eq!(v["risk_level"], "high");
    // Metrics count the three outcomes.
    let text = h
        .http
        .get(format!("{}/metrics", h.url))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for outcome in ["approved", "denied", "pending"] {
        assert!(
            text.contains(&format!("aim_decisions_total{{outcome=\"{outcome}\"}} 1")),
            "{text}"
        );
    }
    assert!(text.contains("route=\"/api/v1/sdk-api/verifications\""));
    h.stop().await;
}

#[tokio::test]
async fn a_person_approves_while_the_agent_polls() {
    let h = Harness::start().await;
    let a = h.agent_with("deleter", &["delete_*"]).await;
    let (s, v) = h
        .verify(&a, "delete_file", Some("/srv/report.pdf"), json!({}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let id = v["id"].as_str().unwrap().to_owned();
    let poll = format!("/api/v1/sdk-api/verifications/{id}");
    let (s, p) = h.as_agent(&a, Method::GET, &poll, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(p["status"], "pending");
    // People see it in the pending list.
    let (_, list) = h
        .admin(Method::GET, "/api/v1/verifications?status=pending", None)
        .await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["verifications"][0]["id"], id);
    // A viewer may not decide; a member may.
    let viewer = h.key_with_role("v@acme.test", "viewer").await;
    let (s, _) = h
        .call(
            Method::POST,
            &format!("/api/v1/verifications/{id}/approve"),
            &viewer,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let member = h.key_with_role("m@acme.test", "member").await;
    let (s, d) = h
        .call(
            Method::POST,
            &format!("/api/v1/verifications/{id}/approve"),
            &member,
            Some(json!({"reason": "scheduled cleanup"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(d["status"], "approved");
    assert_eq!(d["approved_by"], "m@acme.test");
    assert!(d["reason"].as_str().unwrap().contains("scheduled cleanup"));
    // The agent's next poll sees the approval (API-key polling works too).
    let (_, p) = h.as_agent(&a, Method::GET, &poll, None).await;
    assert_eq!(p["status"], "approved");
    let (_, p) = h.admin(Method::GET, &poll, None).await;
    assert_eq!(p["status"], "approved");
    // Deciding twice conflicts.
    let (s, _) = h
        .call(
            Method::POST,
            &format!("/api/v1/verifications/{id}/deny"),
            &member,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    // A denial by a person reaches the agent with its reason.
    let (_, v) = h
        .verify(&a, "delete_file", Some("/etc/passwd"), json!({}))
        .await;
    let id2 = v["id"].as_str().unwrap().to_owned();
    let (s, d) = h
        .admin(
            Method::POST,
            &format!("/api/v1/verifications/{id2}/deny"),
            Some(json!({"reason": "never touch /etc"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(d["status"], "denied");
    let (_, p) = h
        .as_agent(
            &a,
            Method::GET,
            &format!("/api/v1/sdk-api/verifications/{id2}"),
            None,
        )
        .await;
    assert_eq!(p["status"], "denied");
    assert_eq!(
        p["denial_reason"],
        "denied by admin@acme.test: never touch /etc"
    );
    // Audit shows both decisions with their actors.
    let (_, log) = h
        .admin(Method::GET, "/api/v1/audit-logs?action=verification.", None)
        .await;
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"verification.approved_by_person"),
        "{actions:?}"
    );
    assert!(actions.contains(&"verification.denied_by_person"));
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "verification.pending")
            .count(),
        2
    );
    h.stop().await;
}

#[tokio::test]
async fn pending_verifications_expire() {
    let h = Harness::start_with(|c| c.pending_ttl = Duration::from_secs(60)).await;
    let a = h.agent_with("slow", &["delete_*"]).await;
    let (_, v) = h.verify(&a, "delete_file", None, json!({})).await;
    let id = v["id"].as_str().unwrap().to_owned();
    h.clock.advance(Duration::from_secs(59));
    let (_, p) = h
        .admin(Method::GET, &format!("/api/v1/verifications/{id}"), None)
        .await;
    assert_eq!(p["status"], "pending");
    h.clock.advance(Duration::from_secs(2));
    // Lazy expiry on read, persisted.
    let (_, p) = h
        .as_agent(
            &a,
            Method::GET,
            &format!("/api/v1/sdk-api/verifications/{id}"),
            None,
        )
        .await;
    assert_eq!(p["status"], "expired");
    let (_, list) = h
        .admin(Method::GET, "/api/v1/verifications?status=expired", None)
        .await;
    assert_eq!(list["total"], 1);
    let (s, e) = h
        .admin(
            Method::POST,
            &format!("/api/v1/verifications/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    // Approving after the deadline (before any read) also refuses, and expires it.
    let (_, v) = h.verify(&a, "delete_file", None, json!({})).await;
    let id2 = v["id"].as_str().unwrap().to_owned();
    h.clock.advance(Duration::from_secs(61));
    let (s, e) = h
        .admin(
            Method::POST,
            &format!("/api/v1/verifications/{id2}/approve"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(e["error"].as_str().unwrap().contains("expired"), "{e}");
    let (_, p) = h
        .admin(Method::GET, &format!("/api/v1/verifications/{id2}"), None)
        .await;
    assert_eq!(p["status"], "expired");
    // The periodic sweep expires without reads too.
    let (_, v) = h.verify(&a, "delete_file", None, json!({})).await;
    let id3 = v["id"].as_str().unwrap().to_owned();
    h.clock.advance(Duration::from_secs(61));
    let (_, log) = h
        .admin(
            Method::GET,
            "/api/v1/audit-logs?action=verification.expired",
            None,
        )
        .await;
    assert_eq!(log["entries"].as_array().unwrap().len(), 2);
    let (_, list) = h
        .admin(Method::GET, "/api/v1/verifications?status=pending", None)
        .await;
    assert_eq!(
        list["total"], 0,
        "listing expires overdue verifications: {list}"
    );
    let (_, p) = h
        .admin(Method::GET, &format!("/api/v1/verifications/{id3}"), None)
        .await;
    assert_eq!(p["status"], "expired");
    h.stop().await;
}

#[tokio::test]
async fn results_are_recorded_beside_the_decision() {
    let h = Harness::start().await;
    let a = h.agent_with("reporter", &["read_*"]).await;
    let (_, v) = h.verify(&a, "read_file", Some("/a"), json!({})).await;
    let id = v["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/sdk-api/verifications/{id}/result");
    // Exactly the SDK's body (V1 result shape).
    let (s, r) = h
        .as_agent(&a, Method::POST, &path, Some(json!({"error_message": null, "result": "success", "result_summary": "ok", "timestamp": "2025-10-24T14:44:21.123456+00:00"})))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["status"], "approved");
    assert_eq!(r["result"], "success");
    let (_, got) = h
        .admin(Method::GET, &format!("/api/v1/verifications/{id}"), None)
        .await;
    assert_eq!(got["status"], "approved", "the decision is not overwritten");
    assert_eq!(got["result"], "success");
    assert_eq!(got["result_summary"], "ok");
    // Twice conflicts; bad values are 400.
    let (s, _) = h
        .as_agent(&a, Method::POST, &path, Some(json!({"result": "failure"})))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (_, v2) = h.verify(&a, "read_file", None, json!({})).await;
    let path2 = format!(
        "/api/v1/sdk-api/verifications/{}/result",
        v2["id"].as_str().unwrap()
    );
    let (s, _) = h
        .as_agent(&a, Method::POST, &path2, Some(json!({"result": "maybe"})))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // The legacy boolean form, and failure details with metadata.
    let (s, _) = h
        .as_agent(
            &a,
            Method::POST,
            &path2,
            Some(
                json!({"success": false, "error_message": "disk full", "metadata": {"bytes": 12}}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, got) = h
        .admin(
            Method::GET,
            &format!("/api/v1/verifications/{}", v2["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(got["result"], "failure");
    assert_eq!(got["result_error"], "disk full");
    assert_eq!(got["result_metadata"], json!({"bytes": 12}));
    // Results only for approved verifications.
    let (_, denied) = h.verify(&a, "send_email", None, json!({})).await;
    let (s, e) = h
        .as_agent(
            &a,
            Method::POST,
            &format!(
                "/api/v1/sdk-api/verifications/{}/result",
                denied["id"].as_str().unwrap()
            ),
            Some(json!({"result": "success"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    // Execution status (PyPI SDK decorators).
    let (_, v3) = h.verify(&a, "read_file", None, json!({})).await;
    let (s, got) = h
        .admin(
            Method::POST,
            &format!(
                "/api/v1/sdk-api/verifications/{}/execution-status",
                v3["id"].as_str().unwrap()
            ),
            Some(json!({"executed": true, "strictMode": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{got}");
    assert_eq!(got["executed"], true);
    // Trust reacts: one failure among results.
    let (_, t) = h
        .admin(
            Method::GET,
            &format!("/api/v1/agents/{}/trust-score", a.id),
            None,
        )
        .await;
    let f = &t["factors"];
    assert!(f["success_rate"].as_f64().unwrap() < 0.9, "{t}");
    h.stop().await;
}

/// The bytes the Python SDK sends must verify exactly: the spec's vector V1 (non-ASCII text,
/// floats like 100.0, nested null) and V2 (null resource, empty context).
#[tokio::test]
async fn python_sdk_vectors_verify_byte_for_byte() {
    let h = Harness::start().await;
    // Register the vector's key under a fresh agent id, then re-sign the vector payloads with
    // that id: the message layout, escapes and float lexemes are those of the vectors.
    let vector_keys = AgentKeypair::from_seed(&tv::SEED);
    let (s, reg) = h
        .admin(
            Method::POST,
            "/api/v1/public/agents/register",
            Some(json!({"name": "vector", "public_key": tv::PUBLIC_KEY_B64})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{reg}");
    let agent = TestAgent {
        id: reg["agent_id"].as_str().unwrap().to_owned(),
        name: "vector".into(),
        keys: vector_keys,
    };
    let (s, _) = h
        .admin(
            Method::POST,
            "/api/v1/agents/vector/capabilities",
            Some(json!({"capability": "read_database"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let v1 = parse(tv::V1_HTTP_BODY.as_bytes()).unwrap();
    let payload = ActionPayload {
        action_type: "read_database".into(),
        agent_id: agent.id.clone(),
        context: v1.get("context").unwrap().clone(),
        resource: Some("users_table".into()),
        timestamp: h.sdk_timestamp(),
        risk_level: None,
    };
    let body = h.body_from_payload(&agent, &payload);
    let text = String::from_utf8(body.clone()).unwrap();
    assert!(
        text.contains(r#""f": 100.0"#) && text.contains(r#""u": "caf\u00e9""#),
        "{text}"
    );
    let (s, v) = h.post_verification(&agent, body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (_, got) = h
        .admin(
            Method::GET,
            &format!("/api/v1/verifications/{}", v["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(got["context"]["u"], "café");
    // V2: null resource, empty context.
    let payload = ActionPayload {
        resource: None,
        context: Canon::Object(Default::default()),
        timestamp: h.sdk_timestamp(),
        ..payload
    };
    h.clock.advance(Duration::from_millis(1500));
    let body = h.body_from_payload(
        &agent,
        &ActionPayload {
            timestamp: h.sdk_timestamp(),
            ..payload.clone()
        },
    );
    assert!(String::from_utf8_lossy(&body).contains(r#""resource": null"#));
    let (s, v) = h.post_verification(&agent, body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // The spec's own signing of V2's message verifies with the registered vector key.
    let v2_message = tv::V2_BODY_MESSAGE.replace(tv::AGENT_ID, &agent.id);
    let v2_payload = ActionPayload {
        action_type: "read_database".into(),
        agent_id: agent.id.clone(),
        context: Canon::Object(Default::default()),
        resource: None,
        timestamp: "2025-10-24T14:44:21Z".into(),
        risk_level: None,
    };
    assert_eq!(v2_payload.signing_message(), v2_message);
    // A float written differently (100 instead of 100.0) changes the message: refused.
    let mut tampered = String::from_utf8(h.body_from_payload(
        &agent,
        &ActionPayload {
            context: v1.get("context").unwrap().clone(),
            resource: Some("users_table".into()),
            timestamp: h.sdk_timestamp(),
            ..payload
        },
    ))
    .unwrap();
    h.clock.advance(Duration::from_secs(1));
    tampered = tampered.replace("100.0", "100");
    let (s, e) = h.post_verification(&agent, tampered.into_bytes()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{e}");
    h.stop().await;
}

/// The PyPI SDK (0.5.x/1.x) sends a camelCase body without signature headers.
#[tokio::test]
async fn pypi_sdk_camel_case_body_without_headers() {
    let h = Harness::start().await;
    let a = h.agent_with("pypi", &["read_*"]).await;
    let ts = h.sdk_timestamp();
    let payload = ActionPayload {
        action_type: "read_file".into(),
        agent_id: a.id.clone(),
        context: Canon::from_serde(&json!({"path": "/etc/motd", "ratio": 0.5})),
        resource: Some("/etc/motd".into()),
        timestamp: ts.clone(),
        risk_level: None,
    };
    let signature = payload.sign(&a.keys).to_b64();
    // `requests` json= serialization: insertion order, default separators.
    let body = format!(
        r#"{{"agentId": "{}", "capability": "read_file", "resource": "/etc/motd", "context": {{"path": "/etc/motd", "ratio": 0.5}}, "timestamp": "{ts}", "signature": "{signature}", "publicKey": "{}"}}"#,
        a.id,
        a.keys.public_key().to_b64()
    );
    let (s, v) = h
        .send(
            Method::POST,
            "/api/v1/sdk-api/verifications",
            &[("user-agent", "AIM-Python-SDK/1.0.0".into())],
            Some(body.into_bytes()),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // Polling with the org API key, as the SDK does when it holds one.
    let (s, p) = h
        .admin(
            Method::GET,
            &format!(
                "/api/v1/sdk-api/verifications/{}",
                v["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(p["status"], "approved");
    // Both spellings of one field: 400. API-key-only verification (no signature): 400.
    let both = format!(
        r#"{{"agentId": "{}", "agent_id": "{}", "capability": "x", "timestamp": "{ts}", "signature": "x"}}"#,
        a.id, a.id
    );
    let (s, _) = h
        .send(
            Method::POST,
            "/api/v1/sdk-api/verifications",
            &[],
            Some(both.into_bytes()),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let unsigned = format!(
        r#"{{"agentId": "{}", "capability": "read_file", "timestamp": "{ts}"}}"#,
        a.id
    );
    let (s, e) = h
        .send(
            Method::POST,
            "/api/v1/sdk-api/verifications",
            &[("x-api-key", h.admin_key.clone())],
            Some(unsigned.into_bytes()),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(e["error"].as_str().unwrap().contains("signature"), "{e}");
    // A mismatching public_key in the body is refused.
    let payload = ActionPayload {
        timestamp: h.sdk_timestamp(),
        ..payload
    };
    let mut map = match parse(&h.body_from_payload(&a, &payload)).unwrap() {
        Canon::Object(m) => m,
        _ => unreachable!(),
    };
    h.clock.advance(Duration::from_secs(1));
    map.insert(
        "public_key".into(),
        Canon::String(AgentKeypair::generate().unwrap().public_key().to_b64()),
    );
    let (s, e) = h
        .post_verification(&a, Canon::Object(map).to_python_json().into_bytes())
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // The same answer as for an unknown agent (see `edge::unknown_and_foreign_agents_*`).
    assert!(
        e["error"].as_str().unwrap().contains("does not verify"),
        "{e}"
    );
    h.stop().await;
}

/// Several clients at once: every answer is durable and counted once.
#[tokio::test]
async fn concurrent_verifications_are_all_persisted() {
    let h = Harness::start().await;
    let agents = futures::future::join_all(
        (0..8).map(|i| h.agent_with(Box::leak(format!("c{i}").into_boxed_str()), &["read_*"])),
    )
    .await;
    let mut tasks = Vec::new();
    for a in &agents {
        for n in 0..10 {
            let body = h.verification_body(a, "read_file", Some(&format!("r{n}")), json!({"n": n}));
            tasks.push(h.post_verification(a, body));
        }
    }
    let results = futures::future::join_all(tasks).await;
    assert!(results.iter().all(|(s, _)| *s == StatusCode::CREATED));
    let (_, list) = h
        .admin(Method::GET, "/api/v1/verifications?limit=1000", None)
        .await;
    assert_eq!(list["total"], 80);
    let (_, a0) = h.admin(Method::GET, "/api/v1/agents/c0", None).await;
    assert!(a0["last_active_at"].is_string());
    h.stop().await;
}

/// Many agents at once, so the writer records large chunks (up to 64 items per statement):
/// every answer matches its decision, and every verification is persisted exactly once with
/// its own agent and status.
#[tokio::test]
async fn large_chunks_record_every_verification_once() {
    let h = Harness::start().await;
    let agents = futures::future::join_all(
        (0..70).map(|i| h.agent_with(Box::leak(format!("w{i}").into_boxed_str()), &["read_*"])),
    )
    .await;
    let mut tasks = Vec::new();
    for a in &agents {
        let ok = h.verification_body(a, "read_file", Some("r"), json!({}));
        tasks.push(h.post_verification(a, ok));
        let no = h.verification_body(a, "delete_database", Some("d"), json!({}));
        tasks.push(h.post_verification(a, no));
    }
    let results = futures::future::join_all(tasks).await;
    for (i, (status, body)) in results.iter().enumerate() {
        let expected = if i % 2 == 0 {
            StatusCode::CREATED
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(*status, expected, "answer {i}: {body}");
    }
    let (_, list) = h
        .admin(Method::GET, "/api/v1/verifications?limit=1000", None)
        .await;
    assert_eq!(list["total"], 140, "{list}");
    let items = list["verifications"].as_array().unwrap();
    for a in &agents {
        let mine: Vec<&serde_json::Value> = items
            .iter()
            .filter(|v| v["agent_id"] == a.id.as_str())
            .collect();
        assert_eq!(mine.len(), 2, "agent {}: {mine:?}", a.id);
        assert!(
            mine.iter()
                .any(|v| v["status"] == "approved" && v["action_type"] == "read_file")
        );
        assert!(
            mine.iter()
                .any(|v| v["status"] == "denied" && v["action_type"] == "delete_database")
        );
    }
    h.stop().await;
}

/// Decision inputs are cached per server process, but a change committed by another replica
/// (grant revoked, policy added, agent suspended) is never missed: the recording statement
/// checks the configuration versions in its own transaction.
#[tokio::test]
async fn cached_decision_inputs_never_outlive_a_change_on_another_replica() {
    let h = Harness::start().await;
    let a = h.agent_with("cached", &["read_*", "write_*"]).await;
    let replica = aim_server::Server::start(h.config.clone()).await.unwrap();
    let on_replica = |method: Method, path: String, body: Option<serde_json::Value>| {
        let mut rb = h
            .http
            .request(method, format!("{}{path}", replica.url()))
            .header("x-api-key", &h.admin_key);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        rb.send()
    };
    // Warm this server's cache.
    let (s, _) = h.verify(&a, "read_file", None, json!({})).await;
    assert_eq!(s, StatusCode::CREATED);
    // Revoke on the replica; this server must deny.
    let r = on_replica(
        Method::DELETE,
        format!("/api/v1/agents/{}/capabilities/read_%2A", a.id),
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (s, v) = h.verify(&a, "read_file", None, json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    // A policy added on the replica applies here at once.
    let (s, _) = h.verify(&a, "write_file", None, json!({})).await;
    assert_eq!(s, StatusCode::CREATED);
    let r = on_replica(
        Method::POST,
        "/api/v1/policies".into(),
        Some(json!({"name": "hold-writes", "action": "write_*", "effect": "require_approval"})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let (s, v) = h.verify(&a, "write_file", None, json!({})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    // Suspension on the replica: refused here.
    let r = on_replica(
        Method::POST,
        format!("/api/v1/agents/{}/suspend", a.id),
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (s, _) = h.verify(&a, "write_file", None, json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // A key rotated on the replica: the old key stops working here once its grace ends.
    let r = on_replica(
        Method::POST,
        format!("/api/v1/agents/{}/reactivate", a.id),
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let new = AgentKeypair::generate().unwrap();
    let r = on_replica(
        Method::POST,
        format!("/api/v1/agents/{}/keys", a.id),
        Some(json!({"public_key": new.public_key().to_b64(), "grace_seconds": 0})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    h.clock.advance(Duration::from_secs(1));
    let (s, _) = h.verify(&a, "write_file", None, json!({})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let rotated = TestAgent {
        id: a.id.clone(),
        name: a.name.clone(),
        keys: new,
    };
    let (s, _) = h.verify(&rotated, "write_file", None, json!({})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "the policy still holds writes");
    replica.shutdown().await.unwrap();
    h.stop().await;
}
