//! What suspending or revoking an agent does to its verifications, in the same transaction as
//! the status change: pending verifications are cancelled (denied, so no one can approve them
//! later) and unexpired approvals are withdrawn (expired), each with its own audit entry.

use sqlx::SqliteConnection;

use crate::audit::{self, Actor};
use crate::error::Result;

/// Why an agent's verifications are being withdrawn.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Withdrawal<'a> {
    /// The agent's organization.
    pub(crate) org_id: &'a str,
    /// The agent.
    pub(crate) agent_id: &'a str,
    /// `suspended` or `revoked`.
    pub(crate) new_status: &'a str,
    /// Who changed the status.
    pub(crate) actor: &'a Actor,
    /// Server time, ms.
    pub(crate) now: i64,
}

/// Cancels the agent's pending verifications and withdraws its unexpired approvals; returns
/// how many verifications changed.
pub(crate) async fn withdraw_verifications(
    conn: &mut SqliteConnection,
    w: Withdrawal<'_>,
) -> Result<u64> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT id, status, action_type FROM verifications WHERE agent_id = ? AND \
         (status = 'pending' OR (status = 'approved' AND approval_expires_at > ?))",
    )
    .bind(w.agent_id)
    .bind(w.now)
    .fetch_all(&mut *conn)
    .await?;
    let mut changed = 0;
    for (id, status, action) in rows {
        let (new_status, reason, audit_action) = if status == "pending" {
            (
                "denied",
                format!(
                    "cancelled: the agent was {} before anyone decided",
                    w.new_status
                ),
                "verification.cancelled",
            )
        } else {
            (
                "expired",
                format!("approval withdrawn: the agent was {}", w.new_status),
                "verification.approval_withdrawn",
            )
        };
        let done = sqlx::query(
            "UPDATE verifications SET status = ?, reason = ?, decided_at = ?, decided_by = 'system', \
             approval_expires_at = CASE WHEN approval_expires_at IS NULL THEN NULL ELSE ? END \
             WHERE id = ? AND status = ?",
        )
        .bind(new_status)
        .bind(&reason)
        .bind(w.now)
        .bind(w.now)
        .bind(&id)
        .bind(&status)
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() != 1 {
            continue;
        }
        changed += 1;
        audit::record(
            conn,
            audit::Entry {
                organization_id: w.org_id,
                at: w.now,
                actor: w.actor,
                action: audit_action,
                target_type: "verification",
                target_id: Some(&id),
                details: serde_json::json!({
                    "agent_id": w.agent_id,
                    "action_type": action,
                    "was": status,
                    "reason": reason,
                }),
            },
        )
        .await?;
    }
    Ok(changed)
}
