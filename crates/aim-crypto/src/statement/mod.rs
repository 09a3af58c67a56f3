//! Signed action statements (`action-request-v1`): an agent's Ed25519 signature over the DSSE v1
//! PAE of a JSON payload naming the action, as upstream AIM's `POST /sdk-api/verifications`
//! takes them in the body form `{signedBytes, signature, publicKey}`.
//!
//! * `signedBytes` = `"DSSEv1" SP len(type) SP type SP len(body) SP body` ([`pae`]) with type
//!   [`PAYLOAD_TYPE`]; the server verifies exactly these bytes, never a rebuilt copy.
//! * body: one JSON object with `action_type`, `agent_id`, `resource` (string or `null`),
//!   `timestamp` (RFC 3339 UTC, `Z`), `nonce` (16 bytes), and optional `context` (an object),
//!   `delegation_digests` (non-empty array of SHA-256 digests), `risk_level` (a string); no
//!   other member, no repeated name at any depth, at most [`MAX_DEPTH`] levels.
//! * encodings: `signedBytes`, `signature`, `publicKey`, the nonce and the digests are all
//!   **unpadded base64url** (RFC 4648 §5), decoded strictly (no `=`, no line breaks, no
//!   non-zero trailing bits). That is upstream's server's encoding (its
//!   `ActionRequestNonceBytes` is "sent as 22 characters of unpadded base64url"); aim-sdk
//!   2.0.3 does not send statements at all. The nonce is base64url rather than hex because it
//!   is upstream's wire form and the shortest unambiguous text for 16 bytes.
//!
//! Parsing ([`StatementBody::parse`]) refuses every malformed statement with a typed
//! [`Reason`] before any key is looked up; [`UnverifiedStatement::verify`] then checks the
//! presented key against the agent's registered key and the signature. The timestamp window
//! ([`StatementTime::check_window`]) and nonce reuse are the server's to check, after
//! verification, in that order.
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use aim_crypto::AgentKeypair;
//! use aim_crypto::statement::{ActionStatement, StatementBody, StatementTime};
//!
//! let agent = AgentKeypair::generate()?;
//! let ts = StatementTime::from_unix(1_761_317_061, 0).expect("in range");
//! let mut stmt = ActionStatement::new("db:read", "550e8400-e29b-41d4-a716-446655440000",
//!     Some("orders".into()), ts, [7; 16]);
//! stmt.risk_level = Some("low".into());
//! let wire = stmt.sign(&agent).expect("a valid statement").to_json();
//!
//! // Server side: parse untrusted bytes, look up the agent, verify, then check freshness.
//! let unverified = StatementBody::parse(wire.as_bytes()).expect("well-formed");
//! assert_eq!(unverified.agent_id(), "550e8400-e29b-41d4-a716-446655440000");
//! let verified = unverified.verify(&agent.public_key()).expect("signed by the agent");
//! verified.statement().timestamp
//!     .check_window(UNIX_EPOCH + Duration::from_secs(1_761_317_080))
//!     .expect("within 30 s");
//! # Ok::<(), aim_crypto::CryptoError>(())
//! ```

mod json;
mod pae;
mod payload;
mod time;

use std::fmt;

use crate::canonical::{self, Value};
use crate::hybrid::{HybridPublicKey, MlDsaSignature};
use crate::identity::{AgentKeypair, AgentPublicKey, AgentSignature};
use crate::{b64, random};

pub use pae::{pae, split_pae};
pub use payload::parse_signed_bytes;
pub use time::{StatementTime, check_timestamp_window};

/// The DSSE payload type of an action statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.opena2a.action-request.v1+json";
/// The accepted distance between a statement's timestamp and the verifier's clock, each way.
pub const WINDOW_SECS: u64 = 30;
/// Decoded nonce length.
pub const NONCE_LEN: usize = 16;
/// Ceiling on decoded `signedBytes`.
pub const MAX_SIGNED_BYTES: usize = 65_536;
/// The same ceiling on the encoded text, `ceil(4 · 65536 / 3)` base64url characters; checked
/// before decoding.
pub const MAX_SIGNED_BYTES_CHARS: usize = (4 * MAX_SIGNED_BYTES).div_ceil(3);
/// Ceiling on a whole request body: the encoded `signedBytes` plus 1 KiB for the rest.
pub const MAX_BODY_BYTES: usize = MAX_SIGNED_BYTES_CHARS + 1024;
/// Deepest nesting of the payload (objects and arrays; the payload object is level 1).
pub const MAX_DEPTH: usize = 32;

