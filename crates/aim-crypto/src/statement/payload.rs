//! The payload of `signedBytes`: shape checks in upstream's order, then each member's form.

use std::collections::BTreeMap;

use super::{
    ActionStatement, MAX_DEPTH, MEMBERS, NONCE_LEN, PAYLOAD_TYPE, REQUIRED, Reason, StatementError,
    StatementTime, json, refuse, split_pae,
};
use crate::b64;
use crate::canonical::{self, Value};

/// Parses decoded `signedBytes`: the PAE, then the payload. Every check that needs no key.
pub fn parse_signed_bytes(signed_bytes: &[u8]) -> Result<ActionStatement, StatementError> {
    let (payload_type, payload) = split_pae(signed_bytes)?;
    if payload_type != PAYLOAD_TYPE.as_bytes() {
        return refuse(
            Reason::PayloadTypeMismatch,
            "signedBytes is a DSSE v1 frame of another payload type",
        );
    }
    let members = payload_members(payload)?;
    let mut fields = Fields(members);
    let timestamp_line = "timestamp is not RFC 3339 UTC (YYYY-MM-DDTHH:MM:SS[.f]Z)";
    Ok(ActionStatement {
        action_type: fields.action_type()?,
        agent_id: fields.agent_id()?,
        resource: fields.resource()?,
        context: fields.context()?,
        timestamp: fields
            .string("timestamp", timestamp_line)?
            .as_deref()
            .and_then(StatementTime::parse)
            .map_or_else(|| refuse(Reason::InvalidMember, timestamp_line), Ok)?,
        nonce: fields.nonce()?,
        delegation_digests: fields.delegation_digests()?,
        risk_level: fields.string("risk_level", "risk_level is not a string")?,
    })
}

/// The payload's members after the shape checks, in check order: one object, depth, repeated
/// names, undefined names, missing names.
fn payload_members(payload: &[u8]) -> Result<BTreeMap<String, Value>, StatementError> {
    let not_object = "the payload is not one JSON object in valid UTF-8 with no bytes around it";
    let text =
        std::str::from_utf8(payload).or_else(|_| refuse(Reason::MalformedPayload, not_object))?;
    let scan = json::scan_object(text, false)
        .map_or_else(|| refuse(Reason::MalformedPayload, not_object), Ok)?;
    if scan.max_depth > MAX_DEPTH {
        return Err(StatementError::over_limit(
            "statementDepth",
            "the payload nests deeper than 32 levels",
        ));
    }
    if scan.duplicate {
        return refuse(Reason::DuplicateKey, "the payload repeats a member name");
    }
    if scan
        .top_names
        .iter()
        .any(|n| !MEMBERS.contains(&n.as_str()))
    {
        return refuse(
            Reason::UnknownMember,
            "the payload has a member action-request-v1 does not define",
        );
    }
    let Ok(Value::Object(members)) = canonical::parse(payload) else {
        return refuse(Reason::MalformedPayload, not_object);
    };
    for name in REQUIRED {
        if members.contains_key(name) {
            continue;
        }
        return match name {
            "nonce" => refuse(Reason::NonceRequired, "the signed statement has no nonce"),
            "action_type" => refuse(Reason::MissingMember, "the payload is missing action_type"),
            "agent_id" => refuse(Reason::MissingMember, "the payload is missing agent_id"),
            "resource" => refuse(Reason::MissingMember, "the payload is missing resource"),
            _ => refuse(Reason::MissingMember, "the payload is missing timestamp"),
        };
    }
    Ok(members)
}

/// Takes members out of the payload object and checks their forms.
struct Fields(BTreeMap<String, Value>);

impl Fields {
    /// An optional string member; present and not a string is refused with `line`.
    fn string(&mut self, name: &str, line: &'static str) -> Result<Option<String>, StatementError> {
        match self.0.remove(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => refuse(Reason::InvalidMember, line),
        }
    }

    fn action_type(&mut self) -> Result<String, StatementError> {
        let line = "action_type is not a non-empty string";
        match self.string("action_type", line)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => refuse(Reason::InvalidMember, line),
        }
    }

    fn agent_id(&mut self) -> Result<String, StatementError> {
        let line = "agent_id is not a hyphenated UUID";
        match self.string("agent_id", line)? {
            Some(s) if is_hyphenated_uuid(&s) => Ok(s),
            _ => refuse(Reason::InvalidMember, line),
        }
    }

    fn resource(&mut self) -> Result<Option<String>, StatementError> {
        match self.0.remove("resource") {
            Some(Value::Null) | None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => refuse(Reason::InvalidMember, "resource is not a string or null"),
        }
    }

    fn context(&mut self) -> Result<Option<Value>, StatementError> {
        match self.0.remove("context") {
            None => Ok(None),
            Some(v @ Value::Object(_)) => Ok(Some(v)),
            Some(_) => refuse(Reason::InvalidMember, "context is not a JSON object"),
        }
    }

    fn nonce(&mut self) -> Result<[u8; NONCE_LEN], StatementError> {
        let line = "nonce is not 16 bytes of unpadded base64url (22 characters)";
        self.string("nonce", line)
            .map_err(|e| StatementError::new(Reason::NonceInvalid, e.detail))?
            .as_deref()
            .and_then(b64::decode_url_strict)
            .and_then(|bytes| <[u8; NONCE_LEN]>::try_from(bytes).ok())
            .map_or_else(|| refuse(Reason::NonceInvalid, line), Ok)
    }

    fn delegation_digests(&mut self) -> Result<Vec<[u8; 32]>, StatementError> {
        let line = "delegation_digests is not a non-empty array of 43-character unpadded \
                    base64url SHA-256 digests";
        let items = match self.0.remove("delegation_digests") {
            None => return Ok(Vec::new()),
            Some(Value::Array(items)) if !items.is_empty() => items,
            Some(_) => return refuse(Reason::InvalidMember, line),
        };
        items
            .iter()
            .map(|item| {
                item.as_str()
                    .and_then(b64::decode_url_strict)
                    .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                    .map_or_else(|| refuse(Reason::InvalidMember, line), Ok)
            })
            .collect()
    }
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` with hex digits of either case.
fn is_hyphenated_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}
