//! The HTTP API: every route is registered through [`utoipa_axum`] so the OpenAPI document at
//! `/api/v1/openapi.json` is generated from the same code that serves the requests.

pub(crate) mod agents;
pub(crate) mod capabilities;
pub(crate) mod health;
pub(crate) mod mcp;
pub(crate) mod oversight;
pub(crate) mod people;
pub(crate) mod policies;
pub(crate) mod util;
pub(crate) mod verifications;
pub(crate) mod witness;

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
                 (and optionally X-Public-Key). v1 (the AIM SDK's): over \
                 `METHOD\\nPATH\\nTIMESTAMP[\\nBODY]`. v2 (`X-AIM-Signature-Version: 2`, \
                 `X-AIM-Nonce`): over `AIM-REQUEST-V2`, agent id, method, path with query, \
                 server origin, timestamp, nonce and body SHA-256, one per line.",
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
        (name = "sdk", description = "Endpoints the AIM agent SDKs call (agent signature or API key)"),
        (name = "agents", description = "Agent registration and lifecycle"),
        (name = "approvals", description = "Verifications seen by people: list, approve, deny"),
        (name = "capabilities", description = "Grants, declarations and capability requests"),
        (name = "policies", description = "Organization policies and action risk levels"),
        (name = "mcp", description = "MCP server registry, agent inventories, detections"),
        (name = "oversight", description = "Alerts, audit log, trust scores"),
        (name = "people", description = "Organization, users and API keys"),
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
        // Agents.
        .routes(routes!(agents::public_register))
        .routes(routes!(agents::create_agent, agents::list_agents))
        .routes(routes!(agents::get_agent))
        .routes(routes!(agents::sdk_get_agent))
        .routes(routes!(agents::suspend_agent))
        .routes(routes!(agents::reactivate_agent))
        .routes(routes!(agents::revoke_agent))
        .routes(routes!(agents::rotate_key))
        .routes(routes!(agents::set_labels))
        // Verifications.
        .routes(routes!(verifications::create_verification))
        .routes(routes!(verifications::sdk_get_verification))
        .routes(routes!(verifications::sdk_record_result))
        .routes(routes!(verifications::sdk_execution_status))
        .routes(routes!(verifications::list_verifications))
        .routes(routes!(verifications::get_verification))
        .routes(routes!(verifications::approve_verification))
        .routes(routes!(verifications::deny_verification))
        // Capabilities.
        .routes(routes!(
            capabilities::list_capabilities,
            capabilities::grant_capability
        ))
        .routes(routes!(capabilities::revoke_capability))
        .routes(routes!(capabilities::declare_capability))
        .routes(routes!(capabilities::register_capability))
        .routes(routes!(
            capabilities::request_capability,
            capabilities::agent_requests
        ))
        .routes(routes!(capabilities::list_requests))
        .routes(routes!(capabilities::approve_request))
        .routes(routes!(capabilities::reject_request))
        // Policies and risk levels.
        .routes(routes!(policies::list_policies, policies::create_policy))
        .routes(routes!(
            policies::get_policy,
            policies::update_policy,
            policies::delete_policy
        ))
        .routes(routes!(
            policies::list_risk_levels,
            policies::set_risk_level
        ))
        .routes(routes!(policies::delete_risk_level))
        // MCP and detections.
        .routes(routes!(mcp::create_mcp_server, mcp::list_mcp_servers))
        .routes(routes!(mcp::get_mcp_server, mcp::delete_mcp_server))
        .routes(routes!(mcp::sdk_attach_mcp))
        .routes(routes!(mcp::agent_mcp_servers, mcp::person_attach_mcp))
        .routes(routes!(mcp::detection_report))
        .routes(routes!(mcp::sdk_detection_report))
        .routes(routes!(mcp::detection_status))
        .routes(routes!(mcp::capability_report))
        .routes(routes!(mcp::latest_capability_report))
        // Oversight.
        .routes(routes!(oversight::list_alerts))
        .routes(routes!(oversight::acknowledge_alert))
        .routes(routes!(oversight::audit_log))
        .routes(routes!(oversight::trust_score))
        .routes(routes!(oversight::trust_history))
        .routes(routes!(witness::publish_head, witness::list_heads))
        .routes(routes!(
            witness::publish_named_head,
            witness::list_named_heads
        ))
        .routes(routes!(witness::declare_head_key))
        // People.
        .routes(routes!(people::current_organization))
        .routes(routes!(people::list_users, people::create_user))
        .routes(routes!(people::update_user))
        .routes(routes!(people::list_keys, people::create_key))
        .routes(routes!(people::revoke_key))
}

/// The OpenAPI document (3.1), generated from the routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut api) = api_router().split_for_parts();
    api.info.version = env!("CARGO_PKG_VERSION").to_owned();
    api
}

/// The separate metrics listener: `/metrics` only.
pub(crate) fn metrics_router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/metrics", get(health::metrics_listener))
        .fallback(http::fallback)
        .with_state(state)
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
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::consume_refused_signatures,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::ratelimit::limit,
        ))
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
