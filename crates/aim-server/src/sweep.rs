//! Periodic housekeeping: expire pending verifications nobody decided in time (reads also expire
//! them lazily), and purge replay-guard rows whose signatures can no longer be replayed.

use sqlx::SqliteConnection;
use tokio::sync::watch;

use crate::audit::{self, Actor};
use crate::error::Result;
use crate::state::AppState;

/// Runs until `stop` turns true.
pub(crate) async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let every = state
        .config
        .sweep_interval
        .max(std::time::Duration::from_millis(10));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if let Err(e) = sweep_once(&state).await {
            tracing::warn!(error = %e, "housekeeping sweep failed");
        }
    }
}

/// One sweep: expiry and replay-guard purge.
pub(crate) async fn sweep_once(state: &AppState) -> Result<u64> {
    let now = state.now_ms();
    state
        .db
        .writer
        .write(move |conn| {
            Box::pin(async move {
                let expired = expire_pending(conn, now, None).await?;
                sqlx::query("DELETE FROM replay_guard WHERE expires_at < ?")
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                Ok(expired)
            })
        })
        .await
}

/// Marks pending verifications whose deadline passed as expired (all of them, or only `only_id`),
/// with an audit record each. Returns how many changed.
pub(crate) async fn expire_pending(
    conn: &mut SqliteConnection,
    now: i64,
    only_id: Option<&str>,
) -> Result<u64> {
    let rows: Vec<(String, String, String, String)> = match only_id {
        Some(id) => {
            sqlx::query_as(
                "SELECT id, organization_id, agent_id, action_type FROM verifications \
                 WHERE id = ? AND status = 'pending' AND pending_expires_at <= ?",
            )
            .bind(id)
            .bind(now)
            .fetch_all(&mut *conn)
            .await?
        }
        None => {
            sqlx::query_as(
                "SELECT id, organization_id, agent_id, action_type FROM verifications \
                 WHERE status = 'pending' AND pending_expires_at <= ? LIMIT 1000",
            )
            .bind(now)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    let mut changed = 0;
    for (id, org, agent_id, action) in rows {
        let done = sqlx::query(
            "UPDATE verifications SET status = 'expired', decided_at = ?, decided_by = 'system', \
             reason = ? WHERE id = ? AND status = 'pending'",
        )
        .bind(now)
        .bind("no one approved or denied this verification before it expired")
        .bind(&id)
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() == 1 {
            changed += 1;
            audit::record(
                conn,
                audit::Entry {
                    organization_id: &org,
                    at: now,
                    actor: &Actor::System,
                    action: "verification.expired",
                    target_type: "verification",
                    target_id: Some(&id),
                    details: serde_json::json!({ "agent_id": agent_id, "action_type": action }),
                },
            )
            .await?;
        }
    }
    Ok(changed)
}
