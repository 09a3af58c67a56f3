//! The one error type of this crate, and how it becomes an HTTP answer.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Everything that can go wrong in the server. Client mistakes map to 4xx answers whose
/// `{"error": "..."}` says what to change; internal failures map to 500/503 with a generic
/// message (the details go to the log, never to the client).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request is malformed or a field has a bad value (400).
    #[error("{0}")]
    BadRequest(String),
    /// Missing or invalid credentials (401).
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials that may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such resource in the caller's organization (404).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (409).
    #[error("{0}")]
    Conflict(String),
    /// The body is larger than the configured limit (413).
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The server cannot answer right now (503).
    #[error("{0}")]
    Unavailable(String),
    /// `init` was asked to create the first organization of a data directory that has one.
    #[error(
        "the data directory is already initialized (it has an organization); \
         create more API keys with the API instead"
    )]
    AlreadyInitialized,
    /// A configuration value is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A database operation failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the schema migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A file-system or socket operation failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A bug: something that should not happen did.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) | Error::AlreadyInitialized => StatusCode::CONFLICT,
            Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Database(e) if is_busy(e) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Config(_)
            | Error::Database(_)
            | Error::Migrate(_)
            | Error::Io(_)
            | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message a client sees: the error itself for client mistakes, a generic text for
    /// internal failures.
    pub fn public_message(&self) -> String {
        match self.status() {
            StatusCode::INTERNAL_SERVER_ERROR => "internal error".to_owned(),
            StatusCode::SERVICE_UNAVAILABLE => match self {
                Error::Unavailable(m) => m.clone(),
                _ => "the database is busy; retry shortly".to_owned(),
            },
            _ => self.to_string(),
        }
    }

    /// Shorthand for a 400.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Error::BadRequest(msg.into())
    }

    /// Shorthand for a 404.
    pub fn not_found(msg: impl Into<String>) -> Self {
        Error::NotFound(msg.into())
    }

    /// Shorthand for a 409.
    pub fn conflict(msg: impl Into<String>) -> Self {
        Error::Conflict(msg.into())
    }

    /// Shorthand for a 403.
    pub fn forbidden(msg: impl Into<String>) -> Self {
        Error::Forbidden(msg.into())
    }

    /// Shorthand for a 401.
    pub fn unauthorized(msg: impl Into<String>) -> Self {
        Error::Unauthorized(msg.into())
    }
}

fn is_busy(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            matches!(db.code().as_deref(), Some("5" | "6" | "261" | "517"))
        }
        sqlx::Error::PoolTimedOut => true,
        _ => false,
    }
}

/// True when `e` is a UNIQUE or PRIMARY KEY constraint violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db.is_unique_violation(),
        _ => false,
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, status = status.as_u16(), "request failed");
        }
        (
            status,
            Json(serde_json::json!({ "error": self.public_message() })),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_details_never_reach_clients() {
        let e = Error::Internal("secret path /x".into());
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.public_message(), "internal error");
        let e = Error::bad_request("field `name` is required");
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(e.public_message(), "field `name` is required");
        assert_eq!(
            Error::PayloadTooLarge { limit: 10 }.status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(Error::AlreadyInitialized.status(), StatusCode::CONFLICT);
    }
}
