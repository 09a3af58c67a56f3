//! Every class of bad input gets a 4xx with `{"error": ...}`: never a 500, never a panic.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::Harness;

fn assert_client_error(what: &str, s: StatusCode, body: &Value) {
    assert!(s.is_client_error(), "{what}: expected 4xx, got {s}: {body}");
    assert!(
        body.get("error")
            .and_then(Value::as_str)
            .is_some_and(|e| !e.is_empty()),
        "{what}: no error message: {body}"
    );
}

#[tokio::test]
async fn malformed_bodies_wrong_types_bad_ids_and_oversize_bodies() {
    let h = Harness::start().await;
    let a = h.agent_with("target", &["read_*"]).await;
    let doc = serde_json::to_value(aim_server::openapi()).unwrap();
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("not json", b"this is not json".to_vec()),
        ("truncated", br#"{"name": "x""#.to_vec()),
        ("array", b"[1,2,3]".to_vec()),
        ("wrong types", br#"{"name": 5, "agent_id": [], "detections": {}, "effect": 1, "public_key": false, "mcp_server_ids": "x", "capability": 3, "reason": {}, "role": 7, "email": null, "result": true}"#.to_vec()),
        ("invalid utf-8", vec![b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}']),
        ("deep nesting", deep.into_bytes()),
        ("duplicate keys", br#"{"name": "a", "name": "b"}"#.to_vec()),
        ("nul byte", b"{\"name\": \"a\x00\"}".to_vec()),
        ("huge number", br#"{"name": "x", "priority": 1e999999, "confidence": 1e999999}"#.to_vec()),
    ];
    let ids = [
        "not-a-uuid".to_owned(),
        uuid::Uuid::new_v4().to_string(),
        "%00".to_owned(),
        "x".repeat(300),
        a.id.clone(),
    ];
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            if method == Method::GET && !path.contains('{') {
                continue;
            }
            for id in &ids {
                let concrete = path
                    .replace("{id}", id)
                    .replace("{identifier}", id)
                    .replace("{capability}", id)
                    .replace("{pattern}", id);
                for (what, body) in &bodies {
                    let (s, b) = h
                        .send(
                            method.clone(),
                            &concrete,
                            &[("x-api-key", h.admin_key.clone())],
                            Some(body.clone()),
                        )
                        .await;
                    assert!(s.as_u16() < 500, "{method} {concrete} with {what}: {s} {b}");
                    if !s.is_success() {
                        assert_client_error(&format!("{method} {concrete} with {what}"), s, &b);
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 1000, "{checked}");
    // Oversize bodies: 413 with a JSON error, on a write route and the verification route.
    let big = vec![b' '; aim_server::DEFAULT_MAX_BODY_BYTES + 1];
    for path in [
        "/api/v1/agents",
        "/api/v1/sdk-api/verifications",
        "/api/v1/public/agents/register",
    ] {
        let (s, b) = h
            .send(
                Method::POST,
                path,
                &[("x-api-key", h.admin_key.clone())],
                Some(big.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert_client_error(path, s, &b);
    }
    // Methods that do not exist on a route: 405 with a JSON error.
    let (s, b) = h.send(Method::PATCH, "/api/v1/agents", &[], None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_client_error("PATCH /api/v1/agents", s, &b);
    // Query strings of the wrong type.
    for q in [
        "/api/v1/agents?limit=abc",
        "/api/v1/agents?limit=0",
        "/api/v1/verifications?status=maybe",
        "/api/v1/audit-logs?limit=-1",
        "/api/v1/alerts?unacknowledged=perhaps",
    ] {
        let (s, b) = h.admin(Method::GET, q, None).await;
        assert_client_error(q, s, &b);
    }
    // Header junk on signed routes.
    let path = format!("/api/v1/agents/{}", a.id);
    for (name, value) in [
        ("x-agent-id", "x".repeat(2000)),
        ("x-timestamp", "-5".into()),
        ("x-timestamp", "99999999999999999999".into()),
        ("x-signature", "****".into()),
    ] {
        let mut headers = h.sign(&a, "GET", &path, b"");
        for hv in headers.iter_mut() {
            if hv.0 == name {
                hv.1 = value.clone();
            }
        }
        let (s, b) = h.send(Method::GET, &path, &headers, None).await;
        assert_client_error(name, s, &b);
    }
    // The server is still healthy.
    let (s, _) = h.send(Method::GET, "/readyz", &[], None).await;
    assert_eq!(s, StatusCode::OK);
    h.stop().await;
}

#[tokio::test]
async fn verification_bodies_of_every_wrong_shape() {
    let h = Harness::start().await;
    let a = h.agent_with("shapes", &["read_*"]).await;
    let ts = h.sdk_timestamp();
    let id = &a.id;
    let cases = [
        json!({}),
        json!({"agent_id": id}),
        json!({"agent_id": "nope", "action_type": "read_file", "timestamp": ts, "signature": "x"}),
        json!({"agent_id": id, "action_type": 5, "timestamp": ts, "signature": "x"}),
        json!({"agent_id": id, "action_type": "", "timestamp": ts, "signature": "x"}),
        json!({"agent_id": id, "action_type": "read_file", "resource": 7, "timestamp": ts, "signature": "x"}),
        json!({"agent_id": id, "action_type": "read_file", "context": [1], "timestamp": ts, "signature": "x"}),
        json!({"agent_id": id, "action_type": "read_file", "timestamp": 5, "signature": "x"}),
        json!({"agent_id": id, "action_type": "read_file", "timestamp": ts, "signature": "not base64"}),
        json!({"agent_id": id, "action_type": "read_file", "timestamp": "tomorrow", "signature": "x"}),
        json!({"agent_id": uuid::Uuid::new_v4().to_string(), "action_type": "read_file", "timestamp": ts, "signature": "x"}),
        json!({"agent_id": id, "action_type": "read_file", "timestamp": ts, "signature": "x", "public_key": 3}),
    ];
    for body in cases {
        let (s, b) = h
            .send(
                Method::POST,
                "/api/v1/sdk-api/verifications",
                &[],
                Some(serde_json::to_vec(&body).unwrap()),
            )
            .await;
        assert_client_error(&body.to_string(), s, &b);
    }
    // NaN is valid Python JSON and is kept as a lexeme; an oversized context is refused.
    let big = json!({"blob": "x".repeat(70 * 1024)});
    let body = h.verification_body(&a, "read_file", None, big);
    let (s, b) = h.post_verification(&a, body).await;
    assert_client_error("big context", s, &b);
    h.stop().await;
}

#[test]
fn parse_verification_body_never_panics_on_junk() {
    use proptest::prelude::*;
    let mut runner = proptest::test_runner::TestRunner::default();
    runner
        .run(&proptest::collection::vec(any::<u8>(), 0..256), |bytes| {
            let _ = aim_server::wire::parse_verification_body(&bytes);
            Ok(())
        })
        .unwrap();
    runner
        .run(&"[ -~]{0,200}", |text| {
            let body = format!(r#"{{"agent_id": "550e8400-e29b-41d4-a716-446655440000", "action_type": {text}, "timestamp": "x", "signature": "x"}}"#);
            let _ = aim_server::wire::parse_verification_body(body.as_bytes());
            Ok(())
        })
        .unwrap();
}
