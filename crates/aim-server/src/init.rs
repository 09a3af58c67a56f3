//! First-run setup: the first organization, its admin and the admin's API key. There are no
//! seeded passwords or keys anywhere; the only way in is the key printed here, once.

use sqlx::{Connection, SqliteConnection};

use crate::apikey::ApiKeySecret;
use crate::audit::{self, Actor};
use crate::config::ServerConfig;
use crate::db::{new_id, open_write_connection};
use crate::error::{Error, Result};
use crate::model::Role;

/// What initialization created. The API key is shown once: print it, never log it.
#[derive(Debug)]
pub struct InitOutput {
    /// The new organization's id.
    pub organization_id: String,
    /// The admin user's id.
    pub admin_user_id: String,
    /// The admin API key's id (not secret; use it to revoke the key).
    pub api_key_id: String,
    /// The admin API key (`aim_live_…`).
    pub admin_api_key: ApiKeySecret,
}

/// Creates the first organization and its admin in the data directory of `config`, applying
/// migrations first. Fails with [`Error::AlreadyInitialized`] when an organization exists.
pub async fn init(config: &ServerConfig, org_name: &str, admin_email: &str) -> Result<InitOutput> {
    let mut conn = open_write_connection(config).await?;
    let now = config.clock.now_ms();
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM organizations")
        .fetch_one(&mut *tx)
        .await?;
    if count > 0 {
        return Err(Error::AlreadyInitialized);
    }
    let out = create_organization(&mut tx, now, org_name, admin_email).await?;
    tx.commit().await?;
    Ok(out)
}

/// True when the data directory of `config` already holds an organization.
pub async fn is_initialized(config: &ServerConfig) -> Result<bool> {
    let mut conn = open_write_connection(config).await?;
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM organizations")
        .fetch_one(&mut conn)
        .await?;
    Ok(count > 0)
}

pub(crate) fn validate_org_name(name: &str) -> Result<&str> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::bad_request(
            "organization name must be 1 to 200 characters",
        ));
    }
    Ok(name)
}

pub(crate) fn validate_email(email: &str) -> Result<String> {
    let email = email.trim().to_ascii_lowercase();
    let ok = email.len() <= 320
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        return Err(Error::bad_request(format!(
            "`{email}` is not an e-mail address"
        )));
    }
    Ok(email)
}

/// Creates an organization, its admin user and an admin API key on `conn` (inside the caller's
/// transaction), with audit records.
pub(crate) async fn create_organization(
    conn: &mut SqliteConnection,
    now: i64,
    org_name: &str,
    admin_email: &str,
) -> Result<InitOutput> {
    let org_name = validate_org_name(org_name)?;
    let email = validate_email(admin_email)?;
    let org_id = new_id();
    let user_id = new_id();
    let key_id = new_id();
    let key = ApiKeySecret::generate()?;
    sqlx::query("INSERT INTO organizations (id, name, created_at) VALUES (?, ?, ?)")
        .bind(&org_id)
        .bind(org_name)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO users (id, organization_id, email, role, status, created_at) \
         VALUES (?, ?, ?, 'admin', 'active', ?)",
    )
    .bind(&user_id)
    .bind(&org_id)
    .bind(&email)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO api_keys (id, organization_id, user_id, name, role, key_hash, prefix, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&key_id)
    .bind(&org_id)
    .bind(&user_id)
    .bind("initial admin key")
    .bind(Role::Admin.as_str())
    .bind(key.hash())
    .bind(key.display_prefix())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    for (action, target_type, target_id, details) in [
        (
            "organization.created",
            "organization",
            &org_id,
            serde_json::json!({ "name": org_name }),
        ),
        (
            "user.created",
            "user",
            &user_id,
            serde_json::json!({ "email": email, "role": "admin" }),
        ),
        (
            "api_key.created",
            "api_key",
            &key_id,
            serde_json::json!({ "user_id": user_id, "role": "admin", "prefix": key.display_prefix() }),
        ),
    ] {
        audit::record(
            conn,
            audit::Entry {
                organization_id: &org_id,
                at: now,
                actor: &Actor::System,
                action,
                target_type,
                target_id: Some(target_id),
                details,
            },
        )
        .await?;
    }
    Ok(InitOutput {
        organization_id: org_id,
        admin_user_id: user_id,
        api_key_id: key_id,
        admin_api_key: key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn init_once_then_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let config = ServerConfig::new(dir.path());
        assert!(!is_initialized(&config).await.unwrap());
        let out = init(&config, "Acme", "Admin@Acme.test").await.unwrap();
        assert!(out.admin_api_key.expose().starts_with("aim_live_"));
        assert!(is_initialized(&config).await.unwrap());
        assert!(matches!(
            init(&config, "Other", "a@b.c").await,
            Err(Error::AlreadyInitialized)
        ));
        // Only the hash is stored.
        let mut conn = open_write_connection(&config).await.unwrap();
        let (hash, role): (String, String) =
            sqlx::query_as("SELECT key_hash, role FROM api_keys WHERE id = ?")
                .bind(&out.api_key_id)
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert_eq!(hash, out.admin_api_key.hash());
        assert_eq!(role, "admin");
        let (email,): (String,) = sqlx::query_as("SELECT email FROM users")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(email, "admin@acme.test");
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_log")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(n, 3);
    }

    #[tokio::test]
    async fn bad_names_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let config = ServerConfig::new(dir.path());
        assert!(matches!(
            init(&config, " ", "a@b.c").await,
            Err(Error::BadRequest(_))
        ));
        assert!(matches!(
            init(&config, "Acme", "not-an-email").await,
            Err(Error::BadRequest(_))
        ));
        assert!(!is_initialized(&config).await.unwrap());
    }
}
