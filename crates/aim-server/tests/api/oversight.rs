//! Audit log, trust history, no secrets in logs, OpenAPI coverage, health.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::Harness;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() -> Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let writer = logs.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("trace")
            .with_writer(move || writer.clone())
            .json()
            .try_init();
        logs
    })
    .clone()
}

#[tokio::test]
async fn every_change_is_audited_with_actor_and_time_and_no_secret_reaches_the_log() {
    let logs = capture_logs();
    let h = Harness::start().await;
    // Server-generated key pair: the private key must appear nowhere but the answer.
    let (s, reg) = h
        .send(
            Method::POST,
            "/api/v1/public/agents/register",
            &[("x-aim-api-key", h.admin_key.clone())],
            Some(br#"{"name": "audited"}"#.to_vec()),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let private_key = reg["private_key"].as_str().unwrap().to_owned();
    let (s, k) = h
        .admin(
            Method::POST,
            "/api/v1/api-keys",
            Some(json!({"name": "ci"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let new_key = k["api_key"].as_str().unwrap().to_owned();
    let a = h.agent_with("actor", &["read_*"]).await;
    let body = h.verification_body(&a, "read_file", None, json!({"secret_context": "value"}));
    let headers = h.sign(&a, "POST", "/api/v1/sdk-api/verifications", &body);
    let signature = headers[1].1.clone();
    let (s, _) = h
        .send(
            Method::POST,
            "/api/v1/sdk-api/verifications",
            &headers,
            Some(body),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = h
        .admin(
            Method::POST,
            "/api/v1/policies",
            Some(json!({"name": "p", "effect": "deny", "action": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // A failing request too (its key must not be logged either).
    let (s, _) = h
        .call(
            Method::GET,
            "/api/v1/agents",
            &new_key.replace('a', "b"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let (s, page) = h
        .admin(Method::GET, "/api/v1/audit-logs?limit=1000", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let entries = page["entries"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for want in [
        "organization.created",
        "user.created",
        "api_key.created",
        "agent.registered",
        "capability.granted",
        "verification.approved",
        "policy.created",
    ] {
        assert!(actions.contains(&want), "{want} missing from {actions:?}");
    }
    for e in entries {
        assert!(e["at"].as_str().unwrap().ends_with('Z'));
        assert!(["system", "user", "agent"].contains(&e["actor_type"].as_str().unwrap()));
    }
    let approved = entries
        .iter()
        .find(|e| e["action"] == "verification.approved")
        .unwrap();
    assert_eq!(approved["actor_type"], "agent");
    assert_eq!(approved["actor_id"], a.id);
    let granted = entries
        .iter()
        .find(|e| e["action"] == "capability.granted")
        .unwrap();
    assert_eq!(granted["actor_type"], "user");
    assert!(granted["details"]["api_key_id"].is_string());
    // Paging.
    let (_, p1) = h
        .admin(Method::GET, "/api/v1/audit-logs?limit=2", None)
        .await;
    let before = p1["next_before"].as_str().unwrap();
    let (_, p2) = h
        .admin(
            Method::GET,
            &format!("/api/v1/audit-logs?limit=2&before={before}"),
            None,
        )
        .await;
    assert_ne!(p1["entries"][0]["id"], p2["entries"][0]["id"]);
    let (s, _) = h
        .admin(Method::GET, "/api/v1/audit-logs?before=nope", None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Neither the audit log nor the process log holds a secret.
    let audit_text = page.to_string();
    let log_text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(log_text.contains("request"), "logging was captured");
    for secret in [
        h.admin_key.as_str(),
        new_key.as_str(),
        private_key.as_str(),
        &private_key[..43],
        signature.as_str(),
    ] {
        assert!(!audit_text.contains(secret), "secret in the audit log");
        assert!(!log_text.contains(secret), "secret in the process log");
    }
    assert!(
        !log_text.contains("secret_context"),
        "request bodies are not logged"
    );
    h.stop().await;
}

#[tokio::test]
async fn trust_score_moves_with_events_and_keeps_history() {
    let h = Harness::start().await;
    let a = h.agent_with("trusty", &["read_*", "delete_*"]).await;
    let (_, t0) = h
        .admin(Method::GET, "/api/v1/agents/trusty/trust-score", None)
        .await;
    assert_eq!(t0["weights"].as_array().unwrap().len(), 8);
    let s0 = t0["score"].as_f64().unwrap();
    assert!((s0 - 0.8775).abs() < 1e-9, "{t0}");
    // Denials lower it.
    for _ in 0..5 {
        let (s, _) = h.verify(&a, "send_email", None, json!({})).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    let (_, t1) = h
        .admin(Method::GET, "/api/v1/agents/trusty/trust-score", None)
        .await;
    let s1 = t1["score"].as_f64().unwrap();
    assert!(s1 < s0, "{s1} < {s0}");
    // A person's denial lowers user feedback.
    let (_, v) = h.verify(&a, "delete_file", None, json!({})).await;
    h.admin(
        Method::POST,
        &format!("/api/v1/verifications/{}/deny", v["id"].as_str().unwrap()),
        None,
    )
    .await;
    let (_, t2) = h
        .admin(Method::GET, "/api/v1/agents/trusty/trust-score", None)
        .await;
    assert!(
        t2["factors"]["user_feedback"].as_f64().unwrap()
            < t1["factors"]["user_feedback"].as_f64().unwrap()
    );
    // Suspension drops it sharply; the agent can read its own history.
    h.admin(Method::POST, "/api/v1/agents/trusty/suspend", None)
        .await;
    let (_, t3) = h
        .admin(Method::GET, "/api/v1/agents/trusty/trust-score", None)
        .await;
    assert!(t3["score"].as_f64().unwrap() < 0.7);
    h.admin(Method::POST, "/api/v1/agents/trusty/reactivate", None)
        .await;
    let (s, hist) = h
        .as_agent(
            &a,
            Method::GET,
            &format!("/api/v1/agents/{}/trust-score/history", a.id),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{hist}");
    let reasons: Vec<&str> = hist["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.first(), Some(&"agent.reactivated"), "{reasons:?}");
    assert!(reasons.contains(&"agent.suspended"));
    assert!(reasons.contains(&"denied by a person"));
    assert!(reasons.contains(&"registered"));
    // The stored agent score matches the history's newest entry.
    let (_, agent) = h.admin(Method::GET, "/api/v1/agents/trusty", None).await;
    assert_eq!(agent["trust_score"], hist["history"][0]["score"]);
    h.stop().await;
}

#[tokio::test]
async fn openapi_documents_every_route_and_every_route_answers() {
    let h = Harness::start().await;
    let (s, doc) = h.send(Method::GET, "/api/v1/openapi.json", &[], None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(doc, serde_json::to_value(aim_server::openapi()).unwrap());
    let paths = doc["paths"].as_object().unwrap();
    // Everything the SDK and the admin CLI use is documented.
    for p in [
        "/api/v1/public/agents/register",
        "/api/v1/agents",
        "/api/v1/agents/{id}",
        "/api/v1/sdk-api/agents/{identifier}",
        "/api/v1/sdk-api/verifications",
        "/api/v1/sdk-api/verifications/{id}",
        "/api/v1/sdk-api/verifications/{id}/result",
        "/api/v1/sdk-api/agents/{id}/mcp-servers",
        "/api/v1/sdk-api/agents/{id}/capabilities",
        "/api/v1/sdk-api/agents/{id}/capability-requests",
        "/api/v1/sdk-api/agents/{id}/detection/report",
        "/api/v1/detection/agents/{id}/report",
        "/api/v1/verifications",
        "/api/v1/verifications/{id}/approve",
        "/api/v1/verifications/{id}/deny",
        "/api/v1/policies",
        "/api/v1/audit-logs",
        "/api/v1/agents/{id}/tree-heads",
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/openapi.json",
    ] {
        assert!(paths.contains_key(p), "{p} is not documented");
    }
    // Every documented (path, method) is routed: no "no such endpoint" and no 405.
    let id = uuid::Uuid::new_v4().to_string();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let concrete = path
                .replace("{id}", &id)
                .replace("{identifier}", &id)
                .replace("{capability}", "x")
                .replace("{pattern}", "x");
            let (s, b) = h
                .call(method.clone(), &concrete, &h.admin_key, Some(json!({})))
                .await;
            assert_ne!(s, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert!(s.as_u16() < 500, "{method} {path}: {s} {b}");
            if s == StatusCode::NOT_FOUND {
                assert!(
                    !b["error"]
                        .as_str()
                        .unwrap_or("")
                        .contains("no such endpoint"),
                    "{method} {path} is not routed"
                );
            }
        }
    }
    h.stop().await;
}
