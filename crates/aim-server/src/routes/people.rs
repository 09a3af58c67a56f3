//! The organization, its people (admin, member, viewer) and API keys. Keys are shown once,
//! stored as SHA-256, revocable, and carry a role no higher than their owner's.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use super::util::{iso, iso_opt, name_field, parse_body};
use crate::apikey::ApiKeySecret;
use crate::audit;
use crate::auth::parse_uuid;
use crate::db::new_id;
use crate::error::{Error, Result, is_unique_violation};
use crate::init::validate_email;
use crate::model::Role;
use crate::routes::ErrorBody;
use crate::state::AppState;

/// The caller's organization.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OrganizationView {
    id: String,
    name: String,
    created_at: String,
    /// The calling key's effective role.
    your_role: Role,
    /// The calling key's owner.
    your_email: String,
}

/// The organization of the calling API key (any role).
#[utoipa::path(get, path = "/api/v1/organizations/current", tag = "people",
    security(("api_key" = [])),
    responses((status = 200, description = "The organization", body = OrganizationView),
              (status = 401, description = "Not authenticated", body = ErrorBody)))]
pub(crate) async fn current_organization(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<OrganizationView>> {
    let person = state.person(&headers, Role::Viewer).await?;
    let (name, created_at): (String, i64) =
        sqlx::query_as("SELECT name, created_at FROM organizations WHERE id = ?")
            .bind(&person.org_id)
            .fetch_one(&state.db.read)
            .await?;
    Ok(Json(OrganizationView {
        id: person.org_id,
        name,
        created_at: iso(created_at),
        your_role: person.role,
        your_email: person.email,
    }))
}

/// People have roles viewer, member or admin; `registration` is a role for API keys only.
fn person_role(role: Role) -> Result<()> {
    if role == Role::Registration {
        return Err(Error::bad_request(
            "`registration` is a role for API keys only (create one with: aim key create NAME --role registration); a user's role is viewer, member or admin",
        ));
    }
    Ok(())
}

/// A person.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserView {
    id: String,
    email: String,
    role: Role,
    /// `active` or `disabled`.
    status: String,
    created_at: String,
}

fn user_view(r: &sqlx::sqlite::SqliteRow) -> Result<UserView> {
    Ok(UserView {
        id: r.try_get(0)?,
        email: r.try_get(1)?,
        role: Role::parse(r.try_get::<&str, _>(2)?)?,
        status: r.try_get(3)?,
        created_at: iso(r.try_get(4)?),
    })
}

async fn find_user(state: &AppState, org: &str, ident: &str) -> Result<UserView> {
    let row = sqlx::query(
        "SELECT id, email, role, status, created_at FROM users WHERE organization_id = ? AND (id = ? OR email = ?)",
    )
    .bind(org)
    .bind(ident)
    .bind(ident.to_ascii_lowercase())
    .fetch_optional(&state.db.read)
    .await?
    .ok_or_else(|| Error::not_found(format!("no user '{ident}' in this organization")))?;
    user_view(&row)
}

/// People of the organization.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserList {
    users: Vec<UserView>,
}

/// List people (admin).
#[utoipa::path(get, path = "/api/v1/users", tag = "people",
    security(("api_key" = [])),
    responses((status = 200, description = "People", body = UserList),
              (status = 403, description = "Not an admin", body = ErrorBody)))]
pub(crate) async fn list_users(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<UserList>> {
    let person = state.person(&headers, Role::Admin).await?;
    let rows = sqlx::query(
        "SELECT id, email, role, status, created_at FROM users WHERE organization_id = ? ORDER BY email",
    )
    .bind(&person.org_id)
    .fetch_all(&state.db.read)
    .await?;
    Ok(Json(UserList {
        users: rows.iter().map(user_view).collect::<Result<_>>()?,
    }))
}

/// A person to add.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct NewUser {
    email: String,
    /// `admin`, `member` or `viewer`.
    role: Role,
}

