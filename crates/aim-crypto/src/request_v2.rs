//! Request signatures, version 2: the signature covers everything that identifies the request.
//!
//! The v1 scheme of the AIM SDK ([`crate::request`]) signs `METHOD\nPATH\nTIMESTAMP[\nBODY]`:
//! not the agent id, not the query string, not the server, and it has no nonce. Version 2 signs
//! the UTF-8 of these lines, joined by `\n`, with no trailing newline:
//!
//! ```text
//! AIM-REQUEST-V2
//! <agent id>                 X-Agent-ID
//! <METHOD>                   upper-cased
//! <path with query>          exactly as sent, e.g. /api/v1/agents?limit=5
//! <origin>                   scheme://host[:port] of the server, lower-case, default port dropped
//! <unix seconds>             X-Timestamp
//! <nonce>                    X-AIM-Nonce: 16 to 64 of [A-Za-z0-9_-]
//! <hex SHA-256 of the body>  of the raw body (the empty body too)
//! ```
//!
//! Headers: `X-AIM-Signature-Version: 2`, `X-Agent-ID`, `X-Signature` (standard base64),
//! `X-Timestamp`, `X-AIM-Nonce`, and optionally `X-Public-Key`. No field may contain a newline
//! or other control character, so the message has exactly one reading. A server refuses a
//! signature made for another origin and a nonce it has seen from the same agent.

use crate::identity::{AgentKeypair, AgentPublicKey, AgentSignature};
use crate::request::{HEADER_AGENT_ID, HEADER_PUBLIC_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP};
use crate::{CryptoError, RequestVerifier, Result};

/// Header naming the signature scheme; absent means version 1 (the SDK's).
pub const HEADER_SIGNATURE_VERSION: &str = "X-AIM-Signature-Version";
/// Header carrying the nonce of a v2 signature.
pub const HEADER_NONCE: &str = "X-AIM-Nonce";
/// First line of every v2 message (domain separation from v1 and from body signatures).
pub const DOMAIN: &str = "AIM-REQUEST-V2";

/// Which request-signature scheme a request uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureVersion {
    /// The AIM SDK's scheme (no version header).
    V1,
    /// [`RequestV2`].
    V2,
}

impl SignatureVersion {
    /// Reads `X-AIM-Signature-Version`: absent or `1` is v1, `2` is v2, anything else is refused.
    pub fn parse(header: Option<&str>) -> Result<Self> {
        match header.map(str::trim) {
            None | Some("1") => Ok(Self::V1),
            Some("2") => Ok(Self::V2),
            Some(_) => Err(CryptoError::UnsupportedSignatureVersion),
        }
    }
}

/// The parts of a request a v2 signature covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestV2<'a> {
    /// `X-Agent-ID`.
    pub agent_id: &'a str,
    /// HTTP method.
    pub method: &'a str,
    /// Path and query string exactly as sent (`/api/v1/x?a=1`).
    pub path_and_query: &'a str,
    /// The server's origin, as [`origin_of`] gives it.
    pub origin: &'a str,
    /// `X-Timestamp`: decimal Unix seconds.
    pub timestamp: &'a str,
    /// `X-AIM-Nonce`.
    pub nonce: &'a str,
    /// The raw body.
    pub body: &'a [u8],
}

fn invalid(what: &'static str, why: &'static str) -> CryptoError {
    CryptoError::InvalidRequestField { what, why }
}

fn no_controls(value: &str, what: &'static str) -> Result<()> {
    if value.is_empty() {
        return Err(invalid(what, "it is empty"));
    }
    if value.len() > 4096 {
        return Err(invalid(what, "it is longer than 4096 bytes"));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(what, "it contains a control character"));
    }
    Ok(())
}

/// Checks a nonce: 16 to 64 characters of `A-Z a-z 0-9 _ -`.
pub fn check_nonce(nonce: &str) -> Result<()> {
    if !(16..=64).contains(&nonce.len()) {
        return Err(invalid(HEADER_NONCE, "it must be 16 to 64 characters"));
    }
    if !nonce
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(invalid(HEADER_NONCE, "only A-Z a-z 0-9 _ - are allowed"));
    }
    Ok(())
}

