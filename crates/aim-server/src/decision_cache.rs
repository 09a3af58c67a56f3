//! What a verification decision depends on, read in one query and kept in memory between
//! requests of the same agent.
//!
//! The cache is an optimisation, not a source of truth for authorization: the agent's status,
//! keys and grants (`agents.config_version`, also bumped by human decisions, alerts and drift)
//! and the organization's policies and risk levels (`organizations.config_version`) are checked
//! again by the statement that records the decision, in the same transaction. If any changed
//! (here or on another replica sharing the database), nothing is recorded and the request is
//! decided again from a fresh read. The trust score a decision uses may lag routine events
//! (automatic decisions and reported results recorded by other replicas) by at most
//! [`MAX_AGE_MS`]: entries are reloaded after that.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sqlx::Row;

use crate::auth::AgentKeys;
use crate::decision::{Policy, RiskOverride};
use crate::error::Result;
use crate::model::{AgentStatus, BelowTrust, PolicyEffect, Risk};
use crate::trust::TrustInputs;

/// Most agents kept; the map is cleared when full (entries are cheap to reload).
const MAX_ENTRIES: usize = 16_384;

/// Entries older than this (by the server's clock) are reloaded.
pub(crate) const MAX_AGE_MS: i64 = 1_000;

/// The agent's event counters (the trust score's inputs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counters {
    pub(crate) created_at: i64,
    pub(crate) approved: i64,
    pub(crate) denied: i64,
    pub(crate) results_success: i64,
    pub(crate) results_failure: i64,
    pub(crate) human_approvals: i64,
    pub(crate) human_denials: i64,
    pub(crate) alerts: i64,
    pub(crate) drift: i64,
}

impl Counters {
    /// Trust inputs at `now`.
    pub(crate) fn inputs(&self, now: i64) -> TrustInputs {
        TrustInputs {
            age_days: (now - self.created_at).max(0) / 86_400_000,
            approved: self.approved,
            denied: self.denied,
            results_success: self.results_success,
            results_failure: self.results_failure,
            human_approvals: self.human_approvals,
            human_denials: self.human_denials,
            alerts: self.alerts,
            drift_events: self.drift,
        }
    }
}

/// The parts of a bundle that change only with a configuration version.
#[derive(Debug)]
pub(crate) struct Fixed {
    pub(crate) keys: AgentKeys,
    /// Labels an admin gave the agent.
    pub(crate) labels: Vec<String>,
    pub(crate) grants: Vec<String>,
    pub(crate) policies: Vec<Policy>,
    pub(crate) risks: Vec<RiskOverride>,
    pub(crate) agent_version: i64,
    pub(crate) org_version: i64,
}

/// Everything one agent's decisions need (cheap to clone).
#[derive(Debug, Clone)]
pub(crate) struct Bundle {
    pub(crate) fixed: Arc<Fixed>,
    pub(crate) trust: f64,
    pub(crate) counters: Counters,
    /// When it was read from the database (server clock, ms).
    pub(crate) loaded_at: i64,
}

/// One `UNION ALL` over the agent, its active grants, and its organization's enabled policies
/// and risk overrides. Every branch has the same column types: kind, seven texts, one double,
/// twelve integers.
const BUNDLE_SQL: &str = "\
SELECT 'a', a.id, a.organization_id, a.name, a.status, a.public_key, a.previous_public_key, a.labels, a.trust_score, \
  a.previous_key_valid_until, a.config_version, o.config_version, a.created_at, a.verifications_approved, \
  a.verifications_denied, a.results_success, a.results_failure, a.human_approvals, a.human_denials, \
  a.alerts_raised, a.drift_events \
  FROM agents a JOIN organizations o ON o.id = a.organization_id WHERE a.id = ?1 \
UNION ALL SELECT 'g', capability, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
  NULL, NULL, NULL, NULL, NULL, NULL \
  FROM capability_grants WHERE agent_id = ?1 AND revoked_at IS NULL \
UNION ALL SELECT 'p', id, name, action_pattern, resource_pattern, agent_pattern, effect, below_min_trust, min_trust, \
  priority, enabled, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL \
  FROM policies WHERE enabled = 1 AND organization_id = (SELECT organization_id FROM agents WHERE id = ?1) \
UNION ALL SELECT 'r', action_pattern, risk, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
  NULL, NULL, NULL, NULL, NULL, NULL \
  FROM risk_levels WHERE organization_id = (SELECT organization_id FROM agents WHERE id = ?1)";

