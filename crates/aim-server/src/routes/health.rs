//! Liveness, readiness and metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::json_error;
use crate::state::AppState;

/// Health answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// `ok`.
    status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is alive", body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Ready {
    /// `ready`.
    status: &'static str,
    /// `ok` when reads and a durable write succeeded.
    database: &'static str,
}

/// Readiness: a read and a durable (committed) write both succeed.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Ready),
        (status = 503, description = "The database is unavailable", body = crate::routes::ErrorBody),
    ))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let read = sqlx::query_scalar::<_, i64>("SELECT 1")
        .fetch_one(&state.db.read)
        .await;
    let write = state
        .db
        .writer
        .write(|_conn| Box::pin(async { Ok(()) }))
        .await;
    match (read, write) {
        (Ok(_), Ok(())) => Json(Ready {
            status: "ready",
            database: "ok",
        })
        .into_response(),
        _ => json_error(StatusCode::SERVICE_UNAVAILABLE, "database unavailable"),
    }
}

/// Prometheus metrics in the text exposition format. On the API listener this needs
/// `Authorization: Bearer <metrics token>`; without a configured token it is not served here
/// (use the separate metrics listener).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        (status = 401, description = "Missing or wrong metrics token", body = crate::routes::ErrorBody),
        (status = 404, description = "Metrics are not served on this listener", body = crate::routes::ErrorBody),
    ))]
pub(crate) async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = &state.config.metrics_token else {
        return json_error(
            StatusCode::NOT_FOUND,
            "metrics are not served on this listener; start the server with --metrics-token or --metrics-addr",
        );
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Digests are compared, so the comparison's timing tells nothing about the token.
    let wanted = aim_crypto::hash::sha256(token.expose().as_bytes());
    let got = aim_crypto::hash::sha256(presented.trim().as_bytes());
    if wanted != got {
        return json_error(
            StatusCode::UNAUTHORIZED,
            "metrics need `Authorization: Bearer <metrics token>`",
        );
    }
    render(&state)
}

/// `/metrics` on the separate metrics listener (reachable only where that address is).
pub(crate) async fn metrics_listener(State(state): State<AppState>) -> Response {
    render(&state)
}

fn render(state: &AppState) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}
