//! Request bodies exactly as the AIM Python SDK builds them (`specs/aim-python-sdk.md` §3–4):
//! Python-canonical JSON, the SDK's timestamp formats, the five-field action signature.

use std::collections::BTreeMap;
use std::time::SystemTime;

use aim_crypto::canonical::Value;
use aim_crypto::{ActionPayload, AgentKeypair};
use chrono::{DateTime, Timelike, Utc};

use crate::types::ActionRequest;

/// `datetime.utcnow().isoformat() + "Z"`: microseconds, omitted when zero.
pub fn sdk_utc_timestamp(at: SystemTime) -> String {
    format!("{}Z", python_isoformat(at))
}

/// `datetime.now(timezone.utc).isoformat()`: as above with `+00:00`.
pub fn sdk_aware_timestamp(at: SystemTime) -> String {
    format!("{}+00:00", python_isoformat(at))
}

fn python_isoformat(at: SystemTime) -> String {
    let dt: DateTime<Utc> = at.into();
    let micros = dt.nanosecond() / 1_000 % 1_000_000;
    let base = dt.format("%Y-%m-%dT%H:%M:%S");
    if micros == 0 {
        base.to_string()
    } else {
        format!("{base}.{micros:06}")
    }
}

fn string(s: &str) -> Value {
    Value::String(s.to_owned())
}

fn opt_string(s: Option<&str>) -> Value {
    s.map_or(Value::Null, string)
}

/// The `verify_action` HTTP body: `{action_type, agent_id, context, public_key, resource,
/// [risk_level,] signature, timestamp}` in canonical form, with the body signature over the five
/// (six with `risk_level`) signed fields.
pub fn verification_body(
    keypair: &AgentKeypair,
    agent_id: &str,
    request: &ActionRequest,
    timestamp: &str,
) -> String {
    let context = if request.context.is_null() {
        Value::Object(BTreeMap::new())
    } else {
        Value::from_serde(&request.context)
    };
    let payload = ActionPayload {
        action_type: request.action.clone(),
        agent_id: agent_id.to_owned(),
        context: context.clone(),
        resource: request.resource.clone(),
        timestamp: timestamp.to_owned(),
        risk_level: request.risk_level.clone(),
    };
    let signature = payload.sign(keypair).to_b64();
    let mut body = BTreeMap::new();
    body.insert("agent_id".to_owned(), string(agent_id));
    body.insert("action_type".to_owned(), string(&request.action));
    body.insert(
        "resource".to_owned(),
        opt_string(request.resource.as_deref()),
    );
    body.insert("context".to_owned(), context);
    body.insert("timestamp".to_owned(), string(timestamp));
    body.insert("signature".to_owned(), Value::String(signature));
    body.insert(
        "public_key".to_owned(),
        Value::String(keypair.public_key().to_b64()),
    );
    if let Some(risk) = &request.risk_level {
        body.insert("risk_level".to_owned(), string(risk));
    }
    Value::Object(body).to_python_json()
}

/// The `log_action_result` body: `{error_message, result, result_summary, timestamp}`.
pub fn result_body(
    success: bool,
    summary: Option<&str>,
    error: Option<&str>,
    timestamp: &str,
) -> String {
    let mut body = BTreeMap::new();
    body.insert(
        "result".to_owned(),
        string(if success { "success" } else { "failure" }),
    );
    body.insert("result_summary".to_owned(), opt_string(summary));
    body.insert("error_message".to_owned(), opt_string(error));
    body.insert("timestamp".to_owned(), string(timestamp));
    Value::Object(body).to_python_json()
}

