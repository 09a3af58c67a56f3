//! Vault errors as MCP errors: a gate's refusal says what would let the recall through.

use rmcp::ErrorData;
use rmcp::model::ErrorCode;
use serde_json::json;
use vault_store::{DenyReason, VaultError};

use super::worker::VaultGone;

/// JSON-RPC error code of a recall (or search) a gate refused (same code as aim-client's tool
/// guard uses for AIM denials).
pub(crate) const CODE_DENIED: ErrorCode = aim_client::mcp::CODE_DENIED;
/// JSON-RPC error code of a store the memory-hygiene rules refused.
pub(crate) const CODE_REFUSED_STORE: ErrorCode = ErrorCode(-32013);

/// What the caller (or a person) can do about a refusal.
fn needed(reason: &DenyReason) -> &'static str {
    match reason {
        DenyReason::JustificationRequired => "pass a `justification` saying why you need it",
        DenyReason::ApproverUnavailable => {
            "a person's approval: start `aim mcp vault` with `--aim-agent NAME` so the AIM \
             server asks a person (`aim approvals approve ID`), or recall it with `aim vault \
             recall` at a terminal"
        }
        DenyReason::ApprovalDenied(_) => {
            "a person's approval through the AIM server; it was refused or not given in time"
        }
        DenyReason::PresenceUnavailable | DenyReason::PresenceDenied(_) => {
            "a person physically present: level-5 memories are recalled only with `aim vault \
             recall` at a terminal, never through MCP"
        }
        DenyReason::BoundaryUnavailable
        | DenyReason::BoundaryDenied(_)
        | DenyReason::BoundaryError(_) => {
            "the boundary daemon's permission (`aim vault gates boundary SOCKET`)"
        }
        DenyReason::Cooldown { .. } => "to wait until the cooldown has passed",
        DenyReason::Lockdown => "the profile to leave lockdown (`aim vault unlock`)",
        _ => "nothing can make this memory readable",
    }
}

/// The MCP error for a vault error.
pub(crate) fn vault_error(e: VaultError) -> ErrorData {
    match e {
        VaultError::Denied(reason) => {
            let needed = needed(&reason);
            ErrorData::new(
                CODE_DENIED,
                format!("denied: {reason}; needed: {needed}"),
                Some(json!({ "vault": "denied", "code": reason.code(), "needed": needed })),
            )
        }
        VaultError::MemoryNotFound(_) | VaultError::InvalidInput(_) => {
            ErrorData::invalid_params(e.to_string(), None)
        }
        other => ErrorData::internal_error(other.to_string(), None),
    }
}

impl From<VaultGone> for ErrorData {
    fn from(e: VaultGone) -> Self {
        ErrorData::internal_error(e.to_string(), None)
    }
}
