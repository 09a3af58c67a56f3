//! The audit log: every registration, key change, decision, approval, grant and policy change is
//! appended in the same transaction as the change itself, with its actor and time.
//!
//! Details are structured JSON chosen by the caller; they never contain secrets (API keys,
//! private keys, signatures) — only ids, names, decisions and reasons.

use sqlx::SqliteConnection;

use crate::db::new_ordered_id;
use crate::error::Result;

/// Who did something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Actor {
    /// The server itself (initialization, expiry sweeps, automatic decisions).
    System,
    /// A person, through an API key.
    User {
        /// The person's user id.
        user_id: String,
        /// The API key used.
        api_key_id: String,
    },
    /// An agent, authenticated by its signature.
    Agent {
        /// The agent id.
        agent_id: String,
    },
}

impl Actor {
    /// `system`, `user` or `agent`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Actor::System => "system",
            Actor::User { .. } => "user",
            Actor::Agent { .. } => "agent",
        }
    }

    /// The actor's id (user id or agent id).
    pub(crate) fn id(&self) -> Option<&str> {
        match self {
            Actor::System => None,
            Actor::User { user_id, .. } => Some(user_id),
            Actor::Agent { agent_id } => Some(agent_id),
        }
    }
}

/// One audit record to append.
#[derive(Debug)]
pub(crate) struct Entry<'a> {
    pub(crate) organization_id: &'a str,
    pub(crate) at: i64,
    pub(crate) actor: &'a Actor,
    pub(crate) action: &'a str,
    pub(crate) target_type: &'a str,
    pub(crate) target_id: Option<&'a str>,
    pub(crate) details: serde_json::Value,
}

/// Appends `entry` on `conn` (inside the caller's transaction).
pub(crate) async fn record(conn: &mut SqliteConnection, entry: Entry<'_>) -> Result<()> {
    let mut details = entry.details;
    if let (serde_json::Value::Object(map), Actor::User { api_key_id, .. }) =
        (&mut details, entry.actor)
    {
        map.insert("api_key_id".into(), api_key_id.clone().into());
    }
    sqlx::query(
        "INSERT INTO audit_log (id, organization_id, at, actor_type, actor_id, action, \
         target_type, target_id, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(new_ordered_id())
    .bind(entry.organization_id)
    .bind(entry.at)
    .bind(entry.actor.kind())
    .bind(entry.actor.id())
    .bind(entry.action)
    .bind(entry.target_type)
    .bind(entry.target_id)
    .bind(details.to_string())
    .execute(conn)
    .await?;
    Ok(())
}