/// The payload members, in the order their forms are checked.
const MEMBERS: [&str; 8] = [
    "action_type",
    "agent_id",
    "resource",
    "context",
    "timestamp",
    "nonce",
    "delegation_digests",
    "risk_level",
];
/// The members a payload must have, in the order their absence is reported.
const REQUIRED: [&str; 5] = ["action_type", "agent_id", "resource", "timestamp", "nonce"];
/// The request body's members.
const BODY_MEMBERS: [&str; 3] = ["signedBytes", "signature", "publicKey"];

/// Why a statement was refused. [`Reason::code`] is the camelCase `reasonCode` for answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// The body or `signedBytes` is over [`MAX_BODY_BYTES`] / [`MAX_SIGNED_BYTES`], or the
    /// payload nests deeper than [`MAX_DEPTH`]; [`StatementError::limit`] says which.
    LimitExceeded,
    /// The body is not one JSON object with exactly the string members `signedBytes`,
    /// `signature` and `publicKey`.
    MalformedBody,
    /// A body member is not strict unpadded base64url, or decodes to the wrong length.
    BadEncoding,
    /// `signedBytes` is not a DSSE v1 PAE: prefix, or a length that lies or is not canonical.
    MalformedEnvelope,
    /// A well-formed PAE of another payload type.
    PayloadTypeMismatch,
    /// The payload is not exactly one JSON object in valid UTF-8 with no bytes around it.
    MalformedPayload,
    /// The body or the payload repeats a member name (in any object, at any depth).
    DuplicateKey,
    /// The payload has a member `action-request-v1` does not define.
    UnknownMember,
    /// The payload lacks `action_type`, `agent_id`, `resource` or `timestamp`.
    MissingMember,
    /// The payload has no `nonce`.
    NonceRequired,
    /// The `nonce` is not 16 bytes of strict unpadded base64url.
    NonceInvalid,
    /// A member is not in the form `action-request-v1` requires.
    InvalidMember,
    /// The presented `publicKey` is not the agent's registered key.
    KeyNotRecognized,
    /// The signature does not verify over `signedBytes` under the registered key.
    SignatureInvalid,
    /// The timestamp is more than 30 s from the verifier's clock.
    TimestampOutsideWindow,
    /// The agent is in hybrid mode and the statement carries no ML-DSA-65 signature (for the
    /// server to use; upstream answers this for every statement of a hybrid agent).
    HybridSignatureRequired,
}

impl Reason {
    /// The camelCase `reasonCode`. Where upstream's server has a code for the same refusal,
    /// it is that code (`limitExceeded`, `nonceRequired`, `agentKeyNotRecognized`,
    /// `signatureInvalid`, `timestampOutsideWindow`); the rest are finer than upstream's
    /// catch-all `invalidRequest` (see [`Reason::upstream_code`]).
    pub fn code(self) -> &'static str {
        match self {
            Reason::LimitExceeded => "limitExceeded",
            Reason::MalformedBody => "malformedBody",
            Reason::BadEncoding => "badEncoding",
            Reason::MalformedEnvelope => "malformedEnvelope",
            Reason::PayloadTypeMismatch => "payloadTypeMismatch",
            Reason::MalformedPayload => "malformedPayload",
            Reason::DuplicateKey => "duplicateKey",
            Reason::UnknownMember => "unknownMember",
            Reason::MissingMember => "missingMember",
            Reason::NonceRequired => "nonceRequired",
            Reason::NonceInvalid => "nonceInvalid",
            Reason::InvalidMember => "invalidMember",
            Reason::KeyNotRecognized => "agentKeyNotRecognized",
            Reason::SignatureInvalid => "signatureInvalid",
            Reason::TimestampOutsideWindow => "timestampOutsideWindow",
            Reason::HybridSignatureRequired => "hybridSignatureRequired",
        }
    }

    /// The code upstream's server sends for this refusal: shape errors are all
    /// `invalidRequest` there.
    pub fn upstream_code(self) -> &'static str {
        match self {
            Reason::LimitExceeded
            | Reason::NonceRequired
            | Reason::KeyNotRecognized
            | Reason::SignatureInvalid
            | Reason::TimestampOutsideWindow
            | Reason::HybridSignatureRequired => self.code(),
            _ => "invalidRequest",
        }
    }

    /// The HTTP status upstream answers with: 422 for a limit, 401 for key, signature and
    /// window refusals, 400 for every shape error.
    pub fn http_status(self) -> u16 {
        match self {
            Reason::LimitExceeded => 422,
            Reason::KeyNotRecognized
            | Reason::SignatureInvalid
            | Reason::TimestampOutsideWindow => 401,
            _ => 400,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A refused statement: the [`Reason`] and a fixed ASCII line saying what was wrong. The line
/// never quotes the input (only member names this format defines).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct StatementError {
    reason: Reason,
    detail: &'static str,
    limit: Option<&'static str>,
}

impl StatementError {
    fn new(reason: Reason, detail: &'static str) -> Self {
        Self {
            reason,
            detail,
            limit: None,
        }
    }

    /// A [`Reason::LimitExceeded`] refusal naming the limit (upstream's names).
    fn over_limit(limit: &'static str, detail: &'static str) -> Self {
        Self {
            reason: Reason::LimitExceeded,
            detail,
            limit: Some(limit),
        }
    }

    /// Why.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// The `reasonCode` ([`Reason::code`]).
    pub fn code(&self) -> &'static str {
        self.reason.code()
    }

    /// What was wrong, in words (fixed text).
    pub fn detail(&self) -> &'static str {
        self.detail
    }

    /// For [`Reason::LimitExceeded`]: `statementBytes` or `statementDepth`, upstream's names.
    pub fn limit(&self) -> Option<&'static str> {
        self.limit
    }
}