/// Add a person (admin). People authenticate with API keys created for them.
#[utoipa::path(post, path = "/api/v1/users", tag = "people",
    request_body = NewUser,
    security(("api_key" = [])),
    responses((status = 201, description = "Added", body = UserView),
              (status = 400, description = "Invalid", body = ErrorBody),
              (status = 403, description = "Not an admin", body = ErrorBody),
              (status = 409, description = "E-mail taken", body = ErrorBody)))]
pub(crate) async fn create_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let person = state.person(&headers, Role::Admin).await?;
    let req: NewUser = parse_body(&body)?;
    person_role(req.role)?;
    let email = validate_email(&req.email)?;
    let now = state.now_ms();
    let id = new_id();
    let (uid, p, e2) = (id.clone(), person.clone(), email.clone());
    state
        .db
        .writer
        .write(move |conn| {
            Box::pin(async move {
                let inserted = sqlx::query(
                    "INSERT INTO users (id, organization_id, email, role, status, created_at) VALUES (?, ?, ?, ?, 'active', ?)",
                )
                .bind(&uid)
                .bind(&p.org_id)
                .bind(&e2)
                .bind(req.role.as_str())
                .bind(now)
                .execute(&mut *conn)
                .await;
                match inserted {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => {
                        return Err(Error::conflict(format!("{e2} is already a member")));
                    }
                    Err(e) => return Err(e.into()),
                }
                audit::record(
                    conn,
                    audit::Entry {
                        organization_id: &p.org_id,
                        at: now,
                        actor: &p.actor(),
                        action: "user.created",
                        target_type: "user",
                        target_id: Some(&uid),
                        details: serde_json::json!({ "email": e2, "role": req.role }),
                    },
                )
                .await
            })
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(find_user(&state, &person.org_id, &id).await?),
    )
        .into_response())
}

/// Changes to a person.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct UserChange {
    #[serde(default)]
    role: Option<Role>,
    /// `active` or `disabled` (a disabled person's keys stop working).
    #[serde(default)]
    status: Option<String>,
}

/// Change a person's role or status (admin). The last active admin cannot be demoted or
/// disabled.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "people",
    params(("id" = String, Path, description = "User id or e-mail")),
    request_body = UserChange,
    security(("api_key" = [])),
    responses((status = 200, description = "Changed", body = UserView),
              (status = 404, description = "No such user", body = ErrorBody),
              (status = 409, description = "Would leave no active admin", body = ErrorBody)))]
pub(crate) async fn update_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(ident): Path<String>,
    body: Bytes,
) -> Result<Json<UserView>> {
    let person = state.person(&headers, Role::Admin).await?;
    let change: UserChange = parse_body(&body)?;
    if let Some(s) = &change.status
        && s != "active"
        && s != "disabled"
    {
        return Err(Error::bad_request("status must be `active` or `disabled`"));
    }
    if let Some(r) = change.role {
        person_role(r)?;
    }
    let user = find_user(&state, &person.org_id, &ident).await?;
    let now = state.now_ms();
    let (uid, p) = (user.id.clone(), person.clone());
    state
        .db
        .writer
        .write(move |conn| {
            Box::pin(async move {
                let role = change.role.unwrap_or(user.role);
                let status = change.status.clone().unwrap_or(user.status.clone());
                let stays_admin = role == Role::Admin && status == "active";
                if user.role == Role::Admin && user.status == "active" && !stays_admin {
                    let (admins,): (i64,) = sqlx::query_as(
                        "SELECT COUNT(*) FROM users WHERE organization_id = ? AND role = 'admin' AND status = 'active'",
                    )
                    .bind(&p.org_id)
                    .fetch_one(&mut *conn)
                    .await?;
                    if admins <= 1 {
                        return Err(Error::conflict(
                            "this is the last active admin; make someone else admin first",
                        ));
                    }
                }
                sqlx::query("UPDATE users SET role = ?, status = ? WHERE id = ? AND organization_id = ?")
                    .bind(role.as_str())
                    .bind(&status)
                    .bind(&uid)
                    .bind(&p.org_id)
                    .execute(&mut *conn)
                    .await?;
                audit::record(
                    conn,
                    audit::Entry {
                        organization_id: &p.org_id,
                        at: now,
                        actor: &p.actor(),
                        action: "user.updated",
                        target_type: "user",
                        target_id: Some(&uid),
                        details: serde_json::json!({ "role": role, "status": status }),
                    },
                )
                .await
            })
        })
        .await?;
    Ok(Json(find_user(&state, &person.org_id, &ident).await?))
}