/// A fresh random nonce (128 bits, 32 hex digits).
pub fn new_nonce() -> Result<String> {
    let bytes = crate::random::random_array::<16>()?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The origin of a URL: `scheme://host[:port]`, scheme and host lower-cased, the scheme's
/// default port dropped, path, query and fragment removed. Only `http` and `https`; no user
/// information.
pub fn origin_of(url: &str) -> Result<String> {
    let what = "origin";
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| invalid(what, "it must start with http:// or https://"))?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return Err(invalid(what, "the scheme must be http or https")),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err(invalid(what, "the host is missing"));
    }
    if authority.contains('@') {
        return Err(invalid(what, "user information is not allowed"));
    }
    no_controls(authority, what)?;
    if authority.chars().any(char::is_whitespace) {
        return Err(invalid(what, "it contains white space"));
    }
    let authority = authority.to_ascii_lowercase();
    let authority = authority.strip_suffix(default_port).unwrap_or(&authority);
    Ok(format!("{scheme}://{authority}"))
}

/// The bytes a v2 signature covers; refuses fields that would make the message ambiguous.
pub fn signing_message_v2(r: &RequestV2<'_>) -> Result<Vec<u8>> {
    no_controls(r.agent_id, HEADER_AGENT_ID)?;
    if r.method.is_empty()
        || r.method.len() > 16
        || !r.method.bytes().all(|b| b.is_ascii_alphabetic())
    {
        return Err(invalid("method", "it must be 1 to 16 ASCII letters"));
    }
    no_controls(r.path_and_query, "path")?;
    if !r.path_and_query.starts_with('/') || r.path_and_query.contains(' ') {
        return Err(invalid(
            "path",
            "it must start with / and contain no spaces",
        ));
    }
    if origin_of(r.origin)? != r.origin {
        return Err(invalid("origin", "it must be in the form origin_of gives"));
    }
    if r.timestamp.is_empty()
        || r.timestamp.len() > 12
        || !r.timestamp.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(CryptoError::InvalidTimestamp);
    }
    check_nonce(r.nonce)?;
    let digest = crate::hash::sha256(r.body);
    let digest_hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let method = r.method.to_ascii_uppercase();
    let lines = [
        DOMAIN,
        r.agent_id,
        &method,
        r.path_and_query,
        r.origin,
        r.timestamp,
        r.nonce,
        &digest_hex,
    ];
    Ok(lines.join("\n").into_bytes())
}

/// The headers of one v2-signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeadersV2 {
    /// `X-Agent-ID`.
    pub agent_id: String,
    /// `X-Signature`.
    pub signature: String,
    /// `X-Timestamp`.
    pub timestamp: String,
    /// `X-AIM-Nonce`.
    pub nonce: String,
    /// `X-Public-Key`.
    pub public_key: String,
}