/// The size refusal, the same for the body, the encoded and the decoded `signedBytes`.
fn too_many_bytes() -> StatementError {
    StatementError::over_limit(
        "statementBytes",
        "signedBytes is longer than 65536 bytes (87382 base64url characters)",
    )
}

fn refuse<T>(reason: Reason, detail: &'static str) -> Result<T, StatementError> {
    Err(StatementError::new(reason, detail))
}

/// The content of an action statement. Built by a client with [`ActionStatement::new`] (then
/// set the optional fields), or obtained from a verified statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionStatement {
    /// The action (capability) asked for; non-empty.
    pub action_type: String,
    /// The agent's id: a hyphenated UUID, 36 characters, as signed.
    pub agent_id: String,
    /// The resource acted on (`null` on the wire when `None`).
    pub resource: Option<String>,
    /// Free-form context: always a JSON object when present (numbers keep their digits).
    pub context: Option<Value>,
    /// When the agent signed.
    pub timestamp: StatementTime,
    /// A fresh random nonce; the server accepts each (agent, nonce) once.
    pub nonce: [u8; NONCE_LEN],
    /// SHA-256 digests of the delegation hops, outermost first; omitted when empty.
    pub delegation_digests: Vec<[u8; 32]>,
    /// The risk level the agent states.
    pub risk_level: Option<String>,
}

impl ActionStatement {
    /// A statement with the required members and no optional ones.
    pub fn new(
        action_type: impl Into<String>,
        agent_id: impl Into<String>,
        resource: Option<String>,
        timestamp: StatementTime,
        nonce: [u8; NONCE_LEN],
    ) -> Self {
        Self {
            action_type: action_type.into(),
            agent_id: agent_id.into(),
            resource,
            context: None,
            timestamp,
            nonce,
            delegation_digests: Vec::new(),
            risk_level: None,
        }
    }

    /// A fresh 16-byte nonce from the operating system's CSPRNG.
    pub fn random_nonce() -> crate::Result<[u8; NONCE_LEN]> {
        random::random_array::<NONCE_LEN>()
    }

    /// The payload: compact JSON, members in the order of `MEMBERS`; `context` as canonical
    /// JSON (sorted keys).
    pub fn to_payload_json(&self) -> String {
        let mut out = String::from("{");
        push_member(&mut out, "action_type", &json_string(&self.action_type));
        push_member(&mut out, "agent_id", &json_string(&self.agent_id));
        let resource = self.resource.as_deref().map_or("null".into(), json_string);
        push_member(&mut out, "resource", &resource);
        if let Some(context) = &self.context {
            push_member(&mut out, "context", &context.to_python_json());
        }
        push_member(
            &mut out,
            "timestamp",
            &json_string(&self.timestamp.to_string()),
        );
        push_member(
            &mut out,
            "nonce",
            &json_string(&b64::encode_url(&self.nonce)),
        );
        if !self.delegation_digests.is_empty() {
            let items: Vec<String> = self
                .delegation_digests
                .iter()
                .map(|d| json_string(&b64::encode_url(d)))
                .collect();
            push_member(
                &mut out,
                "delegation_digests",
                &format!("[{}]", items.join(",")),
            );
        }
        if let Some(risk) = &self.risk_level {
            push_member(&mut out, "risk_level", &json_string(risk));
        }
        out.push('}');
        out
    }