/// Canonical JSON of any serde value (what is signed is what is sent).
pub fn canonical(value: &serde_json::Value) -> String {
    aim_crypto::canonical::to_python_json(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aim_crypto::test_vectors::*;
    use serde_json::json;
    use std::time::Duration;

    fn v1_time() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_micros(1_761_317_061_123_456)
    }

    #[test]
    fn timestamps_match_python_isoformat() {
        assert_eq!(sdk_utc_timestamp(v1_time()), "2025-10-24T14:44:21.123456Z");
        assert_eq!(
            sdk_aware_timestamp(v1_time()),
            "2025-10-24T14:44:21.123456+00:00"
        );
        let whole = SystemTime::UNIX_EPOCH + Duration::from_secs(1_761_317_061);
        assert_eq!(sdk_utc_timestamp(whole), "2025-10-24T14:44:21Z");
        // Sub-microsecond parts are truncated, as Python's clock never has them.
        let nanos = whole + Duration::from_nanos(1_999);
        assert_eq!(sdk_utc_timestamp(nanos), "2025-10-24T14:44:21.000001Z");
    }

    #[test]
    fn verification_body_is_byte_identical_to_the_python_sdk_v1() {
        let keypair = AgentKeypair::from_seed(&SEED);
        let request = ActionRequest::new("read_database")
            .resource("users_table")
            .context(json!({
                "query": "SELECT 1", "n": 1, "f": 100.0, "u": "café",
                "nested": {"b": [1, {"z": null, "a": true}]}
            }));
        let body = verification_body(&keypair, AGENT_ID, &request, &sdk_utc_timestamp(v1_time()));
        assert_eq!(body, V1_HTTP_BODY);
        let headers =
            keypair.sign_request(AGENT_ID, "POST", V1_PATH, UNIX_SECONDS, body.as_bytes());
        assert_eq!(headers.signature, V1_HEADER_SIGNATURE);
    }

    #[test]
    fn null_resource_and_empty_context_sign_like_v2() {
        let keypair = AgentKeypair::from_seed(&SEED);
        let request = ActionRequest::new("read_database").context(json!(null));
        let body = verification_body(&keypair, AGENT_ID, &request, "2025-10-24T14:44:21Z");
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["signature"], V2_BODY_SIGNATURE);
        assert_eq!(parsed["resource"], serde_json::Value::Null);
        assert_eq!(parsed["context"], json!({}));
    }

    #[test]
    fn risk_level_is_sent_and_signed() {
        let keypair = AgentKeypair::from_seed(&SEED);
        let request = ActionRequest::new("delete_data").risk_level("high");
        let body = verification_body(&keypair, AGENT_ID, &request, "2025-10-24T14:44:21Z");
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["risk_level"], "high");
        let payload = ActionPayload {
            action_type: "delete_data".into(),
            agent_id: AGENT_ID.into(),
            context: Value::Object(BTreeMap::new()),
            resource: None,
            timestamp: "2025-10-24T14:44:21Z".into(),
            risk_level: Some("high".into()),
        };
        payload
            .verify(&keypair.public_key(), parsed["signature"].as_str().unwrap())
            .unwrap();
    }

    #[test]
    fn result_body_matches_the_python_sdk_v1() {
        let body = result_body(true, Some("ok"), None, &sdk_aware_timestamp(v1_time()));
        assert_eq!(body, V1_RESULT_BODY);
        let keypair = AgentKeypair::from_seed(&SEED);
        let headers = keypair.sign_request(
            AGENT_ID,
            "POST",
            V1_RESULT_PATH,
            UNIX_SECONDS,
            body.as_bytes(),
        );
        assert_eq!(headers.signature, V1_RESULT_HEADER_SIGNATURE);
    }

    #[test]
    fn detection_body_matches_v4() {
        let body = canonical(&json!({"detections": [{
            "mcpServer": "filesystem", "detectionMethod": "sdk_runtime", "confidence": 100.0,
            "details": {"call_count": 1}, "sdkVersion": "aim-sdk-python@1.0.0",
            "timestamp": "2025-10-24T14:44:21+00:00"
        }]}));
        assert_eq!(body, V4_BODY);
    }
}