impl SignedHeadersV2 {
    /// Header name/value pairs, ready to add to a request (the version header included).
    pub fn pairs(&self) -> [(&'static str, &str); 6] {
        [
            (HEADER_SIGNATURE_VERSION, "2"),
            (HEADER_AGENT_ID, &self.agent_id),
            (HEADER_SIGNATURE, &self.signature),
            (HEADER_TIMESTAMP, &self.timestamp),
            (HEADER_NONCE, &self.nonce),
            (HEADER_PUBLIC_KEY, &self.public_key),
        ]
    }
}

impl AgentKeypair {
    /// Signs a request with the v2 scheme. `request.timestamp` and `request.nonce` are the
    /// caller's (see [`new_nonce`]); `request.origin` must be in [`origin_of`] form.
    pub fn sign_request_v2(&self, request: &RequestV2<'_>) -> Result<SignedHeadersV2> {
        let message = signing_message_v2(request)?;
        Ok(SignedHeadersV2 {
            agent_id: request.agent_id.to_owned(),
            signature: self.sign(&message).to_b64(),
            timestamp: request.timestamp.to_owned(),
            nonce: request.nonce.to_owned(),
            public_key: self.public_key().to_b64(),
        })
    }
}

impl RequestVerifier {
    /// Verifies a v2 signature made by `key` over `request`, whose origin must be
    /// `expected_origin` (this server's). Freshness and the field checks come before any curve
    /// arithmetic. Returns the request's Unix seconds. Refusing a repeated nonce is the
    /// caller's job.
    pub fn verify_v2(
        &self,
        key: &AgentPublicKey,
        request: &RequestV2<'_>,
        signature: &str,
        expected_origin: &str,
        now_unix: u64,
    ) -> Result<u64> {
        let ts = self.check_fresh(request.timestamp, now_unix)?;
        if request.origin != expected_origin {
            return Err(CryptoError::WrongOrigin {
                signed: request.origin.chars().take(200).collect(),
                expected: expected_origin.to_owned(),
            });
        }
        if signature.is_empty() {
            return Err(CryptoError::MissingHeader(HEADER_SIGNATURE));
        }
        let message = signing_message_v2(request)?;
        let sig = AgentSignature::from_b64(signature)?;
        key.verify(&message, &sig)?;
        Ok(ts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_vectors::{AGENT_ID, SEED, UNIX_SECONDS};

    const NONCE: &str = "000102030405060708090a0b0c0d0e0f";
    const ORIGIN: &str = "https://aim.example.com";
    /// The message of [`vector`], spelled out.
    const VECTOR_MESSAGE: &str = "AIM-REQUEST-V2\n550e8400-e29b-41d4-a716-446655440000\nPOST\n/api/v1/sdk-api/verifications?x=1\nhttps://aim.example.com\n1761317061\n000102030405060708090a0b0c0d0e0f\n44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    /// Its Ed25519 signature with the key of [`SEED`], computed independently with Python's
    /// `cryptography` package.
    const VECTOR_SIGNATURE: &str =
        "i1rUFkVJ4k5jEj3RyzAQTD21cxlBllhs4zHlsQn7wuF7ukcGfcu/OcKXUZOWo9mdwRaSPiE8qpZXcdtFxxSTAQ==";

    fn vector(body: &[u8]) -> RequestV2<'_> {
        RequestV2 {
            agent_id: AGENT_ID,
            method: "post",
            path_and_query: "/api/v1/sdk-api/verifications?x=1",
            origin: ORIGIN,
            timestamp: "1761317061",
            nonce: NONCE,
            body,
        }
    }

    #[test]
    fn test_vector() {
        let req = vector(b"{}");
        let message = signing_message_v2(&req).unwrap();
        assert_eq!(String::from_utf8(message).unwrap(), VECTOR_MESSAGE);
        let keys = AgentKeypair::from_seed(&SEED);
        let signed = keys.sign_request_v2(&req).unwrap();
        assert_eq!(signed.signature, VECTOR_SIGNATURE);
        let ts = RequestVerifier::default()
            .verify_v2(
                &keys.public_key(),
                &req,
                VECTOR_SIGNATURE,
                ORIGIN,
                UNIX_SECONDS,
            )
            .unwrap();
        assert_eq!(ts, UNIX_SECONDS);
        assert_eq!(signed.pairs()[0], ("X-AIM-Signature-Version", "2"));
    }

    #[test]
    fn origins_are_normalised() {
        assert_eq!(
            origin_of("HTTPS://Aim.Example.com:443/api?x").unwrap(),
            ORIGIN
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(origin_of("http://h:80/").unwrap(), "http://h");
        assert!(origin_of("ftp://h").is_err());
        assert!(origin_of("https://u@h").is_err());
        assert!(origin_of("https:///x").is_err());
        assert!(origin_of("h:80").is_err());
    }

    #[test]
    fn ambiguous_fields_are_refused() {
        let keys = AgentKeypair::from_seed(&SEED);
        let mut r = vector(b"");
        r.agent_id = "a\nPOST";
        assert!(keys.sign_request_v2(&r).is_err());
        let mut r = vector(b"");
        r.nonce = "short";
        assert!(keys.sign_request_v2(&r).is_err());
        let mut r = vector(b"");
        r.nonce = "0123456789abcdef!";
        assert!(keys.sign_request_v2(&r).is_err());
        let mut r = vector(b"");
        r.path_and_query = "api/v1";
        assert!(keys.sign_request_v2(&r).is_err());
        let mut r = vector(b"");
        r.origin = "https://AIM.example.com";
        assert!(keys.sign_request_v2(&r).is_err());
        assert_eq!(SignatureVersion::parse(None).unwrap(), SignatureVersion::V1);
        assert_eq!(
            SignatureVersion::parse(Some("2")).unwrap(),
            SignatureVersion::V2
        );
        assert!(SignatureVersion::parse(Some("3")).is_err());
        assert_eq!(new_nonce().unwrap().len(), 32);
        assert!(check_nonce(&new_nonce().unwrap()).is_ok());
    }

    #[test]
    fn other_origin_and_stale_are_refused_before_curve_work() {
        let keys = AgentKeypair::from_seed(&SEED);
        let req = vector(b"{}");
        let v = RequestVerifier::default();
        assert!(matches!(
            v.verify_v2(
                &keys.public_key(),
                &req,
                "garbage",
                "https://other.example",
                UNIX_SECONDS
            ),
            Err(CryptoError::WrongOrigin { .. })
        ));
        assert!(matches!(
            v.verify_v2(
                &keys.public_key(),
                &req,
                "garbage",
                ORIGIN,
                UNIX_SECONDS + 301
            ),
            Err(CryptoError::StaleTimestamp { .. })
        ));
    }
}
