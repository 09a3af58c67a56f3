//! The AIM request-signing scheme (`specs/aim-python-sdk.md` §3.4).
//!
//! The signed message is the UTF-8 of `METHOD \n PATH \n UNIX_SECONDS` followed by `\n BODY`
//! when the body is not empty, with no trailing newline. `PATH` is the request path without
//! query string (starting `/api/v1/...`); `BODY` is the raw body exactly as sent. Four headers
//! carry the result: `X-Agent-ID`, `X-Signature` (standard base64 of the Ed25519 signature),
//! `X-Timestamp` (decimal Unix seconds), `X-Public-Key` (standard base64 of the public key).
//! There is no nonce: servers must add replay protection on top of the freshness window.

use crate::identity::{AgentKeypair, AgentPublicKey, AgentSignature};
use crate::{CryptoError, Result};

/// Header carrying the agent id.
pub const HEADER_AGENT_ID: &str = "X-Agent-ID";
/// Header carrying the base64 signature.
pub const HEADER_SIGNATURE: &str = "X-Signature";
/// Header carrying the decimal Unix seconds.
pub const HEADER_TIMESTAMP: &str = "X-Timestamp";
/// Header carrying the base64 public key.
pub const HEADER_PUBLIC_KEY: &str = "X-Public-Key";
/// Default freshness window: ±300 seconds.
pub const DEFAULT_WINDOW_SECS: u64 = 300;

/// The bytes a request signature covers.
pub fn signing_message(method: &str, path: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(method.len() + path.len() + timestamp.len() + body.len() + 3);
    msg.extend(method.bytes().map(|b| b.to_ascii_uppercase()));
    msg.push(b'\n');
    msg.extend_from_slice(path.as_bytes());
    msg.push(b'\n');
    msg.extend_from_slice(timestamp.as_bytes());
    if !body.is_empty() {
        msg.push(b'\n');
        msg.extend_from_slice(body);
    }
    msg
}

/// The four signature headers of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `X-Agent-ID`.
    pub agent_id: String,
    /// `X-Signature`.
    pub signature: String,
    /// `X-Timestamp`.
    pub timestamp: String,
    /// `X-Public-Key`.
    pub public_key: String,
}

impl SignedHeaders {
    /// Header name/value pairs, ready to add to a request.
    pub fn pairs(&self) -> [(&'static str, &str); 4] {
        [
            (HEADER_AGENT_ID, &self.agent_id),
            (HEADER_SIGNATURE, &self.signature),
            (HEADER_TIMESTAMP, &self.timestamp),
            (HEADER_PUBLIC_KEY, &self.public_key),
        ]
    }
}

impl AgentKeypair {
    /// Signs a request: `unix_seconds` is the client's clock, `body` the exact bytes sent.
    pub fn sign_request(
        &self,
        agent_id: &str,
        method: &str,
        path: &str,
        unix_seconds: u64,
        body: &[u8],
    ) -> SignedHeaders {
        let timestamp = unix_seconds.to_string();
        let signature = self.sign(&signing_message(method, path, &timestamp, body));
        SignedHeaders {
            agent_id: agent_id.to_owned(),
            signature: signature.to_b64(),
            timestamp,
            public_key: self.public_key().to_b64(),
        }
    }
}

/// The parts of a received request that its signature covers, as raw header values.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Request path without the query string.
    pub path: &'a str,
    /// The raw `X-Timestamp` header.
    pub timestamp: &'a str,
    /// The raw `X-Signature` header.
    pub signature: &'a str,
    /// The raw body exactly as received.
    pub body: &'a [u8],
}

/// Checks request signatures and their freshness. Replay protection (remembering signatures
/// seen inside the window) is the caller's job: see [`RequestVerifier::verify`].
#[derive(Debug, Clone, Copy)]
pub struct RequestVerifier {
    window_secs: u64,
}

impl Default for RequestVerifier {
    fn default() -> Self {
        Self {
            window_secs: DEFAULT_WINDOW_SECS,
        }
    }
}

impl RequestVerifier {
    /// A verifier accepting timestamps within ±`window_secs` of the verifier's clock.
    pub fn with_window(window_secs: u64) -> Self {
        Self { window_secs }
    }

    /// The window in seconds.
    pub fn window_secs(&self) -> u64 {
        self.window_secs
    }

    /// Verifies one request against `key` (the key registered for the agent, never one taken
    /// from the request when one is registered); `now_unix` is the verifier's clock. Returns
    /// the request's Unix seconds.
    ///
    /// Freshness is checked before the signature so stale requests cost no curve arithmetic.
    pub fn verify(
        &self,
        key: &AgentPublicKey,
        request: &SignedRequest<'_>,
        now_unix: u64,
    ) -> Result<u64> {
        let ts = self.check_fresh(request.timestamp, now_unix)?;
        if request.signature.is_empty() {
            return Err(CryptoError::MissingHeader(HEADER_SIGNATURE));
        }
        let sig = AgentSignature::from_b64(request.signature)?;
        let message = signing_message(
            request.method,
            request.path,
            request.timestamp,
            request.body,
        );
        key.verify(&message, &sig)?;
        Ok(ts)
    }