    /// The bytes to sign: the PAE of [`PAYLOAD_TYPE`] and [`Self::to_payload_json`].
    pub fn signed_bytes(&self) -> Vec<u8> {
        pae(PAYLOAD_TYPE, self.to_payload_json().as_bytes())
    }

    /// Signs the statement with the agent's key. Fails closed: the bytes are first parsed as a
    /// server would parse them, so a statement the server would refuse (empty `action_type`,
    /// an `agent_id` that is not a UUID, a `context` nested deeper than 32 levels, more than
    /// 64 KiB…) is never signed.
    pub fn sign(&self, agent: &AgentKeypair) -> Result<StatementBody, StatementError> {
        let signed_bytes = self.signed_bytes();
        parse_signed_bytes(&signed_bytes)?;
        Ok(StatementBody {
            signature: agent.sign(&signed_bytes),
            public_key: *agent.public_key().as_bytes(),
            signed_bytes,
        })
    }
}

fn push_member(out: &mut String, name: &str, value: &str) {
    if out.len() > 1 {
        out.push(',');
    }
    out.push_str(&json_string(name));
    out.push(':');
    out.push_str(value);
}

/// A JSON string literal: `"` and `\` escaped, control characters as `\u00XX`, the rest as is.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The wire triple `{signedBytes, signature, publicKey}`, decoded but not yet verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementBody {
    /// The signed bytes (a DSSE v1 PAE), exactly as received.
    pub signed_bytes: Vec<u8>,
    /// The Ed25519 signature over `signed_bytes`.
    pub signature: AgentSignature,
    /// The public key the sender presented (compared with the registered key on verify).
    pub public_key: [u8; 32],
}

impl StatementBody {
    /// The request body: `{"signedBytes":…,"signature":…,"publicKey":…}`, each unpadded
    /// base64url.
    pub fn to_json(&self) -> String {
        format!(
            r#"{{"signedBytes":"{}","signature":"{}","publicKey":"{}"}}"#,
            b64::encode_url(&self.signed_bytes),
            b64::encode_url(&self.signature.to_bytes()),
            b64::encode_url(&self.public_key)
        )
    }

    /// Dispatch for `POST /sdk-api/verifications`: true when `body` is one JSON object with a
    /// top-level member `signedBytes` (then it is a statement and must go through
    /// [`Self::parse`], whatever else is wrong with it); false for the original body form.
    pub fn is_statement(body: &[u8]) -> bool {
        std::str::from_utf8(body)
            .ok()
            .and_then(|text| json::scan_object(text, true))
            .is_some_and(|scan| scan.top_names.iter().any(|n| n == "signedBytes"))
    }

    /// Parses an untrusted request body (at most [`MAX_BODY_BYTES`]) and the statement inside.
    pub fn parse(body: &[u8]) -> Result<UnverifiedStatement, StatementError> {
        if body.len() > MAX_BODY_BYTES {
            return Err(too_many_bytes());
        }
        let not_body = "the body must be one JSON object with exactly the string members \
                        signedBytes, signature and publicKey";
        let text =
            std::str::from_utf8(body).or_else(|_| refuse(Reason::MalformedBody, not_body))?;
        let scan = json::scan_object(text, true)
            .map_or_else(|| refuse(Reason::MalformedBody, not_body), Ok)?;
        if scan.duplicate {
            return refuse(Reason::DuplicateKey, "the body repeats a member name");
        }
        let members = match canonical::parse(body) {
            Ok(Value::Object(map)) if map.len() == BODY_MEMBERS.len() => map,
            _ => return refuse(Reason::MalformedBody, not_body),
        };
        let text_of = |name: &str| members.get(name).and_then(Value::as_str);
        let [Some(signed), Some(signature), Some(key)] = BODY_MEMBERS.map(text_of) else {
            return refuse(Reason::MalformedBody, not_body);
        };
        Self::from_parts(signed, signature, key)
    }

