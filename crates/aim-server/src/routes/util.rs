//! Small helpers shared by the handlers: strict JSON bodies, times, validation.

use axum::http::{HeaderMap, Method, Uri};
use serde::de::DeserializeOwned;

use crate::auth::RequestParts;
use crate::error::{Error, Result};

/// Parses a JSON body into `T`, with a 400 that says what is wrong.
pub(crate) fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::bad_request(
            "the request body is empty; expected a JSON object",
        ));
    }
    serde_json::from_slice(body).map_err(|e| Error::bad_request(format!("invalid JSON body: {e}")))
}

/// Parses an optional JSON body (empty means `T::default()`).
pub(crate) fn parse_optional_body<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse_body(body)
}

/// RFC 3339 UTC with milliseconds, e.g. `2025-10-24T14:44:21.123Z`.
pub(crate) fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// [`iso`] of an optional time.
pub(crate) fn iso_opt(ms: Option<i64>) -> Option<String> {
    ms.map(iso)
}

/// Parses an RFC 3339 timestamp, or the AIM SDK's naive `YYYY-MM-DDTHH:MM:SS[.ffffff]` form
/// (taken as UTC), into milliseconds since the epoch.
pub(crate) fn parse_timestamp(text: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    let naive = text.strip_suffix('Z').unwrap_or(text);
    chrono::NaiveDateTime::parse_from_str(naive, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc().timestamp_millis())
}

/// The request parts authentication needs.
pub(crate) fn parts<'a>(
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    body: &'a [u8],
) -> RequestParts<'a> {
    RequestParts {
        method,
        path: uri.path(),
        query: uri.query(),
        headers,
        body,
    }
}

/// Checks a free-text field: trimmed, at most `max` characters, no control characters except
/// newlines and tabs.
pub(crate) fn text_field(value: &str, what: &str, max: usize) -> Result<String> {
    let v = value.trim();
    if v.chars().count() > max {
        return Err(Error::bad_request(format!(
            "{what} must be at most {max} characters"
        )));
    }
    if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Error::bad_request(format!(
            "{what} must not contain control characters"
        )));
    }
    Ok(v.to_owned())
}

/// Checks a name: 1–`max` characters, no control characters, no `/`.
pub(crate) fn name_field(value: &str, what: &str, max: usize) -> Result<String> {
    let v = text_field(value, what, max)?;
    if v.is_empty() {
        return Err(Error::bad_request(format!("{what} must not be empty")));
    }
    if v.contains('/') || v.contains('\n') || v.contains('\t') {
        return Err(Error::bad_request(format!(
            "{what} must not contain `/`, newlines or tabs"
        )));
    }
    Ok(v)
}

/// An agent label (set by admins, selected by policies as `label:NAME`): 1 to 64 ASCII letters,
/// digits, `-`, `_`, `.`, `:` or `=`.
pub(crate) fn label_field(value: &str) -> Result<String> {
    let v = value.trim();
    if v.is_empty()
        || v.len() > 64
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'='))
    {
        return Err(Error::bad_request(format!(
            "label `{v}`: a label is 1 to 64 ASCII letters, digits, `-`, `_`, `.`, `:` or `=`"
        )));
    }
    Ok(v.to_owned())
}

/// A `limit` query parameter: default `default`, at most 1000.
pub(crate) fn limit(value: Option<i64>, default: i64) -> Result<i64> {
    match value {
        None => Ok(default),
        Some(n) if (1..=1000).contains(&n) => Ok(n),
        Some(_) => Err(Error::bad_request("limit must be between 1 and 1000")),
    }
}

/// Parses an `offset` query parameter.
pub(crate) fn offset(value: Option<i64>) -> Result<i64> {
    match value {
        None => Ok(0),
        Some(n) if n >= 0 => Ok(n),
        Some(_) => Err(Error::bad_request("offset must not be negative")),
    }
}

/// Parses a stored JSON text column, falling back to `null`.
pub(crate) fn json_column(text: &str) -> serde_json::Value {
    serde_json::from_str(text)
        .or_else(|_| {
            aim_crypto::canonical::parse(text.as_bytes())
                .map(|v| v.to_serde())
                .map_err(|_| ())
        })
        .unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_the_forms_the_sdk_sends() {
        let a = parse_timestamp("2025-10-24T14:44:21.123456Z").unwrap();
        assert_eq!(a, 1_761_317_061_123);
        assert_eq!(
            parse_timestamp("2025-10-24T14:44:21Z").unwrap(),
            1_761_317_061_000
        );
        assert_eq!(
            parse_timestamp("2025-10-24T14:44:21.123456+00:00").unwrap(),
            1_761_317_061_123
        );
        assert_eq!(
            parse_timestamp("2025-10-24T16:44:21+02:00").unwrap(),
            1_761_317_061_000
        );
        assert_eq!(
            parse_timestamp("2025-10-24T14:44:21").unwrap(),
            1_761_317_061_000
        );
        assert!(parse_timestamp("yesterday").is_none());
        assert!(parse_timestamp("").is_none());
        assert_eq!(iso(1_761_317_061_123), "2025-10-24T14:44:21.123Z");
    }

    #[test]
    fn bodies_and_fields() {
        #[derive(serde::Deserialize, Default, Debug)]
        struct T {
            #[allow(dead_code)]
            a: Option<i64>,
        }
        assert!(parse_body::<T>(b"").is_err());
        assert!(parse_body::<T>(b"{\"a\": \"x\"}").is_err());
        assert!(parse_body::<T>(b"{\"a\": 1}").is_ok());
        assert!(parse_optional_body::<T>(b"  ").is_ok());
        assert!(name_field("a/b", "name", 10).is_err());
        assert!(name_field("  ", "name", 10).is_err());
        assert_eq!(name_field(" ok ", "name", 10).unwrap(), "ok");
        assert!(text_field("x\u{7}", "d", 10).is_err());
        assert!(limit(Some(0), 5).is_err());
        assert_eq!(limit(None, 5).unwrap(), 5);
        assert!(offset(Some(-1)).is_err());
    }
}
