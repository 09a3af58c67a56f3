//! Keeping stored trust scores current: events bump the agent's counters and the score is
//! recomputed in the same transaction; a history row is written whenever the score changes at
//! two-decimal precision, or on any non-routine event (status change, alert, drift).

use sqlx::{Row, SqliteConnection};

use crate::db::new_ordered_id;
use crate::error::Result;
use crate::model::AgentStatus;
use crate::trust::{self, TrustInputs};

/// An event that feeds the trust score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TrustEvent {
    /// An automatic approval.
    Approved,
    /// An automatic denial.
    Denied,
    /// A pending verification (no counter changes, last activity only).
    Pending,
    /// A person approved a pending verification.
    HumanApproval,
    /// A person denied a pending verification.
    HumanDenial,
    /// A reported result: success.
    ResultSuccess,
    /// A reported result: failure.
    ResultFailure,
    /// An alert was raised for the agent.
    Alert,
    /// An undeclared MCP server was detected (also raises an alert).
    Drift,
    /// Registration, status or key change: recompute only.
    Recompute,
}

impl TrustEvent {
    fn bump_sql(self) -> Option<&'static str> {
        Some(match self {
            TrustEvent::Approved => {
                "UPDATE agents SET verifications_approved = verifications_approved + 1, last_active_at = ? WHERE id = ?"
            }
            TrustEvent::Denied => {
                "UPDATE agents SET verifications_denied = verifications_denied + 1, last_active_at = ? WHERE id = ?"
            }
            TrustEvent::Pending => "UPDATE agents SET last_active_at = ? WHERE id = ?",
            TrustEvent::HumanApproval => {
                "UPDATE agents SET human_approvals = human_approvals + 1, updated_at = ? WHERE id = ?"
            }
            TrustEvent::HumanDenial => {
                "UPDATE agents SET human_denials = human_denials + 1, updated_at = ? WHERE id = ?"
            }
            TrustEvent::ResultSuccess => {
                "UPDATE agents SET results_success = results_success + 1, last_active_at = ? WHERE id = ?"
            }
            TrustEvent::ResultFailure => {
                "UPDATE agents SET results_failure = results_failure + 1, last_active_at = ? WHERE id = ?"
            }
            TrustEvent::Alert => {
                "UPDATE agents SET alerts_raised = alerts_raised + 1, updated_at = ? WHERE id = ?"
            }
            TrustEvent::Drift => {
                "UPDATE agents SET drift_events = drift_events + 1, alerts_raised = alerts_raised + 1, updated_at = ? WHERE id = ?"
            }
            TrustEvent::Recompute => return None,
        })
    }

    fn routine(self) -> bool {
        matches!(
            self,
            TrustEvent::Approved
                | TrustEvent::Denied
                | TrustEvent::Pending
                | TrustEvent::ResultSuccess
                | TrustEvent::ResultFailure
        )
    }

    /// The reason recorded in the history.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            TrustEvent::Approved => "verification approved",
            TrustEvent::Denied => "verification denied",
            TrustEvent::Pending => "verification pending",
            TrustEvent::HumanApproval => "approved by a person",
            TrustEvent::HumanDenial => "denied by a person",
            TrustEvent::ResultSuccess => "result reported: success",
            TrustEvent::ResultFailure => "result reported: failure",
            TrustEvent::Alert => "alert raised",
            TrustEvent::Drift => "MCP drift detected",
            TrustEvent::Recompute => "recomputed",
        }
    }
}

/// Applies `event` to the agent's counters and recomputes its score on `conn`. `reason`
/// overrides the event's default history reason. Returns the new score.
pub(crate) async fn apply(
    conn: &mut SqliteConnection,
    agent_id: &str,
    now: i64,
    event: TrustEvent,
    reason: Option<&str>,
) -> Result<f64> {
    if let Some(sql) = event.bump_sql() {
        sqlx::query(sql)
            .bind(now)
            .bind(agent_id)
            .execute(&mut *conn)
            .await?;
    }
    let row = sqlx::query(
        "SELECT organization_id, status, created_at, trust_score, verifications_approved, verifications_denied, \
         results_success, results_failure, human_approvals, human_denials, alerts_raised, drift_events \
         FROM agents WHERE id = ?",
    )
    .bind(agent_id)
    .fetch_one(&mut *conn)
    .await?;
    let org: String = row.try_get(0)?;
    let status = AgentStatus::parse(row.try_get::<&str, _>(1)?)?;
    let created_at: i64 = row.try_get(2)?;
    let old: f64 = row.try_get(3)?;
    let inputs = TrustInputs {
        age_days: (now - created_at).max(0) / 86_400_000,
        approved: row.try_get(4)?,
        denied: row.try_get(5)?,
        results_success: row.try_get(6)?,
        results_failure: row.try_get(7)?,
        human_approvals: row.try_get(8)?,
        human_denials: row.try_get(9)?,
        alerts: row.try_get(10)?,
        drift_events: row.try_get(11)?,
    };
    let factors = trust::factors(status, &inputs);
    let new = factors.score();
    if (new - old).abs() >= 0.0005 || !event.routine() {
        sqlx::query("UPDATE agents SET trust_score = ? WHERE id = ?")
            .bind(new)
            .bind(agent_id)
            .execute(&mut *conn)
            .await?;
    }
    let changed_2dp = (new * 100.0).round() != (old * 100.0).round();
    if changed_2dp || !event.routine() {
        sqlx::query(
            "INSERT INTO trust_history (id, organization_id, agent_id, at, score, previous_score, reason, factors) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(new_ordered_id())
        .bind(&org)
        .bind(agent_id)
        .bind(now)
        .bind(new)
        .bind(old)
        .bind(reason.unwrap_or(event.reason()))
        .bind(serde_json::to_string(&factors).unwrap_or_else(|_| "{}".into()))
        .execute(&mut *conn)
        .await?;
    }
    Ok(new)
}

/// Records an alert for an agent (and bumps its alert or drift counter via [`apply`]).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn raise_alert(
    conn: &mut SqliteConnection,
    org_id: &str,
    agent_id: &str,
    now: i64,
    alert_type: &str,
    severity: &str,
    title: &str,
    description: &str,
    event: TrustEvent,
) -> Result<String> {
    let id = new_ordered_id();
    sqlx::query(
        "INSERT INTO alerts (id, organization_id, agent_id, alert_type, severity, title, description, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&id)
    .bind(org_id)
    .bind(agent_id)
    .bind(alert_type)
    .bind(severity)
    .bind(title)
    .bind(description)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    apply(conn, agent_id, now, event, Some(title)).await?;
    Ok(id)
}
