//! The `verify_action` body signature (`specs/aim-python-sdk.md` §4.3).
//!
//! Besides the request headers, a verification body carries a `signature` over the
//! Python-canonical JSON of five fields (`action_type`, `agent_id`, `context`, `resource`,
//! `timestamp`), plus `risk_level` when present. A server rebuilds the same bytes from the
//! parsed body ([`crate::canonical::parse`] keeps number lexemes) and verifies.

use std::collections::BTreeMap;

use crate::Result;
use crate::canonical::Value;
use crate::identity::{AgentKeypair, AgentPublicKey, AgentSignature};

/// The signed fields of an action verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionPayload {
    /// `action_type`, e.g. `read_database`.
    pub action_type: String,
    /// `agent_id` (UUID text).
    pub agent_id: String,
    /// `context` (an object; `{}` when absent).
    pub context: Value,
    /// `resource` (`null` when absent: the SDK signs `null`, not `""`).
    pub resource: Option<String>,
    /// `timestamp` as sent (the SDK uses `datetime.utcnow().isoformat() + "Z"`).
    pub timestamp: String,
    /// `risk_level`, signed only when present.
    pub risk_level: Option<String>,
}

impl ActionPayload {
    /// The canonical message: Python `json.dumps(payload, sort_keys=True)`.
    pub fn signing_message(&self) -> String {
        let mut map = BTreeMap::new();
        map.insert(
            "action_type".to_owned(),
            Value::String(self.action_type.clone()),
        );
        map.insert("agent_id".to_owned(), Value::String(self.agent_id.clone()));
        map.insert("context".to_owned(), self.context.clone());
        map.insert(
            "resource".to_owned(),
            self.resource.clone().map_or(Value::Null, Value::String),
        );
        map.insert(
            "timestamp".to_owned(),
            Value::String(self.timestamp.clone()),
        );
        if let Some(risk) = &self.risk_level {
            map.insert("risk_level".to_owned(), Value::String(risk.clone()));
        }
        Value::Object(map).to_python_json()
    }

    /// Signs the canonical message.
    pub fn sign(&self, keypair: &AgentKeypair) -> AgentSignature {
        keypair.sign(self.signing_message().as_bytes())
    }

    /// Verifies a base64 `signature` field against `key`.
    pub fn verify(&self, key: &AgentPublicKey, signature_b64: &str) -> Result<()> {
        let sig = AgentSignature::from_b64(signature_b64)?;
        key.verify(self.signing_message().as_bytes(), &sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CryptoError;
    use crate::canonical::parse;
    use crate::test_vectors::*;

    fn v1() -> ActionPayload {
        let body = parse(V1_HTTP_BODY.as_bytes()).unwrap();
        ActionPayload {
            action_type: "read_database".into(),
            agent_id: AGENT_ID.into(),
            context: body.get("context").unwrap().clone(),
            resource: Some("users_table".into()),
            timestamp: "2025-10-24T14:44:21.123456Z".into(),
            risk_level: None,
        }
    }

    #[test]
    fn reproduces_v1_from_the_parsed_http_body() {
        let payload = v1();
        assert_eq!(payload.signing_message(), V1_BODY_MESSAGE);
        let pair = AgentKeypair::from_seed(&SEED);
        assert_eq!(payload.sign(&pair).to_b64(), V1_BODY_SIGNATURE);
        payload
            .verify(&pair.public_key(), V1_BODY_SIGNATURE)
            .unwrap();
    }

    #[test]
    fn reproduces_v1_from_rust_values() {
        let context = serde_json::json!({
            "query": "SELECT 1", "n": 1, "f": 100.0, "u": "café",
            "nested": {"b": [1, {"z": null, "a": true}]}
        });
        let payload = ActionPayload {
            context: Value::from_serde(&context),
            ..v1()
        };
        assert_eq!(payload.signing_message(), V1_BODY_MESSAGE);
    }

    #[test]
    fn reproduces_v2_null_resource() {
        let payload = ActionPayload {
            action_type: "read_database".into(),
            agent_id: AGENT_ID.into(),
            context: Value::Object(Default::default()),
            resource: None,
            timestamp: "2025-10-24T14:44:21Z".into(),
            risk_level: None,
        };
        assert_eq!(payload.signing_message(), V2_BODY_MESSAGE);
        let pair = AgentKeypair::from_seed(&SEED);
        assert_eq!(payload.sign(&pair).to_b64(), V2_BODY_SIGNATURE);
        // The upstream Go server signs "" for a missing resource; that must not verify.
        let go_style = ActionPayload {
            resource: Some(String::new()),
            ..payload
        };
        assert_eq!(
            go_style.verify(&pair.public_key(), V2_BODY_SIGNATURE),
            Err(CryptoError::BadSignature)
        );
    }

    #[test]
    fn risk_level_is_signed_when_present() {
        let with_risk = ActionPayload {
            risk_level: Some("high".into()),
            ..v1()
        };
        assert!(
            with_risk
                .signing_message()
                .contains(r#""risk_level": "high""#)
        );
        let pair = AgentKeypair::from_seed(&SEED);
        assert_eq!(
            with_risk.verify(&pair.public_key(), V1_BODY_SIGNATURE),
            Err(CryptoError::BadSignature)
        );
        let sig = with_risk.sign(&pair).to_b64();
        with_risk.verify(&pair.public_key(), &sig).unwrap();
    }
}