/// An API key (never the key itself).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ApiKeyView {
    id: String,
    name: String,
    role: Role,
    user_id: String,
    user_email: String,
    /// `aim_live_` plus four characters, to recognise the key.
    prefix: String,
    created_at: String,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
}

fn key_view(r: &sqlx::sqlite::SqliteRow) -> Result<ApiKeyView> {
    Ok(ApiKeyView {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        role: Role::parse(r.try_get::<&str, _>(2)?)?,
        user_id: r.try_get(3)?,
        user_email: r.try_get(4)?,
        prefix: r.try_get(5)?,
        created_at: iso(r.try_get(6)?),
        last_used_at: iso_opt(r.try_get(7)?),
        revoked_at: iso_opt(r.try_get(8)?),
    })
}

const KEY_COLUMNS: &str = "k.id, k.name, k.role, k.user_id, u.email, k.prefix, k.created_at, k.last_used_at, k.revoked_at";

/// API keys.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ApiKeyList {
    api_keys: Vec<ApiKeyView>,
}

/// List API keys: all of the organization for admins, one's own otherwise.
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "people",
    security(("api_key" = [])),
    responses((status = 200, description = "Keys (without secrets)", body = ApiKeyList)))]
pub(crate) async fn list_keys(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<ApiKeyList>> {
    let person = state.person(&headers, Role::Viewer).await?;
    let only_user = (person.role != Role::Admin).then_some(person.user_id.clone());
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {KEY_COLUMNS} FROM api_keys k JOIN users u ON u.id = k.user_id \
         WHERE k.organization_id = ? AND (? IS NULL OR k.user_id = ?) ORDER BY k.created_at"
    )))
    .bind(&person.org_id)
    .bind(&only_user)
    .bind(&only_user)
    .fetch_all(&state.db.read)
    .await?;
    Ok(Json(ApiKeyList {
        api_keys: rows.iter().map(key_view).collect::<Result<_>>()?,
    }))
}

/// A key to create.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct NewKey {
    /// A label.
    name: String,
    /// Role of the key (default: the owner's role; never above it, nor above the caller's).
    #[serde(default)]
    role: Option<Role>,
    /// Owner (default: the caller). Only admins create keys for others.
    #[serde(default)]
    user_id: Option<String>,
}

/// A new key: the only time the secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedKey {
    id: String,
    /// The key. Store it now; it cannot be retrieved again.
    api_key: String,
    name: String,
    role: Role,
    user_id: String,
    prefix: String,
    created_at: String,
}

/// Create an API key (any role, for oneself; admins for anyone in the organization).
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "people",
    request_body = NewKey,
    security(("api_key" = [])),
    responses((status = 201, description = "Created; the key is shown only in this answer", body = CreatedKey),
              (status = 400, description = "Invalid", body = ErrorBody),
              (status = 403, description = "Role too high, or another user's key without admin", body = ErrorBody),
              (status = 404, description = "No such user", body = ErrorBody)))]
