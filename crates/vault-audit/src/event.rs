//! Audit events and their canonical, versioned binary encoding (one byte string per event).
//!
//! ```text
//! event  = version:u8 (= 0x01)  kind:name8  time_ms:i64be  count:u16be  field{count}
//! field  = name:name8  tag:u8  value
//! value  = 0x01 len:u32be utf8      string  (len ≤ 65 536)
//!        | 0x02 i64be               integer
//!        | 0x03 len:u32be bytes     bytes   (len ≤ 65 536)
//!        | 0x04 (0x00 | 0x01)       bool
//! name8  = len:u8 (1..=64) ascii
//! ```
//! A kind is dot-separated segments `[a-z][a-z0-9_]*`; a field name is one segment. Field names
//! are strictly ascending (bytewise), so there is exactly one encoding per event. At most 64
//! fields. Decoding rejects anything else, including trailing bytes.

use std::collections::BTreeMap;

use crate::error::{AuditError, Result};

/// Current encoding version (the leading byte).
pub const EVENT_VERSION: u8 = 0x01;
/// Longest kind or field name, in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Most fields in one event.
pub const MAX_FIELDS: usize = 64;
/// Longest string or bytes value.
pub const MAX_VALUE_LEN: usize = 65_536;
/// Prefix of the kinds this crate reserves for itself.
pub const RESERVED_PREFIX: &str = "audit.";

const TAG_STRING: u8 = 0x01;
const TAG_INTEGER: u8 = 0x02;
const TAG_BYTES: u8 = 0x03;
const TAG_BOOL: u8 = 0x04;

/// One field value of an event. Never put memory content or other plaintext secrets here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// UTF-8 text.
    Str(String),
    /// A signed 64-bit integer.
    Int(i64),
    /// Raw bytes (hashes, commitments, keys).
    Bytes(Vec<u8>),
    /// A boolean.
    Bool(bool),
}

impl FieldValue {
    /// The text, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The bytes, if this is a bytes value.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

impl From<&str> for FieldValue {
    fn from(v: &str) -> Self {
        Self::Str(v.to_owned())
    }
}
impl From<String> for FieldValue {
    fn from(v: String) -> Self {
        Self::Str(v)
    }
}
impl From<i64> for FieldValue {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}
impl From<Vec<u8>> for FieldValue {
    fn from(v: Vec<u8>) -> Self {
        Self::Bytes(v)
    }
}
impl From<&[u8]> for FieldValue {
    fn from(v: &[u8]) -> Self {
        Self::Bytes(v.to_vec())
    }
}
impl<const N: usize> From<[u8; N]> for FieldValue {
    fn from(v: [u8; N]) -> Self {
        Self::Bytes(v.to_vec())
    }
}
impl From<bool> for FieldValue {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

/// One vault event: a dotted lowercase kind (`memory.store`, `memory.recall.denied`, ...), the
/// time it happened in Unix milliseconds, and named fields. Kinds starting with `audit.` are
/// reserved for this crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Dotted lowercase name, e.g. `memory.recall.denied`.
    pub kind: String,
    /// Unix time in milliseconds.
    pub time_ms: i64,
    /// Named values; names are `[a-z][a-z0-9_]*`.
    pub fields: BTreeMap<String, FieldValue>,
}

impl Event {
    /// An event with no fields yet.
    pub fn new(kind: impl Into<String>, time_ms: i64) -> Self {
        Self {
            kind: kind.into(),
            time_ms,
            fields: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) a field; builder style. Names are checked by [`Event::encode`].
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, value: impl Into<FieldValue>) -> Self {
        self.fields.insert(name.into(), value.into());
        self
    }

    /// The field called `name`.
    pub fn get(&self, name: &str) -> Option<&FieldValue> {
        self.fields.get(name)
    }

