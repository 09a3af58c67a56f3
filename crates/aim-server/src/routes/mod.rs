//! The HTTP API: every route is registered through [`utoipa_axum`] so the OpenAPI document at
//! `/api/v1/openapi.json` is generated from the same code that serves the requests.

pub(crate) mod health;

use std::sync::Arc;

use axum::Json;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use serde::Serialize;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http;
use crate::state::AppState;

/// Every error answer: `{"error": "what went wrong and what to change"}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// The message.
    pub(crate) error: String,
}

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An `aim_live_…` API key (also accepted as `Authorization: Bearer aim_live_…`).",
            ))),
        );
        components.add_security_scheme(
            "agent_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Signature",
                "Ed25519 request signature: headers X-Agent-ID, X-Signature, X-Timestamp \
                 (and optionally X-Public-Key) over `METHOD\\nPATH\\nTIMESTAMP[\\nBODY]`.",
            ))),
        );
    }
}

/// The OpenAPI document's fixed parts; paths are added by the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "AIM identity server",
        description = "Agent registration, signed action verification, human approvals, \
                       capabilities, policies, trust scores, MCP inventory and audit. \
                       Every error answer is `{\"error\": \"...\"}`.",
    ),
    modifiers(&SecuritySchemes),
    paths(openapi_json),
    components(schemas(ErrorBody)),
    tags(
        (name = "operations", description = "Health, readiness, metrics, this document"),
    )
)]
struct ApiDoc;

/// The OpenAPI document (3.1).
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "This document", content_type = "application/json")))]
async fn openapi_json(
    axum::Extension(doc): axum::Extension<Arc<utoipa::openapi::OpenApi>>,
) -> Json<utoipa::openapi::OpenApi> {
    Json(doc.as_ref().clone())
}

/// Every documented route.
fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
}

/// The OpenAPI document (3.1), generated from the routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut api) = api_router().split_for_parts();
    api.info.version = env!("CARGO_PKG_VERSION").to_owned();
    api
}

/// Builds the application: routes, OpenAPI document, and the middleware stack.
pub(crate) fn router(state: AppState) -> axum::Router {
    let limit = state.config.max_body_bytes;
    let timeout = state.config.request_timeout;
    let (router, mut api) = api_router().split_for_parts();
    api.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let doc = Arc::new(api);
    router
        .route("/api/v1/openapi.json", get(openapi_json))
        .layer(axum::Extension(doc))
        .fallback(http::fallback)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(http::json_errors))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            http::track,
        ))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(CatchPanicLayer::custom(http::panic_response))
        .with_state(state)
}