    /// Parses `X-Timestamp` (1–12 ASCII digits) and checks it is inside the window.
    pub fn check_fresh(&self, timestamp: &str, now_unix: u64) -> Result<u64> {
        if timestamp.is_empty() {
            return Err(CryptoError::MissingHeader(HEADER_TIMESTAMP));
        }
        if timestamp.len() > 12 || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CryptoError::InvalidTimestamp);
        }
        let ts: u64 = timestamp
            .parse()
            .map_err(|_| CryptoError::InvalidTimestamp)?;
        let skew = ts as i64 - now_unix as i64;
        if skew.unsigned_abs() > self.window_secs {
            return Err(CryptoError::StaleTimestamp {
                skew_secs: skew,
                window_secs: self.window_secs,
            });
        }
        Ok(ts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_vectors::*;

    fn pair() -> AgentKeypair {
        AgentKeypair::from_seed(&SEED)
    }

    #[test]
    fn reproduces_sdk_header_signatures() {
        let cases = [
            ("POST", V1_PATH, V1_HTTP_BODY, V1_HEADER_SIGNATURE),
            (
                "POST",
                V1_RESULT_PATH,
                V1_RESULT_BODY,
                V1_RESULT_HEADER_SIGNATURE,
            ),
            ("GET", V3_PATH, "", V3_HEADER_SIGNATURE),
            ("POST", V4_PATH, V4_BODY, V4_HEADER_SIGNATURE),
        ];
        for (method, path, body, want) in cases {
            let headers =
                pair().sign_request(AGENT_ID, method, path, UNIX_SECONDS, body.as_bytes());
            assert_eq!(headers.signature, want, "{method} {path}");
            assert_eq!(headers.timestamp, "1761317061");
            assert_eq!(headers.public_key, PUBLIC_KEY_B64);
            let public = pair().public_key();
            let request = SignedRequest {
                method,
                path,
                timestamp: &headers.timestamp,
                signature: want,
                body: body.as_bytes(),
            };
            let ts = RequestVerifier::default()
                .verify(&public, &request, UNIX_SECONDS + 10)
                .unwrap();
            assert_eq!(ts, UNIX_SECONDS);
        }
    }

    #[test]
    fn message_layout() {
        assert_eq!(signing_message("get", "/p", "5", b""), b"GET\n/p\n5");
        assert_eq!(
            signing_message("POST", "/p", "5", b"{}"),
            b"POST\n/p\n5\n{}"
        );
    }

    #[test]
    fn rejects_tampering_and_stale_requests() {
        let public = pair().public_key();
        let v = RequestVerifier::default();
        let body = V1_HTTP_BODY.as_bytes();
        let ok = |timestamp: &str, signature: &str, body: &[u8], path: &str, now: u64| {
            let request = SignedRequest {
                method: "POST",
                path,
                timestamp,
                signature,
                body,
            };
            v.verify(&public, &request, now)
        };
        let ts = "1761317061";
        assert!(ok(ts, V1_HEADER_SIGNATURE, body, V1_PATH, UNIX_SECONDS).is_ok());
        // Window edges: exactly 300 s either way passes, 301 fails.
        assert!(ok(ts, V1_HEADER_SIGNATURE, body, V1_PATH, UNIX_SECONDS + 300).is_ok());
        assert!(ok(ts, V1_HEADER_SIGNATURE, body, V1_PATH, UNIX_SECONDS - 300).is_ok());
        assert_eq!(
            ok(ts, V1_HEADER_SIGNATURE, body, V1_PATH, UNIX_SECONDS + 301),
            Err(CryptoError::StaleTimestamp {
                skew_secs: -301,
                window_secs: 300
            })
        );
        assert!(matches!(
            ok(ts, V1_HEADER_SIGNATURE, body, V1_PATH, UNIX_SECONDS - 301),
            Err(CryptoError::StaleTimestamp { skew_secs: 301, .. })
        ));
        // A changed body byte, path, or timestamp text breaks the signature.
        let mut tampered = body.to_vec();
        tampered[20] ^= 1;
        assert_eq!(
            ok(ts, V1_HEADER_SIGNATURE, &tampered, V1_PATH, UNIX_SECONDS),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            ok(ts, V1_HEADER_SIGNATURE, body, "/api/v1/x", UNIX_SECONDS),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            ok(
                "1761317062",
                V1_HEADER_SIGNATURE,
                body,
                V1_PATH,
                UNIX_SECONDS
            ),
            Err(CryptoError::BadSignature)
        );
        // Malformed headers.
        assert_eq!(
            ok(
                "+1761317061",
                V1_HEADER_SIGNATURE,
                body,
                V1_PATH,
                UNIX_SECONDS
            ),
            Err(CryptoError::InvalidTimestamp)
        );
        assert_eq!(
            ok("", V1_HEADER_SIGNATURE, body, V1_PATH, UNIX_SECONDS),
            Err(CryptoError::MissingHeader(HEADER_TIMESTAMP))
        );
        assert_eq!(
            ok(ts, "", body, V1_PATH, UNIX_SECONDS),
            Err(CryptoError::MissingHeader(HEADER_SIGNATURE))
        );
        assert!(matches!(
            ok(ts, "not base64!", body, V1_PATH, UNIX_SECONDS),
            Err(CryptoError::InvalidBase64 { .. })
        ));
        assert_eq!(
            ok(
                "9999999999999",
                V1_HEADER_SIGNATURE,
                body,
                V1_PATH,
                UNIX_SECONDS
            ),
            Err(CryptoError::InvalidTimestamp)
        );
    }
}