    /// Checks the kind, names and value sizes against the format's rules.
    pub fn validate(&self) -> Result<()> {
        check_kind(&self.kind).map_err(|r| invalid(format!("kind {:?}: {r}", self.kind)))?;
        if self.fields.len() > MAX_FIELDS {
            return Err(invalid(format!(
                "{} fields; at most {MAX_FIELDS}",
                self.fields.len()
            )));
        }
        for (name, value) in &self.fields {
            check_segment(name.as_bytes())
                .map_err(|r| invalid(format!("field name {name:?}: {r}")))?;
            let len = match value {
                FieldValue::Str(s) => s.len(),
                FieldValue::Bytes(b) => b.len(),
                FieldValue::Int(_) | FieldValue::Bool(_) => 0,
            };
            if len > MAX_VALUE_LEN {
                return Err(invalid(format!(
                    "field {name:?} has {len} bytes; at most {MAX_VALUE_LEN}"
                )));
            }
        }
        Ok(())
    }

    /// The canonical encoding (see the module docs). Fails only if [`Event::validate`] does.
    pub fn encode(&self) -> Result<Vec<u8>> {
        self.validate()?;
        let mut out = Vec::with_capacity(self.encoded_len_hint());
        out.push(EVENT_VERSION);
        push_name(&mut out, &self.kind);
        out.extend_from_slice(&self.time_ms.to_be_bytes());
        // validate() bounds the count by MAX_FIELDS, so it fits in u16.
        out.extend_from_slice(&(self.fields.len() as u16).to_be_bytes());
        for (name, value) in &self.fields {
            push_name(&mut out, name);
            match value {
                FieldValue::Str(s) => {
                    out.push(TAG_STRING);
                    push_len_prefixed(&mut out, s.as_bytes());
                }
                FieldValue::Int(i) => {
                    out.push(TAG_INTEGER);
                    out.extend_from_slice(&i.to_be_bytes());
                }
                FieldValue::Bytes(b) => {
                    out.push(TAG_BYTES);
                    push_len_prefixed(&mut out, b);
                }
                FieldValue::Bool(b) => {
                    out.push(TAG_BOOL);
                    out.push(u8::from(*b));
                }
            }
        }
        Ok(out)
    }

    /// Parses a canonical encoding strictly: unknown versions, non-canonical forms (unsorted or
    /// duplicate names, bad names, booleans other than 0/1, invalid UTF-8) and trailing bytes
    /// are errors. Safe on untrusted input.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader { bytes, pos: 0 };
        let version = r.u8("missing version byte")?;
        if version != EVENT_VERSION {
            return Err(r.err_at(0, "unknown event encoding version"));
        }
        let kind_at = r.pos;
        let kind = r.name()?;
        check_kind(&kind).map_err(|reason| r.err_at(kind_at, reason))?;
        let time_ms = i64::from_be_bytes(r.array("truncated time")?);
        let count = u16::from_be_bytes(r.array("truncated field count")?) as usize;
        if count > MAX_FIELDS {
            return Err(r.err_at(r.pos - 2, "too many fields"));
        }
        let mut fields = BTreeMap::new();
        let mut previous: Option<String> = None;
        for _ in 0..count {
            let name_at = r.pos;
            let name = r.name()?;
            check_segment(name.as_bytes()).map_err(|reason| r.err_at(name_at, reason))?;
            if previous.as_deref().is_some_and(|p| p >= name.as_str()) {
                return Err(r.err_at(name_at, "field names are not strictly ascending"));
            }
            let tag_at = r.pos;
            let value = match r.u8("missing value tag")? {
                TAG_STRING => {
                    let at = r.pos;
                    let raw = r.len_prefixed()?;
                    let s = std::str::from_utf8(raw)
                        .map_err(|_| r.err_at(at, "string value is not UTF-8"))?;
                    FieldValue::Str(s.to_owned())
                }
                TAG_INTEGER => FieldValue::Int(i64::from_be_bytes(r.array("truncated integer")?)),
                TAG_BYTES => FieldValue::Bytes(r.len_prefixed()?.to_vec()),
                TAG_BOOL => match r.u8("truncated boolean")? {
                    0 => FieldValue::Bool(false),
                    1 => FieldValue::Bool(true),
                    _ => return Err(r.err_at(r.pos - 1, "boolean is not 0 or 1")),
                },
                _ => return Err(r.err_at(tag_at, "unknown value tag")),
            };
            previous = Some(name.clone());
            fields.insert(name, value);
        }
        if r.pos != bytes.len() {
            return Err(r.err_at(r.pos, "trailing bytes after the event"));
        }
        Ok(Self {
            kind,
            time_ms,
            fields,
        })
    }

