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
    /// Recompute after concurrent events (routine).
    Resync,
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
            TrustEvent::Recompute | TrustEvent::Resync => return None,
        })
    }

    pub(crate) fn routine(self) -> bool {
        matches!(
            self,
            TrustEvent::Approved
                | TrustEvent::Denied
                | TrustEvent::Pending
                | TrustEvent::ResultSuccess
                | TrustEvent::ResultFailure
                | TrustEvent::Resync
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
            TrustEvent::Recompute | TrustEvent::Resync => "recomputed",
        }
    }
}

/// Columns read back after bumping counters (in this order).
pub(crate) const COUNTER_COLUMNS: &str = "organization_id, status, created_at, trust_score, verifications_approved, \
     verifications_denied, results_success, results_failure, human_approvals, human_denials, alerts_raised, drift_events";

/// What to store after an event.
#[derive(Debug, Clone)]
pub(crate) struct ScorePlan {
    pub(crate) org: String,
    pub(crate) old: f64,
    pub(crate) new: f64,
    pub(crate) factors: trust::TrustFactors,
    /// Write `agents.trust_score`.
    pub(crate) update_score: bool,
    /// Add a `trust_history` row.
    pub(crate) write_history: bool,
}

impl ScorePlan {
    /// Plans from a row of [`COUNTER_COLUMNS`] read after the event was counted.
    pub(crate) fn from_row(
        row: &sqlx::sqlite::SqliteRow,
        now: i64,
        event: TrustEvent,
    ) -> Result<Self> {
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
        let changed_2dp = (new * 100.0).round() != (old * 100.0).round();
        Ok(Self {
            org,
            old,
            new,
            factors,
            update_score: (new - old).abs() >= 0.0005 || !event.routine(),
            write_history: changed_2dp || !event.routine(),
        })
    }

    /// The stored score after the plan is applied.
    pub(crate) fn stored(&self) -> f64 {
        if self.update_score {
            self.new
        } else {
            self.old
        }
    }
}

/// `UPDATE agents SET trust_score = ? WHERE id = ?`.
pub(crate) const UPDATE_SCORE_SQL: &str = "UPDATE agents SET trust_score = ? WHERE id = ?";
/// The history insert: id, organization, agent, at, score, previous, reason, factors.
pub(crate) const HISTORY_SQL: &str = "INSERT INTO trust_history (id, organization_id, agent_id, at, score, previous_score, reason, factors) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)";

/// Stores a plan: the score, and a history row when due.
pub(crate) async fn store_plan(
    conn: &mut SqliteConnection,
    agent_id: &str,
    now: i64,
    plan: &ScorePlan,
    reason: &str,
) -> Result<()> {
    if plan.update_score {
        sqlx::query(UPDATE_SCORE_SQL)
            .bind(plan.new)
            .bind(agent_id)
            .execute(&mut *conn)
            .await?;
    }
    if plan.write_history {
        sqlx::query(HISTORY_SQL)
            .bind(new_ordered_id())
            .bind(&plan.org)
            .bind(agent_id)
            .bind(now)
            .bind(plan.new)
            .bind(plan.old)
            .bind(reason)
            .bind(serde_json::to_string(&plan.factors).unwrap_or_else(|_| "{}".into()))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
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
    if !event.routine() {
        // Cached decision inputs of this agent must not be reused after this change.
        crate::decision_cache::bump_agent(conn, agent_id).await?;
    }
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COUNTER_COLUMNS} FROM agents WHERE id = ?"
    )))
    .bind(agent_id)
    .fetch_one(&mut *conn)
    .await?;
    let plan = ScorePlan::from_row(&row, now, event)?;
    store_plan(conn, agent_id, now, &plan, reason.unwrap_or(event.reason())).await?;
    Ok(plan.stored())
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