/// The stored labels (a JSON array of strings, written only by this server); text that does
/// not parse (possible only if the database was edited) reads as no labels.
pub(crate) fn parse_labels(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

/// Reads an agent's bundle from the database (`None` when no such agent).
pub(crate) async fn load(
    pool: &sqlx::SqlitePool,
    agent_id: &str,
    now: i64,
) -> Result<Option<Bundle>> {
    let rows = sqlx::query(BUNDLE_SQL)
        .bind(agent_id)
        .fetch_all(pool)
        .await?;
    let mut agent = None;
    let mut labels = Vec::new();
    let mut grants = Vec::new();
    let mut policies = Vec::new();
    let mut risks = Vec::new();
    for r in &rows {
        let text = |i: usize| -> Result<String> {
            Ok(r.try_get::<Option<String>, _>(i)?.unwrap_or_default())
        };
        let int = |i: usize| -> Result<i64> { Ok(r.try_get::<Option<i64>, _>(i)?.unwrap_or(0)) };
        match r.try_get::<&str, _>(0)? {
            "a" => {
                labels = parse_labels(&text(7)?);
                agent = Some((
                    AgentKeys {
                        id: text(1)?,
                        org_id: text(2)?,
                        name: text(3)?,
                        status: AgentStatus::parse(&text(4)?)?,
                        public_key: text(5)?,
                        previous_public_key: r.try_get(6)?,
                        previous_key_valid_until: r.try_get(9)?,
                    },
                    r.try_get::<f64, _>(8)?,
                    int(10)?,
                    int(11)?,
                    Counters {
                        created_at: int(12)?,
                        approved: int(13)?,
                        denied: int(14)?,
                        results_success: int(15)?,
                        results_failure: int(16)?,
                        human_approvals: int(17)?,
                        human_denials: int(18)?,
                        alerts: int(19)?,
                        drift: int(20)?,
                    },
                ));
            }
            "g" => grants.push(text(1)?),
            "p" => policies.push(Policy {
                id: text(1)?,
                name: text(2)?,
                action_pattern: text(3)?,
                resource_pattern: text(4)?,
                agent_pattern: text(5)?,
                effect: PolicyEffect::parse(&text(6)?)?,
                below_min_trust: BelowTrust::parse(&text(7)?)?,
                min_trust: r.try_get(8)?,
                priority: int(9)?,
                enabled: int(10)? != 0,
            }),
            "r" => {
                if let Ok(risk) = Risk::parse(&text(2)?) {
                    risks.push(RiskOverride {
                        action_pattern: text(1)?,
                        risk,
                    });
                }
            }
            _ => {}
        }
    }
    Ok(agent.map(
        |(keys, trust, agent_version, org_version, counters)| Bundle {
            fixed: Arc::new(Fixed {
                keys,
                labels,
                grants,
                policies,
                risks,
                agent_version,
                org_version,
            }),
            trust,
            counters,
            loaded_at: now,
        },
    ))
}

/// The in-memory map agent id → bundle.
#[derive(Debug, Default)]
pub(crate) struct DecisionCache {
    map: Mutex<HashMap<String, Bundle>>,
}

impl DecisionCache {
    /// The entry for `agent_id` unless it is older than [`MAX_AGE_MS`] at `now`.
    pub(crate) fn get(&self, agent_id: &str, now: i64) -> Option<Bundle> {
        let b = self.map.lock().ok()?.get(agent_id).cloned()?;
        ((now - b.loaded_at).abs() <= MAX_AGE_MS).then_some(b)
    }

    pub(crate) fn put(&self, agent_id: &str, bundle: Bundle) {
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
            map.insert(agent_id.to_owned(), bundle);
        }
    }

    pub(crate) fn invalidate(&self, agent_id: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(agent_id);
        }
    }

    /// Forgets everything (after a change to an organization's policies or risk levels).
    pub(crate) fn clear(&self) {
        if let Ok(mut map) = self.map.lock() {
            map.clear();
        }
    }
}

/// Bumps an agent's `config_version` (its status, keys or grants changed).
pub(crate) async fn bump_agent(conn: &mut sqlx::SqliteConnection, agent_id: &str) -> Result<()> {
    sqlx::query("UPDATE agents SET config_version = config_version + 1 WHERE id = ?")
        .bind(agent_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Bumps an organization's `config_version` (its policies or risk levels changed).
pub(crate) async fn bump_org(conn: &mut sqlx::SqliteConnection, org_id: &str) -> Result<()> {
    sqlx::query("UPDATE organizations SET config_version = config_version + 1 WHERE id = ?")
        .bind(org_id)
        .execute(conn)
        .await?;
    Ok(())
}
