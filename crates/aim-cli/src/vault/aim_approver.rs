//! Human approval of vault recalls through the AIM server (`--aim-agent NAME` / `AIM_AGENT`).
//!
//! The approver asks the server as the named agent (its stored identity; the server URL and
//! key protection come from aim-client's usual configuration: `AIM_SERVER`, `AIM_HOME`,
//! `AIM_CONFIG`, `AIM_PASSPHRASE`, ...) whether action [`ACTION`] on the memory may run, with
//! the justification in the context, and waits while a person decides
//! (`aim approvals approve|deny`). It fails closed: a denial, an expiry, a timeout, an
//! unreachable server, a missing identity, and an approval the server made **automatically**
//! (no person: `approved_by` is `system` or absent) all deny. aim-client's degraded mode is
//! never used here.
//!
//! `Approver` is synchronous and aim-client is async: each request runs on its own thread
//! with its own current-thread runtime, so it never nests in a caller's runtime.

use std::time::Duration;

use aim_client::{ActionRequest, AimClient, ClientConfig, Error};
use vault_store::{Approval, ApprovalRequest, Approver, GateError};

/// The action the server is asked about.
pub(crate) const ACTION: &str = "vault_recall";

/// Asks the AIM server, as agent `agent`, for a person's approval.
#[derive(Debug, Clone)]
pub(crate) struct AimServerApprover {
    agent: String,
}

impl AimServerApprover {
    /// An approver asking as the stored agent identity `agent`.
    pub(crate) fn new(agent: impl Into<String>) -> Self {
        Self {
            agent: agent.into(),
        }
    }

    fn request(r: &ApprovalRequest) -> ActionRequest {
        ActionRequest::new(ACTION)
            .resource(r.memory_id.to_string())
            .context(serde_json::json!({
                "justification": r.justification,
                "classification": r.classification.level(),
                "profile": r.profile,
                "requester": r.requester,
                "purpose": r.purpose,
            }))
            .risk_level("high")
    }

    async fn ask(agent: &str, request: &ActionRequest) -> Result<Approval, GateError> {
        let mut config = ClientConfig::from_env()
            .map_err(|e| GateError::Unavailable(format!("AIM client configuration: {e}")))?;
        // An interactive wait: poll every half second at first.
        config.poll.initial = Duration::from_millis(500);
        let client = AimClient::load(agent, config)
            .map_err(|e| {
                GateError::Unavailable(format!("cannot load agent identity `{agent}`: {e}"))
            })?
            .ok_or_else(|| {
                GateError::Unavailable(format!(
                    "no stored identity for agent `{agent}`; register it with `aim agent register {agent}`"
                ))
            })?;
        match client.verify_action(request).await {
            Ok(a) => match a.approved_by.as_deref() {
                Some(person) if !person.is_empty() && person != "system" => Ok(Approval {
                    approver: format!("aim:{person} (verification {})", a.verification_id),
                }),
                _ => Err(GateError::Refused(format!(
                    "the AIM server approved verification {} automatically, not a person; \
                     make `{ACTION}` need a person (e.g. a `require_approval` policy)",
                    a.verification_id
                ))),
            },
            Err(Error::Denied { reason, .. }) => Err(GateError::Refused(format!(
                "the AIM server denied it: {reason}"
            ))),
            Err(Error::Expired { verification_id }) => Err(GateError::Refused(format!(
                "verification {verification_id} expired before a person decided"
            ))),
            Err(Error::Timeout { waited, .. }) => Err(GateError::Timeout(
                u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
            )),
            Err(e) => Err(GateError::Unavailable(format!("AIM server: {e}"))),
        }
    }
}

impl Approver for AimServerApprover {
    /// A person decided on the server (automatic approvals are refused above): a human
    /// factor the agent's own key cannot produce.
    fn vouches_for_person(&self) -> bool {
        true
    }

    fn approve(&self, r: &ApprovalRequest) -> Result<Approval, GateError> {
        let request = Self::request(r);
        let agent = self.agent.as_str();
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| {
                            GateError::Unavailable(format!("cannot start a runtime: {e}"))
                        })?;
                    rt.block_on(Self::ask(agent, &request))
                })
                .join()
                .unwrap_or_else(|_| {
                    Err(GateError::Unavailable(
                        "the AIM approval thread panicked".into(),
                    ))
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vault_store::{Classification, MemoryId};

    #[test]
    fn the_request_names_the_memory_and_carries_the_justification_never_content() {
        let r = ApprovalRequest {
            memory_id: MemoryId::from_bytes([7; 16]),
            classification: Classification::Sealed,
            profile: "agent".into(),
            requester: "cli".into(),
            justification: "incident 42".into(),
            purpose: "recall".into(),
        };
        let a = AimServerApprover::request(&r);
        assert_eq!(a.action, ACTION);
        assert_eq!(
            a.resource.as_deref(),
            Some(r.memory_id.to_string().as_str())
        );
        assert_eq!(a.context["justification"], "incident 42");
        assert_eq!(a.context["classification"], 3);
    }
}
