//! Cross-cutting HTTP behaviour: metrics and access logs, `{"error": ...}` bodies for every
//! failure (including the framework's own 404/405/408/413), and panic containment.

use std::any::Any;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// Records request count and latency by route (the route template, never the raw path, so ids do
/// not explode the label set) and logs one line per request without headers or bodies.
pub(crate) async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    state
        .metrics
        .observe_request(&route, &method, status, elapsed.as_secs_f64());
    tracing::debug!(
        http.method = %method,
        http.route = %route,
        http.status = status,
        elapsed_us = elapsed.as_micros() as u64,
        "request"
    );
    response
}

/// Replaces any non-JSON error answer (from axum itself or a tower layer) by `{"error": ...}`.
pub(crate) async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            "request body is too large (limit: 1 MiB by default)".to_owned()
        }
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this endpoint".to_owned(),
        StatusCode::REQUEST_TIMEOUT => "request timed out".to_owned(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "expected a JSON body".to_owned(),
        s if s.is_server_error() => "internal error".to_owned(),
        s => s
            .canonical_reason()
            .unwrap_or("request failed")
            .to_ascii_lowercase(),
    };
    json_error(status, &message)
}

/// A `{"error": message}` answer.
pub(crate) fn json_error(status: StatusCode, message: &str) -> Response {
    let mut response =
        (status, axum::Json(serde_json::json!({ "error": message }))).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The answer for paths no route matches.
pub(crate) async fn fallback(req: Request) -> Response {
    json_error(
        StatusCode::NOT_FOUND,
        &format!("no such endpoint: {} {}", req.method(), req.uri().path()),
    )
}

/// Turns a handler panic into a logged 500 `{"error":"internal error"}`.
pub(crate) fn panic_response(err: Box<dyn Any + Send + 'static>) -> Response<Body> {
    let detail = if let Some(s) = err.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = err.downcast_ref::<&str>() {
        (*s).to_owned()
    } else {
        "unknown panic".to_owned()
    };
    tracing::error!(panic = %detail, "handler panicked");
    json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}