pub(crate) async fn create_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let person = state.person(&headers, Role::Viewer).await?;
    let req: NewKey = parse_body(&body)?;
    let name = name_field(&req.name, "name", 100)?;
    let owner = match &req.user_id {
        Some(u) if *u != person.user_id => {
            person.require(Role::Admin)?;
            find_user(&state, &person.org_id, u).await?
        }
        _ => find_user(&state, &person.org_id, &person.user_id).await?,
    };
    let role = req.role.unwrap_or(owner.role.min(person.role));
    if role == Role::Registration && owner.role < Role::Member {
        return Err(Error::forbidden(format!(
            "a registration key registers agents, which needs an owner with role member or higher; {} has role {}",
            owner.email, owner.role
        )));
    }
    if role > owner.role {
        return Err(Error::forbidden(format!(
            "a key cannot have role {role}: its owner has role {}",
            owner.role
        )));
    }
    if role > person.role {
        return Err(Error::forbidden(format!(
            "you cannot create a key with role {role}: yours is {}",
            person.role
        )));
    }
    let key = ApiKeySecret::generate()?;
    let now = state.now_ms();
    let id = new_id();
    let (kid, p, hash, prefix, oid, n2) = (
        id.clone(),
        person.clone(),
        key.hash(),
        key.display_prefix(),
        owner.id.clone(),
        name.clone(),
    );
    state
        .db
        .writer
        .write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO api_keys (id, organization_id, user_id, name, role, key_hash, prefix, created_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&kid)
                .bind(&p.org_id)
                .bind(&oid)
                .bind(&n2)
                .bind(role.as_str())
                .bind(&hash)
                .bind(&prefix)
                .bind(now)
                .execute(&mut *conn)
                .await?;
                audit::record(
                    conn,
                    audit::Entry {
                        organization_id: &p.org_id,
                        at: now,
                        actor: &p.actor(),
                        action: "api_key.created",
                        target_type: "api_key",
                        target_id: Some(&kid),
                        details: serde_json::json!({ "name": n2, "role": role, "user_id": oid, "prefix": prefix }),
                    },
                )
                .await
            })
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            id,
            prefix: key.display_prefix(),
            api_key: key.expose().to_owned(),
            name,
            role,
            user_id: owner.id,
            created_at: iso(now),
        }),
    )
        .into_response())
}

/// Revoke an API key (its owner, or an admin). Revocation is immediate and permanent.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "people",
    params(("id" = String, Path, description = "Key id (UUID)")),
    security(("api_key" = [])),
    responses((status = 200, description = "Revoked", body = ApiKeyView),
              (status = 403, description = "Another user's key without admin", body = ErrorBody),
              (status = 404, description = "No such key", body = ErrorBody),
              (status = 409, description = "Already revoked", body = ErrorBody)))]
pub(crate) async fn revoke_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyView>> {
    let id = parse_uuid(&id, "key id")?;
    let person = state.person(&headers, Role::Viewer).await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {KEY_COLUMNS} FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.id = ? AND k.organization_id = ?"
    )))
    .bind(&id)
    .bind(&person.org_id)
    .fetch_optional(&state.db.read)
    .await?
    .ok_or_else(|| Error::not_found(format!("no API key {id} in this organization")))?;
    let key = key_view(&row)?;
    if key.user_id != person.user_id {
        person.require(Role::Admin)?;
    }
    if key.revoked_at.is_some() {
        return Err(Error::conflict("the key is already revoked"));
    }
    let now = state.now_ms();
    let (kid, p) = (id.clone(), person.clone());
    state
        .db
        .writer
        .write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(&kid)
                .execute(&mut *conn)
                .await?;
                audit::record(
                    conn,
                    audit::Entry {
                        organization_id: &p.org_id,
                        at: now,
                        actor: &p.actor(),
                        action: "api_key.revoked",
                        target_type: "api_key",
                        target_id: Some(&kid),
                        details: serde_json::json!({}),
                    },
                )
                .await
            })
        })
        .await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {KEY_COLUMNS} FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.id = ?"
    )))
    .bind(&id)
    .fetch_one(&state.db.read)
    .await?;
    Ok(Json(key_view(&row)?))
}
