//! The one error type of this crate.

use std::time::Duration;

/// What went wrong at the transport level (no usable HTTP response).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportKind {
    /// The TCP/TLS connection could not be made (refused, unreachable, DNS, TLS handshake).
    Connect,
    /// The server did not answer within the request timeout.
    Timeout,
    /// The connection broke while sending the request or reading the answer.
    Io,
}

/// Everything that can go wrong in `aim-client`. Messages say what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server denied the action (policy, capability, trust or a person). The action did not run.
    #[error("action denied by the AIM server: {reason}")]
    Denied {
        /// The server's reason (`denial_reason`).
        reason: String,
        /// The verification id, when the server assigned one.
        verification_id: Option<String>,
    },
    /// A pending verification expired on the server before anyone approved it.
    #[error("verification {verification_id} expired before it was approved")]
    Expired {
        /// The verification id.
        verification_id: String,
    },
    /// The server rejected the agent's or administrator's credentials (HTTP 401, or 403 for
    /// something other than an action denial).
    #[error("authentication failed (HTTP {status}): {message}")]
    Authentication {
        /// HTTP status (401 or 403).
        status: u16,
        /// The server's error message.
        message: String,
    },
    /// The caller's deadline passed while the verification was still pending.
    #[error("verification {verification_id} still pending after {waited:?} (caller's deadline)")]
    Timeout {
        /// The verification id.
        verification_id: String,
        /// How long the client waited.
        waited: Duration,
    },
    /// No usable answer from the server, after the retries the policy allows.
    #[error("{}", transport_message(.kind, .url, .message))]
    Transport {
        /// What failed.
        kind: TransportKind,
        /// The URL requested.
        url: String,
        /// The underlying error.
        message: String,
    },
    /// The server answered with an error status this client does not map to another variant
    /// (4xx other than 401/403, or 5xx after the retries ran out).
    #[error("AIM server answered HTTP {status} for {url}: {message}")]
    Http {
        /// HTTP status.
        status: u16,
        /// The URL requested.
        url: String,
        /// The server's error message (`error` field, or the start of the body).
        message: String,
    },
    /// The server answered 2xx with a body this client does not understand.
    #[error("unexpected response from {url}: {message}")]
    InvalidResponse {
        /// The URL requested.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// The client is misconfigured (bad URL, missing API key, invalid agent name, no default
    /// client installed, ...).
    #[error("configuration error: {0}")]
    Configuration(String),
    /// The local credential store could not be read or written, or a stored key could not be
    /// decrypted.
    #[error("credential store: {0}")]
    Credentials(String),
    /// A cryptographic operation failed (bad stored key, randomness failure).
    #[error("cryptography: {0}")]
    Crypto(#[from] aim_crypto::CryptoError),
}

fn transport_message(kind: &TransportKind, url: &str, message: &str) -> String {
    let origin = url
        .find("/api/")
        .map_or(url, |i| &url[..i])
        .trim_end_matches('/');
    match kind {
        TransportKind::Connect => {
            format!("AIM server unreachable at {origin}: {message}; is `aim server` running?")
        }
        TransportKind::Timeout => {
            format!("AIM server at {origin} did not answer in time ({url}): {message}")
        }
        TransportKind::Io => format!("connection to the AIM server at {origin} broke: {message}"),
    }
}

impl Error {
    /// True when the server could not be reached at all (the only case degraded mode covers).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Error::Transport { .. })
    }

    /// True for an action denial by the server.
    pub fn is_denied(&self) -> bool {
        matches!(self, Error::Denied { .. })
    }
}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        let kind = match &e {
            Error::Denied { .. } | Error::Authentication { .. } => {
                std::io::ErrorKind::PermissionDenied
            }
            Error::Timeout { .. } => std::io::ErrorKind::TimedOut,
            Error::Transport { .. } => std::io::ErrorKind::ConnectionRefused,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_message_names_the_server_and_the_fix() {
        let e = Error::Transport {
            kind: TransportKind::Connect,
            url: "http://127.0.0.1:9/api/v1/sdk-api/verifications".into(),
            message: "connection refused".into(),
        };
        assert_eq!(
            e.to_string(),
            "AIM server unreachable at http://127.0.0.1:9: connection refused; is `aim server` running?"
        );
        assert!(e.is_unreachable());
        assert!(!e.is_denied());
        let io: std::io::Error = e.into();
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
    }

    #[test]
    fn denial_carries_the_reason() {
        let e = Error::Denied {
            reason: "capability db:write not granted".into(),
            verification_id: None,
        };
        assert!(e.is_denied());
        assert!(e.to_string().ends_with("capability db:write not granted"));
        let io: std::io::Error = e.into();
        assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied);
    }
}