    fn encoded_len_hint(&self) -> usize {
        let mut n = 1 + 1 + self.kind.len() + 8 + 2;
        for (name, value) in &self.fields {
            n += 1 + name.len() + 1;
            n += match value {
                FieldValue::Str(s) => 4 + s.len(),
                FieldValue::Bytes(b) => 4 + b.len(),
                FieldValue::Int(_) => 8,
                FieldValue::Bool(_) => 1,
            };
        }
        n
    }
}

fn invalid(reason: String) -> AuditError {
    AuditError::InvalidEvent(reason)
}

fn push_name(out: &mut Vec<u8>, name: &str) {
    // Callers validated the name: 1..=64 ASCII bytes.
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
}

fn push_len_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    // Callers validated the length: at most MAX_VALUE_LEN.
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// A segment is `[a-z][a-z0-9_]*`, 1..=64 bytes.
fn check_segment(s: &[u8]) -> std::result::Result<(), &'static str> {
    match s.first() {
        None => return Err("is empty"),
        Some(c) if !c.is_ascii_lowercase() => return Err("must start with a-z"),
        Some(_) => {}
    }
    if s.len() > MAX_NAME_LEN {
        return Err("is longer than 64 bytes");
    }
    if !s
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
    {
        return Err("may contain only a-z, 0-9 and _");
    }
    Ok(())
}