    /// Parses the three members already taken out of a body (each unpadded base64url).
    pub fn from_parts(
        signed_bytes: &str,
        signature: &str,
        public_key: &str,
    ) -> Result<UnverifiedStatement, StatementError> {
        if signed_bytes.len() > MAX_SIGNED_BYTES_CHARS {
            return Err(too_many_bytes());
        }
        let decode = |text: &str, what: &'static str| {
            b64::decode_url_strict(text).map_or_else(|| refuse(Reason::BadEncoding, what), Ok)
        };
        let signed_bytes = decode(signed_bytes, "signedBytes is not unpadded base64url")?;
        let sig_line = "signature is not 64 bytes of unpadded base64url";
        let signature: [u8; 64] = decode(signature, sig_line)?
            .try_into()
            .or_else(|_| refuse(Reason::BadEncoding, sig_line))?;
        let key_line = "publicKey is not 32 bytes of unpadded base64url";
        let public_key: [u8; 32] = decode(public_key, key_line)?
            .try_into()
            .or_else(|_| refuse(Reason::BadEncoding, key_line))?;
        let statement = parse_signed_bytes(&signed_bytes)?;
        Ok(UnverifiedStatement {
            body: StatementBody {
                signed_bytes,
                signature: AgentSignature::from_bytes(signature),
                public_key,
            },
            statement,
        })
    }
}

/// A well-formed statement whose signature has not been checked. Only [`Self::agent_id`] may
/// be used before verifying: to look up the agent's registered key.
#[derive(Clone, Debug)]
pub struct UnverifiedStatement {
    body: StatementBody,
    statement: ActionStatement,
}

impl UnverifiedStatement {
    /// The agent id the statement claims (unauthenticated until verified).
    pub fn agent_id(&self) -> &str {
        &self.statement.agent_id
    }

    /// Verifies against the agent's registered Ed25519 key: the presented key must be that key
    /// ([`Reason::KeyNotRecognized`]) and the signature must verify over `signedBytes` as
    /// received ([`Reason::SignatureInvalid`]).
    pub fn verify(self, registered: &AgentPublicKey) -> Result<VerifiedStatement, StatementError> {
        if self.body.public_key != *registered.as_bytes() {
            return refuse(
                Reason::KeyNotRecognized,
                "the signing key is not the registered key of this agent",
            );
        }
        registered
            .verify(&self.body.signed_bytes, &self.body.signature)
            .or_else(|_| refuse(Reason::SignatureInvalid, SIGNATURE_LINE))?;
        Ok(VerifiedStatement {
            body: self.body,
            statement: self.statement,
        })
    }

    /// Verifies a hybrid-mode agent's statement: the Ed25519 signature as in [`Self::verify`]
    /// and, in addition, `ml_dsa` (carried however the server decides) over the same
    /// `signedBytes` under the registered ML-DSA-65 key. Both are required.
    pub fn verify_hybrid(
        self,
        registered: &HybridPublicKey,
        ml_dsa: &MlDsaSignature,
    ) -> Result<VerifiedStatement, StatementError> {
        let verified = self.verify(registered.ed25519())?;
        registered
            .ml_dsa()
            .verify(&verified.body.signed_bytes, ml_dsa)
            .or_else(|_| refuse(Reason::SignatureInvalid, SIGNATURE_LINE))?;
        Ok(verified)
    }
}

const SIGNATURE_LINE: &str =
    "the signature does not verify over signedBytes with the registered key";

/// A statement whose signature verified under the agent's registered key. Its timestamp and
/// nonce still have to be checked (window, then single use).
#[derive(Clone, Debug)]
pub struct VerifiedStatement {
    body: StatementBody,
    statement: ActionStatement,
}

impl VerifiedStatement {
    /// The verified content.
    pub fn statement(&self) -> &ActionStatement {
        &self.statement
    }

    /// The signed bytes, as received.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.body.signed_bytes
    }

    /// The signature as unpadded base64url, for the record.
    pub fn signature_b64url(&self) -> String {
        b64::encode_url(&self.body.signature.to_bytes())
    }

    /// The content, consuming the verified statement.
    pub fn into_statement(self) -> ActionStatement {
        self.statement
    }
}

#[cfg(test)]
mod tests;
