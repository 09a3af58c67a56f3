//! Start-up backfill of the columns schema version 2 added to agents registered before it:
//! `name_key` (the name's confusable skeleton) and `registered_by_key` (read from the
//! `agent.registered` audit entry, which names the API key). Runs in one transaction on the
//! write connection before the server accepts requests; rows already filled are left alone.

use sqlx::{Connection, SqliteConnection};

use crate::error::Result;
use crate::names::skeleton_key;

/// Fills the version-2 agent columns that are still NULL.
pub(crate) async fn run(conn: &mut SqliteConnection) -> Result<()> {
    let mut tx = conn.begin().await?;
    let unnamed: Vec<(String, String)> =
        sqlx::query_as("SELECT id, name FROM agents WHERE name_key IS NULL")
            .fetch_all(&mut *tx)
            .await?;
    for (id, name) in unnamed {
        sqlx::query("UPDATE agents SET name_key = ? WHERE id = ?")
            .bind(skeleton_key(&name))
            .bind(&id)
            .execute(&mut *tx)
            .await?;
    }
    let unattributed: Vec<(String, String)> = sqlx::query_as(
        "SELECT a.id, l.details FROM agents a JOIN audit_log l \
         ON l.target_id = a.id AND l.action = 'agent.registered' AND l.actor_type = 'user' \
         WHERE a.registered_by_key IS NULL",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (id, details) in unattributed {
        let key = serde_json::from_str::<serde_json::Value>(&details)
            .ok()
            .and_then(|d| d.get("api_key_id")?.as_str().map(str::to_owned));
        if let Some(key) = key {
            sqlx::query("UPDATE agents SET registered_by_key = ? WHERE id = ?")
                .bind(&key)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}
