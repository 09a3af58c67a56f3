//! Request and response types of the agent API.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// An approved verification: the action may run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The verification id (report the outcome against it).
    pub verification_id: String,
    /// Who approved: `system` for automatic approvals, otherwise the person.
    pub approved_by: Option<String>,
    /// When the approval lapses (RFC 3339), when the server says.
    pub expires_at: Option<String>,
}

/// A verification's state as the server reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerificationState {
    /// Approved.
    Approved(Approval),
    /// Denied, with the server's reason.
    Denied {
        /// `denial_reason`.
        reason: String,
        /// The verification id, when present.
        verification_id: Option<String>,
    },
    /// Waiting for a person.
    Pending {
        /// The verification id.
        verification_id: String,
    },
    /// Expired before a decision.
    Expired {
        /// The verification id.
        verification_id: String,
    },
}

impl VerificationState {
    /// Reads a verification JSON object (`{id, status, approved_by?, expires_at?,
    /// denial_reason?}`); `url` names the request in errors.
    pub fn from_json(value: &serde_json::Value, url: &str) -> Result<Self> {
        let invalid = |message: String| Error::InvalidResponse {
            url: url.to_owned(),
            message,
        };
        let text = |key: &str| {
            value
                .get(key)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        let status = text("status").ok_or_else(|| invalid("no `status` field".into()))?;
        let id = text("id").or_else(|| text("verification_id"));
        let need_id = || id.clone().ok_or_else(|| invalid("no `id` field".into()));
        match status.as_str() {
            "approved" => Ok(Self::Approved(Approval {
                verification_id: need_id()?,
                approved_by: text("approved_by"),
                expires_at: text("expires_at"),
            })),
            "denied" => Ok(Self::Denied {
                reason: text("denial_reason")
                    .or_else(|| text("reason"))
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| "denied by policy (no reason given)".into()),
                verification_id: id,
            }),
            "pending" => Ok(Self::Pending {
                verification_id: need_id()?,
            }),
            "expired" => Ok(Self::Expired {
                verification_id: need_id()?,
            }),
            other => Err(invalid(format!("unknown verification status `{other}`"))),
        }
    }
}

/// One action to verify.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRequest {
    /// `action_type`, e.g. `read_database`.
    pub action: String,
    /// The resource acted on (`null` on the wire when absent).
    pub resource: Option<String>,
    /// Free-form context (must be a JSON object; `{}` when absent).
    pub context: serde_json::Value,
    /// Optional `risk_level` (`low`, `medium`, `high`, `critical`); signed when present.
    pub risk_level: Option<String>,
    /// How long to wait for a decision, including polling (the client's default when `None`).
    pub timeout: Option<Duration>,
}

impl ActionRequest {
    /// An action with no resource and an empty context.
    pub fn new(action: impl Into<String>) -> Self {
        Self {
            action: action.into(),
            resource: None,
            context: serde_json::Value::Object(Default::default()),
            risk_level: None,
            timeout: None,
        }
    }

    /// Sets the resource.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// Sets the context (a JSON object).
    pub fn context(mut self, context: serde_json::Value) -> Self {
        self.context = context;
        self
    }

    /// Sets the risk level.
    pub fn risk_level(mut self, risk: impl Into<String>) -> Self {
        self.risk_level = Some(risk.into());
        self
    }

    /// Sets how long to wait for a decision.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.action.trim().is_empty() {
            return Err(Error::Configuration("action type must not be empty".into()));
        }
        if !(self.context.is_object() || self.context.is_null()) {
            return Err(Error::Configuration(format!(
                "action context must be a JSON object, got {}",
                json_kind(&self.context)
            )));
        }
        Ok(())
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// A capability the agent declares it has (declared, not granted: an administrator grants).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapabilityReport {
    /// Capability type, e.g. `db:query` or `read_files`.
    #[serde(rename = "capabilityType")]
    pub capability_type: String,
    /// Where it was found and other detail (`{}` when nothing to say).
    pub scope: serde_json::Value,
}

impl CapabilityReport {
    /// A declared capability with an empty scope.
    pub fn new(capability_type: impl Into<String>) -> Self {
        Self {
            capability_type: capability_type.into(),
            scope: serde_json::Value::Object(Default::default()),
        }
    }
}

/// What [`crate::AimClient::report_capabilities`] achieved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapabilityReportSummary {
    /// Capabilities the server recorded.
    pub recorded: usize,
    /// Capabilities the server already knew (409).
    pub already_known: usize,
    /// Total reported.
    pub total: usize,
}

/// Fields of a registration besides the name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistrationDetails {
    /// Display name (the name when absent).
    pub display_name: Option<String>,
    /// Description (a default sentence when absent).
    pub description: Option<String>,
    /// `ai_agent` (default) or `mcp_server`.
    pub agent_type: Option<String>,
    /// Version string.
    pub version: Option<String>,
    /// Source repository URL.
    pub repository_url: Option<String>,
    /// Documentation URL.
    pub documentation_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_every_status() {
        let url = "u";
        assert_eq!(
            VerificationState::from_json(
                &json!({"id": "v", "status": "approved", "approved_by": "system", "expires_at": "t"}),
                url
            )
            .unwrap(),
            VerificationState::Approved(Approval {
                verification_id: "v".into(),
                approved_by: Some("system".into()),
                expires_at: Some("t".into())
            })
        );
        assert_eq!(
            VerificationState::from_json(
                &json!({"id": "v", "status": "denied", "denial_reason": "nope"}),
                url
            )
            .unwrap(),
            VerificationState::Denied {
                reason: "nope".into(),
                verification_id: Some("v".into())
            }
        );
        assert!(matches!(
            VerificationState::from_json(&json!({"id": "v", "status": "denied"}), url).unwrap(),
            VerificationState::Denied { reason, .. } if reason.contains("no reason")
        ));
        assert!(matches!(
            VerificationState::from_json(&json!({"id": "v", "status": "pending"}), url).unwrap(),
            VerificationState::Pending { .. }
        ));
        assert!(matches!(
            VerificationState::from_json(&json!({"id": "v", "status": "expired"}), url).unwrap(),
            VerificationState::Expired { .. }
        ));
        for bad in [
            json!({"id": "v", "status": "maybe"}),
            json!({"id": "v"}),
            json!({"status": "approved"}),
            json!([1]),
        ] {
            assert!(matches!(
                VerificationState::from_json(&bad, url),
                Err(Error::InvalidResponse { .. })
            ));
        }
    }

    #[test]
    fn action_requests_validate_their_context() {
        assert!(ActionRequest::new("read").validate().is_ok());
        assert!(
            ActionRequest::new("read")
                .context(json!(null))
                .validate()
                .is_ok()
        );
        assert!(matches!(
            ActionRequest::new("read").context(json!([1])).validate(),
            Err(Error::Configuration(m)) if m.contains("an array")
        ));
        assert!(ActionRequest::new(" ").validate().is_err());
    }
}