/// A kind is dot-separated segments, 1..=64 bytes in total.
fn check_kind(kind: &str) -> std::result::Result<(), &'static str> {
    if kind.is_empty() {
        return Err("is empty");
    }
    if kind.len() > MAX_NAME_LEN {
        return Err("is longer than 64 bytes");
    }
    for segment in kind.split('.') {
        check_segment(segment.as_bytes())?;
    }
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn err_at(&self, offset: usize, reason: &'static str) -> AuditError {
        AuditError::MalformedEvent { offset, reason }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or(AuditError::MalformedEvent {
                offset: self.pos,
                reason: what,
            })?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn name(&mut self) -> Result<String> {
        let at = self.pos;
        let len = self.u8("missing name length")? as usize;
        if len == 0 || len > MAX_NAME_LEN {
            return Err(self.err_at(at, "name length is not 1..=64"));
        }
        let raw = self.take(len, "truncated name")?;
        if !raw.is_ascii() {
            return Err(self.err_at(at + 1, "name is not ASCII"));
        }
        // ASCII is valid UTF-8; the grammar is checked by the caller.
        String::from_utf8(raw.to_vec()).map_err(|_| self.err_at(at + 1, "name is not ASCII"))
    }

    fn len_prefixed(&mut self) -> Result<&'a [u8]> {
        let at = self.pos;
        let len = u32::from_be_bytes(self.array("truncated length")?) as usize;
        if len > MAX_VALUE_LEN {
            return Err(self.err_at(at, "value is longer than 65536 bytes"));
        }
        self.take(len, "truncated value")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        Event::new("memory.recall.denied", 1_761_317_061_000)
            .with("memory_id", "0199e0a4-7c1e-7000-8000-000000000001")
            .with("reason", "cooldown")
            .with("classification", 3i64)
            .with("approved", false)
            .with("commitment", [7u8; 32])
    }

    #[test]
    fn encoding_is_exactly_as_documented() {
        let e = Event::new("a.b", -1).with("x", 5i64).with("flag", true);
        let bytes = e.encode().unwrap();
        let mut want = vec![0x01, 3, b'a', b'.', b'b'];
        want.extend_from_slice(&(-1i64).to_be_bytes());
        want.extend_from_slice(&[0, 2]);
        want.extend_from_slice(&[4, b'f', b'l', b'a', b'g', 0x04, 0x01]);
        want.extend_from_slice(&[1, b'x', 0x02]);
        want.extend_from_slice(&5i64.to_be_bytes());
        assert_eq!(bytes, want);
        assert_eq!(Event::decode(&bytes).unwrap(), e);
    }

    #[test]
    fn round_trip_and_strictness() {
        let e = sample();
        let bytes = e.encode().unwrap();
        assert_eq!(Event::decode(&bytes).unwrap(), e);
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            Event::decode(&trailing),
            Err(AuditError::MalformedEvent {
                reason: "trailing bytes after the event",
                ..
            })
        ));
        let mut v2 = bytes.clone();
        v2[0] = 2;
        assert!(Event::decode(&v2).is_err());
        for cut in 0..bytes.len() {
            assert!(
                Event::decode(&bytes[..cut]).is_err(),
                "prefix {cut} decoded"
            );
        }
    }

    #[test]
    fn rejects_unsorted_duplicate_and_bad_values() {
        // Two fields "b" then "a": unsorted.
        let mut raw = vec![0x01, 1, b'k'];
        raw.extend_from_slice(&0i64.to_be_bytes());
        raw.extend_from_slice(&[0, 2, 1, b'b', 0x04, 0, 1, b'a', 0x04, 0]);
        assert!(Event::decode(&raw).is_err());
        // Duplicate "a".
        let n = raw.len();
        raw[n - 7] = b'a';
        assert!(Event::decode(&raw).is_err());
        // Boolean 2.
        let mut b = vec![0x01, 1, b'k'];
        b.extend_from_slice(&0i64.to_be_bytes());
        b.extend_from_slice(&[0, 1, 1, b'a', 0x04, 2]);
        assert!(Event::decode(&b).is_err());
        // Invalid UTF-8 string.
        let mut s = vec![0x01, 1, b'k'];
        s.extend_from_slice(&0i64.to_be_bytes());
        s.extend_from_slice(&[0, 1, 1, b'a', 0x01, 0, 0, 0, 1, 0xff]);
        assert!(Event::decode(&s).is_err());
        // Huge declared length does not allocate or panic.
        let mut h = vec![0x01, 1, b'k'];
        h.extend_from_slice(&0i64.to_be_bytes());
        h.extend_from_slice(&[0, 1, 1, b'a', 0x03, 0xff, 0xff, 0xff, 0xff]);
        assert!(Event::decode(&h).is_err());
    }

    #[test]
    fn invalid_events_do_not_encode() {
        for kind in [
            "",
            "Memory.store",
            "memory..store",
            ".x",
            "x.",
            "1x",
            "memory store",
        ] {
            assert!(Event::new(kind, 0).encode().is_err(), "{kind:?}");
        }
        assert!(Event::new("k", 0).with("Bad", 1i64).encode().is_err());
        assert!(Event::new("k", 0).with("", 1i64).encode().is_err());
        assert!(
            Event::new("k", 0)
                .with("a", vec![0u8; MAX_VALUE_LEN + 1])
                .encode()
                .is_err()
        );
        assert!(
            Event::new("k", 0)
                .with("a", vec![0u8; MAX_VALUE_LEN])
                .encode()
                .is_ok()
        );
        let mut many = Event::new("k", 0);
        for i in 0..=MAX_FIELDS {
            many = many.with(format!("f{i}"), true);
        }
        assert!(many.encode().is_err());
        assert!(Event::new("a".repeat(65), 0).encode().is_err());
    }

    #[test]
    fn getters() {
        let e = sample();
        assert_eq!(
            e.get("reason").and_then(FieldValue::as_str),
            Some("cooldown")
        );
        assert_eq!(
            e.get("classification").and_then(FieldValue::as_int),
            Some(3)
        );
        assert_eq!(e.get("approved").and_then(FieldValue::as_bool), Some(false));
        assert_eq!(
            e.get("commitment").and_then(FieldValue::as_bytes),
            Some(&[7u8; 32][..])
        );
        assert_eq!(e.get("reason").and_then(FieldValue::as_int), None);
    }
}
