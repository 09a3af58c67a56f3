//! Administrative changes need a person: changing the gate configuration, re-enrolling a
//! presence factor and leaving lockdown are allowed only with a human factor the agent does
//! not hold with its own key file:
//!
//! * the profile's enrolled presence factor, confirmed now (the [`crate::Presence`] gate:
//!   a FIDO2 touch, a TOTP code);
//! * a person's approval through an approver that [vouches for a
//!   person](crate::Approver::vouches_for_person) (the AIM server's approvals; never the
//!   terminal approver, which an agent answers through a pseudo-terminal);
//! * the profile's recovery key (a session opened with
//!   [`crate::Vault::unlock_with_recovery_key`]);
//! * the session that created the profile (whoever creates a profile sets it up).
//!
//! One confirmation authorizes one change: [`Session::authorize_admin`] asks ahead (for
//! example before a new TOTP secret is shown), and the next administrative change uses it up.
//! Refusals are audited as `admin.denied`.

use crate::audit::{self, Event};
use crate::db;
use crate::gates::{DenyReason, GateRequest};
use crate::model::{Classification, MemoryId};
use crate::session::Session;
use crate::{Result, VaultError};

/// The human factor that authorized an administrative change (recorded in the audit log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HumanFactor {
    /// The enrolled presence factor confirmed.
    Presence,
    /// A person approved (the approver's name, as it reported it).
    Approval(String),
    /// The session was opened with the profile's recovery key.
    RecoveryKey,
    /// The session created the profile.
    ProfileCreation,
}

impl HumanFactor {
    /// Short text for the audit log.
    pub fn describe(&self) -> String {
        match self {
            Self::Presence => "presence".into(),
            Self::Approval(a) => format!("approval:{}", a.chars().take(120).collect::<String>()),
            Self::RecoveryKey => "recovery_key".into(),
            Self::ProfileCreation => "profile_creation".into(),
        }
    }
}

impl Session<'_> {
    /// Asks for a human factor now for the administrative change `purpose`
    /// (`gates.config.change`, `presence.enroll`, `vault.lockdown.exit`) and holds it for the
    /// next administrative change of this session. Denied (and audited) when no factor
    /// confirms.
    pub fn authorize_admin(&mut self, purpose: &str) -> Result<HumanFactor> {
        if let Some(f) = &self.admin {
            return Ok(f.clone());
        }
        let factor = self.ask_human_factor(purpose)?;
        self.admin = Some(factor.clone());
        Ok(factor)
    }

    /// Uses up the held authorization, or asks for one now: for administrative changes made
    /// outside this crate (re-enrolling a presence factor in `vault-hw`).
    pub fn take_admin(&mut self, purpose: &str) -> Result<HumanFactor> {
        let f = self.authorize_admin(purpose)?;
        if !self.recovered && !self.created {
            self.admin = None;
        }
        Ok(f)
    }

    fn ask_human_factor(&mut self, purpose: &str) -> Result<HumanFactor> {
        if self.recovered {
            return Ok(HumanFactor::RecoveryKey);
        }
        if self.created {
            return Ok(HumanFactor::ProfileCreation);
        }
        let req = GateRequest {
            memory_id: MemoryId::from_bytes([0; 16]),
            classification: Classification::Black,
            profile: self.profile.clone(),
            requester: "admin".into(),
            justification: format!("administrative change: {purpose}"),
            purpose: purpose.into(),
        };
        let mut tried = Vec::new();
        match &self.vault.gates.presence {
            Some(p) => match p.confirm(&req) {
                Ok(()) => return Ok(HumanFactor::Presence),
                Err(e) => tried.push(format!("presence: {e}")),
            },
            None => tried.push("no presence factor plugged in".into()),
        }
        match &self.vault.gates.approver {
            Some(a) if a.vouches_for_person() => match a.approve(&req) {
                Ok(ok) => return Ok(HumanFactor::Approval(ok.approver)),
                Err(e) => tried.push(format!("approval: {e}")),
            },
            Some(_) => tried.push(
                "the approver cannot prove a person decided (the terminal approver never does)"
                    .into(),
            ),
            None => tried.push("no approver".into()),
        }
        let reason = DenyReason::HumanFactorRequired(tried.join("; "));
        let tx = db::write_tx(self.conn())?;
        audit::append(
            &tx,
            &Event::new("admin.denied", self.vault.now())
                .with("profile", self.profile.as_str())
                .with("purpose", purpose.chars().take(64).collect::<String>())
                .with("reason", reason.code()),
        )?;
        self.commit_op(tx, 1)?;
        Err(VaultError::Denied(reason))
    }
}
